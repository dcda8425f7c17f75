"""Pareto fronts, plots (matplotlib, Agg) and Markdown/console tables for the flow and the studies."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "pareto_front",
    "md_table",
    "write_csv",
    "write_json",
    "plot_pareto",
    "plot_histograms",
    "plot_bits",
    "plot_error_vs_shape",
    "plot_accuracy_vs_cost",
    "accuracy_ci",
    "print_table",
    "fmt_value",
]


def pareto_front(cost: Sequence[float], value: Sequence[float]) -> np.ndarray:
    """Mask of the points no other point beats: lower-or-equal cost and higher-or-equal value,
    one of them strictly.  Points whose cost or value is NaN are never on the front.

    Sweep: sort by cost (ties: best value first) and keep the points that raise the best
    value seen so far; points equal to a front point in both coordinates are kept too.
    """
    c = np.asarray(cost, np.float64)
    v = np.asarray(value, np.float64)
    if c.shape != v.shape or c.ndim != 1:
        raise ValueError(f"cost and value must be 1-D arrays of one length, got {c.shape} and {v.shape}")
    ok = np.isfinite(c) & np.isfinite(v)
    mask = np.zeros(c.shape, bool)
    idx = np.flatnonzero(ok)
    order = idx[np.lexsort((-v[idx], c[idx]))]
    best_v = -math.inf
    last = None  # (cost, value) of the last kept point
    for i in order:
        if v[i] > best_v:
            mask[i] = True
            best_v = v[i]
            last = (c[i], v[i])
        elif last is not None and (c[i], v[i]) == last:
            mask[i] = True  # a duplicate of a front point is not dominated
    return mask


def fmt_value(v, digits: int = 4) -> str:
    """Human formatting for tables: floats to `digits` significant digits, None/NaN as '-'."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "-"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if abs(v) >= 10 ** digits:  # areas and counts: all integer digits, no exponent
            return f"{v:.0f}"
        return f"{v:.{digits}g}"
    return str(v)


def md_table(rows: Sequence[dict], columns: Sequence[str], headers: Sequence[str] | None = None,
             digits: int = 4) -> str:
    """A GitHub Markdown table of ``rows`` (dicts) restricted to ``columns``."""
    headers = list(headers or columns)
    if len(headers) != len(columns):
        raise ValueError("headers and columns differ in length")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt_value(r.get(c), digits) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[dict], path: "str | Path", columns: Sequence[str] | None = None) -> Path:
    """Write dict rows as CSV (columns: the union of keys in first-seen order unless given)."""
    path = Path(path)
    if columns is None:
        columns = []
        for r in rows:
            for k in r:
                if k not in columns:
                    columns.append(k)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return path


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def write_json(obj, path: "str | Path") -> Path:
    path = Path(path)
    path.write_text(json.dumps(obj, indent=2, default=_json_default, allow_nan=True))
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_pareto(rows: Sequence[dict], path: "str | Path", *, cost: str = "area", value: str = "accuracy",
                label: str = "label", xlabel: str = "MAC area", ylabel: str = "accuracy",
                title: str = "", zoom: float | None = 0.1) -> Path:
    """Scatter of value vs cost with the Pareto front drawn as a step line and its points labelled.

    ``zoom``: show only values within this of the best (points below are counted in a note);
    None shows everything.
    """
    plt = _plt()
    c = np.array([np.nan if r.get(cost) is None else float(r[cost]) for r in rows])
    v = np.array([np.nan if r.get(value) is None else float(r[value]) for r in rows])
    front = pareto_front(c, v)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ok = np.isfinite(c) & np.isfinite(v)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if ok[i]:
            groups.setdefault(str(r.get("group", r.get("w_format", ""))), []).append(i)
    for g, ii in sorted(groups.items()):
        ax.scatter(c[ii], v[ii], s=22, alpha=0.75, label=g or None)
    fi = np.flatnonzero(front)
    fi = fi[np.argsort(c[fi])]
    if len(fi):
        ax.step(c[fi], v[fi], where="post", color="k", lw=1.2, label="Pareto front")
        ax.scatter(c[fi], v[fi], s=60, facecolors="none", edgecolors="k")
        names: dict = {}  # points at the same coordinates share one label
        for i in fi:
            names.setdefault((c[i], v[i]), []).append(str(rows[i].get(label, "")))
        for (x, y), ls in names.items():
            ax.annotate(ls[0] + (f" (+{len(ls) - 1} same)" if len(ls) > 1 else ""), (x, y), fontsize=7,
                        xytext=(4, -10), textcoords="offset points")
    if ok.any() and zoom is not None:
        # keep the interesting band readable: points far below the best go under the axis, counted
        top = float(np.nanmax(v[ok]))
        lo = top - zoom
        below = int(np.sum(v[ok] < lo))
        if below:
            ax.set_ylim(lo, top + 0.1 * zoom)
            ax.text(0.01, 0.01, f"{below} point(s) below {lo:.3g} not shown", transform=ax.transAxes,
                    fontsize=7, color="0.3")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_pareto_ci(tr: dict, path: "str | Path") -> Path:
    """MiniLM: mean 1 - cosine (95 % bootstrap CI error bars) vs the MAC's cost per multiply-accumulate, one
    panel per cost the points carry: area (µm² per MAC) and energy (pJ per MAC on the MiniLM operand stream,
    from the PPA records read by :func:`rf8sim.hdl.power.ppa_rows`); uniform configurations and the mixed
    assignments of each search."""
    plt = _plt()
    axes_def = [(k, lab, mk, mixed) for k, lab, mk, mixed in
                (("area_um2", "MAC area (µm² per MAC, osu018)", "cost_um2_per_mac", tr.get("mixed") or {}),
                 ("pj_per_mac", "MAC energy (pJ per MAC, MiniLM stream)", "cost_pj_per_mac",
                  tr.get("mixed_energy") or {}))
                if any(p.get(k) is not None for p in tr["points"])]
    fig, axs = plt.subplots(1, max(1, len(axes_def)), figsize=(6.0 * max(1, len(axes_def)), 4.4), squeeze=False)
    for ax, (k, xlabel, mk, mx) in zip(axs[0], axes_def):
        for p in tr["points"]:
            if p.get(k) is None:
                continue
            n = p.get("sentences", tr.get("sentences"))
            lab = p["label"] + ("" if n == tr.get("sentences") else f" (n={n})")
            ax.errorbar(p[k], p["loss"], yerr=[[p["loss"] - p["loss_lo"]], [p["loss_hi"] - p["loss"]]],
                        fmt="o", capsize=3, label=lab)
        if mx.get("verified") is not None and mx.get(mk) is not None:
            v = mx["verified"]
            ax.errorbar(mx[mk], 1 - v["mean"], yerr=[[v["hi"] - v["mean"]], [v["mean"] - v["lo"]]],
                        fmt="*", ms=12, capsize=3, color="k",
                        label="mixed" + (" (meets constraint)" if mx.get("meets_constraint") else ""))
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("1 - cosine to float32 (mean, 95 % CI)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6)
    fig.suptitle("all-MiniLM-L6-v2, bit-exact: accuracy loss vs MAC cost")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def accuracy_ci(accuracy: float, n: int, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of a test accuracy: resampling the ``n`` per-sample 0/1 outcomes
    (``round(accuracy * n)`` ones), which is all the bootstrap of a mean of 0/1 values depends on."""
    from .stats import bootstrap_ci

    k = int(round(accuracy * n))
    ci = bootstrap_ci(np.r_[np.ones(k), np.zeros(n - k)], n_boot, seed=seed)
    return ci["lo"], ci["hi"]


def plot_accuracy_vs_cost(rows: Sequence[dict], path: "str | Path", *, title: str = "",
                          n_boot: int = 2000) -> Path:
    """Bit-exact accuracy (95 % bootstrap error bars over test samples) vs MAC area and vs MAC energy per MAC
    (one panel each, the Pareto front of each panel drawn as a step line); rows carry ``accuracy``,
    ``n_eval``, ``area_um2`` and ``pj_per_mac`` (None: not plotted in that panel)."""
    plt = _plt()
    panels = [(k, lab) for k, lab in (("area_um2", "MAC area (µm² per MAC, osu018)"),
                                      ("pj_per_mac", "MAC energy (pJ per MAC, MiniLM stream; PPA record)"))
              if any(r.get(k) is not None and r.get("accuracy") is not None for r in rows)]
    fig, axs = plt.subplots(1, max(1, len(panels)), figsize=(6.2 * max(1, len(panels)), 4.6), squeeze=False)
    for ax, (k, xlabel) in zip(axs[0], panels):
        pts = [r for r in rows if r.get(k) is not None and r.get("accuracy") is not None]
        groups: dict = {}
        for r in pts:
            groups.setdefault(str(r.get("group", r.get("w_format", ""))), []).append(r)
        for g, rs in sorted(groups.items()):
            ci = [accuracy_ci(r["accuracy"], int(r.get("n_eval") or 1), n_boot) for r in rs]
            ax.errorbar([r[k] for r in rs], [r["accuracy"] for r in rs],
                        yerr=[[r["accuracy"] - lo for r, (lo, _) in zip(rs, ci)],
                              [hi - r["accuracy"] for r, (_, hi) in zip(rs, ci)]],
                        fmt="o", ms=4, capsize=2, alpha=0.8, label=g)
        c = np.array([float(r[k]) for r in pts])
        v = np.array([float(r["accuracy"]) for r in pts])
        fi = np.flatnonzero(pareto_front(c, v))
        fi = fi[np.argsort(c[fi])]
        if len(fi):
            ax.step(c[fi], v[fi], where="post", color="k", lw=1.0, label="Pareto front")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (bit-exact, 95 % bootstrap CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_sensitivity(sens: dict, path: "str | Path") -> Path:
    """Heat map: layer group x configuration -> mean 1 - cosine (log colour scale)."""
    plt = _plt()
    from matplotlib.colors import LogNorm

    groups = list(dict.fromkeys(r["group"] for r in sens["rows"]))
    cfgs = list(dict.fromkeys(r["config"] for r in sens["rows"]))
    M = np.full((len(groups), len(cfgs)), np.nan)
    for r in sens["rows"]:
        M[groups.index(r["group"]), cfgs.index(r["config"])] = max(r["loss"], 1e-9)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(cfgs), 0.8 + 0.32 * len(groups)))
    im = ax.imshow(M, aspect="auto", norm=LogNorm(), cmap="viridis")
    ax.set_xticks(range(len(cfgs)), cfgs, rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(groups)), groups, fontsize=7)
    fig.colorbar(im, ax=ax, label="1 - cosine")
    ax.set_title("per-layer sensitivity")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_histograms(tensors: dict, path: "str | Path", *, fits: dict | None = None, bins: int = 80,
                    title: str = "") -> Path:
    """Histogram (density) per tensor with the fitted GG and Gaussian densities overlaid.

    ``fits[name]`` is ``{"gg": (beta, alpha, loc), "gauss": (mu, sigma)}``; missing fits are
    computed here with scipy (``gennorm.fit`` / mean and std) so the plot always has both.
    """
    from scipy.stats import gennorm, norm

    plt = _plt()
    names = list(tensors)
    n = len(names)
    if n == 0:
        raise ValueError("no tensors to plot")
    cols = min(3, n)
    rws = math.ceil(n / cols)
    fig, axes = plt.subplots(rws, cols, figsize=(4.2 * cols, 3.2 * rws), squeeze=False)
    fits = dict(fits or {})
    for ax, name in zip(axes.flat, names):
        w = np.asarray(tensors[name], np.float64).ravel()
        f = fits.get(name) or {}
        gg = f.get("gg") or gennorm.fit(w)
        ga = f.get("gauss") or (float(w.mean()), float(w.std()))
        lo, hi = np.quantile(w, [0.0005, 0.9995])
        ax.hist(w, bins=bins, range=(lo, hi), density=True, color="0.75", label="weights")
        xs = np.linspace(lo, hi, 400)
        ax.plot(xs, gennorm.pdf(xs, gg[0], loc=gg[2], scale=gg[1]), lw=1.4,
                label=f"GG β={gg[0]:.2f}")
        ax.plot(xs, norm.pdf(xs, ga[0], ga[1]), lw=1.2, ls="--", label="Gaussian")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_bits(rows: Sequence[dict], path: "str | Path", *, title: str = "bits per parameter",
              xlabel: str = "bits per parameter") -> Path:
    """Horizontal bars: ``rows`` have ``label`` and ``bits`` (the bar length, bits per parameter by default)."""
    plt = _plt()
    labels = [str(r["label"]) for r in rows]
    bits = [float(r["bits"]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2))
    ax.barh(range(len(rows)), bits, color="tab:blue")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    for i, b in enumerate(bits):
        ax.text(b, i, f" {b:.2f}", va="center", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_error_vs_shape(rows: Sequence[dict], path: "str | Path", *, title: str = "") -> Path:
    """SQNR (dB) against GG shape, one line per format/rounding/granularity (rows of error_vs_shape)."""
    plt = _plt()
    series: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        key = f"{r['format']}/{r['rounding']}/{r['granularity']}"
        series.setdefault(key, []).append((r["shape"], r["sqnr_db"]))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, lw=1, label=key)
    ax.set_xlabel("GG shape β (1 = Laplace, 2 = Gaussian)")
    ax.set_ylabel("SQNR (dB)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def print_table(rows: Iterable[dict], columns: Sequence[str], headers: Sequence[str] | None = None,
                title: str = "", console=None, digits: int = 4) -> None:
    """A rich table on the console (the end-of-run summary).  Cells are text, not markup: a detail such as
    "[transformer] model = 'none'" prints as written (rich would take the brackets for a style tag)."""
    from rf8sim.infra.console import Console
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title or None)
    for h in headers or columns:
        t.add_column(escape(str(h)))
    for r in rows:
        t.add_row(*[escape(fmt_value(r.get(c), digits)) for c in columns])
    (console or Console()).print(t)
