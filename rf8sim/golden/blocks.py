"""Named block formats (``mxfp4``, ``mxfp8``, ``mxint8``, ``nvfp4``): golden quantize / dequantize.

Spec (rules, constants, the NVFP4 float32 steps): :mod:`rf8sim.scales`.  The MX formats are
``rf8sim.golden.quantize(x, element, granularity="mx")`` with the block-shape check of a named
format; ``nvfp4`` follows torchao's two-level ``nvfp4_quantize`` operation for operation in
float32 (numpy float32 arithmetic is IEEE round-to-nearest-even, as torch's), with the
element and block-scale roundings done by :func:`rf8sim.golden.encode` (exact RNE).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import scales as S
from .codec import EncodeError, as_float32, decode, dequantize, encode, quantize

__all__ = ["BlockQuant", "quantize_block", "dequantize_block"]


class BlockQuant(NamedTuple):
    """codes (element codes, ``x``'s shape); scales (mx: int8 scale exponents, one per block;
    nvfp4: uint8 E4M3 codes of the block scales); tensor_scale (nvfp4: float32 ``s_t``, else None)."""

    codes: np.ndarray
    scales: np.ndarray
    tensor_scale: np.float32 | None


def _bf(name) -> S.BlockFormat:
    bf = S.block_format(name)
    if bf is None:
        raise S.ScaleError(f"unknown block format {name!r}; valid: {', '.join(S.BLOCK_FORMATS)}")
    return bf


def nv_tensor_scale(amax) -> np.float32:
    """NVFP4's float32 tensor scale of a tensor maximum (1 for an all-zero tensor)."""
    a = np.float32(amax)
    if a == 0:
        return np.float32(1.0)
    return np.float32(a / np.float32(S.NV_TENSOR_DIV))


def quantize_block(x, name: str) -> BlockQuant:
    """Quantize ``x`` (float32-exact input, last axis a multiple of the block) into block format ``name``."""
    bf = _bf(name)
    x32 = as_float32(x)
    S.check_block_shape(bf, x32.shape)
    if bf.scale == "e8m0":
        codes, k = quantize(x32, bf.element, "nearest", "mx", bf.block)
        return BlockQuant(codes, k, None)
    bad = ~np.isfinite(x32)
    if bad.any():
        first = tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(bad.ravel())[0]), x32.shape))
        raise EncodeError(f"nvfp4 needs finite values: {int(bad.sum())} NaN/Inf (first at index {first}); "
                          f"its E4M3 block scales have no NaN convention for a block")
    blocks = x32.reshape(-1, bf.block)
    s_t = nv_tensor_scale(np.abs(x32).max() if x32.size else 0.0)
    b = (np.abs(blocks).max(axis=1) / np.float32(6.0)).astype(np.float32)
    sb = np.clip(b / s_t, np.float32(S.NV_SCALE_MIN), np.float32(S.NV_SCALE_MAX)).astype(np.float32)
    s8 = encode(sb, "e4m3")
    recip = ((np.float32(1.0) / s_t) / decode(s8, "e4m3")).astype(np.float32)
    y = np.clip(blocks * recip[:, None], np.float32(-6.0), np.float32(6.0)).astype(np.float32)
    codes = encode(y, bf.element).reshape(x32.shape)
    return BlockQuant(codes, s8.reshape(x32.shape[:-1] + (x32.shape[-1] // bf.block,)), s_t)


def dequantize_block(q: BlockQuant, name: str) -> np.ndarray:
    """float32 values of a :class:`BlockQuant` (nvfp4: ``e2m1 * (s_t * s8)`` in float32)."""
    bf = _bf(name)
    codes = np.asarray(q.codes)
    S.check_block_shape(bf, codes.shape)
    if bf.scale == "e8m0":
        return dequantize(codes, q.scales, bf.element, "mx", bf.block)
    want = codes.shape[:-1] + (codes.shape[-1] // bf.block,)
    sc = np.asarray(q.scales)
    if sc.dtype != np.uint8 or sc.shape != want:
        raise S.ScaleError(f"nvfp4 scales must be uint8 E4M3 codes of shape {want}, got {sc.dtype} {sc.shape}")
    s_t = np.float32(q.tensor_scale) if q.tensor_scale is not None else None
    if s_t is None or not np.isfinite(s_t) or s_t <= 0:
        raise S.ScaleError(f"nvfp4 needs a finite positive float32 tensor scale, got {q.tensor_scale!r}")
    s8 = decode(sc, "e4m3")
    if not np.all(np.isfinite(s8)) or np.any(s8 < 0):
        raise S.ScaleError(f"nvfp4 block scales must be finite non-negative E4M3 codes; "
                           f"{int((~np.isfinite(s8) | (s8 < 0)).sum())} are not (NaN code 0x7F/0xFF or negative)")
    scale = (s_t * s8).astype(np.float32)
    v = decode(codes, bf.element).reshape(-1, bf.block)
    return (v * scale.reshape(-1)[:, None]).astype(np.float32).reshape(codes.shape)
