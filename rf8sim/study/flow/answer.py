"""The answer up front: the first section of the flow's report (and docs/study.md's summary blocks).

Every sentence here is generated from a run's results and names the set of configurations it
covers; nothing is asserted that the run did not measure.  Per model:

* **MiniLM** (``transformer`` results): which configuration is cheapest on each cost axis (MAC area,
  MAC energy on the MiniLM operand stream, stored bits per weight) among those meeting the accuracy
  constraint (mean cosine to float32 >= ``min_cosine``): the run's uniform configurations and the
  mixed per-layer-group assignment the search found for that axis (verified bit-exactly);
* **TinyLM** (``tinylm`` results): the same, under held-out bits per byte at most ``max_rel_loss``
  above float32's (uniform configurations; the MAC costs are those of the MiniLM run, else the
  checked-in records);
* **RF8 against each competitor** with the same activations and accumulator (W8A8: the other 8-bit
  formats; W8A16: the other weight formats with bf16 activations): the paired difference with its
  95 % interval, the Wilcoxon p-value and whether it is significant, and the MAC's area and energy
  against the competitor's;
* **silicon**: area and energy per MAC, the MAC-datapath energy per inference (pJ/MAC x the MACs of
  one average sentence), and, when the results carry an array-cost section (``arrays``), its
  per-inference rows.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["answer_markdown", "answer_lines", "array_answer_lines", "minilm_answer", "tinylm_answer", "silicon_lines",
           "array_lines"]

#: cost axes: key in the mixed results, per-point cost key, unit, words
AXES = (("mixed", "area_um2", "µm² per MAC", "MAC area"),
        ("mixed_energy", "pj_per_mac", "pJ per MAC", "MAC energy (MiniLM stream)"),
        ("mixed_bits", "weight_bits", "bits per weight", "stored weight bits"))


def _fmt_cost(v: float, unit: str) -> str:
    if unit.startswith("bits"):
        return f"{v:.2f} {unit}"
    if unit.startswith("pJ"):
        return f"{v:,.1f} {unit}"
    return f"{v:,.0f} {unit}"


def _short(label: str) -> str:
    """'rf8/a:bf16 channel acc fp32' -> 'rf8/a:bf16 @fp32'; 'rf8 channel acc exact' -> 'rf8 W8A8 exact'."""
    p = label.split()
    if len(p) < 2:
        return label
    return f"{p[0]} @{p[-1]}" if "/a:" in p[0] or p[-1] != "exact" else f"{p[0]} (W8A8, exact acc)"


def _kind(p: dict) -> tuple:
    """Which datapath class a point belongs to: (activation format class, accumulator)."""
    acc = str(p.get("acc", "")).lower()
    if acc == "fp32" or acc.startswith("aligned"):  # W8A16 units (and the bf16 x bf16 baseline)
        return (p.get("a_format") or p["w_format"], acc)
    return ("W8A8", "fixed point")  # 8-bit weights and activations of one format, fixed-point accumulator


def _bits(p: dict) -> float | None:
    from ... import formats as F

    try:
        bits = float(F.get(p["w_format"]).code_bits)
    except Exception:  # noqa: BLE001 - an unknown format has no stored-bits cost
        return None
    if bits <= 8 and p.get("granularity") == "block":
        bits += 8.0 / float(p.get("block", 32))
    return bits


def _pair(pairs: list, a: str, b: str, metric: str, key: str = "metric"):
    """The paired test of ``a - b`` (reoriented when recorded as ``b - a``), or None."""
    for r in pairs:
        if r.get(key, "bits_per_byte") != metric:
            continue
        if r["a"] == a and r["b"] == b:
            return r["diff"], r["lo"], r["hi"], r["p_wilcoxon"], r["significant"], r.get("sentences", r.get("chunks"))
        if r["a"] == b and r["b"] == a:
            return -r["diff"], -r["hi"], -r["lo"], r["p_wilcoxon"], r["significant"], r.get("sentences",
                                                                                           r.get("chunks"))
    return None


def _diff_text(d, unit_fmt: str = "+.2e") -> str:
    v, lo, hi, p, sig, _ = d
    return (f"{format(v, unit_fmt)} [{format(lo, unit_fmt)}, {format(hi, unit_fmt)}], p {p:.2g}, "
            + ("**significant**" if sig else "not significant"))


def _rel(a, b) -> str:
    if a is None or b is None or not b:
        return "–"
    return f"{100 * (a / b - 1):+.1f} %"


def _costs_of(points: list) -> dict:
    """label -> {area_um2, pj_per_mac, weight_bits}."""
    return {p["label"]: {"area_um2": p.get("area_um2"), "pj_per_mac": p.get("pj_per_mac"), "weight_bits": _bits(p)}
            for p in points}


def _cheapest_lines(model: str, candidates: list, costs: dict, constraint: str, mixed_by_axis: dict) -> list[str]:
    """One bullet per cost axis: the cheapest configuration meeting the constraint."""
    out = []
    for axis, key, unit, words in AXES:
        rows = [(costs[c][key], 0, _short(c), cos) for c, cos in candidates if costs.get(c, {}).get(key) is not None]
        mx = mixed_by_axis.get(axis) or {}
        cost_key = {"mixed": "cost_um2_per_mac", "mixed_energy": "cost_pj_per_mac",
                    "mixed_bits": "cost_bits_per_weight"}[axis]
        if mx.get("meets_constraint") and mx.get("verified") and mx.get(cost_key) is not None:
            rows.append((mx[cost_key], 1, "the mixed per-layer-group assignment", mx["verified"]["mean"]))
        if not rows:
            if any(costs.get(c, {}).get(key) is not None for c in costs):
                out.append(f"- {model}, {words}: **no configuration** of this set meets {constraint}.")
            continue
        # ties: the uniform configuration (no mix needed), then the more accurate one
        order = sorted(rows, key=lambda r: (r[0], r[1], -(r[3] or 0.0), r[2]))
        best = order[0]
        runner = [r for r in order if r[2] != best[2]]
        acc = "" if best[3] is None else f" (cosine {best[3]:.5f})"
        tail = f"; next: {runner[0][2]} at {_fmt_cost(runner[0][0], unit)}" if runner else "; the only one"
        out.append(f"- {model}, cheapest by {words} meeting it: **{best[2]}** at {_fmt_cost(best[0], unit)}{acc}"
                   f"{tail}.")
    return out


def _competitor_lines(model: str, points: list, pairs: list, costs: dict, metric: str, what: str,
                      fmt: str, key: str = "metric", silicon: bool = True) -> list[str]:
    """RF8 against every configuration of the same datapath class (activations, accumulator)."""
    out = []
    for r in (p for p in points if p.get("w_format") == "rf8"):
        comp = [p for p in points if p is not r and p.get("w_format") and p.get("w_format") != "rf8"
                and _kind(p) == _kind(r)]
        if not comp:
            continue
        parts = []
        for c in comp:
            d = _pair(pairs, r["label"], c["label"], metric, key)
            if d is None:
                continue
            cr, cc = costs.get(r["label"], {}), costs.get(c["label"], {})
            sil = ""
            if silicon and cr.get("area_um2") is not None and cc.get("area_um2") is not None:
                sil = f"; MAC area {_rel(cr['area_um2'], cc['area_um2'])}"
                if cr.get("pj_per_mac") is not None and cc.get("pj_per_mac") is not None:
                    sil += f", energy {_rel(cr['pj_per_mac'], cc['pj_per_mac'])}"
            n = d[5]
            parts.append(f"vs {_short(c['label'])}: {_diff_text(d, fmt)}"
                         + (f" (n={n})" if n not in (None, r.get("sentences", r.get("chunks"))) else "") + sil)
        if parts:
            out.append(f"- {model}, RF8 {_short(r['label'])} minus each competitor of its class, {what}: "
                       + "; ".join(parts) + ".")
    return out


def minilm_answer(tr: dict) -> list[str]:
    """The MiniLM part of the answer (bullets)."""
    pts = tr["points"]
    min_cos = float((tr.get("spec") or {}).get("min_cosine", 0.999))
    constraint = f"mean cosine to float32 >= {min_cos:g}"
    costs = _costs_of(pts)
    meets = [(p["label"], p["cosine"]) for p in pts if p["cosine"] >= min_cos]
    miss = [p for p in pts if p["cosine"] < min_cos]
    n_s = tr["sentences"]
    lines = [f"- MiniLM set ({n_s} sentences): the {len(pts)} uniform configurations "
             + ", ".join(_short(p["label"]) for p in pts)
             + ", and per cost axis the cheapest per-layer-group mix of them that the greedy search found "
               "and verified bit-exactly."]
    if meets:
        lines.append(f"- MiniLM, meeting {constraint} uniformly: "
                     + ", ".join(f"{_short(p['label'])} ({p['cosine']:.5f}, 1 − cos CI [{p['loss_lo']:.2e}, "
                                 f"{p['loss_hi']:.2e}])" for p in pts if p["cosine"] >= min_cos)
                     + (f"; the other {len(miss)} miss it (best of them {_short(max(miss, key=lambda p: p['cosine'])['label'])}"
                        f" at {max(p['cosine'] for p in miss):.5f})." if miss else "."))
    else:
        lines.append(f"- MiniLM: **no uniform configuration** of this set meets {constraint} (best: "
                     f"{_short(max(pts, key=lambda p: p['cosine'])['label'])} at {max(p['cosine'] for p in pts):.5f}).")
    lines += _cheapest_lines("MiniLM", meets, costs, constraint, {a: tr.get(a) for a, *_ in AXES})
    lines += _competitor_lines("MiniLM", pts, tr.get("pairs", []), costs, "cosine",
                               "mean cosine (negative = RF8 further from float32)", "+.2e")
    lines += _competitor_lines("MiniLM", pts, tr.get("pairs", []), costs, "top1",
                               "top-1 retrieval agreement (negative = RF8 agrees less)",
                               "+.3f", silicon=False)
    return lines


def tinylm_answer(tl: dict, costs: dict | None = None) -> list[str]:
    """The TinyLM part of the answer; ``costs`` per label (the MiniLM run's), else the checked-in records."""
    pts = [p for p in tl["points"] if p["label"] != "float32"]
    f32 = next(p for p in tl["points"] if p["label"] == "float32")
    rel = float((tl.get("spec") or {}).get("max_rel_loss", 0.001))
    limit = rel * f32["bpb"]
    constraint = f"held-out bits per byte at most {rel:g} x float32's ({f32['bpb']:.4f} + {limit:.4f})"
    costs = dict(costs or {})
    rec = None
    for p in pts:
        if p["label"] not in costs or costs[p["label"]].get("area_um2") is None:
            if rec is None:
                rec = _recorded()
            c = rec.get(f"{p.get('a_format') or p['w_format']}x{p['w_format']}@{str(p.get('acc', '')).lower()}")
            costs[p["label"]] = {"area_um2": None if c is None else c.area_um2,
                                 "pj_per_mac": None if c is None else c.pj_per_mac, "weight_bits": _bits(p)}
        costs[p["label"]].setdefault("weight_bits", _bits(p))
    meets = [p for p in pts if p["delta"] <= limit]
    lines = [f"- TinyLM set ({tl['chunks']} held-out chunks of {tl['block']} bytes): the {len(pts)} uniform "
             f"configurations " + ", ".join(_short(p["label"]) for p in pts) + f"; constraint: {constraint}."]
    if meets:
        lines.append("- TinyLM, meeting it: " + ", ".join(
            f"{_short(p['label'])} ({p['delta']:+.4f} [{p['delta_lo']:+.4f}, {p['delta_hi']:+.4f}] bits/byte)"
            for p in meets) + f"; the other {len(pts) - len(meets)} miss it.")
    else:
        lines.append(f"- TinyLM: **no configuration** of this set meets it (least loss: "
                     f"{_short(min(pts, key=lambda p: p['delta'])['label'])} at {min(p['delta'] for p in pts):+.4f}).")
    lines += _cheapest_lines("TinyLM", [(p["label"], None) for p in meets], costs, constraint, {})
    lines += _competitor_lines("TinyLM", pts, tl.get("pairs", []), costs, "bits_per_byte",
                               "bits per byte (positive = RF8 worse)", "+.4f")
    return lines


def _recorded() -> dict:
    try:
        from ..minilm.mac_costs import recorded_costs

        return recorded_costs()
    except Exception:  # noqa: BLE001 - no records (an installed package): no costs, said in the lines
        return {}


def silicon_lines(tr: dict) -> list[str]:
    """Area and energy per MAC of each configuration's MAC, and the MAC-datapath energy per inference."""
    pts = tr["points"]
    if not any(p.get("area_um2") is not None or p.get("pj_per_mac") is not None for p in pts):
        return ["- Silicon: no MAC costs in this run (no synthesis and no records)."]
    gm = (tr.get("mixed") or {}).get("group_macs") or (tr.get("mixed_energy") or {}).get("group_macs")
    per_inf = sum(gm.values()) / tr["sentences"] if gm else None
    srcs = sorted({p.get(k) for p in pts for k in ("area_source", "energy_source") if p.get(k)})
    seen, parts = set(), []
    for p in pts:
        mac = f"{p.get('a_format') or p['w_format']}x{p['w_format']}@{p.get('acc')}"
        if mac in seen:
            continue
        seen.add(mac)
        a = "–" if p.get("area_um2") is None else f"{p['area_um2']:,.0f} µm²"
        e = "–" if p.get("pj_per_mac") is None else f"{p['pj_per_mac']:,.1f} pJ/MAC"
        inf = ("" if per_inf is None or p.get("pj_per_mac") is None
               else f", {p['pj_per_mac'] * per_inf * 1e-9:,.1f} mJ per sentence")
        parts.append(f"{mac} {a}, {e}{inf}")
    lines = ["- Silicon (one MAC lane, osu018): " + "; ".join(parts) + "."]
    if per_inf is not None:
        lines.append(f"- Per inference: {per_inf / 1e6:,.1f} M MACs per average sentence "
                     f"({tr['tokens'] / tr['sentences']:.1f} tokens); the mJ above are the MAC datapath's only "
                     f"(pJ/MAC on the MiniLM stream x MACs). Costs from: " + "; ".join(srcs) + ".")
    lines += array_lines(tr)
    return lines


def array_lines(tr: dict) -> list[str]:
    """Per-inference array costs when the results carry them (``tr["arrays"]``: rows with ``config`` and any
    of ``area_mm2``, ``uj_per_inference``, ``ms_per_inference``, ``source``), else one line saying so."""
    arr = tr.get("arrays")
    if not arr:
        return ["- Per-inference array cost (buffers, data movement, a full MAC array): not part of this run."]
    rows = arr.get("rows", arr) if isinstance(arr, dict) else arr
    parts = []
    for r in rows:
        bits = [f"{r['area_mm2']:,.3g} mm²" if r.get("area_mm2") is not None else None,
                f"{r['uj_per_inference']:,.3g} µJ/inference" if r.get("uj_per_inference") is not None else None,
                f"{r['ms_per_inference']:,.3g} ms/inference" if r.get("ms_per_inference") is not None else None]
        name = r.get("label") or _short(str(r.get("config", "?")))
        parts.append(f"{name} " + ", ".join(b for b in bits if b))
    src = arr.get("source") if isinstance(arr, dict) else None
    missing = arr.get("not_costed") if isinstance(arr, dict) else None
    if missing:
        parts.append("not in the cost record: " + ", ".join(missing))
    return ["- Per-inference array cost: " + "; ".join(parts) + (f" ({src})" if src else "") + "."]


#: the array-cost records the README answer reads, per technology (osu018 required, the others when checked in)
ARRAY_RECORDS = (("hdl/results/array_cost.json", "osu018"), ("hdl/results/array_cost_sky130.json", "sky130"))


def array_answer_lines(required: bool = False) -> list[str]:
    """The array answer, one block of lines per technology whose array-cost record is checked in (osu018's is
    ``required`` for the README; the flow report leads with whatever is there, or says it is missing)."""
    from ...infra.docgen import load_record

    out = []
    for rec_path, tech in ARRAY_RECORDS:
        if not (required and tech == "osu018") and not (Path(__file__).resolve().parents[3] / rec_path).is_file():
            continue
        arr = load_record(rec_path, "hdl-array-cost", f"rf8sim array cost --table --tech {tech} --record {rec_path}")
        out += _array_lines(arr, rec_path, tech)
    if not out:
        out = ["- Arrays: no array-cost record in this installation (`hdl/results/array_cost.json`, written by "
               "`rf8sim array cost --table --record ...`)."]
    return out


def _array_lines(arr: dict, rec_path: str, tech: str) -> list[str]:
    """The README answer's array lines of one array-cost record, one per R x C, then the RF8 x BF16 arrays at
    the equal-area budget's size against it (the budget bullet itself is in docs/hdl.md)."""
    from ...hdl.array_cost import BASELINE, edge_stages_of, equal_area_lines, goal_verdict, rows_by_pair

    out = []
    sizes = sorted({(r["config"]["rows"], r["config"]["cols"]) for r in arr["rows"]})
    for R, C in sizes:
        # the RF8 x BF16 design of the verdict: the edge adder in the block's clock where the record has it, else
        # the registered one (the other design, when both are there, follows as a second clause)
        rf_edges = sorted({edge_stages_of(r["config"]) for r in arr["rows"]
                           if (r["config"]["rows"], r["config"]["cols"]) == (R, C)
                           and (r["config"]["a_fmt"], r["config"]["w_fmt"]) == ("bf16", "rf8")
                           and r["config"]["acc"] != "fp32"}) or [0]
        e_main = rf_edges[0]
        by = rows_by_pair(arr["rows"], R, C, e_main)
        g = goal_verdict(by)
        names = ", ".join(f"{k[0]} × {k[1]}" + (f" {k[2]}" if len(k) > 2 else "") for k in by)
        g1 = goal_verdict(rows_by_pair(arr["rows"], R, C, 1)) if e_main == 0 and 1 in rf_edges else {}
        head = (f"- **{R}×{C} arrays** (`{rec_path}`, {tech} before routing; arrays: {names}"
                + (", W8A16 with the registered edge adder" if e_main else "") + "): ")
        if "tops_mm2" in g:
            s = (f"RF8 × BF16 reaches **{g['tops_mm2']:.2f}×** the TOPS/mm² of the BF16 × BF16 array that adds in "
                 f"float32 down each column (`fp32`, the baseline; goal ≥ 2×: {'met' if g['tops_mm2_met'] else 'not met'})")
            if "tops_w" in g:
                s += (f" and **{g['tops_w']:.2f}×** its TOPS/W on real MiniLM tiles (goal ≥ 1.5×: "
                      f"{'met' if g['tops_w_met'] else 'not met'})")
        else:
            s = ("RF8 × BF16 against the BF16 × BF16 fp32 array: **not evaluated** ("
                 + ("the fp32 baseline" if BASELINE not in by else "a row") + " is missing from the record)")
            w8 = [r for r in arr["rows"] if (r["config"]["rows"], r["config"]["cols"]) == (R, C)
                  and r["config"]["a_fmt"] == r["config"]["w_fmt"] and r["config"]["a_fmt"] != "bf16"]
            if w8:  # what the record does have at this size: the W8A8 arrays
                s += ("; W8A8 costed: " + ", ".join(
                    f"{r['config']['a_fmt'].upper()} × {r['config']['w_fmt'].upper()} {r['area_per_mac_um2']:,.0f} µm²/MAC"
                    + (f", {r['pj_per_mac']:.1f} pJ/MAC" if r.get("pj_per_mac") is not None else "") for r in w8))
        if "tops_mm2" in g1:
            s += (f"; with the registered edge adder (`edge_stages` 1) {g1['tops_mm2']:.2f}× TOPS/mm²"
                  + (f" and {g1['tops_w']:.2f}× TOPS/W" if "tops_w" in g1 else ""))
        if "aligned" in g:
            a = g["aligned"]
            bw_r, bw_b = (by[k]["config"].get("block_width") for k in (("bf16", "rf8"), ("bf16", "bf16")))
            al, bf = by[("bf16", "bf16")], by.get(BASELINE)
            s += (f"; against the pre-aligned BF16 × BF16 array (the same design with BF16 weights, {bw_b}-bit exact "
                  f"block sums against {bw_r}" + (f", {al['area_um2'] / bf['area_um2']:.2f}× the fp32 array's area"
                                                  if bf else "")
                  + f"), a second comparison: {a['tops_mm2']:.2f}× TOPS/mm²"
                  + (f", {a['tops_w']:.2f}× TOPS/W" if "tops_w" in a else ""))
        if "area_per_mac" in g:
            a = g["area_per_mac"]
            s += (f"; area per MAC RF8 / E4M3 / INT8 × BF16 = {a[0]:,.0f} / {a[1]:,.0f} / {a[2]:,.0f} µm² "
                  f"(RF8 ≤ E4M3 ≤ INT8: {'met' if g['area_order_met'] else 'not met'})")
        rf = by.get(("bf16", "rf8"))
        if rf:
            part, um2 = next(iter(rf["area_by_part_um2"].items()))
            s += f"; the largest part of the RF8 × BF16 array is its {part} ({100 * um2 / rf['area_um2']:.0f} % of area)"
        out.append(head + s + ".")
    out += ["- " + ln[2:] for ln in equal_area_lines(arr)[1:]]
    return out


def answer_markdown(tr: dict | None, tl: dict | None, heading: str = "## The answer") -> list[str]:
    """The report's first section (markdown lines); empty when neither model stage ran."""
    if tr is None and tl is None:
        return []
    md = [heading + "\n", "Generated from this run's results; each line names the set of configurations it covers. "
          "Significance: paired bootstrap 95 % interval excluding 0 and Wilcoxon p < 0.05 on the same items.\n"]
    md.append("\n".join(answer_lines(tr, tl)) + "\n")
    return md


def answer_lines(tr: dict | None, tl: dict | None) -> list[str]:
    """The answer's bullets: the arrays (checked-in records), MiniLM, TinyLM (costs from the MiniLM run when it
    ran), silicon."""
    lines = array_answer_lines()  # the array verdict leads (from the checked-in array-cost records)
    if tr is not None:
        lines += minilm_answer(tr)
    if tl is not None:
        lines += tinylm_answer(tl, _costs_of(tr["points"]) if tr is not None else None)
    if tr is not None:
        lines += silicon_lines(tr)
    return lines
