"""Generalized Gaussian (GG) statistics: fitting, goodness of fit and GG initialization.

Density with shape beta and scale alpha (loc mu)::

    p(x) = beta / (2 alpha Gamma(1/beta)) * exp(-(|x - mu| / alpha)**beta)

variance ``alpha**2 Gamma(3/beta) / Gamma(1/beta)``; beta = 2 is Gaussian, 1 Laplace.
Computations run in float64 torch; scalar root finding uses scipy.
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "GGFit",
    "GGError",
    "SHAPE_RANGE",
    "rho",
    "shape_from_rho",
    "fit_gg",
    "gg_loglik",
    "goodness_of_fit",
    "gg_variance",
    "gg_scale_for_variance",
    "sample_gg",
    "gg_init_",
]

#: shapes accepted by gg_init_ / sample_gg and the bracket of the fits
SHAPE_RANGE = (0.05, 20.0)


class GGError(RF8SimError, ValueError):
    """Bad input to a GG routine (shape out of range, empty or non-finite data ...)."""


@dataclass(frozen=True)
class GGFit:
    """A fitted GG: ``beta`` (shape), ``alpha`` (scale), ``loc``; iterable as (beta, alpha, loc)."""

    beta: float
    alpha: float
    loc: float

    def __iter__(self):
        return iter((self.beta, self.alpha, self.loc))

    @property
    def std(self) -> float:
        return math.sqrt(gg_variance(self.beta, self.alpha))


def _check_shape(beta) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise GGError(f"GG shape must be a number, got {beta!r}") from None
    if not (SHAPE_RANGE[0] <= b <= SHAPE_RANGE[1]):
        raise GGError(f"GG shape {beta!r} is out of range; valid: {SHAPE_RANGE[0]} <= shape <= {SHAPE_RANGE[1]}")
    return b


def rho(beta):
    """Gamma(1/b) Gamma(3/b) / Gamma(2/b)**2 = E[x^2] / E[|x|]^2 of a zero-mean GG (decreasing in b)."""
    from scipy.special import gammaln

    b = np.asarray(beta, np.float64)
    return np.exp(gammaln(1 / b) + gammaln(3 / b) - 2 * gammaln(2 / b))


def shape_from_rho(r: float, bounds=SHAPE_RANGE) -> float:
    """Solve rho(beta) = r by Brent's method on log(beta); clipped to ``bounds``."""
    from scipy.optimize import brentq

    lo, hi = bounds
    if r >= rho(lo):
        return float(lo)
    if r <= rho(hi):
        return float(hi)
    return float(math.exp(brentq(lambda lb: float(rho(math.exp(lb))) - r, math.log(lo), math.log(hi),
                                 xtol=1e-13, rtol=1e-13)))


def gg_variance(beta: float, alpha: float) -> float:
    from scipy.special import gammaln

    return alpha * alpha * math.exp(gammaln(3 / beta) - gammaln(1 / beta))


def gg_scale_for_variance(beta: float, var: float) -> float:
    """alpha with variance ``var``: sqrt(var Gamma(1/b) / Gamma(3/b))."""
    from scipy.special import gammaln

    return math.sqrt(var * math.exp(gammaln(1 / beta) - gammaln(3 / beta)))


def _data(t, max_samples: int | None, seed: int) -> torch.Tensor:
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(t)
    if isinstance(t, (list, tuple)):
        t = torch.cat([torch.as_tensor(v).detach().reshape(-1).double().cpu() for v in t]) if t else torch.empty(0)
    if not isinstance(t, torch.Tensor):
        raise GGError(f"expected a tensor or array, got {type(t).__name__}")
    if not (t.is_floating_point()):
        raise GGError(f"expected floating-point data, got {t.dtype}")
    if max_samples is not None and (isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer))
                                    or max_samples < 2):
        raise GGError(f"max_samples must be None (use every value) or an integer >= 2, got {max_samples!r}")
    x = t.detach().reshape(-1).to(torch.float64)
    if x.numel() < 2:
        raise GGError(f"need at least 2 values to fit a GG, got {x.numel()}")
    if not bool(torch.isfinite(x).all()):
        raise GGError(f"data contain {int((~torch.isfinite(x)).sum())} NaN/Inf value(s)")
    if max_samples is not None and x.numel() > max_samples:
        g = torch.Generator(device=x.device).manual_seed(seed)
        x = x[torch.randperm(x.numel(), generator=g, device=x.device)[:max_samples]]
    return x


def gg_loglik(x, beta: float, alpha: float, loc: float = 0.0) -> float:
    """Mean log-likelihood per value of the GG (float64)."""
    x = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    x = x.detach().reshape(-1).to(torch.float64)
    z = ((x - loc).abs() / alpha).pow(beta)
    return float(math.log(beta) - math.log(2 * alpha) - math.lgamma(1 / beta) - z.mean())


def fit_gg(t, method: str = "moments", loc: str | float = "auto", max_samples: int | None = 2_000_000,
           seed: int = 0, bounds=SHAPE_RANGE) -> GGFit:
    """Fit a generalized Gaussian to the values of ``t`` (tensor, array or list of tensors).

    ``method="moments"``: loc = mean (``loc="auto"``), beta solves
    rho(beta) = E[x^2]/E[|x|]^2 by Brent's method (the authors look it up on a 0.01
    grid), alpha = sqrt(E[x^2] Gamma(1/b)/Gamma(3/b)).

    ``method="mle"``: maximum likelihood over (beta, alpha, loc).  For fixed beta
    and loc, alpha has the closed form (beta/n sum |x-loc|^beta)^(1/beta); the
    profile likelihood is maximised over log(beta) by a bounded Brent search and
    over loc (``loc="auto"``) by a bounded search between the quartiles, with a
    few alternating rounds.  A float ``loc`` fixes it (e.g. ``loc=0.0``).

    More than ``max_samples`` values are subsampled (seeded) for speed.
    Returns a :class:`GGFit` ``(beta, alpha, loc)``.
    """
    if method not in ("moments", "mle"):
        raise GGError(f"method {method!r} is not valid; valid: moments, mle")
    fixed = None
    if not (isinstance(loc, str) and loc == "auto"):
        try:
            fixed = None if isinstance(loc, (str, bool)) else float(loc)
        except (TypeError, ValueError):
            fixed = None
        if fixed is None or not math.isfinite(fixed):
            raise GGError(f"loc must be 'auto' (fitted) or a finite number, got {loc!r}")
    x = _data(t, max_samples, seed)
    if method == "moments":
        mu = float(x.mean()) if fixed is None else fixed
        c = x - mu
        m2 = float((c * c).mean())
        m1 = float(c.abs().mean())
        if m1 == 0:
            raise GGError("all values are equal: the GG scale is zero")
        beta = shape_from_rho(m2 / (m1 * m1), bounds)
        return GGFit(float(beta), float(gg_scale_for_variance(beta, m2)), float(mu))
    return _fit_mle(x, fixed, bounds)


def _profile_nll(x: np.ndarray, beta: float, mu: float) -> tuple[float, float]:
    """(mean negative log-likelihood at the optimal alpha, that alpha) for fixed beta, loc."""
    s = float(np.mean(np.abs(x - mu) ** beta))  # numpy: many small evaluations, no thread start-up
    if s <= 0:
        return math.inf, 0.0
    alpha = (beta * s) ** (1 / beta)
    nll = -(math.log(beta) - math.log(2 * alpha) - math.lgamma(1 / beta)) + 1 / beta
    return nll, alpha


def _fit_mle(x: torch.Tensor, fixed, bounds) -> GGFit:
    from scipy.optimize import minimize_scalar

    mu = float(x.median()) if fixed is None else fixed
    q1, q3 = (float(v) for v in torch.quantile(x[: 1 << 24], torch.tensor([0.25, 0.75], dtype=x.dtype)))
    x = x.cpu().numpy()
    lo_b, hi_b = math.log(bounds[0]), math.log(bounds[1])
    prev = math.inf
    for _ in range(2):  # one alternation gets close; the joint polish below finishes
        r = minimize_scalar(lambda lb: _profile_nll(x, math.exp(lb), mu)[0], bounds=(lo_b, hi_b),
                            method="bounded", options={"xatol": 1e-6})
        beta = math.exp(r.x)
        if fixed is None and q3 > q1:
            r2 = minimize_scalar(lambda m: _profile_nll(x, beta, m)[0], bounds=(q1, q3), method="bounded",
                                 options={"xatol": 1e-9 * max(1.0, q3 - q1)})
            mu = float(r2.x)
        nll = _profile_nll(x, beta, mu)[0]
        if prev - nll < 1e-12:
            break
        prev = nll
    if fixed is None and q3 > q1:
        # joint polish (the loc profile has cusps at data points for beta < 1)
        from scipy.optimize import minimize

        scale = q3 - q1
        f = lambda v: _profile_nll(x, math.exp(min(max(v[0], lo_b), hi_b)), mu + v[1] * scale)[0]  # noqa: E731
        r = minimize(f, [math.log(beta), 0.0], method="Nelder-Mead",
                     options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 300})
        if r.fun < _profile_nll(x, beta, mu)[0]:
            beta = math.exp(min(max(r.x[0], lo_b), hi_b))
            mu = mu + r.x[1] * scale
    _, alpha = _profile_nll(x, beta, mu)
    return GGFit(float(beta), float(alpha), float(mu))


def goodness_of_fit(t, fit: GGFit | None = None, max_samples: int | None = 200_000, seed: int = 0) -> dict:
    """Log-likelihood per value and KS statistic of a GG fit against Gaussian and Laplace fits.

    Returns ``{"gg": {...}, "gaussian": {...}, "laplace": {...}}`` with keys
    ``loglik`` (mean per value), ``ks`` (Kolmogorov-Smirnov statistic) and ``params``.
    The GG fit defaults to the MLE; Gaussian is (mean, std), Laplace (median, mean |x - median|)
    (their MLEs).
    """
    from scipy import stats

    x = _data(t, max_samples, seed)
    fit = fit or fit_gg(x, "mle", max_samples=None)
    xn = x.cpu().numpy()
    mu, sd = float(xn.mean()), float(xn.std())
    med = float(np.median(xn))
    b = float(np.abs(xn - med).mean())
    out = {}
    for name, dist, params in (("gg", stats.gennorm(fit.beta, loc=fit.loc, scale=fit.alpha), tuple(fit)),
                               ("gaussian", stats.norm(mu, sd), (mu, sd)),
                               ("laplace", stats.laplace(med, b), (med, b))):
        ll = float(np.mean(dist.logpdf(xn)))
        ks = float(stats.kstest(xn, dist.cdf).statistic)
        out[name] = {"loglik": ll, "ks": ks, "params": params}
    return out


# ---------------------------------------------------------------------------
# sampling and initialization


def _standard_gamma(shape_a: float, n: int, generator, device, dtype=torch.float64) -> torch.Tensor:
    """Gamma(a, 1) samples with Marsaglia-Tsang, vectorised, seeded by ``generator``."""
    boost = shape_a < 1
    a = shape_a + 1 if boost else shape_a
    d = a - 1 / 3
    c = 1 / math.sqrt(9 * d)
    out = torch.empty(n, dtype=dtype, device=device)
    todo = torch.arange(n, device=device)
    while todo.numel():
        m = todo.numel()
        z = torch.randn(m, dtype=dtype, device=device, generator=generator)
        u = torch.rand(m, dtype=dtype, device=device, generator=generator)
        v = (1 + c * z) ** 3
        ok = (v > 0) & (torch.log(u) < 0.5 * z * z + d - d * v + d * torch.log(v.clamp_min(1e-300)))
        out[todo[ok]] = (d * v)[ok]
        todo = todo[~ok]
    if boost:  # Gamma(a) = Gamma(a + 1) * U**(1/a)
        u = torch.rand(n, dtype=dtype, device=device, generator=generator)
        out = out * u.pow(1 / shape_a)
    return out


def sample_gg(shape, beta: float, alpha: float, generator: torch.Generator | None = None,
              device=None, dtype=torch.float32) -> torch.Tensor:
    """GG samples: |X| = alpha * G**(1/beta), G ~ Gamma(1/beta, 1), random sign (float64 inside)."""
    beta = _check_shape(beta)
    if not (alpha > 0 and math.isfinite(alpha)):
        raise GGError(f"GG scale must be positive and finite, got {alpha!r}")
    if generator is not None and device is None:
        device = generator.device
    n = math.prod(shape) if isinstance(shape, (tuple, list, torch.Size)) else int(shape)
    g = _standard_gamma(1 / beta, n, generator, device)
    sign = torch.randint(0, 2, (n,), device=device, generator=generator).to(torch.float64) * 2 - 1
    x = sign * alpha * g.pow(1 / beta)
    return x.to(dtype).reshape(shape)


def _fans(shape) -> tuple[int, int]:
    if len(shape) < 2:
        raise GGError(f"fan-in/fan-out need a tensor with >= 2 dimensions, got shape {tuple(shape)}")
    rf = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * rf, shape[0] * rf  # torch's convention (nn.Linear weight is (out, in))


def gg_init_(module, beta: float = 2.0, xi: float = 2.0, mode: str = "fan_in",
             generator: torch.Generator | None = None, *, shape: float | None = None):
    """Initialise in place with GG samples of variance xi / n (Kaiming/Xavier variance, GG shape).

    ``module``: an ``nn.Module`` (every parameter with >= 2 dims is drawn; 1-D
    parameters named ``weight`` (norm scales) are set to 1 and biases to 0, as
    in the authors' code) or a single tensor (>= 2 dims).
    ``beta``: the GG shape, in SHAPE_RANGE (``shape=`` is its deprecated old name).  ``xi``: 1 for
    sigmoid/none, 2 for ReLU,
    2/(1+k^2) for LeakyReLU(k).
    ``mode``: ``"fan_in"`` (default: the forward-variance convention of
    ``torch.nn.init.kaiming_*``; for nn.Linear, in_features) or ``"fan_out"``
    (the authors' ``param.shape[0]``: out_features for nn.Linear).
    alpha = sqrt(xi / n * Gamma(1/b) / Gamma(3/b)).  Returns ``module``.
    """
    if shape is not None:
        import warnings

        warnings.warn("gg_init_(shape=) is deprecated; the GG shape is called beta everywhere", DeprecationWarning,
                      stacklevel=2)
        beta = shape
    beta = _check_shape(beta)
    try:
        xi = float(xi)
    except (TypeError, ValueError):
        raise GGError(f"xi must be a positive number, got {xi!r}") from None
    if not (xi > 0 and math.isfinite(xi)):
        raise GGError(f"xi must be a positive number, got {xi!r}")
    if mode not in ("fan_in", "fan_out"):
        raise GGError(f"mode {mode!r} is not valid; valid: fan_in, fan_out")

    def fill(p: torch.Tensor):
        if not p.is_floating_point():
            raise GGError(f"gg_init_ fills floating-point tensors; got {p.dtype} (GG samples would be truncated)")
        fan_in, fan_out = _fans(p.shape)
        n = fan_in if mode == "fan_in" else fan_out
        alpha = gg_scale_for_variance(beta, xi / n)
        gen = generator
        if gen is not None and gen.device != p.device:
            v = sample_gg(tuple(p.shape), beta, alpha, gen, gen.device, torch.float64)
        else:
            v = sample_gg(tuple(p.shape), beta, alpha, gen, p.device, torch.float64)
        with torch.no_grad():
            p.copy_(v.to(device=p.device, dtype=p.dtype))

    if isinstance(module, torch.Tensor):
        fill(module)
        return module
    if not isinstance(module, torch.nn.Module):
        raise GGError(f"gg_init_ takes an nn.Module or a tensor, got {type(module).__name__}")
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                fill(p)
            elif name.endswith("bias"):
                p.zero_()
            elif name.endswith("weight"):
                p.fill_(1.0)
    return module
