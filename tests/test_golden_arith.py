"""Products, MAC, dot, GEMM and to_float32 against Python integers / Fractions."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracles import formats as ref
from rf8sim import formats as F
from rf8sim.golden import AccSpec, AccSpecError, DTypeError, dot, gemm, mac, product_tables, to_float32
from rf8sim.golden.arith import check_spec

RTL_PAIRS = [("rf8", "rf8"), ("e4m3", "e4m3"), ("e5m2", "e5m2"), ("int8", "int8"), ("rf8", "int8")]
NAMES = ("rf8", "e4m3", "e5m2", "int8")


@pytest.mark.parametrize("a,w", RTL_PAIRS + [("int8", "rf8"), ("e4m3", "rf8"), ("e5m2", "e4m3")])
def test_all_products_against_fractions(a, w):
    sign, sig, exp, special = product_tables(a, w)
    assert sign.shape == sig.shape == exp.shape == special.shape == (256, 256)
    n = 0
    for ca in range(256):
        for cw in range(256):
            want = ref.product_one(a, w, ca, cw)
            if want is None:
                assert special[ca, cw] == 1 and sig[ca, cw] == 0
            else:
                assert special[ca, cw] == 0
                got = Fraction(int(sig[ca, cw])) * Fraction(2) ** int(exp[ca, cw])
                assert (-got if sign[ca, cw] else got) == want
                if want == 0:  # zero products keep the xor of the operand signs
                    # operand sign: the sign bit (-0.0 included); int8: the value is negative
                    sa, sw = np.signbit(F.get(a).values[ca]), np.signbit(F.get(w).values[cw])
                    assert bool(sign[ca, cw]) == (bool(sa) != bool(sw))
            n += 1
    assert n == 65536


# ---------------------------------------------------------------------------
# Python-integer reference of the accumulator


def _ref_value(fmt, c):
    fmt = F.get(fmt)
    v = float(fmt.values[c])
    return None if not np.isfinite(v) else Fraction(v)


def ref_align(value: Fraction, frac: int, scale: int = 0) -> int:
    """floor(value * 2^(frac + scale)) with Python integers."""
    q = value * Fraction(2) ** (frac + scale)
    return q.numerator // q.denominator


def ref_mac(a, w, clear, fa, fw, spec):
    acc, ovf, inv = 0, False, False
    out = []
    for i in range(a.shape[0]):
        if clear[i]:
            acc, ovf, inv = 0, False, False
        s = 0
        for j in range(a.shape[1]):
            va, vw = _ref_value(fa, a[i, j]), _ref_value(fw, w[i, j])
            if va is None or vw is None:
                inv = True
                continue
            s += ref_align(va * vw, spec.frac_bits)
        acc += s
        if acc > spec.max:
            acc, ovf = spec.max, True
        elif acc < spec.min:
            acc, ovf = spec.min, True
        out.append((acc, ovf, inv))
    return out


EDGE = {n: sorted({0, 0x80, int(F.get(n).canonical[-1]), 0x7F, 0xFF, 0x01, 0x81} | set(F.get(n).nan_codes)
                  | set(F.get(n).inf_codes)) for n in NAMES}


@st.composite
def mac_case(draw):
    fa, fw = draw(st.sampled_from(NAMES)), draw(st.sampled_from(NAMES))
    lanes = draw(st.integers(1, 4))
    n = draw(st.integers(1, 40))
    codes = st.one_of(st.integers(0, 255), st.sampled_from(EDGE[fa] + EDGE[fw]))
    a = np.array(draw(st.lists(codes, min_size=n * lanes, max_size=n * lanes)), np.uint8).reshape(n, lanes)
    w = np.array(draw(st.lists(codes, min_size=n * lanes, max_size=n * lanes)), np.uint8).reshape(n, lanes)
    clear = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    frac = draw(st.integers(0, 40))
    width = draw(st.one_of(st.integers(2, 20), st.integers(20, 63), st.integers(64, 127)))
    return fa, fw, a, w, clear, AccSpec(frac, width)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mac_case())
def test_mac_against_python_integers(case):
    fa, fw, a, w, clear, spec = case
    try:
        check_spec(spec, fa, fw, a.shape[1])
    except AccSpecError:
        return
    tr = mac(a, w, clear, fa, fw, spec)
    want = ref_mac(a, w, clear, fa, fw, spec)
    assert tr.acc.dtype == (np.int64 if spec.width <= 63 else object)
    assert [int(v) for v in tr.acc] == [v for v, _, _ in want]
    assert tr.overflow.tolist() == [o for _, o, _ in want]
    assert tr.invalid.tolist() == [i for _, _, i in want]


def test_mac_exact_specs_never_saturate_and_wide_limbs():
    """AccSpec.exact(max_terms=1024): 1024 worst-case products fit; e5m2 needs the two-limb path."""
    for fa, fw in RTL_PAIRS:
        spec = AccSpec.exact(fa, fw, 1024)
        f = F.get(fa), F.get(fw)
        big = [int(np.flatnonzero(x.values == x.max)[0]) for x in f]
        a = np.full(1024, big[0], np.uint8)
        w = np.full(1024, big[1], np.uint8)
        tr = mac(a, w, np.zeros(1024, bool), fa, fw, spec)
        pa, pw = Fraction(f[0].max), Fraction(f[1].max)
        assert int(tr.acc[-1]) == 1024 * ref_align(pa * pw, spec.frac_bits)
        assert not tr.overflow.any()
        # the negative extreme too (int8: -128 x 127)
        neg = [int(np.argmin(np.where(x.finite, x.values, np.inf))) for x in f]
        tr = mac(np.full(1024, neg[0], np.uint8), np.full(1024, big[1], np.uint8), None, fa, fw, spec)
        assert not tr.overflow.any() and int(tr.acc[-1]) < 0
    assert AccSpec.exact("e5m2", "e5m2", 1024).width == 75
    assert mac(np.array([1], np.uint8), np.array([1], np.uint8), None, "e5m2", "e5m2",
               AccSpec.exact("e5m2", "e5m2")).acc.dtype == object


def test_mac_flags_and_clear_semantics():
    f = F.E4M3
    one = int(np.flatnonzero(f.values == 1.0)[0])
    a = np.array([one, f.nan_code, one, one, one], np.uint8)
    w = np.array([one, one, one, one, one], np.uint8)
    clear = np.array([1, 0, 0, 1, 0], bool)
    tr = mac(a, w, clear, "e4m3", "e4m3", AccSpec(0, 2))  # range -2..1: 1, 1, sat, clear, 1+1 sat
    assert tr.acc.tolist() == [1, 1, 1, 1, 1]
    assert tr.invalid.tolist() == [False, True, True, False, False]
    assert tr.overflow.tolist() == [False, False, True, False, True]


@st.composite
def gemm_case(draw):
    fa, fw = draw(st.sampled_from(NAMES)), draw(st.sampled_from(NAMES))
    M, N, K = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 24))
    codes = st.one_of(st.integers(0, 255), st.sampled_from(EDGE[fa] + EDGE[fw]))
    a = np.array(draw(st.lists(codes, min_size=M * K, max_size=M * K)), np.uint8).reshape(M, K)
    w = np.array(draw(st.lists(codes, min_size=N * K, max_size=N * K)), np.uint8).reshape(N, K)
    block = draw(st.integers(1, 8))
    ga, gw = draw(st.sampled_from(["tensor", "channel", "block"])), draw(st.sampled_from(["tensor", "channel", "block"]))
    nb = -(-K // block)
    sh = {"tensor": lambda r: (), "channel": lambda r: (r,), "block": lambda r: (r, nb)}
    sc = st.integers(-6, 6)
    sa = np.array(draw(st.lists(sc, min_size=int(np.prod(sh[ga](M))), max_size=int(np.prod(sh[ga](M))))),
                  np.int8).reshape(sh[ga](M))
    sw = np.array(draw(st.lists(sc, min_size=int(np.prod(sh[gw](N))), max_size=int(np.prod(sh[gw](N))))),
                  np.int8).reshape(sh[gw](N))
    spec = draw(st.one_of(st.just("exact"), st.builds(AccSpec, st.integers(0, 40), st.integers(2, 127))))
    return fa, fw, a, w, sa, sw, ga, gw, block, spec


def _scale_of(s, g, row, k, block):
    if g == "tensor":
        return int(s)
    if g == "channel":
        return int(s[row])
    return int(s[row, k // block])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gemm_case())
def test_gemm_against_python_integers(case):
    fa, fw, a, w, sa, sw, ga, gw, block, spec = case
    spec = AccSpec.parse(spec, fa, fw) if isinstance(spec, str) else spec
    try:
        r = gemm(a, w, fa, fw, spec, sa, sw, ga, gw, block)
    except AccSpecError:
        return
    r2 = gemm(a, w, fa, fw, spec, sa, sw, ga, gw, block, method="sequential")
    for x, y in zip(r, r2):
        assert np.array_equal(x, y)
    M, K = a.shape
    for m in range(M):
        for n in range(w.shape[0]):
            acc, ovf, inv = 0, False, False
            for k in range(K):
                va, vw = _ref_value(fa, a[m, k]), _ref_value(fw, w[n, k])
                if va is None or vw is None:
                    inv = True
                    continue
                s = _scale_of(sa, ga, m, k, block) + _scale_of(sw, gw, n, k, block)
                acc += ref_align(va * vw, spec.frac_bits, s)
                if acc > spec.max:
                    acc, ovf = spec.max, True
                elif acc < spec.min:
                    acc, ovf = spec.min, True
            assert (int(r.acc[m, n]), bool(r.overflow[m, n]), bool(r.invalid[m, n])) == (acc, ovf, inv)


def test_gemm_fast_path_equals_sequential_large():
    """The float64 BLAS path (taken for exact rf8 accumulators) against the k-ordered kernel."""
    rng = np.random.default_rng(5)
    compared = 0
    for fa, fw in [("rf8", "rf8"), ("e4m3", "e4m3"), ("int8", "int8"), ("rf8", "int8")]:
        a = rng.integers(0, 256, (33, 300), dtype=np.uint8)
        w = rng.integers(0, 256, (17, 300), dtype=np.uint8)
        sa = rng.integers(-4, 5, 33).astype(np.int8)
        sw = rng.integers(0, 3, (17, 10)).astype(np.int8)
        spec = AccSpec.exact(fa, fw, 2048)  # headroom for the scales: the fast path still applies
        for args in [(sa, None, "channel", "tensor"), (None, sw, "tensor", "block")]:
            fast = gemm(a, w, fa, fw, spec, *args, block=32)
            slow = gemm(a, w, fa, fw, spec, *args, block=32, method="sequential")
            for x, y in zip(fast, slow):
                assert np.array_equal(x, y)
            assert not fast.overflow.any()
            compared += fast.acc.size
    assert compared == 4 * 2 * 33 * 17


def test_two_limb_saturation_against_python_integers():
    """Deterministic coverage of the 128-bit kernels: a 70-bit accumulator driven into both limits."""
    f = F.E5M2
    big = int(np.flatnonzero(f.values == f.max)[0])
    spec = AccSpec(32, 70)
    a = np.array([big] * 60 + [big | 0x80] * 150 + [big] * 5, np.uint8)
    w = np.full(a.size, big, np.uint8)
    clear = np.zeros(a.size, bool)
    tr = mac(a, w, clear, "e5m2", "e5m2", spec)
    want = ref_mac(a[:, None], w[:, None], clear, "e5m2", "e5m2", spec)
    assert [int(v) for v in tr.acc] == [v for v, _, _ in want]
    assert tr.overflow.tolist() == [o for _, o, _ in want]
    assert int(tr.acc[59]) == spec.max and int(tr.acc[209]) == spec.min and tr.overflow[-1]
    g = gemm(a[None, :], w[None, :], "e5m2", "e5m2", spec)
    assert int(g.acc[0, 0]) == int(tr.acc[-1]) and bool(g.overflow[0, 0])


def test_dot_and_mac_agree():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, 500, dtype=np.uint8)
    w = rng.integers(0, 256, 500, dtype=np.uint8)
    for spec in ("exact", AccSpec(8, 16)):
        for fa, fw in RTL_PAIRS:
            d = dot(a, w, fa, fw, spec)
            tr = mac(a, w, None, fa, fw, spec)
            assert (d.acc, d.overflow, d.invalid) == (int(tr.acc[-1]), bool(tr.overflow[-1]), bool(tr.invalid[-1]))


def _ref_f32(v: int, frac: int) -> np.float32:
    """Nearest float32 to v / 2^frac, ties to even, by exact Fraction distances."""
    q = Fraction(v, 1 << frac)
    c = np.float32(float(q))
    cands = [c, np.nextafter(c, np.float32(np.inf)), np.nextafter(c, np.float32(-np.inf))]
    best = min(cands, key=lambda x: (abs(Fraction(float(x)) - q), int(np.float32(x).view(np.uint32)) & 1))
    return best


def test_to_float32_against_fractions():
    rng = np.random.default_rng(3)
    vals, fr = [], []
    for bits in range(1, 127):
        for _ in range(20):
            v = int(rng.integers(0, 1 << 62)) << max(0, bits - 62) | int(rng.integers(0, 1 << 62))
            v &= (1 << bits) - 1
            v |= 1 << (bits - 1)
            vals.append(-v if rng.random() < 0.5 else v)
            fr.append(int(rng.integers(0, 97)))
    # ties: odd * 2^k + half
    for k in range(25, 100, 3):
        for q in (0xFFFFFF, 0x800001, 0x800000):
            vals.append((q << k) | (1 << (k - 1)))
            fr.append(40)
    n = 0
    for frac in sorted(set(fr)):
        sel = [v for v, f in zip(vals, fr) if f == frac]
        got = to_float32(np.array(sel, dtype=object), frac)
        for v, g in zip(sel, got):
            assert g == _ref_f32(v, frac), (v, frac)
            n += 1
        small = [v for v in sel if -(1 << 63) <= v < 1 << 63]
        if small:
            assert np.array_equal(to_float32(np.array(small, np.int64), frac),
                                  to_float32(np.array(small, dtype=object), frac))
    assert n == len(vals) and n > 2500


def test_bad_inputs():
    a = np.zeros(4, np.uint8)
    with pytest.raises(DTypeError, match="a_codes must be a uint8"):
        mac(a.astype(np.int32), a, None, "rf8", "rf8", "exact")
    with pytest.raises(ValueError, match="same shape"):
        mac(a, a[:3], None, "rf8", "rf8", "exact")
    with pytest.raises(ValueError, match=r"clear must have shape \(4,\)"):
        mac(a, a, np.zeros(3, bool), "rf8", "rf8", "exact")
    with pytest.raises(DTypeError, match="clear must be a bool"):
        mac(a, a, np.zeros(4), "rf8", "rf8", "exact")
    a16 = np.zeros(4, np.uint16)  # the W8A16 accumulators check the flags the same way
    for acc in ("fp32", "aligned:4:8"):
        with pytest.raises(ValueError, match=r"clear must have shape \(4,\)"):
            mac(a16, a, np.zeros(3, bool), "bf16", "rf8", acc)
        with pytest.raises(DTypeError, match="clear must be a bool"):
            mac(a16, a, np.zeros(4), "bf16", "rf8", acc)
    with pytest.raises(F.FormatError, match="valid formats"):
        mac(a, a, None, "rf9", "rf8", "exact")
    with pytest.raises(AccSpecError, match="width must be in 2..127"):
        AccSpec(10, 200)
    with pytest.raises(AccSpecError, match="holds 127"):
        mac(a, a, None, "e5m2", "e5m2", AccSpec(96, 127))
    with pytest.raises(DTypeError, match="acc must be an AccSpec"):
        mac(a, a, None, "rf8", "rf8", 3)
    m = np.zeros((2, 3), np.uint8)
    with pytest.raises(ValueError, match="inner dimensions differ"):
        gemm(m, np.zeros((2, 4), np.uint8), "rf8", "rf8", "exact")
    with pytest.raises(ValueError, match=r"must have shape \(2,\)"):
        gemm(m, m, "rf8", "rf8", "exact", np.zeros(3, np.int8), None, "channel")
    with pytest.raises(ValueError, match="unknown a granularity"):
        gemm(m, m, "rf8", "rf8", "exact", None, None, "row")
    with pytest.raises(DTypeError, match="int64 array or an object array"):
        to_float32(np.zeros(3), 0)


def test_to_float32_parallel_equals_serial_twin():
    from rf8sim.golden.codec import PARALLEL_MIN

    rng = np.random.default_rng(8)
    v = rng.integers(-(1 << 62), 1 << 62, PARALLEL_MIN * 2, dtype=np.int64) >> rng.integers(0, 60, PARALLEL_MIN * 2)
    whole = to_float32(v, 17)  # parallel kernel
    parts = np.concatenate([to_float32(c, 17) for c in np.array_split(v, 64)])  # serial twin
    assert np.array_equal(whole.view(np.uint32), parts.view(np.uint32)) and v.size == 2 * PARALLEL_MIN
