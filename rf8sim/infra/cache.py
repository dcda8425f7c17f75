"""One cache root for everything rf8sim caches, every entry keyed by a content hash.

The root is, in order: the ``--cache-dir`` a command was given (:func:`set_root`), the
``RF8SIM_CACHE`` environment variable, or ``build/cache`` under the working directory.
Below it, one folder per kind of entry:

========== =====================================================================
``numba``  Numba's compiled kernels (``NUMBA_CACHE_DIR``, unless set explicitly)
``synth``  yosys runs, keyed by the Verilog, the scripts, the Liberty file, yosys
``hdl``    simulator builds, keyed by the Verilog, the testbench, the simulator
``model``  trained study models, keyed by the model section, seed, torch and code
``data``   generated data sets (MNIST-1D), keyed by seed and size
``tasks``  results of cluster/parallel tasks (:mod:`rf8sim.infra.cluster`), keyed by a hash
           of the task's inputs: its arguments, the generated Verilog where it has
           one, and the version of the code it runs (:func:`code_version`)
``osu018`` the osu018 Liberty file when it is not installed system-wide
========== =====================================================================

Entries are written atomically (temporary file + rename), so parallel workers and an
interrupted run never leave a half-written entry; a damaged entry is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path

from ..errors import RF8SimError

__all__ = ["root", "set_root", "subdir", "content_hash", "code_version", "TaskCache", "ENV", "CacheError",
           "check_root"]

ENV = "RF8SIM_CACHE"
_ROOT: Path | None = None


def set_root(path: "str | os.PathLike | None") -> None:
    """Use ``path`` as the cache root for this process (``--cache-dir``); None restores the default.

    The environment variable is set too, so that subprocesses and local workers see the
    same root.
    """
    global _ROOT
    if path is None:
        _ROOT = None
        return
    _ROOT = Path(path).expanduser().absolute()
    os.environ[ENV] = str(_ROOT)
    import sys

    if os.environ.get("RF8SIM_NUMBA_CACHE_DEFAULT") and "numba" not in sys.modules:
        os.environ["NUMBA_CACHE_DIR"] = str(_ROOT / "numba")


def root() -> Path:
    """The cache root (absolute): ``set_root`` > ``$RF8SIM_CACHE`` > ``./build/cache``."""
    if _ROOT is not None:
        return _ROOT
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser().absolute()
    return (Path.cwd() / "build" / "cache").absolute()


class CacheError(RF8SimError, OSError):
    """The cache root cannot be used: a file, or on a read-only / unwritable disk."""


def check_root(path: "str | os.PathLike | None" = None) -> Path:
    """Check (before any work, creating nothing) that the cache root - ``path`` (``--cache-dir``) or
    :func:`root` - is a folder that can be written or created; CacheError says what to do otherwise."""
    if path is not None:
        p, where = Path(path).expanduser().absolute(), "--cache-dir"
    else:
        p = root()
        where = ("the cache root" if _ROOT is not None else f"{ENV}" if os.environ.get(ENV)
                 else "the default cache root (build/cache in the working folder)")
    fix = f"pass --cache-dir DIR or set {ENV} to a writable folder"
    if p.exists() and not p.is_dir():
        raise CacheError(f"{where} {p} is a file; the cache root is a folder ({fix})")
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise CacheError(f"{where} {p} cannot be created: {probe} is a file ({fix})")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise CacheError(f"{where} {p} cannot be written ({probe} is read-only or not writable); {fix}")
    return p


def in_root(filename) -> bool:
    """Whether ``filename`` lies in the cache root (for turning an OSError there into a one-line error)."""
    try:
        Path(os.path.abspath(filename)).relative_to(root())
        return True
    except (TypeError, ValueError):
        return False


def subdir(name: str, override: "str | os.PathLike | None" = None) -> Path:
    """``root()/name`` (or ``override/name`` for an explicit root), not created."""
    return (Path(override).expanduser().absolute() if override is not None else root()) / name


def _jsonable(obj):
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, bytes):
        return {"sha256": hashlib.sha256(obj).hexdigest()}
    try:
        import numpy as np

        if isinstance(obj, np.ndarray):
            return {"dtype": str(obj.dtype), "shape": list(obj.shape),
                    "sha256": hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()}
        if isinstance(obj, np.generic):
            return obj.item()
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch

        if isinstance(obj, torch.Tensor):
            return _jsonable(obj.detach().cpu().numpy())
    except ImportError:  # pragma: no cover
        pass
    return str(obj)


def content_hash(*parts, n: int = 24) -> str:
    """Hash of JSON-able parts (dataclasses, numpy arrays and tensors by content)."""
    blob = json.dumps(parts, sort_keys=True, default=_jsonable, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


_CODE: dict = {}


def code_version(*packages: str) -> str:
    """Hash of the source files of rf8sim sub-packages/modules (default: the whole package).

    Part of every task key, so that a changed implementation never returns a stale result.
    """
    key = packages or ("",)
    if key in _CODE:
        return _CODE[key]
    pkg = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for name in key:
        p = pkg / name.replace(".", "/") if name else pkg
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p.with_suffix(".py")]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(pkg)).encode() + b"\0" + f.read_bytes() + b"\0")
    _CODE[key] = h.hexdigest()[:16]
    return _CODE[key]


def json_default(o):
    """``json.dumps(default=...)`` for numpy scalars and arrays and paths (the cache's and the records' JSON)."""
    try:
        import numpy as np

        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return float(o)
        if isinstance(o, np.bool_):
            return bool(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def _dumps(value) -> str:
    # key order kept (it is the producer's, deterministic); NaN/inf kept as JSON's NaN/Infinity
    return json.dumps(value, default=json_default)


def canonical(value):
    """The value as it comes back from the cache (a JSON round trip): fresh and cached results
    are then the same Python objects, so outputs do not depend on what was cached."""
    return json.loads(_dumps(value))


class TaskCache:
    """JSON results of tasks under ``root/tasks/<kind>/<key>.json``."""

    def __init__(self, kind: str, base: "str | os.PathLike | None" = None):
        self.dir = subdir("tasks", base) / kind

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def get(self, key: str):
        """The cached result, or None (missing or damaged)."""
        f = self.path(key)
        try:
            return json.loads(f.read_text())["result"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, result, label: str = "") -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        text = '{"label": ' + json.dumps(label) + ', "result": ' + _dumps(result) + "}\n"
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
