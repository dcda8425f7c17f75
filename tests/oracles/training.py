"""Slow independent references for the torch quantizer (numpy float64 / Python Fractions).

Written unlike rf8sim.training.quant: nearest compares distances to the two
neighbouring magnitudes, paper/truncate walk Python Fractions, codes are found by
scanning the 256-value table.  Shared by the training tests only.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from oracles.exact import floor_log2

from rf8sim import formats as F


def code_of_value(fmt):
    """{(float value, negative zero?) -> smallest code decoding to it} by scanning the table."""
    out = {}
    for c in range(256):
        if fmt.special[c] != F.SPECIAL_FINITE:
            continue
        v = float(fmt.values[c])
        key = (v, v == 0 and bool(fmt.sign[c]))
        out.setdefault(key, c)
    return out


def ref_nearest(x: np.ndarray, fmt, saturate=True) -> np.ndarray:
    """Nearest (ties to even index of fmt.magnitudes) codes of float32 x, float64 arithmetic."""
    fmt = F.get(fmt)
    x = np.asarray(x, np.float32).reshape(-1)
    a = np.abs(x.astype(np.float64))
    mags = np.asarray(fmt.magnitudes, np.float64)
    n = len(mags)
    finite_a = np.where(np.isfinite(a), a, 0.0)
    i = np.clip(np.searchsorted(mags, finite_a, side="right") - 1, 0, n - 1)
    j = np.clip(i + 1, 0, n - 1)
    dlo = finite_a - mags[i]  # exact: few significant bits each
    dhi = mags[j] - finite_a
    pick = np.where(dhi < dlo, j, i)
    tie = (dhi == dlo) & (j != i)
    pick = np.where(tie, np.where(i % 2 == 0, i, j), pick)
    over = np.isinf(a) | (a > fmt.max)
    pick = np.where(over, n - 1, pick)
    if fmt.kind == "float" and not saturate:
        top = np.flatnonzero(fmt.finite & (fmt.values == fmt.max))[0]
        nxt = fmt.max + math.ldexp(1.0, int(fmt.exp[top]))
        mid = (fmt.max + nxt) / 2
        ovf = np.isinf(a) | (a > mid) | ((a == mid) & (n % 2 == 0))  # next value has index n
    else:
        ovf = np.zeros(a.shape, bool)
    table = code_of_value(fmt)
    neg = np.signbit(x)
    out = np.empty(x.shape, np.uint8)
    mv = mags[pick]
    for k in range(len(x)):
        if np.isnan(x[k]):
            out[k] = fmt.nan_code
            continue
        if ovf[k]:
            out[k] = fmt.inf_code | (0x80 if neg[k] else 0) if fmt.inf_code is not None else fmt.nan_code
            continue
        v = -mv[k] if neg[k] else mv[k]
        out[k] = table[(float(v), bool(v == 0 and neg[k]))]
    return out


def ref_int8(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32).astype(np.float64).reshape(-1)
    out = np.empty(x.shape, np.uint8)
    for k, v in enumerate(x.tolist()):
        if math.isinf(v):
            q = 127 if v > 0 else -128
        else:
            fl = math.floor(v)
            frac = Fraction(v) - fl
            q = fl + 1 if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and fl % 2 == 1) else fl
            q = max(-128, min(127, q))
        out[k] = q & 0xFF
    return out


def ref_residual(x: np.ndarray, fmt, rounding: str) -> np.ndarray:
    """paper / truncate codes of float32 x with Python Fractions, saturating."""
    fmt = F.get(fmt)
    table = code_of_value(fmt)
    e_min = 1 - fmt.bias
    e_max = (1 << fmt.exp_bits) - 1 - fmt.bias
    dmax = max(d for _, d in fmt.residuals)
    out = np.empty(len(x), np.uint8)
    for k, xv in enumerate(np.asarray(x, np.float32).reshape(-1).tolist()):
        neg = math.copysign(1.0, xv) < 0
        if math.isinf(xv):
            v = Fraction(fmt.max)
        else:
            a = Fraction(abs(xv))
            if a == 0:
                v = Fraction(0)
            else:
                e1 = _rlog2_frac(a, rounding)
                if e1 > e_max:
                    v = Fraction(fmt.max)
                elif e1 < e_min:
                    v = Fraction(0)
                else:
                    r = a - Fraction(2) ** e1
                    v = Fraction(2) ** e1
                    if r != 0:
                        e2 = _rlog2_frac(abs(r), rounding)
                        if e1 - e2 <= dmax:
                            v += (1 if r > 0 else -1) * Fraction(2) ** e2
        fv = float(v)
        fv = -fv if neg else fv
        out[k] = table[(fv, bool(fv == 0 and neg))]
    return out


def _rlog2_frac(a: Fraction, rounding: str) -> int:
    f = math.floor(math.log2(a))  # then fixed exactly
    while Fraction(2) ** f > a:
        f -= 1
    while Fraction(2) ** (f + 1) <= a:
        f += 1
    if rounding == "paper" and a * a >= 2 * Fraction(2) ** (2 * f):
        f += 1
    return f


def scale_target(fmt) -> Fraction:
    """What the scale rules aim at: the largest value; for a posit<n, es>, useed = 2**(2**es)."""
    if fmt.kind == "posit":
        return Fraction(2) ** (2 ** dict(fmt.params)["es"])
    return Fraction(fmt.max)


def ref_scale_exp(amax: float, fmt, rule: str = "ceil") -> int:
    """The scale exponent with Fractions, clamped to the E8M0 range -127..127.

    ceil: the smallest integer k with amax / 2**k <= max (amax = 0 -> 0);
    mx (OCP MX v1.0): floor(log2 amax) - floor(log2 max) (amax = 0 -> -127; NaN/Inf -> -128, the NaN scale).
    """
    fmt = F.get(fmt)
    if not math.isfinite(float(amax)):
        assert rule == "mx"
        return -128
    a = Fraction(float(amax))
    if rule == "mx":
        if a == 0:
            return -127
        return max(-127, min(127, floor_log2(a) - floor_log2(scale_target(fmt))))
    if a == 0:
        return 0
    k = 0
    while a / Fraction(2) ** k > scale_target(fmt):
        k += 1
    while a / Fraction(2) ** (k - 1) <= scale_target(fmt):
        k -= 1
    return max(-127, min(127, k))


def boundary_values(fmt) -> np.ndarray:
    """Every midpoint of fmt.magnitudes and each magnitude, +-1 and 2 ulp, sqrt(2)*2**k +-1 ulp, specials."""
    fmt = F.get(fmt)
    mags = np.asarray(fmt.magnitudes, np.float64)
    pts = list(mags) + list((mags[1:] + mags[:-1]) / 2)
    pts += [math.sqrt(2) * 2.0 ** k for k in range(-12, 12)]
    pts += [fmt.max * 1.5, fmt.max * 2, 1e30, 1.4e-45, 1e-40, 1.1754944e-38, 2 * fmt.max + 1]
    if fmt.kind == "float":
        top = np.flatnonzero(fmt.finite & (fmt.values == fmt.max))[0]
        pts.append(fmt.max + math.ldexp(0.5, int(fmt.exp[top])))
    p = np.asarray(pts, np.float64).astype(np.float32)
    b = p.view(np.int32).astype(np.int64)
    around = np.concatenate([b + d for d in (-2, -1, 0, 1, 2)])
    around = around[(around >= 0) & (around < 0x7F800000)].astype(np.int32).view(np.float32)
    sp = np.array([0.0, np.inf], np.float32)
    v = np.concatenate([around, sp])
    return np.concatenate([v, -v])
