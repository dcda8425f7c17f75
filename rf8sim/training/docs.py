"""Generated blocks of docs/training.md (``rf8sim docs``): every number from a checked-in record.

* ``training:sweeps`` - the exhaustive float32 sweeps (``rf8sim training-sweep [--fake-quant]
  --record``), records ``training/results/sweep_*.json``;
* ``training:bench`` - the CPU training benchmarks (``training/results/bench_training_cpu.json``,
  written by ``python -m rf8sim.training.bench --record``; else the training rows of ``results/bench.json``);
* ``training:gpu`` - ``python -m rf8sim.training.gpu_check`` on a lent GPU
  (``training/results/gpu_check_*.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..infra.docgen import DocgenError
from ..infra.resources import source_root

__all__ = ["sweeps_table", "bench_table", "gpu_table"]


def _root() -> Path:
    root = source_root()
    if root is None:
        raise DocgenError("the training records live in a source checkout; run `rf8sim docs` there")
    return root


def _load(path: Path) -> dict:
    if not path.is_file():
        raise DocgenError(f"record {path} missing: it is checked in")
    return json.loads(path.read_text())


def _prov(p: dict) -> str:
    m = p.get("machine", {})
    commit = str(p.get("commit"))[:10]
    dirty = " + uncommitted changes" if p.get("dirty") else ""
    return (f"`{p.get('command')}`, {m.get('cpu')} ({m.get('cores')} cores, load {m.get('load_1min')}), "
            f"torch {p.get('versions', {}).get('torch')}, commit {commit}{dirty}, {p.get('utc')}")


def sweeps_table() -> str:
    files = sorted((_root() / "training" / "results").glob("sweep_*.json"))
    if not files:
        raise DocgenError("no training/results/sweep_*.json record")
    out = ["| what | format | rounding | saturate | float32 patterns | compared | mismatches | record |",
           "|---|---|---|---|---|---|---|---|"]
    notes = []
    for f in files:
        d = _load(f)
        span = f"[{d['start']:#x}, {d['stop']:#x})"
        what = "fused fake-quant kernel" if d["kind"] == "training-sweep-fake-quant" else "encode"
        for r in d["rows"]:
            out.append(f"| {r.get('kernel', what)} | {r['format']} | {r['rounding']} | "
                       f"{r.get('saturate', 'yes (fake_quant)')} | {span} | {r['compared']:,} | "
                       f"**{r['mismatches']}** | `{f.name}` |")
        notes.append(f"`{f.name}`: {_prov(d['provenance'])}")
    return "\n".join(out + [""] + [f"- {n}" for n in notes])


def _bench_rows() -> tuple[list, dict, str]:
    f = _root() / "training" / "results" / "bench_training_cpu.json"
    if f.is_file():
        d = _load(f)
        return d["rows"], d["provenance"], f"training/results/{f.name}"
    d = _load(_root() / "results" / "bench.json")
    rows = [r for r in d["rows"] if r.get("part") == "training"]
    if not rows:
        raise DocgenError("results/bench.json has no training rows; rerun `make bench`")
    return rows, d["provenance"], "results/bench.json (training rows)"


def _table(rows: list) -> list[str]:
    out = ["| benchmark | value | baseline | ratio (time) | goal |", "|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r.get("ratio") is None else f"**{r['ratio']:.2f}×**"
        out.append(f"| {r['name']} | {r['value']:.4g} {r.get('unit', '')} | {r.get('baseline', '')} | {ratio} | "
                   f"{r.get('goal', '')} |")
    return out


def bench_table() -> str:
    rows, prov, where = _bench_rows()
    return "\n".join([f"CPU, {_prov(prov)}; record `{where}`.", ""] + _table(rows))


def gpu_table() -> str:
    files = sorted((_root() / "training" / "results").glob("gpu_check_*.json"))
    if not files:
        raise DocgenError("no training/results/gpu_check_*.json record")
    out = []
    for f in files:
        g = _load(f)
        ex = g["exactness"]
        n, bad = sum(r["compared"] for r in ex), sum(r["mismatches"] for r in ex)
        prov = g.get("provenance")
        src = _prov(prov) if prov else "no provenance block (the record predates rf8sim.infra.records)"
        out += [f"`{f.name}`: {g['info']['device_name']}, torch {g['info']['torch']}, {src}. CUDA vs CPU: "
                f"{n:,} values compared, **{bad} mismatches**; numba imported: {g['info'].get('numba_imported')}.",
                ""] + _table(g["bench"]) + [""]
    return "\n".join(out).rstrip("\n")
