"""docs/hdl.md's energy findings (hdl:ppa-findings, hdl:ppa-w8a16-findings) are computed from the PPA
records: counts recounted from the rows here, and verdict words that flip when a copy of a record says
otherwise."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from rf8sim.hdl import ppa_cli

RES = Path(__file__).resolve().parents[1] / "hdl" / "results"


def _rows(name):
    return json.loads((RES / name).read_text())


def test_ppa_findings_recount_and_flip(tmp_path):
    rec = _rows("ppa.json")
    rows = [r for r in rec["rows"] if {"minilm", "random"} <= set(r["streams"])]
    n = sum(r["streams"]["minilm"]["pj_per_mac"] < r["streams"]["random"]["pj_per_mac"] for r in rows)
    text = ppa_cli.render_ppa_findings()
    assert f"real data costs less energy per MAC for {n} of the {len(rows)} units" in text
    late = sum(r["slack_ns"] < 0 for r in rec["rows"] if r["stage"] == "mac")
    assert (f"{late} miss the stated" in text) == (late > 0)

    flip = copy.deepcopy(rec)
    i8 = next(r for r in flip["rows"] if (r["a_fmt"], r["w_fmt"], r["stage"], r.get("acc_label"), r["lanes"]) ==
              ("int8", "int8", "mac", "16:32", 1))
    e4 = next(r for r in flip["rows"] if (r["a_fmt"], r["w_fmt"], r["stage"], r.get("acc_label"), r["lanes"]) ==
              ("e4m3", "e4m3", "mac", "16:32", 1))
    e4["streams"]["minilm"]["pj_per_mac"] = 2.0 * i8["streams"]["minilm"]["pj_per_mac"]
    e4["streams"]["random"]["pj_per_mac"] = 3.0 * i8["streams"]["minilm"]["pj_per_mac"]  # stays above its real value
    for r in flip["rows"]:
        r["slack_ns"] = abs(r["slack_ns"])
    p = tmp_path / "ppa.json"
    p.write_text(json.dumps(flip))
    out = ppa_cli.render_ppa_findings(p)
    assert "Inside the published range on MiniLM data: E4M3." in out and "E4M3 +100 %" in out
    assert "Every MAC meets the stated" in out


def test_ppa_w8a16_findings_recount_and_flip(tmp_path):
    rec = _rows("ppa_w8a16.json")
    rev = sum(r["streams"]["random"]["pj_per_mac"] < r["streams"]["minilm"]["pj_per_mac"] for r in rec["rows"])
    text = ppa_cli.render_ppa_w8a16_findings()
    assert f"random 16-bit codes cost less than real data for {rev} of the {len(rec['rows'])} units" in text
    fp = {r["w_fmt"]: r for r in rec["rows"] if r["acc"] == "fp32" and r["lanes"] == 1 and r["a_fmt"] == "bf16"}
    pct = 100 * (fp["rf8"]["streams"]["minilm"]["pj_per_mac"] / fp["bf16"]["streams"]["minilm"]["pj_per_mac"] - 1)
    assert f"energy per MAC {pct:+.0f} %".replace("-", "−") in text

    flip = copy.deepcopy(rec)
    for r in flip["rows"]:
        r["streams"]["random"]["pj_per_mac"] = 10 * r["streams"]["minilm"]["pj_per_mac"]
    p = tmp_path / "w.json"
    p.write_text(json.dumps(flip))
    out = ppa_cli.render_ppa_w8a16_findings(p)
    assert f"for 0 of the {len(rec['rows'])} units:" in out and "the reverse of the 8-bit table" not in out


def test_hdl_bench_table_checks_the_icarus_goal(tmp_path, monkeypatch):
    """docs/hdl.md "Performance" comes from results/bench.json's hdl rows; the >= 20k beats/s verdict is
    computed (a copy with a slow Icarus loop says 'not met')."""
    from rf8sim.hdl import bench

    rec = json.loads((RES.parents[1] / "results" / "bench.json").read_text())
    hdl = [r for r in rec["rows"] if r.get("part") == "hdl"]
    text = bench.render_bench_table()
    assert text.count("\n| ") == len(hdl) + 1  # header + one line per hdl row
    slow = copy.deepcopy(rec)
    for r in slow["rows"]:
        if r["name"].startswith("icarus streamed beats/s (65536 beats, simulation loop only)"):
            r["value"] = 19_999.0
    p = tmp_path / "bench.json"
    p.write_text(json.dumps(slow))
    monkeypatch.chdir(tmp_path)
    out = bench.render_bench_table(p)
    assert "simulation loop only: 20.0 k beats/s, not met" in out
