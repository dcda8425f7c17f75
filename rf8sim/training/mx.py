"""OCP Microscaling (MX v1.0) interchange: rf8sim ``granularity="mx"`` tensors as OCP/torchao MX data.

``quantize(x, "e4m3", granularity="mx")`` gives uint8 element codes (the OCP
FP8 bytes) and int8 scale exponents X; OCP stores X as an E8M0 byte X + 127,
with 0xFF the NaN scale (rf8sim's ``SCALE_NAN``).  :func:`export_mx` returns
that pair of tensors in torch's float8 / ``float8_e8m0fnu`` dtypes;
:func:`to_torchao` wraps them in torchao's ``MXTensor`` (torchao imported
lazily: it is an optional test dependency).
"""

from __future__ import annotations

import torch

from .. import formats as F
from ..scales import MX_BLOCK
from .quant import QuantError, quantize, scale_shape, to_e8m0

__all__ = ["MX_ELEM_DTYPES", "export_mx", "to_torchao", "nvfp4_quantize", "nvfp4_fake_quant"]

#: rf8sim element formats that are OCP MX element types, and their torch dtypes
MX_ELEM_DTYPES = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}


def export_mx(codes: torch.Tensor, scale_exp: torch.Tensor, fmt="e4m3") -> tuple[torch.Tensor, torch.Tensor]:
    """(elements as torch float8, scales as float8_e8m0fnu) of an ``mx`` quantization.

    ``codes``/``scale_exp`` as returned by ``quantize(..., granularity="mx")``;
    only the OCP element formats e4m3 and e5m2 have a torch dtype.
    """
    fmt = F.get(fmt)
    if fmt.name not in MX_ELEM_DTYPES:
        raise QuantError(f"{fmt.name} is not an OCP MX element type with a torch dtype; valid: "
                         f"{', '.join(MX_ELEM_DTYPES)}")
    if not isinstance(codes, torch.Tensor) or codes.dtype != torch.uint8:
        raise QuantError("codes must be a torch.uint8 tensor (quantize(..., granularity='mx'))")
    want = scale_shape(codes.shape, "mx", MX_BLOCK)
    if tuple(scale_exp.shape) != want:
        raise QuantError(f"scale_exp has shape {tuple(scale_exp.shape)}; codes of shape {tuple(codes.shape)} "
                         f"need {want}")
    return codes.view(MX_ELEM_DTYPES[fmt.name]), to_e8m0(scale_exp).view(torch.float8_e8m0fnu)


def to_torchao(x_or_codes: torch.Tensor, scale_exp: torch.Tensor | None = None, fmt="e4m3",
               orig_dtype=torch.float32):
    """A torchao ``MXTensor`` holding rf8sim's MX quantization (of ``x``, or of given codes + scales).

    The last dimension must be a multiple of 32 (torchao does not pad).
    """
    from torchao.prototype.mx_formats.mx_tensor import MXTensor
    from torchao.quantization.quantize_.common.kernel_preference import KernelPreference

    if scale_exp is None:
        codes, scale_exp = quantize(x_or_codes, fmt, "nearest", "mx", MX_BLOCK)
    else:
        codes = x_or_codes
    if codes.shape[-1] % MX_BLOCK:
        raise QuantError(f"torchao's MXTensor needs the last dimension to be a multiple of {MX_BLOCK}, "
                         f"got shape {tuple(codes.shape)}")
    qdata, scale = export_mx(codes, scale_exp, fmt)
    return MXTensor(qdata.contiguous(), scale.contiguous(), MX_ELEM_DTYPES[F.get(fmt).name], MX_BLOCK,
                    orig_dtype, KernelPreference.EMULATED, None, False)


def nvfp4_quantize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """NVFP4 (spec: :mod:`rf8sim.scales`): ``(E2M1 codes uint8, E4M3 block-scale codes uint8,
    float32 tensor scale)``, bit-identical to :func:`rf8sim.golden.blocks.quantize_block`."""
    from .. import scales as S
    from .quant import _as_float32, encode as _encode

    bf = S.BLOCK_FORMATS["nvfp4"]
    x = _as_float32(x)
    try:
        S.check_block_shape(bf, x.shape)
    except S.ScaleError as e:
        raise QuantError(str(e)) from None
    if not bool(torch.isfinite(x).all()):
        raise QuantError(f"nvfp4 needs finite values: {int((~torch.isfinite(x)).sum())} NaN/Inf in the input")
    blocks = x.reshape(-1, bf.block)
    amax = x.abs().max() if x.numel() else torch.zeros((), dtype=torch.float32)
    s_t = torch.where(amax == 0, torch.ones_like(amax), amax / S.NV_TENSOR_DIV)
    b = blocks.abs().amax(dim=1) / 6.0
    s8 = _encode(torch.clamp(b / s_t, S.NV_SCALE_MIN, S.NV_SCALE_MAX), "e4m3")
    recip = (1.0 / s_t) / s8.view(torch.float8_e4m3fn).float()
    y = torch.clamp(blocks * recip[:, None], -6.0, 6.0)
    codes = _encode(y, "e2m1").reshape(x.shape)
    return codes, s8.reshape(x.shape[:-1] + (x.shape[-1] // bf.block,)), s_t


def nvfp4_fake_quant(x: torch.Tensor) -> torch.Tensor:
    """NVFP4 quantize + dequantize (``e2m1 * (s_t * s8)`` in float32), straight-through gradient."""
    from .quant import decode as _decode

    codes, s8, s_t = nvfp4_quantize(x.detach())
    scale = (s_t * s8.view(torch.float8_e4m3fn).float()).reshape(-1, 1)
    v = (_decode(codes, "e2m1").reshape(-1, 16) * scale).reshape(x.shape)
    return x + (v - x).detach() if x.requires_grad else v
