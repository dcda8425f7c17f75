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


def render_readme_lead() -> str:
    """README's first section: what RF8 buys in arrays (goals), on MiniLM, and what is inside the flow noise."""
    from ...hdl import route_study
    from .answer import array_answer_lines, minilm_answer

    out = array_answer_lines(required=True)
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
