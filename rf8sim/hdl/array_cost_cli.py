"""``rf8sim array synth`` and ``rf8sim array cost``: the command line of :mod:`rf8sim.hdl.array_cost`.

Listed in :data:`rf8sim.hdl.array_cli.ARRAY_COMMAND_MODULES`; the cost model itself imports no CLI module.
"""

from __future__ import annotations

from pathlib import Path

from .array_cost import (DEFAULT_CLOCK_NS, TABLE_GRID, TARGET_CYCLES, add_inference, cost_one, cost_table,
                         edge_stages_of, plot_array, synth_array, table_record)
from .mac import HdlError

__all__ = ["register_array", "cmd_synth", "cmd_cost", "cmd_activity", "route_array"]


def register_array(asub) -> None:
    """``rf8sim array synth`` and ``rf8sim array cost`` (added to the parser of :mod:`rf8sim.hdl.array_cli`)."""
    from .array_cli import config_args

    p = asub.add_parser("synth", help="synthesize the array (osu018): area, area per MAC, area by part, "
                                      "critical path and fmax (OpenSTA)")
    config_args(p)
    p.add_argument("--clock-ns", type=float, default=DEFAULT_CLOCK_NS, help="clock target for timing (ns)")
    p.add_argument("--no-cache", action="store_true", help="resynthesize even when a cached result exists")
    p.add_argument("--liberty", default=None, help="Liberty file (default osu018)")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--force", action="store_true", help="overwrite --json")
    from .route_cli import add_arguments as _route_arguments

    _route_arguments(p)  # --tech, --route, --utilization, --place-seed (rf8sim.hdl.route_cli)
    p.set_defaults(func=cmd_synth)
    p = asub.add_parser("cost", help="energy of a real MiniLM tile on the array from gate-level activity "
                                     "(pJ/MAC, TOPS/W, by part), per-inference cycles / latency / energy; "
                                     "--table: the grid of docs/hdl.md")
    config_args(p)
    p.add_argument("--clock-ns", type=float, default=DEFAULT_CLOCK_NS, help="clock target (ns)")
    p.add_argument("--cycles", type=int, default=TARGET_CYCLES, help="tile length in clocks (at least)")
    p.add_argument("--table", action="store_true", help="the whole grid (RF8/E4M3/INT8/BF16 x BF16 with both edge "
                                                        "designs, W8A8) at --sizes")
    p.add_argument("--sizes", default="8x8", help="comma-separated RxC for --table (default 8x8)")
    p.add_argument("--record", help="with --table: write the record (hdl/results/array_cost.json)")
    p.add_argument("--plot", help="with --record: write the plot (PNG)")
    p.add_argument("--cluster", default="local", help="local, auto or ray://HOST:PORT (rf8sim.infra.cluster)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--cached-only", action="store_true",
                   help="with --table: assemble what has been computed (arrays not yet synthesized are left out "
                        "and named in the record); computes nothing new but the OpenSTA timing of cached netlists")
    p.add_argument("--liberty", default=None)
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--force", action="store_true", help="overwrite outputs")
    _route_arguments(p, route=False)  # --tech
    p.set_defaults(func=cmd_cost)
    p = asub.add_parser("activity", help="benchmark: wall clock of the gate-level activity of a real MiniLM tile "
                                         "(>= 10,000 clocks) on the 8x8 array, and the method's error on a small "
                                         "array against Icarus with cell delays")
    config_args(p)
    p.set_defaults(a_fmt="bf16", acc="aligned:32:16", size="8x8", edge_stages=1)
    p.add_argument("--clock-ns", type=float, default=DEFAULT_CLOCK_NS, help="clock target (ns)")
    p.add_argument("--cycles", type=int, default=TARGET_CYCLES, help="tile length in clocks (at least; default "
                                                                     f"{TARGET_CYCLES})")
    p.add_argument("--check-size", default="2x2", help="RxC of the array checked against Icarus with delays "
                                                       "(same formats; 'none' skips the check; default 2x2)")
    p.add_argument("--check-cycles", type=int, default=1000, help="clocks of the Icarus check (default 1000)")
    p.add_argument("--liberty", default=None)
    p.add_argument("--no-cache", action="store_true", help="resynthesize even when a cached netlist exists")
    p.add_argument("--record", help="write the record (hdl/results/array_activity.json)")
    p.add_argument("--force", action="store_true", help="overwrite --record")
    p.set_defaults(func=cmd_activity)


def _check_common(args) -> None:
    from ..infra.fileio import check_output_path
    from .power import check_clock
    from .route import resolve_liberty

    args.liberty = resolve_liberty(args) or args.liberty  # --tech sky130: its Liberty file
    check_clock(args.clock_ns)
    if args.liberty and not Path(args.liberty).is_file():
        raise HdlError(f"Liberty file {args.liberty} not found (or not a file)")
    for p in (getattr(args, "json", None), getattr(args, "record", None), getattr(args, "plot", None)):
        if p:
            check_output_path(p, args.force)


def _print_rows(rows: list) -> None:
    from rf8sim.infra.console import Console
    from rich.table import Table

    libs = sorted({str(r.get("library") or "osu018").split("_stdcells")[0].split("_fd_sc_hd")[0] for r in rows})
    t = Table(title=f"rf8sim array cost ({', '.join(libs) or 'osu018'})")
    for h in ("a x w", "acc", "RxC", "um^2", "um^2/MAC", "crit ns", "fmax MHz", "TOPS/mm2", "pJ/MAC",
              "TOPS/W", "top area part", "top energy part"):
        t.add_column(h, justify="right")
    for r in rows:
        c = r["config"]
        ap = next(iter(r["area_by_part_um2"].items()), ("-", 0))
        en = r.get("energy")
        ep = next(iter(en["energy_by_part_pj_per_cycle"].items()), ("-", 0)) if en else ("-", 0)
        tot = sum(en["energy_by_part_pj_per_cycle"].values()) if en else 1
        t.add_row(f"{c['a_fmt']}x{c['w_fmt']}" + (" e1" if edge_stages_of(c) else ""), c["acc"],
                  f"{c['rows']}x{c['cols']}", f"{r['area_um2']:.0f}",
                  f"{r['area_per_mac_um2']:.0f}", f"{r['critical_path_ns']:.2f}", f"{r['fmax_mhz']:.0f}",
                  f"{r['tops_per_mm2_at_fmax']:.4f}", f"{r['pj_per_mac']:.1f}" if en else "-",
                  f"{r['tops_per_w_at_fmax']:.4f}" if en else "-",
                  f"{ap[0]} {100 * ap[1] / r['area_um2']:.0f}%",
                  f"{ep[0]} {100 * ep[1] / tot:.0f}%" if en else "-")
    Console().print(t)


def cmd_synth(args) -> int:
    from .array_cli import config_from_args

    _check_common(args)
    cfg = config_from_args(args)
    row = cost_one(cfg, cfg.rows, cfg.cols, args.clock_ns, energy=False, use_cache=not args.no_cache,
                   liberty=args.liberty or "default")
    _print_rows([row])
    if getattr(args, "route", False):

        row.update(route_array(cfg, args, args.liberty))
    if args.json:
        from ..infra.records import write_record

        write_record(args.json, {"kind": "hdl-array-synth", "rows": [row]}, overwrite=args.force)
    return 0


def cmd_cost(args) -> int:
    import sys

    from ..infra.records import write_record
    from .array_cli import config_from_args, parse_size

    _check_common(args)
    if args.cycles < 1:
        raise HdlError(f"--cycles must be >= 1, got {args.cycles}")
    if (args.record or args.plot) and not args.table:
        raise HdlError("--record/--plot need --table")
    if args.plot and not args.record:
        raise HdlError("--plot needs --record (the plot is drawn from the record)")
    lib = args.liberty or "default"
    missing = []
    if args.cached_only and (not args.table or args.no_cache):
        raise HdlError("--cached-only needs --table and the cache (drop --no-cache)")
    if args.table and args.cached_only:
        sizes = [parse_size(s) for s in args.sizes.split(",")]
        rows = []
        for R, C in sizes:
            for job in TABLE_GRID:
                r = cost_one(job, R, C, args.clock_ns, True, True, lib, args.cycles, cache_only=True)
                if r is None:
                    missing.append(f"{job[0]}x{job[1]} {job[2]} {R}x{C}" + (" edge_stages 1" if job[3:] else ""))
                else:
                    rows.append(r)
        if not rows:
            raise HdlError("--cached-only: no array of the grid has been synthesized yet at " + args.sizes)
        if missing:
            print("not computed yet (left out): " + "; ".join(missing))
    elif args.table:
        sizes = [parse_size(s) for s in args.sizes.split(",")]
        rows = cost_table(TABLE_GRID, sizes, args.clock_ns, True, args.cluster, args.workers, not args.no_cache,
                          liberty=lib, target_cycles=args.cycles)
    else:
        cfg = config_from_args(args)
        rows = [cost_one(cfg, cfg.rows, cfg.cols, args.clock_ns, True, not args.no_cache, lib, args.cycles)]
    inf = add_inference(rows)
    _print_rows(rows)
    for r in rows:
        i = r.get("inference")
        if i:
            print(f"{r['module']}: MiniLM sentence ({i['tokens']} tokens): {i['cycles']} cycles, "
                  f"{i['latency_us']:.1f} us at fmax, {i['energy_uj']:.2f} uJ")
    if args.json:
        write_record(args.json, {"rows": rows, "inference": inf}, overwrite=args.force)
    if args.record:
        cmd = ["rf8sim", *sys.argv[1:]] if Path(sys.argv[0]).name in ("rf8sim", "__main__.py", "cli.py") else None
        write_record(args.record, {**table_record(rows, inf), "not_computed": missing}, overwrite=args.force,
                     command=cmd)
        print(f"wrote {args.record}")
        if args.plot:
            plot_array(args.record, args.plot, overwrite=args.force)
            print(f"wrote {args.plot}")
    return 0


def cmd_activity(args) -> int:
    import sys

    from ..infra.records import write_record
    from .array import ArrayConfig
    from .array_activity import bench, check
    from .array_cli import config_from_args, parse_size

    _check_common(args)
    for name in ("cycles", "check_cycles"):
        if getattr(args, name) < 1:
            raise HdlError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    cfg = config_from_args(args)
    small = None
    if args.check_size.strip().lower() != "none":
        R, C = parse_size(args.check_size)
        small = ArrayConfig.make(**{**cfg.make_args(), "rows": R, "cols": C, "depth": None})
    lib = args.liberty or "default"
    b = bench(cfg, args.cycles, args.clock_ns, lib, not args.no_cache)
    print(f"{b['module']}: {b['cells']:,} cells, real tile {b['tile']['layer']} {b['tile']['M']}x{b['tile']['K']}x"
          f"{b['tile']['N']}, {b['cycles']:,} clocks: activity {b['activity_s']:.1f} s (stimulus {b['stimulus_s']:.1f}, "
          f"compile {b['compile_s']:.1f}, zero-delay run {b['sim_s']:.1f}, glitch model {b['glitch_s']:.1f}), "
          f"{b['energy_wall_s']:.1f} s with the energy sum; {b['cell_cycles_per_s'] / 1e6:.1f} M cell-clocks/s; "
          f"{b['pj_per_mac']:.1f} pJ/MAC; load {b['load_average'][0]:.1f} -> {b['load_average'][1]:.1f}; "
          f"goal (>= {b['goal_cycles']:,} clocks on 8x8 in <= {b['goal_s']:.0f} s): {'met' if b['met'] else 'not met'}")
    k = None
    if small is not None:
        k = check(small, args.check_cycles, args.clock_ns, lib, not args.no_cache)
        print(f"check {k['module']} ({k['cells']:,} cells, {k['cycles']:,} clocks) against Icarus with delays: "
              f"zero-delay {k['err_zero_pct']:+.1f} %, glitch model {k['err_model_pct']:+.1f} % energy per clock; "
              f"zero-delay counts equal on {k['nets_compared'] - k['nets_mismatched']}/{k['nets_compared']} nets; "
              f"Icarus {k['icarus_delay_s']:.0f} s, fast {k['fast_s']:.1f} s")
    if args.record:
        cmd = ["rf8sim", *sys.argv[1:]] if Path(sys.argv[0]).name in ("rf8sim", "__main__.py", "cli.py") else None
        write_record(args.record, {"kind": "hdl-array-activity", "version": 1, "bench": b, "check": k},
                     overwrite=args.force, command=cmd)
        print(f"wrote {args.record}")
    return 0


def route_array(cfg, args, liberty) -> dict:
    """``rf8sim array synth --route``: the synthesised array placed and routed; pre/post-route timing."""
    from .route import get_tech, route_design, routed_timing

    if args.utilization is None:
        args.utilization = get_tech(getattr(args, "tech", None)).utilization
    if not 0.05 <= args.utilization <= 0.95:
        raise HdlError(f"--utilization must be in 0.05..0.95, got {args.utilization}")
    syn = synth_array(cfg, liberty or "default", not args.no_cache)
    r = route_design({**syn, "stage": "array"}, get_tech(getattr(args, "tech", None)).name, density=args.utilization,
                     seed=args.place_seed, use_cache=not args.no_cache)
    t = routed_timing(r, args.clock_ns)
    out = {"route": {k: v for k, v in r.items() if k != "workdir"}, "routed_timing": t}
    print(f"routed {syn['module']} ({r['tech']}): die {r['die_um2']:.0f} um^2, utilization {r['utilization']:.2f}, "
          f"{r['nets_routed']} nets, 0 failed; critical path {t['pre']['critical_path_ns']:.2f} ns without wires, "
          f"{t['post']['critical_path_ns']:.2f} ns post-route; place {r['times']['place_s']:.0f} s, "
          f"route {r['times']['route_s']:.0f} s")
    return out
