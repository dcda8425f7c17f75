"""W8A16 energy streams: 16-bit activation codes are the values themselves, rounded (no tensor scale)."""

import ml_dtypes
import numpy as np

from rf8sim.golden.codec import quantize
from rf8sim.hdl.streams import _codes, make_stream


def test_16bit_stream_codes_are_plain_casts_and_8bit_codes_stay_scaled():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(20000) * np.exp2(rng.integers(-20, 20, 20000))).astype(np.float32)
    bf = _codes(x, "bf16")
    ref_bf = x.astype(ml_dtypes.bfloat16).view(np.uint16)  # independent reference: ml_dtypes RNE cast
    fp = _codes(x, "fp16")
    ref_fp = x.astype(np.float16).view(np.uint16)
    assert bf.dtype == np.uint16 and fp.dtype == np.uint16
    assert (bf == ref_bf).sum() == x.size and (fp == ref_fp).sum() == x.size
    w = _codes(x[:512], "rf8")  # 8-bit weights: per-tensor power-of-two scale as before
    assert w.dtype == np.uint8 and (w == np.asarray(quantize(x[:512], "rf8")[0])).all()
    g = make_stream("gg:1", "bf16", "rf8", 2, 64, tile=16, seed=0)
    assert g.a.dtype == np.uint16 and g.w.dtype == np.uint8
    # gennorm(1) values are O(1): their bf16 exponent fields sit near the bias, not at the format's top
    assert np.median((g.a.astype(np.int64) >> 7) & 0xFF) < 140
