"""Bit-exact integer inference of an MLP through the golden model's GEMM.

Each Linear layer ``y = x W^T + b`` runs as the hardware would:

1. the weights are quantized once (``rf8sim.golden.quantize``: format, rounding, granularity,
   block) to codes and power-of-two scale exponents;
2. the layer input is quantized to the activation format (``nearest`` rounding: the paper's
   ``paper``/``truncate`` algorithms are weight-conversion rules) with a dynamic power-of-two
   scale per sample (granularity "channel" = axis 0 of the (batch, features) matrix, so a
   sample's result does not depend on the rest of the batch) or per block of ``block``
   features when the weights use block scales (MX style: both operands share the block grid;
   a last partial block has its own scale, as in the golden model);
3. ``rf8sim.golden.gemm`` accumulates every exact product of the *codes* in the fixed-point
   accumulator of an :class:`~rf8sim.golden.AccSpec` (rounding toward -inf to ``frac_bits``,
   saturation, sticky flags), as the MAC does: scales constant along K (tensor, channel) are
   not the MAC's business and are applied to the result; block scales enter as shifts
   relative to the row's largest block (see :func:`split_scales`), so small blocks lose the
   bits the accumulator's fraction cannot hold, as in a fixed-point MX datapath;
4. the accumulator is converted exactly with its output scale (``rf8sim.golden.to_float32``
   then an exact power-of-two scaling, :func:`scaled_to_float32`); the float32 bias is added
   and ReLU applied between layers.

Nothing here uses floating-point matrix products: the logits are a pure function of the
codes, the scales and the accumulator spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ... import formats as F

__all__ = ["QuantizedLayer", "QuantizedMLP", "quantize_mlp", "exact_mlp_logits", "evaluate_mlp",
           "fake_quant_logits", "split_scales", "scaled_to_float32", "ACT_GRANULARITY"]

#: activation granularity used for each weight granularity (see the module docstring)
ACT_GRANULARITY = {"tensor": "channel", "channel": "channel", "block": "block"}


@dataclass
class QuantizedLayer:
    w_codes: np.ndarray      # (N, K) uint8
    w_scale_exp: np.ndarray  # int8: (), (N,) or (N, K // block)
    bias: np.ndarray         # (N,) float32


@dataclass
class QuantizedMLP:
    """An MLP whose weights are codes + scales, with the arithmetic it runs under."""

    layers: list
    w_format: str
    a_format: str
    rounding: str
    granularity: str
    block: int
    acc: object  # AccSpec
    act_granularity: str = ""
    stats: dict = field(default_factory=dict)


def _as_layers(layers):
    out = []
    for i, (w, b) in enumerate(layers):
        w = np.asarray(w, np.float32)
        b = np.zeros(w.shape[0], np.float32) if b is None else np.asarray(b, np.float32)
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ValueError(f"layer {i}: weight must be (out, in) and bias (out,), got {w.shape} and {b.shape}")
        if i and w.shape[1] != out[-1][0].shape[0]:
            raise ValueError(f"layer {i} takes {w.shape[1]} inputs but layer {i - 1} gives {out[-1][0].shape[0]}")
        out.append((w, b))
    if not out:
        raise ValueError("an MLP needs at least one layer")
    return out


def quantize_mlp(layers, w_format="rf8", a_format=None, *, rounding="nearest", granularity="tensor",
                 block=32, acc=None, max_terms=1024) -> QuantizedMLP:
    """Quantize the weights of an MLP given as ``[(W (out, in), b (out,)), ...]`` (ReLU between).

    ``acc`` is an AccSpec, a string in AccSpec syntax (``exact``, ``exact:TERMS``,
    ``FRAC:WIDTH``) or None (= exact for ``max_terms`` products of these formats).
    """
    from ... import golden
    from ...golden import AccSpec
    from . import variants

    variants.ensure_registered()
    wf = F.get(w_format)
    af = F.get(a_format if a_format is not None else w_format)
    if rounding not in wf.roundings:
        raise F.FormatError(f"{wf.name} has no rounding {rounding!r}; valid: {list(wf.roundings)}")
    if granularity not in ACT_GRANULARITY:
        raise ValueError(f"granularity {granularity!r} is not one of {list(ACT_GRANULARITY)}")
    layers = _as_layers(layers)
    if acc is None:
        acc = AccSpec.exact(af, wf, max_terms)
    elif isinstance(acc, str):
        acc = (AccSpec.exact(af, wf, max_terms) if acc.strip().lower() == "exact"
               else AccSpec.parse(acc, af, wf))
    qls = []
    for w, b in layers:
        codes, k = golden.quantize(w, wf, rounding=rounding, granularity=granularity, block=block)
        qls.append(QuantizedLayer(np.asarray(codes), np.asarray(k), b))
    return QuantizedMLP(qls, wf.name, af.name, rounding, granularity, block, acc,
                        ACT_GRANULARITY[granularity])


def split_scales(codes: np.ndarray, k: np.ndarray, fmt, granularity: str, block: int = 32):
    """Split power-of-two scales into a per-row output scale and in-MAC relative shifts.

    A MAC multiplies codes only; scales that are constant along K (tensor, channel) are applied
    once to the accumulated result, so the MAC sees relative shift 0.  Block scales vary along
    K: the row's largest block exponent (over blocks holding a nonzero code) becomes the output
    scale and each block enters the accumulator shifted by its (<= 0) difference to it.
    Returns ``(rel, out)`` with ``rel`` shaped like ``k`` and ``out`` of shape (rows,).
    """
    rows = codes.shape[0]
    k = np.asarray(k, np.int64)
    if granularity == "tensor":
        return np.zeros((), np.int64), np.full(rows, int(k), np.int64)
    if granularity == "channel":
        return np.zeros(rows, np.int64), k.copy()
    fmt = F.get(fmt)
    nb = k.shape[1]
    if nb != -(-codes.shape[1] // block):
        raise ValueError(f"{nb} block scales do not fit {codes.shape[1]} values in blocks of {block}")
    pad = np.zeros((rows, nb * block), bool)
    pad[:, :codes.shape[1]] = fmt.values[codes] != 0  # NaN != 0 counts as nonzero: it sets invalid anyway
    live = pad.reshape(rows, nb, block).any(axis=2)
    masked = np.where(live, k, np.iinfo(np.int64).min)
    out = masked.max(axis=1)
    out = np.where(live.any(axis=1), out, 0)
    rel = np.where(live, k - out[:, None], 0)
    return rel, out


def scaled_to_float32(acc, frac_bits: int, scale: np.ndarray) -> np.ndarray:
    """``acc * 2**(scale - frac_bits)`` rounded to nearest-even float32, elementwise, exactly.

    ``rf8sim.golden.to_float32`` rounds the significand to 24 bits; multiplying by a power of two
    afterwards is exact whenever the result is a normal float32.  The rare elements that would be
    subnormal or overflow are converted from exact integers instead.

    When every ``|acc|`` is at most 2**53 (the golden GEMM's float64 path guarantees it) and the
    exponents are moderate, the float64 ``acc * 2**(scale - frac_bits)`` is exact and numpy's
    float64 -> float32 cast rounds it once, to nearest even, subnormals and overflow to infinity
    included: that is the whole conversion (a third of the MiniLM W8A8 layer time went to the
    general route).
    """
    from fractions import Fraction

    from ... import golden

    a = np.asarray(acc)
    if a.dtype == np.int64 and a.size:
        e = np.asarray(scale, np.int64) - frac_bits
        if -(1 << 53) <= a.min() and a.max() <= 1 << 53 and e.size and -900 <= e.min() and e.max() <= 900:
            with np.errstate(over="ignore"):
                return np.ldexp(a.astype(np.float64), e.astype(np.int32)).astype(np.float32)
    y = np.asarray(golden.to_float32(a, frac_bits), np.float64) * np.exp2(np.asarray(scale, np.float64))
    tiny, huge = np.float64(2.0 ** -126), np.float64(np.finfo(np.float32).max)
    bad = (y != 0) & ((np.abs(y) < tiny) | (np.abs(y) > huge))
    with np.errstate(over="ignore"):  # overflowing elements are recomputed below
        out = y.astype(np.float32)
    if bad.any():
        sc = np.broadcast_to(np.asarray(scale), out.shape)
        for idx in zip(*np.nonzero(bad)):
            v = Fraction(int(a[idx])) * Fraction(2) ** (int(sc[idx]) - frac_bits)
            out[idx] = _fraction_to_f32(v)
    return out


def _fraction_to_f32(v) -> np.float32:
    from fractions import Fraction

    if v == 0:
        return np.float32(0.0)
    s = -1 if v < 0 else 1
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    q = max(e, -126) - 23
    m = round(a / Fraction(2) ** q)  # half to even
    if m * Fraction(2) ** q >= Fraction(2) ** 128:
        return np.float32(s * np.inf)
    return np.float32(s * float(m * Fraction(2) ** q))


def exact_mlp_logits(qmlp: QuantizedMLP, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """Logits (float32) of a batch ``x`` (batch, in) through the golden GEMM, plus flag counts.

    Per layer: quantize the input, split both operands' scales (:func:`split_scales`), run
    ``golden.gemm`` on the codes with the relative shifts (zero for tensor/channel scales: the
    MAC sums raw code products), convert with the output scale (:func:`scaled_to_float32`),
    add the float32 bias, ReLU between layers.  The returned dict counts outputs whose sticky
    ``overflow`` or ``invalid`` flag was set, and the outputs computed.
    """
    from ... import golden

    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != qmlp.layers[0].w_codes.shape[1]:
        raise ValueError(f"input must be (batch, {qmlp.layers[0].w_codes.shape[1]}), got {x.shape}")
    af, wf = F.get(qmlp.a_format), F.get(qmlp.w_format)
    flags = {"overflow": 0, "invalid": 0, "outputs": 0}
    h = x
    for i, L in enumerate(qmlp.layers):
        a_codes, a_k = golden.quantize(h, af, rounding="nearest", granularity=qmlp.act_granularity,
                                       block=qmlp.block)
        a_rel, a_out = split_scales(a_codes, a_k, af, qmlp.act_granularity, qmlp.block)
        w_rel, w_out = split_scales(L.w_codes, L.w_scale_exp, wf, qmlp.granularity, qmlp.block)
        res = golden.gemm(a_codes, L.w_codes, af, wf, qmlp.acc, a_scale_exp=a_rel, w_scale_exp=w_rel,
                          a_granularity=qmlp.act_granularity, w_granularity=qmlp.granularity,
                          block=qmlp.block)
        flags["overflow"] += int(np.count_nonzero(res.overflow))
        flags["invalid"] += int(np.count_nonzero(res.invalid))
        flags["outputs"] += int(np.asarray(res.overflow).size)
        y = scaled_to_float32(res.acc, qmlp.acc.frac_bits, a_out[:, None] + w_out[None, :])
        y = y + L.bias  # float32 add, as a float bias unit would
        h = np.maximum(y, np.float32(0)) if i + 1 < len(qmlp.layers) else y
    return h, flags


def fake_quant_logits(layers, x, w_format="rf8", a_format=None, *, rounding="nearest", granularity="tensor",
                      block=32) -> np.ndarray:
    """The usual fake-quant emulation of the same network, for comparison only.

    Weights and activations go through ``rf8sim.training.fake_quant`` (the same codes and scales
    as the exact path) but the products are summed by a float32 matmul, so the accumulation
    (rounding toward -inf, saturation, summation order) is not the hardware's.
    """
    import torch

    from ... import training as T

    a_format = a_format or w_format
    ag = ACT_GRANULARITY[granularity]
    layers = _as_layers(layers)
    h = torch.from_numpy(np.asarray(x, np.float32))
    with torch.no_grad():
        for i, (w, b) in enumerate(layers):
            wq = T.fake_quant(torch.from_numpy(w), w_format, rounding=rounding, granularity=granularity, block=block)
            hq = T.fake_quant(h, a_format, rounding="nearest", granularity=ag, block=block)
            h = hq @ wq.T + torch.from_numpy(b)
            if i + 1 < len(layers):
                h = torch.relu(h)
    return h.numpy()


def evaluate_mlp(qmlp: QuantizedMLP, x: np.ndarray, y: np.ndarray, batch: int = 1000,
                 float_layers=None) -> dict:
    """Top-1 accuracy of the bit-exact inference on (x, y) and the flag counts.

    With ``float_layers`` (the unquantized ``[(W, b)]``), also the fake-quant accuracy of the
    same configuration and the fraction of samples whose predicted class differs between the
    two (``fq_disagree``): how far fake quantization is from what the hardware computes.
    """
    y = np.asarray(y)
    correct = fq_correct = disagree = 0
    tot = {"overflow": 0, "invalid": 0, "outputs": 0}
    for s in range(0, len(x), batch):
        logits, fl = exact_mlp_logits(qmlp, x[s:s + batch])
        pred = np.argmax(logits, axis=1)
        correct += int(np.count_nonzero(pred == y[s:s + batch]))
        for k in tot:
            tot[k] += fl[k]
        if float_layers is not None:
            fq = np.argmax(fake_quant_logits(float_layers, x[s:s + batch], qmlp.w_format, qmlp.a_format,
                                             rounding=qmlp.rounding, granularity=qmlp.granularity,
                                             block=qmlp.block), axis=1)
            fq_correct += int(np.count_nonzero(fq == y[s:s + batch]))
            disagree += int(np.count_nonzero(fq != pred))
    n = max(1, len(x))
    out = {"accuracy": correct / n, "n": int(len(x)), **tot}
    if float_layers is not None:
        out.update(fq_accuracy=fq_correct / n, fq_disagree=disagree / n)
    return out
