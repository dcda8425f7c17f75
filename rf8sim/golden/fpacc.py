"""W8A16 golden arithmetic: exact products of any two formats and the two floating-point
accumulators of the W8A16 contract, ``fp32`` and ``aligned:K:M``.

Normative text: docs/formats.md, "Accumulation: fp32" and "Accumulation: aligned:K:M".
Results are IEEE binary32 bit patterns (uint32, every NaN the canonical 0x7FC00000) plus
the sticky ``overflow`` and ``invalid`` flags.

How the kernels stay exact (the tests check every claim against Python-Fraction references):

* The accumulator is held as a float64 that always equals a float32 value.  A product of
  two codes is at most 11 x 8 bits (fp16 x bf16: 19 bits) of significand with an exponent
  in float64's normal range, so ``va * vw`` (times a power-of-two scale) is exact in float64.
* fp32 step: ``s = acc + p`` in float64 with the TwoSum error ``e`` (6 flops).  If ``e == 0``,
  ``s`` is the exact sum and ``float32(s)`` is the one correct RNE rounding (hardware
  cvtsd2ss: ties to even, subnormals, overflow to Inf).  If ``e != 0``, rounding ``s`` to
  float32 could round twice, so the step reruns in integers: :func:`_add_exact` aligns
  the float32 significand and the product in a 62-bit window with a sticky bit (exact: a
  term that falls below the window is at most 2**-36 of the other one) and
  :func:`_round_pack` rounds once.
* aligned block sums are int64 when their register width (``AccSpec.block_width``) is at
  most 61 bits (rf8, e4m3, int8 weights), added to the float32 with :func:`_add_exact`;
  wider ones (bf16 weights; e5m2 at large K x M) are summed, together with the accumulator, exactly in
  a little-endian register of 32-bit limbs and rounded once (:func:`_reg_round`).
* :func:`gemm` runs faster kernels where a per-call precheck proves them bit-identical (section
  "fast paths" below: float32 chains for fp32, float64 BLAS block sums for aligned) and these
  sequential ones elsewhere; ``method="sequential"`` forces the latter.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros

from .. import formats as F
from ..accspec import W16_FORMATS, AccSpec, AccSpecError
from .codec import PARALLEL_MIN, DTypeError
from .operands import ShapeError, _scale_rows, _segments, clear_flags  # noqa: F401 - ShapeError: golden's API

__all__ = ["products", "mac", "gemm", "view_float32", "CANONICAL_NAN", "Fp32Trace", "Fp32Result",
           "align_activations", "AlignedActivations", "W16_FORMATS", "ShapeError", "PATH_COUNTS"]

#: The float32 NaN every fp32/aligned result writes.
CANONICAL_NAN = np.uint32(0x7FC00000)
_M32 = (1 << 32) - 1


class Fp32Trace(NamedTuple):
    """Per beat: the float32 bits of the accumulator (uint32) and the sticky flags after that beat."""

    acc: np.ndarray
    overflow: np.ndarray
    invalid: np.ndarray

    def as_float32(self) -> np.ndarray:
        return view_float32(self.acc)


class Fp32Result(NamedTuple):
    """``acc``: float32 bit patterns (uint32) of C; sticky flags per output."""

    acc: np.ndarray
    overflow: np.ndarray
    invalid: np.ndarray

    def as_float32(self) -> np.ndarray:
        return view_float32(self.acc)


def view_float32(bits) -> np.ndarray:
    """View float32 bit patterns (uint32, as fp32/aligned results come back) as float32."""
    b = np.asarray(bits)
    if b.dtype != np.uint32:
        raise DTypeError(f"float32 bit patterns must be a uint32 array, got dtype {b.dtype}")
    return b.view(np.float32)


# ---------------------------------------------------------------------------
# formats and codes


def _code_bits(fmt: F.Format) -> int:
    return int(getattr(fmt, "code_bits", 8))


def _codes(codes, what: str, fmt: F.Format) -> np.ndarray:
    """``codes`` as a C-contiguous array of the format's code dtype (uint8 / uint16), exactly."""
    if isinstance(codes, np.ma.MaskedArray):
        raise DTypeError(f"{what}: masked arrays are not supported; pass codes.filled(...)")
    if type(codes) is not np.ndarray:  # lists, np.matrix and other subclasses: a plain array
        codes = np.asarray(codes)
    want = np.dtype(np.uint8) if _code_bits(fmt) <= 8 else np.dtype(np.uint16)
    if codes.dtype != want:
        raise DTypeError(f"{what}: format {fmt.name} has {_code_bits(fmt)}-bit codes, which must be a {want} "
                         f"array; got dtype {codes.dtype}")
    n = 1 << _code_bits(fmt)
    if n < (1 << (8 * want.itemsize)) and codes.size and int(codes.max()) >= n:
        raise DTypeError(f"{what}: codes >= {n}; format {fmt.name} has codes 0..{n - 1} only")
    return codes if codes.flags.c_contiguous else codes.copy(order="C")  # keeps 0-d arrays 0-d


def _weight_format(w_fmt) -> F.Format:
    w = F.get(w_fmt)
    if _code_bits(w) > 8 and w.name not in W16_FORMATS:
        raise F.FormatError(f"weight format {w.name} has {_code_bits(w)}-bit codes; weights are 8-bit formats "
                            f"({', '.join(n for n in F.names() if _code_bits(F.get(n)) <= 8)}) or the "
                            f"dequantized-weight baseline {', '.join(W16_FORMATS)}")
    return w


class _Tab(NamedTuple):
    val: np.ndarray  # float64 value per code (NaN / +-Inf for specials)
    ssig: np.ndarray  # int64 signed significand (0 for specials)
    exp: np.ndarray  # int64 exponent (0 for specials)
    special: np.ndarray  # uint8
    efield: np.ndarray  # int64 alignment exponent field (E, zeros/subnormals 1), -1: none


@lru_cache(maxsize=None)
def _tables(fmt: F.Format) -> _Tab:
    fin = fmt.special == F.SPECIAL_FINITE
    sig = np.where(fin, fmt.sig, 0).astype(np.int64)
    exp = np.where(fin, fmt.exp, 0).astype(np.int64)
    ssig = np.where(fmt.sign.astype(bool), -sig, sig)
    val = np.asarray(fmt.values, np.float64)
    if fmt.kind == "float":
        # every finite code: exp = E - bias - man_bits (normal), 1 - bias - man_bits (E == 0)
        ef = np.where(fin, exp + fmt.bias + fmt.man_bits, -1)
    elif fmt.kind == "residual":
        codes = np.arange(len(val))
        E = (codes >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
        ef = np.where(fin, np.maximum(E, 1), -1)
    else:
        ef = np.full(len(val), -1, np.int64)
    out = _Tab(val, ssig, exp, fmt.special.astype(np.uint8), ef.astype(np.int64))
    for t in out:
        t.setflags(write=False)
    return out


def products(a_codes, w_codes, a_fmt, w_fmt, a_scale_exp=0, w_scale_exp=0):
    """Exact products of codes of any two formats, elementwise (numpy broadcasting).

    Returns ``(sign, sig, exp, special)``: for finite operands the product is
    ``(-1)**sign * sig * 2**exp`` with ``sig = sig_a * sig_w`` (int64 >= 0, a zero keeps the
    xor of the signs) and ``exp = exp_a + exp_w + a_scale_exp + w_scale_exp``; ``special`` (uint8)
    is 1 where an operand is NaN or Inf (then sign = sig = exp = 0).
    """
    a_fmt, w_fmt = F.check_role(a_fmt, "activation"), F.check_role(w_fmt, "weight")
    a = _codes(a_codes, "a_codes", a_fmt)
    w = _codes(w_codes, "w_codes", w_fmt)
    ta, tw = _tables(a_fmt), _tables(w_fmt)
    special = ((ta.special[a] != 0) | (tw.special[w] != 0))
    sign = (a_fmt.sign[a] ^ w_fmt.sign[w]).astype(np.uint8)
    sig = np.abs(ta.ssig[a]) * np.abs(tw.ssig[w])
    exp = ta.exp[a] + tw.exp[w] + np.asarray(a_scale_exp, np.int64) + np.asarray(w_scale_exp, np.int64)
    sign, sig, exp = np.broadcast_arrays(sign, sig, exp)
    special = np.broadcast_to(special, sig.shape)
    sign = np.where(special, 0, sign).astype(np.uint8)
    sig = np.where(special, 0, sig).astype(np.int64)
    exp = np.where(special, 0, exp).astype(np.int64)
    return sign, sig, exp, special.astype(np.uint8)


# ---------------------------------------------------------------------------
# exact float32 rounding in integers


@nb.njit(cache=True, inline="always")
def _bitlen(x):
    """Bit length of a non-negative int64."""
    if x == 0:
        return 0
    return 64 - np.int64(leading_zeros(np.uint64(x)))


@nb.njit(cache=True)
def _round_pack(neg, z, base, sticky):
    """RNE float32 of ``(z + d) * 2**base`` (``d`` in (0, 1) iff ``sticky``), as a float64 value,
    and whether it overflowed to Inf.  ``z``: int64 in 0 .. 2**63-1; with ``sticky`` the caller
    guarantees at least two bits between the result's last place and ``2**base``."""
    if z == 0 and not sticky:
        return (-0.0 if neg else 0.0), False
    L = _bitlen(z)
    lsb = base + L - 24
    if lsb < -149:
        lsb = -149
    r = lsb - base
    one = np.int64(1)
    if r <= 0:
        q = z << (-r)
    elif r > 63:
        q = np.int64(0)  # |value| < 2**(lsb - 1): rounds to zero
    else:
        q = z >> r
        rb = (z >> (r - 1)) & one
        st = sticky or (z & ((one << (r - 1)) - one)) != 0
        if rb == 1 and (st or (q & one) == 1):
            q += 1
            if q == (one << 24):
                q = one << 23
                lsb += 1
    if q >= (one << 23) and lsb > 104:
        return (-np.inf if neg else np.inf), True
    v = math.ldexp(np.float64(q), lsb)
    return (-v if neg else v), False


@nb.njit(cache=True, inline="always")
def _decompose(acc):
    """A float64 holding a finite float32 value -> (neg, m, e) with m < 2**24, e >= -149."""
    neg = math.copysign(1.0, acc) < 0
    if acc == 0.0:
        return neg, np.int64(0), np.int64(-149)
    fr, ex = math.frexp(abs(acc))
    m = np.int64(math.ldexp(fr, 24))
    e = np.int64(ex) - 24
    if e < -149:
        m = m >> (-149 - e)
        e = np.int64(-149)
    return neg, m, e


@nb.njit(cache=True, inline="always")
def _shift(m, d):
    """(m * 2**d truncated, sticky): exact for d >= 0 (caller bounds the result)."""
    if d >= 0:
        return m << d, False
    k = -d
    if k >= 63:
        return np.int64(0), m != 0
    return m >> k, (m & ((np.int64(1) << k) - 1)) != 0


@nb.njit(cache=True)
def _add_exact(acc, nb_, mb, eb):
    """RNE float32 of ``acc + (-1)**nb_ * mb * 2**eb`` (``acc`` a finite float32 value held in a
    float64, ``0 <= mb < 2**60``): (value as float64, overflowed)."""
    na, ma, ea = _decompose(acc)
    if mb == 0:
        if ma == 0:
            return (-0.0 if (na and nb_) else 0.0), False
        return acc, False
    if ma == 0:
        return _round_pack(nb_, mb, eb, False)
    ta = ea + _bitlen(ma)
    tb = eb + _bitlen(mb)
    t = ta if ta > tb else tb
    base = ea if ea < eb else eb
    if base < t - 62:
        base = t - 62
    x, sx = _shift(ma, ea - base)
    y, sy = _shift(mb, eb - base)
    st = sx or sy
    if na == nb_:
        return _round_pack(na, x + y, base, st)
    if x > y or (x == y and sx):
        z = x - y
        if sy:
            z -= 1
        neg = na
    else:
        z = y - x
        if sx:
            z -= 1
        neg = nb_
    if z == 0 and not st:
        return 0.0, False  # x + (-x) = +0 under round to nearest
    return _round_pack(neg, z, base, st)


# ---------------------------------------------------------------------------
# fp32 accumulator


@nb.njit(cache=True, inline="always")
def _fp32_step(acc, p, a_ss, w_ss, pexp, force_int):
    """One fused add ``RNE_f32(acc + p)``; ``p`` exact in float64, equal to ``a_ss * w_ss * 2**pexp``.
    Returns (acc, overflow, invalid) - the flags of this step only."""
    s = acc + p
    if s - s != 0.0:  # NaN or Inf: an operand was NaN/Inf (finite sums stay below 2**300)
        if s != s:
            return np.nan, False, True
        return s, False, False
    if not force_int:
        bb = s - acc
        err = (acc - (s - bb)) + (p - bb)
        if err == 0.0:
            r = np.float64(np.float32(s))
            if r - r != 0.0:
                return r, True, False
            return r, False, False
    if acc - acc != 0.0:  # acc is Inf (p finite, else s was not finite)
        return acc, False, False
    v = a_ss * w_ss
    if v == 0:  # exact zero product: IEEE signed-zero rules, exact in float64
        r = np.float64(np.float32(s))
        return r, False, False
    r, o = _add_exact(acc, v < 0, abs(v), pexp)
    return r, o, False


@nb.njit(cache=True, inline="always")
def _fp32_row(m, a, w, sa, sw, seg, seg_a, seg_w, av, wv, ass, wss, aex, wex, force_int, out, ovf_out, inv_out):
    """Row m: each output's chain in k order.  Four columns advance together (independent chains:
    the CPU overlaps their latencies); the results are those of one column at a time."""
    nseg = seg.size - 1
    N = w.shape[0]
    n4 = N - N % 4
    for n in range(0, n4, 4):
        acc0 = acc1 = acc2 = acc3 = 0.0
        o0 = o1 = o2 = o3 = False
        i0 = i1 = i2 = i3 = False
        for g in range(nseg):
            ka = sa[m, seg_a[g]]
            k0 = ka + sw[n, seg_w[g]]
            k1 = ka + sw[n + 1, seg_w[g]]
            k2 = ka + sw[n + 2, seg_w[g]]
            k3 = ka + sw[n + 3, seg_w[g]]
            s0, s1, s2, s3 = math.ldexp(1.0, k0), math.ldexp(1.0, k1), math.ldexp(1.0, k2), math.ldexp(1.0, k3)
            for k in range(seg[g], seg[g + 1]):
                ca = a[m, k]
                va = av[ca]
                xa = ass[ca]
                ea = aex[ca]
                c0, c1, c2, c3 = w[n, k], w[n + 1, k], w[n + 2, k], w[n + 3, k]
                acc0, o, i = _fp32_step(acc0, va * wv[c0] * s0, xa, wss[c0], ea + wex[c0] + k0, force_int)
                o0 |= o
                i0 |= i
                acc1, o, i = _fp32_step(acc1, va * wv[c1] * s1, xa, wss[c1], ea + wex[c1] + k1, force_int)
                o1 |= o
                i1 |= i
                acc2, o, i = _fp32_step(acc2, va * wv[c2] * s2, xa, wss[c2], ea + wex[c2] + k2, force_int)
                o2 |= o
                i2 |= i
                acc3, o, i = _fp32_step(acc3, va * wv[c3] * s3, xa, wss[c3], ea + wex[c3] + k3, force_int)
                o3 |= o
                i3 |= i
        out[m, n], out[m, n + 1], out[m, n + 2], out[m, n + 3] = (np.float32(acc0), np.float32(acc1),
                                                                  np.float32(acc2), np.float32(acc3))
        ovf_out[m, n], ovf_out[m, n + 1], ovf_out[m, n + 2], ovf_out[m, n + 3] = o0, o1, o2, o3
        inv_out[m, n], inv_out[m, n + 1], inv_out[m, n + 2], inv_out[m, n + 3] = i0, i1, i2, i3
    for n in range(n4, N):
        acc = 0.0
        ovf = False
        inv = False
        for g in range(nseg):
            ks = sa[m, seg_a[g]] + sw[n, seg_w[g]]
            sc = math.ldexp(1.0, ks)
            for k in range(seg[g], seg[g + 1]):
                ca = a[m, k]
                cw = w[n, k]
                p = av[ca] * wv[cw] * sc
                acc, o, i = _fp32_step(acc, p, ass[ca], wss[cw], aex[ca] + wex[cw] + ks, force_int)
                ovf |= o
                inv |= i
        out[m, n] = np.float32(acc)
        ovf_out[m, n] = ovf
        inv_out[m, n] = inv


@nb.njit(cache=True, parallel=True)
def _fp32_gemm(a, w, sa, sw, seg, seg_a, seg_w, av, wv, ass, wss, aex, wex, force_int, out, ovf_out, inv_out):
    for m in nb.prange(a.shape[0]):
        _fp32_row(m, a, w, sa, sw, seg, seg_a, seg_w, av, wv, ass, wss, aex, wex, force_int, out, ovf_out,
                  inv_out)


@nb.njit(cache=True)
def _fp32_gemm_serial(a, w, sa, sw, seg, seg_a, seg_w, av, wv, ass, wss, aex, wex, force_int, out, ovf_out,
                      inv_out):
    for m in range(a.shape[0]):
        _fp32_row(m, a, w, sa, sw, seg, seg_a, seg_w, av, wv, ass, wss, aex, wex, force_int, out, ovf_out,
                  inv_out)


@nb.njit(cache=True)
def _fp32_mac(a, w, clear, av, wv, ass, wss, aex, wex, force_int, out, ovf_out, inv_out):
    n, lanes = a.shape
    acc = 0.0
    ovf = False
    inv = False
    for i in range(n):
        if clear[i]:
            acc = 0.0
            ovf = False
            inv = False
        for j in range(lanes):
            ca = a[i, j]
            cw = w[i, j]
            acc, o, v = _fp32_step(acc, av[ca] * wv[cw], ass[ca], wss[cw], aex[ca] + wex[cw], force_int)
            ovf |= o
            inv |= v
        out[i] = np.float32(acc)
        ovf_out[i] = ovf
        inv_out[i] = inv


# ---------------------------------------------------------------------------
# aligned:K:M


class AlignedActivations(NamedTuple):
    """The alignment unit's output for activations cut into blocks of K along the last axis.

    ``a_int``: int64, the signed M-bit integers, shape of the input; ``q``: int64 per block
    (the power of two of the integer LSB), shape ``(..., nblocks)``; ``emax``: the block's
    largest exponent field; ``special``: bool per block (a NaN/Inf activation in it)."""

    a_int: np.ndarray
    q: np.ndarray
    emax: np.ndarray
    special: np.ndarray


def align_activations(a_codes, a_fmt, block: int, align_bits: int) -> AlignedActivations:
    """The ``aligned:K:M`` alignment of activation codes (last axis cut into blocks of ``block``).

    Per block: ``E_max`` = largest exponent field (zeros and subnormals count as 1),
    ``q = (E_max - bias) - (M - 2)``, ``a_int = sign * min(RNE(|a| / 2**q), 2**(M-1) - 1)``.
    """
    a_fmt = F.get(a_fmt)
    spec = AccSpec.aligned(block, align_bits)
    a = _codes(a_codes, "a_codes", a_fmt)
    t = _tables(a_fmt)
    if t.efield.max() < 0:
        raise AccSpecError(f"{spec} aligns activations by their exponent field; {a_fmt.name} has none "
                           f"(valid activation formats: floats and RF8-family formats)")
    K = a.shape[-1] if a.ndim else 0
    if a.ndim == 0 or K % spec.block:
        raise AccSpecError(f"{spec}: the reduction length {K} is not a whole number of blocks of K={spec.block}")
    shp = a.shape[:-1] + (K // spec.block, spec.block)
    ab = a.reshape(shp)
    ef = t.efield[ab]
    emax = ef.max(axis=-1)
    special = (t.special[ab] != 0).any(axis=-1)
    q = emax - a_fmt.bias - (spec.align_bits - 2)
    sig = np.abs(t.ssig[ab])
    d = t.exp[ab] - q[..., None]
    left = np.clip(d, 0, 62)
    k = np.clip(-d, 1, 62)
    qv = sig >> k
    rem = sig & ((np.int64(1) << k) - 1)
    half = np.int64(1) << (k - 1)
    up = (rem > half) | ((rem == half) & ((qv & 1) == 1))
    mag = np.where(d >= 0, sig << left, qv + up)
    mag = np.minimum(mag, (1 << (spec.align_bits - 1)) - 1)
    mag = np.where(t.special[ab] != 0, 0, mag)
    a_int = np.where(t.ssig[ab] < 0, -mag, mag).reshape(a.shape)
    return AlignedActivations(a_int.astype(np.int64), q.astype(np.int64), emax.astype(np.int64), special)


@lru_cache(maxsize=None)
def _weight_terms(w_fmt: F.Format):
    """Per weight code: signed significand, shift ``exp_w - exp_w_min`` (0 for zeros), exp_w_min."""
    t = _tables(w_fmt)
    fin = (t.special == 0) & (t.ssig != 0)
    emin = int(t.exp[fin].min())
    sh = np.where(fin, t.exp - emin, 0).astype(np.int64)
    wt = np.where(fin, t.ssig << np.minimum(sh, 62), 0)  # used only when the block register is narrow
    for x in (sh, wt):
        x.setflags(write=False)
    return t.ssig, sh, wt, emin


@nb.njit(cache=True, inline="always")
def _reg_add(reg, v, off):
    """reg += v * 2**off (v: |v| < 2**32 signed, off >= 0); limbs hold 32-bit digits plus carries."""
    li = off >> 5
    t = v << (off & 31)
    reg[li] += t & 0xFFFFFFFF
    reg[li + 1] += t >> 32


@nb.njit(cache=True)
def _reg_round(reg, base):
    """RNE float32 of the exact integer in ``reg`` times ``2**base``; clears ``reg``.
    Returns (value, overflowed); an exact zero is +0."""
    nl = reg.size
    carry = np.int64(0)
    for i in range(nl):
        x = reg[i] + carry
        reg[i] = x & 0xFFFFFFFF
        carry = x >> 32
    neg = carry < 0
    if neg:  # two's complement negate of the normalized digits (the value is -(2**(32 nl) - digits))
        c = np.int64(1)
        for i in range(nl):
            x = ((~reg[i]) & 0xFFFFFFFF) + c
            reg[i] = x & 0xFFFFFFFF
            c = x >> 32
    top = -1
    for i in range(nl - 1, -1, -1):
        if reg[i] != 0:
            top = i
            break
    if top < 0:
        return 0.0, False
    T = 32 * top + _bitlen(reg[top])
    if T <= 62:
        z = np.int64(0)
        for i in range(top, -1, -1):
            z = (z << 32) | reg[i]
            reg[i] = 0
        return _round_pack(neg, z, base, False)
    sh = T - 62
    li = sh >> 5
    o = sh & 31
    hi = reg[li + 2] if li + 2 < nl else np.int64(0)
    mid = (hi << 32) | reg[li + 1]
    z = (mid << (32 - o)) | (reg[li] >> o)
    sticky = (reg[li] & ((np.int64(1) << o) - 1)) != 0
    for i in range(li):
        if reg[i] != 0:
            sticky = True
    for i in range(nl):
        reg[i] = 0
    return _round_pack(neg, z, base + sh, sticky)


@nb.njit(cache=True)
def _reg_block_add(acc, reg, base, u):
    """Round ``acc + reg_value * 2**u`` where the block terms sit in ``reg`` relative to ``base``
    (``base = min(u, acc's last-place exponent)``, fixed when the block started)."""
    if acc != 0.0:
        na, ma, ea = _decompose(acc)
        _reg_add(reg, -ma if na else ma, ea - base)
    return _reg_round(reg, base)


@nb.njit(cache=True, inline="always")
def _acc_base(acc, u):
    if acc == 0.0 or acc - acc != 0.0:
        return u
    na, ma, ea = _decompose(acc)
    return ea if ea < u else u


@nb.njit(cache=True, inline="always")
def _block_finish(acc, S, bad, reg, base, u, wide):
    """acc after a block: (acc, overflow, invalid) of this block."""
    if bad or acc - acc != 0.0:  # NaN block, or acc NaN / +-Inf (plus a finite block sum)
        if wide:
            for i in range(reg.size):
                reg[i] = 0
        if bad:
            return np.nan, False, True
        return acc, False, False
    if wide:
        r, o = _reg_block_add(acc, reg, base, u)
        return r, o, False
    if S == 0:
        return acc + 0.0, False, False  # -0 + 0 = +0
    r, o = _add_exact(acc, S < 0, abs(S), u)
    return r, o, False


@nb.njit(cache=True, inline="always")
def _aligned_row(m, a_int, q, abad, w, wbad, sa, sw, K, wss, wsh, wt, emin, wide, nl, out, ovf_out, inv_out):
    nblk = q.shape[1]
    reg = np.zeros(nl if wide else 1, np.int64)
    for n in range(w.shape[0]):
        acc = 0.0
        ovf = False
        inv = False
        for b in range(nblk):
            bad = abad[m, b] or wbad[n, b]
            u = q[m, b] + emin + sa[m, b] + sw[n, b]
            S = np.int64(0)
            base = u
            if bad:
                pass
            elif wide:
                base = _acc_base(acc, u)
                off0 = u - base
                for k in range(b * K, (b + 1) * K):
                    cw = w[n, k]
                    v = a_int[m, k] * wss[cw]
                    if v != 0:
                        _reg_add(reg, v, off0 + wsh[cw])
            else:
                for k in range(b * K, (b + 1) * K):
                    S += a_int[m, k] * wt[w[n, k]]
            acc, o, i = _block_finish(acc, S, bad, reg, base, u, wide)
            ovf |= o
            inv |= i
        out[m, n] = np.float32(acc)
        ovf_out[m, n] = ovf
        inv_out[m, n] = inv


@nb.njit(cache=True, parallel=True)
def _aligned_gemm(a_int, q, abad, w, wbad, sa, sw, K, wss, wsh, wt, emin, wide, nl, out, ovf_out, inv_out):
    for m in nb.prange(a_int.shape[0]):
        _aligned_row(m, a_int, q, abad, w, wbad, sa, sw, K, wss, wsh, wt, emin, wide, nl, out, ovf_out, inv_out)


@nb.njit(cache=True)
def _aligned_gemm_serial(a_int, q, abad, w, wbad, sa, sw, K, wss, wsh, wt, emin, wide, nl, out, ovf_out,
                         inv_out):
    for m in range(a_int.shape[0]):
        _aligned_row(m, a_int, q, abad, w, wbad, sa, sw, K, wss, wsh, wt, emin, wide, nl, out, ovf_out, inv_out)


@nb.njit(cache=True)
def _aligned_mac(a_int, w, clear, blk, last, q, bad, wss, wsh, wt, emin, wide, nl, out, ovf_out, inv_out):
    """Beats with lanes; ``blk[i]`` the block of beat i, ``last[i]`` whether it ends its block."""
    n, lanes = a_int.shape
    reg = np.zeros(nl if wide else 1, np.int64)
    acc = 0.0
    ovf = False
    inv = False
    S = np.int64(0)
    base = np.int64(0)
    started = False
    for i in range(n):
        if clear[i]:
            acc = 0.0
            ovf = False
            inv = False
        b = blk[i]
        u = q[b] + emin
        if not started:
            S = np.int64(0)
            base = _acc_base(acc, u)
            started = True
        if not bad[b]:
            for j in range(lanes):
                cw = w[i, j]
                if wide:
                    v = a_int[i, j] * wss[cw]
                    if v != 0:
                        _reg_add(reg, v, u - base + wsh[cw])
                else:
                    S += a_int[i, j] * wt[cw]
        if last[i]:
            acc, o, v2 = _block_finish(acc, S, bad[b], reg, base, u, wide)
            ovf |= o
            inv |= v2
            started = False
        out[i] = np.float32(acc)
        ovf_out[i] = ovf
        inv_out[i] = inv


# ---------------------------------------------------------------------------
# fast paths (same bits as the sequential kernels above; gemm decides per call which one runs)
#
# fp32: when every dequantized operand (value * 2**scale) and every product of two of them is a
# float32 value (no rounding), the contract's fused add RNE_f32(acc + p) IS the IEEE float32 add of
# the float32 product, so C[m, :] is a k-ordered chain of float32 adds that vectorizes across n.
# Nothing reassociates over k (no fastmath); should LLVM contract ``acc + x * w`` into an FMA, the
# product being exact makes fma(x, w, acc) == RNE(acc + x * w) anyway.  Flags: all operands finite
# and every product a finite float32, the only non-finite state acc can reach is +-Inf by an add
# that overflows (and Inf + finite stays that Inf), so ``overflow`` == the output is +-Inf;
# ``invalid`` needs a NaN operand, Inf * 0 or Inf + -Inf, none of which can occur: it stays 0.
#
# aligned:K:M: every partial sum of a block's integer products a_int * w_int (the weights of one
# output column and block as integers at that block's smallest exponent) is an integer below 2**53
# when K * max|a_int| * max|w_int| <= 2**53, so a float64 BLAS matmul per block is exact in any
# summation order; the block sums then enter the float32 accumulator in block order through the
# TwoSum-checked / exact fused add.  Columns with a block past the bound run the exact register.

#: How many outputs each path computed (fp32: per row of a; aligned: per column of w); tests read it.
PATH_COUNTS: dict[str, int] = {"fp32 fast": 0, "fp32 sequential": 0, "aligned fast": 0, "aligned sequential": 0}
_BIG = 1 << 40  # sentinel exponent for zero / special codes (sums of two stay in int64)
_F32_LO, _F32_HI = -149, 128  # sig * 2**e (sig < 2**24) is a float32 iff e >= -149 and e + bitlen(sig) <= 128


@lru_cache(maxsize=None)
def _f32_terms(fmt: F.Format):
    """Per code: (lo, hi, max bit length, bit length) with the nonzero finite value = ssig * 2**lo,
    |value| < 2**hi (hi = lo + bitlen(sig)); zeros and specials get lo = +BIG, hi = -BIG."""
    t = _tables(fmt)
    nz = (t.special == 0) & (t.ssig != 0)
    bl = np.array([int(abs(int(s))).bit_length() for s in t.ssig], np.int64)
    lo = np.where(nz, t.exp, _BIG).astype(np.int64)
    hi = np.where(nz, t.exp + bl, -_BIG).astype(np.int64)
    for x in (lo, hi, bl):
        x.setflags(write=False)
    return lo, hi, int(bl.max()), bl


@nb.njit(cache=True)
def _dequant32(codes, s, glen, val, lo_t, hi_t, spec_t, out, transpose, lo, hi, bad):
    """value * 2**scale of each code as float32 into ``out`` (``out[k, r]`` if ``transpose``, else
    ``out[r, k]``; exact where the precheck passes), and per row r: the smallest ``lo`` and largest
    ``hi`` (exponent extent, scale included) of its nonzero finite codes, and whether it holds a
    NaN/Inf code."""
    R, K = codes.shape
    for r in range(R):
        lo_r = _BIG
        hi_r = -_BIG
        bad_r = False
        for g in range(s.shape[1]):
            sc = s[r, g]
            p = math.ldexp(1.0, sc)
            for k in range(g * glen, min(K, (g + 1) * glen)):
                c = codes[r, k]
                v = val[c]
                x = np.float32(v * p if v != 0.0 else v)  # a zero stays a signed zero whatever the scale
                if transpose:
                    out[k, r] = x
                else:
                    out[r, k] = x
                if spec_t[c] != 0:
                    bad_r = True
                elif lo_t[c] != _BIG:
                    lo_r = min(lo_r, lo_t[c] + sc)
                    hi_r = max(hi_r, hi_t[c] + sc)
        lo[r] = lo_r
        hi[r] = hi_r
        bad[r] = bad_r


def _dequant(codes, fmt, s, glen, transpose):
    """(float32 values, per-row lo, hi, special) of a code matrix, see :func:`_dequant32`."""
    R, K = codes.shape
    lo_t, hi_t = _f32_terms(fmt)[:2]
    out = np.empty((K, R) if transpose else (R, K), np.float32)
    lo, hi, bad = np.empty(R, np.int64), np.empty(R, np.int64), np.empty(R, np.bool_)
    _dequant32(codes, s, glen, _tables(fmt).val, lo_t, hi_t, _tables(fmt).special, out, transpose, lo, hi, bad)
    return out, lo, hi, bad


def _fp32_fast_rows(a, w, a_fmt, w_fmt, sa, ba, sw, bw):
    """(rows of ``a`` whose fp32 chains the float32 kernel computes exactly, a32, wT), or None when
    no row qualifies (a weight NaN/Inf or out of float32 range, or products wider than 24 bits).
    A row qualifies when it has no NaN/Inf code and every dequantized operand and every product of
    its codes with any weight is a float32 value: lo >= -149 and hi <= 128 for operands and products
    (products: lo_a + lo_w, hi_a + hi_w, with sig_a * sig_w < 2**24)."""
    if _f32_terms(a_fmt)[2] + _f32_terms(w_fmt)[2] > 24:
        return None
    wT, wlo, whi, wbad = _dequant(w, w_fmt, sw, bw, True)
    wlo, whi = int(wlo.min(initial=_BIG)), int(whi.max(initial=-_BIG))
    if wbad.any() or wlo < _F32_LO or whi > _F32_HI:
        return None
    a32, alo, ahi, abad = _dequant(a, a_fmt, sa, ba, False)
    ok = ~abad & (alo >= _F32_LO) & (ahi <= _F32_HI) & (alo + wlo >= _F32_LO) & (ahi + whi <= _F32_HI)
    return (ok, a32, wT) if ok.any() else None


_TILE_N = 512  # columns per tile: 4 rows x 512 float32 accumulators stay in L1


@nb.njit(cache=True, inline="always")
def _fp32_fast_block(a32, wT, rows, i0, i1, out):
    """Rows ``i0 .. i1-1`` of ``a32`` (at most 4; output rows ``rows[i]``), tiles of columns; per
    output the adds run in k order."""
    K, N = wT.shape
    R = i1 - i0
    acc = np.empty((4, _TILE_N), np.float32)
    for n0 in range(0, N, _TILE_N):
        n1 = min(N, n0 + _TILE_N)
        w_ = n1 - n0
        for r in range(R):
            for j in range(w_):
                acc[r, j] = np.float32(0.0)  # +0: the chain starts at +0
        for k in range(K):
            wk = wT[k, n0:n1]
            for r in range(R):
                x = a32[rows[i0 + r], k]
                ar = acc[r]
                for j in range(w_):
                    ar[j] = ar[j] + x * wk[j]
        for r in range(R):
            m = rows[i0 + r]
            for j in range(w_):
                out[m, n0 + j] = acc[r, j]


@nb.njit(cache=True, parallel=True)
def _fp32_fast(a32, wT, rows, out):
    nb4 = (rows.size + 3) // 4
    for b in nb.prange(nb4):
        _fp32_fast_block(a32, wT, rows, 4 * b, min(rows.size, 4 * b + 4), out)


@nb.njit(cache=True)
def _fp32_fast_serial(a32, wT, rows, out):
    for b in range((rows.size + 3) // 4):
        _fp32_fast_block(a32, wT, rows, 4 * b, min(rows.size, 4 * b + 4), out)


_P2_LO, _P2_HI = -1074, 960  # |S| <= 2**53: S * 2**u is a float64 value (subnormal included), below 2**1014
_P2 = np.ldexp(1.0, np.arange(_P2_LO, _P2_HI + 1))


@nb.njit(cache=True, inline="always")
def _block_add(acc, S, u):
    """acc (finite float32 value or +-Inf, in a float64) plus the exact block sum ``S * 2**u``
    (``S`` an integer-valued float64, |S| <= 2**53): (acc, overflow) as :func:`_block_finish`."""
    if acc - acc != 0.0:  # +-Inf stays
        return acc, False
    if S == 0.0:
        return acc + 0.0, False  # -0 + 0 = +0
    if _P2_LO <= u <= _P2_HI:  # S * 2**u exact in float64: TwoSum decides whether one float32 rounding is exact
        p = S * _P2[u - _P2_LO]
        s = acc + p
        bb = s - acc
        if (acc - (s - bb)) + (p - bb) == 0.0:
            r = np.float64(np.float32(s))
            return r, r - r != 0.0
    v = np.int64(S)
    return _add_exact(acc, v < 0, abs(v), u)


@nb.njit(cache=True, inline="always")
def _aligned_fast_row(m, m0, n0, S, q, sa, swT, pw, wrange, emin, out):
    """Row m: the block sums ``S[b, m - m0, :]`` (outputs n0 .. n0 + S.shape[2] - 1; ``swT``,
    ``pw``, ``wrange`` of these columns) enter each output's accumulator in block order.
    Per block, a branch-free pass over n (vectorizable) does the TwoSum-checked add with the block
    scale ``2**(u + swT[b, n])`` applied as two exact power-of-two products ``pw[b, n] * 2**u``
    (exact when ``wrange[b]`` and ``u`` keep both in float64's range, else the whole block of the row
    reruns :func:`_block_add` per output); outputs whose add it cannot decide (inexact sum, +-Inf
    accumulator) rerun :func:`_block_add`.  Overflow is left to the caller: with finite operands the
    accumulator becomes +-Inf only by an overflowing add and stays so, so overflow == output is +-Inf."""
    nblk, _, N = S.shape
    i = m - m0
    acc = np.zeros(N, np.float64)
    new = np.empty(N, np.float64)
    redo = np.empty(N, np.bool_)
    for b in range(nblk):
        u = emin + sa[m, b] + q[m, b]
        if wrange[b, 0] + u >= _P2_LO and wrange[b, 1] + u <= _P2_HI and _P2_LO <= u <= _P2_HI \
                and wrange[b, 0] >= _P2_LO and wrange[b, 1] <= _P2_HI:
            pa = _P2[u - _P2_LO]
            nred = 0
            for n in range(N):
                x = acc[n]
                p = ((S[b, i, n] + 0.0) * pw[b, n]) * pa  # + 0.0: an exact zero block sum is +0
                s = x + p
                bb = s - x
                err = (x - (s - bb)) + (p - bb)  # NaN when acc is +-Inf
                new[n] = np.float64(np.float32(s))
                e = err != 0.0
                redo[n] = e
                nred += e
            if nred == 0:
                acc, new = new, acc
                continue
            for n in range(N):
                if redo[n]:
                    new[n] = _block_add(acc[n], S[b, i, n], u + swT[b, n])[0]
            acc, new = new, acc
        else:
            for n in range(N):
                acc[n] = _block_add(acc[n], S[b, i, n], u + swT[b, n])[0]
    for n in range(N):
        out[m, n0 + n] = np.float32(acc[n])


@nb.njit(cache=True, parallel=True)
def _aligned_fast(m0, n0, S, q, sa, swT, pw, wrange, emin, out):
    for i in nb.prange(S.shape[1]):
        _aligned_fast_row(m0 + i, m0, n0, S, q, sa, swT, pw, wrange, emin, out)


@nb.njit(cache=True)
def _aligned_fast_serial(m0, n0, S, q, sa, swT, pw, wrange, emin, out):
    for i in range(S.shape[1]):
        _aligned_fast_row(m0 + i, m0, n0, S, q, sa, swT, pw, wrange, emin, out)


@nb.njit(cache=True)
def _align_blas(a, K, M_bits, bias, ssig, exp, efield, special, ab, q):
    """:func:`align_activations` for the BLAS path: a_int of row m, block b into ``ab[b, m, :]``
    (float64), ``q[m, b]``; returns (max |a_int|, whether a NaN/Inf code was seen)."""
    R, Kd = a.shape
    lim = (np.int64(1) << (M_bits - 1)) - 1
    amax = np.int64(0)
    bad = False
    for m in range(R):
        for b in range(Kd // K):
            em = np.int64(1)
            for k in range(b * K, (b + 1) * K):
                c = a[m, k]
                em = max(em, efield[c])
                bad |= special[c] != 0
            qq = em - bias - (M_bits - 2)
            q[m, b] = qq
            for k in range(K):
                c = a[m, b * K + k]
                mag = abs(ssig[c])
                d = exp[c] - qq
                if d >= 0:
                    v = mag << d  # < 2**(M-1): |a| < 2**(E_max - bias + 1)
                elif d < -62:
                    v = np.int64(0)
                else:
                    sh = -d
                    v = mag >> sh
                    rem = mag & ((np.int64(1) << sh) - 1)
                    half = np.int64(1) << (sh - 1)
                    if rem > half or (rem == half and (v & 1) == 1):
                        v += 1
                v = min(v, lim)
                amax = max(amax, v)
                ab[b, m, k] = -v if ssig[c] < 0 else v
    return amax, bad


_LO32 = np.int32(30000)  # int32 sentinels of _weight_tables (zero / special codes)


@lru_cache(maxsize=None)
def _weight_tables(fmt: F.Format):
    """Compact per-code tables for :func:`_weight_blocks` (a bf16 table set is 16 bytes a code):
    lo (int32 exponent of the nonzero finite value, +30000 otherwise), top (lo + significand bit
    length; -30000 for zeros, +30000 for NaN/Inf so that a block holding one fails the bound) and
    the value (float64, 0 for zeros and specials)."""
    t = _tables(fmt)
    lo, hi, _, _ = _f32_terms(fmt)
    nz = lo != _BIG
    assert not nz.any() or (lo[nz].min() > -int(_LO32) and hi[nz].max() < int(_LO32))  # every format: |exp| < 2000
    lo32 = np.where(nz, lo, int(_LO32)).astype(np.int32)
    top32 = np.where(nz, hi, np.where(t.special != 0, int(_LO32), -int(_LO32))).astype(np.int32)
    val = np.where(nz, t.val, 0.0).astype(np.float64)
    # mask: when lo and top depend only on the magnitude bits m = code & mask (sign bit on top) and
    # do not decrease with m over m >= 1 (zero only at m = 0, NaN/Inf at the top), a block's
    # min(lo) is lo[smallest nonzero m] and its max(top) is top[largest m]: _weight_blocks then
    # reduces magnitudes (integer min/max, vectorizable) instead of table lookups.  Otherwise 0.
    n = len(lo32)
    mask = n // 2 - 1
    m = np.arange(n) & mask
    mono = (n >= 4 and bool(np.array_equal(lo32, lo32[m]) and np.array_equal(top32, top32[m]))
            and lo32[0] == _LO32 and top32[0] == -_LO32 and bool((top32[1:mask + 1] != -_LO32).all())
            and bool((np.diff(lo32[1:mask + 1].astype(np.int64)) >= 0).all())
            and bool((np.diff(top32[1:mask + 1].astype(np.int64)) >= 0).all()))
    out = (lo32, top32, val)
    for x in out:
        x.setflags(write=False)
    return out + (np.int64(mask if mono else 0),)


@nb.njit(cache=True)
def _weight_blocks(w, n0, K, kam, lo_t, top_t, val, mask, swb, wb, swT, pw, wrange, ok):
    """Weight rows n = n0 .. n0 + wb.shape[1] - 1 (output columns), block b: the weights as
    integers at the block's smallest exponent ``lo`` into ``wb[b, n - n0, :]`` (float64
    ``value * 2**-lo``); ``ok[n]``: every block of row n keeps ``K * max|a_int| * |w_int|``
    (``kam * 2**(top - lo)``, top = largest exponent + significand bits) within 2**53, so each
    integer has at most 53 bits and every partial sum of a block is an integer below 2**53 (a NaN/Inf
    code has top = +30000: its block fails, and a failing block's integers are 0, never read).
    Also the block's exponent with the weight scale ``swT[b, n - n0] = swb[n, b] + lo``, ``pw`` =
    2**swT (clamped into the table) and per block (min, max) of swT in ``wrange``.
    Tables: :func:`_weight_tables`."""
    nblk, Nc, _ = wb.shape
    top_i = _P2_HI - _P2_LO
    for b in range(nblk):
        wrange[b, 0] = _BIG
        wrange[b, 1] = -_BIG
    for j in range(Nc):
        n = n0 + j
        okn = True
        for b in range(nblk):
            if mask:  # tables monotone in the magnitude (see _weight_tables)
                mn = np.int64(1 << 40)
                mx = np.int64(0)
                for k in range(b * K, (b + 1) * K):
                    mg = np.int64(w[n, k]) & mask
                    mx = max(mx, mg)
                    mn = min(mn, mg if mg != 0 else np.int64(1 << 40))
                lo = lo_t[mn] if mn != (1 << 40) else _LO32
                top = top_t[mx]
            else:
                lo = _LO32
                top = -_LO32
                for k in range(b * K, (b + 1) * K):
                    c = w[n, k]
                    lo = min(lo, lo_t[c])
                    top = max(top, top_t[c])
            if lo == _LO32:  # all zeros (or zeros and NaN/Inf: top decides)
                lo = np.int32(0)
                top = max(top, np.int32(0))
            d = np.int64(top) - np.int64(lo)
            okb = d <= 53 and kam <= (np.int64(1) << (53 - d))
            okn &= okb
            if okb:
                sc = _P2[min(max(-np.int64(lo) - _P2_LO, 0), top_i)]  # lo is well inside the table
                for k in range(K):
                    wb[b, j, k] = val[w[n, b * K + k]] * sc
            else:
                for k in range(K):
                    wb[b, j, k] = 0.0
            e = swb[n, b] + lo
            swT[b, j] = e
            pw[b, j] = _P2[min(max(e - _P2_LO, 0), top_i)]
            wrange[b, 0] = min(wrange[b, 0], e)
            wrange[b, 1] = max(wrange[b, 1], e)
        ok[n] = okn


# ---------------------------------------------------------------------------
# Python API


def _bits(f32: np.ndarray) -> np.ndarray:
    b = f32.view(np.uint32).copy()
    b[np.isnan(f32)] = CANONICAL_NAN
    return b


def _fp32_tables(a_fmt, w_fmt):
    ta, tw = _tables(a_fmt), _tables(w_fmt)
    return ta.val, tw.val, ta.ssig, tw.ssig, ta.exp, tw.exp


def _check_float_acc(acc: AccSpec, a_fmt, w_fmt):
    if acc.kind == "aligned" and _tables(a_fmt).efield.max() < 0:
        raise AccSpecError(f"{acc} aligns activations by their exponent field; activation format {a_fmt.name} "
                           f"has none (valid: float formats such as bf16, fp16, e4m3, e5m2, and rf8)")


def _register_limbs(acc: AccSpec, w_fmt, q: np.ndarray, smin: int, smax: int, force_wide=False):
    """(wide, limbs): whether the block register needs limbs (width > 61 bits) and how many."""
    width = acc.block_width(w_fmt)
    if width <= 61 and not force_wide:
        return False, 1
    _, sh, _, emin = _weight_terms(w_fmt)
    if q.size:
        umin = int(q.min()) + emin + smin
        umax = int(q.max()) + emin + smax
    else:
        umin = umax = 0
    off0 = max(0, umax + 149)  # u - min(u, ea) with ea >= -149
    offa = max(0, 104 - umin)  # ea - min(u, ea) with ea <= 104
    bits = max(off0 + int(sh.max()) + 32 + (acc.block * 1).bit_length() + 32, offa + 24 + 32) + 96
    return True, bits // 32 + 3


def mac(a_codes, w_codes, clear, a_fmt, w_fmt, acc: AccSpec, force_int: bool = False,
        force_wide: bool = False) -> Fp32Trace:
    """fp32 / aligned:K:M MAC trace (see :func:`rf8sim.golden.mac`)."""
    a_fmt, w_fmt = F.get(a_fmt), _weight_format(w_fmt)
    _check_float_acc(acc, a_fmt, w_fmt)
    a = _codes(a_codes, "a_codes", a_fmt)
    w = _codes(w_codes, "w_codes", w_fmt)
    if a.shape != w.shape:
        raise ShapeError(f"a_codes and w_codes must have the same shape, got {a.shape} and {w.shape}")
    if a.ndim not in (1, 2):
        raise ShapeError(f"codes must be 1-D (beats) or 2-D (beats, lanes), got shape {a.shape}")
    if a.ndim == 1:
        a, w = a[:, None], w[:, None]
    n, lanes = a.shape
    if lanes < 1:
        raise ShapeError("at least one lane is needed")
    clear = clear_flags(clear, n)
    a, w = np.ascontiguousarray(a), np.ascontiguousarray(w)
    out = np.empty(n, np.float32)
    ovf = np.empty(n, np.bool_)
    inv = np.empty(n, np.bool_)
    if acc.kind == "fp32":
        if n:
            _fp32_mac(a, w, clear, *_fp32_tables(a_fmt, w_fmt), bool(force_int), out, ovf, inv)
        return Fp32Trace(_bits(out), ovf, inv)
    K = acc.block
    if K % lanes:
        raise AccSpecError(f"{acc}: K={K} must be a multiple of lanes={lanes} (a block is K/lanes beats)")
    bpb = K // lanes  # beats per block
    starts = np.flatnonzero(clear).tolist()
    if not starts or starts[0] != 0:
        starts = [0] + starts
    bounds = starts + [n]
    blk = np.empty(n, np.int64)
    last = np.zeros(n, np.bool_)
    order = []  # beat indices of each block
    for s0, s1 in zip(bounds[:-1], bounds[1:]):
        if (s1 - s0) % bpb:
            raise AccSpecError(
                f"{acc} with {lanes} lane(s): the segment of beats {s0}..{s1 - 1} (from a clear to the next clear "
                f"or the end) has {s1 - s0} beats, not a whole number of blocks of K/lanes = {bpb} beats")
        for b0 in range(s0, s1, bpb):
            blk[b0:b0 + bpb] = len(order)
            last[b0 + bpb - 1] = True
            order.append(b0)
    nblk = len(order)
    # the activations of each block, in beat-major lane order, as rows of K
    ab = a.reshape(-1)[:nblk * K].reshape(nblk, K) if n else np.zeros((0, K), a.dtype)
    al = align_activations(ab, a_fmt, K, acc.align_bits)
    a_int = al.a_int.reshape(n, lanes)
    q = al.q.reshape(nblk)
    tw = _tables(w_fmt)
    wbad = (tw.special[w] != 0).reshape(nblk, K).any(axis=1) if n else np.zeros(0, bool)
    bad = np.ascontiguousarray(al.special.reshape(nblk) | wbad)
    wss, wsh, wt, emin = _weight_terms(w_fmt)
    wide, nl = _register_limbs(acc, w_fmt, q, 0, 0, force_wide)
    if n:
        _aligned_mac(np.ascontiguousarray(a_int), w, clear, blk, last, np.ascontiguousarray(q), bad, wss, wsh, wt,
                     np.int64(emin), wide, nl, out, ovf, inv)
    return Fp32Trace(_bits(out), ovf, inv)


def gemm(a_codes, w_codes, a_fmt, w_fmt, acc: AccSpec, a_scale_exp=None, w_scale_exp=None,
         a_granularity="tensor", w_granularity="tensor", block=32, specials="error",
         force_int: bool = False, force_wide: bool = False, method: str = "auto") -> Fp32Result:
    """fp32 / aligned:K:M GEMM (see :func:`rf8sim.golden.gemm`).

    ``method="auto"`` runs the fast paths (float32 chains / float64 BLAS block sums) where a
    per-call precheck proves them exact and the sequential kernels elsewhere; ``"sequential"``
    (and ``force_int`` / ``force_wide``) always runs the sequential kernels.  Same bits either way;
    :data:`PATH_COUNTS` counts which path ran."""
    if method not in ("auto", "sequential"):
        raise ShapeError(f"method must be 'auto' or 'sequential', got {method!r}")
    slow_only = method == "sequential" or force_int or force_wide
    a_fmt, w_fmt = F.get(a_fmt), _weight_format(w_fmt)
    _check_float_acc(acc, a_fmt, w_fmt)
    if specials not in ("error", "propagate"):
        raise ShapeError(f"specials must be 'error' or 'propagate', got {specials!r}")
    a = _codes(a_codes, "a_codes", a_fmt)
    w = _codes(w_codes, "w_codes", w_fmt)
    if a.ndim != 2 or w.ndim != 2:
        raise ShapeError(f"gemm needs 2-D code matrices a (M, K) and w (N, K), got {a.shape} and {w.shape}")
    if a.shape[1] != w.shape[1]:
        raise ShapeError(f"inner dimensions differ: a is {a.shape}, w is {w.shape} (w is (N, K))")
    M, Kd = a.shape
    N = w.shape[0]
    sa, ba = _scale_rows(a_scale_exp, M, Kd, a_granularity, block, "a")
    sw, bw = _scale_rows(w_scale_exp, N, Kd, w_granularity, block, "w")
    smax = (int(sa.max()) if sa.size else 0) + (int(sw.max()) if sw.size else 0)
    smin = (int(sa.min()) if sa.size else 0) + (int(sw.min()) if sw.size else 0)
    # No float64 range check is needed: every format lies inside float32 (2**-149..2**128, FormatError)
    # and every scale exponent inside E8M0 (-127..127, ScaleError above), so products and their block
    # sums stay within 2**-552..2**590, exact in float64 and int64.
    out = np.zeros((M, N), np.float32)
    ovf = np.zeros((M, N), np.bool_)
    inv = np.zeros((M, N), np.bool_)
    par = M > 1 and M * N * max(Kd, 1) >= PARALLEL_MIN
    if acc.kind == "fp32":
        if M * N:
            fast = None if slow_only or Kd == 0 else _fp32_fast_rows(a, w, a_fmt, w_fmt, sa, ba, sw, bw)
            slow = np.arange(M) if fast is None else np.flatnonzero(~fast[0])
            if fast is not None:
                ok, a32, wT = fast
                rows = np.flatnonzero(ok)
                (_fp32_fast if par else _fp32_fast_serial)(a32, wT, rows, out)
                ovf[rows] = np.isinf(out[rows])  # invalid stays False (see "fast paths")
                PATH_COUNTS["fp32 fast"] += rows.size * N
            if slow.size:
                seg, seg_a, seg_w = _segments(Kd, ba, bw)
                kern = _fp32_gemm if par else _fp32_gemm_serial
                o2, f2, i2 = out[slow], ovf[slow], inv[slow]
                kern(np.ascontiguousarray(a[slow]), w, np.ascontiguousarray(sa[slow]), sw, seg, seg_a, seg_w,
                     *_fp32_tables(a_fmt, w_fmt), bool(force_int), o2, f2, i2)
                out[slow], ovf[slow], inv[slow] = o2, f2, i2
                PATH_COUNTS["fp32 sequential"] += slow.size * N
        return Fp32Result(_bits(out), ovf, inv)
    K = acc.block
    if Kd % K:
        raise AccSpecError(f"{acc}: K={K} must divide the reduction length (row length) {Kd}")
    nblk = Kd // K
    for s, blk_, what in ((sa, ba, "a"), (sw, bw, "w")):
        if s.shape[1] > 1 and blk_ % K:
            raise AccSpecError(f"{acc}: {what} scale blocks of {blk_} must be a multiple of K={K} (the scale "
                               f"must be constant within each alignment block)")
    al = fa = None
    if M * N and not slow_only:  # the alignment straight into the BLAS layout; NaN/Inf: the general path
        ab = np.empty((nblk, M, K), np.float64)
        q = np.empty((M, nblk), np.int64)
        ta = _tables(a_fmt)
        amax, a_special = _align_blas(a, K, acc.align_bits, a_fmt.bias, ta.ssig, ta.exp, ta.efield, ta.special, ab, q)
        fa = None if a_special else (ab, q, int(amax))
    tw = _tables(w_fmt)
    def per_block(s, blk_):
        if s.shape[1] == 1:
            return np.ascontiguousarray(np.repeat(s, nblk, axis=1))
        return np.ascontiguousarray(s[:, (np.arange(nblk) * K) // blk_])

    sab, swb = per_block(sa, ba), per_block(sw, bw)
    cols = np.arange(N)  # the output columns left for the sequential kernel
    if fa is not None:  # the BLAS path, in tiles of nc columns x step rows so that the weight
        ab, q, amax = fa  # integers and the block sums stay in cache (~1 MB)
        okn = np.empty(N, np.bool_)
        lo_t, top_t, val_t, mask = _weight_tables(w_fmt)
        kam = np.int64(K * amax)
        nc = min(N, 128)
        step = max(1, (1 << 17) // (nc * nblk))
        kern = _aligned_fast if par else _aligned_fast_serial
        wrange = np.empty((nblk, 2), np.int64)
        for n0 in range(0, N, nc):
            c_ = min(nc, N - n0)
            if n0 == 0 or c_ != nc:
                wb = np.empty((nblk, c_, K), np.float64)
                swT = np.empty((nblk, c_), np.int64)
                pw = np.empty((nblk, c_), np.float64)
            _weight_blocks(w, n0, K, kam, lo_t, top_t, val_t, mask, swb, wb, swT, pw, wrange, okn)
            wbT = wb.transpose(0, 2, 1)  # (block, K, n) view of (block, n, K): BLAS takes it
            for m0 in range(0, M, step):
                S = np.matmul(ab[:, m0:m0 + step], wbT)  # exact: every partial sum an integer < 2**53
                kern(m0, n0, S, q, sab, swT, pw, wrange, np.int64(0), out)  # columns failing okn: rerun below
        if okn.all() or not (tw.special[w[~okn]] != 0).any():
            ovf[:] = np.isinf(out)  # finite operands: overflow == the output is +-Inf (see _aligned_fast_row)
            cols = np.flatnonzero(~okn)
            PATH_COUNTS["aligned fast"] += M * (N - cols.size)
        else:  # a NaN/Inf weight: the general path (all columns)
            fa = None
            out[:] = 0.0
    if fa is None:
        al = align_activations(a, a_fmt, K, acc.align_bits)
        abad = al.special.reshape(M, nblk)
        wbad = (tw.special[w] != 0).reshape(N, nblk, K).any(axis=2) if N else np.zeros((0, nblk), bool)
    else:
        abad = np.zeros((M, nblk), np.bool_)
        wbad = np.zeros((N, nblk), np.bool_)
    if specials == "error" and (abad.any() or wbad.any()):
        if abad.any():
            m, b = np.argwhere(abad)[0]
            where = f"activation row {m}, block {b} (k = {b * K}..{b * K + K - 1})"
        else:
            n_, b = np.argwhere(wbad)[0]
            where = f"weight row {n_}, block {b} (k = {b * K}..{b * K + K - 1})"
        raise AccSpecError(f"{acc}: a NaN or Inf operand in {where}; an alignment block needs finite "
                           f"activations and weights (pass specials='propagate' for the contract's NaN + "
                           f"invalid result)")
    if M * cols.size == 0:
        return Fp32Result(_bits(out), ovf, inv)
    if al is None:
        al = align_activations(a, a_fmt, K, acc.align_bits)
    wss, wsh, wt, emin = _weight_terms(w_fmt)
    wide, nl = _register_limbs(acc, w_fmt, al.q, smin, smax, force_wide)
    kern = _aligned_gemm if par else _aligned_gemm_serial
    if cols.size == N:
        kern(np.ascontiguousarray(al.a_int), np.ascontiguousarray(al.q), np.ascontiguousarray(abad), w,
             np.ascontiguousarray(wbad), sab, swb, K, wss, wsh, wt, np.int64(emin), wide, nl, out, ovf, inv)
    else:
        o2, f2, i2 = out[:, cols], ovf[:, cols], inv[:, cols]
        kern(np.ascontiguousarray(al.a_int), np.ascontiguousarray(al.q), np.ascontiguousarray(abad),
             np.ascontiguousarray(w[cols]), np.ascontiguousarray(wbad[cols]), sab, np.ascontiguousarray(swb[cols]),
             K, wss, wsh, wt, np.int64(emin), wide, nl, o2, f2, i2)
        out[:, cols], ovf[:, cols], inv[:, cols] = o2, f2, i2
    PATH_COUNTS["aligned sequential"] += M * cols.size
    return Fp32Result(_bits(out), ovf, inv)
