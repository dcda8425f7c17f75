"""Operand streams for gate-level energy runs: real MiniLM data, uniform random codes, GG(beta).

Dataflow (the same for every stream, so only the data differ): a weight-stationary
array holds ``lanes`` weights ``w[o, i:i+lanes]`` of one linear layer in the MAC for a
*tile* of ``tile`` beats while the activations of ``tile`` consecutive tokens
``x[t, i:i+lanes]`` stream past; ``in_clear`` starts every tile (the partial sum leaves
the unit), ``in_valid`` is 1 on every beat.  Tiles are drawn (seeded) over all linear
layers and visited in layer order: query, key, value, attention output, intermediate,
output of layer 0, then layer 1, ...

* ``minilm``: all-MiniLM-L6-v2's real weights (``load_minilm_state``), and the inputs
  that every ``nn.Linear`` really receives in the model's forward pass on real
  sentences (``rf8sim.workloads.data.load_sentences``); both quantized per tensor with
  ``rf8sim.golden.codec.quantize`` to the unit's weight / activation format (16-bit float
  formats: the values themselves rounded to bf16/fp16 with ``encode``, no scale).
* ``random``: independent uniform codes (0..255, or 0..65535 for 16-bit formats).
* ``gg:BETA``: generalised-Gaussian(beta) values (``scipy.stats.gennorm``), quantized per
  tensor like the real data (beta = 2 Gaussian, 1 Laplace).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from .mac import HdlError

__all__ = ["Stream", "make_stream", "parse_stream", "STREAM_HELP"]

STREAM_HELP = "minilm, random or gg:BETA (BETA > 0, e.g. gg:1.5)"
N_SENTENCES = 32
_LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
            "intermediate.dense", "output.dense")


@dataclass(frozen=True)
class Stream:
    name: str
    a: np.ndarray  # (beats, lanes) activation codes (uint8, or uint16 for 16-bit formats)
    w: np.ndarray  # (beats, lanes) weight codes
    clear: np.ndarray  # (beats,) 0/1
    tile: int


def parse_stream(spec: str) -> tuple[str, float | None]:
    """``"minilm"`` / ``"random"`` / ``"gg:1.5"`` -> (kind, beta); HdlError naming the valid ones otherwise."""
    s = str(spec).strip().lower()
    if s in ("minilm", "random"):
        return s, None
    m = re.fullmatch(r"gg:([0-9.]+(?:e[-+]?\d+)?)", s)
    if m:
        try:
            beta = float(m.group(1))
        except ValueError:
            beta = -1.0
        if beta > 0 and np.isfinite(beta):
            return "gg", beta
        raise HdlError(f"stream {spec!r}: BETA must be a positive number; valid streams: {STREAM_HELP}")
    raise HdlError(f"unknown stream {spec!r}; valid streams: {STREAM_HELP}")


@functools.lru_cache(maxsize=1)
def _minilm_capture(n_sentences: int = N_SENTENCES):
    """{linear name: (weight (out, in) float32, inputs (tokens, in) float32)} in layer order."""
    import torch

    from ..workloads.data import load_sentences
    from ..workloads.models import load_minilm, load_minilm_state

    state = load_minilm_state()
    model = load_minilm()
    sentences = load_sentences(n_sentences, seed=0)
    ids, mask = model.tokenize(sentences)
    keep = mask.bool().reshape(-1).numpy()
    names = [f"encoder.layer.{i}.{n}" for i in range(len(model.encoder.layer)) for n in _LINEARS]
    captured = {}
    hooks = []
    mods = dict(model.named_modules())
    for n in names:
        def hook(mod, inp, out, n=n):
            captured[n] = inp[0].detach().reshape(-1, inp[0].shape[-1]).numpy()[keep].astype(np.float32)
        hooks.append(mods[n].register_forward_hook(hook))
    torch.manual_seed(0)
    with torch.no_grad():
        model(ids, mask)
    for h in hooks:
        h.remove()
    return {n: (state[n + ".weight"].numpy().astype(np.float32), captured[n]) for n in names}


def _codes(x, fmt):
    """8-bit formats: quantized per tensor (power-of-two scale, the scale stays outside the unit);
    16-bit float formats (bf16/fp16 activations, the bf16 weight baseline): the values themselves,
    rounded to nearest even (``rf8sim.golden.codec.encode``), as a W8A16 datapath receives them."""
    from .. import formats as F
    from ..golden.codec import encode, quantize

    if code_bits(F.get(fmt)) > 8:
        return np.asarray(encode(np.asarray(x, np.float32), fmt))
    codes, _ = quantize(np.asarray(x, np.float32), fmt, granularity="tensor")
    return np.asarray(codes)


def code_bits(fmt) -> int:
    """Width of a code of ``fmt`` (8, or 16 for the W8A16 activation formats)."""
    return int(getattr(fmt, "code_bits", 8))


def _dtype(bits: int):
    return np.uint8 if bits <= 8 else np.uint16


def make_stream(spec: str, a_fmt, w_fmt, lanes: int, beats: int, tile: int = 32, seed: int = 0) -> Stream:
    """``beats`` beats of ``lanes`` (activation, weight) code pairs in weight-stationary order."""
    kind, beta = parse_stream(spec)
    if not isinstance(beats, (int, np.integer)) or beats < 1:
        raise HdlError(f"stream length must be a positive integer number of beats, got {beats!r}")
    if not isinstance(tile, (int, np.integer)) or tile < 1:
        raise HdlError(f"tile must be a positive integer, got {tile!r}")
    from .. import formats as F

    a_fmt, w_fmt = F.get(a_fmt), F.get(w_fmt)
    rng = np.random.default_rng(seed)
    n_tiles = -(-beats // tile)
    if kind == "minilm":
        cap = _minilm_capture()
        layers = list(cap)
        # every (layer, output row, lane group, token block) is one possible tile
        sizes = []
        for n in layers:
            wt, x = cap[n]
            sizes.append(wt.shape[0] * (wt.shape[1] // lanes) * (x.shape[0] // tile))
        available = int(sum(sizes)) * tile
        if beats > available:
            raise HdlError(f"stream minilm has {available} beats for lanes={lanes}, tile={tile} "
                           f"({N_SENTENCES} sentences, {len(layers)} linear layers); asked for {beats}")
        picks = np.sort(rng.choice(int(sum(sizes)), size=n_tiles, replace=False))
        qa = {n: _codes(cap[n][1], a_fmt) for n in layers}
        qw = {n: _codes(cap[n][0], w_fmt) for n in layers}
        a_rows, w_rows = [], []
        bounds = np.cumsum([0] + sizes)
        for p in picks:
            li = int(np.searchsorted(bounds, p, side="right") - 1)
            n = layers[li]
            wt, x = qw[n], qa[n]
            r = int(p - bounds[li])
            groups, blocks = wt.shape[1] // lanes, x.shape[0] // tile
            o, rem = divmod(r, groups * blocks)
            g, b = divmod(rem, blocks)
            a_rows.append(x[b * tile:(b + 1) * tile, g * lanes:(g + 1) * lanes])
            w_rows.append(np.broadcast_to(wt[o, g * lanes:(g + 1) * lanes], (tile, lanes)))
        a = np.concatenate(a_rows)[:beats]
        w = np.concatenate(w_rows)[:beats]
    elif kind == "random":
        ab, wb = code_bits(a_fmt), code_bits(w_fmt)
        a = rng.integers(0, 2 ** ab, size=(beats, lanes)).astype(_dtype(ab))
        w = np.repeat(rng.integers(0, 2 ** wb, size=(n_tiles, lanes)).astype(_dtype(wb)), tile, axis=0)[:beats]
    else:
        from scipy.stats import gennorm

        xa = gennorm.rvs(beta, size=(beats, lanes), random_state=rng).astype(np.float32)
        xw = gennorm.rvs(beta, size=(n_tiles, lanes), random_state=rng).astype(np.float32)
        a = _codes(xa, a_fmt)
        w = np.repeat(_codes(xw, w_fmt), tile, axis=0)[:beats]
    clear = np.zeros(beats, np.uint8)
    clear[::tile] = 1
    name = spec if kind != "gg" else f"gg:{beta:g}"
    return Stream(name, np.ascontiguousarray(a, _dtype(code_bits(a_fmt))),
                  np.ascontiguousarray(w, _dtype(code_bits(w_fmt))), clear, tile)
