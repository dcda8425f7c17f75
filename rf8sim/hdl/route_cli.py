"""``rf8sim synth --tech osu018|sky130 --route``: technology choice, place and route, post-route timing and power.

The arguments are added to ``rf8sim synth`` by :func:`add_arguments`; :func:`wants` tells
``cmd_synth`` whether this module handles the command line, :func:`resolve_liberty` turns
``--tech`` into the Liberty file every other synth path uses.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from .mac import HdlError
from .route import resolve_liberty  # noqa: F401  (re-exported: cmd_synth asks route_cli)

__all__ = ["add_arguments", "wants", "resolve_liberty", "run", "route_rows"]

DEFAULT_PLACE_SEED = 12345


def add_arguments(p, route: bool = True) -> None:
    """``--tech`` (and with ``route``: ``--route``, ``--utilization``, ``--place-seed``) on a synth-like parser."""
    g = p.add_argument_group("technology and place and route (qflow's graywolf + qrouter; docs/hdl.md)")
    g.add_argument("--tech", default=None, metavar="osu018|sky130",
                   help="cell library: osu018 (default; Debian qflow-tech-osu018) or sky130 (sky130_fd_sc_hd, the "
                        "Liberty characterized here)")
    if not route:
        return
    g.add_argument("--route", action="store_true",
                   help="place (graywolf) and route (qrouter) the mapped netlist; --timing/--power then report "
                        "pre- and post-route numbers (wire parasitics from the router's SPEF)")
    g.add_argument("--utilization", type=float, default=None,
                   help="--route: fraction of the rows the cells fill (default: the technology's, osu018 0.6, "
                        "sky130 0.5)")
    g.add_argument("--place-seed", type=int, default=DEFAULT_PLACE_SEED,
                   help=f"--route: graywolf's random seed (default {DEFAULT_PLACE_SEED})")


def wants(args) -> bool:
    return bool(getattr(args, "route", False))


def _route_one(job, liberty, tech, utilization, seed, clock_ns, streams, beats, use_cache, specify=True):
    """One configuration: synthesise, route, time before/after, energy after (a cluster task)."""
    from .route import route_design, routed_ppa, routed_timing
    from .synth import synthesize

    a, w, acc, lanes, out, stage = job
    s = synthesize(a, w, acc, lanes, out, stage, liberty, use_cache)
    r = route_design(s, tech, density=utilization, seed=seed, use_cache=use_cache)
    row = {"config": s["config"], "stage": s["stage"], "module": s["module"], "tech": r["tech"],
           "synth_area_um2": s["liberty"]["area_um2"], "route": {k: v for k, v in r.items() if k != "workdir"}}
    if clock_ns is not None:
        from .sta import timing

        work = Path(s["workdir"])
        row["synth_timing"] = timing(work / "cells.lib", work / "mapped.v", s["module"], clock_ns)
        row["routed_timing"] = routed_timing(r, clock_ns)
    if streams:
        row["post_route_power"] = routed_ppa(s, r, streams=streams, clock_ns=clock_ns or 10.0, beats=beats,
                                             use_cache=use_cache, specify=specify)["streams"]
    return row


def route_rows(jobs, liberty, tech, *, utilization=None, seed=DEFAULT_PLACE_SEED, clock_ns=None,
               streams=(), beats=2000, use_cache=True, cluster="local", workers=1, progress=True) -> list:
    """Route every configuration of ``jobs`` (``(a, w, acc, lanes, out, stage)``) through the Ray backend
    (:func:`rf8sim.infra.cluster.run_tasks`), one CPU and the qflow tools per task."""
    from ..infra.cluster import Resources, run_tasks

    fn = functools.partial(_route_one, liberty=liberty, tech=tech, utilization=utilization, seed=seed,
                           clock_ns=clock_ns, streams=tuple(streams), beats=beats, use_cache=use_cache)
    return run_tasks(fn, jobs, keys=None, kind="route", cluster=cluster, workers=workers,
                     resources=Resources(num_cpus=1, tools=("yosys",)),
                     labels=[f"route {a}x{w} acc {acc} lanes {n} {st} ({tech})" for a, w, acc, n, _, st in jobs],
                     progress=progress, desc="route")


def _jobs_of(args) -> list:
    """The configurations of the command line: one unit, or every row of ``--table`` (fixed | w8a16)."""
    table = getattr(args, "table", None)
    if not table:
        return [(args.a_fmt, args.w_fmt, args.acc, args.lanes, args.result, args.stage)]
    if table == "w8a16":
        from .synth import w8a16_grid

        return [(a, w, acc, n, None, st) for a, w, acc, n, st in w8a16_grid()]
    from .synth import TABLE_PAIRS

    jobs = []
    for a, w in TABLE_PAIRS:
        for acc in ("exact", "16:32"):
            for lanes in (1, 4):
                jobs.append((a, w, acc, lanes, "fixed", "mac"))
        jobs.append((a, w, "16:32", 1, "fixed", "product"))
    return jobs


def run(args) -> int:
    """``rf8sim synth --route ...``: one configuration (or ``--table``'s), printed; ``--json`` a record."""
    from ..infra import fileio
    from ..infra.records import write_record
    from .power import check_clock
    from .route import get_tech, route_tools_available

    t = get_tech(getattr(args, "tech", None)).name
    if args.utilization is None:
        args.utilization = get_tech(t).utilization
    if not 0.05 <= args.utilization <= 0.95:
        raise HdlError(f"--utilization must be in 0.05..0.95, got {args.utilization}")
    if not route_tools_available():
        from ..errors import ToolMissingError

        raise ToolMissingError("graywolf/qrouter/rc2dly/tclsh or qflow's scripts not found: `apt-get install qflow "
                               "tcl` (or `make sysdeps` as root)")
    if getattr(args, "record", None) or getattr(args, "plot", None):
        raise HdlError("--route writes its rows with --json FILE (the route records are written by "
                       "`python -m rf8sim.hdl.route_study --name NAME`)")
    if args.json:
        fileio.check_output_path(args.json, getattr(args, "force", False))
    clock = check_clock(args.clock_ns if args.clock_ns is not None else 10.0) if (args.timing or args.power) else None
    streams = []
    if args.power:
        from .streams import parse_stream

        streams = args.stream or ["minilm", "random"]
        for s in streams:
            parse_stream(s)
    liberty = resolve_liberty(args) or (args.liberty or "default")
    rows = route_rows(_jobs_of(args), liberty, t, utilization=args.utilization, seed=args.place_seed,
                      clock_ns=clock, streams=streams, beats=args.beats or 2000, use_cache=not args.no_cache,
                      cluster=getattr(args, "cluster", None) or "local", workers=getattr(args, "workers", None) or 1)
    _print(rows)
    if args.json:
        cmd = ["rf8sim", *sys.argv[1:]] if Path(sys.argv[0]).name in ("cli.py", "__main__.py", "rf8sim") else None
        write_record(args.json, {"kind": "hdl-route", "rows": rows}, overwrite=getattr(args, "force", False),
                     command=cmd)
        print(f"wrote {args.json}")
    return 0


def _print(rows) -> None:
    from rf8sim.infra.console import Console
    from rich.table import Table

    t = Table(title="rf8sim synth --route (qflow graywolf + qrouter; post-route = with the router's SPEF)")
    for h in ("tech", "stage", "a x w", "acc", "lanes", "cell um^2", "die um^2", "util", "seed (placements)", "wire mm", "failed",
              "crit ns pre", "crit ns post", "wire +%", "pJ/MAC post", "route s"):
        t.add_column(h, justify="right")
    from .power import acc_text

    for r in rows:
        c, ro = r["config"], r["route"]
        tm = r.get("routed_timing")
        pre = r.get("synth_timing")
        pw = r.get("post_route_power") or {}
        t.add_row(r["tech"], r["stage"], f"{c['a_fmt']}x{c['w_fmt']}", acc_text(c), str(c["lanes"]),
                  f"{r['synth_area_um2']:.0f}", f"{ro['die_um2']:.0f}", f"{ro['utilization']:.2f}",
                  f"{ro['seed']} ({len(ro.get('tries') or [None])})",  # re-placements are shown, never hidden
                  f"{ro['wirelength_um'] / 1e3:.1f}", str(ro["failed_nets"]),
                  f"{pre['critical_path_ns']:.2f}" if pre else "-",
                  f"{tm['post']['critical_path_ns']:.2f}" if tm else "-",
                  f"{100 * tm['wire_delay_ns'] / tm['pre']['critical_path_ns']:+.1f}" if tm else "-",
                  " / ".join(f"{v['pj_per_mac']:.1f}" for v in pw.values()) or "-",
                  f"{sum(ro['times'].values()):.0f}")

    Console().print(t)  # whole when piped (rf8sim.infra.console)
