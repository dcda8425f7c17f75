"""Independent pure-Python reference of the MAC (written unlike the Numba golden model).

Built only from the :mod:`rf8sim.formats` decomposition and ``AccSpec.align`` /
``AccSpec.saturate`` with Python integers, so it can check both the RTL and the
golden model.  It is slow (one Python loop iteration per beat) but exact for any
width.
"""

from __future__ import annotations

import numpy as np

from .. import formats as F
from ..golden.accspec import AccSpec

__all__ = ["aligned_table", "mac_reference", "fp32_rne_bits"]


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
