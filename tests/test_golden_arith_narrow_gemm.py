"""The fast narrow-accumulator GEMM (split GEMM + clamped rows) against the k-ordered kernel.

``method="fast"`` must give the sequential kernel's bits (accumulator and both sticky flags)
for every accumulator, scale granularity and input, including inputs that saturate at
chosen k.  A few rows are also checked against Python integers written from the definition.
"""

from __future__ import annotations

import numpy as np
import pytest

from oracles.fixed_acc import gemm_row as ref_gemm_row

from rf8sim import formats as F
from rf8sim.golden import AccSpec, encode, gemm, mac
from rf8sim.golden.arith import FAST_CHUNK


def _same(fast, slow):
    for x, y in zip(fast, slow):
        assert x.dtype == y.dtype and np.array_equal(x, y)


PAIRS = [("rf8", "rf8"), ("e4m3", "e4m3"), ("int8", "int8"), ("e5m2", "e5m2"), ("int8", "rf8")]
SPECS = ["4:30", "16:32", "8:24", "0:20", "4:16"]


def test_fast_equals_sequential_random_every_granularity():
    rng = np.random.default_rng(11)
    M, N, K = 24, 20, 300
    compared = saturated = 0
    for fa, fw in PAIRS:
        for dist in ("uniform", "gauss"):
            if dist == "uniform":
                a = rng.integers(0, 256, (M, K), dtype=np.uint8)
                w = rng.integers(0, 256, (N, K), dtype=np.uint8)
            else:  # realistic magnitudes: Gaussian values through the encoder
                a = encode((rng.standard_normal((M, K)) * 8).astype(np.float32), fa)
                w = encode((rng.standard_normal((N, K)) * 8).astype(np.float32), fw)
            for spec_text in SPECS:
                spec = AccSpec.parse(spec_text, fa, fw)
                for ga, gw, sa, sw in [
                    ("tensor", "tensor", np.int8(-2), np.int8(1)),
                    ("channel", "tensor", rng.integers(-4, 3, M).astype(np.int8), None),
                    ("tensor", "channel", None, rng.integers(-3, 2, N).astype(np.int8)),
                    ("block", "block", rng.integers(-3, 3, (M, 10)).astype(np.int8),
                     rng.integers(-2, 2, (N, 10)).astype(np.int8)),
                ]:
                    fast = gemm(a, w, fa, fw, spec, sa, sw, ga, gw, block=32, method="fast")
                    slow = gemm(a, w, fa, fw, spec, sa, sw, ga, gw, block=32, method="sequential")
                    _same(fast, slow)
                    compared += fast.acc.size
                    saturated += int(fast.overflow.sum())
    assert compared == len(PAIRS) * 2 * len(SPECS) * 4 * M * N
    assert saturated > 1000  # the clamped rows were exercised (the split path: test_golden_arith_narrow_gemm_split.py)


@pytest.mark.parametrize("fa,fw,spec_text", [("rf8", "rf8", "4:24"), ("e4m3", "e4m3", "8:24"),
                                             ("int8", "int8", "0:20")])
def test_fast_equals_sequential_adversarial_saturation_at_chosen_k(fa, fw, spec_text):
    """Rows of small products with one run of large same-sign products that first saturates at k_sat."""
    spec = AccSpec.parse(spec_text, fa, fw)
    f_a, f_w = F.get(fa), F.get(fw)
    K = 4 * FAST_CHUNK + 17
    sat_at = [0, 1, FAST_CHUNK - 1, FAST_CHUNK, FAST_CHUNK + 1, 2 * FAST_CHUNK + 5, K - 2, K - 1]
    rng = np.random.default_rng(3)
    big = int(np.argmax(np.where(f_a.finite & (f_a.values > 0), f_a.values, 0)))  # largest positive finite code
    bigw = int(np.argmax(np.where(f_w.finite & (f_w.values > 0), f_w.values, 0)))
    one_w = int(encode(np.float32(1.0), fw))
    big_val = abs(int(AccSpec(spec.frac_bits, 127).align(0, int(f_a.sig[big]) * int(f_w.sig[bigw]),
                                                       int(f_a.exp[big]) + int(f_w.exp[bigw]))))
    run_len = spec.max // big_val + 1  # this many big products push the sum over the top
    assert run_len <= 40
    rows_a, rows_w, firsts = [], [], []
    for s in sat_at:
        for sign in (1, -1):
            ar = encode((rng.standard_normal(K) * 0.5).astype(np.float32), fa)
            wr = np.full(K, one_w, np.uint8)
            start = max(0, s - run_len + 1)
            ar[start:s + 1] = big
            wr[start:s + 1] = bigw if sign > 0 else int(encode(np.float32(-f_w.values[bigw]), fw))
            if s - start + 1 < run_len:  # saturate early rows with one product past the limit
                continue
            rows_a.append(ar)
            rows_w.append(wr)
    a = np.stack(rows_a)
    w = np.stack(rows_w)
    fast = gemm(a, w, fa, fw, spec, method="fast")
    slow = gemm(a, w, fa, fw, spec, method="sequential")
    _same(fast, slow)
    # the diagonal (row i with weights i) saturates first exactly where it was built to
    for i in range(a.shape[0]):
        tr = mac(a[i], w[i], None, fa, fw, spec)
        firsts.append(int(np.argmax(tr.overflow)) if tr.overflow.any() else -1)
        assert (int(fast.acc[i, i]), bool(fast.overflow[i, i])) == (int(tr.acc[-1]), bool(tr.overflow[-1]))
        if i < 3:
            assert ref_gemm_row(a[i], w[i], fa, fw, spec, 0) == (int(fast.acc[i, i]), bool(fast.overflow[i, i]),
                                                                  bool(fast.invalid[i, i]))
    assert len(firsts) >= 2 * (len(sat_at) - 2)
    assert sorted(set(firsts)) == sorted({s for s in sat_at if s >= run_len - 1})
    assert int(fast.overflow.sum()) >= len(firsts)


def test_fast_path_against_python_integers_with_scales_and_specials():
    rng = np.random.default_rng(8)
    M, N, K = 5, 4, 2 * FAST_CHUNK + 9
    compared = 0
    for fa, fw in [("e4m3", "e5m2"), ("rf8", "int8")]:
        a = rng.integers(0, 256, (M, K), dtype=np.uint8)  # includes NaN/Inf codes where the format has them
        w = encode((rng.standard_normal((N, K)) * 30).astype(np.float32), fw)
        sa = rng.integers(-3, 3, M).astype(np.int8)
        spec = AccSpec(3, 26)
        r = gemm(a, w, fa, fw, spec, sa, None, "channel", "tensor", method="fast")
        for m in range(M):
            for n in range(N):
                assert ref_gemm_row(a[m], w[n], fa, fw, spec, int(sa[m])) == (
                    int(r.acc[m, n]), bool(r.overflow[m, n]), bool(r.invalid[m, n]))
                compared += 1
    assert compared == 2 * M * N


def test_auto_takes_the_fast_kernel_and_two_limb_specs_refuse_it():
    a = np.full((2, 200), 0x38, np.uint8)
    r = gemm(a, a, "e4m3", "e4m3", "4:30")
    _same(r, gemm(a, a, "e4m3", "e4m3", "4:30", method="sequential"))
    from rf8sim.golden import AccSpecError
    with pytest.raises(AccSpecError, match="one-limb"):
        gemm(a, a, "e5m2", "e5m2", "exact", method="fast")
