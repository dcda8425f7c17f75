"""W8A16 golden arithmetic (rf8sim.golden.fpacc): products, fp32 and aligned:K:M accumulators,
checked against the Python-integer / Fraction references of tests/oracles/binary32.py (and, where the
arithmetic is provably exact, against numpy float32/float64)."""

import zlib
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from oracles import binary32 as R
from rf8sim import formats as F
from rf8sim.errors import RF8SimError
from rf8sim.golden import AccSpec, AccSpecError, gemm, mac, products, view_float32
from rf8sim.golden import fpacc

W_FMTS = ("rf8", "e4m3", "e5m2", "int8", "bf16")
A_FMTS = ("rf8", "e4m3", "e5m2", "int8", "bf16", "fp16")
A_FLOAT = ("bf16", "fp16", "e4m3", "e5m2", "rf8")  # aligned: activations with an exponent field


def _dt(fmt):
    return np.uint16 if getattr(F.get(fmt), "code_bits", 8) > 8 else np.uint8


# ---------------------------------------------------------------------------
# edge-heavy code sequences


def draw(rng, fmt, size, special_rate=0.002, big=0.08):
    """Codes of ``fmt``: zeros, subnormals, extremes, values near 1, moderate and uniform codes."""
    f = F.get(fmt)
    vals = f.values
    fin = np.flatnonzero(f.special == F.SPECIAL_FINITE)
    mag = np.abs(vals[fin])
    pools = [fin,
             fin[mag == 0],
             fin[(mag > 0) & (mag < 2.0 ** (f.exp_min + f.sig_bits + 1))],  # subnormals / smallest
             fin[np.argsort(mag)[-32:]],  # largest magnitudes
             fin[(mag >= 0.5) & (mag <= 2)],
             fin[(mag >= 2.0 ** -6) & (mag <= 2.0 ** 6)]]
    pools = [p for p in pools if p.size]
    probs = np.array([0.25, 0.1, 0.1, big, 0.2, 0.35 - big][:len(pools)])
    which = rng.choice(len(pools), size=size, p=probs / probs.sum())
    out = np.empty(int(np.prod(size)), np.int64)
    for i, p in enumerate(pools):
        sel = which.reshape(-1) == i
        out[sel] = rng.choice(p, int(sel.sum()))
    spec = np.flatnonzero(f.special != F.SPECIAL_FINITE)
    if spec.size and special_rate:
        s = rng.random(out.size) < special_rate
        out[s] = rng.choice(spec, int(s.sum()))
    return out.reshape(size).astype(_dt(fmt))


def cancel(a, w, a_fmt, rng, rate=0.1):
    """Make some terms cancel the previous one exactly (flip the activation's sign bit)."""
    sb = getattr(F.get(a_fmt), "code_bits", 8) - 1
    if F.get(a_fmt).kind == "int":
        return a, w
    fa, fw = a.reshape(-1), w.reshape(-1)
    idx = np.flatnonzero(rng.random(fa.size - 1) < rate) + 1
    fa[idx] = fa[idx - 1] ^ np.array(1 << sb, fa.dtype)
    fw[idx] = fw[idx - 1]
    return a, w


def _trace_rows(tr):
    return [(int(b), bool(o), bool(i)) for b, o, i in zip(tr.acc, tr.overflow, tr.invalid)]


# ---------------------------------------------------------------------------
# AccSpec


def test_accspec_kinds_and_parse():
    assert AccSpec.parse("fp32") == AccSpec.fp32() and str(AccSpec.fp32()) == "fp32"
    s = AccSpec.parse(" Aligned:32:16 ")
    assert (s.kind, s.block, s.align_bits, str(s)) == ("aligned", 32, 16, "aligned:32:16")
    assert AccSpec.parse("8:24") == AccSpec(8, 24) and AccSpec(8, 24).kind == "fixed"
    assert AccSpec.parse("exact:16", "rf8", "rf8").is_fixed
    assert AccSpec.aligned(4096, 2).block == 4096 and AccSpec.aligned(1, 24).align_bits == 24
    for bad, needle in [("aligned:0:16", "1 <= K <= 4096"), ("aligned:4097:8", "1 <= K <= 4096"),
                        ("aligned:32:1", "2 <= M <= 24"), ("aligned:32:25", "2 <= M <= 24"),
                        ("fp64", "'fp32', 'aligned:K:M'"), ("aligned:32", "'fp32', 'aligned:K:M'")]:
        with pytest.raises(AccSpecError, match=needle):
            AccSpec.parse(bad)
    with pytest.raises(AccSpecError, match="fixed-point accumulators only"):
        _ = AccSpec.fp32().max
    with pytest.raises(AccSpecError, match="fixed-point accumulators only"):
        AccSpec.aligned(32, 16).align(0, 1, 1)
    with pytest.raises(AccSpecError, match="no frac_bits"):
        AccSpec(8, 24, "fp32")


def test_block_width_derivation():
    """Register width = bitlen(K * (2**(M-1) - 1) * max(sig_w * 2**(exp_w - exp_w_min))) + 1, brute force."""
    n = 0
    for w in W_FMTS:
        f = F.get(w)
        fin = np.flatnonzero((f.special == 0) & (f.sig > 0))
        emin = min(int(f.exp[c]) for c in fin)
        top = max(int(f.sig[c]) << (int(f.exp[c]) - emin) for c in fin)
        for K, M in [(1, 2), (32, 16), (64, 24), (4096, 24), (16, 8)]:
            want = (K * ((1 << (M - 1)) - 1) * top).bit_length() + 1
            assert AccSpec.aligned(K, M).block_width(w) == want
            n += 1
    assert n == 25
    assert AccSpec.aligned(32, 16).block_width("rf8") == 40  # 5 + 14 + 15 + 5 + 1
    assert AccSpec.aligned(4096, 24).block_width("rf8") <= 61  # int64 path for every rf8 block


# ---------------------------------------------------------------------------
# the exact float32 adder


def _f32_of(bits):
    return float(np.array([bits], np.uint32).view(np.float32)[0])


def _ref_add_bits(acc_bits, neg, mb, eb):
    a = R.Num(Fraction(_f32_of(acc_bits)), bool(acc_bits >> 31))
    p = R.Num(Fraction(mb) * Fraction(2) ** eb * (-1 if neg else 1), neg)
    r, o, _ = R.add(a, p)
    return R.bits(r), o


def _got_add(acc_bits, neg, mb, eb):
    v, o = fpacc._add_exact(_f32_of(acc_bits), neg, mb, eb)
    return int(np.float32(v).view(np.uint32)), bool(o)


DESIGNED = [  # (acc bits, negative, mb, eb): ties, subnormals, overflow, cancellation, far apart
    (0x3F800000, False, 1, -24), (0x3F800000, False, 3, -24), (0x3F800000, True, 1, -25),
    (0x3F800000, False, (1 << 36) + 1, -60), (0x3F800000, True, (1 << 36) + 1, -61),
    (0x3F800001, False, 1, -24), (0x00000000, False, 1, -150), (0x00000000, False, 3, -150),
    (0x80000000, True, 1, -151), (0x80000000, True, 0, 0), (0x00000000, True, 0, 5),
    (0x80000000, False, 0, 5), (0x00000001, True, 1, -149), (0x00800000, True, 1, -149),
    (0x00800000, True, 1, -150), (0x7F7FFFFF, False, 1, 103), (0x7F7FFFFF, False, (1 << 40) - 1, 63),
    (0xFF7FFFFF, True, 1, 103), (0x7F7FFFFF, True, 1, 103), (0x3F800000, True, 1 << 40, -40),
    (0x4B800000, True, (1 << 48) - 1, -24), (0x3F800000, False, 1, -200), (0x3F800000, True, 1, -200),
    (0x00000001, False, (1 << 59) + 12345, -40), (0x3F800000, False, (1 << 59) - 1, 60),
    (0x3F800000, True, (1 << 24) - 1, -24), (0x00400000, True, 1 << 58, -208), (0x7F000000, False, 1, 127),
    # a truncated (sticky) subtrahend just below a tie: the borrow decides the rounding direction
    (0x3F800000, True, (1 << 59) + 1, -84), (0x80000000 | (57 << 23) | 1, False, (1 << 25) - 1, -25),
]


def test_add_exact_designed_and_random():
    rng = np.random.default_rng(5)
    cases = list(DESIGNED)
    for _ in range(6000):
        e = int(rng.integers(1, 255))
        kind = rng.integers(0, 5)
        if kind == 4:  # subnormal accumulator, products around 2**-149
            acc = int(rng.integers(0, 1 << 23)) | (int(rng.integers(0, 2)) << 31)
            mb = int(rng.integers(0, 1 << int(rng.integers(1, 30))))
            cases.append((acc, bool(rng.integers(0, 2)), mb, int(rng.integers(-185, -140)) - mb.bit_length() // 2))
            continue
        if kind == 0:  # any finite float32
            acc = int(rng.integers(0, 0x7F800000)) | (int(rng.integers(0, 2)) << 31)
        else:  # exponent-limited, so that the product lands near it
            acc = (e << 23) | int(rng.integers(0, 1 << 23)) | (int(rng.integers(0, 2)) << 31)
        mb = int(rng.integers(0, 1 << int(rng.integers(1, 61))))
        if kind == 3 and mb:  # a product just around the accumulator's last place
            eb = e - 150 - mb.bit_length() + int(rng.integers(-3, 30))
        else:
            eb = e - 150 + int(rng.integers(-90, 60)) if kind else int(rng.integers(-230, 120))
        cases.append((acc, bool(rng.integers(0, 2)), mb, eb))
    n = bad = 0
    n_ovf = n_sub = n_zero = 0
    for acc, neg, mb, eb in cases:
        want = _ref_add_bits(acc, neg, mb, eb)
        got = _got_add(acc, neg, mb, eb)
        bad += got != want
        n += 1
        n_ovf += want[1]
        n_sub += (want[0] & 0x7F800000) == 0 and (want[0] & 0x7FFFFF) != 0
        n_zero += (want[0] & 0x7FFFFFFF) == 0
    assert bad == 0
    assert n == len(DESIGNED) + 6000
    assert n_ovf >= 3 and n_sub >= 20 and n_zero >= 5  # the edge classes were reached


def test_double_rounding_is_avoided():
    """acc = 1, block sum 2**-24 + 2**-60: float64 then float32 rounds twice (to 1.0); the exact
    adder gives 1 + 2**-23."""
    s = Fraction((1 << 36) + 1) * Fraction(2) ** -60
    naive = np.float32(np.float64(1.0) + np.float64(float(s)))
    assert naive == np.float32(1.0)
    got, _ = fpacc._add_exact(1.0, False, (1 << 36) + 1, -60)
    assert got == 1.0 + 2.0 ** -23 == float(R.rne_f32(1 + s)[0])


def test_fp32_fast_and_integer_step_agree():
    """The float64 fast path (TwoSum-checked) and the integer path give the same fused add."""
    rng = np.random.default_rng(11)
    n = 0
    for _ in range(4000):
        acc = float(np.array([int(rng.integers(0, 0x7F800000))], np.uint32).view(np.float32)[0])
        acc = -acc if rng.integers(0, 2) else acc
        a_ss = int(rng.integers(-(1 << 11), 1 << 11))
        w_ss = int(rng.integers(-(1 << 8), 1 << 8))
        pexp = int(rng.integers(-300, 260))
        p = float(a_ss * w_ss) * 2.0 ** pexp
        r0 = fpacc._fp32_step(acc, p, a_ss, w_ss, pexp, False)
        r1 = fpacc._fp32_step(acc, p, a_ss, w_ss, pexp, True)
        assert np.float32(r0[0]).view(np.uint32) == np.float32(r1[0]).view(np.uint32) and r0[1:] == r1[1:]
        n += 1
    assert n == 4000


# ---------------------------------------------------------------------------
# products


def test_products_rf8_x_bf16_exhaustive():
    """Every rf8 code x every bf16 code (16.7 M pairs): value of (sign, sig, exp) == the float64
    product of independently decoded operands (ml_dtypes.bfloat16, the rf8 table; exact: <= 13
    bits), specials where an operand is NaN/Inf; a sample against the Python-Fraction formula."""
    w = np.arange(256, dtype=np.uint8)
    a_all = np.arange(65536, dtype=np.uint16)
    wv = F.get("rf8").values
    with np.errstate(invalid="ignore"):
        av = a_all.view(ml_dtypes.bfloat16).astype(np.float32).astype(np.float64)
    n = 0
    for lo in range(0, 65536, 8192):
        a = a_all[lo:lo + 8192]
        sign, sig, exp, special = products(a[:, None], w[None, :], "bf16", "rf8")
        with np.errstate(invalid="ignore"):
            want = av[lo:lo + 8192, None] * wv[None, :]
        fin = np.isfinite(want)
        assert np.array_equal(special.astype(bool), ~np.isfinite(av[lo:lo + 8192, None]) | np.zeros_like(fin))
        got = np.where(sign == 1, -1.0, 1.0) * np.ldexp(sig.astype(np.float64), exp)
        assert np.array_equal(got[fin], want[fin])
        # signed zeros: sign == xor of the operand signs
        assert np.array_equal(sign[fin].astype(bool), np.signbit(want[fin]))
        n += sig.size
    assert n == 65536 * 256
    rng = np.random.default_rng(3)
    for ca, cw in zip(rng.integers(0, 65536, 400), rng.integers(0, 256, 400)):
        s, g, e, sp = products(np.uint16(ca), np.uint8(cw), "bf16", "rf8")
        assert s.shape == g.shape == e.shape == sp.shape == ()
        want = R.product(R.decode(ca, "bf16"), R.decode(cw, "rf8"))
        if isinstance(want, str):
            assert sp == 1
        else:
            assert sp == 0 and (-1) ** int(s) * Fraction(int(g)) * Fraction(2) ** int(e) == want.v


@pytest.mark.parametrize("w", W_FMTS)
@pytest.mark.parametrize("a", A_FMTS)
def test_products_every_pair_sampled(a, w):
    """Every weight x activation format pair, 3000 code pairs (edge-heavy) against the Fraction
    formula, with scale exponents."""
    rng = np.random.default_rng(zlib.crc32(repr((a, w)).encode()))
    ca, cw = draw(rng, a, 3000, 0.01), draw(rng, w, 3000, 0.01)
    ka, kw = rng.integers(-20, 20, 3000), rng.integers(-20, 20, 3000)
    sign, sig, exp, special = products(ca, cw, a, w, ka, kw)
    n = 0
    for i in range(3000):
        want = R.product(R.decode(ca[i], a), R.decode(cw[i], w), int(ka[i] + kw[i]))
        if isinstance(want, str):
            assert special[i] == 1 and sig[i] == 0
        else:
            got = Fraction(int(sig[i])) * Fraction(2) ** int(exp[i])
            assert special[i] == 0 and (-got if sign[i] else got) == want.v and bool(sign[i]) == want.neg
        n += 1
    assert n == 3000


@pytest.mark.slow
@pytest.mark.parametrize("w", ("e4m3", "e5m2", "int8"))
@pytest.mark.parametrize("a", ("bf16", "fp16"))
def test_products_exhaustive_slow(a, w):
    """Every 8-bit weight code x every 16-bit activation code, against float64 of decoded operands."""
    av = np.arange(65536, dtype=np.uint16).view(ml_dtypes.bfloat16 if a == "bf16" else np.float16)
    with np.errstate(invalid="ignore"):
        av = av.astype(np.float32).astype(np.float64)
    wv = F.get(w).values
    n = 0
    for lo in range(0, 65536, 8192):
        a_c = np.arange(lo, lo + 8192, dtype=np.uint16)
        sign, sig, exp, special = products(a_c[:, None], np.arange(256, dtype=np.uint8)[None, :], a, w)
        with np.errstate(invalid="ignore"):
            want = av[lo:lo + 8192, None] * wv[None, :]
        fin = np.isfinite(av[lo:lo + 8192, None]) & np.isfinite(wv[None, :])
        assert np.array_equal(special.astype(bool), ~fin)
        got = np.where(sign == 1, -1.0, 1.0) * np.ldexp(sig.astype(np.float64), exp)
        assert np.array_equal(got[fin], want[fin])
        n += sig.size
    assert n == 65536 * 256


# ---------------------------------------------------------------------------
# fp32 accumulator


@pytest.mark.parametrize("w", W_FMTS)
@pytest.mark.parametrize("a", A_FMTS)
def test_fp32_mac_against_fractions(a, w):
    rng = np.random.default_rng(zlib.crc32(repr(("fp32", a, w)).encode()))
    n_checked = 0
    for lanes, n in ((1, 160), (4, 50)):
        ca = draw(rng, a, (n, lanes), 0.004)
        cw = draw(rng, w, (n, lanes), 0.004)
        ca, cw = cancel(ca, cw, a, rng)
        clear = rng.random(n) < 0.04
        want = R.fp32_trace(ca.tolist(), cw.tolist(), clear, a, w)
        for force_int in (False, True):
            got = fpacc.mac(ca, cw, clear, a, w, AccSpec.fp32(), force_int=force_int)
            assert _trace_rows(got) == want
        public = mac(ca, cw, clear, a, w, "fp32")
        assert _trace_rows(public) == want
        n_checked += n
    assert n_checked == 210


def test_fp32_edge_classes_reached():
    """Long bf16 x bf16 sequences: overflow, NaN from Inf - Inf, subnormal and zero results,
    all equal to the reference; the counts show each class occurs."""
    rng = np.random.default_rng(2024)
    n = 3000
    ca = draw(rng, "bf16", (n, 1), 0.0008, big=0.03)
    cw = draw(rng, "bf16", (n, 1), 0.0008, big=0.03)
    ca, cw = cancel(ca, cw, "bf16", rng, 0.2)
    clear = rng.random(n) < 0.03
    want = R.fp32_trace(ca.tolist(), cw.tolist(), clear, "bf16", "bf16")
    got = _trace_rows(mac(ca, cw, clear, "bf16", "bf16", "fp32"))
    assert got == want
    bits = np.array([g[0] for g in got], np.uint32)
    ovf = np.array([g[1] for g in got])
    inv = np.array([g[2] for g in got])
    f = bits.view(np.float32)
    sub = (np.abs(f) > 0) & (np.abs(f) < np.finfo(np.float32).tiny)
    assert ovf.sum() >= 10 and inv.sum() >= 10 and sub.sum() >= 5 and (f == 0).sum() >= 20
    assert np.isinf(f).sum() >= 5 and (bits[np.isnan(f)] == 0x7FC00000).all()


def test_fp32_specials_contract():
    """Inf * 0 -> NaN + invalid; Inf * x -> Inf (no flag); Inf + -Inf -> NaN + invalid;
    NaN canonical; (+0) + (-0) = +0, (-0) + (-0) = -0, x + (-x) = +0."""
    bf = lambda x: np.array(x, np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)  # noqa: E731
    one = np.uint8(0x38)  # rf8 1.0
    w1 = np.full(2, one, np.uint8)

    def run(xs, ws=None):
        a = bf(xs)
        w = np.full(len(xs), one, np.uint8) if ws is None else np.array(ws, np.uint8)
        return mac(a, w, None, "bf16", "rf8", "fp32")

    assert float(F.get("rf8").values[one]) == 1.0
    t = run([np.inf, 1.0])
    assert t.as_float32()[-1] == np.inf and not t.invalid.any() and not t.overflow.any()
    t = run([np.inf, -np.inf, 1.0])
    assert t.acc[1] == 0x7FC00000 and t.acc[2] == 0x7FC00000 and t.invalid[1:].all() and not t.invalid[0]
    t = run([np.inf], [0x00])  # Inf * (+0)
    assert t.acc[0] == 0x7FC00000 and t.invalid[0]
    t = run([-0.0, -0.0])
    assert t.acc[0] == 0 and t.acc[1] == 0  # (+0) + (-0) = +0 (acc starts at +0)
    t = run([-0.0], [0x80])  # (-0) * (-0) = +0
    assert t.acc[0] == 0
    t = run([3.0, -3.0])
    assert t.acc[1] == 0
    t = run([np.nan])
    assert t.acc[0] == 0x7FC00000 and t.invalid[0]
    t = run([-np.nan])
    assert t.acc[0] == 0x7FC00000
    assert w1.size == 2


def test_fp32_negative_zero_accumulates():
    """-0 only arises from rounding a tiny negative sum to zero, and (-0) + (-0) keeps it."""
    # acc = -2**-149 * (1/4) rounds to -0: bf16 2**-133 x bf16 -2**-18
    a = np.array([0x0080, 0x8000], np.uint16)  # 2**-126 (min normal bf16), -0
    w = np.array([0xB480, 0x3F80], np.uint16)  # -2**-22... -> product -2**-148? use the reference
    t = mac(a, w, None, "bf16", "bf16", "fp32")
    want = R.fp32_trace(a[:, None].tolist(), w[:, None].tolist(), [True, False], "bf16", "bf16")
    assert _trace_rows(t) == want
    a = np.array([0x0001, 0x8000], np.uint16)  # smallest bf16 subnormal 2**-133
    w = np.array([0xB000, 0x3F80], np.uint16)  # -2**-31: product -2**-164 rounds to -0
    t = mac(a, w, None, "bf16", "bf16", "fp32")
    assert t.acc[0] == 0x80000000 and t.acc[1] == 0x80000000  # -0, then (-0) + (-0) = -0
    assert _trace_rows(t) == R.fp32_trace(a[:, None].tolist(), w[:, None].tolist(), [True, False], "bf16", "bf16")


@pytest.mark.parametrize("a,w", [("bf16", "rf8"), ("fp16", "e4m3"), ("bf16", "bf16"), ("e5m2", "int8")])
def test_fp32_gemm_against_fractions_with_scales(a, w):
    rng = np.random.default_rng(7)
    M, N, K = 5, 6, 48  # N = 6: a block of four columns and two single ones
    ca = draw(rng, a, (M, K), 0.003)
    cw = draw(rng, w, (N, K), 0.003)
    sa = rng.integers(-30, 90, (M, K // 16))  # block scales: overflow reachable
    sw = rng.integers(-30, 30, N)
    r = gemm(ca, cw, a, w, "fp32", sa, sw, "block", "channel", 16)
    assert r.acc.dtype == np.uint32
    n = 0
    for m in range(M):
        for j in range(N):
            scales = [int(sa[m, k // 16] + sw[j]) for k in range(K)]
            want = R.fp32_dot(ca[m].tolist(), cw[j].tolist(), a, w, scales)
            assert (int(r.acc[m, j]), bool(r.overflow[m, j]), bool(r.invalid[m, j])) == want
            n += 1
    assert n == M * N
    assert r.overflow.any() or a != "bf16"


def test_fp32_equals_float32_numpy_when_exact():
    """Integer-valued bf16 activations x int8 weights with |partial sums| < 2**24: every rounding is
    exact, so the golden chain equals numpy's float32 cumulative sum."""
    rng = np.random.default_rng(1)
    M, N, K = 16, 12, 64
    x = rng.integers(-40, 41, (M, K)).astype(np.float32)
    a = x.astype(ml_dtypes.bfloat16).view(np.uint16)
    wi = rng.integers(-127, 128, (N, K))
    w = wi.astype(np.int8).view(np.uint8)
    r = gemm(a, w, "bf16", "int8", "fp32")
    want = np.cumsum(x[:, None, :].astype(np.float32) * wi[None, :, :].astype(np.float32), axis=2,
                     dtype=np.float32)[:, :, -1]
    assert np.array_equal(r.as_float32(), want) and r.acc.size == M * N


def test_fp32_equals_float64_fma_emulation_when_provably_exact():
    """bf16 activations in 2**-8..2**8 x rf8 weights: a product has <= 13 bits and every partial sum
    spans < 53 bits, so float64(acc) + float64(p) is exact and one float32 rounding per step is the
    fused add; a vectorized float64 emulation must give the same bits (a larger GEMM)."""
    rng = np.random.default_rng(9)
    M, N, K = 32, 64, 192
    x = (rng.standard_normal((M, K)) * 4).astype(np.float32)
    x = np.where(np.abs(x) < 2.0 ** -8, 0, x)
    a = x.astype(ml_dtypes.bfloat16).view(np.uint16)
    av = a.view(ml_dtypes.bfloat16).astype(np.float64)
    w = draw(rng, "rf8", (N, K), 0)
    wv = F.get("rf8").values[w]
    acc = np.zeros((M, N), np.float64)
    for k in range(K):
        acc = (acc + av[:, k, None] * wv[None, :, k]).astype(np.float32).astype(np.float64)
    r = gemm(a, w, "bf16", "rf8", "fp32")
    assert np.array_equal(r.as_float32(), acc.astype(np.float32))
    assert not r.overflow.any() and not r.invalid.any() and r.acc.size == M * N


# ---------------------------------------------------------------------------
# aligned:K:M


def test_align_activations_every_bf16_code():
    """All 65,536 bf16 codes aligned against several block maxima and M: the Fraction reference."""
    maxima = [0x3F80, 0x4000, 0x0080, 0x0001, 0x7F7F, 0x3FFF]  # 1, 2, min normal, min subnormal, max, 1.99
    a_all = np.arange(65536, dtype=np.uint16)
    fin = np.flatnonzero(np.isfinite(a_all.view(ml_dtypes.bfloat16).astype(np.float32)))
    rng = np.random.default_rng(0)
    n = sat = 0
    for M in (4, 8, 16, 24):
        for cmax in maxima:
            sub = fin if M == 8 else rng.choice(fin, 3000)
            sub = sub[(sub & 0x7F80) <= (cmax & 0x7F80)]  # the block maximum is cmax's exponent field
            blocks = np.stack([sub.astype(np.uint16), np.full(sub.size, cmax, np.uint16)], 1)
            al = fpacc.align_activations(blocks, "bf16", 2, M)
            for i in range(0, sub.size, 1 if M == 8 and cmax == 0x3F80 else 7):
                q, ints = R.align_block(blocks[i].tolist(), "bf16", M)
                assert al.q[i, 0] == q and al.a_int[i].tolist() == ints
                sat += abs(ints[0]) == (1 << (M - 1)) - 1
                n += 1
    assert n > 40000 and sat >= 5


@pytest.mark.parametrize("w", W_FMTS)
@pytest.mark.parametrize("a", A_FLOAT)
def test_aligned_mac_against_fractions(a, w):
    rng = np.random.default_rng(zlib.crc32(repr(("al", a, w)).encode()))
    n_checked = n_changes = 0
    for K, M, lanes in ((8, 16, 4), (6, 8, 1), (4, 3, 2), (16, 24, 16)):
        bpb = K // lanes
        nblk = 24
        n = nblk * bpb
        sp = 0.003 if K <= 8 else 0.0003  # a NaN poisons the rest of its segment
        ca = draw(rng, a, (n, lanes), sp)
        cw = draw(rng, w, (n, lanes), sp)
        ca, cw = cancel(ca, cw, a, rng)
        clear = np.zeros(n, bool)
        clear[[0, 5 * bpb, 11 * bpb]] = True
        want = R.aligned_trace(ca.tolist(), cw.tolist(), clear, a, w, K, M)
        for fw in (False, True):
            got = fpacc.mac(ca, cw, clear, a, w, AccSpec.aligned(K, M), force_wide=fw)
            assert _trace_rows(got) == want, (K, M, lanes, fw)
        assert _trace_rows(mac(ca, cw, clear, a, w, f"aligned:{K}:{M}")) == want
        # the accumulator changes only on the last beat of a block (or restarts at a clear)
        acc = np.array([r[0] for r in want])
        changed = np.flatnonzero(acc[1:] != acc[:-1]) + 1
        assert all((i + 1) % bpb == 0 or clear[i] for i in changed)
        n_changes += changed.size
        n_checked += n
    assert n_checked == 24 * (2 + 6 + 2 + 1) and n_changes >= 20


@pytest.mark.parametrize("a,w", [("bf16", "rf8"), ("fp16", "e4m3"), ("bf16", "bf16"), ("bf16", "e5m2"),
                                 ("fp16", "int8")])
def test_aligned_gemm_against_fractions(a, w):
    rng = np.random.default_rng(8)
    M_, N, Kd, K, Mb = 4, 5, 64, 16, 12
    ca = draw(rng, a, (M_, Kd), 0)
    cw = draw(rng, w, (N, Kd), 0)
    sa = rng.integers(-20, 60, (M_, Kd // 32))
    sw = rng.integers(-10, 10, N)
    r = gemm(ca, cw, a, w, f"aligned:{K}:{Mb}", sa, sw, "block", "channel", 32)
    n = 0
    for m in range(M_):
        for j in range(N):
            scales = [int(sa[m, (b * K) // 32] + sw[j]) for b in range(Kd // K)]
            want = R.aligned_dot(ca[m].tolist(), cw[j].tolist(), a, w, K, Mb, scales)
            assert (int(r.acc[m, j]), bool(r.overflow[m, j]), bool(r.invalid[m, j])) == want
            n += 1
    assert n == M_ * N
    r2 = fpacc.gemm(ca, cw, a, w, AccSpec.aligned(K, Mb), sa, sw, "block", "channel", 32, force_wide=True)
    assert np.array_equal(r2.acc, r.acc) and np.array_equal(r2.overflow, r.overflow)


def test_aligned_specials_gemm_policy_and_mac_contract():
    x = np.ones((2, 32), np.float32)
    x[1, 20] = np.nan
    a = x.astype(ml_dtypes.bfloat16).view(np.uint16)
    w = np.full((3, 32), 0x38, np.uint8)
    with pytest.raises(AccSpecError, match=r"activation row 1, block 1 \(k = 16..31\).*specials='propagate'"):
        gemm(a, w, "bf16", "rf8", "aligned:16:8")
    r = gemm(a, w, "bf16", "rf8", "aligned:16:8", specials="propagate")
    assert (r.acc[1] == 0x7FC00000).all() and r.invalid[1].all() and not r.invalid[0].any()
    assert (r.as_float32()[0] == 32).all()
    t = mac(a[1].reshape(8, 4), w[0].reshape(8, 4), None, "bf16", "rf8", "aligned:16:8")
    assert t.acc[3] != 0x7FC00000 and (t.acc[7:] == 0x7FC00000).all() and t.invalid.tolist() == [False] * 7 + [True]


def test_aligned_wide_register_keeps_far_bits():
    """bf16 weights (a 280-bit block register): 1 + 2**-24 (a tie) +- 2**-100 rounds by the far bit;
    the fp32 chain, rounding at each step, lands on 1.0 both times."""
    bf = lambda x: np.array(x, np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)  # noqa: E731
    a = bf([[1.0, 1.0, 1.0, 1.0]])
    cases = [([1.0, 2.0 ** -24, 2.0 ** -100, 0.0], 1.0 + 2.0 ** -23), ([1.0, 2.0 ** -24, -(2.0 ** -100), 0.0], 1.0),
             ([1.0, 2.0 ** -24, 0.0, 0.0], 1.0), ([2.0 ** -100, 1.0, -(2.0 ** -25), 0.0], 1.0)]
    for wv, want in cases:
        w = bf([wv])
        r = gemm(a, w, "bf16", "bf16", "aligned:4:16")
        assert r.as_float32()[0, 0] == np.float32(want)
        assert (int(r.acc[0, 0]), False, False) == R.aligned_dot(a[0].tolist(), w[0].tolist(), "bf16", "bf16", 4, 16)
        assert gemm(a, w, "bf16", "bf16", "fp32").as_float32()[0, 0] == 1.0


def test_aligned_saturation_and_rounding_rule():
    """M = 4: 1.9921875 with block max exponent 0 rounds to 8 = 2**(M-1) and saturates to 7;
    1.0625 (= 4.25 units) rounds half-even to 4; ties to even on the magnitude (-2.5 units -> -2)."""
    x = np.array([[1.9921875, 1.0625, -0.625, 0.0]], np.float32)
    a = x.astype(ml_dtypes.bfloat16).view(np.uint16)
    al = fpacc.align_activations(a, "bf16", 4, 4)
    assert al.q.tolist() == [[-2]] and al.a_int.tolist() == [[7, 4, -2, 0]]


# ---------------------------------------------------------------------------
# bad input: clear RF8SimErrors naming what is valid


def _bf(n):
    return np.zeros(n, np.uint16)


@pytest.mark.parametrize("call,needle", [
    (lambda: gemm(np.zeros((2, 48), np.uint16), np.zeros((3, 48), np.uint8), "bf16", "rf8", "aligned:32:8"),
     "must divide the reduction length"),
    (lambda: mac(_bf(6), np.zeros(6, np.uint8), None, "bf16", "rf8", "aligned:4:8"),
     "not a whole number of blocks"),
    (lambda: mac(np.zeros((8, 3), np.uint16), np.zeros((8, 3), np.uint8), None, "bf16", "rf8", "aligned:4:8"),
     "multiple of lanes=3"),
    (lambda: mac(np.zeros(8, np.uint8), np.zeros(8, np.uint8), None, "bf16", "rf8", "fp32"),
     "bf16 has 16-bit codes, which must be a uint16"),
    (lambda: mac(_bf(8), np.zeros(8, np.uint16), None, "bf16", "rf8", "fp32"),
     "rf8 has 8-bit codes, which must be a uint8"),
    (lambda: mac(_bf(8), _bf(8), None, "bf16", "fp16", "fp32"),
     "weight format fp16 has 16-bit codes"),
    (lambda: mac(_bf(8), np.zeros(8, np.uint8), None, "bf16", "rf8", "fp64"), "'fp32', 'aligned:K:M'"),
    (lambda: mac(_bf(8), np.zeros(8, np.uint8), None, "bf16", "rf8", "aligned:8:30"), "2 <= M <= 24"),
    (lambda: mac(np.zeros(8, np.uint8), np.zeros(8, np.uint8), None, "int8", "rf8", "aligned:8:8"),
     "activation format int8 has none"),
    (lambda: mac(_bf(8), np.zeros(8, np.uint8), None, "bf16", "rf8", "8:24"),
     "takes 8-bit formats; activation format bf16"),
    (lambda: gemm(np.zeros((2, 64), np.uint16), np.zeros((3, 64), np.uint8), "bf16", "rf8", "aligned:32:8",
                  None, np.zeros((3, 4), np.int64), "tensor", "block", 16), "must be a multiple of K=32"),
    (lambda: gemm(np.zeros((2, 8), np.uint16), np.zeros((3, 8), np.uint8), "bf16", "rf8", "fp32",
                  np.int64(900)), "outside the E8M0 range -127..127"),
    (lambda: gemm(np.zeros((2, 8, 1), np.uint16), np.zeros((3, 8), np.uint8), "bf16", "rf8", "fp32"),
     "2-D code matrices"),
    (lambda: gemm(np.zeros((2, 8), np.uint16), np.zeros((3, 9), np.uint8), "bf16", "rf8", "fp32"),
     "inner dimensions differ"),
    (lambda: mac(_bf(8), np.zeros(7, np.uint8), None, "bf16", "rf8", "fp32"), "same shape"),
    (lambda: mac(_bf(8), np.zeros(8, np.uint8), np.zeros(8, int), "bf16", "rf8", "fp32"), "bool array"),
    (lambda: gemm(np.zeros((2, 8), np.uint16), np.zeros((3, 8), np.uint8), "bf16", "rf8", "aligned:8:8",
                  specials="ignore"), "'error' or 'propagate'"),
])
def test_bad_input_is_a_clear_error(call, needle):
    with pytest.raises(RF8SimError, match=needle):
        call()


def test_dot_takes_16bit_codes():
    from rf8sim.golden import dot, encode

    a = encode(np.array([1.5, 2.0, -0.25, 3.0], np.float32), "bf16")
    w = encode(np.array([1.0, 0.5, 4.0, -0.125], np.float32), "rf8")
    r = dot(a, w, "bf16", "rf8", "fp32")
    assert view_float32(np.uint32(r.acc)) == np.float32(1.5 + 1.0 - 1.0 - 0.375) and not r.overflow
    assert dot(a, w, "bf16", "rf8", "aligned:4:8").acc == r.acc  # every term exact at M = 8 here


def test_view_float32_and_trace_helpers():
    assert view_float32(np.array([0x3F800000], np.uint32))[0] == 1.0
    with pytest.raises(RF8SimError, match="uint32"):
        view_float32(np.array([1.0]))


# ---------------------------------------------------------------------------
# checked-in W8A16 golden vectors (the RTL's contract) against the Fraction references


def test_mac16_vectors_against_fractions():
    """Every checked-in mac16_* trace: the first 240 beats from the Fraction reference (the whole
    trace is regenerated by test_golden_vectors' verify), and its layout."""
    from rf8sim.golden.vectors import MAC16_CASES, load_vectors

    n = 0
    names = set()
    for case in MAC16_CASES:
        d = load_vectors(f"mac16_{case.name}")
        names.add(case.name)
        spec = AccSpec.parse(d["acc"])
        assert d["a"].dtype == _dt(d["a_fmt"]) and d["w"].dtype == _dt(d["w_fmt"]) and d["acc_bits"].dtype == np.uint32
        assert d["a"].shape == (case.n, case.lanes) and d["lanes"] == case.lanes
        k = 240
        a, w, clear = d["a"][:k].tolist(), d["w"][:k].tolist(), d["clear"][:k]
        if spec.kind == "fp32":
            want = R.fp32_trace(a, w, clear, d["a_fmt"], d["w_fmt"])
        else:
            want = R.aligned_trace(a, w, clear, d["a_fmt"], d["w_fmt"], spec.block, spec.align_bits)
        got = list(zip(d["acc_bits"][:k].tolist(), d["overflow"][:k].tolist(), d["invalid"][:k].tolist()))
        assert got == want, case.name
        n += k
    assert n == 240 * len(MAC16_CASES) == 240 * 12
    assert {"bf16_rf8_fp32_l1", "bf16_rf8_fp32_l4", "bf16_rf8_aligned_32_16_l4", "bf16_e4m3_fp32_l1",
            "bf16_int8_fp32_l1", "bf16_bf16_fp32_l1"} <= names


def test_docs_blocks_are_generated():
    """docs/formats.md holds exactly the rendered aligned-width and aligned-error tables."""
    from pathlib import Path

    from rf8sim.infra import docgen
    from rf8sim.study.minilm import aligned_error  # noqa: F401  (registers the renderers)

    text = (Path(__file__).resolve().parents[1] / "docs" / "formats.md").read_text()
    mine = {k: body for k, body in docgen.blocks(text) if k.startswith("formats:aligned")}
    assert set(mine) == {"formats:aligned-width", "formats:aligned-error"}
    for key, body in mine.items():
        assert body == docgen.render(key), f"run `rf8sim docs` (or update the {key} block)"
    assert "| rf8 | " in mine["formats:aligned-width"] and "`aligned:32:16`" in mine["formats:aligned-error"]


def test_aligned_error_record_is_consistent():
    """The checked-in record: every K x M, aligned error falls as M grows (M = 16 the closest)."""
    from rf8sim.study.minilm.aligned_error import KS, MS, record_path
    from rf8sim.infra.records import read_record

    rec = read_record(record_path())
    res = rec["results"]
    assert {f"aligned:{k}:{m}" for k in KS for m in MS} <= set(res) and "fp32_vs_float64" in res
    assert rec["provenance"]["commit"]
    for k in KS:
        nw = [res[f"aligned:{k}:{m}"]["normwise"]["median"] for m in MS]
        assert all(a > b for a, b in zip(nw, nw[1:]))
        assert all(res[f"aligned:{k}:{m}"]["flagged_outputs"] == 0 for m in MS)  # no overflow/NaN on real data
    assert rec["data"]["macs_per_accumulator"] > 10**7 and len(rec["data"]["layers"]) == 36


def test_rf8_variants_as_weights():
    """Every RF8 variant of the spec as the weight format (a Format object, not registered here),
    fp32 and aligned, against the reference."""
    names = [F.residual_format(name, **spec) for name, spec in F.RF8_VARIANTS.items()]
    rng = np.random.default_rng(77)
    n = 0
    for wn in names:
        ca = draw(rng, "bf16", (64, 2), 0.002)
        cw = draw(rng, wn, (64, 2), 0)
        clear = np.zeros(64, bool)
        clear[[0, 32]] = True
        assert _trace_rows(mac(ca, cw, clear, "bf16", wn, "fp32")) == R.fp32_trace(
            ca.tolist(), cw.tolist(), clear, "bf16", wn)
        assert _trace_rows(mac(ca, cw, clear, "bf16", wn, "aligned:8:10")) == R.aligned_trace(
            ca.tolist(), cw.tolist(), clear, "bf16", wn, 8, 10)
        n += 1
    assert n == len(names) == len(F.RF8_VARIANTS) >= 2


def test_aligned_error_cli_refuses_bad_arguments(capsys, tmp_path):
    """Checked before any model is loaded: bad counts, and an existing record without --force."""
    from rf8sim.cli import main

    assert main(["aligned-error", "--rows", "0"]) == 2
    assert ">= 1" in capsys.readouterr().err
    out = tmp_path / "r.json"
    out.write_text("{}")
    assert main(["aligned-error", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "{}"
