"""How far ``aligned:K:M`` lands from the ``fp32`` accumulator on real data.

Real all-MiniLM-L6-v2 weights (:func:`rf8sim.workloads.models.load_minilm`) and the inputs of
every ``nn.Linear`` in a real forward pass over real sentences
(:func:`rf8sim.workloads.data.load_sentences`): activations encoded to bf16 (round to nearest
even), weights to rf8 with per-output-channel power-of-two scales.  For each linear layer,
``rows`` token rows are drawn (seeded) and the same codes go through
``gemm(..., acc="fp32")`` and ``gemm(..., acc="aligned:K:M")``.

Per (K, M), over all outputs of all layers: the share bit-identical to fp32, the error in
units in the last place of the fp32 result (``|x - y| / ulp(y)``, ``ulp(y)`` the float32
spacing at y), the relative error ``|x - y| / |y|`` (y the fp32 result, outputs with y = 0
excluded; both blow up on outputs that cancel to near zero, hence the percentiles) and the
per-layer normwise error ``||X - Y||_F / ||Y||_F``.  A context row compares fp32 itself with a
float64 matmul of the same codes (``float64`` rounding error is below 2**-40 relative here).

``rf8sim aligned-error`` runs it and writes ``golden/results/aligned_error.json``
(:func:`rf8sim.infra.records.write_record`); docs/formats.md's table is rendered from that record.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


__all__ = ["KS", "MS", "record_path", "collect_minilm_linears", "measure", "run", "render_table"]

KS = (16, 32, 64)
MS = (8, 10, 12, 16)


def record_path() -> Path:
    """``golden/results/aligned_error.json`` of the checkout (or of the installed package data)."""
    from ...infra.resources import data_dir

    return data_dir("golden") / "results" / "aligned_error.json"


def collect_minilm_linears(sentences: int = 16, rows: int = 48, seed: int = 0):
    """``[(name, x (rows, in) float32, weight (out, in) float32)]`` for every nn.Linear of
    all-MiniLM-L6-v2, ``x`` the layer's real inputs (non-padding tokens) in a forward pass."""
    import torch

    from ...workloads.data import load_sentences
    from ...workloads.models import load_minilm

    model = load_minilm()
    sents = load_sentences(sentences, seed=seed)
    ids, mask = model.tokenize(sents)
    keep = mask.reshape(-1).bool()
    got = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            def hook(m, inp, out, name=name):
                got[name] = inp[0].detach().reshape(-1, inp[0].shape[-1])[keep].float().numpy()
            hooks.append(mod.register_forward_hook(hook))
    with torch.no_grad():
        model(ids, mask)
    for h in hooks:
        h.remove()
    rng = np.random.default_rng(seed)
    mods = dict(model.named_modules())
    out = []
    for name in got:
        x = got[name]
        sel = np.sort(rng.choice(x.shape[0], min(rows, x.shape[0]), replace=False))
        out.append((name, np.ascontiguousarray(x[sel], np.float32),
                    mods[name].weight.detach().float().numpy().copy()))
    return out, len(sents), int(keep.sum())


def _ulps(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``|x - y|`` in units of the float32 spacing at ``y`` (exact: float64 differences of float32s)."""
    y32 = np.asarray(y, np.float32)
    return (np.abs(np.asarray(x, np.float64) - y32.astype(np.float64)) / np.spacing(np.abs(y32)).astype(np.float64))


def _stats(ulp: np.ndarray, rel: np.ndarray, norm: list[float]) -> dict:
    q = (50, 90, 99)
    return {"outputs": int(ulp.size), "bit_identical": float(np.mean(ulp == 0)),
            "ulp": {**{f"p{p}": float(np.percentile(ulp, p)) for p in q}, "max": float(ulp.max()),
                    "mean": float(ulp.mean())},
            "rel": {**{f"p{p}": float(np.percentile(rel, p)) for p in q}, "max": float(rel.max()),
                    "mean": float(rel.mean())},
            "normwise": {"median": float(np.median(norm)), "max": float(np.max(norm))}}


def measure(layers, ks=KS, ms=MS, w_fmt: str = "rf8", progress=None) -> dict:
    """Error statistics of every aligned:K:M (and fp32 vs float64) over ``layers``."""
    from ...golden import codec
    from ...golden.arith import gemm

    prepared = []
    for name, x, wt in layers:
        a = codec.encode(x, "bf16")
        w, ws = codec.quantize(wt, w_fmt, granularity="channel")
        ref = gemm(a, w, "bf16", w_fmt, "fp32", None, ws, "tensor", "channel")
        av = codec.decode(a, "bf16").astype(np.float64)
        wv = codec.decode(w, w_fmt).astype(np.float64) * np.ldexp(1.0, ws.astype(np.int64))[:, None]
        prepared.append((name, a, w, ws, ref, av @ wv.T))
    results = {}
    jobs = [(k, m) for k in ks for m in ms]
    for k, m in jobs:
        ulps, rels, norms = [], [], []
        flags = 0
        for _name, a, w, ws, ref, _f64 in prepared:
            r = gemm(a, w, "bf16", w_fmt, f"aligned:{k}:{m}", None, ws, "tensor", "channel")
            y, xx = ref.as_float32().astype(np.float64), r.as_float32().astype(np.float64)
            ulps.append(_ulps(xx, y).reshape(-1))
            nz = y != 0
            rels.append((np.abs(xx - y)[nz] / np.abs(y[nz])).reshape(-1))
            norms.append(float(np.linalg.norm(xx - y) / np.linalg.norm(y)))
            flags += int(r.overflow.sum() + r.invalid.sum())
        results[f"aligned:{k}:{m}"] = {"K": k, "M": m, "flagged_outputs": flags,
                                       **_stats(np.concatenate(ulps), np.concatenate(rels), norms)}
        if progress:
            progress()
    # context: the fp32 accumulator against a float64 matmul of the same codes
    ulps, rels, norms = [], [], []
    for *_, ref, f64 in prepared:
        y = f64.astype(np.float32)
        ulps.append(_ulps(ref.as_float32(), y).reshape(-1))
        nz = f64 != 0
        rels.append((np.abs(ref.as_float32() - f64)[nz] / np.abs(f64[nz])).reshape(-1))
        norms.append(float(np.linalg.norm(ref.as_float32() - f64) / np.linalg.norm(f64)))
    results["fp32_vs_float64"] = _stats(np.concatenate(ulps), np.concatenate(rels), norms)
    return results


def run(out=None, sentences: int = 16, rows: int = 48, seed: int = 0, overwrite: bool = False,
        command=None) -> dict:
    """Collect MiniLM linears, measure, write the record; returns the payload."""
    import time

    from rich.progress import Progress

    from ...infra import fileio, records

    out = record_path() if out is None else out
    fileio.check_output_path(out, overwrite)
    t0 = time.time()
    layers, n_sent, n_tok = collect_minilm_linears(sentences, rows, seed)
    with Progress() as prog:
        task = prog.add_task("aligned:K:M vs fp32", total=len(KS) * len(MS))
        res = measure(layers, progress=lambda: prog.advance(task))
    macs = sum(x.shape[0] * x.shape[1] * w.shape[0] for _, x, w in layers)
    payload = {
        "what": "aligned:K:M accumulator vs fp32 accumulator, bf16 activations x rf8 weights (per-channel "
                "power-of-two scales), all-MiniLM-L6-v2 linear layers on real sentences",
        "model": "all-MiniLM-L6-v2 (rf8sim.workloads.models.load_minilm)",
        "data": {"sentences": n_sent, "tokens": n_tok, "rows_per_layer": rows, "seed": seed,
                 "layers": [n for n, _, _ in layers], "macs_per_accumulator": int(macs)},
        "results": res,
        "wall_s": round(time.time() - t0, 1),
    }
    records.write_record(out, payload, overwrite=overwrite, command=command)
    return payload


def _fmt(v: float) -> str:
    return "0" if v == 0 else f"{v:.2g}" if v < 0.01 else f"{v:.3g}" if v < 1e5 else f"{v:.2e}"


def render_table(record=None) -> str:
    """Markdown table of the aligned-vs-fp32 record."""
    from ...infra import records

    from ...infra.docgen import DocgenError

    if record is None:
        path = record_path()
        if not path.exists():
            raise DocgenError(f"{path} is missing; run `rf8sim aligned-error`")
        record = records.read_record(path)
    d = record["data"]
    lines = [f"all-MiniLM-L6-v2, {len(d['layers'])} linear layers x {d['rows_per_layer']} real token rows "
             f"({d['sentences']} sentences), bf16 x rf8 (per-channel scales); "
             f"{d['macs_per_accumulator']:,} MACs per accumulator; record `golden/results/aligned_error.json`.",
             "",
             "| accumulator | bit-identical to fp32 | ulp p50 / p90 / p99 / max | rel. error p50 / p99 / max "
             "| normwise median / max |",
             "|---|---|---|---|---|"]
    res = record["results"]
    for key, r in res.items():
        name = "fp32 vs float64 matmul (context)" if key == "fp32_vs_float64" else f"`{key}`"
        u, e, nw = r["ulp"], r["rel"], r["normwise"]
        lines.append(f"| {name} | {100 * r['bit_identical']:.1f}% | {_fmt(u['p50'])} / {_fmt(u['p90'])} / "
                     f"{_fmt(u['p99'])} / {_fmt(u['max'])} | {_fmt(e['p50'])} / {_fmt(e['p99'])} / {_fmt(e['max'])} "
                     f"| {_fmt(nw['median'])} / {_fmt(nw['max'])} |")
    return "\n".join(lines) + "\n"


def render_widths() -> str:
    """Markdown table of the aligned:K:M block register widths (derived from the formats)."""
    from ...accspec import AccSpec

    cols = [(k, m) for k in KS for m in (8, 16)] + [(4096, 24)]
    lines = ["| weights | " + " | ".join(f"K={k}, M={m}" for k, m in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for w in ("rf8", "e4m3", "e5m2", "int8", "bf16"):
        lines.append(f"| {w} | " + " | ".join(str(AccSpec.aligned(k, m).block_width(w)) for k, m in cols) + " |")
    return "\n".join(lines) + "\n"
