"""The format definitions, checked against the spec's own statements and independent sources.

8-bit formats: the RF8 layout, the OCP tables against ml_dtypes and torch.  16-bit formats (bf16,
fp16) and the parametric float constructor: against ``ml_dtypes.bfloat16`` and ``numpy.float16``
(C casts, written independently of rf8sim), the ml_dtypes small float types for user-defined
formats, and gfloat's FormatInfo.  NaN payloads aside: every NaN input must give the canonical
NaN code.
"""

import dataclasses
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import torch

from rf8sim import formats as F
from rf8sim.errors import RF8SimError
from rf8sim.golden import DTypeError, EncodeError, decode, encode


def test_registry_and_errors():
    assert F.names()[:4] == ("rf8", "e4m3", "e5m2", "int8")
    assert F.get("RF8") is F.RF8
    with pytest.raises(F.FormatError, match="valid formats: rf8, e4m3, e5m2, int8"):
        F.get("fp8")
    with pytest.raises(F.FormatError):
        F.register(F.residual_format("rf8"))


def test_rf8_spec_numbers():
    """Numbers the spec states for RF8 (docs/formats.md)."""
    f = F.RF8
    assert f.max == 384 and f.values[0x79] == 384
    assert f.min_positive == 0.75 * 2**-6 and f.values[0x0D] == f.min_positive
    assert len(f.magnitudes) == 107
    assert int(f.is_canonical.sum()) == 214
    assert int((~f.is_canonical).sum()) == 42
    # zeros: E = 0 whatever R; canonical 0x00 and 0x80
    for c in range(8):
        assert f.values[c] == 0 and f.canonical[c] == 0x00
        assert f.values[0x80 | c] == 0 and f.canonical[0x80 | c] == 0x80
        assert np.signbit(f.values[0x80 | c])
    # duplicates: (E, R=1) == (E+1, R=5), the smaller code canonical
    for E in range(1, 15):
        for s in (0, 0x80):
            lo, hi = s | E << 3 | 1, s | (E + 1) << 3 | 5
            assert f.values[lo] == f.values[hi]
            assert f.canonical[hi] == lo and f.canonical[lo] == lo


def test_rf8_values_from_the_layout():
    """Independent restatement of the byte layout with Fractions."""
    mult = [Fraction(1), 1 + Fraction(1, 2), 1 + Fraction(1, 4), 1 + Fraction(1, 8), 1 + Fraction(1, 16),
            1 - Fraction(1, 4), 1 - Fraction(1, 8), 1 - Fraction(1, 16)]
    for c in range(256):
        s, E, R = c >> 7, (c >> 3) & 15, c & 7
        want = Fraction(0) if E == 0 else Fraction(2) ** (E - 7) * mult[R]
        want = -want if s else want
        assert f_exact(F.RF8, c) == want
        assert F.RF8.values[c] == float(want)


def f_exact(fmt, c):
    return fmt.exact_value(c)


@pytest.mark.parametrize("name,mdt,tdt", [("e4m3", ml_dtypes.float8_e4m3fn, torch.float8_e4m3fn),
                                          ("e5m2", ml_dtypes.float8_e5m2, torch.float8_e5m2)])
def test_ocp_tables_match_ml_dtypes_and_torch(name, mdt, tdt):
    f = F.get(name)
    codes = np.arange(256, dtype=np.uint8)
    ref = codes.view(mdt).astype(np.float64)
    assert np.array_equal(ref, f.values, equal_nan=True)
    assert np.array_equal(np.signbit(ref), np.signbit(f.values))
    tref = torch.from_numpy(codes).view(tdt).double().numpy()
    assert np.array_equal(tref, f.values, equal_nan=True)
    assert np.isnan(f.values[f.nan_code])
    nan_code = int(np.array(np.nan, np.float32).astype(mdt).view(np.uint8))
    assert f.nan_code == nan_code


def test_ocp_spec_numbers():
    assert F.E4M3.max == 448 and F.E4M3.nan_codes == (0x7F, 0xFF) and F.E4M3.inf_codes == ()
    assert F.E4M3.min_positive == 2.0**-9
    assert F.E5M2.max == 57344 and F.E5M2.inf_codes == (0x7C, 0xFC)
    assert len(F.E5M2.nan_codes) == 6 and F.E5M2.min_positive == 2.0**-16


def test_int8_table():
    assert np.array_equal(F.INT8.values, np.arange(256, dtype=np.uint8).view(np.int8).astype(np.float64))
    assert F.INT8.max == 127


@pytest.mark.parametrize("name", ["rf8", "e4m3", "e5m2", "int8"])
def test_decomposition_is_exact(name):
    f = F.get(name)
    for c in range(256):
        if f.special[c] == F.SPECIAL_FINITE:
            v = Fraction(int(f.sig[c])) * Fraction(2) ** int(f.exp[c]) * (-1 if f.sign[c] else 1)
            assert v == Fraction(f.values[c])
            assert float(np.float32(f.values[c])) == f.values[c]


def test_format_is_immutable():
    with pytest.raises(ValueError):
        F.RF8.values[0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        F.RF8.bias = 3


# ---------------------------------------------------------------------------
# 16-bit formats and the parametric float constructor

REF16 = {"bf16": ml_dtypes.bfloat16, "fp16": np.float16}
CANON_NAN = {"bf16": 0x7FC0, "fp16": 0x7E00}
N_RANDOM = 10_000_000


def _ref_encode(x: np.ndarray, name: str) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return x.astype(REF16[name]).view(np.uint16)


def _check_against_cast(x: np.ndarray, name: str) -> int:
    """Compare encode with the reference cast; returns the number of inputs compared."""
    got = encode(x, name)
    assert got.dtype == np.uint16 and got.shape == x.shape
    want = _ref_encode(x, name)
    nan = np.isnan(x)
    assert np.array_equal(got[~nan], want[~nan]), (
        name, x[~nan][got[~nan] != want[~nan]][:5], got[~nan][got[~nan] != want[~nan]][:5])
    assert np.all(got[nan] == CANON_NAN[name])
    assert np.all(np.isnan(want[nan].view(REF16[name]).astype(np.float32)))
    return x.size


def _neighbours(p: np.ndarray) -> np.ndarray:
    """float32 bit patterns p and p +- 1 (same sign), as float32."""
    p = p.astype(np.int64)
    q = np.concatenate([p, p - 1, p + 1])
    q = q[(q >= 0) & (q <= 0x7F800000)]
    return q.astype(np.uint32).view(np.float32)


def boundary_inputs16(name: str) -> np.ndarray:
    """Every tie and boundary: all midpoints between neighbouring magnitudes, every value,
    max, the overflow threshold, the subnormal edges, signed zeros, Inf, NaN; each +-1 ulp."""
    f = F.get(name)
    mags = f.magnitudes
    mids = (mags[:-1] + mags[1:]) / 2
    assert np.array_equal(mids.astype(np.float32).astype(np.float64), mids)  # ties are float32 numbers
    ulp_max = 2.0 ** int(f.exp[f.max_code])
    edges = [f.max, f.max + ulp_max / 2, f.max + ulp_max, f.min_positive, f.min_positive / 2,
             f.min_positive * 1.5, 2.0 ** (1 - f.bias), 2.0 ** (1 - f.bias) - f.min_positive / 2,
             float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny),
             float(np.finfo(np.float32).smallest_subnormal), 0.0, math.inf]
    pts = np.concatenate([mids, mags, np.array(edges)]).astype(np.float32)
    a = _neighbours(pts.view(np.uint32))
    a = np.unique(a)
    return np.concatenate([a, -a, np.array([np.nan, -np.nan], np.float32),
                           np.array([0x7FC00001, 0xFFFFFFFF], np.uint32).view(np.float32)])


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_bf16_fp16_spec_numbers(name):
    f = F.get(name)
    assert f.code_bits == 16 and f.n_codes == 65536 and f.code_dtype == np.uint16
    assert f.nan_code == CANON_NAN[name] and f.kind == "float" and f.specials == "ieee"
    assert f.saturate is False and f.roundings == ("nearest",)
    assert f.max == float(ml_dtypes.finfo(REF16[name]).max)
    assert f.min_positive == float(ml_dtypes.finfo(REF16[name]).smallest_subnormal)
    assert f.inf_codes == (f.inf_code, f.inf_code | 0x8000)
    assert f.sig_bits == {"bf16": 8, "fp16": 11}[name]


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_decode_all_65536_codes(name):
    codes = np.arange(65536, dtype=np.uint16)
    want = codes.view(REF16[name]).astype(np.float32)
    got = decode(codes, name)
    assert got.dtype == np.float32 and got.size == 65536
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    f = F.get(name)
    assert np.array_equal(f.values, want.astype(np.float64), equal_nan=True)
    n_nan = int(np.isnan(want).sum())
    assert n_nan == len(f.nan_codes) == {"bf16": 254, "fp16": 2046}[name]


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_encode_boundaries_match_cast(name):
    x = boundary_inputs16(name)
    n = _check_against_cast(x, name)
    assert n == x.size and n > {"bf16": 190_000, "fp16": 190_000}[name]


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_encode_random_bit_patterns_match_cast(name):
    """10^7 uniformly random float32 bit patterns (every exponent, NaNs and Infs included)
    plus 10^6 values near the format's range (where it rounds)."""
    rng = np.random.default_rng({"bf16": 16, "fp16": 17}[name])
    x = rng.integers(0, 1 << 32, N_RANDOM, dtype=np.uint64).astype(np.uint32).view(np.float32)
    n = _check_against_cast(x, name)
    scale = F.get(name).max
    y = (rng.standard_normal(1_000_000) * rng.choice([scale * 1e-6, scale * 1e-3, scale], 1_000_000))
    n += _check_against_cast(y.astype(np.float32), name)
    assert n == N_RANDOM + 1_000_000


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_saturate_true_clamps_to_max(name):
    f = F.get(name)
    x = boundary_inputs16(name)
    x = x[~np.isnan(x)]
    got = encode(x, name, saturate=True)
    want = _ref_encode(x, name)
    ovf = (want & 0x7FFF) == f.inf_code
    want = np.where(ovf, (want & 0x8000) | f.max_code, want)
    assert np.array_equal(got, want) and int(ovf.sum()) >= 8


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_encode_all_2_32_float32(name):
    n = 0
    step = 1 << 24
    for lo in range(0, 1 << 32, step):
        x = np.arange(lo, lo + step, dtype=np.uint64).astype(np.uint32).view(np.float32)
        n += _check_against_cast(x, name)
    assert n == 1 << 32


def test_16bit_code_dtype_errors():
    with pytest.raises(DTypeError, match="bf16 has 16-bit codes, which must be a uint16 array; got dtype uint8"):
        decode(np.zeros(3, np.uint8), "bf16")
    with pytest.raises(DTypeError, match="e4m3 has 8-bit codes, which must be a uint8 array; got dtype uint16"):
        decode(np.zeros(3, np.uint16), "e4m3")
    with pytest.raises(F.FormatError, match="unknown format 'bf17'; valid formats: rf8, e4m3, e5m2, int8, bf16, fp16"):
        encode(np.zeros(3, np.float32), "bf17")
    with pytest.raises(F.FormatError, match="supports rounding nearest only, not 'paper'"):
        encode(np.zeros(3, np.float32), "bf16", "paper")
    for exc in (DTypeError, F.FormatError, EncodeError):
        assert issubclass(exc, RF8SimError)


def test_narrow_format_code_range_error():
    e2m3 = F.float_format("t_e2m3", 2, 3, specials="none")
    assert e2m3.code_bits == 6 and e2m3.code_dtype == np.uint8
    with pytest.raises(DTypeError, match="1 code\\(s\\) >= 64; format t_e2m3 has codes 0..63 only"):
        decode(np.array([0, 64], np.uint8), e2m3)


# ---------------------------------------------------------------------------
# the parametric constructor

ML_SMALL = {
    # name: (exp_bits, man_bits, specials, ml_dtypes type)
    "e3m4": (3, 4, "ieee", ml_dtypes.float8_e3m4),
    "e4m3ieee": (4, 3, "ieee", ml_dtypes.float8_e4m3),
    "e2m1": (2, 1, "none", ml_dtypes.float4_e2m1fn),
    "e2m3": (2, 3, "none", ml_dtypes.float6_e2m3fn),
    "e3m2": (3, 2, "none", ml_dtypes.float6_e3m2fn),
}


@pytest.mark.parametrize("name", list(ML_SMALL))
def test_user_formats_match_ml_dtypes(name):
    eb, mb, sp, mdt = ML_SMALL[name]
    f = F.float_format("user_" + name, eb, mb, specials=sp)
    assert f.code_bits == 1 + eb + mb
    codes = np.arange(f.n_codes, dtype=np.uint8)
    want = codes.view(mdt).astype(np.float64)
    assert np.array_equal(f.values, want, equal_nan=True)
    assert np.array_equal(np.signbit(f.values), np.signbit(want))
    assert f.max == float(ml_dtypes.finfo(mdt).max)
    # encode: every midpoint and value +-1 ulp, both signs, plus random values around the range
    mags = f.magnitudes
    pts = np.concatenate([(mags[:-1] + mags[1:]) / 2, mags, [f.max * 2, f.max * 1.1, 1e30, np.inf]])
    a = np.unique(_neighbours(pts.astype(np.float32).view(np.uint32)))
    rng = np.random.default_rng(3)
    x = np.concatenate([a, -a, (rng.standard_normal(200_000) * f.max).astype(np.float32)])
    got = encode(x, f)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = x.astype(mdt).view(np.uint8)
    assert np.array_equal(got, ref), x[got != ref][:5]
    assert x.size > 200_000


@pytest.mark.parametrize("gname,kw", [
    ("format_info_ocp_e4m3", dict(exp_bits=4, man_bits=3, specials="fn")),
    ("format_info_ocp_e5m2", dict(exp_bits=5, man_bits=2, specials="ieee")),
    ("format_info_ocp_e2m1", dict(exp_bits=2, man_bits=1, specials="none")),
    ("format_info_ocp_e2m3", dict(exp_bits=2, man_bits=3, specials="none")),
    ("format_info_ocp_e3m2", dict(exp_bits=3, man_bits=2, specials="none")),
    ("format_info_bfloat16", dict(exp_bits=8, man_bits=7, specials="ieee")),
    ("format_info_binary16", dict(exp_bits=5, man_bits=10, specials="ieee")),
])
def test_constructor_matches_gfloat_formatinfo(gname, kw):
    gfloat = _gfloat()
    fi = getattr(gfloat.formats, gname)
    f = F.float_format("g_" + gname, **kw)
    assert f.code_bits == fi.k and f.bias == fi.bias and f.max == fi.max
    assert f.min_positive == fi.smallest_subnormal
    vals = np.array([gfloat.decode_float(fi, c).fval for c in range(f.n_codes)], np.float64)
    assert np.array_equal(vals, f.values, equal_nan=True)
    num = ~np.isnan(vals)  # gfloat's NaNs carry no sign
    assert np.array_equal(np.signbit(vals[num]), np.signbit(f.values[num]))
    assert int(num.sum()) == f.n_codes - len(f.nan_codes)


def _gfloat():
    from toolcheck import require

    require(_has_gfloat(), "gfloat", "pip install gfloat==0.5.2")
    import gfloat
    import gfloat.formats  # noqa: F401

    return gfloat


def _has_gfloat() -> bool:
    try:
        import gfloat  # noqa: F401
    except ImportError:
        return False
    return True


def test_e4m3_e5m2_are_built_by_the_constructor():
    a = F.float_format("t_e4m3", 4, 3, bias=7, specials="fn", saturate=True)
    b = F.float_format("t_e5m2", 5, 2, bias=15, specials="ieee", saturate=True)
    for mine, reg in ((a, F.E4M3), (b, F.E5M2)):
        for k in ("values", "sig", "exp", "sign", "special", "canonical", "magnitudes"):
            assert np.array_equal(getattr(mine, k), getattr(reg, k), equal_nan=True), k
        assert (mine.nan_code, mine.inf_code, mine.max) == (reg.nan_code, reg.inf_code, reg.max)


def test_no_subnormals_are_signed_zeros():
    f = F.float_format("t_e4m3_nosub", 4, 3, specials="fn", subnormals=False)
    assert np.all(f.values[1:8] == 0) and np.all(f.canonical[1:8] == 0)
    assert f.min_positive == 2.0**-6
    x = np.array([2.0**-7, 2.0**-7 * 1.01, 2.0**-8, -2.0**-6], np.float32)
    assert list(encode(x, f)) == [0x00, 0x08, 0x00, 0x88]  # the tie 2^-7 goes to even index 0


def test_constructor_refuses_bad_parameters():
    with pytest.raises(F.FormatError, match="at most 16"):
        F.float_format("x", 8, 8)
    with pytest.raises(F.FormatError, match="specials 'foo' is not one of ieee, fn, none"):
        F.float_format("x", 4, 3, specials="foo")
    with pytest.raises(F.FormatError, match="float32 cannot hold exactly"):
        F.float_format("x", 8, 7, bias=100)
    with pytest.raises(F.FormatError, match="exp_bits must be an integer"):
        F.float_format("x", 4.0, 3)
    assert issubclass(F.FormatError, RF8SimError)


def test_docs_format_table_matches_the_spec():
    """docs/formats.md's format table states what Format.summary() computes."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "formats.md").read_text()
    n = 0
    for name in ("rf8", "e4m3", "e5m2", "int8", "bf16", "fp16"):
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}`"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        lead = [int(re.match(r"\d+", c).group()) for c in [cells[1], cells[3]] + cells[6:]]
        sm = F.get(name).summary()
        assert lead == [sm["bits"], sm["bias"], sm["distinct_values"], sm["distinct_magnitudes"],
                        sm["canonical_codes"], sm["duplicate_codes"], sm["nan_codes"], sm["inf_codes"]], name
        n += 1
    assert n == 6


@pytest.mark.parametrize("eb,mb", [(3, 12), (2, 13), (4, 11)])
def test_fine_16bit_user_formats_take_the_scan_path(eb, mb):
    """Formats whose midpoints need more than 10 fraction bits of float32 (the bucket-scan path
    of the encoder) against the sorted-table bisection reference of tests/oracles/formats.py."""
    from oracles import formats as ref
    from rf8sim.golden.codec import _nearest_table

    f = F.float_format(f"t_e{eb}m{mb}", eb, mb, specials="ieee")
    tab = _nearest_table(f, False)[0]
    assert int((tab[:, 0] < 0).sum()) > 100  # crowded buckets exist: the scan path runs
    mags = f.magnitudes
    mids = ((mags[:-1] + mags[1:]) / 2).astype(np.float32)
    pts = _neighbours(np.concatenate([mids, mags.astype(np.float32)]).view(np.uint32))
    rng = np.random.default_rng(eb * 100 + mb)
    x = np.concatenate([pts, -pts, (rng.standard_normal(300_000) * f.max / 3).astype(np.float32),
                        np.array([f.max * 4, np.inf, -np.inf], np.float32)])
    for sat in (True, False):
        want, err = ref.encode_vec(x, f, "nearest", sat)
        assert not err.any()
        got = encode(x, f, saturate=sat)
        assert got.dtype == np.uint16 and np.array_equal(got.astype(np.int64), want), sat
    assert x.size > 3 * (1 << (eb + mb))


def test_formats_pickle():
    import pickle

    assert pickle.loads(pickle.dumps(F.BF16)) is F.BF16  # registered: by name
    f = F.float_format("t_pickle_e3m4", 3, 4)  # not registered: by value
    g = pickle.loads(pickle.dumps(f))
    assert g is not f and g.name == f.name and g.code_bits == 8
    assert np.array_equal(g.values, f.values, equal_nan=True) and not g.values.flags.writeable
    x = np.linspace(-20, 20, 999, dtype=np.float32)
    assert np.array_equal(encode(x, g), encode(x, f))
