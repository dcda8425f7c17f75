"""DeepShape: the reshaped histogram equals the target counts, ranks are preserved, fitted/target params."""

import numpy as np
import pytest
import torch

from rf8sim.training.deepshape import DeepShapeError, deepshape_, reshape_values
from rf8sim.training.gg import fit_gg, sample_gg


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _check_group(w, new, g):
    x = w.reshape(-1).double()
    y = new.reshape(-1)
    step = g.step
    lv = torch.round(y / step).to(torch.int64)
    assert torch.equal(lv.double() * step, y)  # every output is on the level grid
    T = g.threshold_level
    core = torch.round(x / step).abs() <= T
    # histogram of the reshaped core == assigned counts, and within 1 of N_core * target mass
    h = torch.bincount(lv[core] + T, minlength=2 * T + 1).numpy()
    assert np.array_equal(h, g.counts) and h.sum() == g.n_core == int(core.sum())
    assert np.all(np.abs(h - g.target_counts) < 1.0)
    # ranks preserved over the whole tensor: sorting by the input leaves the output non-decreasing
    order = torch.argsort(x, stable=True)
    assert bool((y[order][1:] >= y[order][:-1]).all())
    # outside the core: the quantized value
    assert torch.equal(y[~core], torch.round(x[~core] / step) * step)


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_reshape_matches_target_and_preserves_ranks(beta):
    w = sample_gg((200_000,), beta, 0.05, torch.Generator().manual_seed(1))
    new, g = reshape_values(w, step_exp=10, core_count=0.01)
    _check_group(w, new, g)
    # the fit is the moment fit of the (truncated) core; truncation can only make it less heavy-tailed
    core0 = w.double()[torch.round(w.double() / g.step).abs() <= g.threshold_level]
    assert g.fitted[0] == pytest.approx(fit_gg(core0, "moments", loc=0.0).beta, abs=0.006)
    assert g.fitted[0] >= beta - 0.05
    assert g.target == pytest.approx((g.fitted[0] * 0.8, g.fitted[1] * 0.6))
    # the reshaped core is narrower and peakier (the target is the GG truncated to the core levels)
    newcore = new.reshape(-1)[torch.round(w.double() / g.step).abs() <= g.threshold_level]
    assert float(newcore.std()) < float(core0.std())
    assert fit_gg(newcore, "moments", loc=0.0).beta < g.fitted[0]


def test_deepshape_model_tensor_and_global_modes():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(300, 200), torch.nn.ReLU(), torch.nn.Linear(200, 100))
    with torch.no_grad():
        for lin in (m[0], m[2]):
            lin.weight.copy_(sample_gg(tuple(lin.weight.shape), 1.5, 0.03, torch.Generator().manual_seed(2)))
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    calls = []
    res = deepshape_(m, step_exp=12, finetune=lambda model, e: calls.append(e), epochs=2)
    assert calls == [0, 1] and [g.name for g in res.groups] == ["0.weight", "2.weight"]
    for g in res.groups:
        _check_group(before[g.name], dict(m.named_parameters())[g.name].detach().double(), g)
    assert torch.equal(m[0].bias, before["0.bias"])  # biases untouched
    rows = res.summary()
    assert rows[0]["target_beta"] == pytest.approx(0.8 * rows[0]["fitted_beta"])
    m2 = torch.nn.Sequential(torch.nn.Linear(300, 200), torch.nn.ReLU(), torch.nn.Linear(200, 100))
    m2.load_state_dict(before)
    r2 = deepshape_(m2, mode="global", step_exp=12, core_count=200)
    assert len(r2.groups) == 1 and r2.groups[0].n == 300 * 200 + 200 * 100
    flat_before = torch.cat([before["0.weight"].reshape(-1), before["2.weight"].reshape(-1)])
    flat_after = torch.cat([m2[0].weight.detach().reshape(-1), m2[2].weight.detach().reshape(-1)]).double()
    _check_group(flat_before, flat_after, r2.groups[0])


def test_deepshape_bad_input():
    m = torch.nn.Linear(10, 10)
    with pytest.raises(DeepShapeError, match="mode 'layer' is not valid"):
        deepshape_(m, mode="layer")
    with pytest.raises(DeepShapeError, match="needs a finetune"):
        deepshape_(m, epochs=1)
    with pytest.raises(DeepShapeError, match="NaN/Inf"):
        reshape_values(torch.tensor([1.0, float("nan"), 0.5]))
    with pytest.raises(DeepShapeError, match="core_count"):
        reshape_values(torch.randn(100), core_count=-1)
