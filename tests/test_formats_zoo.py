"""The format zoo (issue 21): APoT, LNS, posit8/posit16, E2M1 and the three-term RF8 variants.

Each format's codes equal an independent reference on every code, on every rounding boundary
(and its float32 neighbours) and on 10^6 random float32; the torch emulation equals the golden
model; products with every activation format are exact; bad input is a one-line error.
All 2^32 float32 inputs are behind the slow marker.
"""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import torch
from oracles import zoo as Z

from rf8sim import formats as F
from rf8sim.golden import decode, dequantize, encode, gemm, product_tables, products, quantize
from rf8sim.golden.codec import DTypeError
from rf8sim.training import quant as Q

NEW8 = ("e2m1", "apot4", "apot8", "lns8", "posit8", "rf8t1", "rf8t2")
N_RANDOM = 1_000_000


def _exact_mags(fmt) -> list[Fraction]:
    return sorted({abs(fmt.exact_value(c)) for c in range(fmt.n_codes) if fmt.special[c] == F.SPECIAL_FINITE})


def _code_of_value(fmt) -> dict:
    """{float value -> canonical code} from a scan of the decode table (the +0 code for zero)."""
    out = {}
    for c in range(fmt.n_codes):
        if fmt.special[c] == F.SPECIAL_FINITE:
            out.setdefault(float(fmt.values[c]), c)
    return out


# ---------------------------------------------------------------------------
# value sets against the definitions


def test_apot_level_sets_are_the_papers():
    a4 = F.get("apot4")
    want = Z.apot4_authors_levels()
    assert len(want) == 8 and list(a4.magnitudes) == want
    a8 = F.get("apot8")
    want8 = Z.apot_eq5_levels()
    assert len(want8) == 128 and [Fraction(float(m)) for m in a8.magnitudes] == want8
    # every code: sign + level index
    n = 0
    for fmt, lv in ((a4, [Fraction(v) for v in want]), (a8, want8)):
        h = fmt.n_codes >> 1
        for c in range(fmt.n_codes):
            assert fmt.exact_value(c) == (-1 if c >= h else 1) * lv[c % h]
            n += 1
    assert n == 16 + 256


def test_lns_values_are_the_definition():
    fmt = F.get("lns8")
    want = Z.lns_values()
    assert [fmt.exact_value(c) for c in range(256)] == want
    assert fmt.max == 128 * 235 / 128 and fmt.summary()["duplicate_codes"] == 0


def test_terms_variants_values():
    """rf8t1/rf8t2: E >= 1 is 2^(E-7) m[R], E = 0 the binade below; rf8t2's binades are E4M3's grid."""
    n = 0
    for name in F.RF8_TERMS_VARIANTS:
        fmt = F.get(name)
        m = Z.terms_multipliers(name)
        for c in range(256):
            s, E, R = c >> 7, (c >> 3) & 15, c & 7
            v = Fraction(0) if (E == 0 and R == 0) else m[R] * Fraction(2) ** (E - 7)
            assert fmt.exact_value(c) == (-v if s else v), (name, c)
            n += 1
        assert fmt.summary()["duplicate_codes"] == 0 and fmt.roles == ("weight",)
    assert n == 512
    e4 = {Fraction(float(v)) for v in F.get("e4m3").magnitudes if 2.0 ** -5 <= v < 2.0 ** 8}
    t2 = {Fraction(float(v)) for v in F.get("rf8t2").magnitudes if 2.0 ** -5 <= v < 2.0 ** 8}
    assert e4 == t2


def test_posit_codes_match_universal_and_softposit():
    import softposit as sp
    import universal_dtypes as ud

    n = 0
    for name, dt, nb in (("posit8", ud.posit8, 8), ("posit16", ud.posit16, 16)):
        fmt = F.get(name)
        codes = fmt.codes
        mine = decode(codes, name).astype(np.float64)
        uni = codes.view(dt).astype(np.float64)
        nan = np.isnan(mine)
        assert np.array_equal(nan, np.isnan(uni)) and nan.sum() == 1 and bool(nan[1 << (nb - 1)])
        assert np.array_equal(mine[~nan], uni[~nan])
        for c in range(fmt.n_codes):
            if c == 1 << (nb - 1):
                continue
            p = sp.posit_2(0.0, nb)
            p.fromBits(c << (32 - nb))  # pX2 keeps the code in the top bits
            assert float(p) == mine[c], (name, c)
            n += 1
    assert n == 255 + 65535


def test_e2m1_matches_ml_dtypes():
    fmt = F.get("e2m1")
    got = decode(fmt.codes, "e2m1")
    want = fmt.codes.view(ml_dtypes.float4_e2m1fn).astype(np.float32)
    assert np.array_equal(got.view(np.int32), want.view(np.int32))


# ---------------------------------------------------------------------------
# encode: every boundary exactly, 10^6 random


@pytest.mark.parametrize("name", ("apot4", "apot8", "rf8t1", "rf8t2", "e2m1"))
def test_nearest_formats_encode(name):
    fmt = F.get(name)
    mags = _exact_mags(fmt)
    mids = [(a + b) / 2 for a, b in zip(mags, mags[1:])]
    pts = Z.around([float(m) for m in mids] + [float(m) for m in mags] + [float(mags[-1]) * 3])
    got = encode(pts, name)
    table = _code_of_value(fmt)
    for x, g in zip(pts.tolist(), got.tolist()):
        v = float(mags[Z.nearest_index_exact(x, mags)])
        assert g == table[-v if x < 0 and v else v] if not (x < 0 and v == 0) else fmt.values[g] == 0, (name, x)
    assert len(pts) == 6 * (2 * len(mags) - 1)  # midpoints, nonzero magnitudes, one overflow point
    x = Z.random_f32(N_RANDOM, 21, span=12) * np.float32(fmt.max / 4)
    got = encode(x, name)
    idx = Z.nearest_index_f64(x, np.asarray(fmt.magnitudes, np.float64))
    v = np.where(x < 0, -1, 1) * fmt.magnitudes[idx]
    assert np.array_equal(decode(got, name).astype(np.float64), v)
    assert np.array_equal(got, encode(decode(got, name), name))  # canonical codes
    if name == "e2m1":  # and the OCP element cast of ml_dtypes, bit for bit (within range)
        inr = np.abs(x) <= 6
        assert np.array_equal(got[inr], x[inr].astype(ml_dtypes.float4_e2m1fn).view(np.uint8) & 0xF)
        assert inr.sum() > N_RANDOM // 4


def test_lns_encode():
    fmt = F.get("lns8")
    pts = Z.around(list(fmt.thresholds) + list(fmt.magnitudes[1:]) + [fmt.max * 2, 1e-30])
    got = encode(pts, "lns8")
    for x, g in zip(pts.tolist(), got.tolist()):
        L = Z.lns_L_exact(x)
        want = (0x40 if L is None else L & 0x7F) | (0x80 if x < 0 else 0)
        assert g == want, (x, g, want)
    assert len(pts) == 6 * (127 + 127 + 2)
    x = Z.random_f32(N_RANDOM, 22, span=10)
    got = encode(x, "lns8")
    assert np.array_equal(got, Z.lns_code(Z.lns_L_f64(x), x < 0))


def test_posit_encode_matches_universal_and_softposit():
    import softposit as sp
    import universal_dtypes as ud

    n = want_n = 0
    for name, dt, nb in (("posit8", ud.posit8, 8), ("posit16", ud.posit16, 16)):
        fmt = F.get(name)
        udt = fmt.code_dtype
        want_n += 6 * ((len(fmt.magnitudes) - 1) * 2 + 3) + 2  # boundaries, magnitudes, 3 extremes, +-0
        pts = Z.around(list(fmt.thresholds) + list(fmt.magnitudes[1:]) + [1e-40, 1e-30, 3e38])
        pts = np.concatenate([pts, np.array([0.0, -0.0, np.inf, -np.inf, np.nan], np.float32)])
        got = encode(pts, name)
        with np.errstate(over="ignore", invalid="ignore"):
            want = pts.astype(dt).view(udt)
        assert np.array_equal(got, want), name
        for x, g in zip(pts.tolist(), got.tolist()):  # softposit: every boundary point
            if x != x or abs(x) == float("inf"):
                assert g == 1 << (nb - 1)
                continue
            assert g == sp.convertDoubleToPX2(x, nb).v >> (32 - nb), (name, x)
            n += 1
        x = Z.random_f32(N_RANDOM, 23, span=60 if nb == 16 else 28)
        assert np.array_equal(encode(x, name), x.astype(dt).view(udt)), name
    assert n == want_n


# ---------------------------------------------------------------------------
# torch emulation == golden


@pytest.mark.parametrize("name", NEW8)
def test_torch_equals_golden(name):
    fmt = F.get(name)
    x = Z.random_f32(200_000, 24, span=20) * np.float32(fmt.scale_target / 16)
    pts = Z.around(list(fmt.thresholds if fmt.thresholds is not None else fmt.magnitudes))
    x = np.concatenate([x, pts])
    assert np.array_equal(Q.encode(torch.from_numpy(x), name).numpy(), encode(x, name))
    w = Z.random_f32(64 * 96, 25, span=8).reshape(64, 96)
    for g in ("tensor", "channel", "ceil", "mx"):
        gc, gk = quantize(w, name, granularity=g)
        tc, tk = Q.quantize(torch.from_numpy(w), name, granularity=g)
        assert np.array_equal(gc, tc.numpy()) and np.array_equal(gk, tk.numpy()), g
        fq = Q.fake_quant(torch.from_numpy(w), name, granularity=g).numpy()
        assert np.array_equal(fq.view(np.int32), dequantize(gc, gk, name, granularity=g).view(np.int32)), g


# ---------------------------------------------------------------------------
# products with every activation format


def test_products_with_every_activation_format():
    """sign/sig/exp of the golden products equal the Fraction products, for every weight code of
    each new weight format against every activation format (all 8-bit codes, 4096 16-bit ones)."""
    weights = [n for n in F.names() if "weight" in F.get(n).roles and n in NEW8]
    acts = [n for n in F.names() if "activation" in F.get(n).roles]
    assert set(weights) == set(NEW8) and {"posit8", "posit16", "lns8", "e2m1", "bf16"} <= set(acts)
    rng = np.random.default_rng(26)
    n = 0
    for wn in weights:
        wf = F.get(wn)
        wc = wf.codes[wf.finite]
        wv = [wf.exact_value(c) for c in wc]
        for an in acts:
            af = F.get(an)
            fin = np.flatnonzero(af.finite)
            ac = af.codes[fin] if af.code_bits <= 8 else af.codes[rng.choice(fin, 4096, replace=False)]
            ac = ac[rng.choice(len(ac), 64, replace=False)] if len(ac) > 64 else ac
            sign, sig, exp, special = products(ac[:, None], wc[None, :], an, wn)
            assert not special.any()
            for i, a in enumerate(ac.tolist()):
                av = af.exact_value(a)
                for j in range(len(wc)):
                    p = Fraction(int(sig[i, j])) * Fraction(2) ** int(exp[i, j])
                    assert (-p if sign[i, j] else p) == av * wv[j] or (p == 0 and av * wv[j] == 0)
                    n += 1
    assert n > 100_000


def test_exact_gemm_new_weights():
    """The golden fixed-point gemm ('exact' width) of each new weight format with 8-bit
    activations equals the Fraction dot products."""
    from rf8sim.accspec import AccSpec, AccSpecError

    rng = np.random.default_rng(27)
    n = 0
    for wn in NEW8:
        for an in ("e4m3", "int8", "posit8", "lns8", "e2m1"):
            af, wf = F.get(an), F.get(wn)
            a = encode((rng.standard_normal((3, 16)) * af.scale_target / 4).astype(np.float32), an)
            w = encode((rng.standard_normal((2, 16)) * wf.max / 4).astype(np.float32), wn)
            spec = AccSpec.parse("exact", af, wf)
            if (an, wn) == ("posit8", "apot8"):  # 25-bit significand products: the fp32 path only
                with pytest.raises(AccSpecError, match="outside the packed kernel table's range"):
                    gemm(a, w, an, wn, spec)
                n += 6
                continue
            r = gemm(a, w, an, wn, spec)
            assert not r.overflow.any() and not r.invalid.any()
            for i in range(3):
                for j in range(2):
                    want = sum(af.exact_value(a[i, k]) * wf.exact_value(w[j, k]) for k in range(16))
                    assert Fraction(int(r.acc[i, j]), 1 << spec.frac_bits) == want, (an, wn)
                    n += 1
    assert n == len(NEW8) * 5 * 6


# ---------------------------------------------------------------------------
# bad input


def test_bad_input_one_line():
    with pytest.raises(DTypeError, match="16-bit codes, which must be a uint16"):
        decode(np.zeros(3, np.uint8), "posit16")
    with pytest.raises(DTypeError, match="8-bit codes, which must be a uint8"):
        decode(np.zeros(3, np.uint16), "lns8")
    with pytest.raises(DTypeError, match=r"code\(s\) >= 16"):
        decode(np.array([16], np.uint8), "apot4")
    with pytest.raises(F.FormatError, match="posits never overflow"):
        encode(np.ones(2, np.float32), "posit8", saturate=False)
    with pytest.raises(F.FormatError, match="apot8 has no activation role.*8-bit activation formats: rf8"):
        product_tables("apot8", "e4m3")
    with pytest.raises(F.FormatError, match="posit16 has no weight role"):
        products(np.zeros(1, np.uint16), np.zeros(1, np.uint16), "bf16", "posit16")
    with pytest.raises(F.FormatError, match="rf8t1 has no activation role"):
        gemm(np.zeros((1, 2), np.uint8), np.zeros((1, 2), np.uint8), "rf8t1", "e4m3", "fp32")
    from rf8sim.training.ptq import QuantConfig

    with pytest.raises(F.FormatError, match="apot8 has no activation role"):
        QuantConfig(weight_fmt="e4m3", act_fmt="apot8")
    with pytest.raises(Q.QuantError, match="posits never overflow"):
        Q.encode(torch.ones(2), "posit8", saturate=False)
    for e in (F.FormatError,):
        try:
            product_tables("apot8", "e4m3")
        except e as err:
            assert "\n" not in str(err)


# ---------------------------------------------------------------------------
# all 2^32 float32 (slow)


@pytest.mark.slow
@pytest.mark.parametrize("name", ("posit8", "posit16", "lns8", "apot8", "rf8t1", "rf8t2", "e2m1", "apot4"))
def test_all_float32_patterns(name):
    import universal_dtypes as ud
    from tqdm import tqdm

    fmt = F.get(name)
    chunk = 1 << 25
    mags = np.asarray(fmt.magnitudes, np.float64)
    compared = 0
    for start in tqdm(range(0, 1 << 32, chunk), desc=f"{name}: 2^32 float32", leave=False):
        x = np.arange(start, start + chunk, dtype=np.uint64).astype(np.uint32).view(np.float32)
        fin = np.isfinite(x)
        if name.startswith("posit"):
            with np.errstate(over="ignore", invalid="ignore"):
                want = x.astype(getattr(ud, name)).view(fmt.code_dtype)
            assert np.array_equal(encode(x, name), want), start
        else:
            x = x[fin]
            got = encode(x, name)
            if name == "lns8":
                want = Z.lns_code(Z.lns_L_f64(x), np.signbit(x))
                # zero keeps its sign bit: the code with L = -64
                assert np.array_equal(got, want), start
            else:
                v = np.where(np.signbit(x), -1.0, 1.0) * mags[Z.nearest_index_f64(x, mags)]
                assert np.array_equal(decode(got, name).astype(np.float64), v), start
        compared += x.size
    assert compared >= (1 << 32) - (1 << 25)
