"""Training pipeline of the MNIST-1D model (GG init, BackSlash, DeepShape, fine-tune), cached.

Used by ``rf8sim flow`` (stage ``train``) and the area-accuracy study; it imports neither of them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np

from ..common.config import config_hash

__all__ = ["StageSkipped", "mlp_layers", "train_pipeline", "training_fn"]


class StageSkipped(Exception):
    """A stage that cannot run here; the message says why (reported, never silent)."""


def mlp_layers(model) -> list:
    """``[(W, b), ...]`` float32 numpy arrays of an MLP's Linear layers in forward order."""
    from torch import nn

    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return [(m.weight.detach().cpu().numpy().astype(np.float32).copy(),
             None if m.bias is None else m.bias.detach().cpu().numpy().astype(np.float32).copy())
            for m in lins]


def _accuracy(model, x, y) -> float:
    import torch

    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def training_fn(name: str):
    """A function of rf8sim.training (or one of its submodules, while exports land); None if absent."""
    import importlib

    from ... import training as T

    fn = getattr(T, name, None)
    if fn is not None:
        return fn
    for sub in ("gg", "backslash", "deepshape", "rate", "regularize", "prior"):
        try:
            mod = importlib.import_module(f"rf8sim.training.{sub}")
        except ImportError:
            continue
        if hasattr(mod, name):
            return getattr(mod, name)
    return None


def _training_code_hash() -> str:
    """Hash of the code a cached model depends on (training part, models, this pipeline)."""
    import hashlib

    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[2]
    for f in sorted((root / "training").glob("*.py")) + [root / "workloads" / "models.py", Path(__file__)]:
        if f.is_file():
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _mnist1d_cached(n: int, cache_root: Path):
    """load_mnist1d(n=n) through an .npz cache: generating MNIST-1D takes seconds, reading it ms."""
    import torch

    from ...workloads.data import MNIST1D_SEED, load_mnist1d

    f = cache_root / "data" / f"mnist1d-seed{MNIST1D_SEED}-n{n}.npz"
    if f.is_file():
        try:
            z = np.load(f)
            return tuple(torch.from_numpy(z[k]) for k in ("x", "y", "x_test", "y_test"))
        except (OSError, ValueError, KeyError):
            pass  # regenerate a damaged cache entry
    xs = load_mnist1d(n=n)
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_name(f.stem + f".tmp{os.getpid()}.npz")
    np.savez(tmp, **dict(zip(("x", "y", "x_test", "y_test"), (t.numpy() for t in xs))))
    os.replace(tmp, f)
    return xs


def train_pipeline(mcfg, seed: int = 0, *, cache_dir=None, progress: bool = True, console=None,
                   use_cache: bool = True, keep_model: bool = False) -> dict:
    """Train the configured MNIST-1D MLP: GG init, BackSlash, optional DeepShape + fine-tune.

    Returns a dict with ``layers`` (numpy (W, b) list), ``x_eval``/``y_eval`` (the first
    ``eval_samples`` test samples), float accuracies after each phase, per-epoch losses,
    ``steps`` (what ran, and what was skipped and why) and, with ``keep_model``, the torch
    ``model``.  Results are cached under the cache root's ``model/<hash>.npz`` (``cache_dir``: a root other
than :func:`rf8sim.infra.cache.root`) unless ``keep_model``.
    """
    import torch
    from tqdm.auto import tqdm

    from ...workloads.models import MLP

    mdict = dataclasses.asdict(mcfg)
    key = config_hash({"model": mdict, "seed": seed, "torch": torch.__version__, "code": _training_code_hash(),
                       "v": 2})
    from ...infra import cache as _cache

    cache = _cache.subdir("model", cache_dir) / f"{key}.npz"
    x_tr, y_tr, x_te, y_te = _mnist1d_cached(mcfg.n_samples, cache.parents[1])
    if mcfg.eval_samples > len(x_te):
        from ..common.config import ConfigError

        raise ConfigError(f"[model] eval_samples = {mcfg.eval_samples} but n_samples = {mcfg.n_samples} gives only "
                          f"{len(x_te)} test samples; lower eval_samples or raise n_samples")
    x_eval = x_te[: mcfg.eval_samples].numpy()
    y_eval = y_te[: mcfg.eval_samples].numpy()
    if use_cache and not keep_model and cache.is_file():
        z = np.load(cache, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        n = meta["n_layers"]
        layers = [(z[f"w{i}"], z[f"b{i}"]) for i in range(n)]
        return {**meta, "layers": layers, "x_eval": x_eval, "y_eval": y_eval, "cached": True}

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = MLP(d_in=x_tr.shape[1], hidden=tuple(mcfg.hidden), n_classes=10)
    steps = {}
    if mcfg.init == "gg":
        gg_init_ = training_fn("gg_init_")
        if gg_init_ is None:
            raise StageSkipped("rf8sim.training.gg_init_ is not available")
        gg_init_(model, beta=mcfg.gg_shape, generator=gen)
        steps["init"] = f"GG (shape {mcfg.gg_shape})"
    else:
        steps["init"] = "torch default"
    opt = torch.optim.Adam(model.parameters(), lr=mcfg.lr)
    lossf = torch.nn.CrossEntropyLoss()
    bs = None
    if mcfg.backslash > 0 and mcfg.backslash_epochs > 0:
        bs = _make_backslash(model, mcfg.backslash)
        steps["backslash"] = f"lambda {mcfg.backslash:g} for {min(mcfg.backslash_epochs, mcfg.epochs)} epoch(s)"
    history = []

    def run_epochs(n, desc, with_bs_until=0, opt_=opt):
        bar = tqdm(range(n), desc=desc, disable=not progress, leave=False)
        for ep in bar:
            perm = torch.randperm(len(x_tr), generator=gen)
            model.train()
            tot = 0.0
            for s in range(0, len(x_tr), mcfg.batch_size):
                idx = perm[s:s + mcfg.batch_size]
                opt_.zero_grad()
                loss = lossf(model(x_tr[idx]), y_tr[idx])
                loss.backward()
                opt_.step()
                if bs is not None and ep < with_bs_until:
                    bs.step()
                tot += loss.item() * len(idx)
            model.eval()
            history.append({"phase": desc, "epoch": len(history), "loss": tot / len(x_tr),
                            "test_acc": _accuracy(model, x_te, y_te)})
            bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", acc=f"{history[-1]['test_acc']:.3f}")

    t = time.perf_counter()
    run_epochs(mcfg.epochs, "train", with_bs_until=mcfg.backslash_epochs)
    acc_trained = _accuracy(model, x_te, y_te)
    out = {"float_acc_trained": acc_trained}
    if mcfg.deepshape:
        fn = training_fn("deepshape_") or training_fn("deepshape")
        if fn is None:
            raise StageSkipped("rf8sim.training.deepshape is not available")
        info = fn(model)
        summ = info.summary() if hasattr(info, "summary") else []
        if summ:
            steps["deepshape"] = ("per tensor: GG shape " + ", ".join(
                f"{g['fitted_nu']:.2f}->{g['target_nu']:.2f}" for g in summ) + " (fitted -> target)")
        else:
            steps["deepshape"] = _short(info)
        out["deepshape"] = summ
        out["float_acc_deepshape"] = _accuracy(model, x_te, y_te)
        if mcfg.finetune_epochs:
            opt2 = torch.optim.Adam(model.parameters(), lr=mcfg.lr * 0.3)
            run_epochs(mcfg.finetune_epochs, "fine-tune", opt_=opt2)
        steps["finetune"] = f"{mcfg.finetune_epochs} epoch(s)"
    out["float_acc"] = _accuracy(model, x_te, y_te)
    out["float_acc_eval"] = _accuracy(model, x_te[: mcfg.eval_samples], y_te[: mcfg.eval_samples])
    out["train_s"] = time.perf_counter() - t
    layers = mlp_layers(model)
    meta = {**out, "steps": steps, "history": history, "n_layers": len(layers),
            "n_params": int(sum(p.numel() for p in model.parameters())), "seed": seed,
            "hidden": list(mcfg.hidden)}
    if use_cache and not keep_model:
        cache.parent.mkdir(parents=True, exist_ok=True)
        arrs = {f"w{i}": w for i, (w, _) in enumerate(layers)}
        arrs.update({f"b{i}": b for i, (_, b) in enumerate(layers)})
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        np.savez(tmp, meta=json.dumps(meta), **arrs)
        tmp.replace(cache)
    res = {**meta, "layers": layers, "x_eval": x_eval, "y_eval": y_eval, "cached": False}
    if keep_model:
        res["model"] = model
    return res


def _make_backslash(model, lam):
    cls = training_fn("BackSlash")
    if cls is None:
        raise StageSkipped("rf8sim.training.BackSlash is not available")
    return cls(model, lam=lam)


def _short(info) -> str:
    if isinstance(info, dict):
        return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()
                         if isinstance(v, (int, float, str)))[:200]
    return str(info)[:200]
