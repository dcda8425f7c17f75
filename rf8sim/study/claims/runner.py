"""Runs a recipe module: output path checks, provenance, wall time, JSON, summary table."""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

from .common import RESULTS_DIR, ClaimError, check_out_path, provenance, write_json

__all__ = ["run_claim", "out_path"]


def out_path(name: str, quick: bool, out=None) -> Path:
    """``DIR/NAME.json`` (``NAME.quick.json`` for quick runs); DIR defaults to the checkout's
    training/results for a full run (the recorded results) and to build/claims in the working
    folder for a quick one (a smoke test writes nothing into the checkout)."""
    d = Path(out) if out is not None else RESULTS_DIR if not quick else Path("build") / "claims"
    return d / f"{name}{'.quick' if quick else ''}.json"


def run_claim(name: str, quick: bool = False, seeds: int | None = None, out=None, force: bool = False,
              progress: bool = True, console=None, cluster: str = "local", workers: int = 1,
              use_cache: bool = True) -> dict:
    """Run recipe ``name``; returns the payload it wrote.

    Each recipe module has ``run(quick, seeds, progress, outdir) -> dict`` (with
    ``config``, ``rows``, ``summary``) and ``summary_table(payload) -> (title, headers, rows)``.
    Every seed x arm x setting is a task (:func:`.common.fan_out`): ``cluster`` (local, auto,
    ray://HOST:PORT) and ``workers`` say where they run; results are cached under the cache
    root unless ``use_cache`` is False.
    """
    from rf8sim.infra.console import Console

    from .common import RECIPES

    if name not in RECIPES:
        raise ClaimError(f"unknown claim {name!r}; valid: {', '.join(RECIPES)}, all")
    if seeds is not None and (not isinstance(seeds, int) or seeds < 1):
        raise ClaimError(f"--seeds must be a positive integer, got {seeds!r}")
    from rf8sim.infra.cluster import parse_cluster

    cluster = parse_cluster(cluster)
    if not isinstance(workers, int) or workers < 1:
        raise ClaimError(f"--workers must be a positive integer, got {workers!r}")
    if out is not None:
        from rf8sim.infra.fileio import check_output_dir

        check_output_dir(out)
    path = out_path(name, quick, out)
    check_out_path(path, force)
    # a wide table stays readable when the output is piped to a file
    console = console or Console(width=None if sys.stdout.isatty() else 180)
    mod = importlib.import_module(RECIPES[name])
    import torch

    # These models are tiny: one intra-op thread is as fast as two on an idle
    # machine and far faster on a shared one (no spinning threads).
    threads = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("RF8SIM_CLAIMS_THREADS", "1")))
    prov = provenance()  # the commit the run started from
    prov["torch_threads"] = torch.get_num_threads()
    t0 = time.perf_counter()
    from .common import fan_out_settings

    try:
        with fan_out_settings(cluster=cluster, workers=workers, cache=use_cache):
            payload = mod.run(quick=quick, seeds=seeds, progress=progress, outdir=path.parent)
    finally:
        torch.set_num_threads(threads)
    wall = time.perf_counter() - t0
    payload = {"claim": name, "setting": "quick" if quick else "full",
               "command": f"rf8sim claims {name}" + (" --quick" if quick else "")
               + (f" --seeds {seeds}" if seeds is not None else ""),
               "wall_time_s": round(wall, 2), "cluster": cluster, "workers": workers, "provenance": prov, **payload}
    payload["verdict"] = mod.verdict(payload)  # computed from the recorded numbers by the recipe's stated rule
    write_json(path, payload, force=force)  # checked before the run; exclusive create unless --force
    from .common import print_table

    tables = mod.summary_table(payload)  # one (title, headers, rows) or a list of them
    for title, headers, rows in [tables] if isinstance(tables, tuple) else tables:
        print_table(f"{title}  [{payload['setting']}, {wall:.0f} s]", headers, rows, console=console)
    from rich.markup import escape

    console.print(f"results: {escape(str(path))}")
    return payload
