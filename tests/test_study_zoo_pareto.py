"""The zoo's Pareto join (rf8sim.study.zoo.pareto): fronts, the records it joins, generated sentences."""

from __future__ import annotations

import itertools

import pytest

from rf8sim.cli import main
from rf8sim.study.zoo import pareto as zp


def _brute_front(points, cost, metric):
    """Independent reference: a point is on the front iff it is not strictly worse in one axis and
    no better in the other than some other point (pairwise, over all ordered pairs)."""
    out = set()
    for p in points:
        ok = True
        for q in points:
            if q is p:
                continue
            le = q[cost] <= p[cost] and q[metric] <= p[metric]
            if le and (q[cost], q[metric]) != (p[cost], p[metric]):
                ok = False
        if ok:
            out.add(p["unit"])
    return out


def test_front_against_brute_force():
    vals = [1.0, 2.0, 3.0]
    n = 0
    for combo in itertools.product(itertools.product(vals, vals), repeat=3):  # 729 sets of 3 points, ties included
        pts = [{"unit": f"u{i}", "c": c, "m": m} for i, (c, m) in enumerate(combo)]
        assert zp.front(pts, "c", "m") == _brute_front(pts, "c", "m")
        n += 1
    assert n == 729
    pts = [{"unit": "a", "c": 1, "m": 5}, {"unit": "b", "c": 2, "m": 2}, {"unit": "c", "c": 3, "m": 3},
           {"unit": "d", "c": 4, "m": 1}, {"unit": "e", "c": None, "m": 0}]
    assert zp.front(pts, "c", "m") == {"a", "b", "d"}  # c is dominated by b; e has no cost


def _zoo():
    rows = [{"format": f, "mode": m, "loss": l, "loss_lo": l * 0.9, "loss_hi": l * 1.1, "sentences": 10}
            for f, m, l in [("rf8", "weight-only", 3e-3), ("apot8", "weight-only", 1e-2), ("e4m3", "weight-only", 2e-3),
                            ("rf8t2", "weight-only", 2e-3), ("rf8", "W8A8", 5e-3), ("e4m3", "W8A8", 3e-3)]]
    return {"minilm_cosine": rows}


def _rtl():
    return {"rows": [{"a": a, "w": w, "area_um2": ar, "pj_per_mac": pj} for a, w, ar, pj in [
        ("bf16", "rf8", 5000, 10.0), ("bf16", "apot8", 16000, 30.0), ("bf16", "e4m3", 6500, 12.0),
        ("bf16", "rf8t2", 8300, 14.0), ("rf8", "rf8", 4300, 9.0), ("e4m3", "e4m3", 4200, 9.5),
        ("e4m3", "rf8", 4200, 8.0)]]}


def _tiny():
    return {"rows": [{"format": f, "bpb": b, "bpb_lo": b - 0.1, "bpb_hi": b + 0.1, "delta_float32": b - 2.28,
                      "delta_lo": b - 2.281, "delta_hi": b - 2.279}
                     for f, b in [("rf8", 2.29), ("apot8", 2.31), ("e4m3", 2.287), ("rf8t2", 2.287)]]}


def test_pareto_points_join_and_facts():
    pts = zp.pareto_points(_zoo(), _rtl(), _tiny())
    by = {p["unit"]: p for p in pts}
    # e4m3 x rf8 has no measured configuration (mixed formats); W8A8 points carry no TinyLM number
    assert set(by) == {"bf16 × rf8", "bf16 × apot8", "bf16 × e4m3", "bf16 × rf8t2", "rf8 × rf8", "e4m3 × e4m3"}
    assert by["bf16 × rf8"]["bpb"] == 2.29 and by["rf8 × rf8"]["bpb"] is None
    assert by["e4m3 × e4m3"]["mode"] == "W8A8" and by["e4m3 × e4m3"]["loss"] == 3e-3
    facts = zp.pareto_facts(pts)
    wo_area = next(s for s in facts if s.startswith("weight-only, MiniLM") and "area" in s)
    assert wo_area.endswith("is bf16 × rf8, bf16 × e4m3 (in increasing cost).")  # rf8t2 ties e4m3, costs more
    w8 = next(s for s in facts if s.startswith("W8A8, MiniLM") and "area" in s)
    assert w8.endswith("is e4m3 × e4m3 (in increasing cost).")
    assert any("bf16 × rf8 against bf16 × apot8 (equal bits): 5,000 vs 16,000 µm², 10.00 vs 30.00 pJ" in s
               for s in facts)
    assert any(s.startswith("The most accurate RF8 variant unit on MiniLM weight-only, bf16 × rf8t2") for s in facts)


def _tiny_rec(diff, sig):
    pairs = [{"a": "rf8", "b": "apot8", "diff": diff, "lo": diff - 0.001, "hi": diff + 0.001, "p_wilcoxon": 1e-5,
              "significant": sig},
             {"a": "rf8t2", "b": "e4m3", "diff": 0.0, "lo": -0.001, "hi": 0.001, "p_wilcoxon": 1.0,
              "significant": False}]
    rows = [{"format": f, "bpb": b} for f, b in [("rf8", 2.29), ("apot8", 2.29 - diff), ("rf8t2", 2.287),
                                                 ("e4m3", 2.287)]]
    return {"params": {"formats": ["rf8", "apot8", "rf8t2", "e4m3"], "chunks": 256}, "rows": rows, "pairs": pairs}


def test_tinylm_sentences_either_way():
    f = zp.tinylm_facts(_tiny_rec(-0.02, True))
    assert "(lower for rf8, paired 95 % interval of rf8 − apot8 [-0.0210, -0.0190]" in f[0]
    f = zp.tinylm_facts(_tiny_rec(0.02, True))
    assert "(higher for rf8," in f[0]
    f = zp.tinylm_facts(_tiny_rec(0.0005, False))
    assert "no significant difference" in f[0]
    assert "the best RF8 variant (rf8t2, of rf8t2) against E4M3" in f[1] and "no significant difference" in f[1]


def test_checked_in_tinylm_record():
    rec = zp.load_tinylm()
    fm = rec["params"]["formats"]
    assert {"rf8", "apot8", "e4m3", "rf8t2", "mxfp4", "nvfp4"} <= set(fm) and len(fm) >= 10
    assert len(rec["rows"]) == len(fm) and rec["params"]["chunks"] >= 128
    facts = zp.tinylm_facts(rec)
    assert facts[0].startswith("TinyLM weight-only, RF8 against APoT") and "E4M3" in facts[1]


@pytest.mark.parametrize("argv,msg", [(["study", "zoo-tinylm", "--formats", "rf8,posit16"], "posit16 has no weight role"),
                                      (["study", "zoo-tinylm", "--formats", "rf9"], "unknown format 'rf9'")])
def test_zoo_tinylm_cli_bad_input(argv, msg, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and err.strip().count("\n") == 0


def test_flow_report_section_from_records():
    md = "\n".join(zp.report_markdown())
    assert md.startswith("## The format zoo (checked-in records, not this run)")
    assert "- RF8 against APoT at equal bits" in md and "- TinyLM weight-only, RF8 against APoT" in md
    assert "weight-only, MiniLM 1 − cosine against product-stage area: the front of" in md


def test_prove_summary_counts():
    from rf8sim.study.zoo.report import prove_summary

    rows = [{"a": "e4m3", "w": "rf8", "pairs": 1 << 16, "proved": True, "method": "whole"},
            {"a": "e4m3", "w": "lns8", "pairs": 1 << 16, "proved": True, "method": "whole after abc -g AND"},
            {"a": "bf16", "w": "lns8", "pairs": 1 << 24, "proved": False, "method": None},
            {"a": "int8", "w": "lns8", "pairs": 1 << 16, "proved": False, "method": "whole"}]
    s = prove_summary(rows)
    assert s.startswith("2 of 4 product stages SAT-proved") and "131,072 pairs in all; 1 whole, 1 whole after abc" in s
    assert "proof FAILED for int8 × lns8" in s and "no proof finished in time for bf16 × lns8" in s


@pytest.mark.parametrize("argv,msg", [(["study", "zoo-prove", "--pairs", "e4m3:nope"], "unknown format 'nope'"),
                                      (["study", "zoo-prove", "--pairs", "e4m3"], "--pairs must be A:W pairs"),
                                      (["study", "zoo-prove", "--whole-timeout", "0"], "must be >= 1")])
def test_zoo_prove_cli_bad_input(argv, msg, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and err.strip().count("\n") == 0


def test_block_formats_ride_on_their_element_stage():
    zoo = _zoo()
    zoo["minilm_cosine"] += [{"format": f, "mode": "weight-only", "loss": l, "loss_lo": l * 0.9, "loss_hi": l * 1.1,
                              "sentences": 10} for f, l in [("e2m1", 8e-2), ("mxfp4", 4e-2), ("nvfp4", 3e-2)]]
    rtl = _rtl()
    rtl["rows"].append({"a": "bf16", "w": "e2m1", "area_um2": 3300, "pj_per_mac": 2.6,
                        "block_formats": ["mxfp4", "nvfp4"]})
    rtl["rows"].append({"a": "e4m3", "w": "e2m1", "area_um2": 2300, "pj_per_mac": 2.4,
                        "block_formats": ["mxfp4", "nvfp4"]})  # mixed formats: no point at all
    by = {p["unit"]: p for p in zp.pareto_points(zoo, rtl, None)}
    assert {"bf16 × e2m1", "bf16 × e2m1 (mxfp4)", "bf16 × e2m1 (nvfp4)"} <= set(by)
    assert not any(u.startswith("e4m3 × e2m1") for u in by)
    assert by["bf16 × e2m1 (nvfp4)"]["loss"] == 3e-2 and by["bf16 × e2m1 (nvfp4)"]["area_um2"] == 3300
    assert by["bf16 × e2m1 (mxfp4)"]["w"] == "mxfp4"
