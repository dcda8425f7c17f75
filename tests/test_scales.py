"""Power-of-two scales: quantize / dequantize against exact Fraction arithmetic."""

from fractions import Fraction

import numpy as np
import pytest

from oracles import formats as ref
from rf8sim import formats as F
from rf8sim.golden import DTypeError, EncodeError, decode, dequantize, encode, quantize, scale_exponents

NAMES = ("rf8", "e4m3", "e5m2", "int8")


def ref_scale_exp(amax: float, fmt) -> int:
    """Smallest integer k with amax / 2^k <= max, by stepping k with exact Fractions."""
    fmt = F.get(fmt)
    if amax == 0:
        return 0
    # posits aim at useed = 2**(2**es), the top of their most precise region; the rest at max
    m = Fraction(2) ** (2 ** dict(fmt.params)["es"]) if fmt.kind == "posit" else Fraction(fmt.max)
    a = Fraction(float(amax))
    k = 0
    while a / Fraction(2) ** k > m:
        k += 1
    while a / Fraction(2) ** (k - 1) <= m:
        k -= 1
    return max(k, -127)  # clamped to the E8M0 range


@pytest.mark.parametrize("name", NAMES)
def test_scale_exponent_boundaries(name):
    fmt = F.get(name)
    am = []
    for k in range(-150, 125):
        with np.errstate(over="ignore"):
            v = np.float32(fmt.max * 2.0**k)
        if not np.isfinite(v) or v == 0:
            continue
        am += [v, np.nextafter(v, np.float32(np.inf)), np.nextafter(v, np.float32(0))]
    am += [np.float32(0), np.finfo(np.float32).max, np.finfo(np.float32).smallest_subnormal]
    am = np.array(am, np.float32)
    got = scale_exponents(am, name)
    want = [ref_scale_exp(float(v), name) for v in am]
    assert got.dtype == np.int8 and got.tolist() == want
    assert am.size > 700


def _ref_quantize(x, fmt, rounding, granularity, block):
    """Group amax, reference k, then the per-element Fraction encode of x / 2^k."""
    x = np.asarray(x, np.float32)
    flat_groups = np.zeros(x.shape, np.int64)
    if granularity == "tensor":
        groups = {0: np.abs(x).max() if x.size else 0}
    elif granularity == "channel":
        idx = np.arange(x.shape[0]).reshape((-1,) + (1,) * (x.ndim - 1))
        flat_groups = np.broadcast_to(idx, x.shape).copy()
        groups = {i: np.abs(x[i]).max() for i in range(x.shape[0])}
    else:
        nb = -(-x.shape[-1] // block)
        lead = int(np.prod(x.shape[:-1]))
        col = np.arange(x.shape[-1]) // block
        flat_groups = (np.arange(lead).reshape(x.shape[:-1] + (1,)) * nb + col).reshape(x.shape)
        xr = x.reshape(lead, x.shape[-1])
        groups = {r * nb + b: np.abs(xr[r, b * block:(b + 1) * block]).max() for r in range(lead) for b in range(nb)}
    ks = {g: ref_scale_exp(float(v), fmt) for g, v in groups.items()}
    codes = np.empty(x.shape, np.uint8)
    for i in np.ndindex(x.shape):
        k = ks[int(flat_groups[i])]
        scaled = Fraction(float(x[i])) / Fraction(2) ** k
        # exact scaled value; it is a float32 unless it underflows, where every format gives +-0
        s32 = np.float32(float(scaled))
        if Fraction(float(s32)) != scaled:
            assert abs(scaled) < Fraction(2) ** -126
        s32 = np.copysign(s32, x[i])
        codes[i] = ref.encode_one(s32, fmt, rounding)
    return codes, ks


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("granularity", ["tensor", "channel", "ceil"])
def test_quantize_against_reference(name, granularity):
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((5, 3, 37)) * np.exp2(rng.integers(-30, 30, (5, 1, 1)))).astype(np.float32)
    x[1, 0, :5] = 0.0
    x[2] = 0.0  # an all-zero channel: k = 0
    x[3, 1, 3] = np.float32(2.0**-140)  # underflows after scaling
    modes = F.get(name).roundings
    n = 0
    for r in modes:
        codes, k = quantize(x, name, r, granularity, block=8)
        want, ks = _ref_quantize(x, name, r, granularity, 8)
        assert np.array_equal(codes, want)
        shape = {"tensor": (), "channel": (5,), "ceil": (5, 3, 5)}[granularity]
        assert k.shape == shape and k.dtype == np.int8
        assert sorted(set(k.reshape(-1).tolist())) == sorted(set(ks.values()))
        # dequantize = decode * 2^k exactly
        back = dequantize(codes, k, name, granularity, block=8)
        kk = k.reshape(-1)
        dec = decode(codes, name)
        for i in np.ndindex(x.shape):
            if granularity == "tensor":
                kv = int(k)
            elif granularity == "channel":
                kv = int(k[i[0]])
            else:
                kv = int(k[i[0], i[1], i[2] // 8])
            assert Fraction(float(back[i])) == Fraction(float(dec[i])) * Fraction(2) ** kv
            n += 1
        assert kk.size == int(np.prod(shape))
    assert n == x.size * len(modes)


def test_quantize_shapes_and_errors():
    x = np.ones((4, 70), np.float32)
    c, k = quantize(x, "rf8", granularity="block", block=32)  # 'block': the deprecated name of 'ceil'
    assert c.shape == x.shape and k.shape == (4, 3)
    c2, k2 = quantize(x, "rf8", granularity="ceil", block=32)
    assert np.array_equal(c, c2) and np.array_equal(k, k2)
    c, k = quantize(x, "rf8", granularity="channel")
    assert k.shape == (4,)
    c0, k0 = quantize(np.float32(3.0), "rf8")
    assert c0.shape == () and k0.shape == ()
    with pytest.raises(EncodeError, match=r"finite.*\(1, 2\)"):
        x2 = x.copy()
        x2[1, 2] = np.nan
        quantize(x2, "e4m3")
    with pytest.raises(ValueError, match="unknown granularity"):
        quantize(x, "rf8", granularity="row")
    with pytest.raises(ValueError, match="block must be a positive integer"):
        quantize(x, "rf8", granularity="block", block=0)
    c, k = quantize(x, "rf8", granularity="block", block=32)
    with pytest.raises(ValueError, match=r"needs \(4, 3\)"):
        dequantize(c, np.zeros((4, 2), np.int8), "rf8", "block")
    with pytest.raises(DTypeError, match="integer array"):
        dequantize(c, np.zeros(4, np.float32), "rf8", "channel")
    with pytest.raises(F.FormatError, match="paper"):
        quantize(x, "e4m3", "paper")


def test_dequantize_overflow_is_an_error():
    x = np.array([np.finfo(np.float32).max], np.float32)
    c, k = quantize(x, "rf8")  # rounds up to 2^128: not a float32
    assert encode(np.ldexp(x, -int(k)), "rf8")[0] == c[0]
    with pytest.raises(ValueError, match="overflow float32"):
        dequantize(c, k, "rf8")
