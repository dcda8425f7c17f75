"""Timing and energy of the W8A16 units (issue 12 flow on issue 10's units): ``ppa(synth=row)``.

The W8A16 synthesis grid (:mod:`rf8sim.hdl.synth16`, record ``hdl/results/synth_w8a16.json``)
ran before the synthesis script wrote the mapped netlist.  :func:`mapped_from_cached` reruns
only the standard-cell step (``hdl/synth/liberty.ys``) on a cached ``design.v`` and checks
that the mapped area equals the cached one, so timing and energy belong to the recorded
netlist.  ``python -m rf8sim.hdl.ppa16 --record hdl/results/ppa_w8a16.json`` writes the
record that docs/hdl.md's W8A16 PPA table is rendered from (:func:`render_table`).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from .mac import HdlError

__all__ = ["JOBS", "mapped_from_cached", "run", "render_table", "record_path"]

#: (a, w, acc, lanes) of the W8A16 PPA table: lanes-1 fp32 units, then the aligned RF8 unit at lanes 4
JOBS = (("bf16", "rf8", "fp32", 1), ("bf16", "e4m3", "fp32", 1), ("bf16", "int8", "fp32", 1),
        ("bf16", "bf16", "fp32", 1), ("bf16", "rf8", "aligned:32:16", 4))


def record_path() -> Path:
    return Path(__file__).resolve().parents[2] / "hdl" / "results" / "ppa_w8a16.json"


def mapped_from_cached(cached_dir, work_root=None) -> dict:
    """A synthesis result (as :func:`rf8sim.hdl.synth.synthesize` returns it) whose ``workdir`` holds
    ``mapped.v``: the standard-cell step rerun on ``cached_dir/design.v``; the area must match."""
    from .synth import _cells_of, _liberty_cells, _run_yosys, _script

    src = Path(cached_dir)
    res = json.loads((src / "result.json").read_text())
    if (src / "mapped.v").exists():
        return {**res, "workdir": str(src)}
    if work_root is None:
        from .. import cache

        work_root = cache.subdir("synth")
    work = Path(work_root) / f"{src.name}-mapped"
    if not (work / "mapped.v").exists():
        work.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / "design.v", work / "design.v")
        shutil.copyfile(src / "cells.lib", work / "cells.lib")
        _run_yosys(work, _script("liberty.ys", top=res["module"]), "liberty")
    stat = json.loads((work / "liberty_stat.json").read_text())
    cells = _cells_of(stat, res["module"])
    table = _liberty_cells(work / "cells.lib")
    area = sum(n * table[c][0] for c, n in cells.items())
    if abs(area - res["liberty"]["area_um2"]) > 1e-6 * max(1.0, area):
        raise HdlError(f"remapped {src.name}: area {area} != cached {res['liberty']['area_um2']}")
    return {**res, "workdir": str(work)}


def _cached_dir(a, w, acc, lanes, stage="mac", roots=None) -> Path:
    """The synthesis directory of one W8A16 unit whose area equals the recorded one."""
    from .synth16 import _load, _module_name

    name = _module_name(a, w, acc, lanes, stage)
    rec = [r for r in _load()["rows"] if r["module"] == name and r["stage"] == stage]
    if not rec:
        raise HdlError(f"{name} ({stage}) is not in hdl/results/synth_w8a16.json")
    from .. import cache

    roots = roots or [cache.subdir("synth")]
    for root in roots:
        for d in sorted(Path(root).glob(f"{name}-{stage}-*")):
            if d.name.endswith("-mapped") or not (d / "result.json").exists():
                continue
            if json.loads((d / "result.json").read_text())["liberty"]["area_um2"] == rec[0]["area_um2"]:
                return d
    raise HdlError(f"no cached synthesis of {name} with the recorded area under {roots}: run "
                   f"`python -m rf8sim.hdl.synth16` first")


def run(jobs=JOBS, beats=1000, streams=("minilm", "random"), roots=None, progress=True, beats_by_lanes=None):
    """PPA rows (``rf8sim.hdl.power.ppa``) of the W8A16 units, from the cached/recorded synthesis."""
    from .power import ppa

    out = []
    for a, w, acc, lanes in jobs:
        r = mapped_from_cached(_cached_dir(a, w, acc, lanes, roots=roots))
        b = (beats_by_lanes or {}).get(lanes, beats)
        res = ppa(synth=r, streams=streams, beats=b, progress=progress)
        res["acc_label"] = acc
        out.append(res)
    return out


def _load(path=None) -> dict:
    from ..docgen import DocgenError

    p = Path(path) if path else record_path()
    if not p.exists():
        raise DocgenError(f"W8A16 PPA record {p} missing: `python -m rf8sim.hdl.ppa16 --record {p}`")
    return json.loads(p.read_text())


def render_table(path=None) -> str:
    """Markdown of ``hdl/results/ppa_w8a16.json``: one row per unit, then RF8 against the bf16 baseline."""
    rec = _load(path)
    prov = rec["provenance"]
    m = prov.get("machine", {})
    by_lanes = {}
    for r in rec["rows"]:
        by_lanes.setdefault(r["lanes"], r["beats"])
    beats_txt = ", ".join(f"{b} at lanes {ln}" for ln, b in sorted(by_lanes.items()))
    lines = [f"Command: `{prov.get('command')}`; beats per stream: {beats_txt}; "
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


def _register():
    try:
        from ..docgen import register
    except ImportError:
        return
    register("hdl:ppa-w8a16")(lambda: render_table())


_register()


def nonfinite_fraction(res: dict, stream: str) -> float:
    """Fraction of the stream's beats after which the golden model's float32 accumulator is Inf or NaN."""
    import numpy as np

    from ..golden import mac
    from .power import PRE_BEATS
    from .streams import make_stream

    c = res["config"]
    st = make_stream(stream, c["a_fmt"], c["w_fmt"], c["lanes"], res["beats"] + PRE_BEATS, res["tile"], res["seed"])
    t = mac(st.a, st.w, st.clear.astype(bool), c["a_fmt"], c["w_fmt"], res["acc_label"])
    acc = np.asarray(t.acc).astype(np.uint32).ravel()[PRE_BEATS:]
    return float((((acc >> 23) & 0xFF) == 0xFF).mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rf8sim.hdl.ppa16", description=__doc__.splitlines()[0])
    ap.add_argument("--beats", type=int, default=1000, help="beats per stream for lanes-1 units")
    ap.add_argument("--beats-l4", type=int, default=500, help="beats per stream for lanes-4 units")
    ap.add_argument("--only", default=None, help="comma-separated job indices into JOBS")
    ap.add_argument("--synth-root", action="append", default=None, help="extra cache roots holding synth dirs")
    ap.add_argument("--record", default=None)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    jobs = JOBS if args.only is None else [JOBS[int(i)] for i in args.only.split(",")]
    rows = run(jobs, args.beats, roots=args.synth_root, beats_by_lanes={4: args.beats_l4})
    from .power import table_record

    payload = table_record(rows, command=None)
    for r, slim in zip(rows, payload["rows"]):
        slim["beats"] = r["beats"]
    payload["kind"] = "hdl-ppa-w8a16"
    for r, slim in zip(rows, payload["rows"]):  # how often the golden accumulator is Inf/NaN on each stream
        for k in slim["streams"]:
            slim["streams"][k]["nonfinite_acc_fraction"] = nonfinite_fraction(r, k)
    for s in payload["rows"]:
        print(f"{s['w_fmt']:>5} x {s['a_fmt']} {s['acc']:>14} l{s['lanes']}: {s['area_um2']:.0f} um2, "
              f"{s['critical_path_ns']:.2f} ns, fmax {s['fmax_mhz']:.0f} MHz, "
              + ", ".join(f"{k} {v['pj_per_mac']:.1f} pJ/MAC" for k, v in s["streams"].items()))
    if args.record:
        from ..records import write_record

        import sys

        write_record(args.record, payload, overwrite=args.force,
                     command="python -m rf8sim.hdl.ppa16 " + " ".join(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
