"""``python -m rf8sim.training.gpu_check --out FILE``: the torch emulation on CUDA.

1. Bit-exactness: encode (every format, rounding and saturation mode) and
   fake_quant / quantize (every granularity) on the GPU against the CPU path
   (which the test suite proves identical to the Numba golden model), on
   >= 10**7 float32 values per mode; counts printed.
2. The training benchmarks (:mod:`rf8sim.training.bench`) on the GPU.

Needs only torch, numpy, rich (no Numba, no rf8sim.golden).  Writes JSON to
``--out`` after each section, so a timeout still leaves the finished parts.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np
import torch

MODES = ([("rf8", r, True) for r in ("nearest", "paper", "truncate")]
         + [(f, "nearest", s) for f in ("e4m3", "e5m2") for s in (True, False)] + [("int8", "nearest", True)])


def _values(n: int, seed: int) -> torch.Tensor:
    """Random bit patterns (every exponent) and values spread over every format's range, finite."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**32, n // 2, dtype=np.uint64).astype(np.uint32).view(np.float32)
    bits = np.where(np.isfinite(bits), bits, np.float32(0))
    spread = (rng.standard_normal(n - n // 2) * np.exp2(rng.uniform(-24, 20, n - n // 2))).astype(np.float32)
    return torch.from_numpy(np.concatenate([bits, spread]))


def exactness(device: str, n_per_mode: int, chunk: int = 1 << 22, n_rows: int = 1024) -> list[dict]:
    from .quant import encode, fake_quant, quantize

    rows = []
    for i, (fmt, rnd, sat) in enumerate(MODES):
        t0 = time.perf_counter()
        cnt = bad = 0
        for c in range(0, n_per_mode, chunk):
            x = _values(min(chunk, n_per_mode - c), 1000 * i + c // chunk)
            a = encode(x, fmt, rnd, sat)
            b = encode(x.to(device), fmt, rnd, sat).cpu()
            cnt += x.numel()
            bad += int((a != b).sum())
        rows.append({"check": f"encode {fmt} {rnd} saturate={sat}", "compared": cnt, "mismatches": bad,
                     "seconds": time.perf_counter() - t0})
    g = torch.Generator().manual_seed(5)
    for fmt, rnd, _ in [m for m in MODES if m[2]]:
        for gran in ("tensor", "channel", "ceil", "mx"):
            t0 = time.perf_counter()
            x = torch.randn(n_rows, 1000, generator=g) * torch.exp2(torch.randint(-30, 30, (n_rows, 1), generator=g).float())
            ca, ka = quantize(x, fmt, rnd, gran, 32)
            cb, kb = quantize(x.to(device), fmt, rnd, gran, 32)
            fa = fake_quant(x, fmt, rnd, gran, 32)
            fb = fake_quant(x.to(device), fmt, rnd, gran, 32).cpu()
            bad = int((ca != cb.cpu()).sum()) + int((ka != kb.cpu()).sum())
            bad += int((fa.view(torch.int32) != fb.view(torch.int32)).sum())
            rows.append({"check": f"quantize+fake_quant {fmt} {rnd} {gran}", "compared": 2 * x.numel() + ka.numel(),
                         "mismatches": bad, "seconds": time.perf_counter() - t0})
    rows += w8a16_exactness(device, n_rows)
    return rows


def w8a16_exactness(device: str, n_rows: int = 1024) -> list[dict]:
    """gemm (bf16 activations, fp32 and aligned accumulators) on ``device`` vs the CPU path."""
    from .gemm import gemm
    from .quant import encode, quantize

    rows = []
    g = torch.Generator().manual_seed(9)
    m = max(4, n_rows // 16)
    x = torch.randn(m, 512, generator=g) * torch.exp2(torch.randint(-20, 20, (m, 1), generator=g).float())
    w = torch.randn(96, 512, generator=g) / 16
    a = encode(x, "bf16")
    for w_fmt in ("rf8", "e4m3", "int8"):
        wc, wk = quantize(w, w_fmt, "nearest", "channel")
        for acc in ("fp32", "aligned:32:16"):
            t0 = time.perf_counter()
            ra = gemm(a, wc, "bf16", w_fmt, acc, w_scale_exp=wk, w_granularity="channel")
            rb = gemm(a.to(device), wc.to(device), "bf16", w_fmt, acc, w_scale_exp=wk.to(device),
                      w_granularity="channel")
            bad = int((ra.bits != rb.bits.cpu()).sum()) + int((ra.overflow != rb.overflow.cpu()).sum())
            bad += int((ra.invalid != rb.invalid.cpu()).sum())
            rows.append({"check": f"gemm16 bf16 x {w_fmt} {acc}", "compared": 3 * ra.bits.numel(),
                         "mismatches": bad, "seconds": time.perf_counter() - t0})
    return rows


def main(argv=None) -> int:
    from rf8sim.infra.console import Console
    from rich.markup import escape
    from rich.table import Table

    p = argparse.ArgumentParser(prog="python -m rf8sim.training.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="JSON output path (a record: provenance with commit and dirty flag)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.add_argument("--device", default="cuda", help="device to check (default cuda)")
    p.add_argument("--values", type=int, default=10_000_000, help="values per encode mode (default 10^7)")
    p.add_argument("--rows", type=int, default=1024, help="rows of the 1000-column quantize/fake_quant checks")
    p.add_argument("--quick", action="store_true", help="small benchmark sizes")
    p.add_argument("--no-bench", action="store_true")
    args = p.parse_args(argv)
    from ..infra import records
    from ..errors import RF8SimError
    from ..infra.fileio import check_output_path

    con = Console(width=max(Console().width, 140))
    try:
        check_output_path(args.out, overwrite=args.force)
    except RF8SimError as e:
        con.print(f"[red]{escape(str(e))}[/]")
        return 2
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        con.print("[red]CUDA is not available on this machine; use --device cpu to smoke-test[/]")
        return 2
    info = {"machine": f"{platform.node()} {platform.machine()}", "torch": torch.__version__,
            "device": args.device,
            "device_name": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor(),
            "numba_imported": None}
    res = {"provenance": records.provenance(), "info": info, "exactness": [], "bench": []}
    written = []

    def dump():  # after each section; the first write is exclusive unless --force
        info["numba_imported"] = "numba" in sys.modules
        records.write_record(args.out, res, overwrite=args.force or bool(written))
        written.append(1)

    t0 = time.perf_counter()
    res["exactness"] = exactness(args.device, args.values, n_rows=args.rows)
    dump()
    t = Table(title=f"torch quantizer on {args.device} ({info['device_name']}) vs CPU")
    for h in ("check", "compared", "mismatches", "s"):
        t.add_column(h)
    for r in res["exactness"]:
        t.add_row(r["check"], f"{r['compared']:,}", str(r["mismatches"]), f"{r['seconds']:.2f}")
    con.print(t)
    total = sum(r["compared"] for r in res["exactness"])
    nbad = sum(r["mismatches"] for r in res["exactness"])
    con.print(f"{total:,} values compared, {nbad} mismatches ({time.perf_counter() - t0:.1f} s)")
    if not args.no_bench:
        from .bench import run

        res["bench"] = run(quick=args.quick, device=args.device)
        dump()
        t = Table(title=f"training benchmarks on {args.device} ({info['device_name']})")
        for h in ("benchmark", "value", "baseline", "ratio", "goal"):
            t.add_column(h)
        for r in res["bench"]:
            ratio = r.get("ratio")
            t.add_row(r["name"], f"{r['value']:.4g} {r.get('unit', '')}", r.get("baseline", ""),
                      "" if ratio is None else f"{ratio:.2f}x", r.get("goal", ""))
        con.print(t)
    res["seconds"] = time.perf_counter() - t0
    dump()
    return 0 if nbad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
