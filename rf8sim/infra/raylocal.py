"""A real multi-node Ray cluster on this machine, over loopback: for tests and scaling measurements.

``LocalRayCluster(nodes=2)`` runs ``ray start --head`` and ``nodes - 1`` times
``ray start --address``, each node with its own CPUs, its own resource label
``rf8sim_node<i>`` and its own temporary folder, all on 127.0.0.1.  :meth:`stop` ends
exactly the processes those commands started (found by their temporary folders, plus
their descendants), never other Ray clusters on the machine, and is safe to call twice.
Every wait has a timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import RF8SimError

__all__ = ["LocalRayCluster", "free_port", "ray_executable"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_executable() -> str | None:
    exe = Path(sys.executable).parent / "ray"
    return str(exe) if exe.exists() else shutil.which("ray")


class LocalRayCluster:
    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, timeout_s: float = 180.0, env: dict | None = None,
                 object_store_mb: int = 200):
        if nodes < 1:
            raise RF8SimError(f"a cluster needs at least one node, got {nodes}")
        self.nodes, self.cpus, self.timeout = nodes, cpus_per_node, timeout_s
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self.object_store = object_store_mb * 1024 * 1024
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_port = free_port()  # Ray Client server on the head (not the default 10001: may be taken)
        self.client_address = f"ray://127.0.0.1:{self.client_port}"
        # short paths: Ray's Unix sockets live below them (108-byte limit)
        self.tmp = Path(tempfile.mkdtemp(prefix="rf8ray", dir="/tmp"))
        self.pids: set[int] = set()
        self.log: list[str] = []

    # -- start / stop
    def _ray(self, args: list[str], node: int) -> None:
        exe = ray_executable()
        if exe is None:
            raise RF8SimError("the `ray` command is not installed: pip install 'rf8sim[cluster]'")
        cmd = [exe, "start", *args, "--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}", "--num-gpus=0",
               f"--resources={json.dumps({f'rf8sim_node{node}': 1})}", "--disable-usage-stats",
               f"--object-store-memory={self.object_store}"]
        try:
            r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=self.timeout,
                               cwd=self.tmp)
        except subprocess.TimeoutExpired:
            self._collect()
            raise RF8SimError(f"`ray start` of node {node} did not return within {self.timeout:.0f} s") from None
        finally:
            self._collect()
        self.log.append(r.stdout + r.stderr)
        if r.returncode != 0:
            raise RF8SimError(f"`{' '.join(cmd)}` failed ({r.returncode}):\n{(r.stderr or r.stdout)[-2000:]}")

    def start(self) -> "LocalRayCluster":
        try:
            self._ray(["--head", f"--port={self.port}", f"--ray-client-server-port={self.client_port}",
                       "--include-dashboard=false",
                       f"--temp-dir={self.tmp / 'n0'}"], 0)
            for i in range(1, self.nodes):
                self._ray([f"--address={self.address}", f"--temp-dir={self.tmp / f'n{i}'}"], i)
            self.wait_nodes(self.nodes)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_nodes(self, n: int) -> None:
        """Until ``n`` nodes are alive (asked through ``ray status``-free GCS query in a subprocess)."""
        code = ("import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False);"
                "print(sum(1 for x in ray.nodes() if x['Alive']))")
        deadline = time.monotonic() + self.timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                r = subprocess.run([sys.executable, "-c", code, self.address], env=self.env, capture_output=True,
                                   text=True, timeout=max(5.0, deadline - time.monotonic()))
                last = (r.stdout.strip().splitlines() or [""])[-1]
                if last.isdigit() and int(last) >= n:
                    return
            except subprocess.TimeoutExpired:
                break
            time.sleep(1.0)
        raise RF8SimError(f"the local Ray cluster at {self.address} did not reach {n} alive node(s) within "
                          f"{self.timeout:.0f} s (last count: {last!r})")

    def _collect(self) -> None:
        """Remember every process whose command line names our temporary folder, and its descendants."""
        import psutil

        mark = str(self.tmp)
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if any(mark in a for a in (p.info["cmdline"] or [])):
                    self.pids.add(p.pid)
                    self.pids.update(c.pid for c in p.children(recursive=True))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue

    def worker_pids(self, title: str = "ray::") -> list[int]:
        """Worker processes of this cluster whose title starts with ``title`` (e.g. ``ray::rf8sim_task``)."""
        import psutil

        self._collect()
        out = []
        for pid in sorted(self.pids):
            try:
                p = psutil.Process(pid)
                cmd = p.cmdline()
                for c in p.children(recursive=True):
                    self.pids.add(c.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if cmd and cmd[0].startswith(title):
                out.append(pid)
        # workers started after the last scan: children of our raylets
        for pid in list(self.pids):
            try:
                for c in psutil.Process(pid).children(recursive=True):
                    if c.pid not in out and (c.cmdline() or [""])[0].startswith(title):
                        out.append(c.pid)
                        self.pids.add(c.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return sorted(set(out))

    def stop(self) -> None:
        """End this cluster's processes (SIGTERM, then SIGKILL after a grace period) and remove its folder."""
        import psutil

        self._collect()
        procs = []
        for pid in sorted(self.pids):
            try:
                p = psutil.Process(pid)
                procs.append(p)
                procs.extend(p.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
        for p in procs:
            try:
                p.send_signal(signal.SIGTERM)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=3)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        self.pids.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
