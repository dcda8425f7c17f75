"""Quantization-aware training in the torchao style: ``quantize_model_(model, config)`` then ``convert``.

``quantize_model_`` registers a :mod:`torch.nn.utils.parametrize` parametrization
on the ``weight`` of every Linear/Conv layer, so the forward pass sees
``fake_quant(weight)`` (bit-identical to quantize + dequantize) and the gradient
reaches the latent float weight straight through.  With ``act_fmt`` set, a
forward pre-hook fake-quantizes each layer's input as well.  ``convert`` turns
the trained model into packed codes and power-of-two scale exponents.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from .. import formats as F
from .quant import BLOCK_GRANULARITIES, QuantError, canonical_granularity, dequantize, fake_quant, quantize

__all__ = ["QATConfig", "QuantizedTensor", "FakeQuantize", "quantize_model_", "convert", "quantized_weights",
           "QAT_KINDS"]

QAT_KINDS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class QATConfig:
    """What to fake-quantize.  Weights: per output channel by default; activations off by default.

    ``act_fmt="bf16"`` (or ``"fp16"``) is weight-only quantization as the paper uses RF8: each
    layer's input is rounded to bf16 (torch's RNE cast, equal to the golden bf16 encode) with a
    straight-through gradient, and the weights go through the 8-bit fake quantizer.
    """

    weight_fmt: str = "rf8"
    weight_rounding: str = "nearest"
    weight_granularity: str = "channel"
    act_fmt: str | None = None
    act_rounding: str = "nearest"
    act_granularity: str = "tensor"
    block: int = 32

    def __post_init__(self):
        for fmt, rnd, gran, what in ((self.weight_fmt, self.weight_rounding, self.weight_granularity, "weight"),
                                     (self.act_fmt, self.act_rounding, self.act_granularity, "act")):
            if fmt is None:
                continue
            if what == "act" and fmt in ("bf16", "fp16"):
                continue  # weight-only quantization: activations rounded to bf16/fp16 (RNE), no scale
            f = F.get(fmt)
            if rnd not in f.roundings:
                raise QuantError(f"{what}_rounding {rnd!r} is not valid for {f.name}; valid: {', '.join(f.roundings)}")
            try:
                object.__setattr__(self, f"{what}_granularity", canonical_granularity(gran))
            except QuantError as e:
                raise QuantError(f"{what}_granularity: {e}") from None
        if isinstance(self.block, bool) or not isinstance(self.block, int) or self.block < 1:
            raise QuantError(f"block must be a positive integer, got {self.block!r}")


class FakeQuantize(nn.Module):
    """Parametrization: weight -> fake_quant(weight) with a straight-through gradient."""

    def __init__(self, fmt: str, rounding: str, granularity: str, block: int):
        super().__init__()
        self.fmt, self.rounding, self.granularity, self.block = fmt, rounding, granularity, block

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        # propagate: no host synchronisation per forward; a NaN/Inf weight shows up as a NaN loss
        out = fake_quant(w, self.fmt, self.rounding, self.granularity, self.block, nonfinite="propagate")
        return out if out.dtype == w.dtype else out.to(w.dtype)

    def extra_repr(self) -> str:
        return f"{self.fmt}, {self.rounding}, {self.granularity}" + (
            f", block={self.block}" if self.granularity in BLOCK_GRANULARITIES else "")


def _act_hook(cfg: QATConfig):
    def hook(mod, args):
        if not args or not isinstance(args[0], torch.Tensor):
            return None
        x = args[0]
        y = fake_quant(x, cfg.act_fmt, cfg.act_rounding, cfg.act_granularity, cfg.block, nonfinite="propagate")
        return (y if y.dtype == x.dtype else y.to(x.dtype),) + tuple(args[1:])
    return hook


def quantize_model_(model: nn.Module, config: QATConfig | None = None, kinds=QAT_KINDS, filter_fn=None) -> nn.Module:
    """Put fake quantization on the weights (and optionally inputs) of Linear/Conv layers, in place.

    ``filter_fn(module, fqn) -> bool`` (torchao's signature, as ``quantize_``) restricts the layers.  Calling it twice
    on the same layer raises.  Returns ``model``.
    """
    cfg = config or QATConfig()
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    n = 0
    for name, mod in list(model.named_modules()):
        if not isinstance(mod, kinds) or (filter_fn is not None and not filter_fn(mod, name)):
            continue
        if parametrize.is_parametrized(mod, "weight"):
            raise QuantError(f"layer {name!r} is already parametrized (quantize_model_ called twice?)")
        parametrize.register_parametrization(
            mod, "weight", FakeQuantize(cfg.weight_fmt, cfg.weight_rounding, cfg.weight_granularity, cfg.block))
        mod._rf8sim_qat = cfg
        if cfg.act_fmt is not None:
            mod._rf8sim_act_handle = mod.register_forward_pre_hook(_act_hook(cfg))
        n += 1
    if n == 0:
        raise QuantError("quantize_model_ found no Linear/Conv layer to quantize")
    return model


@dataclass
class QuantizedTensor:
    """Packed weight: uint8 codes and int8 power-of-two scale exponents."""

    codes: torch.Tensor
    scale_exp: torch.Tensor
    fmt: str
    rounding: str
    granularity: str
    block: int

    def dequantize(self) -> torch.Tensor:
        return dequantize(self.codes, self.scale_exp, self.fmt, self.granularity, self.block)

    def meta(self) -> dict:
        d = asdict(self)
        del d["codes"], d["scale_exp"]
        return d


def quantized_weights(model: nn.Module):
    """(name, module, latent weight, config) for every layer with a QAT parametrization."""
    out = []
    for name, mod in model.named_modules():
        if parametrize.is_parametrized(mod, "weight") and hasattr(mod, "_rf8sim_qat"):
            out.append((name, mod, mod.parametrizations.weight.original, mod._rf8sim_qat))
    return out


def convert(model: nn.Module, inplace: bool = False) -> dict[str, QuantizedTensor]:
    """Packed codes and scales of every fake-quantized weight: ``{"layer.weight": QuantizedTensor}``.

    The codes are those of the latent weight under the layer's config, so
    ``QuantizedTensor.dequantize()`` equals the weight the forward pass used, bit
    for bit.  ``inplace=True`` also removes the parametrizations (and activation
    hooks), leaving the dequantized weights as plain parameters.
    """
    packed = {}
    for name, mod, w, cfg in quantized_weights(model):
        codes, k = quantize(w.detach(), cfg.weight_fmt, cfg.weight_rounding, cfg.weight_granularity, cfg.block)
        qt = QuantizedTensor(codes, k, cfg.weight_fmt, cfg.weight_rounding, cfg.weight_granularity, cfg.block)
        packed[(name + "." if name else "") + "weight"] = qt
        if inplace:
            with torch.no_grad():
                deq = qt.dequantize().to(w.dtype)
            parametrize.remove_parametrizations(mod, "weight", leave_parametrized=False)
            with torch.no_grad():
                mod.weight.copy_(deq)
            h = getattr(mod, "_rf8sim_act_handle", None)
            if h is not None:
                h.remove()
                del mod._rf8sim_act_handle
            del mod._rf8sim_qat
    if not packed:
        raise QuantError("convert found no fake-quantized layer; call quantize_model_ first")
    return packed
