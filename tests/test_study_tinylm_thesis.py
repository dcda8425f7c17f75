"""rf8sim.study.tinylm.thesis: the record's schema on a tiny setting, and the verdict rule (which must be able to fail)."""

import json

import pytest

from rf8sim.study.tinylm.thesis import ThesisSpec, run_thesis, verdict, write_record
from rf8sim.study.tinylm.study import TinyLMError


def _t(diff, sig):
    return {"diff": diff, "lo": diff - 0.01, "hi": diff + 0.01, "p_wilcoxon": 0.01 if sig else 0.5, "significant": sig}


def test_verdict_rule_every_outcome():
    plain = _t(0.02, True)
    assert verdict(_t(0.02, True), _t(0.0, False), plain) == "not closed"
    assert verdict(_t(0.02, True), _t(0.01, True), plain) == "not closed"  # wider, not narrower
    assert verdict(_t(0.01, True), _t(-0.01, True), plain) == "narrowed"
    assert verdict(_t(0.001, False), _t(-0.019, True), plain) == "closed"
    assert verdict(_t(-0.01, True), _t(-0.03, True), plain) == "closed"  # RF8 now better
    assert verdict(_t(0.02, True), _t(0.0, False), _t(0.001, False)) == "no gap"
    assert verdict(_t(0.02, True), _t(0.0, False), _t(-0.01, True)) == "no gap"


def test_bad_recipes():
    with pytest.raises(TinyLMError, match="recipes must start with 'plain'"):
        ThesisSpec(recipes=("gg",)).check()
    with pytest.raises(TinyLMError, match="be among plain, gg, qat-rf8, qat-e4m3"):
        ThesisSpec(recipes=("plain", "qat-posit")).check()


def test_tiny_run_schema(tmp_path):
    spec = ThesisSpec(seeds=1, steps=5, chunks=20, recipes=("plain", "gg", "qat-rf8"), d_model=16, n_layer=1,
                      block=16, bootstrap=200)
    res = run_thesis(spec, progress=False)
    assert [(r["recipe"], r["seed"]) for r in res["runs"]] == [("plain", 0), ("gg", 0), ("qat-rf8", 0)]
    for r in res["runs"]:
        assert set(r["bpb"]) == {"float32", "rf8", "e4m3", "int8"}
        assert set(r["gap"]) == {"e4m3", "int8"} and set(r["loss"]) == {"rf8", "e4m3", "int8"}
    assert res["runs"][1]["deepshape_step"] == 4 and res["runs"][1]["backslash_lam"] > 0
    assert list(res["pooled"]) == ["plain", "gg", "qat-rf8"]
    assert res["pooled"]["plain"]["verdict"] == {"e4m3": "baseline", "int8": "baseline"}
    for name in ("gg", "qat-rf8"):
        p = res["pooled"][name]
        assert set(p["verdict"].values()) <= {"closed", "narrowed", "not closed", "no gap"}
        assert set(p["change"]) == {"e4m3", "int8"}
    ck = res["torch_check"]
    assert ck["mismatches"] == 0 and ck["outputs"] > 0
    f = write_record(tmp_path / "t.json", res, command="test")
    rec = json.loads(f.read_text())
    assert rec["kind"] == "rf8sim-thesis" and rec["thesis"]["spec"]["recipes"] == ["plain", "gg", "qat-rf8"]
    assert {"commit", "machine", "command"} <= set(rec["provenance"])
