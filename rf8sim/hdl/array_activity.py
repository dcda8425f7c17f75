"""How fast, and how right, the gate-level activity of a PE array is (``rf8sim array activity``).

Issue 19 asks for the gate-level activity of >= 10,000 clocks of a real MiniLM tile on the 8x8 array
in <= 10 minutes, by a method validated against the delay-annotated Icarus run. The method is
:mod:`rf8sim.hdl.activity` (zero-delay evaluation of the mapped netlist, glitches added back by a
level model fitted on the MAC units, ``hdl/results/activity_calibration.json``). This module

* **times it** (:func:`bench`): the array's cached netlist (synthesis is not part of the benchmark),
  a real MiniLM tile of at least ``cycles`` clocks (:func:`rf8sim.hdl.array_cost.tile_operands`),
  then the timed stages of :func:`rf8sim.hdl.array_cost.array_energy`: schedule and stimulus,
  netlist compilation, the zero-delay run, the glitch model, the energy sum (OpenSTA's cell
  energies, cached per netlist); printed and recorded with the machine's load, never asserted in a test;
* **checks it on an array** (:func:`check`): the glitch model was fitted on single MACs only; a
  small array of the same kind (not in the fit) runs the same real tile on Icarus with the cells'
  delays and without, and the fast method's energy (zero-delay alone, and x the glitch model) is
  compared with the delay-annotated reference; the fast zero-delay counts are compared net by net
  with Icarus's zero-delay counts.

The record is ``hdl/results/array_activity.json``; docs/hdl.md's block ``hdl:array-activity`` is
rendered from it together with the calibration record's leave-one-unit-out errors.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from .mac import HdlError

__all__ = ["bench", "check", "RECORD", "GOAL_S", "GOAL_CYCLES", "render"]

RECORD = "hdl/results/array_activity.json"
#: issue 19 item 7: >= 10,000 clocks of a real tile on the 8x8 array in <= 10 minutes
GOAL_S = 600.0
GOAL_CYCLES = 10_000


def bench(cfg, cycles: int = GOAL_CYCLES, clock_ns: float = 10.0, liberty="default",
          use_cache: bool = True) -> dict:
    """Wall clock of the activity (and energy) of a real MiniLM tile of >= ``cycles`` clocks on ``cfg``."""
    from .array_cost import array_energy, synth_array, tile_operands

    if cycles < 1:
        raise HdlError(f"--cycles must be >= 1, got {cycles}")
    t0 = time.perf_counter()
    syn = synth_array(cfg, liberty, use_cache)
    synth_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    a, w, info = tile_operands(cfg, target_cycles=cycles)
    tile_s = time.perf_counter() - t0
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    en = array_energy(cfg, syn, a, w, info, clock_ns)
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    act = en["activity"]
    activity_s = act["stimulus_s"] + act["compile_s"] + act["sim_s"] + act["glitch_s"]
    return {"config": cfg.describe(), "module": syn["module"], "cells": act["cells"], "nets": act["nets"],
            "synth_cached": bool(syn.get("cached")), "synth_s_this_run": synth_s, "tile": en["tile"],
            "cycles": en["cycles"], "macs": en["schedule"]["macs"], "tile_load_s": tile_s,
            "stimulus_s": act["stimulus_s"], "compile_s": act["compile_s"], "sim_s": act["sim_s"],
            "glitch_s": act["glitch_s"], "energy_s": act["energy_s"], "activity_s": activity_s,
            "energy_wall_s": wall, "cell_cycles_per_s": act["cells"] * en["cycles"] / act["sim_s"],
            "goal_s": GOAL_S, "goal_cycles": GOAL_CYCLES,
            "met": bool(en["cycles"] >= GOAL_CYCLES and wall <= GOAL_S and (cfg.rows, cfg.cols) == (8, 8)),
            "pj_per_mac": en["pj_per_mac"], "clock_ns": clock_ns, "load_average": [load0, load1]}


def _ints(bits: np.ndarray) -> list:
    """Rows of a (rows, width) bit array as Python ints (bit 0 first), for the Icarus stimulus file."""
    return [int("".join("1" if x else "0" for x in row[::-1]) or "0", 2) for row in np.asarray(bits)]


def check(cfg, cycles: int = 1000, clock_ns: float = 10.0, liberty="default", use_cache: bool = True) -> dict:
    """The fast method against Icarus on ``cfg`` (a small array): the same real tile of >= ``cycles``
    clocks with the cells' delays (the reference) and without; energies and per-net exactness."""
    from .activity import compile_netlist, dynamic_pj, load_glitch_model, net_levels, net_weights, simulate_fast
    from .array_cost import RESET_ROWS, _cell_energies, array_timing, synth_array, tile_netlist_stimulus, tile_operands
    from .gatesim import simulate
    from .sta import liberty_pins

    syn = synth_array(cfg, liberty, use_cache)
    work = Path(syn["workdir"])
    tim = array_timing(syn, clock_ns)
    a, w, info = tile_operands(cfg, target_cycles=cycles)
    sched, nl, stim = tile_netlist_stimulus(cfg, work, a, w)
    t0 = time.perf_counter()
    comp = compile_netlist(work / "mapped.v", work / "cells.lib")
    gf = simulate_fast(comp, stim, RESET_ROWS)
    fast_s = time.perf_counter() - t0
    ints = {p: _ints(b) for p, b in stim.items()}
    period = max(20.0, 2 * tim["critical_path_ns"])  # every glitch settles inside the period (as the calibration)
    t0 = time.perf_counter()
    gd = simulate(work / "mapped.v", ints, RESET_ROWS, period_ns=period, specify=True, workdir=work / "act-delay")
    delay_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    gz = simulate(work / "mapped.v", ints, RESET_ROWS, period_ns=period, specify=False, workdir=work / "act-zero")
    zero_s = time.perf_counter() - t0
    if not gd.cycles == gz.cycles == gf.cycles:
        raise HdlError(f"cycle windows differ: Icarus {gd.cycles} / {gz.cycles}, fast {gf.cycles}")
    en = _cell_energies(syn, clock_ns)
    weights = net_weights(nl, liberty_pins(work / "cells.lib"), en)
    model = load_glitch_model()
    cyc = gf.cycles
    static = sum(e["clock_int_j"] + e["leak_w"] * clock_ns * 1e-9 for e in en["instances"].values()) * 1e12
    e_delay = dynamic_pj(weights, gd.toggles, cyc)
    e_zero = dynamic_pj(weights, gf.toggles, cyc)
    e_model = dynamic_pj(weights, model.apply(gf.toggles, net_levels(comp)), cyc)
    nets = set(gz.toggles) | set(gf.toggles)
    mism = sum(1 for n in nets if gz.toggles.get(n, 0) != gf.toggles.get(n, 0))
    tot = e_delay + static

    def err(e):
        return 100 * (e + static - tot) / tot

    return {"config": cfg.describe(), "module": syn["module"], "cells": len(nl.instances), "tile": info,
            "cycles": cyc, "period_ns": period, "critical_path_ns": tim["critical_path_ns"],
            "nets_compared": len(nets), "nets_mismatched": mism,
            "dynamic_pj_delay": e_delay, "dynamic_pj_zero": e_zero, "dynamic_pj_model": e_model, "static_pj": static,
            "glitch_ratio": e_delay / e_zero if e_zero else None,
            "err_zero_pct": err(e_zero), "err_model_pct": err(e_model),
            "icarus_delay_s": delay_s, "icarus_zero_s": zero_s, "fast_s": fast_s}


# ---------------------------------------------------------------------------- docs
def render() -> str:
    """docs/hdl.md block ``hdl:array-activity``: the benchmark and the array check, with the calibration's errors."""
    from ..infra.docgen import load_record, record_head

    how = "rf8sim array activity --record " + RECORD
    rec = load_record(RECORD, "hdl-array-activity", how)
    cal = load_record("hdl/results/activity_calibration.json", "hdl-activity-calibration",
                      "python -m rf8sim.hdl.activity --record hdl/results/activity_calibration.json")
    prov = rec["provenance"]
    b = rec["bench"]
    c = b["config"]
    edge = ", registered edge adder" if c.get("edge_stages") else ""
    lo, hi = b["load_average"]
    lines = [record_head(prov) + f", load average {lo:.1f} at the start and {hi:.1f} at the end (a shared machine).", "",
             "| array | cells | real tile (layer, M×K×N) | clocks | schedule + stimulus s | netlist compile s | "
             "zero-delay run s | glitch model s | activity s (goal ≤ 600) | with the energy sum s | "
             "M cell-clocks/s | goal met |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    t = b["tile"]
    lines.append(f"| {c['rows']}×{c['cols']} {c['a_fmt']} × {c['w_fmt']} `{c['acc']}`{edge} | {b['cells']:,} | "
                 f"{t['layer']}, {t['M']}×{t['K']}×{t['N']} | {b['cycles']:,} | {b['stimulus_s']:.1f} | "
                 f"{b['compile_s']:.1f} | {b['sim_s']:.1f} | {b['glitch_s']:.1f} | {b['activity_s']:.1f} | "
                 f"{b['energy_wall_s']:.1f} | {b['cell_cycles_per_s'] / 1e6:.1f} | {'yes' if b['met'] else 'no'} |")
    loo = [r["err_loo_pct"] for r in cal["rows"]]
    lines += ["", f"The error of the method: fitted on {len(cal['rows'])} MAC units, the glitch model's energy error "
              f"against Icarus with cell delays lies between {min(loo):+.1f} % and {max(loo):+.1f} % with each unit "
              "left out of the fit (rms "
              f"{float(np.sqrt(np.mean(np.square(loo)))):.1f} %; the activity calibration above).", ""]
    k = rec.get("check")
    if k:
        kc = k["config"]
        kedge = ", registered edge adder" if kc.get("edge_stages") else ""
        kt = k["tile"]
        lines += [f"On an array, which the fit never saw: the {kc['rows']}×{kc['cols']} {kc['a_fmt']} × "
                  f"{kc['w_fmt']} `{kc['acc']}`{kedge} array ({k['cells']:,} cells) on a real tile ({kt['layer']}, "
                  f"{kt['M']}×{kt['K']}×{kt['N']}, {k['cycles']:,} clocks) against Icarus with the cells' delays "
                  f"(period {k['period_ns']:.0f} ns): zero-delay alone {k['err_zero_pct']:+.1f} %, with the glitch "
                  f"model {k['err_model_pct']:+.1f} % in energy per clock (glitching ×{k['glitch_ratio']:.2f} the "
                  f"zero-delay dynamic energy); the fast zero-delay counts equal Icarus's zero-delay counts on "
                  f"{k['nets_compared'] - k['nets_mismatched']:,} of {k['nets_compared']:,} nets. Icarus took "
                  f"{k['icarus_delay_s']:.0f} s with delays for these {k['cycles']:,} clocks, the fast method "
                  f"{k['fast_s']:.1f} s (compilation included); at Icarus's rate on this check "
                  f"({k['cells'] * k['cycles'] / k['icarus_delay_s'] / 1e6:.2f} M cell-clocks/s) the 8×8 tile above "
                  f"would take about {b['cells'] * b['cycles'] / (k['cells'] * k['cycles'] / k['icarus_delay_s']) / 60:.0f}"
                  " min (an estimate, not run)."]
    else:
        lines += ["No array-level check against Icarus is in this record (`--check-size none`)."]
    return "\n".join(lines) + "\n"

