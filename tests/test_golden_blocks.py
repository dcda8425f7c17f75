"""Named block formats (issue 21): MXFP4, MXFP8, MXINT8 and NVFP4 against torchao and gfloat, bit for bit.

References: torchao's ``to_mx`` (OCP FLOOR rule) for MXFP4, its ``nvfp4_quantize`` /
``NVFP4Tensor.dequantize`` with a per-tensor scale for NVFP4, and gfloat's block encoder
(``compute_scale_amax`` + ``encode_block``) for MXFP4 and MXINT8.  The torch emulation of NVFP4
equals the golden model.  Bad block shapes, NaN/Inf and out-of-range scales are one-line errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rf8sim import scales as S
from rf8sim.golden.blocks import BlockQuant, dequantize_block, quantize_block
from rf8sim.golden.codec import EncodeError
from rf8sim.training.mx import nvfp4_fake_quant, nvfp4_quantize
from rf8sim.training.quant import QuantError


def _data(seed, rows, cols):
    """Gaussian and heavy-tailed rows over a wide range of scales, a zero block, a tiny block."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    gg = (rng.gamma(1 / 0.6, size=(rows, cols)) ** (1 / 0.6) * rng.choice([-1, 1], (rows, cols))).astype(np.float32)
    x[rows // 2:] = gg[rows // 2:]
    x *= np.exp2(rng.integers(-20, 20, (rows, 1))).astype(np.float32)
    x[0, :32] = 0.0
    x[1, :32] *= np.float32(1e-6)
    return x


def test_mxfp4_matches_torchao():
    from torchao.prototype.mx_formats.config import ScaleCalculationMode
    from torchao.prototype.mx_formats.kernels import unpack_uint4
    from torchao.prototype.mx_formats.mx_tensor import to_mx

    x = _data(1, 1024, 1024)  # 2^20 values
    q = quantize_block(x, "mxfp4")
    ts, tq = to_mx(torch.from_numpy(x), torch.float4_e2m1fn_x2, 32, ScaleCalculationMode.FLOOR)
    assert np.array_equal(S.to_e8m0(q.scales), ts.view(torch.uint8).numpy().reshape(q.scales.shape))
    codes = unpack_uint4(tq.view(torch.uint8)).numpy().reshape(x.shape)
    ok = np.repeat(q.scales > -127, 32, axis=-1)  # torchao clamps the all-zero block's 2**-127 to 2**-126
    assert np.array_equal(q.codes[ok], codes[ok]) and ok.sum() >= x.size - 32


@pytest.mark.parametrize("name", ["mxfp4", "mxint8"])
def test_mx_blocks_match_gfloat(name):
    import gfloat
    from gfloat.formats import format_info_mxfp4_e2m1, format_info_mxint8

    fi = {"mxfp4": format_info_mxfp4_e2m1, "mxint8": format_info_mxint8}[name]
    x = _data(2, 24, 256)
    q = quantize_block(x, name)
    blocks = x.reshape(-1, 32).astype(np.float64)
    n = 0
    for i, blk in enumerate(blocks):
        scale = gfloat.compute_scale_amax(fi.etype.emax, blk)
        enc = list(gfloat.encode_block(fi, scale, blk / scale))
        k = int(q.scales.reshape(-1)[i])
        # rf8sim's int8 codes are integers; OCP MXINT8 elements are int * 2**-6: the E8M0 byte is k + 6 + 127
        # (an all-zero block: -127 and byte 0 in both)
        off = 6 if name == "mxint8" and blk.any() else 0
        assert enc[0] == k + 127 + off, i
        assert enc[1:] == q.codes.reshape(-1, 32)[i].tolist(), i
        n += 33
    assert n == 24 * 8 * 33


def test_nvfp4_matches_torchao_and_torch():
    from torchao.prototype.mx_formats.kernels import unpack_uint4
    from torchao.prototype.mx_formats.nvfp4_tensor import NVFP4Tensor, nvfp4_quantize as ao_quantize
    from torchao.prototype.mx_formats.nvfp4_tensor import per_tensor_amax_to_scale

    for seed, (rows, cols) in ((3, (1024, 1024)), (4, (16, 48))):
        x = _data(seed, rows, cols)
        t = torch.from_numpy(x)
        q = quantize_block(x, "nvfp4")
        st = per_tensor_amax_to_scale(t.abs().max())
        s_ao, d_ao = ao_quantize(t, 16, st)
        assert q.tensor_scale == np.float32(st.item())
        assert np.array_equal(q.scales, s_ao.view(torch.uint8).numpy().reshape(q.scales.shape))
        assert np.array_equal(q.codes, unpack_uint4(d_ao).numpy().reshape(x.shape))
        deq = NVFP4Tensor.to_nvfp4(t, per_tensor_scale=st).dequantize(torch.float32).numpy()
        mine = dequantize_block(q, "nvfp4")
        assert np.array_equal(deq.view(np.int32), mine.view(np.int32))
        c, s8, s_t = nvfp4_quantize(t)
        assert np.array_equal(c.numpy(), q.codes) and np.array_equal(s8.numpy(), q.scales)
        assert float(s_t) == float(q.tensor_scale)
        assert np.array_equal(nvfp4_fake_quant(t).numpy().view(np.int32), mine.view(np.int32))


def test_bits_per_weight():
    bf = S.BLOCK_FORMATS
    assert bf["mxfp4"].bits_per_weight() == 4.25 and bf["mxint8"].bits_per_weight() == 8.25
    assert bf["nvfp4"].bits_per_weight(1 << 20) == 4.5 + 32 / (1 << 20)


def test_block_format_bad_input():
    x = np.ones((2, 70), np.float32)
    for name in ("mxfp4", "nvfp4", "mxint8"):
        with pytest.raises(S.ScaleError, match=r"last axis of 70, not a multiple of (32|16)") as e:
            quantize_block(x, name)
        assert "\n" not in str(e.value)
    with pytest.raises(QuantError, match="not a multiple of 16"):
        nvfp4_quantize(torch.ones(2, 70))
    y = np.ones((2, 32), np.float32)
    y[1, 3] = np.nan
    with pytest.raises(EncodeError, match=r"nvfp4 needs finite values: 1 NaN/Inf \(first at index \(1, 3\)\)"):
        quantize_block(y, "nvfp4")
    with pytest.raises(QuantError, match="nvfp4 needs finite values"):
        nvfp4_quantize(torch.from_numpy(y))
    # mx: OCP's NaN scale for the block with the NaN, the other block untouched
    q = quantize_block(y, "mxfp4")
    assert q.scales[1, 0] == S.SCALE_NAN and np.isnan(dequantize_block(q, "mxfp4")[1]).all()
    with pytest.raises(S.ScaleError, match="outside the E8M0 range"):
        dequantize_block(BlockQuant(q.codes, np.array([[200], [-200]], np.int16), None), "mxfp4")
    qn = quantize_block(np.ones((2, 32), np.float32), "nvfp4")
    assert np.array_equal(dequantize_block(qn, "nvfp4"), np.ones((2, 32), np.float32))
    with pytest.raises(S.ScaleError, match="finite positive float32 tensor scale"):
        dequantize_block(qn._replace(tensor_scale=np.float32(np.inf)), "nvfp4")
    with pytest.raises(S.ScaleError, match="finite non-negative E4M3 codes; 1 are not"):
        dequantize_block(qn._replace(scales=np.array([[0x7F, 0x38], [0x38, 0x38]], np.uint8)), "nvfp4")
    with pytest.raises(S.ScaleError, match="unknown block format 'mxfp5'; valid: mxfp4"):
        quantize_block(y, "mxfp5")


def test_block_name_where_an_element_format_is_expected():
    from rf8sim import formats as F
    from rf8sim.golden import encode

    with pytest.raises(F.FormatError, match="nvfp4 is a block format .*its element format is e2m1"):
        encode(np.ones(2, np.float32), "nvfp4")
