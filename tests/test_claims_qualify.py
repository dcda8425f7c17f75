"""docs/claims.md 'What contradicts or qualifies the paper' is computed from the claim records: numbers
recounted here from the rows by another route, and verdict words that follow the records when a copy of
a record says otherwise."""

from __future__ import annotations

import copy
import json
import statistics
from pathlib import Path

from rf8sim.study.claims import qualify

ROOT = Path(__file__).resolve().parents[1]


def _rec(name: str) -> dict:
    return json.loads((ROOT / "training" / "results" / f"{name}.json").read_text())


def test_numbers_recount_from_the_rows():
    text = qualify.render_qualifications()
    fit = _rec("gg-fit")["rows"]
    ks = statistics.median(r["ks_gauss"] for r in fit.values()) / statistics.median(r["ks_gg"] for r in fit.values())
    assert f"(median KS {ks:.1f}× smaller)" in text
    n_better = sum(r["ks_gg"] < r["ks_gauss"] for r in fit.values())
    assert f"on {n_better} of {len(fit)} MiniLM tensors" in text
    bs = _rec("backslash")["rows"]
    p80 = max(r["metric_pruned_80"]["mean"] for k, r in bs.items() if k.startswith("mlp/backslash/"))
    assert f"keeps {p80:.3f}" in text
    sm = _rec("rf8-inference")["small_models"]
    assert f"({sm['cnn/plain']['float32']['mean']:.3f} → {sm['cnn/backslash']['float32']['mean']:.3f}, table (e))" in text
    inf = _rec("rf8-inference")["rows"]
    ratio = inf["rf8-nearest/channel"]["weight_rel_err_mean"] / inf["e4m3/channel"]["weight_rel_err_mean"]
    assert f"{ratio:.1f}× the weight error of e4m3" in text
    assert text.count("\n- **") + text.startswith("- **") == 9  # nine qualifications, one per bullet


def test_verdict_words_follow_the_records(monkeypatch):
    recs = {n: _rec(n) for n in ("gg-fit", "gg-init", "backslash", "deepshape", "rf8-inference")}
    text = qualify.render_qualifications()
    assert "RF8 do not compose" in text and "int8 needs per-channel or per-block scales" in text

    flip = copy.deepcopy(recs)
    row = flip["backslash"]["rows"]["mlp/backslash/0.3"]
    row["rf8_entropy_bits"]["mean"] = 0.5 * flip["backslash"]["rows"]["mlp/plain/0"]["rf8_entropy_bits"]["mean"]
    inf = flip["rf8-inference"]["rows"]
    inf["int8/tensor"]["cos_mean"]["mean"] = max(inf["int8/channel"]["cos_mean"]["mean"], inf["int8/block"]["cos_mean"]["mean"])
    monkeypatch.setattr(qualify, "_load", lambda name: flip[name])
    out = qualify.render_qualifications()
    assert "RF8 compose only in part" in out and "−50 %" in out
    assert "so is int8" in out and "int8 needs" not in out
