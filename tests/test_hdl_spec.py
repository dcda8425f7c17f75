"""The unit spec (rf8sim.hdl.MacSpec): parsed once, frozen, and every width it derives checked against
an independent computation from the Format tables (exhaustive over the code pairs)."""

from __future__ import annotations

import dataclasses

import pytest
from amaranth.hdl import Shape

from rf8sim import formats as F
from rf8sim.accspec import AccSpec
from rf8sim.hdl import HdlError, MacSpec, make_unit, product_stage
from rf8sim.hdl.mac import MacUnit, ProductStage
from rf8sim.hdl.w8a16 import AlignedMacUnit, FloatProductStage, Fp32MacUnit


def test_parsed_once_frozen_hashable():
    s = MacSpec.make("BF16", "Rf8", "ALIGNED:32:16", 4)
    assert (s.a, s.w) == (F.get("bf16"), F.get("rf8")) and s.acc == AccSpec.aligned(32, 16)
    assert MacSpec.make(s) is s and s == MacSpec.make("bf16", "rf8", "aligned:32:16", 4) and len({s, s}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.lanes = 8
    assert s.with_(lanes=8).lanes == 8 and s.lanes == 4
    with pytest.raises(HdlError, match="multiple of lanes"):
        s.with_(lanes=3)
    assert (s.kind, s.a_bits, s.w_bits, s.acc_bits, s.result, s.has_fp32_port) == ("aligned", 16, 8, 32, "fp32", False)
    f = MacSpec.make("rf8", "int8", "16:32", 2, "fp32")
    assert (f.kind, f.a_bits, f.acc_bits, f.has_fp32_port, f.module_name()) == \
        ("fixed", 8, 32, True, "mac_rf8xint8_f16w32_l2_fp32")
    assert MacSpec.make("bf16").acc == AccSpec.fp32() and MacSpec.make("rf8").acc == AccSpec.exact("rf8", "rf8")


@pytest.mark.parametrize("args,unit,stage", [
    (("rf8", "rf8"), MacUnit, ProductStage),
    (("fp16", "e4m3", "fp32", 2), Fp32MacUnit, FloatProductStage),
    (("bf16", "int8", "aligned:8:8", 4), AlignedMacUnit, FloatProductStage),
])
def test_make_unit_picks_the_datapath_by_acc_kind(args, unit, stage):
    spec = MacSpec.make(*args)
    u, p = make_unit(spec), product_stage(spec)
    assert type(u) is unit and type(p) is stage and u.spec == spec and u.latency == spec.latency
    width = {k: Shape.cast(u.signature.members[k].shape).width for k in ("in_a", "in_w", "out_acc")}
    assert width == {"in_a": spec.a_bits * spec.lanes, "in_w": spec.w_bits * spec.lanes, "out_acc": spec.acc_bits}
    u._MustUse__silence = p._MustUse__silence = True


def _bits_signed(lo, hi):
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


@pytest.mark.parametrize("a,w,acc,lanes", [("rf8", "rf8", None, 1), ("e4m3", "e5m2", "16:32", 3),
                                           ("int8", "rf8", "4:40", 4), ("e5m2", "e5m2", None, 2)])
def test_fixed_widths_hold_every_product(a, w, acc, lanes):
    """The aligned range and lane-sum width against all 65,536 code pairs, floored with Python ints."""
    spec = MacSpec.make(a, w, acc, lanes)
    fa, fw, frac = F.get(a), F.get(w), spec.acc.frac_bits
    lo = hi = 0
    n = 0
    for ca in range(256):
        if not fa.finite[ca]:
            continue
        for cw in range(256):
            if not fw.finite[cw]:
                continue
            v = (-1) ** (int(fa.sign[ca]) ^ int(fw.sign[cw])) * int(fa.sig[ca]) * int(fw.sig[cw])
            e = int(fa.exp[ca]) + int(fw.exp[cw]) + frac
            x = v << e if e >= 0 else v >> -e  # floor either way: Python's >> floors
            lo, hi, n = min(lo, x), max(hi, x), n + 1
    assert n == int(fa.finite.sum()) * int(fw.finite.sum()) > 40000
    slo, shi = spec.aligned_range
    assert slo <= lo and hi <= shi                                    # every product fits
    assert spec.aligned_width == _bits_signed(slo, shi) >= _bits_signed(lo, hi)
    assert spec.lane_sum_width == _bits_signed(lanes * slo, lanes * shi)


@pytest.mark.parametrize("a,w,acc", [("bf16", "rf8", "aligned:32:16"), ("fp16", "e4m3", "aligned:8:12"),
                                     ("bf16", "int8", "aligned:4:24"), ("fp16", "bf16", "aligned:16:8")])
def test_float_widths(a, w, acc):
    """The product magnitude over every finite code pair's significands, and the block register against the
    golden model's own formula (AccSpec.block_width)."""
    spec = MacSpec.make(a, w, acc)
    fa, fw = F.get(a), F.get(w)
    top = int(fa.sig[fa.finite].max()) * int(fw.sig[fw.finite].max())
    assert spec.p_width == top.bit_length()
    assert spec.block_width == spec.acc.block_width(fw)
