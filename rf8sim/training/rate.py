"""Rate measurement: the authors' exp-Golomb metric, Shannon entropy, and real entropy coding.

Per tensor (default: weights of Linear/Conv/Embedding):

* ``eg_bits``: the BackSlash papers' metric - quantize uniformly
  (``round(w * 2**frac_bits)``), rank the distinct codes by frequency (most
  frequent -> 0, ties by value), and average the order-0 exp-Golomb length
  ``2 floor(log2(r + 1)) + 1`` of the ranks.
* ``H_uniform`` / ``H_rf8``: Shannon entropy (bits/param) of those uniform codes
  and of the RF8 codes.
* ``coded_rf8``: the RF8 codes (``quantize`` with the chosen granularity) really
  entropy-coded with ``constriction``'s ANS coder under a categorical model -
  ``empirical`` (code frequencies, sent as side information) or ``gg`` (the mass
  of a fitted generalized Gaussian over each code's rounding interval; 3 floats of
  side information) - then decoded and compared to prove it lossless.  Bits
  include side information and the int8 scale exponents.

Fixed-width baselines in bits/param: fp32 32, fp16 16; int8, e4m3 and raw rf8
8 plus 8 bits per scale group.
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

from functools import lru_cache

import numpy as np
import torch

from .. import formats as F

__all__ = ["exp_golomb_bits", "entropy_bits", "rounding_boundaries", "gg_code_pmf", "entropy_code",
           "rate_report", "RateError"]


class RateError(RF8SimError, ValueError):
    """Bad input to a rate measurement."""


def _np1d(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        t = t.detach().float().cpu().numpy()
    return np.asarray(t).reshape(-1)


def exp_golomb_bits(t, frac_bits: int = 8) -> float:
    """Mean order-0 exp-Golomb length of frequency-ranked uniform codes round(w * 2**frac_bits)."""
    w = _np1d(t).astype(np.float64)
    if w.size == 0:
        raise RateError("empty tensor")
    if not np.isfinite(w).all():
        raise RateError("tensor contains NaN/Inf")
    q = np.rint(np.ldexp(w, frac_bits)).astype(np.int64)
    vals, counts = np.unique(q, return_counts=True)
    order = np.lexsort((vals, -counts))  # most frequent first, ties by value
    rank = np.empty(len(vals), np.int64)
    rank[order] = np.arange(len(vals))
    lens = 2 * np.floor(np.log2(rank + 1.0)) + 1
    return float((lens * counts).sum() / w.size)


def entropy_bits(symbols) -> float:
    """Shannon entropy (bits per symbol) of the empirical distribution of ``symbols``."""
    s = _np1d(symbols) if not isinstance(symbols, np.ndarray) else symbols.reshape(-1)
    if s.size == 0:
        raise RateError("empty symbol array")
    _, c = np.unique(s, return_counts=True)
    p = c / s.size
    return float(-(p * np.log2(p)).sum())


@lru_cache(maxsize=None)
def rounding_boundaries(fmt_name: str, rounding: str) -> np.ndarray:
    """Float64 thresholds b_i: |x| >= b_i encodes to magnitude index >= i + 1 (exact bisection).

    Found by bisection over float32 bit patterns with the torch encoder (which is
    monotone in |x| for every format and rounding), so they are the exact decision
    points of that rounding, whatever it is.
    """
    from .quant import decode, encode

    fmt = F.get(fmt_name)
    mags = np.asarray(fmt.magnitudes, np.float64)
    n = len(mags) - 1
    lo = np.zeros(n, np.int64)
    hi = np.full(n, int(np.float32(fmt.max).view(np.int32)), np.int64)
    target = mags[1:]
    while True:  # invariant: encode(lo) < target <= encode(hi)
        active = hi - lo > 1
        if not active.any():
            break
        mid = (lo + hi) // 2
        v = np.abs(decode(encode(torch.from_numpy(mid.astype(np.int32).view(np.float32)), fmt, rounding),
                          fmt).numpy().astype(np.float64))
        up = v >= target
        hi = np.where(active & up, mid, hi)
        lo = np.where(active & ~up, mid, lo)
    return hi.astype(np.int32).view(np.float32).astype(np.float64)


def gg_code_pmf(fmt, rounding: str, beta: float, alpha: float, loc: float = 0.0) -> np.ndarray:
    """Probability of each of the 256 codes when GG(beta, alpha, loc) values are encoded (no scaling)."""
    from scipy import stats

    fmt = F.get(fmt)
    b = rounding_boundaries(fmt.name, rounding)
    d = stats.gennorm(beta, loc=loc, scale=alpha)
    edges = np.concatenate([[0.0], b, [np.inf]])
    pos = d.cdf(edges[1:]) - d.cdf(edges[:-1])  # magnitude index i on the positive side
    neg = d.cdf(-edges[:-1]) - d.cdf(-edges[1:])
    pmf = np.zeros(256)
    mags = np.asarray(fmt.magnitudes, np.float64)
    canon = fmt.is_canonical & fmt.finite
    for i, m in enumerate(mags):
        for sgn, p in ((0, pos[i]), (1, neg[i])):
            c = np.flatnonzero(canon & (np.abs(fmt.values) == m) & (fmt.sign == sgn))
            if len(c) == 0:  # int8 -128 has no positive twin, +128 no code: fold into the neighbour
                continue
            pmf[c[0]] += p
    return pmf / pmf.sum()


def entropy_code(codes, probs: np.ndarray) -> tuple[int, bool]:
    """(compressed bits, decoded == input) for uint8 codes under a 256-symbol categorical model."""
    import constriction

    sym = np.ascontiguousarray(_np1d(codes).astype(np.int32))
    p = np.asarray(probs, np.float64)
    model = constriction.stream.model.Categorical(p, perfect=False)
    enc = constriction.stream.stack.AnsCoder()
    enc.encode_reverse(sym, model)
    words = enc.get_compressed()
    dec = constriction.stream.stack.AnsCoder(words)
    back = dec.decode(model, sym.size)
    return int(words.size) * 32, bool(np.array_equal(back, sym))


def rate_report(model, fmt="rf8", rounding: str = "nearest", granularity: str = "channel", block: int = 32,
                frac_bits: int = 8, coder: str = "empirical", select=None, progress: bool = False) -> dict:
    """Bits per parameter of a model's weights, per tensor and in total.

    ``model``: an nn.Module (``select`` as in :func:`select_params`), a dict of
    tensors or one tensor.  ``coder``: ``empirical``, ``gg`` or ``both``.
    Returns ``{"tensors": [row...], "total": {...}, "config": {...}}``; every row
    and the total hold ``n``, ``eg_bits``, ``H_uniform``, ``H_rf8`` and the
    baseline widths ``fp32``, ``fp16``, ``int8``, ``e4m3``, ``rf8_raw`` and
    ``rf8_coded`` (and ``rf8_coded_gg`` with ``coder="gg"/"both"``), plus
    ``lossless`` (every decode matched).
    """
    from tqdm import tqdm

    from .gg import fit_gg
    from .params import named_tensors
    from .quant import quantize

    if coder not in ("empirical", "gg", "both"):
        raise RateError(f"coder {coder!r} is not valid; valid: empirical, gg, both")
    fmt = F.get(fmt)
    items = named_tensors(model, select)
    if not items:
        raise RateError("no parameters selected")
    rows = []
    for name, t in tqdm(items, disable=not progress, desc="rate", unit="tensor"):
        if t.numel() == 0:
            continue
        t = t.float()
        codes, k = quantize(t, fmt, rounding, granularity, block)
        n = t.numel()
        ngroups = max(1, k.numel())
        side_scale = 8 * ngroups
        c = codes.reshape(-1).cpu().numpy()
        row = {"name": name, "shape": list(t.shape), "n": n, "eg_bits": exp_golomb_bits(t, frac_bits),
               "H_uniform": entropy_bits(np.rint(np.ldexp(_np1d(t).astype(np.float64), frac_bits))),
               "H_rf8": entropy_bits(c), "fp32": 32.0, "fp16": 16.0,
               "int8": 8 + side_scale / n, "e4m3": 8 + side_scale / n, "rf8_raw": 8 + side_scale / n}
        ok = True
        if coder in ("empirical", "both"):
            cnt = np.bincount(c, minlength=256).astype(np.float64)
            bits, good = entropy_code(c, cnt / cnt.sum())
            side = int((cnt > 0).sum()) * (8 + 32)  # (symbol, count) pairs
            row["rf8_coded"] = (bits + side + side_scale) / n
            ok &= good
        if coder in ("gg", "both"):
            # one GG per tensor, fitted (moments) to the decoded codes, i.e. in the scaled code domain
            from .quant import decode

            v = decode(codes, fmt).reshape(-1)
            f = fit_gg(v, "moments")
            pmf = gg_code_pmf(fmt, rounding, f.beta, f.alpha, f.loc)
            bits, good = entropy_code(c, pmf)
            row["rf8_coded_gg"] = (bits + 3 * 32 + side_scale) / n
            ok &= good
        row["lossless"] = ok
        rows.append(row)
    if not rows:
        raise RateError("every selected tensor is empty")
    ntot = sum(r["n"] for r in rows)
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
    total = {"name": "TOTAL", "n": ntot, "lossless": all(r["lossless"] for r in rows)}
    for k in keys:
        total[k] = sum(r[k] * r["n"] for r in rows) / ntot
    return {"tensors": rows, "total": total,
            "config": {"format": fmt.name, "rounding": rounding, "granularity": granularity, "block": block,
                       "frac_bits": frac_bits, "coder": coder}}
