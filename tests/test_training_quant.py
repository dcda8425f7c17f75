"""rf8sim.training.quant against independent references (numpy/Fractions, ml_dtypes, torch float8)."""


import ml_dtypes
import numpy as np
import pytest
import torch

from oracles import training as R
from rf8sim import formats as F
from rf8sim.training import QuantError, decode, dequantize, encode, fake_quant, quantize, scale_exponent


pytestmark = pytest.mark.usefixtures("one_torch_thread")


ROUNDED = [("rf8", "nearest"), ("rf8", "paper"), ("rf8", "truncate"), ("e4m3", "nearest"),
           ("e5m2", "nearest"), ("int8", "nearest")]


def _random_f32(n, seed):
    """A mix: random bit patterns (every exponent) and values spread over each format's range."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**32, n // 2, dtype=np.uint64).astype(np.uint32).view(np.float32)
    bits = bits[np.isfinite(bits)]
    spread = (rng.standard_normal(n - n // 2) * np.exp2(rng.uniform(-20, 18, n - n // 2))).astype(np.float32)
    return np.concatenate([bits, spread])


def _ref(x, fmt, rounding, saturate=True):
    if fmt == "int8":
        return R.ref_int8(x)
    if rounding == "nearest":
        return R.ref_nearest(x, fmt, saturate)
    return R.ref_residual(x, fmt, rounding)


@pytest.mark.parametrize("fmt,rounding", ROUNDED)
def test_encode_matches_reference(fmt, rounding):
    n = 20_000 if rounding != "nearest" or fmt == "int8" else 200_000
    x = np.concatenate([_random_f32(n, 1), R.boundary_values(fmt)])
    got = encode(torch.from_numpy(x), fmt, rounding).numpy()
    want = _ref(x, fmt, rounding)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (fmt, rounding, x[bad[:5]], got[bad[:5]], want[bad[:5]])
    assert x.size > n // 2


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
@pytest.mark.parametrize("saturate", [True, False])
def test_float8_against_ml_dtypes(fmt, saturate):
    """4M random float32 bit patterns (NaN/Inf included) vs ml_dtypes' OCP casts."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2**32, 1 << 22, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = np.concatenate([x, R.boundary_values(fmt)])
    dt = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2}[fmt]
    f = F.get(fmt)
    xin = np.clip(x, -f.max, f.max) if saturate else x  # ml_dtypes never saturates; NaN survives clip
    with np.errstate(all="ignore"):
        want = xin.astype(dt).view(np.uint8)
    want = f.canonical[want]  # NaNs -> canonical NaN code
    got = encode(torch.from_numpy(x), fmt, saturate=saturate).numpy()
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (x[bad[:5]], got[bad[:5]], want[bad[:5]])
    assert np.isnan(x).sum() > 1000 and got.size > 4_000_000


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
def test_decode_matches_torch_float8(fmt):
    codes = torch.arange(256, dtype=torch.uint8)
    dt = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}[fmt]
    want = codes.view(dt).float()
    got = decode(codes, fmt)
    same = (got == want) | (torch.isnan(got) & torch.isnan(want))
    assert int(same.sum()) == 256


@pytest.mark.parametrize("fmt", F.names(code_bits=8))
def test_decode_table_and_encode_roundtrip(fmt):
    f = F.get(fmt)
    codes = torch.arange(256, dtype=torch.uint8)
    v = decode(codes, f).numpy().astype(np.float64)
    fin = f.finite
    assert np.array_equal(v[fin], f.values[fin])
    # every finite value encodes to its canonical code (duplicates collapse)
    back = encode(torch.from_numpy(v[fin].astype(np.float32)), f).numpy()
    assert np.array_equal(back, f.canonical[np.flatnonzero(fin)])
    assert f.is_canonical[back].all()


def test_encode_special_inputs():
    x = torch.tensor([float("nan"), 1.0])
    with pytest.raises(QuantError, match="1 NaN value.*first at flat index 0.*no NaN"):
        encode(x, "rf8")
    with pytest.raises(QuantError, match="NaN"):
        encode(x, "int8")
    assert encode(x, "e4m3").tolist()[0] == F.get("e4m3").nan_code
    inf = torch.tensor([float("inf"), -float("inf"), -0.0, -1e-30])
    assert encode(inf, "rf8").tolist() == [0x79, 0xF9, 0x80, 0x80]
    with pytest.raises(QuantError, match="saturate=False"):
        encode(torch.tensor([385.0]), "rf8", saturate=False)
    with pytest.raises(QuantError, match="saturate=False"):
        encode(torch.tensor([127.5]), "int8", saturate=False)
    assert encode(torch.tensor([-128.4]), "int8", saturate=False).tolist() == [0x80]
    with pytest.raises(QuantError, match="rounding 'paper' is not valid for e4m3"):
        encode(torch.ones(2), "e4m3", "paper")
    with pytest.raises(F.FormatError, match="valid formats"):
        encode(torch.ones(2), "fp4")
    assert torch.equal(encode(torch.tensor([0.1, 3.0], dtype=torch.float64).float().double()),
                       encode(torch.tensor([0.1, 3.0]).float()))
    with pytest.raises(QuantError, match="1 of 2 float64 values are not exactly representable"):
        encode(torch.tensor([0.1, 3.0], dtype=torch.float64))
    with pytest.raises(QuantError, match="dtype torch.int32"):
        encode(torch.ones(2, dtype=torch.int32))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_convert_exactly(dtype):
    h = (torch.randn(5000) * 30).to(dtype)
    assert torch.equal(encode(h, "rf8"), encode(h.float(), "rf8"))
    c1, k1 = quantize(h, "e4m3", granularity="channel") if False else quantize(h, "e4m3")
    c2, k2 = quantize(h.float(), "e4m3")
    assert torch.equal(c1, c2) and torch.equal(k1, k2)


def test_scale_exponent_exact():
    rng = np.random.default_rng(3)
    cnt = 0
    for fmt in F.names(code_bits=8):
        f = F.get(fmt)
        # amax right at and next to fmt.max * 2**k, and random
        exact = [f.max * 2.0 ** k for k in range(-100, 100, 7)]
        vals = np.array(exact + list(np.abs(rng.standard_normal(200)) * 10.0 ** rng.uniform(-20, 20, 200)),
                    np.float32)
        b = vals.view(np.int32)
        vals = np.concatenate([vals, (b + 1).view(np.float32), (b - 1).view(np.float32), [0.0]]).astype(np.float32)
        got = scale_exponent(torch.from_numpy(vals), f).tolist()
        want = [R.ref_scale_exp(v, f) for v in vals.tolist()]
        assert got == want
        cnt += len(want)
    assert cnt > 2000


@pytest.mark.parametrize("gran,shape", [("tensor", (37, 19)), ("channel", (8, 3, 5)), ("ceil", (6, 70)),
                                        ("block", (3, 2, 32)), ("channel", (11,)), ("mx", (6, 70)),
                                        ("mx", (3, 2, 32))])
@pytest.mark.parametrize("fmt,rounding", ROUNDED)
def test_quantize_against_reference(fmt, rounding, gran, shape):
    g = torch.Generator().manual_seed(hash((fmt, rounding, gran, shape)) % 2**31)
    x = torch.randn(shape, generator=g) * torch.exp2(torch.randint(-6, 6, shape, generator=g).float())
    x.view(-1)[0] = 0.0
    codes, k = quantize(x, fmt, rounding, gran, block=32)
    assert codes.dtype == torch.uint8 and k.dtype == torch.int8 and codes.shape == x.shape
    # reference: per-group amax -> k -> encode(x / 2**k) with the slow encoder
    xn = x.numpy()
    if gran == "tensor":
        groups = [(np.ones(shape, bool), ())]
    elif gran == "channel":
        groups = [(np.broadcast_to(np.arange(shape[0]).reshape((-1,) + (1,) * (len(shape) - 1)) == i, shape), (i,))
                  for i in range(shape[0])]
    else:
        col = np.arange(shape[-1]) // 32
        groups = []
        for idx in np.ndindex(*shape[:-1]):
            for b in range(col.max() + 1):
                m = np.zeros(shape, bool)
                m[idx + (slice(None),)] = col == b
                groups.append((m, idx + (b,)))
    want_codes = np.zeros(shape, np.uint8)
    for m, sidx in groups:
        kk = R.ref_scale_exp(float(np.abs(xn[m]).max()), fmt, "mx" if gran == "mx" else "ceil")
        assert int(k[sidx]) == kk
        scaled = np.array([float(v) / 2.0 ** kk for v in xn[m]], np.float32)  # exact: powers of two
        if gran == "mx":  # OCP MX: the floor rule can put scaled values above max; elements saturate
            f = F.get(fmt)
            scaled = np.clip(scaled, -f.max if fmt != "int8" else -128, f.max)
        want_codes[m] = _ref(scaled, fmt, rounding)
    assert np.array_equal(codes.numpy(), want_codes)
    # dequantize == decode * 2**k exactly, and fake_quant is the same value
    dq = dequantize(codes, k, fmt, gran, 32)
    fq = fake_quant(x, fmt, rounding, gran, 32)
    assert torch.equal(dq, fq)


def test_fake_quant_straight_through_gradient():
    x = (torch.randn(64, 33) * 5).requires_grad_()
    y = fake_quant(x, "rf8", granularity="channel")
    g = torch.randn_like(y)
    y.backward(g)
    assert torch.equal(x.grad, g)
    h = (torch.randn(10) * 5).to(torch.bfloat16).requires_grad_()
    y = fake_quant(h, "e4m3")
    assert y.dtype == torch.float32
    y.sum().backward()
    assert h.grad.dtype == torch.bfloat16 and torch.equal(h.grad, torch.ones(10, dtype=torch.bfloat16))


def test_fake_quant_nonfinite_policy():
    x = torch.tensor([1.0, float("nan"), -float("inf"), 3.0, float("inf"), -0.3])
    with pytest.raises(QuantError, match="3 non-finite value.*1 NaN.*first at flat index 1"):
        fake_quant(x)
    with pytest.raises(QuantError, match="non-finite"):
        quantize(x, "e4m3")
    y = fake_quant(x, "rf8", nonfinite="propagate")
    fin = torch.isfinite(x)
    assert torch.isnan(y[1]) and y[2] == -float("inf") and y[4] == float("inf")
    # the finite entries are quantized as if the non-finite ones were absent
    assert torch.equal(y[fin], fake_quant(x[fin], "rf8"))
    with pytest.raises(QuantError, match="nonfinite='bogus' is not valid"):
        fake_quant(x, nonfinite="bogus")


def test_bad_arguments():
    with pytest.raises(QuantError, match="empty"):
        quantize(torch.empty(0, 3))
    with pytest.raises(QuantError, match="unknown granularity .row.; valid: tensor, channel, ceil, mx"):
        quantize(torch.ones(3), granularity="row")
    with pytest.raises(QuantError, match="block must be a positive integer"):
        quantize(torch.ones(3), granularity="block", block=0)
    with pytest.raises(QuantError, match="at least one axis"):
        quantize(torch.tensor(1.0), granularity="channel")
    with pytest.raises(QuantError, match="'mx' uses OCP MX blocks of 32 values, got block=16"):
        quantize(torch.ones(3, 40), granularity="mx", block=16)
    c, k = quantize(torch.tensor([1e-44, -3e-45]))  # k clamps to -127 (the E8M0 range)
    assert int(k) == -127
    scaled = torch.tensor([1e-44, -3e-45]).double() * 2.0**127  # exact, then exact in float32
    assert torch.equal(c, encode(scaled.float()))
    with pytest.raises(QuantError, match="overflow float32"):
        dequantize(torch.tensor([0x79], dtype=torch.uint8), torch.tensor(127, dtype=torch.int8))
    c, k = quantize(torch.ones(4, 8), granularity="block", block=4)
    with pytest.raises(QuantError, match="scale_exp has shape"):
        dequantize(c, k[:1])
    with pytest.raises(QuantError, match="uint8"):
        decode(torch.ones(3, dtype=torch.int32))
    assert encode(torch.empty(0)).shape == (0,)


@pytest.mark.parametrize("fmt", ["rf8", "e4m3", "e5m2"])
def test_fake_quant_fast_path_edge_scales(fmt):
    """The folded-scale hot path vs quantize + dequantize: subnormal inputs with k < 0 (fallback),
    huge amax with values that underflow after scaling, and every granularity."""
    g = torch.Generator().manual_seed(1)
    cases = [
        torch.tensor([1e-40, -3e-39, 2e-45, 1e-38, 0.0, -0.0]),            # subnormals, k < 0
        torch.cat([torch.tensor([3e38, -1e-30, 1e-38, 5e-39]), torch.randn(100, generator=g)]),  # k > 0, underflow
        torch.randn(64, 96, generator=g) * torch.exp2(torch.randint(-40, 40, (64, 1), generator=g).float()),
    ]
    n = 0
    for x in cases:
        for gran in ("tensor", "channel", "ceil", "mx"):
            if x.dim() == 1 and gran != "tensor":
                xx = x[: (x.numel() // 2) * 2].reshape(2, -1)
            else:
                xx = x
            b = 32 if gran == "mx" else 16
            want = dequantize(*quantize(xx, fmt, "nearest", gran, b), fmt, gran, b)
            got = fake_quant(xx, fmt, "nearest", gran, b)
            assert torch.equal(got.view(torch.int32), want.view(torch.int32)), (fmt, gran)
            n += xx.numel()
    assert n > 24000
