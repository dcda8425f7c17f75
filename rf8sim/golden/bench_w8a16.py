"""The W8A16 golden GEMM (``fp32`` and ``aligned:32:16``) against float32 ``A @ B``, as a record.

``python -m rf8sim.golden.bench_w8a16 --record results/golden-w8a16-gemm.json`` times
:func:`rf8sim.golden.fpacc.gemm` (``method="auto"``: the fast paths where proved exact) at a
MiniLM-like shape (64 tokens x 384 -> 1536, per-channel weight scales), bf16 and fp16 activations,
rf8 and bf16 weights, alternately with float32 ``A @ B`` of the same shape, BLAS and Numba on one
thread, CPU time (issue 11: every AccSpec within 10x).  docs/formats.md shows the record through
the generated block ``golden:w8a16-gemm``.
"""

from __future__ import annotations

import os
import time

import numpy as np

__all__ = ["rows", "main", "table", "RECORD"]

RECORD = "results/golden-w8a16-gemm.json"
_KIND = "golden-w8a16-gemm-bench"
_HOW = "python -m rf8sim.golden.bench_w8a16 --record results/golden-w8a16-gemm.json"
_GOAL = 10.0


def rows(reps: int, shape=(64, 384, 1536), clock=time.process_time) -> list[dict]:
    """One row per (activation, weight, accumulator): best GEMM time and best float32 ``A @ B`` time,
    measured alternately (:func:`rf8sim.golden.bench._pair_best`), and which path ran."""
    from ..accspec import AccSpec
    from . import encode, fpacc
    from .bench import _pair_best

    M_, K_, N_ = shape
    rng = np.random.default_rng(0)
    xw = rng.standard_normal((N_, K_)).astype(np.float32)
    sw = rng.integers(-9, -3, N_)  # per-channel weight scales, as MiniLM's
    A = rng.standard_normal((M_, K_)).astype(np.float32)
    B = rng.standard_normal((N_, K_)).astype(np.float32)
    xa = rng.standard_normal((M_, K_)).astype(np.float32)
    out = []
    for an in ("bf16", "fp16"):
        ca = encode(xa, an)
        for wn, wc in (("rf8", encode(xw, "rf8")), ("bf16", encode(xw * 0.05, "bf16"))):
            for acc in ("fp32", "aligned:32:16"):
                spec = AccSpec.parse(acc)
                before = dict(fpacc.PATH_COUNTS)
                t, t32 = _pair_best(lambda: fpacc.gemm(ca, wc, an, wn, spec, None, sw, "tensor", "channel"),  # noqa: B023
                                    lambda: A @ B.T, reps, clock)
                seq = sum(fpacc.PATH_COUNTS[k] - before[k] for k in before if "sequential" in k)
                out.append({"act": an, "weight": wn, "acc": acc, "shape": f"{M_}x{K_}x{N_}",
                            "path": "fast" if seq == 0 else "mixed", "value": t * 1e3, "unit": "ms",
                            "baseline_ms": t32 * 1e3, "time_x": t / t32})
    return out


def main(argv=None) -> int:
    """``python -m rf8sim.golden.bench_w8a16 [--reps N] [--record FILE [--force]]``."""
    import argparse

    from ..infra.cliargs import add_record_args

    from rf8sim.infra.console import Console
    from rich.table import Table

    from ..infra.fileio import check_output_path
    from ..infra.records import provenance, write_record
    from .bench import _one_thread

    ap = argparse.ArgumentParser(prog="python -m rf8sim.golden.bench_w8a16", description=main.__doc__)
    ap.add_argument("--reps", type=int, default=10, help="alternating repetitions per row (default 10)")
    add_record_args(ap, "write the rows as a results record", "overwrite an existing --record file", metavar="FILE")
    args = ap.parse_args(argv)
    if args.reps < 1:
        ap.error("--reps must be >= 1")
    if args.record:
        check_output_path(args.record, args.force)
    prov = provenance()  # before the run: the code that runs
    with _one_thread():
        rs = rows(args.reps)
    t = Table(title="W8A16 golden GEMM vs float32 A @ B (one thread, CPU time, timed alternately)")
    for h in ("activations x weights", "acc", "path", "ms", "f32 ms", "x f32 time"):
        t.add_column(h)
    for r in rs:
        t.add_row(f"{r['act']} x {r['weight']}", r["acc"], r["path"], f"{r['value']:.2f}", f"{r['baseline_ms']:.2f}",
                  f"{r['time_x']:.1f}x")
    Console().print(t)
    if args.record:
        write_record(args.record, {"provenance": prov, "kind": _KIND, "reps": args.reps, "clock": "cpu",
                                   "threads": "one", "load_end": os.getloadavg()[0], "rows": rs},
                     overwrite=args.force)
    return 0


def table() -> str:
    """docs/formats.md: the W8A16 GEMM rows of the checked-in record."""
    from ..infra.docgen import load_record

    from .bench import record_head

    rec = load_record(RECORD, _KIND, _HOW)
    out = [record_head(rec, RECORD, "BLAS and Numba on one thread") + " Each row is the best of "
           f"{rec['reps']} CPU-time timings alternating the GEMM (`fpacc.gemm`, `method=\"auto\"`, per-channel "
           f"weight scales) and float32 `A @ B` of the same shape.", "",
           "| activations × weights | accumulator | shape | path | GEMM ms | float32 `A @ B` ms | × float32 time "
           "| goal | met |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rec["rows"]:
        out.append(f"| {r['act']} × {r['weight']} | {r['acc']} | {r['shape']} | {r['path']} | {r['value']:.2f} | "
                   f"{r['baseline_ms']:.2f} | {r['time_x']:.1f}× | ≤ {_GOAL:g}× | "
                   f"{'yes' if r['time_x'] <= _GOAL else '**no**'} |")
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
