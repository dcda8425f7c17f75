"""The characterized sky130 Liberty against the published one, per arc and per table point.

The published sky130_fd_sc_hd typical library (SkyWater, Apache-2.0; the copy OpenSTA ships as
``examples/sky130hd_tt.lib.gz``) is the reference, used for validation only.  Every table of the
characterized library whose (pin, related pin, arc kind, table) exists in the reference is compared
at the characterized points, which are a subset of the reference's index points.  A point is
*within* when ``|ours - ref| <= tol * |ref|``; tolerances: delays and transitions 10 %, internal
energies 20 %, pin capacitances 10 %.  Setup/hold constraints and leakage are reported, not judged.

The published library was characterized from layout-extracted netlists (wiring and diffusion
capacitance) and with the original (discrete) transistor models; the wheel ships schematic netlists
and the newer continuous models, so agreement is not expected everywhere; the record says where.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import TechError
from .cells import CELLS

__all__ = ["compare", "print_summary", "write_compare_record", "TOLERANCE", "REFERENCE", "classify"]

#: the published library, checked in for validation only (tests/data/README.md says where it is from)
REFERENCE = Path("tests/data/sky130hd_tt_subset.lib.gz")
TOLERANCE = {"delay": 0.10, "transition": 0.10, "energy": 0.20, "capacitance": 0.10}


def classify(table: str) -> str | None:
    if table == "cell_leakage_power":
        return "leakage"
    if table.startswith("cell_"):
        return "delay"
    if table.endswith("_transition"):
        return "transition"
    if table.endswith("_power"):
        return "energy"
    if table.endswith("_constraint"):
        return "constraint"
    if table.endswith("capacitance"):
        return "capacitance"
    return None


def _positions(ours, ref):
    if ours is None:
        return [0]
    if ref is None:
        return None
    pos = []
    for x in ours:
        hit = np.flatnonzero(np.isclose(ref, x, rtol=2e-4, atol=1e-9))
        if not len(hit):
            return None
        pos.append(int(hit[0]))
    return pos


def _default_reference() -> Path:
    from ..infra.resources import source_root

    root = source_root()
    p = (root / REFERENCE) if root else REFERENCE
    if not p.is_file():
        raise TechError(f"the published reference Liberty {REFERENCE} is missing (it ships with the checkout only); "
                        "pass --reference FILE")
    return p


def compare(ours=None, reference=None) -> dict:
    """Compare every characterized table point with the reference's; JSON-able result."""
    from . import liberty as liberty_path
    from .libfile import read_cells, tables

    ours = Path(ours) if ours else liberty_path("sky130")
    reference = Path(reference) if reference else _default_reference()
    names = [c.full_name for c in CELLS]
    mine = read_cells(ours, None)
    names = [n for n in names if n in mine]
    theirs = read_cells(reference, names)
    points = []  # (cell, pin, related, key, table, kind, ours, ref)
    unmatched = []
    for n in names:
        a, b = tables(mine[n]), tables(theirs[n])
        for key, (i1, i2, vals) in a.items():
            kind = classify(key[3])
            if kind is None:
                continue
            if key not in b:
                unmatched.append("/".join([n.split("__")[-1], *[k for k in key if k]]))
                continue
            r1, r2, rv = b[key]
            if kind == "constraint" and i1 is None and r1 is not None:  # scalar: characterized at one point
                from .charseq import CONSTRAINT_SLEWS_NS

                i1 = i2 = np.array(CONSTRAINT_SLEWS_NS[:1])
            p1, p2 = _positions(i1, r1), _positions(i2, r2)
            if p1 is None or p2 is None:
                unmatched.append("/".join([n.split("__")[-1], *[k for k in key if k]]) + " (index)")
                continue
            vals = np.asarray(vals, float).reshape(len(i1) if i1 is not None else 1, -1)
            rv = np.asarray(rv, float).reshape(len(r1) if r1 is not None else 1, -1)
            for ii, pi in enumerate(p1):
                for jj, pj in enumerate(p2):
                    points.append((n, *key, kind, float(vals[ii, jj]), float(rv[pi, pj])))
    return _summarize(points, unmatched, ours, reference)


def _within(kind, o, r):
    tol = TOLERANCE.get(kind)
    return None if tol is None else abs(o - r) <= tol * abs(r)


def _summarize(points, unmatched, ours, reference) -> dict:
    kinds = defaultdict(lambda: {"points": 0, "within": 0, "ratios": [], "arcs": set(), "arcs_within": set(),
                                 "arcs_out": set()})
    cells = defaultdict(lambda: defaultdict(lambda: {"points": 0, "within": 0, "ratios": []}))
    for n, pin, rel, key, table, kind, o, r in points:
        k = kinds[kind]
        k["points"] += 1
        ok = _within(kind, o, r)
        if ok:
            k["within"] += 1
        if r != 0 and math.isfinite(o / r):
            k["ratios"].append(o / r)
        arc = (n, pin, rel, key, table)
        k["arcs"].add(arc)
        if ok is False:
            k["arcs_out"].add(arc)
        c = cells[n.split("__")[-1]][kind]
        c["points"] += 1
        c["within"] += bool(ok)
        if r != 0:
            c["ratios"].append(o / r)
    summary = {}
    for kind, k in sorted(kinds.items()):
        ratios = np.array(k["ratios"]) if k["ratios"] else np.array([float("nan")])
        judged = kind in TOLERANCE
        summary[kind] = {"tolerance": TOLERANCE.get(kind), "points": k["points"],
                         "within": k["within"] if judged else None,
                         "tables": len(k["arcs"]),
                         "tables_all_within": (len(k["arcs"]) - len(k["arcs_out"])) if judged else None,
                         "median_ratio": round(float(np.median(ratios)), 4),
                         "p10_ratio": round(float(np.percentile(ratios, 10)), 4),
                         "p90_ratio": round(float(np.percentile(ratios, 90)), 4)}
    per_cell = {}
    for c, ks in cells.items():
        per_cell[c] = {kind: {"points": v["points"], "within": v["within"] if kind in TOLERANCE else None,
                              "median_ratio": round(float(np.median(v["ratios"])), 4) if v["ratios"] else None}
                       for kind, v in ks.items()}
    return {"kind": "sky130-char-compare", "ours": _rel(ours), "reference": _rel(reference),
            "tolerance": TOLERANCE, "summary": summary, "cells": per_cell, "unmatched": sorted(unmatched),
            "n_points": len(points)}


def _rel(p) -> str:
    from ..infra.resources import source_root

    p = Path(p).absolute()
    root = source_root()
    try:
        return str(p.relative_to(root)) if root else p.name
    except ValueError:
        return p.name


def print_summary(res: dict, fh) -> None:
    fh.write(f"{res['ours']} vs {res['reference']}: {res['n_points']} table points\n")
    fh.write(f"{'quantity':<12} {'tol':>5} {'points':>7} {'within':>7} {'tables':>7} {'all in':>7} "
             f"{'median':>7} {'p10':>7} {'p90':>7}\n")
    for kind, s in res["summary"].items():
        tol = "-" if s["tolerance"] is None else f"{s['tolerance']:.0%}"
        w = "-" if s["within"] is None else str(s["within"])
        a = "-" if s["tables_all_within"] is None else str(s["tables_all_within"])
        fh.write(f"{kind:<12} {tol:>5} {s['points']:>7} {w:>7} {s['tables']:>7} {a:>7} {s['median_ratio']:>7.3f} "
                 f"{s['p10_ratio']:>7.3f} {s['p90_ratio']:>7.3f}\n")
    if res["unmatched"]:
        fh.write(f"not in the reference: {', '.join(res['unmatched'])}\n")


def write_compare_record(path, res: dict, force: bool = False):
    from ..infra.records import write_record

    return write_record(path, res, overwrite=force)
