"""Rate measurement: exp-Golomb metric, entropies, constriction coding (lossless), GG code model."""


import numpy as np
import pytest
import torch

from rf8sim import formats as F
from rf8sim.training.gg import sample_gg
from rf8sim.training.quant import decode, encode
from rf8sim.training.rate import (RateError, entropy_bits, entropy_code, exp_golomb_bits, gg_code_pmf,
                                  rate_report, rounding_boundaries)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_exp_golomb_by_hand():
    # codes round(w * 4): [0,0,0,1,1,-2] -> counts 0:3, 1:2, -2:1 -> ranks 0,1,2 -> lengths 1,3,3
    w = torch.tensor([0.0, 0.1, -0.1, 0.25, 0.3, -0.5])
    assert exp_golomb_bits(w, frac_bits=2) == pytest.approx((3 * 1 + 2 * 3 + 1 * 3) / 6)
    assert entropy_bits(np.array([0, 0, 1, 1])) == pytest.approx(1.0)
    with pytest.raises(RateError, match="empty"):
        exp_golomb_bits(torch.empty(0))


@pytest.mark.parametrize("rounding", ["nearest", "paper", "truncate"])
def test_rounding_boundaries_are_exact_decision_points(rounding):
    b = rounding_boundaries("rf8", rounding)
    mags = F.get("rf8").magnitudes
    assert len(b) == len(mags) - 1
    if rounding == "nearest":
        mids = (mags[1:] + mags[:-1]) / 2
        # a tie at a midpoint goes to the even index: boundary is the midpoint or its successor
        up = np.nextafter(mids.astype(np.float32), np.float32(np.inf)).astype(np.float64)
        assert np.all((b == mids) | (b == up))
    bb = b.astype(np.float32)
    below = np.nextafter(bb, np.float32(0))
    vb = np.abs(decode(encode(torch.from_numpy(bb), "rf8", rounding), "rf8").numpy())
    vl = np.abs(decode(encode(torch.from_numpy(below), "rf8", rounding), "rf8").numpy())
    # b_i is the smallest float32 whose magnitude reaches mags[i+1] (unreachable magnitudes, e.g.
    # the 1 - 2^-d multipliers under truncate, share the next boundary: probability 0)
    assert np.all(vb >= mags[1:]) and np.all(vl < mags[1:])
    if rounding == "nearest":
        assert np.array_equal(vb, mags[1:].astype(np.float32))


def test_gg_pmf_matches_sampled_frequencies():
    g = torch.Generator().manual_seed(0)
    x = sample_gg((400_000,), 1.2, 3.0, g)
    c = encode(x, "rf8").numpy()
    emp = np.bincount(c, minlength=256) / c.size
    pmf = gg_code_pmf("rf8", "nearest", 1.2, 3.0)
    assert pmf.sum() == pytest.approx(1.0)
    assert 0.5 * np.abs(emp - pmf).sum() < 0.01  # total variation


def test_entropy_code_lossless_and_near_entropy():
    rng = np.random.default_rng(1)
    c = rng.choice(256, size=50_000, p=np.r_[np.full(16, 0.06), np.full(240, 0.04 / 240)]).astype(np.uint8)
    cnt = np.bincount(c, minlength=256)
    bits, ok = entropy_code(c, cnt / cnt.sum())
    assert ok
    h = entropy_bits(c) * c.size
    assert h <= bits <= h * 1.01 + 64


def test_rate_report_model():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64))
    with torch.no_grad():
        m[0].weight.copy_(sample_gg((128, 256), 0.7, 0.05, torch.Generator().manual_seed(1)))
    rep = rate_report(m, coder="both")
    assert [r["name"] for r in rep["tensors"]] == ["0.weight", "2.weight"]  # biases not selected
    t = rep["total"]
    assert t["lossless"] and t["n"] == 256 * 128 + 128 * 64
    for r in rep["tensors"]:
        assert r["H_rf8"] <= r["rf8_coded"] < r["rf8_raw"] == 8 + 8 * r["shape"][0] / r["n"]
        assert r["rf8_coded_gg"] < r["rf8_raw"]
        assert r["fp32"] == 32 and r["fp16"] == 16
    assert t["rf8_coded"] == pytest.approx(sum(r["rf8_coded"] * r["n"] for r in rep["tensors"]) / t["n"])
    with pytest.raises(RateError, match="coder 'zip' is not valid"):
        rate_report(m, coder="zip")
