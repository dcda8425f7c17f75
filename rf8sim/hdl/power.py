"""Timing, energy per MAC, TOPS/W and TOPS/mm2 of the synthesised MACs (osu018, OpenSTA, Icarus).

Flow per configuration (``ppa``):

1. ``rf8sim.hdl.synth.synthesize`` maps the unit to osu018 (``mapped.v``);
2. :func:`rf8sim.hdl.sta.timing`: critical path at the stated clock, fmax;
3. :func:`rf8sim.hdl.sta.cell_energies`: per-instance internal and switching energy per
   transition and clock-pin energy per cycle from OpenSTA ``report_power``;
4. :func:`rf8sim.hdl.gatesim.simulate`: the netlist on Icarus with the osu018 cell models
   (specify delays: glitches count) driven by an operand stream
   (:mod:`rf8sim.hdl.streams`), toggles per net from the VCD;
5. energy per cycle ``E = sum(clock-pin energy) + sum_i a_i (internal_i + switching_i) +
   leakage * T`` with ``a_i`` the measured transitions per cycle of instance i's output
   (for a flip-flop, the internal part uses the mean of its D and Q activities);
   power = E / T; energy per MAC = E / MACs per cycle (``lanes``).

TOPS/W and TOPS/mm2 count 2 operations (multiply, add) per MAC at fmax.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from .mac import HdlError

__all__ = ["ppa", "ppa_table", "ppa_rows", "energy_from_toggles", "DEFAULT_CLOCK_NS", "RECORD"]

DEFAULT_CLOCK_NS = 10.0
DEFAULT_BEATS = 2000
PRE_BEATS = 4  # stream beats simulated before counting (pipeline fill), after 2 reset cycles
RECORD = Path(__file__).resolve().parents[2] / "hdl" / "results" / "ppa.json"  # in a source checkout
POWER_VERSION = 3  # 3: pin directions read when quoted (sky130 Liberty): cached sky130 energies were clock + leakage only


def _iverilog_version() -> str:
    from ..infra.tools import iverilog_version

    return iverilog_version()


def check_clock(clock_ns) -> float:
    try:
        c = float(clock_ns)
    except (TypeError, ValueError):
        raise HdlError(f"clock period must be a number of ns > 0, got {clock_ns!r}") from None
    if not (c > 0 and np.isfinite(c)):
        raise HdlError(f"clock period must be a number of ns > 0, got {clock_ns!r}")
    return c


def stimulus(netlist, stream, reset_rows: int = 2) -> dict:
    """Port -> values per cycle for a MAC (clk/rst/in_valid/in_clear/in_a/in_w) or a product stage (a/w)."""
    lanes = stream.a.shape[1]
    widths = dict(netlist.inputs)

    def packed(codes, port):
        lw = widths[port] // lanes
        if widths[port] % lanes or int(codes.max(initial=0)) >> lw:
            raise HdlError(f"port {port} is {widths[port]} bits: does not hold {lanes} lanes of these codes")
        pack = (1 << (lw * np.arange(lanes))).astype(object)
        return [0] * reset_rows + [int(x) for x in (codes.astype(object) * pack).sum(axis=1)]

    a_port = "in_a" if "in_a" in widths else "a"
    w_port = "in_w" if "in_w" in widths else "w"
    if a_port not in widths or w_port not in widths:
        raise HdlError(f"{netlist.top} has no in_a/in_w (or a/w) input ports")
    a, w = packed(stream.a, a_port), packed(stream.w, w_port)
    n = len(a)
    stim = {}
    for name, _width in netlist.inputs:
        if name == "clk":
            continue
        if name == "rst":
            stim[name] = [1] * reset_rows + [0] * (n - reset_rows)
        elif name == "in_valid":
            stim[name] = [0] * reset_rows + [1] * (n - reset_rows)
        elif name == "in_clear":
            stim[name] = [0] * reset_rows + [int(x) for x in stream.clear]
        elif name in ("in_a", "a"):
            stim[name] = a
        elif name in ("in_w", "w"):
            stim[name] = w
        else:
            raise HdlError(f"no stimulus rule for input port {name!r} of {netlist.top}")
    return stim


def energy_from_toggles(netlist, lib_pins: dict, energies: dict, toggles: dict, cycles: int,
                        clock_ns: float, by_instance: dict | None = None) -> dict:
    """Energy per cycle and power at ``clock_ns`` from per-net toggles and OpenSTA's per-instance energies
    (``by_instance``, a dict, receives each instance's energy per cycle in J)."""
    T = check_clock(clock_ns) * 1e-9
    e_clk = e_int = e_sw = leak = 0.0
    missing = []
    inst_e = energies["instances"]
    for inst in netlist.instances:
        pins = lib_pins.get(inst.cell)
        if pins is None:
            raise HdlError(f"cell {inst.cell} of {netlist.top} is not in the Liberty file")
        e = inst_e.get(inst.name)
        if e is None:
            missing.append(inst.name)
            continue
        outs = [p for p, (d, _) in pins.items() if d == "output" and p in inst.pins]
        ins = [p for p, (d, _) in pins.items() if d == "input" and p in inst.pins and p != "CLK"]

        def act(net):
            return toggles.get(net, 0) / cycles

        a_out = float(np.mean([act(inst.pins[p]) for p in outs])) if outs else 0.0
        is_ff = "CLK" in pins
        a_int = 0.5 * (a_out + float(np.mean([act(inst.pins[p]) for p in ins]))) if is_ff and ins else a_out
        e_clk += e["clock_int_j"]
        e_int += e["int_j"] * a_int
        e_sw += e["sw_j"] * a_out
        leak += e["leak_w"]
        if by_instance is not None:
            by_instance[inst.name] = e["clock_int_j"] + e["int_j"] * a_int + e["sw_j"] * a_out + e["leak_w"] * T
    if missing:
        raise HdlError(f"OpenSTA reported no power for {len(missing)} instances (e.g. {missing[:3]})")
    e_cycle = e_clk + e_int + e_sw + leak * T
    return {"clock_ns": clock_ns, "energy_per_cycle_pj": e_cycle * 1e12,
            "internal_w": (e_clk + e_int) / T, "switching_w": e_sw / T, "leakage_w": leak,
            "total_w": e_cycle / T, "clock_pin_pj": e_clk * 1e12, "internal_data_pj": e_int * 1e12,
            "switching_pj": e_sw * 1e12, "dynamic_pj": (e_clk + e_int + e_sw) * 1e12, "leakage_w_": leak}


def _progress(msg: str, progress) -> None:
    if progress:
        from tqdm import tqdm

        tqdm.write(msg)


def ppa(a_fmt="rf8", w_fmt="rf8", acc=None, lanes: int = 1, out: str | None = None, stage: str = "mac", *,
        clock_ns: float = DEFAULT_CLOCK_NS, streams=("minilm", "random"), beats: int = DEFAULT_BEATS,
        tile: int = 32, seed: int = 0, specify: bool = True, liberty="default", use_cache: bool = True,
        synth: dict | None = None, progress: bool = False, spef: Path | None = None) -> dict:
    """Area, timing and (per stream) energy of one configuration; cached under ``build/power/``.

    ``spef``: wire parasitics of a routed netlist (``synth`` then describes the routed netlist,
    :func:`rf8sim.hdl.route.routed_ppa`); timing and switching energy include the wires."""
    from .gatesim import parse_netlist, simulate, stim_digest
    from .sta import cell_energies, liberty_pins, sta_version, timing
    from .streams import make_stream, parse_stream
    from .synth import synthesize

    clock_ns = check_clock(clock_ns)
    specs = [streams] if isinstance(streams, str) else list(streams)
    for s in specs:
        parse_stream(s)
    if not isinstance(beats, (int, np.integer)) or beats < 1:
        raise HdlError(f"beats must be a positive integer, got {beats!r}")
    if liberty is None:
        raise HdlError("timing and power need a Liberty file (drop --no-liberty)")
    sta_v = sta_version()  # fails early, naming the package, when sta is missing
    r = synth or synthesize(a_fmt, w_fmt, acc, lanes, out, stage, liberty, use_cache)
    work = Path(r["workdir"])
    netlist_p, lib_p = work / "mapped.v", work / "cells.lib"
    if not netlist_p.exists():
        raise HdlError(f"{netlist_p} missing: rerun synthesis with the current hdl/synth/liberty.ys (--no-cache)")
    nl = parse_netlist(netlist_p)
    lanes_eff = r["config"]["lanes"] if r["stage"] == "mac" else 1
    h = hashlib.sha256()
    for part in (netlist_p.read_text(), lib_p.read_text(errors="replace"), sta_v, _iverilog_version(),
                 json.dumps([clock_ns, specs, beats, tile, seed, specify, POWER_VERSION, PRE_BEATS]),
                 Path(spef).read_text() if spef else ""):
        h.update(part.encode())
    key = h.hexdigest()[:16]
    cache = work.parent.parent / "power" / f"{nl.top}-{r['stage']}-{key}.json"
    if use_cache and cache.exists():
        return {**json.loads(cache.read_text()), "cached": True}
    t0 = time.perf_counter()
    _progress(f"[ppa] {nl.top} ({r['stage']}): OpenSTA timing + cell energies", progress)
    tim = timing(lib_p, netlist_p, nl.top, clock_ns, spef=spef)
    en = cell_energies(lib_p, netlist_p, nl.top, clock_ns, spef=spef)
    pins = liberty_pins(lib_p)
    lib = r.get("liberty") or {}
    area = lib.get("area_um2")
    res = {"config": r["config"], "stage": r["stage"], "module": nl.top, "acc_label": r.get("acc_label"),
           "area_um2": area, "cells": sum(lib.get("cells", {}).values()), "macs_per_cycle": lanes_eff,
           "timing": tim, "area_x_delay_um2_ns": area * tim["critical_path_ns"] if area else None,
           "sta_totals": en["totals"], "streams": {}, "tools": {"sta": sta_v, "iverilog": _iverilog_version(),
                                                               "yosys": r.get("yosys")},
           "clock_ns": clock_ns, "beats": beats, "tile": tile, "seed": seed, "specify": specify}
    warm = 2 + PRE_BEATS
    for s in specs:
        _progress(f"[ppa] {nl.top}: stream {s}, {beats} beats gate-level (Icarus)", progress)
        st = make_stream(s, r["config"]["a_fmt"], r["config"]["w_fmt"], lanes_eff, beats + PRE_BEATS, tile, seed)
        stim = stimulus(nl, st)
        gs = simulate(netlist_p, stim, warm, period_ns=max(20.0, 2 * tim["critical_path_ns"]), specify=specify,
                      workdir=work / f"gatesim-{stim_digest(stim)}")
        e = energy_from_toggles(nl, pins, en, gs.toggles, gs.cycles, clock_ns)
        e_f = energy_from_toggles(nl, pins, en, gs.toggles, gs.cycles, tim["critical_path_ns"])
        pj_mac = e["energy_per_cycle_pj"] / lanes_eff
        pj_mac_f = e_f["energy_per_cycle_pj"] / lanes_eff
        ops_s = 2 * lanes_eff * tim["fmax_mhz"] * 1e6
        cell_nets = {inst.pins[p] for inst in nl.instances for p, (d, _) in pins[inst.cell].items()
                     if d == "output" and p in inst.pins}
        tog = sum(gs.toggles.get(n, 0) for n in cell_nets)
        res["streams"][st.name] = {
            "at_clock": e, "pj_per_mac": pj_mac, "pj_per_mac_at_fmax": pj_mac_f,
            "tops_per_w_at_fmax": 2 * lanes_eff / (e_f["energy_per_cycle_pj"] * 1e-12) / 1e12,
            "tops_per_mm2_at_fmax": ops_s / (area * 1e-6) / 1e12 if area else None,
            "cycles": gs.cycles, "cell_output_toggles_per_cycle": tog / gs.cycles, "vcd_bytes": gs.vcd_bytes}
    res["elapsed_s"] = time.perf_counter() - t0
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(res, indent=1))
    return {**res, "cached": False}


def ppa_table(streams=("minilm", "random"), clock_ns: float = DEFAULT_CLOCK_NS, beats: int = DEFAULT_BEATS,
              liberty="default", use_cache: bool = True, progress: bool = True, only=None,
              specify: bool = True) -> list[dict]:
    """PPA of every row of the area table (``rf8sim.hdl.synth.area_table``)."""
    from .synth import area_table

    rows = area_table(liberty, use_cache=use_cache, progress=progress)
    # units with the MAC ports (clk rst in_valid in_clear in_a in_w) and product stages (a, w)
    rows = [r for r in rows if r["stage"] in ("mac", "product") and (only is None or only(r))]
    out = []
    it = rows
    if progress:
        from tqdm import tqdm

        it = tqdm(rows, desc="ppa", unit="cfg")
    for r in it:
        out.append(ppa(synth=r, clock_ns=clock_ns, streams=streams, beats=beats, liberty=liberty,
                       use_cache=use_cache, progress=progress, specify=specify))
        out[-1]["acc_label"] = r.get("acc_label")
    return out


#: (a, w, acc, lanes) of the W8A16 PPA table (record hdl/results/ppa_w8a16.json): lanes-1 fp32 units, then the
#: aligned RF8 unit at lanes 4
W8A16_PPA_JOBS = (("bf16", "rf8", "fp32", 1), ("bf16", "e4m3", "fp32", 1), ("bf16", "int8", "fp32", 1),
                  ("bf16", "bf16", "fp32", 1), ("bf16", "rf8", "aligned:32:16", 4))


def ppa_w8a16_table(streams=("minilm", "random"), clock_ns: float = DEFAULT_CLOCK_NS, beats: int = 1000,
                    liberty="default", use_cache: bool = True, progress: bool = True, specify: bool = True,
                    jobs=W8A16_PPA_JOBS, beats_by_lanes: dict | None = None) -> list[dict]:
    """PPA of the W8A16 units (:data:`W8A16_PPA_JOBS`; ``beats_by_lanes`` overrides ``beats`` per lane count)."""
    from .synth import synthesize

    out = []
    for a, w, acc, lanes in jobs:
        r = synthesize(a, w, acc, lanes, None, "mac", liberty, use_cache)
        b = (beats_by_lanes or {}).get(lanes, beats)
        res = ppa(synth=r, clock_ns=clock_ns, streams=streams, beats=b, liberty=liberty, use_cache=use_cache,
                  progress=progress, specify=specify)
        res["acc_label"] = acc
        out.append(res)
    return out


def nonfinite_fraction(res: dict, stream: str) -> float:
    """Fraction of a PPA row's stream beats after which the golden model's float32 accumulator is Inf or NaN."""
    from ..golden import mac
    from .streams import make_stream

    c = res["config"]
    st = make_stream(stream, c["a_fmt"], c["w_fmt"], c["lanes"], res["beats"] + PRE_BEATS, res["tile"], res["seed"])
    t = mac(st.a, st.w, st.clear.astype(bool), c["a_fmt"], c["w_fmt"], res["acc_label"])
    acc = np.asarray(t.acc).astype(np.uint32).ravel()[PRE_BEATS:]
    return float((((acc >> 23) & 0xFF) == 0xFF).mean())


def w8a16_ppa_record(rows: list[dict]) -> dict:
    """The payload of ``hdl/results/ppa_w8a16.json``: :func:`table_record` plus beats per row and how often
    the golden accumulator is Inf/NaN on each stream."""
    payload = table_record(rows)
    payload["kind"] = "hdl-ppa-w8a16"
    for r, slim in zip(rows, payload["rows"]):
        slim["beats"] = r["beats"]
        for k in slim["streams"]:
            slim["streams"][k]["nonfinite_acc_fraction"] = nonfinite_fraction(r, k)
    return payload


def acc_text(c: dict) -> str:
    """``FRAC:WIDTH`` of a config description (or its own ``acc`` label, e.g. for W8A16 units)."""
    if "acc_frac_bits" in c and "acc_width" in c:
        return f"{c['acc_frac_bits']}:{c['acc_width']}"
    return str(c.get("acc", "?"))


def table_record(rows: list[dict], command: str | None = None) -> dict:
    """The payload of ``hdl/results/ppa.json``."""
    slim = []
    for r in rows:
        c = r["config"]
        slim.append({
            "a_fmt": c["a_fmt"], "w_fmt": c["w_fmt"], "acc": acc_text(c),
            "acc_label": r.get("acc_label"), "lanes": c["lanes"], "stage": r["stage"], "module": r["module"],
            "area_um2": r["area_um2"], "cells": r["cells"], "macs_per_cycle": r["macs_per_cycle"],
            "critical_path_ns": r["timing"]["critical_path_ns"], "slack_ns": r["timing"]["slack_ns"],
            "fmax_mhz": r["timing"]["fmax_mhz"], "area_x_delay_um2_ns": r["area_x_delay_um2_ns"],
            "streams": {k: {"pj_per_mac": v["pj_per_mac"], "pj_per_mac_at_fmax": v["pj_per_mac_at_fmax"],
                            "tops_per_w_at_fmax": v["tops_per_w_at_fmax"],
                            "tops_per_mm2_at_fmax": v["tops_per_mm2_at_fmax"],
                            "internal_w": v["at_clock"]["internal_w"], "switching_w": v["at_clock"]["switching_w"],
                            "leakage_w": v["at_clock"]["leakage_w"], "total_w": v["at_clock"]["total_w"],
                            "cell_output_toggles_per_cycle": v["cell_output_toggles_per_cycle"]}
                        for k, v in r["streams"].items()},
        })
    first = rows[0] if rows else {}
    return {"kind": "hdl-ppa", "clock_ns": first.get("clock_ns"), "beats": first.get("beats"),
            "tile": first.get("tile"), "specify": first.get("specify"), "tools": first.get("tools"),
            "rows": slim}


def ppa_rows(path: Path | None = None) -> list[dict]:
    """For the flow's accuracy-vs-cost plot: one dict per recorded configuration with
    ``a_fmt, w_fmt, acc, lanes, stage, area_um2, critical_path_ns, fmax_mhz, area_x_delay_um2_ns,
    pj_per_mac_minilm, pj_per_mac_random`` from the checked-in ``hdl/results/ppa.json``."""
    p = Path(path) if path else RECORD
    if not p.exists():
        raise HdlError(f"no PPA record at {p} (it is part of a source checkout, not of an installed copy): "
                       f"pass its path, or run `rf8sim synth --table --timing --power --record FILE`")
    rec = json.loads(p.read_text())
    out = []
    for r in rec["rows"]:
        d = {k: r[k] for k in ("a_fmt", "w_fmt", "acc", "acc_label", "lanes", "stage", "area_um2",
                               "critical_path_ns", "fmax_mhz", "area_x_delay_um2_ns")}
        for s, v in r["streams"].items():
            d[f"pj_per_mac_{s}"] = v["pj_per_mac"]
        out.append(d)
    return out


def map_to_cells(verilog: str, top: str, workdir: Path, liberty="default") -> Path:
    """Synthesise any Verilog module with the same ``hdl/synth/liberty.ys`` flow; returns ``mapped.v``
    (``cells.lib`` beside it).  Used by the energy-flow checks on small known circuits."""
    import shutil

    from .synth import _run_yosys, _script, default_liberty

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    lib = default_liberty() if liberty == "default" else Path(liberty)
    shutil.copyfile(lib, work / "cells.lib")
    (work / "design.v").write_text(verilog)
    _run_yosys(work, _script("liberty.ys", top=top), "liberty")
    return work / "mapped.v"
