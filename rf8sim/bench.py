"""``rf8sim bench``: every part's benchmarks, printed as ratios against baselines measured in the same run.

Each part provides ``rf8sim/<part>/bench.py`` with ``run(quick: bool) -> list[dict]``;
a row has ``part``, ``name``, ``value``, ``unit`` and optionally ``baseline`` (its
name), ``ratio`` (ours / baseline, "higher is better" unless ``lower_is_better``)
and ``goal`` (text).  Timings are wall-clock on a possibly noisy machine, so each
ratio compares two measurements taken back to back in this process.
"""

from __future__ import annotations

import importlib
import json
import platform
import time

PARTS = ("golden", "hdl", "training")


def machine() -> str:
    import os

    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}"


def run(parts=PARTS, quick: bool = False, json_out: str | None = None) -> list[dict]:
    from rich.console import Console
    from rich.table import Table

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
    if json_out:
        with open(json_out, "w") as fh:
            json.dump({"machine": machine(), "rows": rows}, fh, indent=2)
    return rows
