"""The fixed-point accumulator of a GEMM row from its definition, with Python integers and Fractions.

Each product ``a * w * 2**(frac_bits + off)`` of two exact code values (oracles.formats.table) is
floored on its own and added in k order with saturation at the accumulator's range after every
add (sticky overflow); a NaN/Inf operand contributes nothing and sets the sticky invalid flag.
"""

from __future__ import annotations

from fractions import Fraction

from oracles.formats import table

from rf8sim import formats as F


def gemm_row(a_row, w_row, fa, fw, spec, off):
    """(acc, overflow, invalid) of ``sum_k floor(a_k * w_k * 2**(spec.frac_bits + off))``, k-ordered, clamped."""
    ta, tw = table(F.get(fa)), table(F.get(fw))
    acc, ovf, inv = 0, False, False
    for ca, cw in zip(a_row.tolist(), w_row.tolist()):
        va, vw = ta[int(ca)], tw[int(cw)]
        if isinstance(va, str) or isinstance(vw, str):
            inv = True
            continue
        p = va * vw * Fraction(2) ** (spec.frac_bits + off)
        acc += p.numerator // p.denominator  # floor
        if acc > spec.max:
            acc, ovf = spec.max, True
        elif acc < spec.min:
            acc, ovf = spec.min, True
    return acc, ovf, inv
