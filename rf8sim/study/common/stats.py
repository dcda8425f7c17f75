"""Statistics over sentences: bootstrap intervals and paired tests between configurations.

Every per-sentence metric (cosine to the float32 embedding, top-1 retrieval agreement, top-10
overlap, held-out bits per byte) is summarised as its mean with a 95 % percentile-bootstrap
interval over sentences; two configurations evaluated on the same sentences are compared with a
paired bootstrap of the mean difference and a Wilcoxon signed-rank test (scipy).  A difference
is called significant when the paired interval excludes 0 *and* the Wilcoxon p-value is below
``alpha`` (a difference whose every pair is 0 is not significant).
"""

from __future__ import annotations

import numpy as np

from rf8sim.errors import RF8SimError

__all__ = ["bootstrap_ci", "paired_test", "retrieval_scores", "StatsError"]


class StatsError(RF8SimError, ValueError):
    """Bad input to a statistic (empty, unequal lengths, non-finite values)."""


def _vec(x, what: str) -> np.ndarray:
    v = np.asarray(x, np.float64).reshape(-1)
    if v.size < 2:
        raise StatsError(f"{what}: need at least 2 values, got {v.size}")
    if not np.isfinite(v).all():
        raise StatsError(f"{what}: values must be finite")
    return v


def bootstrap_ci(x, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Mean of ``x`` with a percentile-bootstrap interval (resampling the values with replacement)."""
    v = _vec(x, "bootstrap_ci")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, (n_boot, v.size))
    means = v[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": float(v.mean()), "lo": float(lo), "hi": float(hi), "n": int(v.size)}


def paired_test(x, y, n_boot: int = 2000, level: float = 0.95, alpha: float = 0.05, seed: int = 0) -> dict:
    """Compare two configurations on the same items: mean of ``x - y`` with a paired-bootstrap
    interval, the Wilcoxon signed-rank p-value, and ``significant``."""
    from scipy.stats import wilcoxon

    a, b = _vec(x, "paired_test x"), _vec(y, "paired_test y")
    if a.size != b.size:
        raise StatsError(f"paired_test: {a.size} and {b.size} values; a paired test needs the same items")
    d = a - b
    ci = bootstrap_ci(d, n_boot, level, seed)
    if np.all(d == 0):
        p = 1.0
    else:
        p = float(wilcoxon(a, b, zero_method="wilcox").pvalue)
    sig = bool((ci["lo"] > 0 or ci["hi"] < 0) and p < alpha)
    return {"diff": ci["mean"], "lo": ci["lo"], "hi": ci["hi"], "p_wilcoxon": p, "significant": sig, "n": ci["n"]}


def retrieval_scores(ref: np.ndarray, emb: np.ndarray, k: int = 10) -> dict:
    """Per query sentence: does the nearest other sentence (cosine) agree with the float32
    embeddings' (``top1``, 0/1) and what fraction of the 10 nearest agree (``top10``)."""
    r = np.asarray(ref, np.float64)
    e = np.asarray(emb, np.float64)
    if r.shape != e.shape or r.ndim != 2 or r.shape[0] <= k:
        raise StatsError(f"retrieval_scores: need two equal (n, d) arrays with n > {k}, got {r.shape} and {e.shape}")
    n = r.shape[0]
    sr, se = r @ r.T, e @ e.T
    np.fill_diagonal(sr, -np.inf)
    np.fill_diagonal(se, -np.inf)
    top_r = np.argsort(-sr, axis=1, kind="stable")[:, :k]
    top_e = np.argsort(-se, axis=1, kind="stable")[:, :k]
    top1 = (top_r[:, 0] == top_e[:, 0]).astype(np.float64)
    topk = np.array([len(set(top_r[i]) & set(top_e[i])) / k for i in range(n)])
    return {"top1": top1, f"top{k}": topk}
