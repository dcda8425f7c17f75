"""``rf8sim synth --timing --power ...``: the PPA command line, the docs/hdl.md table and the plot."""

from __future__ import annotations

import json
from pathlib import Path

from .mac import HdlError
from .power import RECORD, acc_text, check_clock

__all__ = ["run_ppa_cli", "render_ppa_table", "render_ppa_anchors", "plot_ppa"]

#: Horowitz, ISSCC 2014, 45 nm at 0.9 V (pJ)
HOROWITZ_45NM = {"int8 mult": 0.2, "int8 add": 0.03, "int32 add": 0.1, "fp32 add": 0.9, "fp32 mult": 3.7}
#: stated scaling rule to osu018 (180 nm, 1.8 V): E = C V^2 with C proportional to feature size
SCALE_180 = (180 / 45) * (1.8 / 0.9) ** 2


def _streams(args) -> list:
    from .streams import parse_stream

    specs = args.stream or (["minilm", "random"] if args.power else [])
    for s in specs:
        parse_stream(s)
    return specs


def run_ppa_cli(args) -> int:
    from ..infra import fileio
    from ..infra.records import write_record
    from .power import ppa, ppa_table, ppa_w8a16_table, table_record, w8a16_ppa_record

    clock = check_clock(10.0 if args.clock_ns is None else args.clock_ns)
    specs = _streams(args)
    if args.stream and not args.power:
        raise HdlError("--stream needs --power")
    if args.no_liberty:
        raise HdlError("--timing/--power need the standard-cell netlist: drop --no-liberty")
    if args.liberty and not Path(args.liberty).is_file():
        raise HdlError(f"Liberty file {args.liberty} not found (or not a file)")
    if args.beats is not None and args.beats < 1:
        raise HdlError(f"--beats must be >= 1, got {args.beats}")
    if (args.record or args.plot) and not (args.table and args.power):
        raise HdlError("--record/--plot need --table --timing --power")
    if args.plot and args.table == "w8a16":
        raise HdlError("--plot draws the fixed-accumulator PPA table (--table fixed); drop --plot for --table w8a16")
    for p in (args.record, args.plot, args.json):
        if p:
            fileio.check_output_path(p, args.force)
    liberty = args.liberty or "default"
    beats = 2000 if args.beats is None else args.beats
    if args.table == "w8a16":
        by_lanes = None if args.beats is not None else W8A16_BEATS
        rows = ppa_w8a16_table(specs, clock, beats, liberty, use_cache=not args.no_cache, specify=not args.zero_delay,
                               beats_by_lanes=by_lanes)
    elif args.table:
        rows = ppa_table(specs, clock, beats, liberty, use_cache=not args.no_cache, specify=not args.zero_delay)
    else:
        rows = [ppa(_spec_of_args(args), stage=args.stage, clock_ns=clock, streams=specs, beats=beats,
                    liberty=liberty, use_cache=not args.no_cache, progress=True, specify=not args.zero_delay)]
    if args.json:  # the records first: nothing in the printing can lose them
        write_record(args.json, {"rows": rows}, overwrite=args.force)
    if args.record:
        import sys

        cmd = ["rf8sim", *sys.argv[1:]] if Path(sys.argv[0]).name in ("cli.py", "__main__.py", "rf8sim") else None
        payload = w8a16_ppa_record(rows) if args.table == "w8a16" else table_record(rows)
        payload["tech"] = getattr(args, "tech", None) or "osu018"  # routed tables: rf8sim.hdl.route_study
        write_record(args.record, payload, overwrite=args.force, command=cmd)
    _print(rows, specs)
    if args.record:
        print(f"wrote {args.record}")
        if args.plot:
            plot_ppa(args.record, args.plot, overwrite=args.force)
            print(f"wrote {args.plot}")
    return 0


#: --table w8a16 --power: beats per stream by lanes unless --beats is given
W8A16_BEATS = {1: 1000, 4: 500}


def _spec_of_args(args):
    from .spec import MacSpec

    return MacSpec.make(args.a_fmt, args.w_fmt, args.acc, args.lanes, args.result)


def _print(rows, specs) -> None:
    from rf8sim.infra.console import Console
    from rich.table import Table

    t = Table(title=f"rf8sim synth --timing{' --power' if specs else ''} (clock {rows[0]['clock_ns']} ns)")
    for h in ("stage", "a x w", "acc", "lanes", "um^2", "crit ns", "slack ns", "fmax MHz", "um^2*ns",
              *[f"pJ/MAC {s}" for s in specs], *[f"TOPS/W {s}" for s in specs], "TOPS/mm2"):
        t.add_column(h, justify="right")
    for r in rows:
        c, tm = r["config"], r["timing"]
        st = r["streams"]
        lanes = c["lanes"] if r["stage"] in ("align", "column") else r["macs_per_cycle"]
        t.add_row(r["stage"], f"{c['a_fmt']}x{c['w_fmt']}", acc_text(c) if r["stage"] != "product" else "-", str(lanes),
                  f"{r['area_um2']:.0f}", f"{tm['critical_path_ns']:.2f}", f"{tm['slack_ns']:.2f}",
                  f"{tm['fmax_mhz']:.0f}", f"{r['area_x_delay_um2_ns']:.0f}",
                  *[f"{st[s]['pj_per_mac']:.2f}" for s in st], *[f"{st[s]['tops_per_w_at_fmax']:.4f}" for s in st],
                  f"{next(iter(st.values()))['tops_per_mm2_at_fmax']:.4f}" if st else "-")
    Console().print(t)


def _load(path=None) -> dict:
    p = Path(path) if path else RECORD
    if not p.exists():
        from ..infra.docgen import DocgenError

        raise DocgenError(f"PPA record {p} missing: `rf8sim synth --table --timing --power --record {p}`")
    return json.loads(p.read_text())


def _label(r) -> str:
    if r["stage"] != "mac":
        return "product stage alone"
    return f"{r['acc']}{' (exact)' if r.get('acc_label') == 'exact' else ''}"


def render_ppa_table(path=None) -> str:
    rec = _load(path)
    prov = rec["provenance"]
    m = prov.get("machine", {})
    lines = [f"{_tech_note(rec)} Command: `{prov.get('command')}`; {rec['beats']} beats per stream, weight tiles of "
             f"{rec['tile']} "
             f"beats, clock {rec['clock_ns']} ns for the power columns, gate-level delays "
             f"{'on (specify)' if rec['specify'] else 'off'}. Tools: {rec['tools']['sta']}, "
             f"{rec['tools']['iverilog']}. Machine: {m.get('cpu', m.get('processor', '?'))}, "
             f"{m.get('cores', m.get('cpu_count', '?'))} cores. Commit {str(prov.get('commit'))[:10]}"
             f"{' (dirty)' if prov.get('dirty') else ''}.", "",
             "| a × w | accumulator | lanes | area µm² | crit. path ns | slack ns @ clock | fmax MHz | "
             "area×delay µm²·ns | pJ/MAC minilm | pJ/MAC random | minilm @ clock: internal / switching mW, "
             "leakage nW | TOPS/W minilm @ fmax | TOPS/W random @ fmax | TOPS/mm² @ fmax |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rec["rows"]:
        s = r["streams"]
        mi, ra = s.get("minilm", {}), s.get("random", {})

        def f(d, k, fmt):
            return format(d[k], fmt) if k in d else "–"

        lines.append(f"| {r['a_fmt']} × {r['w_fmt']} | {_label(r)} | {r['lanes'] if r['stage'] == 'mac' else 1} | "
                     f"{r['area_um2']:.0f} | {r['critical_path_ns']:.2f} | {r['slack_ns']:.2f} | {r['fmax_mhz']:.0f} | "
                     f"{r['area_x_delay_um2_ns']:.0f} | {f(mi, 'pj_per_mac', '.1f')} | {f(ra, 'pj_per_mac', '.1f')} | "
                     f"{_split(mi)} | "
                     f"{f(mi, 'tops_per_w_at_fmax', '.4f')} | {f(ra, 'tops_per_w_at_fmax', '.4f')} | "
                     f"{f(ra or mi, 'tops_per_mm2_at_fmax', '.4f')} |")
    return "\n".join(lines) + "\n"


def _tech_note(rec: dict) -> str:
    """Which technology and which netlist a table is about (the routed tables are rf8sim.hdl.route_study's)."""
    return (f"**{rec.get('tech', 'osu018')}, pre-route** (the synthesised netlist, no wires; post-route numbers: "
            "'Place and route' below).")


def _split(s: dict) -> str:
    if "internal_w" not in s:
        return "–"
    return f"{s['internal_w'] * 1e3:.2f} / {s['switching_w'] * 1e3:.2f} / {s['leakage_w'] * 1e9:.0f}"


def _find(rec, a, w, acc_label, lanes, stage="mac"):
    for r in rec["rows"]:
        if (r["a_fmt"], r["w_fmt"], r["stage"]) == (a, w, stage) and (stage != "mac" or (
                r.get("acc_label") == acc_label and r["lanes"] == lanes)):
            return r
    return None


def render_ppa_anchors(path=None) -> str:
    """The comparison with the published anchors, numbers from the record."""
    rec = _load(path)
    k = SCALE_180
    h = HOROWITZ_45NM
    lines = [f"Scaling rule (stated, not fitted): E = C·V², C proportional to feature size, V the nominal "
             f"supply: ×(180/45)·(1.8 V/0.9 V)² = ×{k:.0f} from Horowitz' 45 nm / 0.9 V to osu018's 180 nm / 1.8 V.",
             "",
             "| anchor | 45 nm | scaled to 180 nm | measured here (minilm / random) |",
             "|---|---|---|---|"]
    i8 = _find(rec, "int8", "int8", "16:32", 1)
    i8p = _find(rec, "int8", "int8", None, 1, "product")
    anchor_mac = (h["int8 mult"] + h["int32 add"]) * k
    if i8p:
        s = i8p["streams"]
        lines.append(f"| 8-bit int multiply (Horowitz 0.2 pJ) | 0.2 pJ | {h['int8 mult'] * k:.1f} pJ | int8 × int8 "
                     f"product stage alone: {s.get('minilm', {}).get('pj_per_mac', float('nan')):.1f} / "
                     f"{s.get('random', {}).get('pj_per_mac', float('nan')):.1f} pJ |")
    if i8:
        s = i8["streams"]
        lines.append(f"| int8 MAC = 8-bit mult + 32-bit add (0.2 + 0.1 pJ) | 0.3 pJ | {anchor_mac:.1f} pJ | int8 × int8 "
                     f"16:32 MAC, lanes 1 (registers and clock included): "
                     f"{s.get('minilm', {}).get('pj_per_mac', float('nan')):.1f} / "
                     f"{s.get('random', {}).get('pj_per_mac', float('nan')):.1f} pJ |")
    lines.append(f"| fp32 add / fp32 multiply | 0.9 / 3.7 pJ | {h['fp32 add'] * k:.0f} / {h['fp32 mult'] * k:.0f} pJ "
                 "| (no fp32 unit here; the 8-bit MACs accumulate in fixed point) |")
    for fa in ("e4m3", "e5m2", "rf8"):
        r = _find(rec, fa, fa, "16:32", 1)
        if r and i8:
            ratios = []
            for st in ("minilm", "random"):
                if st in r["streams"] and st in i8["streams"]:
                    ratios.append(f"{100 * (r['streams'][st]['pj_per_mac'] / i8['streams'][st]['pj_per_mac'] - 1):+.0f} %")
            lines.append(f"| FP8 vs INT8 energy: +50 … +180 % (arXiv 2303.17951) | | | {fa} × {fa} vs int8 × int8, "
                         f"16:32, lanes 1: {' / '.join(ratios)} |")
    return "\n".join(lines) + "\n"


def plot_ppa(record, out, overwrite: bool = False) -> Path:
    """Two panels: pJ/MAC per configuration (minilm vs random) and area vs pJ/MAC."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..infra import fileio

    rec = _load(record)
    rows = rec["rows"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"width_ratios": [2.2, 1]})
    labels = [f"{r['a_fmt']}×{r['w_fmt']} {'prod' if r['stage'] != 'mac' else r['acc'] + ' L' + str(r['lanes'])}"
              for r in rows]
    x = range(len(rows))
    for off, st, col in ((-0.2, "minilm", "tab:blue"), (0.2, "random", "tab:orange")):
        ys = [r["streams"].get(st, {}).get("pj_per_mac", float("nan")) for r in rows]
        ax1.bar([i + off for i in x], ys, width=0.4, label=st, color=col)
    ax1.set_xticks(list(x))
    ax1.set_xticklabels(labels, rotation=75, fontsize=7)
    ax1.set_ylabel("energy per MAC (pJ), osu018 180 nm, 1.8 V")
    ax1.set_title(f"gate-level energy per MAC ({rec['beats']} beats, clock {rec['clock_ns']} ns)")
    ax1.legend()
    fmts = sorted({r["a_fmt"] + "×" + r["w_fmt"] for r in rows})
    cmap = plt.get_cmap("tab10")
    for j, f in enumerate(fmts):
        sel = [r for r in rows if r["a_fmt"] + "×" + r["w_fmt"] == f and "minilm" in r["streams"]]
        ax2.scatter([r["area_um2"] for r in sel], [r["streams"]["minilm"]["pj_per_mac"] for r in sel],
                    color=cmap(j % 10), label=f, s=[30 if r["stage"] == "mac" else 12 for r in sel])
    ax2.set_xscale("log")
    ax2.set_xlabel("area µm²")
    ax2.set_ylabel("pJ/MAC on MiniLM data")
    ax2.set_title("area vs energy (minilm stream)")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return fileio.write_bytes(out, buf.getvalue(), overwrite=overwrite)


ZERO_DELAY_RECORD = RECORD.parent / "ppa_zero_delay.json"


def render_glitch_table(path=None, zero_path=None) -> str:
    """Cell-output transitions per cycle and pJ/MAC with cell delays (glitches) vs zero-delay simulation."""
    rec, zero = _load(path), _load(zero_path or ZERO_DELAY_RECORD)
    if not rec["specify"] or zero["specify"]:
        from ..infra.docgen import DocgenError

        raise DocgenError("hdl:ppa-glitch needs ppa.json with delays and ppa_zero_delay.json without")
    key = {(r["module"], r["stage"]): r for r in zero["rows"]}
    lines = [f"Zero-delay record: `{zero['provenance'].get('command')}` (commit "
             f"{str(zero['provenance'].get('commit'))[:10]}). MiniLM stream, lanes-1 units and product stages.", "",
             "| a × w | accumulator | transitions/cycle, delays | zero-delay | ratio | pJ/MAC, delays | zero-delay |",
             "|---|---|---|---|---|---|---|"]
    for r in rec["rows"]:
        z = key.get((r["module"], r["stage"]))
        if z is None or r["lanes"] != 1 or "minilm" not in r["streams"] or "minilm" not in z["streams"]:
            continue
        a, b = r["streams"]["minilm"], z["streams"]["minilm"]
        ta, tb = a["cell_output_toggles_per_cycle"], b["cell_output_toggles_per_cycle"]
        lines.append(f"| {r['a_fmt']} × {r['w_fmt']} | {_label(r)} | {ta:.0f} | {tb:.0f} | {ta / tb:.2f} | "
                     f"{a['pj_per_mac']:.1f} | {b['pj_per_mac']:.1f} |")
    return "\n".join(lines) + "\n"


GG_RECORD = RECORD.parent / "ppa_gg.json"


def render_stream_table(path=None, gg_path=None) -> str:
    """pJ/MAC per stream: real MiniLM data, GG(beta) synthetic, uniform random codes."""
    rec, gg = _load(path), _load(gg_path or GG_RECORD)
    key = {(r["module"], r["stage"]): r for r in gg["rows"]}
    gnames = sorted({s for r in gg["rows"] for s in r["streams"]})
    lines = [f"GG record: `{gg['provenance'].get('command')}` (commit {str(gg['provenance'].get('commit'))[:10]}), "
             f"same dataflow, beats and clock; GG values quantized per tensor like the real data.", "",
             "| a × w | accumulator | lanes | pJ/MAC minilm | " + " | ".join(f"pJ/MAC {g}" for g in gnames)
             + " | pJ/MAC random |",
             "|---|---|---|---|" + "---|" * len(gnames) + "---|"]
    for r in rec["rows"]:
        z = key.get((r["module"], r["stage"]))
        if z is None:
            continue
        s = r["streams"]
        cells = [f"{s['minilm']['pj_per_mac']:.1f}" if "minilm" in s else "–"]
        cells += [f"{z['streams'][g]['pj_per_mac']:.1f}" if g in z["streams"] else "–" for g in gnames]
        cells.append(f"{s['random']['pj_per_mac']:.1f}" if "random" in s else "–")
        lines.append(f"| {r['a_fmt']} × {r['w_fmt']} | {_label(r)} | {r['lanes'] if r['stage'] == 'mac' else 1} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _sp(x: float) -> str:
    return f"{x:+.0f} %".replace("-", "−")


def _unit(r) -> str:
    return f"{r['a_fmt']} × {r['w_fmt']} {_label(r)}" + (f" lanes {r['lanes']}" if r["stage"] == "mac" else "")


def render_ppa_findings(path=None, gg_path=None) -> str:
    """Markdown bullets: what the PPA table says, every comparison computed from the records and naming the
    units it covers (docs/hdl.md "What the table says")."""
    rec, gg = _load(path), _load(gg_path or GG_RECORD)
    rows = [r for r in rec["rows"] if "minilm" in r["streams"] and "random" in r["streams"]]
    pj = {id(r): (r["streams"]["minilm"]["pj_per_mac"], r["streams"]["random"]["pj_per_mac"]) for r in rows}
    cheaper = [r for r in rows if pj[id(r)][0] < pj[id(r)][1]]
    gap = sorted(rows, key=lambda r: pj[id(r)][1] / pj[id(r)][0])
    out = [f"* **Real MiniLM data vs uniform random codes**: real data costs less energy per MAC for "
           f"{len(cheaper)} of the {len(rows)} units ({'every unit' if len(cheaper) == len(rows) else 'not every unit'}"
           f"): real activations sit on few codes and the weights stay for a tile, so fewer gates switch. Random "
           f"over real is largest for {_unit(gap[-1])} ({pj[id(gap[-1])][1] / pj[id(gap[-1])][0]:.2f}×) and smallest "
           f"for {_unit(gap[0])} ({pj[id(gap[0])][1] / pj[id(gap[0])][0]:.2f}×)."]
    key = {(r["module"], r["stage"]): r for r in gg["rows"]}
    between, n_gg, gname, pos = 0, 0, None, {}
    for r in rows:
        z = key.get((r["module"], r["stage"]))
        if z is None:
            continue
        for g, v in z["streams"].items():
            gname = g
            n_gg += 1
            real, rnd = pj[id(r)]
            between += min(real, rnd) <= v["pj_per_mac"] <= max(real, rnd)
            if r["stage"] == "mac" and r.get("acc_label") == "16:32" and r["lanes"] == 1 and r["a_fmt"] == r["w_fmt"]:
                pos[r["a_fmt"]] = (v["pj_per_mac"] - real) / (rnd - real) if rnd != real else float("nan")
    if n_gg:
        spread = max(pos.values()) - min(pos.values()) if pos else 0.0
        out.append(f"* **Synthetic {gname} data** (`hdl/results/ppa_gg.json`) lies between the real and the random "
                   f"stream for {between} of {n_gg} units. Where it lies (0 = real, 1 = random; 16:32 MACs, lanes 1): "
                   + ", ".join(f"{a.upper()} {t:.2f}" for a, t in pos.items())
                   + (f"; it moves by {spread:.2f} between formats, so a GG stream is no substitute for real "
                      "activations when comparing formats by energy." if spread > 0.25 else
                      f"; it moves by only {spread:.2f} between formats."))
    i8 = _find(rec, "int8", "int8", "16:32", 1)
    fp8 = [(fa, _find(rec, fa, fa, "16:32", 1)) for fa in ("e4m3", "e5m2", "rf8")]
    fp8 = [(fa, r) for fa, r in fp8 if r and i8]
    if fp8:
        pct = {fa: [100 * (r["streams"][st]["pj_per_mac"] / i8["streams"][st]["pj_per_mac"] - 1)
                    for st in ("minilm", "random")] for fa, r in fp8}
        inside = [fa for fa, (m, _) in pct.items() if 50 <= m <= 180]
        out.append("* **FP8 vs INT8 (arXiv 2303.17951: +50 … +180 %)**, 16:32 MACs, lanes 1, on MiniLM data / random "
                   "codes: " + "; ".join(f"{fa.upper()} {_sp(m)} / {_sp(q)}" for fa, (m, q) in pct.items())
                   + f". Inside the published range on MiniLM data: {', '.join(x.upper() for x in inside) or 'none'}. "
                   "These units accumulate every format in one fixed-point register, the published FP8 MACs in "
                   "floating point.")
    rp, ip = _find(rec, "rf8", "rf8", None, 1, "product"), _find(rec, "int8", "int8", None, 1, "product")
    rm = _find(rec, "rf8", "rf8", "16:32", 1)
    if rp and ip and rm and i8:
        a, b = rp["streams"]["minilm"]["pj_per_mac"], ip["streams"]["minilm"]["pj_per_mac"]
        c, d = rm["streams"]["minilm"]["pj_per_mac"], i8["streams"]["minilm"]["pj_per_mac"]
        out.append(f"* **RF8 product stage vs whole MAC in energy (MiniLM)**: the RF8 product stage takes {a:.1f} vs "
                   f"{b:.1f} pJ for the INT8 multiplier ({_sp(100 * (a / b - 1))}), the whole RF8 16:32 MAC {c:.1f} vs "
                   f"{d:.1f} pJ ({_sp(100 * (c / d - 1))}): "
                   + ("the alignment shifter and the wider accumulator switch more than the product saves."
                      if (a < b) != (c < d) else "the product stage's difference carries over to the MAC."))
    macs = [r for r in rec["rows"] if r["stage"] == "mac"]
    late = [r for r in macs if r["slack_ns"] < 0]
    fast = min(macs, key=lambda r: r["critical_path_ns"])
    slow = max(macs, key=lambda r: r["critical_path_ns"])
    out.append(f"* **Timing**: of the {len(macs)} MACs the fastest is {_unit(fast)} ({fast['critical_path_ns']:.2f} ns), "
               f"the slowest {_unit(slow)} ({slow['critical_path_ns']:.2f} ns). "
               + (f"{len(late)} miss the stated {rec['clock_ns']:g} ns clock (negative slack: "
                  + ", ".join(_unit(r) for r in late) + "); their power columns are still given at that clock, "
                  "TOPS/W at their own fmax." if late else f"Every MAC meets the stated {rec['clock_ns']:g} ns clock."))
    k = SCALE_180
    if i8 and ip:
        m_mac = i8["streams"]["minilm"]["pj_per_mac"] / ((HOROWITZ_45NM["int8 mult"] + HOROWITZ_45NM["int32 add"]) * k)
        m_mul = ip["streams"]["minilm"]["pj_per_mac"] / (HOROWITZ_45NM["int8 mult"] * k)
        out.append(f"* **Against Horowitz scaled ×{k:.0f}**: the INT8 multiplier measures {m_mul:.1f}× and the INT8 "
                   f"16:32 MAC {m_mac:.1f}× their scaled anchors (MiniLM data). Not tuned away: osu018 is an academic "
                   "library of minimum-size cells at 1.8 V, the units are mapped by ABC without sizing or power "
                   "optimisation, clock-pin and register energy are included, and glitches are counted (specify "
                   "delays): the table below compares with a zero-delay simulation of the same streams "
                   "(`--zero-delay`).")
    return "\n".join(out) + "\n"


W8A16_RECORD = RECORD.parent / "ppa_w8a16.json"


def render_ppa_w8a16_table(path=None) -> str:
    """Markdown of ``hdl/results/ppa_w8a16.json``: one row per unit, then RF8 against the bf16 baseline."""
    rec = _load(path or W8A16_RECORD)
    prov = rec["provenance"]
    m = prov.get("machine", {})
    by_lanes = {}
    for r in rec["rows"]:
        by_lanes.setdefault(r["lanes"], r["beats"])
    beats_txt = ", ".join(f"{b} at lanes {ln}" for ln, b in sorted(by_lanes.items()))
    lines = [f"{_tech_note(rec)} Command: `{prov.get('command')}`; beats per stream: {beats_txt}; "
             f"weight tiles of {rec['tile']} beats, clock {rec['clock_ns']} ns for the power columns, gate-level "
             f"delays {'on (specify)' if rec['specify'] else 'off'}. Tools: {rec['tools']['sta']}, "
             f"{rec['tools']['iverilog']}. Machine: {m.get('cpu', m.get('processor', '?'))}, "
             f"{m.get('cores', m.get('cpu_count', '?'))} cores. Commit {str(prov.get('commit'))[:10]}"
             f"{' (dirty)' if prov.get('dirty') else ''}.", "",
             "| w × a | accumulator | lanes | beats | area µm² | crit. path ns | fmax MHz | pJ/MAC minilm | "
             "pJ/MAC random | cell toggles/cycle minilm / random | beats with a non-finite accumulator minilm / random | "
             "TOPS/W minilm @ fmax | TOPS/W random @ fmax | "
             "TOPS/mm² @ fmax |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rec["rows"]:
        mi, ra = r["streams"]["minilm"], r["streams"]["random"]
        lines.append(f"| {r['w_fmt']} × {r['a_fmt']} | {r['acc']} | {r['lanes']} | {r['beats']} | "
                     f"{r['area_um2']:,.0f} | {r['critical_path_ns']:.2f} | {r['fmax_mhz']:.0f} | "
                     f"{mi['pj_per_mac']:.1f} | {ra['pj_per_mac']:.1f} | "
                     f"{mi['cell_output_toggles_per_cycle']:,.0f} / {ra['cell_output_toggles_per_cycle']:,.0f} | "
                     f"{mi['nonfinite_acc_fraction']:.0%} / {ra['nonfinite_acc_fraction']:.0%} | "
                     f"{mi['tops_per_w_at_fmax']:.5f} | {ra['tops_per_w_at_fmax']:.5f} | "
                     f"{ra['tops_per_mm2_at_fmax']:.5f} |")
    base = next((r for r in rec["rows"] if r["w_fmt"] == "bf16" and r["acc"] == "fp32" and r["lanes"] == 1), None)
    if base:
        lines += ["", "| w × a (fp32, lanes 1) | pJ/MAC minilm vs bf16 × bf16 | pJ/MAC random vs bf16 × bf16 | "
                  "area vs bf16 × bf16 |", "|---|---|---|---|"]
        for r in rec["rows"]:
            if r is base or r["acc"] != "fp32" or r["lanes"] != 1:
                continue
            rel = [r["streams"][k]["pj_per_mac"] / base["streams"][k]["pj_per_mac"] - 1 for k in ("minilm", "random")]
            lines.append(f"| {r['w_fmt']} × {r['a_fmt']} | {rel[0]:+.0%} | {rel[1]:+.0%} | "
                         f"{r['area_um2'] / base['area_um2'] - 1:+.0%} |")
    return "\n".join(lines) + "\n"


def _set(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def render_ppa_w8a16_findings(path=None) -> str:
    """Markdown bullets under docs/hdl.md's W8A16 energy table, every comparison computed from
    ``hdl/results/ppa_w8a16.json`` and naming the units it covers."""
    rec = _load(path or W8A16_RECORD)
    fp = {r["w_fmt"]: r for r in rec["rows"] if r["acc"] == "fp32" and r["lanes"] == 1 and r["a_fmt"] == "bf16"}

    def e(r, st="minilm"):
        return r["streams"][st]["pj_per_mac"]

    out = []
    if "rf8" in fp and "bf16" in fp:
        r, b = fp["rf8"], fp["bf16"]
        tw = r["streams"]["minilm"]["tops_per_w_at_fmax"] / b["streams"]["minilm"]["tops_per_w_at_fmax"]
        order = sorted(fp, key=lambda w: e(fp[w]))
        out.append(f"* **RF8 × BF16 vs BF16 × BF16 (fp32 accumulator, lanes 1)**, real MiniLM stream: energy per MAC "
                   f"{_sp(100 * (e(r) / e(b) - 1))} ({e(r):.1f} vs {e(b):.1f} pJ), area "
                   f"{_sp(100 * (r['area_um2'] / b['area_um2'] - 1))}, critical path {r['critical_path_ns']:.1f} vs "
                   f"{b['critical_path_ns']:.1f} ns, TOPS/W at fmax {tw:.2f}×. Energy order of the {len(fp)} weight formats "
                   f"(× bf16, fp32, lanes 1): " + " < ".join(f"{w.upper()} {e(fp[w]):.1f}" for w in order) + " pJ. "
                   "The float32 adder (alignment, normalisation, rounding; the critical path, which glitches) "
                   "switches far more than any product stage, so the weight format moves the MAC's energy only by "
                   "its product stage's share.")
    rows = rec["rows"]
    rev = [x for x in rows if e(x, "random") < e(x)]
    nf = [x["streams"]["random"].get("nonfinite_acc_fraction") for x in rows]
    nf = [v for v in nf if v is not None]
    out.append(f"* **Random codes vs real data**: random 16-bit codes cost less than real data for {len(rev)} of the "
               f"{len(rows)} units" + (", the reverse of the 8-bit table" if 2 * len(rev) > len(rows) else "")
               + (f": uniform codes drive the float32 accumulator to Inf/NaN for {100 * min(nf):.0f}–{100 * max(nf):.0f} % "
                  "of the beats (column above, golden model on the same streams) and finite sums are dominated by one "
                  "huge term, so the adder switches little. Real activations are the meaningful column." if nf else "."))
    al = [x for x in rows if str(x["acc"]).startswith("aligned")]
    if al and fp:
        worst = max(fp.values(), key=e)
        for x in al:
            out.append(f"* **The {x['acc']} {x['w_fmt'].upper()} unit at lanes {x['lanes']}** (one column with its own "
                       f"`AlignUnit`) takes {e(x):.1f} pJ per MAC on MiniLM against {e(worst):.1f} pJ for the costliest "
                       f"fp32 lanes-1 unit ({worst['w_fmt']} × bf16); its critical path is {x['critical_path_ns']:.1f} ns. "
                       "Its double-buffered block buffer is clocked every cycle; the alignment unit is only amortised "
                       "when many columns share it, which the PE arrays below measure.")
    return "\n".join(out) + "\n"


def render_w8a16_findings(path=None, ppa_path=None) -> str:
    """README's "what RF8 buys" sentences, each computed from the W8A16 synthesis record and the gate-level
    PPA record and naming the set of units it covers (issue 22: no hand-written generalization).  It lives
    here, not in synth.py, because it reads both records: synth.py importing power.py closes an import circle."""
    from .power import ppa_rows
    from .synth import W8A16_ACC, W8A16_W, _fn, _load_w8a16, aligned_points

    rec = _load_w8a16(path)
    ppa_p = Path(ppa_path) if ppa_path else Path(__file__).resolve().parents[2] / "hdl" / "results" / "ppa_w8a16.json"
    if not ppa_p.exists():
        raise HdlError(f"{ppa_p} missing: run `rf8sim synth --table w8a16 --timing --power --record "
                       "hdl/results/ppa_w8a16.json`")
    rows = rec["rows"]
    a = "bf16"
    prod = {r["w_fmt"]: r["area_um2"] for r in rows if r["stage"] == "product" and r["a_fmt"] == a and r["area_um2"]}
    mac = {r["w_fmt"]: r["area_um2"] for r in rows if r["stage"] == "mac" and r["a_fmt"] == a and r["acc"] == "fp32"
           and r["lanes"] == 1 and r["area_um2"]}
    energy = {r["w_fmt"]: r["pj_per_mac_minilm"] for r in ppa_rows(ppa_p) if r["stage"] == "mac" and r["a_fmt"] == a
              and str(r["acc"]).lower() == "fp32" and r["lanes"] == 1 and r.get("pj_per_mac_minilm")}
    ws = [w for w in W8A16_W if w in prod]
    if "rf8" not in prod or "rf8" not in mac or "bf16" not in mac:
        raise HdlError("the W8A16 record lacks the rf8 / bf16 units the README's findings compare")

    def rank(d, unit, fmt):
        order = sorted((w for w in W8A16_W if w in d), key=d.get)
        pos = order.index("rf8") + 1
        return (f"RF8's is {'the smallest' if pos == 1 else f'number {pos} from the smallest'} of the "
                f"{len(order)} weight formats {_set(order)} ({', '.join(f'{w} {fmt(d[w])}' for w in order)} {unit})")

    fn = _fn
    out = [f"- W8A16 product stage (weights × {a} activations, 1 lane, osu018): " + rank(prod, "µm²", fn) + "."]
    out.append(f"- Whole W8A16 MAC (× {a}, float32 accumulator, 1 lane): " + rank(mac, "µm²", fn)
               + f"; RF8 vs bf16×bf16 {100 * (mac['rf8'] / mac['bf16'] - 1):+.1f} %.")
    if "rf8" in energy:
        out.append("- Energy per MAC on the MiniLM operand stream (gate-level, same units): "
                   + rank(energy, "pJ", lambda v: f"{v:.1f}")
                   + "; RF8 vs " + ", ".join(f"{w}×{a} {100 * (energy['rf8'] / energy[w] - 1):+.1f} %"
                                            for w in W8A16_W if w in energy and w != "rf8") + ".")
    share = {w: prod[w] / mac[w] for w in ws if w in mac}
    out.append(f"- The product stage is {100 * min(share.values()):.0f} to {100 * max(share.values()):.0f} % of the "
               f"float32-accumulator MAC's area over {_set(list(share))} weights (the rest: alignment, float32 "
               "addition, registers).")
    ratios = [(p["base"] / p["column"], p["act"], p["lanes"]) for p in aligned_points(rows)]
    if ratios:
        best = max(ratios)
        out.append(f"- Pre-aligned RF8 unit ({W8A16_ACC[1]}, iFPU/FIGNA style) against the bf16×{best[1]} "
                   f"float32 MAC, area efficiency with the AlignUnit fully amortised: at most {best[0]:.2f}× over the "
                   f"{len(ratios)} synthesized (activation, lanes) points ({best[1]}, {best[2]} lanes); the 2× goal is "
                   + ("reached" if best[0] >= 2 else "not reached") + " (docs/hdl.md, W8A16 goals).")
    return "\n".join(out) + "\n"
