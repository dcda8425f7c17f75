"""All 2^32 float32 bit patterns through e4m3 and e5m2 encode (saturate=False) == ml_dtypes' casts.

About a minute per format on 2 cores, so behind the `slow` marker (`make test-slow`); the default
run checks a 2^24-pattern stride of the same space (test_golden_codec.py).
"""

import ml_dtypes
import numpy as np
import pytest

from rf8sim import formats as F
from rf8sim.golden import encode

CHUNK = 1 << 26


@pytest.mark.slow
@pytest.mark.parametrize("name,mdt", [("e4m3", ml_dtypes.float8_e4m3fn), ("e5m2", ml_dtypes.float8_e5m2)])
def test_all_float32_patterns_match_ml_dtypes(name, mdt):
    from tqdm import tqdm

    fmt = F.get(name)
    compared = 0
    nan_inputs = 0
    for start in tqdm(range(0, 1 << 32, CHUNK), desc=f"{name}: 2^32 float32", leave=False):
        bits = np.arange(start, start + CHUNK, dtype=np.uint64).astype(np.uint32)
        x = bits.view(np.float32)
        got = encode(x, name, saturate=False)
        with np.errstate(invalid="ignore"):
            want = x.astype(mdt).view(np.uint8)
        # ml_dtypes keeps the sign of NaN (0xFF for negative NaN/overflow in e4m3); rf8sim writes the
        # one canonical NaN code: compare NaN-ness there, bits everywhere else
        nan_w = fmt.special[want] == F.SPECIAL_NAN
        assert np.array_equal(nan_w, got == fmt.nan_code), start
        assert np.array_equal(got[~nan_w], want[~nan_w]), start
        compared += x.size
        nan_inputs += int(np.isnan(x).sum())
    assert compared == 1 << 32
    assert nan_inputs == 2 * ((1 << 23) - 1)
