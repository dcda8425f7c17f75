"""Gate-level simulation of a Yosys-mapped netlist (osu018 or sky130) on Icarus, and per-net toggle counts from its VCD.

The netlist (``mapped.v``, written by ``hdl/synth/liberty.ys``) is simulated with the
cell models ``osu018_stdcells.v`` that Debian's ``qflow-tech-osu018`` ships next to the
Liberty file, compiled with ``iverilog -gspecify`` so that every cell switches after its
specify-block path delay: glitches in the adder and shifter chains are counted like the
transitions of a real circuit (``specify=False`` gives zero-delay, glitch-free counts). sky130 netlists
use the models :mod:`rf8sim.tech.models` writes in the same form from the characterized Liberty.

Stimulus: one row per clock cycle with a value for every input port except ``clk``,
applied on the falling edge (row r at r * period; clk rises half a period later).
Toggles (0<->1 transitions; X/Z ignored) are counted for
every bit that the VCD declares in the top scope, inside a window of whole clock
periods that starts on a falling edge, so a count divided by the number of cycles is an
activity in transitions per cycle.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ToolMissingError
from .mac import HdlError

__all__ = ["cell_models", "models_for", "parse_netlist", "Netlist", "simulate", "count_toggles", "GateSim"]

OSU_PACKAGE = "qflow-tech-osu018"
_SYSTEM_OSU = Path("/usr/share/qflow/tech/osu018")


def cell_models() -> Path:
    """``osu018_stdcells.v``: from the installed qflow-tech-osu018, else from the cached .deb extraction."""
    p = _SYSTEM_OSU / "osu018_stdcells.v"
    if p.is_file():
        return p
    from .synth import _cache_dir, default_liberty

    root = _cache_dir() / "osu018"
    hits = list(root.rglob("osu018_stdcells.v")) if root.exists() else []
    if not hits:
        try:
            default_liberty()  # fetches and extracts the .deb, which carries the cell models too
        except HdlError as e:
            raise ToolMissingError(f"osu018 cell models (osu018_stdcells.v) not found: `apt-get install "
                                   f"{OSU_PACKAGE}` (or `make sysdeps` as root); {e}") from e
        hits = list(root.rglob("osu018_stdcells.v"))
    if not hits:
        raise ToolMissingError(f"osu018_stdcells.v not found in {_SYSTEM_OSU} or {root}: "
                               f"`apt-get install {OSU_PACKAGE}` (or `make sysdeps` as root)")
    return hits[0]


def models_for(nl: "Netlist", liberty: Path | None = None) -> Path:
    """The cell models a netlist needs: sky130 cells -> :func:`rf8sim.tech.models.sky130_models` (written from
    ``liberty`` when it exists, else from the checked-in sky130 Liberty); otherwise osu018's (:func:`cell_models`)."""
    if any(i.cell.startswith("sky130_fd_sc_hd__") for i in nl.instances):
        from ..tech.models import sky130_models

        return sky130_models(liberty if liberty is not None and Path(liberty).is_file() else None)
    return cell_models()


def _iverilog() -> tuple[str, str]:
    from ..infra.tools import iverilog_exes

    return iverilog_exes()


# ---------------------------------------------------------------------------- netlist
@dataclass(frozen=True)
class Instance:
    cell: str
    name: str
    pins: dict  # pin -> net name ("_12_", "out_acc[3]", "clk") or a constant ("1'h0")


@dataclass(frozen=True)
class Netlist:
    top: str
    ports: tuple  # (name, direction, width)
    instances: tuple

    @property
    def inputs(self) -> list:
        return [(n, w) for n, d, w in self.ports if d == "input"]

    @property
    def outputs(self) -> list:
        return [(n, w) for n, d, w in self.ports if d == "output"]


_PORT = re.compile(r"^\s*(input|output|inout)\s+(?:\[(\d+):(\d+)\]\s+)?([\w$]+)\s*;", re.M)
_INST = re.compile(r"^\s*([A-Za-z_]\w*)\s+([\w$\\.\[\]]+)\s*\((.*?)\);", re.M | re.S)
_CONN = re.compile(r"\.(\w+)\(([^()]*)\)")


def parse_netlist(path: Path) -> Netlist:
    """Ports and cell instances of a flat ``write_verilog -noattr -noexpr`` netlist (one module)."""
    text = Path(path).read_text()
    m = re.search(r"^module\s+([\w$]+)\s*\(", text, re.M)
    if not m:
        raise HdlError(f"{path}: no module found")
    top = m.group(1)
    body = text[m.end():]
    ports = tuple((name, d, abs(int(msb) - int(lsb)) + 1 if msb else 1)
                  for d, msb, lsb, name in _PORT.findall(body))
    insts = []
    for cell, name, conns in _INST.findall(body):
        if cell in ("module", "input", "output", "wire", "assign", "reg", "inout"):
            continue
        insts.append(Instance(cell, name, {p: n.strip() for p, n in _CONN.findall(conns)}))
    return Netlist(top, ports, tuple(insts))


# ---------------------------------------------------------------------------- simulation
def _tb(nl: Netlist, n_rows: int, period_ns: float, dump_from_ns: float) -> str:
    ins = [(n, w) for n, w in nl.inputs if n != "clk"]
    total = sum(w for _, w in ins)
    decl = "\n".join(f"  reg {'[%d:0] ' % (w - 1) if w > 1 else ''}{n} = 0;" for n, w in ins)
    odecl = "\n".join(f"  wire {'[%d:0] ' % (w - 1) if w > 1 else ''}{n};" for n, w in nl.outputs)
    conns = ", ".join(f".{n}({n})" for n, _, _ in nl.ports)
    cat = "{" + ", ".join(n for n, _ in ins) + "}" if ins else ""
    half = period_ns / 2
    return f"""`timescale 1ns/10ps
module rf8sim_gate_tb;
  reg clk = 0;
{decl}
{odecl}
  reg [{max(total, 1) - 1}:0] mem [0:{n_rows - 1}];
  integer i;
  {nl.top} dut({conns});
  always #{half} clk = ~clk;
  initial begin
    $readmemh("stim.hex", mem);
    $dumpfile("act.vcd");
    $dumpvars(1, dut);
    for (i = 0; i < {n_rows}; i = i + 1) begin
      {cat + " = mem[i];" if ins else ""}
      #{period_ns};
    end
    #{period_ns};
    $finish;
  end
endmodule
// toggles are counted from {dump_from_ns} ns
"""


def _stim_hex(nl: Netlist, stim: dict, n_rows: int) -> str:
    ins = [(n, w) for n, w in nl.inputs if n != "clk"]
    missing = [n for n, _ in ins if n not in stim]
    extra = sorted(set(stim) - {n for n, _ in ins})
    if missing or extra:
        raise HdlError(f"stimulus for {nl.top}: missing ports {missing}, unknown ports {extra}; "
                       f"inputs are {[n for n, _ in ins]}")
    total = sum(w for _, w in ins)
    acc = [0] * n_rows
    for n, w in ins:
        col = stim[n]
        if len(col) != n_rows:
            raise HdlError(f"stimulus column {n} has {len(col)} rows, expected {n_rows}")
        for r in range(n_rows):
            v = int(col[r])
            if v < 0 or v >> w:
                raise HdlError(f"stimulus {n}[{r}] = {v} does not fit {w} bits")
            acc[r] = (acc[r] << w) | v
    digits = max(1, (total + 3) // 4)
    return "\n".join(format(v, f"0{digits}x") for v in acc) + "\n"


@dataclass
class GateSim:
    """Toggle counts of one gate-level run: ``toggles[net]`` over ``cycles`` clock periods."""
    toggles: dict
    cycles: int
    period_ns: float
    specify: bool
    vcd_bytes: int


def simulate(netlist_path: Path, stim: dict, warmup: int, period_ns: float = 20.0, specify: bool = True,
             workdir: Path | None = None) -> GateSim:
    """Run the mapped netlist on Icarus with ``stim`` (port -> one int per cycle) and count toggles.

    The first ``warmup`` rows (reset, pipeline fill) are simulated but not counted; the
    counting window is the remaining rows, whole clock periods from a falling edge.
    """
    if period_ns <= 0:
        raise HdlError(f"simulation clock period must be > 0 ns, got {period_ns}")
    # whole multiples of 2 x the 10 ps time precision: Icarus rounds every #delay to 10 ps, and a
    # period it cannot represent drifts from the counting window (its first edge fell outside)
    period_ns = round(period_ns / 0.02) * 0.02
    iv, vvp = _iverilog()
    netlist_path = Path(netlist_path)
    nl = parse_netlist(netlist_path)
    models = models_for(nl, netlist_path.parent / "cells.lib")
    n_rows = len(next(iter(stim.values()))) if stim else 0
    if n_rows <= warmup:
        raise HdlError(f"stimulus has {n_rows} rows, needs more than the {warmup} warm-up rows")
    work = Path(workdir) if workdir else netlist_path.parent / "gatesim"
    work.mkdir(parents=True, exist_ok=True)
    # row r is applied at t = r * period (clk falls there; it rises at r * period + period / 2)
    t0 = warmup * period_ns
    (work / "tb.v").write_text(_tb(nl, n_rows, period_ns, t0))
    (work / "stim.hex").write_text(_stim_hex(nl, stim, n_rows))
    (work / "netlist.v").write_text("`timescale 1ns/10ps\n" + netlist_path.read_text())
    flags = ["-gspecify"] if specify else []
    r = subprocess.run([iv, "-g2005", *flags, "-o", "sim.vvp", "-s", "rf8sim_gate_tb", "tb.v", "netlist.v",
                        str(models)], cwd=work, capture_output=True, text=True)
    if r.returncode != 0:
        raise HdlError(f"iverilog failed on the gate-level netlist in {work}:\n{r.stderr[-2000:]}")
    vcd = work / "act.vcd"
    if vcd.exists():
        vcd.unlink()
    r = subprocess.run([vvp, "-n", "sim.vvp"], cwd=work, capture_output=True, text=True)
    if r.returncode != 0 or not vcd.exists():
        raise HdlError(f"vvp failed in {work}:\n{(r.stdout + r.stderr)[-2000:]}")
    cycles = n_rows - warmup
    toggles = count_toggles(vcd, t0, t0 + cycles * period_ns, scope="rf8sim_gate_tb.dut")
    size = vcd.stat().st_size
    if not os.environ.get("RF8SIM_KEEP_VCD"):
        vcd.unlink()
    return GateSim(toggles, cycles, period_ns, specify, size)


# ---------------------------------------------------------------------------- VCD
_UNITS = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0, "ps": 1e-3, "fs": 1e-6}


def count_toggles(vcd_path: Path, t_from_ns: float, t_to_ns: float, scope: str | None = None) -> dict:
    """Per-bit 0<->1 transition counts in ``[t_from_ns, t_to_ns)`` of one scope of a VCD file
    (``scope`` a dotted path such as ``"tb.dut"``; default: the top scope).

    Bits are named like the netlist: ``name`` for 1-bit variables, ``name[i]`` for the
    bits of ``name [msb:lsb]``.  Streaming: the file is read line by line once.
    Values dumped at time ``t_from_ns`` before the window opens count as its start state
    only when they happen at an earlier time stamp.
    """
    ids: dict[str, list] = {}
    scale_ns = 1.0
    stack: list[str] = []
    want = scope.split(".") if scope else None
    with open(vcd_path) as fh:
        for line in fh:
            s = line.strip()
            if s.startswith("$timescale"):
                tok = s.split()[1:] if len(s.split()) > 1 else []
                if not tok or tok[0] == "$end":
                    tok = next(fh).split()
                m = re.match(r"(\d+)\s*([munpf]?s)", " ".join(tok).replace("$end", "").strip())
                if not m:
                    raise HdlError(f"{vcd_path}: cannot read $timescale")
                scale_ns = int(m.group(1)) * _UNITS[m.group(2)]
            elif s.startswith("$scope"):
                stack.append(s.split()[2])
            elif s.startswith("$upscope"):
                stack.pop()
            elif s.startswith("$var") and (stack == want if want else len(stack) == 1):
                p = s.split()
                # $var wire 8 ! in_a [7:0] $end   /   $var wire 1 " _12_ $end
                width, code, name = int(p[2]), p[3], p[4]
                rng = p[5] if len(p) > 6 and p[5].startswith("[") else None
                if width == 1:
                    bits = [name + (rng if rng and ":" not in rng else "")]
                else:
                    msb, lsb = (int(x) for x in rng.strip("[]").split(":")) if rng else (width - 1, 0)
                    step = -1 if msb >= lsb else 1
                    bits = [f"{name}[{i}]" for i in range(msb, lsb + step, step)]
                ids.setdefault(code, []).append(bits)
            elif s.startswith("$enddefinitions"):
                break
        t_from, t_to = t_from_ns / scale_ns - 1e-6, t_to_ns / scale_ns - 1e-6
        width_of = {c: len(v[0]) for c, v in ids.items()}
        cur: dict[str, str] = {}
        cnt = {c: np.zeros(w, np.int64) for c, w in width_of.items()}
        t = 0.0
        inside = False
        for line in fh:
            c0 = line[0] if line else ""
            if c0 == "#":
                t = float(line[1:])
                inside = t_from <= t < t_to
                if t >= t_to:
                    break
                continue
            if c0 in "01xzXZ":
                code, val = line[1:].strip(), c0
            elif c0 in "bB":
                v, code = line[1:].split()
                w = width_of.get(code)
                if w is None:
                    continue
                if len(v) < w:
                    pad = v[0] if v[0] in "xzXZ" else "0"
                    v = pad * (w - len(v)) + v
                val = v
            else:
                continue  # $dumpvars / $end / real values
            if code not in width_of:
                continue
            old = cur.get(code)
            cur[code] = val
            if not inside or old is None:
                continue
            if len(val) == 1:
                if (old == "0" and val == "1") or (old == "1" and val == "0"):
                    cnt[code][0] += 1
            else:
                for i, (a, b) in enumerate(zip(old, val)):
                    if a != b and a in "01" and b in "01":
                        cnt[code][i] += 1
    out = {}
    for code, names in ids.items():
        for bits in names:
            for i, b in enumerate(bits):
                out[b] = int(cnt[code][i])
    return out


def stim_digest(stim: dict) -> str:
    """A short hash of a stimulus (port names and every value), for cache keys."""
    h = hashlib.sha256()
    for k in sorted(stim):
        h.update(k.encode() + b"=" + ",".join(str(int(x)) for x in stim[k]).encode() + b";")
    return h.hexdigest()[:16]
