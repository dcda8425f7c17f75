"""cocotb test: stream a stimulus file through mac_tb at one beat per clock.

The wrapper (mac_tb.v) reads the beats and writes the outputs itself; this test owns
the clock and reset, waits for the end of the stream and checks that every beat
came out, with the latency the generator reported.  The bit-for-bit comparison of
the results file against the golden model is done in bulk by the caller
(rf8sim.hdl.sim), which wrote the stimulus.
"""

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, Timer


@cocotb.test()
async def stream(dut):
    meta = json.loads(os.environ["RF8SIM_TB_META"])
    dut.start.value = 0
    if meta.get("internal_clock"):  # the wrapper makes clk and a 3-cycle reset
        await Timer(40, unit="ns")
    else:
        Clock(dut.clk, 10, unit="ns", impl="gpi").start()
        dut.rst.value = 1
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
    t0 = time.perf_counter()
    dut.start.value = 1
    await RisingEdge(dut.done)
    loop_s = time.perf_counter() - t0
    n_in, n_out, latency = int(dut.n_in.value), int(dut.n_out.value), int(dut.latency.value)
    with open(meta["summary"], "w") as fh:
        json.dump({"n_in": n_in, "n_out": n_out, "latency": latency, "loop_s": loop_s}, fh)
    assert n_in == meta["beats"], f"fed {n_in} beats, stimulus has {meta['beats']}"
    assert n_out == n_in, f"{n_in} beats in, {n_out} out"
    assert latency == meta["latency"], f"measured latency {latency}, generator says {meta['latency']}"
