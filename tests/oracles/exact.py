"""Exact helpers on rationals shared by the oracles: floor(log2) and round half to even."""

from __future__ import annotations

from fractions import Fraction


def floor_log2(q: Fraction) -> int:
    """Largest f with 2**f <= q (q > 0), by exact comparisons."""
    q = Fraction(q)
    f = q.numerator.bit_length() - q.denominator.bit_length()
    while Fraction(2) ** f > q:
        f -= 1
    while Fraction(2) ** (f + 1) <= q:
        f += 1
    return f


def round_half_even(t: Fraction) -> int:
    """The integer nearest to ``t``, ties to the even one, from floor and the remainder."""
    t = Fraction(t)
    fl = t.numerator // t.denominator
    rem = t - fl
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2 == 1):
        fl += 1
    return fl
