"""A command's --json / --record is written before it prints (issue 22, item 2): a printer that fails
(a bug, a closed pipe, a terminal quirk) cannot lose minutes of simulation or synthesis.

Each test makes the printing raise and checks the record is on disk; before the fix the record was
written after the table and was lost."""

from __future__ import annotations

import json

import pytest

from rf8sim.cli import main


class PrintingBroke(RuntimeError):
    pass


def _broken_print(*a, **k):
    raise PrintingBroke("the printer failed")


def test_rtlsim_record_survives_a_failing_printer(tmp_path, monkeypatch):
    from rf8sim.infra.console import Console
    from rf8sim.hdl import sim

    fake = {"config": {"a_fmt": "rf8", "w_fmt": "rf8", "acc_frac_bits": 20, "acc_width": 49, "lanes": 1,
                       "out": "fixed"}, "simulator": "icarus", "ok": True,
            "runs": {"random": {"beats": 3, "products": 0, "sequences": 1, "overflow_beats": 0, "invalid_beats": 0,
                                "beats_per_s": 1.0, "comparisons": [{"model": "golden", "compared_beats": 3,
                                                                     "mismatched_beats": 0}]}}}
    monkeypatch.setattr(sim, "verify", lambda *a, **k: fake)
    monkeypatch.setattr(Console, "print", _broken_print)
    out = tmp_path / "rtlsim.json"
    with pytest.raises(PrintingBroke):
        main(["rtlsim", "--no-products", "--random", "1", "--json", str(out)])
    assert json.loads(out.read_text())["runs"]["random"]["beats"] == 3


def test_synth_ppa_record_survives_a_failing_printer(tmp_path, monkeypatch):
    from rf8sim.hdl import power, ppa_cli

    monkeypatch.setattr(power, "ppa", lambda *a, **k: {"config": "rf8 x rf8", "fmax_mhz": 1.0})
    monkeypatch.setattr(ppa_cli, "_print", _broken_print)
    out = tmp_path / "ppa.json"
    with pytest.raises(PrintingBroke):
        main(["synth", "--timing", "--json", str(out)])
    assert json.loads(out.read_text())["rows"] == [{"config": "rf8 x rf8", "fmax_mhz": 1.0}]


def test_variants_record_and_csv_survive_a_failing_printer(tmp_path, monkeypatch):
    from rf8sim.study.common import report

    monkeypatch.setattr(report, "print_table", _broken_print)
    rec, csv = tmp_path / "v.json", tmp_path / "v.csv"
    with pytest.raises(PrintingBroke):
        main(["study", "variants", "--shapes", "1", "--formats", "rf8", "--n", "1024", "--record", str(rec),
              "--csv", str(csv)])
    assert json.loads(rec.read_text())["rows"] and csv.read_text().count("\n") > 1


def test_verify_layer_record_survives_a_failing_printer(tmp_path, monkeypatch):
    from rf8sim import verify

    monkeypatch.setattr(verify, "verify_layer", lambda **k: {"ok": True, "complete": False, "checks": [],
                                                             "legs": {"torch": "ran"}, "config": {}})
    monkeypatch.setattr(verify, "print_report", _broken_print)
    out = tmp_path / "vl.json"
    with pytest.raises(PrintingBroke):
        main(["verify-layer", "--no-rtl", "--json", str(out)])
    assert json.loads(out.read_text())["verify_layer"]["ok"] is True


def test_flow_record_survives_a_failing_printer(tmp_path, monkeypatch):
    """`rf8sim flow --record`: the record is written before the summary table (issue 22, item 2)."""
    from rf8sim.study.flow import stages as flow_stages
    from rf8sim.study.common import report

    monkeypatch.setattr(flow_stages, "STAGES", (("train", lambda ctx: {"_detail": "stub"}),))
    monkeypatch.setattr(report, "print_table", _broken_print)
    rec = tmp_path / "flow.json"
    with pytest.raises(PrintingBroke):
        main(["flow", "--quick", "--skip-hdl", "--no-progress", "--out", str(tmp_path / "out"), "--record", str(rec)])
    stages = json.loads(rec.read_text())["stages"]
    assert [s["stage"] for s in stages][0] == "train" and stages[0]["status"] == "ok"


def test_tinylm_record_survives_a_failing_printer(tmp_path, monkeypatch):
    from rf8sim.study.common import report
    from rf8sim.study.tinylm import study as tinylm

    fake = {"points": [{"label": "float32", "chunks": 20, "bpb": 2.0, "bpb_lo": 1.9, "bpb_hi": 2.1, "delta": 0.0,
                        "seconds": 0.1}], "torch_check": [{"mismatches": 0, "outputs": 4}], "layers": ["head"]}
    monkeypatch.setattr(tinylm, "run_tinylm_study", lambda *a, **k: fake)
    monkeypatch.setattr(report, "print_table", _broken_print)
    rec = tmp_path / "tinylm.json"
    with pytest.raises(PrintingBroke):
        main(["study", "tinylm", "--no-progress", "--record", str(rec)])
    assert json.loads(rec.read_text())["tinylm"]["points"][0]["bpb"] == 2.0


def test_thesis_record_survives_a_failing_printer(tmp_path, monkeypatch):
    from rf8sim.study.common import report
    from rf8sim.study.tinylm import thesis

    fake = {"pooled": {"plain": {"gap": {"e4m3": {"diff": 0.001}}, "verdict": {"e4m3": "baseline"}}},
            "torch_check": {"mismatches": 0}}
    monkeypatch.setattr(thesis, "run_thesis", lambda *a, **k: fake)
    monkeypatch.setattr(report, "print_table", _broken_print)
    rec = tmp_path / "thesis.json"
    spec = thesis.ThesisSpec(formats=("rf8", "e4m3"))
    with pytest.raises(PrintingBroke):
        thesis.record_run(spec, rec, progress=False)
    assert json.loads(rec.read_text())["thesis"]["pooled"]["plain"]["verdict"]["e4m3"] == "baseline"
