"""Per-sentence cost of the MiniLM transformer stage, measured, and the demo budget extrapolated from it.

``python -m rf8sim.study.minilm.costs --record study/results/minilm-costs.json`` runs the float32 model
and each configuration of the flow's ``[transformer]`` section on ``--sentences`` real sentences
with one thread (``torch.set_num_threads(1)``, ``NUMBA_NUM_THREADS`` as set by the caller) and
records process CPU seconds per sentence (plus wall seconds and the load average, which say how
busy the machine was).  :func:`extrapolate` turns those unit costs into the CPU seconds of the
demo's transformer stage (main sweep, sensitivity scan, mixed-search verifications, torch
checks) for a given ``[transformer]`` section; ``study:minilm-costs`` renders both into
docs/study.md.  The budget is an extrapolation (CPU seconds / cores), not a measured run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ...infra.docgen import DocgenError, load_record

__all__ = ["COSTS_RECORD", "measure", "extrapolate", "write_costs_record"]

COSTS_RECORD = Path("study") / "results" / "minilm-costs.json"


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def measure(configs, sentences: int = 16, seed: int = 0, granularity: str = "channel", accs=("exact",)) -> dict:
    """CPU and wall seconds per sentence of the float32 model and each configuration (one thread)."""
    import torch

    from ...workloads.data import load_sentences
    from ...workloads.models import load_minilm
    from .transformer import exactify, parse_configs, torch_check

    torch.set_num_threads(1)
    model = load_minilm()
    sents = load_sentences(sentences, 5, 32, seed)
    tokens = sum(len(model.tokenizer.encode(s).ids) for s in sents)
    rows = []
    t, c = time.perf_counter(), _cpu()
    ref = model.encode(sents, batch_size=len(sents)).numpy().astype(np.float64)
    rows.append({"config": "float32", "cpu_s_per_sentence": (_cpu() - c) / len(sents),
                 "wall_s_per_sentence": (time.perf_counter() - t) / len(sents)})
    for entry in configs:
        for dp in parse_configs(entry, granularity, 32, accs):
            q = exactify(model, dp, 2048)
            q.encode(sents[:1])  # compile / warm caches
            t, c = time.perf_counter(), _cpu()
            emb = q.encode(sents, batch_size=len(sents)).numpy().astype(np.float64)
            cpu, wall = _cpu() - c, time.perf_counter() - t
            cos = (ref * emb).sum(1)
            t, c = time.perf_counter(), _cpu()
            torch_check(q, lambda: q.encode(sents[:4]))
            rows.append({"config": dp.label, "entry": entry, "float_acc": dp.float_acc,
                         "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
                         "cpu_s_per_sentence": cpu / len(sents), "wall_s_per_sentence": wall / len(sents),
                         "torch_check_cpu_s": _cpu() - c})
    return {"sentences": len(sents), "tokens": tokens, "threads": 1,
            "numba_threads": os.environ.get("NUMBA_NUM_THREADS", "default"), "rows": rows}


def extrapolate(costs: dict, t) -> dict:
    """CPU seconds of the transformer stage for a ``[transformer]`` section ``t`` from unit costs.

    Main sweep: every config on ``sentences`` (float-accumulator ones on ``a16_sentences``);
    sensitivity: per config, the groups together cost one pass plus 12 float32 passes on
    ``sensitivity_sentences``; mixed searches: at most two verification passes each (area and energy
    searches, one per ``objectives`` entry: the slower of 8-bit configs on all sentences and the slowest
    config on ``a16_sentences``; weight-bits search: the slowest config on ``a16_sentences``); plus the
    per-layer torch checks."""
    from .transformer import parse_configs

    unit = {r["config"]: r for r in costs["rows"]}
    f = unit["float32"]["cpu_s_per_sentence"]
    n, na, ns = t.sentences, min(t.sentences, t.a16_sentences), min(t.sentences, t.sensitivity_sentences)
    parts = {"float32": n * f, "sweep": 0.0, "sensitivity": 0.0, "torch_check": 0.0}
    slow = slow8 = 0.0
    for entry in t.configs:
        for dp in parse_configs(entry, t.granularity, 32, t.acc):
            if dp.label not in unit:
                raise DocgenError(f"{COSTS_RECORD} has no measurement of {dp.label}: re-record it")
            u = unit[dp.label]
            c = u["cpu_s_per_sentence"]
            parts["sweep"] += c * (na if dp.float_acc else n)
            parts["sensitivity"] += ns * (c + 12 * f)
            parts["torch_check"] += u["torch_check_cpu_s"]
            slow = max(slow, c)
            slow8 = slow8 if dp.float_acc else max(slow8, c)
    # each mixed search verifies at most twice: on all sentences when only 8-bit configs are assigned,
    # on the a16 prefix when a W8A16 one is (the area and energy searches include W8A16 configs)
    for o in getattr(t, "objectives", ("area", "energy")):
        parts[f"mixed ({o}) verification, at most"] = 2 * max(n * slow8, na * slow)
    parts["mixed (weight bits) verification, at most"] = 2 * na * slow
    parts["total"] = sum(parts.values())
    return parts


def write_costs_record(path, configs, sentences: int = 16, *, overwrite: bool = False) -> Path:
    from ...infra.records import write_record

    return write_record(path, {"kind": "rf8sim-minilm-costs", **measure(configs, sentences)}, overwrite=overwrite)


def _root() -> Path:
    return Path(__file__).resolve().parents[3]


def load_costs_record(path=None) -> dict:
    if path:
        return json.loads(Path(path).read_text())
    return load_record(COSTS_RECORD, "rf8sim-minilm-costs", f"python -m rf8sim.study.minilm.costs --record {COSTS_RECORD}")


def render_costs() -> str:
    from ..common.config import load_config

    rec = load_costs_record()
    pv = rec["provenance"]
    m = pv["machine"]
    t = load_config(_root() / "rf8sim" / "study" / "configs" / "flow.toml").transformer
    lines = [f"Record `{COSTS_RECORD}`: `{pv['command']}` at commit {str(pv['commit'])[:10]}"
             f"{' (dirty tree)' if pv.get('dirty') else ''} on {m['cpu']}, "
             f"{m['cores']} cores, load average {m.get('load_1min')} (other jobs: per-sentence costs on a quiet "
             f"machine are lower); {rec['sentences']} sentences ({rec['tokens']} tokens), one thread.", "",
             "| configuration | CPU s per sentence | × float32 | torch/reference check CPU s | mean cosine to float32 "
             "(these sentences only) |", "|---|---|---|---|---|"]
    f = rec["rows"][0]["cpu_s_per_sentence"]
    for r in rec["rows"]:
        ck = "–" if "torch_check_cpu_s" not in r else f"{r['torch_check_cpu_s']:.1f}"
        cs = "–" if "cosine_mean" not in r else f"{r['cosine_mean']:.5f}"
        lines.append(f"| {r['config']} | {r['cpu_s_per_sentence']:.3f} | {r['cpu_s_per_sentence'] / f:.1f} | {ck} "
                     f"| {cs} |")
    parts = extrapolate(rec, t)
    lines += ["", f"Extrapolated CPU seconds of the demo's transformer stage (flow.toml: {t.sentences} sentences, "
                  f"W8A16 on {min(t.sentences, t.a16_sentences)}, sensitivity on {t.sensitivity_sentences}): "
              + ", ".join(f"{k} {v:.0f}" for k, v in parts.items())
              + f"; on 2 cores with perfect parallelism {parts['total'] / 2:.0f} s (an upper bound: each mixed "
                f"search verifies at most that many sentences)."]
    flow_rec = Path("study") / "results" / "minilm-flow.json"  # rf8sim.study.flow.results.MINILM_RECORD (no import: cycle)
    flow = load_record(flow_rec, "rf8sim-flow", f"rf8sim flow --record {flow_rec}")
    st = {x["stage"]: x for x in flow["stages"]}.get("transformer")
    if st is not None and st["status"] == "ok" and flow["transformer"]["sentences"] == t.sentences:
        lines += ["", f"Measured: the transformer stage of the default demo run took {st['seconds']:.0f} s wall "
                      f"(record `{flow_rec}`)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    import argparse

    from ..common.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", required=True)
    ap.add_argument("--sentences", type=int, default=16)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args(argv)
    t = load_config(_root() / "rf8sim" / "study" / "configs" / "flow.toml").transformer
    p = write_costs_record(a.record, t.configs, a.sentences, overwrite=a.force)
    print(p)
    print(render_costs() if Path(a.record).resolve() == (_root() / COSTS_RECORD).resolve() else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
