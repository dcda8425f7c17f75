"""Slow independent references for the golden model, written unlike the fast path.

* Per element, exact: Fractions over the 256-value table (``encode_one``,
  ``product_one``) - no bit tricks, no tables from the model.
* Vectorized, exact: sorted-table bisection with float64 comparisons, which are
  exact because every float32 input, every format value and every midpoint is
  a float64 (``encode_vec``).  The fast path instead looks up a 16-bit bucket of
  the float32 pattern (nearest) or works on the integer significand (paper/truncate).
"""

from __future__ import annotations

import bisect
from functools import lru_cache
from fractions import Fraction

import numpy as np

from oracles.exact import floor_log2

from rf8sim import formats as F

__all__ = ["table", "canonical_of", "encode_one", "encode_vec", "product_one", "RefError"]


class RefError(Exception):
    """The reference says: this input cannot be encoded (NaN or overflow with saturate=False)."""


@lru_cache(maxsize=None)
def table(fmt):
    """Per code: exact Fraction value, or the strings 'nan' / 'inf' / '-inf'."""
    out = []
    for c in range(256):
        v = float(fmt.values[c])
        if v != v:
            out.append("nan")
        elif v in (float("inf"), float("-inf")):
            out.append("inf" if v > 0 else "-inf")
        else:
            out.append(Fraction(v))
    return out


@lru_cache(maxsize=None)
def canonical_of(fmt, value: Fraction, negative: bool) -> int:
    """Smallest code whose value equals ``value`` (zeros: the one with the requested sign)."""
    t = table(fmt)
    for c in range(256):
        if isinstance(t[c], Fraction) and t[c] == value:
            if value == 0 and bool(np.signbit(fmt.values[c])) != negative:
                continue
            return c
    raise KeyError(value)


@lru_cache(maxsize=None)
def _mags(fmt):
    return sorted({abs(v) for v in table(fmt) if isinstance(v, Fraction)})


def _round_log2(q: Fraction) -> int:
    """round(log2 q): f + 1 iff q >= sqrt(2) 2^f, i.e. q^2 >= 2 * 4^f."""
    f = floor_log2(q)
    return f + 1 if q * q >= 2 * Fraction(4) ** f else f


def encode_one(x, fmt, rounding="nearest", saturate=True) -> int:
    """Reference encode of one float32 value (exact)."""
    fmt = F.get(fmt)
    x = np.float32(x)
    neg = bool(np.signbit(x))
    if np.isnan(x):
        if fmt.nan_code is None:
            raise RefError("nan")
        return int(fmt.nan_code)
    mags = _mags(fmt)
    top = mags[-1]
    if fmt.kind == "int":
        if np.isinf(x):
            if not saturate:
                raise RefError("overflow")
            return 0x80 if neg else 0x7F
        r = round(Fraction(float(x)))  # Fraction rounds half to even
        if not -128 <= r <= 127:
            if not saturate:
                raise RefError("overflow")
            r = max(-128, min(127, r))
        return r & 0xFF
    if np.isinf(x):
        q = None
    else:
        q = abs(Fraction(float(x)))
    if rounding == "nearest":
        if q is None or q > top:
            if saturate:
                res = top
            elif fmt.kind == "residual":
                raise RefError("overflow")
            else:
                # OCP: round with an unbounded exponent; the value past max has the spacing of max's binade
                nxt = top + (top - mags[-2])
                mid = (top + nxt) / 2
                top_even = (len(mags) - 1) % 2 == 0
                if q is None or q > mid or (q == mid and not top_even):
                    if fmt.inf_code is not None:
                        return int(fmt.inf_code) | (0x80 if neg else 0)
                    return int(fmt.nan_code)
                res = top
        else:
            i = bisect.bisect_right(mags, q) - 1
            if mags[i] == q:
                res = q
            else:
                lo, hi = mags[i], mags[i + 1]
                mid = (lo + hi) / 2
                if q != mid:
                    res = lo if q < mid else hi
                else:
                    res = lo if i % 2 == 0 else hi
        return canonical_of(fmt, -res if neg else res, neg)
    # paper / truncate (residual formats)
    emax = (1 << fmt.exp_bits) - 1 - fmt.bias
    emin = 1 - fmt.bias
    D = max(d for _, d in fmt.residuals)
    if q is None:
        if not saturate:
            raise RefError("overflow")
        return canonical_of(fmt, -top if neg else top, neg)
    if q == 0:
        return canonical_of(fmt, Fraction(0), neg)
    e1 = _round_log2(q) if rounding == "paper" else floor_log2(q)
    if e1 > emax:
        if not saturate:
            raise RefError("overflow")
        return canonical_of(fmt, -top if neg else top, neg)
    if e1 < emin:
        return canonical_of(fmt, Fraction(0), neg)
    p1 = Fraction(2) ** e1
    r = q - p1
    val = p1
    if r != 0:
        e2 = _round_log2(abs(r)) if rounding == "paper" else floor_log2(abs(r))
        if e1 - e2 <= D:
            val = p1 + (Fraction(2) ** e2 if r > 0 else -Fraction(2) ** e2)
    return canonical_of(fmt, -val if neg else val, neg)


# ---------------------------------------------------------------------------
# vectorized exact reference


def _positive_codes(fmt):
    """Sorted positive finite values (float64) and the smallest code of each."""
    first = {}
    for c in range(fmt.n_codes // 2):  # the positive half of a sign-magnitude format
        v = float(fmt.values[c])
        if np.isfinite(v):
            first.setdefault(v, c)
    vals = sorted(first)
    return np.array(vals), np.array([first[v] for v in vals])


def encode_vec(x, fmt, rounding="nearest", saturate=True):
    """Vectorized exact reference; returns (codes int64, error mask)."""
    fmt = F.get(fmt)
    x = np.asarray(x, np.float32)
    ax = np.abs(x.astype(np.float64))
    neg = np.signbit(x)
    nan = np.isnan(x)
    err = np.zeros(x.shape, bool)
    if fmt.kind == "int":
        r = np.rint(np.where(nan, 0, x.astype(np.float64)))
        err = nan | ((not saturate) & ((r > 127) | (r < -128)))
        r = np.clip(r, -128, 127)
        return (r.astype(np.int64) & 0xFF), err
    vals, pcodes = _positive_codes(fmt)  # vals[0] == 0
    top = vals[-1]
    if rounding == "nearest":
        i = np.searchsorted(vals, ax, side="right") - 1
        i = np.clip(i, 0, len(vals) - 1)
        j = np.minimum(i + 1, len(vals) - 1)
        lo, hi = vals[i], vals[j]
        mid = (lo + hi) / 2  # exact in float64
        up = (ax > mid) | ((ax == mid) & (i % 2 == 1))
        k = np.where((j > i) & up, j, i)
        code = pcodes[k].astype(np.int64)
        over = np.isinf(ax) | (ax > top)
        if not saturate:
            if fmt.kind == "residual":
                err |= over
            else:
                nxt = top + (top - vals[-2])
                m2 = (top + nxt) / 2
                tie_up = (len(vals) - 1) % 2 == 1
                ovf = np.isinf(ax) | (ax > m2) | ((ax == m2) & tie_up)
                oc = fmt.inf_code if fmt.inf_code is not None else fmt.nan_code
                code = np.where(ovf, oc, code)
                neg = neg & ~(ovf & (fmt.inf_code is None))
        code = np.where(neg, code | fmt.sign_bit, code)
    else:
        paper = rounding == "paper"
        emax = (1 << fmt.exp_bits) - 1 - fmt.bias
        emin = 1 - fmt.bias
        D = max(d for _, d in fmt.residuals)
        safe = np.where(np.isfinite(ax) & (ax > 0), ax, 1.0)
        _, e = np.frexp(safe)
        f = e.astype(np.int64) - 1
        e1 = f + (paper & (safe * safe >= np.ldexp(2.0, 2 * f)))
        r = safe - np.ldexp(1.0, e1)
        ar = np.abs(r)
        safer = np.where(ar > 0, ar, 1.0)
        _, e2 = np.frexp(safer)
        g = e2.astype(np.int64) - 1
        e2 = g + (paper & (safer * safer >= np.ldexp(2.0, 2 * g)))
        keep = (ar > 0) & (e1 - e2 <= D)
        val = np.ldexp(1.0, e1) + np.where(keep, np.sign(r) * np.ldexp(1.0, np.where(keep, e2, 0)), 0.0)
        big = np.isinf(ax) | (e1 > emax)
        small = (ax == 0) | (e1 < emin)
        val = np.where(small, 0.0, np.where(big, top, val))
        if not saturate:
            err |= big & ~nan
        idx = np.searchsorted(vals, val)
        assert np.all(vals[np.clip(idx, 0, len(vals) - 1)] == val), "value not representable"
        code = pcodes[idx].astype(np.int64)
        code = np.where(neg, code | 0x80, code)
    if fmt.nan_code is None:
        err |= nan
        code = np.where(nan, 0, code)
    else:
        code = np.where(nan, fmt.nan_code, code)
    return code, err


def product_one(a_fmt, w_fmt, ca: int, cw: int):
    """Exact product of two codes as a Fraction, or None if an operand is NaN/Inf."""
    ta, tw = table(F.get(a_fmt)), table(F.get(w_fmt))
    va, vw = ta[ca], tw[cw]
    if not isinstance(va, Fraction) or not isinstance(vw, Fraction):
        return None
    return va * vw
