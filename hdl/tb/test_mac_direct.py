"""cocotb test: drive the generated MAC's own ports from Python, beat by beat.

This is the slow, transparent counterpart of test_mac_stream: no wrapper, the DUT is
the toplevel, on each falling edge the outputs (the state after the rising edge just
passed) are sampled and then the next beat is driven, and every out_valid beat is compared with the independent Python reference.
"""

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


@cocotb.test()
async def direct(dut):
    from rf8sim.hdl.reference import fp32_rne_bits, trace
    from rf8sim.hdl.spec import MacSpec
    from rf8sim.hdl.stimulus import random_stream

    meta = json.loads(os.environ["RF8SIM_TB_META"])
    cfg = MacSpec.make(meta["a_fmt"], meta["w_fmt"], meta["acc"], meta["lanes"], meta["out"])
    s = random_stream(cfg, meta["sequences"], meta["seed"], meta["max_len"])
    exp_acc, exp_ovf, exp_inv = trace(cfg, s.a, s.w, s.clear)
    W = cfg.acc.width
    Clock(dut.clk, 10, unit="ns", impl="gpi").start()
    dut.rst.value = 1
    dut.in_valid.value = 0
    dut.in_clear.value = 0
    dut.in_a.value = 0
    dut.in_w.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    shifts = 8 * np.arange(cfg.lanes, dtype=object)
    a_words = [int(sum(int(c) << int(k) for c, k in zip(row, shifts))) for row in s.a]
    w_words = [int(sum(int(c) << int(k) for c, k in zip(row, shifts))) for row in s.w]
    got, issued, cycle, first_in, first_out = [], 0, 0, None, None
    n = len(s.clear)
    t0 = time.perf_counter()
    while len(got) < n:
        await FallingEdge(dut.clk)
        # sample first: the outputs hold the state after the rising edge just passed
        if int(dut.out_valid.value):
            if first_out is None:
                first_out = cycle
            acc = int(dut.out_acc.value)
            acc = acc - (1 << W) if acc >> (W - 1) else acc
            row = [acc, int(dut.out_overflow.value), int(dut.out_invalid.value)]
            if cfg.has_fp32_port:
                row.append(int(dut.out_fp32.value))
            got.append(row)
        # then drive the next beat, sampled by the coming rising edge
        if issued < n and s.gap[issued] > 0:
            s.gap[issued] -= 1
            dut.in_valid.value = 0
        elif issued < n:
            dut.in_valid.value = 1
            dut.in_clear.value = int(s.clear[issued])
            dut.in_a.value = a_words[issued]
            dut.in_w.value = w_words[issued]
            if first_in is None:
                first_in = cycle
            issued += 1
        else:
            dut.in_valid.value = 0
        cycle += 1
        assert cycle < 20 * n + 100, "the MAC stopped producing out_valid beats"
    loop_s = time.perf_counter() - t0
    bad = 0
    for k, row in enumerate(got):
        ok = row[0] == exp_acc[k] and bool(row[1]) == exp_ovf[k] and bool(row[2]) == exp_inv[k]
        if cfg.has_fp32_port:
            ok = ok and row[3] == fp32_rne_bits(exp_acc[k], cfg.acc.frac_bits)
        if not ok and bad < 5:
            dut._log.error("beat %d: got %s, expected acc=%d ovf=%s inv=%s", k, row, exp_acc[k], exp_ovf[k], exp_inv[k])
        bad += not ok
    with open(meta["summary"], "w") as fh:
        json.dump({"compared_beats": len(got), "mismatched_beats": bad,
                   "latency": first_out - first_in, "loop_s": loop_s, "overflow_beats": int(exp_ovf.sum()),
                   "invalid_beats": int(exp_inv.sum())}, fh)
    assert len(got) == n
    assert first_out - first_in == meta["latency"], f"latency {first_out - first_in}, generator says {meta['latency']}"
    assert bad == 0, f"{bad} of {n} beats differ from the reference"
