"""16-bit IEEE float codes (bf16, fp16) in torch: encode, decode, fake_quant through torch's casts.

Below the public quantizer: :func:`rf8sim.training.encode`, :func:`~rf8sim.training.decode` and
:func:`~rf8sim.training.fake_quant` dispatch here for these formats (no scale: a 16-bit float is
its own range), and the W8A16 GEMM (:mod:`.w8a16`) reads the codes' fields from :func:`layout`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .. import formats as F
from .tables import QuantError, _as_float32

__all__ = ["FORMATS", "FloatLayout", "takes", "layout", "encode", "decode", "fake_quant", "codes_int32"]


class FloatLayout(NamedTuple):
    """A 16-bit float format's fields (from the spec) and the torch dtype that casts to it."""

    name: str
    dtype: torch.dtype
    exp_bits: int
    man_bits: int
    bias: int
    nan: int  # canonical NaN code

    @property
    def max(self) -> float:
        return float(torch.finfo(self.dtype).max)


def _from_spec(name: str, dtype: torch.dtype) -> FloatLayout:
    f = F.get(name)  # the field layout comes from the spec (rf8sim.formats)
    t = FloatLayout(name, dtype, f.exp_bits, f.man_bits, f.bias, int(f.nan_code))
    fi = torch.finfo(dtype)  # torch's cast must implement exactly that layout
    assert (fi.bits, fi.max, fi.eps) == (f.code_bits, f.max, 2.0 ** -f.man_bits), name
    return t


#: the 16-bit float formats torch casts to (IEEE RNE): the spec's layout, checked against torch.finfo
FORMATS = {"bf16": _from_spec("bf16", torch.bfloat16), "fp16": _from_spec("fp16", torch.float16)}


def takes(fmt) -> bool:
    """Whether ``fmt`` (a name or Format) is one of :data:`FORMATS` (encoded unscaled, by torch's cast)."""
    return getattr(fmt, "name", fmt) in FORMATS


def layout(fmt) -> FloatLayout:
    name = getattr(fmt, "name", fmt)
    if name not in FORMATS:
        raise QuantError(f"{fmt!r} is not a 16-bit float format; valid: {', '.join(FORMATS)}")
    return FORMATS[name]


def encode(x: torch.Tensor, fmt="bf16", saturate: bool = False) -> torch.Tensor:
    """float32 -> uint16 codes, round to nearest even (torch's cast), canonical NaN.

    Overflow goes to +-Inf unless ``saturate`` (then +-max, and +-Inf inputs too).  Same codes as
    ml_dtypes.bfloat16 / numpy.float16 casts (tested) and as the golden model.
    """
    f = layout(fmt)
    x = _as_float32(x)
    if saturate:  # finite overflow and +-Inf both become +-max (as the golden encode and the 8-bit formats)
        x = torch.where(torch.isnan(x), x, x.clamp(-f.max, f.max))
    c = x.to(f.dtype).view(torch.int16).to(torch.int32) & 0xFFFF
    c = torch.where(torch.isnan(x), torch.full_like(c, f.nan), c)
    return c.to(torch.int16).view(torch.uint16)


def codes_int32(codes, what="codes") -> torch.Tensor:
    """uint16 codes as int32 (0..65535); refuses 8-bit and other integer arrays."""
    if isinstance(codes, np.ndarray):
        if codes.dtype != np.uint16:
            raise QuantError(f"{what} must be uint16 16-bit float codes, got a numpy {codes.dtype} array")
        codes = torch.from_numpy(codes.astype(np.int32))
        return codes
    if not isinstance(codes, torch.Tensor) or codes.dtype != torch.uint16:
        got = codes.dtype if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise QuantError(f"{what} must be a torch.uint16 tensor of 16-bit float codes, got {got}"
                         + (" (8-bit codes belong to the 8-bit formats)" if got == torch.uint8 else ""))
    return codes.view(torch.int16).to(torch.int32) & 0xFFFF


def decode(codes: torch.Tensor, fmt="bf16") -> torch.Tensor:
    """uint16 codes -> float32 (exact: every bf16/fp16 value is a float32)."""
    f = layout(fmt)
    c = codes_int32(codes)
    return c.to(torch.int16).view(f.dtype).float()


class _CastSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dtype):
        return x.to(dtype).float()

    @staticmethod
    def backward(ctx, g):
        return g, None


def fake_quant(x: torch.Tensor, fmt="bf16") -> torch.Tensor:
    """``decode(encode(x))`` (RNE to bf16/fp16, overflow to Inf) as float32, straight-through gradient."""
    f = layout(fmt)
    return _CastSTE.apply(_as_float32(x), f.dtype)
