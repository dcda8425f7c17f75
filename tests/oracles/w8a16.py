"""Independent W8A16 references written from the contract with Python ints and Fractions.

Nothing here uses torch or float arithmetic for a result: float32 rounding is
oracles.binary32.rne_f32 (from its definition), values of 16-bit codes are decoded
from their bit fields.
"""

from __future__ import annotations

import struct
from fractions import Fraction

from oracles.binary32 import rne_f32
from oracles.exact import floor_log2, round_half_even

from rf8sim import formats as F

NAN = "nan"
F16 = {"bf16": (8, 7, 127), "fp16": (5, 10, 15)}


def decode16(code: int, fmt: str):
    """Fraction value, or ('inf', sign) / NAN, plus a negative-zero flag: returns (kind, value, sign)."""
    eb, mb, bias = F16[fmt]
    s = (code >> (eb + mb)) & 1
    E = (code >> mb) & ((1 << eb) - 1)
    m = code & ((1 << mb) - 1)
    if E == (1 << eb) - 1:
        return ("nan", None, s) if m else ("inf", None, s)
    v = Fraction(m, 1) * Fraction(2) ** (1 - bias - mb) if E == 0 else \
        Fraction((1 << mb) | m) * Fraction(2) ** (E - bias - mb)
    return ("fin", -v if s else v, s)


def weight_value(code: int, fmt: str, k: int):
    """(kind, Fraction value * 2**k, sign) of an 8-bit code (from the spec's decomposition) or a bf16 code."""
    if fmt in F16:
        kind, v, s = decode16(code, fmt)
        return kind, (v * Fraction(2) ** k if v is not None else None), s
    f = F.get(fmt)
    sp = int(f.special[code])
    s = int(f.sign[code])
    if sp == F.SPECIAL_NAN:
        return "nan", None, s
    if sp == F.SPECIAL_INF:
        return "inf", None, s
    v = Fraction(int(f.sig[code])) * Fraction(2) ** (int(f.exp[code]) + k)
    return "fin", -v if s else v, s


def f32_bits(kind: str, v, sign: int) -> int:
    if kind == "nan":
        return 0x7FC00000
    if kind == "inf":
        return 0xFF800000 if sign else 0x7F800000
    if v == 0:
        return 0x80000000 if sign else 0
    b = struct.unpack("<I", struct.pack("<f", float(v)))[0]  # v is a float32 value: exact
    assert Fraction(struct.unpack("<f", struct.pack("<I", b))[0]) == v
    return b


class Acc:
    """The contract's fp32 accumulator state: (kind, value, sign) plus sticky flags."""

    def __init__(self):
        self.kind, self.v, self.s = "fin", Fraction(0), 0
        self.overflow = self.invalid = False

    def add(self, kind, v, s):
        """acc = RNE_f32(acc + p) for an exact operand p = (kind, v, s)."""
        if self.kind == "nan" or kind == "nan":
            self.kind = "nan"
            self.invalid = True
            return
        if self.kind == "inf" and kind == "inf":
            if self.s != s:
                self.kind = "nan"
                self.invalid = True
            return
        if self.kind == "inf":
            return
        if kind == "inf":
            self.kind, self.s = "inf", s
            return
        x = self.v + v
        if x == 0:
            if self.v == 0 and v == 0:
                self.s = 1 if (self.s and s) else 0
            else:
                self.s = 0
            self.v = Fraction(0)
            return
        r, overflow = rne_f32(x)
        if overflow:
            self.kind, self.s = "inf", 1 if x < 0 else 0
            self.overflow = True
            return
        self.v, self.s = r, (1 if x < 0 else 0)

    def bits(self) -> int:
        return f32_bits(self.kind, self.v, self.s)


def product(a, w):
    """Exact product of two (kind, value, sign) operands with IEEE specials."""
    (ka, va, sa), (kw, vw, sw) = a, w
    s = sa ^ sw
    if ka == "nan" or kw == "nan":
        return "nan", None, 0
    if ka == "inf" or kw == "inf":
        other = vw if ka == "inf" else va
        if ka != "inf" or kw != "inf":
            if other == 0:
                return "nan", None, 0
        return "inf", None, s
    return "fin", va * vw, s


def fp32_dot(a_codes, w_codes, a_fmt, w_fmt, w_k):
    """One output of the fp32 accumulator: (bits, overflow, invalid)."""
    acc = Acc()
    for ac, wc, k in zip(a_codes, w_codes, w_k):
        acc.add(*product(decode16(int(ac), a_fmt), weight_value(int(wc), w_fmt, int(k))))
    return acc.bits(), acc.overflow, acc.invalid


def aligned_dot(a_codes, w_codes, a_fmt, w_fmt, w_k, K: int, M: int):
    """One output of the aligned:K:M accumulator: (bits, overflow, invalid)."""
    eb, mb, bias = F16[a_fmt]
    acc = Acc()
    for b0 in range(0, len(a_codes), K):
        ab = [int(c) for c in a_codes[b0:b0 + K]]
        wb = [weight_value(int(c), w_fmt, int(k)) for c, k in zip(w_codes[b0:b0 + K], w_k[b0:b0 + K])]
        av = [decode16(c, a_fmt) for c in ab]
        if any(x[0] != "fin" for x in av) or any(x[0] != "fin" for x in wb):
            acc.add("nan", None, 0)
            continue
        fields = [max(1, (c >> mb) & ((1 << eb) - 1)) for c in ab]
        q = (max(fields) - bias) - (M - 2)
        S = Fraction(0)
        for (_, v, s), (_, wv, _) in zip(av, wb):
            fl = min(round_half_even(abs(v) / Fraction(2) ** q), 2 ** (M - 1) - 1)
            S += (-fl if s else fl) * wv
        acc.add("fin", S * Fraction(2) ** q, 0)
    return acc.bits(), acc.overflow, acc.invalid


def encode16_ref(x_bits: int, fmt: str, saturate=False) -> int:
    """float32 bit pattern -> 16-bit code from the definition (RNE on the integer significand)."""
    eb, mb, bias = F16[fmt]
    s = x_bits >> 31
    E = (x_bits >> 23) & 0xFF
    m = x_bits & 0x7FFFFF
    top = (1 << eb) - 1
    if E == 0xFF:
        if m:
            return {"bf16": 0x7FC0, "fp16": 0x7E00}[fmt]
        return (s << 15) | (top << mb) if not saturate else (s << 15) | ((top << mb) - 1)
    v = Fraction(m) * Fraction(2) ** -149 if E == 0 else Fraction((1 << 23) | m) * Fraction(2) ** (E - 150)
    if v == 0:
        return s << 15
    quantum = Fraction(2) ** (max(floor_log2(v), 1 - bias) - mb)
    r = round_half_even(v / quantum) * quantum
    maxv = Fraction((1 << (mb + 1)) - 1) * Fraction(2) ** (top - 1 - bias - mb)
    if r > maxv:
        return (s << 15) | (((top << mb) - 1) if saturate else (top << mb))
    # encode r: subnormal if below 2**(1-bias)
    if r < Fraction(2) ** (1 - bias):
        return (s << 15) | int(r / Fraction(2) ** (1 - bias - mb))
    e = floor_log2(r)
    man = int(r / Fraction(2) ** (e - mb)) - (1 << mb)
    return (s << 15) | ((e + bias) << mb) | man
