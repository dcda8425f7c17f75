"""docs/study.md's MiniLM tables are exactly what rf8sim.study.results renders from the checked-in record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rf8sim import docgen
from rf8sim.study import results

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("study:minilm-run", "study:minilm-points", "study:minilm-pairs", "study:minilm-mixed")


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
