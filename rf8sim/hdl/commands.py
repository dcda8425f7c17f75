"""RTL subcommands: ``rf8sim verilog``, ``rf8sim rtlsim``, ``rf8sim synth`` and ``rf8sim array ...``."""

from __future__ import annotations

__all__ = ["register"]


def _config_args(p, lanes_default=1) -> None:
    p.add_argument("--a-fmt", default="rf8", help="activation format (default rf8)")
    p.add_argument("--w-fmt", default="rf8", help="weight format (default rf8)")
    p.add_argument("--acc", default="exact",
                   help="accumulator: exact[:TERMS] or FRAC:WIDTH (8-bit activations, default exact = 1024 terms); "
                        "fp32 or aligned:K:M (16-bit activations bf16/fp16, W8A16)")
    p.add_argument("--lanes", type=int, default=lanes_default, help="products per clock (adder tree), default 1")
    p.add_argument("--result", default="fixed", choices=("fixed", "fp32"),
                   help="the unit's result port: the fixed-point accumulator (default) or also an RNE float32 (fp32)")


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
    p.add_argument("--no-products", action="store_true", help="skip the 65,536-product sweep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="golden", choices=("golden", "reference", "both"))
    p.add_argument("--json", metavar="FILE", help="also write the summary as JSON (a record with provenance)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.set_defaults(func=cmd_rtlsim)

    p = sub.add_parser("synth", help="synthesise MAC configurations with yosys: gates, NAND2-eq, um^2, depth")
    _config_args(p)
    p.add_argument("--stage", default="mac", choices=("mac", "product", "align", "column"),
                   help="the whole MAC, the product stage alone, or (aligned:K:M) its AlignUnit / column alone")
    p.add_argument("--table", action="store_true",
                   help="the docs/hdl.md area table: all pairs, exact and 16:32 accumulators, lanes 1 and 4, products")
    p.add_argument("--liberty", help="your own Liberty file (default: osu018_stdcells.lib, fetched with apt)")
    p.add_argument("--no-liberty", action="store_true", help="generic gates only (no standard-cell mapping)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON (a record with provenance)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json / --record / --plot file")
    p.add_argument("--no-cache", action="store_true", help="ignore cached results")
    p.add_argument("--workers", type=int, default=1, help="--table: local parallel syntheses (default 1)")
    p.add_argument("--cluster", default=None, metavar="local|auto|ray://HOST:PORT",
                   help="--table: where the syntheses run (docs/study.md, 'Running on a cluster')")
    p.add_argument("--cache-dir", default=None,
                   help="the cache root (default $RF8SIM_CACHE or build/cache under the working directory)")
    g = p.add_argument_group("timing and energy (OpenSTA + gate-level Icarus; docs/hdl.md)")
    g.add_argument("--timing", action="store_true", help="OpenSTA critical path, slack, fmax, area x delay")
    g.add_argument("--power", action="store_true", help="gate-level switching activity -> pJ/MAC, TOPS/W, TOPS/mm2")
    g.add_argument("--stream", action="append", metavar="minilm|random|gg:BETA",
                   help="operand stream for --power (repeatable; default: minilm and random)")
    g.add_argument("--clock-ns", type=float, default=10.0, help="stated clock period in ns (default 10)")
    g.add_argument("--beats", type=int, default=2000, help="gate-level beats per stream (default 2000)")
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
    from ..fileio import check_output_path, write_text
    from .mac import MacConfig
    from .verilog import generate_verilog, lint

    from .w8a16 import is_a16_request

    out = check_output_path(args.output, args.force)
    if is_a16_request(args.a_fmt, args.acc):
        return _verilog16(args, out)
    cfg = MacConfig.make(args.a_fmt, args.w_fmt, args.acc, args.lanes, args.result)
    text, latency = generate_verilog(cfg.a_fmt, cfg.w_fmt, cfg.acc, cfg.lanes, cfg.out, name=args.module)
    write_text(out, text, overwrite=args.force)  # atomic; exclusive unless --force (two writers cannot both win)
    d = cfg.describe()
    print(f"wrote {out}: {d['a_fmt']} x {d['w_fmt']}, acc {cfg.acc}, lanes {d['lanes']}, out {d['out']}, "
          f"latency {latency} clocks, product {d['product']}")
    if args.lint:
        lint(out)
        print("verilator --lint-only -Wall: clean (waivers in the file header)")
    return 0


def _verilog16(args, out) -> int:
    from .verilog import lint
    from .verilog16 import generate_verilog16
    from .w8a16 import A16Config

    cfg = A16Config.make(args.a_fmt, args.w_fmt, args.acc, args.lanes)
    text, latency = generate_verilog16(cfg.a.name, cfg.w.name, cfg.acc_text, cfg.lanes, name=args.module)
    from ..fileio import write_text

    write_text(out, text, overwrite=args.force)
    d = cfg.describe()
    print(f"wrote {out}: {d['w_fmt']} weights x {d['a_fmt']} activations, acc {d['acc']}, lanes {d['lanes']}, "
          f"latency {latency} clocks, product {d['product']}; out_acc is the float32 bit pattern")
    if args.lint:
        lint(out)
        print("verilator --lint-only -Wall: clean (waivers in the file header)")
    return 0


def _rtlsim16(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .sim16 import verify16

    from ..fileio import check_output_path

    if args.json:
        check_output_path(args.json, overwrite=args.force)
    s = verify16(args.a_fmt, args.w_fmt, args.acc, args.lanes, sweep=False if args.no_products else 64,
                 n_random=args.random, max_len=args.max_len, seed=args.seed, simulator=args.simulator,
                 model=args.model)
    c = s["config"]
    t = Table(title=f"rtlsim {c['w_fmt']} x {c['a_fmt']} acc {c['acc']} lanes {c['lanes']} on {s['simulator']}")
    for h in ("run", "beats", "products", "sequences", "model", "compared", "mismatched", "overflow beats",
              "invalid beats"):
        t.add_column(h, justify="right")
    for tag, r in s["runs"].items():
        for cmp in r["comparisons"]:
            t.add_row(tag, str(r["beats"]), str(r["products"]), str(r["sequences"]), cmp["model"],
                      str(cmp["compared_beats"]), str(cmp["mismatched_beats"]), str(r["overflow_beats"]),
                      str(r["invalid_beats"]))
    Console().print(t)
    return _record_and_status(args, {"kind": "verify_w8a16", **s})


def cmd_rtlsim(args) -> int:
    from .w8a16 import is_a16_request

    if is_a16_request(args.a_fmt, args.acc):
        return _rtlsim16(args)

    from rich.console import Console
    from rich.table import Table

    from ..fileio import check_output_path
    from .mac import HdlError
    from .sim import verify

    if args.random < 0 or args.max_len < 1:
        raise HdlError(f"--random must be >= 0 and --max-len >= 1 (got {args.random}, {args.max_len})")
    if args.json:
        check_output_path(args.json, overwrite=args.force)
    s = verify(args.a_fmt, args.w_fmt, args.acc, args.lanes, args.result, products=not args.no_products,
               n_random=args.random, max_len=args.max_len, seed=args.seed, simulator=args.simulator,
               model=args.model)
    c = s["config"]
    t = Table(title=f"rtlsim {c['a_fmt']} x {c['w_fmt']} acc {c['acc_frac_bits']}:{c['acc_width']} "
                    f"lanes {c['lanes']} out {c['out']} on {s['simulator']}")
    for h in ("run", "beats", "products", "sequences", "model", "compared", "mismatched", "overflow beats",
              "invalid beats", "beats/s"):
        t.add_column(h, justify="right")
    for tag, r in s["runs"].items():
        for cmp in r["comparisons"]:
            t.add_row(tag, str(r["beats"]), str(r["products"]), str(r["sequences"]), cmp["model"],
                      str(cmp["compared_beats"]), str(cmp["mismatched_beats"]), str(r["overflow_beats"]),
                      str(r["invalid_beats"]), f"{r['beats_per_s']:.0f}")
    Console().print(t)
    return _record_and_status(args, s)


def cmd_synth(args) -> int:
    from . import route_cli

    if route_cli.wants(args):
        return route_cli.run(args)
    args.liberty = route_cli.resolve_liberty(args) or args.liberty  # --tech sky130: its Liberty file
    if args.timing or args.power or args.stream or args.record or args.plot:
        from .ppa_cli import run_ppa_cli

        return run_ppa_cli(args)
    from .synth import run_cli

    return run_cli(args)


def _record_and_status(args, summary: dict) -> int:
    """Write ``--json`` (a results record), print the first mismatch of every failing comparison,
    and return the exit code (1 on any mismatch)."""
    if args.json:
        from .. import records

        records.write_record(args.json, summary, overwrite=args.force)
    if not summary["ok"]:
        for r in summary["runs"].values():
            for cmp in r["comparisons"]:
                if "first_mismatch" in cmp:
                    print("first mismatch:", cmp["first_mismatch"])
        return 1
    return 0
