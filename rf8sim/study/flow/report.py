"""The report of ``rf8sim flow``: report.md, plots and results.json from the stages' results."""

from __future__ import annotations

import dataclasses
import datetime
import sys

__all__ = ["write_report"]


def cfg_tol(ctx) -> str:
    return f"{ctx.cfg.study.tolerance:g}"


def write_report(ctx, stages, total_s: float) -> None:
    from ... import __version__
    from ..mnist1d.area_accuracy import machine_info
    from ..common.report import md_table, write_json

    from .answer import answer_markdown

    out = ctx.out
    tr, tl = ctx.state.get("transformer"), ctx.state.get("tinylm")
    md = ["# rf8sim flow report\n",
          f"Generated {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC} by "
          f"`rf8sim {' '.join(sys.argv[1:]) or 'flow'}` (rf8sim {__version__}) on {machine_info()}; "
          f"total {total_s:.0f} s (stage times at the end).\n"]
    # the answer first (MiniLM, TinyLM, silicon), then the stages' notices, the models' details, the MACs and the
    # MNIST-1D MLP sections (the pipeline's smoke test), the stage times last
    md += answer_markdown(tr, tl)
    skipped = [s for s in stages if s.status == "skipped"]
    for s in skipped:
        md.append(f"> **Skipped: {s.name}** -- {s.detail}\n")
    for s in stages:
        if s.status == "failed":
            md.append(f"> **FAILED: {s.name}** -- {s.detail}\n")
    if tr is not None:
        md += transformer_markdown(tr, out)
    if tl is not None:
        from ..tinylm.study import report_markdown

        md += report_markdown(tl, out)
    from ..zoo.pareto import report_markdown as zoo_markdown

    md += zoo_markdown()

    # MACs
    macs = {}
    for key in ("rtl", "verify", "synth"):
        for r in ctx.state.get(key, []):
            macs.setdefault(r["mac"], {"mac": r["mac"]}).update({f"{key}:{k}": v for k, v in r.items()})
    if macs:
        md.append("## MACs: generated, verified against the golden model, synthesized\n")
        cols = [c for c in ["mac", "rtl:acc", "rtl:latency", "verify:products", "verify:sequences",
                            "verify:beats", "verify:models", "verify:mismatches", "synth:area_um2", "synth:nand2_eq",
                            "synth:cells", "synth:cached"] if any(c in m for m in macs.values())]
        md.append(md_table(list(macs.values()), cols, [c.split(":")[-1] for c in cols]))

    m = ctx.state.get("model")
    res = ctx.state.get("sweep")
    if m is not None or res is not None or ctx.state.get("bits"):
        md.append("## MNIST-1D MLP: the pipeline's smoke test\n")
        size = f"of {m['n_params']:,} parameters " if m is not None else ""
        n_eval = f"{len(m['y_eval']):,} " if m is not None and m.get("y_eval") is not None else ""
        md.append(f"An MLP {size}trained here, quantized and run through the bit-exact GEMM: it exercises every "
                  f"stage of the pipeline in seconds; on its {n_eval}test samples a few points of accuracy are "
                  f"noise, so the answer above rests on the language models.\n")
    if m is not None:
        md.append("### Model\n")
        md.append(f"MNIST-1D MLP, hidden {m['hidden']}, {m['n_params']} parameters, seed {m['seed']}: "
                  + "; ".join(f"{k}: {v}" for k, v in m["steps"].items()) + ".\n")
        acc_rows = [{"phase": k.replace("float_acc_", "").replace("float_acc", "final"), "accuracy": v}
                    for k, v in m.items() if k.startswith("float_acc")]
        md.append(md_table(acc_rows, ["phase", "accuracy"], ["float32 model", "test accuracy"]))
        md.append("![weight histograms](weights_hist.png)\n")
        if ctx.state.get("fits"):
            heads = {"tensor": "tensor", "beta": "GG shape β", "alpha": "GG scale α",
                     "loglik_gg": "log-lik/param GG", "loglik_gaussian": "Gaussian", "loglik_laplace": "Laplace",
                     "ks_gg": "KS GG", "ks_gaussian": "KS Gaussian", "fit": "fitted with"}
            cols = [c for c in heads if any(c in r for r in ctx.state["fits"])]
            md.append(md_table(ctx.state["fits"], cols, [heads[c] for c in cols]))
    if ctx.state.get("bits"):
        md.append("### Bits per parameter\n")
        md.append("All weights of the trained model (`rf8sim.training.rate_report`, channel scales, "
                  "coded sizes decoded back and compared).\n")
        md.append(md_table(ctx.state["bits"], ["format", "coder", "bits"], ["format", "coder", "bits per parameter"]))
        md.append("![bits per parameter](bits_per_param.png)\n")

    if res is not None:
        rows = res.rows
        md.append("### Accuracy through the bit-exact GEMM vs MAC area\n")
        md.append("Weights quantized with each format / rounding / granularity; activations in the same "
                  "format (nearest, per-sample or per-block scale); every layer through "
                  "`rf8sim.golden.gemm` with the MAC's exact accumulator (see docs/study.md).\n")
        if ctx.state.get("area_skip"):
            md.append(f"> **No area from this run:** {ctx.state['area_skip']}; the plot uses recorded areas where "
                      f"there are any.\n")
        cost = "area_um2" if any(r.get("area_um2") is not None for r in rows) else "nand2_eq"
        from ..minilm.mac_costs import sweep_costs
        from ..common.report import plot_accuracy_vs_cost

        crow, srcs = sweep_costs(rows)
        if any(r.get("area_um2") is not None or r.get("pj_per_mac") is not None for r in crow):
            plot_accuracy_vs_cost(crow, out / "pareto.png", title="MNIST-1D MLP: accuracy vs MAC cost")
            md.append("![accuracy vs MAC area and energy](pareto.png)\n")
            md.append("Error bars: 95 % bootstrap intervals over the test samples. MAC costs: " + "; ".join(srcs)
                      + " (a record is a checked-in measurement, not this run's synthesis).\n")
        if res.iso:
            md.append(f"Cheapest MAC per format within {cfg_tol(ctx)} of the float32 accuracy:\n")
            md.append(md_table(res.iso, ["format", "label", "accuracy", cost],
                               ["format", "configuration", "bit-exact accuracy", cost.replace("_", " ")]))
        cols = ["label", "accuracy", "fq_accuracy", "fq_disagree", "float_acc", cost, "pareto", "overflow_frac"]
        md.append(md_table(sorted(rows, key=lambda r: -(r.get("accuracy") or 0)), cols,
                           ["configuration", "bit-exact accuracy", "fake-quant accuracy",
                            "predictions differing", "float32", cost.replace("_", " "), "Pareto",
                            "overflow frac"]))
        md.append("Fake-quant = the same codes and scales summed by a float32 matmul (what QAT emulation "
                  "computes); 'predictions differing' counts test samples whose class differs from the "
                  "bit-exact path.\n")
        md.append("Raw points: [sweep/results.csv](sweep/results.csv).\n")
    md.append("## Stages\n")
    md.append(md_table([{"stage": s.name, "status": s.status.upper() if s.status != "ok" else "ok",
                         "seconds": s.seconds, "detail": s.detail} for s in stages],
                       ["stage", "status", "seconds", "detail"], digits=3))
    (out / "report.md").write_text("\n".join(md))
    data = {"stages": [dataclasses.asdict(s) for s in stages], "total_s": total_s, "machine": machine_info(),
            "config": ctx.cfg.to_dict(), "macs": list(macs.values()),
            "model": None if m is None else {k: v for k, v in m.items() if k not in ("layers", "x_eval", "y_eval",
                                                                                   "model")},
            "fits": ctx.state.get("fits"), "bits": ctx.state.get("bits"),
            "points": None if res is None else res.rows, "transformer": tr, "tinylm": ctx.state.get("tinylm")}
    write_json(data, out / "results.json")


def transformer_markdown(tr: dict, out) -> list[str]:
    """Report section of the MiniLM study (tables + plots written next to report.md)."""
    from ..common.report import md_table, plot_pareto_ci, plot_sensitivity

    md = ["## all-MiniLM-L6-v2 through the bit-exact datapath\n",
          f"{tr['sentences']} real sentences ({tr['tokens']:,} tokens, {tr['words'][0]}-{tr['words'][1]} words, "
          f"pydoc_data.topics); every Linear layer through `rf8sim.golden.gemm`, softmax/LayerNorm/GELU float32. "
          f"Means with 95 % bootstrap intervals over sentences.\n"]
    rows = []
    for p in tr["points"]:
        nd = p.get("sentences", tr["sentences"])
        lab = p["label"] + ("" if nd == tr["sentences"] else f" (first {nd} sentences)")
        rows.append({"config": lab, "cos": f"{p['cosine']:.5f}",
                     "loss": f"{p['loss']:.2e} [{p['loss_lo']:.2e}, {p['loss_hi']:.2e}]",
                     "top1": f"{p['top1']:.3f} [{p['top1_lo']:.3f}, {p['top1_hi']:.3f}]",
                     "top10": f"{p['top10']:.3f} [{p['top10_lo']:.3f}, {p['top10_hi']:.3f}]",
                     "area": "-" if p.get("area_um2") is None else f"{p['area_um2']:,.0f}",
                     "pj": "-" if p.get("pj_per_mac") is None else f"{p['pj_per_mac']:,.1f}",
                     "ovf": p["overflow"]})
    md.append(md_table(rows, ["config", "cos", "loss", "top1", "top10", "area", "pj", "ovf"],
                       ["configuration", "mean cosine", "1 - cosine [95 % CI]", "top-1 agreement",
                        "top-10 overlap", "MAC area µm²", "pJ/MAC (MiniLM stream)", "saturated outputs"]))
    if any(p.get("area_um2") or p.get("pj_per_mac") for p in tr["points"]):
        plot_pareto_ci(tr, out / "pareto_minilm.png")
        md.append("![MiniLM: cosine loss vs MAC area and energy](pareto_minilm.png)\n")
        srcs = sorted({p.get(k) for p in tr["points"] for k in ("area_source", "energy_source") if p.get(k)})
        if srcs:
            md.append("MAC costs (x axes, mixed searches): " + "; ".join(srcs) + " (a record is a checked-in "
                      "measurement, not this run's synthesis).\n")
    md.append("Paired comparisons on the same sentences (paired bootstrap of the mean difference, Wilcoxon "
              "signed-rank); **significant** = the interval excludes 0 and p < 0.05:\n")
    md.append(md_table([{"a": r["a"], "b": r["b"], "metric": r["metric"] + (
                         "" if r.get("sentences", tr["sentences"]) == tr["sentences"] else f" (n={r['sentences']})"),
                         "diff": f"{r['diff']:+.2e} [{r['lo']:+.2e}, {r['hi']:+.2e}]",
                         "p": f"{r['p_wilcoxon']:.2g}", "sig": "**yes**" if r["significant"] else "no"}
                        for r in tr["pairs"]],
                       ["a", "b", "metric", "diff", "p", "sig"],
                       ["A", "B", "metric", "A - B [95 % CI]", "p (Wilcoxon)", "significant"]))
    sens = tr["sensitivity"]
    plot_sensitivity(sens, out / "sensitivity_minilm.png")
    md.append(f"Per-layer sensitivity: mean 1 - cosine with only that layer group quantized (first "
              f"{sens['sentences']} sentences):\n")
    md.append("![per-layer sensitivity](sensitivity_minilm.png)\n")
    md += mixed_markdown(tr["mixed"])
    if tr.get("mixed_energy"):
        md += mixed_markdown(tr["mixed_energy"])
    if tr.get("mixed_bits"):
        md += mixed_markdown(tr["mixed_bits"])
    ck = tr["torch_check"]
    if ck:
        md.append(f"Torch emulation (`rf8sim.training`) vs golden, per layer: {len(ck)} layer runs, "
                  f"{sum(r['outputs'] for r in ck):,} outputs, {sum(r['mismatches'] for r in ck)} mismatches "
                  f"(activation codes/scales, weight codes, accumulator, flags, float32 output bits); references: "
                  f"{', '.join(sorted({r.get('reference', 'torch rf8sim.training gemm') for r in ck}))}.\n")
    return md


def _short(label: str) -> str:
    p = label.split()
    return f"{p[0]}@{p[-1]}" if len(p) > 1 else label


def mixed_markdown(mx: dict) -> list[str]:
    """One mixed-format search (by MAC area, MAC energy or stored weight bits) as report text + table."""
    from ..minilm.study import MIXED_UNITS
    from ..common.report import md_table

    md = []
    metric = mx.get("metric", "area")
    key, unit = MIXED_UNITS.get(metric, MIXED_UNITS["area"])
    fmt = (lambda v: f"{v:.2f}") if metric == "weight_bits" else (lambda v: f"{v:,.0f}")
    what = {"weight_bits": "stored weight bits", "energy": "MAC energy on the MiniLM stream"}.get(metric, "MAC area")
    if "assignment" in mx and mx.get("verified") is None:
        md.append(f"Mixed formats ({what}): no per-group assignment of these formats is predicted (additive "
                  f"sensitivity model) to meet {mx['constraint']}; the last candidate costs {fmt(mx[key])} {unit} "
                  f"and was not verified.\n")
    elif "assignment" in mx:
        md.append(f"Mixed formats ({what}): cheapest per-group assignment with {mx['constraint']} (greedy on the "
                  f"additive sensitivity model, verified bit-exactly on "
                  f"{mx['verified'].get('n', 'all')} sentences): "
                  f"**{fmt(mx[key])} {unit}** (MAC-weighted), verified cosine "
                  f"{mx['verified']['mean']:.5f} [{mx['verified']['lo']:.5f}, {mx['verified']['hi']:.5f}], "
                  f"{'meets' if mx['meets_constraint'] else 'does NOT meet'} the constraint.\n")
    if "assignment" in mx:
        src = any(u.get("source") for u in mx["uniform"])
        rows = [{"config": u["config"], "cost": fmt(u["cost"]), "cos": f"{u['cosine']:.5f}",
                 "src": u.get("source", "")} for u in mx["uniform"]]
        rows.append({"config": "mixed: " + ", ".join(f"{g}={_short(c)}" for g, c in mx["assignment"].items()),
                     "cost": fmt(mx[key]), "cos": "-" if mx.get("verified") is None else f"{mx['verified']['mean']:.5f}",
                     "src": "MAC-weighted from the rows above"})
        cols, heads = ["config", "cost", "cos"], ["assignment", unit, "mean cosine"]
        if src:
            cols, heads = cols + ["src"], heads + ["cost from"]
        md.append(md_table(rows, cols, heads))
        if metric == "energy" and mx.get("energy_uj") is not None:
            md.append(f"Energy of the assignment's MACs over all the sentences: {mx['energy_uj'] * 1e-6:.3g} J "
                      f"(pJ/MAC x MACs per layer group).\n")
    elif mx.get("skipped"):
        md.append(f"> **Mixed formats ({what}) skipped:** {mx['skipped']}\n")
    return md
