"""BackSlash: rate-constrained training with a generalized Gaussian prior.

Rate term ``R(w) = (1/n) * sum (|w| + eps)**beta`` over the selected parameters
(default: weights of Linear/Conv/Embedding), ``n`` their total count, with the
shape ``beta`` re-estimated by moment matching every ``every`` steps:
``rho = n * sum w^2 / (sum |w|)^2`` matched to ``Gamma(1/beta)Gamma(3/beta)/Gamma(2/beta)^2``
(the authors look beta up on a 0.01 grid over [0.1, 3.0]; ``beta_method="root"``
solves it exactly instead).

Two forms:

(a) ``step()`` after ``optimizer.step()`` - the authors' per-batch update
    ``w <- w - (lam * beta / n) * sign(w) * (|w| + eps)**(beta - 1)`` (a subgradient
    step on lam * R; their defaults lam = 2e3, eps = 1).
(b) ``loss(D)`` returns ``D + lam * R`` for autograd (then any optimizer).

Distributed: with replicated parameters (DDP) every rank holds the same weights,
so statistics are local and identical.  With sharded parameters (FSDP, or any
manual sharding) pass ``sharded=True`` (and optionally ``process_group``): the
three sufficient statistics (count, sum w^2, sum |w|) and the rate's sum are
all-reduced (SUM) over the group, so beta and n are those of the full model.
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

import math

import numpy as np
import torch

from .gg import rho, shape_from_rho
from .params import select_params

__all__ = ["BackSlash", "BackSlashError", "estimate_shape"]


class BackSlashError(RF8SimError, ValueError):
    """Bad BackSlash configuration."""


_GRID = np.round(np.arange(0.1, 3.0 + 1e-9, 0.01), 2)
_GRID_RHO = rho(_GRID)


def estimate_shape(n: float, s2: float, s1: float, method: str = "grid", bounds=(0.1, 3.0)) -> float:
    """beta from the pooled statistics (count, sum w^2, sum |w|)."""
    if s1 <= 0:
        return float(bounds[1])
    r = n * s2 / (s1 * s1)
    if method == "grid":  # the authors' lookup: the grid point whose rho is closest
        g = (_GRID >= bounds[0] - 1e-12) & (_GRID <= bounds[1] + 1e-12)
        i = int(np.argmin(np.abs(_GRID_RHO[g] - r)))
        return float(_GRID[g][i])
    if method == "root":
        return shape_from_rho(r, bounds)
    raise BackSlashError(f"beta_method {method!r} is not valid; valid: grid, root")


_UPDATE = {"fn": None, "failed": None}


def _update_kernel(params, c, e, eps: float):
    for p in params:
        p.sub_(torch.sign(p) * (p.abs() + eps).pow(e) * c)


def _compiled_update(params, c: float, e: float, eps: float) -> bool:
    """The per-batch step as one fused pass per tensor (torch.compile); False if it cannot compile.

    ``c`` and ``e`` go in as 0-dim tensors so a new beta does not recompile.  The
    compiled ``pow`` may differ from the eager one in the last bit (vectorised
    libm); the step is a regulariser, not a bit-exact datapath (tested to 2 ulp).
    """
    if _UPDATE["failed"] is not None:
        return False
    if _UPDATE["fn"] is None:
        _UPDATE["fn"] = torch.compile(_update_kernel, dynamic=False)
    dev = params[0].device
    try:
        _UPDATE["fn"](params, torch.tensor(c, device=dev), torch.tensor(e, device=dev), eps)
        return True
    except Exception as ex:  # noqa: BLE001 - report once, then the foreach path
        import warnings

        _UPDATE["failed"] = f"{type(ex).__name__}: {ex}"
        warnings.warn(f"rf8sim: torch.compile of the BackSlash step failed ({_UPDATE['failed'][:200]}); "
                      "using the eager foreach step", RuntimeWarning, stacklevel=3)
        return False


class BackSlash:
    """BackSlash rate regulariser over a model's parameters (see the module docstring).

    Parameters
    ----------
    model : the nn.Module (under DDP pass the wrapper or ``.module``; both work).
    lam : multiplier lambda >= 0 (authors: 2e3).
    eps : offset in (|w| + eps)**beta, > 0 (authors: 1; an older variant 1e-5).
    every : re-estimate beta every this many steps (1 = every batch, as the authors).
    select : parameter selection (see :func:`select_params`); default Linear/Conv/Embedding weights.
    beta : a fixed shape instead of re-estimating it (``variant="l1"`` subtracts (lam/n) sign(w)).
    beta_method : ``grid`` (authors, 0.01 steps) or ``root``.
    sharded, process_group : all-reduce statistics for sharded parameters.
    """

    def __init__(self, model: torch.nn.Module, lam: float = 2e3, eps: float = 1.0, every: int = 1, select=None,
                 beta: float | None = None, beta_method: str = "grid", bounds=(0.1, 3.0), variant: str = "gg",
                 sharded: bool = False, process_group=None, *, nu: float | None = None, nu_method: str | None = None):
        if nu is not None or nu_method is not None:  # the GG shape's old names (one name, beta, since issue 9)
            import warnings

            warnings.warn("BackSlash(nu=, nu_method=) are deprecated; use beta=, beta_method=", DeprecationWarning,
                          stacklevel=2)
            beta = beta if nu is None else nu
            beta_method = beta_method if nu_method is None else nu_method
        for name, v in (("lam", lam), ("eps", eps)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise BackSlashError(f"{name} must be a finite number, got {v!r}")
        if lam < 0:
            raise BackSlashError(f"lam must be >= 0, got {lam}")
        if eps <= 0:
            raise BackSlashError(f"eps must be > 0 (the gradient of (|w|+eps)^beta is infinite at 0 otherwise), got {eps}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise BackSlashError(f"every must be a positive integer, got {every!r}")
        if variant not in ("gg", "l1"):
            raise BackSlashError(f"variant {variant!r} is not valid; valid: gg, l1")
        if beta_method not in ("grid", "root"):
            raise BackSlashError(f"beta_method {beta_method!r} is not valid; valid: grid, root")
        if beta is not None and not (0 < float(beta) <= 20):
            raise BackSlashError(f"beta must be in (0, 20], got {beta!r}")
        inner = getattr(model, "module", model)
        self.params = [p for _, p in select_params(inner, select)]
        self.names = [n for n, _ in select_params(inner, select)]
        if not self.params:
            raise BackSlashError("no parameters selected")
        self.lam, self.eps, self.every = float(lam), float(eps), every
        self.fixed_beta = None if beta is None else float(beta)
        self.beta_method, self.bounds, self.variant = beta_method, tuple(bounds), variant
        self.sharded, self.group = sharded, process_group
        self.steps = 0
        self.beta = self.fixed_beta if self.fixed_beta is not None else 2.0
        self.n = None
        self._s2, self._warned = 0.0, False
        self.history: list[float] = []
        self._stats()  # n (and beta) from the start
        self._rms0 = math.sqrt(self._s2 / self.n) if self.n else 0.0

    # -- statistics ----------------------------------------------------------
    def _allreduce(self, t: torch.Tensor) -> torch.Tensor:
        if self.sharded:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(t, op=dist.ReduceOp.SUM, group=self.group)
        return t

    @torch.no_grad()
    def _stats(self) -> tuple[float, float, float]:
        dev = self.params[0].device
        n = float(sum(p.numel() for p in self.params))
        try:  # one fused launch per statistic on CUDA; float64 accumulation of the per-tensor sums
            s1 = torch.stack(torch._foreach_norm(self.params, 1)).double().sum()
            s2 = torch.stack(torch._foreach_norm(self.params, 2)).double().square().sum()
        except (AttributeError, RuntimeError):  # pragma: no cover - older torch
            s1 = sum(p.detach().abs().sum(dtype=torch.float64) for p in self.params)
            s2 = sum(p.detach().double().square().sum() for p in self.params)
        s = torch.stack([torch.tensor(n, dtype=torch.float64, device=dev), s2.to(dev), s1.to(dev)])
        s = self._allreduce(s)
        n, s2, s1 = (float(v) for v in s.cpu())
        self.n, self._s2 = n, s2
        return n, s2, s1

    @property
    def nu(self) -> float:
        """Deprecated name of :attr:`beta`."""
        return self.beta

    def estimate_nu(self) -> float:
        """Deprecated name of :meth:`estimate_beta`."""
        return self.estimate_beta()

    def estimate_beta(self) -> float:
        """Re-estimate beta by moment matching over the selected parameters (all ranks if sharded)."""
        n, s2, s1 = self._stats()
        if self.fixed_beta is None:
            self.beta = estimate_shape(n, s2, s1, self.beta_method, self.bounds)
        self.history.append(self.beta)
        return self.beta

    def _maybe_update(self):
        if self.steps % self.every == 0:
            self.estimate_beta()
        self.steps += 1

    def _check_step(self) -> None:
        """Warn (once) when one per-batch step is larger than the weights were (their RMS when BackSlash
        was attached): lam*beta/n with
        the authors' lam = 2e3 is tiny for their billion-parameter models and overwhelming for a small
        one, which it drives to huge weights within a few batches."""
        if self._warned or self.lam == 0 or not self._rms0 > 0:
            return
        rms = self._rms0  # the weights' scale when BackSlash was attached
        size = self.lam / self.n if self.variant == "l1" else \
            self.lam * self.beta / self.n * self.eps ** (self.beta - 1.0)
        if size > rms:
            import sys
            import warnings

            self._warned = True
            level, f = 1, sys._getframe(0)  # point at the caller's line, past this file and torch's wrappers
            while f is not None and (f.f_code.co_filename == __file__ or "_contextlib" in f.f_code.co_filename):
                f, level = f.f_back, level + 1
            fit = rms * self.n / (self.beta if self.variant == "gg" else 1.0)
            warnings.warn(f"BackSlash: one step moves each weight by about {size:.3g}, more than the weights' initial RMS "
                          f"{rms:.3g} ({self.n:.0f} parameters, lam={self.lam:g}): training will diverge. The step "
                          f"is lam*beta/n, so scale lam with the parameter count (lam well below {fit:.3g} here; "
                          "the authors' lam=2e3 is for billions of parameters)", RuntimeWarning, stacklevel=level)

    # -- form (b): differentiable rate ------------------------------------------
    def rate(self) -> torch.Tensor:
        """R = (1/n) sum (|w| + eps)**beta (differentiable; summed over ranks if sharded)."""
        parts = [(p.abs() + self.eps).pow(self.beta).sum() if self.variant == "gg" else p.abs().sum()
                 for p in self.params]
        r = torch.stack(parts).sum()
        if self.sharded:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                import torch.distributed.nn.functional as dnn

                r = dnn.all_reduce(r, op=dist.ReduceOp.SUM, group=self.group)
        return r / self.n

    def loss(self, distortion: torch.Tensor) -> torch.Tensor:
        """J = D + lam * R, with beta re-estimated every ``every`` calls."""
        self._maybe_update()
        return distortion + self.lam * self.rate()

    # -- form (a): the authors' per-batch step ---------------------------------------
    @torch.no_grad()
    def step(self) -> float:
        """Apply w <- w - (lam beta / n) sign(w) (|w| + eps)**(beta - 1) to every selected parameter.

        Call after ``optimizer.step()``.  Returns the beta used.  Warns (RuntimeWarning, once) when the
        step is larger than the weights' RMS: scale ``lam`` with the parameter count.
        """
        self._maybe_update()
        self._check_step()
        if self.lam == 0:
            return self.beta
        if self.variant == "l1":
            c = self.lam / self.n
            for p in self.params:
                p.sub_(torch.sign(p) * c)
            return self.beta
        c = self.lam * self.beta / self.n
        e = self.beta - 1.0
        from .quant import _use_compile

        if _use_compile(self.params[0]) and _compiled_update(self.params, c, e, self.eps):
            return self.beta
        try:  # foreach: a handful of fused launches instead of 5 ops per tensor
            g = torch._foreach_abs(self.params)
            torch._foreach_add_(g, self.eps)
            torch._foreach_pow_(g, e)
            torch._foreach_mul_(g, torch._foreach_sign(self.params))
            torch._foreach_add_(self.params, g, alpha=-c)
        except (AttributeError, RuntimeError):  # pragma: no cover - older torch
            for p in self.params:
                p.sub_((p.abs() + self.eps).pow_(e).mul_(torch.sign(p)), alpha=c)
        return self.beta

    def state_dict(self) -> dict:
        return {"steps": self.steps, "beta": self.beta, "history": list(self.history)}

    def load_state_dict(self, d: dict) -> None:
        self.steps, self.history = int(d["steps"]), list(d["history"])
        self.beta = float(d["beta"] if "beta" in d else d["nu"])  # "nu": state saved before the rename
