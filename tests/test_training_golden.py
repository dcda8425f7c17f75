"""The torch emulation against the Numba golden model (bit for bit, counted)."""

import numpy as np
import pytest
import torch

import rf8sim.golden as G
from rf8sim import formats as F
from rf8sim.training import decode, dequantize, encode, fake_quant, quantize
from rf8sim.training.gemm import GemmError
from rf8sim.training.sweep import MODES, compare_patterns, sweep


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_ten_million_random_float32_all_modes():
    """>= 10**7 random float32 per mode: random bit patterns and in-range spreads, chunked."""
    rng = np.random.default_rng(2026)
    total = {m: 0 for m in MODES}
    for chunk in range(5):
        n = 1 << 21
        bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
        spread = (rng.standard_normal(n) * np.exp2(rng.uniform(-24, 20, n))).astype(np.float32)
        allbits = np.concatenate([bits, spread.view(np.uint32)])
        for m in MODES:
            cnt, bad = compare_patterns(allbits, *m)
            assert bad == 0, (m, chunk, bad)
            total[m] += cnt
    assert all(v >= 10**7 * 0.99 for v in total.values()), total


@pytest.mark.parametrize("gran,shape", [("tensor", (300, 77)), ("channel", (64, 3, 33)), ("ceil", (50, 100)),
                                        ("block", (7, 5, 32)), ("mx", (50, 100)), ("mx", (7, 5, 32))])
@pytest.mark.parametrize("fmt,rounding", [(m[0], m[1]) for m in MODES if m[2]])
def test_quantize_dequantize_match_golden(fmt, rounding, gran, shape):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(shape, generator=g) * torch.exp2(torch.randint(-30, 30, shape[:1], generator=g).float()
                                                       ).reshape((-1,) + (1,) * (len(shape) - 1))
    c, k = quantize(x, fmt, rounding, gran, 32)
    gc, gk = G.quantize(x.numpy(), fmt, rounding, gran, 32)
    assert np.array_equal(c.numpy(), gc) and np.array_equal(k.numpy(), gk) and gk.dtype == np.int8
    gd = G.dequantize(gc, gk, fmt, gran, 32)
    assert np.array_equal(dequantize(c, k, fmt, gran, 32).numpy(), gd)
    assert np.array_equal(fake_quant(x, fmt, rounding, gran, 32).numpy(), gd)


@pytest.mark.parametrize("fmt", F.names(code_bits=8))
def test_mx_nonfinite_blocks_match_golden(fmt):
    """OCP MX: a block with NaN or +-Inf gets the NaN scale (-128) and zero codes; all-zero blocks -127."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(9, 100, generator=g) * torch.exp2(torch.randint(-60, 60, (9, 1), generator=g).float())
    x[0, 5], x[1, 70], x[2, 99], x[3, :] = float("nan"), float("inf"), -float("inf"), 0.0
    c, k = quantize(x, fmt, "nearest", "mx", 32)
    gc, gk = G.quantize(x.numpy(), fmt, "nearest", "mx", 32)
    assert np.array_equal(c.numpy(), gc) and np.array_equal(k.numpy(), gk)
    assert int((gk == -128).sum()) == 3 and int((gk == -127).sum()) >= 4
    a, b = dequantize(c, k, fmt, "mx", 32).numpy(), G.dequantize(gc, gk, fmt, "mx", 32)
    assert np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(a[~np.isnan(a)], b[~np.isnan(b)])
    assert int(np.isnan(a).sum()) == 32 + 32 + 4


@pytest.mark.parametrize("fmt", F.names(code_bits=8))
def test_decode_all_codes_match_golden(fmt):
    codes = np.arange(256, dtype=np.uint8)
    a = decode(torch.from_numpy(codes), fmt).numpy()
    b = G.decode(codes, fmt)
    assert np.array_equal(a.view(np.uint32)[~np.isnan(a)], b.view(np.uint32)[~np.isnan(b)])
    assert np.array_equal(np.isnan(a), np.isnan(b))


def _vectors():
    return G.list_vectors()  # checked in under golden/: missing vectors are a failure


def _wide_trace_matches(v, a, w, clear, spec, name) -> int:
    """A MAC trace with a > 62-bit accumulator, from torch's decoded values in exact Python integers."""
    from fractions import Fraction

    va = [Fraction(float(t)) if np.isfinite(t) else None for t in decode(torch.arange(256, dtype=torch.uint8),
                                                                             v["a_fmt"]).tolist()]
    vw = [Fraction(float(t)) if np.isfinite(t) else None for t in decode(torch.arange(256, dtype=torch.uint8),
                                                                             v["w_fmt"]).tolist()]
    lo, hi = -(1 << (spec.width - 1)), (1 << (spec.width - 1)) - 1
    acc = ovf = inv = 0
    for i in range(len(clear)):
        if clear[i]:
            acc, ovf, inv = 0, False, False
        x, y = va[int(a[i])], vw[int(w[i])]
        if x is None or y is None:
            inv = True
        else:
            p = x * y * (1 << spec.frac_bits)
            acc += p.numerator // p.denominator  # floor: the contract's alignment of a product
            if not lo <= acc <= hi:
                acc, ovf = min(max(acc, lo), hi), True
        assert (acc, ovf, inv) == (int(v["acc"][i]), bool(v["overflow"][i]), bool(v["invalid"][i])), (name, i)
    return len(clear)


def test_golden_vectors_encode_tables_and_mac_traces():
    """Every checked-in golden vector the torch side can reproduce: encodings of every format and
    rounding (saturating and not), the 256-entry value tables, and lanes=1 MAC traces (each
    clear-to-clear segment is one dot product of the torch GEMM)."""
    from rf8sim.golden.accspec import AccSpec
    from rf8sim.training.gemm import gemm

    from rf8sim.golden import vectors as V

    # the torch quantizer's 8-bit formats; the 16-bit and MX vectors are checked in test_golden_vectors
    names = [n for n in _vectors() if not n.startswith("mx_")
             and not any(n == f"{kind}_{f}" for kind in ("encode", "table") for f in V.FORMATS16)]
    counts = {"encode": 0, "table": 0, "mac": 0, "mac_wide": 0}
    for name in names:
        v = G.load_vectors(name)
        if name.startswith("encode_"):
            fmt = name[len("encode_"):]
            x = torch.from_numpy(v["x"])
            for key, arr in v.items():
                if not key.startswith("codes_"):
                    continue
                rnd = key[len("codes_"):]
                sat = not rnd.endswith("_nonsat")
                rnd = rnd.replace("_nonsat", "")
                got = encode(x, fmt, rnd, sat).numpy()
                assert np.array_equal(got, arr), (name, key)
                counts["encode"] += arr.size
        elif name.startswith("table_"):
            fmt = name[len("table_"):]
            got = decode(torch.arange(256, dtype=torch.uint8), fmt).numpy()
            assert np.array_equal(got.view(np.uint32), v["bits"].astype(np.uint32)), name
            counts["table"] += 256
        elif name.startswith("mac_") and int(v["lanes"]) == 1:
            spec = AccSpec(int(v["frac_bits"]), int(v["width"]))
            a, w, clear = v["a"][:, 0], v["w"][:, 0], v["clear"]
            acc = np.asarray([int(t) for t in v["acc"]], dtype=object)
            if spec.width > 62:
                # the torch GEMM refuses accumulators wider than 62 bits (clearly, see below);
                # the trace is still compared: torch's decoded values, accumulated in Python ints
                counts["mac_wide"] += _wide_trace_matches(v, a, w, clear, spec, name)
                with pytest.raises(GemmError, match="62 bits"):
                    gemm(torch.from_numpy(a[None, :4].copy()), torch.from_numpy(w[None, :4].copy()),
                         v["a_fmt"], v["w_fmt"], spec)
                continue
            starts = list(np.flatnonzero(clear)) + [len(clear)]
            if starts[0] != 0:
                starts = [0] + starts
            for s0, s1 in zip(starts[:-1], starts[1:]):
                if s1 <= s0:
                    continue
                r = gemm(torch.from_numpy(a[None, s0:s1].copy()), torch.from_numpy(w[None, s0:s1].copy()),
                         v["a_fmt"], v["w_fmt"], spec)
                assert int(r.acc[0, 0]) == int(acc[s1 - 1]), (name, s0)
                assert bool(r.overflow[0, 0]) == bool(v["overflow"][s1 - 1])
                assert bool(r.invalid[0, 0]) == bool(v["invalid"][s1 - 1])
                counts["mac"] += s1 - s0
    assert counts["encode"] > 10000 and counts["mac"] > 10000, counts
    assert counts["mac_wide"] == 3000, counts  # mac_e5m2_e5m2_exact_l1: a 75-bit accumulator
    if any(n.startswith("table_") for n in names):
        assert counts["table"] >= 4 * 256


@pytest.mark.slow
def test_all_float32_patterns_match_golden():
    rows = sweep(chunk_bits=24, progress=False)
    for r in rows:
        assert r["mismatches"] == 0, r
        assert r["compared"] >= (1 << 32) - (1 << 24) * 2, r  # NaNs skipped for rf8/int8
