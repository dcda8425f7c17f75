"""Shared machinery of the claim recipes: result files, seeds, training loops, tables.

A recipe is a function ``run(quick: bool, seeds: int | None, progress: bool) -> dict``
returning a JSON-able payload with ``config``, ``rows`` (the per-setting
aggregates) and ``summary``; :func:`run_recipe` adds provenance (machine,
versions, wall time), writes it and prints the summary table.
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

import json
import math
import statistics
import sys
from pathlib import Path

from rf8sim.infra.resources import source_root

#: claim name -> module (imported on demand: torch and the models are heavy).
RECIPES = {
    "gg-fit": "rf8sim.study.claims.gg_fit",
    "rf8-inference": "rf8sim.study.claims.rf8_inference",
    "gg-init": "rf8sim.study.claims.gg_init",
    "backslash": "rf8sim.study.claims.backslash",
    "deepshape": "rf8sim.study.claims.deepshape",
}

__all__ = [
    "ClaimError",
    "RESULTS_DIR",
    "provenance",
    "check_out_path",
    "write_json",
    "mean_std",
    "fmt_ms",
    "seeded",
    "progress_iter",
    "train_classifier",
    "accuracy",
    "train_lm",
    "eval_lm",
    "print_table",
    "fan_out",
    "fan_out_settings",
]

#: Where full-setting results are recorded (checked in).
RESULTS_DIR = (source_root() or Path.cwd()) / "training" / "results"


class ClaimError(RF8SimError, ValueError):
    """Bad recipe arguments (unknown claim, refused overwrite, bad seed count)."""


#: where :func:`fan_out` runs the recipes' tasks (set by the runner from --cluster/--workers)
_FANOUT = {"cluster": "local", "workers": 1, "cache": True}


class fan_out_settings:
    """``with fan_out_settings(cluster=..., workers=..., cache=...):`` for one recipe run."""

    def __init__(self, cluster: str = "local", workers: int = 1, cache: bool = True):
        self.new = {"cluster": cluster, "workers": workers, "cache": cache}

    def __enter__(self):
        self.old = dict(_FANOUT)
        _FANOUT.update(self.new)

    def __exit__(self, *exc):
        _FANOUT.clear()
        _FANOUT.update(self.old)


def fan_out(fn, jobs, *, kind: str, setting, progress: bool = False, desc: str = "", num_gpus: float = 0.0) -> list:
    """``[fn(job) for job in jobs]`` as tasks (one per seed x arm x setting) through
    :func:`rf8sim.infra.cluster.run_tasks`: in this process, in local processes or on Ray, each result
    cached under the cache root by a hash of the recipe, its ``setting``, the job and the code
    version (an interrupted claim run resumes where it stopped).  Results come back in job order,
    as JSON values (tuples become lists).  The recipes train on the CPU (bit-reproducible), so
    ``num_gpus`` is 0 unless a recipe asks for a GPU."""
    from rf8sim.infra import cache, cluster

    jobs = list(jobs)
    keys = ([cache.content_hash("claims", kind, setting, job, cache.code_version()) for job in jobs]
            if _FANOUT["cache"] else None)
    return cluster.run_tasks(fn, jobs, keys=keys, kind=f"claims-{kind}", cluster=_FANOUT["cluster"],
                             workers=_FANOUT["workers"],
                             resources=cluster.Resources(num_cpus=1, num_gpus=num_gpus, tools=("torch",)),
                             labels=[f"{kind}:{'/'.join(map(str, job)) if isinstance(job, (list, tuple)) else job}"
                                     for job in jobs], progress=progress, desc=desc or kind)


def provenance() -> dict:
    """rf8sim.infra.records.provenance (machine, versions, command, commit, dirty flag, diff hash) plus the
    torch settings a claim run depends on."""
    import numpy
    import torch

    from rf8sim import __version__
    from rf8sim.infra.records import provenance as record_provenance

    p = record_provenance()
    p.update({"rf8sim": __version__, "git_commit": p["commit"], "torch": torch.__version__,
              "numpy": numpy.__version__, "torch_threads": torch.get_num_threads()})
    return p


def check_out_path(path: Path, force: bool) -> None:
    """Refuse (before any work) to overwrite an existing result file unless ``force``."""
    from rf8sim.infra.fileio import check_output_path

    if path.is_dir() and not path.is_symlink():
        raise ClaimError(f"{path} is a directory; --out takes a directory and writes NAME.json in it")
    check_output_path(path, overwrite=force)


def write_json(path: Path, payload: dict, force: bool) -> None:
    """Write ``payload`` atomically; an existing file is only replaced with ``force``."""
    from rf8sim.infra.fileio import write_text
    from rf8sim.infra.records import portable

    payload = portable(json.loads(json.dumps(payload, default=_json_default)))  # no paths of this machine
    write_text(path, json.dumps(payload, indent=1) + "\n", overwrite=force)


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def mean_std(xs) -> dict:
    """``{"mean", "std", "n", "values"}`` of a list of numbers (sample std; 0 for one value)."""
    xs = [float(x) for x in xs]
    if not xs:
        return {"mean": None, "std": None, "n": 0, "values": []}
    m = statistics.fmean(xs)
    s = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return {"mean": m, "std": s, "n": len(xs), "values": xs}


def fmt_ms(d: dict | None, digits: int = 3) -> str:
    """``mean ± std`` of a :func:`mean_std` dict (just the value for one seed)."""
    if d is None or d.get("mean") is None:
        return "-"
    m, s = d["mean"], d["std"]
    if isinstance(m, float) and math.isinf(m):
        return "inf"
    if d["n"] > 1:
        return f"{m:.{digits}g} ± {s:.2g}"
    return f"{m:.{digits}g}"


def seeded(seed: int):
    """A torch Generator seeded with ``seed`` (and seeds torch's global RNG for dropout-free models)."""
    import torch

    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def progress_iter(it, enabled: bool, **kw):
    """``tqdm`` over ``it`` when enabled (to stderr), else ``it``."""
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, leave=False, dynamic_ncols=True, file=sys.stderr, **kw)


def accuracy(model, x, y, batch: int = 1000) -> float:
    """Top-1 accuracy of a classifier on ``(x, y)``."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    model.train()
    return correct / len(x)


def train_classifier(model, x, y, *, epochs: int, batch: int, lr: float, generator, opt: str = "adam",
                     after_step=None, penalty=None, on_step=None, progress: bool = False, desc: str = ""):
    """Minibatch training with cross entropy; returns the list of per-step training losses.

    ``penalty(model) -> tensor`` is added to the loss (autograd regularizers);
    ``after_step(model, step)`` runs after each optimizer step (e.g. the BackSlash
    per-batch step); ``on_step(step, loss)`` may return True to stop early.
    """
    import torch
    import torch.nn.functional as F

    optim = _make_opt(model, opt, lr)
    losses = []
    step = 0
    model.train()
    for _ in progress_iter(range(epochs), progress, desc=desc or "epochs"):
        perm = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            total = loss + penalty(model) if penalty is not None else loss
            optim.zero_grad(set_to_none=True)
            total.backward()
            optim.step()
            if after_step is not None:
                after_step(model, step)
            losses.append(loss.item())
            step += 1
            if on_step is not None and on_step(step, losses[-1]):
                return losses
    return losses


def _make_opt(model, opt, lr):
    import torch

    if opt == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if opt == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    if opt == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    raise ClaimError(f"unknown optimizer {opt!r}; valid: adam, adamw, sgd")


def train_lm(model, tokens, *, steps: int, batch: int, block: int, lr: float, generator,
             eval_fn=None, eval_every: int = 0, after_step=None, penalty=None, progress: bool = False,
             desc: str = ""):
    """Train a next-token LM for ``steps`` random-window batches.

    Returns ``(train_losses, evals)`` where ``evals`` lists ``(step, eval_fn(model))``
    taken every ``eval_every`` steps (and at the end).
    """
    import torch

    from rf8sim.workloads.data import lm_batch

    optim = _make_opt(model, "adamw", lr)
    losses, evals = [], []
    model.train()
    for step in progress_iter(range(1, steps + 1), progress, desc=desc or "steps"):
        xb, yb = lm_batch(tokens, batch, block, generator)
        loss = model.loss(xb, yb)
        total = loss + penalty(model) if penalty is not None else loss
        optim.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        if after_step is not None:
            after_step(model, step)
        losses.append(loss.item())
        if eval_fn is not None and eval_every and (step % eval_every == 0 or step == steps):
            evals.append((step, eval_fn(model)))
    return losses, evals


def eval_lm(model, tokens, block: int, max_windows: int | None = None, batch: int = 32) -> float:
    """Mean next-byte cross entropy (nats) over non-overlapping windows of the held-out text."""
    import torch

    model.eval()
    n = (len(tokens) - 1) // block
    if max_windows is not None:
        n = min(n, max_windows)
    if n < 1:
        raise ClaimError(f"eval_lm: {len(tokens)} tokens are too few for block {block}")
    tot, cnt = 0.0, 0
    with torch.no_grad():
        for i in range(0, n, batch):
            starts = range(i * block, min(n, i + batch) * block, block)
            xb = torch.stack([tokens[s:s + block] for s in starts])
            yb = torch.stack([tokens[s + 1:s + block + 1] for s in starts])
            tot += model.loss(xb, yb).item() * xb.numel()
            cnt += xb.numel()
    model.train()
    return tot / cnt


def print_table(title: str, headers: list[str], rows: list[list], console=None) -> None:
    """A rich summary table."""
    from rf8sim.infra.console import Console
    from rich.table import Table

    t = Table(title=title)
    for h in headers:
        t.add_column(h)
    for r in rows:
        t.add_row(*[str(c) for c in r])
    (console or Console()).print(t)
