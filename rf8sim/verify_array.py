"""The PE array on real data: ``rf8sim verify-layer --array RxC`` and ``rf8sim array verify-minilm``.

Cross-layer code (golden model, torch emulation, RTL, the MiniLM workload), so it lives at the top
of the package beside :mod:`rf8sim.verify` and imports the parts lazily.

Every Linear of all-MiniLM-L6-v2 gets its real inputs from a forward pass over real sentences
(:func:`rf8sim.study.minilm.aligned_error.collect_minilm_linears`, every non-padding token); the
activations are encoded (bf16/fp16: round to nearest even; 8-bit: per-token power-of-two scales)
and the weights quantized per output channel.  The array has no scale inputs (a power-of-two
scale is applied outside the datapath), so it runs the GEMM of the **codes**, and the same codes
go through ``rf8sim.golden.gemm`` under the array's accumulation order and, where it has that
order, through the torch emulation (``aligned:K:M``, ``fp32``: every output; fixed point, grouped order too:
the first :data:`TORCH_FIXED_ROWS` rows of each layer).  Every output is compared, the
accumulator bits and both flags.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .errors import RF8SimError

__all__ = ["ArrayVerifyError", "array_leg", "minilm_layers", "verify_minilm", "render_minilm", "RECORDS",
           "bench_layer", "render_bench", "BENCH_RECORD"]

#: the checked-in MiniLM array verification records (docs/hdl.md, block ``hdl:array-minilm``)
RECORDS = ("hdl/results/array-minilm-bf16xrf8-aligned-32-16-8x8.json",
           "hdl/results/array-minilm-rf8xrf8-exact-8x8.json",
           "hdl/results/array-minilm-bf16xrf8-aligned-32-16-4x4-e1.json",
           "hdl/results/array-minilm-bf16xbf16-fp32-4x4.json")


#: fixed-point arrays: rows (tokens) of each GEMM also compared with the torch emulation (all rows with golden)
TORCH_FIXED_ROWS = 16


class ArrayVerifyError(RF8SimError, ValueError):
    """Bad arguments to the array verification (unknown layer, size, ...)."""


def _torch_check(cfg, a, w) -> dict | None:
    """The torch emulation's outputs for the same codes (None where it has no equivalent order)."""
    import torch

    if cfg.kind != "fixed":   # aligned:K:M and fp32 (k order): every output
        from .training.gemm import gemm

        a_t = torch.from_numpy(a.astype(np.int32)).to(torch.int16).view(torch.uint16)
        w_t = torch.from_numpy(w.astype(np.int32)).to(torch.int16).view(torch.uint16) if w.dtype == np.uint16 \
            else torch.from_numpy(w)
        r = gemm(a_t, w_t, cfg.a_fmt, cfg.w_fmt, cfg.acc)
        return {"acc": r.bits.numpy().astype(np.uint32), "overflow": r.overflow.numpy(),
                "invalid": r.invalid.numpy()}
    from .training.gemm import gemm

    a = a[:TORCH_FIXED_ROWS]   # the torch fixed-point emulation is slow: a slice of the rows
    r = gemm(torch.from_numpy(a), torch.from_numpy(w), cfg.a_fmt, cfg.w_fmt, cfg.golden_acc())  # groups of R
    return {"acc": r.acc.numpy(), "overflow": r.overflow.numpy(), "invalid": r.invalid.numpy()}


def array_leg(cfg, a_codes, w_codes, simulator: str = "verilator", tag: str = "verify") -> dict:
    """The array on one GEMM of codes against golden (array order) and torch; counted."""
    from .hdl.arraysim import compare, expected, run_gemm

    t_start = time.perf_counter()
    got = run_gemm(cfg, a_codes, w_codes, simulator, tag=tag)
    t0 = time.perf_counter()
    g = compare(got, expected(cfg, a_codes, w_codes))
    golden_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tt = _torch_check(cfg, a_codes, w_codes)
    if tt is not None:
        n = len(tt["acc"])
        tc = compare({k: got[k][:n] for k in ("acc", "overflow", "invalid")}, tt)
    else:
        tc = None
    return {"outputs": g["outputs"], "golden": g, "torch": tc, "cycles": got["sim_cycles"],
            "schedule": got["schedule"], "sim_s": got["sim_s"], "stream_s": got["stream_s"],
            "golden_s": golden_s, "torch_s": time.perf_counter() - t0, "module": got["module"],
            "wall_s": time.perf_counter() - t_start}


def minilm_layers(sentences: int = 8, a_fmt="bf16", w_fmt="rf8", seed: int = 0, names=None):
    """``(layers, n_sentences, n_tokens)``: per MiniLM Linear ``(name, a_codes (tokens, in), w_codes (out, in))``.

    ``names``: a subset of the Linear names (ArrayVerifyError naming the valid ones otherwise)."""
    import rf8sim.golden as G

    from . import formats as F
    from .study.minilm.aligned_error import collect_minilm_linears

    if names:
        import torch

        from .workloads.models import load_minilm

        valid = [n for n, m in load_minilm().named_modules() if isinstance(m, torch.nn.Linear)]
        bad = [n for n in names if n not in valid]
        if bad:   # before the forward pass
            raise ArrayVerifyError(f"MiniLM has no Linear layer {bad[0]!r}; valid: {', '.join(valid[:6])}, ... "
                                   f"({len(valid)} in all, e.g. encoder.layer.5.output.dense)")
    layers, n_sent, n_tok = collect_minilm_linears(sentences, rows=1 << 30, seed=seed)
    if names:
        layers = [x for x in layers if x[0] in names]
    a_f, w_f = F.get(a_fmt), F.get(w_fmt)
    out = []
    for name, x, w in layers:
        if getattr(a_f, "code_bits", 8) == 16:
            ac = np.asarray(G.encode(x, a_f.name)).astype(np.uint16)
        else:
            ac, _ = G.quantize(x, a_f.name, "nearest", "channel")
        wc, _ = G.quantize(w, w_f.name, "nearest", "channel")
        out.append((name, np.ascontiguousarray(ac), np.ascontiguousarray(wc)))
    return out, n_sent, n_tok


def verify_minilm(size: str = "8x8", a_fmt="bf16", w_fmt="rf8", acc="aligned:32:16", sentences: int = 8,
                  simulator: str = "verilator", layers=None, depth: int | None = None, progress=None,
                  pe_stages: int = 1, edge_stages: int = 0) -> dict:
    """Every (or the named) MiniLM Linear through the array, cycle-accurately; the report dict."""
    from .hdl.array import ArrayConfig, parse_size

    if isinstance(sentences, bool) or not isinstance(sentences, int) or sentences < 1:
        raise ArrayVerifyError(f"sentences must be a positive integer, got {sentences!r}")
    R, C = parse_size(size)
    cfg = ArrayConfig.make(a_fmt, w_fmt, acc, R, C, depth, pe_stages, edge_stages)
    data, n_sent, n_tok = minilm_layers(sentences, a_fmt, w_fmt, names=layers)
    rows = []
    t0 = time.perf_counter()
    for i, (name, a, w) in enumerate(data):
        r = array_leg(cfg, a, w, simulator, tag=f"minilm-{name}")
        row = {"layer": name, "M": int(a.shape[0]), "K": int(a.shape[1]), "N": int(w.shape[0]),
               "outputs": r["outputs"], "golden_mismatches": r["golden"]["mismatches"],
               "torch_mismatches": None if r["torch"] is None else r["torch"]["mismatches"],
               "torch_compared": 0 if r["torch"] is None else r["torch"]["compared"],
               "compared": r["golden"]["compared"], "overflowed": r["golden"]["overflowed"],
               "invalid": r["golden"]["invalid"], "cycles": r["cycles"],
               "utilization": r["schedule"]["utilization"], "sim_s": r["sim_s"], "stream_s": r["stream_s"],
               "golden_s": r["golden_s"], "torch_s": r["torch_s"], "wall_s": r["wall_s"]}
        rows.append(row)
        if progress:
            progress(f"[{i + 1}/{len(data)}] {name} {row['M']}x{row['K']}x{row['N']}: {row['outputs']:,} outputs, "
                     f"{row['golden_mismatches']} mismatches vs golden, "
                     f"{'-' if row['torch_mismatches'] is None else row['torch_mismatches']} vs torch, "
                     f"{row['cycles']:,} cycles, simulation {row['sim_s']:.1f} s (layer {row['wall_s']:.1f} s: "
                     f"golden {row['golden_s']:.1f}, torch {row['torch_s']:.1f})")
    tot = {k: sum(r[k] for r in rows) for k in ("outputs", "compared", "golden_mismatches", "torch_compared",
                                                 "overflowed", "invalid", "cycles")}
    tot["torch_mismatches"] = sum(r["torch_mismatches"] or 0 for r in rows)
    return {"kind": "array_minilm", "config": cfg.describe(), "simulator": simulator, "sentences": n_sent,
            "tokens": n_tok, "layers": rows, "totals": tot, "wall_s": time.perf_counter() - t0,
            "ok": tot["golden_mismatches"] == 0 and tot["torch_mismatches"] == 0 and tot["outputs"] > 0}


def render_minilm(root=None) -> str:
    """The docs/hdl.md block ``hdl:array-minilm`` from the records in :data:`RECORDS` (those present)."""
    import json

    root = Path(root) if root else Path(__file__).resolve().parents[1]
    recs = [(rel, json.loads((root / rel).read_text())) for rel in RECORDS if (root / rel).exists()]
    if not recs:
        raise ArrayVerifyError(f"no record of {', '.join(RECORDS)}: run `rf8sim array verify-minilm --record FILE`")
    lines = ["| record (command) | array | a x w | accumulator | layers | tokens (sentences) | outputs | values "
             "compared (acc + 2 flags) | mismatches vs golden | values vs torch | mismatches vs torch | array "
             "cycles | simulation s | commit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for rel, r in recs:
        c, t, prov = r["config"], r["totals"], r["provenance"]
        commit = (prov.get("commit") or "?")[:10] + (" (dirty)" if prov.get("dirty") else "")
        lines.append(
            f"| `{rel}` (`{prov['command']}`) | {c['rows']}x{c['cols']} (depth {c['depth']}, {r['simulator']}"
            + (", registered edge adder" if c.get("edge_stages") else "") + ") | "
            f"{c['a_fmt']} x {c['w_fmt']} | `{c['acc']}` | {len(r['layers'])} | {r['tokens']} ({r['sentences']}) | "
            f"{t['outputs']:,} | {t['compared']:,} | {t['golden_mismatches']} | {t['torch_compared']:,} | "
            f"{t['torch_mismatches']} | {t['cycles']:,} | {sum(x['sim_s'] for x in r['layers']):.0f} | {commit} |")
    lines += ["", "Linear layers of all-MiniLM-L6-v2 (real weights; 36 layers = every one, 6 = the first "
              "encoder block), every real token of the sentences "
              "(`rf8sim.workloads.data.load_sentences`, seed 0); activations and weights as codes (bf16: RNE cast; "
              "8-bit: per-token / per-channel power-of-two scales, applied outside the array), the whole GEMM "
              "of each layer cycle-accurately; golden = `rf8sim.golden.gemm` under the array's order, torch = "
              "the training emulation (every output for `aligned:K:M` and `fp32`; for fixed point the first "
              f"{TORCH_FIXED_ROWS} tokens of each layer: its integer emulation is slow)."]
    return "\n".join(lines) + "\n"


#: the checked-in speed benchmark record (docs/hdl.md, block ``hdl:array-bench``)
BENCH_RECORD = "hdl/results/array-bench.json"
BENCH_LAYER = "encoder.layer.0.intermediate.dense"


def bench_layer(size: str = "8x8", a_fmt="bf16", w_fmt="rf8", acc="aligned:32:16", layer: str = BENCH_LAYER,
                tokens: int = 128, simulator: str = "verilator", sentences: int = 8, depth: int | None = None,
                pe_stages: int = 1, edge_stages: int = 0) -> dict:
    """Wall-clock of one real MiniLM Linear (``tokens`` real tokens) through the array cycle-accurately:
    schedule + stimulus, simulation, deskew (:func:`rf8sim.hdl.arraysim.run_gemm`; the simulator build is
    done first and timed separately); then the counted comparison with golden (not timed)."""
    import os

    from .hdl.array import ArrayConfig
    from .hdl.array import parse_size
    from .hdl.arraysim import build, compare, expected, run_gemm

    R, C = parse_size(size)
    cfg = ArrayConfig.make(a_fmt, w_fmt, acc, R, C, depth, pe_stages, edge_stages)
    data, n_sent, n_tok = minilm_layers(sentences, a_fmt, w_fmt, names=[layer])
    _, a, w = data[0]
    if a.shape[0] < tokens:
        raise ArrayVerifyError(f"{sentences} sentences give {a.shape[0]} tokens, fewer than --tokens {tokens}")
    a = np.ascontiguousarray(a[:tokens])
    b = build(cfg, simulator)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    got = run_gemm(cfg, a, w, simulator, tag="bench")
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    g = compare(got, expected(cfg, a, w))
    return {"kind": "array_bench", "config": cfg.describe(), "layer": layer, "M": int(a.shape[0]),
            "K": int(a.shape[1]), "N": int(w.shape[0]), "simulator": simulator, "wall_s": wall,
            "sim_s": got["sim_s"], "stream_s": got["stream_s"], "cycles": got["sim_cycles"],
            "cycles_per_s": got["sim_cycles"] / got["sim_s"], "build_s": b["build_s"],
            "outputs": g["outputs"], "compared": g["compared"], "mismatches": g["mismatches"],
            "goal_s": 60.0, "met": wall <= 60.0, "load_average": [load0, load1]}


def render_bench(root=None) -> str:
    """The docs/hdl.md block ``hdl:array-bench`` from :data:`BENCH_RECORD`."""
    import json

    root = Path(root) if root else Path(__file__).resolve().parents[1]
    p = root / BENCH_RECORD
    if not p.exists():
        raise ArrayVerifyError(f"record {BENCH_RECORD} is missing: run `rf8sim array bench --record {BENCH_RECORD}`")
    r = json.loads(p.read_text())
    c, prov = r["config"], r["provenance"]
    commit = (prov.get("commit") or "?")[:10] + (" (dirty)" if prov.get("dirty") else "")
    m = prov.get("machine", {})
    return (f"Record `{BENCH_RECORD}`: `{prov['command']}` at commit {commit}, {prov['utc']}, on "
            f"{m.get('cpu', '?')} ({m.get('cores', '?')} cores, load average {r['load_average'][0]:.1f} at the "
            f"start, {r['load_average'][1]:.1f} at the end: a shared machine).\n\n"
            "| layer (real tokens) | GEMM M x K x N | array | simulator | cycles | wall s (goal <= 60) | "
            "of it simulation s | cycles/s | met | outputs vs golden | mismatches |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n"
            f"| {r['layer']} ({r['M']}) | {r['M']}x{r['K']}x{r['N']} | {c['rows']}x{c['cols']} {c['a_fmt']} x "
            f"{c['w_fmt']} `{c['acc']}` | {r['simulator']} | {r['cycles']:,} | {r['wall_s']:.1f} | "
            f"{r['sim_s']:.1f} | {r['cycles_per_s']:,.0f} | {'yes' if r['met'] else 'no'} | {r['outputs']:,} | "
            f"{r['mismatches']} |\n")


def render_schedule() -> str:
    """The docs/hdl.md block ``hdl:array-schedule``: the scheduler's cycle counts for MiniLM's Linear shapes
    (computed by :func:`rf8sim.hdl.schedule.plan`, deterministic; no measurement)."""
    from .hdl.array import ArrayConfig
    from .hdl.schedule import plan

    shapes = (("query/key/value/attention output", 384, 384), ("intermediate", 384, 1536), ("output", 1536, 384))
    lines = ["| array (depth) | layer shape (K x N), 128 tokens | cycles | utilization | weight tiles | stall cycles | "
             "fill/drain cycles |", "|---|---|---|---|---|---|---|"]
    for R in (4, 8, 16):
        cfg = ArrayConfig.make("bf16", "rf8", "aligned:32:16", R, R)
        for name, K, N in shapes:
            s = plan(128, K, N, R, R, cfg.depth, 32, cfg.latency).summary()
            lines.append(f"| {R}x{R} ({cfg.depth}) | {name} ({K} x {N}) | {s['cycles']:,} | {s['utilization']:.1%} | "
                         f"{s['tiles']:,} | {s['stall_cycles']:,} | {s['fill_drain_cycles']:,} |")
    return "\n".join(lines) + "\n"
