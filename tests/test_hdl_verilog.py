"""Verilog export: checked-in defaults regenerate byte for byte, lint clean, Verilog-2005, CLI."""

import subprocess

import pytest
import toolcheck

from rf8sim.cli import main
from rf8sim.hdl.mac import MacConfig
from rf8sim.hdl.verilog import DEFAULT_CONFIGS, default_verilog_dir, generate_verilog, lint, module_name


def _defaults():
    out = []
    for a, w, acc, lanes, o in DEFAULT_CONFIGS:
        cfg = MacConfig.make(a, w, acc, lanes, o)
        out.append((cfg, default_verilog_dir() / f"{module_name(cfg)}.v"))
    return out


def test_checked_in_verilog_regenerates_byte_for_byte():
    files = _defaults()
    from rf8sim.hdl.verilog16 import DEFAULT_CONFIGS16  # the W8A16 files: tests/test_hdl_w8a16.py

    assert len(files) + len(DEFAULT_CONFIGS16) == len(list(default_verilog_dir().glob("*.v")))
    for cfg, path in files:
        text, latency = generate_verilog(cfg.a_fmt, cfg.w_fmt, cfg.acc, cfg.lanes, cfg.out)
        assert path.read_text() == text, f"{path.name} is stale: run `python -m rf8sim.hdl.verilog`"
        assert f"latency={latency}:" in text.splitlines()[2]


def test_header_states_parameters():
    text, latency = generate_verilog("rf8", "int8", "16:32", 4, "fp32")
    head = "\n".join(text.splitlines()[:8])
    for s in ("a_fmt=rf8", "w_fmt=int8", "acc=16:32", "lanes=4", "out=fp32", f"latency={latency}"):
        assert s in head
    assert "module mac_rf8xint8_f16w32_l4_fp32(" in text
    for port in ("clk", "rst", "in_valid", "in_clear", "in_a", "in_w", "out_valid", "out_acc",
                 "out_overflow", "out_invalid", "out_fp32"):
        assert f" {port};" in text or f" {port} " in text  # declared as a port


@pytest.mark.verilator
@toolcheck.verilator
def test_lint_clean_with_verilator():
    for _, path in _defaults():
        lint(path, top=path.stem)  # raises on any warning


@toolcheck.needs(toolcheck.iverilog_available, "Icarus Verilog", toolcheck.ICARUS_HINT)
def test_plain_verilog_2005(tmp_path):
    for _, path in _defaults():
        r = subprocess.run(["iverilog", "-g2005", "-o", str(tmp_path / "x.vvp"), str(path)],
                           capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr.strip(), (path.name, r.stderr)


def test_cli_verilog(tmp_path, capsys):
    out = tmp_path / "mac.v"
    assert main(["verilog", "--a-fmt", "e4m3", "--w-fmt", "e4m3", "--acc", "16:32", "--lanes", "2",
                 "--result", "fp32", "-o", str(out)]) == 0
    assert "latency 2" in capsys.readouterr().out
    text = out.read_text()
    assert text == generate_verilog("e4m3", "e4m3", "16:32", 2, "fp32")[0]
    # never overwrite without --force
    assert main(["verilog", "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == text
    assert main(["verilog", "-o", str(out), "--force"]) == 0
    # bad input: one-line errors
    for argv, msg in [(["--a-fmt", "fp9"], "unknown format"), (["--lanes", "0"], "lanes"),
                      (["--acc", "20:21"], "too narrow"), (["--acc", "4:300"], "width")]:
        assert main(["verilog", "-o", str(tmp_path / "y.v"), *argv]) == 2
        assert msg in capsys.readouterr().err
