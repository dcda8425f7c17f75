"""Bit-exact transformer inference: every ``nn.Linear`` through ``rf8sim.golden.gemm``.

:func:`exactify` returns a copy of a model (all-MiniLM-L6-v2, TinyLM, any torch module whose
matrix products are ``nn.Linear``) in which each selected Linear layer runs as the MAC array
would (the same steps as the MLP path of :mod:`rf8sim.study.inference`):

1. weights quantized once (``rf8sim.golden.quantize``: format, rounding, granularity, block);
2. the layer input quantized per token (one power-of-two scale per row of the (tokens,
   features) matrix, or per block of ``block`` features for block-scaled weights), nearest;
3. ``rf8sim.golden.gemm`` on the codes with the configured accumulator;
4. exact conversion with the output scale, float32 bias add.

Attention scores/softmax, LayerNorm, GELU, embeddings and pooling stay float32 torch.  A layer
assigned ``None`` stays float32 (used by the per-layer sensitivity scan).  :func:`torch_check`
runs the same layers through the torch emulation (``rf8sim.training``) and compares the bits.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rf8sim.errors import RF8SimError

from .. import formats as F

__all__ = ["DatapathConfig", "DatapathError", "ExactLinear", "linear_layers", "exactify", "check_assignment",
           "torch_check", "flag_totals"]


class DatapathError(RF8SimError, ValueError):
    """A model, layer or format/accumulator choice the bit-exact datapath cannot run."""


@dataclass(frozen=True)
class DatapathConfig:
    """One MAC configuration: weight/activation formats, weight rounding and scale granularity, accumulator."""

    w_format: str = "rf8"
    a_format: str = ""          # "" = same as w_format
    rounding: str = "nearest"
    granularity: str = "channel"
    block: int = 32
    acc: str = "exact"          # exact | exact:TERMS | FRAC:WIDTH (AccSpec syntax); exact = for the longest K

    @property
    def act_format(self) -> str:
        return self.a_format or self.w_format

    @property
    def label(self) -> str:
        a = "" if self.act_format == self.w_format else f"/a:{self.act_format}"
        g = f"block{self.block}" if self.granularity == "block" else self.granularity
        r = "" if self.rounding == "nearest" else f" {self.rounding}"
        return f"{self.w_format}{a}{r} {g} acc {self.acc}"

    def spec(self, max_terms: int):
        """The AccSpec (exact = exact for ``max_terms`` products of these formats)."""
        from ..golden import AccSpec

        af, wf = F.get(self.act_format), F.get(self.w_format)
        t = self.acc.strip().lower()
        return AccSpec.exact(af, wf, max_terms) if t == "exact" else AccSpec.parse(t, af, wf)

    def validate(self, max_terms: int = 1024):
        """Raise DatapathError unless this configuration exists (formats, rounding, granularity, acc)."""
        from ..golden import AccSpecError
        from . import variants

        variants.ensure_registered()
        try:
            wf, af = F.get(self.w_format), F.get(self.act_format)
        except (KeyError, ValueError, F.FormatError) as e:
            raise DatapathError(f"{self.label}: {e}") from None
        if len(wf.values) != 256 or len(af.values) != 256:
            raise DatapathError(f"{self.label}: the transformer study runs 8-bit codes only; {wf.name} x {af.name} is not "
                                f"a pair the transformer study runs yet (bf16/fp16 activations with fp32/aligned "
                                f"accumulators are in rf8sim.golden.gemm but not wired into rf8sim.study.transformer)")
        if self.rounding not in wf.roundings:
            raise DatapathError(f"{self.label}: {wf.name} has no rounding {self.rounding!r}; "
                                f"valid: {list(wf.roundings)}")
        if self.granularity not in ("tensor", "channel", "block"):
            raise DatapathError(f"{self.label}: granularity {self.granularity!r}; valid: tensor, channel, block")
        if isinstance(self.block, bool) or not isinstance(self.block, int) or self.block < 1:
            raise DatapathError(f"{self.label}: block must be a positive integer")
        try:
            return self.spec(max_terms)
        except (AccSpecError, ValueError) as e:
            raise DatapathError(f"{self.label}: accumulator {self.acc!r} does not exist for "
                                f"{af.name} x {wf.name}: {e}") from None


def _key(c: DatapathConfig) -> tuple:
    return (c.w_format, c.act_format, c.rounding, c.granularity, c.block, c.acc)


class ExactLinear(nn.Module):
    """A Linear layer evaluated bit-exactly through the golden GEMM (see the module docstring)."""

    def __init__(self, name: str, lin: nn.Linear, cfg: DatapathConfig, acc_spec):
        super().__init__()
        from .. import golden

        self.name, self.cfg, self.acc = name, cfg, acc_spec
        self.in_features, self.out_features = lin.in_features, lin.out_features
        w = lin.weight.detach().cpu().numpy().astype(np.float32)
        self.w_float = w  # kept for the torch emulation check
        codes, k = golden.quantize(w, cfg.w_format, rounding=cfg.rounding, granularity=cfg.granularity,
                                   block=cfg.block)
        self.w_codes, self.w_scale = np.asarray(codes), np.asarray(k)
        self.bias = None if lin.bias is None else lin.bias.detach().cpu().numpy().astype(np.float32)
        self.flags = {"overflow": 0, "invalid": 0, "outputs": 0}
        self.capture = None  # set to a list to record (input rows) for torch_check

    @property
    def act_granularity(self) -> str:
        return "block" if self.cfg.granularity == "block" else "channel"

    def golden_rows(self, x2: np.ndarray):
        """(float32 output, GemmResult, activation codes, activation scales, output scales) of a 2-D input."""
        from .. import golden
        from .inference import scaled_to_float32, split_scales

        c = self.cfg
        af, wf = F.get(c.act_format), F.get(c.w_format)
        a_codes, a_k = golden.quantize(x2, af, rounding="nearest", granularity=self.act_granularity, block=c.block)
        a_rel, a_out = split_scales(a_codes, a_k, af, self.act_granularity, c.block)
        w_rel, w_out = split_scales(self.w_codes, self.w_scale, wf, c.granularity, c.block)
        res = golden.gemm(a_codes, self.w_codes, af, wf, self.acc, a_scale_exp=a_rel, w_scale_exp=w_rel,
                          a_granularity=self.act_granularity, w_granularity=c.granularity, block=c.block)
        y = scaled_to_float32(res.acc, self.acc.frac_bits, a_out[:, None] + w_out[None, :])
        if self.bias is not None:
            y = y + self.bias
        return y, res, (a_codes, a_k, a_rel, a_out), (w_rel, w_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shp = x.shape
        x2 = x.detach().reshape(-1, shp[-1]).cpu().numpy().astype(np.float32)
        if not np.isfinite(x2).all():
            raise DatapathError(f"layer {self.name}: non-finite input activations")
        if self.capture is not None:
            self.capture.append(x2[: max(1, min(len(x2), 8))].copy())
        y, res, _, _ = self.golden_rows(x2)
        self.flags["overflow"] += int(np.count_nonzero(res.overflow))
        self.flags["invalid"] += int(np.count_nonzero(res.invalid))
        self.flags["outputs"] += int(res.overflow.size)
        return torch.from_numpy(y).reshape(*shp[:-1], self.out_features)


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(qualified name, module)`` of every module with a weight matrix, in registration order.

    Linear layers are what the datapath runs; any other module with a 2-D+ weight that takes part
    in a matrix product (convolutions, custom matmuls) is returned too so that
    :func:`check_assignment` can name it.  Embeddings and LayerNorms are lookups/elementwise.
    """
    out = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            out.append((name, m))
        elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Bilinear, nn.MultiheadAttention)):
            out.append((name, m))
    return out


def check_assignment(model: nn.Module, assignment, max_terms: int | None = None) -> dict:
    """Validate an assignment (one :class:`DatapathConfig` for every Linear, or ``{name: cfg | None}``)
    before any long work; returns ``{name: (cfg, AccSpec)}`` for the layers to run exactly.

    Raises :class:`DatapathError` naming the layer for a module the datapath cannot run (a
    convolution, attention with its own packed projections, a Linear wider than the golden
    accumulator allows), an unknown layer name, or a format/rounding/accumulator that does not exist.
    """
    from ..golden import AccSpecError
    from ..golden.arith import check_spec

    layers = linear_layers(model)
    if not layers:
        raise DatapathError(f"{type(model).__name__} has no nn.Linear layer for the datapath to run")
    names = {n for n, _ in layers}
    if isinstance(assignment, DatapathConfig):
        assignment = {n: assignment for n, _ in layers}
    unknown = sorted(set(assignment) - names)
    if unknown:
        raise DatapathError(f"unknown layer name(s) {unknown[:5]}; the model's layers: {sorted(names)[:8]} ...")
    longest = max(m.in_features for _, m in layers if isinstance(m, nn.Linear))
    max_terms = longest if max_terms is None else int(max_terms)
    plan = {}
    for name, m in layers:
        cfg = assignment.get(name)
        if cfg is None:
            continue
        if not isinstance(m, nn.Linear):
            raise DatapathError(f"layer {name!r} is a {type(m).__name__}: the datapath runs nn.Linear layers only "
                                f"(matrix products as (tokens, in) x (in, out)); keep it float or rewrite it as Linear")
        if not isinstance(cfg, DatapathConfig):
            raise DatapathError(f"layer {name!r}: assignment must be a DatapathConfig or None, got {cfg!r}")
        spec = cfg.validate(max_terms)
        if cfg.acc.strip().lower() == "exact" and m.in_features > max_terms:
            raise DatapathError(f"layer {name!r} sums {m.in_features} products but the 'exact' accumulator is "
                                f"exact for {max_terms} ([study] max_terms); raise max_terms to >= {longest}")
        try:
            check_spec(spec, cfg.act_format, cfg.w_format, 1, 0)  # relative shifts are <= 0
        except AccSpecError as e:
            raise DatapathError(f"layer {name!r} ({m.in_features} -> {m.out_features}) cannot run with "
                                f"{cfg.label}: {e}") from None
        plan[name] = (cfg, spec)
    return plan


def exactify(model: nn.Module, assignment, max_terms: int | None = None) -> nn.Module:
    """A deep copy of ``model`` whose assigned Linear layers are :class:`ExactLinear` (validated first)."""
    plan = check_assignment(model, assignment, max_terms)
    m2 = copy.deepcopy(model)
    tok = getattr(model, "tokenizer", None)
    if tok is not None:
        m2.tokenizer = tok
    for name, (cfg, spec) in plan.items():
        parent_name, _, attr = name.rpartition(".")
        parent = m2.get_submodule(parent_name) if parent_name else m2
        setattr(parent, attr, ExactLinear(name, getattr(parent, attr), cfg, spec))
    return m2.eval()


def flag_totals(model: nn.Module) -> dict:
    tot = {"overflow": 0, "invalid": 0, "outputs": 0}
    for m in model.modules():
        if isinstance(m, ExactLinear):
            for k in tot:
                tot[k] += m.flags[k]
    return tot


def torch_check(model: nn.Module, run_fn) -> list[dict]:
    """Per exact layer: run ``run_fn()`` (a forward pass) capturing up to 24 input rows per layer,
    then compare the golden result with the torch emulation (``rf8sim.training``: quantize, gemm,
    to_float32) bit for bit: activation codes and scales, accumulator and flags, float32 output.
    Returns one row per layer with the counts compared and the mismatches."""
    from .. import training as T
    from .inference import split_scales

    layers = [m for m in model.modules() if isinstance(m, ExactLinear)]
    for m in layers:
        m.capture = []
    try:
        with torch.no_grad():
            run_fn()
    finally:
        caps = {m.name: m.capture for m in layers}
        for m in layers:
            m.capture = None
    rows = []
    for m in layers:
        x2 = np.concatenate(caps[m.name])[:8]
        y, res, (a_codes, a_k, _, a_out), (w_rel, w_out) = m.golden_rows(x2)
        c = m.cfg
        tc, tk = T.quantize(torch.from_numpy(x2), c.act_format, rounding="nearest", granularity=m.act_granularity,
                            block=c.block)
        a_rel_t, a_out_t = split_scales(tc.numpy(), tk.numpy(), c.act_format, m.act_granularity, c.block)
        tw, tkw = T.quantize(torch.from_numpy(m.w_float), c.w_format, rounding=c.rounding,
                             granularity=c.granularity, block=c.block)
        r = T.gemm(tc, tw, c.act_format, c.w_format, m.acc, a_scale_exp=torch.from_numpy(np.asarray(a_rel_t)),
                   w_scale_exp=torch.from_numpy(np.asarray(w_rel)), a_granularity=m.act_granularity,
                   w_granularity=c.granularity, block=c.block)
        f = T.to_float32(r.acc, m.acc.frac_bits).numpy().astype(np.float64) * np.exp2(
            (a_out_t[:, None] + w_out[None, :]).astype(np.float64))
        yt = f.astype(np.float32) + (m.bias if m.bias is not None else np.float32(0))
        mism = {
            "act_codes": int(np.count_nonzero(tc.numpy() != a_codes)),
            "act_scales": int(np.count_nonzero(tk.numpy() != a_k)),
            "w_codes": int(np.count_nonzero(tw.numpy() != m.w_codes)),
            "acc": int(np.count_nonzero(r.acc.numpy() != np.asarray(res.acc, np.int64))),
            "flags": int(np.count_nonzero(r.overflow.numpy() != res.overflow)
                         + np.count_nonzero(r.invalid.numpy() != res.invalid)),
            "out_bits": int(np.count_nonzero(yt.view(np.uint32) != y.view(np.uint32))),
        }
        rows.append({"layer": m.name, "config": c.label, "rows": int(len(x2)), "outputs": int(y.size),
                     "mismatches": int(sum(mism.values())), **{f"mm_{k}": v for k, v in mism.items()}})
    return rows
