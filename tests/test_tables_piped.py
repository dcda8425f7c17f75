"""Tables stay whole when the output is not a terminal (issue 22, item 2).

rich assumes 80 columns without a TTY and cuts every cell of a wider table to "…";
``rf8sim synth ... | tee log`` was unreadable.  rf8sim.console.Console prints tables at their
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

from rf8sim.console import Console

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
    assert offenders == [], f"use rf8sim.console.Console in {offenders}"
