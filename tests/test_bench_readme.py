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


def test_one_thread_encode_ratio_appears_when_recorded(tmp_path, monkeypatch):
    """`make bench` records rf8/e4m3 encode with one Numba thread (issue 22, item 6: say what one thread
    gives); README's encode cell quotes both ratios from those rows, and says nothing for a record without."""
    from rf8sim import bench

    rec = json.loads((ROOT / "results" / "bench.json").read_text())
    rec["rows"] = [r for r in rec["rows"] if not r["name"].endswith("one Numba thread")]
    p = tmp_path / "bench.json"
    p.write_text(json.dumps(rec))
    monkeypatch.setattr(bench, "RECORD", p)
    assert "with one Numba thread" not in bench.measured_table()
    rec["rows"] += [{"name": "encode f32->rf8 nearest (16M), one Numba thread", "value": 1.0, "unit": "M/s",
                     "ratio": 3.456}, {"name": "encode f32->e4m3 nearest (16M), one Numba thread", "value": 1.0,
                                       "unit": "M/s", "ratio": 2.345}]
    p.write_text(json.dumps(rec))
    assert "; with one Numba thread 3.46× / 2.35× |" in bench.measured_table()


def test_bench_writes_one_thread_encode_rows(monkeypatch):
    """The golden bench's quick run has the one-thread encode rows, with a ratio to the same ml_dtypes baseline."""
    import numba

    from rf8sim.golden import bench as gb

    seen = []
    real = gb._one_thread.__enter__

    def enter(self):
        seen.append(numba.get_num_threads())
        return real(self)

    monkeypatch.setattr(gb._one_thread, "__enter__", enter)
    monkeypatch.setattr(gb, "_narrow_rows", lambda *a, **k: [])
    monkeypatch.setattr(gb, "_w8a16_fast_rows", lambda *a, **k: [])
    monkeypatch.setattr(gb, "_compile_times", lambda cold: {})
    rows = gb.run(quick=True)
    one = [r for r in rows if r["name"].endswith("one Numba thread")]
    assert [r["name"].split(" (")[0] for r in one] == ["encode f32->rf8 nearest", "encode f32->e4m3 nearest"]
    assert all(r["ratio"] > 0 for r in one) and seen
