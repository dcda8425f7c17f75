"""Tables stay whole when the output is not a terminal (issue 22, item 2).

rich assumes 80 columns without a TTY and cuts every cell of a wider table to "…";
``rf8sim synth ... | tee log`` was unreadable.  rf8sim.infra.console.Console prints tables at their
natural width when piped; every command builds its consoles from it.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from rich.table import Table

from rf8sim.infra.console import Console

ROOT = Path(__file__).resolve().parents[1]


def _wide_table(cols: int = 12) -> Table:
    t = Table(title="wide")
    for i in range(cols):
        t.add_column(f"column number {i}")
    t.add_row(*(f"cell-{i}-with-a-long-value-{i * 1111}" for i in range(cols)))
    return t


def test_console_prints_a_wide_table_whole_when_piped():
    buf = io.StringIO()
    con = Console(file=buf)  # a StringIO is not a terminal: 80 columns by default
    assert not con.is_terminal and con.width == 80
    con.print(_wide_table())
    out = buf.getvalue()
    assert "…" not in out
    found = re.findall(r"cell-(\d+)-with-a-long-value-(\d+)", out)
    assert found == [(str(i), str(i * 1111)) for i in range(12)]  # every cell, whole, on one line
    assert con.width == 80  # text and rules keep the ordinary width
    buf.seek(0)
    buf.truncate(0)
    con.rule("x")
    assert len(buf.getvalue().rstrip("\n")) == 80


def test_cli_table_whole_through_a_pipe(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-m", "rf8sim.cli", "formats"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("│ ")]
    assert len(rows) >= 6
    assert any("nearest,paper,truncate" in ln for ln in rows)  # the last column, uncut
    assert all(ln.endswith("│") for ln in rows)


def test_every_command_uses_the_piping_console():
    """A module that builds a plain rich Console would cut its tables again when piped."""
    offenders = []
    for f in sorted((ROOT / "rf8sim").rglob("*.py")):
        if f.name == "console.py" and f.parent.name == "rf8sim":
            continue
        text = f.read_text(encoding="utf-8")
        if re.search(r"from rich\.console import [^\n]*\bConsole\b|rich\.console\.Console\(", text):
            offenders.append(str(f.relative_to(ROOT)))
    assert offenders == [], f"use rf8sim.infra.console.Console in {offenders}"


# ---- the README tour from a fresh clone, piped to a file (issue 22, "Done when") ------------------------

def test_table_cells_are_text_not_markup(capsys):
    """The flow's summary lost "[transformer]" from "[transformer] model = 'none'" (rich read it as a tag)."""
    from rf8sim.study.common.report import print_table

    print_table([{"stage": "transformer", "detail": "[transformer] model = 'none' ([bold]x[/])"}],
                ["stage", "detail"], headers=["[stage]", "detail"])
    out = capsys.readouterr().out
    assert "[transformer] model = 'none' ([bold]x[/])" in out and "[stage]" in out


def test_synth_title_names_yosys_without_its_build_path(capsys):
    """`rf8sim synth`'s title quoted yosys -V whole: compiler and build path wrapped over two lines."""
    from rf8sim.hdl.synth import _print, short_yosys_version

    v = ("Yosys 0.70 (git sha1 28ba3cb92, Release, Clang /workspace/YoWASP/yosys/wasi-sdk-33.0-x86_64-linux/"
         "share/cmake/../..//bin/clang++ 22.1.0)")
    assert short_yosys_version(v) == "Yosys 0.70 (git sha1 28ba3cb92)"
    assert short_yosys_version("Yosys 0.9+4081") == "Yosys 0.9+4081"
    assert short_yosys_version("unknown") == "unknown"
    row = {"yosys": v, "stage": "mac", "config": {"a_fmt": "rf8", "w_fmt": "rf8", "acc_frac_bits": 16,
                                                  "acc_width": 32, "lanes": 1},
           "generic": {"gates": 1, "flops": 0, "nand2_eq": 1.0, "nand2_eq_seq": 0.0, "depth": 1},
           "liberty": {"area_um2": 10.0}, "synth_s": 0.1}
    _print([row])
    out = capsys.readouterr().out
    assert "rf8sim synth (Yosys 0.70 (git sha1 28ba3cb92))" in out and "/workspace" not in out


def test_cli_warnings_are_one_line_and_progress_slows_down_without_a_terminal(monkeypatch, capsys):
    """A warning under the CLI printed the raising module's path and source line (the quick flow's DeepShape
    warnings); without a terminal tqdm redrew its bars several times a second into the log."""
    import argparse
    import warnings

    from rf8sim import cli

    def fake_parser():
        p = argparse.ArgumentParser()
        p.set_defaults(func=lambda a: print(warnings.formatwarning(
            "use a coarser grid", RuntimeWarning, "/somewhere/rf8sim/study/pipeline.py", 178), end=""),
            command="x")
        return p

    monkeypatch.setattr(cli, "build_parser", fake_parser)
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    before = warnings.formatwarning
    assert cli.main([]) == 0
    assert capsys.readouterr().out == "rf8sim: warning: use a coarser grid\n"
    assert warnings.formatwarning is before  # restored: the library's own callers keep Python's format
    # tqdm reads TQDM_* when it is imported: the CLI imports it after main() starts (in a fresh process)
    code = ("import io, sys; from rf8sim.cli import main; main(['formats']); from tqdm import tqdm; "
            "print('mininterval', tqdm(total=1, disable=False, file=io.StringIO()).mininterval)")
    env = {k: v for k, v in os.environ.items() if k != "TQDM_MININTERVAL"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0 and "mininterval 30.0" in r.stdout, r.stderr[-2000:]


def test_a_missing_study_config_says_how_to_write_one(capsys):
    """The README tour's `--config my_sweep.toml` (a file the newcomer has not written) ends in one line that
    names the shipped configs and where to start a new one."""
    from rf8sim.cli import main

    assert main(["study", "area-accuracy", "--config", "my_sweep.toml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "shipped ones: tiny, small, full, flow" in err
    assert "rf8sim/study/configs/tiny.toml" in err and (ROOT / "rf8sim/study/configs/tiny.toml").is_file()
