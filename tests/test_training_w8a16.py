"""rf8sim.training.w8a16 (bf16/fp16 activations, fp32 and aligned:K:M accumulators) against
independent references: ml_dtypes / numpy float16 casts and the Fraction model in w8a16_ref."""

import ml_dtypes
import numpy as np
import pytest
import torch

from oracles import w8a16 as R
from rf8sim import formats as F
from rf8sim.training import quantize
from rf8sim.training.gemm import GemmError
from rf8sim.training.quant import QuantError
from rf8sim.accspec import AccSpec
from rf8sim.training import floatcodes as FC
from rf8sim.training.w8a16 import gemm_float

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NP16 = {"bf16": ml_dtypes.bfloat16, "fp16": np.float16}


def _ties_and_bounds(fmt):
    """float32 patterns exactly at every tie of the 16-bit format (and 1 ulp around) over all exponents."""
    drop = {"bf16": 16, "fp16": 13}[fmt]
    rng = np.random.default_rng(5)
    hi = rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32)
    tie = (hi & ~np.uint32((1 << drop) - 1)) | np.uint32(1 << (drop - 1))
    pts = np.concatenate([tie, tie + 1, tie - 1])
    edges = np.array([0x7F7F7FFF, 0x7F7F8000, 0x7F7F8001, 0x477FEFFF, 0x477FF000, 0x477FF001, 0x33000000,
                      0x33000001, 0x7F800000, 0x00000001, 0x00800000], np.uint32)
    return np.concatenate([pts, edges, edges | np.uint32(0x80000000)])


@pytest.mark.parametrize("fmt", ["bf16", "fp16"])
@pytest.mark.parametrize("saturate", [False, True])
def test_encode_16bit_floats_matches_casts(fmt, saturate):
    """2^21 random float32 bit patterns (NaN/Inf included) + every kind of tie vs ml_dtypes / numpy."""
    rng = np.random.default_rng(1)
    bits = np.concatenate([rng.integers(0, 2**32, 1 << 21, dtype=np.uint64).astype(np.uint32), _ties_and_bounds(fmt)])
    x = bits.view(np.float32)
    got = FC.encode(torch.from_numpy(x.copy()), fmt, saturate).view(torch.int16).numpy().view(np.uint16)
    mx = float(ml_dtypes.finfo(NP16[fmt]).max)
    xin = np.where(np.isnan(x), x, np.clip(x, -mx, mx)) if saturate else x
    with np.errstate(all="ignore"):
        want = xin.astype(NP16[fmt]).view(np.uint16)
    nan = np.isnan(x)
    assert bool((got[nan] == {"bf16": 0x7FC0, "fp16": 0x7E00}[fmt]).all())
    assert np.array_equal(got[~nan], want[~nan])
    assert nan.sum() > 1000 and got.size > 2_000_000


@pytest.mark.parametrize("fmt", ["bf16", "fp16"])
def test_encode_16bit_floats_matches_fraction_reference(fmt):
    bits = _ties_and_bounds(fmt)[::6]
    got = FC.encode(torch.from_numpy(bits.view(np.float32).copy()), fmt).view(torch.int16).numpy().view(np.uint16)
    want = np.array([R.encode16_ref(int(b), fmt) for b in bits], np.uint16)
    assert np.array_equal(got, want) and bits.size > 10000


@pytest.mark.parametrize("fmt", ["bf16", "fp16"])
def test_decode_16bit_floats_all_codes(fmt):
    codes = np.arange(65536, dtype=np.uint16)
    got = FC.decode(torch.from_numpy(codes.astype(np.int32)).to(torch.int16).view(torch.uint16), fmt).numpy()
    want = codes.view(NP16[fmt]).astype(np.float32)
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert int(same.sum()) == 65536


def test_fake_quant_16bit_floats_ste():
    x = (torch.randn(100) * 1e3).requires_grad_()
    y = FC.fake_quant(x, "bf16")
    assert torch.equal(y, FC.decode(FC.encode(x.detach(), "bf16"), "bf16"))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(100))


def _a_codes(fmt, M, K, seed):
    """Activation codes: random finite codes (every exponent), Gaussian values, subnormals,
    exact cancellations (pairs a, -a against equal weights) and huge values (overflow)."""
    rng = np.random.default_rng(seed)
    eb, mb, _ = R.F16[fmt]
    top = ((1 << eb) - 1) << mb
    c = np.zeros((M, K), np.int64)
    c[0] = rng.integers(0, 1 << 16, K)
    c[0] = np.where((c[0] & top) == top, c[0] & ~top, c[0])  # finite only
    c[1] = FC.encode(torch.randn(K, generator=torch.Generator().manual_seed(seed)), fmt).to(torch.int32).numpy() \
        if False else np.asarray(torch.randn(K, generator=torch.Generator().manual_seed(seed)).to(
            {"bf16": torch.bfloat16, "fp16": torch.float16}[fmt]).view(torch.int16).numpy(), np.int64) & 0xFFFF
    c[2] = rng.integers(0, 1 << mb, K) | (rng.integers(0, 2, K) << 15)  # subnormals and signed zeros
    c[3] = c[1]
    c[3, 1::2] = c[3, 0::2] ^ 0x8000
    c[4] = (((1 << eb) - 2) << mb) | rng.integers(0, 1 << mb, K) | (rng.integers(0, 2, K) << 15)  # huge
    c[5] = np.where(rng.random(K) < 0.5, c[1], c[2])
    return c.astype(np.uint16)


def _w(w_fmt, N, K, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(N, K, generator=g) * torch.exp2(torch.randint(-8, 8, (N, 1), generator=g).float())
    w[:, 1::2] = w[:, 0::2]  # pairs, so that row 3 of the activations cancels exactly
    if w_fmt == "bf16":
        c = FC.encode(w, "bf16")
        return c, torch.zeros(N, dtype=torch.int8)
    return quantize(w, w_fmt, "nearest", "channel")


def _compare(a_fmt, w_fmt, acc, ref, seed, K=64, N=4):
    ac = _a_codes(a_fmt, 6, K, seed)
    wc, wk = _w(w_fmt, N, K, seed + 1)
    if w_fmt != "bf16":
        # positive scales on one channel push row 4 (huge activations) past float32: overflow
        wk[0] = 100
    res = gemm_float(torch.from_numpy(ac.astype(np.int32)).to(torch.int16).view(torch.uint16), wc, a_fmt, w_fmt, acc,
                 wk, "channel")
    wcn = wc.view(torch.int16).to(torch.int32).numpy() & 0xFFFF if w_fmt == "bf16" else wc.numpy()
    n = 0
    for m in range(ac.shape[0]):
        for j in range(N):
            b, o, i = ref(ac[m], wcn[j], int(wk[j]))
            assert int(res.bits[m, j]) == b, (a_fmt, w_fmt, acc, m, j, hex(int(res.bits[m, j])), hex(b))
            assert bool(res.overflow[m, j]) == o and bool(res.invalid[m, j]) == i, (m, j)
            n += 1
    return n, int(res.overflow.sum())


W_FMTS = ["rf8", "e4m3", "e5m2", "int8", "bf16"]


@pytest.mark.parametrize("a_fmt", ["bf16", "fp16"])
@pytest.mark.parametrize("w_fmt", W_FMTS)
def test_fp32_chain_matches_fraction_reference(a_fmt, w_fmt):
    def ref(a, w, k):
        return R.fp32_dot(a, w, a_fmt, w_fmt, [k] * len(a))

    n, ovf = _compare(a_fmt, w_fmt, "fp32", ref, seed=11)
    assert n == 24 and (ovf > 0 or a_fmt == "fp16" or w_fmt == "bf16")


@pytest.mark.parametrize("acc", ["aligned:32:16", "aligned:8:8", "aligned:64:24", "aligned:4:2"])
@pytest.mark.parametrize("w_fmt", ["rf8", "e4m3", "int8"])
def test_aligned_matches_fraction_reference(acc, w_fmt):
    spec = AccSpec.parse(acc)

    def ref(a, w, k):
        return R.aligned_dot(a, w, "bf16", w_fmt, [k] * len(a), spec.block, spec.align_bits)

    n, _ = _compare("bf16", w_fmt, acc, ref, seed=21)
    assert n == 24


def test_specials_match_reference():
    """NaN and Inf activations/weights, Inf * 0, Inf - Inf: results, canonical NaN and flags."""
    K = 16
    ac = _a_codes("bf16", 6, K, 3)
    ac[0, 3] = 0x7F80          # +Inf
    ac[1, 5] = 0xFFC1          # NaN with a payload
    ac[2, 0], ac[2, 9] = 0x7F80, 0xFF80  # Inf - Inf
    ac[5, :] = 0
    ac[5, 2] = 0x7F80          # Inf * (maybe zero) weights
    wc, wk = _w("e4m3", 3, K, 4)
    wc[1, 7] = 0x7F            # e4m3 NaN weight
    wc[2, :] = 0
    a_t = torch.from_numpy(ac.astype(np.int32)).to(torch.int16).view(torch.uint16)
    n = 0
    for acc, ref in (("fp32", lambda a, w, k: R.fp32_dot(a, w, "bf16", "e4m3", [k] * K)),
                     ("aligned:8:12", lambda a, w, k: R.aligned_dot(a, w, "bf16", "e4m3", [k] * K, 8, 12))):
        res = gemm_float(a_t, wc, "bf16", "e4m3", acc, wk, "channel")
        for m in range(6):
            for j in range(3):
                b, o, i = ref(ac[m], wc[j].numpy(), int(wk[j]))
                assert (int(res.bits[m, j]), bool(res.overflow[m, j]), bool(res.invalid[m, j])) == (b, o, i), \
                    (acc, m, j)
                n += 1
        assert int(res.invalid.sum()) >= 9 and bool((res.bits[res.invalid] == 0x7FC00000).all())
    assert n == 36


def test_bad_inputs():
    a = FC.encode(torch.randn(2, 8), "bf16")
    w, k = quantize(torch.randn(3, 8), "rf8", granularity="channel")
    with pytest.raises(QuantError, match="torch.uint16 .* got torch.uint8 .8-bit codes belong"):
        gemm_float(w, w, "bf16", "rf8", "fp32", k, "channel")
    with pytest.raises(GemmError, match="K=3 does not divide the row length 8"):
        gemm_float(a, w, "bf16", "rf8", "aligned:3:16", k, "channel")
    with pytest.raises(GemmError, match="M <= 24 .*got M=25"):
        gemm_float(a, w, "bf16", "rf8", "aligned:4:25", k, "channel")
    with pytest.raises(GemmError, match="valid: fp32, aligned:K:M"):
        gemm_float(a, w, "bf16", "rf8", "24:8", k, "channel")
    with pytest.raises(GemmError, match="a_codes must be a torch.uint8 tensor of e4m3 codes"):
        gemm_float(a, w, "e4m3", "rf8", "fp32", k, "channel")  # 16-bit codes for an 8-bit format
    with pytest.raises(F.FormatError, match="unknown format 'fp9'"):
        gemm_float(a, w, "fp9", "rf8", "fp32", k, "channel")
    with pytest.raises(QuantError, match="'e4m3' is not a 16-bit float format"):
        FC.encode(torch.ones(2), "e4m3")
    with pytest.raises(GemmError, match="w_scale_exp must hold integers .* at flat index 0"):
        gemm_float(a, w, "bf16", "rf8", "fp32", k.float() + 0.5, "channel")
    with pytest.raises(GemmError, match="w_scale_exp has shape .2,.; granularity 'channel' with 3x8 codes needs .3,."):
        gemm_float(a, w, "bf16", "rf8", "fp32", k[:2], "channel")
    with pytest.raises(GemmError, match="w_codes must be a torch.uint8 tensor of rf8 codes"):
        gemm_float(a, a, "bf16", "rf8", "fp32", k, "channel")


def test_aligned_block_sum_needs_round_to_odd():
    """A block sum whose exact value is a float32 midpoint of acc plus 2**-31: a plain float64 sum
    would round to the midpoint and then to even (2**32); the contract's one rounding gives 2**32 + 2**9.
    (The fp32 chain cannot hit this: a product has <= 19 significant bits, so acc + p is exact in
    float64 whenever it matters.)"""
    a = torch.tensor([[2.0**24, 0.0, 1.0, 2.0**-22]])
    w = torch.tensor([[256.0, 0.0, 256.0, 2.0**-9]])
    wc, wk = quantize(w, "e4m3", "nearest", "tensor")
    assert int(wk) == 0
    res = gemm_float(FC.encode(a, "bf16"), wc, "bf16", "e4m3", "aligned:2:24", wk, "tensor")
    want = R.aligned_dot(FC.encode(a, "bf16").view(torch.int16).to(torch.int32)[0].numpy() & 0xFFFF,
                         wc[0].numpy(), "bf16", "e4m3", [0] * 4, 2, 24)
    assert float(res.out[0, 0]) == 2.0**32 + 2.0**9 and int(res.bits[0, 0]) == want[0]


@pytest.mark.parametrize("acc", ["fp32", "aligned:32:16", "aligned:8:6"])
@pytest.mark.parametrize("a_fmt,w_fmt", [("e4m3", "rf8"), ("rf8", "e4m3"), ("e5m2", "int8"), ("e4m3", "e5m2")])
def test_gemm_matches_golden_8bit_activations(acc, a_fmt, w_fmt):
    """The same accumulators with 8-bit activations vs rf8sim.golden.gemm (Numba, written independently):
    real-valued layers with channel scales, one row of huge values (overflow), exact cancellations."""
    import rf8sim.golden as G

    g = torch.Generator().manual_seed(5)
    M, N, K = 7, 9, 64
    x = torch.randn(M, K, generator=g) * torch.exp2(torch.randint(-10, 10, (M, 1), generator=g).float())
    x[1, 1::2] = -x[1, 0::2]
    w = torch.randn(N, K, generator=g) / 8
    w[:, 1::2] = w[:, 0::2]
    ac, ak = quantize(x, a_fmt, "nearest", "channel")
    wc, wk = quantize(w, w_fmt, "nearest", "channel")
    ak[2] = 120
    wk[3] = 120  # row 2 x column 3 exceeds float32: overflow
    t = gemm_float(ac, wc, a_fmt, w_fmt, acc, wk, "channel", a_scale_exp=ak, a_granularity="channel")
    r = G.gemm(ac.numpy(), wc.numpy(), a_fmt, w_fmt, acc, ak.numpy(), wk.numpy(), "channel", "channel",
               specials="propagate")
    assert np.array_equal(t.bits.numpy().astype(np.uint32), np.asarray(r.acc, np.uint32))
    assert np.array_equal(t.overflow.numpy(), r.overflow) and np.array_equal(t.invalid.numpy(), r.invalid)
    assert int(t.overflow.sum()) >= 1 and t.bits.numel() == M * N


@pytest.mark.parametrize("acc", ["fp32", "aligned:32:16", "aligned:16:9"])
@pytest.mark.parametrize("a_fmt,w_fmt", [("bf16", "rf8"), ("bf16", "e4m3"), ("fp16", "int8"), ("bf16", "bf16"),
                                         ("fp16", "e5m2")])
def test_float_accumulator_gemm_matches_golden(acc, a_fmt, w_fmt):
    """16-bit activations (every exponent, subnormals, cancellations, huge values, a NaN and an Inf
    row) vs rf8sim.golden.gemm, bits and flags."""
    import rf8sim.golden as G

    K = 64
    ac = _a_codes(a_fmt, 6, K, 9)
    extra = ac[1:3].copy()
    extra[0, 7] = {"bf16": 0x7FC1, "fp16": 0x7E01}[a_fmt]
    extra[1, 40] = {"bf16": 0xFF80, "fp16": 0xFC00}[a_fmt]
    ac = np.concatenate([ac, extra])
    wc, wk = _w(w_fmt, 5, K, 10)
    if w_fmt != "bf16":
        wk[0] = 100
    a_t = torch.from_numpy(ac.astype(np.int32)).to(torch.int16).view(torch.uint16)
    t = gemm_float(a_t, wc, a_fmt, w_fmt, acc, wk, "channel")
    wn = wc.view(torch.int16).numpy().view(np.uint16) if w_fmt == "bf16" else wc.numpy()
    r = G.gemm(ac, wn, a_fmt, w_fmt, acc, None, wk.numpy(), "tensor", "channel", specials="propagate")
    assert np.array_equal(t.bits.numpy().astype(np.uint32), np.asarray(r.acc, np.uint32))
    assert np.array_equal(t.overflow.numpy(), r.overflow) and np.array_equal(t.invalid.numpy(), r.invalid)
    assert bool(t.invalid[6].all()) and bool(torch.isinf(t.out[7]).any() | t.invalid[7].any()) and t.bits.numel() == 40


@pytest.mark.parametrize("fmt", ["bf16", "fp16"])
def test_encode_16bit_floats_matches_golden_encode(fmt):
    """torch's cast == the golden model's bf16/fp16 encode (spec), 2^20 random patterns + every tie."""
    import rf8sim.golden as G

    rng = np.random.default_rng(4)
    bits = np.concatenate([rng.integers(0, 2**32, 1 << 20, dtype=np.uint64).astype(np.uint32), _ties_and_bounds(fmt)])
    x = bits.view(np.float32)
    for sat in (False, True):
        got = FC.encode(torch.from_numpy(x.copy()), fmt, sat).view(torch.int16).numpy().view(np.uint16)
        with np.errstate(all="ignore"):
            want = np.asarray(G.encode(x, fmt, saturate=sat))
        assert want.dtype == np.uint16 and np.array_equal(got, want), (fmt, sat)
    assert got.size > 1_000_000


def test_training_gemm_dispatches_float_accumulators():
    from rf8sim.training import gemm

    a = FC.encode(torch.randn(3, 64), "bf16")
    wc, wk = quantize(torch.randn(5, 64), "rf8", "nearest", "channel")
    for acc in ("fp32", "aligned:32:16"):
        r = gemm(a, wc, "bf16", "rf8", acc, w_scale_exp=wk, w_granularity="channel")
        want = gemm_float(a, wc, "bf16", "rf8", acc, wk, "channel")
        assert torch.equal(r.bits, want.bits) and r.bits.numel() == 15


def test_front_doors_take_16bit_floats_and_old_names_warn():
    """rf8sim.training.encode / decode / fake_quant / quantize / gemm on bf16 and fp16 are the 16-bit
    helpers (same bits); the *16 names still work for one release and warn."""
    import rf8sim.training as T
    from rf8sim.training import w8a16

    x = torch.randn(4, 64, generator=torch.Generator().manual_seed(3)) * 1e3
    x[0, :3] = torch.tensor([float("nan"), float("inf"), 1e39])
    n = 0
    for fmt in ("bf16", "fp16"):
        c = FC.encode(x, fmt)
        for got in (T.encode(x, fmt), T.quantize(x, fmt)[0]):
            assert got.dtype == torch.uint16 and torch.equal(got.view(torch.int16), c.view(torch.int16))
            n += got.numel()
        assert torch.equal(T.encode(x, fmt, saturate=True).view(torch.int16), FC.encode(x, fmt, True).view(torch.int16))
        assert int(T.quantize(x, fmt, granularity="channel")[1].abs().sum()) == 0
        assert torch.equal(T.decode(c, fmt).view(torch.int32), FC.decode(c, fmt).view(torch.int32))
        assert torch.equal(T.fake_quant(x, fmt).view(torch.int32), FC.fake_quant(x, fmt).view(torch.int32))
        n += 3 * x.numel()
    assert n == 2 * 5 * 256
    wc, wk = quantize(torch.randn(8, 64), "rf8", "nearest", "channel")
    a = FC.encode(x, "bf16")
    want = gemm_float(a, wc, "bf16", "rf8", "fp32", wk, "channel")
    with pytest.warns(DeprecationWarning, match="gemm16 is deprecated; use rf8sim.training.gemm"):
        old = T.gemm16(a, wc, "bf16", "rf8", "fp32", wk, "channel")
    assert torch.equal(old.bits, want.bits)
    for old_name, args in (("encode16", (x, "bf16")), ("decode16", (a, "bf16")), ("fake_quant16", (x, "bf16"))):
        with pytest.warns(DeprecationWarning, match=f"{old_name} is deprecated"):
            getattr(w8a16, old_name)(*args)
