"""The cluster scaling measurement: one study sweep, serial in-process and on 1..N local Ray nodes.

``rf8sim study cluster-scaling --config scale64 --nodes 1,2 --record results/cluster-scaling.json``
trains the sweep's model once (not timed), then runs the sweep's tasks

* serially in this process (the reference), and
* on a real local Ray cluster of 1, 2, ... nodes (:class:`rf8sim.infra.raylocal.LocalRayCluster`, one CPU
  per node, loopback), each run with an empty task cache,

and records per run the wall time of the sweep (cluster start-up excluded, reported apart), the
CPU-seconds of the driver and of every process of the cluster (raylets, GCS, workers), the
machine's load average before and after, and whether the results files are byte-identical to
the serial run's.  docs/study.md's table is generated from the record (``cluster:scaling``).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["measure", "render_table", "RECORD"]

#: the checked-in record docs/study.md quotes
RECORD = Path(__file__).resolve().parents[3] / "results" / "cluster-scaling.json"


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _cluster_cpu(c) -> float:
    """CPU-seconds of every live process of the local cluster (daemons and workers)."""
    import psutil

    c.worker_pids()  # refresh the process list (workers started since)
    tot = 0.0
    for pid in c.pids:
        try:
            t = psutil.Process(pid).cpu_times()
            tot += t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return tot


def _files(out: Path) -> dict:
    import hashlib

    return {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in ("results.csv", "results.json")}


def measure(config: str = "scale64", nodes=(1, 2), progress: bool = True, console=None) -> dict:
    """Run the measurement; returns the record's payload (see the module docstring)."""
    from rf8sim.infra.console import Console

    from ...infra import cluster
    from ...infra.raylocal import LocalRayCluster
    from .area_accuracy import expand_grid, run_sweep
    from ..common.config import resolve_config

    console = console or Console()
    cfg = resolve_config(config)
    work = Path(tempfile.mkdtemp(prefix="rf8scale"))
    runs = []
    try:
        warm = work / "warm"
        # the model and data, trained once, shared by every run (training is not what is measured)
        run_sweep(cfg, work / "out-warm", progress=progress, cache_dir=warm, workers=1, cluster="local",
                  console=console)

        def fresh(name):
            root = work / name
            root.mkdir()
            for d in ("model", "data"):
                if (warm / d).is_dir():
                    shutil.copytree(warm / d, root / d)
            if (warm / "synth").is_dir():
                (root / "synth").symlink_to(warm / "synth", target_is_directory=True)
            return root

        def one(mode, n, spec, root, c=None):
            load0 = os.getloadavg()[0]
            cpu0, ccpu0 = _cpu_self(), (_cluster_cpu(c) if c else 0.0)
            t0 = time.perf_counter()
            res = run_sweep(cfg, work / f"out-{mode}{n}", progress=progress, cache_dir=root, workers=1,
                            cluster=spec, console=console)
            wall = time.perf_counter() - t0
            cpu_d = _cpu_self() - cpu0
            cpu_c = (_cluster_cpu(c) - ccpu0) if c else 0.0
            tasks = res.timings["accuracy_tasks"]
            row = {"mode": mode, "nodes": n, "cpus_per_node": 1 if c else None, "points": len(res.rows),
                   "tasks_computed": tasks["computed"], "tasks_cached": tasks["cached"],
                   "wall_s": round(wall, 2), "tasks_s": round(res.timings["accuracy_s"], 2),
                   "cpu_s_driver": round(cpu_d, 2), "cpu_s_cluster": round(cpu_c, 2),
                   "cpu_s": round(cpu_d + cpu_c, 2), "load_1min_before": round(load0, 2),
                   "load_1min_after": round(os.getloadavg()[0], 2), "files": _files(work / f"out-{mode}{n}")}
            console.print(f"{mode} {n}: {row['wall_s']} s wall, {row['cpu_s']} CPU-s, load {row['load_1min_before']}")
            return row

        runs.append(one("serial", 1, "local", fresh("serial")))
        for n in nodes:
            t0 = time.perf_counter()
            c = LocalRayCluster(nodes=n, cpus_per_node=1)
            try:
                c.start()
                start_s = time.perf_counter() - t0
                cluster.connect(c.address)
                row = one("ray", n, c.address, fresh(f"ray{n}"), c)
                row["cluster_start_s"] = round(start_s, 2)
                runs.append(row)
            finally:
                cluster.shutdown()
                c.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ref = runs[0]["files"]
    for r in runs:
        r["identical_to_serial"] = r["files"] == ref
    return {"config": config, "points": len(expand_grid(cfg)), "area": cfg.area.mode, "runs": runs,
            "note": "2-core VM shared with other engineers' jobs: see provenance.machine.load_1min and each "
                    "run's load; wall times on a loaded machine"}


def render_table(rec: dict | None = None) -> str:
    """Markdown table of the record (docs/study.md, block ``cluster:scaling``)."""
    if rec is None:
        rec = json.loads(RECORD.read_text())
    m = rec["provenance"]["machine"]
    lines = [f"{rec['points']}-point `{rec['config']}` sweep (bit-exact accuracy tasks; area "
             f"{'off' if rec['area'] == 'off' else rec['area']}), on {m['cpu']}, {m['cores']} cores, "
             f"commit {str(rec['provenance'].get('commit'))[:10]}"
             f"{' (dirty)' if rec['provenance'].get('dirty') else ''}; load average "
             f"{m.get('load_1min')} when the record was written: a loaded machine.",
             "",
             "| run | nodes × CPUs | wall (s) | CPU-s (driver + cluster) | cluster start (s) | load before → after "
             "| tasks computed | results files = serial |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rec["runs"]:
        who = "in-process, serial" if r["mode"] == "serial" else "Ray, local nodes"
        nc = "1 (this process)" if r["mode"] == "serial" else f"{r['nodes']} × {r['cpus_per_node']}"
        lines.append(f"| {who} | {nc} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} ({r['cpu_s_driver']:.1f} + "
                     f"{r['cpu_s_cluster']:.1f}) | {r.get('cluster_start_s', '-')} | {r['load_1min_before']:.1f} → "
                     f"{r['load_1min_after']:.1f} | {r['tasks_computed']} | "
                     f"{'byte-identical' if r['identical_to_serial'] else 'DIFFERENT'} |")
    return "\n".join(lines) + "\n"
