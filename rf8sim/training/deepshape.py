"""DeepShape: post-training reshaping of weight histograms toward a generalized Gaussian.

Per group of values (one tensor in ``mode="tensor"``, all selected parameters
pooled in the authors' ``mode="global"``):

1. quantize uniformly with step ``2**-step_exp`` (authors: 13): levels ``q = round(w / step)``;
2. dense core: ``|q| <= T`` with T the smallest positive level whose count is at
   most ``core_count`` (authors: 1000 in their pooled mode; a float in (0, 1) is a
   fraction of the most populated level's count - the per-tensor default is 0.01);
3. fit a GG to the core values by moment matching (beta from rho, alpha = sigma
   sqrt(Gamma(1/beta)/Gamma(3/beta)));
4. target GG: shape ``beta * shape_factor`` (0.8), scale ``alpha * scale_factor`` (0.6);
5. histogram specification: the target's mass on each level of [-T, T],
   normalised over the core, times N_core, rounded by the largest-remainder rule
   (so the counts sum to N_core exactly - the authors floor and leave the
   remainder at its quantized value, which can break the rank order; we do not);
   the sorted core values are assigned to the levels in rank order (stable);
6. values outside the core keep their quantized value, so the whole map is
   monotone (ranks preserved); then ``epochs`` calls of the ``finetune`` callback.
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .backslash import estimate_shape
from .gg import gg_scale_for_variance
from .params import select_params

__all__ = ["DeepShapeError", "DeepShapeResult", "GroupShape", "reshape_values", "deepshape_"]


class DeepShapeError(RF8SimError, ValueError):
    """Bad DeepShape configuration or input."""


@dataclass
class GroupShape:
    """What DeepShape did to one group: fitted and target GG, core threshold and counts."""

    name: str
    n: int
    n_core: int
    threshold_level: int
    step: float
    fitted: tuple  # (beta, alpha)
    target: tuple  # (beta, alpha)
    counts: np.ndarray = field(repr=False)  # assigned count per level -T..T
    target_counts: np.ndarray = field(repr=False)  # N_core * normalised target mass per level


@dataclass
class DeepShapeResult:
    groups: list
    mode: str
    epochs: int

    def summary(self) -> list[dict]:
        return [{"name": g.name, "n": g.n, "n_core": g.n_core, "T": g.threshold_level,
                 "fitted_beta": g.fitted[0], "fitted_alpha": g.fitted[1],
                 "target_beta": g.target[0], "target_alpha": g.target[1],
                 # deprecated keys (the GG shape was called nu here before issue 9): read by older callers
                 "fitted_nu": g.fitted[0], "target_nu": g.target[0]} for g in self.groups]


#: the most histogram levels reshape_values builds (|w| / step); 2**24 int64 counts = 128 MiB
_MAX_LEVELS = 1 << 24


def _sparse_hint(x: torch.Tensor, step_exp: int) -> str:
    """What to do when a group has too few values per level of the 2^-step_exp grid."""
    amax = float(x.abs().max())
    suggest = int(round(math.log2(math.sqrt(x.numel()) / amax))) if amax > 0 else step_exp
    return (f"{x.numel()} values over levels of 2^-{step_exp} up to {amax:.3g} are too few per level for "
            f"DeepShape's histogram; use a coarser grid (step_exp={min(suggest, step_exp - 1)} gives about "
            "sqrt(n) levels), mode='global', or leave this tensor out (select=)")


def reshape_values(w: torch.Tensor, step_exp: int = 13, core_count=1000, shape_factor: float = 0.8,
                   scale_factor: float = 0.6, beta_method: str = "grid", name: str = "values"):
    """DeepShape one 1-D group of values: returns (new values float64, GroupShape)."""
    from scipy import stats

    if w.numel() < 2:
        raise DeepShapeError(f"{name}: need at least 2 values, got {w.numel()}")
    x = w.detach().reshape(-1).to(torch.float64).cpu()
    if not bool(torch.isfinite(x).all()):
        raise DeepShapeError(f"{name}: contains NaN/Inf")
    step = math.ldexp(1.0, -int(step_exp))
    q = torch.round(x / step).to(torch.int64)
    top = float(x.abs().max()) / step
    if top > _MAX_LEVELS:
        raise DeepShapeError(f"{name}: values reach {float(x.abs().max()):.4g}, {top:.3g} levels of the 2^-{step_exp} "
                             f"grid (at most {_MAX_LEVELS:,} fit the level histogram); DeepShape expects weights of "
                             "order 1 - were they blown up in training (a BackSlash step larger than the weights: "
                             "scale lam with the parameter count), or pass a smaller step_exp")
    posq = q[q > 0]
    if posq.numel() == 0:
        raise DeepShapeError(f"{name}: no value reaches the first positive level (step 2^-{step_exp})")
    counts = torch.bincount(posq)
    if isinstance(core_count, float) and 0 < core_count < 1:
        limit = core_count * float(counts.max())
    elif core_count is not None and core_count >= 1:
        limit = float(core_count)
    else:
        raise DeepShapeError(f"core_count must be >= 1 (a count) or in (0, 1) (a fraction), got {core_count!r}")
    low = torch.nonzero(counts[1:] <= limit)
    T = int(low[0, 0]) + 1 if low.numel() else int(counts.numel() - 1)
    core = q.abs() <= T
    n_core = int(core.sum())
    c = x[core]
    m2 = float((c * c).mean())
    m1 = float(c.abs().mean())
    if m1 == 0:
        raise DeepShapeError(f"{name}: the dense core is all zeros ({_sparse_hint(x, step_exp)})")
    beta = estimate_shape(n_core, m2 * n_core, m1 * n_core, beta_method, (0.1, 3.0))
    alpha = gg_scale_for_variance(beta, m2)
    beta_t, alpha_t = beta * shape_factor, alpha * scale_factor
    levels = np.arange(-T, T + 1)
    d = stats.gennorm(beta_t, scale=alpha_t)
    mass = d.cdf((levels + 0.5) * step) - d.cdf((levels - 0.5) * step)
    if not mass.sum() > 0:
        raise DeepShapeError(f"{name}: the target GG puts no mass on the core levels -T..T (T = {T}, "
                             f"{n_core} of {x.numel()} values in the core): {_sparse_hint(x, step_exp)}")
    if n_core < x.numel() // 2:
        import warnings

        warnings.warn(f"DeepShape {name}: only {n_core} of {x.numel()} values lie in the dense core (T = {T}): "
                      f"{_sparse_hint(x, step_exp)}", RuntimeWarning, stacklevel=3)
    raw = n_core * mass / mass.sum()
    cnt = np.floor(raw).astype(np.int64)
    left = n_core - int(cnt.sum())
    if left:
        order = np.argsort(-(raw - cnt), kind="stable")
        cnt[order[:left]] += 1
    new = (q.to(torch.float64) * step)
    ci = torch.nonzero(core).reshape(-1)
    rank = torch.argsort(x[ci], stable=True)
    assigned = torch.repeat_interleave(torch.from_numpy(levels.astype(np.float64)) * step, torch.from_numpy(cnt))
    vals = torch.empty(n_core, dtype=torch.float64)
    vals[rank] = assigned
    new[ci] = vals
    g = GroupShape(name, int(x.numel()), n_core, T, step, (beta, alpha), (beta_t, alpha_t), cnt, raw)
    return new.reshape(w.shape), g


def deepshape_(model, mode: str = "tensor", step_exp: int = 13, core_count=None, shape_factor: float = 0.8,
               scale_factor: float = 0.6, select=None, beta_method: str = "grid", finetune=None,
               epochs: int = 0) -> DeepShapeResult:
    """Reshape the selected weights of ``model`` in place (see the module docstring).

    ``mode``: ``"tensor"`` (each tensor separately) or ``"global"`` (the authors':
    all selected parameters pooled).  ``core_count``: default 1000 in global
    mode, 0.01 (1 % of the peak level count) in tensor mode.  ``finetune``:
    ``callable(model, epoch)`` run ``epochs`` times afterwards.
    Returns a :class:`DeepShapeResult` with the fitted and target parameters.
    """
    if mode not in ("tensor", "global"):
        raise DeepShapeError(f"mode {mode!r} is not valid; valid: tensor, global")
    if not (shape_factor > 0 and scale_factor > 0):
        raise DeepShapeError("shape_factor and scale_factor must be positive")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise DeepShapeError(f"epochs must be a non-negative integer, got {epochs!r}")
    if epochs and finetune is None:
        raise DeepShapeError("epochs > 0 needs a finetune(model, epoch) callback")
    if core_count is None:
        core_count = 1000 if mode == "global" else 0.01
    params = select_params(model, select)
    if not params:
        raise DeepShapeError("no parameters selected")
    kw = dict(step_exp=step_exp, core_count=core_count, shape_factor=shape_factor, scale_factor=scale_factor,
              beta_method=beta_method)
    groups = []
    with torch.no_grad():
        if mode == "tensor":
            for n, p in params:
                new, g = reshape_values(p, name=n, **kw)
                p.copy_(new.to(device=p.device, dtype=p.dtype))
                groups.append(g)
        else:
            flat = torch.cat([p.detach().reshape(-1).double().cpu() for _, p in params])
            new, g = reshape_values(flat, name="global", **kw)
            off = 0
            for _, p in params:
                k = p.numel()
                p.copy_(new[off:off + k].reshape(p.shape).to(device=p.device, dtype=p.dtype))
                off += k
            groups.append(g)
    for e in range(epochs):
        finetune(model, e)
    return DeepShapeResult(groups, mode, epochs)
