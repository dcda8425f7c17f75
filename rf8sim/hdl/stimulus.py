"""Stimulus streams for the unit testbenches: exhaustive products and seeded random sequences.

A :class:`Stream` is a list of beats: per beat ``lanes`` code pairs, a ``clear`` bit
and a ``gap`` (idle cycles with ``in_valid = 0`` before the beat, 0..9).  :func:`random_stream`
and :func:`product_stream` take a :class:`~rf8sim.hdl.spec.MacSpec` and pick the generator by its
datapath:

* fixed accumulators (8-bit codes): all 65,536 code pairs in every lane; random sequences
  styled uniform / edge-heavy / large same-sign / NaN-Inf / duplicate codes;
* fp32 / aligned accumulators (16-bit float activations): a sweep of activation codes
  against every weight code; random sequences (lengths log-uniform, whole blocks for the
  aligned accumulator) rotating through uniform codes, realistic activations (|x| around 1),
  edge-heavy (signed zeros, subnormals, min normal, max, Inf, NaN), overflow (huge same-sign
  terms, then the sign flips), catastrophic cancellation, tiny (subnormal results) and long
  sums of equal terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import formats as F
from .spec import float_fields

__all__ = ["Stream", "product_stream", "random_stream", "edge_codes", "float_edge_codes", "weight_codes",
           "float_product_sweep", "sweep_codes", "write_stimulus", "FLOAT_STYLES"]


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


def product_stream(spec, a_codes=None) -> Stream:
    """The product sweep of ``spec``, clear on every beat: fixed accumulators all 65,536 code pairs in
    every lane (``spec`` may also be a lane count); fp32 accumulators ``a_codes`` (default all 65,536)
    against every weight code (:func:`float_product_sweep`); aligned ones have no product sweep."""
    if isinstance(spec, (int, np.integer)):
        return _pair_stream(int(spec))
    if spec.kind == "fixed":
        return _pair_stream(spec.lanes)
    if spec.kind != "fp32":
        from .spec import HdlError

        raise HdlError(f"the product sweep runs on the fp32 accumulator (one product per beat), not {spec.acc}")
    return float_product_sweep(spec, a_codes)


def _pair_stream(lanes: int = 1) -> Stream:
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
    top = np.argsort(mags, kind="stable")[-6:]  # the largest magnitudes: they overflow narrow accumulators
    codes |= {int(c) for c in top}
    return np.array(sorted(codes), np.uint8)


def random_stream(spec, n_seq: int = 100, seed: int = 0, max_len: int | None = None, gaps: bool = True) -> Stream:
    """``n_seq`` seeded random accumulation sequences for ``spec`` (a :class:`~rf8sim.hdl.spec.MacSpec`), lengths
    log-uniform in 1..max_len (default 1024 for fixed accumulators, 256 for fp32 / aligned ones)."""
    if spec.kind == "fixed":
        return _random_pairs(spec.a, spec.w, spec.lanes, n_seq, seed, 1024 if max_len is None else max_len, gaps)
    return _random_float(spec, n_seq, seed, 256 if max_len is None else max_len, gaps)


def _random_pairs(a_fmt, w_fmt, lanes: int = 1, n_seq: int = 100, seed: int = 0,
                  max_len: int = 1024, gaps: bool = True) -> Stream:
    """``n_seq`` seeded random accumulation sequences of 8-bit codes, lengths log-uniform in 1..max_len.

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


# ---------------------------------------------------------------------------
# 16-bit float activations (fp32 / aligned accumulators)

FLOAT_STYLES = ("uniform", "realistic", "edge", "overflow", "cancel", "tiny", "long-equal")


def float_edge_codes(cfg_a) -> np.ndarray:
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
        allc = np.arange(1 << 16, dtype=np.uint16)
        return allc, float_edge_codes(float_fields(w.name))
    return np.arange(256, dtype=np.uint16), edge_codes(w.name).astype(np.uint16)


def _finite_weights(w) -> np.ndarray:
    if w.bits == 16:
        c = np.arange(1 << 16, dtype=np.int64)
        fl = float_fields(w.name)
        return c[((c >> fl.man_bits) & fl.emax_field) != fl.emax_field].astype(np.uint16)
    f = F.get(w.name)
    return np.flatnonzero(f.finite).astype(np.uint16)


def _codes_with_exp(rng, fl, lo: int, hi: int, shape) -> np.ndarray:
    """Random codes with biased exponent field in [lo, hi] and random sign/mantissa."""
    E = rng.integers(lo, hi + 1, shape)
    M = rng.integers(0, 1 << fl.man_bits, shape)
    s = rng.integers(0, 2, shape)
    return ((s << 15) | (E << fl.man_bits) | M).astype(np.uint16)


def _random_float(cfg, n_seq: int = 100, seed: int = 0, max_len: int = 256, gaps: bool = True) -> Stream:
    """``n_seq`` seeded sequences of 16-bit activations (each a whole number of blocks for ``aligned``)."""
    rng = np.random.default_rng(seed)
    L = cfg.lanes
    B = cfg.beats_per_block
    fl = cfg.a_fields
    eb, bias = fl.exp_bits, fl.bias
    E1 = (1 << eb) - 1
    lens = np.exp(rng.uniform(0, np.log(max_len + 1), n_seq)).astype(np.int64).clip(1, max_len)
    if n_seq >= 1:
        lens[0] = 1
    if n_seq >= 2:
        lens[1] = max_len
    lens = np.maximum(B, (lens + B - 1) // B * B)
    edges_a = float_edge_codes(fl)
    allw, edges_w = weight_codes(cfg.w_plan)
    finw = _finite_weights(cfg.w_plan)
    seqs_a, seqs_w, clears = [], [], []
    for k, n in enumerate(lens.tolist()):
        style = FLOAT_STYLES[k % len(FLOAT_STYLES)] if k >= 2 else "uniform"
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
            big = finw[np.argsort(np.abs(_weight_values(cfg.w_plan, finw)), kind="stable")[-8:]]
            w = big[rng.integers(0, len(big), sh)]
            w = _weight_abs(cfg.w_plan, w)
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
            small = finw[np.argsort(np.abs(_weight_values(cfg.w_plan, finw)), kind="stable")[:40]]
            m = rng.random(sh) < 0.7
            w[m] = small[rng.integers(0, len(small), int(m.sum()))]
        elif style == "long-equal":
            a[:] = _codes_with_exp(rng, fl, bias - 3, bias + 3, 1)[0] & np.uint16(0x7FFF)
            w[:] = _weight_abs(cfg.w_plan, finw[rng.integers(0, len(finw), 1)])[0]
        c = np.zeros(n, bool)
        c[0] = True
        seqs_a.append(a)
        seqs_w.append(w)
        clears.append(c)
    a = np.concatenate(seqs_a)
    w = np.concatenate(seqs_w).astype(np.uint16 if cfg.w_bits == 16 else np.uint8)
    clear = np.concatenate(clears)
    gap = np.zeros(len(clear), np.uint8)
    if gaps:
        g = rng.random(len(clear)) < 0.03
        g[:B] = False  # the first block runs back to back: the latency check measures it
        gap[g] = rng.integers(1, 10, int(g.sum()))
    return Stream(a, w, clear, gap)


def _weight_values(w, codes) -> np.ndarray:
    if w.bits == 16:
        fl = float_fields(w.name)
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


def float_product_sweep(cfg, a_codes: np.ndarray | None = None, w_codes: np.ndarray | None = None) -> Stream:
    """Every (activation, weight) pair of the given code sets (default all 65,536 x all weights), one per
    beat and lane 0 (other lanes zero), clear on every beat.  For lanes 1 only (fp32 accumulator)."""
    if a_codes is None:
        a_codes = np.arange(1 << 16, dtype=np.uint16)
    if w_codes is None:
        w_codes = weight_codes(cfg.w_plan)[0]
    aa, ww = np.meshgrid(a_codes, w_codes, indexing="ij")
    n = aa.size
    a = np.zeros((n, cfg.lanes), np.uint16)
    w = np.zeros((n, cfg.lanes), np.uint16 if cfg.w_bits == 16 else np.uint8)
    a[:, 0] = aa.reshape(-1)
    w[:, 0] = ww.reshape(-1)
    return Stream(a, w, np.ones(n, bool), np.zeros(n, np.uint8))


def sweep_codes(fields, n_act: int | None = None, seed: int = 0) -> np.ndarray:
    """Activation codes of a float product sweep: all 65,536 (n_act None) or the edge codes of ``fields``
    plus a seeded sample, n_act in all (at least the edge codes)."""
    if n_act is None:
        return np.arange(1 << 16, dtype=np.uint16)
    base = np.unique(float_edge_codes(fields))
    rng = np.random.default_rng(seed)
    rest = np.setdiff1d(np.arange(1 << 16, dtype=np.uint16), base)
    k = max(0, n_act - len(base))
    return np.sort(np.concatenate([base, rng.choice(rest, k, replace=False)]))[:max(n_act, len(base))]
