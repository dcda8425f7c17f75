"""Stimulus for the W8A16 units: 16-bit activation codes, 8-bit (or bf16) weight codes.

``random_stream16`` builds seeded accumulation sequences (lengths log-uniform, whole
blocks for the aligned accumulator), each with a style: uniform codes, realistic
activations (|x| around 1), edge-heavy (signed zeros, subnormals, min normal, max,
Inf, NaN), overflow (huge same-sign terms, then the sign flips), catastrophic
cancellation (each term followed by its negation, plus a small remainder), tiny
(subnormal results), long sums of equal terms.  ``product_sweep16`` walks all 65,536
activation codes against every weight code.
"""

from __future__ import annotations

import numpy as np

from .. import formats as F
from .stimulus import Stream
from .w8a16 import A16Config

__all__ = ["edge_codes16", "weight_codes", "random_stream16", "product_sweep16", "STYLES16"]

STYLES16 = ("uniform", "realistic", "edge", "overflow", "cancel", "tiny", "long-equal")


def edge_codes16(cfg_a) -> np.ndarray:
    """Zeros, smallest/largest subnormal, smallest normal, 1.0, largest finite, Inf, NaNs (both signs)."""
    eb, mb, bias = cfg_a.exp_bits, cfg_a.man_bits, cfg_a.bias
    E1 = (1 << eb) - 1
    mags = [0, 1, (1 << mb) - 1, 1 << mb, (1 << mb) | 1, bias << mb, (bias << mb) | 1,
            ((E1 - 1) << mb) | ((1 << mb) - 1), (E1 - 1) << mb, E1 << mb, (E1 << mb) | (1 << (mb - 1)),
            (E1 << mb) | 1, ((bias + 1) << mb) - 1]
    codes = set()
    for mg in mags:
        codes |= {mg, mg | 0x8000}
    return np.array(sorted(codes), np.uint16)


def weight_codes(w) -> tuple[np.ndarray, np.ndarray]:
    """(all weight codes, edge weight codes) for a WeightPlan."""
    if w.bits == 16:
        from .w8a16 import _fields16
        allc = np.arange(1 << 16, dtype=np.uint16)
        return allc, edge_codes16(_fields16(w.name))
    from .stimulus import edge_codes
    return np.arange(256, dtype=np.uint16), edge_codes(w.name).astype(np.uint16)


def _finite_weights(w) -> np.ndarray:
    if w.bits == 16:
        c = np.arange(1 << 16, dtype=np.int64)
        from .w8a16 import _fields16
        fl = _fields16(w.name)
        return c[((c >> fl.man_bits) & fl.emax_field) != fl.emax_field].astype(np.uint16)
    f = F.get(w.name)
    return np.flatnonzero(f.finite).astype(np.uint16)


def _codes_with_exp(rng, fl, lo: int, hi: int, shape) -> np.ndarray:
    """Random codes with biased exponent field in [lo, hi] and random sign/mantissa."""
    E = rng.integers(lo, hi + 1, shape)
    M = rng.integers(0, 1 << fl.man_bits, shape)
    s = rng.integers(0, 2, shape)
    return ((s << 15) | (E << fl.man_bits) | M).astype(np.uint16)


def random_stream16(cfg: A16Config, n_seq: int = 100, seed: int = 0, max_len: int = 256,
                    gaps: bool = True) -> Stream:
    """``n_seq`` seeded sequences (each a whole number of blocks for ``aligned``)."""
    rng = np.random.default_rng(seed)
    L = cfg.lanes
    B = cfg.beats_per_block
    fl = cfg.a
    eb, bias = fl.exp_bits, fl.bias
    E1 = (1 << eb) - 1
    lens = np.exp(rng.uniform(0, np.log(max_len + 1), n_seq)).astype(np.int64).clip(1, max_len)
    if n_seq >= 1:
        lens[0] = 1
    if n_seq >= 2:
        lens[1] = max_len
    lens = np.maximum(B, (lens + B - 1) // B * B)
    edges_a = edge_codes16(fl)
    allw, edges_w = weight_codes(cfg.w)
    finw = _finite_weights(cfg.w)
    seqs_a, seqs_w, clears = [], [], []
    for k, n in enumerate(lens.tolist()):
        style = STYLES16[k % len(STYLES16)] if k >= 2 else "uniform"
        sh = (n, L)
        a = rng.integers(0, 1 << 16, sh).astype(np.uint16)
        w = allw[rng.integers(0, len(allw), sh)]
        if style == "realistic":
            a = _codes_with_exp(rng, fl, bias - 6, bias + 3, sh)
            w = finw[rng.integers(0, len(finw), sh)]
        elif style == "edge":
            m = rng.random(sh) < 0.5
            a[m] = edges_a[rng.integers(0, len(edges_a), int(m.sum()))]
            m = rng.random(sh) < 0.5
            w[m] = edges_w[rng.integers(0, len(edges_w), int(m.sum()))]
        elif style == "overflow":
            a = _codes_with_exp(rng, fl, E1 - 3, E1 - 1, sh) & np.uint16(0x7FFF)
            big = finw[np.argsort(np.abs(_weight_values(cfg.w, finw)))[-8:]]
            w = big[rng.integers(0, len(big), sh)]
            w = _weight_abs(cfg.w, w)
            if k % 2:
                a[n // 2:] |= np.uint16(0x8000)
        elif style == "cancel":
            a = _codes_with_exp(rng, fl, bias - 2, bias + 6, sh)
            w = finw[rng.integers(0, len(finw), sh)]
            flat_a, flat_w = a.reshape(-1), w.reshape(-1)
            flat_w[1::2] = flat_w[0::2][:len(flat_w[1::2])]
            flat_a[1::2] = flat_a[0::2][:len(flat_a[1::2])] ^ np.uint16(0x8000)
            if flat_a.size:
                flat_a[-1] = _codes_with_exp(rng, fl, 1, max(1, bias - 8), 1)[0]
        elif style == "tiny":
            a = _codes_with_exp(rng, fl, 0, 3, sh)
            w = finw[rng.integers(0, len(finw), sh)]
            small = finw[np.argsort(np.abs(_weight_values(cfg.w, finw)))[:40]]
            m = rng.random(sh) < 0.7
            w[m] = small[rng.integers(0, len(small), int(m.sum()))]
        elif style == "long-equal":
            a[:] = _codes_with_exp(rng, fl, bias - 3, bias + 3, 1)[0] & np.uint16(0x7FFF)
            w[:] = _weight_abs(cfg.w, finw[rng.integers(0, len(finw), 1)])[0]
        c = np.zeros(n, bool)
        c[0] = True
        seqs_a.append(a)
        seqs_w.append(w)
        clears.append(c)
    a = np.concatenate(seqs_a)
    w = np.concatenate(seqs_w).astype(np.uint16 if cfg.w.bits == 16 else np.uint8)
    clear = np.concatenate(clears)
    gap = np.zeros(len(clear), np.uint8)
    if gaps:
        g = rng.random(len(clear)) < 0.03
        g[:B] = False  # the first block runs back to back: the latency check measures it
        gap[g] = rng.integers(1, 10, int(g.sum()))
    return Stream(a, w, clear, gap)


def _weight_values(w, codes) -> np.ndarray:
    if w.bits == 16:
        from .w8a16 import _fields16
        fl = _fields16(w.name)
        c = codes.astype(np.int64)
        E = (c >> fl.man_bits) & fl.emax_field
        M = c & ((1 << fl.man_bits) - 1)
        sig = np.where(E == 0, M, M | (1 << fl.man_bits)).astype(np.float64)
        return np.where(c >> 15, -1, 1) * np.ldexp(sig, (np.maximum(E, 1) - fl.bias - fl.man_bits).astype(np.int64))
    return F.get(w.name).values[codes]


def _weight_abs(w, codes) -> np.ndarray:
    """Codes of |w| (int8: -128 stays, it is the largest magnitude anyway)."""
    if w.kind == "int":
        v = codes.astype(np.int16) - 256 * (codes >= 128)
        return np.abs(v).clip(0, 127).astype(np.uint16)
    return codes & np.uint16(0x7FFF if w.bits == 16 else 0x7F)


def product_sweep16(cfg: A16Config, a_codes: np.ndarray | None = None, w_codes: np.ndarray | None = None) -> Stream:
    """Every (activation, weight) pair of the given code sets (default all 65,536 x all weights), one per
    beat and lane 0 (other lanes zero), clear on every beat.  For lanes 1 only (fp32 accumulator)."""
    if a_codes is None:
        a_codes = np.arange(1 << 16, dtype=np.uint16)
    if w_codes is None:
        w_codes = weight_codes(cfg.w)[0]
    aa, ww = np.meshgrid(a_codes, w_codes, indexing="ij")
    n = aa.size
    a = np.zeros((n, cfg.lanes), np.uint16)
    w = np.zeros((n, cfg.lanes), np.uint16 if cfg.w.bits == 16 else np.uint8)
    a[:, 0] = aa.reshape(-1)
    w[:, 0] = ww.reshape(-1)
    return Stream(a, w, np.ones(n, bool), np.zeros(n, np.uint8))
