"""Markdown tables of recorded claim results (``rf8sim claims report``), pasted into docs/claims.md.

Every number comes from ``training/results/NAME.json`` so the documentation
cannot drift from what the recipes measured.
"""

from __future__ import annotations

import json
from pathlib import Path

from .common import RESULTS_DIR

__all__ = ["render", "render_one"]


def _ms(d, digits=3, pct=False):
    if not d or d.get("mean") is None:
        return "–"
    f = 100.0 if pct else 1.0
    m, s = d["mean"] * f, d["std"] * f
    return f"{m:.{digits}f} ± {s:.{digits}f}" if d["n"] > 1 else f"{m:.{digits}f}"


def _table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _head(p):
    prov = p["provenance"]
    return (f"`{p['command']}` — {p['setting']} setting, wall time {p['wall_time_s']:.0f} s on {prov['machine']} "
            f"({prov['torch_threads']} torch thread(s), shared with other jobs), torch {prov['torch']}, "
            f"Python {prov['python']}, rf8sim {prov['rf8sim']} @ {prov['git_commit']}; seeds {p['seeds']}.")


def _gg_fit(p):
    s = p["summary"]
    rows = []
    for n, r in p["rows"].items():
        rows.append([n.replace("encoder.layer.", "L").replace(".weight", ""), r["n"], f"{r['beta']:.3f}",
                     f"{r['beta_moments']:.3f}", f"{r['loglik_gg'] - r['loglik_gauss']:+.4f}",
                     f"{r['loglik_gg'] - r['loglik_laplace']:+.4f}", f"{r['ks_gg']:.4f}", f"{r['ks_gauss']:.4f}",
                     f"{r['ks_laplace']:.4f}"])
    txt = (f"{s['tensors']} tensors, {s['parameters']:,} parameters. β (MLE): median {s['beta_median']:.3f}, "
           f"range {s['beta_min']:.3f}–{s['beta_max']:.3f}. GG log-likelihood above Gaussian on "
           f"{s['gg_beats_gauss_loglik']}/{s['tensors']} tensors (mean gain {s['mean_loglik_gain_vs_gauss_nats']:.4f} "
           f"nats/param; vs Laplace {s['mean_loglik_gain_vs_laplace_nats']:.4f}); KS distance smaller than the "
           f"Gaussian's on {s['gg_beats_gauss_ks']}/{s['tensors']} and than the Laplace's on "
           f"{s['gg_beats_laplace_ks']}/{s['tensors']}; median KS GG {s['median_ks']['gg']:.4f}, Gaussian "
           f"{s['median_ks']['gauss']:.4f}, Laplace {s['median_ks']['laplace']:.4f}. Verdict rule: "
           f"{s.get('verdict_rule', '')} → **{s['verdict']}**.")
    return txt + "\n\n" + _table(["tensor", "n", "β MLE", "β moments", "Δ ll/p vs Gauss", "Δ ll/p vs Laplace",
                                  "KS GG", "KS Gauss", "KS Laplace"], rows)


def _gg_init(p):
    rows = []
    for r in p["rows"].values():
        m = _ms(r["test_acc"], 3) if "test_acc" in r else _ms(r["test_bits_per_byte"], 3)
        rows.append([r["task"], r["init"], r["reached"], _ms(r["steps_to_target"], 0) if r["steps_to_target"]["mean"]
                     is not None else f"– ({r['steps_to_target']['values']})", _ms(r["final_train_loss"], 3),
                     _ms(r["test_loss"], 3), m])
    tg = {t: c["target"] for t, c in p["config"]["tasks"].items()}
    return (f"Targets (mean training loss over the trailing window): {tg}.\n\n"
            + _table(["task", "init", "reached", "steps to target", "final train loss", "test loss",
                      "test acc (MLP/CNN) / bits per byte (TinyLM)"], rows))


def _backslash(p):
    rows = []
    for r in p["rows"].values():
        rows.append([r["task"], r["kind"], f"{r['lam']:g}", _ms(r["metric"], 3), _ms(r["metric_rate_quantized"], 3),
                     _ms(r["exp_golomb_bits"], 2), _ms(r["uniform_coded_bits"], 2),
                     f"{100 * r['saving_vs_plain_exp_golomb_bits']:.0f} / {100 * r['saving_vs_plain_uniform_coded_bits']:.0f} %",
                     _ms(r.get("metric_rf8-nearest"), 3), _ms(r["coded_bits"], 2),
                     f"{100 * r['saving_vs_plain_coded_bits']:.0f} %",
                     _ms(r["metric_pruned_50"], 3), _ms(r["metric_pruned_80"], 3)])
    return _table(["task", "kind", "λ", "metric (float)", "metric @ 2^-8 grid", "exp-Golomb b/p (grid)",
                   "ANS-coded b/p (grid)", "saving vs plain (EG / coded)", "metric @ rf8", "ANS-coded b/p (rf8)",
                   "saving (rf8)", "pruned 50 %", "pruned 80 %"], rows)


def _deepshape(p):
    rows = [[r["task"], r["stage"], _ms(r["metric"], 3), _ms(r["exp_golomb_bits"], 2), _ms(r["uniform_coded_bits"], 2),
             _ms(r["coded_bits"], 2)] for r in p["rows"].values()]
    return _table(["task", "stage", "metric", "exp-Golomb b/p (grid)", "ANS-coded b/p (grid)", "ANS-coded b/p (rf8)"],
                  rows)


def _rf8(p):
    rows = [[r["scheme"], r["granularity"], _ms(r["cos_mean"], 5), _ms(r["cos_min"], 4), _ms(r["top1_agreement"], 3),
             f"{r['weight_rel_err_mean']:.4f}"] for r in p["rows"].values()]
    out = _table(["scheme", "granularity", "cosine mean", "cosine min", "top-1 agreement", "weight rel. error"], rows)
    small = p.get("small_models") or {}
    if small:
        ms = list(next(iter(small.values())))
        out += "\n\nMNIST-1D test accuracy, float32 and after weight PTQ:\n\n" + _table(
            ["model", *ms], [[k, *[_ms(v[m], 3) for m in ms]] for k, v in small.items()])
    return out


_RENDER = {"gg-fit": _gg_fit, "gg-init": _gg_init, "backslash": _backslash, "deepshape": _deepshape,
           "rf8-inference": _rf8}


def render_one(p: dict) -> str:
    """Markdown for one result payload."""
    return _head(p) + "\n\n" + _RENDER[p["claim"]](p)


def render(results_dir=None) -> str:
    """Markdown for every ``NAME.json`` present in ``results_dir`` (default training/results)."""
    d = Path(results_dir) if results_dir else RESULTS_DIR
    parts = []
    for name in _RENDER:
        f = d / f"{name}.json"
        if f.exists():
            parts.append(f"### {name}\n\n" + render_one(json.loads(f.read_text())))
    return "\n\n".join(parts) + "\n"
