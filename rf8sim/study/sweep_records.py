"""Records of the MNIST-1D studies and the docs tables rendered from them.

``rf8sim study area-accuracy --config full --record study/results/area-accuracy-full.json`` and
``rf8sim study variants ... --record study/results/variants-gg-shape.json`` write their results
with :func:`rf8sim.records.write_record` (provenance taken when the run started: machine, load,
versions, command, commit, dirty flag).  docs/study.md's "Accuracy vs MAC area" and "Quantization
error vs GG shape" tables (and the sentences that quote numbers) are ``<!-- BEGIN generated:study:... -->``
blocks rendered here (:mod:`rf8sim.docgen`); ``tests/test_docs_sync.py`` checks that they match.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..docgen import DocgenError, register

__all__ = ["SWEEP_RECORD", "VARIANTS_RECORD", "write_sweep_record", "write_variants_record",
           "load_sweep_record", "load_variants_record"]

#: checked-in records (repo-relative)
SWEEP_RECORD = Path("study") / "results" / "area-accuracy-full.json"
VARIANTS_RECORD = Path("study") / "results" / "variants-gg-shape.json"

#: the per-point fields a sweep record keeps (what the docs tables read)
ROW_FIELDS = ("label", "group", "w_format", "a_format", "rounding", "granularity", "block", "acc", "acc_frac",
              "acc_width", "lanes", "accuracy", "fq_accuracy", "area_um2", "nand2_eq", "cells", "pareto",
              "overflow_frac", "n_eval", "error")


def _root() -> Path:
    return Path(__file__).resolve().parents[2]


def write_sweep_record(path, cfg, res, prov: dict, *, overwrite: bool = False) -> Path:
    """The area-accuracy sweep's record: configuration, model summary, every point, iso table, wall time."""
    import os

    from ..records import write_record
    from .area_accuracy import RUN_SPECIFIC_MODEL_KEYS

    cfg_d = cfg.to_dict()
    try:
        load_end = round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover
        load_end = None
    payload = {
        "provenance": prov,
        "kind": "rf8sim-area-accuracy",
        "study": cfg.study.name,
        "config": cfg_d,
        "model": {k: v for k, v in res.model.items() if k not in RUN_SPECIFIC_MODEL_KEYS},
        "model_run": {k: res.model.get(k) for k in RUN_SPECIFIC_MODEL_KEYS if k in res.model},
        "timings": res.timings,
        "load_1min_end": load_end,
        "skipped": res.skipped,
        "iso_accuracy": res.iso,
        "rows": [{k: r.get(k) for k in ROW_FIELDS} for r in res.rows],
    }
    return write_record(path, payload, overwrite=overwrite)


def write_variants_record(path, params: dict, rows: list, prov: dict, *, overwrite: bool = False) -> Path:
    """``rf8sim study variants``' record: the parameters and every SQNR row."""
    from ..records import write_record

    return write_record(path, {"provenance": prov, "kind": "rf8sim-variants-gg-shape", "params": params,
                               "rows": rows}, overwrite=overwrite)


def _load(rel: Path, kind: str, how: str, path=None) -> dict:
    p = Path(path) if path else _root() / rel
    if not p.is_file():
        raise DocgenError(f"record {p} is missing: run `{how}` and check it in")
    rec = json.loads(p.read_text())
    if rec.get("kind") != kind:
        raise DocgenError(f"{p} is not a {kind} record (kind {rec.get('kind')!r})")
    return rec


def load_sweep_record(path=None) -> dict:
    return _load(SWEEP_RECORD, "rf8sim-area-accuracy",
                 f"rf8sim study area-accuracy --config full --record {SWEEP_RECORD}", path)


def load_variants_record(path=None) -> dict:
    return _load(VARIANTS_RECORD, "rf8sim-variants-gg-shape",
                 f"rf8sim study variants --record {VARIANTS_RECORD}", path)
