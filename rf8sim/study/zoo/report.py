"""Record, plot and generated docs of ``rf8sim study zoo`` (:mod:`rf8sim.study.zoo.study`)."""

from __future__ import annotations

from pathlib import Path


__all__ = ["ZOO_RECORD", "write_zoo_record", "load_zoo_record", "plot_zoo", "zoo_facts"]

ZOO_RECORD = Path("study") / "results" / "zoo.json"
KIND = "rf8sim-zoo"


def write_zoo_record(path, res: dict, prov: dict, *, overwrite: bool = False) -> Path:
    from ...infra.records import write_record

    return write_record(path, {"provenance": prov, "kind": KIND, **res}, overwrite=overwrite)


def load_zoo_record(path=None) -> dict:
    from ...infra.docgen import load_record

    return load_record(Path(path) if path else ZOO_RECORD, KIND, f"rf8sim study zoo --record {ZOO_RECORD}")


def _by(rows, *keys) -> dict:
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


def plot_zoo(res: dict, path) -> Path:
    """Two panels against stored bits per weight: MiniLM weight SQNR, and weight-only 1 - cosine."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...infra.fileio import write_bytes

    mw = _by(res["minilm_weights"], "format")
    cos = {r["format"]: r for r in res["minilm_cosine"] if r["mode"] == "weight-only"}
    fig, axes = plt.subplots(1, 2 if cos else 1, figsize=(11 if cos else 6, 4.2), squeeze=False)
    ax = axes[0][0]
    for f, r in mw.items():
        c = "C3" if f.startswith("rf8") else ("C0" if S_BLOCK(f) else "C2")
        ax.scatter(r["bits_per_weight"], r["sqnr_db"], color=c)
        ax.annotate(f, (r["bits_per_weight"], r["sqnr_db"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("stored bits per weight (code + scale share)")
    ax.set_ylabel("SQNR of all MiniLM Linear weights (dB)")
    ax.grid(alpha=0.3)
    if cos:
        ax = axes[0][1]
        for f, r in cos.items():
            b = mw[f]["bits_per_weight"]
            c = "C3" if f.startswith("rf8") else ("C0" if S_BLOCK(f) else "C2")
            ax.errorbar(b, r["loss"], yerr=[[r["loss"] - r["loss_lo"]], [r["loss_hi"] - r["loss"]]], fmt="o", color=c)
            ax.annotate(f, (b, r["loss"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
        ax.set_yscale("log")
        ax.set_xlabel("stored bits per weight")
        ax.set_ylabel(f"MiniLM 1 − cosine, weight-only ({next(iter(cos.values()))['sentences']} sentences)")
        ax.grid(alpha=0.3, which="both")
    fig.suptitle("Format zoo: RF8 family (red), element formats (green), block formats (blue)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return write_bytes(path, buf.getvalue(), overwrite=True)


def S_BLOCK(name) -> bool:  # noqa: N802  (a predicate used as a colour key)
    from ... import scales as S

    return S.block_format(name) is not None


def _run_line(rec: dict) -> str:
    pv = rec["provenance"]
    m = pv["machine"]
    load = m.get("load_1min")
    load_txt = "" if load is None else f", load average {load:.2f} at the start"
    t = rec.get("timing_s", {})
    return (f"Record `{ZOO_RECORD}`: `{pv['command']}` at commit {(pv.get('commit') or '?')[:10]} "
            f"({'dirty' if pv.get('dirty') else 'clean'} tree), {pv.get('utc', '')}, on {m['cpu']}, {m['cores']} cores"
            f"{load_txt} (shared with other engineers' jobs); GG {t.get('gg', 0):.0f} s, MiniLM weights "
            f"{t.get('minilm_weights', 0):.0f} s, MiniLM cosine {t.get('minilm_cosine', 0):.0f} s" + _reused(rec))


def _reused(rec: dict) -> str:
    """Which MiniLM cosine rows the run took over from an earlier record (``--reuse``), and from where."""
    by = {}
    for r in rec.get("minilm_cosine", []):
        if r.get("reused_from"):
            src = r["reused_from"]
            by.setdefault((src["commit"][:10], src.get("utc") or "", src.get("command") or ""), []).append(r)
    return "".join(f"; {len(rs)} MiniLM cosine rows ({', '.join(sorted({r['mode'] for r in rs}))}: "
                   f"{', '.join(r['format'] for r in rs)}) reused from the record of `{cmd}` at commit {c} ({u}), "
                   f"their quantized weights unchanged (equal MiniLM weight SQNR)" for (c, u, cmd), rs in by.items())


def render_zoo_table() -> str:
    rec = load_zoo_record()
    p = rec["params"]
    shapes = p["shapes"]
    gg = _by(rec["gg"], "format", "shape")
    mw = _by(rec["minilm_weights"], "format")
    cos = _by(rec["minilm_cosine"], "format", "mode")
    w8 = next((r for r in rec["minilm_cosine"] if r["mode"] == "W8A8"), None)
    wo = next((r for r in rec["minilm_cosine"] if r["mode"] == "weight-only"), None)
    head = (["format", "bits/weight (MiniLM)"] + [f"SQNR GG β={s:g}" for s in shapes] + ["SQNR MiniLM weights"]
            + ([f"1 − cos weight-only ({wo['sentences']} sent.)"] if wo else [])
            + ([f"1 − cos W8A8 ({w8['sentences']} sent.)"] if w8 else []))
    lines = [_run_line(rec) + ".", "",
             f"SQNR in dB (GG: {p['rows']} rows of {p['cols']} samples per shape, one scale per row; block formats "
             f"with their own scales); 1 − cosine to the float32 MiniLM embedding, mean [95 % bootstrap CI]:", "",
             "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]

    def ci(r):
        return "-" if r is None else f"{r['loss']:.2e} [{r['loss_lo']:.2e}, {r['loss_hi']:.2e}]"

    for f in p["formats"]:
        row = [f, f"{mw[f]['bits_per_weight']:.3f}"] + [f"{gg[(f, s)]['sqnr_db']:.2f}" for s in shapes]
        row.append(f"{mw[f]['sqnr_db']:.2f}")
        if wo:
            row.append(ci(cos.get((f, "weight-only"))))
        if w8:
            r = cos.get((f, "W8A8"))
            row.append(ci(r) + ("" if r is None or "acc exact" in r["datapath"] else " (fp32 acc)"))
        lines.append("| " + " | ".join(row) + " |")
    w16 = [r for r in rec["minilm_cosine"] if r["mode"] == "W8A16"]
    if w16:
        lines += ["", f"W8A16: 16-bit activation codes (unscaled; posit16 the zoo's 16-bit activation format, bf16 "
                      f"beside it), per-channel weight scales, the float32 accumulator of the W8A16 contract; 1 − "
                      f"cosine on {w16[0]['sentences']} sentences; every Linear layer of the first "
                      f"{w16[0]['torch_check']['sentences']} sentence(s) also through the torch emulation "
                      f"(rf8sim.training), compared bit for bit with the golden datapath:", "",
                  "| weight | activation | 1 − cos | torch emulation: outputs compared (mismatches) |",
                  "|---|---|---|---|"]
        for r in w16:
            t = r["torch_check"]
            lines.append(f"| {r['format']} | {r['activation']} | {ci(r)} | {t['outputs']:,} in {t['layers']} layers "
                         f"({t['mismatches']}) |")
    return "\n".join(lines)


def zoo_facts(rec: dict) -> list[str]:
    """The generated comparisons: RF8 vs APoT at 8 bits, the best RF8 variant vs E4M3 (whichever way)."""
    p = rec["params"]
    shapes = p["shapes"]
    gg = _by(rec["gg"], "format", "shape")
    mw = _by(rec["minilm_weights"], "format")
    cos = _by(rec["minilm_cosine"], "format", "mode")

    def rng(a, b):
        d = [gg[(a, s)]["sqnr_db"] - gg[(b, s)]["sqnr_db"] for s in shapes]
        return f"{min(d):+.2f} to {max(d):+.2f} dB over β = {shapes[0]:g}..{shapes[-1]:g}"

    def word(d):
        return "above" if d > 0 else "below"

    def cmp_cos(a, b):
        ra, rb = cos.get((a, "weight-only")), cos.get((b, "weight-only"))
        if not ra or not rb:
            return ""
        overlap = not (ra["loss_hi"] < rb["loss_lo"] or rb["loss_hi"] < ra["loss_lo"])
        return (f"; MiniLM weight-only 1 − cosine {ra['loss']:.2e} vs {rb['loss']:.2e} on {ra['sentences']} sentences "
                f"({'95 % intervals overlap' if overlap else ('lower for ' + (a if ra['loss'] < rb['loss'] else b))})")

    out = []
    if "rf8" in mw and "apot8" in mw:
        d = mw["rf8"]["sqnr_db"] - mw["apot8"]["sqnr_db"]
        out.append(f"RF8 against APoT at equal bits (8-bit codes, per-channel scales, {mw['rf8']['bits_per_weight']:.3f} "
                   f"bits per weight each): RF8's SQNR on the MiniLM weights is {abs(d):.2f} dB {word(d)} APoT8's "
                   f"({mw['rf8']['sqnr_db']:.2f} vs {mw['apot8']['sqnr_db']:.2f} dB), GG samples RF8 − APoT8 "
                   f"{rng('rf8', 'apot8')}" + cmp_cos("rf8", "apot8") + ".")
    variants = [f for f in p["formats"] if f.startswith("rf8") and f != "rf8"]
    if variants and "e4m3" in mw:
        best = max(variants, key=lambda f: mw[f]["sqnr_db"])
        d = mw[best]["sqnr_db"] - mw["e4m3"]["sqnr_db"]
        d0 = mw["rf8"]["sqnr_db"] - mw["e4m3"]["sqnr_db"] if "rf8" in mw else None
        rel = f"{abs(d):.2f} dB {word(d)}" if abs(d) >= 0.005 else "level with"
        out.append(f"The best RF8 variant on the MiniLM weights, {best} (of {', '.join(variants)}), is {rel} E4M3 "
                   f"({mw[best]['sqnr_db']:.2f} vs {mw['e4m3']['sqnr_db']:.2f} dB"
                   + (f"; RF8 itself {d0:+.2f} dB" if d0 is not None else "") + f"), GG samples {best} − E4M3 "
                   f"{rng(best, 'e4m3')}" + cmp_cos(best, "e4m3") + ".")
    w16 = {(r["format"], r["activation"]): r for r in rec["minilm_cosine"] if r["mode"] == "W8A16"}
    if ("rf8", "posit16") in w16 and ("rf8", "bf16") in w16:
        p16, b16 = w16[("rf8", "posit16")], w16[("rf8", "bf16")]
        overlap = not (p16["loss_hi"] < b16["loss_lo"] or b16["loss_hi"] < p16["loss_lo"])
        out.append(f"posit16 against bf16 activations on RF8 weights (float32 accumulator, {p16['sentences']} "
                   f"sentences): MiniLM 1 − cosine {p16['loss']:.2e} vs {b16['loss']:.2e} ("
                   + ("95 % intervals overlap" if overlap else
                      "lower for " + ("posit16" if p16["loss"] < b16["loss"] else "bf16")) + ").")
    four = [f for f in ("apot4", "e2m1", "mxfp4", "nvfp4") if f in mw]
    if len(four) > 1:
        b4 = max(four, key=lambda f: mw[f]["sqnr_db"])
        bits = ", ".join(f"{f} {mw[f]['bits_per_weight']:.2f}" for f in four)
        out.append(f"At about 4 bits per weight ({bits}) the best MiniLM weight SQNR is {b4}'s, "
                   f"{mw[b4]['sqnr_db']:.2f} dB.")
    return out


def render_zoo_facts() -> str:
    rec = load_zoo_record()
    return "Computed from the record (formats: " + ", ".join(rec["params"]["formats"]) + "):\n\n" + "\n".join(
        f"- {s}" for s in zoo_facts(rec))


ZOO_RTL_RECORD = Path("study") / "results" / "zoo-rtl.json"


def render_zoo_rtl() -> str:
    from ...infra.docgen import load_record

    rec = load_record(ZOO_RTL_RECORD, "rf8sim-zoo-rtl", f"rf8sim study zoo-rtl --record {ZOO_RTL_RECORD}")
    pv = rec["provenance"]
    m = pv["machine"]
    power = rec["rows"][0] if rec["rows"] and all("pj_per_mac" in r for r in rec["rows"]) else None
    lines = [f"Record `{ZOO_RTL_RECORD}`: `{pv['command']}` at commit {(pv.get('commit') or '?')[:10]} "
             f"({'dirty' if pv.get('dirty') else 'clean'} tree), {pv.get('utc', '')}, on {m['cpu']}, {m['cores']} "
             f"cores. Each MAC simulated with Icarus against the golden model (8-bit activations: the exact "
             f"fixed-point MAC on all 65,536 code pairs; bf16: the fp32-accumulator MAC on 256 activation codes × "
             f"every weight code plus 20 random sequences); its product stage alone synthesized with yosys onto "
             f"osu018" + (":" if not power else
                          f", and its energy per product measured on {power['power_beats']:,} beats of the MiniLM "
                          f"operand stream (gate-level Icarus with specify delays, OpenSTA cell energies, "
                          f"{power['clock_ns']:g} ns clock; as `rf8sim synth --power`):"), "",
             "| activation × weight | accumulator | product | verified products (mismatches) | product stage µm² | "
             "NAND2-eq | depth (cells) |" + (" pJ per product | critical path ns |" if power else ""),
             "|---|---|---|---|---|---|---|" + ("---|---|" if power else "")]
    for r in rec["rows"]:
        unit = f"{r['a']} × {r['w']}" + (f" ({', '.join(r['block_formats'])} elements)" if r.get("block_formats")
                                          else "")
        star = " †" if r.get("simulated") == "product stage" else ""
        lines.append(f"| {unit} | {r.get('acc', 'exact')} | {r['product']} ({r['product_width']} bits) | "
                     f"{r['verified_products']:,} ({r['mismatches']}){star} | {r['area_um2']:,.0f} | {r['nand2_eq']:,.0f} | "
                     f"{r['depth_cells']} |" + (f" {r['pj_per_mac']:.2f} | {r['critical_path_ns']:.2f} |"
                                                if power else ""))
    if any(r.get("simulated") == "product stage" for r in rec["rows"]):
        from .study import BLOCK_ELEMENTS

        blocks = sorted({b for r in rec["rows"] for b in r.get("block_formats", [])})
        lines += ["", "† 4-bit weights (" + ", ".join(sorted({r["w"] for r in rec["rows"] if r.get("simulated") ==
                                                               "product stage"}))
                  + "): the generator builds their product stage only, simulated with Icarus on every code pair "
                  "against the golden products (bf16: all 65,536 activation codes × 16 weight codes)"
                  + (f"; {', '.join(blocks)} multiply {', '.join(sorted({BLOCK_ELEMENTS[b] for b in blocks}))} "
                     "elements in this stage, and their block scales never enter it: MXFP4's E8M0 scale (one per "
                     "32 weights) is an exponent added to each block's sum, NVFP4's E4M3 scale (one per 16) "
                     "multiplies each block's sum and its float32 tensor scale the layer's output, so neither the "
                     "area nor the energy here includes them; the energy stream holds the E2M1 codes of the MiniLM "
                     "weights quantized per tensor" if blocks else "") + "."]
    by = {(r["a"], r["w"]): r for r in rec["rows"]}
    facts = []
    for a in ("e4m3", "rf8", "bf16"):
        ws = [w for (aa, w) in by if aa == a]
        if len(ws) > 1:
            best = min(ws, key=lambda w: by[(a, w)]["area_um2"])
            facts.append(f"against {a} activations the smallest product stage is {best}'s "
                         f"({by[(a, best)]['area_um2']:,.0f} µm² of {', '.join(ws)})")
            if power:
                low = min(ws, key=lambda w: by[(a, w)]["pj_per_mac"])
                facts.append(f"the least energy per product {low}'s ({by[(a, low)]['pj_per_mac']:.2f} pJ)")
    if all(r["mismatches"] == 0 and r["ok"] for r in rec["rows"]):
        facts.append(f"all {len(rec['rows'])} units match the golden model on every product compared")
    lines += ["", "Computed from the record: " + "; ".join(facts) + "."]
    return "\n".join(lines)


ZOO_PROVE_RECORD = Path("study") / "results" / "zoo-prove.json"


def prove_summary(rows) -> str:
    """One sentence counting the SAT-proved product stages by method, naming the rest."""
    proved = [r for r in rows if r["proved"]]
    by = {}
    for r in proved:
        by.setdefault(r["method"], []).append(r)
    parts = [f"{len(v)} {m}" for m, v in by.items()]
    pairs = sum(r["pairs"] for r in proved)
    txt = (f"{len(proved)} of {len(rows)} product stages SAT-proved equal to the format definitions on every code "
           f"pair ({pairs:,} pairs in all; " + ", ".join(parts) + ")")
    failed = [f"{r['a']} × {r['w']}" for r in rows if not r["proved"] and r["method"]]
    open_ = [f"{r['a']} × {r['w']}" for r in rows if not r["proved"] and not r["method"]]
    if failed:
        txt += "; proof FAILED for " + ", ".join(failed)
    if open_:
        txt += "; no proof finished in time for " + ", ".join(open_) + " (their check is the simulation above)"
    return txt + "."


def render_zoo_prove() -> str:
    from ...infra.docgen import load_record

    rec = load_record(ZOO_PROVE_RECORD, "rf8sim-zoo-prove", f"rf8sim study zoo-prove --record {ZOO_PROVE_RECORD}")
    pv = rec["provenance"]
    m = pv["machine"]
    lines = [f"Record `{ZOO_PROVE_RECORD}`: `{pv['command']}` at commit {(pv.get('commit') or '?')[:10]} "
             f"({'dirty' if pv.get('dirty') else 'clean'} tree), {pv.get('utc', '')}, on {m['cpu']}, {m['cores']} "
             "cores:", "", "| activation × weight | code pairs | SAT proof | method | SAT problems | seconds |",
             "|---|---|---|---|---|---|"]
    for r in rec["rows"]:
        st = "proved" if r["proved"] else ("FAILED" if r["method"] else "not finished: " + "; ".join(r.get("timeouts", [])))
        lines.append(f"| {r['a']} × {r['w']} | {r['pairs']:,} | {st} | {r['method'] or '-'} | "
                     f"{r.get('sat_problems', '-')} | {r['seconds']:.0f} |")
    lines += ["", "Computed from the record: " + prove_summary(rec["rows"])]
    reused = {}
    for r in rec["rows"]:
        if r.get("reused_from"):
            reused.setdefault((r["reused_from"]["commit"][:10], r["reused_from"].get("utc") or ""), []).append(r)
    for (c, u), rs in reused.items():
        checked = all(r["reused_from"].get("product_sha_checked") for r in rs)
        lines[-1] += (f" {len(rs)} of these proofs were taken over (`--reuse`) from the record of commit {c} ({u}): "
                      + ("their product-stage Verilog hashes equal the recorded ones." if checked else
                         "that record held no Verilog hashes, so these rows rest on the generator being unchanged "
                         "for these pairs since; they now carry today's hash (`product_sha`) for any later reuse."))
    done = {f"{r['a']}:{r['w']}" for r in rec["rows"]}
    left = [p.replace(":", " × ") for p in rec.get("requested", []) if p not in done]
    if not rec.get("complete", True) and left:
        lines[-1] += (f" The run was stopped after {len(rec['rows'])} of {len(rec['requested'])} pairs; not reached: "
                      + ", ".join(left) + " (their check is the simulation above).")
    return "\n".join(lines)


ZOO_MAC_RECORD = Path("study") / "results" / "zoo-mac.json"


def render_zoo_mac_rows(rec: dict) -> str:
    pv = rec["provenance"]
    m = pv["machine"]
    rows = rec["rows"]
    r0 = rows[0]
    lines = [f"Record `{ZOO_MAC_RECORD}`: `{pv['command']}` at commit {(pv.get('commit') or '?')[:10]} "
             f"({'dirty' if pv.get('dirty') else 'clean'} tree), {pv.get('utc', '')}, on {m['cpu']}, {m['cores']} "
             f"cores. Whole units (product stage, then the exact fixed-point accumulator for 1,024 terms with 8-bit "
             f"activations, or the fp32 accumulator with bf16) synthesized onto osu018 beside their product stage "
             f"alone, both run on {r0['power_beats']:,} beats of the MiniLM operand stream ({r0['clock_ns']:g} ns "
             f"clock, as `rf8sim synth --power`):", "",
             "| activation × weight | accumulator | MAC µm² | MAC pJ per MAC | product stage µm² | product stage pJ | "
             "product stage share of the energy |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['a']} × {r['w']} | {r['acc']} | {r['mac_area_um2']:,.0f} | {r['mac_pj']:.2f} | "
                     f"{r['product_area_um2']:,.0f} | {r['product_pj']:.2f} | {100 * r['product_share']:.0f} % |")
    facts = []
    for group, sel in (("8-bit activations", lambda r: r["a"] != "bf16"), ("bf16 activations",
                                                                          lambda r: r["a"] == "bf16")):
        g = [r for r in rows if sel(r)]
        if len(g) > 1:
            lo = min(g, key=lambda r: r["mac_pj"])
            lo_p = min(g, key=lambda r: r["product_pj"])
            facts.append(f"with {group} the least energy per whole MAC is {lo['a']} × {lo['w']}'s "
                         f"({lo['mac_pj']:.2f} pJ of {', '.join(r['a'] + ' × ' + r['w'] for r in g)}; the least per "
                         f"product stage {lo_p['a']} × {lo_p['w']}'s, {lo_p['product_pj']:.2f} pJ)")
    sh = [r["product_share"] for r in rows]
    facts.append(f"the product stage is {100 * min(sh):.0f} to {100 * max(sh):.0f} % of a whole MAC's energy here")
    lines += ["", "Computed from the record: " + "; ".join(facts) + "."]
    return "\n".join(lines)


def render_zoo_mac() -> str:
    from ...infra.docgen import load_record

    return render_zoo_mac_rows(load_record(ZOO_MAC_RECORD, "rf8sim-zoo-mac",
                                           f"rf8sim study zoo-mac --record {ZOO_MAC_RECORD}"))
