"""RTL subcommands: ``rf8sim verilog``, ``rf8sim rtlsim``, ``rf8sim synth`` and ``rf8sim array ...``."""

from __future__ import annotations

__all__ = ["register"]


def _config_args(p, lanes_default=1) -> None:
    p.add_argument("--a-fmt", default="rf8", help="activation format (default rf8; names are case-insensitive)")
    p.add_argument("--w-fmt", default="rf8", help="weight format (default rf8)")
    p.add_argument("--acc", default=None,
                   help="accumulator: exact[:TERMS] or FRAC:WIDTH (8-bit activations; default exact = 1024 terms); "
                        "fp32 or aligned:K:M (16-bit float activations such as bf16/fp16, W8A16; default fp32)")
    p.add_argument("--lanes", type=int, default=lanes_default, help="products per clock (adder tree), default 1")
    p.add_argument("--result", default=None, choices=("fixed", "fp32"),
                   help="the unit's result: the fixed-point accumulator (default for FRAC:WIDTH / exact) or also an "
                        "RNE float32 on out_fp32; the fp32 / aligned accumulators' result is fp32 (out_acc)")


def _spec(args):
    """The one MacSpec of the command line (parsed once; everything below takes it)."""
    from .spec import MacSpec

    return MacSpec.make(args.a_fmt, args.w_fmt, args.acc, args.lanes, args.result)


def register(sub) -> None:
    p = sub.add_parser("verilog", help="generate the MAC / dot-product unit as Verilog-2005")
    _config_args(p)
    p.add_argument("-o", "--output", required=True, help="output .v file")
    p.add_argument("--module", help="Verilog module name (default encodes the configuration)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--lint", action="store_true", help="also run verilator --lint-only -Wall on the result")
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("rtlsim", help="simulate a generated MAC (cocotb) and compare every beat with the golden model")
    _config_args(p)
    p.add_argument("--simulator", default="icarus", choices=("icarus", "verilator"))
    p.add_argument("--random", type=int, default=200, help="random accumulation sequences (default 200)")
    p.add_argument("--max-len", type=int, default=1024, help="longest random sequence (default 1024)")
    p.add_argument("--no-products", action="store_true", help="skip the product sweep")
    p.add_argument("--sweep", default=None, metavar="N|all",
                   help="fp32 accumulator: activation codes in the product sweep, each against every weight code "
                        "(default 64: the edge codes and a seeded sample; all = 65,536)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="golden", choices=("golden", "reference", "both"))
    p.add_argument("--json", "--record", dest="json", metavar="FILE",
                   help="also write the summary as a record (JSON with provenance), e.g. hdl/results/verify_*.json")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.set_defaults(func=cmd_rtlsim)

    p = sub.add_parser("synth", help="synthesise MAC configurations with yosys: gates, NAND2-eq, um^2, depth")
    _config_args(p)
    p.add_argument("--stage", default="mac", choices=("mac", "product", "align", "column"),
                   help="the whole MAC, the product stage alone, or (aligned:K:M) its AlignUnit / column alone")
    p.add_argument("--table", nargs="?", const="fixed", default=None, choices=("fixed", "w8a16"),
                   help="a docs/hdl.md area table instead of one unit: fixed (default) = all 8-bit pairs, exact and "
                        "16:32 accumulators, lanes 1 and 4, products; w8a16 = the 16-bit-activation units (fp32 and "
                        "aligned:32:16, --table-lanes), their product stages and AlignUnits; with --timing --power "
                        "the PPA tables")
    p.add_argument("--table-lanes", default=None, metavar="1,4,16", help="--table w8a16: lanes of the grid")
    p.add_argument("--l16-points", action="store_true",
                   help="--table w8a16: add the lanes-16 points (rf8sim.hdl.synth.W8A16_L16_POINTS)")
    p.add_argument("--cached-only", action="store_true",
                   help="--table w8a16: record what is already synthesised, list the rest as not synthesised")
    p.add_argument("--liberty", help="your own Liberty file (default: osu018_stdcells.lib, fetched with apt)")
    p.add_argument("--no-liberty", action="store_true", help="generic gates only (no standard-cell mapping)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON (a record with provenance)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json / --record / --plot file")
    p.add_argument("--no-cache", action="store_true", help="ignore cached results")
    p.add_argument("--workers", type=int, default=None, help="--table: local parallel syntheses (default 1)")
    p.add_argument("--cluster", default=None, metavar="local|auto|ray://HOST:PORT",
                   help="--table: where the syntheses run (docs/study.md, 'Running on a cluster')")
    p.add_argument("--cache-dir", default=None,
                   help="the cache root (default $RF8SIM_CACHE or build/cache under the working directory)")
    g = p.add_argument_group("timing and energy (OpenSTA + gate-level Icarus; docs/hdl.md)")
    g.add_argument("--timing", action="store_true", help="OpenSTA critical path, slack, fmax, area x delay")
    g.add_argument("--power", action="store_true", help="gate-level switching activity -> pJ/MAC, TOPS/W, TOPS/mm2")
    g.add_argument("--stream", action="append", metavar="minilm|random|gg:BETA",
                   help="operand stream for --power (repeatable; default: minilm and random)")
    g.add_argument("--clock-ns", type=float, default=None, help="stated clock period in ns (default 10)")
    g.add_argument("--beats", type=int, default=None,
                   help="gate-level beats per stream (default 2000; --table w8a16: 1000 at lanes 1, 500 above)")
    g.add_argument("--zero-delay", action="store_true",
                   help="gate-level simulation without cell delays (no glitches); default: specify delays on")
    g.add_argument("--record", metavar="FILE", help="with --table --timing --power: write the PPA record "
                   "(e.g. hdl/results/ppa.json) and with --plot FILE its plot")
    g.add_argument("--plot", metavar="FILE", help="PNG of the PPA table (with --record)")
    from .route_cli import add_arguments as _route_arguments

    _route_arguments(p)  # --tech, --route, --utilization, --place-seed (rf8sim.hdl.route_cli)
    p.set_defaults(func=cmd_synth)

    from .array_cli import register as register_array

    register_array(sub)


def cmd_verilog(args) -> int:
    from ..infra.fileio import check_output_path, write_text
    from .verilog import lint, verilog_of

    out = check_output_path(args.output, args.force)
    spec = _spec(args)
    text, latency = verilog_of(spec, name=args.module)
    write_text(out, text, overwrite=args.force)  # atomic; exclusive unless --force (two writers cannot both win)
    d = spec.describe()
    if spec.kind == "fixed":
        print(f"wrote {out}: {d['a_fmt']} x {d['w_fmt']}, acc {spec.acc}, lanes {d['lanes']}, result {d['out']}"
              f"{' (out_fp32)' if spec.has_fp32_port else ''}, latency {latency} clocks, product {d['product']}")
    else:
        print(f"wrote {out}: {d['w_fmt']} weights x {d['a_fmt']} activations, acc {d['acc']}, lanes {d['lanes']}, "
              f"latency {latency} clocks, product {d['product']}; result fp32: out_acc is the float32 bit pattern")
    if args.lint:
        lint(out)
        print("verilator --lint-only -Wall: clean (waivers in the file header)")
    return 0


def _sweep(args, spec):
    """The product sweep of ``rf8sim rtlsim`` for ``spec`` (sim.verify's ``products``)."""
    from .spec import HdlError

    if args.sweep is not None and (args.no_products or spec.kind != "fp32"):
        raise HdlError("--sweep N|all sets the activation codes of the fp32 accumulator's product sweep; "
                       + ("drop it or --no-products" if args.no_products else
                          f"this unit's accumulator is {spec.acc}: drop --sweep"))
    if args.no_products:
        return False
    if spec.kind == "fixed":
        return True
    if spec.kind == "aligned":
        print(f"no product sweep for {spec.acc} (one product per beat needs the fp32 accumulator): "
              "random sequences only")
        return False
    text = args.sweep or "64"
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise HdlError(f"--sweep {text!r}: give a positive number of activation codes or 'all' (65,536)")
    return int(text)


def cmd_rtlsim(args) -> int:
    from rf8sim.infra.console import Console
    from rich.table import Table

    from ..infra.fileio import check_output_path
    from .sim import verify
    from .spec import HdlError

    if args.random < 0 or args.max_len < 1:
        raise HdlError(f"--random must be >= 0 and --max-len >= 1 (got {args.random}, {args.max_len})")
    if args.json:
        check_output_path(args.json, overwrite=args.force)
    spec = _spec(args)
    s = verify(spec, products=_sweep(args, spec), n_random=args.random, max_len=args.max_len, seed=args.seed,
               simulator=args.simulator, model=args.model)
    summary = s if spec.kind == "fixed" else {"kind": "verify_w8a16", **s}
    if args.json:  # the record first: nothing in the printing can lose it
        from ..infra import records

        records.write_record(args.json, summary, overwrite=args.force)
    c = s["config"]
    if spec.kind == "fixed":
        title = (f"rtlsim {c['a_fmt']} x {c['w_fmt']} acc {c['acc_frac_bits']}:{c['acc_width']} "
                 f"lanes {c['lanes']} out {c['out']} on {s['simulator']}")
    else:
        title = f"rtlsim {c['w_fmt']} x {c['a_fmt']} acc {c['acc']} lanes {c['lanes']} on {s['simulator']}"
    t = Table(title=title)
    for h in ("run", "beats", "products", "sequences", "model", "compared", "mismatched", "overflow beats",
              "invalid beats", "beats/s"):
        t.add_column(h, justify="right")
    for tag, r in s["runs"].items():
        for cmp in r["comparisons"]:
            t.add_row(tag, str(r["beats"]), str(r["products"]), str(r["sequences"]), cmp["model"],
                      str(cmp["compared_beats"]), str(cmp["mismatched_beats"]), str(r["overflow_beats"]),
                      str(r["invalid_beats"]), f"{r['beats_per_s']:.0f}")
    Console().print(t)
    return _status(summary)


def _check_synth_flags(args) -> None:
    """Options that only act with another one: a clear error instead of silently ignoring them."""
    from .spec import HdlError

    ppa = args.timing or args.power
    route = bool(getattr(args, "route", False))
    if route and args.table == "w8a16":
        raise HdlError("--route --table routes the fixed-point table (--table fixed); route a W8A16 unit alone "
                       "with --a-fmt/--w-fmt/--acc")
    fixed_table = args.table == "fixed" and (not ppa or route)
    w8a16_table = args.table == "w8a16" and not ppa
    needs = [("--clock-ns", args.clock_ns is not None, ppa, "--timing or --power"),
             ("--beats", args.beats is not None, args.power, "--power"),
             ("--zero-delay", args.zero_delay, args.power, "--power"),
             ("--stream", bool(args.stream), args.power, "--power"),
             ("--workers", args.workers is not None, fixed_table, "--table (fixed, without --timing/--power)"),
             ("--cluster", args.cluster is not None, fixed_table, "--table (fixed, without --timing/--power)"),
             ("--table-lanes", args.table_lanes is not None, w8a16_table, "--table w8a16 (without --timing/--power)"),
             ("--l16-points", args.l16_points, w8a16_table, "--table w8a16 (without --timing/--power)"),
             ("--cached-only", args.cached_only, w8a16_table, "--table w8a16 (without --timing/--power)"),
             ("--record", args.record is not None, args.table and args.power, "--table --timing --power"),
             ("--plot", args.plot is not None, args.table == "fixed" and args.record and args.power,
              "--table fixed --timing --power --record (it draws the fixed-point PPA table)")]
    for flag, given, enabled, what in needs:
        if given and not enabled:
            raise HdlError(f"{flag} acts only with {what}: add that, or drop {flag}")


def cmd_synth(args) -> int:
    _check_synth_flags(args)
    from . import route_cli

    if route_cli.wants(args):
        return route_cli.run(args)
    args.liberty = route_cli.resolve_liberty(args) or args.liberty  # --tech sky130: its Liberty file
    if args.timing or args.power:
        from .ppa_cli import run_ppa_cli

        return run_ppa_cli(args)
    from .synth import run_cli

    return run_cli(args)


def _status(summary: dict) -> int:
    """Print the first mismatch of every failing comparison; the exit code (1 on any mismatch)."""
    if not summary["ok"]:
        for r in summary["runs"].values():
            for cmp in r["comparisons"]:
                if "first_mismatch" in cmp:
                    print("first mismatch:", cmp["first_mismatch"])
        return 1
    return 0
