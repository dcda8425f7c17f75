"""Encode, decode and power-of-two scaling: the bit-exact reference conversions.

``encode`` works on float32 bit patterns with integer operations only, so every
decision (midpoints, ties, the exact ``paper`` threshold ``|x| >= sqrt(2) * 2**f``)
is exact.

Input handling (normative, see docs/formats.md):

* float32 is the native input.
* float16, bfloat16 and the ml_dtypes float8 types convert to float32 exactly and
  are accepted as they are.
* float64 and integer inputs (including Python scalars and lists) are accepted only
  when every value is exactly representable in float32; otherwise a ``DTypeError``
  names how many are not and where the first one is.  We refuse rather than
  round twice (float64 -> float32 -> format): cast explicitly if that is what you
  want.
* bool, complex and object inputs are refused.

``nearest`` is one table lookup on the top bits of ``|x|``'s float32 pattern (for the
8-bit formats and bf16: sign, exponent and 7 mantissa bits select a bucket; fp16: 10) plus
one comparison with the single rounding threshold inside that bucket.  Every threshold of
those formats (midpoints between neighbours, the overflow point) has at most 7 (fp16: 10)
significant mantissa bits, so a bucket holds at most one of them and it is compared exactly.
The 8-bit formats index the whole table (``_bucket8_table``, 2**15 rows, constant shift and sign:
the fastest form measured); bf16 and fp16 store only the buckets between the first and the last
threshold (``_bucket_table``) and clamp the index; finer user formats scan the sorted thresholds
inside crowded buckets.
"""

from __future__ import annotations

from rf8sim.errors import InputError, RF8SimError

from functools import lru_cache

import numba as nb
import numpy as np

from .. import formats as F
from ..formats import FormatError
from .. import scales as S
from ..scales import GRANULARITIES, scale_exponents, scale_shape  # noqa: F401  (re-exported)

__all__ = [
    "encode",
    "decode",
    "quantize",
    "dequantize",
    "scale_exponents",
    "scale_shape",
    "DTypeError",
    "EncodeError",
    "GRANULARITIES",
    "as_float32",
    "PARALLEL_MIN",
]


#: Arrays smaller than this run the serial twin of a kernel: launching a parallel region costs
#: tens of microseconds on an idle machine and milliseconds on a busy one.
PARALLEL_MIN = 1 << 16


class DTypeError(RF8SimError, TypeError, ValueError):
    """An input of a dtype (or with values) that an rf8sim function cannot take exactly."""


class EncodeError(RF8SimError, ValueError):
    """Values a format cannot encode (NaN without a NaN code, overflow with saturate=False)."""


# ---------------------------------------------------------------------------
# input conversion


@lru_cache(maxsize=None)
def _ml_exact_types():
    import ml_dtypes

    names = ("bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3", "float8_e3m4",
             "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e4m3b11fnuz", "float8_e8m0fnu",
             "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn")
    return tuple(np.dtype(getattr(ml_dtypes, n)) for n in names if hasattr(ml_dtypes, n))


def _c(a: np.ndarray) -> np.ndarray:
    """C-contiguous view or copy that keeps 0-d arrays 0-d (np.ascontiguousarray does not)."""
    return a if a.flags.c_contiguous else a.copy(order="C")


def as_float32(x, what: str = "x") -> np.ndarray:
    """Convert ``x`` to a C-contiguous float32 array without any rounding (or raise DTypeError)."""
    if isinstance(x, np.ma.MaskedArray):
        raise DTypeError(f"{what}: a masked array's masked values would be encoded too; "
                         "pass x.filled(...) or x.compressed()")
    if isinstance(x, np.ndarray):
        a = x if type(x) is np.ndarray else np.asarray(x)  # np.matrix and other subclasses: a plain array
    else:
        try:
            a = np.asarray(x)
        except Exception as e:  # pragma: no cover - exotic objects
            raise DTypeError(f"{what}: cannot convert {type(x).__name__} to an array ({e})") from None
    dt = a.dtype
    if dt.kind == "f" and not dt.isnative:  # byte-swapped input: same values, native order
        a = a.astype(dt.newbyteorder("="))
        dt = a.dtype
    if dt == np.float32:
        return _c(a)
    if dt == np.float16 or dt in _ml_exact_types():
        return _c(a.astype(np.float32))
    if dt == np.float64 or dt.kind in "iu":
        with np.errstate(over="ignore", invalid="ignore"):
            y = a.astype(np.float32)
        if dt.kind == "f":
            same = (y.astype(np.float64) == a) | (np.isnan(a) & np.isnan(y))
        else:  # integers: convert back (only where that cannot overflow) and compare exactly
            lim = 2.0 ** (8 * dt.itemsize - (1 if dt.kind == "i" else 0))
            ok = np.abs(y.astype(np.float64)) < lim
            back = np.where(ok, y, 0).astype(dt)
            same = ok & (back == a)
        bad = ~np.asarray(same)
        nbad = int(bad.sum())
        if nbad:
            first = np.unravel_index(int(np.flatnonzero(bad.ravel())[0]), a.shape) if a.ndim else ()
            raise DTypeError(
                f"{what}: {nbad} of {a.size} {dt} values are not exactly representable in float32 "
                f"(first at index {tuple(int(i) for i in first)}: {a[first]!r}); rf8sim encodes float32 "
                f"inputs exactly and refuses to round twice - convert explicitly with .astype(np.float32)")
        return _c(y)
    raise DTypeError(f"{what}: dtype {dt} is not supported; give float32 (or float16/bfloat16/float8, "
                     f"or float64/integers exactly representable in float32)")


def as_codes(codes, what: str = "codes", fmt=None) -> np.ndarray:
    """``codes`` as a C-contiguous array of ``fmt.code_dtype`` (uint8 when ``fmt`` is None).

    The dtype must match exactly (a uint8 array for a 16-bit format, or a uint16 array for an
    8-bit one, is a :class:`DTypeError` naming the valid dtype), and codes of formats narrower
    than their dtype (e.g. a 6-bit format in uint8) must be below ``fmt.n_codes``.
    """
    if isinstance(codes, np.ma.MaskedArray):
        raise DTypeError(f"{what}: masked arrays are not supported; pass codes.filled(...)")
    if type(codes) is not np.ndarray:  # lists, np.matrix and other subclasses: a plain array
        codes = np.asarray(codes)
    if fmt is None:
        if codes.dtype != np.uint8:
            raise DTypeError(f"{what} must be a uint8 array, got dtype {codes.dtype}")
        return _c(codes)
    want = fmt.code_dtype
    if codes.dtype != want:
        raise DTypeError(f"{what}: format {fmt.name} has {fmt.code_bits}-bit codes, which must be a {want} "
                         f"array; got dtype {codes.dtype}")
    if fmt.n_codes < (1 << (8 * want.itemsize)) and codes.size and int(codes.max()) >= fmt.n_codes:
        nbad = int((codes >= fmt.n_codes).sum())
        raise DTypeError(f"{what}: {nbad} code(s) >= {fmt.n_codes}; format {fmt.name} has codes "
                         f"0..{fmt.n_codes - 1} only")
    return _c(codes)


def _check_rounding(fmt: F.Format, rounding: str) -> str:
    if not isinstance(rounding, str) or rounding not in F.ROUNDINGS:
        raise FormatError(f"unknown rounding {rounding!r}; valid: {', '.join(F.ROUNDINGS)}")
    if rounding not in fmt.roundings:
        raise FormatError(f"format {fmt.name} supports rounding {', '.join(fmt.roundings)} only, "
                          f"not {rounding!r}: {F.rounding_unsupported(fmt, rounding)}")
    return rounding


def _first_index(shape, flat: int) -> tuple:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


# ---------------------------------------------------------------------------
# Every element kernel below comes as a ``parallel=True`` loop and a serial twin of the same eight lines
# (small inputs skip the parallel launch).  The twins are written out on purpose: a factory returning both
# loops around one element function would be a Numba closure, and closures miss the on-disk cache (checked
# with Numba 0.68: every process compiles them again, ~3 s of first-call time per kernel pair).

# ---------------------------------------------------------------------------
# nearest: sorted thresholds over the float32 magnitude pattern, found through a bucket index

_ERR_OVF = -2  # table marker: overflow with saturate=False and no code for it
_NAN_OUT = -3  # table marker: write the format's canonical NaN code (unsigned)


def _f32bits(v: float) -> int:
    return int(np.array(v, np.float32).view(np.uint32))


def _sign_magnitude(fmt: F.Format) -> None:
    """Check the layout ``encode`` relies on: code | sign_bit is the negation of a positive code
    (``negation == "sign"``), or the two's complement code is (``"twos"``, posits)."""
    if fmt.kind == "int":
        raise FormatError(f"{fmt.name}: not a sign-magnitude format")
    h = fmt.n_codes >> 1
    pos = np.arange(h)
    neg = pos + h if fmt.negation == "sign" else (-pos) & (fmt.n_codes - 1)
    fin = fmt.special[pos] == F.SPECIAL_FINITE
    bad = (fmt.special[pos] != fmt.special[neg]) | (fin & (fmt.values[neg] != -fmt.values[pos]))
    if fmt.negation == "twos":
        bad[0] = False  # zero is its own negation
    if bad.any():
        c = int(np.flatnonzero(bad)[0])
        raise FormatError(f"{fmt.name}: code 0x{int(neg[c]):X} is not the negation of 0x{c:X}; "
                          f"encode supports sign-magnitude and two's complement (posit) layouts only")


@lru_cache(maxsize=None)
def _twos_remap(fmt: F.Format) -> np.ndarray:
    """Sign-magnitude code -> the format's code, for two's complement (posit) layouts."""
    n = fmt.n_codes
    h = n >> 1
    c = np.arange(n, dtype=np.int64)
    r = np.where(c < h, c, (-(c - h)) & (n - 1)).astype(fmt.code_dtype)
    r.setflags(write=False)
    return r


@lru_cache(maxsize=None)
def _nearest_table(fmt: F.Format, saturate: bool):
    """(tab, thr, region, tie, shift): the rounding thresholds of ``nearest`` for positive inputs.

    ``thr`` (int64, ascending) are the float32 patterns of the midpoints between neighbouring
    magnitudes (plus the overflow point when not saturating); an input magnitude pattern ``a``
    with ``j`` thresholds below it encodes to ``tie[j]`` if ``a == thr[j]``, else ``region[j]``
    (positive codes, or the markers _ERR_OVF / _NAN_OUT).  ``tab[a >> shift]`` (int32) resolves a
    bucket holding at most one threshold in one row, ``(T, below, at, above)``; ``shift`` is the
    largest of 16..13 for which every bucket does (16 for the 8-bit formats and bf16, 13 for
    fp16).  For finer formats ``shift`` is 16 and a bucket with more thresholds holds
    ``(-1, j0, 0, 0)``: the lookup scans ``thr`` from ``j0``, its first threshold.
    """
    _sign_magnitude(fmt)
    mags = fmt.magnitudes
    h = fmt.n_codes >> 1
    pos_vals = fmt.values[:h]
    fin = fmt.special[:h] == F.SPECIAL_FINITE
    # smallest positive code of each magnitude (canonical)
    order = np.flatnonzero(fin)
    idx = np.searchsorted(mags, pos_vals[order])
    mcode = np.full(len(mags), -1, np.int64)
    for c, i in zip(order[::-1], idx[::-1]):  # reversed: the smallest code wins
        mcode[i] = c
    if fmt.thresholds is not None:  # the format's own boundaries (posits, LNS): exact float32 values
        mids = np.asarray(fmt.thresholds, np.float64)
    else:
        mids = (mags[:-1] + mags[1:]) / 2  # exact in float64
    m32 = mids.astype(np.float32)
    if np.any(m32.astype(np.float64) != mids):
        bad = float(mids[np.flatnonzero(m32.astype(np.float64) != mids)[0]])
        raise FormatError(f"{fmt.name}: midpoint {bad!r} is not exact in float32; nearest rounding "
                          f"needs every midpoint between neighbouring values to be a float32")
    thr = m32.view(np.uint32).astype(np.int64)
    i = np.arange(len(mids))
    tie = np.where(i % 2 == 0, mcode[:-1], mcode[1:])  # the even index in magnitudes
    if fmt.tie_up is not None:
        tie = np.where(fmt.tie_up, mcode[1:], tie)
    region = mcode.copy()
    if not saturate:
        top = int(mcode[-1])
        if fmt.kind == "float":
            ulp = 2.0 ** int(fmt.exp[top])
            mid = fmt.max + ulp / 2
            if float(np.float32(mid)) != mid:
                raise FormatError(f"{fmt.name}: overflow point {mid!r} is not exact in float32")
            if fmt.inf_code is not None:
                ovf = int(fmt.inf_code)
            elif fmt.nan_code is not None:
                ovf = _NAN_OUT
            else:
                ovf = _ERR_OVF
            t_ovf, tie_ovf = _f32bits(mid), (top if int(fmt.sig[top]) % 2 == 0 else ovf)
        else:  # RF8 family and ints: anything beyond max is an error
            t_ovf, tie_ovf, ovf = _f32bits(fmt.max), top, _ERR_OVF
        thr = np.append(thr, t_ovf)
        tie = np.append(tie, tie_ovf)
        region = np.append(region, ovf)
    # the widest buckets (16 -> 13 bits dropped) in which no bucket holds two thresholds; failing that,
    # 16-bit buckets and a scan inside the crowded ones
    for shift in (16, 15, 14, 13, 16):
        starts = np.arange((0x7F800000 >> shift) + 1, dtype=np.int64) << shift
        start = np.searchsorted(thr, starts, side="left").astype(np.int64)  # thresholds below each bucket
        count = np.diff(np.append(start, len(thr)))  # thresholds inside each bucket
        if count.max() <= 1:
            break
    tab = np.empty((len(starts), 4), np.int64)
    tab[:, 0] = starts
    tab[:, 1] = tab[:, 2] = tab[:, 3] = region[start]
    one = np.flatnonzero(count == 1)
    j = start[one]
    tab[one, 0], tab[one, 1], tab[one, 2], tab[one, 3] = thr[j], region[j], tie[j], region[j + 1]
    many = np.flatnonzero(count > 1)
    tab[many, 0], tab[many, 1], tab[many, 2], tab[many, 3] = -1, start[many], 0, 0
    out = (np.ascontiguousarray(tab, dtype=np.int32),) + tuple(
        np.ascontiguousarray(a, dtype=np.int64) for a in (thr, region, tie))
    for a in out:
        a.setflags(write=False)
    return out + (shift,)


@nb.njit(cache=True, inline="always")
def _nearest_one(b, tab, shift, thr, region, tie, nan_code, sbit):
    a = b & 0x7FFFFFFF
    if a > 0x7F800000:
        return nan_code if nan_code >= 0 else -1
    k = a >> shift
    t = tab[k, 0]
    if t >= 0:  # at most one threshold in this bucket
        if a < t:
            r = tab[k, 1]
        elif a == t:
            r = tab[k, 2]
        else:
            r = tab[k, 3]
    else:
        j = np.int64(tab[k, 1])
        n = thr.size
        while j < n and thr[j] < a:
            j += 1
        if j < n and thr[j] == a:
            r = tie[j]
        else:
            r = region[j]
    if r < 0:
        if r == -3:
            return nan_code
        return -2
    if (b >> 31) & 1:
        r |= sbit
    return r


@lru_cache(maxsize=None)
def _bucket_table(fmt: F.Format, saturate: bool):
    """(tab, off, shift) for formats whose every bucket holds at most one threshold (the 8-bit
    formats, bf16, fp16), or None: the rows of ``_nearest_table`` from the bucket just below the
    first threshold to the bucket just above the last one.  A bucket index clamped into that range
    (``min(max((a >> shift) - off, 0), len(tab) - 1)``) resolves every input: buckets below row 0
    lie below every threshold and encode like row 0, those above the last row like the last row.
    The 8-bit formats need about 2,000-4,000 rows (32-64 KB) instead of 32,641 (522 KB), which
    stay in the first-level caches.
    """
    tab, thr, _, _, shift = _nearest_table(fmt, saturate)
    if (tab[:, 0] < 0).any():
        return None
    first, last = int(thr[0]) >> shift, int(thr[-1]) >> shift
    k0, k1 = max(first - 1, 0), min(last + 1, len(tab) - 1)
    t = tab[k0:k1 + 1].copy()
    t.setflags(write=False)
    return t, k0, shift


@nb.njit(cache=True, inline="always")
def _bucket_one(b, tab, off, last, shift, nan_code, sbit):
    """_nearest_one for compact bucket tables (``_bucket_table``): no scan, and the three-way choice
    below / at / above the bucket's threshold is an index, not a branch (random inputs mispredict)."""
    a = b & 0x7FFFFFFF
    k = min(max((a >> shift) - off, 0), last)
    t = tab[k, 0]
    r = np.int64(tab[k, 1 + np.int64(a >= t) + np.int64(a > t)])
    if a > 0x7F800000 or r == _NAN_OUT:
        return nan_code  # canonical (positive); -1 when the format has no NaN
    if r < 0:
        return r
    return r | (sbit & -((b >> 31) & 1))


@nb.njit(cache=True, parallel=True)
def _bucket_kernel(bits, tab, off, shift, nan_code, sbit, out):
    nerr = 0
    last = tab.shape[0] - 1
    for i in nb.prange(bits.size):
        r = _bucket_one(np.int64(bits[i]), tab, off, last, shift, nan_code, sbit)
        if r < 0:
            nerr += 1
            r = 0
        out[i] = r
    return nerr


@nb.njit(cache=True)
def _bucket_kernel_serial(bits, tab, off, shift, nan_code, sbit, out):
    """Serial twin of _bucket_kernel: small inputs skip the parallel launch (milliseconds on a busy machine)."""
    nerr = 0
    last = tab.shape[0] - 1
    for i in range(bits.size):
        r = _bucket_one(np.int64(bits[i]), tab, off, last, shift, nan_code, sbit)
        if r < 0:
            nerr += 1
            r = 0
        out[i] = r
    return nerr


@lru_cache(maxsize=None)
def _bucket8_table(fmt: F.Format, saturate: bool):
    """The whole ``_nearest_table`` (one row per 16-bit bucket of ``|x|``'s pattern, padded to 2**15 rows
    so that every ``a >> 16`` indexes it, NaN patterns included) for the 8-bit sign-magnitude formats
    whose buckets hold at most one threshold, or None.  With the bucket shift and the sign bit
    compile-time constants and no clamp of the index, ``_bucket8_kernel`` encodes 16M N(0, 1) values in
    about half the CPU time of ``_bucket_kernel`` on one thread (21 vs 43 ms on the 2-core EPYC, same
    load); N(0, 1) data touch a few thousand rows of the 512 KB table."""
    if fmt.code_bits != 8 or fmt.sign_bit != 0x80 or _bucket_table(fmt, saturate) is None:
        return None
    tab, _, _, _, shift = _nearest_table(fmt, saturate)
    if shift != 16:
        return None
    t = np.concatenate([tab, np.repeat(tab[-1:], (1 << 15) - len(tab), axis=0)])
    t.setflags(write=False)
    return t


@nb.njit(cache=True, inline="always")
def _bucket8_one(b, tab, nan_code):
    a = b & 0x7FFFFFFF
    k = a >> 16
    t = tab[k, 0]
    if a < t:
        r = np.int64(tab[k, 1])
    elif a == t:
        r = np.int64(tab[k, 2])
    else:
        r = np.int64(tab[k, 3])
    if a > 0x7F800000 or r == _NAN_OUT:
        return nan_code
    if r < 0:
        return r
    return r | ((b >> 24) & 0x80)


@nb.njit(cache=True, parallel=True)
def _bucket8_kernel(bits, tab, nan_code, out):
    nerr = 0
    for i in nb.prange(bits.size):
        r = _bucket8_one(np.int64(bits[i]), tab, nan_code)
        if r < 0:
            nerr += 1
            r = 0
        out[i] = r
    return nerr


@nb.njit(cache=True)
def _bucket8_kernel_serial(bits, tab, nan_code, out):
    """Serial twin of _bucket8_kernel: small inputs skip the parallel launch."""
    nerr = 0
    for i in range(bits.size):
        r = _bucket8_one(np.int64(bits[i]), tab, nan_code)
        if r < 0:
            nerr += 1
            r = 0
        out[i] = r
    return nerr


@nb.njit(cache=True, parallel=True)
def _nearest_kernel(bits, tab, shift, thr, region, tie, nan_code, sbit, out):
    nerr = 0
    for i in nb.prange(bits.size):
        r = _nearest_one(np.int64(bits[i]), tab, shift, thr, region, tie, nan_code, sbit)
        if r < 0:
            nerr += 1
            r = 0
        out[i] = r
    return nerr


@nb.njit(cache=True)
def _nearest_kernel_serial(bits, tab, shift, thr, region, tie, nan_code, sbit, out):
    """Serial twin of _nearest_kernel: small inputs skip the parallel launch (milliseconds on a busy machine)."""
    nerr = 0
    for i in range(bits.size):
        r = _nearest_one(np.int64(bits[i]), tab, shift, thr, region, tie, nan_code, sbit)
        if r < 0:
            nerr += 1
            r = 0
        out[i] = r
    return nerr


@nb.njit(cache=True)
def _nearest_first_error(bits, tab, shift, thr, region, tie, nan_code, sbit):
    for i in range(bits.size):
        r = _nearest_one(np.int64(bits[i]), tab, shift, thr, region, tie, nan_code, sbit)
        if r < 0:
            return i, r
    return -1, 0


# ---------------------------------------------------------------------------
# paper / truncate (RF8 family): exact integer decisions on the float32 pattern


@lru_cache(maxsize=None)
def _residual_params(fmt: F.Format, paper: bool):
    """(canonical table, R lookup[(t+1)*(D+1)+d], D, bias, man_bits, E max).

    The greedy algorithms keep a second term iff e1 - e2 <= D (D = the largest d of the
    residual set: 4 for RF8).  truncate produces +2^-d for d = 1..D; paper also -2^-d for
    d = 2..D; a residual set lacking one of those cannot take that rounding.
    """
    if fmt.kind != "residual":
        raise FormatError(f"{fmt.name}: paper/truncate rounding needs a residual format")
    mode = "paper" if paper else "truncate"
    if mode not in F.greedy_roundings(fmt.residuals):  # fmt.roundings says the same (checked by callers)
        raise FormatError(f"{fmt.name}: its residual set lacks terms that {mode} rounding produces; "
                          f"it supports rounding {', '.join(F.greedy_roundings(fmt.residuals))} only")
    _sign_magnitude(fmt)
    D = max(d for _, d in fmt.residuals)
    rl = np.full(3 * (D + 1), -1, np.int64)
    for R, (t, d) in enumerate(fmt.residuals):
        rl[(t + 1) * (D + 1) + d] = R
    canon = np.ascontiguousarray(fmt.canonical.astype(np.int64))
    return canon, rl, D, fmt.bias, fmt.man_bits, (1 << fmt.exp_bits) - 1


@nb.njit(cache=True, inline="always")
def _bitlen(v):
    """Bit length of 0 <= v < 2^32 (branch-light binary search)."""
    n = 0
    if v >= 65536:
        v >>= 16
        n += 16
    if v >= 256:
        v >>= 8
        n += 8
    if v >= 16:
        v >>= 4
        n += 4
    if v >= 4:
        v >>= 2
        n += 2
    if v >= 2:
        v >>= 1
        n += 1
    return n + v


@nb.njit(cache=True, inline="always")
def _residual_code(b, paper, canon, rl, D, bias, man_bits, emax_field, saturate, maxcode, sshift):
    a = b & 0x7FFFFFFF
    s = (b >> 31) & 1
    if a > 0x7F800000:
        return -1
    ef = a >> 23
    if ef == 0:  # zero and float32 subnormals: far below 2^-6
        return canon[s << sshift]
    if a == 0x7F800000:  # +-Inf: beyond every exponent
        if not saturate:
            return -2
        return maxcode | (s << sshift)
    X = (1 << 23) | (a & 0x7FFFFF)  # |x| = X * 2^(f - 23), 2^23 <= X < 2^24
    f = ef - 127
    e1 = f
    if paper and X * X >= (np.int64(1) << 47):  # X^2 >= 2 * 2^46  <=>  |x| >= sqrt(2) 2^f
        e1 = f + 1
    E = e1 + bias
    if E > emax_field:
        if not saturate:
            return -2
        return maxcode | (s << sshift)
    if E < 1:
        return canon[s << sshift]
    R = X - (np.int64(1) << (23 + e1 - f))  # |x| - 2^e1 in units of 2^(f-23): exact
    t = 0
    d = 0
    if R != 0:
        t = 1 if R > 0 else -1
        m = R if R > 0 else -R
        L = _bitlen(m) - 1  # floor(log2 m)
        e2 = L + f - 23  # floor(log2 |r|)
        if paper and m * m >= (np.int64(2) << (2 * L)):  # m^2 >= 2 * 4^L: round log2 up
            e2 += 1
        d = e1 - e2
        if d > D:
            t = 0
            d = 0
    Rf = rl[(t + 1) * (D + 1) + d]
    return canon[(s << sshift) | (E << man_bits) | Rf]


@nb.njit(cache=True, parallel=True)
def _residual_kernel(bits, paper, canon, rl, D, bias, man_bits, emax_field, saturate, maxcode, sshift, out):
    nerr = 0
    for i in nb.prange(bits.size):
        r = _residual_code(np.int64(bits[i]), paper, canon, rl, D, bias, man_bits, emax_field, saturate,
                           maxcode, sshift)
        if r < 0:
            nerr += 1
            r = 0
        out[i] = r
    return nerr


@nb.njit(cache=True)
def _residual_kernel_serial(bits, paper, canon, rl, D, bias, man_bits, emax_field, saturate, maxcode, sshift, out):
    """Serial twin of _residual_kernel: small inputs skip the parallel launch (milliseconds on a busy machine)."""
    nerr = 0
    for i in range(bits.size):
        r = _residual_code(np.int64(bits[i]), paper, canon, rl, D, bias, man_bits, emax_field, saturate,
                           maxcode, sshift)
        if r < 0:
            nerr += 1
            r = 0
        out[i] = r
    return nerr


@nb.njit(cache=True)
def _residual_first_error(bits, paper, canon, rl, D, bias, man_bits, emax_field, saturate, maxcode, sshift):
    for i in range(bits.size):
        r = _residual_code(np.int64(bits[i]), paper, canon, rl, D, bias, man_bits, emax_field, saturate,
                           maxcode, sshift)
        if r < 0:
            return i, r
    return -1, 0


# ---------------------------------------------------------------------------
# int8: round half to even, saturate

#: every integer code fits these bits; a compile-time constant, unlike a mask argument, lets Numba vectorize
#: the loop (a runtime mask made int8 encode 1.5x slower, 22 vs 15 ms per 16M values on one thread); the
#: store into the code array keeps its low 8 or 16 bits, and formats narrower than their code dtype are
#: masked once after the kernel (``encode``)
_INT_CODE_MASK = (1 << F.MAX_CODE_BITS) - 1


@nb.njit(cache=True, inline="always")
def _int8_one(x, lo, hi, saturate):
    if x != x:
        return -1
    v = np.rint(x)
    if v > hi:
        if not saturate:
            return -2
        v = hi
    elif v < lo:
        if not saturate:
            return -2
        v = lo
    return np.int64(v) & _INT_CODE_MASK


@nb.njit(cache=True, parallel=True)
def _int8_kernel(x, lo, hi, saturate, out):
    nerr = 0
    for i in nb.prange(x.size):
        r = _int8_one(x[i], lo, hi, saturate)
        if r < 0:
            nerr += 1
            r = 0
        out[i] = r
    return nerr


@nb.njit(cache=True)
def _int8_kernel_serial(x, lo, hi, saturate, out):
    """Serial twin of _int8_kernel: small inputs skip the parallel launch (milliseconds on a busy machine)."""
    nerr = 0
    for i in range(x.size):
        r = _int8_one(x[i], lo, hi, saturate)
        if r < 0:
            nerr += 1
            r = 0
        out[i] = r
    return nerr


@nb.njit(cache=True)
def _int8_first_error(x, lo, hi, saturate):
    for i in range(x.size):
        r = _int8_one(x[i], lo, hi, saturate)
        if r < 0:
            return i, r
    return -1, 0


# ---------------------------------------------------------------------------


def encode(x, fmt="rf8", rounding: str = "nearest", saturate: bool | None = None) -> np.ndarray:
    """Encode values into canonical codes of ``fmt``; returns ``fmt.code_dtype`` (uint8 or uint16)
    of ``x``'s shape.

    Parameters
    ----------
    x : float32 array-like (float16/bfloat16/float8 exactly converted; float64 or
        integers only when every value is exact in float32, see the module docstring).
    fmt : format name or :class:`~rf8sim.formats.Format`.
    rounding : ``nearest`` (all formats; ties to the even index in ``fmt.magnitudes``,
        i.e. round-half-even for the float formats and int8), ``paper`` or ``truncate``
        (residual formats whose ``fmt.roundings`` list them; see docs/formats.md).
    saturate : ``None`` (default) takes ``fmt.saturate``: True for rf8, e4m3, e5m2, int8,
        False for bf16 and fp16 (IEEE: overflow to +-Inf, as ml_dtypes/numpy casts).
        ``True`` clamps values beyond the range (and +-Inf) to +-max.
        ``False``: RF8 and int8 raise :class:`EncodeError`; e4m3 gives NaN, e5m2/bf16/fp16
        +-Inf (the value rounded with an unbounded exponent exceeds max).  int8 and ``nearest``
        RF8 out of range means "rounds beyond -128..127" and "|x| > max" respectively; for
        paper and truncate it means the leading exponent e1 exceeds the largest exponent.

    NaN input raises :class:`EncodeError` (count and first index) for formats without
    NaN, and gives ``fmt.nan_code`` (positive, canonical) for the others.
    """
    fmt = F.get(fmt)
    rounding = _check_rounding(fmt, rounding)
    if saturate is not None and not isinstance(saturate, (bool, np.bool_)):  # "False" is a truthy string
        raise InputError(f"saturate must be True, False or None (the format's default), got {saturate!r}")
    if fmt.negation == "twos" and saturate is False:
        raise FormatError(f"{fmt.name}: posits never overflow (finite values beyond maxpos round to maxpos, "
                          f"Posit Standard 2022); saturate=False is not valid for them")
    saturate = fmt.saturate if saturate is None else bool(saturate)
    x32 = as_float32(x)
    shape = x32.shape
    flat = x32.reshape(-1)
    out = np.empty(flat.size, fmt.code_dtype)
    if flat.size == 0:
        return out.reshape(shape)
    par = flat.size >= PARALLEL_MIN
    if fmt.kind == "int":
        lo, hi = float(fmt.values[fmt.finite].min()), float(fmt.max)
        args = (lo, hi, saturate)
        kern = _int8_kernel if par else _int8_kernel_serial
        nerr = kern(flat, *args, out)
        if nerr:
            i, r = _int8_first_error(flat, *args)
            _raise_encode(fmt, flat, shape, nerr, i, r, rounding)
        if fmt.n_codes < 1 << (8 * out.itemsize):  # e.g. a 4-bit integer format in uint8 codes
            np.bitwise_and(out, fmt.n_codes - 1, out=out)
        return out.reshape(shape)
    bits = flat.view(np.uint32)
    if rounding == "nearest":
        nan_code = -1 if fmt.nan_code is None else int(fmt.nan_code)
        tab, thr, region, tie, shift = _nearest_table(fmt, saturate)
        args = (tab, shift, thr, region, tie, nan_code, fmt.sign_bit)
        bt = _bucket_table(fmt, saturate)
        b8 = _bucket8_table(fmt, saturate)
        if b8 is not None:  # the 8-bit formats: the whole table, constant shift and sign
            kern = _bucket8_kernel if par else _bucket8_kernel_serial
            nerr = kern(bits, b8, nan_code, out)
        elif bt is not None:  # at most one threshold per bucket: no scan
            kern = _bucket_kernel if par else _bucket_kernel_serial
            nerr = kern(bits, bt[0], bt[1], bt[2], nan_code, fmt.sign_bit, out)
        else:
            kern = _nearest_kernel if par else _nearest_kernel_serial
            nerr = kern(bits, *args, out)
        if nerr:
            i, r = _nearest_first_error(bits, *args)
            _raise_encode(fmt, flat, shape, nerr, i, r, rounding)
        if fmt.negation == "twos":  # posits: two's complement negatives; NaN and +-Inf are NaR
            out = _twos_remap(fmt)[out]
            out[~np.isfinite(flat)] = fmt.nan_code
        return out.reshape(shape)
    paper = rounding == "paper"
    canon, rl, D, bias, man_bits, emf = _residual_params(fmt, paper)
    args = (paper, canon, rl, D, bias, man_bits, emf, saturate, fmt.max_code, fmt.code_bits - 1)
    kern = _residual_kernel if par else _residual_kernel_serial
    nerr = kern(bits, *args, out)
    if nerr:
        i, r = _residual_first_error(bits, *args)
        _raise_encode(fmt, flat, shape, nerr, i, r, rounding)
    return out.reshape(shape)


def _raise_encode(fmt, flat, shape, nerr, i, r, rounding):
    nnan = int(np.isnan(flat).sum())
    first = _first_index(shape, int(i))
    if nnan:
        inan = _first_index(shape, int(np.flatnonzero(np.isnan(flat))[0]))
        msg = (f"{nnan} NaN value(s) in the input (first at index {inan}); format {fmt.name} has no NaN")
        if nerr > nnan:
            msg += f"; and {nerr - nnan} value(s) out of range with saturate=False"
        raise EncodeError(msg)
    raise EncodeError(
        f"{nerr} value(s) out of the range of {fmt.name} (max {fmt.max:g}, rounding {rounding}) with "
        f"saturate=False (first at index {first}: {float(flat[i])!r}); pass saturate=True to clamp")


# ---------------------------------------------------------------------------
# decode


@lru_cache(maxsize=None)
def _value_table(fmt: F.Format) -> np.ndarray:
    v = fmt.values.astype(np.float32)
    v.setflags(write=False)
    return v


@nb.njit(cache=True, parallel=True)
def _decode_kernel(codes, table, out):
    for i in nb.prange(codes.size):
        out[i] = table[codes[i]]


@nb.njit(cache=True)
def _decode_kernel_serial(codes, table, out):
    """Serial twin of _decode_kernel: small inputs skip the parallel launch (milliseconds on a busy machine)."""
    for i in range(codes.size):
        out[i] = table[codes[i]]


def decode(codes, fmt="rf8") -> np.ndarray:
    """The float32 values of ``codes`` (``fmt.code_dtype``: uint8 or uint16; every finite value is
    exact in float32; NaN codes decode to NaN with their sign, Inf codes to +-Inf)."""
    fmt = F.get(fmt)
    c = as_codes(codes, fmt=fmt)
    out = np.empty(c.shape, np.float32)
    if c.size:
        kern = _decode_kernel if c.size >= PARALLEL_MIN else _decode_kernel_serial
        kern(c.reshape(-1), _value_table(fmt), out.reshape(-1))
    return out


# ---------------------------------------------------------------------------
# power-of-two scales (rules and shapes: rf8sim.scales)


def _check_granularity(granularity, block, ndim):
    g = S.canonical_granularity(granularity)
    if g in S.BLOCK_GRANULARITIES:
        S.check_block(g, block)
    if g != "tensor" and ndim < 1:
        raise S.ScaleError(f"granularity {granularity!r} needs an array with at least one axis")
    return g


def _group_amax(a: np.ndarray, granularity: str, block: int) -> np.ndarray:
    """Largest magnitude per group (NaN where a group holds a NaN)."""
    if granularity == "tensor":
        return np.array(a.max() if a.size else 0.0, np.float32)
    if granularity == "channel":
        if a.size == 0:
            return np.zeros(a.shape[0], np.float32)
        return a.reshape(a.shape[0], -1).max(axis=1) if a.ndim > 1 else a.copy()
    n = a.shape[-1]
    nb_ = -(-n // block)
    pad = nb_ * block - n
    if pad:
        a = np.concatenate([a, np.zeros(a.shape[:-1] + (pad,), np.float32)], axis=-1)
    if a.size == 0:
        return np.zeros(a.shape[:-1] + (nb_,), np.float32)
    return a.reshape(a.shape[:-1] + (nb_, block)).max(axis=-1)


def _expand_scale(k: np.ndarray, shape, granularity: str, block: int) -> np.ndarray:
    """Per-element exponent array (int32) broadcastable to ``shape``."""
    k = k.astype(np.int32)
    if granularity == "tensor":
        return k
    if granularity == "channel":
        return k.reshape((shape[0],) + (1,) * (len(shape) - 1))
    return np.repeat(k, block, axis=-1)[..., : shape[-1]]


def quantize(x, fmt="rf8", rounding: str = "nearest", granularity: str = "tensor", block: int = 32,
             saturate: bool | None = None):
    """Scale by powers of two and encode: returns ``(codes, scale_exp int8)``.

    Groups and scale rules are those of :mod:`rf8sim.scales` (normative text in
    docs/formats.md): ``tensor`` (shape ``()``), ``channel`` (axis 0), ``ceil`` (runs of
    ``block`` values along the last axis; ``block`` is its deprecated old name) take the
    smallest k with ``amax / 2**k <= fmt.max`` (amax = 0 gives 0) and need finite inputs.
    ``mx`` follows OCP Microscaling v1.0: blocks of 32, ``k = floor(log2 amax) - emax_elem``,
    elements rounded with saturation (``saturate=False`` is refused), ``k = -127`` for an
    all-zero block, and a block holding NaN/Inf gets ``scale_exp = SCALE_NAN`` (-128, the
    E8M0 NaN byte 0xFF; see :func:`rf8sim.scales.to_e8m0`) and all-zero codes.
    Scale exponents are clamped to the E8M0 range -127..127.

    ``codes`` are ``fmt.code_dtype``.  The scaled value ``x * 2**-k`` is formed exactly; if it
    is not a float32 (it fell below 2**-126) and the format could resolve the lost bits, a
    ScaleError is raised rather than rounding twice.
    """
    fmt = F.get(fmt)
    _check_rounding(fmt, rounding)
    x32 = as_float32(x)
    g = _check_granularity(granularity, block, x32.ndim)
    block = int(block)
    mx = g == "mx"
    bad = ~np.isfinite(x32)
    if mx:
        if saturate is False:
            raise S.ScaleError("granularity 'mx' always saturates its elements (OCP MX v1.0); "
                               "saturate=False is not valid with it")
        saturate = True
    elif bad.any():
        first = _first_index(x32.shape, int(np.flatnonzero(bad.ravel())[0]))
        raise EncodeError(f"quantize needs finite values: {int(bad.sum())} NaN/Inf in the input "
                          f"(first at index {first}); granularity 'mx' gives such blocks the NaN scale")
    with np.errstate(invalid="ignore"):
        amax = _group_amax(np.abs(x32), g, block)
    k = S.scale_exponents(amax, fmt, S.scale_rule(g))
    kk = _expand_scale(k, x32.shape, g, block)
    src = x32
    if mx and bad.any():
        src = np.where(kk == S.SCALE_NAN, np.float32(0), x32)  # NaN-scale blocks: codes 0
        kk = np.where(kk == S.SCALE_NAN, 0, kk)
    exact = np.ldexp(src.astype(np.float64), -kk)
    scaled = exact.astype(np.float32)
    lost = scaled.astype(np.float64) != exact
    if lost.any() and fmt.min_positive / 2 < 2.0**-126:
        first = _first_index(x32.shape, int(np.flatnonzero(lost.ravel())[0]))
        raise S.ScaleError(f"{int(lost.sum())} scaled value(s) x * 2**-k fall below the float32 normal range "
                           f"and {fmt.name} resolves them (first at index {first}); quantize would round twice")
    codes = encode(scaled, fmt, rounding=rounding, saturate=saturate)
    return codes, k


def dequantize(codes, scale_exp, fmt="rf8", granularity: str = "tensor", block: int = 32) -> np.ndarray:
    """``decode(codes) * 2**scale_exp`` (float32, exact; raises if a value overflows float32).

    Under ``mx`` a NaN scale (SCALE_NAN) makes every element of its block NaN.
    """
    fmt = F.get(fmt)
    c = as_codes(codes, fmt=fmt)
    g = _check_granularity(granularity, block, c.ndim)
    want = S.scale_shape(c.shape, g, block)
    k = np.asarray(scale_exp)
    if k.dtype.kind not in "iu":
        raise DTypeError(f"scale_exp must be an integer array, got dtype {k.dtype}")
    if k.shape != want:
        raise S.ScaleError(f"scale_exp has shape {k.shape}; granularity {granularity!r} with codes of shape "
                           f"{c.shape} needs {want}")
    k = k.astype(np.int64)
    if g == "mx":
        badk = (k != S.SCALE_NAN) & ((k < S.SCALE_MIN) | (k > S.SCALE_MAX))
        if badk.any():
            raise S.ScaleError(f"{int(badk.sum())} mx scale exponent(s) outside the E8M0 range "
                               f"{S.SCALE_MIN}..{S.SCALE_MAX} (or {S.SCALE_NAN}, the NaN scale)")
    else:  # below -127 every value would flush to 0: never a scale quantize makes
        badk = (k < S.SCALE_MIN) | (k > S.SCALE_MAX)
        if badk.any():
            raise S.ScaleError(f"{int(badk.sum())} scale exponent(s) outside the E8M0 range "
                               f"{S.SCALE_MIN}..{S.SCALE_MAX} (first {int(k[badk].reshape(-1)[0])}); quantize's "
                               "scales lie in it")
    v = decode(c, fmt)
    kk = _expand_scale(k, c.shape, g, int(block))
    nan_blk = kk == S.SCALE_NAN if g == "mx" else None
    if nan_blk is not None:
        kk = np.where(nan_blk, 0, kk)
    with np.errstate(over="ignore"):
        out = np.ldexp(v, kk).astype(np.float32, copy=False)
    ovf = np.isinf(out) & np.isfinite(v)
    if ovf.any():
        first = _first_index(c.shape, int(np.flatnonzero(ovf.ravel())[0]))
        raise S.ScaleError(f"{int(ovf.sum())} dequantized value(s) overflow float32 (first at index {first})")
    if nan_blk is not None and nan_blk.any():
        out = np.where(nan_blk, np.float32(np.nan), out).astype(np.float32)
    return out
