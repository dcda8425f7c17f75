"""Golden-model subcommands: ``rf8sim encode``, ``rf8sim decode`` and ``rf8sim golden``.

* ``rf8sim encode 0.3 -1.7e-3 inf --fmt rf8 --rounding paper`` prints one row per value
  (the value as float32, its code, the code's bits and decoded value).  Values given on
  the command line are parsed by numpy as float32; ``--input x.npy`` reads an array
  (float32, or anything :func:`rf8sim.encode` accepts).  ``-o codes.npy`` writes the codes
  (uint8, same shape) and refuses to overwrite an existing file unless ``--force``.
* ``rf8sim decode 0x39 57 0b10111001 --fmt rf8`` (hex, decimal or binary codes) or
  ``--input codes.npy`` (uint8); ``-o values.npy`` writes float32.
* ``rf8sim golden --out golden`` writes the golden vectors (see rf8sim/golden/vectors.py).
  Files whose arrays are unchanged are left alone; if any would change it writes nothing,
  lists what differs and exits 2 unless ``--force``.  ``--check`` only verifies.
"""

from __future__ import annotations

import argparse
import os

__all__ = ["register"]

_PREVIEW = 64  # rows printed when the input comes from a file


def register(sub) -> None:
    p = sub.add_parser("encode", help="encode float values into codes of a format (canonical codes only)")
    p.add_argument("values", nargs="*",
                   help="values (parsed as float32; nan, inf, -inf allowed; put -- before negative values in "
                        "exponent notation, after the options: `rf8sim encode -r paper -- -1.7e-3`)")
    p.add_argument("--input", "-i", metavar="X.npy", help="read the values from a .npy file")
    p.add_argument("--fmt", "-f", default="rf8", help="format name (default rf8; see `rf8sim formats`)")
    p.add_argument("--format", dest="fmt", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # deprecated
    p.add_argument("--rounding", "-r", default="nearest", help="nearest (default), paper or truncate (RF8)")
    p.add_argument("--saturate", action="store_true",
                   help="clamp values beyond the range to +-max (the default of rf8, e4m3, e5m2, int8)")
    p.add_argument("--no-saturate", action="store_true",
                   help="do not clamp out-of-range values (RF8/int8: error; e4m3: NaN; e5m2/bf16/fp16: Inf; "
                        "the default of bf16 and fp16)")
    p.add_argument("--output", "-o", metavar="CODES.npy",
                   help="write the codes (uint8, or uint16 for 16-bit formats) to a .npy file")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="decode codes of a format into float32 values")
    p.add_argument("codes", nargs="*", help="codes: 0x39, 57 or 0b00111001")
    p.add_argument("--input", "-i", metavar="CODES.npy",
                   help="read codes (uint8, or uint16 for 16-bit formats) from a .npy file")
    p.add_argument("--fmt", "-f", default="rf8", help="format name (default rf8)")
    p.add_argument("--format", dest="fmt", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # deprecated
    p.add_argument("--output", "-o", metavar="VALUES.npy", help="write the values (float32) to a .npy file")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("golden", help="write (or --check) the golden vectors for the RTL and torch tests")
    p.add_argument("--out", default="golden", help="directory (default: golden)")
    p.add_argument("--force", action="store_true", help="overwrite files whose contents changed")
    p.add_argument("--check", action="store_true", help="only verify the directory against the model")
    p.set_defaults(func=cmd_golden)

    p = sub.add_parser("aligned-error", help="measure aligned:K:M against the fp32 accumulator on real MiniLM "
                                             "layers (bf16 x rf8) and record it")
    p.add_argument("--out", default=None, help="record file (default: golden/results/aligned_error.json)")
    p.add_argument("--sentences", type=int, default=16, help="real sentences in the forward pass (default 16)")
    p.add_argument("--rows", type=int, default=48, help="token rows per linear layer (default 48)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="overwrite the record")
    p.set_defaults(func=cmd_aligned_error)


def _err(msg: str):
    from ..cli import CLIError

    return CLIError(msg)


def _load_npy(path: str):
    import numpy as np

    from ..errors import InputFileError

    if not os.path.isfile(path):
        raise InputFileError(f"{path}: no such file" if not os.path.exists(path) else f"{path}: not a file")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:
        raise _err(f"{path}: not a readable .npy file ({e})") from None


def _save_npy(path: str, arr, force: bool) -> None:
    import numpy as np

    import io

    from ..infra.fileio import write_bytes

    if not path.endswith(".npy"):
        raise _err(f"--output {path!r} must end in .npy")
    buf = io.BytesIO()
    np.save(buf, arr)
    write_bytes(path, buf.getvalue(), overwrite=force)  # atomic; exclusive unless --force


def _print_rows(title, heads, rows, total):
    from rf8sim.infra.console import Console
    from rich.table import Table

    t = Table(title=title)
    for h in heads:
        t.add_column(h, justify="right")
    for r in rows:
        t.add_row(*r)
    c = Console()
    c.print(t)
    if total > len(rows):
        c.print(f"[dim]... {total - len(rows)} more (use -o to save all)[/]")


def _f(v) -> str:
    return f"{float(v):.9g}"


def cmd_encode(args) -> int:
    import numpy as np

    from .. import formats as F
    from .codec import decode, encode

    fmt = F.get(args.fmt)
    if bool(args.values) == bool(args.input):
        raise _err("give values on the command line or --input X.npy (exactly one of them)")
    if args.input:
        x = _load_npy(args.input)
    else:
        try:
            x = np.array([np.float32(v) for v in args.values], np.float32)
        except ValueError as e:
            raise _err(f"not a number: {e}") from None
    if args.no_saturate and args.saturate:
        raise _err("--saturate and --no-saturate contradict each other; give at most one")
    saturate = False if args.no_saturate else (True if args.saturate else None)
    codes = encode(x, fmt, rounding=args.rounding, saturate=saturate)
    if args.output:
        _save_npy(args.output, codes, args.force)
    if args.output and args.input:
        print(f"wrote {codes.size} {fmt.name} codes {codes.shape} to {args.output}")
        return 0
    xf = np.asarray(x).reshape(-1)[:_PREVIEW]
    cf = codes.reshape(-1)[:_PREVIEW]
    back = decode(cf, fmt)
    hw, bw = (fmt.code_bits + 3) // 4, fmt.code_bits
    rows = [(_f(np.float32(v)), f"0x{int(c):0{hw}X}", f"{int(c):0{bw}b}", _f(b)) for v, c, b in zip(xf, cf, back)]
    _print_rows(f"{fmt.name} encode ({args.rounding})", ("value (float32)", "code", "bits", "decoded"), rows,
                codes.size)
    if args.output:
        print(f"wrote {codes.size} codes to {args.output}")
    return 0


def _parse_code(s: str, fmt) -> int:
    try:
        v = int(s, 0)
    except ValueError:
        raise _err(f"{s!r} is not a code (use 0x39, 57 or 0b00111001)") from None
    if not 0 <= v < fmt.n_codes:
        raise _err(f"code {s} is outside 0..{fmt.n_codes - 1} ({fmt.name} has {fmt.code_bits}-bit codes)")
    return v


def cmd_decode(args) -> int:
    import numpy as np

    from .. import formats as F
    from .codec import decode

    fmt = F.get(args.fmt)
    if bool(args.codes) == bool(args.input):
        raise _err("give codes on the command line or --input CODES.npy (exactly one of them)")
    if args.input:
        codes = _load_npy(args.input)
        if codes.dtype != fmt.code_dtype:
            raise _err(f"{args.input}: {fmt.name} codes must be {fmt.code_dtype} ({fmt.code_bits}-bit codes), "
                       f"got {codes.dtype}")
    else:
        codes = np.array([_parse_code(s, fmt) for s in args.codes], fmt.code_dtype)
    vals = decode(codes, fmt)
    if args.output:
        _save_npy(args.output, vals, args.force)
        if args.input:
            print(f"wrote {vals.size} values {vals.shape} to {args.output}")
            return 0
    cf = codes.reshape(-1)[:_PREVIEW]
    vf = vals.reshape(-1)[:_PREVIEW]
    canon = fmt.is_canonical
    hw, bw = (fmt.code_bits + 3) // 4, fmt.code_bits
    rows = [(f"0x{int(c):0{hw}X}", f"{int(c):0{bw}b}", _f(v),
             "yes" if canon[c] else f"-> 0x{int(fmt.canonical[c]):0{hw}X}") for c, v in zip(cf, vf)]
    _print_rows(f"{fmt.name} decode", ("code", "bits", "value", "canonical"), rows, vals.size)
    return 0


def cmd_golden(args) -> int:
    from rf8sim.infra.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .vectors import GoldenMismatch, verify, write_golden

    from ..infra.fileio import check_output_dir

    console = Console()
    if not args.check:
        check_output_dir(args.out)
    if args.check:
        n = verify(args.out)
        console.print(f"golden vectors in {escape(args.out)}: {n} arrays agree with the model")
        return 0
    with console.status("generating golden vectors"):
        try:
            status = write_golden(args.out, force=args.force)
        except GoldenMismatch as e:
            raise _err(str(e)) from None
    t = Table(title=f"golden vectors in {escape(args.out)}")
    t.add_column("file")
    t.add_column("status")
    t.add_column("bytes", justify="right")
    total = 0
    for name, st in status:
        p = os.path.join(args.out, name)
        size = os.path.getsize(p) if os.path.exists(p) else 0
        total += size
        t.add_row(name, st, str(size))
    t.add_row("total", "", str(total))
    console.print(t)
    return 0


def cmd_aligned_error(args) -> int:
    from rf8sim.infra.console import Console

    from ..study.minilm.aligned_error import record_path, render_table, run

    if args.sentences < 1 or args.rows < 1:
        raise _err("--sentences and --rows must be >= 1")
    from ..infra import fileio
    from ..errors import OutputError

    out = args.out or record_path()
    try:
        fileio.check_output_path(out, args.force)  # before loading the model
    except OutputError as e:
        raise _err(str(e)) from None
    payload = run(out, args.sentences, args.rows, args.seed, overwrite=args.force)
    con = Console()
    con.print(render_table({"provenance": {}, **payload}))
    con.print(f"wrote {out} ({payload['wall_s']} s)")
    return 0
