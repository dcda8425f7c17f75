"""Records of the study (checked in under ``study/results/``) and the docs tables rendered from them.

``rf8sim flow --record study/results/minilm-flow.json`` writes the transformer stage's results with
:func:`rf8sim.infra.records.write_record` (machine, load, versions, command, commit, dirty flag);
docs/study.md's MiniLM tables are generated from that file (``<!-- BEGIN generated:study:... -->``
blocks, :mod:`rf8sim.infra.docgen`) and ``tests/test_study_flow_results.py`` checks that they match.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...infra.docgen import DocgenError

__all__ = ["MINILM_RECORD", "write_flow_record", "load_minilm_record"]

#: the checked-in record of the demo's transformer stage (repo-relative)
MINILM_RECORD = Path("study") / "results" / "minilm-flow.json"


def _root() -> Path:
    return Path(__file__).resolve().parents[3]


def write_flow_record(path, flow_result, ctx_state: dict, *, overwrite: bool = False) -> Path:
    """The flow's record: stage statuses and times, MAC areas, the transformer study."""
    from ...infra.records import write_record

    tr = ctx_state.get("transformer")
    payload = {
        "kind": "rf8sim-flow",
        "stages": [{"stage": s.name, "status": s.status, "seconds": round(s.seconds, 3), "detail": s.detail}
                   for s in flow_result.stages],
        "total_s": round(sum(s.seconds for s in flow_result.stages), 3),
        "macs": ctx_state.get("synth", []),
        "transformer": None if tr is None else _json_safe(tr),
        "tinylm": None if ctx_state.get("tinylm") is None else _json_safe(ctx_state["tinylm"]),
    }
    return write_record(path, payload, overwrite=overwrite)


def _json_safe(o):
    return json.loads(json.dumps(o, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def load_minilm_record(path=None) -> dict:
    p = Path(path) if path else _root() / MINILM_RECORD
    if not p.is_file():
        raise DocgenError(f"record {p} is missing: run `rf8sim flow --record {MINILM_RECORD}` and check it in")
    rec = json.loads(p.read_text())
    if rec.get("kind") != "rf8sim-flow" or not rec.get("transformer"):
        raise DocgenError(f"{p} is not an rf8sim flow record with a transformer stage")
    return rec


def render_run() -> str:
    rec = load_minilm_record()
    pv, tr = rec["provenance"], rec["transformer"]
    m = pv["machine"]
    stages = ", ".join(f"{s['stage']} {s['seconds']:.0f} s" + ("" if s["status"] == "ok" else f" ({s['status']})")
                       for s in rec["stages"])
    return (f"Record `{MINILM_RECORD}`: `{pv['command']}` at commit {str(pv['commit'])[:10]}"
            f"{' (dirty tree)' if pv.get('dirty') else ''} on {m['cpu']}, {m['cores']} cores, load average "
            f"{m.get('load_1min')} at the end; {tr['sentences']} sentences, "
            f"{tr['tokens']:,} tokens. Stages: {stages}; total {rec['total_s']:.0f} s.\n")


def render_points() -> str:
    tr = load_minilm_record()["transformer"]
    energy = any(p.get("pj_per_mac") is not None for p in tr["points"])
    lines = ["| configuration | mean cosine | 1 − cosine [95 % CI] | top-1 agreement [95 % CI] | "
             "top-10 overlap [95 % CI] | MAC area µm² " + ("| pJ/MAC (MiniLM stream) " if energy else "")
             + "| saturated outputs |", "|---" * (8 if energy else 7) + "|"]
    for p in tr["points"]:
        area = "–" if p.get("area_um2") is None else f"{p['area_um2']:,.0f}"
        if energy:
            area += " | " + ("–" if p.get("pj_per_mac") is None else f"{p['pj_per_mac']:,.1f}")
        nd = p.get("sentences", tr["sentences"])
        lab = p["label"] + ("" if nd == tr["sentences"] else f" (first {nd} sentences)")
        lines.append(f"| {lab} | {p['cosine']:.5f} | {p['loss']:.2e} [{p['loss_lo']:.2e}, {p['loss_hi']:.2e}] "
                     f"| {p['top1']:.3f} [{p['top1_lo']:.3f}, {p['top1_hi']:.3f}] "
                     f"| {p['top10']:.3f} [{p['top10_lo']:.3f}, {p['top10_hi']:.3f}] | {area} | {p['overflow']} |")
    return "\n".join(lines) + "\n"


def render_pairs() -> str:
    tr = load_minilm_record()["transformer"]
    lines = ["| A | B | metric | A − B [95 % CI] | p (Wilcoxon) | significant |", "|---|---|---|---|---|---|"]
    for r in tr["pairs"]:
        nm = r["metric"] + ("" if r.get("sentences", tr["sentences"]) == tr["sentences"] else f" (n={r['sentences']})")
        lines.append(f"| {r['a']} | {r['b']} | {nm} | {r['diff']:+.2e} [{r['lo']:+.2e}, {r['hi']:+.2e}] "
                     f"| {r['p_wilcoxon']:.2g} | {'**yes**' if r['significant'] else 'no'} |")
    return "\n".join(lines) + "\n"


def _mixed_table(mx: dict, unit: str, cost_key: str, fmt: str, on, with_source: bool) -> list[str]:
    """One mixed-format search as a markdown table: the uniform configurations, then the assignment."""
    def tail(text):
        return f" {text} |" if with_source else ""

    lines = [f"| assignment | {unit} (MAC-weighted) | mean cosine |" + tail("cost from"),
             "|---|---|---|" + ("---|" if with_source else "")]
    for u in mx["uniform"]:
        lines.append(f"| uniform {u['config']} | {format(u['cost'], fmt)} | {u['cosine']:.5f}{on(u.get('sentences'))} |"
                     + tail(u.get("source", "")))
    v = mx["verified"]
    groups = ", ".join(f"{g}: {c.split()[0]}" + ("" if c.endswith("exact") else f"@{c.split()[-1]}")
                       for g, c in mx["assignment"].items())
    cost = format(mx[cost_key], fmt)
    if v is None:
        lines.append(f"| mixed, last candidate ({groups}) | {cost} | not verified: no assignment of these formats "
                     f"is predicted to meet the constraint |" + tail(""))
    else:
        lines.append(f"| **mixed** ({groups}) | {cost} | {v['mean']:.5f} [{v['lo']:.5f}, {v['hi']:.5f}]"
                     f"{on(v.get('n'))} {'meets' if mx['meets_constraint'] else 'misses'} the constraint |"
                     + tail("MAC-weighted"))
    return lines


def render_mixed() -> str:
    tr = load_minilm_record()["transformer"]
    mx = tr["mixed"]
    if "assignment" not in mx:
        return f"Mixed-format search skipped: {mx.get('skipped', 'no result')}.\n"

    def on(n):  # a cosine measured on a prefix says so
        return "" if n in (None, tr["sentences"]) else f" (first {n} sentences)"

    lines = [f"Constraint: {mx['constraint']}.", ""]
    lines += _mixed_table(mx, "µm² per MAC", "cost_um2_per_mac", ",.0f", on,
                          any(u.get("source") for u in mx["uniform"]))
    me = tr.get("mixed_energy") or {}
    if "assignment" in me:
        lines += ["", "By MAC energy (pJ per MAC on the MiniLM stream, MAC-weighted; every configuration, W8A16 "
                  "included):", ""]
        lines += _mixed_table(me, "pJ per MAC", "cost_pj_per_mac", ",.1f", on, True)
    mb = tr.get("mixed_bits") or {}
    if "assignment" in mb:
        lines += ["", "By stored weight bits (every configuration, W8A16 included):", ""]
        lines += _mixed_table(mb, "bits per weight", "cost_bits_per_weight", ".2f", on, False)
    ck = tr.get("torch_check") or []
    lines += ["", f"Per-layer torch emulation check: {len(ck)} layer runs, {sum(r['outputs'] for r in ck):,} "
                  f"outputs, {sum(r['mismatches'] for r in ck)} mismatches."]
    return "\n".join(lines) + "\n"

def render_answer() -> str:
    """The flow report's first section, from the checked-in flow record (MiniLM, TinyLM, silicon)."""
    from .answer import answer_lines

    rec = load_minilm_record()
    return "\n".join(answer_lines(rec["transformer"], rec.get("tinylm"))) + "\n"


def render_readme_answer() -> str:
    """README: which uniform configurations meet the MiniLM constraint and where RF8 stands (cosine)."""
    from .answer import minilm_answer

    lines = minilm_answer(load_minilm_record()["transformer"])
    keep = [ln for ln in lines if ln.startswith("- MiniLM set") or "uniformly" in ln or "no uniform" in ln
            or (ln.startswith("- MiniLM, RF8") and "mean cosine" in ln)]
    return "\n".join(keep) + "\n"


#: the array-cost records the README answer reads, per technology (osu018 required, the others when checked in)
ARRAY_RECORDS = (("hdl/results/array_cost.json", "osu018"), ("hdl/results/array_cost_sky130.json", "sky130"))


def _array_lines(arr: dict, rec_path: str, tech: str) -> list[str]:
    """The README answer's array lines of one array-cost record, one per R x C, then the RF8 x BF16 arrays at
    the equal-area budget's size against it (the budget bullet itself is in docs/hdl.md)."""
    from ...hdl.array_cost import BASELINE, edge_stages_of, equal_area_lines, goal_verdict, rows_by_pair

    out = []
    sizes = sorted({(r["config"]["rows"], r["config"]["cols"]) for r in arr["rows"]})
    for R, C in sizes:
        by = rows_by_pair(arr["rows"], R, C, 0)
        g = goal_verdict(by)
        names = ", ".join(f"{k[0]} × {k[1]}" + (f" {k[2]}" if len(k) > 2 else "") for k in by)
        g1 = goal_verdict(rows_by_pair(arr["rows"], R, C, 1)) if any(
            edge_stages_of(r["config"]) for r in arr["rows"] if (r["config"]["rows"], r["config"]["cols"]) == (R, C)) \
            else {}
        head = (f"- **{R}×{C} arrays** (`{rec_path}`, {tech} before routing; arrays: {names}): ")
        if "tops_mm2" in g:
            s = (f"RF8 × BF16 reaches **{g['tops_mm2']:.2f}×** the TOPS/mm² of the BF16 × BF16 array that adds in "
                 f"float32 down each column (`fp32`, the baseline; goal ≥ 2×: {'met' if g['tops_mm2_met'] else 'not met'})")
            if "tops_w" in g:
                s += (f" and **{g['tops_w']:.2f}×** its TOPS/W on real MiniLM tiles (goal ≥ 1.5×: "
                      f"{'met' if g['tops_w_met'] else 'not met'})")
        else:
            s = ("RF8 × BF16 against the BF16 × BF16 fp32 array: **not evaluated** ("
                 + ("the fp32 baseline" if BASELINE not in by else "a row") + " is missing from the record)")
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


def render_readme_lead() -> str:
    """README's first section: what RF8 buys in arrays (goals), on MiniLM, and what is inside the flow noise."""
    from ...infra.docgen import load_record
    from ...hdl import route_study
    from .answer import minilm_answer

    out = []
    for rec_path, tech in ARRAY_RECORDS:
        if tech != "osu018" and not (Path(__file__).resolve().parents[3] / rec_path).is_file():
            continue  # the other technologies' records are optional; osu018's is the one the flow needs
        arr = load_record(rec_path, "hdl-array-cost", f"rf8sim array cost --table --tech {tech} --record {rec_path}")
        out += _array_lines(arr, rec_path, tech)
    lines = minilm_answer(load_minilm_record()["transformer"])
    out += [ln for ln in lines if "uniformly" in ln or "no uniform" in ln
            or (ln.startswith("- MiniLM, RF8 rf8/a:") and "mean cosine" in ln)]
    noise = route_study.noise_sentences(route_study.load_route_record("osu018"))
    inside = [x.split(" — ")[0] for x in noise if "inside the noise" in x]
    if noise:
        out.append(f"- **Flow noise** (`{route_study.RECORDS['osu018']}`, osu018 after routing, ABC scripts × "
                   f"placement seeds): {len(inside)} of {len(noise)} format differences checked are inside the "
                   "noise" + (": " + "; ".join(inside) if inside else "") + ".")
    return "\n".join(out) + "\n"
