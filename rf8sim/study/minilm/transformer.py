"""Bit-exact transformer inference: every ``nn.Linear`` through ``rf8sim.golden.gemm``.

:func:`exactify` returns a copy of a model (all-MiniLM-L6-v2, TinyLM, any torch module whose
matrix products are ``nn.Linear``) in which each selected Linear layer runs as the MAC array
would (the same steps as the MLP path of :mod:`rf8sim.study.mnist1d.inference`):

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

from ... import formats as F

__all__ = ["DatapathConfig", "DatapathError", "ExactLinear", "linear_layers", "exactify", "check_assignment", "parse_configs",
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
    acc: str = "exact"          # exact | exact:TERMS | FRAC:WIDTH | fp32 | aligned:K:M; exact = for the longest K

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
        from ...golden import AccSpec

        af, wf = F.get(self.act_format), F.get(self.w_format)
        t = self.acc.strip().lower()
        if t == "fp32" or t.startswith("aligned"):
            return AccSpec.parse(t)
        return AccSpec.exact(af, wf, max_terms) if t == "exact" else AccSpec.parse(t, af, wf)

    @property
    def float_acc(self) -> bool:
        """True for the W8A16 contract's float32 accumulators (``fp32``, ``aligned:K:M``)."""
        t = self.acc.strip().lower()
        return t == "fp32" or t.startswith("aligned")

    def validate(self, max_terms: int = 1024):
        """Raise DatapathError unless this configuration exists (formats, rounding, granularity, acc)."""
        from ...golden import AccSpecError
        from ..mnist1d import variants

        variants.ensure_registered()
        try:
            wf, af = F.get(self.w_format), F.get(self.act_format)
        except (KeyError, ValueError, F.FormatError) as e:
            raise DatapathError(f"{self.label}: {e}") from None
        wide = [f.name for f in (wf, af) if getattr(f, "code_bits", 8) > 8]
        if wide and not self.float_acc:
            raise DatapathError(f"{self.label}: {' and '.join(wide)} has 16-bit codes; the fixed-point accumulator "
                                f"{self.acc!r} takes 8-bit formats only: use acc 'fp32' or 'aligned:K:M' "
                                f"(the W8A16 contract)")
        if self.acc.strip().lower().startswith("aligned") and getattr(af, "code_bits", 8) == 8 and not af.exp_bits:
            raise DatapathError(f"{self.label}: aligned:K:M aligns activations by their exponent field; "
                                f"{af.name} has none (use acc 'fp32')")
        if getattr(wf, "code_bits", 8) > 8 and self.rounding != "nearest":
            raise DatapathError(f"{self.label}: {wf.name} weights are encoded round-to-nearest-even only")
        if getattr(wf, "code_bits", 8) == 8 and self.rounding not in wf.roundings:
            raise DatapathError(f"{self.label}: {wf.name} has no rounding {self.rounding!r}; "
                                f"valid: {list(wf.roundings)}")
        if self.granularity not in ("tensor", "channel", "block"):
            raise DatapathError(f"{self.label}: granularity {self.granularity!r}; valid: tensor, channel, block")
        if isinstance(self.block, bool) or not isinstance(self.block, int) or self.block < 1:
            raise DatapathError(f"{self.label}: block must be a positive integer")
        try:
            spec = self.spec(max_terms)
        except (AccSpecError, ValueError) as e:
            raise DatapathError(f"{self.label}: accumulator {self.acc!r} does not exist for "
                                f"{af.name} x {wf.name}: {e}") from None
        if spec.kind == "aligned" and self.granularity == "block" and self.block % spec.block:
            raise DatapathError(f"{self.label}: block scales of {self.block} values must be a multiple of the "
                                f"alignment block K={spec.block} (one scale per alignment block)")
        return spec


def _key(c: DatapathConfig) -> tuple:
    return (c.w_format, c.act_format, c.rounding, c.granularity, c.block, c.acc)


class ExactLinear(nn.Module):
    """A Linear layer evaluated bit-exactly through the golden GEMM (see the module docstring)."""

    def __init__(self, name: str, lin: nn.Linear, cfg: DatapathConfig, acc_spec):
        super().__init__()
        from ... import golden

        self.name, self.cfg, self.acc = name, cfg, acc_spec
        self.in_features, self.out_features = lin.in_features, lin.out_features
        w = lin.weight.detach().cpu().numpy().astype(np.float32)
        self.w_float = w  # kept for the torch emulation check
        wf = F.get(cfg.w_format)
        if getattr(wf, "code_bits", 8) > 8:  # bf16/fp16 weights: the dequantized-weight baseline, no scale
            codes = golden.encode(w, wf)
            if (wf.special[codes] != F.SPECIAL_FINITE).any():
                raise DatapathError(f"layer {name}: a weight does not fit {wf.name} (encodes to Inf/NaN)")
            k = np.zeros((), np.int64)
        else:
            codes, k = golden.quantize(w, wf, rounding=cfg.rounding, granularity=cfg.granularity, block=cfg.block)
        self.w_codes, self.w_scale = np.asarray(codes), np.asarray(k)
        self.bias = None if lin.bias is None else lin.bias.detach().cpu().numpy().astype(np.float32)
        self.flags = {"overflow": 0, "invalid": 0, "outputs": 0}
        self.capture = None  # set to a list to record (input rows) for torch_check

    @property
    def act_granularity(self) -> str:
        return "block" if self.cfg.granularity == "block" else "channel"

    @property
    def w_granularity(self) -> str:
        return "tensor" if getattr(F.get(self.cfg.w_format), "code_bits", 8) > 8 else self.cfg.granularity

    def act_codes(self, x2: np.ndarray):
        """Activation codes and scale exponents of a 2-D input (16-bit formats: RNE encode, no scale)."""
        from ... import golden

        c = self.cfg
        af = F.get(c.act_format)
        if getattr(af, "code_bits", 8) > 8:
            codes = golden.encode(x2, af)
            bad = af.special[codes] != F.SPECIAL_FINITE
            if bad.any():
                r, k = np.argwhere(bad)[0]
                raise DatapathError(f"layer {self.name}: activation {float(x2[r, k])!r} (row {r}, feature {k}) "
                                    f"overflows {af.name} (max {af.max}); use bf16 or an 8-bit format with scales")
            return codes, np.zeros((), np.int64)
        codes, k = golden.quantize(x2, af, rounding="nearest", granularity=self.act_granularity, block=c.block)
        return np.asarray(codes), np.asarray(k)

    def _a_gran(self) -> str:
        return "tensor" if getattr(F.get(self.cfg.act_format), "code_bits", 8) > 8 else self.act_granularity

    def golden_float(self, x2: np.ndarray):
        """W8A16 / float32-accumulator path: (float32 output, Fp32Result, activation codes, scales).

        Scales enter the products (the contract's ``k_a + k_w``); the result is the accumulator's
        float32 value, plus the float32 bias."""
        from ... import golden

        c = self.cfg
        a_codes, a_k = self.act_codes(x2)
        res = golden.gemm(a_codes, self.w_codes, c.act_format, c.w_format, self.acc, a_scale_exp=a_k,
                          w_scale_exp=self.w_scale, a_granularity=self._a_gran(), w_granularity=self.w_granularity,
                          block=c.block)
        y = res.as_float32()
        if self.bias is not None:
            y = y + self.bias
        return y, res, a_codes, a_k

    def golden_rows(self, x2: np.ndarray):
        """(float32 output, GemmResult, activation codes, activation scales, output scales) of a 2-D input."""
        from ... import golden
        from ..mnist1d.inference import scaled_to_float32, split_scales

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
        y, res = (self.golden_float(x2) if self.cfg.float_acc else self.golden_rows(x2))[:2]
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
    from ...golden import AccSpecError
    from ...golden.arith import check_spec

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
        if spec.kind == "aligned":
            if m.in_features % spec.block:
                raise DatapathError(f"layer {name!r} sums {m.in_features} products: {cfg.acc} needs K={spec.block} "
                                    f"to divide it")
            plan[name] = (cfg, spec)
            continue
        if spec.kind == "fp32":
            plan[name] = (cfg, spec)
            continue
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
    from ... import training as T
    from ..mnist1d.inference import split_scales

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
        if m.cfg.float_acc:
            rows.append(_check_float(m, np.concatenate(caps[m.name])))
            continue
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


def _fraction_fp32(m: ExactLinear, a_codes, a_k, rows: int, cols: int) -> np.ndarray:
    """Independent reference of the float32 accumulators on ``rows x cols`` outputs: every term and
    every block sum as an exact :class:`fractions.Fraction` from the format's value table, each
    accumulation step rounded to float32 from the definition (round half to even on the exact
    value; no numpy float arithmetic)."""
    from fractions import Fraction

    from ..mnist1d.inference import _fraction_to_f32

    c, spec = m.cfg, m.acc
    af, wf = F.get(c.act_format), F.get(c.w_format)
    K = m.in_features
    blk = c.block

    def scale(k, r, j, gran):
        k = np.asarray(k)
        if k.ndim == 0:
            return int(k)
        if gran == "channel":
            return int(k[r])
        return int(k[r, j // blk])

    def val(fmt, code):
        return Fraction(float(fmt.values[int(code)]))  # table values are exact binary fractions

    out = np.zeros((rows, cols), np.float32)
    for r in range(rows):
        for n in range(cols):
            terms = [val(af, a_codes[r, j]) * 2 ** Fraction(scale(a_k, r, j, m._a_gran()))
                     * val(wf, m.w_codes[n, j]) * 2 ** Fraction(scale(m.w_scale, n, j, m.w_granularity))
                     for j in range(K)]
            acc = Fraction(0)
            if spec.kind == "fp32":
                for t in terms:
                    acc = Fraction(float(_fraction_to_f32(acc + t)))
            else:  # aligned:K:M from the contract: E_max of the block's exponent fields, q, saturating RNE
                Kb, M = spec.block, spec.align_bits
                for b0 in range(0, K, Kb):
                    fields = []
                    for j in range(b0, b0 + Kb):
                        e = (int(a_codes[r, j]) >> af.man_bits) & ((1 << af.exp_bits) - 1)  # biased field
                        fields.append(max(e, 1))  # subnormals and zeros count as 1
                    q = (max(fields) - af.bias) - (M - 2)
                    S = Fraction(0)
                    for j in range(b0, b0 + Kb):
                        a = val(af, a_codes[r, j])
                        mag = abs(a) / Fraction(2) ** q
                        ai = min(round(mag), 2 ** (M - 1) - 1) * (1 if a >= 0 else -1)
                        S += ai * Fraction(2) ** q * 2 ** Fraction(scale(a_k, r, j, m._a_gran())) \
                            * val(wf, m.w_codes[n, j]) * 2 ** Fraction(scale(m.w_scale, n, j, m.w_granularity))
                    acc = Fraction(float(_fraction_to_f32(acc + S)))
            out[r, n] = np.float32(float(acc))
    return out


def _check_float(m: ExactLinear, x_rows: np.ndarray) -> dict:
    """Per-layer check of the W8A16 / float32-accumulator path.

    With ``rf8sim.training.w8a16`` (the torch emulation of the contract) present: its codes and
    ``gemm16`` on up to 8 captured rows, all outputs, bit for bit.  Without it: an independent
    exact-Fraction computation (:func:`_fraction_fp32`) of 1 row x 4 outputs (the reference is
    slow); the row says which reference ran."""
    c = m.cfg
    x2 = x_rows[:8]
    y, res, a_codes, a_k = m.golden_float(x2)
    acc_bits = np.asarray(res.acc, np.uint32)
    try:
        from ...training import w8a16 as T16
    except ImportError:
        T16 = None
    mism = {}
    if T16 is not None and getattr(F.get(c.act_format), "code_bits", 8) > 8:
        from ... import training as T

        tc = T.encode(torch.from_numpy(x2), c.act_format)
        if getattr(F.get(c.w_format), "code_bits", 8) > 8:
            tw, tkw = T.encode(torch.from_numpy(m.w_float), c.w_format), None
        else:
            tw, tkw = T.quantize(torch.from_numpy(m.w_float), c.w_format, rounding=c.rounding,
                                 granularity=c.granularity, block=c.block)
        r = T.gemm(tc, tw, c.act_format, c.w_format, m.acc, w_scale_exp=tkw, w_granularity=m.w_granularity,
                   block=c.block)
        tbits = r.bits.numpy().astype(np.uint32)
        mism = {"act_codes": int(np.count_nonzero(tc.numpy().astype(np.uint16) != a_codes)),
                "w_codes": int(np.count_nonzero(tw.numpy().astype(m.w_codes.dtype) != m.w_codes)),
                "acc": int(np.count_nonzero(tbits != acc_bits)),
                "flags": int(np.count_nonzero(r.overflow.numpy() != res.overflow)
                             + np.count_nonzero(r.invalid.numpy() != res.invalid))}
        ref, n_rows, n_out = "torch rf8sim.training.w8a16.gemm16", len(x2), int(y.size)
    else:
        rr, cc = 1, min(4, m.out_features)
        f = _fraction_fp32(m, a_codes, a_k, rr, cc)
        mism = {"acc": int(np.count_nonzero(f.view(np.uint32) != acc_bits[:rr, :cc]))}
        ref, n_rows, n_out = "exact Fraction reference (torch W8A16 emulation not available)", rr, rr * cc
    yt = res.as_float32() + (m.bias if m.bias is not None else np.float32(0))
    mism["out_bits"] = int(np.count_nonzero(yt.view(np.uint32) != y.view(np.uint32)))
    return {"layer": m.name, "config": c.label, "rows": int(n_rows), "outputs": int(n_out), "reference": ref,
            "mismatches": int(sum(mism.values())), **{f"mm_{k}": v for k, v in mism.items()}}


def parse_configs(text, granularity: str = "channel", block: int = 32, accs=("exact",)) -> list[DatapathConfig]:
    """Datapaths of one ``[transformer] configs`` entry ``W[:ROUNDING][/A][@ACC]``.

    ``rf8`` = rf8 weights and activations, one datapath per ``accs`` entry; ``rf8:paper`` picks the
    weight rounding; ``rf8/bf16`` = rf8 weights with bf16 activations (W8A16); ``@fp32`` /
    ``@aligned:32:16`` fixes the accumulator for this entry instead of ``accs``.  An entry whose
    activations or weights have 16-bit codes and no ``@ACC`` takes the float accumulators of
    ``accs`` (``fp32``, ``aligned:K:M``), or ``fp32`` if ``accs`` has none."""
    t = str(text).strip()
    t, at, acc = t.partition("@")
    wr, _, a = t.partition("/")
    w, _, r = wr.partition(":")
    if not w or (at and not acc.strip()) or ("/" in t and not a.strip()):
        raise DatapathError(f"config {text!r}: expected W[:ROUNDING][/A][@ACC], e.g. 'rf8', 'rf8:paper', "
                            f"'rf8/bf16@fp32'")
    if acc:
        acc_list = [acc.strip()]
    else:
        acc_list = [str(x) for x in accs]
        wide = False
        try:
            wide = any(getattr(F.get(f), "code_bits", 8) > 8 for f in (w.strip(), a.strip() or w.strip()))
        except (KeyError, ValueError, F.FormatError):
            pass
        if wide:
            fl = [x for x in acc_list if x.strip().lower() == "fp32" or x.strip().lower().startswith("aligned")]
            acc_list = fl or ["fp32"]
    return [DatapathConfig(w.strip(), a.strip(), r.strip() or "nearest", granularity, block, x) for x in acc_list]
