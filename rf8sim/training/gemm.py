"""Exact torch emulation of the fixed-point GEMM of ``rf8sim.golden.gemm`` (AccSpec accumulation).

``C[m, n] = sum_k a[m, k] * w[n, k]`` on codes (nn.Linear layout).  Each product
``(-1)^s sig 2^(exp + scale_a + scale_w)`` is aligned to ``frac_bits`` by flooring
(arithmetic shift of its two's complement value), then accumulated in k order
with saturation at the accumulator's width (sticky overflow flag; with ``AccSpec.group = G``,
the PE array's order, G consecutive products are summed exactly before each saturating add); NaN/Inf
operands contribute 0 and set the sticky invalid flag.  Integer tensor ops only
(int64, any device), so the result is bit-identical to the golden model.

Limits: accumulators up to 62 bits (the accumulator and a clamped product then
sum without int64 overflow); wider specs raise :class:`GemmError` - use
``rf8sim.golden.gemm`` for those.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch

from .. import formats as F
from .operands import GemmError, scale_exponents
from .quant import QuantError
from .w8a16 import gemm_float

__all__ = ["GemmError", "TorchGemmResult", "gemm", "to_float32", "MAX_TORCH_WIDTH"]

MAX_TORCH_WIDTH = 62


class TorchGemmResult(NamedTuple):
    acc: torch.Tensor       # int64 (M, N)
    overflow: torch.Tensor  # bool (M, N)
    invalid: torch.Tensor   # bool (M, N)


@lru_cache(maxsize=None)
def _pair_tables_np(a_name: str, w_name: str):
    a, w = F.get(a_name), F.get(w_name)
    fin_a, fin_w = a.special == F.SPECIAL_FINITE, w.special == F.SPECIAL_FINITE
    sa = np.where(a.sign == 1, -a.sig, a.sig).astype(np.int64)
    sw = np.where(w.sign == 1, -w.sig, w.sig).astype(np.int64)
    sv = (sa[:, None] * sw[None, :]).reshape(-1)
    pe = (a.exp[:, None].astype(np.int64) + w.exp[None, :]).reshape(-1)
    sp = (~fin_a[:, None] | ~fin_w[None, :]).reshape(-1)
    sv[sp] = 0
    pe[sp] = 0
    return sv, pe, sp


def gemm(a_codes: torch.Tensor, w_codes: torch.Tensor, a_fmt, w_fmt, acc, a_scale_exp=None, w_scale_exp=None,
         a_granularity: str = "tensor", w_granularity: str = "tensor", block: int = 32,
         chunk: int = 64) -> TorchGemmResult:
    """Bit-exact torch twin of ``rf8sim.golden.gemm`` (see the module docstring).

    A float accumulator (``acc="fp32"`` or ``"aligned:K:M"``) goes to
    :func:`rf8sim.training.w8a16.gemm_float` and returns its ``W8A16Result`` (float32
    outputs and flags), as the golden gemm returns float32 bit patterns then."""
    from ..accspec import AccSpec  # the spec object (pure Python, no Numba)

    a_fmt, w_fmt = F.get(a_fmt), F.get(w_fmt)
    if isinstance(acc, str):
        acc = AccSpec.parse(acc, a_fmt, w_fmt)
    if not isinstance(acc, AccSpec):
        raise GemmError(f"acc must be an AccSpec or a spec string, got {acc!r}")
    if acc.kind != "fixed":  # fp32 / aligned:K:M (the W8A16 contract), as rf8sim.golden.gemm dispatches
        return gemm_float(a_codes, w_codes, a_fmt, w_fmt, str(acc), w_scale_exp, w_granularity, block, a_scale_exp,
                      a_granularity)
    if acc.width > MAX_TORCH_WIDTH:
        raise GemmError(f"accumulator {acc}: the torch emulation handles widths up to {MAX_TORCH_WIDTH} bits; "
                        "use rf8sim.golden.gemm for wider accumulators")
    for name, c in (("a_codes", a_codes), ("w_codes", w_codes)):
        if not isinstance(c, torch.Tensor) or c.dtype != torch.uint8 or c.dim() != 2:
            raise GemmError(f"{name} must be a 2-D torch.uint8 tensor")
    if a_codes.shape[1] != w_codes.shape[1]:
        raise GemmError(f"inner dimensions differ: a is {tuple(a_codes.shape)}, w is {tuple(w_codes.shape)} "
                        "(w is (N, K))")
    dev = a_codes.device
    M, K = a_codes.shape
    N = w_codes.shape[0]
    try:
        SA = scale_exponents(a_scale_exp, M, K, a_granularity, block, "a", dev)
        SW = scale_exponents(w_scale_exp, N, K, w_granularity, block, "w", dev)
    except QuantError as e:
        raise GemmError(str(e)) from None
    sv_np, pe_np, sp_np = _pair_tables_np(a_fmt.name, w_fmt.name)
    sv, pe, sp = (torch.from_numpy(t).to(dev) for t in (sv_np, pe_np, sp_np))
    lo, hi = acc.min, acc.max
    cap = 1 << 62  # |product| >= 2^62 saturates any <= 62-bit accumulator whatever its value
    accv = torch.zeros((M, N), dtype=torch.int64, device=dev)
    ovf = torch.zeros((M, N), dtype=torch.bool, device=dev)
    inv = torch.zeros((M, N), dtype=torch.bool, device=dev)
    a64 = a_codes.to(torch.int64)
    w64 = w_codes.to(torch.int64)
    G = acc.group            # products summed exactly before each saturating add (1: k order)
    lg = (G - 1).bit_length()
    gsum = None
    for k0 in range(0, K, chunk):
        k1 = min(K, k0 + chunk)
        idx = a64[:, None, k0:k1] * 256 + w64[None, :, k0:k1]  # (M, N, kc)
        s = sv[idx]
        sh = pe[idx] + acc.frac_bits + SA[:, None, k0:k1] + SW[None, :, k0:k1]
        bad = sp[idx]
        # |s| < 2^20 is exact in float64, and log2 of it is far from an integer unless s is a power of 2
        bitlen = torch.clamp(torch.abs(s), min=1).to(torch.float64).log2().floor().to(torch.int64) + 1
        big = (s != 0) & (sh + bitlen > 62)  # |s| * 2^sh >= 2^62: saturates a <= 62-bit accumulator
        left = torch.bitwise_left_shift(s, sh.clamp(0, 62))
        right = torch.bitwise_right_shift(s, (-sh).clamp(0, 63))
        p = torch.where(sh >= 0, left, right)
        p = torch.where(big, torch.sign(s) * cap, p)
        p = torch.where(bad, torch.zeros_like(p), p)
        if G > 1:  # grouped order (AccSpec.group): exact int64 group sums need |product| < 2**(62 - lg)
            if bool(((s != 0) & ~bad & (sh + bitlen > 62 - lg)).any()):
                raise GemmError(f"accumulator {acc}: a product needs more than {62 - lg} bits, too wide for an exact "
                                f"int64 sum of {G}; use rf8sim.golden.gemm")
        for j in range(k1 - k0):
            if G > 1:
                gsum = p[:, :, j] if gsum is None else gsum + p[:, :, j]
                inv |= bad[:, :, j]
                if (k0 + j + 1) % G and k0 + j + 1 < K:
                    continue
                t = accv + gsum
                gsum = None
            else:
                t = accv + p[:, :, j]
                inv |= bad[:, :, j]
            ovf |= (t > hi) | (t < lo)
            accv = t.clamp(lo, hi)
    return TorchGemmResult(accv, ovf, inv)


def to_float32(acc: torch.Tensor, frac_bits: int) -> torch.Tensor:
    """Round ``acc * 2**-frac_bits`` to float32, ties to even, exactly (int64 input)."""
    if acc.dtype != torch.int64:
        raise GemmError(f"acc must be int64, got {acc.dtype}")
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, int) or not 0 <= frac_bits <= 96:
        raise GemmError(f"frac_bits must be an integer in 0..96, got {frac_bits!r}")
    neg = acc < 0
    mag = torch.where(neg, -acc, acc)  # |acc| < 2^62: no overflow
    _, e = torch.frexp(mag.to(torch.float64))  # bit length, maybe one too high after float rounding
    bl = e.to(torch.int64)
    bl = torch.where((bl > 0) & (torch.bitwise_right_shift(mag, (bl - 1).clamp(0, 63)) == 0), bl - 1, bl)
    sh = (bl - 24).clamp(min=0)
    q = torch.bitwise_right_shift(mag, sh)
    rem = mag - torch.bitwise_left_shift(q, sh)
    half = torch.where(sh > 0, torch.bitwise_left_shift(torch.ones_like(sh), (sh - 1).clamp(min=0)),
                       torch.zeros_like(sh))
    up = (sh > 0) & ((rem > half) | ((rem == half) & (q & 1 == 1)))
    q = q + up.to(torch.int64)
    # q <= 2^24 is exact in float32; q * 2^(sh - frac) stays a normal float32 (|value| >= 2^-96)
    p2 = torch.bitwise_left_shift(sh - frac_bits + 1023, 52).view(torch.float64)  # 2^(sh - frac), exact
    v = q.to(torch.float64) * p2
    v = torch.where(neg, -v, v)
    return v.to(torch.float32)
