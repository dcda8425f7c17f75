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


def _readme_w8a16_row(readme: str) -> str:
    import re

    m = re.search(r"^\| W8A16 golden GEMM (.*?) \| (.*?) \| (.*?) \|$", readme, re.M)
    assert m, "README lacks the W8A16 golden GEMM row"
    return m.group(0)


def _w8a16_cells(bench_rows: list) -> tuple[str, list[str]]:
    """The README cell recounted from results/bench.json's W8A16 rows by another route: the time ratio is the
    row's time over its float32 matmul time (``baseline_ms``, timed alternately with it; older records: the
    float32 matmul row of the same shape); the record's ``ratio`` is not read."""
    f32 = {r["name"].split("matmul ")[1]: r["value"] for r in bench_rows if r["name"].startswith("numpy float32 matmul ")}
    parts, n = [], 0
    for wn in ("rf8", "bf16"):
        cells = []
        for acc in ("fp32", "aligned:32:16"):
            rs = [r for r in bench_rows if r["name"].startswith(f"W8A16 bf16 x {wn} GEMM ")
                  and f", acc {acc}, auto (" in r["name"]]
            assert len(rs) == 1, (wn, acc)
            shape = rs[0]["name"].split(" GEMM ")[1].split(",")[0]
            base = rs[0].get("baseline_ms", f32[shape])  # timed alternately with the row where the record has it
            cells.append(f"{acc} {rs[0]['value'] / base:.1f}×")
            n += 1
        parts.append(f"{wn} weights: " + ", ".join(cells))
    return shape, ["; ".join(parts), str(n)]


def test_readme_row_recounts_the_record():
    """README's W8A16 GEMM row against a recount of results/bench.json's W8A16 rows (or, for a bench record
    without them, of the separate W8A16 record's range)."""
    import re

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    row = _readme_w8a16_row(readme)
    brows = json.loads((root / "results" / "bench.json").read_text())["rows"]
    if any(r["name"].startswith("W8A16 bf16 x ") and ", auto (" in r["name"] for r in brows):
        shape, (cell, n) = _w8a16_cells(brows)
        assert n == "4"
        assert f"W8A16 golden GEMM {shape.replace('x', '×')}," in row
        timed = all("baseline_ms" in r for r in brows if r["name"].startswith("W8A16 bf16 x ") and ", auto (" in r["name"])
        tail = "; one thread, CPU time, each timed alternately with `A @ B`" if timed else ""
        assert f"| {cell}{tail} |" in row, (row, cell)
        return
    rec = json.loads((root / bench_w8a16.RECORD).read_text())
    x = [r["value"] / r["baseline_ms"] for r in rec["rows"]]  # time ratios recomputed from the two timings
    m = re.search(r"\| ([\d.]+)× to ([\d.]+)× ", row)
    assert m and (m.group(1), m.group(2)) == (f"{min(x):.1f}", f"{max(x):.1f}")


def test_the_readme_recount_can_fail():
    """A rendered row whose ratio is off by one decimal is caught by the recount."""
    root = Path(__file__).resolve().parents[1]
    brows = json.loads((root / "results" / "bench.json").read_text())["rows"]
    _, (cell, _) = _w8a16_cells(brows)
    bad = [dict(r, value=r["value"] * 1.5) if r["name"].startswith("W8A16 bf16 x rf8") and ", auto (" in r["name"]
           else r for r in brows]
    assert _w8a16_cells(bad)[1][0] != cell
