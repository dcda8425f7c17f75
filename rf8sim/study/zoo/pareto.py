"""The format zoo's Pareto view (issue 21, item 3): accuracy against the area and energy of each unit.

Three checked-in records are joined, nothing is re-measured here:

* ``study/results/zoo.json`` (``rf8sim study zoo``): MiniLM 1 − cosine, weight-only and W8A8;
* ``study/results/zoo-rtl.json`` (``rf8sim study zoo-rtl --power``): per (activation, weight) product
  stage its osu018 area and its energy per product on the MiniLM operand stream;
* ``study/results/zoo-tinylm.json`` (``rf8sim study zoo-tinylm``, :func:`tinylm_bpb`): held-out bits per
  byte of the TinyLM the flow trains, every Linear weight quantized per format (weight-only PTQ).

A weight-only configuration (float activations, quantized weights) is costed by its bf16 × W product
stage; a W8A8 configuration by its W × W product stage (8-bit activations in the same format).
A point is on a Pareto front when no other point of its group has lower-or-equal cost and
lower-or-equal loss with one of them strictly lower.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


__all__ = ["ZOO_TINYLM_RECORD", "tinylm_bpb", "pareto_points", "front", "plot_pareto", "tinylm_facts",
           "pareto_facts"]

ZOO_TINYLM_RECORD = Path("study") / "results" / "zoo-tinylm.json"
TINYLM_KIND = "rf8sim-zoo-tinylm"
FLOW_CONFIG = Path("rf8sim") / "study" / "configs" / "flow.toml"


def tinylm_bpb(formats, config=None, *, cache_dir=None, progress: bool = True) -> dict:
    """Weight-only PTQ of the flow's TinyLM per format: every Linear weight (QKV, attention output, MLP,
    head) replaced by its quantized value (:func:`rf8sim.study.zoo.study.fake_weights`: per-channel scales, block
    formats with their own), float32 everything else; held-out bits per byte per chunk, mean with a 95 %
    bootstrap interval, and paired tests against float32 and against RF8 on the same chunks."""
    import copy

    import torch

    from ..common.config import load_config
    from ..common.stats import bootstrap_ci, paired_test
    from ..tinylm.study import chunk_bits, prepare, spec_from_config, train_tinylm
    from ..minilm.transformer import linear_layers
    from .study import bits_per_weight, fake_weights

    root = Path(__file__).resolve().parents[3]
    cfg = load_config(config or root / FLOW_CONFIG)
    spec = spec_from_config(cfg)
    chunks = prepare(spec)
    t0 = time.perf_counter()
    model, meta = train_tinylm(spec, cache_dir=cache_dir, progress=progress)
    t_train = time.perf_counter() - t0
    per = {"float32": chunk_bits(model, chunks, spec.eval_batch)}
    rows = []
    for i, name in enumerate(formats):
        t = time.perf_counter()
        q = copy.deepcopy(model)
        bits = n = 0.0
        with torch.no_grad():
            for _, m in linear_layers(q):
                w = m.weight.detach().float().numpy()
                m.weight.copy_(torch.from_numpy(fake_weights(w, name)))
                bits += bits_per_weight(name, *w.shape) * w.size
                n += w.size
        per[name] = chunk_bits(q, chunks, spec.eval_batch)
        ci = bootstrap_ci(per[name], spec.bootstrap, seed=spec.seed)
        d = paired_test(per[name], per["float32"], spec.bootstrap, seed=spec.seed)
        rows.append({"format": name, "bpb": ci["mean"], "bpb_lo": ci["lo"], "bpb_hi": ci["hi"],
                     "delta_float32": d["diff"], "delta_lo": d["lo"], "delta_hi": d["hi"],
                     "delta_significant": bool(d["significant"]), "bits_per_weight": bits / n,
                     "seconds": time.perf_counter() - t})
        if progress:
            print(f"  [{i + 1}/{len(formats)}] {name}: {ci['mean']:.4f} bits/byte "
                  f"(float32 {d['diff']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}])", flush=True)
    pairs = []
    for a, b in _tinylm_pairs(formats):
        pairs.append({"a": a, "b": b, **{k: (bool(v) if k == "significant" else v)
                                         for k, v in paired_test(per[a], per[b], spec.bootstrap,
                                                                 seed=spec.seed).items()}})
    ci = bootstrap_ci(per["float32"], spec.bootstrap, seed=spec.seed)
    return {"params": {"formats": list(formats), "config": str(config) if config else str(FLOW_CONFIG),
                       "chunks": len(chunks), "block": spec.block, "steps": spec.steps, "d_model": spec.d_model,
                       "n_layer": spec.n_layer, "seed": spec.seed,
                       "datapath": "float32 model, quantized Linear weights (weight-only PTQ)"},
            "train": {k: meta.get(k) for k in ("train_s", "n_params", "final_train_loss_bits", "cached")},
            "float32": {"bpb": ci["mean"], "bpb_lo": ci["lo"], "bpb_hi": ci["hi"]}, "rows": rows, "pairs": pairs,
            "timing_s": {"train": t_train, "total": time.perf_counter() - t0}}


def _tinylm_pairs(formats):
    out = [("rf8", f) for f in formats if f != "rf8"] if "rf8" in formats else []
    if "e4m3" in formats:
        out += [(f, "e4m3") for f in formats if f.startswith("rf8") and f != "rf8"]
    return out


def _load(path, kind, how):
    from ...infra.docgen import load_record

    return load_record(path, kind, how)


def load_tinylm() -> dict:
    return _load(ZOO_TINYLM_RECORD, TINYLM_KIND, f"rf8sim study zoo-tinylm --record {ZOO_TINYLM_RECORD}")


def _run_line(rec, path) -> str:
    pv = rec["provenance"]
    m = pv["machine"]
    return (f"Record `{path}`: `{pv['command']}` at commit {(pv.get('commit') or '?')[:10]} "
            f"({'dirty' if pv.get('dirty') else 'clean'} tree), {pv.get('utc', '')}, on {m['cpu']}, {m['cores']} cores")


def tinylm_facts(rec: dict) -> list[str]:
    """RF8 vs APoT8 and the best RF8 variant vs E4M3 on TinyLM bits per byte (paired on the same chunks)."""
    by = {r["format"]: r for r in rec["rows"]}
    pairs = {(p["a"], p["b"]): p for p in rec["pairs"]}
    n = rec["params"]["chunks"]

    def cmp(a, b):
        p = pairs.get((a, b))
        if p is None:
            return ""
        verdict = (f"{'lower' if p['diff'] < 0 else 'higher'} for {a}, paired 95 % interval of {a} − {b} "
                   f"[{p['lo']:+.4f}, {p['hi']:+.4f}], Wilcoxon p = {p['p_wilcoxon']:.2g}" if p["significant"]
                   else f"no significant difference, paired 95 % interval of {a} − {b} [{p['lo']:+.4f}, "
                        f"{p['hi']:+.4f}]")
        return (f"{by[a]['bpb']:.4f} vs {by[b]['bpb']:.4f} bits per byte on {n} held-out chunks ({verdict})")

    out = []
    if ("rf8", "apot8") in pairs:
        out.append("TinyLM weight-only, RF8 against APoT at equal bits (8-bit codes, per-channel scales): "
                   + cmp("rf8", "apot8") + ".")
    variants = [f for f in rec["params"]["formats"] if f.startswith("rf8") and f != "rf8" and (f, "e4m3") in pairs]
    if variants:
        best = min(variants, key=lambda f: by[f]["bpb"])
        out.append(f"TinyLM weight-only, the best RF8 variant ({best}, of {', '.join(variants)}) against E4M3: "
                   + cmp(best, "e4m3") + ".")
    return out


def render_zoo_tinylm() -> str:
    rec = load_tinylm()
    p = rec["params"]
    f = rec["float32"]
    lines = [_run_line(rec, ZOO_TINYLM_RECORD) + f"; TinyLM {p['n_layer']} layers × d_model {p['d_model']}, "
             f"{p['steps']} training steps (the flow's `[tinylm]` settings), {p['datapath']}, {p['chunks']} held-out "
             f"chunks of {p['block']} bytes; float32 {f['bpb']:.4f} [{f['bpb_lo']:.4f}, {f['bpb_hi']:.4f}] bits per "
             "byte.", "",
             "| format | bits/weight (TinyLM) | bits per byte [95 % CI] | − float32, paired [95 % CI] |",
             "|---|---|---|---|"]
    for r in rec["rows"]:
        sig = "" if r["delta_significant"] else " (n.s.)"
        lines.append(f"| {r['format']} | {r['bits_per_weight']:.3f} | {r['bpb']:.4f} [{r['bpb_lo']:.4f}, "
                     f"{r['bpb_hi']:.4f}] | {r['delta_float32']:+.4f} [{r['delta_lo']:+.4f}, {r['delta_hi']:+.4f}]"
                     f"{sig} |")
    facts = tinylm_facts(rec)
    if facts:
        lines += ["", "Computed from the record (formats: " + ", ".join(p["formats"]) + "):", ""]
        lines += [f"- {s}" for s in facts]
    return "\n".join(lines)


# ---------------------------------------------------------------- Pareto join


def pareto_points(zoo: dict, rtl: dict, tiny: dict | None) -> list[dict]:
    """One point per product stage whose configuration has a measured accuracy: bf16 × W units with the
    weight-only numbers of W, W × W units with W's W8A8 numbers."""
    cos = {(r["format"], r["mode"]): r for r in zoo["minilm_cosine"]}
    tb = {r["format"]: r for r in tiny["rows"]} if tiny else {}
    out = []
    for r in rtl["rows"]:
        if r["a"] == "bf16":
            mode = "weight-only"
        elif r["a"] == r["w"]:
            mode = "W8A8"
        else:
            continue
        # a 4-bit element stage also stands for the block formats built on it (their scales are applied
        # after the block sums, outside the product stage): one point per format with its own accuracy
        blocks = r.get("block_formats", []) if mode == "weight-only" else []
        for w, unit in [(r["w"], f"{r['a']} × {r['w']}")] + [(b, f"{r['a']} × {r['w']} ({b})") for b in blocks]:
            c = cos.get((w, mode))
            if c is None:
                continue
            t = tb.get(w) if mode == "weight-only" else None
            out.append({"unit": unit, "w": w, "mode": mode, "area_um2": r["area_um2"],
                        "pj": r.get("pj_per_mac"), "loss": c["loss"], "loss_lo": c["loss_lo"], "loss_hi": c["loss_hi"],
                        "sentences": c["sentences"], "bpb": t["bpb"] if t else None,
                        "bpb_lo": t["bpb_lo"] if t else None, "bpb_hi": t["bpb_hi"] if t else None,
                        "dbpb": t.get("delta_float32") if t else None, "dbpb_lo": t.get("delta_lo") if t else None,
                        "dbpb_hi": t.get("delta_hi") if t else None})
    return out


def front(points, cost: str, metric: str) -> set:
    """Units on the Pareto front of ``points`` (lower ``cost`` and lower ``metric`` are better)."""
    pts = [p for p in points if p.get(cost) is not None and p.get(metric) is not None]
    on = set()
    for p in pts:
        dominated = any(q is not p and q[cost] <= p[cost] and q[metric] <= p[metric]
                        and (q[cost] < p[cost] or q[metric] < p[metric]) for q in pts)
        if not dominated:
            on.add(p["unit"])
    return on


def _records():
    from .report import ZOO_RTL_RECORD, load_zoo_record

    zoo = load_zoo_record()
    rtl = _load(ZOO_RTL_RECORD, "rf8sim-zoo-rtl", f"rf8sim study zoo-rtl --power --record {ZOO_RTL_RECORD}")
    try:
        tiny = load_tinylm()
    except Exception:  # noqa: BLE001  (the table is still whole without the TinyLM column)
        tiny = None
    return zoo, rtl, tiny


def _sorted(points, cost):
    return sorted(points, key=lambda p: (p["mode"], p[cost] if p[cost] is not None else np.inf))


def pareto_facts(points) -> list[str]:
    """The fronts per group and axis, and RF8 vs APoT8 / the best RF8 variant vs E4M3 on these axes."""
    out = []
    for mode in ("weight-only", "W8A8"):
        g = [p for p in points if p["mode"] == mode]
        if len(g) < 2:
            continue
        units = ", ".join(p["unit"] for p in g)
        for cost, cname in (("area_um2", "product-stage area"), ("pj", "energy per product")):
            if any(p[cost] is None for p in g):
                continue
            f = [p["unit"] for p in sorted(g, key=lambda p: p[cost]) if p["unit"] in front(g, cost, "loss")]
            out.append(f"{mode}, MiniLM 1 − cosine against {cname}: the front of {{{units}}} is "
                       f"{', '.join(f)} (in increasing cost).")
            if mode == "weight-only" and all(p["bpb"] is not None for p in g):
                f = [p["unit"] for p in sorted(g, key=lambda p: p[cost]) if p["unit"] in front(g, cost, "bpb")]
                out.append(f"{mode}, TinyLM bits per byte against {cname}: the front is {', '.join(f)}.")
    by = {(p["mode"], p["w"]): p for p in points}
    a, b = by.get(("weight-only", "rf8")), by.get(("weight-only", "apot8"))
    if a and b and a["pj"] is not None and b["pj"] is not None:
        out.append(f"bf16 × rf8 against bf16 × apot8 (equal bits): {a['area_um2']:,.0f} vs {b['area_um2']:,.0f} µm², "
                   f"{a['pj']:.2f} vs {b['pj']:.2f} pJ per product, MiniLM weight-only 1 − cosine "
                   f"{a['loss']:.2e} vs {b['loss']:.2e}.")
    e = by.get(("weight-only", "e4m3"))
    vs = [p for (m, w), p in by.items() if m == "weight-only" and w.startswith("rf8") and w != "rf8"]
    if e and vs and e["pj"] is not None:
        best = min(vs, key=lambda p: p["loss"])
        if best["pj"] is not None:
            out.append(f"The most accurate RF8 variant unit on MiniLM weight-only, {best['unit']} (of "
                       f"{', '.join(p['unit'] for p in vs)}), against bf16 × e4m3: {best['area_um2']:,.0f} vs "
                       f"{e['area_um2']:,.0f} µm², {best['pj']:.2f} vs {e['pj']:.2f} pJ per product, 1 − cosine "
                       f"{best['loss']:.2e} vs {e['loss']:.2e}.")
    return out


def render_zoo_pareto() -> str:
    zoo, rtl, tiny = _records()
    pts = pareto_points(zoo, rtl, tiny)
    fa = {m: front([p for p in pts if p["mode"] == m], "area_um2", "loss") for m in ("weight-only", "W8A8")}
    fe = {m: front([p for p in pts if p["mode"] == m], "pj", "loss") for m in ("weight-only", "W8A8")}
    src = "`study/results/zoo.json`, `study/results/zoo-rtl.json`" + (
        f", `{ZOO_TINYLM_RECORD}`" if tiny else "")
    lines = [f"Joined from {src} (weight-only: the bf16 × W product stage; W8A8: the W × W one; energy per product "
             "on the MiniLM operand stream at a 10 ns clock; * on the Pareto front of its group against area / "
             "energy, by MiniLM 1 − cosine):", "",
             "| unit | configuration | product stage µm² | pJ per product | MiniLM 1 − cosine [95 % CI] | "
             "TinyLM bits per byte − float32, paired [95 % CI] | front (area / energy) |",
             "|---|---|---|---|---|---|---|"]
    for p in _sorted(pts, "area_um2"):
        pj = "-" if p["pj"] is None else f"{p['pj']:.2f}"
        bpb = "-" if p["dbpb"] is None else f"{p['dbpb']:+.4f} [{p['dbpb_lo']:+.4f}, {p['dbpb_hi']:+.4f}]"
        mark = ("*" if p["unit"] in fa[p["mode"]] else "-") + " / " + ("*" if p["unit"] in fe[p["mode"]] else "-")
        lines.append(f"| {p['unit']} | {p['mode']} ({p['sentences']} sent.) | {p['area_um2']:,.0f} | {pj} | "
                     f"{p['loss']:.2e} [{p['loss_lo']:.2e}, {p['loss_hi']:.2e}] | {bpb} | {mark} |")
    blocks = sorted({p["w"] for p in pts if p["unit"].endswith(f"({p['w']})")})
    if blocks:
        lines += ["", f"The {', '.join(blocks)} points take the area and energy of the product stage of their "
                      "elements only: their block-scale hardware (an exponent add or a scale multiply per block sum, "
                      "outside the product stage) is not in these numbers, so their place on the fronts is a lower "
                      "bound on their cost."]
    facts = pareto_facts(pts)
    if facts:
        lines += ["", "Computed from the records:", ""] + [f"- {s}" for s in facts]
    return "\n".join(lines)


def plot_pareto(path, *, overwrite: bool = True) -> Path:
    """MiniLM 1 − cosine (top) and TinyLM bits per byte (bottom) against product-stage area (left) and
    energy per product (right), from the three records."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...infra.fileio import write_bytes

    zoo, rtl, tiny = _records()
    pts = pareto_points(zoo, rtl, tiny)
    has_pj = any(p["pj"] is not None for p in pts)
    costs = [("area_um2", "product stage area (µm², osu018)")] + (
        [("pj", "energy per product (pJ, MiniLM stream)")] if has_pj else [])
    metrics = [("loss", "MiniLM 1 − cosine")] + (
        [("dbpb", "TinyLM bits per byte − float32 (weight-only, paired)")] if tiny else [])
    fig, axes = plt.subplots(len(metrics), len(costs), figsize=(5.5 * len(costs), 4.2 * len(metrics)), squeeze=False)
    style = {"weight-only": ("o", "C0"), "W8A8": ("s", "C3")}
    for i, (met, mlabel) in enumerate(metrics):
        for j, (cost, clabel) in enumerate(costs):
            ax = axes[i][j]
            for mode, (mk, col) in style.items():
                g = [p for p in pts if p["mode"] == mode and p[cost] is not None and p[met] is not None]
                if not g:
                    continue
                lo, hi = met + "_lo", met + "_hi"
                ax.errorbar([p[cost] for p in g], [p[met] for p in g],
                            yerr=[[p[met] - p[lo] for p in g], [p[hi] - p[met] for p in g]], fmt=mk, color=col,
                            label=mode)
                on = front(g, cost, met)
                fr = sorted((p for p in g if p["unit"] in on), key=lambda p: p[cost])
                ax.step([p[cost] for p in fr], [p[met] for p in fr], where="post", color=col, alpha=0.4)
                for p in g:
                    ax.annotate(p["w"], (p[cost], p[met]), fontsize=7, xytext=(3, 3), textcoords="offset points")
            if met == "loss":
                ax.set_yscale("log")
            ax.set_xlabel(clabel)
            ax.set_ylabel(mlabel)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8)
    fig.suptitle("Format zoo: accuracy against product-stage cost\n(weight-only: bf16 × W unit; W8A8: W × W unit)",
                 fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return write_bytes(path, buf.getvalue(), overwrite=overwrite)


def report_markdown() -> list[str]:
    """The flow report's section on the format zoo: the generated comparisons of the checked-in records
    (RF8 vs APoT8 at equal bits, the best RF8 variant vs E4M3, the Pareto fronts), or one line saying
    which record is missing."""
    from ...infra.docgen import DocgenError
    from .report import load_zoo_record, zoo_facts

    md = ["## The format zoo (checked-in records, not this run)\n"]
    try:
        zoo = load_zoo_record()
        facts = zoo_facts(zoo)
        tiny = load_tinylm()
        facts += tinylm_facts(tiny)
        facts += pareto_facts(pareto_points(zoo, _records()[1], tiny))
    except DocgenError as e:
        return md + [f"> {e}\n"]
    md.append("From `study/results/zoo.json`, `zoo-tinylm.json` and `zoo-rtl.json` (docs/study.md, "
              "\"The format zoo\"; formats: " + ", ".join(zoo["params"]["formats"]) + "):\n")
    md += [f"- {s}" for s in facts] + [""]
    return md
