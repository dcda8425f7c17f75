"""Fused fake-quantization kernels behind one ``torch.library`` custom op for every format and rounding.

``torch.ops.rf8sim.fake_quant(x, fmt, rounding, granularity, block, nonfinite, compiled)``
(registered in :mod:`.quant`, above these kernels and the tables of :mod:`.tables`)
is what :func:`rf8sim.training.fake_quant` calls.  It is a real custom op
(``torch.library.custom_op`` with a fake/meta kernel and a straight-through
autograd formula), so ``torch.compile`` traces a model that fake-quantizes its
weights without a graph break, and the op itself runs one fused kernel:

* the scale exponent of each group is read from the float32 bits of ``amax``
  (an integer max of the magnitude patterns, fixed by two exact float64
  comparisons) - no host synchronisation, no data-dependent Python branch;
* each element is rounded from its own float32 bit pattern, never by searching
  the value table: ``nearest`` indexes a per-binade bucket table with the
  exponent field and the leading mantissa bits (every midpoint between two
  neighbouring magnitudes starts a bucket, a tie is a bucket start with zero low
  bits); ``paper``/``truncate`` compare the 24-bit significand with
  ``ceil(sqrt(2) * 2**23)`` to get ``round(log2 |x|)`` and read the residual's
  exponent the same way; int8 is a rounded, clamped integer;
* with ``compiled=True`` the kernel is compiled by ``torch.compile`` (Inductor:
  C++ on CPU, Triton on CUDA) into one loop over the data.  Compilation happens
  once per process and (format kind, rounding).  When compilation fails after an
  explicit ``set_compile(True)`` that is a QuantError; under ``"auto"`` the failure
  is recorded in :func:`compile_status`, a warning is issued and the eager kernel
  (same integer arithmetic, same bits) runs instead - never silently.

Bit-exactness with the golden model is tested on every float32 bucket edge and
on all 2**32 float32 (``rf8sim training-sweep --fake-quant``).
"""

from __future__ import annotations

import math
import os
import warnings

import torch

from .. import formats as F
from .tables import _SQRT2_SIG, QuantError, _tables

__all__ = ["compile_status", "kernel_values", "MODES"]

#: kernel modes: bucket table (nearest on sign-magnitude formats), RF8 paper, RF8 truncate, int8
MODES = ("nearest", "paper", "truncate", "int")

#: fake_quant's compile switch (rf8sim.training.set_compile; RF8SIM_COMPILE=1 / 0 from the environment)
_COMPILE = {"on": {"1": True, "0": False}.get(os.environ.get("RF8SIM_COMPILE", ""), "auto")}
_STATUS = {"compiled_calls": 0, "eager_calls": 0, "failed": None, "compiled_modes": []}


def compile_status() -> dict:
    """How many op calls ran compiled / eager, and why compilation failed (None if it did not)."""
    return {k: (list(v) if isinstance(v, list) else v) for k, v in _STATUS.items()}


def _mode(fmt: F.Format, rounding: str) -> str:
    if fmt.kind == "int":
        return "int"
    if rounding == "nearest":
        return "nearest"
    return rounding


def _pow2_f64(k: torch.Tensor) -> torch.Tensor:
    """2.0**k as float64 from its bit pattern (exact; |k| < 1000)."""
    return torch.bitwise_left_shift(k.to(torch.int64) + 1023, 52).view(torch.float64)


def _pow2_f32(k: torch.Tensor) -> torch.Tensor:
    """2.0**k as float32 for integer k in [-149, 127] (subnormal powers included), exact."""
    k = k.to(torch.int32)
    normal = ((k.clamp(-126, 127) + 127) << 23).view(torch.float32)
    sub = (torch.ones_like(k) << (k + 149).clamp(0, 22)).view(torch.float32)
    return torch.where(k >= -126, normal, sub)


def _scale_k(ab: torch.Tensor, finite: torch.Tensor, fmax: float, log2max: int, smin: int, smax: int,
             mx: bool = False):
    """Per row: smallest k with amax / 2**k <= fmax (amax over finite entries; 0 -> 0), clamped;
    ``mx``: the OCP MX floor rule k = floor(log2 amax) - floor(log2 max) (zero/subnormal amax -> smin)."""
    amax_bits = torch.where(finite, ab, torch.zeros_like(ab)).amax(dim=1, keepdim=True)
    e = amax_bits >> 23
    a64 = amax_bits.view(torch.float32).to(torch.float64)
    k0 = (e - 127 - log2max).to(torch.int64)
    if mx:
        return torch.where(e == 0, torch.full_like(k0, smin), k0).clamp(smin, smax).to(torch.int32)
    # amax / fmax lies in (2**(k0-1), 2**(k0+1)): the answer is k0 or k0 + 1
    k = torch.where(a64 <= fmax * _pow2_f64(k0), k0, k0 + 1)
    k = torch.where(a64 <= fmax * _pow2_f64(k0 - 1), k0 - 1, k)
    # amax below the float32 normal range needs k below any storable exponent: the clamp floor
    k = torch.where(e == 0, torch.where(amax_bits == 0, torch.zeros_like(k), torch.full_like(k, smin)), k)
    return k.clamp(smin, smax).to(torch.int32)


def _scaled(y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """y * 2**-k in two exact steps (|k| <= 128), as quant._apply_scale does."""
    nk = -k
    k1 = torch.div(nk, 2, rounding_mode="floor")
    return y * _pow2_f32(k1) * _pow2_f32(nk - k1)


def _k_nearest(y, vlut, fmax: float, log2max: int, smin: int, smax: int, shift: int, nbm1: int, mx: bool):
    """nearest on sign-magnitude formats: the scale is folded into the bucket index."""
    ab = y.view(torch.int32) & 0x7FFFFFFF
    finite = ab < 0x7F800000
    k = _scale_k(ab, finite, fmax, log2max, smin, smax, mx)
    sub = ab < 0x800000  # float32 subnormals: renormalise by an exact * 2**64 first
    abn = torch.where(sub, (y.abs() * 18446744073709551616.0).view(torch.int32), ab)
    kk = k + torch.where(sub, 64, 0).to(torch.int32)
    b = ((abn >> shift) - (kk << (23 - shift))).clamp(0, nbm1)
    key = (b << 1) | ((abn & ((1 << shift) - 1)) == 0).to(torch.int32)
    v = vlut[key.long()]
    out = torch.copysign(v, y) * _pow2_f32(k)
    out = torch.where(finite, out, y)
    return out, torch.isfinite(out).all()


def _residual_values(a: torch.Tensor, values, rmap, paper: bool, sqrt2_sig: int, bias: int, man_bits: int,
                     e_min: int, e_max: int, dmax: int, max_code: int) -> torch.Tensor:
    """|value| of the RF8-family code of finite ``a = |x|`` for paper (round) / truncate (floor) log2."""
    ab = a.view(torch.int32)
    e1 = (ab >> 23) - 127
    if paper:
        e1 = e1 + (((ab & 0x7FFFFF) | 0x800000) >= sqrt2_sig).to(torch.int32)
    p1 = ((e1.clamp(-126, 127) + 127) << 23).view(torch.float32)
    r = a - p1  # exact: |x| and 2**e1 are within a factor of 2
    t = torch.sign(r).to(torch.int32)
    rb = r.abs().view(torch.int32)
    e2 = (rb >> 23) - 127
    if paper:
        e2 = e2 + (((rb & 0x7FFFFF) | 0x800000) >= sqrt2_sig).to(torch.int32)
    dd = e1 - e2
    keep = (t != 0) & (dd <= dmax)
    R = rmap[((t + 1) * 8 + dd.clamp(0, 7)).long()]
    R = torch.where(keep, R, torch.zeros_like(R))
    code = ((e1 + bias) << man_bits) | R
    code = torch.where((e1 > e_max) | (ab >= 0x7F800000), torch.full_like(code, max_code), code)
    code = torch.where(e1 < e_min, torch.zeros_like(code), code)
    return values[code.long()]


def _k_residual(y, values, rmap, fmax: float, log2max: int, smin: int, smax: int, paper: bool, sqrt2_sig: int,
                bias: int, man_bits: int, e_min: int, e_max: int, dmax: int, max_code: int, mx: bool):
    ab = y.view(torch.int32) & 0x7FFFFFFF
    finite = ab < 0x7F800000
    k = _scale_k(ab, finite, fmax, log2max, smin, smax, mx)
    ys = _scaled(torch.where(finite, y, torch.zeros_like(y)), k)
    v = _residual_values(ys.abs(), values, rmap, paper, sqrt2_sig, bias, man_bits, e_min, e_max, dmax, max_code)
    out = torch.copysign(v, ys) * _pow2_f32(k)
    out = torch.where(finite, out, y)
    return out, torch.isfinite(out).all()


def _k_int(y, fmax: float, log2max: int, smin: int, smax: int, lo: int, hi: int, mx: bool):
    ab = y.view(torch.int32) & 0x7FFFFFFF
    finite = ab < 0x7F800000
    k = _scale_k(ab, finite, fmax, log2max, smin, smax, mx)
    ys = _scaled(torch.where(finite, y, torch.zeros_like(y)), k)
    q = torch.round(ys).clamp(lo, hi) + 0.0  # round half to even; + 0.0 turns -0 into the code 0's +0
    out = q * _pow2_f32(k)
    out = torch.where(finite, out, y)
    return out, torch.isfinite(out).all()


_KERNELS = {"nearest": _k_nearest, "paper": _k_residual, "truncate": _k_residual, "int": _k_int}
_COMPILED: dict = {}


def _args(fmt: F.Format, mode: str, device, smin: int, smax: int, mx: bool):
    tb = _tables(fmt)
    d = tb.on(device)
    common = (float(fmt.max), math.floor(math.log2(fmt.max)), smin, smax)
    if mode == "nearest":
        return (d["vlut"], *common, tb.shift, len(tb.lut_above) - 1, mx)
    if mode == "int":
        lo = int(min(fmt.values[fmt.finite]))
        return (*common, lo, int(fmt.max), mx)
    values_abs = d["values"].abs()
    return (values_abs, d["rmap"], *common, mode == "paper", _SQRT2_SIG, fmt.bias, fmt.man_bits, tb.e_min,
            tb.e_max, tb.dmax, tb.max_code, mx)


def _kernel(mode: str, compiled: bool):
    if not compiled:
        return _KERNELS[mode]
    fn = _COMPILED.get(mode)
    if fn is None:
        fn = _COMPILED[mode] = torch.compile(_KERNELS[mode], dynamic=True)
    return fn


def _run(mode: str, compiled: bool, y: torch.Tensor, args: tuple):
    if compiled and _STATUS["failed"] is None:
        try:
            res = _kernel(mode, True)(y, *args)
            _STATUS["compiled_calls"] += 1
            if mode not in _STATUS["compiled_modes"]:
                _STATUS["compiled_modes"].append(mode)
            return res
        except Exception as e:  # noqa: BLE001 - no C++ compiler / Triton
            _STATUS["failed"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
            if _COMPILE["on"] is True:  # asked for explicitly: a failure is an error, never a silent eager run
                raise QuantError(f"torch.compile of the fake-quant kernel failed ({_STATUS['failed']}); "
                                 "set_compile('auto') or RF8SIM_COMPILE=0 runs the eager kernel") from e
            warnings.warn(f"rf8sim: torch.compile of the fake-quant kernel failed ({_STATUS['failed']}); "
                          "running the eager kernel (same bits, slower). rf8sim.training.set_compile(False) "
                          "silences this.", RuntimeWarning, stacklevel=3)
    _STATUS["eager_calls"] += 1
    return _kernel(mode, False)(y, *args)


def kernel_values(y2: torch.Tensor, fmt, rounding: str, compiled: bool, smin: int, smax: int, mx: bool = False):
    """Run the kernel on a (groups, group_size) float32 tensor: (values, all-outputs-finite flag tensor)."""
    fmt = F.get(fmt)
    mode = _mode(fmt, rounding)
    return _run(mode, compiled, y2, _args(fmt, mode, y2.device, smin, smax, mx))


