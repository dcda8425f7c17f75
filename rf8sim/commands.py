"""Format subcommands: ``rf8sim formats`` and ``rf8sim table FORMAT``."""

from __future__ import annotations


#: ``rf8sim table`` prints every code of formats this small, and only this many codes of wider ones
#: unless ``--range`` or ``--all`` says otherwise.
_TABLE_ALL = 256


def register(sub) -> None:
    p = sub.add_parser("formats", help="one row per format: fields, bias, range, code usage")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_formats)

    p = sub.add_parser("table", help="the codes of a format: hex, bits, value, canonical")
    p.add_argument("format", help="format name (see `rf8sim formats`)")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    p.add_argument("--range", metavar="LO:HI", dest="code_range",
                   help="only codes LO..HI-1 (hex or decimal, e.g. 0x3F80:0x3FA0); default: every code of "
                        f"formats of up to {_TABLE_ALL} codes, the first {_TABLE_ALL} otherwise")
    p.add_argument("--all", action="store_true", help="every code, however many (65,536 for bf16/fp16)")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("docs", help="regenerate the generated tables in README.md and docs/*.md from their records")
    p.add_argument("--check", action="store_true",
                   help="change nothing; exit 1 and name every block that differs from its record's render")
    p.add_argument("files", nargs="*", help="markdown files (default: README.md and docs/*.md of the checkout)")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("bench", help="benchmarks of every part, as ratios against same-run baselines")
    p.add_argument("--only", default="golden,hdl,training", help="comma-separated parts (default: all)")
    p.add_argument("--quick", action="store_true", help="small sizes, for smoke testing")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON (a record, like --record)")
    p.add_argument("--record", metavar="FILE",
                   help="write the rows as a record (machine, versions, command, commit, dirty flag, diff hash); "
                        "results/bench.json is the one README's table is generated from")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json/--record file")
    p.set_defaults(func=cmd_bench)


def cmd_formats(args) -> int:
    import json

    from rf8sim.infra.console import Console
    from rich.table import Table

    from . import formats as F

    rows = [F.get(n).summary() for n in F.names()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    t = Table(title="rf8sim formats")
    cols = ["name", "bits", "fields", "bias", "max", "min_positive", "distinct_values", "distinct_magnitudes",
            "canonical_codes", "duplicate_codes", "nan_codes", "inf_codes", "roundings"]
    heads = ["format", "bits", "fields", "bias", "max", "min > 0", "distinct values", "distinct |v|",
             "canonical", "duplicate", "NaN", "Inf", "roundings"]
    for h in heads:
        t.add_column(h, justify="right" if h not in ("format", "fields", "roundings") else "left")
    for r in rows:
        t.add_row(*[_fmt(r[c]) for c in cols])
    Console().print(t)
    return 0


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.10g}"
    return str(v)


def cmd_table(args) -> int:
    from rf8sim.infra.console import Console
    from rich.table import Table

    from . import formats as F

    fmt = F.get(args.format)
    lo, hi = _code_range(args, fmt)
    canon = fmt.is_canonical
    hw, bw = (fmt.code_bits + 3) // 4, fmt.code_bits
    rows = []
    for c in range(lo, hi):
        sp = int(fmt.special[c])
        note = {F.SPECIAL_NAN: "NaN", F.SPECIAL_INF: "Inf"}.get(sp, "")
        if sp == F.SPECIAL_FINITE and not canon[c]:
            note = f"duplicate of 0x{int(fmt.canonical[c]):0{hw}X}"
        rows.append((f"0x{c:0{hw}X}", f"{c:0{bw}b}", _fmt(float(fmt.values[c])), "yes" if canon[c] else "no", note))
    if args.csv:
        print("code,bits,value,canonical,note")
        for r in rows:
            print(",".join(r))
        _note_partial(args, fmt, lo, hi)
        return 0
    shown = "" if (lo, hi) == (0, fmt.n_codes) else f" (codes 0x{lo:0{hw}X}..0x{hi - 1:0{hw}X} of {fmt.n_codes})"
    t = Table(title=f"{fmt.name}: {fmt.description}{shown}")
    for h in ("code", "bits", "value", "canonical", "note"):
        t.add_column(h)
    for r in rows:
        t.add_row(*r)
    Console().print(t)
    _note_partial(args, fmt, lo, hi)
    return 0


def _note_partial(args, fmt, lo, hi) -> None:
    if not args.code_range and not args.all and hi - lo < fmt.n_codes:
        import sys

        print(f"showing the first {hi - lo} of {fmt.n_codes} codes; use --range LO:HI or --all", file=sys.stderr)


def _code_range(args, fmt) -> tuple[int, int]:
    from .cli import CLIError

    if args.code_range and args.all:
        raise CLIError("--range and --all contradict each other; give at most one")
    if args.all:
        return 0, fmt.n_codes
    if not args.code_range:
        return 0, min(fmt.n_codes, _TABLE_ALL)
    parts = args.code_range.split(":")
    try:
        lo, hi = (int(p, 0) for p in parts)
    except ValueError:
        raise CLIError(f"--range {args.code_range!r} is not LO:HI (two integers, e.g. 0x3F80:0x3FA0)") from None
    if not 0 <= lo < hi <= fmt.n_codes:
        raise CLIError(f"--range {args.code_range}: need 0 <= LO < HI <= {fmt.n_codes} ({fmt.name} has "
                       f"{fmt.n_codes} codes)")
    return lo, hi


def cmd_docs(args) -> int:
    from pathlib import Path

    from rf8sim.infra.console import Console
    from rich.markup import escape

    from .infra import docgen

    console = Console()
    files = [Path(f) for f in args.files] or docgen.doc_files()
    stale = changed = 0
    for f in files:
        if not f.is_file():
            raise docgen.DocgenError(f"{f} is not a file")
        if args.check:
            bad = docgen.check_file(f)
            stale += len(bad)
            for key in bad:
                console.print(f"[red]stale[/]: {escape(str(f))} block {escape(key)} differs from its record "
                              "(run `rf8sim docs`)")
        elif docgen.update_file(f):
            changed += 1
            console.print(f"updated {escape(str(f))}")
    n = sum(len(docgen.blocks(f.read_text())) for f in files)
    console.print(f"{n} generated blocks in {len(files)} files; "
                  + (f"{stale} stale" if args.check else f"{changed} files rewritten"))
    return 1 if stale else 0


def cmd_bench(args) -> int:
    from .bench import PARTS, run

    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad:
        from .cli import CLIError

        raise CLIError(f"unknown bench part(s) {bad}; valid: {', '.join(PARTS)}")
    run(parts, quick=args.quick, json_out=args.json, record=args.record, force=args.force)
    return 0
