"""Independent pure-Python references of the MACs (written unlike the Numba golden model), one per datapath.

* fixed accumulators (:func:`mac_reference`): built only from the :mod:`rf8sim.formats`
  decomposition and ``AccSpec.align`` / ``AccSpec.saturate`` with Python integers;
* fp32 and ``aligned:K:M`` accumulators (:func:`mac_fp32_reference`, :func:`mac_aligned_reference`):
  Python integers and ``fractions.Fraction`` only, written from the contract (docs/formats.md,
  "Accumulation: fp32" / "aligned:K:M") without the golden model's code and without numpy float
  arithmetic: every operand is decoded from its bit fields into an exact ``Fraction``, sums are
  exact, and the one rounding to float32 (nearest, ties to even, subnormals, overflow to Inf) is
  written from the definition in :func:`rne_f32`.

:func:`trace` picks the one of a :class:`~rf8sim.hdl.spec.MacSpec` by ``acc.kind``.  They are slow
(Python per beat) and check both the RTL and the golden model.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .. import formats as F
from ..accspec import AccSpec

__all__ = ["trace", "aligned_table", "mac_reference", "fp32_rne_bits", "decode_float16", "decode_weight", "rne_f32",
           "f32_value", "mac_fp32_reference", "mac_aligned_reference", "NAN32", "INF32"]


def trace(spec, a_codes, w_codes, clear) -> tuple:
    """(accumulator after each beat, overflow, invalid) of ``spec``'s datapath: the fixed-point value
    (Python ints) or the float32 bits (uint32)."""
    if spec.kind == "fixed":
        return mac_reference(a_codes, w_codes, clear, spec.a, spec.w, spec.acc)
    if spec.kind == "fp32":
        return mac_fp32_reference(a_codes, w_codes, clear, spec.a.name, spec.w.name)
    return mac_aligned_reference(a_codes, w_codes, clear, spec.a.name, spec.w.name, spec.acc.block,
                                 spec.acc.align_bits)


def aligned_table(a_fmt, w_fmt, acc: AccSpec):
    """(table, special): 256 x 256 aligned products as Python ints, and the NaN/Inf mask."""
    a, w = F.get(a_fmt), F.get(w_fmt)
    table = [[0] * 256 for _ in range(256)]
    for ca in range(256):
        if not a.finite[ca]:
            continue
        sa, ga, ea = int(a.sign[ca]), int(a.sig[ca]), int(a.exp[ca])
        row = table[ca]
        for cw in range(256):
            if not w.finite[cw]:
                continue
            row[cw] = acc.align(sa ^ int(w.sign[cw]), ga * int(w.sig[cw]), ea + int(w.exp[cw]))
    special = ~(a.finite[:, None] & w.finite[None, :])
    return table, special


def mac_reference(a_codes, w_codes, clear, a_fmt, w_fmt, acc: AccSpec):
    """Accumulator (list of Python ints), overflow and invalid (bool arrays) after each beat.

    ``a_codes``/``w_codes`` are uint8 of shape (n,) or (n, lanes); ``clear`` bool (n,).
    """
    a_codes = np.asarray(a_codes, np.uint8)
    w_codes = np.asarray(w_codes, np.uint8)
    if a_codes.ndim == 1:
        a_codes, w_codes = a_codes[:, None], w_codes[:, None]
    clear = np.asarray(clear, bool)
    table, special = aligned_table(a_fmt, w_fmt, acc)
    n = len(clear)
    out = [0] * n
    ovf = np.zeros(n, bool)
    inv = np.zeros(n, bool)
    beat_inv = special[a_codes, w_codes].any(axis=1)
    cur, o, iv = 0, False, False
    al = a_codes.tolist()
    wl = w_codes.tolist()
    for k in range(n):
        if clear[k]:
            cur, o, iv = 0, False, False
        s = 0
        for ca, cw in zip(al[k], wl[k]):
            s += table[ca][cw]
        cur, sat = acc.saturate(cur + s)
        o = o or sat
        iv = iv or bool(beat_inv[k])
        out[k] = cur
        ovf[k] = o
        inv[k] = iv
    return out, ovf, inv


def fp32_rne_bits(v: int, frac_bits: int) -> int:
    """float32 bit pattern of ``v * 2**-frac_bits`` rounded to nearest even (no overflow/subnormal in range)."""
    if v == 0:
        return 0
    sign = 1 if v < 0 else 0
    m = -v if sign else v
    n = m.bit_length()
    if n > 24:
        sh = n - 24
        q, r = divmod(m, 1 << sh)
        half = 1 << (sh - 1)
        if r > half or (r == half and q & 1):
            q += 1
        if q == 1 << 24:
            q >>= 1
            sh += 1
    else:
        sh = n - 24
        q = m << -sh
    e = 23 + sh - frac_bits  # value = q * 2**(sh - frac) with q in [2**23, 2**24)
    be = e + 127
    if not 1 <= be <= 254:
        raise ValueError(f"{v} * 2**-{frac_bits} is outside the float32 normal range")
    return (sign << 31) | (be << 23) | (q & ((1 << 23) - 1))


# ---------------------------------------------------------------------------
# fp32 / aligned accumulators (16-bit float activations)

NAN32 = 0x7FC00000
INF32 = 0x7F800000
_MAX32 = Fraction((1 << 24) - 1) * Fraction(2) ** 104  # largest finite float32

#: IEEE-style 16-bit activation fields (exp_bits, man_bits, bias), straight from the contract
A16_FIELDS = {"bf16": (8, 7, 127), "fp16": (5, 10, 15)}


def decode_float16(code: int, fmt: str):
    """(kind, sign, sig, exp, efield): kind in 'num', 'inf', 'nan'; value = (-1)**sign * sig * 2**exp."""
    eb, mb, bias = A16_FIELDS[fmt]
    s = (code >> 15) & 1
    E = (code >> mb) & ((1 << eb) - 1)
    M = code & ((1 << mb) - 1)
    if E == (1 << eb) - 1:
        return ("nan" if M else "inf"), s, 0, 0, E
    if E == 0:
        return "num", s, M, 1 - bias - mb, 1
    return "num", s, (1 << mb) | M, E - bias - mb, E


def decode_weight(code: int, fmt):
    """(kind, sign, sig, exp) of a weight code: 8-bit formats from the Format tables, bf16 from its fields."""
    if isinstance(fmt, str) and fmt in A16_FIELDS:
        k, s, g, e, _ = decode_float16(code, fmt)
        return k, s, g, e
    f = F.get(fmt)
    sp = int(f.special[code])
    if sp == F.SPECIAL_NAN:
        return "nan", int(f.sign[code]), 0, 0
    if sp == F.SPECIAL_INF:
        return "inf", int(f.sign[code]), 0, 0
    return "num", int(f.sign[code]), int(f.sig[code]), int(f.exp[code])


def rne_f32(x: Fraction, zero_sign: int = 0) -> tuple[int, bool]:
    """(float32 bits, overflow) of ``x`` rounded to nearest, ties to even.

    ``zero_sign`` is the sign of an exact zero; a nonzero value that rounds to zero keeps its own sign.
    """
    if x == 0:
        return zero_sign << 31, False
    s = 1 if x < 0 else 0
    m = -x if s else x
    # find e with 2**e <= m < 2**(e+1)
    e = m.numerator.bit_length() - m.denominator.bit_length()
    if Fraction(2) ** e > m:
        e -= 1
    q = max(e, -126) - 23          # exponent of the result's last bit
    scaled = m / Fraction(2) ** q  # the significand as a rational
    n = scaled.numerator // scaled.denominator
    r = scaled - n
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and n % 2 == 1):
        n += 1
    val = Fraction(n) * Fraction(2) ** q
    if val > _MAX32:
        return (s << 31) | INF32, True
    if n == 0:
        return s << 31, False
    if n >= 1 << 23:  # normal
        if n == 1 << 24:
            n >>= 1
            q += 1
        be = q + 23 + 127
        return (s << 31) | (be << 23) | (n - (1 << 23)), False
    return (s << 31) | n, False  # subnormal


def f32_value(bits: int):
    """('num', sign, Fraction) / ('inf', sign, None) / ('nan', 0, None) of float32 bits."""
    s = bits >> 31
    E = (bits >> 23) & 0xFF
    M = bits & 0x7FFFFF
    if E == 0xFF:
        return ("nan" if M else "inf"), s, None
    v = Fraction(M if E == 0 else M | (1 << 23)) * Fraction(2) ** ((max(E, 1)) - 150)
    return "num", s, (-v if s else v)


def _add(acc_bits: int, kind: str, sign: int, val: Fraction):
    """One fused add acc + x; returns (bits, overflow, invalid)."""
    ak, asg, av = f32_value(acc_bits)
    if ak == "nan" or kind == "nan":
        return NAN32, False, True
    if ak == "inf" and kind == "inf":
        if asg != sign:
            return NAN32, False, True
        return acc_bits, False, False
    if ak == "inf":
        return acc_bits, False, False
    if kind == "inf":
        return (sign << 31) | INF32, False, False
    total = av + val
    if total == 0:
        both_zero = av == 0 and val == 0
        zs = (asg & sign) if both_zero else 0
        return rne_f32(total, zs)[0], False, False
    bits, ovf = rne_f32(total)
    return bits, ovf, False


def _product(ca: int, cw: int, a_fmt: str, w_fmt):
    ka, sa, ga, ea, _ = decode_float16(ca, a_fmt)
    kw, sw, gw, ew = decode_weight(cw, w_fmt)
    s = sa ^ sw
    if ka == "nan" or kw == "nan":
        return "nan", 0, Fraction(0)
    if ka == "inf" or kw == "inf":
        other_zero = (gw == 0) if ka == "inf" else (ga == 0)
        if (ka == "inf" and kw == "num" and other_zero) or (kw == "inf" and ka == "num" and other_zero):
            return "nan", 0, Fraction(0)
        return "inf", s, Fraction(0)
    v = Fraction(ga * gw) * Fraction(2) ** (ea + ew)
    return "num", s, (-v if s else v)


def _as2d(x, dtype):
    x = np.asarray(x, dtype)
    return x[:, None] if x.ndim == 1 else x


def mac_fp32_reference(a_codes, w_codes, clear, a_fmt: str, w_fmt):
    """float32 bits (uint32), overflow, invalid after each beat: a chain of fused adds in lane order."""
    a = _as2d(a_codes, np.uint16).tolist()
    w = _as2d(w_codes, np.uint16).tolist()
    clear = np.asarray(clear, bool)
    n = len(clear)
    out = np.zeros(n, np.uint32)
    ovf = np.zeros(n, bool)
    inv = np.zeros(n, bool)
    acc, o, iv = 0, False, False
    for k in range(n):
        if clear[k]:
            acc, o, iv = 0, False, False
        for ca, cw in zip(a[k], w[k]):
            kind, s, v = _product(ca, cw, a_fmt, w_fmt)
            acc, o1, i1 = _add(acc, kind, s, v)
            o, iv = o or o1, iv or i1
        out[k], ovf[k], inv[k] = acc, o, iv
    return out, ovf, inv


def _rne_int(x: Fraction) -> int:
    n = x.numerator // x.denominator
    r = x - n
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and n % 2 == 1):
        n += 1
    return n


def mac_aligned_reference(a_codes, w_codes, clear, a_fmt: str, w_fmt, K: int, M: int):
    """The ``aligned:K:M`` accumulator after each beat (float32 bits, overflow, invalid).

    Per block of K terms from the last clear: E_max of the activations' exponent fields
    (zeros/subnormals count as 1), each activation rounded (nearest even on the magnitude,
    then saturated) to a signed M-bit multiple of 2**q, q = E_max - bias - (M - 2); the exact
    block sum is added to the float32 accumulator with one rounding on the block's last beat.
    """
    eb, mb, bias = A16_FIELDS[a_fmt]
    a = _as2d(a_codes, np.uint16)
    w = _as2d(w_codes, np.uint16)
    lanes = a.shape[1]
    B = K // lanes
    clear = np.asarray(clear, bool)
    n = len(clear)
    out = np.zeros(n, np.uint32)
    ovf = np.zeros(n, bool)
    inv = np.zeros(n, bool)
    acc, o, iv = 0, False, False
    pos = 0
    for k in range(n):
        if clear[k]:
            acc, o, iv, pos = 0, False, False, 0
        if pos % B == 0:
            start = k
        pos += 1
        if pos % B == 0:  # last beat of a block: the block is a[start:k+1]
            terms = [(int(ca), int(cw)) for kk in range(start, k + 1) for ca, cw in zip(a[kk], w[kk])]
            dec = [(decode_float16(ca, a_fmt), decode_weight(cw, w_fmt)) for ca, cw in terms]
            special = any(da[0] != "num" or dw[0] != "num" for da, dw in dec)
            if special:
                acc, iv = NAN32, True
            else:
                emax = max(da[4] for da, _ in dec)
                q = (emax - bias) - (M - 2)
                total = Fraction(0)
                for da, dw in dec:
                    _, sa, ga, ea, _ = da
                    mag = _rne_int(Fraction(ga) * Fraction(2) ** (ea - q))
                    mag = min(mag, (1 << (M - 1)) - 1)
                    ai = -mag if sa else mag
                    _, sw, gw, ew = dw
                    t = Fraction(ai * gw) * Fraction(2) ** (q + ew)
                    total += -t if sw else t
                # the block sum is an exact value; its sign for an exact zero is +0 (x + -x)
                acc, o1, i1 = _add(acc, "num", 0 if total >= 0 else 1, total)
                o, iv = o or o1, iv or i1
        out[k], ovf[k], inv[k] = acc, o, iv
    return out, ovf, inv
