"""Stimulus streams for the MAC testbenches: exhaustive products and seeded random sequences.

A :class:`Stream` is a list of beats: per beat ``lanes`` code pairs, a ``clear`` bit
and a ``gap`` (idle cycles with ``in_valid = 0`` before the beat, 0..9).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import formats as F

__all__ = ["Stream", "product_stream", "random_stream", "edge_codes", "write_stimulus"]


@dataclass
class Stream:
    a: np.ndarray       # uint8 (n, lanes)
    w: np.ndarray       # uint8 (n, lanes)
    clear: np.ndarray   # bool (n,)
    gap: np.ndarray     # uint8 (n,), 0..9

    def __len__(self) -> int:
        return len(self.clear)

    @property
    def lanes(self) -> int:
        return self.a.shape[1]

    @property
    def sequences(self) -> int:
        return int(self.clear.sum())

    def concat(self, other: "Stream") -> "Stream":
        return Stream(np.concatenate([self.a, other.a]), np.concatenate([self.w, other.w]),
                      np.concatenate([self.clear, other.clear]), np.concatenate([self.gap, other.gap]))


def product_stream(lanes: int = 1) -> Stream:
    """All 65,536 (a, w) code pairs in every lane, clear on every beat.

    Lane 0 walks the pairs in order; lane i uses a fixed different permutation so
    that each beat's lane sum mixes unrelated products.
    """
    n = 1 << 16
    idx = np.arange(n, dtype=np.int64)
    a = np.empty((n, lanes), np.uint8)
    w = np.empty((n, lanes), np.uint8)
    for i in range(lanes):
        perm = idx if i == 0 else (idx * (2 * i + 40503) + 977 * i) % n  # odd multiplier: a bijection
        a[:, i] = (perm >> 8).astype(np.uint8)
        w[:, i] = (perm & 0xFF).astype(np.uint8)
    return Stream(a, w, np.ones(n, bool), np.zeros(n, np.uint8))


def edge_codes(fmt) -> np.ndarray:
    """Codes worth hitting often: zeros, +-max, +-min, 1.0, NaN/Inf, duplicate codes, int8 extremes."""
    f = F.get(fmt)
    fin = f.finite
    codes = {0x00, 0x80}
    mags = np.where(fin, np.abs(f.values), -1.0)
    for c in np.flatnonzero(fin):
        v = abs(f.values[c])
        if v == f.max or v == f.min_positive or v == 1.0:
            codes.add(int(c))
    codes |= set(f.nan_codes) | set(f.inf_codes)
    dup = np.flatnonzero(~f.is_canonical & fin)
    codes |= {int(c) for c in dup}
    if f.kind == "int":
        codes |= {0x7F, 0x80, 0x81, 0xFF, 0x01}
    top = np.argsort(mags)[-6:]  # the largest magnitudes: they overflow narrow accumulators
    codes |= {int(c) for c in top}
    return np.array(sorted(codes), np.uint8)


def random_stream(a_fmt, w_fmt, lanes: int = 1, n_seq: int = 100, seed: int = 0,
                  max_len: int = 1024, gaps: bool = True) -> Stream:
    """``n_seq`` seeded random accumulation sequences, lengths log-uniform in 1..max_len.

    Each sequence has a style: uniform codes, edge-heavy, large same-sign (drives
    narrow accumulators into saturation, and back), sprinkled NaN/Inf, or RF8
    duplicate codes; the first sequence has length 1, the second ``max_len``.
    """
    a_f, w_f = F.get(a_fmt), F.get(w_fmt)
    rng = np.random.default_rng(seed)
    lens = np.exp(rng.uniform(0, np.log(max_len + 1), n_seq)).astype(np.int64).clip(1, max_len)
    if n_seq >= 1:
        lens[0] = 1
    if n_seq >= 2:
        lens[1] = max_len
    n = int(lens.sum())
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    style = rng.integers(0, 5, n_seq)
    seq_of = np.repeat(np.arange(n_seq), lens)
    st = style[seq_of]
    a = rng.integers(0, 256, (n, lanes), dtype=np.int64).astype(np.uint8)
    w = rng.integers(0, 256, (n, lanes), dtype=np.int64).astype(np.uint8)
    ea, ew = edge_codes(a_f), edge_codes(w_f)

    def pick_edges(arr, edges, mask, p):
        m = mask[:, None] & (rng.random(arr.shape) < p)
        arr[m] = edges[rng.integers(0, len(edges), int(m.sum()))]

    pick_edges(a, ea, st == 1, 0.5)
    pick_edges(w, ew, st == 1, 0.5)
    # style 2: large magnitudes with one sign per sequence (the sign flips halfway for half of them)
    for arr, f in ((a, a_f), (w, w_f)):
        mag = np.abs(np.where(f.finite, f.values, 0.0))
        big = np.flatnonzero(f.finite & (mag >= f.max / 16) & (np.arange(256) < 128))
        m = st == 2
        arr[m] = big[rng.integers(0, len(big), (int(m.sum()), lanes))]
    flip = (st == 2) & (seq_of % 2 == 0) & ((np.arange(n) - starts[seq_of]) > lens[seq_of] // 2)
    a[flip] = _negate(a[flip], a_f)
    # style 3: NaN/Inf sprinkled (formats that have them)
    for arr, f in ((a, a_f), (w, w_f)):
        specials = np.array(f.nan_codes + f.inf_codes, np.uint8)
        if len(specials):
            m = (st == 3)[:, None] & (rng.random(arr.shape) < 0.01)
            arr[m] = specials[rng.integers(0, len(specials), int(m.sum()))]
    # style 4: duplicate (non-canonical) codes, e.g. RF8 (E, R=1) == (E+1, R=5) and RF8 zeros with R != 0
    for arr, f in ((a, a_f), (w, w_f)):
        dup = np.flatnonzero(~f.is_canonical & f.finite).astype(np.uint8)
        if len(dup):
            pick_edges(arr, dup, st == 4, 0.6)
    clear = np.zeros(n, bool)
    clear[starts] = True
    # rare extra clears inside a sequence are just shorter sequences; keep one per sequence start
    gap = np.zeros(n, np.uint8)
    if gaps:
        g = rng.random(n) < 0.02
        gap[g] = rng.integers(1, 10, int(g.sum()))
    return Stream(a, w, clear, gap)


def _negate(codes: np.ndarray, f) -> np.ndarray:
    if f.kind == "int":  # two's complement, -(-128) saturates to 127
        v = codes.astype(np.int16) - 256 * (codes >= 128)
        return (-v).clip(-128, 127).astype(np.int16).astype(np.uint8)
    return codes ^ np.uint8(0x80)


_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def write_stimulus(stream: Stream, path) -> None:
    """One fixed-width text line per beat: ``gap clear a_hex w_hex`` (lane lanes-1 first in hex; 2 or 4 digits per lane)."""
    n, L = stream.a.shape
    digits = [2 * arr.dtype.itemsize for arr in (stream.a, stream.w)]  # uint8: 2 hex digits, uint16: 4
    row = 4 + sum(dg * L + 1 for dg in digits)
    buf = np.full((n, row), ord(" "), np.uint8)
    buf[:, 0] = ord("0") + stream.gap
    buf[:, 2] = ord("0") + stream.clear.astype(np.uint8)
    base = 4
    for arr, dg in zip((stream.a, stream.w), digits):
        for i in range(L):
            col = base + dg * (L - 1 - i)
            for j in range(dg):
                buf[:, col + j] = _HEX[(arr[:, i] >> (4 * (dg - 1 - j))) & 15]
        base += dg * L + 1
    buf[:, -1] = ord("\n")
    with open(path, "wb") as fh:
        fh.write(buf.tobytes())
