"""Golden-model benchmarks (``rf8sim bench --only golden``), each against a baseline measured in
the same run: encode vs ml_dtypes' float32 -> float8_e4m3fn cast, decode vs ml_dtypes'
float8 -> float32 cast, exact GEMM vs numpy float64 matmul, the W8A16 (fp32 / aligned:K:M)
GEMMs vs the fixed-point sequential kernel on the same shape, plus first-call compile times.

Ratios are throughputs (ours / baseline), so higher is better everywhere.  Each timing is
the best of several repetitions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

__all__ = ["run"]


def _best(fn, reps: int) -> float:
    fn()  # warm (compile / page in)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


_COMPILE_SNIPPET = r"""
import json, time, numpy as np
t = time.perf_counter(); import rf8sim.golden as g; from rf8sim.golden import arith, vectors; t_imp = time.perf_counter() - t
x = np.linspace(-3, 3, 64, dtype=np.float32)
out = {"import": t_imp}
def tm(name, fn):
    t = time.perf_counter(); fn(); out[name] = time.perf_counter() - t
tm("encode nearest", lambda: g.encode(x, "rf8"))
tm("encode paper", lambda: g.encode(x, "rf8", "paper"))
tm("encode int8", lambda: g.encode(x, "int8"))
tm("decode", lambda: g.decode(np.arange(256, dtype=np.uint8), "rf8"))
c = np.arange(64, dtype=np.uint8)
tm("mac (1 and 2 limbs)", lambda: (g.mac(c, c, None, "rf8", "rf8", "exact"), g.mac(c, c, None, "e5m2", "e5m2", "exact")))
m = c.reshape(8, 8)
tm("gemm sequential (1 and 2 limbs)", lambda: (g.gemm(m, m, "rf8", "rf8", "exact", method="sequential"),
                                               g.gemm(m, m, "e5m2", "e5m2", "exact")))
tm("to_float32", lambda: g.to_float32(np.arange(5), 3))
b = np.arange(64, dtype=np.uint16).reshape(4, 16)
w8 = m.reshape(4, 16)[:2]
tm("W8A16 gemm fp32 + aligned (int64 and limb registers)",
   lambda: (g.gemm(b, w8, "bf16", "rf8", "fp32"), g.gemm(b, w8, "bf16", "rf8", "aligned:16:8"),
            g.gemm(b, b[:2], "bf16", "bf16", "aligned:16:8")))
print(json.dumps(out))
"""


def _compile_times(cold: bool) -> dict:
    env = dict(os.environ)
    tmp = None
    if cold:
        tmp = tempfile.TemporaryDirectory(prefix="rf8sim-numba-")
        env["NUMBA_CACHE_DIR"] = tmp.name
    try:
        r = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env, capture_output=True, text=True,
                           timeout=900)
        if r.returncode != 0:
            raise RuntimeError(r.stderr[-2000:])
        return json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        if tmp is not None:
            tmp.cleanup()


def _narrow_rows(rng, d: int, reps: int) -> list[dict]:
    """Every accumulator against float32 ``A @ B`` (same shapes, same run): realistic codes
    (Gaussian values through the encoder, no saturation) and the same codes with a few rows
    scaled up so that some outputs saturate (order-dependent clamping)."""
    from . import encode, gemm

    A = rng.standard_normal((d, d)).astype(np.float32)
    B = rng.standard_normal((d, d)).astype(np.float32)
    t32 = _best(lambda: A @ B.T, 3 * reps)
    rows = [{"name": f"numpy float32 matmul {d}^3", "value": t32 * 1e3, "unit": "ms"}]
    x = rng.standard_normal((d, d)).astype(np.float32) * 8
    y = rng.standard_normal((d, d)).astype(np.float32) * 8
    hot = x.copy()
    hot[: max(1, d // 32)] *= 64  # 1/32 of the rows push their sums past the narrow limits
    for fmt in ("rf8", "e4m3", "int8"):
        a, w, ah = encode(x, fmt), encode(y, fmt), encode(hot, fmt)
        for spec in ("exact", "16:32", "8:36", "4:30"):
            for label, aa in (("no saturation", a), ("saturating", ah)):
                r = gemm(aa, w, fmt, fmt, spec)
                nsat = int(r.overflow.sum())
                if label == "saturating" and nsat == 0:
                    continue
                if label == "no saturation" and nsat:
                    label = "saturating"
                t = _best(lambda: gemm(aa, w, fmt, fmt, spec), max(1, reps // 2))
                goal = "<= 50x f32" if nsat else "<= 10x f32"
                rows.append({"name": f"{fmt} x {fmt} GEMM {d}^3 acc {spec}, {label} ({nsat} outputs saturate)",
                             "value": t * 1e3, "unit": "ms", "baseline": "numpy f32 matmul",
                             "ratio": t32 / t, "goal": goal.replace("<= ", ">= 1/")})
    return rows


def _w8a16_fast_rows(rng, quick: bool, reps: int) -> list[dict]:
    """W8A16 at a MiniLM-like shape (64 tokens x 384 -> 1536): the auto path (fast where proved exact;
    here every row) and the sequential kernels (``method="sequential"``), both against float32 ``A @ B``
    of the same shape in the same run."""
    from ..accspec import AccSpec
    from . import encode, fpacc

    M_, K_, N_ = (16, 384, 384) if quick else (64, 384, 1536)
    shape = f"{M_}x{K_}x{N_}"
    xa = encode(rng.standard_normal((M_, K_)).astype(np.float32), "bf16")
    xw = rng.standard_normal((N_, K_)).astype(np.float32)
    sw = rng.integers(-9, -3, N_)  # per-channel weight scales, as MiniLM's
    A = rng.standard_normal((M_, K_)).astype(np.float32)
    B = rng.standard_normal((N_, K_)).astype(np.float32)
    t32 = _best(lambda: A @ B.T, 3 * reps)
    rows = [{"name": f"numpy float32 matmul {shape}", "value": t32 * 1e3, "unit": "ms"}]
    for wn, wc in (("rf8", encode(xw, "rf8")), ("bf16", encode(xw * 0.05, "bf16"))):
        for acc in ("fp32", "aligned:32:16"):
            spec = AccSpec.parse(acc)
            before = dict(fpacc.PATH_COUNTS)
            t_fast = _best(lambda: fpacc.gemm(xa, wc, "bf16", wn, spec, None, sw, "tensor", "channel"), reps)  # noqa: B023
            path = "fast" if all(fpacc.PATH_COUNTS[k] == before[k] for k in before if "sequential" in k) else "mixed"
            t_seq = _best(lambda: fpacc.gemm(xa, wc, "bf16", wn, spec, None, sw, "tensor", "channel",  # noqa: B023
                                             method="sequential"), 1)
            base = f"W8A16 bf16 x {wn} GEMM {shape}, acc {acc}"
            rows.append({"name": f"{base}, auto ({path} path)", "value": t_fast * 1e3, "unit": "ms",
                         "baseline": "numpy f32 matmul", "ratio": t32 / t_fast, "goal": ""})
            rows.append({"name": f"{base}, sequential kernel", "value": t_seq * 1e3, "unit": "ms",
                         "baseline": "numpy f32 matmul", "ratio": t32 / t_seq, "goal": ""})
            rows.append({"name": f"{base}, auto vs sequential kernel", "value": t_fast * 1e3, "unit": "ms",
                         "baseline": "sequential kernel", "ratio": t_seq / t_fast, "goal": ""})
    return rows


def run(quick: bool = False) -> list[dict]:
    """Benchmark rows (see rf8sim/bench.py for the row format)."""
    import ml_dtypes

    from . import decode, encode, gemm

    n = (1 << 20) if quick else (1 << 24)
    reps = 3 if quick else 5
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(np.float32)
    rows: list[dict] = []
    size = f"{n / 2**20:g}M"

    t_base = _best(lambda: x.astype(ml_dtypes.float8_e4m3fn), reps)
    base = n / t_base / 1e6
    rows.append({"name": f"ml_dtypes f32->float8_e4m3fn astype ({size})", "value": base, "unit": "M/s"})
    for fmt, r, goal in [("rf8", "nearest", ">= 2x"), ("e4m3", "nearest", ">= 2x"), ("e5m2", "nearest", ""),
                         ("int8", "nearest", ""), ("rf8", "paper", ""), ("rf8", "truncate", "")]:
        t = _best(lambda: encode(x, fmt, r), reps)
        rows.append({"name": f"encode f32->{fmt} {r} ({size})", "value": n / t / 1e6, "unit": "M/s",
                     "baseline": "ml_dtypes f32->e4m3fn", "ratio": t_base / t, "goal": goal})

    codes = encode(x, "e4m3")
    fp8 = codes.view(ml_dtypes.float8_e4m3fn)
    t_dbase = _best(lambda: fp8.astype(np.float32), reps)
    rows.append({"name": f"ml_dtypes float8_e4m3fn->f32 astype ({size})", "value": n / t_dbase / 1e6,
                 "unit": "M/s"})
    for fmt in ("e4m3", "rf8"):
        t = _best(lambda: decode(codes, fmt), reps)
        rows.append({"name": f"decode {fmt}->f32 ({size})", "value": n / t / 1e6, "unit": "M/s",
                     "baseline": "ml_dtypes e4m3fn->f32", "ratio": t_dbase / t, "goal": ">= 4x"})

    d = 128 if quick else 512
    a = rng.integers(0, 256, (d, d), dtype=np.uint8)
    w = rng.integers(0, 256, (d, d), dtype=np.uint8)
    A = rng.standard_normal((d, d))
    B = rng.standard_normal((d, d))
    t_mm = _best(lambda: A @ B.T, reps)
    rows.append({"name": f"numpy float64 matmul {d}^3", "value": t_mm * 1e3, "unit": "ms"})
    t = _best(lambda: gemm(a, w, "rf8", "rf8", "exact"), reps)
    rows.append({"name": f"exact rf8 x rf8 GEMM {d}^3 (auto: exact float64 path)", "value": t * 1e3, "unit": "ms",
                 "baseline": "numpy f64 matmul", "ratio": t_mm / t, "goal": ">= 0.33x (within 3x)"})
    t = _best(lambda: gemm(a, w, "rf8", "rf8", "exact", method="sequential"), 1)
    rows.append({"name": f"exact rf8 x rf8 GEMM {d}^3 (sequential k-order kernel)", "value": t * 1e3,
                 "unit": "ms", "baseline": "numpy f64 matmul", "ratio": t_mm / t, "goal": ""})
    t = _best(lambda: gemm(a, w, "e5m2", "e5m2", "exact"), 1)
    rows.append({"name": f"exact e5m2 x e5m2 GEMM {d}^3 (75-bit, two limbs)", "value": t * 1e3, "unit": "ms",
                 "baseline": "numpy f64 matmul", "ratio": t_mm / t, "goal": ""})

    rows += _narrow_rows(rng, d, reps)

    # W8A16: the MiniLM FFN shape (128 tokens x 384 -> 1536), bf16 activations
    M_, K_, N_ = (32, 384, 384) if quick else (128, 384, 1536)
    xa = encode(rng.standard_normal((M_, K_)).astype(np.float32), "bf16")
    xw = rng.standard_normal((N_, K_)).astype(np.float32)
    w8, w16, a8 = encode(xw, "rf8"), encode(xw * 0.05, "bf16"), encode(rng.standard_normal((M_, K_)).astype(np.float32), "e4m3")
    Af, Bf = rng.standard_normal((M_, K_)), rng.standard_normal((N_, K_))
    shape = f"{M_}x{K_}x{N_}"
    t_mm = _best(lambda: Af @ Bf.T, reps)
    rows.append({"name": f"numpy float64 matmul {shape}", "value": t_mm * 1e3, "unit": "ms"})
    t_seq = _best(lambda: gemm(a8, w8, "e4m3", "rf8", "exact", method="sequential"), 2)
    rows.append({"name": f"exact e4m3 x rf8 GEMM {shape} (sequential fixed-point kernel)", "value": t_seq * 1e3,
                 "unit": "ms", "baseline": "numpy f64 matmul", "ratio": t_mm / t_seq, "goal": ""})
    for wn, wc, acc in (("rf8", w8, "fp32"), ("rf8", w8, "aligned:32:16"), ("bf16", w16, "fp32"),
                        ("bf16", w16, "aligned:32:16")):
        t = _best(lambda: gemm(xa, wc, "bf16", wn, acc), 2)  # noqa: B023
        rows.append({"name": f"W8A16 bf16 x {wn} GEMM {shape}, acc {acc}", "value": t * 1e3, "unit": "ms",
                     "baseline": "fixed-point e4m3 x rf8 sequential", "ratio": t_seq / t, "goal": ""})

    rows += _w8a16_fast_rows(rng, quick, reps)

    for cold in ((False,) if quick else (True, False)):
        times = _compile_times(cold)
        label = "first call, cold numba cache" if cold else "first call, warm numba cache"
        for k, v in times.items():
            rows.append({"name": f"{label}: {k}", "value": v, "unit": "s"})
    return rows
