"""The W8A16 GEMM bench record (rf8sim.golden.bench_w8a16): rows at a tiny shape, the checked-in
record's table (docs/formats.md holds it between generated markers; tests/test_docs_sync.py checks
that the docs equal the rendering)."""

import json
from pathlib import Path

import numpy as np

from rf8sim.golden import bench, bench_w8a16, fpacc


def test_rows_tiny_shape_take_the_fast_path():
    before = dict(fpacc.PATH_COUNTS)
    with bench._one_thread():
        rows = bench_w8a16.rows(1, (4, 64, 8))
    assert [(r["act"], r["weight"], r["acc"]) for r in rows] == [
        (a, w, c) for a in ("bf16", "fp16") for w in ("rf8", "bf16") for c in ("fp32", "aligned:32:16")]
    assert all(r["path"] == "fast" and r["time_x"] > 0 and r["shape"] == "4x64x8" for r in rows)
    # per accumulator: 4 rows x (warm-up + 1 timed call) x 4 x 8 outputs
    assert fpacc.PATH_COUNTS["fp32 fast"] - before["fp32 fast"] == 4 * 2 * 4 * 8
    assert fpacc.PATH_COUNTS["aligned fast"] - before["aligned fast"] == 4 * 2 * 4 * 8
    assert np.isfinite([r["value"] for r in rows]).all()


def test_record_table():
    rec = json.loads((Path(__file__).resolve().parents[1] / bench_w8a16.RECORD).read_text())
    table = bench_w8a16.table()
    body = [ln for ln in table.splitlines() if ln.startswith("| ") and "×" in ln and "activations" not in ln]
    assert len(body) == len(rec["rows"]) == 8
    for ln, r in zip(body, rec["rows"]):
        assert f"| {r['time_x']:.1f}× |" in ln and ln.endswith("| yes |" if r["time_x"] <= 10 else "| **no** |")


def test_readme_row_recounts_the_record():
    import re

    root = Path(__file__).resolve().parents[1]
    rec = json.loads((root / bench_w8a16.RECORD).read_text())
    x = [r["value"] / r["baseline_ms"] for r in rec["rows"]]  # time ratios recomputed from the two timings
    readme = (root / "README.md").read_text()
    m = re.search(r"\| W8A16 golden GEMM .*? \| ([\d.]+)× to ([\d.]+)× ", readme)
    if m is None:  # once results/bench.json has W8A16 rows the README row comes from it (test_bench_readme)
        assert re.search(r"\| W8A16 golden GEMM .*? \| rf8 weights: fp32 [\d.]+×", readme), "README lacks the W8A16 row"
        return
    assert (m.group(1), m.group(2)) == (f"{min(x):.1f}", f"{max(x):.1f}")
