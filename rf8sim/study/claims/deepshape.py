"""Claim (d): DeepShape improves compressibility at a small accuracy cost that a
few fine-tuning epochs recover.

A model is trained normally (the ``plain`` recipe of :mod:`.backslash`), then
its Linear/Conv/Embedding weights are reshaped by :func:`rf8sim.training.deepshape.deepshape_`
(rank-preserving histogram specification toward a narrower, peakier GG:
shape x0.8, scale x0.6 of the fitted one, on the dense core; the authors'
factors, applied per tensor) and fine-tuned with ordinary training (learning rate x
``FT_LR_FACTOR``) for 1, 2 and 3 epochs.  At each stage we record the metric
(test accuracy / held-out bits per byte) and the rate (exp-Golomb and real
coder bits/param, as in (c)).  A control copy of the trained model gets the same
fine-tuning (same batches) without reshaping.  A TinyLM "epoch" is ``len(train) / (batch *
block)`` random-window steps.
"""

from __future__ import annotations


__all__ = ["run", "summary_table", "reshape_", "STAGES"]

STAGES = ("trained", "reshaped", "ft1", "control-ft1", "ft2", "control-ft2", "ft3", "control-ft3")
FT_LR_FACTOR = 0.25
#: DeepShape's uniform step 2^-STEP_EXP.  The authors' 2^-13 suits LLM-sized tensors; on
#: these small models most 2^-13 levels hold 0-1 values and the dense core degenerates
#: (deepshape_ then refuses: "no mass on the core levels"), so we use the rate grid, 2^-8.
STEP_EXP = 8
#: tensors with fewer values are left unchanged (too few for a histogram)
MIN_NUMEL = 1000

TASKS = {
    "mlp": dict(epochs=40, batch=100, lr=2e-3),
    "tinylm": dict(steps=800, batch=16, block=64, d_model=64, n_layer=2, n_head=4, lr=2e-3, eval_windows=200),
}
QUICK = {"mlp": dict(epochs=3, batch=100, lr=2e-3, n=1000)}


def reshape_(model, mode: str = "tensor", step_exp: int = STEP_EXP) -> list[dict]:
    """DeepShape the model's Linear/Conv/Embedding weights in place with
    :func:`rf8sim.training.deepshape.deepshape_` (step 2^-step_exp, per-tensor groups, its
    defaults otherwise: core = levels up to the first one holding <= 1 % of the peak count,
    target shape x0.8, scale x0.6); returns the fitted/target parameters per group."""
    from rf8sim.training.deepshape import deepshape_

    from torch import nn

    def select(name, p, module):
        # Linear/Conv/Embedding weights (deepshape_'s default set) with enough values for a
        # histogram: the CNN's first conv (125 weights) has no dense core at any useful step
        return (isinstance(module, (nn.Linear, nn.Conv1d, nn.Embedding)) and name.endswith("weight")
                and p.numel() >= MIN_NUMEL)

    res = deepshape_(model, mode=mode, step_exp=step_exp, select=select)
    return [{k: (float(v) if isinstance(v, float) else v) for k, v in g.items()} for g in res.summary()]


def _finetune_epoch(task, cfg, model, data, g):
    from .common import train_classifier, train_lm

    lr = cfg["lr"] * FT_LR_FACTOR
    if task == "tinylm":
        steps = max(1, len(data.train) // (cfg["batch"] * cfg["block"]))
        train_lm(model, data.train, steps=steps, batch=cfg["batch"], block=cfg["block"], lr=lr, generator=g)
    else:
        train_classifier(model, data[0], data[1], epochs=1, batch=cfg["batch"], lr=lr, generator=g)


def _job(job, tasks, data):
    """One seed x task: train, reshape, fine-tune in stages, with the control (a cluster task)."""
    import copy

    from .backslash import evaluate, rate_of, train_task
    from .common import seeded

    t, s = job
    cfg = tasks[t]
    model, _ = train_task(t, cfg, data[t], s, "plain", 0.0)
    recs = []

    def rec(stage, m):
        recs.append([stage, {"metric": evaluate(t, cfg, m, data[t]), **rate_of(m)}])

    rec("trained", model)
    # control: the same fine-tuning (same batches) without reshaping, so "recovery"
    # is not confused with the gain of simply training longer
    control = copy.deepcopy(model)
    fits = reshape_(model)
    rec("reshaped", model)
    g, gc = seeded(1000 + s), seeded(1000 + s)
    for e in (1, 2, 3):
        _finetune_epoch(t, cfg, model, data[t], g)
        rec(f"ft{e}", model)
        _finetune_epoch(t, cfg, control, data[t], gc)
        rec(f"control-ft{e}", control)
    return {"recs": recs, "fits": fits}


def run(quick: bool, seeds: int | None, progress: bool, outdir) -> dict:
    import functools

    from .backslash import _data
    from .common import fan_out, mean_std

    nseeds = seeds or (1 if quick else 3)
    seed_list = list(range(nseeds))
    tasks = QUICK if quick else TASKS
    raw, fits = {}, {}
    data = {t: _data(t, c) for t, c in tasks.items()}
    runs = [(t, s) for t in tasks for s in seed_list]
    results = fan_out(functools.partial(_job, tasks=tasks, data=data), runs, kind="deepshape",
                      setting={"tasks": tasks, "quick": quick}, progress=progress, desc="deepshape runs")
    for (t, s), r in zip(runs, results):
        fits[f"{t}/seed{s}"] = r["fits"]
        for stage, rec in r["recs"]:
            raw.setdefault(f"{t}/{stage}", []).append(rec)
    rows = {}
    for key, runs in raw.items():
        t, stage = key.split("/")
        rows[key] = {"task": t, "stage": stage, "metric_name": "test bits/byte" if t == "tinylm" else "test accuracy",
                     **{m: mean_std([r[m] for r in runs]) for m in runs[0]}}
    summary = {}
    for t in tasks:
        tr, rs = rows[f"{t}/trained"], rows[f"{t}/reshaped"]
        summary[t] = {"coded_bits_trained": tr["coded_bits"]["mean"], "coded_bits_reshaped": rs["coded_bits"]["mean"],
                      "metric_trained": tr["metric"]["mean"], "metric_reshaped": rs["metric"]["mean"],
                      **{f"metric_ft{e}": rows[f"{t}/ft{e}"]["metric"]["mean"] for e in (1, 2, 3)},
                      **{f"coded_bits_ft{e}": rows[f"{t}/ft{e}"]["coded_bits"]["mean"] for e in (1, 2, 3)},
                      **{f"metric_control_ft{e}": rows[f"{t}/control-ft{e}"]["metric"]["mean"] for e in (1, 2, 3)}}
    cfg = {"tasks": tasks, "ft_lr_factor": FT_LR_FACTOR,
           "deepshape": f"rf8sim.training.deepshape.deepshape_(model, mode='tensor', step_exp={STEP_EXP}) on "
                        f"Linear/Conv/Embedding weights with >= {MIN_NUMEL} values; "
                        "defaults otherwise: core_count 1 % of peak level, shape x0.8, scale x0.6",
           "fits": fits}
    return {"config": cfg, "seeds": seed_list, "rows": rows, "summary": summary}


def summary_table(p: dict):
    from .common import fmt_ms

    rows = [[r["task"], r["stage"], fmt_ms(r["metric"], 4), fmt_ms(r["exp_golomb_bits"], 3),
             fmt_ms(r["entropy_bits"], 3), fmt_ms(r["uniform_coded_bits"], 3), fmt_ms(r["rf8_entropy_bits"], 3),
             fmt_ms(r["coded_bits"], 3)] for r in p["rows"].values()]
    return ("(d) DeepShape: metric and rate (bits/param) before/after reshaping and fine-tuning",
            ["task", "stage", "metric (acc / bits per byte)", "exp-Golomb (2^-8 grid)", "entropy (grid)",
             "coded (grid)", "entropy (rf8)", "coded (rf8)"], rows)


VERDICT_RULE = ("per task, after k = 1..3 fine-tuning epochs: recovered when the metric is no worse than the "
                "control's (same fine-tuning without reshaping) by more than the sum of their seed stds, and "
                "compressed when the exp-Golomb rate is below the control's; supported: some k recovered and "
                "compressed on every task; partly: compressed on every task and recovered on some; "
                "not supported otherwise")


def verdict(p: dict) -> dict:
    """The claim's verdict from the recorded rows, by :data:`VERDICT_RULE`."""
    per_task = {}
    for t in sorted({r["task"] for r in p["rows"].values()}):
        rows = {r["stage"]: r for r in p["rows"].values() if r["task"] == t}
        lower = "bits" in rows["trained"]["metric_name"]
        got = []
        for k in (1, 2, 3):
            ft, c = rows[f"ft{k}"], rows[f"control-ft{k}"]
            worse = (ft["metric"]["mean"] - c["metric"]["mean"]) * (1 if lower else -1)
            rec = worse <= ft["metric"]["std"] + c["metric"]["std"]
            comp = ft["exp_golomb_bits"]["mean"] < c["exp_golomb_bits"]["mean"]
            got.append((k, rec, comp))
        ok = [k for k, rec, comp in got if rec and comp]
        per_task[t] = {"recovered_and_compressed_after": ok[0] if ok else None,
                       "compressed_every_k": all(comp for _, _, comp in got)}
    every = all(x["recovered_and_compressed_after"] is not None for x in per_task.values())
    some = any(x["recovered_and_compressed_after"] is not None for x in per_task.values())
    comp = all(x["compressed_every_k"] for x in per_task.values())
    v = "supported" if every else ("partly supported" if comp and some else "not supported")
    return {"verdict": v, "rule": VERDICT_RULE, "evidence": per_task}
