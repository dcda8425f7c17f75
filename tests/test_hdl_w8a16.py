"""The float-accumulator units (16-bit float activations; fp32 and aligned:K:M accumulators), bit for bit.

* Amaranth simulator: the generated units against the independent Fraction reference
  (:mod:`rf8sim.hdl.reference`), the exact float32 adder on hand-picked edges;
* the reference against the golden model; bad specs.

Their Verilog, Icarus/Verilator runs, SAT proofs and synthesis are tested with the 8-bit units'
(tests/test_hdl_verilog.py, test_hdl_sim.py, test_hdl_formal.py, test_hdl_synth.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from rf8sim.hdl import HdlError, MacSpec, make_unit
from rf8sim.hdl.reference import INF32, NAN32, _add, f32_value, mac_aligned_reference, mac_fp32_reference, rne_f32
from rf8sim.hdl.stimulus import random_stream
from rf8sim.hdl.w8a16 import AlignedMacUnit, Fp32Add, Fp32MacUnit


def _run(unit, s):
    """Drive a W8A16 unit in Amaranth's simulator (idle cycles included); (outputs, latency)."""
    c = unit.spec
    wb = c.w_bits
    wa = [sum(int(x) << (16 * i) for i, x in enumerate(r)) for r in s.a]
    ww = [sum(int(x) << (wb * i) for i, x in enumerate(r)) for r in s.w]
    got, lat = [], []
    n = len(s)

    async def tb(ctx):
        cycle, issued, first = 0, 0, None
        gaps = s.gap.astype(int).tolist()
        while len(got) < n:
            if issued < n and gaps[issued] == 0:
                ctx.set(unit.in_valid, 1)
                ctx.set(unit.in_clear, int(s.clear[issued]))
                ctx.set(unit.in_a, wa[issued])
                ctx.set(unit.in_w, ww[issued])
                first = cycle if first is None else first
                issued += 1
            else:
                if issued < n:
                    gaps[issued] -= 1
                ctx.set(unit.in_valid, 0)
            await ctx.tick()
            cycle += 1
            if ctx.get(unit.out_valid):
                if not lat:
                    lat.append(cycle - first)
                got.append((ctx.get(unit.out_acc), ctx.get(unit.out_overflow), ctx.get(unit.out_invalid)))
            assert cycle < 20 * n + 200, "the unit stopped producing out_valid beats"

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return np.array(got, np.int64), lat[0]


@pytest.mark.parametrize("a,w,acc,lanes,nseq", [
    ("bf16", "rf8", "fp32", 1, 40),
    ("fp16", "e4m3", "fp32", 3, 30),
    ("bf16", "bf16", "fp32", 2, 30),
    ("fp16", "int8", "fp32", 1, 40),
    ("bf16", "rf8", "aligned:8:16", 4, 30),
    ("fp16", "rf8", "aligned:3:2", 1, 30),     # M = 2: activations become -1, 0, 1
    ("bf16", "int8", "aligned:6:5", 3, 30),
    ("fp16", "e5m2", "aligned:4:24", 2, 30),
])
def test_unit_matches_fraction_reference(a, w, acc, lanes, nseq):
    c = MacSpec.make(a, w, acc, lanes)
    unit = make_unit(c)
    assert type(unit) is (Fp32MacUnit if c.kind == "fp32" else AlignedMacUnit)
    s = random_stream(c, nseq, seed=3, max_len=48)
    got, lat = _run(unit, s)
    if c.kind == "fp32":
        ea, eo, ei = mac_fp32_reference(s.a, s.w, s.clear, a, w)
    else:
        ea, eo, ei = mac_aligned_reference(s.a, s.w, s.clear, a, w, c.acc.block, c.acc.align_bits)
    assert len(got) == len(s) == len(ea) and len(s) >= 30
    bad = (got[:, 0] != ea) | (got[:, 1] != eo) | (got[:, 2] != ei)
    assert int(bad.sum()) == 0, f"{int(bad.sum())} of {len(s)} beats differ; first {int(np.flatnonzero(bad)[0])}"
    assert lat == c.latency
    assert ei.any()                                  # NaN/Inf reached the unit
    finite = [f32_value(int(x))[0] == "num" for x in ea]
    assert sum(finite) > len(s) // 4                 # and most traces stay finite


# edges of the float32 adder: (acc bits, x sign, x magnitude, x exponent) with x = (-1)**s * m * 2**e
_EDGES = [
    (0x80000000, 1, 0, 0),            # -0 + -0 = -0
    (0x80000000, 0, 0, 0),            # -0 + +0 = +0
    (0x3F800000, 1, 1, 0),            # 1 - 1 = +0 (exact cancellation)
    (0xBF800000, 0, 1, 0),            # -1 + 1 = +0
    (0x00000001, 1, 1, -149),         # smallest subnormal cancels
    (0x00000001, 0, 1, -150),         # tie at the subnormal LSB: 2**-149 + 2**-150 -> even (2**-148)
    (0x00000000, 0, 1, -150),         # 2**-150 alone: tie to even -> +0
    (0x00000000, 1, 3, -151),         # -0.75 * 2**-149 -> -2**-149
    (0x00000000, 1, 1, -151),         # -2**-151 -> -0 (sign kept)
    (0x007FFFFF, 0, 1, -149),         # largest subnormal + LSB -> smallest normal
    (0x7F7FFFFF, 0, 1, 103),          # max + half ulp: tie, max is odd -> Inf, overflow
    (0x7F7FFFFF, 0, 1, 102),          # max + quarter ulp -> max
    (0x7F7FFFFF, 1, 1, 128),          # max - 2**128 -> -(2**128 - max) = -2**104
    (0x4B800000, 0, 1, 0),            # 2**24 + 1: tie -> 2**24
    (0x4B800000, 0, 3, 0),            # 2**24 + 3 -> 2**24 + 4
    (0x4B800001, 1, 1, -30),          # just below a tie in subtraction
    (0x3F800000, 1, (1 << 19) - 1, -19),  # catastrophic: 1 - (1 - 2**-19)
    (0x7F800000, 1, 5, 300),          # Inf + finite = Inf
    (0x00000000, 0, (1 << 19) - 1, 250),  # a product far beyond float32 -> Inf, overflow
    (0x00000000, 0, 1, -300),         # far below -> +0
    (0x5F000000, 1, 1, 63),           # 2**63 - 2**63
]


def test_fp32_adder_edges_and_random_against_fraction_rounding():
    rng = np.random.default_rng(11)
    cases = list(_EDGES)
    for _ in range(1500):
        e_acc = int(rng.integers(0, 255))
        acc = (int(rng.integers(0, 2)) << 31) | (e_acc << 23) | int(rng.integers(0, 1 << 23))
        m = int(rng.integers(0, 1 << 19)) >> int(rng.integers(0, 19))
        e = e_acc - 150 + int(rng.integers(-30, 10))       # near the accumulator: cancellation, ties
        cases.append((acc, int(rng.integers(0, 2)), m, e))
    dut = Fp32Add(19, 11)
    got = []

    async def tb(ctx):
        for acc, s, m, e in cases:
            ctx.set(dut.acc, acc)
            ctx.set(dut.xs, s)
            ctx.set(dut.xm, m)
            ctx.set(dut.xe, e)
            got.append((ctx.get(dut.res), ctx.get(dut.ovf), ctx.get(dut.inv)))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    from fractions import Fraction

    exp = []
    for acc, s, m, e in cases:
        v = Fraction(m) * Fraction(2) ** e
        r = _add(acc, "num", s, -v if s else v)
        exp.append((r[0], int(r[1]), int(r[2])))
    assert len(got) == len(exp) == len(_EDGES) + 1500
    bad = [(c, g, x) for c, g, x in zip(cases, got, exp) if g != x]
    assert not bad, bad[:5]
    # the hand-written expectations hold (the reference itself is checked here)
    assert exp[0][0] == 0x80000000 and exp[1][0] == 0 and exp[2][0] == 0 and exp[8][0] == 0x80000000
    assert exp[5][0] == 2 and exp[6][0] == 0 and exp[7][0] == 0x80000001 and exp[9][0] == 0x00800000
    assert exp[10] == (INF32, 1, 0) and exp[11][0] == 0x7F7FFFFF and exp[13][0] == 0x4B800000
    assert exp[14][0] == 0x4B800002 and exp[17][0] == INF32 and exp[18] == (INF32, 1, 0)


def test_rne_f32_against_numpy_casts():
    """The reference's rounding equals numpy's float64 -> float32 cast where float64 holds the value exactly."""
    from fractions import Fraction

    rng = np.random.default_rng(5)
    x = rng.standard_normal(3000) * np.exp2(rng.integers(-160, 130, 3000))
    x = np.concatenate([x, [0.0, 2.0 ** -149, 2.0 ** -150, 3 * 2.0 ** -151, 3.4028235677973366e38]])
    ours = np.array([rne_f32(Fraction(float(v)))[0] for v in x], np.uint32)
    with np.errstate(over="ignore"):
        theirs = x.astype(np.float32).view(np.uint32)
    assert len(ours) == 3005
    assert np.array_equal(ours, theirs)


def test_specials_in_the_reference():
    nan_a, inf_a = 0x7FC0, 0x7F80
    for kind, codes, exp_inv in (("nan", [nan_a], True), ("inf*0", [inf_a], True), ("inf*1", [inf_a], False)):
        w = np.array([0x00 if kind == "inf*0" else 0x38], np.uint8)   # rf8 0x38 = 1.0
        acc, ovf, inv = mac_fp32_reference(np.array(codes, np.uint16), w, np.array([True]), "bf16", "rf8")
        assert bool(inv[0]) == exp_inv
        assert acc[0] == (NAN32 if exp_inv else INF32)


@pytest.mark.parametrize("kw,msg", [
    (dict(a="bf16", w="rf8", acc="exact"), "fp32' or 'aligned:K:M"),
    (dict(a="bf16", w="rf8", acc="aligned:30:16", lanes=4), "multiple of lanes"),
    (dict(a="bf16", w="rf8", acc="aligned:32:25"), "2 <= M <= 24"),
    (dict(a="bf16", w="rf8", acc="aligned:32:1"), "2 <= M <= 24"),
    (dict(a="bf16", w="rf8", acc="aligned:8192:16"), "1 <= K <= 4096"),
    (dict(a="bf16", w="fp16", acc="fp32"), "16-bit weights are bf16"),
    (dict(a="bf16", w="nope", acc="fp32"), "rf8, e4m3, e5m2, int8, bf16"),
    (dict(a="rf8", w="rf8", acc="fp32"), "bf16, fp16"),
    (dict(a="bf16", w="rf8", acc="fp64"), "fp32', 'aligned:K:M'"),
    (dict(a="bf16", w="rf8", acc="fp32", lanes=0), "lanes must be"),
    (dict(a="bf16", w="rf8", acc="fp32", result="fixed"), "needs a fixed-point accumulator"),
])
def test_bad_parameters(kw, msg):
    from rf8sim.errors import RF8SimError

    with pytest.raises(RF8SimError, match=msg.replace("(", r"\(")):
        MacSpec.make(**kw)
    with pytest.raises(HdlError, match="make_unit takes a MacSpec"):
        make_unit(kw)


def test_units_refuse_the_other_datapath():
    with pytest.raises(HdlError, match="builds the aligned accumulator"):
        AlignedMacUnit(MacSpec.make("bf16", "rf8", "fp32"))
    with pytest.raises(HdlError, match="builds the fp32 accumulator"):
        Fp32MacUnit(MacSpec.make("bf16", "rf8", "aligned:4:8"))
    with pytest.warns(DeprecationWarning, match="MacSpec"):  # the older field-by-field form still works
        u = Fp32MacUnit("bf16", "rf8", "fp32", 2)
    u._MustUse__silence = True
    assert u.spec == MacSpec.make("bf16", "rf8", "fp32", 2)


@pytest.mark.parametrize("a,w,acc,lanes", [
    ("bf16", "rf8", "fp32", 1), ("fp16", "e4m3", "fp32", 3), ("bf16", "bf16", "fp32", 2), ("fp16", "int8", "fp32", 1),
    ("bf16", "rf8", "aligned:8:16", 4), ("fp16", "rf8", "aligned:3:2", 1), ("bf16", "int8", "aligned:6:5", 3),
    ("bf16", "bf16", "aligned:4:16", 2)])
def test_reference_matches_golden(a, w, acc, lanes):
    """The two independent models agree (the RTL is checked against each)."""
    from rf8sim import golden

    c = MacSpec.make(a, w, acc, lanes)
    s = random_stream(c, 40, seed=7, max_len=48)
    tr = golden.mac(s.a if lanes > 1 else s.a[:, 0], s.w if lanes > 1 else s.w[:, 0], s.clear, a, w, acc)
    if c.kind == "fp32":
        ea, eo, ei = mac_fp32_reference(s.a, s.w, s.clear, a, w)
    else:
        ea, eo, ei = mac_aligned_reference(s.a, s.w, s.clear, a, w, c.acc.block, c.acc.align_bits)
    assert np.asarray(tr.acc).dtype == np.uint32 and len(tr.acc) == len(s) >= 40
    assert np.array_equal(tr.acc, ea) and np.array_equal(tr.overflow, eo) and np.array_equal(tr.invalid, ei)


