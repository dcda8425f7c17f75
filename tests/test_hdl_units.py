"""Amaranth-simulator unit tests of the MAC generator's sub-blocks, plus parameter validation.

Fast and simulator-free (Amaranth's own Python simulator): the product stage over all
65,536 code pairs of every RTL format pair against exact Fraction arithmetic on the
format value tables, the fp32 converter against integer RNE and numpy, and a short
MacUnit run against the pure-Python reference.
"""

from fractions import Fraction

import numpy as np
import pytest
from amaranth.sim import Simulator

from rf8sim import formats as F
from rf8sim.accspec import AccSpec, AccSpecError
from rf8sim.hdl import HdlError, MacSpec, MacUnit, ProductStage, make_unit
from rf8sim.hdl.mac import Fp32Convert, ProductPlan
from rf8sim.hdl.reference import fp32_rne_bits, mac_reference
from rf8sim.hdl.stimulus import random_stream

PAIRS = [("rf8", "rf8"), ("e4m3", "e4m3"), ("e5m2", "e5m2"), ("int8", "int8"), ("rf8", "int8")]


@pytest.mark.parametrize("a_name,w_name", PAIRS)
def test_product_stage_exhaustive(a_name, w_name):
    dut = ProductStage(a_name, w_name)
    fa, fw = F.get(a_name), F.get(w_name)
    got = []

    async def tb(ctx):
        for ca in range(256):
            ctx.set(dut.a, ca)
            for cw in range(256):
                ctx.set(dut.w, cw)
                got.append((ctx.get(dut.p), ctx.get(dut.sh), ctx.get(dut.special)))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    assert len(got) == 65536
    xmin = dut.plan.xmin
    compared = specials = 0
    for k, (p, sh, sp) in enumerate(got):
        ca, cw = divmod(k, 256)
        if not (fa.finite[ca] and fw.finite[cw]):
            assert (p, sp) == (0, 1), (hex(ca), hex(cw))
            specials += 1
            continue
        exact = Fraction(float(fa.values[ca])) * Fraction(float(fw.values[cw]))
        value = Fraction(p) * Fraction(2) ** (sh + xmin) if p else Fraction(0)
        assert value == exact and sp == 0, (hex(ca), hex(cw), p, sh)
        compared += 1
    n_special = 65536 - int(fa.finite.sum()) * int(fw.finite.sum())
    assert compared + specials == 65536 and specials == n_special


def test_product_stage_modes():
    """RF8 products are shift-and-add (no multiplier array); the baselines multiply."""
    assert ProductPlan.make("rf8", "rf8").mode == "shift-add(a)"
    assert ProductPlan.make("int8", "rf8").mode == "shift-add(w)"
    assert ProductPlan.make("rf8", "int8").mode == "shift-add(a)"
    assert ProductPlan.make("e4m3", "e4m3").mode == "multiply"
    assert ProductPlan.make("int8", "int8").mode == "int-multiply"


def test_fp32_convert_vs_integer_rne_and_numpy():
    rng = np.random.default_rng(5)
    W, FB = 64, 20
    vals = [0, 1, -1, (1 << 63) - 1, -(1 << 63), (1 << 24) + 1, (1 << 25) + 3, (1 << 25) + 1, -(1 << 25) - 3,
            ((1 << 24) - 1) << 2 | 2, 0x1FFFFFF << 10, (0x1000001 << 5) | 16]
    vals += [int(x) for x in rng.integers(-(1 << 62), 1 << 62, 1500)]
    vals += [int(x) >> int(s) for x, s in zip(rng.integers(-(1 << 62), 1 << 62, 1500), rng.integers(0, 60, 1500))]
    dut = Fp32Convert(W, FB)
    got = []

    async def tb(ctx):
        for v in vals:
            ctx.set(dut.x, v)
            got.append(ctx.get(dut.f))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    assert len(got) == len(vals)
    checked_np = 0
    for v, g in zip(vals, got):
        assert g == fp32_rne_bits(v, FB), v
        if abs(v) < 1 << 53:  # float64 holds v exactly, so one float32 rounding is RNE
            ref = np.float32(np.float64(v) * 2.0 ** -FB).view(np.uint32)
            assert g == int(ref), v
            checked_np += 1
    assert checked_np > 1000


def test_fp32_reference_matches_golden():
    from rf8sim import golden  # a removed API is a failure, not a skip

    rng = np.random.default_rng(1)
    v = rng.integers(-(1 << 62), 1 << 62, 20000)
    v = v >> rng.integers(0, 62, v.size)
    for fb in (0, 16, 40):
        ours = np.array([fp32_rne_bits(int(x), fb) for x in v], np.uint32)
        assert np.array_equal(ours, golden.to_float32(v, fb).view(np.uint32))


def _run_mac(unit, stream):
    """Drive a MacUnit in Amaranth's simulator; returns (acc, ovf, inv, fp32, latency)."""
    words_a = [sum(int(c) << (8 * i) for i, c in enumerate(row)) for row in stream.a]
    words_w = [sum(int(c) << (8 * i) for i, c in enumerate(row)) for row in stream.w]
    got, lat = [], []
    n = len(stream)

    async def tb(ctx):
        cycle, issued, first_in = 0, 0, None
        gaps = stream.gap.astype(int).tolist()
        while len(got) < n:
            if issued < n and gaps[issued] == 0:
                ctx.set(unit.in_valid, 1)
                ctx.set(unit.in_clear, int(stream.clear[issued]))
                ctx.set(unit.in_a, words_a[issued])
                ctx.set(unit.in_w, words_w[issued])
                if first_in is None:
                    first_in = cycle
                issued += 1
            else:
                if issued < n:
                    gaps[issued] -= 1
                ctx.set(unit.in_valid, 0)
            await ctx.tick()
            cycle += 1
            if ctx.get(unit.out_valid):
                if not lat:
                    lat.append(cycle - first_in)
                f = ctx.get(unit.out_fp32) if unit.spec.has_fp32_port else None
                got.append((ctx.get(unit.out_acc), ctx.get(unit.out_overflow), ctx.get(unit.out_invalid), f))
            assert cycle < 20 * n + 50

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return got, lat[0]


@pytest.mark.parametrize("a_name,w_name,acc,lanes,out", [
    ("rf8", "rf8", "4:12", 3, "fp32"),       # narrow: saturates
    ("e5m2", "e5m2", None, 2, "fixed"),       # exact, NaN/Inf
    ("rf8", "int8", "16:32", 1, "fp32"),
])
def test_mac_unit_amaranth_vs_reference(a_name, w_name, acc, lanes, out):
    cfg = MacSpec.make(a_name, w_name, acc, lanes, out)
    unit = make_unit(cfg)
    assert type(unit) is MacUnit
    s = random_stream(cfg, n_seq=12, seed=7, max_len=40)
    got, latency = _run_mac(unit, s)
    assert latency == unit.latency == 2  # one tick = one rising edge after the sampling edge
    ea, eo, ei = mac_reference(s.a, s.w, s.clear, a_name, w_name, cfg.acc)
    assert len(got) == len(s) == len(ea)
    for k, (acc_v, o, i, f) in enumerate(got):
        assert (acc_v, bool(o), bool(i)) == (ea[k], bool(eo[k]), bool(ei[k])), k
        if out == "fp32":
            assert f == fp32_rne_bits(ea[k], cfg.acc.frac_bits), k


def test_reference_matches_golden_mac():
    from rf8sim import golden

    compared = 0
    for (a, w), acc, lanes in [(("rf8", "rf8"), "6:14", 4), (("e4m3", "e4m3"), None, 1),
                               (("e5m2", "e5m2"), None, 3), (("rf8", "int8"), "16:32", 2),
                               (("int8", "int8"), "0:18", 1)]:
        cfg = MacSpec.make(a, w, acc, lanes)
        s = random_stream(cfg, n_seq=40, seed=11, max_len=300)
        ea, eo, ei = mac_reference(s.a, s.w, s.clear, a, w, cfg.acc)
        tr = golden.mac(s.a, s.w, s.clear, a, w, cfg.acc)
        assert [int(x) for x in tr.acc] == ea
        assert np.array_equal(tr.overflow, eo) and np.array_equal(tr.invalid, ei)
        compared += len(ea)
    assert compared > 5000


# ---- bad input ----------------------------------------------------------------

def test_bad_parameters():
    with pytest.raises(HdlError, match="unknown format"):
        MacSpec.make("fp9", "rf8")
    with pytest.raises(HdlError, match="too narrow"):
        MacSpec.make("rf8", "rf8", "16:17")
    with pytest.raises(HdlError, match="lanes"):
        MacSpec.make("rf8", "rf8", lanes=0)
    with pytest.raises(HdlError, match="lanes"):
        MacSpec.make("rf8", "rf8", lanes=True)
    with pytest.raises(HdlError, match="result must be"):
        MacSpec.make("rf8", "rf8", result="float")
    with pytest.raises(AccSpecError, match="width"):
        MacSpec.make("rf8", "rf8", "16:200")
    with pytest.raises(HdlError, match="127-bit"):
        MacSpec.make("e5m2", "e5m2", "96:100", lanes=4)
    with pytest.raises(HdlError, match="acc must be"):
        MacSpec.make("rf8", "rf8", 3.5)
    with pytest.raises(HdlError, match="make_unit"):  # MacUnit builds the fixed-point datapath only
        MacUnit(MacSpec.make("bf16", "rf8", "fp32"))


def test_deprecated_field_by_field_constructors_still_work():
    """MacUnit(a_fmt, w_fmt, acc, lanes, out) and MacConfig.make: the same unit as from the spec, with a warning."""
    from rf8sim.hdl import MacConfig

    spec = MacSpec.make("rf8", "int8", "16:32", 2, "fp32")
    with pytest.warns(DeprecationWarning, match="MacSpec"):
        old = MacUnit("rf8", "int8", "16:32", 2, out="fp32")
    with pytest.warns(DeprecationWarning, match="MacSpec"):
        assert MacConfig.make("rf8", "int8", "16:32", 2, "fp32") == spec
    new = MacUnit(spec)
    assert old.spec == spec and old.config is old.spec
    assert old.signature == new.signature
    old._MustUse__silence = new._MustUse__silence = True  # built to compare, not to elaborate


def test_narrow_but_legal_accumulator():
    """(16, 32) cannot hold one maximal rf8 x rf8 product (it saturates) but is a legal spec."""
    acc = AccSpec(16, 32)
    assert not acc.holds_one_product("rf8", "rf8")
    assert MacSpec.make("rf8", "rf8", acc).acc == acc
    assert MacSpec.make("rf8", "rf8", "0:2").acc == AccSpec(0, 2)  # holds 1.0, the criterion


def test_widths_follow_formats():
    """Derived widths come from the Format tables (a variant gets its own datapath)."""
    variant = F.residual_format("rf8_test_variant", ((0, 0), (1, 1), (1, 2), (1, 3), (1, 5), (-1, 2), (-1, 3), (-1, 5)))
    p_std, p_var = ProductPlan.make("rf8", "rf8"), ProductPlan.make(variant, variant)
    assert p_var.p_hi > p_std.p_hi  # dmax = 5 widens the significand
    assert p_std.p_hi == int(F.RF8.sig.max()) ** 2


def test_reset_hold_and_clear_semantics():
    """rst zeroes the accumulator and flags; in_valid = 0 holds; a beat without clear after reset adds to 0."""
    from amaranth.hdl import ClockDomain, Elaboratable, Module

    from rf8sim.hdl.reference import aligned_table

    unit = MacUnit(MacSpec.make("e5m2", "e5m2", "2:8", 1, "fixed"))
    cd = ClockDomain("sync")

    class Top(Elaboratable):  # an explicit sync domain whose rst the testbench drives
        def elaborate(self, platform):
            m = Module()
            m.domains.sync = cd
            m.submodules.mac = unit
            return m

    table, _ = aligned_table("e5m2", "e5m2", unit.spec.acc)
    big, one, nan = 0x7B, 0x3C, 0x7F  # 57344 (max), 1.0, NaN
    seen = {}

    async def tb(ctx):
        async def beat(a, w, clear, valid=1):
            ctx.set(unit.in_valid, valid)
            ctx.set(unit.in_clear, clear)
            ctx.set(unit.in_a, a)
            ctx.set(unit.in_w, w)
            await ctx.tick()

        await beat(big, big, 1)       # saturates: max^2 * 4 >> 2**7
        await beat(nan, one, 0)       # invalid
        await beat(0, 0, 0, valid=0)
        await ctx.tick()
        seen["before"] = (ctx.get(unit.out_acc), ctx.get(unit.out_overflow), ctx.get(unit.out_invalid))
        await ctx.tick()              # in_valid = 0 for several cycles: everything holds
        seen["held"] = (ctx.get(unit.out_acc), ctx.get(unit.out_overflow), ctx.get(unit.out_invalid),
                        ctx.get(unit.out_valid))
        ctx.set(cd.rst, 1)
        await ctx.tick()
        ctx.set(cd.rst, 0)
        seen["reset"] = (ctx.get(unit.out_acc), ctx.get(unit.out_overflow), ctx.get(unit.out_invalid),
                         ctx.get(unit.out_valid))
        await beat(one, one, 0)       # no clear: starts from the reset accumulator
        await beat(one, one, 0, valid=0)
        await ctx.tick()
        seen["after"] = (ctx.get(unit.out_acc), ctx.get(unit.out_overflow), ctx.get(unit.out_invalid))

    sim = Simulator(Top())
    sim.add_clock(1e-6, domain="sync")
    sim.add_testbench(tb)
    sim.run()
    acc = unit.spec.acc
    assert seen["before"] == (acc.max, 1, 1)
    assert seen["held"] == (acc.max, 1, 1, 0)
    assert seen["reset"] == (0, 0, 0, 0)
    assert seen["after"] == (table[one][one], 0, 0) and table[one][one] == 1 << acc.frac_bits
