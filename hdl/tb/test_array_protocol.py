"""cocotb protocol test of the PE array: drive its own ports from Python, clock by clock.

Two weight tiles back to back with the double-buffer timing of rf8sim.hdl.schedule: tile A is
loaded (R clocks, row R-1 first), its vectors stream with ``swap`` on the first, tile B's
weights shift in while tile A computes (from ``R + C - 1`` clocks after A's swap; with
``early`` one clock sooner, which the protocol forbids), then tile B's vectors stream.  Checks:
every column emits exactly one output per vector, column c's output for the vector driven at
clock t is registered ``latency + c`` clocks later, and the values equal rf8sim.golden.gemm
(the array's order).  The summary goes to the JSON file named in the metadata.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


@cocotb.test()
async def protocol(dut):
    import rf8sim.golden as G
    from rf8sim.hdl.array import ArrayConfig

    meta = json.loads(os.environ["RF8SIM_TB_META"])
    cfg = ArrayConfig.make(meta["a_fmt"], meta["w_fmt"], meta["acc"], meta["rows"], meta["cols"], meta["depth"])
    R, C, V = cfg.rows, cfg.cols, meta["vectors"]
    rng = np.random.default_rng(meta["seed"])
    a = [rng.integers(0, 256, (V, R), dtype=np.uint8) for _ in range(2)]
    w = [rng.integers(0, 256, (C, R), dtype=np.uint8) for _ in range(2)]
    exp = [G.gemm(a[t], w[t], cfg.a_fmt, cfg.w_fmt, cfg.golden_acc()) for t in range(2)]
    T0 = R - 1
    L1 = T0 + cfg.load_gap - (1 if meta["early"] else 0)
    T1 = max(L1 + R - 1, T0 + V)
    drive = {}
    for r in range(R):                                 # tile A's load, then B's
        drive.setdefault(r, {})["w"] = (0, R - 1 - r)
        drive.setdefault(L1 + r, {})["w"] = (1, R - 1 - r)
    for t, T in ((0, T0), (1, T1)):
        for i in range(V):
            drive.setdefault(T + i, {})["v"] = (t, i)
    end = T1 + V + cfg.latency + C + 2
    Clock(dut.clk, 10, unit="ns", impl="gpi").start()
    for name in ("in_valid", "in_swap", "in_clear", "in_last", "in_addr", "in_a", "in_wload", "in_w"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    got = [[] for _ in range(C)]
    W = cfg.out_width
    for clock in range(end):
        # outputs now hold what the rising edge of clock - 1 registered
        if clock:
            ov = int(dut.out_valid.value)
            for c in range(C):   # (out_acc is undefined in columns without out_valid)
                if ov >> c & 1:
                    v = int(dut.out_acc.value[W * c + W - 1:W * c])
                    got[c].append((clock - 1, v - (1 << W) if v >> (W - 1) else v,
                                   int(dut.out_overflow.value[c])))
        d = drive.get(clock, {})
        if "w" in d:
            t, r = d["w"]
            dut.in_wload.value = 1
            dut.in_w.value = sum(int(w[t][c, r]) << (8 * c) for c in range(C))
        else:
            dut.in_wload.value = 0
        if "v" in d:
            t, i = d["v"]
            dut.in_valid.value = 1
            dut.in_swap.value = int(i == 0)
            dut.in_clear.value = 1
            dut.in_last.value = 1
            dut.in_addr.value = i
            dut.in_a.value = sum(int(a[t][i, r]) << (8 * r) for r in range(R))
        else:
            dut.in_valid.value = 0
            dut.in_swap.value = 0
        await FallingEdge(dut.clk)
    starts = (T0, T1)
    timing_bad = value_bad = 0
    for c in range(C):
        for k, (edge, v, o) in enumerate(got[c]):
            t, i = divmod(k, V)
            if edge != starts[t] + i + cfg.latency - 1 + c:
                timing_bad += 1
            if v != int(exp[t].acc[i, c]) or bool(o) != bool(exp[t].overflow[i, c]):
                value_bad += 1
    summary = {"outputs": [len(g) for g in got], "expected_per_column": 2 * V, "timing_mismatches": timing_bad,
               "value_mismatches": value_bad, "load_start_b": L1, "tile_b_start": T1}
    with open(meta["summary"], "w") as fh:
        json.dump(summary, fh)
