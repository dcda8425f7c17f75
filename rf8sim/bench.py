"""``rf8sim bench``: every part's benchmarks, printed as ratios against baselines measured in the same run.

Each part provides ``rf8sim/<part>/bench.py`` with ``run(quick: bool) -> list[dict]``;
a row has ``part``, ``name``, ``value``, ``unit`` and optionally ``baseline`` (its
name), ``ratio`` (ours / baseline, "higher is better" unless ``lower_is_better``)
and ``goal`` (text).  Timings are wall-clock on a possibly noisy machine, so each
ratio compares two measurements taken back to back in this process.
"""

from __future__ import annotations

import importlib
import platform
import time
from pathlib import Path

PARTS = ("golden", "hdl", "training")

#: The checked-in record of ``make bench`` that README's "Measured here" table is generated from.
RECORD = Path(__file__).resolve().parents[1] / "results" / "bench.json"


def machine() -> str:
    import os

    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}"


def run(parts=PARTS, quick: bool = False, json_out: str | None = None, record: str | None = None,
        force: bool = False) -> list[dict]:
    """Run every part's benchmarks; ``record``: write them with provenance (rf8sim.records) to that file."""
    from rich.console import Console
    from rich.table import Table

    from . import fileio, records

    for path in (json_out, record):
        if path:
            fileio.check_output_path(path, overwrite=force)  # before minutes of work
    prov = records.provenance()  # the commit and diff the run started from
    rows: list[dict] = []
    console = Console()
    for part in parts:
        try:
            mod = importlib.import_module(f"rf8sim.{part}.bench")
        except ModuleNotFoundError as e:
            console.print(f"[yellow]bench: part {part!r} has no benchmarks ({e.name} not importable)[/]")
            continue
        t0 = time.perf_counter()
        got = mod.run(quick=quick)
        for r in got:
            r.setdefault("part", part)
        rows += got
        console.print(f"[dim]{part}: {len(got)} rows in {time.perf_counter() - t0:.1f} s[/]")
    t = Table(title=f"rf8sim bench ({machine()})")
    for h in ("part", "benchmark", "value", "baseline", "ratio", "goal"):
        t.add_column(h)
    for r in rows:
        ratio = r.get("ratio")
        t.add_row(r["part"], r["name"], f"{r['value']:.4g} {r.get('unit', '')}", r.get("baseline", ""),
                  "" if ratio is None else f"{ratio:.2f}x", r.get("goal", ""))
    console.print(t)
    payload = {"provenance": prov, "kind": "rf8sim bench", "quick": quick, "parts": list(parts), "rows": rows}
    for path in (json_out, record):
        if path:
            records.write_record(path, payload, overwrite=force)
            console.print(f"record: {path}")
    return rows
