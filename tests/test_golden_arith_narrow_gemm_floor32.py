"""The float32 floor GEMM of the narrow accumulators (rf8sim.golden.arith._gemm_floor32): each product
floored on its own, summed in any order, taken only where bounds prove it exact and clamp-free.

Checked against the k-ordered sequential kernel on MiniLM-like scaled operands (channel and block
scales, every narrow accumulator) and against Python integers row by row; the guards (float32's
integer range, subnormal products) are exercised where the fast path would otherwise be wrong, and
``arith.PATH_COUNTS`` must show the path ran for the outputs counted."""

from __future__ import annotations

import numpy as np
import pytest

from oracles.fixed_acc import gemm_row as ref_gemm_row

from rf8sim import formats as F
from rf8sim.golden import AccSpec, gemm, quantize
from rf8sim.golden import arith as ar


def _same(x, y):
    for u, v in zip(x, y):
        assert u.dtype == v.dtype and u.shape == v.shape and np.array_equal(u, v)


def _minilm_like(rng, fmt, gran, M=24, N=20, K=256):
    x = rng.standard_normal((M, K)).astype(np.float32)
    w = rng.laplace(0, 0.05, (N, K)).astype(np.float32)
    (xc, kx), (wc, kw) = quantize(x, fmt, granularity=gran, block=32), quantize(w, fmt, granularity=gran, block=32)
    return xc, kx, wc, kw


def test_floor_gemm_equals_sequential_on_scaled_operands():
    rng = np.random.default_rng(3)
    compared = floored = 0
    for fmt in ("rf8", "e4m3", "int8"):
        for gran in ("channel", "ceil"):
            xc, kx, wc, kw = _minilm_like(rng, fmt, gran)
            for spec in ("exact", "16:32", "8:36", "4:30", "0:20"):
                args = (xc, wc, fmt, fmt, spec, kx, kw, gran, gran, 32)
                before = ar.PATH_COUNTS["floor32"]
                got = gemm(*args, method="fast")
                n32 = ar.PATH_COUNTS["floor32"] - before
                _same(got, gemm(*args, method="sequential"))
                compared += got.acc.size
                floored += n32
    assert compared == 3 * 2 * 5 * 24 * 20
    assert floored >= compared * 0.7  # the float32 floor path produced most of them (not a silent fallback)


def test_floor_gemm_rows_against_python_integers():
    rng = np.random.default_rng(8)
    compared = 0
    for fa, fw, spec_text in (("rf8", "rf8", "4:30"), ("e4m3", "int8", "8:36"), ("int8", "int8", "0:20")):
        spec = AccSpec.parse(spec_text, fa, fw)
        a = quantize(rng.standard_normal((5, 160)).astype(np.float32), fa, granularity="channel")
        w = quantize(rng.laplace(0, 0.05, (4, 160)).astype(np.float32), fw, granularity="channel")
        r = ar._gemm_floor32(a[0], w[0], F.get(fa), F.get(fw), spec, a[1].astype(np.int64)[:, None], 160,
                             w[1].astype(np.int64)[:, None], 160)
        assert r is not None and r[1].all()
        for m in range(5):
            for n in range(4):
                want = ref_gemm_row(a[0][m], w[0][n], fa, fw, spec, int(a[1][m]) + int(w[1][n]))
                assert want == (int(r[0][m, n]), False, False)
                compared += 1
    assert compared == 3 * 20


def test_rows_whose_sums_leave_float32_integers_are_not_taken():
    """Sums of floored products past 2**24: float32 would round them, so those rows go elsewhere,
    and the result still equals the sequential kernel; small rows next to them are taken."""
    rng = np.random.default_rng(5)
    M, N, K = 8, 6, 200
    spec = AccSpec.parse("12:40", "int8", "int8")  # wide enough that nothing clamps
    a = rng.integers(100, 127, (M, K)).astype(np.uint8)  # int8 codes 100..126: large positive values
    w = rng.integers(100, 127, (N, K)).astype(np.uint8)
    sa = np.where(np.arange(M) % 2 == 0, -12, 0)  # even rows: sums ~2**14 * 200 / 2**12; odd: ~2**14 * 200 * 1
    r = ar._gemm_floor32(a, w, F.get("int8"), F.get("int8"), spec, sa[:, None].astype(np.int64), K,
                         np.zeros((N, 1), np.int64), K)
    assert r is not None and r[1].tolist() == [True, False] * 4
    _same(gemm(a, w, "int8", "int8", spec, sa, None, "channel", "tensor", method="fast"),
          gemm(a, w, "int8", "int8", spec, sa, None, "channel", "tensor", method="sequential"))


def test_products_below_float32_normals_are_not_taken():
    """Scales that push products below 2**-126 (each negative one floors to -1): the float32 path must
    refuse (a flushed product would floor to 0), and the GEMM still equals the sequential kernel."""
    rng = np.random.default_rng(6)
    a = quantize(rng.standard_normal((6, 140)).astype(np.float32), "e4m3")[0]
    w = quantize(rng.standard_normal((5, 140)).astype(np.float32), "e4m3")[0]
    sa, sw = np.full(6, -100), np.full(5, -60)
    spec = AccSpec.parse("4:30", "e4m3", "e4m3")
    assert ar._gemm_floor32(a, w, F.get("e4m3"), F.get("e4m3"), spec, sa[:, None].astype(np.int64), 140,
                            sw[:, None].astype(np.int64), 140) is None
    got = gemm(a, w, "e4m3", "e4m3", spec, sa, sw, "channel", "channel", method="fast")
    _same(got, gemm(a, w, "e4m3", "e4m3", spec, sa, sw, "channel", "channel", method="sequential"))
    assert (got.acc < 0).any()  # the floored negative products are there


@pytest.mark.parametrize("limit", [2.0 ** 30])
def test_the_float32_integer_guard_is_what_keeps_it_exact(monkeypatch, limit):
    """With the 2**24 guard raised, the rows of the test above are taken and come out wrong: the guard
    is load-bearing (this test fails if the float32 path ever stops rounding such sums)."""
    monkeypatch.setattr(ar, "_F32_INT", limit)
    rng = np.random.default_rng(5)
    M, N, K = 4, 3, 2048
    spec = AccSpec.parse("0:40", "int8", "int8")
    a = rng.integers(100, 127, (M, K)).astype(np.uint8)  # sums of odd-ish products ~ 2**25: past float32's
    w = rng.integers(100, 127, (N, K)).astype(np.uint8)  # integers, so a float32 sum must round somewhere
    before = ar.PATH_COUNTS["floor32"]
    got = gemm(a, w, "int8", "int8", spec, method="fast")
    assert ar.PATH_COUNTS["floor32"] - before == M * N
    ref = gemm(a, w, "int8", "int8", spec, method="sequential")
    assert (ref.acc > 2 ** 24).all() and not np.array_equal(got.acc, ref.acc)
    monkeypatch.undo()  # and with the guard in place: refused, exact
    _same(gemm(a, w, "int8", "int8", spec, method="fast"), ref)
