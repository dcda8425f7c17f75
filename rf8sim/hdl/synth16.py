"""Synthesis of the W8A16 units (same yosys/osu018 flow as :mod:`rf8sim.hdl.synth`) and their area table.

Stages: ``mac`` (the whole generated unit), ``product`` (one fp32-path product stage,
combinational), ``align`` (the :class:`~rf8sim.hdl.w8a16.AlignUnit`: block buffer, max
exponent, quantisers) and ``column`` (the :class:`~rf8sim.hdl.w8a16.AlignedColumn`:
shift-add lanes, exact block register, fp32 block adder).  ``rf8sim synth16 --table``
runs the grid and writes the checked-in record ``hdl/results/synth_w8a16.json``;
docs/hdl.md's table is rendered from that record by :func:`render_table`.
"""

from __future__ import annotations

import json
from pathlib import Path

from .mac import HdlError
from .w8a16 import A16Config, AlignedColumn, AlignUnit, ProductStage16

__all__ = ["L16_POINTS", "STAGES16", "design16", "grid", "run_grid", "record_path", "render_table", "render_summary",
           "TABLE_W", "TABLE_A", "TABLE_ACC", "TABLE_LANES"]

STAGES16 = ("mac", "product", "align", "column")
TABLE_W = ("rf8", "e4m3", "int8", "bf16")
TABLE_A = ("bf16", "fp16")
TABLE_ACC = ("fp32", "aligned:32:16")
TABLE_LANES = (1, 4, 16)


def design16(a_fmt, w_fmt, acc, lanes: int, stage: str) -> tuple[dict, str, str]:
    """(description, module name, Verilog text) of one W8A16 design for synthesis."""
    from amaranth.back import verilog

    if stage not in STAGES16:
        raise HdlError(f"stage must be one of {', '.join(STAGES16)}, got {stage!r}")
    cfg = A16Config.make(a_fmt, w_fmt, "fp32" if stage == "product" else acc, 1 if stage == "product" else lanes)
    desc = cfg.describe()
    if stage == "mac":
        from .verilog16 import generate_verilog16

        name = _module_name(a_fmt, w_fmt, acc, lanes, stage)
        text, _ = generate_verilog16(cfg.a.name, cfg.w.name, cfg.acc_text, cfg.lanes, name=name)
        return desc, name, text
    if stage == "product":
        name = f"product16_{cfg.a.name}x{cfg.w.name}"
        return desc, name, verilog.convert(ProductStage16(cfg.a.name, cfg.w.name), name=name, emit_src=False)
    if cfg.kind != "aligned":
        raise HdlError(f"stage {stage!r} exists for the aligned:K:M accumulator only")
    if stage == "align":  # depends on the weight code width only: one netlist for all 8-bit weights
        comp = AlignUnit(cfg)
        name = f"align_{cfg.a.name}_w{cfg.w.bits}_k{cfg.acc[1]}m{cfg.acc[2]}_l{cfg.lanes}"
    else:
        comp = AlignedColumn(cfg)
        name = f"column_{cfg.module_name()}"
    return desc, name, verilog.convert(comp, name=name, emit_src=False)


#: the lanes-16 points synthesised when the full lanes-16 grid does not fit the time (docs/hdl.md says so)
L16_POINTS = (("bf16", "rf8", "aligned:32:16", 16, "align"), ("bf16", "rf8", "aligned:32:16", 16, "mac"),
              ("bf16", "bf16", "fp32", 16, "mac"), ("bf16", "rf8", "fp32", 16, "mac"),
              ("bf16", "e4m3", "aligned:32:16", 16, "mac"), ("bf16", "int8", "aligned:32:16", 16, "mac"))


def grid(lanes=TABLE_LANES, l16_points: bool = False) -> list[tuple]:
    """(a, w, acc, lanes, stage) of the table, cheapest first (lanes 16 last); ``l16_points`` adds
    :data:`L16_POINTS`."""
    jobs = []
    for a in TABLE_A:
        for w in TABLE_W:
            jobs.append((a, w, "fp32", 1, "product"))
    for ln in lanes:
        for a in TABLE_A:
            for w in TABLE_W:
                for acc in TABLE_ACC:
                    jobs.append((a, w, acc, ln, "mac"))
                    if acc.startswith("aligned"):
                        jobs.append((a, w, acc, ln, "align"))
    if l16_points:
        jobs += [j for j in L16_POINTS if j not in jobs]
    return jobs


def record_path() -> Path:
    return Path(__file__).resolve().parents[2] / "hdl" / "results" / "synth_w8a16.json"


def _row(r: dict, a, w, acc, lanes, stage) -> dict:
    g, lib = r["generic"], r.get("liberty") or {}
    return {"a_fmt": a, "w_fmt": w, "acc": acc if stage != "product" else "-", "lanes": lanes if stage != "product" else 1,
            "stage": stage, "module": r["module"], "gates": g["gates"], "flops": g["flops"],
            "nand2_eq": g["nand2_eq"], "nand2_eq_seq": g["nand2_eq_seq"], "depth": g["depth"],
            "area_um2": lib.get("area_um2"), "area_seq_um2": lib.get("area_seq_um2"),
            "area_comb_um2": lib.get("area_comb_um2"), "synth_s": r.get("synth_s"), "config": r["config"]}


def run_grid(jobs=None, liberty="default", use_cache: bool = True, progress: bool = True,
             cached_only: bool = False, missing: list | None = None) -> list[dict]:
    """Synthesise ``jobs`` (default :func:`grid`); ``cached_only`` collects the synthesised ones and
    appends the others to ``missing``."""
    from .synth import synthesize

    jobs = grid() if jobs is None else jobs
    it = jobs
    if progress:
        from tqdm import tqdm

        it = tqdm(jobs, desc="synth w8a16", unit="cfg")
    rows = []
    for a, w, acc, lanes, stage in it:
        r = None
        if not cached_only or _has_cache_dir(a, w, acc, lanes, stage):  # skip elaborating what never ran
            r = synthesize(a, w, acc, lanes, "fixed", stage, liberty, use_cache, cache_only=cached_only)
        if r is None:
            if missing is not None:
                missing.append({"a_fmt": a, "w_fmt": w, "acc": acc, "lanes": lanes, "stage": stage})
            continue
        rows.append(_row(r, a, w, acc, lanes, stage))
    return rows


def _module_name(a, w, acc, lanes, stage) -> str:
    cfg = A16Config.make(a, w, "fp32" if stage == "product" else acc, 1 if stage == "product" else lanes)
    if stage == "product":
        return f"product16_{cfg.a.name}x{cfg.w.name}"
    if stage == "align":
        return f"align_{cfg.a.name}_w{cfg.w.bits}_k{cfg.acc[1]}m{cfg.acc[2]}_l{cfg.lanes}"
    return cfg.module_name() if stage == "mac" else f"column_{cfg.module_name()}"


def _has_cache_dir(a, w, acc, lanes, stage) -> bool:
    """Whether any synthesis of this module/stage exists under build/synth (the result decides by hash)."""
    root = Path(__file__).resolve().parents[2] / "build" / "synth"
    name = _module_name(a, w, acc, lanes, stage)
    return any(d.name.startswith(f"{name}-{stage}-") and (d / "result.json").exists() for d in root.glob(f"{name}-*"))


# ---------------------------------------------------------------------------
# docs tables, rendered from the record


def _load(path=None) -> dict:
    from ..records import read_record

    p = Path(path) if path else record_path()
    if not p.exists():
        raise HdlError(f"{p} missing: run `rf8sim synth16 --table --record {p}`")
    return read_record(p)


def _f(x, nd=0):
    return "–" if x is None else f"{x:,.{nd}f}"


def _register():
    try:
        from ..docgen import register
    except ImportError:  # docgen not present: the tests compare the docs with the renderers directly
        return
    register("hdl:w8a16-area")(lambda: render_table())
    register("hdl:w8a16-goals")(lambda: render_summary())


def render_table(path=None) -> str:
    """Markdown: one row per configuration (product stages first), from the record."""
    rec = _load(path)
    rows = rec["rows"]
    key = {(r["a_fmt"], r["w_fmt"], r["acc"], r["lanes"], r["stage"]): r for r in rows}
    out = ["| w × a | accumulator | lanes | stage | gates | flops | NAND2-eq | depth | area µm² | seq µm² | "
           "lane-MACs per mm² |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["stage"] != "product", r["lanes"], r["a_fmt"], r["acc"],
                                          _W_ORDER.get(r["w_fmt"], 9), r["stage"])):
        eff = None
        if r["stage"] == "mac" and r["area_um2"]:
            eff = r["lanes"] / r["area_um2"] * 1e6
        out.append(f"| {r['w_fmt']} × {r['a_fmt']} | {r['acc']} | {r['lanes']} | {r['stage']} | {r['gates']:,} | "
                   f"{r['flops']:,} | {_f(r['nand2_eq'])} | {r['depth']} | {_f(r['area_um2'])} | "
                   f"{_f(r['area_seq_um2'])} | {_f(eff)} |")
    del key
    miss = rec.get("not_synthesised") or []
    if miss:
        out += ["", f"Not synthesised (time on the shared machine ran out; `python -m rf8sim.hdl.synth16` without "
                f"`--cached-only` completes them): {len(miss)} configurations — "
                + "; ".join(f"{m['w_fmt']}×{m['a_fmt']} {m['acc']} lanes {m['lanes']} {m['stage']}" for m in miss)
                + "."]
    return "\n".join(out) + "\n"


_W_ORDER = {"rf8": 0, "e4m3": 1, "int8": 2, "bf16": 3}


def render_summary(path=None) -> str:
    """Markdown: the goal checks (ordering at equal accumulator and lanes; aligned RF8 vs BF16 fp32)."""
    rec = _load(path)
    rows = rec["rows"]
    mac = {(r["a_fmt"], r["w_fmt"], r["acc"], r["lanes"]): r for r in rows if r["stage"] == "mac"}
    align = {(r["a_fmt"], r["w_fmt"], r["acc"], r["lanes"]): r for r in rows if r["stage"] == "align"}
    out = ["| a | accumulator | lanes | rf8 µm² | e4m3 µm² | int8 µm² | bf16 µm² | rf8 < e4m3 < int8 < bf16 |",
           "|---|---|---|---|---|---|---|---|"]
    for (a, acc, ln) in sorted({(k[0], k[2], k[3]) for k in mac}, key=lambda t: (t[2], t[0], t[1])):
        areas = [mac.get((a, w, acc, ln), {}).get("area_um2") for w in TABLE_W]
        known = [x for x in areas if x is not None]
        if any(known[i] >= known[i + 1] for i in range(len(known) - 1)):
            verdict = "no"
        elif len(known) < len(areas):
            verdict = "incomplete"
        else:
            verdict = "yes"
        out.append(f"| {a} | {acc} | {ln} | " + " | ".join(_f(x) for x in areas) + f" | {verdict} |")
    out += ["", "| a | lanes | aligned rf8 MAC µm² | of which AlignUnit µm² (per lane) | column only µm² | "
            "bf16×bf16 fp32 µm² | efficiency ratio: one column | 16 columns share one AlignUnit | "
            "AlignUnit fully amortised |",
            "|---|---|---|---|---|---|---|---|---|"]
    for a in TABLE_A:
        for ln in TABLE_LANES:
            al = mac.get((a, "rf8", TABLE_ACC[1], ln))
            base = mac.get((a, "bf16", "fp32", ln))
            au = align.get((a, "rf8", TABLE_ACC[1], ln))
            if not (al and base and au and al["area_um2"] and base["area_um2"] and au["area_um2"]):
                continue
            col = al["area_um2"] - au["area_um2"]
            out.append(f"| {a} | {ln} | {_f(al['area_um2'])} | {_f(au['area_um2'])} ({_f(au['area_um2'] / ln)}) | "
                       f"{_f(col)} | {_f(base['area_um2'])} | {base['area_um2'] / al['area_um2']:.2f}× | "
                       f"{base['area_um2'] / (col + au['area_um2'] / 16):.2f}× | {base['area_um2'] / col:.2f}× |")
    return "\n".join(out) + "\n"


def table_record(rows: list[dict]) -> dict:
    from .synth import yosys_version

    return {"kind": "synth_w8a16", "yosys": yosys_version(), "library": "osu018_stdcells.lib",
            "notes": "lane-MACs per mm^2 = lanes / area; 'column only' = MAC minus its AlignUnit",
            "rows": rows}


def main(argv=None) -> int:  # python -m rf8sim.hdl.synth16 [--lanes 1,4] [--record PATH]
    import argparse

    from ..records import write_record

    p = argparse.ArgumentParser(prog="python -m rf8sim.hdl.synth16")
    p.add_argument("--lanes", default="1,4,16")
    p.add_argument("--l16-points", action="store_true", help="add the lanes-16 points of L16_POINTS")
    p.add_argument("--record", help="write the rows as a record (rf8sim.records)")
    p.add_argument("--cached-only", action="store_true",
                   help="record only what is already synthesised (cache); list the rest as not synthesised")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    lanes = tuple(int(x) for x in args.lanes.split(","))
    missing: list = []
    rows = run_grid(grid(lanes, args.l16_points), cached_only=args.cached_only, missing=missing)
    if args.record:
        write_record(args.record, {**table_record(rows), "not_synthesised": missing}, overwrite=args.force)
    print(json.dumps([{k: r[k] for k in ("a_fmt", "w_fmt", "acc", "lanes", "stage", "area_um2", "nand2_eq")}
                      for r in rows], indent=0))
    return 0


if __name__ != "__main__":
    _register()

if __name__ == "__main__":
    raise SystemExit(main())
