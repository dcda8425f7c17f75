"""Exact products and the fixed-point accumulator: the datapath the RTL implements.

Semantics are those of :mod:`rf8sim.golden.accspec` (normative text in
docs/formats.md, "Accumulation").  Two kernels implement them:

* a one-limb int64 kernel, used when every intermediate value provably fits in
  63 bits (``lanes * max|aligned product| + 2**(width-1) < 2**63``);
* a two-limb kernel (signed 128-bit as ``hi: int64``, ``lo: uint64``) for wider
  accumulators or products, used when everything fits in 127 bits.

A spec whose aligned products (times the lanes summed per beat) do not fit in
127 bits is rejected with :class:`AccSpecError`; nothing ever wraps.

Accumulator values are returned as int64 arrays when ``acc.width <= 63`` and as
object arrays of Python ints otherwise.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numba as nb
import numpy as np

from .. import formats as F
from ..errors import RF8SimError
from .accspec import AccSpec, AccSpecError
from .codec import PARALLEL_MIN, DTypeError, as_codes
from .operands import _scale_rows, _segments, clear_flags

__all__ = ["product_tables", "mac", "dot", "gemm", "to_float32", "MacTrace", "GemmResult", "DotResult",
           "pair_tables", "check_spec"]

_U64 = (1 << 64) - 1


class MacTrace(NamedTuple):
    """Per beat: the accumulator and the sticky flags after that beat."""

    acc: np.ndarray
    overflow: np.ndarray
    invalid: np.ndarray


class GemmResult(NamedTuple):
    acc: np.ndarray
    overflow: np.ndarray
    invalid: np.ndarray


class DotResult(NamedTuple):
    acc: int
    overflow: bool
    invalid: bool


# ---------------------------------------------------------------------------
# products


def product_tables(a_fmt, w_fmt):
    """Exact product of every code pair: ``(sign, sig, exp, special)``, each 256x256.

    Axis 0 is the ``a`` code, axis 1 the ``w`` code.  For finite operands the product
    is ``(-1)**sign * sig * 2**exp`` (``sign`` uint8, ``sig`` int64 >= 0, ``exp``
    int64; a zero product keeps the xor of the signs and the sum of the exponents).
    ``special`` (uint8) is 1 where either operand is NaN or Inf; there ``sign``,
    ``sig`` and ``exp`` are 0.
    """
    a, w = F.check_role(a_fmt, "activation"), F.check_role(w_fmt, "weight")
    special = ((a.special != F.SPECIAL_FINITE)[:, None] | (w.special != F.SPECIAL_FINITE)[None, :])
    sign = (a.sign[:, None] ^ w.sign[None, :]).astype(np.uint8)
    sig = a.sig[:, None].astype(np.int64) * w.sig[None, :].astype(np.int64)
    exp = a.exp[:, None].astype(np.int64) + w.exp[None, :].astype(np.int64)
    sign[special] = 0
    sig[special] = 0
    exp[special] = 0
    return sign, sig, exp, special.astype(np.uint8)


@lru_cache(maxsize=None)
def pair_tables(a_fmt: F.Format, w_fmt: F.Format):
    """Flat kernel tables indexed ``a * 256 + w``: signed significand, exponent, special."""
    sign, sig, exp, special = product_tables(a_fmt, w_fmt)
    sv = np.where(sign == 1, -sig, sig)
    if sv.shape != (256, 256):  # narrower formats (E2M1, APoT4): the kernels index a * 256 + w
        na, nw = sv.shape
        pad = lambda t: np.pad(t, ((0, 256 - na), (0, 256 - nw)))  # noqa: E731  (codes there are refused)
        sv, exp, special = pad(sv), pad(exp), pad(special)
    out = (np.ascontiguousarray(sv.reshape(-1)), np.ascontiguousarray(exp.reshape(-1)),
           np.ascontiguousarray(special.reshape(-1)))
    for t in out:
        t.setflags(write=False)
    return out


#: Packed kernel table: one int32 per pair, ``sig << 8 | (exp + _EXP_BIAS)``, low byte 255 =
#: NaN/Inf operand.  A quarter of the memory of three tables keeps it in cache.
_EXP_BIAS = 64


@lru_cache(maxsize=None)
def packed_pairs(a_fmt: F.Format, w_fmt: F.Format) -> np.ndarray:
    """``pair_tables`` packed into one int32 per pair (signed significand, biased exponent)."""
    sv, pe, sp = pair_tables(a_fmt, w_fmt)
    fin = sp == 0
    if np.abs(sv).max() >= 1 << 23 or (fin & ((pe + _EXP_BIAS < 0) | (pe + _EXP_BIAS > 254))).any():
        raise AccSpecError(f"{a_fmt.name} x {w_fmt.name}: products outside the packed kernel table's range")
    pk = np.where(fin, (sv << 8) | (pe + _EXP_BIAS), 255).astype(np.int32)
    pk.setflags(write=False)
    return pk


@lru_cache(maxsize=None)
def _product_extremes(a_fmt: F.Format, w_fmt: F.Format):
    """(largest |product| as (sig, exp), smallest exponent of a nonzero product)."""
    _, sig, exp, special = product_tables(a_fmt, w_fmt)
    nz = (special == 0) & (sig > 0)
    if not nz.any():
        return (0, 0), 0
    val = np.where(nz, np.ldexp(sig.astype(np.float64), exp), 0.0)  # exact: few bits, small exponents
    i = np.unravel_index(int(np.argmax(val)), val.shape)
    return (int(sig[i]), int(exp[i])), int(exp[nz].min())


@lru_cache(maxsize=256)
def _parse_spec(text: str, a_fmt: F.Format, w_fmt: F.Format) -> AccSpec:
    return AccSpec.parse(text, a_fmt, w_fmt)


def _as_spec(acc, a_fmt, w_fmt) -> AccSpec:
    if isinstance(acc, AccSpec):
        return acc
    if isinstance(acc, str):
        t = acc.strip().lower()
        if t == "fp32" or t.startswith("aligned"):  # format-independent: no exact-width search
            return AccSpec.parse(t)
        return _parse_spec(acc, a_fmt, w_fmt)
    raise DTypeError(f"acc must be an AccSpec (or 'fp32', 'aligned:K:M', 'exact', 'exact:TERMS', 'FRAC:WIDTH'), "
                     f"got {acc!r}")


def _fixed_formats(acc: AccSpec, a_fmt: F.Format, w_fmt: F.Format) -> None:
    """Fixed-point accumulators take 8-bit formats only (16-bit codes: fp32 or aligned:K:M)."""
    for what, f in (("activation", a_fmt), ("weight", w_fmt)):
        if getattr(f, "code_bits", 8) > 8:
            raise AccSpecError(f"the fixed-point accumulator {acc} takes 8-bit formats; {what} format {f.name} "
                               f"has {f.code_bits}-bit codes: use acc='fp32' or 'aligned:K:M'")


def check_spec(acc: AccSpec, a_fmt, w_fmt, lanes: int = 1, max_scale: int = 0) -> int:
    """Validate ``acc`` for these formats; return the limb count the kernels use (1 or 2).

    ``max_scale`` is the largest sum of scale exponents added to a product exponent.
    """
    a, w = F.get(a_fmt), F.get(w_fmt)
    (s, e), _ = _product_extremes(a, w)
    sh = e + acc.frac_bits + int(max_scale)
    bound = (s << sh if sh >= 0 else s >> -sh) + 1  # +1: flooring a negative product
    need = lanes * bound + (1 << (acc.width - 1))
    if need >= 1 << 127:
        raise AccSpecError(
            f"accumulator {acc} cannot be handled exactly for {a.name} x {w.name}"
            f"{f' with scale exponents up to {max_scale}' if max_scale else ''}: one beat of {lanes} aligned "
            f"product(s) needs {(lanes * bound).bit_length() + 1} bits and the golden datapath holds 127; "
            f"use fewer frac_bits (or smaller scales)")
    return 1 if need < 1 << 63 else 2


def _limits(acc: AccSpec):
    lo, hi = acc.min, acc.max
    return (lo >> 64, lo & _U64, hi >> 64, hi & _U64)


# ---------------------------------------------------------------------------
# 128-bit helpers (hi: int64, lo: uint64, two's complement)


@nb.njit(cache=True, inline="always")
def _align1(v, sh):
    """floor(v * 2^sh) for an int64 known (by check_spec) to fit."""
    if sh >= 0:
        return v << sh
    k = -sh
    if k > 63:
        k = 63
    return v >> k


@nb.njit(cache=True, inline="always")
def _align2(v, sh):
    """floor(v * 2^sh) as a 128-bit (hi, lo)."""
    if sh <= 0:
        k = -sh
        if k > 63:
            k = 63
        r = v >> k
        return r >> 63, np.uint64(r)
    if sh < 64:
        lo = np.uint64(v) << np.uint64(sh)
        hi = v >> (64 - sh)
        return hi, lo
    return v << (sh - 64), np.uint64(0)


@nb.njit(cache=True, inline="always")
def _add2(h1, l1, h2, l2):
    lo = l1 + l2
    c = np.int64(1) if lo < l1 else np.int64(0)
    return h1 + h2 + c, lo


@nb.njit(cache=True, inline="always")
def _lt2(h1, l1, h2, l2):
    return h1 < h2 or (h1 == h2 and l1 < l2)


# ---------------------------------------------------------------------------
# MAC kernels


@nb.njit(cache=True)
def _mac1(a, w, clear, pk, frac, amin, amax, acc_out, ovf_out, inv_out):
    n, lanes = a.shape
    acc = np.int64(0)
    ovf = False
    inv = False
    for i in range(n):
        if clear[i]:
            acc = 0
            ovf = False
            inv = False
        s = np.int64(0)
        for j in range(lanes):
            idx = np.int64(a[i, j]) * 256 + np.int64(w[i, j])
            q = np.int64(pk[idx])
            if (q & 255) == 255:
                inv = True
                continue
            s += _align1(q >> 8, (q & 255) - _EXP_BIAS + frac)
        t = acc + s
        if t > amax:
            t = amax
            ovf = True
        elif t < amin:
            t = amin
            ovf = True
        acc = t
        acc_out[i] = acc
        ovf_out[i] = ovf
        inv_out[i] = inv


@nb.njit(cache=True)
def _mac2(a, w, clear, pk, frac, minh, minl, maxh, maxl, hi_out, lo_out, ovf_out, inv_out):
    n, lanes = a.shape
    ah = np.int64(0)
    al = np.uint64(0)
    ovf = False
    inv = False
    for i in range(n):
        if clear[i]:
            ah = np.int64(0)
            al = np.uint64(0)
            ovf = False
            inv = False
        sh = np.int64(0)
        sl = np.uint64(0)
        for j in range(lanes):
            idx = np.int64(a[i, j]) * 256 + np.int64(w[i, j])
            q = np.int64(pk[idx])
            if (q & 255) == 255:
                inv = True
                continue
            ph, pl = _align2(q >> 8, (q & 255) - _EXP_BIAS + frac)
            sh, sl = _add2(sh, sl, ph, pl)
        th, tl = _add2(ah, al, sh, sl)
        if _lt2(maxh, maxl, th, tl):
            th, tl = maxh, maxl
            ovf = True
        elif _lt2(th, tl, minh, minl):
            th, tl = minh, minl
            ovf = True
        ah, al = th, tl
        hi_out[i] = ah
        lo_out[i] = al
        ovf_out[i] = ovf
        inv_out[i] = inv


def _join(hi: np.ndarray, lo: np.ndarray, width: int) -> np.ndarray:
    """Two limbs -> int64 (width <= 63) or an object array of Python ints."""
    if width <= 63:
        return lo.view(np.int64).copy()
    return (hi.astype(object) << 64) + lo.astype(object)


def _prep_codes(a_codes, w_codes):
    a = as_codes(a_codes, "a_codes")
    w = as_codes(w_codes, "w_codes")
    if a.shape != w.shape:
        raise ValueError(f"a_codes and w_codes must have the same shape, got {a.shape} and {w.shape}")
    if a.ndim not in (1, 2):
        raise ValueError(f"codes must be 1-D (beats) or 2-D (beats, lanes), got shape {a.shape}")
    if a.ndim == 1:
        a, w = a[:, None], w[:, None]
    if a.shape[1] < 1:
        raise ValueError("at least one lane is needed")
    return np.ascontiguousarray(a), np.ascontiguousarray(w)


def mac(a_codes, w_codes, clear, a_fmt="bf16", w_fmt="rf8", acc="fp32") -> MacTrace:
    """Run a MAC unit for ``n`` beats; the accumulator and flags after each beat.

    ``a_codes``/``w_codes``: codes of shape ``(n,)`` or ``(n, lanes)`` in each format's code
    dtype (uint8 for 8-bit formats, uint16 for bf16/fp16); ``clear``: bool ``(n,)`` (None:
    never) - a beat with clear starts from zero (accumulator and both sticky flags) before
    its products are added.

    ``acc`` (an :class:`AccSpec` or its CLI string):

    * fixed point (``FRAC:WIDTH``, ``exact[:TERMS]``; 8-bit formats): each product is aligned
      to ``acc.frac_bits`` by flooring, the lanes of a beat are summed exactly, then one
      saturating add.  ``acc`` is int64 for ``acc.width <= 63``, else Python ints.
    * ``fp32`` / ``aligned:K:M`` (W8A16 contract, docs/formats.md): the trace's ``acc`` is the
      float32 bit pattern (uint32) after each beat (``.as_float32()`` views it as float32);
      see :func:`rf8sim.golden.fpacc.mac`.
    """
    a_fmt, w_fmt = F.check_role(a_fmt, "activation"), F.check_role(w_fmt, "weight")
    acc = _as_spec(acc, a_fmt, w_fmt)
    if acc.kind != "fixed":
        from . import fpacc

        return fpacc.mac(a_codes, w_codes, clear, a_fmt, w_fmt, acc)
    _fixed_formats(acc, a_fmt, w_fmt)
    if acc.group != 1:
        raise AccSpecError(f"accumulator {acc}: group orders gemm's k loop; in mac the lanes of a beat are the "
                           f"group (give {acc.ungrouped()} and beats of {acc.group} lanes)")
    a, w = _prep_codes(a_codes, w_codes)
    n, lanes = a.shape
    clear = clear_flags(clear, n)
    limbs = check_spec(acc, a_fmt, w_fmt, lanes)
    pk = packed_pairs(a_fmt, w_fmt)
    ovf = np.empty(n, np.bool_)
    inv = np.empty(n, np.bool_)
    if limbs == 1:
        out = np.empty(n, np.int64)
        if n:
            _mac1(a, w, clear, pk, acc.frac_bits, acc.min, acc.max, out, ovf, inv)
        res = out if acc.width <= 63 else out.astype(object)
        return MacTrace(res, ovf, inv)
    minh, minl, maxh, maxl = _limits(acc)
    hi = np.empty(n, np.int64)
    lo = np.empty(n, np.uint64)
    if n:
        _mac2(a, w, clear, pk, acc.frac_bits, np.int64(minh), np.uint64(minl), np.int64(maxh),
              np.uint64(maxl), hi, lo, ovf, inv)
    return MacTrace(_join(hi, lo, acc.width), ovf, inv)


# ---------------------------------------------------------------------------
# GEMM


@nb.njit(cache=True, inline="always")
def _gemm1_row(m, a, w, sa, sw, seg, seg_a, seg_w, pk, frac, amin, amax, acc_out, ovf_out, inv_out):
    """Row m of the one-limb sequential GEMM (shared by the parallel and serial kernels)."""
    nseg = seg.size - 1
    for n in range(w.shape[0]):
        acc = np.int64(0)
        ovf = False
        inv = False
        for g in range(nseg):  # runs of k where both scale exponents are constant
            off = frac + sa[m, seg_a[g]] + sw[n, seg_w[g]]
            for k in range(seg[g], seg[g + 1]):
                idx = np.int64(a[m, k]) * 256 + np.int64(w[n, k])
                q = np.int64(pk[idx])
                if (q & 255) == 255:
                    inv = True
                    continue
                p = _align1(q >> 8, (q & 255) - _EXP_BIAS + off)
                t = acc + p
                if t > amax:
                    t = amax
                    ovf = True
                elif t < amin:
                    t = amin
                    ovf = True
                acc = t
        acc_out[m, n] = acc
        ovf_out[m, n] = ovf
        inv_out[m, n] = inv


@nb.njit(cache=True, parallel=True)
def _gemm1(a, w, sa, sw, seg, seg_a, seg_w, pk, frac, amin, amax, acc_out, ovf_out, inv_out):
    for m in nb.prange(a.shape[0]):
        _gemm1_row(m, a, w, sa, sw, seg, seg_a, seg_w, pk, frac, amin, amax, acc_out, ovf_out, inv_out)


@nb.njit(cache=True)
def _gemm1_serial(a, w, sa, sw, seg, seg_a, seg_w, pk, frac, amin, amax, acc_out, ovf_out, inv_out):
    """Serial twin of _gemm1: small inputs skip the parallel launch (milliseconds on a busy machine)."""
    for m in range(a.shape[0]):
        _gemm1_row(m, a, w, sa, sw, seg, seg_a, seg_w, pk, frac, amin, amax, acc_out, ovf_out, inv_out)


@nb.njit(cache=True, inline="always")
def _gemm2_row(m, a, w, sa, sw, seg, seg_a, seg_w, pk, frac, minh, minl, maxh, maxl, hi_out, lo_out, ovf_out,
               inv_out):
    """Row m of the two-limb (up to 127-bit) sequential GEMM."""
    nseg = seg.size - 1
    for n in range(w.shape[0]):
        ah = np.int64(0)
        al = np.uint64(0)
        ovf = False
        inv = False
        for g in range(nseg):
            off = frac + sa[m, seg_a[g]] + sw[n, seg_w[g]]
            for k in range(seg[g], seg[g + 1]):
                idx = np.int64(a[m, k]) * 256 + np.int64(w[n, k])
                q = np.int64(pk[idx])
                if (q & 255) == 255:
                    inv = True
                    continue
                ph, pl = _align2(q >> 8, (q & 255) - _EXP_BIAS + off)
                th, tl = _add2(ah, al, ph, pl)
                if _lt2(maxh, maxl, th, tl):
                    th, tl = maxh, maxl
                    ovf = True
                elif _lt2(th, tl, minh, minl):
                    th, tl = minh, minl
                    ovf = True
                ah, al = th, tl
        hi_out[m, n] = ah
        lo_out[m, n] = al
        ovf_out[m, n] = ovf
        inv_out[m, n] = inv


@nb.njit(cache=True, parallel=True)
def _gemm2(a, w, sa, sw, seg, seg_a, seg_w, pk, frac, minh, minl, maxh, maxl, hi_out, lo_out, ovf_out,
           inv_out):
    for m in nb.prange(a.shape[0]):
        _gemm2_row(m, a, w, sa, sw, seg, seg_a, seg_w, pk, frac, minh, minl, maxh, maxl, hi_out, lo_out,
                   ovf_out, inv_out)


@nb.njit(cache=True)
def _gemm2_serial(a, w, sa, sw, seg, seg_a, seg_w, pk, frac, minh, minl, maxh, maxl, hi_out, lo_out,
                  ovf_out, inv_out):
    """Serial twin of _gemm2: small inputs skip the parallel launch (milliseconds on a busy machine)."""
    for m in range(a.shape[0]):
        _gemm2_row(m, a, w, sa, sw, seg, seg_a, seg_w, pk, frac, minh, minl, maxh, maxl, hi_out, lo_out,
                   ovf_out, inv_out)


# ---------------------------------------------------------------------------
# fast GEMM (narrow one-limb accumulators): the split GEMM and the clamped rows below

#: ``method="auto"`` takes the fast kernels from K = 2 * FAST_CHUNK on.
FAST_CHUNK = 64


# ---------------------------------------------------------------------------
# split GEMM: one exact float64 matrix product minus the flooring error of the few inexact products
#
# Write each nonzero operand entry as ``odd * 2**lam`` in accumulator units (``lam_a = lsb(a) +
# sa[m, k // ba]``, ``lam_w = lsb(w) + sw[n, k // bw] + frac``; ``lsb`` the exponent of the
# value's lowest set bit; tensor/channel scales: one group).  Every product is a multiple of ``2**-L``, ``L = -(min
# lam_a + min lam_w)``, and its flooring error ``E = p - floor(p)`` is nonzero only where ``lam_a
# + lam_w < 0``.  Where bounds prove that no partial sum of an output can reach the accumulator's
# limits (so the clamp never acts and k order does not matter) and that ``sum |p| * 2**L <
# 2**52`` (so a float64 BLAS sum of the products is exact in any order), the output is ``(P *
# 2**L - sum E * 2**L) / 2**L`` with ``P`` one BLAS product and ``E`` gathered over the inexact
# pairs only from a small table indexed by the two odd parts and ``lam_a + lam_w`` (``E * 2**L =
# (odd_a * odd_w mod 2**s) << (L - s)``, ``s = -(lam_a + lam_w)``; the scales, block scales
# included, enter only through lam): per k, the rows of w are counting-sorted by ``lam_w``, so
# the pairs of an entry ``a[m, k]`` are a prefix of that order.  The division must leave no
# fraction (a guard).  Rows with an output the bounds cannot prove take the clamped rows below.

_NO_LSB = 1 << 20  # lsb of a zero or NaN/Inf code: never part of an inexact product


@lru_cache(maxsize=None)
def _lsb_exp(fmt: F.Format) -> np.ndarray:
    """Per code: the exponent of the lowest set bit of its finite nonzero value; else _NO_LSB."""
    sig = fmt.sig.astype(np.int64)
    e = fmt.exp.astype(np.int64).copy()
    s = sig.copy()
    while True:
        even = (s > 0) & (s % 2 == 0)
        if not even.any():
            break
        s = np.where(even, s // 2, s)
        e = e + even
    out = np.where((fmt.special == F.SPECIAL_FINITE) & (sig > 0), e, _NO_LSB).astype(np.int64)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=None)
def _odd_parts(fmt: F.Format):
    """``(index per code, distinct odd values)``: every finite nonzero value is ``odd * 2**lsb``
    (``lsb`` from :func:`_lsb_exp`, ``odd`` signed); ``values[index[code]]`` is its odd part, and
    zero and NaN/Inf codes get index 0, whose value is 0."""
    ls = _lsb_exp(fmt)
    sig = fmt.sig.astype(np.int64)
    sh = np.where(ls == _NO_LSB, 0, ls - fmt.exp.astype(np.int64))
    odd = np.where(ls == _NO_LSB, 0, (sig >> sh) * np.where(fmt.sign.astype(np.int64) != 0, -1, 1))
    u = np.concatenate([[0], np.unique(odd[odd != 0])]).astype(np.int64)
    idx = np.where(odd == 0, 0, np.searchsorted(u[1:], odd) + 1).astype(np.int64)
    assert np.array_equal(u[idx], odd)
    idx.setflags(write=False)
    u.setflags(write=False)
    return idx, u


@lru_cache(maxsize=16)
def _odd_err_table(a_fmt: F.Format, w_fmt: F.Format, L: int, T: int) -> np.ndarray:
    """The flooring errors in units of ``2**-L`` by odd parts: flat ``[i, j, t]`` (distinct odd
    significands ``i`` of a, ``j`` of w, ``t = lam_a + lam_w + L`` in ``[0, T)``) holds ``(p -
    floor(p)) * 2**L`` for ``p = oa * ow * 2**(t - L)``: ``(oa * ow mod 2**s) << t``, ``s = L - t``
    (0 where ``s <= 0``: an integer product).  Small (a few 10 kB): it stays in cache."""
    ua, uw = _odd_parts(a_fmt)[1], _odd_parts(w_fmt)[1]
    x = np.multiply.outer(ua, uw)[:, :, None]  # |x| < 2**20
    t = np.arange(T, dtype=np.int64)
    s = np.clip(L - t, 0, 62)
    X = np.where(s > 0, (x - ((x >> s) << s)) << np.clip(t, 0, 62), 0)  # x mod 2**s, nonnegative
    out = np.ascontiguousarray(X.reshape(-1).astype(np.int64))
    out.setflags(write=False)
    return out


@nb.njit(cache=True)
def _lam_sort(wT, lsw, iwT, off, bw, lo, clip, T, nbins, sh, pc, start):
    """Per k: the rows n of w counting-sorted by lam_w = lsw[w[n, k]] + off[n, k // bw] (bins
    from ``lo``, the last bin for zeros and beyond); ``pc[k, j] = n << sh | (iw * T + min(lam_w,
    clip) - lo)`` in that order (``iw``: the index of w's odd part), ``start[k, b]`` = entries in
    the bins below b."""
    K, N = wT.shape
    cnt = np.empty(nbins + 1, np.int64)
    bins = np.empty(N, np.int64)
    widx = np.empty(N, np.int64)
    for k in range(K):
        g = k // bw
        cnt[:] = 0
        for n in range(N):
            c = wT[k, n]
            v = lsw[c]
            if v == _NO_LSB:
                b = nbins - 1
                widx[n] = 0
            else:
                lam = v + off[n, g]
                b = min(max(lam - lo, 0), nbins - 1)
                widx[n] = iwT[c] * T + max(min(lam, clip), lo) - lo
            bins[n] = b
            cnt[b + 1] += 1
        for b in range(nbins):
            cnt[b + 1] += cnt[b]
        start[k, :] = cnt
        for n in range(N):
            b = bins[n]
            j = cnt[b]
            cnt[b] += 1
            pc[k, j] = (np.int64(n) << sh) | widx[n]


@nb.njit(cache=True, inline="always")
def _split_row(m, a, P, ok, lsa, iaT, sa, ba, L, c0, lo, nbins, sh, pc, start, E, out):
    """Row m: out = (P * 2**L - sum of the inexact pairs' errors) / 2**L where ok; False if a
    fraction is left (the guard).  The error of (m, k, n) is ``E[iaT[a] + lam_a + c0 + widx]``
    (``iaT``: a's odd-part index times the table's row length, ``c0 = L + lo``, ``widx`` the low
    ``sh`` bits of n's entry in ``pc[k]``)."""
    K = a.shape[1]
    N = P.shape[1]
    scale = 2.0 ** L
    o = out[m]
    for n in range(N):
        o[n] = np.int64(P[m, n] * scale) if ok[m, n] else 0
    ush = np.uint32(sh)
    msk = np.uint32((1 << sh) - 1)
    am = a[m]
    for g in range(sa.shape[1]):  # k-groups of one a scale (no k // ba per entry)
        sam = sa[m, g]
        for k in range(g * ba, min(K, (g + 1) * ba)):
            c = np.int64(am[k])
            la = lsa[c]
            if la == _NO_LSB:
                continue
            lam = la + sam
            # partners: lam_w < -lam_a, i.e. the bins below -lam_a - lo (a prefix of pc[k])
            cnt = start[k, np.uint64(min(max(-lam - lo, 0), nbins - 1))]
            if cnt == 0:
                continue
            e0 = iaT[c] + lam + c0  # >= 0: lam_a + lo + L >= 0
            pk = pc[k]
            # unsigned indices: no negative-index wraparound code in the loop (a measurable part)
            for j in range(cnt):
                q = np.uint32(pk[j])
                o[q >> ush] -= E[np.uint64(e0 + (q & msk))]
    good = True
    mask = (np.int64(1) << L) - 1
    for n in range(N):
        if ok[m, n]:
            x = o[n]
            if x & mask:
                good = False
            o[n] = x >> L
        else:
            o[n] = 0
    return good


@nb.njit(cache=True, parallel=True)
def _split(a, P, ok, lsa, iaT, sa, ba, L, c0, lo, nbins, sh, pc, start, E, out):
    M = a.shape[0]
    good = np.ones(M, np.bool_)
    for m in nb.prange(M):
        good[m] = _split_row(m, a, P, ok, lsa, iaT, sa, ba, L, c0, lo, nbins, sh, pc, start, E, out)
    return good.all()


@nb.njit(cache=True)
def _split_serial(a, P, ok, lsa, iaT, sa, ba, L, c0, lo, nbins, sh, pc, start, E, out):
    good = True
    for m in range(a.shape[0]):
        good &= _split_row(m, a, P, ok, lsa, iaT, sa, ba, L, c0, lo, nbins, sh, pc, start, E, out)
    return good


class _SplitGuardError(RF8SimError, AssertionError):
    """The split GEMM left a fraction: a bug, never a user error (an RF8SimError so that the CLI
    prints it as one line asking for a report instead of a wrong number)."""


@lru_cache(maxsize=None)
def _mag_range(fmt: F.Format):
    """(smallest nonzero, largest) finite magnitude of an 8-bit format."""
    v = np.abs(fmt.values[fmt.finite])
    return float(v[v > 0].min()), float(v.max())


def _lam_range(fmt, off):
    ls = _lsb_exp(fmt)
    ls = ls[ls != _NO_LSB]
    return int(ls.min()) + int(off.min()), int(ls.max()) + int(off.max())


@lru_cache(maxsize=None)
def _abs_f32(fmt: F.Format) -> np.ndarray:
    """|value| of every code as float32 (exact for 8-bit formats); NaN/Inf codes -> 0."""
    v = np.abs(np.where(fmt.finite, fmt.values, 0.0)).astype(np.float32)
    v.setflags(write=False)
    return v


def _abs_product_bound(a, w, a_fmt, w_fmt, sa, ba, sw, bw, Av, Wv):
    """An upper bound on ``|Av| @ |Wv|.T``, the sum of the magnitudes of each output's products
    (``Av``/``Wv``: the exact values of codes ``a``/``w`` times ``2**sa``/``2**sw``, groups of
    ``ba``/``bw`` along K).

    float32 BLAS when every magnitude lies well inside float32's normal range (8-bit-format values
    times powers of two are then exact in float32, their products too, and a sum of K nonnegative
    terms is within a factor ``1 + K * 2**-23`` of the exact one in any order), else float64.
    """
    K = a.shape[1]
    (la, ha), (lw, hw) = _mag_range(a_fmt), _mag_range(w_fmt)
    lo = min(la * 2.0 ** int(sa.min()), lw * 2.0 ** int(sw.min()))
    hi = max(ha * 2.0 ** int(sa.max()), hw * 2.0 ** int(sw.max()))
    if lo >= 2.0 ** -60 and hi <= 2.0 ** 50 and K < 1 << 16:  # products in [2**-120, 2**100]
        a32 = _scaled(_abs_f32(a_fmt), a, sa, ba)
        w32 = _scaled(_abs_f32(w_fmt), w, sw, bw)
        return (a32 @ w32.T).astype(np.float64) * (1 + (K + 2) * 2.0 ** -22)
    return (np.abs(Av) @ np.abs(Wv).T) * (1 + (K + 8) * 2.0 ** -51)


def _gemm_split(a, w, a_fmt, w_fmt, acc, sa, ba, sw, bw):
    """The rows whose outputs are all proven clamp-free and BLAS-exact: ``(their acc values, row
    mask)``; None if there is none.

    ``sa`` (M, groups) and ``sw`` (N, groups): scale exponents per row and group of ``ba`` /
    ``bw`` along K (tensor/channel: one group).
    """
    M, K = a.shape
    N = w.shape[0]
    if K >= 1 << 20:
        return None
    f = acc.frac_bits
    lsa, lsw = _lsb_exp(a_fmt), _lsb_exp(w_fmt)
    ba, bw = max(int(ba), 1), max(int(bw), 1)
    if sa.shape[1] * ba < K or sw.shape[1] * bw < K:  # the kernels walk k by scale group
        raise ValueError(f"scale groups ({sa.shape[1]} of {ba}, {sw.shape[1]} of {bw}) do not cover K = {K}")
    sar = np.ascontiguousarray(sa, np.int64)
    swf = np.ascontiguousarray(sw + f, np.int64)
    Av = _scaled(_f64_values(a_fmt), a, sa, ba)
    Wv = _scaled(_f64_values(w_fmt, f), w, sw, bw)
    # the lam ranges from the formats' finest/coarsest lsb and the scale ranges (not from the
    # codes present: L only sets the integer grid of the exact float64 sum, a finer one is fine)
    lo_a, hi_a = _lam_range(a_fmt, sar)
    lo_w, hi_w = _lam_range(w_fmt, swf)
    L = max(0, -(lo_a + lo_w))
    if L > 40:
        return None
    # Cauchy-Schwarz: sum_k |p_k| <= |a_m| |w_n| (relative margin for the float64 rounding)
    na = np.sqrt(np.einsum("ij,ij->i", Av, Av))
    nw = np.sqrt(np.einsum("ij,ij->i", Wv, Wv))
    B = np.multiply.outer(na, nw)
    B *= 1 + 2.0 ** -30
    # partial sums of floors lie in [-B - K, B]: B <= max and -B - (K + 1) >= min; float64 BLAS
    # exact below 2**53: B * 2**L <= 2**52.  One comparison with the smallest of the three limits
    thr = min(float(acc.max), -float(acc.min) - (K + 1), 2.0 ** (52 - L))

    def proven(Bd):
        return Bd <= thr

    ok = proven(B)
    if not ok.all():  # a tighter bound where Cauchy-Schwarz is not enough: sum |a| |w| itself
        rows = np.flatnonzero(~ok.all(axis=1))
        ok[rows] = proven(_abs_product_bound(a[rows], w, a_fmt, w_fmt, sar[rows], ba, swf, bw, Av[rows], Wv))
    good = ok.all(axis=1)  # rows whose every output is proven; the others take the clamped rows
    if not good.any():
        return None
    if not good.all():
        a, Av, sar, ok = a[good], Av[good], sar[good], ok[good]
        M = a.shape[0]
    P = Av @ Wv.T
    nbins = hi_w - lo_w + 2
    # error-table index t = lam_a + lam_w' + L with lam_w' = lam_w clipped to [lo_w, -lo_a] (above
    # -lo_a every pair is exact, t stays in range): t in [0, T)
    clip = max(-lo_a, lo_w)
    T = hi_a + clip + L + 1
    uw = _odd_parts(w_fmt)[1]
    sh = int(uw.size * T - 1).bit_length()  # pc packs n << sh | the w part of the table index
    E = _odd_err_table(a_fmt, w_fmt, L, T)
    iaT = _odd_parts(a_fmt)[0] * (uw.size * T)
    iwT = _odd_parts(w_fmt)[0]
    if N << sh >= 1 << 32:
        return None  # the kernel's uint32 unpacking (N >= 2**22 for 8-bit formats)
    pc = np.empty((K, N), np.uint32)
    start = np.empty((K, nbins + 1), np.int64)
    wT = np.ascontiguousarray(w.T)
    _lam_sort(wT, lsw, iwT, swf, bw, lo_w, clip, T, nbins, sh, pc, start)
    out = np.empty((M, N), np.int64)
    kern = _split if M > 1 and M * N * K >= PARALLEL_MIN else _split_serial
    if not kern(a, P, ok, lsa, iaT, sar, ba, L, L + lo_w, lo_w, nbins, sh, pc, start, E, out):
        raise _SplitGuardError("split GEMM: the flooring correction left a fraction (a bug; please report)")
    return out, good


# ---------------------------------------------------------------------------
# floor GEMM in float32: every product floored on its own, summed in any order
#
# With the accumulator's fraction bits folded into w (``W = w * 2**(sw + frac)``, ``A = a * 2**sa``),
# each aligned product is ``floor(A[m, k] * W[n, k])``.  That float32 product is exact when both
# operands' significands together need at most 24 bits and every operand and product is a normal
# float32; ``floor`` of it is then exact, and so is any sum of such integers whose partial sums,
# in every order, stay within 2**24 in magnitude: ``sum_k |floor(p_k)| <= sum_k |p_k| + K``.  If
# moreover that bound keeps every k-ordered partial sum inside the accumulator's range, the clamp
# never acts and the k order does not matter, so a vectorised multiply-floor-add in any order gives
# the accumulator's bits.  Narrow accumulators with realistic scales (most products floored) take
# this path; rows it cannot prove take the split GEMM or the clamped rows.

#: outputs computed per narrow-GEMM path (tests assert that the path they mean to check ran)
PATH_COUNTS: dict[str, int] = {"floor32": 0, "split": 0, "clamped": 0}


@lru_cache(maxsize=None)
def _sig_bits(fmt: F.Format) -> int:
    """Significant bits of the widest odd part of a finite value (0 for a format of zeros)."""
    u = _odd_parts(fmt)[1]
    return int(np.abs(u).max()).bit_length() if u.size else 0


@lru_cache(maxsize=None)
def _f32_values(fmt: F.Format, shift: int = 0) -> np.ndarray:
    """Finite values times 2**shift as float32 (callers check the range; exact there); NaN/Inf -> 0."""
    v = np.ldexp(np.where(fmt.finite, fmt.values, 0.0), shift).astype(np.float32)
    v.setflags(write=False)
    return v


_F32_NORMAL = 2.0 ** -126
_F32_INT = 2.0 ** 24  # float32 holds every integer of magnitude <= 2**24


@nb.njit(cache=True, fastmath={"reassoc"}, inline="always")
def _floor_rows4(m0, A, W, out):
    """Rows m0..m0+3: out[m, n] = sum_k floor(A[m, k] * W[n, k]) (reassociated: exact, see above)."""
    K = A.shape[1]
    a0, a1, a2, a3 = A[m0], A[m0 + 1], A[m0 + 2], A[m0 + 3]
    for n in range(W.shape[0]):
        w = W[n]
        s0 = s1 = s2 = s3 = np.float32(0)
        for k in range(K):
            wk = w[k]
            s0 += np.floor(a0[k] * wk)
            s1 += np.floor(a1[k] * wk)
            s2 += np.floor(a2[k] * wk)
            s3 += np.floor(a3[k] * wk)
        out[m0, n] = np.int64(s0)
        out[m0 + 1, n] = np.int64(s1)
        out[m0 + 2, n] = np.int64(s2)
        out[m0 + 3, n] = np.int64(s3)


@nb.njit(cache=True, fastmath={"reassoc"}, inline="always")
def _floor_row(m, A, W, out):
    K = A.shape[1]
    a = A[m]
    for n in range(W.shape[0]):
        w = W[n]
        s = np.float32(0)
        for k in range(K):
            s += np.floor(a[k] * w[k])
        out[m, n] = np.int64(s)


# fastmath on the callers too: the inlined bodies are compiled with the caller's flags
@nb.njit(cache=True, parallel=True, fastmath={"reassoc"})
def _floor_gemm(A, W, out):
    M = A.shape[0]
    for b in nb.prange(M // 4):
        _floor_rows4(4 * b, A, W, out)
    for m in range(M - M % 4, M):
        _floor_row(m, A, W, out)


@nb.njit(cache=True, fastmath={"reassoc"})
def _floor_gemm_serial(A, W, out):
    """Serial twin of _floor_gemm: small inputs skip the parallel launch."""
    M = A.shape[0]
    for b in range(M // 4):
        _floor_rows4(4 * b, A, W, out)
    for m in range(M - M % 4, M):
        _floor_row(m, A, W, out)


def _gemm_floor32(a, w, a_fmt, w_fmt, acc, sa, ba, sw, bw):
    """The rows whose outputs the float32 floor GEMM provably gets right: ``(their acc values, row
    mask)``; None when no row qualifies (or the formats / scales leave float32's exact range)."""
    M, K = a.shape
    f = acc.frac_bits
    if _sig_bits(a_fmt) + _sig_bits(w_fmt) > 24 or K >= 1 << 20:
        return None
    (la, ha), (lw, hw) = _mag_range(a_fmt), _mag_range(w_fmt)
    a_lo, a_hi = la * 2.0 ** int(sa.min()), ha * 2.0 ** int(sa.max())
    w_lo, w_hi = lw * 2.0 ** (int(sw.min()) + f), hw * 2.0 ** (int(sw.max()) + f)
    if min(a_lo, w_lo, a_lo * w_lo) < _F32_NORMAL or max(a_hi, w_hi, a_hi * w_hi) >= 2.0 ** 100:
        return None  # an operand or product could be subnormal (inexact) or near overflow
    # a bound on sum_k |p| per output keeps every partial sum of floors in [-(B + K), B]: inside the
    # accumulator (no clamp, so any order) and within float32's exact integers (exact in any order)
    thr = min(float(acc.max), -float(acc.min) - (K + 1), _F32_INT - (K + 1))
    if thr <= 0:
        return None
    A = _scaled(_f32_values(a_fmt), a, sa, ba)
    W = _scaled(_f32_values(w_fmt, f), w, sw, bw)
    A64, W64 = A.astype(np.float64), W.astype(np.float64)
    # Cauchy-Schwarz first (cheap), then sum |a| |w| itself for the rows it cannot prove
    B = np.multiply.outer(np.sqrt(np.einsum("ij,ij->i", A64, A64)), np.sqrt(np.einsum("ij,ij->i", W64, W64)))
    ok = B * (1 + 2.0 ** -30) <= thr
    if not ok.all():
        # rows Cauchy-Schwarz misses by less than 2.5x (it overestimates sum |a| |w| by ~1.6-2.2x on
        # Gaussian / Laplace data): sum |a| |w| itself, one float32 BLAS product; rows further beyond are
        # left to the other paths without it (a guess about speed only: every row taken is proven)
        rows = np.flatnonzero(~ok.all(axis=1) & (B.max(axis=1) <= 2.5 * thr))
        if rows.size:
            Bt = (np.abs(A[rows]) @ np.abs(W).T).astype(np.float64) * (1 + (K + 2) * 2.0 ** -22)
            ok[rows] = Bt <= thr
    good = ok.all(axis=1)
    if not good.any():
        return None
    if not good.all():
        A = A[good]
    A = np.ascontiguousarray(A)
    W = np.ascontiguousarray(W)
    out = np.empty((A.shape[0], W.shape[0]), np.int64)
    kern = _floor_gemm if A.shape[0] > 1 and A.shape[0] * W.shape[0] * K >= PARALLEL_MIN else _floor_gemm_serial
    kern(A, W, out)
    return out, good


# ---------------------------------------------------------------------------
# clamped rows: the k-ordered saturating sum itself, vectorised across n
#
# For outputs the split path cannot prove, every product is added with the clamp, in k order,
# for a whole row m at once: per k one 256-entry row of the aligned-product table (offset
# ``sa[m] + sw[n]``) is gathered by the w codes of column k.  This is the sequential kernel's
# arithmetic per output, only interleaved across n.


@lru_cache(maxsize=64)
def _aligned_table(a_fmt: F.Format, w_fmt: F.Format, shift: int) -> np.ndarray:
    """floor(product * 2**shift) of every code pair (int64, flat ``a * 256 + w``); NaN/Inf: 0."""
    q = packed_pairs(a_fmt, w_fmt).astype(np.int64)
    sh = (q & 255) - _EXP_BIAS + shift
    t = np.where((q & 255) == 255, 0, ((q >> 8) << np.clip(sh, 0, 63)) >> np.clip(-sh, 0, 63))
    t = np.ascontiguousarray(t)
    t.setflags(write=False)
    return t


@lru_cache(maxsize=8)
def _aligned_tables(a_fmt: F.Format, w_fmt: F.Format, shift0: int, n: int) -> np.ndarray:
    """``_aligned_table`` for shifts ``shift0 .. shift0 + n - 1``, one after the other."""
    T = np.concatenate([_aligned_table(a_fmt, w_fmt, shift0 + o) for o in range(n)])
    T.setflags(write=False)
    return T


@nb.njit(cache=True, inline="always")
def _clamp_row(i, m, a, wT, T, sa, ba, swT, bw, wuni, amin, amax, acc_out, ovf_out):
    K = a.shape[1]
    N = wT.shape[1]
    acc = np.zeros(N, np.int64)
    ovf = np.zeros(N, np.int64)  # nonzero once a clamp acted
    p = np.empty(N, np.int64)
    for k in range(K):
        c = np.int64(a[m, k]) * 256 + (sa[m, k // ba] << 16)
        # the gather and the clamped adds in separate loops: both vectorise (one loop with both
        # compiles to branches whose cost depends on how often the clamp acts)
        if wuni:
            for n in range(N):
                p[n] = T[c + wT[k, n]]
        else:
            g = k // bw
            for n in range(N):
                p[n] = T[c + swT[g, n] + wT[k, n]]
        for n in range(N):
            t = acc[n] + p[n]
            cl = min(max(t, amin), amax)
            ovf[n] |= cl ^ t
            acc[n] = cl
    acc_out[i, :] = acc
    for n in range(N):
        ovf_out[i, n] = ovf[n] != 0


@nb.njit(cache=True, parallel=True)
def _clamp_rows(rows, a, wT, T, sa, ba, swT, bw, wuni, amin, amax, acc_out, ovf_out):
    for i in nb.prange(rows.size):
        _clamp_row(i, rows[i], a, wT, T, sa, ba, swT, bw, wuni, amin, amax, acc_out, ovf_out)


@nb.njit(cache=True)
def _clamp_rows_serial(rows, a, wT, T, sa, ba, swT, bw, wuni, amin, amax, acc_out, ovf_out):
    for i in range(rows.size):
        _clamp_row(i, rows[i], a, wT, T, sa, ba, swT, bw, wuni, amin, amax, acc_out, ovf_out)


def _gemm_clamped_rows(rows, a, w, a_fmt, w_fmt, acc, sa, ba, sw, bw):
    """Rows ``rows`` of the k-ordered saturating GEMM: (acc, overflow).  ``sa`` (M, groups) with
    group length ``ba`` along K, ``sw`` (N, groups) with ``bw`` (tensor/channel: one group)."""
    sa, sw = sa.astype(np.int64), sw.astype(np.int64)
    omin = int(sa.min()) + int(sw.min())
    offs = range(omin, int(sa.max()) + int(sw.max()) + 1)
    T = (_aligned_table(a_fmt, w_fmt, acc.frac_bits + omin) if len(offs) == 1 else
         _aligned_tables(a_fmt, w_fmt, acc.frac_bits + omin, len(offs)))
    # the table block of (m, n, k) starts at (sa[m, k // ba] + sw[n, k // bw] - omin) << 16
    sa_rel = np.ascontiguousarray(sa - int(sa.min()))  # the kernel shifts it
    swT = np.ascontiguousarray(((sw - int(sw.min())) << 16).T)
    wuni = bool((sw == sw.flat[0]).all())
    wT = np.ascontiguousarray(w.T)
    R, N = rows.size, w.shape[0]
    out = np.empty((R, N), np.int64)
    ovf = np.empty((R, N), np.bool_)
    kern = _clamp_rows if R > 1 and R * N * a.shape[1] >= PARALLEL_MIN else _clamp_rows_serial
    kern(np.ascontiguousarray(rows, np.int64), a, wT, T, sa_rel, max(int(ba), 1), swT, max(int(bw), 1), wuni,
         acc.min, acc.max, out, ovf)
    return out, ovf


def _gemm_fast(a, w, a_fmt, w_fmt, acc, sa, ba, sw, bw) -> GemmResult:
    """One-limb fast path: the float32 floor GEMM on the rows it proves, the split GEMM on the rows
    it proves of the others, the clamped rows (k order, vectorised across n) on the rest."""
    a = np.ascontiguousarray(a)
    w = np.ascontiguousarray(w)
    M, N = a.shape[0], w.shape[0]
    ovf = np.zeros((M, N), np.bool_)
    out = np.empty((M, N), np.int64)
    rest = np.arange(M)
    r = _gemm_floor32(a, w, a_fmt, w_fmt, acc, sa, ba, sw, bw)
    if r is not None:
        PATH_COUNTS["floor32"] += int(r[1].sum()) * N
        if r[1].all():  # every row proven: the floor GEMM's array is the result
            out, rest = r[0], rest[:0]
        else:
            out[r[1]] = r[0]
            rest = np.flatnonzero(~r[1])
    if rest.size:
        sub = rest.size < M
        r = _gemm_split(a[rest] if sub else a, w, a_fmt, w_fmt, acc, sa[rest] if sub else sa, ba, sw, bw)
        if r is not None:
            PATH_COUNTS["split"] += int(r[1].sum()) * N
            if not sub and r[1].all():
                out = r[0]
            else:
                out[rest[r[1]]] = r[0]
            rest = rest[~r[1]]
        if rest.size:
            PATH_COUNTS["clamped"] += rest.size * N
            out[rest], ovf[rest] = _gemm_clamped_rows(rest, a, w, a_fmt, w_fmt, acc, sa, ba, sw, bw)
    inv = np.logical_or.outer(_rows_with(a, _nonfinite(a_fmt)), _rows_with(w, _nonfinite(w_fmt)))
    return GemmResult(out if acc.width <= 63 else out.astype(object), ovf, inv)


def gemm(a_codes, w_codes, a_fmt, w_fmt, acc, a_scale_exp=None, w_scale_exp=None,
         a_granularity: str = "tensor", w_granularity: str = "tensor", block: int = 32,
         method: str = "auto", specials: str = "error") -> GemmResult:
    """``C[m, n] = sum_k a[m, k] * w[n, k]`` on codes (nn.Linear layout), exactly.

    Each product's exponent gets ``a_scale_exp`` + ``w_scale_exp`` added (tensor:
    scalars; channel: per row ``m`` of a / row ``n`` of w; block: per block of
    ``block`` along K, shapes ``(M, ceil(K/block))`` / ``(N, ceil(K/block))``), is
    aligned to ``acc.frac_bits`` by flooring, and accumulated in k order with
    saturation (sticky ``overflow``); NaN/Inf operands contribute 0 and set ``invalid``.

    ``method="auto"`` uses an exact float64 matmul when it provably gives the same
    result (no flooring, no saturation, every partial sum an integer below 2**53).
    Otherwise (one-limb accumulators, ``K >= 2 * FAST_CHUNK``) it runs the fast kernels: rows
    whose outputs bounds prove clamp-free take one exact float64 matmul minus the flooring
    errors of the floored products, the other rows the clamped k-ordered sum vectorised
    across n.  ``"fast"`` forces those
    kernels, ``"sequential"`` always runs the plain k-ordered kernel.  All give the same bits
    (accumulator and both flags).

    ``acc="fp32"`` / ``"aligned:K:M"`` (W8A16 contract; codes uint8 or uint16 by format):
    ``C`` comes back as float32 bit patterns (uint32; ``.as_float32()``), the fp32 chain in k
    order or blocks of K along k; ``specials`` (aligned only): ``"error"`` refuses a NaN/Inf
    operand in an alignment block, ``"propagate"`` gives the contract's NaN + invalid.  See
    :func:`rf8sim.golden.fpacc.gemm`.
    """
    a_fmt, w_fmt = F.check_role(a_fmt, "activation"), F.check_role(w_fmt, "weight")
    acc = _as_spec(acc, a_fmt, w_fmt)
    if acc.kind != "fixed":
        if method not in ("auto", "sequential"):
            raise ValueError(f"method must be 'auto' or 'sequential', got {method!r}")
        from . import fpacc

        return fpacc.gemm(a_codes, w_codes, a_fmt, w_fmt, acc, a_scale_exp, w_scale_exp, a_granularity,
                          w_granularity, block, specials, method=method)
    _fixed_formats(acc, a_fmt, w_fmt)
    if acc.group != 1:
        return _gemm_grouped(a_codes, w_codes, a_fmt, w_fmt, acc, a_scale_exp, w_scale_exp, a_granularity,
                             w_granularity, block, method)
    a = as_codes(a_codes, "a_codes")
    w = as_codes(w_codes, "w_codes")
    if a.ndim != 2 or w.ndim != 2:
        raise ValueError(f"gemm needs 2-D code matrices a (M, K) and w (N, K), got {a.shape} and {w.shape}")
    if a.shape[1] != w.shape[1]:
        raise ValueError(f"inner dimensions differ: a is {a.shape}, w is {w.shape} (w is (N, K))")
    if method not in ("auto", "sequential", "fast"):
        raise ValueError(f"method must be 'auto', 'fast' or 'sequential', got {method!r}")
    M, K = a.shape
    N = w.shape[0]
    sa, ba = _scale_rows(a_scale_exp, M, K, a_granularity, block, "a")
    sw, bw = _scale_rows(w_scale_exp, N, K, w_granularity, block, "w")
    smax = (int(sa.max()) if sa.size else 0) + (int(sw.max()) if sw.size else 0)
    smin = (int(sa.min()) if sa.size else 0) + (int(sw.min()) if sw.size else 0)
    limbs = check_spec(acc, a_fmt, w_fmt, 1, smax)
    ovf = np.zeros((M, N), np.bool_)
    inv = np.zeros((M, N), np.bool_)
    if M * N == 0:
        return GemmResult(np.zeros((M, N), np.int64 if acc.width <= 63 else object), ovf, inv)
    (s, e), emin = _product_extremes(a_fmt, w_fmt)
    sh = e + acc.frac_bits + smax
    bound = s << sh if sh >= 0 else (s >> -sh) + 1
    exact_f64 = (emin + acc.frac_bits + smin >= 0 and K * bound <= acc.max and K * bound <= 1 << 53)
    if method == "auto" and exact_f64:
        return _gemm_f64(a, w, a_fmt, w_fmt, acc, sa, ba, sw, bw)
    if method == "fast" or (method == "auto" and limbs == 1 and K >= 2 * FAST_CHUNK):
        if limbs != 1:
            raise AccSpecError(f"method='fast' needs a one-limb accumulator ({acc} for {a_fmt.name} x "
                               f"{w_fmt.name} needs two); use method='auto'")
        return _gemm_fast(a, w, a_fmt, w_fmt, acc, sa, ba, sw, bw)
    a = np.ascontiguousarray(a)
    w = np.ascontiguousarray(w)
    pk = packed_pairs(a_fmt, w_fmt)
    seg, seg_a, seg_w = _segments(K, ba, bw)
    par = M > 1 and M * N * K >= PARALLEL_MIN
    if limbs == 1:
        out = np.empty((M, N), np.int64)
        k1 = _gemm1 if par else _gemm1_serial
        k1(a, w, sa, sw, seg, seg_a, seg_w, pk, acc.frac_bits, acc.min, acc.max, out, ovf, inv)
        return GemmResult(out if acc.width <= 63 else out.astype(object), ovf, inv)
    minh, minl, maxh, maxl = _limits(acc)
    hi = np.empty((M, N), np.int64)
    lo = np.empty((M, N), np.uint64)
    k2 = _gemm2 if par else _gemm2_serial
    k2(a, w, sa, sw, seg, seg_a, seg_w, pk, acc.frac_bits, np.int64(minh), np.uint64(minl),
           np.int64(maxh), np.uint64(maxl), hi, lo, ovf, inv)
    return GemmResult(_join(hi, lo, acc.width), ovf, inv)


def _gemm_grouped(a_codes, w_codes, a_fmt, w_fmt, acc, a_scale_exp, w_scale_exp, a_granularity, w_granularity,
                  block, method) -> GemmResult:
    """``acc.group = G``: per output, the aligned products of G consecutive k summed exactly, then one
    saturating add per group (the PE array's column order, docs/formats.md).

    Where the k-ordered sum never saturates, every prefix at a group boundary is in range, so the
    grouped sum is the same value: only outputs whose k-ordered sum saturated are recomputed, with
    :func:`mac` on beats of G lanes (the scale exponents, constant per output for tensor and channel
    scales, fold into ``frac_bits``)."""
    G = acc.group
    base = acc.ungrouped()
    res = gemm(a_codes, w_codes, a_fmt, w_fmt, base, a_scale_exp, w_scale_exp, a_granularity, w_granularity,
               block, method)
    idx = np.argwhere(res.overflow)
    if not len(idx):
        return res
    a = np.asarray(as_codes(a_codes, "a_codes"))
    w = np.asarray(as_codes(w_codes, "w_codes"))
    M, K = a.shape
    N = w.shape[0]
    sa, ba = _scale_rows(a_scale_exp, M, K, a_granularity, block, "a")
    sw, bw = _scale_rows(w_scale_exp, N, K, w_granularity, block, "w")
    if sa.shape[1] > 1 or sw.shape[1] > 1:
        raise AccSpecError(f"accumulator {acc}: the grouped order takes tensor or channel scales, not scales "
                           "that vary along K")
    pad = -K % G
    za = np.flatnonzero(a_fmt.finite & (a_fmt.sig == 0))[0]
    zw = np.flatnonzero(w_fmt.finite & (w_fmt.sig == 0))[0]
    out = res.acc.copy()
    ovf = res.overflow.copy()
    for m, n in idx:
        frac = acc.frac_bits + int(sa[m, 0]) + int(sw[n, 0])
        if not 0 <= frac <= 96:
            raise AccSpecError(f"accumulator {acc}: scales give {frac} fraction bits at output ({m}, {n}); the "
                               "grouped order needs 0..96")
        ar = np.concatenate([a[m], np.full(pad, za, a.dtype)]).reshape(-1, G)
        wr = np.concatenate([w[n], np.full(pad, zw, w.dtype)]).reshape(-1, G)
        tr = mac(ar, wr, None, a_fmt, w_fmt, AccSpec(frac, acc.width))
        out[m, n] = tr.acc[-1]
        ovf[m, n] = tr.overflow[-1]
    return GemmResult(out, ovf, res.invalid)


@lru_cache(maxsize=None)
def _nonfinite(fmt: F.Format) -> np.ndarray:
    """Per code: NaN/Inf (bool)."""
    t = np.ascontiguousarray(fmt.special != F.SPECIAL_FINITE)
    t.setflags(write=False)
    return t


@nb.njit(cache=True)
def _rows_with_kernel(codes, table, out):
    for m in range(codes.shape[0]):
        hit = False
        for k in range(codes.shape[1]):
            hit |= table[codes[m, k]]
        out[m] = hit


def _rows_with(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Per row of ``codes``: whether any of its codes has ``table[code]`` set."""
    out = np.zeros(codes.shape[0], np.bool_)
    if table.any():
        _rows_with_kernel(np.ascontiguousarray(codes), table, out)
    return out


@lru_cache(maxsize=None)
def _f64_values(fmt: F.Format, shift: int = 0) -> np.ndarray:
    """Finite values times 2**shift (exact in float64); NaN/Inf codes -> 0."""
    v = np.ldexp(np.where(fmt.finite, fmt.values, 0.0), shift)
    v.setflags(write=False)
    return v


def _apply_scale(X: np.ndarray, s: np.ndarray, blk: int, dtype=np.float64) -> np.ndarray:
    """Multiply rows (or row blocks along K) by 2**s, exactly (powers of two)."""
    if not s.any():
        return X
    if s.shape[1] == 1:
        return X * np.ldexp(1.0, s).astype(dtype)
    K = X.shape[1]
    f = np.repeat(np.ldexp(1.0, s).astype(dtype), blk, axis=1)[:, :K]
    return X * f


@nb.njit(cache=True)
def _gather_scaled_kernel(codes, tab, fac, blk, out):
    M, K = codes.shape
    for m in range(M):
        for g in range(fac.shape[1]):
            f = fac[m, g]
            for k in range(g * blk, min(K, (g + 1) * blk)):
                out[m, k] = tab[codes[m, k]] * f


def _scaled(tab: np.ndarray, codes: np.ndarray, s: np.ndarray, blk: int) -> np.ndarray:
    """``_apply_scale(tab[codes], s, blk, tab.dtype)`` in one pass (the same products, bit for
    bit: a table value times ``2**s`` as ``tab.dtype``)."""
    if not s.any():
        return tab[codes]
    out = np.empty(codes.shape, tab.dtype)
    blk = max(int(blk), 1) if s.shape[1] > 1 else max(codes.shape[1], 1)  # one group: all of K
    if s.shape[1] * blk < codes.shape[1]:
        raise ValueError(f"{s.shape[1]} scale groups of {blk} do not cover K = {codes.shape[1]}")
    _gather_scaled_kernel(np.ascontiguousarray(codes), tab, np.ascontiguousarray(np.ldexp(1.0, s).astype(tab.dtype)),
                          blk, out)
    return out


def _gemm_f64(a, w, a_fmt, w_fmt, acc, sa, ba, sw, bw) -> GemmResult:
    """Exact path: every product is an integer in units of 2**-frac_bits and every partial
    sum stays below 2**53 in magnitude, so float64 BLAS is exact whatever its order."""
    A = _scaled(_f64_values(a_fmt), a, sa, ba)
    W = _scaled(_f64_values(w_fmt, acc.frac_bits), w, sw, bw)
    C = A @ W.T
    out = C.astype(np.int64)
    inv = np.logical_or.outer(_rows_with(a, _nonfinite(a_fmt)), _rows_with(w, _nonfinite(w_fmt)))
    ovf = np.zeros(out.shape, np.bool_)
    return GemmResult(out if acc.width <= 63 else out.astype(object), ovf, inv)


def dot(a_codes, w_codes, a_fmt, w_fmt, acc, a_scale_exp: int = 0, w_scale_exp: int = 0,
        method: str = "auto") -> DotResult:
    """Exact dot product of two 1-D code vectors, accumulated in index order with saturation.
    With ``acc="fp32"`` / ``"aligned:K:M"`` the result's ``acc`` is the float32 bit pattern (an int)."""
    a = as_codes(a_codes, "a_codes", F.check_role(a_fmt, "activation"))
    w = as_codes(w_codes, "w_codes", F.check_role(w_fmt, "weight"))
    if a.ndim != 1 or w.ndim != 1 or a.shape != w.shape:
        raise ValueError(f"dot needs two 1-D code vectors of equal length, got {a.shape} and {w.shape}")
    r = gemm(a[None, :], w[None, :], a_fmt, w_fmt, acc, np.asarray(a_scale_exp), np.asarray(w_scale_exp),
             method=method)
    return DotResult(int(r.acc[0, 0]), bool(r.overflow[0, 0]), bool(r.invalid[0, 0]))


# ---------------------------------------------------------------------------
# conversion


@nb.njit(cache=True, inline="always")
def _bitlen64(v):
    n = 0
    while v != 0:
        v >>= np.uint64(1)
        n += 1
    return n


@nb.njit(cache=True)
def _to_f32_one(hi, lo, frac):
    """RNE float32 of the 128-bit two's complement value (hi, lo) times 2**-frac."""
    one = np.uint64(1)
    h = hi
    l = lo
    neg = h < 0
    if neg:  # magnitude of a 128-bit two's complement value
        l = ~l + one
        h = ~h + (np.int64(1) if l == np.uint64(0) else np.int64(0))
    uh = np.uint64(h)
    if uh == np.uint64(0) and l == np.uint64(0):
        return np.float32(0.0)
    bl = _bitlen64(uh) + 64 if uh != np.uint64(0) else _bitlen64(l)
    shift = bl - 24
    if shift <= 0:
        q = l << np.uint64(-shift) if shift < 0 else l
        e = shift - frac
        v = np.float64(q) * 2.0 ** e
    else:
        # q = top 24 bits, rem = the rest compared with half
        if shift >= 64:
            q = uh >> np.uint64(shift - 64)
            rb = shift - 1  # position of the round bit
            if rb >= 64:
                rbit = (uh >> np.uint64(rb - 64)) & one
                sticky = (uh & ((one << np.uint64(rb - 64)) - one)) != np.uint64(0) or l != np.uint64(0)
            else:
                rbit = (l >> np.uint64(rb)) & one
                sticky = (l & ((one << np.uint64(rb)) - one)) != np.uint64(0)
        else:
            q = (l >> np.uint64(shift))
            if uh != np.uint64(0):
                q |= uh << np.uint64(64 - shift)
            q &= (one << np.uint64(24)) - one
            rb = shift - 1
            rbit = (l >> np.uint64(rb)) & one
            sticky = (l & ((one << np.uint64(rb)) - one)) != np.uint64(0) if rb > 0 else False
        if rbit == one and (sticky or (q & one) == one):
            q += one
        v = np.float64(q) * 2.0 ** (shift - frac)
    return np.float32(-v if neg else v)


@nb.njit(cache=True, parallel=True)
def _to_f32(hi, lo, frac, out):
    for i in nb.prange(hi.size):
        out[i] = _to_f32_one(hi[i], lo[i], frac)


@nb.njit(cache=True)
def _to_f32_serial(hi, lo, frac, out):
    """Serial twin of _to_f32: small inputs skip the parallel launch (milliseconds on a busy machine)."""
    for i in range(hi.size):
        out[i] = _to_f32_one(hi[i], lo[i], frac)


def to_float32(acc, frac_bits: int) -> np.ndarray:
    """Round ``acc * 2**-frac_bits`` to the nearest float32 (ties to even), exactly.

    ``acc``: int64 array or object array of Python ints (|acc| < 2**127).
    """
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, (int, np.integer)) or not 0 <= frac_bits <= 96:
        raise ValueError(f"frac_bits must be an integer in 0..96, got {frac_bits!r}")
    a = np.asarray(acc)
    if a.dtype == object:
        flat = a.reshape(-1)
        try:
            ints = [int(v) for v in flat]
        except (TypeError, ValueError):
            raise DTypeError("acc object arrays must hold Python integers") from None
        if any(not -(1 << 127) <= v < 1 << 127 for v in ints):
            raise ValueError("acc values must lie in -2**127 .. 2**127-1")
        hi = np.array([v >> 64 for v in ints], np.int64)
        lo = np.array([v & _U64 for v in ints], np.uint64)
    elif a.dtype.kind in "iu" and a.dtype.itemsize <= 8 and a.dtype != np.uint64:
        v = a.astype(np.int64).reshape(-1)
        hi = v >> 63
        lo = v.view(np.uint64)
    else:
        raise DTypeError(f"acc must be an int64 array or an object array of Python ints, got {a.dtype}")
    out = np.empty(hi.size, np.float32)
    if hi.size:
        kern = _to_f32 if hi.size >= PARALLEL_MIN else _to_f32_serial
        kern(np.ascontiguousarray(hi), np.ascontiguousarray(lo), int(frac_bits), out)
    return out.reshape(a.shape)
