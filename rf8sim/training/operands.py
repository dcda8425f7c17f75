"""GEMM operands shared by the fixed-point (:mod:`.gemm`) and float (:mod:`.w8a16`) accumulators.

Below both: the error type and the per-element scale exponents of the codes, checked once
(integers only, shape of the granularity), so that neither accumulator imports the other.
"""

from __future__ import annotations

import torch

from ..errors import RF8SimError
from ..scales import SCALE_MAX, SCALE_MIN, SCALE_NAN
from .quant import scale_shape

__all__ = ["GemmError", "scale_exponents"]


class GemmError(RF8SimError, ValueError):
    """A GEMM the torch emulation cannot do exactly, or inconsistent arguments."""


def scale_exponents(k, rows: int, K: int, gran: str, block: int, what: str, device) -> torch.Tensor:
    """Per (row, k) scale exponent as int64 (rows, K)."""
    want = scale_shape((rows, K), gran, block)
    if k is None:
        if gran != "tensor":
            raise GemmError(f"{what}_scale_exp is required for granularity {gran!r}")
        k = torch.zeros((), dtype=torch.int64)
    k = torch.as_tensor(k)
    if k.dtype == torch.bool or k.is_complex():
        raise GemmError(f"{what}_scale_exp must hold integers, got dtype {k.dtype}")
    if k.is_floating_point():  # 1.5 must not silently become 1
        bad = ~torch.isfinite(k) | (k != torch.round(k))
        if bool(bad.any()):
            i = int(torch.nonzero(bad.reshape(-1))[0])
            raise GemmError(f"{what}_scale_exp must hold integers (power-of-two exponents); "
                            f"got {float(k.reshape(-1)[i])!r} at flat index {i}")
    k = k.to(device=device, dtype=torch.int64)
    bad = (k < SCALE_MIN) | (k > SCALE_MAX)
    if gran == "mx":
        bad &= k != SCALE_NAN
    if bool(bad.any()):  # such a product would be floored to 0 (or overflow): never a scale quantize makes
        raise GemmError(f"{what}_scale_exp holds {int(bad.sum())} exponent(s) outside the E8M0 range "
                        f"{SCALE_MIN}..{SCALE_MAX} (first {int(k[bad].reshape(-1)[0])}); quantize's scales lie in it")
    if tuple(k.shape) != want:
        raise GemmError(f"{what}_scale_exp has shape {tuple(k.shape)}; granularity {gran!r} with {rows}x{K} "
                        f"codes needs {want}")
    if gran == "tensor":
        return k.reshape(1, 1).expand(rows, K)
    if gran == "channel":
        return k.reshape(rows, 1).expand(rows, K)
    return k.repeat_interleave(block, dim=1)[:, :K]
