"""posit16 (an activation format) in the torch emulation: bit-exact with the golden model.

References written differently from rf8sim's tables: softposit (the posit library of the Posit
Working Group, its own C decode and rounding) on all 65,536 codes and on every rounding boundary
with its float32 neighbours; universal-dtypes' posit16 cast on 10^6 random float32.  Then the
torch quantizer, fake_quant and the float32-accumulator GEMM with posit16 activations equal the
golden model bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracles import zoo as Z

from rf8sim import formats as F
from rf8sim import golden
from rf8sim.golden import AccSpec
from rf8sim import training as T
from rf8sim.training.operands import GemmError
from rf8sim.training import quant as Q

NAR = 0x8000


def test_torch_posit16_decode_every_code_equals_softposit():
    import softposit as sp

    codes = torch.arange(1 << 16, dtype=torch.int32).to(torch.int16).view(torch.uint16)
    got = Q.decode(codes, "posit16").numpy()
    n = 0
    for c in range(1 << 16):
        if c == NAR:
            assert np.isnan(got[c])
            continue
        p = sp.posit_2(0.0, 16)
        p.fromBits(c << 16)  # posit_2 keeps a 16-bit code in the top bits of 32
        assert float(got[c]) == float(p), c
        n += 1
    assert n == 65_535 and int(np.isnan(got).sum()) == 1


def test_torch_posit16_encode_every_boundary_equals_softposit():
    import softposit as sp

    fmt = F.get("posit16")
    pts = Z.around(list(fmt.thresholds) + list(fmt.magnitudes[1:]) + [1e-40, 1e-30, 3e38])
    got = Q.encode(torch.from_numpy(pts), "posit16")
    assert got.dtype == torch.uint16
    g = got.view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(g, golden.encode(pts, "posit16"))  # torch == golden
    n = 0
    for x, c in zip(pts.tolist(), g.tolist()):  # == softposit, an independent rounding
        assert c == sp.convertDoubleToPX2(x, 16).v >> 16, x
        n += 1
    # every rounding boundary and magnitude (with both float32 neighbours, both signs) and 3 extremes
    assert n == 6 * (len(fmt.thresholds) + len(fmt.magnitudes) - 1 + 3) == 6 * (32_767 + 32_767 + 3)
    special = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan")])
    assert Q.encode(special, "posit16").view(torch.int16).numpy().view(np.uint16).tolist() == [0, 0, NAR, NAR, NAR]


def test_torch_posit16_encode_random_equals_universal():
    import universal_dtypes as ud

    x = Z.random_f32(1_000_000, 31, span=60)
    got = Q.encode(torch.from_numpy(x), "posit16").view(torch.int16).numpy().view(np.uint16)
    with np.errstate(over="ignore"):  # beyond float16 range: the cast still rounds to maxpos
        want = x.astype(ud.posit16).view(np.uint16)
    assert np.array_equal(got, want)
    assert np.array_equal(got, golden.encode(x, "posit16"))
    assert got.size == 1_000_000 and len(np.unique(got)) > 30_000  # most of the code space is hit


@pytest.mark.parametrize("granularity", ("tensor", "channel", "ceil", "mx"))
def test_torch_posit16_quantize_and_fake_quant_equal_golden(granularity):
    w = Z.random_f32(64 * 96, 32, span=20).reshape(64, 96)
    gc, gk = golden.quantize(w, "posit16", granularity=granularity)
    tc, tk = Q.quantize(torch.from_numpy(w), "posit16", granularity=granularity)
    assert tc.dtype == torch.uint16
    assert np.array_equal(gc, tc.view(torch.int16).numpy().view(np.uint16)) and np.array_equal(gk, tk.numpy())
    fq = Q.fake_quant(torch.from_numpy(w), "posit16", granularity=granularity).numpy()
    want = golden.dequantize(gc, gk, "posit16", granularity=granularity)
    assert np.array_equal(fq.view(np.int32), want.view(np.int32))


@pytest.mark.parametrize("w_fmt", ("posit8", "rf8", "e4m3", "int8"))
def test_torch_gemm_posit16_activations_equals_golden(w_fmt):
    rng = np.random.default_rng(33)
    x = (rng.standard_normal((6, 160)) * np.exp2(rng.integers(-12, 12, (6, 160)))).astype(np.float32)
    w = rng.standard_normal((7, 160)).astype(np.float32)
    a = golden.encode(x, "posit16")
    wc, k = golden.quantize(w, w_fmt, granularity="channel")
    acc = AccSpec.parse("fp32")
    r = golden.gemm(a, wc, "posit16", w_fmt, acc, w_scale_exp=k, w_granularity="channel")
    ta = Q.encode(torch.from_numpy(x), "posit16")
    t = T.gemm(ta, torch.from_numpy(wc), "posit16", w_fmt, acc, w_scale_exp=torch.from_numpy(k),
                   w_granularity="channel")
    assert np.asarray(r.acc).dtype == np.uint32  # the float32 accumulator's bit patterns
    gb = np.asarray(r.acc)
    assert np.array_equal(t.bits.numpy().astype(np.uint32), gb)
    assert gb.size == 42 and len(np.unique(gb)) == 42


def test_torch_posit16_bad_input():
    with pytest.raises(Q.QuantError, match=r"posit16 codes must be a torch.uint16 tensor, got torch.uint8"):
        Q.decode(torch.zeros(3, dtype=torch.uint8), "posit16")
    with pytest.raises(Q.QuantError, match="posits never overflow"):
        Q.encode(torch.ones(2), "posit16", saturate=False)
    with pytest.raises(Q.QuantError, match=r"bf16 has 16-bit codes.*16-bit posits \(posit16\)"):
        Q.scale_exponent(torch.ones(2), "bf16")
    with pytest.raises(GemmError, match="a_codes must be a torch.uint16 tensor of posit16 codes"):
        T.gemm(torch.zeros((1, 4), dtype=torch.uint8), torch.zeros((1, 4), dtype=torch.uint8), "posit16",
                   "rf8", AccSpec.parse("fp32"))
