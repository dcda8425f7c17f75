"""Claim (c): BackSlash cuts parameter bits by 60-90 % with little accuracy loss,
and makes models robust to pruning.

For each task we train with

* ``plain``: ordinary training (lambda = 0), then the same entropy coding;
* ``backslash``: the authors' per-batch step after every optimizer step,
  ``w <- w - (lambda nu / n) sign(w) (|w| + eps)^(nu - 1)`` with nu re-estimated
  by moment matching (``rf8sim.training``), over a lambda sweep;
* ``l1``: the authors' L1 variant, ``w <- w - (lambda / n) sign(w)``, same sweep.

The rate is measured on the weights BackSlash touches (Linear/Conv/Embedding
weights) with :func:`rf8sim.training.rate_report`: values quantized uniformly
with step 2^-s (codes = round(w 2^s), s = ``RATE_STEP_BITS``), the authors' mean
order-0 exp-Golomb length of frequency-ranked codes, and the size written by a
real entropy coder (``constriction``).  Accuracy / held-out loss is reported
both for the float model and for the model whose weights are those quantized
codes (what the rate actually describes).  Magnitude pruning at 50 % and 80 %
(global over the same weights, no fine-tuning) is applied to every trained model.
"""

from __future__ import annotations

import math

__all__ = ["run", "summary_table", "train_task", "evaluate", "TASKS", "RATE_STEP_BITS", "weight_params"]

#: codes = round(w * 2**RATE_STEP_BITS) for the rate (the authors use 8 or 16)
RATE_STEP_BITS = 8
PRUNE = (0.5, 0.8)

TASKS = {
    "mlp": dict(epochs=40, batch=100, lr=2e-3, lams=(0.3, 1.0, 3.0, 10.0, 30.0), l1_lams=(0.3, 1.0, 3.0, 10.0)),
    "tinylm": dict(steps=800, batch=16, block=64, d_model=64, n_layer=2, n_head=4, lr=2e-3,
                   eval_windows=200, lams=(10.0, 30.0, 100.0, 300.0), l1_lams=(30.0, 100.0)),
}
QUICK = {
    "mlp": dict(epochs=3, batch=100, lr=2e-3, lams=(3.0,), l1_lams=(3.0,), n=1000),
}


def weight_params(model) -> dict:
    """name -> parameter for the weights of Linear / Conv1d / Embedding layers."""
    from torch import nn

    out = {}
    for mn, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Embedding)):
            out[f"{mn}.weight"] = m.weight
    return out


# ------------------------------------------------------------- training API adapters
def make_regularizer(model, kind: str, lam: float):
    """``after_step(model, step)`` for ``kind`` in plain / backslash / l1, and a description."""
    if kind == "plain" or lam == 0:
        return None, "none"
    from rf8sim.training.backslash import BackSlash

    # default selection = the Linear/Conv/Embedding weights (weight_params); eps = 1, nu on the
    # authors' 0.01 grid, re-estimated every batch
    bs = BackSlash(model, lam=lam, eps=1.0, every=1, variant="l1" if kind == "l1" else "gg")
    return (lambda m, step: bs.step()), f"BackSlash(lam={lam:g}, eps=1, every=1, variant={bs.variant!r}, n={bs.n:g})"


def rate_of(model) -> dict:
    """Bits/param of the weights via :func:`rf8sim.training.rate.rate_report`.

    ``exp_golomb_bits``: the authors' metric on uniform codes round(w 2^s);
    ``entropy_bits``: Shannon entropy of those codes; ``rf8_entropy_bits``: of the
    RF8 codes (nearest, per-channel scale); ``coded_bits``: the RF8 codes really
    entropy-coded with constriction (empirical model, side information and scales
    included, decoded back and checked lossless).
    """
    from rf8sim.training.rate import rate_report

    rep = rate_report({k: w.detach() for k, w in weight_params(model).items()}, fmt="rf8", rounding="nearest",
                      granularity="channel", frac_bits=RATE_STEP_BITS, coder="empirical")
    tot = rep["total"]
    if not tot["lossless"]:
        raise AssertionError("rate_report: entropy coder round trip was not lossless")
    return {"exp_golomb_bits": tot["eg_bits"], "entropy_bits": tot["H_uniform"],
            "uniform_coded_bits": uniform_coded_bits(model), "rf8_entropy_bits": tot["H_rf8"],
            "coded_bits": tot["rf8_coded"], "params": tot["n"]}


def uniform_coded_bits(model) -> float:
    """The uniform codes round(w 2^s) of each weight tensor really coded with
    :func:`rf8sim.training.rate.entropy_code` (constriction ANS, empirical model over the
    distinct codes; side information of 32 + 32 bits per distinct code), checked lossless."""
    import numpy as np

    from rf8sim.training.rate import entropy_code

    bits, n = 0, 0
    for w in weight_params(model).values():
        q = np.rint(np.ldexp(w.detach().double().reshape(-1).numpy(), RATE_STEP_BITS)).astype(np.int64)
        vals, inv, counts = np.unique(q, return_inverse=True, return_counts=True)
        b, ok = entropy_code(inv.astype(np.int32), counts / counts.sum())
        if not ok:
            raise AssertionError("uniform-code entropy coding was not lossless")
        bits += b + 64 * len(vals)
        n += q.size
    return bits / n


# ------------------------------------------------------------- tasks
def _data(task, cfg):
    from rf8sim.workloads.data import load_mnist1d, load_text_corpus

    if task == "tinylm":
        return load_text_corpus(max_bytes=cfg.get("max_bytes"))
    return load_mnist1d(n=cfg.get("n"))


def _model(task, cfg):
    from rf8sim.workloads.models import CNN1D, MLP, TinyLM

    return {"mlp": lambda: MLP(), "cnn": lambda: CNN1D(),
            "tinylm": lambda: TinyLM(d_model=cfg["d_model"], n_layer=cfg["n_layer"], n_head=cfg["n_head"],
                                     block=cfg["block"])}[task]()


def train_task(task, cfg, data, seed, kind="plain", lam=0.0, epochs=None):
    """Train one model of ``task`` with regularizer ``kind``; returns (model, info)."""
    from .common import seeded, train_classifier, train_lm

    g = seeded(seed)
    model = _model(task, cfg)
    hook, desc = make_regularizer(model, kind, lam)
    if task == "tinylm":
        train_lm(model, data.train, steps=cfg["steps"], batch=cfg["batch"], block=cfg["block"], lr=cfg["lr"],
                 generator=g, after_step=hook)
    else:
        train_classifier(model, data[0], data[1], epochs=epochs or cfg["epochs"], batch=cfg["batch"], lr=cfg["lr"],
                         generator=g, after_step=hook)
    return model, {"regularizer": desc}


def evaluate(task, cfg, model, data) -> float:
    """Test accuracy (classifiers) or held-out bits per byte (TinyLM)."""
    from .common import accuracy, eval_lm

    if task == "tinylm":
        return eval_lm(model, data.test, cfg["block"], cfg["eval_windows"]) / math.log(2)
    return accuracy(model, data[2], data[3])


def _with_weights(model, fn):
    """Temporarily replace the weights by ``fn(w)``; returns a context manager."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def ctx():
        ws = weight_params(model)
        saved = {k: w.detach().clone() for k, w in ws.items()}
        with torch.no_grad():
            new = fn({k: w.detach() for k, w in ws.items()})
            for k, w in ws.items():
                w.copy_(new[k])
        try:
            yield model
        finally:
            with torch.no_grad():
                for k, w in ws.items():
                    w.copy_(saved[k])

    return ctx()


def uniform_quantized(ws: dict) -> dict:
    """Weights rounded to the rate's uniform grid (step 2^-RATE_STEP_BITS): what the coded rate describes."""
    import torch

    s = float(2 ** RATE_STEP_BITS)
    return {k: torch.round(w * s) / s for k, w in ws.items()}


def magnitude_pruned(frac: float):
    """Global magnitude pruning: zero the ``frac`` smallest-|w| weights (ties at the threshold pruned too)."""
    import torch

    def fn(ws):
        flat = torch.cat([w.abs().reshape(-1) for w in ws.values()])
        k = int(round(frac * flat.numel()))
        if k == 0:
            return dict(ws)
        thr = flat.kthvalue(k).values
        return {n: torch.where(w.abs() <= thr, torch.zeros_like(w), w) for n, w in ws.items()}

    return fn


def rf8_quantized(fmt="rf8", rounding="nearest", granularity="channel"):
    """Weights through rf8sim.training.quantize + dequantize (bit-exact with rf8sim.golden)."""
    from rf8sim.training import dequantize, quantize

    def fn(ws):
        out = {}
        for k, w in ws.items():
            c, e = quantize(w.float(), fmt, rounding, granularity)
            out[k] = dequantize(c, e, fmt, granularity)
        return out

    return fn


PTQ_SCHEMES = (("rf8-nearest", "rf8", "nearest"), ("rf8-paper", "rf8", "paper"), ("e4m3", "e4m3", "nearest"),
               ("int8", "int8", "nearest"))


def measure(task, cfg, model, data, ptq=True) -> dict:
    """Every metric of one trained model."""
    r = {"metric": evaluate(task, cfg, model, data), **rate_of(model)}
    with _with_weights(model, uniform_quantized):
        r["metric_rate_quantized"] = evaluate(task, cfg, model, data)
    ws = weight_params(model)
    n = sum(w.numel() for w in ws.values())
    r["zero_frac_rate_quantized"] = sum(int((uniform_quantized({0: w.detach()})[0] == 0).sum()) for w in ws.values()) / n
    for p in PRUNE:
        with _with_weights(model, magnitude_pruned(p)):
            r[f"metric_pruned_{int(p * 100)}"] = evaluate(task, cfg, model, data)
    if ptq:
        for lab, fmt, rnd in PTQ_SCHEMES:
            with _with_weights(model, rf8_quantized(fmt, rnd, "channel")):
                r[f"metric_{lab}"] = evaluate(task, cfg, model, data)
    return r


def _job(job, tasks, data):
    """One seed x regularizer x lambda x task (a cluster task; top-level so it pickles)."""
    t, kind, lam, s = job
    model, info = train_task(t, tasks[t], data[t], s, kind, lam)
    return {"regularizer": info["regularizer"], "metrics": measure(t, tasks[t], model, data[t])}


def run(quick: bool, seeds: int | None, progress: bool, outdir) -> dict:
    import functools

    from .common import fan_out, mean_std

    nseeds = seeds or (1 if quick else 3)
    seed_list = list(range(nseeds))
    tasks = QUICK if quick else TASKS
    jobs = []
    for t, cfg in tasks.items():
        jobs += [(t, "plain", 0.0)] + [(t, "backslash", l) for l in cfg["lams"]] + [(t, "l1", l) for l in cfg["l1_lams"]]
    data = {t: _data(t, c) for t, c in tasks.items()}
    raw, descs = {}, {}
    runs = [(t, kind, lam, s) for (t, kind, lam) in jobs for s in seed_list]
    results = fan_out(functools.partial(_job, tasks=tasks, data=data), runs, kind="backslash",
                      setting={"tasks": tasks, "quick": quick}, progress=progress, desc="backslash runs")
    for (t, kind, lam, _s), r in zip(runs, results):
        descs[f"{t}/{kind}/{lam:g}"] = r["regularizer"]
        raw.setdefault(f"{t}/{kind}/{lam:g}", []).append(r["metrics"])
    rows = {}
    for key, runs in raw.items():
        t, kind, lam = key.split("/")
        row = {"task": t, "kind": kind, "lam": float(lam),
               "metric_name": "test bits/byte" if t == "tinylm" else "test accuracy"}
        for m in runs[0]:
            row[m] = mean_std([r[m] for r in runs])
        rows[key] = row
    summary = {}
    for t in tasks:
        plain = rows[f"{t}/plain/0"]
        for r in rows.values():
            if r["task"] != t:
                continue
            for m in ("exp_golomb_bits", "uniform_coded_bits", "coded_bits"):
                r[f"saving_vs_plain_{m}"] = 1 - r[m]["mean"] / plain[m]["mean"]
            r["saving_vs_8bit_exp_golomb"] = 1 - r["exp_golomb_bits"]["mean"] / 8
        summary[t] = {"plain_metric": plain["metric"], "plain_coded_bits": plain["coded_bits"],
                      "plain_exp_golomb_bits": plain["exp_golomb_bits"]}
    cfg = {"tasks": tasks, "rate_step_bits": RATE_STEP_BITS, "prune_fracs": PRUNE,
           "regularizers": descs, "ptq": "weights of Linear/Conv/Embedding, channel granularity, "
           "rf8sim.training.quantize/dequantize", "pruning": "global magnitude over the same weights, no fine-tuning"}
    return {"config": cfg, "seeds": seed_list, "rows": rows, "summary": summary}


def summary_table(p: dict):
    from .common import fmt_ms

    rows = []
    for r in p["rows"].values():
        rows.append([r["task"], r["kind"], f"{r['lam']:g}", fmt_ms(r["metric"], 4), fmt_ms(r["metric_rate_quantized"], 4),
                     fmt_ms(r["exp_golomb_bits"], 3), fmt_ms(r["uniform_coded_bits"], 3),
                     f"{100 * r['saving_vs_plain_exp_golomb_bits']:.0f} / {100 * r['saving_vs_plain_uniform_coded_bits']:.0f} %",
                     fmt_ms(r.get("metric_rf8-nearest"), 4), fmt_ms(r["coded_bits"], 3),
                     f"{100 * r['saving_vs_plain_coded_bits']:.0f} %",
                     fmt_ms(r["metric_pruned_50"], 3), fmt_ms(r["metric_pruned_80"], 3)])
    return ("(c) BackSlash: bits/param of Linear/Conv/Embedding weights vs test accuracy (MLP) / bits per byte (TinyLM)",
            ["task", "kind", "λ", "metric", "metric @ 2^-8 grid", "exp-Golomb b/p", "coded b/p (grid)",
             "saving vs plain (EG / coded)", "metric @ rf8", "coded b/p (rf8)", "saving (rf8)",
             "pruned 50 %", "pruned 80 %"], rows)


#: "minimal accuracy loss", per task: accuracy points (MLP/CNN) or bits per byte (TinyLM)
MINIMAL_LOSS = {"mlp": 0.01, "cnn": 0.01, "tinylm": 0.05}
VERDICT_RULE = ("claim A: some BackSlash lambda saves >= 60 % of the plain model's exp-Golomb bits with a metric "
                "loss <= MINIMAL_LOSS (0.01 accuracy, 0.05 bits/byte); claim B: >= 60 % at any loss, or the "
                "80 %-pruned metric beats the plain model's by more than the sum of their seed stds; "
                "supported: A on every task; partly: A or B on some task; not supported: neither")


def verdict(p: dict) -> dict:
    """The claim's verdict from the recorded rows, by :data:`VERDICT_RULE`."""
    per_task = {}
    tasks = sorted({r["task"] for r in p["rows"].values()})
    for t in tasks:
        plain = next(r for r in p["rows"].values() if r["task"] == t and r["kind"] == "plain")
        lower = t == "tinylm"  # bits per byte: lower is better
        a = b = False
        for r in p["rows"].values():
            if r["task"] != t or r["kind"] != "backslash":
                continue
            loss = (r["metric"]["mean"] - plain["metric"]["mean"]) * (1 if lower else -1)
            big = r["saving_vs_plain_exp_golomb_bits"] >= 0.6
            a |= big and loss <= MINIMAL_LOSS.get(t, 0.01)
            pr, pp = r["metric_pruned_80"], plain["metric_pruned_80"]
            gain = (pp["mean"] - pr["mean"]) if lower else (pr["mean"] - pp["mean"])
            b |= big or gain > pr["std"] + pp["std"]
        per_task[t] = "A" if a else ("B" if b else "neither")
    vals = list(per_task.values())
    v = ("supported" if all(x == "A" for x in vals)
         else "partly supported" if any(x != "neither" for x in vals) else "not supported")
    return {"verdict": v, "rule": VERDICT_RULE, "evidence": per_task}
