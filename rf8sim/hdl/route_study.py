"""Routed headline units and the flow noise: RF8 vs E4M3 vs INT8, 8-bit MACs and W8A16 units, per technology.

``python -m rf8sim.hdl.route_study --name osu018|osu018-w8a16|sky130|sky130-w8a16 [--workers 2] [--beats 500]``

For every unit of :data:`UNITS` (the 8-bit 16:32 lanes-1 MACs and product stages, and the
W8A16 fp32-accumulator lanes-1 MACs) and every synthesis variant of :data:`ABC_VARIANTS`
(the same netlist mapped by three ABC scripts: yosys' default, delay-driven with a 2 ns
target ``-D 2000``, and qflow's own script) it places and routes with the (variant, seed) runs of :data:`PLANS`, and records
cell area, die area, utilization, wirelength, the
critical path before routing (synthesised netlist) and after (routed netlist with its SPEF),
the post-route energy per MAC (gate-level activity on the routed netlist, OpenSTA
energies with the wires; sky130 with :mod:`rf8sim.tech.models`' cell models), and the wall time of
each step. The rows fan out through
:func:`rf8sim.infra.cluster.run_tasks` (local processes or Ray).

The docs blocks (``hdl:route-*``) render the routed table, the spread over variants and
seeds, the sentences that say which differences between formats are real (the ranges do not
overlap) and which are inside the noise, and the anchors paragraph.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

from ..infra.docgen import DocgenError, load_record
from ..tech import TECHS
from .mac import HdlError

__all__ = ["UNITS", "ABC_VARIANTS", "synth_variant", "study_rows", "main", "load_route_record"]

UNITS = (
    ("rf8", "rf8", "16:32", 1, "mac"), ("e4m3", "e4m3", "16:32", 1, "mac"), ("int8", "int8", "16:32", 1, "mac"),
    ("rf8", "rf8", "16:32", 1, "product"), ("e4m3", "e4m3", "16:32", 1, "product"),
    ("int8", "int8", "16:32", 1, "product"),
    ("bf16", "rf8", "fp32", 1, "mac"), ("bf16", "e4m3", "fp32", 1, "mac"), ("bf16", "int8", "fp32", 1, "mac"),
)
#: the ABC mapping command of hdl/synth/liberty.ys, three ways (the first is rf8sim's default)
ABC_VARIANTS = {
    "abc": "abc -liberty cells.lib",
    "abc-D2000": "abc -D 2000 -liberty cells.lib",
    "abc-qflow": "abc -liberty cells.lib -script +strash;scorr;ifraig;retime,{D};strash;dch,-f;map,-M,1,{D}",
}
DEFAULT_SEEDS = (1, 2, 3)
#: runs per unit kind: (ABC variant, placement seed); the first is the row of the routed table
PLANS = {
    "mac": (("abc", 1), ("abc", 2), ("abc", 3), ("abc-D2000", 1), ("abc-qflow", 1)),
    "product": (("abc", 1), ("abc", 2), ("abc-qflow", 1)),
    "w8a16": (("abc", 1), ("abc", 2)),
}
#: record name -> (file, units (indices into UNITS)), written by ``--name NAME``
RECORDS = {"osu018": "hdl/results/route_osu018.json", "osu018-w8a16": "hdl/results/route_osu018_w8a16.json",
           "sky130": "hdl/results/route_sky130.json", "sky130-w8a16": "hdl/results/route_sky130_w8a16.json"}
RECORD_UNITS = {"osu018": (0, 1, 2, 3, 4, 5), "osu018-w8a16": (6, 7, 8), "sky130": (0, 1, 2, 3, 4, 5),
                "sky130-w8a16": (6, 7, 8)}


def plan_of(unit) -> tuple:
    a, _, _, _, stage = unit
    return PLANS["w8a16" if a in ("bf16", "fp16") else stage]


def synth_variant(a, w, acc, lanes, stage, liberty, variant: str, use_cache: bool = True) -> dict:
    """:func:`rf8sim.hdl.synth.synthesize` with the ABC command of ``variant`` (same Verilog, same script
    otherwise); cached beside the default's work directory."""
    from .synth import _cells_of, _liberty_cells, _run_yosys, _script, synthesize

    if variant not in ABC_VARIANTS:
        raise HdlError(f"unknown ABC variant {variant!r}; valid: {', '.join(ABC_VARIANTS)}")
    base = synthesize(a, w, acc, lanes, None, stage, liberty, use_cache)  # the unit's own result port
    if variant == "abc":
        return {**base, "variant": variant}
    src = Path(base["workdir"])
    script = _script("liberty.ys", top=base["module"])
    if "abc -liberty cells.lib\n" not in script:
        raise HdlError("hdl/synth/liberty.ys has no plain 'abc -liberty cells.lib' line to vary")
    script = script.replace("abc -liberty cells.lib\n", ABC_VARIANTS[variant] + "\n")
    key = hashlib.sha256((script + (src / "design.v").read_text() + (src / "cells.lib").read_text(errors="replace"))
                         .encode()).hexdigest()[:16]
    work = src.parent / f"{base['module']}-{stage}-{variant}-{key}"
    done = work / "result.json"
    if use_cache and done.is_file():
        return json.loads(done.read_text())
    work.mkdir(parents=True, exist_ok=True)
    for f in ("design.v", "cells.lib"):
        shutil.copyfile(src / f, work / f)
    t0 = time.perf_counter()
    _run_yosys(work, script, "liberty")
    cells = _cells_of(json.loads((work / "liberty_stat.json").read_text()), base["module"])
    table = _liberty_cells(work / "cells.lib")
    res = {"config": base["config"], "stage": stage, "module": base["module"], "yosys": base.get("yosys"),
           "variant": variant, "workdir": str(work),
           "liberty": {"library": base["liberty"]["library"], "cells": cells,
                       "area_um2": sum(n * table[c][0] for c, n in cells.items())},
           "synth_s": time.perf_counter() - t0}
    done.write_text(json.dumps(res, indent=1))
    return res


def _job(job, tech, liberty, utilization, clock_ns, streams, beats, use_cache, pre_power, tries=4):
    from .route import RouteError, route_design, routed_ppa, routed_timing
    from .sta import timing

    a, w, acc, lanes, stage, variant, seed = job
    t0 = time.perf_counter()
    s = synth_variant(a, w, acc, lanes, stage, liberty, variant, use_cache)
    synth_s = time.perf_counter() - t0
    try:
        r = route_design(s, tech, density=utilization, seed=seed, use_cache=use_cache, tries=tries)
    except RouteError as e:  # recorded as a failed run (never a number); the docs count them
        return {"a_fmt": a, "w_fmt": w, "acc": acc, "lanes": lanes, "stage": stage, "variant": variant,
                "seed": seed, "tech": tech, "ok": False, "error": str(e).split(" (e.g.")[0],
                "cells": sum(s["liberty"]["cells"].values()), "synth_area_um2": s["liberty"]["area_um2"],
                "wall_s": time.perf_counter() - t0}
    work = Path(s["workdir"])
    pre = timing(work / "cells.lib", work / "mapped.v", s["module"], clock_ns)
    rt = routed_timing(r, clock_ns)
    row = {"a_fmt": a, "w_fmt": w, "acc": acc, "lanes": lanes, "stage": stage, "variant": variant, "seed": seed,
           "tech": r["tech"], "module": s["module"], "tries": r.get("tries"),
           "cells": sum(s["liberty"]["cells"].values()), "synth_area_um2": s["liberty"]["area_um2"],
           "die_um2": r["die_um2"], "utilization": r["utilization"], "wirelength_um": r["wirelength_um"],
           "wire_cap_pf": r["wire_cap_pf"], "nets_routed": r["nets_routed"], "failed_nets": r["failed_nets"],
           "crit_synth_ns": pre["critical_path_ns"], "crit_routed_nowire_ns": rt["pre"]["critical_path_ns"],
           "crit_post_ns": rt["post"]["critical_path_ns"], "route_times_s": r["times"], "synth_s": synth_s,
           "route_cached": r.get("cached", False), "streams": {}, "ok": True}
    if streams and a not in ("bf16", "fp16"):  # the W8A16 units' 16-bit streams are not driven here
        macs = lanes if stage == "mac" else 1
        post = routed_ppa(s, r, streams=streams, clock_ns=clock_ns, beats=beats, use_cache=use_cache)
        for st, v in post["streams"].items():
            row["streams"][st] = {"pj_per_mac_post": v["pj_per_mac"],
                                  "switching_w_post": v["at_clock"]["switching_w"]}
        if pre_power:
            from .power import ppa

            p0 = ppa(synth=s, streams=streams, clock_ns=clock_ns, beats=beats, use_cache=use_cache)
            for st, v in p0["streams"].items():
                row["streams"][st].update({"pj_per_mac_pre": v["pj_per_mac"],
                                           "switching_w_pre": v["at_clock"]["switching_w"]})
        row["macs_per_cycle"] = macs
    return row


def study_rows(tech="osu018", liberty=None, *, units=UNITS, utilization=None, clock_ns=10.0, streams=("minilm",),
               beats=1000, use_cache=True, cluster="local", tries=4, plan=None,
               workers=1, progress=True) -> list:
    from ..infra.cluster import Resources, run_tasks
    from .route import get_tech, tech_liberty

    t = get_tech(tech).name
    lib = liberty or (str(tech_liberty(t)) if t != "osu018" else "default")
    jobs = [(*u, v, sd) for u in units for v, sd in (plan or plan_of(u))]
    fn = functools.partial(_job, tech=t, liberty=lib, utilization=utilization, clock_ns=clock_ns,
                           streams=tuple(streams), beats=beats, use_cache=use_cache, pre_power=True, tries=tries)
    return run_tasks(fn, jobs, keys=None, kind="route-study", cluster=cluster, workers=workers,
                     resources=Resources(num_cpus=1, tools=("yosys",)),
                     labels=[f"{a}x{w} {acc} L{n} {st} {v} seed {sd}" for a, w, acc, n, st, v, sd in jobs],
                     progress=progress, desc=f"route study {t}")


def main(argv=None) -> int:
    from ..infra import records
    from ..infra.fileio import check_output_path
    from .route import ROUTE_VERSION, qflow_version, route_tools_available

    ap = argparse.ArgumentParser(prog="python -m rf8sim.hdl.route_study", description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", required=True, choices=sorted(RECORDS), help="which record: its technology and units")
    ap.add_argument("--liberty", default=None, help="override the technology's Liberty file")
    ap.add_argument("--units", default=None, help="indices into UNITS, e.g. 0,1,2 (default: the record's)")
    ap.add_argument("--utilization", type=float, default=None, help="default: the technology's (rf8sim.tech.TECHS)")
    ap.add_argument("--clock-ns", type=float, default=10.0)
    ap.add_argument("--stream", action="append", default=None, help="streams for energy (default minilm)")
    ap.add_argument("--beats", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cluster", default="local")
    ap.add_argument("--record", default=None, help="default: the record's file (RECORDS)")
    ap.add_argument("--tries", type=int, default=4, help="placements per run before a route counts as failed")
    ap.add_argument("--first-run-only", action="store_true", help="one run per unit (default ABC script, seed 1)")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    args.record = args.record or RECORDS[args.name]
    tech = args.name.split("-")[0]
    check_output_path(args.record, args.force)
    if args.utilization is None:
        args.utilization = TECHS[tech].utilization
    if not route_tools_available():
        raise HdlError("qflow's graywolf/qrouter/rc2dly are not installed: apt-get install qflow")
    idx = RECORD_UNITS[args.name] if args.units is None else tuple(int(i) for i in args.units.split(","))
    units = tuple(UNITS[i] for i in idx)
    t0 = time.perf_counter()
    rows = study_rows(tech, args.liberty, units=units, utilization=args.utilization,
                      clock_ns=args.clock_ns, streams=tuple(args.stream or ["minilm"]), beats=args.beats,
                      cluster=args.cluster, workers=args.workers, tries=args.tries,
                      plan=(("abc", 1),) if args.first_run_only else None)
    from .sta import sta_version

    rec = {"kind": "hdl-route-study", "name": args.name, "tech": rows[0]["tech"] if rows else tech,
           "utilization_target": args.utilization, "clock_ns": args.clock_ns, "beats": args.beats,
           "streams": args.stream or ["minilm"], "variants": dict(ABC_VARIANTS),
           "plans": {k: [list(x) for x in v] for k, v in PLANS.items()},
           "tools": {"qflow": qflow_version(), "sta": sta_version()}, "tries": args.tries,
           "first_run_only": args.first_run_only, "route_version": ROUTE_VERSION,
           "wall_s": time.perf_counter() - t0, "rows": rows}
    records.write_record(args.record, rec, overwrite=args.force,
                         command=["python", "-m", "rf8sim.hdl.route_study", *(argv or sys.argv[1:])])
    print(f"wrote {args.record} ({len(rows)} rows, {rec['wall_s']:.0f} s)")
    return 0


# ----------------------------------------------------------------------------- docs


def load_route_record(name: str) -> dict:
    """The checked-in route-study record of ``name`` (a key of :data:`RECORDS`: osu018, sky130, osu018-w8a16)."""
    return load_record(RECORDS[name], "hdl-route-study", f"python -m rf8sim.hdl.route_study --name {name}")


def _unit(r) -> str:
    if r["a_fmt"] in ("bf16", "fp16"):
        return f"{r['w_fmt']} × {r['a_fmt']} fp32 MAC"
    return f"{r['a_fmt']} × {r['w_fmt']} {'16:32 MAC' if r['stage'] == 'mac' else 'product stage'}"


def _key(r):
    return (r["a_fmt"], r["w_fmt"], r["acc"], r["lanes"], r["stage"])


def _groups(rec) -> dict:
    """Routed runs per unit (failed runs are counted by :func:`render_failures`, never shown as numbers)."""
    g = {}
    for r in rec["rows"]:
        if r.get("ok", True):
            g.setdefault(_key(r), []).append(r)
    return g


def render_failures(name: str) -> str:
    rec = load_route_record(name)
    bad = [r for r in rec["rows"] if not r.get("ok", True)]
    n = len(rec["rows"])
    if not bad:
        return f"All {n} runs of `{RECORDS[name]}` routed with 0 failed nets.\n"
    lines = [f"{len(bad)} of {n} runs of `{RECORDS[name]}` ({rec['tech']}) stopped with a one-line `RouteError` (a net "
             f"still unrouted after {rec.get('tries', 4)} placements, or parasitics that do not match the routed "
             "netlist); no post-route number is reported for them:", ""]
    lines += [f"* {_unit(r)}, {r['variant']}, seed {r['seed']}: {r['error']}" for r in bad]
    return "\n".join(lines) + "\n"


def _base(rows, rec):
    return rows[0]  # the first run of the unit's plan: default ABC script, seed 1


def _head(rec) -> str:
    p = rec["provenance"]
    m = p.get("machine", {})
    return (f"Record `{RECORDS[rec['name']]}`: `{p.get('command')}` on {m.get('cpu', m.get('processor', '?'))}, "
            f"{m.get('cores', m.get('cpu_count', '?'))} cores, commit {str(p.get('commit'))[:10]}"
            f"{' (dirty)' if p.get('dirty') else ''}; {rec['tools']['qflow']}, {rec['tools']['sta']}; "
            f"utilization target {rec['utilization_target']}, clock {rec['clock_ns']} ns, "
            f"{rec['beats']} gate-level beats of {', '.join(rec['streams'])}; whole run {rec['wall_s'] / 60:.0f} min."
            + _before_fixups(rec))


#: ``rf8sim array synth --route`` records shown in docs/hdl.md (technology -> file)
ARRAY_ROUTE_RECORDS = {"sky130": "hdl/results/route_sky130_array2x2.json"}


def render_array_route(tech: str) -> str:
    """One sentence per routed array of ``ARRAY_ROUTE_RECORDS[tech]``: command, nets, failed nets, die, critical path
    without and with the wires, placement and routing time."""
    path = ARRAY_ROUTE_RECORDS[tech]
    rec = load_record(path, "hdl-array-synth", "rf8sim array synth --tech TECH --route --json FILE")
    p = rec["provenance"]
    out = []
    for row in rec["rows"]:
        r, t = row["route"], row["routed_timing"]
        c = row["config"]
        out.append(f"Record `{path}`: `{p.get('command')}` (commit {str(p.get('commit'))[:10]}): the {c['rows']}x{c['cols']} "
                   f"{c['a_fmt']} × {c['w_fmt']} array ({c['acc']}, depth {c.get('depth')}) placed and routed on {r['tech']}: "
                   f"{r['nets_routed']} nets, {r['failed_nets']} failed, die {r['die_um2']:.0f} µm² (utilization "
                   f"{r['utilization']:.2f}), critical path {t['pre']['critical_path_ns']:.2f} ns without wires and "
                   f"{t['post']['critical_path_ns']:.2f} ns with them; placement {r['times']['place_s']:.0f} s, "
                   f"routing {r['times']['route_s']:.0f} s.")
    return "\n".join(out) + "\n"


#: fix-ups that changed routed numbers: (route version that brought it, id, technologies, what the older record lacks)
LATER_FIXUPS = ((3, "Q1", ("sky130",), "it was routed without stacked vias"),
                (4, "C1", ("osu018", "sky130"), "its wire capacitances count one edge of each wire where the "
                 "technology LEF means two, so its post-route delays and energies leave out part of the wires' share"))


def _before_fixups(rec) -> str:
    """The sentence saying which later fix-ups a record predates (records before route version 3 carry none)."""
    v = rec.get("route_version", 2)
    miss = [(f, why) for since, f, techs, why in LATER_FIXUPS if v < since and rec["tech"] in techs]
    if not miss:
        return ""
    return (f" Made before fix-up{'s' if len(miss) > 1 else ''} {' and '.join(f for f, _ in miss)}: "
            + "; ".join(why for _, why in miss) + ".")


def render_routed(tech: str) -> str:
    rec = load_route_record(tech)
    lines = [_head(rec), "",
             "Rows: default ABC script, seed 1. *pre-route* = the synthesised netlist (no wires); *post-route* "
             "= the routed netlist with the router's SPEF (it also holds the buffers qflow's BLIF step adds for "
             "constant or port-to-port outputs); energy per MAC from the same stream, each netlist simulated.",
             "", "| unit | cells | cell area µm² | die µm² | utilization | wire mm | crit. path pre-route ns | "
             "post-route ns | change | pJ/MAC pre-route | post-route | change | placement s | routing s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for rows in _groups(rec).values():
        r = _base(rows, rec)
        st = next(iter(r["streams"].values()), {})
        pre_e, post_e = st.get("pj_per_mac_pre"), st.get("pj_per_mac_post")
        e = (f"{pre_e:.1f} | {post_e:.1f} | {100 * (post_e / pre_e - 1):+.1f}" if pre_e and post_e else "– | – | –")
        tm = r["route_times_s"]
        lines.append(f"| {_unit(r)} | {r['cells']} | {r['synth_area_um2']:.0f} | {r['die_um2']:.0f} | "
                     f"{r['utilization']:.2f} | {r['wirelength_um'] / 1e3:.1f} | {r['crit_synth_ns']:.2f} | "
                     f"{r['crit_post_ns']:.2f} | {100 * (r['crit_post_ns'] / r['crit_synth_ns'] - 1):+.1f} | {e} | "
                     f"{tm['place_s']:.0f} | {tm['route_s']:.0f} |")
    return "\n".join(lines) + "\n"


def _metrics(r) -> dict:
    st = next(iter(r["streams"].values()), {})
    return {"area": r["synth_area_um2"], "die": r["die_um2"], "crit": r["crit_post_ns"],
            "energy": st.get("pj_per_mac_post")}


def _span(rows, k):
    vals = [_metrics(r)[k] for r in rows if _metrics(r)[k] is not None]
    return (min(vals), max(vals), len(vals)) if vals else None


def render_spread(tech: str) -> str:
    rec = load_route_record(tech)
    plans = "; ".join(f"{k}: " + ", ".join(f"{v} seed {sd}" for v, sd in p) for k, p in rec["plans"].items())
    lines = [f"Spread over ABC scripts ({'; '.join(f'`{k}` = `{v}`' for k, v in rec['variants'].items())}) and "
             f"placement seeds (runs per unit kind — {plans}): min – max (spread in % of the minimum).", "",
             "| unit | runs | cell area µm² | die µm² | post-route crit. path ns | post-route pJ/MAC |",
             "|---|---|---|---|---|---|"]
    for rows in _groups(rec).values():
        cells = []
        for k, fmt in (("area", ".0f"), ("die", ".0f"), ("crit", ".2f"), ("energy", ".1f")):
            s = _span(rows, k)
            cells.append("–" if s is None else f"{s[0]:{fmt}} – {s[1]:{fmt}} ({100 * (s[1] / s[0] - 1):.1f} %)")
        lines.append(f"| {_unit(rows[0])} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_NAMES = {"area": "cell area", "die": "die area", "crit": "post-route critical path", "energy": "post-route energy per MAC"}


def noise_sentences(rec) -> list:
    """One sentence per (pair of formats, unit kind, metric): real when the two ranges over ABC scripts and
    seeds do not overlap, inside the noise otherwise."""
    g = _groups(rec)
    out = []
    kinds = {}
    for k, rows in g.items():
        a, w, acc, lanes, stage = k
        kind = ("W8A16 fp32 MAC", a) if a in ("bf16", "fp16") else (("8-bit 16:32 MAC" if stage == "mac"
                                                                      else "8-bit product stage"), None)
        fmt = w if a in ("bf16", "fp16") else a
        kinds.setdefault(kind, {})[fmt] = rows
    for (kname, act), by in kinds.items():
        for f1, f2 in (("rf8", "e4m3"), ("rf8", "int8"), ("e4m3", "int8")):
            if f1 not in by or f2 not in by:
                continue
            for m in ("area", "crit", "energy"):
                s1, s2 = _span(by[f1], m), _span(by[f2], m)
                if not s1 or not s2 or min(s1[2], s2[2]) < 2:  # one run measures no spread: no verdict
                    continue
                mid1, mid2 = (s1[0] + s1[1]) / 2, (s2[0] + s2[1]) / 2
                d = 100 * (mid1 / mid2 - 1)
                real = s1[1] < s2[0] or s2[1] < s1[0]
                unit = f"{kname}{' (' + act + ' activations)' if act else ''}"
                rng = f"{f1} {_g(s1[0])}–{_g(s1[1])}, {f2} {_g(s2[0])}–{_g(s2[1])}"
                verdict = (f"**real**: the ranges do not overlap ({rng})" if real else
                           f"**inside the noise**: the ranges overlap ({rng})")
                out.append(f"{unit}, {_NAMES[m]}: {f1} vs {f2} {d:+.1f} % (mid-range) — {verdict}; "
                           f"{s1[2]} and {s2[2]} runs.")
    return out


def _g(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def render_noise(tech: str) -> str:
    rec = load_route_record(tech)
    s = noise_sentences(rec)
    if not s:
        return (f"`{RECORDS[tech]}` has one routed run per unit: no spread measured, so no verdict on which "
                "differences are real (the 8-bit spread above is the measured flow noise).\n")
    head = (f"Generated from `{RECORDS[tech]}` ({rec['tech']}, {len(rec['rows'])} routed runs; a difference is "
            "called real only when the two formats' min–max ranges over the ABC scripts and seeds do not overlap):")
    return head + "\n\n" + "\n".join(f"* {x}" for x in s) + "\n"


#: Horowitz, ISSCC 2014, 45 nm at 0.9 V (pJ)
HOROWITZ_45NM = {"int8 mult": 0.2, "int8 add": 0.03, "int32 add": 0.1, "fp32 add": 0.9, "fp32 mult": 3.7}
NODES = {n: (t.feature_nm, t.vdd_v) for n, t in TECHS.items()}  # rf8sim.tech.TECHS


def render_anchors(tech: str) -> str:
    rec = load_route_record(tech)
    nm, v = NODES[rec["tech"]]
    k = (nm / 45) * (v / 0.9) ** 2
    g = _groups(rec)

    def base_energy(key):
        rows = g.get(key)
        if not rows:
            return None
        st = next(iter(_base(rows, rec)["streams"].values()), {})
        return st.get("pj_per_mac_post"), _span(rows, "energy")

    i8 = base_energy(("int8", "int8", "16:32", 1, "mac"))
    e4 = base_energy(("e4m3", "e4m3", "16:32", 1, "mac"))
    r8 = base_energy(("rf8", "rf8", "16:32", 1, "mac"))
    i8p = base_energy(("int8", "int8", "16:32", 1, "product"))
    if not (i8 and e4 and i8[0] and e4[0]):
        return (f"No post-route energies of the int8 and e4m3 MACs in `{RECORDS[rec['name']]}` ({rec['tech']}), "
                "so no energy anchor is checked on it.\n")
    anchor_mac = (HOROWITZ_45NM["int8 mult"] + HOROWITZ_45NM["int32 add"]) * k
    ratio = 100 * (e4[0] / i8[0] - 1)
    lo, hi = 100 * (e4[1][0] / i8[1][1] - 1), 100 * (e4[1][1] / i8[1][0] - 1)
    inside = hi >= 50 and lo <= 180
    txt = [f"Scaling rule (stated, not fitted): E = C·V², C proportional to the feature size: Horowitz' 45 nm / "
           f"0.9 V numbers × ({nm}/45)·({v} V/0.9 V)² = ×{k:.1f} for {rec['tech']}. Post-route, default ABC "
           f"script, first seed, {rec['streams'][0]} stream, registers and clock pins included."]
    txt.append(f"An INT8 MAC (8-bit multiply + 32-bit add, 0.2 + 0.1 pJ at 45 nm) scales to {anchor_mac:.1f} pJ; the "
               f"routed int8 × int8 16:32 MAC measures {i8[0]:.1f} pJ/MAC ({i8[0] / anchor_mac:.1f}× the scaled "
               "anchor: the anchor counts the arithmetic alone, the unit here adds its flip-flops, their clock "
               "pins, the alignment and saturation logic of the accumulator and the wires, in minimum-size cells"
               + (f"; its product stage alone measures {i8p[0]:.1f} pJ against the scaled 8-bit multiply's "
                  f"{HOROWITZ_45NM['int8 mult'] * k:.1f} pJ" if i8p and i8p[0] else "") + ").")
    txt.append(f"FP8 vs INT8 MAC energy, arXiv 2303.17951: +50 … +180 %. Measured post-route: e4m3 × e4m3 vs int8 × "
               f"int8 at 16:32 {ratio:+.0f} % (over ABC scripts and seeds {lo:+.0f} … {hi:+.0f} %)"
               + (f"; rf8 × rf8 vs int8 × int8 {100 * (r8[0] / i8[0] - 1):+.0f} %" if r8 and r8[0] else "")
               + (". The measured range overlaps the published one." if inside else
                  ". The measured range lies outside the published one: the published FP8 MACs accumulate in "
                  "floating point (FP16/FP32 adders with alignment and normalisation), while these units "
                  "accumulate every format in the same fixed-point register, so the costly part is shared and the "
                  "multiplier decides — and the 8×8 INT8 multiplier is the largest of them."))
    return " ".join(txt) + "\n"


_ = DocgenError  # re-exported for renderers' callers

if __name__ == "__main__":
    try:
        sys.exit(main())
    except HdlError as e:  # one line, like the CLI
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
