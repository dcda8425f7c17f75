"""The torch integer GEMM emulation against rf8sim.golden.gemm and Python integers; verify-layer."""

import numpy as np
import pytest
import toolcheck
import torch

import rf8sim.golden as G
from rf8sim import formats as F
from rf8sim.golden.accspec import AccSpec
from rf8sim.training.gemm import GemmError, gemm, to_float32


pytestmark = pytest.mark.usefixtures("one_torch_thread")


PAIRS = [("rf8", "rf8"), ("e4m3", "e4m3"), ("e5m2", "e5m2"), ("int8", "int8"), ("rf8", "int8"), ("e4m3", "rf8")]


def _py_gemm(a, w, af, wf, acc, sa, sw):
    """Independent reference: Python ints, per-(m,k) / (n,k) scale arrays."""
    af, wf = F.get(af), F.get(wf)
    M, K = a.shape
    N = w.shape[0]
    out = np.zeros((M, N), object)
    ovf = np.zeros((M, N), bool)
    inv = np.zeros((M, N), bool)
    for m in range(M):
        for n in range(N):
            t = 0
            for k in range(K):
                ca, cw = int(a[m, k]), int(w[n, k])
                if af.special[ca] or wf.special[cw]:
                    inv[m, n] = True
                    continue
                sig = int(af.sig[ca]) * int(wf.sig[cw])
                e = int(af.exp[ca]) + int(wf.exp[cw]) + int(sa[m, k]) + int(sw[n, k])
                t += acc.align(int(af.sign[ca]) ^ int(wf.sign[cw]), sig, e)
                t, o = acc.saturate(t)
                ovf[m, n] |= o
            out[m, n] = t
    return out, ovf, inv


@pytest.mark.parametrize("af,wf", PAIRS)
def test_gemm_matches_golden_and_python(af, wf):
    rng = np.random.default_rng(hash((af, wf)) % 2**32)
    compared = 0
    for spec in ("exact:48", "6:18", "24:40", "0:10", "40:62"):
        acc = AccSpec.parse(spec, af, wf)
        if acc.width > 62:
            with pytest.raises(GemmError, match="up to 62 bits"):
                gemm(torch.zeros(1, 1, dtype=torch.uint8), torch.zeros(1, 1, dtype=torch.uint8), af, wf, acc)
            continue
        for gran_a, gran_w in (("tensor", "tensor"), ("channel", "block"), ("block", "channel")):
            M, N, K = 6, 5, 48
            a = rng.integers(0, 256, (M, K), dtype=np.uint8)
            w = rng.integers(0, 256, (N, K), dtype=np.uint8)
            ka = {"tensor": np.array(rng.integers(-4, 4), np.int8), "channel": rng.integers(-6, 6, M).astype(np.int8),
                  "block": rng.integers(-6, 6, (M, 3)).astype(np.int8)}[gran_a]
            kw = {"tensor": np.array(rng.integers(-4, 4), np.int8), "channel": rng.integers(-6, 6, N).astype(np.int8),
                  "block": rng.integers(-6, 6, (N, 3)).astype(np.int8)}[gran_w]
            g = G.gemm(a, w, af, wf, acc, ka, kw, gran_a, gran_w, 16)
            t = gemm(torch.from_numpy(a), torch.from_numpy(w), af, wf, acc, torch.from_numpy(ka), torch.from_numpy(kw),
                     gran_a, gran_w, 16, chunk=7)
            assert np.array_equal(t.acc.numpy(), np.asarray(g.acc, np.int64))
            assert np.array_equal(t.overflow.numpy(), g.overflow) and np.array_equal(t.invalid.numpy(), g.invalid)
            f_t = to_float32(t.acc, acc.frac_bits).numpy().view(np.uint32)
            assert np.array_equal(f_t, G.to_float32(g.acc, acc.frac_bits).view(np.uint32))
            compared += M * N
            if gran_a == "channel":  # independent Python-int reference on one configuration per spec
                sa = np.repeat(ka.astype(np.int64)[:, None], K, 1)
                sw = np.repeat(kw.astype(np.int64), 16, 1)[:, :K]
                r, o, i = _py_gemm(a, w, af, wf, acc, sa, sw)
                assert [int(v) for v in r.ravel()] == t.acc.reshape(-1).tolist()
                assert np.array_equal(o, t.overflow.numpy()) and np.array_equal(i, t.invalid.numpy())
    assert compared >= 4 * 3 * 30


def test_to_float32_exact_rounding():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.integers(-(2**61), 2**61, 20000), rng.integers(-(2**30), 2**30, 20000),
                        (1 << np.arange(25, 61)) + (1 << np.arange(0, 36)),  # ties
                        (1 << np.arange(25, 61)) + (1 << np.arange(0, 36)) + 1, [0, 1, -1]]).astype(np.int64)
    for fb in (0, 17, 40, 96):
        got = to_float32(torch.from_numpy(v), fb).numpy().view(np.uint32)
        assert np.array_equal(got, G.to_float32(v, fb).view(np.uint32))
    # independent: below 2**53 the value is exact in float64, and numpy's float64 -> float32 is one RNE
    small = v[np.abs(v) < 2**53]
    for fb in (0, 23, 60):
        want = (small.astype(np.float64) * 2.0 ** -fb).astype(np.float32).view(np.uint32)
        assert np.array_equal(to_float32(torch.from_numpy(small), fb).numpy().view(np.uint32), want)
    assert small.size > 20000


def test_gemm_bad_input():
    z = torch.zeros(2, 3, dtype=torch.uint8)
    with pytest.raises(GemmError, match="inner dimensions"):
        gemm(z, torch.zeros(2, 4, dtype=torch.uint8), "rf8", "rf8", "8:20")
    with pytest.raises(GemmError, match="2-D torch.uint8"):
        gemm(z.float(), z, "rf8", "rf8", "8:20")
    with pytest.raises(GemmError, match="w_scale_exp has shape"):
        gemm(z, z, "rf8", "rf8", "8:20", w_scale_exp=torch.zeros(5, dtype=torch.int8), w_granularity="channel")


def test_verify_layer_torch_vs_golden():
    from rf8sim.verify import verify_layer

    for gran in ("tensor", "channel", "ceil", "mx"):
        rep = verify_layer(in_features=64, out_features=16, batch=4, granularity=gran, rtl_slice=0)
        assert rep["ok"] and not rep["complete"], rep["checks"]
        assert rep["legs"] == {"torch": "ran", "golden": "ran", "rtl": "not run (--no-rtl)"}
        assert sum(c["compared"] for c in rep["checks"]) > 1000
    rep = verify_layer(in_features=64, out_features=16, batch=4, acc="4:16", rtl_slice=0)
    assert rep["ok"] and rep["acc"] == "4:16"
    rep = verify_layer(in_features=32, out_features=8, batch=2, a_fmt="e4m3", w_fmt="rf8", rtl_slice=0)
    assert rep["ok"]


@pytest.mark.slow
@toolcheck.icarus
def test_verify_layer_through_rtl():
    from rf8sim.verify import verdict, verify_layer

    rep = verify_layer(in_features=64, out_features=16, batch=4, rtl_slice=3)
    assert rep["rtl"]["status"] == "ran", rep["rtl"]["status"]
    assert rep["complete"] and verdict(rep) == "OK: torch == golden == RTL (bit-identical)"
    assert rep["ok"] and any(c["check"].startswith("RTL") and c["compared"] == 6 for c in rep["checks"])
