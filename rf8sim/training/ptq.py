"""Post-training quantization in the torchao style: ``quantize_(model, QuantConfig(...), filter_fn)``.

``quantize_`` replaces each selected ``nn.Linear`` by an :class:`RF8Linear`: a
real packed module whose weight lives only as ``codes`` (uint8) and
``scale_exp`` (int8, one per scale group) buffers.  Its forward is either

* ``forward="fake"``: activations rounded to ``act_fmt`` (bf16/fp16 by torch's
  RNE cast, an 8-bit format by ``fake_quant``, or left alone), the weight
  dequantized, then ``F.linear`` in float32 (fast; the float32 sum order is
  torch's), or
* ``forward="exact"``: the bit-exact arithmetic of ``rf8sim.golden.gemm`` -
  16-bit activations through :func:`~rf8sim.training.gemm` with
  ``acc="fp32"`` or ``"aligned:K:M"``, 8-bit activations through the integer GEMM
  :func:`~rf8sim.training.gemm.gemm` with a fixed-point ``AccSpec`` string.  The
  bias (if any) is then added in float32 (one RNE addition).

``save_rf8``/``load_rf8`` store and restore the codes and scales of packed
modules bit for bit (checksummed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .. import formats as F
from . import floatcodes
from .quant import QuantError, canonical_granularity, dequantize, fake_quant, quantize, scale_shape

__all__ = ["QuantConfig", "RF8Linear", "quantize_", "FORWARDS"]

FORWARDS = ("fake", "exact")
_A16 = tuple(floatcodes.FORMATS)  # the 16-bit floats (bf16, fp16), encoded unscaled


@dataclass(frozen=True)
class QuantConfig:
    """What ``quantize_`` does to each selected Linear.

    ``weight_fmt`` (8-bit format), ``act_fmt`` (``"bf16"``/``"fp16"`` for weight-only
    quantization, an 8-bit format, or None: float32 activations, fake forward only),
    ``rounding`` (weights; 8-bit activations use it when their format has it),
    ``granularity`` (weights: tensor, channel, ceil, mx), ``block``, ``acc`` (exact
    forward: ``"fp32"`` / ``"aligned:K:M"`` for 16-bit activations, an AccSpec string
    such as ``"16:40"`` for 8-bit ones; default fp32 for 16-bit) and ``forward``
    (``"fake"`` or ``"exact"``).
    """

    weight_fmt: str = "rf8"
    act_fmt: str | None = "bf16"
    rounding: str = "nearest"
    granularity: str = "channel"
    block: int = 32
    acc: str | None = None
    forward: str = "fake"

    def __post_init__(self):
        from ..scales import block_format

        bf = block_format(self.weight_fmt)
        if bf is not None:  # a named block format (mxfp4, mxfp8, mxint8, nvfp4) fixes granularity and block
            if self.granularity not in ("channel", bf.granularity) or self.block not in (32, bf.block):
                raise QuantError(f"weight_fmt {bf.name!r} fixes granularity {bf.granularity!r} and block {bf.block}; "
                                 f"got granularity={self.granularity!r}, block={self.block} (leave the defaults)")
            object.__setattr__(self, "weight_fmt", bf.element)
            object.__setattr__(self, "granularity", bf.granularity)
            object.__setattr__(self, "block", bf.block)
        w = F.check_role(self.weight_fmt, "weight")
        object.__setattr__(self, "weight_fmt", w.name)
        if self.rounding not in w.roundings:
            raise QuantError(f"rounding {self.rounding!r} is not valid for {w.name}; valid: {', '.join(w.roundings)}")
        if self.granularity == "nv":
            if self.forward != "fake":
                raise QuantError("nvfp4 weights (float scales) run forward='fake' only; the exact datapaths take "
                                 "power-of-two scales")
        else:
            object.__setattr__(self, "granularity", canonical_granularity(self.granularity))
            scale_shape((1, self.block), self.granularity, self.block)  # validates block
        if self.act_fmt is not None and self.act_fmt not in _A16:
            object.__setattr__(self, "act_fmt", F.check_role(self.act_fmt, "activation").name)
        if self.forward not in FORWARDS:
            raise QuantError(f"forward={self.forward!r} is not valid; valid: {', '.join(FORWARDS)}")
        if self.forward == "exact":
            if self.act_fmt is None:
                raise QuantError("forward='exact' needs act_fmt (bf16, fp16 or an 8-bit format): the golden "
                                 "arithmetic is defined on codes")
            if self.act_fmt in _A16:
                from .w8a16 import float_acc

                object.__setattr__(self, "acc", str(float_acc(self.acc or "fp32")))
            elif not self.acc:
                raise QuantError("forward='exact' with 8-bit activations needs acc, an AccSpec string such as "
                                 "'16:40' (FRAC:WIDTH)")
            else:  # checked here, not at the first forward
                from ..accspec import AccSpec, AccSpecError

                try:
                    spec = AccSpec.parse(str(self.acc), self.act_fmt, self.weight_fmt)
                except AccSpecError as e:
                    raise QuantError(f"acc: {e}") from None
                if spec.kind != "fixed":
                    raise QuantError(f"acc={self.acc!r} is a float accumulator, for 16-bit activations (bf16, fp16); "
                                     f"with 8-bit activations ({self.act_fmt}) give a fixed-point one: exact, "
                                     "exact:TERMS or FRAC:WIDTH (e.g. '16:40')")


class RF8Linear(nn.Module):
    """A Linear layer whose weight is stored packed: ``codes`` (uint8) and ``scale_exp`` (int8)."""

    def __init__(self, in_features: int, out_features: int, bias: bool, config: QuantConfig, device=None):
        super().__init__()
        self.in_features, self.out_features, self.config = in_features, out_features, config
        self.register_buffer("codes", torch.zeros((out_features, in_features), dtype=torch.uint8, device=device))
        if config.granularity == "nv":  # NVFP4: float32 block scales s_t * s8 (rf8sim.scales)
            self.register_buffer("scale_exp", torch.zeros((), dtype=torch.int8, device=device))
            self.register_buffer("nv_scale", torch.zeros((out_features, -(-in_features // config.block)),
                                                         dtype=torch.float32, device=device))
        else:
            self.register_buffer("scale_exp", torch.zeros(scale_shape((out_features, in_features),
                                                                      config.granularity, config.block),
                                                          dtype=torch.int8, device=device))
        self.bias = nn.Parameter(torch.zeros(out_features, device=device)) if bias else None

    @classmethod
    def from_linear(cls, lin: nn.Linear, config: QuantConfig) -> "RF8Linear":
        m = cls(lin.in_features, lin.out_features, lin.bias is not None, config, device=lin.weight.device)
        c = config
        if c.granularity == "nv":
            from .mx import nvfp4_quantize

            codes, s8, s_t = nvfp4_quantize(lin.weight.detach().float())
            with torch.no_grad():
                m.codes.copy_(codes)
                m.nv_scale.copy_(s_t * s8.view(torch.float8_e4m3fn).float())
                if lin.bias is not None:
                    m.bias.copy_(lin.bias.detach().float())
            return m
        codes, k = quantize(lin.weight.detach().float(), c.weight_fmt, c.rounding, c.granularity, c.block)
        with torch.no_grad():
            m.codes.copy_(codes)
            m.scale_exp.copy_(k)
            if lin.bias is not None:
                m.bias.copy_(lin.bias.detach().float())
        return m

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized weight (float32), exactly ``decode(codes) * 2**scale_exp``."""
        c = self.config
        if c.granularity == "nv":
            from .quant import decode

            v = decode(self.codes, c.weight_fmt).reshape(self.out_features, -1, c.block)
            return (v * self.nv_scale[:, :, None]).reshape(self.codes.shape)
        return dequantize(self.codes, self.scale_exp, c.weight_fmt, c.granularity, c.block)

    def _act_fake(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.act_fmt is None:
            return x.float()
        rnd = c.rounding if c.rounding in F.get(c.act_fmt).roundings else "nearest"
        return fake_quant(x, c.act_fmt, rnd, "tensor", nonfinite="propagate")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.shape[-1] != self.in_features:
            raise QuantError(f"RF8Linear expects {self.in_features} input features, got shape {tuple(x.shape)}")
        if c.forward == "fake":
            y = nn.functional.linear(self._act_fake(x), self.weight,
                                     None if self.bias is None else self.bias.float())
            return self._out_dtype(x, y)
        x2 = x.reshape(-1, self.in_features).float()
        from ..accspec import AccSpec  # the spec object (pure Python, no Numba)
        from .gemm import gemm, to_float32

        spec = AccSpec.parse(c.acc, c.act_fmt, c.weight_fmt)
        rnd = c.rounding if c.rounding in F.get(c.act_fmt).roundings else "nearest"
        ac, ak = quantize(x2, c.act_fmt, rnd, "tensor")  # 16-bit floats: their codes, scale 0
        r = gemm(ac, self.codes, c.act_fmt, c.weight_fmt, spec, ak, self.scale_exp, "tensor",
                 c.granularity, c.block)
        y = to_float32(r.acc, spec.frac_bits) if spec.kind == "fixed" else r.out
        if self.bias is not None:
            y = y + self.bias.float()
        return self._out_dtype(x, y.reshape(*x.shape[:-1], self.out_features))

    @staticmethod
    def _out_dtype(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """A Linear keeps its input's dtype (a bf16 model stays bf16): one RNE cast of the float32 result."""
        return y.to(x.dtype) if x.is_floating_point() and x.dtype != y.dtype else y

    def extra_repr(self) -> str:
        d = {k: v for k, v in asdict(self.config).items() if v is not None}
        return f"in_features={self.in_features}, out_features={self.out_features}, " + \
            ", ".join(f"{k}={v}" for k, v in d.items())


def quantize_(model: nn.Module, config: QuantConfig | None = None, filter_fn=None) -> nn.Module:
    """Replace every selected ``nn.Linear`` of ``model`` by a packed :class:`RF8Linear`, in place.

    ``filter_fn(module, fqn) -> bool`` (torchao's signature) picks the layers;
    default: every ``nn.Linear``.  Returns ``model``.  Raises QuantError when
    nothing was selected.
    """
    cfg = config or QuantConfig()
    if not isinstance(model, nn.Module):
        raise QuantError(f"quantize_ expects an nn.Module, got {type(model).__name__}")
    if isinstance(model, nn.Linear):
        raise QuantError("quantize_ replaces Linear submodules; wrap a bare Linear in a container (nn.Sequential)")
    todo, left = [], []
    for fqn, mod in model.named_modules():
        picked = filter_fn is None or filter_fn(mod, fqn)
        if type(mod) is nn.Linear and picked:
            todo.append(fqn)
        elif picked and isinstance(mod, nn.MultiheadAttention):
            left.append(fqn or "(the model)")
        elif picked and isinstance(mod, nn.Linear) and not any(fqn.startswith(m + ".") for m in left):
            left.append(fqn)  # a Linear subclass: its forward may not be Linear's
    if left:
        import warnings

        warnings.warn(f"quantize_ leaves {', '.join(left[:5])}{' ...' if len(left) > 5 else ''} in float: "
                      "nn.MultiheadAttention computes its projections from its own parameters "
                      "(in_proj_weight, out_proj.weight) and a Linear subclass may not forward like nn.Linear, so "
                      "neither can be replaced by a packed RF8Linear; exclude them with filter_fn to silence this, "
                      "or use a model with plain nn.Linear projections", UserWarning, stacklevel=2)
    if not todo:
        raise QuantError("quantize_ selected no nn.Linear layer (check filter_fn)")
    for fqn in todo:
        parent_name, _, child = fqn.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, RF8Linear.from_linear(getattr(parent, child), cfg))
    return model
