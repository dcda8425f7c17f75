"""Verilog export: checked-in defaults regenerate byte for byte, lint clean, Verilog-2005, CLI."""

import subprocess

import pytest
import toolcheck

from rf8sim.cli import main
from rf8sim.hdl import MacSpec, verilog_of
from rf8sim.hdl.verilog import DEFAULT_CONFIGS, default_specs, default_verilog_dir, generate_verilog, lint


def _defaults():
    return [(spec, default_verilog_dir() / f"{spec.module_name()}.v") for spec in default_specs()]


def test_checked_in_verilog_regenerates_byte_for_byte():
    """Every checked-in unit (fixed, fp32 and aligned accumulators) from its spec, byte for byte."""
    files = _defaults()
    assert len(files) == len(DEFAULT_CONFIGS) == len(list(default_verilog_dir().glob("*.v"))) == 11
    assert {s.kind for s, _ in files} == {"fixed", "fp32", "aligned"}
    for spec, path in files:
        text, latency = verilog_of(spec)
        assert path.read_text() == text, f"{path.name} is stale: run `python -m rf8sim.hdl.verilog`"
        assert f"latency={latency}:" in text.splitlines()[2]
        assert f"module {spec.module_name()}(" in text


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
                      (["--acc", "20:21"], "too narrow"), (["--acc", "4:300"], "width"),
                      (["--a-fmt", "bf16", "--acc", "exact"], "'fp32' or 'aligned:K:M'"),
                      (["--a-fmt", "bf16", "--acc", "fp32", "--result", "fixed"], "needs a fixed-point accumulator"),
                      (["--acc", "fp32"], "16-bit float activations (bf16, fp16)")]:
        assert main(["verilog", "-o", str(tmp_path / "y.v"), *argv]) == 2
        assert msg in capsys.readouterr().err


def test_cli_verilog_w8a16(tmp_path, capsys):
    out = tmp_path / "u.v"
    assert main(["verilog", "--a-fmt", "bf16", "--w-fmt", "rf8", "--acc", "aligned:32:16", "--lanes", "4",
                 "-o", str(out)]) == 0
    text = out.read_text()
    assert "module mac_bf16xrf8_al32m16_l4(" in text and "input [63:0] in_a" in text
    assert "input [31:0] in_w" in text and "output [31:0] out_acc" in text
    assert main(["verilog", "--a-fmt", "bf16", "--acc", "fp32", "-o", str(out)]) != 0   # exists, no --force
    assert out.read_text() == text
    capsys.readouterr()
    # names are case-insensitive; --result fp32 is what these units give: out_acc holds the float32 bits
    u = tmp_path / "v.v"
    assert main(["verilog", "--a-fmt", "BF16", "--w-fmt", "RF8", "--acc", "FP32", "--result", "fp32", "-o", str(u)]) == 0
    assert "result fp32: out_acc is the float32 bit pattern" in capsys.readouterr().out
    assert u.read_text() == verilog_of(MacSpec.make("bf16", "rf8", "fp32"))[0]


def test_header_regenerate_command_reproduces_the_file(tmp_path, capsys):
    """The `// regenerate:` line of every checked-in file, run as printed, writes that file byte for byte
    (it once said `--out fp32`, which argparse took for `--output`: a fixed-result unit)."""
    import shlex

    n = 0
    for _, path in _defaults():
        line = next(x for x in path.read_text().splitlines() if x.startswith("// regenerate: "))
        argv = shlex.split(line.removeprefix("// regenerate: "))
        assert argv[:2] == ["rf8sim", "verilog"] and argv[-2] == "-o"
        out = tmp_path / argv[-1]
        assert main([*argv[1:-1], str(out)]) == 0, capsys.readouterr().err
        assert out.read_bytes() == path.read_bytes(), path.name
        n += 1
    assert n == 11
