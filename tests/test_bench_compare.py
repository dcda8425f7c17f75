"""`rf8sim bench` / `--narrow` print each ratio beside the last recorded one, so a regression shows."""

import json

from rf8sim import bench


def test_previous_ratios_and_the_comparison_cell(tmp_path):
    rec = tmp_path / "bench.json"
    rec.write_text(json.dumps({"provenance": {"commit": "abcdef1234567", "utc": "2026-01-01T00:00:00Z",
                                              "machine": {"load_1min": 1.5}},
                               "rows": [{"name": "encode f32->rf8 nearest (16M)", "ratio": 7.29},
                                        {"name": "ml_dtypes f32->float8_e4m3fn astype (16M)", "value": 3.0}]}))
    last, where = bench.previous_ratios(rec)
    assert last == {"encode f32->rf8 nearest (16M)": 7.29}
    assert "commit abcdef1234" in where and "load 1.5" in where
    assert bench.compare_cell(1.8, 7.29) == "7.29x (-75 %)"  # the regression the issue found
    assert bench.compare_cell(8.0, None) == "–" and bench.compare_cell(None, 7.29) == "7.29x"
    assert 1.8 < bench.REGRESSION * 7.29  # flagged after the table
    assert bench.previous_ratios(tmp_path / "missing.json")[0] == {}
    (tmp_path / "bad.json").write_text("{not json")
    assert bench.previous_ratios(tmp_path / "bad.json")[0] == {}


def test_the_checked_in_record_is_what_a_run_compares_with():
    last, where = bench.previous_ratios(bench.RECORD)
    assert where.startswith("results/bench.json, commit ")
    assert any(k.startswith("encode f32->rf8 nearest") for k in last)


def test_narrow_bench_compares_with_its_record():
    from pathlib import Path

    from rf8sim.golden import bench as gb

    last, where = gb._last_narrow(Path(gb.__file__).resolve().parents[2] / gb.NARROW_RECORD)
    assert where.startswith("results/golden-narrow-gemm.json, commit ")
    assert any("scaled channel" in k for k in last) and all(v > 0 for v in last.values())
