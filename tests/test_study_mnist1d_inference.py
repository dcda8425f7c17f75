"""Bit-exact MLP inference through rf8sim.golden.gemm, against an independent Python-integer reference.

The reference quantizes with the torch emulation (rf8sim.training, a separate implementation),
decodes codes through the format tables into (sign, integer significand, exponent), forms every
product of codes as a Python integer (block scales as shifts relative to the row's largest
live block) aligned with floor to frac_bits, accumulates in k order with saturation after every
product (a lanes=1 MAC), applies the output scale and rounds to float32 exactly from Fractions,
then adds the float32 bias and applies ReLU.
"""

import zlib
from fractions import Fraction

import numpy as np
import pytest
from oracles.binary32 import rne_f32

from rf8sim import formats as F
from rf8sim.golden import AccSpec
from rf8sim.study.mnist1d import variants
from rf8sim.study.mnist1d.inference import ACT_GRANULARITY, evaluate_mlp, exact_mlp_logits, quantize_mlp

variants.ensure_registered()


def _f32_rne(v: Fraction) -> np.float32:
    """``v`` rounded to float32 by the oracle's one rounding (oracles.binary32.rne_f32)."""
    r, overflow = rne_f32(v)
    if overflow:
        return np.float32(-np.inf if v < 0 else np.inf)
    return np.float32(float(r))  # exact: a binary32 value is a float64 value


def _torch_quant(x, fmt, rounding, granularity, block):
    import torch

    from rf8sim import training as T

    c, k = T.quantize(torch.from_numpy(np.ascontiguousarray(x, np.float32)), fmt, rounding=rounding,
                      granularity=granularity, block=block)
    return c.numpy(), k.numpy().astype(np.int64)


def _row_scales(codes, k, fmt, granularity, block):
    """Per row: (output exponent, {block index: relative shift}) -- the MAC sums raw code
    products for tensor/channel scales; block scales shift each block relative to the row's
    largest exponent among blocks that hold a nonzero code."""
    out = []
    for i in range(codes.shape[0]):
        if granularity == "tensor":
            out.append((int(k), {}))
        elif granularity == "channel":
            out.append((int(k[i]), {}))
        else:
            live = {}
            for kk in range(codes.shape[1]):
                if fmt.values[int(codes[i, kk])] != 0:
                    live[kk // block] = int(k[i, kk // block])
            top = max(live.values()) if live else 0
            out.append((top, {bb: e - top for bb, e in live.items()}))
    return out


def _ref_layer(a_codes, a_k, w_codes, w_k, af, wf, acc, a_gran, w_gran, block):
    M, K = a_codes.shape
    N = w_codes.shape[0]
    ra = _row_scales(a_codes, a_k, af, a_gran, block)
    rw = _row_scales(w_codes, w_k, wf, w_gran, block)
    out = np.empty((M, N), np.float32)
    flags = 0
    for i in range(M):
        for j in range(N):
            s = 0
            ovf = False
            for kk in range(K):
                ca, cw = int(a_codes[i, kk]), int(w_codes[j, kk])
                if af.special[ca] or wf.special[cw]:
                    continue  # a NaN/Inf operand contributes no product (the flag is not compared here)
                sign = int(af.sign[ca]) ^ int(wf.sign[cw])
                sig = int(af.sig[ca]) * int(wf.sig[cw])
                e = int(af.exp[ca]) + int(wf.exp[cw]) + ra[i][1].get(kk // block, 0) + rw[j][1].get(kk // block, 0)
                v = -sig if sign else sig
                sh = e + acc.frac_bits
                s += v << sh if sh >= 0 else v >> -sh
                if s > acc.max:
                    s, ovf = acc.max, True
                elif s < acc.min:
                    s, ovf = acc.min, True
            flags += ovf
            out[i, j] = _f32_rne(Fraction(s, 1 << acc.frac_bits) * Fraction(2) ** (ra[i][0] + rw[j][0]))
    return out, flags


def _reference_logits(layers, x, wf, af, rounding, granularity, block, acc):
    a_gran = ACT_GRANULARITY[granularity]
    h = np.asarray(x, np.float32)
    flags = 0
    for n, (w, b) in enumerate(layers):
        wc, wk = _torch_quant(w, wf, rounding, granularity, block)
        ac, ak = _torch_quant(h, af, "nearest", a_gran, block)
        y, fl = _ref_layer(ac, ak, wc, wk, af, wf, acc, a_gran, granularity, block)
        flags += fl
        y = (y + b).astype(np.float32)
        h = np.maximum(y, np.float32(0)) if n + 1 < len(layers) else y
    return h, flags


def _mlp(rng, dims=(40, 12, 10)):
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        w = (rng.laplace(size=(b, a)) * (0.6 / np.sqrt(a))).astype(np.float32)
        layers.append((w, (rng.normal(size=b) * 0.1).astype(np.float32)))
    return layers


CASES = [
    ("rf8", "rf8", "nearest", "tensor", None),
    ("rf8", "rf8", "paper", "channel", None),
    ("rf8", "rf8", "truncate", "block", None),
    ("rf8m8", "rf8m8", "nearest", "block", None),
    ("e4m3", "e4m3", "nearest", "channel", None),
    ("e5m2", "e5m2", "nearest", "block", None),
    ("int8", "int8", "nearest", "tensor", None),
    ("rf8", "int8", "nearest", "channel", None),
    # narrow accumulators: floor rounding to few fraction bits and saturation
    ("rf8", "rf8", "nearest", "channel", (4, 20)),
    ("e4m3", "e4m3", "nearest", "tensor", (2, 18)),
    ("int8", "int8", "nearest", "block", (0, 14)),
    # block scales with few fraction bits: small blocks lose their low bits, no saturation
    ("rf8", "rf8", "nearest", "block", (2, 40)),
]


@pytest.mark.parametrize("wname, aname, rounding, gran, accspec", CASES)
def test_exact_mlp_matches_integer_reference(wname, aname, rounding, gran, accspec):
    rng = np.random.default_rng(zlib.crc32(repr((wname, aname, rounding, gran, accspec)).encode()))
    layers = _mlp(rng)
    x = rng.normal(size=(6, 40)).astype(np.float32) * 2
    wf, af = F.get(wname), F.get(aname)
    acc = AccSpec.exact(af, wf, 1024) if accspec is None else AccSpec(*accspec)
    q = quantize_mlp(layers, wname, aname, rounding=rounding, granularity=gran, block=8, acc=acc)
    got, fl = exact_mlp_logits(q, x)
    want, ref_ovf = _reference_logits(layers, x, wf, af, rounding, gran, 8, acc)
    assert got.dtype == np.float32 and got.shape == want.shape == (6, 10)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    assert fl["outputs"] == 6 * 12 + 6 * 10
    assert fl["overflow"] == ref_ovf
    if accspec is None:
        assert fl["overflow"] == 0
    elif accspec[1] < 30:  # the narrow cases must really saturate, else they test nothing
        assert 0 < fl["overflow"] < fl["outputs"]


def test_evaluate_and_errors():
    rng = np.random.default_rng(0)
    layers = _mlp(rng)
    x = rng.normal(size=(30, 40)).astype(np.float32)
    q = quantize_mlp(layers, "rf8", granularity="channel")
    logits, _ = exact_mlp_logits(q, x)
    y = np.argmax(logits, 1)
    r = evaluate_mlp(q, x, y, batch=7)
    assert r["accuracy"] == 1.0 and r["n"] == 30
    with pytest.raises(ValueError, match="input must be"):
        exact_mlp_logits(q, x[:, :39])
    with pytest.raises(ValueError, match="takes 13 inputs"):
        quantize_mlp([(np.zeros((12, 40)), None), (np.zeros((10, 13)), None)])
    with pytest.raises(F.FormatError, match="no rounding"):
        quantize_mlp(layers, "e4m3", rounding="paper")
    with pytest.raises(F.FormatError, match="unknown format"):
        quantize_mlp(layers, "rf9")


def test_fake_quant_comparison_counts():
    # with an exact accumulator the only difference from fake-quant is float32 summation of the
    # same products; predictions then agree on (almost) every sample, and the counts are consistent
    rng = np.random.default_rng(3)
    layers = _mlp(rng)
    x = rng.normal(size=(50, 40)).astype(np.float32)
    q = quantize_mlp(layers, "rf8", granularity="block", block=8)
    logits, _ = exact_mlp_logits(q, x)
    y = np.argmax(logits, 1)
    r = evaluate_mlp(q, x, y, batch=16, float_layers=layers)
    assert r["accuracy"] == 1.0
    assert r["fq_accuracy"] == pytest.approx(1.0 - r["fq_disagree"])
    assert r["fq_disagree"] <= 0.04
    from rf8sim.study.mnist1d.inference import fake_quant_logits

    fq = fake_quant_logits(layers, x, "rf8", granularity="block", block=8)
    assert np.max(np.abs(fq - logits)) < 1e-3 * max(1.0, float(np.max(np.abs(logits))))


def test_split_scales_and_scaled_conversion():
    from rf8sim.study.mnist1d.inference import scaled_to_float32, split_scales

    f = F.get("int8")
    codes = np.array([[0, 3, 0, 0, 0], [0, 0, 0, 0, 0]], np.uint8)  # row 1 all zero
    k = np.array([[5, -4, 0], [2, 2, 2]], np.int64)                   # blocks of 2 (last partial)
    rel, out = split_scales(codes, k, f, "block", 2)
    assert out.tolist() == [5, 0] and rel.tolist() == [[0, 0, 0], [0, 0, 0]]  # block 0 is the only live one
    codes[0, 2] = 1
    rel, out = split_scales(codes, k, f, "block", 2)
    assert out.tolist() == [5, 0] and rel.tolist() == [[0, -9, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="do not fit"):
        split_scales(codes, k, f, "block", 4)
    # exact conversion, including results that only a subnormal or infinity can hold
    acc = np.array([[3, -5, 1, (1 << 40) + 1]], np.int64)
    scale = np.array([[0, -140, -160, 100]])
    got = scaled_to_float32(acc, 2, scale)
    want = [_f32_rne(Fraction(int(a)) * Fraction(2) ** (int(s) - 2)) for a, s in zip(acc[0], scale[0])]
    np.testing.assert_array_equal(got[0].view(np.uint32), np.array(want, np.float32).view(np.uint32))
    assert got[0, 1] != 0 and np.isinf(got[0, 3])


def test_scaled_conversion_both_routes_against_fractions():
    """Both routes of ``scaled_to_float32`` against the Fraction oracle: the float64 one (``|acc| <= 2**53``,
    moderate exponents) and the general one (a larger ``acc`` in the same array sends every element there),
    on accumulators of every bit length, ties and results that are subnormal, normal or overflow."""
    from rf8sim.study.mnist1d.inference import scaled_to_float32

    rng = np.random.default_rng(11)
    n = 4000
    bits = rng.integers(0, 54, n)
    acc = (rng.integers(0, 1 << 62, n, dtype=np.int64) >> (62 - bits)) * rng.choice([-1, 1], n)
    acc[:64] = (np.arange(64, dtype=np.int64) * 2 + 1) << 23  # a 25-bit odd value: ties at 24 bits
    acc[64:72] = [0, 1, -1, 1 << 53, -(1 << 53), (1 << 53) - 1, 3, -7]
    scale = rng.integers(-200, 150, n)
    frac = 20
    want = np.array([_f32_rne(Fraction(int(a)) * Fraction(2) ** (int(s) - frac)) for a, s in zip(acc, scale)],
                    np.float32)
    want = np.where(want == 0, np.copysign(want, acc), want).astype(np.float32)  # IEEE: -tiny rounds to -0
    kinds = {"subnormal": 0, "normal": 0, "inf": 0, "zero": 0}
    for w in want:
        kinds["zero" if w == 0 else "inf" if np.isinf(w) else "subnormal" if abs(w) < 2.0 ** -126 else "normal"] += 1
    assert min(kinds.values()) >= 8, kinds
    fast = scaled_to_float32(acc, frac, scale)
    wide = np.append(acc, np.int64(1) << 60)  # one element beyond 2**53: the general route for all
    general = scaled_to_float32(wide, frac, np.append(scale, 0))[:n]
    for got in (fast, general):
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    assert fast.shape == general.shape == (n,)
