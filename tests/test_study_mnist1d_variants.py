"""RF8 variants: their code tables, the golden model's nearest rounding on them (against an
independent Fraction reference), and the RTL generator accepting them."""

from fractions import Fraction

import numpy as np
import pytest
import toolcheck

from rf8sim import formats as F
from rf8sim import golden
from rf8sim.study.mnist1d import variants

variants.ensure_registered()


def _binade(fmt, e=0):
    m = fmt.magnitudes
    return sorted(float(v) / 2.0 ** e for v in m if 2.0 ** e <= v < 2.0 ** (e + 1))


def test_variant_tables():
    assert variants.ensure_registered() == variants.variant_names() == ("rf8m8", "rf8m8lo")
    rf8 = F.get("rf8")
    assert _binade(rf8) == [1, 1.0625, 1.125, 1.25, 1.5, 1.75, 1.875]
    assert _binade(F.get("rf8m8")) == [1, 1.0625, 1.125, 1.25, 1.5, 1.75, 1.875, 1.9375]
    assert _binade(F.get("rf8m8lo")) == [1, 1.03125, 1.0625, 1.125, 1.25, 1.5, 1.75, 1.875]
    assert rf8.summary()["duplicate_codes"] == 42 and rf8.summary()["canonical_codes"] == 214
    for name in ("rf8m8", "rf8m8lo"):
        s = F.get(name).summary()
        # the 28 duplicate nonzero codes of rf8 became new values: only the 14 extra zeros remain
        assert s["duplicate_codes"] == 14 and s["canonical_codes"] == 242
        # still two signed powers of two per code
        assert all(t in (-1, 0, 1) for t, _ in F.get(name).residuals)
    # registering twice is harmless
    variants.ensure_registered()


def _nearest_ref(v: Fraction, mags) -> Fraction:
    """Nearest magnitude, ties to the even index, saturating; mags are Fractions, ascending."""
    a = abs(v)
    if a >= mags[-1]:
        r = mags[-1]
    else:
        lo = max(i for i, m in enumerate(mags) if m <= a)
        hi = lo + 1
        dl, dh = a - mags[lo], mags[hi] - a
        r = mags[lo] if dl < dh or (dl == dh and lo % 2 == 0) else mags[hi]
    return -r if v < 0 else r


@pytest.mark.parametrize("name", ["rf8m8", "rf8m8lo"])
def test_golden_nearest_on_variants_matches_reference(name):
    fmt = F.get(name)
    mags = [Fraction(float(m)) for m in fmt.magnitudes]
    # every midpoint between neighbours (ties), +-1 float32 ulp around it, and random values
    mids = [(a + b) / 2 for a, b in zip(mags[:-1], mags[1:])]
    xs = []
    for m in mids:
        f = np.float32(float(m))
        assert Fraction(float(f)) == m  # midpoints of these formats are exact in float32
        xs += [f, np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-np.inf))]
    rng = np.random.default_rng(7)
    xs += list((rng.standard_normal(4000) * np.exp2(rng.uniform(-10, 10, 4000))).astype(np.float32))
    xs += [np.float32(fmt.max * 1.5), np.float32(0.0), np.float32(fmt.min_positive / 3)]
    x = np.array(xs, np.float32)
    x = np.concatenate([x, -x])
    got = golden.decode(golden.encode(x, fmt), fmt).astype(np.float64)
    want = np.array([float(_nearest_ref(Fraction(float(v)), mags)) for v in x])
    np.testing.assert_array_equal(got, want)
    assert len(x) == 2 * (3 * len(mids) + 4003) and len(mids) == len(mags) - 1
    # codes are canonical
    codes = golden.encode(x, fmt)
    assert np.all(fmt.canonical[codes] == codes)


def test_paper_rounding_is_refused_with_a_reason():
    ok, why = variants.rounding_supported("rf8m8", "paper")
    assert not ok and "2^-2" in why
    assert variants.rounding_supported("rf8", "paper") == (True, "")
    assert variants.rounding_supported("e4m3", "nearest") == (True, "")
    assert not variants.rounding_supported("e4m3", "paper")[0]


def test_error_vs_shape_rows():
    rows = variants.error_vs_shape(formats=("rf8", "rf8m8", "int8"), shapes=(1.0, 2.0),
                                   roundings=("nearest", "paper"), granularities=("tensor", "block"),
                                   n=4096, rows=4, block=32, seed=1)
    # rf8: 2 roundings, rf8m8 and int8: nearest only -> 4 x 2 shapes x 2 granularities
    assert len(rows) == 4 * 2 * 2
    by = {(r["format"], r["rounding"], r["granularity"], r["shape"]): r["sqnr_db"] for r in rows}
    for b in (1.0, 2.0):
        # one more multiplier per binade can only lower the nearest-rounding error on the same samples
        assert by[("rf8m8", "nearest", "tensor", b)] >= by[("rf8", "nearest", "tensor", b)]
        # nearest is optimal among RF8 roundings
        assert by[("rf8", "nearest", "tensor", b)] >= by[("rf8", "paper", "tensor", b)]
    assert all(20 < r["sqnr_db"] < 50 for r in rows)


@toolcheck.icarus
def test_rtl_accepts_variant_and_matches_golden():
    from rf8sim.hdl.sim import verify

    r = verify("rf8m8", "rf8m8", None, products=True, n_random=0)
    assert r["ok"] and r["compared_beats"] == 65536
