"""docs/study.md's MiniLM tables are exactly what rf8sim.study.flow.results renders from the checked-in record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rf8sim.infra import docgen
from rf8sim.study.flow import results

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("study:minilm-run", "study:minilm-points", "study:minilm-pairs", "study:minilm-mixed", "study:minilm-costs")


def test_docs_study_blocks_match_the_record():
    text = (ROOT / "docs" / "study.md").read_text()
    found = dict(docgen.blocks(text))
    assert set(KEYS) <= set(found)
    for k in KEYS:
        assert found[k] == docgen.render(k), f"docs/study.md block {k} is stale: run `rf8sim docs`"
    rec = json.loads((ROOT / results.MINILM_RECORD).read_text())
    assert rec["provenance"]["commit"] and rec["transformer"]["sentences"] >= 20
    # the rendered numbers are the record's
    p = rec["transformer"]["points"][0]
    assert f"{p['cosine']:.5f}" in found["study:minilm-points"]


def test_missing_or_foreign_record_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(docgen.DocgenError, match="is missing"):
        results.load_minilm_record(tmp_path / "nope.json")
    f = tmp_path / "other.json"
    f.write_text(json.dumps({"kind": "bench"}))
    with pytest.raises(docgen.DocgenError, match="not an rf8sim flow record"):
        results.load_minilm_record(f)


def test_budget_extrapolation_counts_w8a16_on_their_prefix():
    from types import SimpleNamespace

    from rf8sim.study.minilm.costs import extrapolate

    costs = {"rows": [{"config": "float32", "cpu_s_per_sentence": 0.01},
                      {"config": "rf8 channel acc exact", "cpu_s_per_sentence": 0.1, "torch_check_cpu_s": 2.0},
                      {"config": "rf8/a:bf16 channel acc fp32", "cpu_s_per_sentence": 1.0, "torch_check_cpu_s": 3.0}]}
    t = SimpleNamespace(sentences=1000, a16_sentences=40, sensitivity_sentences=20, granularity="channel",
                        acc=("exact",), configs=("rf8", "rf8/bf16@fp32"))
    p = extrapolate(costs, t)
    assert p["float32"] == pytest.approx(10.0)
    assert p["sweep"] == pytest.approx(1000 * 0.1 + 40 * 1.0)
    assert p["sensitivity"] == pytest.approx(20 * (0.1 + 0.12) + 20 * (1.0 + 0.12))
    assert p["torch_check"] == pytest.approx(5.0)
    assert p["mixed (weight bits) verification, at most"] == pytest.approx(80.0)
    # area / energy searches: 2 x max(1000 sentences x 0.1 s (8-bit), 40 x 1.0 s (W8A16)) each
    assert p["mixed (area) verification, at most"] == p["mixed (energy) verification, at most"] == pytest.approx(200.0)
    assert p["total"] == pytest.approx(10 + 140 + 26.8 + 5 + 80 + 400)
    p1 = extrapolate(costs, SimpleNamespace(**{**vars(t), "objectives": ("energy",)}))
    assert "mixed (area) verification, at most" not in p1 and p1["total"] == pytest.approx(p["total"] - 200)
    with pytest.raises(docgen.DocgenError, match="no measurement of e4m3"):
        extrapolate(costs, SimpleNamespace(**{**vars(t), "configs": ("e4m3",)}))
