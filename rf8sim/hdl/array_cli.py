"""``rf8sim array`` and its subcommands (generate / schedule / simulate, plus those of other parts).

The subcommands are collected like the top-level ones: each module in
:data:`ARRAY_COMMAND_MODULES` has ``register_array(array_subparsers)``; a module that is not
there yet is skipped.  :func:`config_args` / :func:`config_from_args` are the shared array options.
"""

from __future__ import annotations

import importlib

__all__ = ["register", "config_args", "config_from_args", "parse_size", "ARRAY_COMMAND_MODULES"]

#: Modules adding ``rf8sim array`` subcommands (this one first; the costing part adds its own).
ARRAY_COMMAND_MODULES = ("rf8sim.hdl.array_cli", "rf8sim.hdl.array_cost_cli")


def parse_size(text: str) -> tuple[int, int]:
    """``"RxC"`` -> (R, C) (:func:`rf8sim.hdl.array.parse_size`, imported when called: the CLI starts fast)."""
    from .array import parse_size as parse

    return parse(text)


def config_args(p) -> None:
    p.add_argument("--a-fmt", default="rf8", help="activation format: 8-bit (rf8, e4m3, e5m2, int8) with a "
                   "fixed-point accumulator, or bf16/fp16 with aligned:K:M or fp32 (default rf8)")
    p.add_argument("--w-fmt", default="rf8", help="weight format (default rf8)")
    p.add_argument("--acc", default="exact", help="accumulator: exact[:TERMS] or FRAC:WIDTH (8-bit activations), "
                   "aligned:K:M (bf16/fp16; R must divide K) or fp32 (bf16/fp16: a float32 partial sum down each "
                   "column, the float baseline); default exact (aligned:32:16 for bf16/fp16)")
    p.add_argument("--size", default="4x4", help="rows x columns, RxC (default 4x4)")
    p.add_argument("--rows", type=int, default=None, help="rows R (with --cols: the same as --size RxC, the "
                   "spelling of the generated Verilog's regenerate line)")
    p.add_argument("--cols", type=int, default=None, help="columns C (with --rows)")
    p.add_argument("--depth", type=int, default=None,
                   help="accumulator entries per column = activation vectors per weight tile "
                        "(default: the smallest power of two >= max(16, 2R + C - 2), which hides weight reloads)")
    p.add_argument("--pe-stages", type=int, default=1, choices=(1, 2),
                   help="PE pipeline: 1 = product and add in one clock, 2 = product registered (default 1)")
    p.add_argument("--edge-stages", type=int, default=0, choices=(0, 1),
                   help="aligned arrays: 1 = each column's block sum registered at a block's end and added to "
                        "the fp32 accumulator one clock later (the fp32 adder gets its own clock and switches "
                        "only when a block ends); 0 = both in one clock (default 0)")


def config_from_args(args):
    from .array import ArrayConfig

    rows, cols = getattr(args, "rows", None), getattr(args, "cols", None)
    if (rows is None) != (cols is None):
        from .spec import HdlError

        raise HdlError("--rows and --cols go together (or use --size RxC)")
    R, C = parse_size(args.size if rows is None else f"{rows}x{cols}")
    acc = args.acc
    from .spec import float_activation_formats

    if acc == "exact" and str(args.a_fmt).lower() in float_activation_formats():
        acc = "aligned:32:16"
    return ArrayConfig.make(args.a_fmt, args.w_fmt, acc, R, C, args.depth, args.pe_stages,
                            getattr(args, "edge_stages", 0))


def register(sub) -> None:
    """Add ``rf8sim array`` to the top-level subparsers (called from :mod:`rf8sim.hdl.commands`)."""
    p = sub.add_parser("array", help="weight-stationary PE arrays: generate Verilog, schedule a GEMM, simulate "
                                     "it cycle-accurately against the golden model")
    asub = p.add_subparsers(dest="array_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    for name in ARRAY_COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and (e.name == name or name.startswith(e.name + ".")):
                continue
            raise
        mod.register_array(asub)


def register_array(asub) -> None:
    """generate / schedule / simulate."""
    p = asub.add_parser("generate", help="write the array as Verilog-2005 (ports in the file header, docs/hdl.md)")
    config_args(p)
    p.add_argument("-o", "--output", required=True, help="output .v file")
    p.add_argument("--module", help="Verilog module name (default encodes the configuration)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--lint", action="store_true", help="also run verilator --lint-only -Wall on the result")
    p.set_defaults(func=cmd_generate)

    p = asub.add_parser("schedule", help="tile an M x K x N GEMM onto the array: cycles, utilization, reloads")
    config_args(p)
    _shape_args(p)
    p.set_defaults(func=cmd_schedule)

    p = asub.add_parser("simulate", help="run a GEMM cycle-accurately on the generated array and compare every "
                                         "output bit for bit with rf8sim.golden.gemm")
    config_args(p)
    _shape_args(p)
    p.add_argument("--operands", default="random", choices=("random", "edge"),
                   help="random codes, or edge-heavy ones (largest magnitudes, NaN/Inf, subnormals, zero blocks)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--simulator", default="icarus", choices=("icarus", "verilator"))
    p.add_argument("--json", metavar="FILE", help="also write the report as a record")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.set_defaults(func=cmd_simulate)

    p = asub.add_parser("verify-minilm", help="every Linear of all-MiniLM-L6-v2 on real sentences through the "
                                              "array, cycle-accurately, vs golden and torch (counted)")
    config_args(p)
    p.set_defaults(a_fmt="bf16", acc="aligned:32:16", size="8x8")
    p.add_argument("--sentences", type=int, default=8, help="real sentences (every token is used; default 8)")
    p.add_argument("--layer", action="append", metavar="NAME",
                   help="only this Linear (repeatable), e.g. encoder.layer.0.attention.self.query")
    p.add_argument("--simulator", default="verilator", choices=("icarus", "verilator"))
    p.add_argument("--record", metavar="FILE", help="write the report as a record (e.g. "
                                                     "hdl/results/array-minilm-bf16xrf8-aligned-32-16-8x8.json)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --record file")
    p.set_defaults(func=cmd_verify_minilm)

    p = asub.add_parser("bench", help="wall-clock of one real MiniLM Linear (384 -> 1536, 128 tokens) through "
                                      "the array cycle-accurately (goal <= 60 s on 8x8)")
    config_args(p)
    p.set_defaults(a_fmt="bf16", acc="aligned:32:16", size="8x8")
    p.add_argument("--layer", default="encoder.layer.0.intermediate.dense")
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--simulator", default="verilator", choices=("icarus", "verilator"))
    p.add_argument("--record", metavar="FILE", help="write the result as a record (e.g. hdl/results/array-bench.json)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --record file")
    p.set_defaults(func=cmd_bench)


def _shape_args(p) -> None:
    p.add_argument("--m", type=int, default=16, help="GEMM M (activation vectors, e.g. tokens; default 16)")
    p.add_argument("--k", type=int, default=32, help="GEMM K (inputs; a multiple of R and of the block; default 32)")
    p.add_argument("--n", type=int, default=16, help="GEMM N (outputs; a multiple of C; default 16)")


def cmd_generate(args) -> int:
    from ..infra.fileio import check_output_path, write_text
    from .array import generate_array_verilog
    from .verilog import lint

    cfg = config_from_args(args)
    out = check_output_path(args.output, args.force)
    text, cfg = generate_array_verilog(cfg, name=args.module)
    write_text(out, text, overwrite=args.force)
    d = cfg.describe()
    print(f"wrote {out}: {d['rows']}x{d['cols']} array, {d['a_fmt']} x {d['w_fmt']}, acc {d['acc']} "
          f"(golden order {d['golden_acc']}), depth {d['depth']}, pe_stages {d['pe_stages']}, "
          + (f"edge_stages {d['edge_stages']}, " if d.get("edge_stages") else "") +
          f"latency {d['latency']} clocks")
    if args.lint:
        lint(out)
        print("verilator --lint-only -Wall: clean (waivers in the file header)")
    return 0


def _schedule(cfg, args):
    from .schedule import plan

    return plan(args.m, args.k, args.n, cfg.rows, cfg.cols, cfg.depth,
                cfg.acc.block if cfg.kind == "aligned" else None, cfg.latency)


def cmd_schedule(args) -> int:
    cfg = config_from_args(args)
    s = _schedule(cfg, args).summary()
    print(f"{s['M']}x{s['K']}x{s['N']} on {s['rows']}x{s['cols']} (depth {s['depth']}): {s['cycles']:,} cycles, "
          f"utilization {s['utilization']:.1%}, {s['tiles']:,} weight tiles (loads), "
          f"{s['stall_cycles']:,} stall + {s['fill_drain_cycles']:,} fill/drain cycles, {s['macs']:,} MACs")
    return 0


def cmd_simulate(args) -> int:
    from ..infra.fileio import check_output_path
    from .arraysim import operands, verify_gemm

    cfg = config_from_args(args)
    if args.json:
        check_output_path(args.json, overwrite=args.force)
    _schedule(cfg, args)  # shape errors before any build
    a, w = operands(cfg, args.m, args.k, args.n, args.operands, args.seed)
    rep = verify_gemm(cfg, a, w, args.simulator, tag=f"cli-{args.operands}-{args.seed}")
    s = rep["schedule"]
    print(f"{cfg.module_name()} on {args.simulator}: {s['M']}x{s['K']}x{s['N']} ({args.operands} operands, seed "
          f"{args.seed}), {rep['sim_cycles']:,} cycles, utilization {s['utilization']:.1%}; "
          f"{rep['outputs']:,} outputs ({rep['compared']:,} values incl. flags) vs golden {cfg.golden_acc()}: "
          f"{rep['mismatches']} mismatches ({rep['overflowed']} overflowed, {rep['invalid']} invalid); "
          f"simulation {rep['sim_s']:.2f} s")
    if args.json:
        from ..infra import records

        records.write_record(args.json, {"kind": "array_simulate", "config": cfg.describe(), "operands": args.operands,
                                         "seed": args.seed, **rep}, overwrite=args.force)
    return 0 if rep["mismatches"] == 0 else 1


def cmd_verify_minilm(args) -> int:
    from ..infra.fileio import check_output_path
    from ..verify_array import verify_minilm

    if args.record:
        check_output_path(args.record, overwrite=args.force)
    from ..infra import records

    prov = records.provenance()
    rep = verify_minilm(args.size, args.a_fmt, args.w_fmt, args.acc, args.sentences, args.simulator, args.layer,
                        args.depth, progress=lambda s: print(s, flush=True), pe_stages=args.pe_stages,
                        edge_stages=args.edge_stages)
    t = rep["totals"]
    print(f"{len(rep['layers'])} layers, {rep['tokens']} tokens of {rep['sentences']} sentences: {t['outputs']:,} "
          f"outputs ({t['compared']:,} values), {t['golden_mismatches']} mismatches vs golden, "
          f"{t['torch_mismatches']} vs torch ({t['torch_compared']:,} values); {t['cycles']:,} array cycles")
    if args.record:
        records.write_record(args.record, {"provenance": prov, **rep}, overwrite=args.force)
        print(f"wrote {args.record}")
    return 0 if rep["ok"] else 1


def cmd_bench(args) -> int:
    from ..infra import records
    from ..infra.fileio import check_output_path
    from ..verify_array import bench_layer

    if args.record:
        check_output_path(args.record, overwrite=args.force)
    prov = records.provenance()
    r = bench_layer(args.size, args.a_fmt, args.w_fmt, args.acc, args.layer, args.tokens, args.simulator,
                    depth=args.depth, pe_stages=args.pe_stages, edge_stages=args.edge_stages)
    print(f"{r['layer']} {r['M']}x{r['K']}x{r['N']} on {args.size} ({args.simulator}): {r['wall_s']:.1f} s wall "
          f"(simulation {r['sim_s']:.1f} s, {r['cycles']:,} cycles, {r['cycles_per_s']:,.0f} cycles/s; goal <= 60 s: "
          f"{'met' if r['met'] else 'missed'}); {r['outputs']:,} outputs, {r['mismatches']} mismatches vs golden")
    if args.record:
        records.write_record(args.record, {"provenance": prov, **r}, overwrite=args.force)
        print(f"wrote {args.record}")
    return 0 if r["mismatches"] == 0 else 1
