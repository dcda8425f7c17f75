"""The fast W8A16 GEMM paths of rf8sim.golden.fpacc (fp32: float32 chains; aligned:K:M: float64 BLAS
block sums) give the same bits as the sequential kernels (``method="sequential"``) and as the
Python-Fraction references of tests/oracles/binary32.py, and run exactly where the precheck says they may.

The expected path of every row / call is re-derived here from the format definitions (code
exponents and significands, Python integers), independently of the kernels' precheck, and
``fpacc.PATH_COUNTS`` must agree with it in both directions."""

import zlib

import ml_dtypes
import pytest
import numpy as np

from oracles import binary32 as R
from rf8sim import formats as F
from rf8sim import scales as S
from rf8sim.golden import AccSpec, fpacc
from test_golden_fpacc import _dt, draw

A16 = ("bf16", "fp16")
W_FMTS = ("rf8", "e4m3", "e5m2", "int8", "bf16")


def _run(ca, cw, a, w, acc, *args, **kw):
    """(auto result, sequential result, how many rows each path ran in the auto call)."""
    before = dict(fpacc.PATH_COUNTS)
    fast = fpacc.gemm(ca, cw, a, w, AccSpec.parse(acc), *args, **kw)
    delta = {k: fpacc.PATH_COUNTS[k] - before[k] for k in before}
    slow = fpacc.gemm(ca, cw, a, w, AccSpec.parse(acc), *args, method="sequential", **kw)
    for x, y in zip(fast, slow):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    return fast, delta


def _moderate(rng, fmt, size, lo=-6, hi=6):
    """Codes with |value| in 2**lo .. 2**hi, plus some +0 / -0."""
    f = F.get(fmt)
    mag = np.abs(np.where(f.special == F.SPECIAL_FINITE, f.values, np.nan))
    pool = np.flatnonzero((mag >= 2.0 ** lo) & (mag <= 2.0 ** hi))
    zeros = np.flatnonzero((mag == 0))
    c = rng.choice(pool, size)
    z = rng.random(size) < 0.06
    c[z] = rng.choice(zeros, int(z.sum()))
    return c.astype(_dt(fmt))


def _extent(codes, fmt, scale):
    """Independent: (lo, hi, special) of a code row: lo/hi the smallest exponent and largest
    exponent + bit length of the raw significand over nonzero finite codes, scale added."""
    f = F.get(fmt)
    lo, hi, bad = None, None, False
    for c in set(int(x) for x in codes):
        if f.special[c] != F.SPECIAL_FINITE:
            bad = True
        elif int(f.sig[c]):
            e = int(f.exp[c]) + scale
            lo = e if lo is None else min(lo, e)
            h = e + int(f.sig[c]).bit_length()
            hi = h if hi is None else max(hi, h)
    return lo, hi, bad


def _expect_fp32_fast(ca, cw, a, w, sa, sw):
    """Rows whose every operand and product is a float32 value (the fp32 fast path's condition)."""
    wl = [_extent(cw[n], w, int(sw[n])) for n in range(len(cw))]
    if any(b for _, _, b in wl):
        return np.zeros(len(ca), bool)
    wlo = min((x for x, _, _ in wl if x is not None), default=None)
    whi = max((x for _, x, _ in wl if x is not None), default=None)
    if wlo is not None and (wlo < -149 or whi > 128):
        return np.zeros(len(ca), bool)
    out = []
    for m in range(len(ca)):
        lo, hi, bad = _extent(ca[m], a, int(sa[m]))
        ok = not bad
        if ok and lo is not None:
            ok = lo >= -149 and hi <= 128
            if wlo is not None:
                ok = ok and lo + wlo >= -149 and hi + whi <= 128
        out.append(ok)
    return np.array(out)


def _clear_sign(c):
    return c & np.array((1 << (8 * c.itemsize - 1)) - 1, c.dtype)


def _fp32_case(rng, a, w):
    """Rows: 3 with a NaN/Inf, 6 moderate, 4 at the exponent floor (2 at 2**-149, 2 one below),
    4 at the ceiling (2 with products < 2**128, 2 one above), 2 edge-heavy draws, 1 of signed zeros.
    Weight rows 0, 1: the largest code at the largest scale; 2, 3: the smallest nonzero code at the
    smallest scale; with the constant activation rows 9 (smallest code) and 13 (largest) their
    sums stay subnormal / overflow to Inf."""
    M, N, K = 20, 21, 72
    ca = _moderate(rng, a, (M, K))
    cw = _moderate(rng, w, (N, K), -3, 3)
    sw = rng.integers(-12, -5, N)
    fa, fw = F.get(a), F.get(w)
    ca[17:19] = draw(rng, a, (2, K), 0)
    neg0 = np.flatnonzero((fa.values == 0) & (fa.sign == 1))[0]
    ca[19] = neg0  # every product a signed zero: the chain stays +0
    ca[19, ::3] = 0
    for k in rng.choice(np.arange(1, K), 8, replace=False):  # exact cancellations k-1, k
        ca[:, k] = ca[:, k - 1] ^ np.array(1 << (8 * ca.itemsize - 1), ca.dtype)
        cw[:, k] = cw[:, k - 1]
    for m in range(3):
        ca[m, rng.integers(0, K)] = rng.choice(np.flatnonzero(fa.special != F.SPECIAL_FINITE))
    mag = np.abs(np.where(fw.special == F.SPECIAL_FINITE, fw.values, 0))[cw]
    cw[0:2] = _clear_sign(cw.reshape(-1)[np.argmax(mag)])
    cw[2:4] = cw.reshape(-1)[np.argmin(np.where(mag > 0, mag, np.inf))]
    sw[0:2], sw[2:4] = sw.max(), sw.min()
    mag = np.abs(np.where(fa.special == F.SPECIAL_FINITE, fa.values, 0))
    ca[9] = ca[9, np.argmin(np.where(mag[ca[9]] > 0, mag[ca[9]], np.inf))]
    ca[13] = _clear_sign(ca[13, np.argmax(mag[ca[13]])])
    sa = rng.integers(-20, 20, M)
    wl = [_extent(cw[n], w, int(sw[n])) for n in range(N)]
    wlo = min(x for x, _, _ in wl if x is not None)
    whi = max(x for _, x, _ in wl if x is not None)
    for m, d in zip(range(9, 13), (0, 0, -1, -1)):
        lo, _, _ = _extent(ca[m], a, 0)
        sa[m] = -149 - min(wlo, 0) - lo + d  # the products' (or the operands' own) floor
    for m, d in zip(range(13, 17), (0, 0, 1, 1)):
        _, hi, _ = _extent(ca[m], a, 0)
        sa[m] = 128 - max(whi, 0) - hi + d
    return ca, cw, sa, sw


def test_fp32_fast_path_bit_identical():
    """Every activation x weight format: auto == sequential on all outputs; the rows that take the
    float32 path are exactly the independently expected ones (both sides of the floor and the
    ceiling); overflow == +-Inf and no invalid on fast rows; a sample against the Fractions."""
    n = n_ref = n_ovf = n_sub = 0
    for a in A16:
        for w in W_FMTS:
            rng = np.random.default_rng(zlib.crc32(repr(("fast fp32", a, w)).encode()))
            ca, cw, sa, sw = _fp32_case(rng, a, w)
            r, d = _run(ca, cw, a, w, "fp32", sa, sw, "channel", "channel")
            want_fast = _expect_fp32_fast(ca, cw, a, w, sa, sw)
            assert d["fp32 fast"] == 21 * want_fast.sum() and d["fp32 sequential"] == 21 * (~want_fast).sum(), (a, w)
            assert want_fast[3:9].all() and not want_fast[:3].any(), (a, w)  # moderate rows fast, NaN/Inf not
            assert want_fast[[9, 10, 13, 14]].all() and not want_fast[[11, 12, 15, 16]].any(), (a, w)  # edges
            f = r.as_float32()
            assert np.array_equal(r.overflow[want_fast], np.isinf(f[want_fast])) and not r.invalid[want_fast].any()
            assert (r.acc[19] == 0).all()  # signed zeros: the chain starts at +0 and stays there
            for m in (3, 9, 13, 14, 11, 19, 0):
                for j in sorted({0, 2} | set(rng.choice(cw.shape[0], 3, replace=False).tolist())):
                    want = R.fp32_dot(ca[m].tolist(), cw[j].tolist(), a, w, [int(sa[m] + sw[j])] * ca.shape[1])
                    assert (int(r.acc[m, j]), bool(r.overflow[m, j]), bool(r.invalid[m, j])) == want, (a, w, m, j)
                    n_ref += 1
            n += r.acc.size
            n_ovf += int(r.overflow[want_fast].sum())
            n_sub += int(((np.abs(f) < np.finfo(np.float32).tiny) & (f != 0))[want_fast].sum())
    assert n == 10 * 20 * 21 and n_ref >= 10 * 7 * 3
    assert n_ovf >= 20 and n_sub >= 20, (n_ovf, n_sub)


def test_fp32_fast_designed_edges():
    """Products with a last place below 2**-149 are not float32 values: those rows must not take
    the float32 path (it would round the product first: 2**-149 + 1.5 * 2**-149 -> 3 ulps, the
    fused add gives 2.5 -> 2 ulps).  A product at 2**128 (not a float32) cancelling -max: finite."""
    bf = lambda x: np.array(x, np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)  # noqa: E731
    i8 = lambda x: np.array(x, np.int8).view(np.uint8)  # noqa: E731
    a = bf([[2.0 ** -130, 1.5 * 2.0 ** -130], [1.5 * 2.0 ** -130, 2.0 ** -130]])  # subnormal: sig 8, 12 x 2**-133
    w = i8([[1, 1]])
    for s, want, fast in ((-19, [2.0 ** -148, 3 * 2.0 ** -149], 0), (-16, [2.5 * 2.0 ** -146] * 2, 2)):  # outputs
        r, d = _run(a, w, "bf16", "int8", "fp32", None, s, "tensor", "tensor")
        assert d["fp32 fast"] == fast and r.as_float32()[:, 0].tolist() == want
        assert [int(x) for x in r.acc[:, 0]] == [R.fp32_dot(a[m].tolist(), w[0].tolist(), "bf16", "int8", [s, s])[0]
                                                 for m in range(2)]
    # -max (float32) then +2**128: exact sum 2**104 (finite); a float32 product would be +Inf
    a = bf([[-(2.0 ** 127) * 1.9921875, 2.0 ** 127]])
    w = i8([[1, 2]])
    r, d = _run(a, w, "bf16", "int8", "fp32")
    assert d["fp32 fast"] == 0 and r.as_float32()[0, 0] == np.float32(2.0 ** 127 * 0.0078125) and not r.overflow.any()


def test_fp32_fast_block_scales():
    """Block scales on both operands (blocks of 24, and of 32 with a partial last one): the float32
    path dequantizes per block; row 0 has one block pushed past the floor and runs sequentially."""
    rng = np.random.default_rng(12)
    n = 0
    for a, w in (("bf16", "rf8"), ("fp16", "e5m2"), ("bf16", "bf16")):
        ca, cw = _moderate(rng, a, (9, 72)), _moderate(rng, w, (7, 72), -3, 3)
        for blk in (24, 32):  # 3 scale groups either way
            sa, sw = rng.integers(-12, 12, (9, 3)), rng.integers(-12, 12, (7, 3))
            sa[0, 1] = -127
            r, d = _run(ca, cw, a, w, "fp32", sa, sw, "ceil", "ceil", blk)
            assert d["fp32 fast"] == 8 * 7 and d["fp32 sequential"] == 7, (a, w, blk)
            for m, j in ((0, 0), (4, 3), (8, 6)):
                scales = [int(sa[m, k // blk] + sw[j, k // blk]) for k in range(72)]
                want = R.fp32_dot(ca[m].tolist(), cw[j].tolist(), a, w, scales)
                assert (int(r.acc[m, j]), bool(r.overflow[m, j]), bool(r.invalid[m, j])) == want
            n += r.acc.size
    assert n == 3 * 2 * 63


def test_fp32_fast_zero_rows_with_extreme_scales():
    """Zero codes at the extreme E8M0 scales take the float32 path and stay zeros; scales beyond the
    E8M0 range (2**1100, where 0 * Inf = NaN could arise) are refused before any path runs."""
    a = np.array([[0x8000, 0], [0x3F80, 0]], np.uint16)  # -0, +0 / 1.0, +0
    w = np.array([[0x80, 0], [0, 0], [0, 0x80]], np.uint8)  # rf8 signed zeros only
    r, d = _run(a, w, "bf16", "rf8", "fp32", np.array([127, 127]), np.full(3, -127), "channel", "channel")
    assert d["fp32 fast"] == 6  # in the E8M0 range every output is on the float32 path
    assert (r.acc == 0).all() and not r.overflow.any() and not r.invalid.any()
    with pytest.raises(S.ScaleError, match="outside the E8M0 range -127..127 .first 1100"):  # no 0 * Inf: refused
        _run(a, w, "bf16", "rf8", "fp32", np.array([1100, 1100]), np.full(3, -1100), "channel", "channel")


def test_fp32_fast_weight_special_and_large_shape():
    """A NaN weight sends the whole call to the sequential kernel; a MiniLM-like shape (columns past
    one 512-wide tile, rows not a multiple of 4) runs entirely on the fast path, same bits."""
    rng = np.random.default_rng(3)
    ca = _moderate(rng, "bf16", (6, 40))
    cw = _moderate(rng, "e4m3", (5, 40))
    cw[2, 7] = 0x7F  # e4m3 NaN
    r, d = _run(ca, cw, "bf16", "e4m3", "fp32")
    assert d["fp32 fast"] == 0 and d["fp32 sequential"] == 6 * 5 and r.invalid[:, 2].all()
    x = rng.standard_normal((61, 384)).astype(np.float32)
    from rf8sim.golden import encode

    ca = encode(x, "bf16")
    cw = encode(rng.standard_normal((600, 384)).astype(np.float32), "rf8")
    sw = rng.integers(-9, -3, 600)
    r, d = _run(ca, cw, "bf16", "rf8", "fp32", None, sw, "tensor", "channel")
    assert d["fp32 fast"] == 61 * 600 and d["fp32 sequential"] == 0


# ---------------------------------------------------------------------------
# aligned:K:M


def _expect_aligned_fast(ca, cw, a, w, K, Mb):
    """Independent: per weight row (output column), whether the BLAS path may run it: no NaN/Inf in
    the call, and per block K * max|a_int| * 2**(top - lo) <= 2**53 (a_int from the Fraction
    alignment reference over the whole call; lo / top: the smallest exponent / the largest exponent
    plus significand bits among the block's nonzero weights)."""
    N = len(cw)
    amax = 0
    for row in ca:
        for b in range(len(row) // K):
            al = R.align_block(row[b * K:(b + 1) * K].tolist(), a, Mb)
            if al is None:
                return np.zeros(N, bool)
            amax = max([amax] + [abs(x) for x in al[1]])
    f = F.get(w)
    if any(f.special[int(c)] != F.SPECIAL_FINITE for c in np.unique(cw)):
        return np.zeros(N, bool)
    out = []
    for n in range(N):
        ok = True
        for b in range(cw.shape[1] // K):
            nz = [int(c) for c in cw[n, b * K:(b + 1) * K] if int(f.sig[int(c)])]
            lo = min((int(f.exp[c]) for c in nz), default=0)
            top = max((int(f.exp[c]) + int(f.sig[c]).bit_length() for c in nz), default=0)
            ok = ok and K * amax * 2 ** (top - lo) <= 2 ** 53
        out.append(ok)
    return np.array(out)


ALIGNED = (("aligned:32:8", 96), ("aligned:32:12", 96), ("aligned:32:16", 96), ("aligned:16:16", 96))


def test_aligned_fast_path_bit_identical():
    """Every activation x weight format x aligned accumulator (one and several blocks), edge-heavy,
    moderate, NaN/Inf-holding and mixed operands, block scales up to overflow: auto == sequential,
    the BLAS path runs exactly on the expected columns, a sample against the Fractions."""
    M, N = 7, 9
    n = n_fast = n_slow = n_ovf = n_mixed = 0
    for a, w, (acc, Kd) in ((a, w, x) for a in A16 for w in W_FMTS for x in ALIGNED):
        rng = np.random.default_rng(zlib.crc32(repr(("fast aligned", a, w, acc)).encode()))
        K, Mb = AccSpec.parse(acc).block, AccSpec.parse(acc).align_bits
        variants = [("edge-heavy", draw(rng, a, (M, Kd), 0), draw(rng, w, (N, Kd), 0)),
                    ("moderate", draw(rng, a, (M, Kd), 0), _moderate(rng, w, (N, Kd), -8, 8)),
                    ("special", draw(rng, a, (M, Kd), 0.01), draw(rng, w, (N, Kd), 0.01)),
                    ("mixed rows", draw(rng, a, (M, Kd), 0), _moderate(rng, w, (N, Kd), -8, 8))]
        variants[3][2][::3] = draw(rng, w, (N, Kd), 0)[::3]  # bf16: these columns need the exact register
        if w == "bf16":  # columns 1 and 2: block 0's weights span exactly the allowed 2**D, and one more
            _, ca3, cw3 = variants[3]
            kam = K * max(abs(x) for row in ca3 for b in range(Kd // K)
                          for x in R.align_block(row[b * K:(b + 1) * K].tolist(), a, Mb)[1])
            D = max(d for d in range(80) if kam * 2 ** d <= 2 ** 53)
            for j, dd in ((1, D), (2, D + 1)):  # 1.0 (top = 1) and 2**(1 - dd + 7) (lo = 1 - dd)
                small = np.array([2.0 ** (8 - dd)], np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)[0]
                cw3[j, :K] = np.where(np.arange(K) % 2 == 0, 0x3F80, small)
        for name, ca, cw in variants:
            sa = rng.integers(-40, 100, (M, Kd // 32))  # block scales: overflow and subnormal results
            sw = rng.integers(-30, 10, N)
            fast = _expect_aligned_fast(ca, cw, a, w, K, Mb)
            r, d = _run(ca, cw, a, w, acc, sa, sw, "block", "channel", 32, specials="propagate")
            assert d["aligned fast"] == M * fast.sum() and d["aligned sequential"] == M * (~fast).sum()
            if name == "moderate" or w != "bf16" and name in ("edge-heavy", "mixed rows"):
                assert fast.all(), (a, w, acc, name)  # int64-register weights and moderate bf16: the BLAS path
            if name == "special":
                assert not fast.any(), (a, w, acc, name)
            if name == "mixed rows" and w == "bf16":
                assert fast[1] and not fast[2] and not fast[0], (a, w, acc)  # both sides of the 2**53 bound
            n_fast += int(fast.sum())
            n_slow += int((~fast).sum())
            n_mixed += bool(fast.any() and not fast.all())
            n_ovf += int(r.overflow[:, fast].sum())
            for m, j in ((0, 0), (M - 1, N - 1), (3, 4), (2, 1), (2, 2)):
                want = R.aligned_dot(ca[m].tolist(), cw[j].tolist(), a, w, K, Mb,
                                     [int(sa[m, (b * K) // 32] + sw[j]) for b in range(Kd // K)])
                assert (int(r.acc[m, j]), bool(r.overflow[m, j]), bool(r.invalid[m, j])) == want
            n += r.acc.size
    assert n == 10 * len(ALIGNED) * 4 * M * N and n_fast + n_slow == 10 * len(ALIGNED) * 4 * N
    assert n_fast >= 8 * len(ALIGNED) * 3 * N and n_slow >= 10 * len(ALIGNED) * N
    assert n_mixed >= 2 * len(ALIGNED) and n_ovf >= 10, (n_mixed, n_ovf)  # bf16 calls split by column


def test_aligned_fast_designed_edge():
    """bf16 weights 1, 2**-24 and 2**-k, activations 1 (M = 16: a_int = 2**14), K = 4: the bound
    K * max|a_int| * 2**(top - lo) = 2**(16 + 1 + k + 7) allows the BLAS path up to k = 29.  At k = 60
    a float64 sum would drop the 2**-60 that decides the tie 1 + 2**-24: only the exact register
    gets it."""
    bf = lambda x: np.array(x, np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)  # noqa: E731
    a = bf([[1.0, 1.0, 1.0, 1.0]])
    for k, fast in ((29, 2), (30, 0), (60, 0)):
        w = bf([[1.0, 2.0 ** -24, 2.0 ** -k, 0.0], [1.0, 2.0 ** -24, -(2.0 ** -k), 0.0]])
        r, d = _run(a, w, "bf16", "bf16", "aligned:4:16")
        assert d["aligned fast"] == fast and d["aligned sequential"] == 2 - fast
        assert r.as_float32().tolist() == [[1.0 + 2.0 ** -23, 1.0]]
        assert [int(x) for x in r.acc[0]] == [R.aligned_dot(a[0].tolist(), w[j].tolist(), "bf16", "bf16", 4, 16)[0]
                                              for j in range(2)]


def test_aligned_fast_signed_zero():
    """Block 0 sums to -2**-160, which rounds to -0; block 1 is all zeros (activations 0, weights
    negative): its exact sum is +0 and -0 + (+0) = +0, on the BLAS path as in the register."""
    bf = lambda x: np.array(x, np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)  # noqa: E731
    a = bf([[2.0 ** -126, 0.0, 0.0, 0.0]])
    w = bf([[-(2.0 ** -34), -1.0, 0.0, -2.0]])
    r, d = _run(a, w, "bf16", "bf16", "aligned:2:8")
    assert d["aligned fast"] == 1 and r.acc[0, 0] == 0
    r, d = _run(a[:, :2], w[:, :2], "bf16", "bf16", "aligned:2:8")
    assert d["aligned fast"] == 1 and r.acc[0, 0] == 0x80000000  # one block: -0 stays
    assert [int(r.acc[0, 0])] == [R.aligned_dot(a[0, :2].tolist(), w[0, :2].tolist(), "bf16", "bf16", 2, 8)[0]]


def test_aligned_fast_large_shape():
    """A MiniLM-like shape on the BLAS path (rf8 and bf16 weights), same bits."""
    from rf8sim.golden import encode

    rng = np.random.default_rng(4)
    ca = encode(rng.standard_normal((33, 384)).astype(np.float32), "bf16")
    x = rng.standard_normal((300, 384)).astype(np.float32)
    for w, cw in (("rf8", encode(x, "rf8")), ("bf16", encode(x * 0.05, "bf16"))):
        r, d = _run(ca, cw, "bf16", w, "aligned:32:16", None, rng.integers(-9, -3, 300), "tensor", "channel")
        assert d["aligned fast"] == 33 * 300 and d["aligned sequential"] == 0


def _bf16_spread(rng, N, Kd, K, dmax):
    """bf16 weight codes whose blocks of K span up to dcol binades (dcol drawn per column in
    0 .. dmax, block 0 spans exactly dcol, both ends present), from subnormals (2**-133) to 2**100,
    with +0 / -0 mixed in."""
    e = np.empty((N, Kd), np.int64)
    for n in range(N):
        dcol = int(rng.integers(0, dmax + 1))
        for b in range(Kd // K):
            d = dcol if b == 0 else int(rng.integers(0, dcol + 1))
            base = int(rng.integers(-133, 100 - d))
            ee = rng.integers(base, base + d + 1, K)
            ee[0], ee[-1] = base, base + d
            e[n, b * K:(b + 1) * K] = ee
    sig = 1.0 + rng.integers(0, 128, (N, Kd)) / 128.0
    x = np.ldexp(np.where(e < -126, 1.0, sig) * rng.choice([-1.0, 1.0], (N, Kd)), e)  # subnormals: a power of 2
    x[rng.random((N, Kd)) < 0.05] = 0.0
    x[rng.random((N, Kd)) < 0.02] = -0.0
    c = x.astype(np.float32).astype(ml_dtypes.bfloat16)
    assert np.array_equal(c.astype(np.float64), x)  # every value a bf16 value
    return c.view(np.uint16)


def test_aligned_fast_bf16_wide_spread_tiles():
    """bf16 weights whose blocks span up to 45 binades (the 2**53 bound falls at ~28 here), N = 300
    (three column tiles of the BLAS path, columns on both sides of the bound in each), M = 40 rows
    with 32 blocks (two row chunks of the BLAS path), bf16 and fp16 activations, weight scales for normal, subnormal /
    underflowing and overflowing results: auto == sequential on every output, the BLAS path runs on
    exactly the columns the Fraction-derived bound allows; a NaN weight in the last tile sends the
    whole call to the exact register after the tiles before it ran."""
    M, N, Kd, K = 40, 300, 128, 4
    n = n_fast = n_slow = n_ovf = n_sub = 0
    for a in A16:
        rng = np.random.default_rng(zlib.crc32(repr(("bf16 spread", a)).encode()))
        ca = _moderate(rng, a, (M, Kd), -10, 10)
        cw = _bf16_spread(rng, N, Kd, K, 45)
        fast = _expect_aligned_fast(ca, cw, a, "bf16", K, 16)
        for t in range(3):  # each tile of 128 columns holds both kinds
            assert fast[128 * t:128 * t + 128].any() and not fast[128 * t:128 * t + 128].all()
        wtop = np.frexp(np.abs(cw.view(ml_dtypes.bfloat16).astype(np.float64)).max(axis=1))[1]  # per column
        for sa, sw in ((0, -wtop + rng.integers(-9, 4, N)), (-120, -15 - wtop + rng.integers(-12, 8, N)),
                       (60, 68 - wtop + rng.integers(-8, 4, N))):  # results near 1, subnormal, overflowing
            r, d = _run(ca, cw, a, "bf16", "aligned:4:16", sa, sw, "tensor", "channel")
            assert d["aligned fast"] == M * fast.sum() and d["aligned sequential"] == M * (~fast).sum()
            n += r.acc.size
            n_fast += M * int(fast.sum())
            n_slow += M * int((~fast).sum())
            n_ovf += int(r.overflow[:, fast].sum())
            f = np.abs(r.as_float32()[:, fast])
            n_sub += int(((f > 0) & (f < 2.0 ** -126)).sum())
            for m, j in ((0, int(np.flatnonzero(fast)[0])), (M - 1, int(np.flatnonzero(fast)[-1]))):
                want = R.aligned_dot(ca[m].tolist(), cw[j].tolist(), a, "bf16", K, 16,
                                     [int(sa + sw[j])] * (Kd // K))
                assert (int(r.acc[m, j]), bool(r.overflow[m, j]), bool(r.invalid[m, j])) == want
        cw2 = cw.copy()
        cw2[N - 1, 5] = 0x7FC0  # NaN
        r, d = _run(ca, cw2, a, "bf16", "aligned:4:16", 0, np.zeros(N, np.int64), "tensor", "channel",
                    specials="propagate")
        assert d["aligned fast"] == 0 and d["aligned sequential"] == M * N
        assert r.invalid[:, N - 1].all() and not r.invalid[:, :N - 1].any()
        n += r.acc.size
    assert n == len(A16) * 4 * M * N and n_fast + n_slow == len(A16) * 3 * M * N
    assert n_fast >= len(A16) * 3 * M * 100 and n_slow >= len(A16) * 3 * M * 50, (n_fast, n_slow)
    assert n_ovf >= 1000 and n_sub >= 1000, (n_ovf, n_sub)


def test_fast_paths_with_8bit_activations():
    """The float accumulators also take 8-bit activations: both fast paths on rf8/e4m3/e5m2 (and int8
    for fp32) activations, same bits as the sequential kernels and the Fractions."""
    rng = np.random.default_rng(6)
    n = 0
    for a in ("rf8", "e4m3", "e5m2", "int8"):
        for w in ("rf8", "e4m3"):
            ca, cw = _moderate(rng, a, (6, 64), -4, 4), _moderate(rng, w, (5, 64), -4, 4)
            sw = rng.integers(-6, 6, 5)
            for acc in ("fp32",) + (() if a == "int8" else ("aligned:16:12",)):
                r, d = _run(ca, cw, a, w, acc, None, sw, "tensor", "channel")
                assert d["fp32 fast" if acc == "fp32" else "aligned fast"] == 6 * 5, (a, w, acc)
                for m, j in ((0, 0), (5, 4)):
                    want = (R.fp32_dot(ca[m].tolist(), cw[j].tolist(), a, w, [int(sw[j])] * 64) if acc == "fp32" else
                            R.aligned_dot(ca[m].tolist(), cw[j].tolist(), a, w, 16, 12, [int(sw[j])] * 4))
                    assert (int(r.acc[m, j]), bool(r.overflow[m, j]), bool(r.invalid[m, j])) == want
                n += r.acc.size
    assert n == 30 * (4 * 2 * 2 - 2)


@pytest.mark.parametrize("acc", ["fp32", "aligned:32:16"])
def test_top_level_gemm_passes_method_through(acc):
    """``rf8sim.golden.gemm(method=...)`` reaches the W8A16 kernels: 'sequential' runs no fast path,
    'auto' runs it, and both give the same bits (4 x 64 x 8 outputs each)."""
    from rf8sim import golden

    rng = np.random.default_rng(7)
    a = rng.integers(0, 0x3F80, (4, 64), dtype=np.uint16)  # positive finite bf16 below 1.0
    w = rng.integers(0, 256, (8, 64), dtype=np.uint8)
    w[w == 0x7F] = 0  # no rf8 NaN/Inf codes
    w[w == 0xFF] = 0
    out = {}
    for method in ("sequential", "auto"):
        before = dict(fpacc.PATH_COUNTS)
        out[method] = golden.gemm(a, w, "bf16", "rf8", acc, method=method)
        delta = {k: fpacc.PATH_COUNTS[k] - before[k] for k in before}
        kind = acc.split(":")[0]
        if method == "sequential":
            assert delta[f"{kind} fast"] == 0 and delta[f"{kind} sequential"] == 4 * 8
        else:
            assert delta[f"{kind} fast"] == 4 * 8
    assert out["auto"].acc.shape == (4, 8)
    assert np.array_equal(out["auto"].acc, out["sequential"].acc)


def test_weight_tables_magnitude_shortcut():
    """Where _weight_tables allows the magnitude shortcut (bf16, e4m3, e5m2; not rf8 / int8), the
    block extent from the smallest nonzero and the largest magnitude equals, on every pair of codes
    and on random blocks, the extent from the format definition (Python ints)."""
    masks = {w: int(fpacc._weight_tables(F.get(w))[3]) for w in W_FMTS}
    assert masks == {"rf8": 0, "e4m3": 127, "e5m2": 127, "int8": 0, "bf16": 32767}
    n = 0
    for w, mask in masks.items():
        if not mask:
            continue
        f = F.get(w)
        lo_t, top_t = fpacc._weight_tables(f)[:2]
        rng = np.random.default_rng(zlib.crc32(w.encode()))
        ncode = len(f.values)
        blocks = [rng.integers(0, ncode, 8) for _ in range(3000)] + [np.array([0, ncode // 2] * 4)]
        if ncode <= 256:
            blocks += [np.array([c1, c2]) for c1 in range(ncode) for c2 in range(ncode)]
        for blk in blocks:
            mags = [int(c) & mask for c in blk]
            nzm = [m for m in mags if m]
            lo = int(lo_t[min(nzm)]) if nzm else int(fpacc._LO32)
            top = int(top_t[max(mags)])
            want_lo, want_hi, bad = _extent(blk, w, 0)
            if bad:
                assert top == int(fpacc._LO32)
            else:
                assert (lo, top) == ((want_lo, want_hi) if want_lo is not None else (int(fpacc._LO32), -int(fpacc._LO32)))
            n += 1
    assert n == 2 * (256 * 256 + 3001) + 3001
