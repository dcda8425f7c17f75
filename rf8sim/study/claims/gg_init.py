"""Claim (b): GG initialization converges faster and ends more accurate.

Every initializer is applied to the same tensors -- the weights of Linear,
Conv1d and Embedding layers -- with biases set to 0 and LayerNorm left at
(1, 0), so only the weight law differs:

* ``kaiming-normal`` / ``kaiming-uniform``: torch.nn.init, fan_in, ReLU gain (variance 2/fan_in);
* ``xavier-normal`` / ``xavier-uniform``: torch.nn.init (variance 2/(fan_in + fan_out));
* ``gg-b{0.5,1,1.5,2}``: :func:`rf8sim.training.gg_init_` with shape beta, xi = 2 and
  mode ``fan_in``, i.e. exactly Kaiming's variance with a GG shape (gg-b2 is
  Kaiming-normal in law), so the comparison isolates the shape;
* ``torch-default``: the layers' own reset_parameters (for reference).

Tasks: MNIST-1D MLP and CNN (cross entropy; test accuracy), and TinyLM on the
pydoc text (held-out next-byte loss).  "Steps to target" is the first
optimizer step at which the mean training loss over the last ``window`` steps
is at or below the task's target (fixed in the config; None = not reached).
"""

from __future__ import annotations

import math

__all__ = ["run", "summary_table", "init_weights_", "INITS", "TASKS"]

INITS = ("torch-default", "kaiming-normal", "kaiming-uniform", "xavier-normal", "xavier-uniform",
         "gg-b0.5", "gg-b1", "gg-b1.5", "gg-b2")

#: task -> full-setting config.  Targets were set once from a pilot run (kaiming-normal, seed 0) so that
#: most initializers reach them within the budget (recorded with the results).
TASKS = {
    "mlp": dict(epochs=40, batch=100, lr=2e-3, target=0.25, window=40),
    "cnn": dict(epochs=40, batch=100, lr=3e-3, target=0.25, window=40),
    "tinylm": dict(steps=800, batch=16, block=64, d_model=64, n_layer=2, n_head=4, lr=2e-3,
                   target=2.2, window=50, eval_every=100, eval_windows=200),
}
QUICK = {
    "mlp": dict(epochs=3, batch=100, lr=2e-3, target=1.5, window=10, n=1000),
    "cnn": dict(epochs=2, batch=100, lr=3e-3, target=2.0, window=10, n=1000),
    "tinylm": dict(steps=30, batch=8, block=32, d_model=32, n_layer=1, n_head=2, lr=3e-3,
                   target=3.5, window=10, eval_every=15, eval_windows=20, max_bytes=40000),
}


def _weights(model):
    from torch import nn

    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Embedding)):
            yield m


def init_weights_(model, method: str, generator):
    """Re-initialize ``model`` in place with ``method`` (one of :data:`INITS`)."""
    import torch
    from torch import nn

    if method not in INITS:
        from .common import ClaimError

        raise ClaimError(f"unknown init {method!r}; valid: {', '.join(INITS)}")
    if method == "torch-default":
        for m in model.modules():
            if hasattr(m, "reset_parameters") and m is not model:
                m.reset_parameters()
        return model
    for m in _weights(model):
        w = m.weight
        with torch.no_grad():
            if method.startswith("gg-b"):
                from rf8sim.training.gg import gg_init_

                _gg_tensor_(gg_init_, w, float(method[4:]), generator)
            else:
                # torch.nn.init's fan_in for an Embedding (num, dim) is dim: the same convention for all
                fn = {"kaiming-normal": nn.init.kaiming_normal_, "kaiming-uniform": nn.init.kaiming_uniform_,
                      "xavier-normal": nn.init.xavier_normal_, "xavier-uniform": nn.init.xavier_uniform_}[method]
                if method.startswith("kaiming"):
                    fn(w, mode="fan_in", nonlinearity="relu", generator=generator)
                else:
                    fn(w, gain=math.sqrt(2.0), generator=generator)
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
    return model


def _gg_tensor_(gg_init_, w, beta, generator):
    """GG with Kaiming's fan_in variance (xi = 2) on one weight tensor."""
    gg_init_(w, beta=beta, xi=2.0, mode="fan_in", generator=generator)


def _task_data(task, cfg):
    from rf8sim.workloads.data import load_mnist1d, load_text_corpus

    if task == "tinylm":
        return load_text_corpus(max_bytes=cfg.get("max_bytes"))
    return load_mnist1d(n=cfg.get("n"))


def _make_model(task, cfg):
    from rf8sim.workloads.models import CNN1D, MLP, TinyLM

    if task == "mlp":
        return MLP()
    if task == "cnn":
        return CNN1D()
    return TinyLM(d_model=cfg["d_model"], n_layer=cfg["n_layer"], n_head=cfg["n_head"], block=cfg["block"])


def steps_to_target(losses, target, window):
    """First step (1-based) at which the trailing ``window``-mean of ``losses`` is <= target, else None."""
    s = 0.0
    for i, l in enumerate(losses):
        s += l
        if i >= window:
            s -= losses[i - window]
        if i + 1 >= window and s / window <= target:
            return i + 1
    return None


def run_one(task, cfg, method, seed, data, progress=False):
    """Train one model; returns a dict of metrics."""
    import torch

    from .common import accuracy, eval_lm, seeded, train_classifier, train_lm

    g = seeded(seed)
    model = _make_model(task, cfg)
    init_weights_(model, method, g)
    if task == "tinylm":
        bl = cfg["block"]
        losses, evals = train_lm(model, data.train, steps=cfg["steps"], batch=cfg["batch"], block=bl,
                                 lr=cfg["lr"], generator=g, eval_every=cfg["eval_every"],
                                 eval_fn=lambda m: eval_lm(m, data.test, bl, cfg["eval_windows"]))
        final = evals[-1][1]
        return {"steps_to_target": steps_to_target(losses, cfg["target"], cfg["window"]),
                "final_train_loss": sum(losses[-cfg["window"]:]) / cfg["window"],
                "test_loss": final, "test_bits_per_byte": final / math.log(2), "test_ppl": math.exp(final),
                "eval_curve": evals, "steps": len(losses)}
    xtr, ytr, xte, yte = data
    losses = train_classifier(model, xtr, ytr, epochs=cfg["epochs"], batch=cfg["batch"], lr=cfg["lr"], generator=g)
    with torch.no_grad():
        model.eval()
        test_loss = float(torch.nn.functional.cross_entropy(model(xte), yte))
    return {"steps_to_target": steps_to_target(losses, cfg["target"], cfg["window"]),
            "final_train_loss": sum(losses[-cfg["window"]:]) / cfg["window"],
            "test_loss": test_loss, "test_acc": accuracy(model, xte, yte), "steps": len(losses)}


def _job(job, tasks, data):
    """One seed x init x task (a cluster task; top-level so it pickles)."""
    t, m, s = job
    return run_one(t, tasks[t], m, s, data[t])


def run(quick: bool, seeds: int | None, progress: bool, outdir) -> dict:
    import functools

    from .common import fan_out, mean_std

    nseeds = seeds or (1 if quick else 3)
    seed_list = list(range(nseeds))
    tasks = QUICK if quick else TASKS
    inits = INITS if not quick else ("kaiming-normal", "xavier-uniform", "gg-b1", "gg-b2")
    rows, raw = {}, {}
    jobs = [(t, m, s) for t in tasks for m in inits for s in seed_list]
    data = {t: _task_data(t, c) for t, c in tasks.items()}
    results = fan_out(functools.partial(_job, tasks=tasks, data=data), jobs, kind="gg-init",
                      setting={"tasks": tasks, "quick": quick}, progress=progress, desc="gg-init runs")
    for (t, m, _s), r in zip(jobs, results):
        raw.setdefault(f"{t}/{m}", []).append(r)
    for key, runs in raw.items():
        t, m = key.split("/")
        stt = [r["steps_to_target"] for r in runs]
        reached = [x for x in stt if x is not None]
        row = {"task": t, "init": m, "reached": f"{len(reached)}/{len(stt)}",
               "steps_to_target": mean_std(reached) if len(reached) == len(stt) else {
                   "mean": None, "std": None, "n": len(reached), "values": stt},
               "final_train_loss": mean_std([r["final_train_loss"] for r in runs]),
               "test_loss": mean_std([r["test_loss"] for r in runs])}
        if t == "tinylm":
            row["test_bits_per_byte"] = mean_std([r["test_bits_per_byte"] for r in runs])
            row["eval_curves"] = [r["eval_curve"] for r in runs]
        else:
            row["test_acc"] = mean_std([r["test_acc"] for r in runs])
        rows[key] = row
    summary = {}
    for t in tasks:
        trs = {k.split("/")[1]: r for k, r in rows.items() if r["task"] == t}
        best_loss = min(trs, key=lambda m: trs[m]["test_loss"]["mean"])
        fastest = min((m for m in trs if trs[m]["steps_to_target"]["mean"] is not None),
                      key=lambda m: trs[m]["steps_to_target"]["mean"], default=None)
        gg = [m for m in trs if m.startswith("gg-")]
        base = [m for m in trs if not m.startswith("gg-")]
        bg = min(gg, key=lambda m: trs[m]["test_loss"]["mean"])
        bb = min(base, key=lambda m: trs[m]["test_loss"]["mean"])
        summary[t] = {"best_test_loss": best_loss, "fastest_to_target": fastest,
                      "best_gg": bg, "best_gg_test_loss": trs[bg]["test_loss"],
                      "best_baseline": bb, "best_baseline_test_loss": trs[bb]["test_loss"]}
    return {"config": {"tasks": tasks, "inits": list(inits), "optimizer": "Adam (MNIST-1D), AdamW wd=0 + "
                       "grad-clip 1 (TinyLM)", "gg_init": "rf8sim.training.gg_init_(w, shape=beta, xi=2, mode='fan_in')"},
            "seeds": seed_list, "rows": rows, "summary": summary}


def summary_table(p: dict):
    from .common import fmt_ms

    rows = []
    for r in p["rows"].values():
        acc = fmt_ms(r.get("test_acc"), 4) if "test_acc" in r else fmt_ms(r.get("test_bits_per_byte"), 4) + " bpb"
        rows.append([r["task"], r["init"], r["reached"], fmt_ms(r["steps_to_target"], 4),
                     fmt_ms(r["final_train_loss"], 4), fmt_ms(r["test_loss"], 4), acc])
    return ("(b) initialization: steps to target training loss, final losses",
            ["task", "init", "reached", "steps to target", "final train loss", "test loss", "test acc / bits per byte"],
            rows)


VERDICT_RULE = ("per task, GG wins when the best GG init (lowest mean test loss) beats the best standard init "
                "by more than the sum of their seed standard deviations, in test loss and, where both reached "
                "the target, in steps to target; GG loses when the standard init is better by that margin in "
                "test loss; supported: GG wins on every task; partly: on some task; not supported: on none")


def verdict(p: dict) -> dict:
    """The claim's verdict from the recorded rows, by :data:`VERDICT_RULE`."""
    per_task = {}
    for t, s in p["summary"].items():
        g, b = p["rows"][f"{t}/{s['best_gg']}"], p["rows"][f"{t}/{s['best_baseline']}"]
        margin = g["test_loss"]["std"] + b["test_loss"]["std"]
        dloss = b["test_loss"]["mean"] - g["test_loss"]["mean"]  # > 0: GG lower loss
        gs, bs = g["steps_to_target"], b["steps_to_target"]
        faster = None
        if gs["mean"] is not None and bs["mean"] is not None:
            faster = bs["mean"] - gs["mean"] > gs["std"] + bs["std"]
        if dloss > margin and faster is not False:
            per_task[t] = "GG wins"
        elif -dloss > margin:
            per_task[t] = "GG loses"
        else:
            per_task[t] = "tie"
    wins = sum(v == "GG wins" for v in per_task.values())
    v = "supported" if wins == len(per_task) else ("partly supported" if wins else "not supported")
    return {"verdict": v, "rule": VERDICT_RULE, "evidence": per_task}
