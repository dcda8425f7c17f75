"""Independent references for the W8A16 accumulators (docs/formats.md, "Accumulation: fp32" and
"Accumulation: aligned:K:M"), written with Python integers and fractions.Fraction only.

Nothing here uses the golden model's kernels, its tables or float arithmetic on values:
codes are decoded from their bit fields by the format definitions (IEEE bf16/fp16 written
out here; the 8-bit formats through the Fraction table of oracles.formats), sums are exact
Fractions, and the one rounding to binary32 is written from its definition (nearest, ties to
even, subnormals at 2**-149, overflow to Inf): :func:`rne_f32`, the only float32 rounding of
the oracles (oracles.w8a16 and the tests use it too).
"""

from __future__ import annotations

import struct
from fractions import Fraction

from oracles.exact import floor_log2, round_half_even
from oracles.formats import table as _table8

from rf8sim import formats as F

NAN = "nan"
INF = "inf"
NINF = "-inf"
CANONICAL_NAN = 0x7FC00000
F32_MAX = Fraction((1 << 24) - 1) * Fraction(2) ** 104


class Num:
    """A finite exact value with the sign of zero kept."""

    __slots__ = ("v", "neg")

    def __init__(self, v: Fraction, neg: bool | None = None):
        self.v = Fraction(v)
        self.neg = (self.v < 0) if neg is None or self.v != 0 else bool(neg)

    def __repr__(self):
        return f"Num({self.v}{', -0' if self.v == 0 and self.neg else ''})"


# ---------------------------------------------------------------------------
# decoding codes from the definitions


def _ieee(code: int, e_bits: int, m_bits: int):
    bias = (1 << (e_bits - 1)) - 1
    s = code >> (e_bits + m_bits) & 1
    E = (code >> m_bits) & ((1 << e_bits) - 1)
    Mf = code & ((1 << m_bits) - 1)
    if E == (1 << e_bits) - 1:
        return NAN if Mf else (NINF if s else INF)
    if E == 0:
        v = Fraction(Mf) * Fraction(2) ** (1 - bias - m_bits)
    else:
        v = Fraction((1 << m_bits) + Mf) * Fraction(2) ** (E - bias - m_bits)
    return Num(-v if s else v, bool(s))


def decode(code: int, fmt):
    """Exact value of a code: Num, or NAN / INF / NINF."""
    fmt = F.get(fmt)
    code = int(code)
    if fmt.name == "bf16":
        return _ieee(code, 8, 7)
    if fmt.name == "fp16":
        return _ieee(code, 5, 10)
    t = _table8(fmt)[code]
    if isinstance(t, str):
        return t
    return Num(t, bool(code >> 7) if fmt.kind != "int" else False)


def exp_field(code: int, fmt) -> int:
    """The biased exponent field an exponent comparator sees (zeros/subnormals: 1)."""
    fmt = F.get(fmt)
    code = int(code)
    if fmt.name == "bf16":
        E = (code >> 7) & 0xFF
    elif fmt.name == "fp16":
        E = (code >> 10) & 0x1F
    else:  # 8-bit floats and RF8: s | E | low bits
        E = (code >> (7 - fmt.exp_bits)) & ((1 << fmt.exp_bits) - 1)
    return max(E, 1)


def bias_of(fmt) -> int:
    fmt = F.get(fmt)
    return {"bf16": 127, "fp16": 15}.get(fmt.name, fmt.bias)


def product(a, w, scale: int = 0):
    """IEEE product of two decoded values (exact; NaN for NaN operands and Inf * 0)."""
    if a == NAN or w == NAN:
        return NAN
    if isinstance(a, str) or isinstance(w, str):
        sa = a.neg if isinstance(a, Num) else a == NINF
        sw = w.neg if isinstance(w, Num) else w == NINF
        for x in (a, w):
            if isinstance(x, Num) and x.v == 0:
                return NAN
        return NINF if sa != sw else INF
    return Num(a.v * w.v * Fraction(2) ** scale, a.neg != w.neg)


# ---------------------------------------------------------------------------
# binary32 rounding from the definition


def rne_f32(x: Fraction):
    """(rounded value as Fraction, overflowed) or (INF/NINF, True); zero results: caller's sign.

    From the definition: the quantum is 2**(e-23) for the binade 2**e <= |x| < 2**(e+1), at
    least 2**-149 (subnormals); the multiple of the quantum nearest |x|, ties to even; a result
    above the largest finite (2**24-1) * 2**104 overflows to Inf."""
    if x == 0:
        return Fraction(0), False
    a = abs(Fraction(x))
    ulp = Fraction(2) ** (max(floor_log2(a), -126) - 23)
    r = round_half_even(a / ulp) * ulp
    if r > F32_MAX:
        return (NINF if x < 0 else INF), True
    return (-r if x < 0 else r), False


def add(acc, p):
    """IEEE binary32 ``RNE(acc + p)`` with ``acc`` a binary32 value and ``p`` exact:
    (result, overflow, invalid)."""
    if acc == NAN or p == NAN:
        return NAN, False, True
    if isinstance(acc, str) or isinstance(p, str):
        if isinstance(acc, str) and isinstance(p, str) and acc != p:
            return NAN, False, True
        return (acc if isinstance(acc, str) else p), False, False
    s = acc.v + p.v
    if s == 0:
        if acc.v == 0 and p.v == 0:
            return Num(0, acc.neg and p.neg), False, False
        return Num(0, False), False, False
    r, o = rne_f32(s)
    if isinstance(r, str):
        return r, True, False
    return Num(r, s < 0), False, False


def bits(x) -> int:
    """binary32 bit pattern of a reference value (NaN: the canonical 0x7FC00000)."""
    if x == NAN:
        return CANONICAL_NAN
    if x == INF:
        return 0x7F800000
    if x == NINF:
        return 0xFF800000
    if x.v == 0:
        return 0x80000000 if x.neg else 0
    f = float(x.v)  # exact: binary32 values are float64 values
    assert Fraction(f) == x.v
    return struct.unpack("<I", struct.pack("<f", f))[0]


# ---------------------------------------------------------------------------
# accumulators


def fp32_trace(a_codes, w_codes, clear, a_fmt, w_fmt):
    """fp32 MAC: per beat (lanes in order, each a fused add): [(bits, overflow, invalid)]."""
    out = []
    acc, ovf, inv = Num(0, False), False, False
    for i in range(len(a_codes)):
        if clear[i]:
            acc, ovf, inv = Num(0, False), False, False
        for ca, cw in zip(a_codes[i], w_codes[i]):
            acc, o, v = add(acc, product(decode(ca, a_fmt), decode(cw, w_fmt)))
            ovf |= o
            inv |= v
        out.append((bits(acc), ovf, inv))
    return out


def fp32_dot(a_codes, w_codes, a_fmt, w_fmt, scales=None):
    """fp32 chain over one row: (bits, overflow, invalid); ``scales[k]``: exponent added to term k."""
    acc, ovf, inv = Num(0, False), False, False
    for k, (ca, cw) in enumerate(zip(a_codes, w_codes)):
        acc, o, v = add(acc, product(decode(ca, a_fmt), decode(cw, w_fmt), 0 if scales is None else scales[k]))
        ovf |= o
        inv |= v
    return bits(acc), ovf, inv


def align_block(a_codes, a_fmt, M: int):
    """(q, [a_int]) of one block, or None if it holds a NaN/Inf activation."""
    vals = [decode(c, a_fmt) for c in a_codes]
    if any(isinstance(v, str) for v in vals):
        return None
    emax = max(exp_field(c, a_fmt) for c in a_codes)
    q = (emax - bias_of(a_fmt)) - (M - 2)
    ints = []
    for v in vals:
        fl = min(round_half_even(abs(v.v) / Fraction(2) ** q), (1 << (M - 1)) - 1)
        ints.append(-fl if v.v < 0 else fl)
    return q, ints


def aligned_block_value(a_codes, w_codes, a_fmt, w_fmt, M: int, scale: int = 0):
    """Exact block sum sum(a_int * 2**q * w) (a Fraction), or NAN."""
    al = align_block(a_codes, a_fmt, M)
    ws = [decode(c, w_fmt) for c in w_codes]
    if al is None or any(isinstance(w, str) for w in ws):
        return NAN
    q, ints = al
    return sum((Fraction(ai) * Fraction(2) ** (q + scale) * w.v for ai, w in zip(ints, ws)), Fraction(0))


def aligned_dot(a_codes, w_codes, a_fmt, w_fmt, K: int, M: int, scales=None):
    """aligned:K:M over one row (length a multiple of K): (bits, overflow, invalid);
    ``scales[b]``: exponent added to block b."""
    acc, ovf, inv = Num(0, False), False, False
    for b in range(len(a_codes) // K):
        s = aligned_block_value(a_codes[b * K:(b + 1) * K], w_codes[b * K:(b + 1) * K], a_fmt, w_fmt, M,
                                0 if scales is None else scales[b])
        if s == NAN:
            acc, inv = NAN, True
            continue
        acc, o, v = add(acc, Num(s, False))
        ovf |= o
        inv |= v
    return bits(acc), ovf, inv


def aligned_trace(a_codes, w_codes, clear, a_fmt, w_fmt, K: int, M: int):
    """aligned:K:M MAC trace: per beat (bits, overflow, invalid); blocks of K/lanes beats from each clear."""
    lanes = len(a_codes[0])
    bpb = K // lanes
    out = []
    acc, ovf, inv = Num(0, False), False, False
    i0 = 0
    for i in range(len(a_codes)):
        if clear[i]:
            acc, ovf, inv = Num(0, False), False, False
            i0 = i
        if (i - i0) % bpb == bpb - 1:
            blk_a = [c for r in a_codes[i - bpb + 1:i + 1] for c in r]
            blk_w = [c for r in w_codes[i - bpb + 1:i + 1] for c in r]
            s = aligned_block_value(blk_a, blk_w, a_fmt, w_fmt, M)
            if s == NAN:
                acc, inv = NAN, True
            else:
                acc, o, v = add(acc, Num(s, False))
                ovf |= o
                inv |= v
        out.append((bits(acc), ovf, inv))
    return out
