"""Weight-only quantization with 16-bit float activations (W8A16), bit-exact in torch.

The numerics follow the W8A16 contract (docs/formats.md): activations are bf16
or fp16 codes (uint16), weights 8-bit codes (rf8, e4m3, e5m2, int8, with
power-of-two scale exponents) or bf16, and two accumulators:

``fp32``
    One IEEE binary32 accumulator per output; per term ``acc = RNE_f32(acc + p)``
    with the *exact* product ``p`` (a fused multiply-add, no product rounding), in
    k order (for lanes > 1 the contract's lane-order chain is the same order).
    **Exact emulation** (:func:`rf8sim.training.gemm` with ``acc="fp32"``): every product of a
    16-bit activation (<= 11-bit significand) and a weight (<= 8 bits) is exact in
    float64; the float64 sum ``s = acc + p`` is made exact with its TwoSum error
    term, turned into the round-to-odd float64 sum (53 >= 24 + 2 bits), and the
    float64 -> float32 cast then rounds it correctly (RNE, subnormals, overflow to
    Inf).  One vectorised step per k: O(K) small kernels.
    **Fast, not exact**: ``F.linear`` on the dequantized float32 operands (what
    :func:`rf8sim.training.fake_quant` + a QAT forward computes) sums in a blocked order; its
    outputs differ from the sequential chain in the last bits (verify-layer
    reports the fraction that agrees).

``aligned:K:M``
    Blocks of K terms share the largest activation exponent field ``E_max``
    (subnormals and zeros count as 1); with ``q = E_max - bias - (M - 2)`` each
    activation becomes ``sign * min(RNE(|a| / 2**q), 2**(M-1) - 1)``, the block
    sum ``S`` of ``a_int * w`` is an exact integer, and ``acc = RNE_f32(acc +
    S * 2**(...))`` once per block.  **Exact** (integer arithmetic in int64
    tensors, then the same round-to-odd step): :func:`rf8sim.training.gemm` with
    ``acc="aligned:K:M"``.  Block sums beyond 2**53 (which need very wide
    configurations: M near 24 with wide weight exponent ranges and K in the
    thousands) raise :class:`~rf8sim.training.gemm.GemmError`.

NaN and Inf follow the contract: a NaN result is the canonical 0x7FC00000 and
sets ``invalid``; a finite sum that rounds beyond float32 becomes Inf and sets
``overflow``.  Pure torch, no Numba.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .. import formats as F
from ..accspec import AccSpec, AccSpecError
from .operands import GemmError, scale_exponents
from . import floatcodes
from .floatcodes import FORMATS as A16_FORMATS  # noqa: F401 - deprecated name of floatcodes.FORMATS
from .floatcodes import FloatLayout as _F16
from .floatcodes import codes_int32 as _codes16
from .floatcodes import layout as _f16
from .quant import QuantError, canonical_granularity

__all__ = ["W8A16Result", "gemm_float", "float_acc", "CANONICAL_NAN_F32"]

CANONICAL_NAN_F32 = 0x7FC00000


# ---------------------------------------------------------------------------
# accumulator specs

def float_acc(acc, a_fmt=None, w_fmt=None) -> AccSpec:
    """The float accumulator (``fp32`` or ``aligned:K:M``) of an AccSpec or its string, parsed by
    :meth:`rf8sim.accspec.AccSpec.parse`; GemmError for a fixed-point or unknown spec."""
    try:
        spec = AccSpec.parse(acc)
    except AccSpecError as e:
        raise GemmError(str(e)) from None
    if spec.kind == "fixed":
        raise GemmError(f"accumulator {acc!r} is fixed-point; 16-bit activations take a float accumulator; "
                        "valid: fp32, aligned:K:M")
    return spec


# ---------------------------------------------------------------------------
# operand decomposition

def _act_parts(c: torch.Tensor, f: _F16):
    """sign, sig, exp, exponent field (0 -> 1), special (0 finite, 1 NaN, 2 Inf) of int32 16-bit codes."""
    eb, mb = f.exp_bits, f.man_bits
    sign = (c >> (eb + mb)) & 1
    E = (c >> mb) & ((1 << eb) - 1)
    man = c & ((1 << mb) - 1)
    top = (1 << eb) - 1
    sig = torch.where(E == 0, man, man | (1 << mb))
    exp = torch.where(E == 0, 1 - f.bias - mb, E - f.bias - mb)
    special = torch.where(E == top, torch.where(man == 0, 2, 1), 0)
    sig = torch.where(E == top, 0, sig)
    return sign, sig.to(torch.int64), exp.to(torch.int64), torch.where(E == 0, 1, E), special


def _act8_parts(a_codes: torch.Tensor, a_fmt):
    """As _act_parts for 8-bit activation codes (uint8) and posit16 (uint16), from rf8sim.formats; the alignment exponent
    field is E (zeros/subnormals 1) for floats and RF8-family formats, none (-1) for int8."""
    f = F.get(a_fmt)
    want = torch.uint8 if f.code_bits <= 8 else torch.uint16  # uint16: posit16 (decoded by its tables too)
    if not isinstance(a_codes, torch.Tensor) or a_codes.dtype != want:
        raise GemmError(f"a_codes must be a {want} tensor of {f.name} codes")
    if want == torch.uint16:
        a_codes = a_codes.view(torch.int16).to(torch.int32) & 0xFFFF
    fin = f.special == F.SPECIAL_FINITE
    exp = np.where(fin, f.exp, 0).astype(np.int64)
    codes = np.arange(len(f.values))
    if f.kind == "float":
        ef = np.where(fin, exp + f.bias + f.man_bits, -1)
    elif f.kind == "residual":
        ef = np.where(fin, np.maximum((codes >> f.man_bits) & ((1 << f.exp_bits) - 1), 1), -1)
    else:
        ef = np.full(len(codes), -1, np.int64)
    idx = a_codes.to(torch.int64)
    t = lambda a: torch.from_numpy(np.array(a, np.int64)).to(a_codes.device)[idx]  # noqa: E731
    return t(f.sign), t(np.where(fin, f.sig, 0)), t(exp), t(ef), t(f.special), f


def _weight_parts(w_codes: torch.Tensor, w_fmt):
    """(sign, sig, exp, special) int64 of weight codes: 8-bit formats from rf8sim.formats, or bf16."""
    name = getattr(w_fmt, "name", w_fmt)
    if name in A16_FORMATS:
        c = _codes16(w_codes, "w_codes")
        s, sig, e, _, sp = _act_parts(c, A16_FORMATS[name])
        return s.to(torch.int64), sig, e, sp.to(torch.int64)
    f = F.get(w_fmt)
    if not isinstance(w_codes, torch.Tensor) or w_codes.dtype != torch.uint8:
        raise GemmError(f"w_codes must be a torch.uint8 tensor of {f.name} codes")
    idx = w_codes.to(torch.int64)
    dev = w_codes.device
    t = lambda a: torch.from_numpy(np.array(a, np.int64)).to(dev)[idx]  # noqa: E731
    return t(f.sign), t(f.sig), t(f.exp), t(f.special)


def _value64(sign, sig, exp, special) -> torch.Tensor:
    """Exact float64 values (NaN/Inf for specials); |exp| < 900 and sig < 2**53 here."""
    v = sig.to(torch.float64) * torch.bitwise_left_shift(exp + 1023, 52).view(torch.float64)
    v = torch.where(special == 1, torch.full_like(v, float("nan")), v)
    v = torch.where(special == 2, torch.full_like(v, float("inf")), v)
    return torch.where(sign == 1, -v, v)


def _w_scales(w_scale_exp, N: int, K: int, gran: str, block: int, dev, what: str = "w") -> torch.Tensor:
    """Per (n, k) scale exponent, int64 (N, K): the integer GEMM's checks (integers only, shape) plus
    a refusal of the MX NaN scale."""
    try:
        k = scale_exponents(w_scale_exp, N, K, gran, block, what, dev)
    except QuantError as e:
        raise GemmError(str(e)) from None
    if bool((k == -128).any()):
        raise GemmError(f"{what}_scale_exp holds the NaN scale (-128): an MX block with a non-finite value")
    return k


# ---------------------------------------------------------------------------
# the exact float32 step

def _rne_f32_add(acc: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """RNE_f32(acc + p) exactly, for float32 ``acc`` and an exact float64 ``p`` (both as float64).

    TwoSum gives s = fl64(acc + p) and the exact error e; if e != 0 and s is even,
    step s one ulp towards the true sum (round to odd); float64 -> float32 of a
    round-to-odd value with >= 26 bits is the correctly rounded result.
    """
    s = acc + p
    bb = s - acc
    e = (acc - (s - bb)) + (p - bb)
    bits = s.view(torch.int64)
    fix = torch.isfinite(s) & (e != 0) & ((bits & 1) == 0)
    step = torch.where((e > 0) == (s > 0), 1, -1)
    bits = torch.where(fix, bits + step, bits)
    return bits.view(torch.float64).to(torch.float32)


class W8A16Result(NamedTuple):
    out: torch.Tensor       # float32 (M, N); NaN results are the canonical 0x7FC00000
    overflow: torch.Tensor  # bool (M, N)
    invalid: torch.Tensor   # bool (M, N)

    @property
    def bits(self) -> torch.Tensor:
        """The float32 bit patterns as int64 in 0..2**32-1."""
        return self.out.view(torch.int32).to(torch.int64) & 0xFFFFFFFF


def gemm_float(a_codes, w_codes, a_fmt="bf16", w_fmt="rf8", acc="fp32", w_scale_exp=None,
           w_granularity: str = "tensor", block: int = 32, a_scale_exp=None,
           a_granularity: str = "tensor") -> W8A16Result:
    """``C[m, n] = sum_k a[m, k] * w[n, k]`` with 16-bit activation codes (uint16, (M, K)) and weight
    codes (uint8 8-bit formats or uint16 bf16, (N, K), nn.Linear layout) under the contract's ``fp32``
    or ``aligned:K:M`` accumulator; bit-exact (see the module docstring).

    8-bit activation formats (uint8 codes, with ``a_scale_exp``) and posit16 (uint16 codes, decoded from
    its tables like the 8-bit ones) go through the same accumulators
    (as in ``rf8sim.golden.gemm``); under ``aligned`` their scale must be constant along a row
    (tensor or channel granularity)."""
    spec = float_acc(acc)
    a8 = getattr(a_fmt, "name", a_fmt) not in A16_FORMATS
    if a8:
        if not isinstance(a_codes, torch.Tensor) or a_codes.dim() != 2:
            raise GemmError("a_codes must be 2-D: a (M, K)")
        a = a_codes
    else:
        fa = _f16(a_fmt)
        a = _codes16(a_codes, "a_codes")
    if a.dim() != 2 or w_codes.dim() != 2:
        raise GemmError("a_codes and w_codes must be 2-D: a (M, K), w (N, K)")
    if a.shape[1] != w_codes.shape[1]:
        raise GemmError(f"inner dimensions differ: a is {tuple(a.shape)}, w is {tuple(w_codes.shape)} (w is (N, K))")
    dev = w_codes.device
    a = a.to(dev)
    M, K = a.shape
    N = w_codes.shape[0]
    gran = canonical_granularity(w_granularity)
    ws, wsig, wexp, wsp = _weight_parts(w_codes, w_fmt)
    wexp = wexp + _w_scales(w_scale_exp, N, K, gran, block, dev)
    if a8:
        asg, asig, aexp, aE, asp, f8 = _act8_parts(a, a_fmt)
        fa = _F16(f8.name, torch.float32, f8.exp_bits, f8.man_bits, f8.bias, 0)
        ga = canonical_granularity(a_granularity)
        ska = _w_scales(a_scale_exp, M, K, ga, block, dev, "a")
        if spec.kind == "aligned":
            if ga not in ("tensor", "channel"):
                raise GemmError(f"{spec} with 8-bit activations needs a tensor or channel activation scale")
            if bool((aE < 0).any()):
                raise GemmError(f"{spec} aligns activations by their exponent field; {f8.name} has none")
            # the alignment works on the codes; the row's scale multiplies the block sum
            aexp_s = aexp
        aexp = aexp + ska
    else:
        asg, asig, aexp, aE, asp = _act_parts(a, fa)
        ska = None
    accv = torch.zeros((M, N), dtype=torch.float32, device=dev)
    ovf = torch.zeros((M, N), dtype=torch.bool, device=dev)
    if spec.kind == "fp32":
        av = _value64(asg, asig, aexp, asp)
        wv = _value64(ws, wsig, wexp, wsp)
        for k in range(K):
            p = av[:, k:k + 1] * wv[None, :, k]
            prev = accv.double()
            accv = _rne_f32_add(prev, p)
            ovf |= torch.isinf(accv) & torch.isfinite(prev) & torch.isfinite(p)
    else:
        if ska is not None:
            accv, ovf = _aligned(asg, asig, aexp_s, aE, asp, ws, wsig, wexp, wsp, fa, spec, accv, ovf,
                                 ska[:, 0])
        else:
            accv, ovf = _aligned(asg, asig, aexp, aE, asp, ws, wsig, wexp, wsp, fa, spec, accv, ovf)
    inv = torch.isnan(accv)  # NaN is sticky within a row, so a NaN result <=> invalid was raised
    out = torch.where(inv, torch.tensor(CANONICAL_NAN_F32, dtype=torch.int32, device=dev).view(torch.float32),
                      accv)
    return W8A16Result(out, ovf, inv)


def _aligned(asg, asig, aexp, aE, asp, ws, wsig, wexp, wsp, fa: _F16, spec: AccSpec, accv, ovf, a_row_scale=None):
    M, K = asig.shape
    N = wsig.shape[0]
    Kb, Mb = spec.block, spec.align_bits
    if K % Kb:
        raise GemmError(f"aligned:{Kb}:{Mb}: K={Kb} does not divide the row length {K}")
    nb = K // Kb
    # activations -> signed M-bit integers per block: q = E_max - bias - (M - 2)
    Emax = aE.reshape(M, nb, Kb).amax(-1)                      # (M, nb)
    q = Emax - fa.bias - (Mb - 2)
    sh = aexp.reshape(M, nb, Kb) - q[:, :, None]              # |a| / 2**q = sig * 2**sh
    sig = asig.reshape(M, nb, Kb)
    left = torch.bitwise_left_shift(sig, sh.clamp(0, 40))
    r = (-sh).clamp(0, 40)
    qt = torch.bitwise_right_shift(sig, r)
    rem = sig - torch.bitwise_left_shift(qt, r)
    half = torch.where(r > 0, torch.bitwise_left_shift(torch.ones_like(r), (r - 1).clamp(min=0)), torch.zeros_like(r))
    up = (r > 0) & ((rem > half) | ((rem == half) & ((qt & 1) == 1)))
    mag = torch.where(sh >= 0, left, qt + up.to(torch.int64)).clamp(max=(1 << (Mb - 1)) - 1)
    a_int = torch.where(asg.reshape(M, nb, Kb) == 1, -mag, mag)
    a_bad = (asp.reshape(M, nb, Kb) != 0).any(-1)             # (M, nb): NaN/Inf activation in the block
    # weights: exact integers relative to the smallest exponent of each (n, block)
    we = wexp.reshape(N, nb, Kb)
    wsig3 = wsig.reshape(N, nb, Kb)
    nz = wsig3 > 0
    big = torch.iinfo(torch.int64).max
    e0 = torch.where(nz, we, torch.full_like(we, big)).amin(-1)
    e0 = torch.where(e0 == big, torch.zeros_like(e0), e0)      # all-zero weight block
    wsh = torch.where(nz, we - e0[:, :, None], torch.zeros_like(we))
    span = int(wsh.max()) if wsh.numel() else 0
    sig_bits = int(wsig.max()).bit_length() if wsig.numel() else 0
    need = (Mb - 1) + sig_bits + span + max(Kb - 1, 1).bit_length()
    if need > 62:
        raise GemmError(f"aligned:{Kb}:{Mb}: block sums need {need} bits (weight exponents span {span}); "
                        "the torch emulation handles up to 62 - use rf8sim.golden.gemm")
    w_int = torch.bitwise_left_shift(wsig3, wsh)
    w_int = torch.where(ws.reshape(N, nb, Kb) == 1, -w_int, w_int)
    w_bad = (wsp.reshape(N, nb, Kb) != 0).any(-1)             # (N, nb)
    for b in range(nb):
        S = (a_int[:, None, b, :] * w_int[None, :, b, :]).sum(-1)  # (M, N), exact in int64
        if bool((S.abs() >= (1 << 53)).any()):
            raise GemmError(f"aligned:{Kb}:{Mb}: a block sum reaches 2**53; the torch emulation adds block "
                            "sums through float64 - use rf8sim.golden.gemm for this configuration")
        ex = q[:, b:b + 1] + e0[None, :, b]                     # (M, N)
        if a_row_scale is not None:
            ex = ex + a_row_scale[:, None]
        v = S.to(torch.float64) * torch.bitwise_left_shift(ex + 1023, 52).view(torch.float64)
        bad = a_bad[:, b:b + 1] | w_bad[None, :, b]
        v = torch.where(bad, torch.full_like(v, float("nan")), v)
        prev = accv.double()
        accv = _rne_f32_add(prev, v)
        ovf |= torch.isinf(accv) & torch.isfinite(prev) & torch.isfinite(v)
    return accv, ovf


# ---------------------------------------------------------------------------
# deprecated names (one release): the front doors are rf8sim.training.encode / decode / fake_quant / gemm

def _deprecated(old: str, new: str):
    import warnings

    warnings.warn(f"rf8sim.training.w8a16.{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)


def encode16(x: torch.Tensor, fmt="bf16", saturate: bool = False) -> torch.Tensor:
    """Deprecated: :func:`rf8sim.training.encode` (``saturate`` defaults to False for bf16/fp16)."""
    _deprecated("encode16", "rf8sim.training.encode")
    return floatcodes.encode(x, fmt, saturate)


def decode16(codes: torch.Tensor, fmt="bf16") -> torch.Tensor:
    """Deprecated: :func:`rf8sim.training.decode`."""
    _deprecated("decode16", "rf8sim.training.decode")
    return floatcodes.decode(codes, fmt)


def fake_quant16(x: torch.Tensor, fmt="bf16") -> torch.Tensor:
    """Deprecated: :func:`rf8sim.training.fake_quant`."""
    _deprecated("fake_quant16", "rf8sim.training.fake_quant")
    return floatcodes.fake_quant(x, fmt)


def gemm16(a_codes, w_codes, a_fmt="bf16", w_fmt="rf8", acc="fp32", w_scale_exp=None,
           w_granularity: str = "tensor", block: int = 32, a_scale_exp=None,
           a_granularity: str = "tensor") -> W8A16Result:
    """Deprecated: :func:`rf8sim.training.gemm` with a float ``acc`` (keyword scale arguments)."""
    _deprecated("gemm16", "rf8sim.training.gemm")
    return gemm_float(a_codes, w_codes, a_fmt, w_fmt, acc, w_scale_exp, w_granularity, block, a_scale_exp,
                      a_granularity)
