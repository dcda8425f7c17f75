"""The format definitions, checked against the spec's own statements and independent sources."""

import dataclasses
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import torch

from rf8sim import formats as F


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
