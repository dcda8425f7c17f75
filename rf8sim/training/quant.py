"""Bit-exact torch emulation of every rf8sim format: encode, decode, quantize, fake_quant.

Pure torch (CPU and CUDA), no Numba.  Every table comes from :mod:`rf8sim.formats`.

How ``nearest`` is computed without a float comparison chain: the float32 bit
pattern of ``|x|`` is monotone in ``|x|``.  All midpoints between neighbouring
magnitudes of a format have at most ``M`` fraction bits relative to their binade
(rf8: 5, e4m3: 4, e5m2: 3), so every midpoint is the *start* of a bucket of
``2**(23 - M)`` consecutive float32 patterns.  One lookup on ``bits >> (23 - M)``
gives the number ``L`` of midpoints below the bucket start and whether the start
is itself a midpoint; a value equal to that start is a tie and goes to the even
index of the ascending magnitude list (issue 2, section 2).  The result is exact
for every float32 input, ties included, without any float arithmetic.

``paper`` and ``truncate`` read the exponent and significand from the bits and
decide ``round(log2 |x|)`` by an integer comparison of the 24-bit significand with
``ceil(sqrt(2) * 2**23)``.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import formats as F
from .fastquant import _COMPILE, _STATUS, kernel_values
from .fastquant import compile_status as _compile_status
from . import floatcodes
from .tables import _SQRT2_SIG, QuantError, _as_float32, _fold, _raise_nonfinite, _tables, _Tables, _unfold  # noqa: F401

__all__ = [
    "GRANULARITIES",
    "BLOCK_GRANULARITIES",
    "SCALE_MIN",
    "SCALE_MAX",
    "SCALE_NAN",
    "QuantError",
    "canonical_granularity",
    "to_e8m0",
    "from_e8m0",
    "encode",
    "decode",
    "quantize",
    "dequantize",
    "fake_quant",
    "scale_exponent",
    "scale_shape",
    "set_compile",
]

# The granularities (tensor, channel, ceil = the no-clipping rule k = ceil(log2(amax / max)) that
# torchao calls RCEIL and that was called "block", mx = OCP MX v1.0), the E8M0 scale range -127..127
# and the NaN scale (-128 as int8, E8M0 byte 0xFF) come from the spec module rf8sim.scales.
from ..scales import (BLOCK_GRANULARITIES, GRANULARITIES, SCALE_MAX, SCALE_MIN, SCALE_NAN,  # noqa: E402
                      ScaleError)
from ..scales import canonical_granularity as _canonical_granularity  # noqa: E402
from ..scales import scale_shape as _scale_shape  # noqa: E402

_SCALE_MIN, _SCALE_MAX = SCALE_MIN, SCALE_MAX
_NONFINITE = ("raise", "propagate")


# ---------------------------------------------------------------------------
# argument checking


def _fmt(fmt) -> F.Format:
    f = F.get(fmt)
    if f.code_bits > 8 and not _table16(f):
        raise QuantError(f"{f.name} has {f.code_bits}-bit codes; the scaled quantizer takes 8-bit formats "
                         f"({', '.join(F.names(code_bits=8))}) and the 16-bit posits "
                         f"({', '.join(n for n in F.names(16) if _table16(F.get(n)))}); 16-bit float formats "
                         f"({', '.join(floatcodes.FORMATS)}) are encoded unscaled: encode/decode/fake_quant")
    return f


def _table16(f: F.Format) -> bool:
    """16-bit formats encoded through the lookup tables like the 8-bit ones (posit16): uint16 codes."""
    return f.code_bits == 16 and f.kind == "posit"


def _code_tensor(c: torch.Tensor, fmt: F.Format) -> torch.Tensor:
    """int32 codes (0 .. 2**code_bits - 1) as the format's code dtype: uint8, or uint16 for posit16."""
    if fmt.code_bits <= 8:
        return c.to(torch.uint8)
    return c.to(torch.int16).view(torch.uint16)  # two's complement wrap: the low 16 bits


def _check_rounding(fmt: F.Format, rounding: str) -> str:
    if rounding not in fmt.roundings:
        raise QuantError(f"rounding {rounding!r} is not valid for {fmt.name}; valid: {', '.join(fmt.roundings)}")
    return rounding


def _check_nonempty(x: torch.Tensor, what="x") -> None:
    if x.numel() == 0:
        raise QuantError(f"{what} is empty (shape {tuple(x.shape)}); nothing to quantize")


def _nan_error(x: torch.Tensor, fmt: F.Format, what: str) -> QuantError:
    bad = torch.isnan(x).reshape(-1)
    n = int(bad.sum())
    first = int(torch.nonzero(bad)[0, 0])
    return QuantError(f"{what} contains {n} NaN value(s) (first at flat index {first}); "
                      f"{fmt.name} has no NaN code")


# ---------------------------------------------------------------------------
# encode / decode (already scaled values)


def _nearest_idx(ab: torch.Tensor, tb: _Tables, d: dict) -> torch.Tensor:
    """Index into fmt.magnitudes (or the overflow index) of |x|, from its float32 bits ``ab``."""
    if tb.search:
        thr = d["thr"]
        j = torch.searchsorted(thr, ab.contiguous(), right=False).to(torch.int32)  # boundaries below |x|
        jj = j.clamp_max(thr.numel() - 1).long()
        at = (j < thr.numel()) & (thr.index_select(0, jj.reshape(-1)).view_as(ab) == ab)
        return torch.where(at, d["tie"].index_select(0, jj.reshape(-1)).view_as(ab), j)
    b = ab >> tb.shift
    exact = (ab & ((1 << tb.shift) - 1)) == 0
    return torch.where(exact, d["start"].index_select(0, b.reshape(-1)).view_as(b),
                       d["above"].index_select(0, b.reshape(-1)).view_as(b))


def _float_parts(ab: torch.Tensor):
    """(unbiased exponent, 24-bit significand) of positive normal float32 bit patterns."""
    e = (ab >> 23) - 127
    sig = (ab & 0x7FFFFF) | 0x800000
    return e, sig


def _residual_terms(a: torch.Tensor, rounding: str):
    """Leading exponent e1, residual sign t (-1, 0, 1) and exponent e2 for paper/truncate.

    ``a`` is |x| as float32 (finite).  Values with e1 below the format's range are
    marked by the caller; subnormal float32 inputs give a very negative e1.
    """
    ab = a.view(torch.int32)
    e1, sig = _float_parts(ab)
    if rounding == "paper":
        e1 = e1 + (sig >= _SQRT2_SIG).to(torch.int32)
    # exact in float32 whenever 2**e1 is a normal float: |x| and 2**e1 are within a factor 2
    p1 = ((e1.clamp(-126, 127) + 127) << 23).view(torch.float32)
    r = a - p1
    t = torch.sign(r).to(torch.int32)
    rb = r.abs().view(torch.int32)
    e2, sig2 = _float_parts(rb)
    if rounding == "paper":
        e2 = e2 + (sig2 >= _SQRT2_SIG).to(torch.int32)
    return e1, t, e2


def _residual_codes(x: torch.Tensor, fmt: F.Format, rounding: str, saturate: bool, d: dict, tb: _Tables):
    a = x.abs()
    ab = a.view(torch.int32)
    e1, t, e2 = _residual_terms(a, rounding)
    dd = e1 - e2
    keep = (t != 0) & (dd <= tb.dmax)
    # R from (t, d); d is at least 1 for t=+1 and 2 for t=-1 by construction, at most dmax when kept
    R = d["rmap"].index_select(0, ((t + 1) * 8 + dd.clamp(0, 7)).reshape(-1)).view_as(t)
    R = torch.where(keep, R, torch.zeros_like(R))
    E = e1 + fmt.bias
    code = (E << fmt.man_bits) | R
    big = (e1 > tb.e_max) | (ab >= 0x7F800000)
    if not saturate and bool(big.any()):
        n = int(big.sum())
        raise QuantError(f"{n} value(s) exceed the {fmt.name} range (max {fmt.max}) with saturate=False")
    code = torch.where(big, torch.full_like(code, tb.max_code), code)
    code = torch.where(e1 < tb.e_min, torch.zeros_like(code), code)
    code = d["canonical"].index_select(0, code.reshape(-1)).view_as(code)
    return code


def _encode32(x: torch.Tensor, fmt: F.Format, rounding: str, saturate: bool) -> torch.Tensor:
    """int32 canonical codes of float32 ``x`` (any shape)."""
    tb = _tables(fmt)
    d = tb.on(x.device)
    nan = torch.isnan(x)
    if fmt.nan_code is None and bool(nan.any()):
        raise _nan_error(x, fmt, "input")
    if fmt.kind == "int":
        r = torch.round(x)  # round half to even
        if not saturate:
            over = (r > 127) | (r < -128)
            if bool(over.any()):
                raise QuantError(f"{int(over.sum())} value(s) round outside int8's range -128..127 "
                                 "with saturate=False")
        q = r.clamp(-128, 127).to(torch.int32)
        return q & 0xFF
    if fmt.negation == "twos" and not saturate:
        raise QuantError(f"{fmt.name}: posits never overflow (beyond maxpos rounds to maxpos); "
                         "saturate=False is not valid for them")
    bits = x.view(torch.int32)
    sign = ((bits >> 31) & 1) << (fmt.code_bits - 1)  # the code's sign bit
    if fmt.kind == "residual" and rounding != "nearest":
        code = _residual_codes(x, fmt, rounding, saturate, d, tb)
        return code | sign
    ab = bits & 0x7FFFFFFF
    ab = torch.where(ab > 0x7F800000, torch.zeros_like(ab), ab)  # NaN: handled below
    idx = _nearest_idx(ab, tb, d)
    if tb.overflow_idx is not None:
        if saturate:
            idx = idx.clamp_max(tb.n_mags - 1)
        elif fmt.inf_code is None and fmt.nan_code is None:
            over = idx == tb.overflow_idx
            if bool(over.any()):
                raise QuantError(f"{int(over.sum())} value(s) exceed the {fmt.name} range (max {fmt.max}) "
                                 "with saturate=False")
    elif not saturate:
        over = ab > int(np.float32(fmt.max).view(np.int32))
        if bool(over.any()):
            raise QuantError(f"{int(over.sum())} value(s) exceed the {fmt.name} range (max {fmt.max}) "
                             "with saturate=False")
    code = d["code"].index_select(0, idx.reshape(-1)).view_as(idx) | sign
    if fmt.negation == "twos":  # posits: two's complement negatives, NaN and +-Inf are NaR
        code = d["twos"].index_select(0, code.reshape(-1)).view_as(code)
        nan = nan | torch.isinf(x)
    if fmt.nan_code is not None:
        code = torch.where(nan, torch.full_like(code, fmt.nan_code), code)
    return d["canonical"].index_select(0, code.reshape(-1)).view_as(code)


def encode(x: torch.Tensor, fmt="rf8", rounding: str = "nearest", saturate: bool | None = None) -> torch.Tensor:
    """Canonical codes of ``x`` (no scaling), bit-identical to ``rf8sim.golden.encode``.

    ``x``: float32 tensor (float16/bfloat16 converted exactly).  8-bit formats: uint8 codes (posit16:
    uint16, through the same tables);
    NaN raises for formats without NaN (rf8, int8) and gives the canonical NaN code otherwise;
    values beyond max saturate (``saturate=False``: OCP overflow for e4m3/e5m2, QuantError for
    rf8/int8).  16-bit floats (bf16, fp16; :mod:`.floatcodes`): uint16 codes by torch's RNE
    cast, canonical NaN, overflow to +-Inf unless ``saturate``.  ``saturate=None``: True for the
    8-bit formats, False for the 16-bit floats (as the golden encode).
    """
    if floatcodes.takes(fmt):
        _check_rounding(F.get(fmt), rounding)
        return floatcodes.encode(x, fmt, bool(saturate))
    saturate = True if saturate is None else saturate
    fmt = _fmt(fmt)
    _check_rounding(fmt, rounding)
    if not isinstance(saturate, bool):  # "False" is a truthy string
        raise QuantError(f"saturate must be True or False, got {saturate!r}")
    x = _as_float32(x)
    if x.numel() == 0:
        return _code_tensor(torch.empty(x.shape, dtype=torch.int32, device=x.device), fmt)
    return _code_tensor(_encode32(x.contiguous(), fmt, rounding, saturate), fmt)


def decode(codes: torch.Tensor, fmt="rf8") -> torch.Tensor:
    """float32 values of ``codes`` (uint8; uint16 for bf16/fp16 and posit16): every finite value is exact in float32."""
    if floatcodes.takes(fmt):
        return floatcodes.decode(codes, fmt)
    fmt = _fmt(fmt)
    want = torch.uint8 if fmt.code_bits <= 8 else torch.uint16
    if not isinstance(codes, torch.Tensor) or codes.dtype != want:
        raise QuantError(f"{fmt.name} codes must be a {want} tensor, got "
                         f"{codes.dtype if isinstance(codes, torch.Tensor) else type(codes).__name__}")
    d = _tables(fmt).on(codes.device)
    if want == torch.uint8:
        flat = codes.reshape(-1).to(torch.int32)
    else:
        flat = codes.reshape(-1).view(torch.int16).to(torch.int32) & 0xFFFF
    return d["values"].index_select(0, flat).view(codes.shape)


# ---------------------------------------------------------------------------
# scales


def canonical_granularity(granularity: str) -> str:
    """The granularity's current name (``block`` -> ``ceil``); QuantError if unknown."""
    try:
        return _canonical_granularity(granularity)
    except ScaleError as e:
        raise QuantError(str(e)) from None


def to_e8m0(scale_exp: torch.Tensor) -> torch.Tensor:
    """OCP E8M0 scale bytes (uint8: k + 127; the NaN scale SCALE_NAN -> 0xFF) of int8 scale exponents."""
    k = torch.as_tensor(scale_exp).to(torch.int16)
    bad = (k != SCALE_NAN) & ((k < SCALE_MIN) | (k > SCALE_MAX))
    if bool(bad.any()):
        raise QuantError(f"{int(bad.sum())} scale exponent(s) outside the E8M0 range {SCALE_MIN}..{SCALE_MAX}")
    return torch.where(k == SCALE_NAN, torch.full_like(k, 255), k + 127).to(torch.uint8)


def from_e8m0(scale_bytes: torch.Tensor) -> torch.Tensor:
    """Inverse of to_e8m0: int8 scale exponents (0xFF -> SCALE_NAN)."""
    b = torch.as_tensor(scale_bytes)
    if b.dtype == getattr(torch, "float8_e8m0fnu", None):
        b = b.view(torch.uint8)
    if b.dtype != torch.uint8:
        raise QuantError(f"E8M0 scales must be uint8 bytes (or float8_e8m0fnu), got {b.dtype}")
    k = b.to(torch.int16)
    return torch.where(k == 255, torch.full_like(k, SCALE_NAN), k - 127).to(torch.int8)


def scale_shape(shape, granularity: str, block: int = 32) -> tuple:
    """Shape of the scale exponents for a tensor of ``shape``."""
    try:
        return _scale_shape(tuple(shape), granularity, block)
    except ScaleError as e:
        raise QuantError(str(e)) from None


def _pow2_f32(k: torch.Tensor) -> torch.Tensor:
    """2.0**k as float32 for integer k in [-149, 127] (subnormal powers included), exact."""
    k = k.to(torch.int32)
    normal = ((k.clamp(-126, 127) + 127) << 23).view(torch.float32)
    sub = (torch.ones_like(k) << (k + 149).clamp(0, 22)).view(torch.float32)
    return torch.where(k >= -126, normal, sub)


def scale_exponent(amax: torch.Tensor, fmt, rule: str = "ceil") -> torch.Tensor:
    """The scale exponent of each group maximum ``amax`` (>= 0), as int32.

    ``rule="ceil"`` (tensor, channel, ceil): the smallest integer k with
    amax / 2**k <= fmt.max (amax = 0 -> 0), exactly (amax and fmt.max * 2**k are
    compared in float64, where both are exact).  ``rule="mx"`` (OCP MX v1.0):
    k = floor(log2 amax) - floor(log2 fmt.max), -127 for amax = 0, SCALE_NAN for
    a non-finite amax.  Both are clamped to the E8M0 range -127..127.
    """
    fmt = _fmt(fmt)
    if rule == "mx":
        a = amax.to(torch.float64)
        _, ea = torch.frexp(torch.where(torch.isfinite(a), a, torch.zeros_like(a)))
        _, em = torch.frexp(torch.tensor(fmt.scale_target, dtype=torch.float64))
        k = (ea - em).to(torch.int64).clamp(_SCALE_MIN, _SCALE_MAX)
        k = torch.where(a == 0, torch.full_like(k, _SCALE_MIN), k)
        return torch.where(torch.isfinite(a), k, torch.full_like(k, SCALE_NAN)).to(torch.int32)
    if rule != "ceil":
        raise QuantError(f"scale rule {rule!r} is not valid; valid: ceil, mx")
    a = amax.to(torch.float64)
    _, ea = torch.frexp(a)
    _, em = torch.frexp(torch.tensor(fmt.scale_target, dtype=torch.float64))
    k0 = (ea - em).to(torch.int64)
    k = k0 + 1
    for delta in (0, -1):  # amax/max is in (2**(k0-1), 2**(k0+1)): the answer is k0 or k0+1
        c = k0 + delta
        ok = a <= torch.ldexp(torch.full_like(a, fmt.scale_target), c)
        k = torch.where(ok, c, k)
    k = torch.where(a == 0, torch.zeros_like(k), k)
    # E8M0 range: k < -127 only for amax < max * 2**-127, where -127 still satisfies the bound
    # (k > 127 cannot happen for a finite float32 amax and any format max >= 1)
    return k.clamp(_SCALE_MIN, _SCALE_MAX).to(torch.int32)


def _scale_exps(x: torch.Tensor, fmt: F.Format, granularity: str, block: int, nonfinite: str):
    y, sshape = _fold(x, granularity, block)
    rule = "mx" if granularity == "mx" else "ceil"
    if nonfinite == "mx":  # quantize(granularity="mx"): a block with NaN/Inf gets the NaN scale
        return y, scale_exponent(y.abs().amax(dim=1), fmt, rule), sshape
    if nonfinite == "propagate":
        a = y.abs()
        amax = torch.where(torch.isfinite(a), a, torch.zeros_like(a)).amax(dim=1)
    else:
        # one pass: min and max (NaN and Inf propagate into amax, which is how we detect them)
        mn, mx = torch.aminmax(y, dim=1)
        amax = torch.maximum(mx, -mn)
        if not bool(torch.isfinite(amax).all()):
            _raise_nonfinite(x)
    return y, scale_exponent(amax, fmt, rule), sshape


def _check_x(x, fmt, rounding, granularity, block, nonfinite="raise"):
    fmt = _fmt(fmt)
    _check_rounding(fmt, rounding)
    if nonfinite not in _NONFINITE:
        raise QuantError(f"nonfinite={nonfinite!r} is not valid; valid: {', '.join(_NONFINITE)}")
    x = _as_float32(x)
    _check_nonempty(x)
    scale_shape(x.shape, granularity, block)  # validates granularity and block
    return fmt, x.contiguous(), canonical_granularity(granularity)


def quantize(x: torch.Tensor, fmt="rf8", rounding: str = "nearest", granularity: str = "tensor",
             block: int = 32, saturate: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Power-of-two scaled quantization: ``(codes uint8, scale_exp int8)``.

    ``scale_exp`` is the smallest integer k with amax / 2**k <= fmt.max per group
    (``tensor``: shape (); ``channel``: (x.shape[0],); ``ceil``/``mx``: x.shape[:-1] +
    (ceil(n / block),), contiguous blocks along the last axis); codes =
    encode(x / 2**k).  Bit-identical to ``rf8sim.golden.quantize``.  NaN/Inf and
    empty input raise QuantError, except under ``mx``, where a block holding
    NaN/Inf gets the NaN scale SCALE_NAN and all-zero codes (OCP MX v1.0), and
    elements always saturate (``saturate`` is ignored: the floor rule lets a
    scaled value exceed the format's max).  ``saturate=None``: True.  16-bit floats
    (bf16, fp16) are not scaled: ``(encode(x), zeros)`` (uint16 codes; NaN/Inf kept,
    overflow to +-Inf unless ``saturate``).
    """
    if floatcodes.takes(fmt):  # a 16-bit float is its own range: codes of x, scale exponent 0
        _check_rounding(F.get(fmt), rounding)
        shape = scale_shape(_as_float32(x).shape, granularity, block)
        return encode(x, fmt, rounding, False if saturate is None else saturate), torch.zeros(shape, dtype=torch.int8)
    saturate = True if saturate is None else saturate
    fmt, x, granularity = _check_x(x, fmt, rounding, granularity, block)
    mx = granularity == "mx"
    y, k, sshape = _scale_exps(x, fmt, granularity, block, "mx" if mx else "raise")
    if mx:
        nan_blk = k == SCALE_NAN
        y = torch.where(nan_blk[:, None], torch.zeros_like(y), y)
        saturate = True
    ys = _apply_scale(y, -k[:, None])
    codes = _code_tensor(_encode32(ys, fmt, rounding, saturate), fmt)
    codes = _unfold(codes, x.shape, granularity, block)
    return codes, k.to(torch.int8).reshape(sshape)


def _apply_scale(y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """y * 2**k for |k| <= 128, exact except float32 underflow (scaled values that small
    round to zero in every format, so the final codes are those of the exact product)."""
    k1 = torch.div(k, 2, rounding_mode="floor")
    return y * _pow2_f32(k1) * _pow2_f32(k - k1)


def dequantize(codes: torch.Tensor, scale_exp: torch.Tensor, fmt="rf8", granularity: str = "tensor",
               block: int = 32) -> torch.Tensor:
    """``decode(codes) * 2**scale_exp`` as float32 (one correctly rounded step)."""
    fmt = _fmt(fmt)
    if not isinstance(scale_exp, torch.Tensor):
        scale_exp = torch.as_tensor(scale_exp)
    want = scale_shape(codes.shape, granularity, block)
    granularity = canonical_granularity(granularity)
    if tuple(scale_exp.shape) != want:
        raise QuantError(f"scale_exp has shape {tuple(scale_exp.shape)}; codes of shape {tuple(codes.shape)} "
                         f"with granularity {granularity!r} need {want}")
    if scale_exp.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64):
        raise QuantError(f"scale_exp must be an integer tensor, got {scale_exp.dtype}")
    bad = (scale_exp < SCALE_MIN) | (scale_exp > SCALE_MAX)
    if granularity == "mx":
        bad &= scale_exp != SCALE_NAN
    if bool(bad.any()):  # below -127 every value would flush to 0: never a scale quantize makes
        raise QuantError(f"{int(bad.sum())} scale exponent(s) outside the E8M0 range {SCALE_MIN}..{SCALE_MAX} "
                         f"(first {int(scale_exp[bad].reshape(-1)[0])}); quantize's scales lie in it")
    v = decode(codes, fmt)
    if v.numel() == 0:
        return v
    y, _ = _fold(v, granularity, block)
    k = scale_exp.to(device=v.device, dtype=torch.int32).reshape(-1, 1)
    # one rounding: the exact product in float64, then float32 (RNE) - same as a correct ldexp
    out = (y.to(torch.float64) * torch.ldexp(torch.ones_like(k, dtype=torch.float64), k)).to(torch.float32)
    if granularity == "mx":  # the E8M0 NaN scale makes its whole block NaN
        out = torch.where(k == SCALE_NAN, torch.full_like(out, float("nan")), out)
    ovf = torch.isinf(out) & torch.isfinite(y)
    if bool(ovf.any()):
        raise QuantError(f"{int(ovf.sum())} dequantized value(s) overflow float32 (scale_exp up to "
                         f"{int(k.max())})")
    return _unfold(out, codes.shape, granularity, block)


# ---------------------------------------------------------------------------
# fake quantization


def _nearest_fq_core(x2: torch.Tensor, kb: torch.Tensor, p2k: torch.Tensor, vlut: torch.Tensor, shift: int,
                     mask: int, nbm1: int) -> torch.Tensor:
    """fake_quant for ``nearest`` on sign-magnitude formats, fused-friendly (torch.compile).

    Scaling by 2**-k is folded into the bucket index: for a normal float32 the
    pattern of x * 2**-k is the pattern of x minus k << 23, so the bucket is
    (bits >> shift) - (k << (23 - shift)); results below the float32 normal range
    land in the all-zero buckets, as they must (they round to 0 in every format).
    The low mantissa bits (tie test) do not change.  Callers exclude float32
    subnormal inputs when some k < 0 (scaling up would renormalise them).
    """
    ab = x2.view(torch.int32) & 0x7FFFFFFF
    b = ((ab >> shift) - kb).clamp(0, nbm1)
    key = (b << 1) | ((ab & mask) == 0).to(torch.int32)
    v = vlut.index_select(0, key.reshape(-1)).view(key.shape)
    return torch.copysign(v, x2) * p2k


def _signed_fq_core(x2: torch.Tensor, kb: torch.Tensor, p2k: torch.Tensor, slut: torch.Tensor, shift: int,
                    mask: int, nbits: int) -> torch.Tensor:
    """As _nearest_fq_core with the sign folded into the bucket (no copysign, no clamp).

    Valid when every k <= 0 and the input is finite: then the scaled magnitude
    bucket never borrows into the sign bit nor passes the format's range.
    """
    bits = x2.view(torch.int32)
    sb = ((bits >> shift) & ((1 << nbits) - 1)) - kb
    key = (sb << 1) + ((bits & mask) == 0).to(torch.int32)
    return slut.index_select(0, key.reshape(-1)).view(key.shape) * p2k


def _tensor_fq(x2: torch.Tensor, k: int, slut: torch.Tensor, shift: int, mask: int, nb: int) -> torch.Tensor:
    """Per-tensor scale k <= 0: fold the scale into a 4*nb-entry table, then one lookup per value."""
    kb = k << (23 - shift)
    src = torch.clamp(torch.arange(nb, device=x2.device) - kb, max=nb - 1)
    lut = slut.view(2, nb, 2)[:, src, :].reshape(-1) * _pow2_f32(torch.tensor(k, device=x2.device))
    bits = x2.view(torch.int32)
    key = ((bits >> shift) & (2 * nb - 1)) << 1
    key = key + ((bits & mask) == 0).to(torch.int32)
    return lut.index_select(0, key.reshape(-1)).view(x2.shape)




def set_compile(on: "bool | str" = True) -> None:
    """Run fake_quant's fused kernel through ``torch.compile`` (one loop over the data).

    ``True``: always; ``False``: never; ``"auto"`` (default): for CUDA tensors.  On
    CPU the compiled kernel needs a C++ compiler and costs one compilation (about
    15-30 s) per process and kernel mode, after which it runs at about the speed of
    torch's own float8 cast; turn it on for training runs (``RF8SIM_COMPILE=1``).
    Bit-identical to the eager path (tested against the golden model).  After an
    explicit ``set_compile(True)`` a failed compilation raises QuantError; under
    ``"auto"`` it is reported (a warning and ``compile_status()``) and the eager
    kernel runs instead.  ``RF8SIM_COMPILE=1`` / ``0`` set it from the environment.
    """
    if on not in (True, False, "auto"):
        raise QuantError(f"set_compile takes True, False or 'auto', got {on!r}")
    _COMPILE["on"] = on
    if on is True:
        _STATUS["failed"] = None  # try again; a failure now raises


def compile_status() -> dict:
    """How many fake_quant calls ran the compiled kernel / eager, and why compilation failed (None if not)."""
    return _compile_status()


def _use_compile(x: torch.Tensor) -> bool:
    on = _COMPILE["on"]
    return on is True or (on == "auto" and x.is_cuda)


def _fq_values(x: torch.Tensor, fmt: F.Format, rounding: str, granularity: str, block: int,
               nonfinite: str) -> torch.Tensor:
    y, k, _ = _scale_exps(x, fmt, granularity, block, nonfinite)
    k = k[:, None]
    tb = _tables(fmt)
    d = tb.on(x.device)
    fast = fmt.kind in ("residual", "float") and rounding == "nearest"
    if fast and bool((k < 0).any()):
        ab = y.view(torch.int32) & 0x7FFFFFFF
        fast = not bool(((ab < 0x800000) & (ab != 0)).any())  # float32 subnormals would be renormalised
    if fast:
        shift, mask, nb = tb.shift, (1 << tb.shift) - 1, len(tb.lut_above)
        if nonfinite == "raise" and granularity != "mx" and bool((k <= 0).all()):
            # (not mx: its floor rule lets scaled values pass max, which only the clamped core saturates)
            if k.numel() == 1:
                v = _tensor_fq(y, int(k), d["slut"], shift, mask, nb)
            else:
                v = _signed_fq_core(y, k << (23 - shift), _pow2_f32(k), d["slut"], shift, mask, 32 - shift)
            return _unfold(v, x.shape, granularity, block)
        v = _nearest_fq_core(y, k << (23 - shift), _pow2_f32(k), d["vlut"], shift, mask, nb - 1)
        if nonfinite == "propagate":
            v = torch.where(torch.isfinite(y), v, y)
        return _unfold(v, x.shape, granularity, block)
    ys = _apply_scale(y, -k)
    ysf = torch.where(torch.isfinite(ys), ys, torch.zeros_like(ys)) if nonfinite == "propagate" else ys
    v = decode(_code_tensor(_encode32(ysf, fmt, rounding, True), fmt), fmt)
    # value * 2**k: one correctly rounded float32 product for k >= -149 (always, for int8 k)
    out = v * _pow2_f32(k)
    if nonfinite == "propagate":
        out = torch.where(torch.isfinite(y), out, y)
    return _unfold(out, x.shape, granularity, block)


# ---------------------------------------------------------------------------
# the fused op: quant's eager paths or the fastquant kernels


def _raise_overflow(x: torch.Tensor, out: torch.Tensor, fmt: str):
    if not bool(torch.isfinite(x).all()):
        _raise_nonfinite(x)
    bad = torch.isinf(out).reshape(-1)
    raise QuantError(f"{int(bad.sum())} fake-quantized value(s) overflow float32 (first at flat index "
                     f"{int(torch.nonzero(bad)[0, 0])}): {fmt} rounds them above 3.4028235e38, as "
                     "quantize + dequantize would (nonfinite='propagate' returns +-inf instead)")


@torch.library.custom_op("rf8sim::fake_quant", mutates_args=())
def fake_quant_op(x: torch.Tensor, fmt: str, rounding: str, granularity: str, block: int, nonfinite: str,
                  compiled: bool) -> torch.Tensor:
    """The op behind :func:`rf8sim.training.fake_quant` (arguments already validated there)."""
    if not compiled:  # eager: quant's specialised eager paths (fewer passes than this kernel uncompiled)
        _STATUS["eager_calls"] += 1
        out = _fq_values(x, F.get(fmt), rounding, granularity, block, nonfinite)
        ok = nonfinite != "raise" or bool(torch.isfinite(out).all())
    else:
        y, _ = _fold(x, granularity, block)
        out, ok = kernel_values(y, fmt, rounding, compiled, _SCALE_MIN, _SCALE_MAX, granularity == "mx")
        out = _unfold(out, x.shape, granularity, block)
    if nonfinite == "raise" and not bool(ok):
        _raise_overflow(x, out, fmt)
    return out


@fake_quant_op.register_fake
def _(x, fmt, rounding, granularity, block, nonfinite, compiled):
    return torch.empty_like(x, dtype=torch.float32)


def _backward(ctx, grad):
    return grad, None, None, None, None, None, None  # straight-through estimator


fake_quant_op.register_autograd(_backward)


#: granularities the fused op handles (others go through the autograd Function below)
_FUSED_GRANULARITIES = ("tensor", "channel", "ceil", "mx")


class _FakeQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, fmt, rounding, granularity, block, nonfinite):
        return _fq_values(x, fmt, rounding, granularity, block, nonfinite)

    @staticmethod
    def backward(ctx, g):
        return g, None, None, None, None, None


def fake_quant(x: torch.Tensor, fmt="rf8", rounding: str = "nearest", granularity: str = "tensor",
               block: int = 32, nonfinite: str = "raise") -> torch.Tensor:
    """``dequantize(*quantize(x))`` in one pass, with a straight-through gradient.

    The forward value is bit-identical to quantize + dequantize; the backward
    passes the incoming gradient unchanged (identity STE).  Output dtype is
    float32 whatever the input float dtype (float16/bfloat16 are converted exactly).

    NaN/Inf policy: ``nonfinite="raise"`` (default) raises QuantError; with
    ``"propagate"`` the scale is computed over the finite values only, every
    finite value is quantized normally and NaN/±Inf entries are passed through
    unchanged (useful to let a loss-scaler see an overflow).

    16-bit floats (bf16, fp16): ``decode(encode(x))`` by torch's RNE cast (overflow to +-Inf,
    NaN kept), unscaled whatever the granularity, with the same straight-through gradient.
    """
    if floatcodes.takes(fmt):
        _check_rounding(F.get(fmt), rounding)
        return floatcodes.fake_quant(x, fmt)
    fmt, x32, granularity = _check_x(x, fmt, rounding, granularity, block, nonfinite)
    # x32 = x.float() for float16/bfloat16 inputs: autograd routes the gradient back through the cast
    if (granularity in _FUSED_GRANULARITIES and F.get(fmt.name) is fmt and fmt.code_bits == 8
            and fmt.kind in ("residual", "float", "int")):
        # one custom op (torch.compile sees it, no graph break); fused compiled kernel when enabled
        return fake_quant_op(x32, fmt.name, rounding, granularity, block, nonfinite, _use_compile(x32))
    return _FakeQuant.apply(x32, fmt, rounding, granularity, block, nonfinite)
