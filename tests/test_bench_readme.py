"""README's narrow-GEMM row counts what its record says: recounted here from each row's own goal text."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_narrow_row_recounts_the_record():
    rec = json.loads((ROOT / "results" / "golden-narrow-gemm.json").read_text())
    rows = [r for r in rec["rows"] if "goal" in r and "time_x" in r]
    assert len(rows) >= 20
    met = 0
    for r in rows:
        limit = float(re.match(r"<= (\d+)x", r["goal"]).group(1))  # the record's own goal per row
        met += r["value"] / r["baseline_ms"] <= limit  # time ratio recomputed from the two timings
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"\| narrow-accumulator golden GEMM .*? \| (\d+) of (\d+) rows meet their goal", readme)
    assert m, "README lacks the narrow-GEMM row"
    assert (int(m.group(1)), int(m.group(2))) == (met, len(rows))
