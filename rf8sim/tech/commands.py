"""``rf8sim tech``: the sky130 cell library characterized here, and Liberty checks.

``rf8sim tech characterize``  simulate every cell (ngspice, fanned out per cell), write the Liberty
                              and its record under hdl/tech/sky130/
``rf8sim tech liberty``       rewrite the Liberty from the checked-in raw measurements (no simulation)
``rf8sim tech compare``       compare with the published sky130_fd_sc_hd typical Liberty, per table point
``rf8sim tech check FILE``    a Liberty file is complete and defines the given cells
``rf8sim tech list``          the technologies and the characterized cells
"""

from __future__ import annotations

import sys

from ..infra.cliargs import add_record_args


def register(sub) -> None:
    p = sub.add_parser("tech", help="technologies: the sky130 Liberty characterized here (ngspice), Liberty checks")
    tsub = p.add_subparsers(dest="tech_command", metavar="ACTION")

    c = tsub.add_parser("characterize", help="simulate the sky130 cells and write hdl/tech/sky130/ (Liberty, raw, record)")
    c.add_argument("--cells", help="comma-separated cells (default: all of `rf8sim tech list`)")
    c.add_argument("--out-dir", help="folder for sky130/*.lib, raw and record (default: hdl/tech of the checkout)")
    c.add_argument("--cluster", default="local", help="local (default), auto, ray://HOST:PORT or HOST:PORT")
    c.add_argument("--workers", type=int, default=1, help="local processes (cluster=local)")
    c.add_argument("--no-cache", action="store_true", help="simulate even when the cache holds a cell")
    add_record_args(c, None, "overwrite the Liberty, raw and record files", progress=True)
    c.add_argument("--cached-only", action="store_true",
                   help="write the library of the cells already in the cache (no simulation; the record names the rest)")
    c.set_defaults(func=cmd_characterize)

    lb = tsub.add_parser("liberty", help="rewrite the Liberty from the checked-in raw measurements (no simulation)")
    lb.add_argument("--raw", help="raw measurements (default: hdl/tech/sky130/char-raw.json.gz)")
    lb.add_argument("--out", help="Liberty file to write (default: the checked-in one)")
    add_record_args(lb, None, None)
    lb.set_defaults(func=cmd_liberty)

    k = tsub.add_parser("compare", help="compare the characterized Liberty with the published one, per table point")
    k.add_argument("--reference", help="published Liberty (default: tests/data/sky130hd_tt.lib.gz)")
    k.add_argument("--liberty", help="characterized Liberty (default: the checked-in one)")
    add_record_args(k, "write the comparison as a record (hdl/tech/sky130/compare.json feeds docs/hdl.md)", None,
                    metavar=None)
    k.set_defaults(func=cmd_compare)

    ch = tsub.add_parser("check", help="check that a Liberty file is complete and defines the given cells")
    ch.add_argument("liberty", help="Liberty file (.lib or .lib.gz)")
    ch.add_argument("--cells", default="", help="comma-separated cell names the netlist uses")
    ch.set_defaults(func=cmd_check)

    lc = tsub.add_parser("lctime-check", help="cross-check rf8sim's ngspice runs against lctime (librecell) on one cell")
    lc.add_argument("--cell", default="inv_1")
    add_record_args(lc, "write the comparison as a record (hdl/tech/sky130/lctime-check.json feeds docs)", None,
                    metavar=None)
    lc.set_defaults(func=cmd_lctime_check)

    ls = tsub.add_parser("list", help="technologies and the characterized sky130 cells")
    ls.set_defaults(func=cmd_list)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _names(s):
    return [x.strip() for x in s.split(",") if x.strip()] if s else None


def cmd_characterize(args) -> int:
    from .build import build
    from .cells import cell

    names = _names(args.cells)
    for n in names or []:
        cell(n)  # unknown names fail before anything runs
    rec = build(args.out_dir, names, cluster=args.cluster, workers=args.workers, progress=not args.no_progress,
                use_cache=not args.no_cache, force=args.force, cached_only=args.cached_only)
    run = rec["run"]
    print(f"{rec['n_cells']} cells -> {rec['liberty']}  ({run['computed']} simulated, {run['cached']} cached, "
          f"{run['wall_s']} s wall)")
    return 0


def cmd_liberty(args) -> int:
    from ..infra import fileio
    from ..infra.resources import data_dir
    from . import SKY130_LIBERTY
    from .build import load_raw, rewrite_liberty

    raw = load_raw(args.raw)
    out = args.out or (data_dir("hdl/tech") / SKY130_LIBERTY)
    fileio.write_text(out, rewrite_liberty(raw), overwrite=args.force or not args.out)
    print(out)
    return 0


def cmd_compare(args) -> int:
    from .compare import compare, print_summary, write_compare_record

    res = compare(args.liberty, args.reference)
    print_summary(res, sys.stdout)
    if args.record:
        write_compare_record(args.record, res, force=args.force)
    return 0


def cmd_lctime_check(args) -> int:
    from ..infra.records import write_record
    from .lctime_check import lctime_check

    res = lctime_check(args.cell)
    for r in res["tables"]:
        print(f"{r['pin']:>4} {r['table']:<16} {r['points']:>3} points  max {r['max_rel']:.2%}  median "
              f"{r['median_rel']:.2%}  within 2 %: {r['within_2pct']}")
    if args.record:
        write_record(args.record, res, overwrite=args.force)
    return 0


def cmd_check(args) -> int:
    from .libfile import check_liberty

    groups = check_liberty(args.liberty, _names(args.cells) or ())
    print(f"{args.liberty}: {len(groups)} cells, complete")
    return 0


def cmd_list(args) -> int:
    from . import TECHNOLOGIES
    from .cells import CELLS

    print("technologies: " + ", ".join(TECHNOLOGIES))
    print(f"sky130 cells ({len(CELLS)}): " + " ".join(c.name for c in CELLS))
    return 0
