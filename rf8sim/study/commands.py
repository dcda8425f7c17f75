"""Study subcommands: ``rf8sim demo``, ``rf8sim flow``, ``rf8sim study area-accuracy``, ``rf8sim study variants``
and ``rf8sim study cluster-scaling``."""

from __future__ import annotations

import json
from pathlib import Path

from ..infra.cliargs import add_record_args
from .common.config import resolve_config  # a path or a shipped config's name (stdlib-only module)


def register(sub) -> None:
    for name, hlp in (("flow", "the end-to-end co-design flow: RTL, verification, area, training, "
                               "bit-exact accuracy, report in build/report/"),
                      ("demo", "what `make demo` runs: `rf8sim flow` on the embedded default")):
        p = sub.add_parser(name, help=hlp)
        p.add_argument("--config", metavar="FILE.toml", help="flow configuration (default: the embedded one)")
        p.add_argument("--out", default="build/report", help="output folder (default: build/report)")
        p.add_argument("--skip-hdl", action="store_true",
                       help="skip Verilog generation, simulation and synthesis (reported as skipped)")
        p.add_argument("--quick", action="store_true", help="tiny settings for smoke tests")
        add_record_args(p, "also write the results as a provenance record (e.g. study/results/minilm-flow.json)",
                        "replace --out even if it was not written by rf8sim flow", progress="no progress bars")
        p.add_argument("--cache-dir", default=None,
                       help="the cache root (default $RF8SIM_CACHE or build/cache under the working directory)")
        p.add_argument("--cluster", default=None, metavar="local|auto|ray://HOST:PORT",
                       help="where the verification and synthesis tasks run (default local)")
        p.set_defaults(func=cmd_flow)

    p = sub.add_parser("study", help="design-space studies (accuracy vs area, RF8 variants)")
    ssub = p.add_subparsers(dest="study_command", metavar="STUDY")
    q = ssub.add_parser("area-accuracy", help="sweep formats x rounding x granularity x accumulator x lanes")
    q.add_argument("--config", required=True, metavar="FILE.toml",
                   help="study configuration; shipped ones: tiny, small, full (see docs/study.md)")
    q.add_argument("--out", help="output folder (default build/study/<name>)")
    q.add_argument("--workers", type=int, help="local parallel jobs (overrides [study] workers)")
    add_cluster_args(q)
    add_record_args(q, "also write the results as a provenance record (checked before the sweep; an existing file "
                       "needs --force)", "overwrite existing results in --out (and --record)", progress=True)
    q.set_defaults(func=cmd_area_accuracy)
    q = ssub.add_parser("variants", help="SQNR of RF8 variants and baselines on generalized Gaussian samples")
    q.add_argument("--shapes", default="0.5,0.75,1,1.5,2", help="GG shapes β (comma-separated)")
    q.add_argument("--formats", default="rf8,rf8m8,rf8m8lo,e4m3,e5m2,int8")
    q.add_argument("--n", type=int, default=1 << 16, help="samples per shape")
    q.add_argument("--block", type=int, default=32)
    q.add_argument("--csv", metavar="FILE", help="also write the rows as CSV")
    q.add_argument("--plot", metavar="FILE.png", help="also plot SQNR vs shape")
    add_record_args(q, "also write the rows as a provenance record (an existing file needs --force)",
                    "overwrite an existing --record file")
    q.set_defaults(func=cmd_variants)
    q = ssub.add_parser("zoo", help="the format zoo without RTL: SQNR (GG shapes, MiniLM weights), bits per "
                                     "weight, MiniLM cosine weight-only and W8A8 (docs/study.md)")
    q.add_argument("--formats", default=",".join(_zoo_formats()),
                   help="formats and block formats (default: the zoo; see `rf8sim formats`)")
    q.add_argument("--shapes", default="0.5,0.75,1,1.5,2", help="GG shapes β (comma-separated)")
    q.add_argument("--sentences", type=int, default=200, help="MiniLM sentences, weight-only (default 200)")
    q.add_argument("--w8a8-sentences", type=int, default=50,
                   help="MiniLM sentences through the bit-exact W8A8 datapath (default 50)")
    q.add_argument("--no-cosine", action="store_true", help="skip the MiniLM cosine (SQNR only)")
    q.add_argument("--reuse", metavar="RECORD.json", default=None,
                   help="take over the MiniLM cosine rows of an earlier zoo record measured with the same seed, "
                        "sentences and datapath where the format's quantized MiniLM weights are unchanged "
                        "(equal weight SQNR); each reused row names its record's commit")
    q.add_argument("--plot", metavar="FILE.png", help="also plot SQNR against bits per weight")
    add_record_args(q, "write the results as a provenance record (e.g. study/results/zoo.json)",
                    "overwrite an existing --record / --plot file", progress=True)
    q.set_defaults(func=cmd_zoo)
    q = ssub.add_parser("zoo-rtl", help="product stages of the zoo's 8-bit formats: exhaustive Icarus check "
                                         "against the golden model and osu018 area (docs/study.md)")
    q.add_argument("--pairs", default=None, help="A:W pairs, comma-separated (default: the zoo's)")
    add_record_args(q, "write the rows as a provenance record (e.g. study/results/zoo-rtl.json)")
    q.add_argument("--power", action="store_true",
                   help="also each product stage's pJ per product on the MiniLM operand stream (gate-level Icarus "
                        "+ OpenSTA, as `rf8sim synth --power`)")
    q.add_argument("--reuse", metavar="RECORD.json", default=None,
                   help="take over the rows of an earlier zoo-rtl record for the pairs it holds whose product-stage "
                        "Verilog is unchanged (each names its record's commit); measure the rest")
    q.set_defaults(func=cmd_zoo_rtl)
    q = ssub.add_parser("zoo-mac", help="whole-MAC area and energy (product stage + accumulator) of zoo units beside "
                                         "their product stage, on the MiniLM operand stream (docs/study.md)")
    q.add_argument("--pairs", default=None, help="A:W pairs, comma-separated (default: the W8A8 units and three "
                                                  "bf16 ones)")
    q.add_argument("--beats", type=int, default=None, help="beats of the MiniLM stream (default 2000)")
    add_record_args(q, "write the rows as a provenance record (e.g. study/results/zoo-mac.json)", progress=True)
    q.set_defaults(func=cmd_zoo_mac)
    q = ssub.add_parser("zoo-prove", help="yosys SAT proof of each zoo product stage against the format "
                                           "definitions, every code pair (docs/study.md)")
    q.add_argument("--pairs", default=None, help="A:W pairs, comma-separated (default: the zoo's)")
    q.add_argument("--whole-timeout", type=int, default=120,
                   help="seconds for the whole-space SAT problem before splitting per weight code (default 120)")
    q.add_argument("--split-timeout", type=int, default=600,
                   help="seconds for each fallback (SAT after abc -g AND; then per weight code) of one pair (default 600)")
    add_record_args(q, "write the rows as a provenance record (e.g. study/results/zoo-prove.json)")
    q.add_argument("--reuse", metavar="RECORD.json", default=None,
                   help="take over the proofs of an earlier zoo-prove record for the pairs it holds whose "
                        "product-stage Verilog is unchanged (each names its record's commit); prove the rest")
    q.set_defaults(func=cmd_zoo_prove)
    q = ssub.add_parser("zoo-tinylm", help="TinyLM bits per byte of the zoo's formats, weight-only PTQ of the "
                                            "flow's TinyLM (docs/study.md)")
    q.add_argument("--formats", default=",".join(_zoo_formats()),
                   help="formats and block formats (default: the zoo; see `rf8sim formats`)")
    q.add_argument("--config", default=None, help="study config whose [tinylm] is used (default: the flow's)")
    q.add_argument("--cache-dir", default=None, help="cache root for the trained TinyLM (default: build/cache)")
    add_record_args(q, "write the rows as a provenance record (e.g. study/results/zoo-tinylm.json)", progress=True)
    q.set_defaults(func=cmd_zoo_tinylm)
    q = ssub.add_parser("zoo-pareto", help="plot the zoo's accuracy against product-stage area and energy from the "
                                            "zoo, zoo-rtl and zoo-tinylm records")
    q.add_argument("--plot", metavar="FILE.png", required=True, help="the plot (e.g. docs/img/zoo_pareto_units.png)")
    add_record_args(q, None, "overwrite an existing plot")
    q.set_defaults(func=cmd_zoo_pareto)
    q = ssub.add_parser("cluster-scaling", help="time one sweep serially and on 1..N local Ray nodes (docs/study.md)")
    q.add_argument("--config", default="scale64", help="study configuration (default: scale64, 64 points)")
    q.add_argument("--nodes", default="1,2", help="local Ray node counts to measure (comma-separated)")
    add_record_args(q, "write the record here (with provenance)", required=True, progress=True)
    q.set_defaults(func=cmd_cluster_scaling)
    q = ssub.add_parser("tinylm", help="the flow's TinyLM stage alone: held-out bits per byte per config, bit-exact")
    q.add_argument("--config", default=None, metavar="FILE.toml", help="flow config with a [tinylm] section "
                   "(default: the embedded flow.toml)")
    add_record_args(q, "write the results as a provenance record (e.g. study/results/tinylm-flow.json)",
                    progress=True)
    q.add_argument("--cache-dir", default=None, help="the cache root (default $RF8SIM_CACHE or build/cache)")
    q.set_defaults(func=cmd_tinylm)
    from .tinylm.thesis import add_parser as _thesis_parser

    _thesis_parser(ssub)
    q = ssub.add_parser("record-time", help="turn a `/usr/bin/time -v` report of a run (make demo-record) "
                                            "into a record (README's measured demo time)")
    q.add_argument("time_file", metavar="TIME.txt", help="the report of `/usr/bin/time -v -o TIME.txt COMMAND`")
    add_record_args(q, "write the record here (with provenance)", required=True)
    q.add_argument("--what", default="make demo", help="what was timed, as the README names it")
    q.add_argument("--cache-empty", choices=("yes", "no"), default=None,
                   help="whether the cache root was empty when the run started (a fresh clone: yes)")
    q.add_argument("--budget-s", type=float, default=600.0, help="the run's time budget in seconds (default 600)")
    q.set_defaults(func=cmd_record_time)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def cmd_tinylm(args) -> int:
    from .tinylm.study import record_run

    if args.cache_dir:
        from ..infra import cache

        cache.set_root(args.cache_dir)
    cfg = resolve_config(args.config) if args.config else None
    return record_run(cfg, args.record, cache_dir=args.cache_dir, force=args.force, progress=not args.no_progress)


def add_cluster_args(p) -> None:
    """``--cluster`` and ``--cache-dir``, shared by the commands that fan out."""
    p.add_argument("--cluster", default=None, metavar="local|auto|ray://HOST:PORT",
                   help="where the jobs run: local (this machine; default), auto (the Ray cluster this "
                        "machine belongs to), ray://HOST:PORT (Ray Client) or HOST:PORT (GCS address)")
    p.add_argument("--cache-dir", default=None,
                   help="the cache root (default $RF8SIM_CACHE or build/cache under the working directory)")


def cmd_flow(args) -> int:
    from ..cli import CLIError
    from ..infra.fileio import check_output_dir
    from .flow.run import run_flow

    from ..infra import cache

    if args.cache_dir:
        cache.set_root(args.cache_dir)
    if args.quick and args.config:
        raise CLIError("--quick selects the embedded quick settings and cannot be combined with --config; "
                       "give a small configuration file instead (e.g. --config tiny)")
    check_output_dir(args.out)
    cfg = resolve_config(args.config) if args.config else None
    if args.record:
        from ..infra.fileio import check_output_path

        check_output_path(args.record, args.force)  # before the long work
    if args.cluster is not None:
        from ..infra import cluster as C

        spec = C.parse_cluster(args.cluster)
        if args.skip_hdl and spec != "local":
            raise CLIError(f"--cluster {args.cluster} places the verification and synthesis tasks, which "
                           "--skip-hdl skips; drop one of the two")
        if spec != "local":
            C.connect(spec)  # an unreachable address fails here, not after every stage ran
    def record(res):  # written before the summary is printed: nothing in the printing can lose the run
        from .flow.results import write_flow_record

        write_flow_record(args.record, res, res.state, overwrite=args.force)

    res = run_flow(cfg, args.out, skip_hdl=args.skip_hdl, force=args.force, progress=not args.no_progress,
                   cache_dir=args.cache_dir, quick=args.quick, cluster=args.cluster or "local",
                   before_print=record if args.record else None)
    if args.record:
        print(f"record: {args.record}")
    return res.exit_code


def cmd_area_accuracy(args) -> int:
    from pathlib import Path

    from rf8sim.infra.console import Console
    from rich.markup import escape

    from .mnist1d.area_accuracy import run_sweep
    from .common.report import print_table

    from ..infra import cache
    from ..infra.cluster import parse_cluster

    if args.cache_dir:
        cache.set_root(args.cache_dir)
    cluster = parse_cluster(args.cluster) if args.cluster is not None else None
    from ..infra.fileio import check_output_dir, safe_child

    cfg = resolve_config(args.config)
    out = Path(args.out) if args.out else safe_child(Path("build") / "study", cfg.study.name, "[study] name")
    check_output_dir(out)
    if args.workers is not None and args.workers < 1:
        from ..cli import CLIError

        raise CLIError(f"--workers must be >= 1, got {args.workers}")
    if args.workers is not None and parse_cluster(cluster or cfg.study.cluster) != "local":
        from ..cli import CLIError

        raise CLIError(f"--workers sets local processes; with --cluster {cluster or cfg.study.cluster} Ray places "
                       "the tasks, so drop --workers (or run locally)")
    if args.record:
        from ..infra.fileio import check_output_path

        check_output_path(args.record, args.force)  # before the long work
    from ..infra import records

    prov = records.provenance()  # the tree as it was when the sweep started
    console = Console()
    res = run_sweep(cfg, out, overwrite=args.force, progress=not args.no_progress, cache_dir=args.cache_dir,
                    console=console, workers=args.workers, cluster=cluster or cfg.study.cluster)
    record = None
    if args.record:  # the record first: nothing in the printing can lose it
        from .mnist1d.sweep_records import write_sweep_record

        record = write_sweep_record(args.record, cfg, res, prov, overwrite=args.force)
    front = sorted((r for r in res.rows if r["pareto"]), key=lambda r: (r["lanes"], r.get("area_um2") or 0))
    cost = "area_um2" if any(r.get("area_um2") is not None for r in res.rows) else "nand2_eq"
    print_table(front or res.rows, ["label", "accuracy", cost, "overflow_frac"],
                ["configuration", "accuracy", cost, "overflow frac"],
                title=f"{escape(cfg.study.name)}: " + ("Pareto front" if front else "all points (no area)"), console=console)
    if res.iso:
        print_table(res.iso, ["lanes", "format", "label", "accuracy", cost],
                    ["lanes", "format", "configuration", "accuracy", cost],
                    title=f"cheapest MAC within {cfg.study.tolerance:g} of {res.iso[0]['reference']:.4f}",
                    console=console)
    for s in res.skipped:
        console.print(f"[yellow]note: {escape(str(s))}[/]")
    console.print(f"{len(res.rows)} points in {res.timings.get('total_s', 0):.1f} s -> {escape(str(res.paths['csv']))}, "
                  f"{escape(str(res.paths['report']))}")
    if record:
        console.print(f"record: {escape(str(record))}")
    return 1 if any(r["error"] for r in res.rows) else 0


def _zoo_formats():
    from .zoo.study import ZOO_FORMATS

    return ZOO_FORMATS


def cmd_zoo(args) -> int:
    from .. import formats as F
    from ..infra import records
    from .. import scales as S
    from ..cli import CLIError
    from ..infra.fileio import check_output_path

    try:
        shapes = tuple(float(s) for s in args.shapes.split(",") if s.strip())
    except ValueError:
        raise CLIError(f"--shapes must be comma-separated numbers, got {args.shapes!r}") from None
    if not shapes or any(not 0.1 <= s <= 10 for s in shapes):
        raise CLIError(f"--shapes must be numbers in [0.1, 10], got {args.shapes!r}")
    fmts = tuple(f.strip().lower() for f in args.formats.split(",") if f.strip())
    F.register_rf8_variants()
    for f in fmts:
        if S.block_format(f) is None:
            F.check_role(f, "weight")  # one line naming the valid ones
    if args.sentences < 20 or args.w8a8_sentences < 1:
        raise CLIError("--sentences must be >= 20 and --w8a8-sentences >= 1")
    for path in (args.record, args.plot):
        if path:
            check_output_path(path, args.force)  # before the work
    old = None
    if args.reuse:
        from .zoo.report import load_zoo_record

        old = load_zoo_record(Path(args.reuse).absolute())  # read before the run: the same file may be the --record
    from .zoo.study import run_zoo

    prov = records.provenance()
    res = run_zoo(fmts, shapes, sentences=args.sentences, w8a8_sentences=args.w8a8_sentences,
                  cosine=not args.no_cosine, progress=not args.no_progress, reuse=old)
    record = None
    if args.record:  # the record first: nothing in the printing (or the plot) can lose it
        from .zoo.report import write_zoo_record

        record = write_zoo_record(args.record, res, prov, overwrite=args.force)
    for r in res["minilm_weights"]:
        print(f"{r['format']:>8}  {r['bits_per_weight']:6.3f} bits/weight  MiniLM weight SQNR {r['sqnr_db']:6.2f} dB")
    for r in res["minilm_cosine"]:
        print(f"{r['format']:>8}  {r['mode']:<11} 1 - cosine {r['loss']:.3e} [{r['loss_lo']:.3e}, {r['loss_hi']:.3e}]")
    if args.plot:
        from .zoo.report import plot_zoo

        plot_zoo(res, args.plot)
    if record:
        print(f"record: {record}")
    return 0


def _zoo_pairs(args):
    from .. import formats as F
    from ..cli import CLIError
    from ..hdl import MacSpec
    from .zoo.study import RTL_PAIRS

    F.register_rf8_variants()  # rf8m8 is one of the zoo's weight formats
    pairs = RTL_PAIRS
    if args.pairs:
        try:
            pairs = tuple(tuple(p.strip().split(":")) for p in args.pairs.split(",") if p.strip())
        except ValueError:
            raise CLIError(f"--pairs must be A:W pairs, got {args.pairs!r}") from None
        if not pairs or any(len(p) != 2 for p in pairs):
            raise CLIError(f"--pairs must be A:W pairs, e.g. e4m3:lns8, got {args.pairs!r}")
    for a, w in pairs:
        MacSpec.make(a=a, w=w, acc=None)  # one line naming what is valid, before the work
    return pairs


def _zoo_reuse(path, kind: str, pairs) -> dict:
    """{(a, w): row} of an earlier zoo-rtl / zoo-prove record ``path`` that this run takes over: the
    requested pairs it holds whose product stage generates the same Verilog as when it was recorded
    (``product_sha``; a row recorded before that field existed is taken as it is and says so).
    Each row names the record's commit, time and command (``reused_from``)."""
    if not path:
        return {}
    from ..infra.docgen import load_record
    from .zoo.study import product_sha

    rec = load_record(Path(path).absolute(), kind, f"rf8sim study {kind.split('-', 1)[1]} --record {path}")
    pv = rec.get("provenance", {})
    out = {}
    for r in rec.get("rows", []):
        p = (r["a"], r["w"])
        if p not in pairs or (kind == "rf8sim-zoo-prove" and not r.get("proved")):
            continue
        sha = product_sha(*p)
        if r.get("product_sha", sha) != sha:
            continue
        out[p] = {**r, "product_sha": sha,
                  "reused_from": r.get("reused_from") or {"commit": pv.get("commit") or "?", "utc": pv.get("utc"),
                                                          "command": pv.get("command"),
                                                          "product_sha_checked": "product_sha" in r}}
    return out


def cmd_zoo_prove(args) -> int:
    from ..infra import records
    from ..cli import CLIError
    from ..infra.fileio import check_output_path
    from ..infra.records import write_record
    from .zoo.study import rtl_proofs

    pairs = _zoo_pairs(args)
    if args.whole_timeout < 1 or args.split_timeout < 1:
        raise CLIError("--whole-timeout and --split-timeout must be >= 1 (seconds)")
    if args.record:
        check_output_path(args.record, args.force)
    old = _zoo_reuse(args.reuse, "rf8sim-zoo-prove", pairs)
    prov = records.provenance()
    requested = [f"{a}:{w}" for a, w in pairs]
    todo = [p for p in pairs if p not in old]

    def merged(rows):
        new = {(r["a"], r["w"]): r for r in rows}
        return [old.get(p) or new[p] for p in pairs if p in old or p in new]

    def save(rows, complete=False):  # after every pair: a run stopped early still leaves its proofs
        if args.record:
            return write_record(args.record, {"provenance": prov, "kind": "rf8sim-zoo-prove", "requested": requested,
                                              "complete": complete, "rows": merged(rows)}, overwrite=True)
        return None

    rows = merged(rtl_proofs(todo, args.whole_timeout, args.split_timeout, on_row=save))
    path = save([r for r in rows if not r.get("reused_from")], complete=True)
    if path:
        print(f"record: {path}")
    return 0 if all(r["proved"] or r["method"] is None for r in rows) else 1


def cmd_zoo_rtl(args) -> int:
    from ..cli import CLIError
    from ..infra import records
    from ..infra.fileio import check_output_path
    from ..infra.records import write_record
    from .zoo.study import rtl_products

    pairs = _zoo_pairs(args)
    if args.record:
        check_output_path(args.record, args.force)
    old = _zoo_reuse(args.reuse, "rf8sim-zoo-rtl", pairs)
    if args.power and any("pj_per_mac" not in r for r in old.values()):
        raise CLIError(f"--reuse {args.reuse}: its rows have no energy (it was run without --power)")
    prov = records.provenance()
    new = {(r["a"], r["w"]): r for r in rtl_products([p for p in pairs if p not in old], power=args.power)}
    rows = [old.get(p) or new[p] for p in pairs]
    if args.record:
        path = write_record(args.record, {"provenance": prov, "kind": "rf8sim-zoo-rtl", "rows": rows},
                            overwrite=args.force)
        print(f"record: {path}")
    return 0 if all(r["ok"] for r in rows) else 1


def cmd_zoo_mac(args) -> int:
    from ..cli import CLIError
    from ..hdl.mac import narrow_unit_error
    from ..infra import records
    from ..infra.fileio import check_output_path
    from ..infra.records import write_record
    from .zoo.study import MAC_PAIRS, POWER_BEATS, rtl_macs

    if args.pairs is None:
        args.pairs = ",".join(f"{a}:{w}" for a, w in MAC_PAIRS)
    pairs = _zoo_pairs(args)
    from ..hdl import MacSpec

    for a, w in pairs:
        narrow_unit_error(MacSpec.make(a=a, w=w, acc=None))  # 4-bit codes: no whole unit, one line
    beats = POWER_BEATS if args.beats is None else args.beats
    if beats < 1:
        raise CLIError(f"--beats must be >= 1, got {beats}")
    if args.record:
        check_output_path(args.record, args.force)
    prov = records.provenance()
    rows = rtl_macs(pairs, beats=beats, progress=not args.no_progress)
    if args.record:
        path = write_record(args.record, {"provenance": prov, "kind": "rf8sim-zoo-mac", "rows": rows},
                            overwrite=args.force)
        print(f"record: {path}")
    return 0


def _check_formats(text: str) -> tuple:
    from .. import formats as F
    from .. import scales as S

    fmts = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    F.register_rf8_variants()
    for f in fmts:
        if S.block_format(f) is None:
            F.check_role(f, "weight")  # one line naming the valid ones
    return fmts


def cmd_zoo_tinylm(args) -> int:
    from ..infra import records
    from ..infra.fileio import check_output_path
    from ..infra.records import write_record
    from .zoo.pareto import TINYLM_KIND, tinylm_bpb

    fmts = _check_formats(args.formats)
    if args.record:
        check_output_path(args.record, args.force)
    prov = records.provenance()
    res = tinylm_bpb(fmts, args.config, cache_dir=args.cache_dir, progress=not args.no_progress)
    if args.record:
        path = write_record(args.record, {"provenance": prov, "kind": TINYLM_KIND, **res}, overwrite=args.force)
        print(f"record: {path}")
    return 0


def cmd_zoo_pareto(args) -> int:
    from ..infra.fileio import check_output_path
    from .zoo.pareto import plot_pareto

    check_output_path(args.plot, args.force)
    print(f"plot: {plot_pareto(args.plot)}")
    return 0


def cmd_variants(args) -> int:
    from rf8sim.infra.console import Console

    from ..cli import CLIError
    from .common.report import plot_error_vs_shape, print_table, write_csv
    from .mnist1d.variants import error_vs_shape

    try:
        shapes = tuple(float(s) for s in args.shapes.split(",") if s.strip())
    except ValueError:
        raise CLIError(f"--shapes must be comma-separated numbers, got {args.shapes!r}") from None
    if not shapes or any(not 0.1 <= s <= 10 for s in shapes):
        raise CLIError(f"--shapes must be numbers in [0.1, 10], got {args.shapes!r}")
    fmts = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    if args.block < 1 or args.n < args.block:
        raise CLIError(f"--block must be >= 1 and --n >= --block (got --n {args.n}, --block {args.block})")
    if args.record:
        from ..infra.fileio import check_output_path

        check_output_path(args.record, args.force)  # before the work
    from ..infra import records

    prov = records.provenance()
    params = {"shapes": list(shapes), "formats": list(fmts), "roundings": ["nearest", "paper", "truncate"],
              "n": args.n, "block": args.block, "rows": max(1, args.n // (args.block * 32))}
    rows = error_vs_shape(formats=fmts, shapes=shapes, roundings=("nearest", "paper", "truncate"),
                          n=args.n, block=args.block, rows=max(1, args.n // (args.block * 32)))
    record = None
    if args.record:  # the record first: nothing in the printing can lose it
        from .mnist1d.sweep_records import write_variants_record

        record = write_variants_record(args.record, params, rows, prov, overwrite=args.force)
    if args.csv:
        write_csv(rows, args.csv)
    print_table(rows, ["format", "rounding", "granularity", "shape", "sqnr_db", "zero_frac"],
                ["format", "rounding", "granularity", "GG β", "SQNR dB", "→0 frac"], title="error vs GG shape",
                console=Console())
    if args.plot:
        plot_error_vs_shape(rows, args.plot, title="SQNR vs generalized Gaussian shape")
    if record:
        print(f"record: {record}")
    return 0


def cmd_cluster_scaling(args) -> int:
    from rf8sim.infra.console import Console

    from ..infra import fileio, records
    from ..cli import CLIError
    from .mnist1d.cluster_scaling import measure, render_table

    try:
        nodes = tuple(int(n) for n in args.nodes.split(",") if n.strip())
    except ValueError:
        raise CLIError(f"--nodes must be comma-separated positive integers, got {args.nodes!r}") from None
    if not nodes or any(n < 1 for n in nodes):
        raise CLIError(f"--nodes must be comma-separated positive integers, got {args.nodes!r}")
    fileio.check_output_path(args.record, overwrite=args.force)
    console = Console()
    payload = measure(args.config, nodes, progress=not args.no_progress, console=console)
    path = records.write_record(args.record, payload, overwrite=args.force)
    console.print(render_table(json.loads(path.read_text())))
    console.print(f"record: {path}")
    return 0 if all(r["identical_to_serial"] for r in payload["runs"]) else 1


def cmd_record_time(args) -> int:
    from .flow.demotime import render_demo_time, write_time_record

    cache = None if args.cache_empty is None else args.cache_empty == "yes"
    path = write_time_record(args.time_file, args.record, what=args.what, cache_empty=cache, overwrite=args.force,
                             budget_s=args.budget_s)
    rec = json.loads(path.read_text())
    print(f"record: {path}: {rec['what']} {rec['wall_s']:.0f} s wall, exit status {rec['exit_status']}")
    if path.resolve() == (Path(__file__).resolve().parents[2] / "study" / "results" / "demo-time.json"):
        print(render_demo_time(), end="")
    return 0
