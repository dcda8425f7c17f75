"""Independent references for the format zoo (APoT, LNS, posits, E2M1, RF8 three-term variants).

Written unlike rf8sim.formats / rf8sim.golden.codec: level sets are built from the papers'
definitions with integers or Decimal, rounding is decided by exact Fraction comparisons (boundary
points) or by float64 distances / log2 on whole arrays (random points), posits come from
universal_dtypes and softposit.  Used by tests/test_formats_zoo.py only.
"""

from __future__ import annotations

import math
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np

from rf8sim import formats as F


# ---------------------------------------------------------------------------
# level sets from the papers' definitions


def apot4_authors_levels() -> list[float]:
    """The authors' build_power_value(B=3, additive=True) (Li et al. 2020 code), unnormalized."""
    base_a, base_b = [0.0], [0.0]
    for i in range(3):
        if i < 2:
            base_a.append(2.0 ** (-i - 1))
        else:
            base_b.append(2.0 ** (-i - 1))
            base_a.append(2.0 ** (-i - 2))
    return sorted({a + b for a in base_a for b in base_b})


def apot_eq5_levels(k_bits=(4, 3), n=2, keep=128) -> list[Fraction]:
    """Eq. 5 of Li et al.: p_i in {0, 2^-(i+1), 2^-(i+1+n), ...}, here with 12 and 11 powers (the
    exponents that keep every sum inside 24 bits), integer arithmetic on the grid 2^-23; zero and
    the keep - 1 largest sums."""
    den = 1 << 23
    p0 = [0] + [den >> (1 + n * j) for j in range(12)]
    p1 = [0] + [den >> (2 + n * j) for j in range(11)]
    sums = sorted({a + b for a in p0 for b in p1})
    sums = [sums[0]] + sums[len(sums) - (keep - 1):]
    return [Fraction(s, den) for s in sums]


def lns_table(frac_bits=3, table_bits=8) -> list[Fraction]:
    """2^(f / 2^frac_bits) rounded to nearest with table_bits fraction bits, with 50-digit Decimal."""
    getcontext().prec = 50
    out = []
    for f in range(1 << frac_bits):
        v = Decimal(2) ** (Decimal(f) / Decimal(1 << frac_bits)) * (1 << table_bits)
        out.append(Fraction(int(v.to_integral_value()), 1 << table_bits))  # never a tie (irrational)
    return out


def lns_values(code_bits=8, frac_bits=3, table_bits=8) -> list[Fraction | None]:
    """Value of every code: sign bit, then L as (code_bits-1)-bit two's complement; L_min is zero."""
    A = lns_table(frac_bits, table_bits)
    w = code_bits - 1
    out = []
    for c in range(1 << code_bits):
        s, L = c >> w, c & ((1 << w) - 1)
        if L >= 1 << (w - 1):
            L -= 1 << w
        if L == -(1 << (w - 1)):
            v = Fraction(0)
        else:
            v = Fraction(2) ** (L >> frac_bits) * A[L & ((1 << frac_bits) - 1)]
        out.append(-v if s else v)
    return out


def terms_multipliers(name) -> list[Fraction]:
    """Multipliers 1 + sum(t 2^-d) of an RF8 three-term variant, from the spec's term lists."""
    return [1 + sum((Fraction(t, 2 ** d) for t, d in terms), Fraction(0))
            for terms in F.RF8_TERMS_VARIANTS[name]["multipliers"]]


# ---------------------------------------------------------------------------
# rounding oracles


def nearest_index_exact(x: float, mags: list[Fraction]) -> int:
    """Index of the nearest magnitude to |x| (ties to the even index), saturating; exact."""
    a = abs(Fraction(x))
    if a >= mags[-1]:
        return len(mags) - 1
    lo, hi = 0, len(mags) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mags[mid] <= a:
            lo = mid
        else:
            hi = mid
    dl, dh = a - mags[lo], mags[hi] - a
    if dl < dh:
        return lo
    if dh < dl:
        return hi
    return lo if lo % 2 == 0 else hi


def nearest_index_f64(x: np.ndarray, mags: np.ndarray) -> np.ndarray:
    """Vectorized nearest (float64 distances, exact for these formats), ties to even, saturating."""
    a = np.abs(x.astype(np.float64))
    n = len(mags)
    i = np.clip(np.searchsorted(mags, a, side="right") - 1, 0, n - 1)
    j = np.minimum(i + 1, n - 1)
    dl, dh = a - mags[i], mags[j] - a
    pick = np.where(dh < dl, j, i)
    pick = np.where((dh == dl) & (j != i), np.where(i % 2 == 0, i, j), pick)
    return np.where(a >= mags[-1], n - 1, pick)


def lns_L_exact(x: float, frac_bits=3, lmin=-64, lmax=63) -> int | None:
    """The LNS code's L for x: the multiple of 2^-frac_bits nearest log2|x| (exact integer
    comparisons |x|^(2^(f+1)) vs 2^(2L+1)); None for zero (L <= lmin); saturating at lmax."""
    a = abs(Fraction(x))
    if a == 0:
        return None
    p = 1 << (frac_bits + 1)
    L = round((1 << frac_bits) * math.log2(a)) if a > 0 else lmin
    ap = a ** p
    while ap >= Fraction(2) ** (2 * L + 1):
        L += 1
    while ap < Fraction(2) ** (2 * L - 1):
        L -= 1
    if L <= lmin:
        return None
    return min(L, lmax)


def lns_L_f64(x: np.ndarray, frac_bits=3, lmin=-64, lmax=63) -> np.ndarray:
    """Vectorized: rint(2^f log2|x|) in float64, lmin for zero / below, saturating."""
    a = np.abs(x.astype(np.float64))
    with np.errstate(divide="ignore"):
        L = np.rint((1 << frac_bits) * np.log2(np.where(a > 0, a, 1e-300)))
    L = np.where(a > 0, L, lmin)
    return np.clip(L, lmin, lmax).astype(np.int64)


def lns_code(L: np.ndarray, neg: np.ndarray, code_bits=8) -> np.ndarray:
    w = code_bits - 1
    return ((neg.astype(np.int64) << w) | (L & ((1 << w) - 1))).astype(np.uint8)


# ---------------------------------------------------------------------------
# test inputs


def around(vals) -> np.ndarray:
    """float32 points at, just below and just above each positive value, both signs."""
    v = np.asarray(vals, np.float32)
    v = v[v > 0]
    b = v.view(np.int32)
    pts = np.concatenate([v, (b - 1).view(np.float32), (b + 1).view(np.float32)])
    return np.concatenate([pts, -pts]).astype(np.float32)


def random_f32(n: int, seed: int, span: float = 30.0) -> np.ndarray:
    """n float32 values, log-uniform magnitudes over 2^-span..2^span, random signs."""
    rng = np.random.default_rng(seed)
    m = np.exp2(rng.uniform(-span, span, n)) * rng.choice([-1.0, 1.0], n)
    return m.astype(np.float32)
