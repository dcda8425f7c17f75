"""BackSlash: the update formula, the autograd form, nu estimation, training effect, DDP/sharded runs."""

import json
import math
import os

import numpy as np
import pytest
import torch
from scipy import stats

from rf8sim.training.backslash import BackSlash, BackSlashError, estimate_shape
from rf8sim.training.gg import sample_gg


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.LayerNorm(32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 3))


def test_estimate_shape_grid_and_root():
    for beta in (0.7, 1.0, 2.0):
        x = stats.gennorm.rvs(beta, scale=0.1, size=200_000, random_state=2)
        n, s2, s1 = x.size, float((x * x).sum()), float(np.abs(x).sum())
        g = estimate_shape(n, s2, s1, "grid")
        assert abs(g - beta) < 0.05 and round(g * 100) == pytest.approx(g * 100)
        assert estimate_shape(n, s2, s1, "root") == pytest.approx(beta, rel=0.03)


def test_step_matches_formula_and_selection():
    m = _net()
    bs = BackSlash(m, lam=2.0, eps=1.0)
    assert bs.names == ["0.weight", "3.weight"]  # no biases, no LayerNorm
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    n = 20 * 32 + 32 * 3
    w = torch.cat([before["0.weight"].reshape(-1), before["3.weight"].reshape(-1)]).double()
    rho = n * float((w * w).sum()) / float(w.abs().sum()) ** 2
    nu = bs.step()
    assert nu == estimate_shape(n, float((w * w).sum()), float(w.abs().sum()), "grid") and bs.n == n
    assert rho > 1  # sanity of the statistic
    for name in ("0.weight", "3.weight"):
        w0 = before[name]
        want = w0 - (2.0 * nu / n) * torch.sign(w0) * (w0.abs() + 1.0) ** (nu - 1)
        assert torch.allclose(dict(m.named_parameters())[name], want, rtol=1e-6, atol=1e-7)
    for name in ("0.bias", "1.weight", "1.bias", "3.bias"):
        assert torch.equal(dict(m.named_parameters())[name], before[name])


def test_loss_form_gradient_equals_step():
    m = _net(1)
    bs = BackSlash(m, lam=5.0, eps=0.5, beta=1.3)
    j = bs.loss(torch.tensor(0.0))
    j.backward()
    w = m[0].weight
    want = 5.0 * 1.3 / bs.n * torch.sign(w) * (w.abs() + 0.5) ** 0.3
    assert torch.allclose(w.grad, want.detach(), rtol=1e-5, atol=1e-9)
    assert m[0].bias.grad is None
    w3 = m[3].weight.detach()
    want_j = 5.0 * float(((w.detach().abs() + .5) ** 1.3).sum() + ((w3.abs() + .5) ** 1.3).sum()) / bs.n
    assert float(j.detach()) == pytest.approx(want_j, rel=1e-5)


def test_every_k_steps_and_l1_variant():
    m = _net()
    bs = BackSlash(m, lam=1.0, every=3)
    for _ in range(7):
        bs.step()
    assert len(bs.history) == 3  # steps 0, 3, 6
    m2 = _net()
    w0 = m2[0].weight.detach().clone()
    b2 = BackSlash(m2, lam=10.0, variant="l1")
    b2.step()
    assert torch.allclose(m2[0].weight, w0 - torch.sign(w0) * 10.0 / b2.n)


def test_backslash_training_lowers_rate():
    """Same data and seed, with and without BackSlash: the weights become peakier and cheaper to code."""
    from rf8sim.training.rate import rate_report

    g = torch.Generator().manual_seed(0)
    X = torch.randn(512, 20, generator=g)
    Y = (X[:, :3] * 2 - X[:, 3:6]).detach()

    def train(lam):
        m = _net(3)
        opt = torch.optim.SGD(m.parameters(), lr=0.05)
        bs = BackSlash(m, lam=lam, eps=1.0)
        for i in range(60):
            idx = torch.arange(i * 32 % 512, i * 32 % 512 + 32)
            loss = torch.nn.functional.mse_loss(m(X[idx]), Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            bs.step()
        return m, float(torch.nn.functional.mse_loss(m(X), Y).detach())

    m0, l0 = train(0.0)
    m1, l1 = train(20.0)
    r0 = rate_report(m0, granularity="tensor")["total"]
    r1 = rate_report(m1, granularity="tensor")["total"]
    assert r1["eg_bits"] < r0["eg_bits"]
    assert math.isfinite(l1)


def test_bad_config():
    m = _net()
    with pytest.raises(BackSlashError, match="lam must be >= 0"):
        BackSlash(m, lam=-1)
    with pytest.raises(BackSlashError, match="eps must be > 0"):
        BackSlash(m, eps=0)
    with pytest.raises(BackSlashError, match="every must be a positive integer"):
        BackSlash(m, every=0)
    with pytest.raises(BackSlashError, match="no parameters selected"):
        BackSlash(torch.nn.LayerNorm(4))
    with pytest.raises(BackSlashError, match="beta_method 'newton'"):
        BackSlash(m, beta_method="newton")
    with pytest.warns(DeprecationWarning, match=r"nu=, nu_method=\) are deprecated"):
        old = BackSlash(m, nu=1.7, nu_method="root")
    assert old.beta == 1.7 and old.nu == 1.7 and old.beta_method == "root"


# ---------------------------------------------------------------------------
# torch.distributed: 2 CPU processes, gloo


def _worker(rank, world, store, out):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only
    # a file rendezvous: no pre-picked TCP port that another job (a Ray node) can take meanwhile
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        # DDP: replicated parameters, different data per rank, BackSlash step after the optimizer
        m = _net(0)
        ddp = DDP(m)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
        bs = BackSlash(ddp, lam=50.0)
        g = torch.Generator().manual_seed(100 + rank)
        for _ in range(5):
            x = torch.randn(16, 20, generator=g)
            loss = ddp(x).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            bs.step()
        flat = torch.cat([p.detach().reshape(-1) for p in m.parameters()])
        allp = [torch.empty_like(flat) for _ in range(world)]
        dist.all_gather(allp, flat)
        # sharded statistics: each rank holds half of one tensor
        full = sample_gg((64, 50), 1.0, 0.1, torch.Generator().manual_seed(9))
        shard = torch.nn.Linear(50, 32, bias=False)
        with torch.no_grad():
            shard.weight.copy_(full[rank * 32:(rank + 1) * 32])
        bss = BackSlash(shard, lam=1.0, sharded=True, beta_method="root")
        nu = bss.estimate_beta()
        rate = float(bss.rate())
        if rank == 0:
            whole = torch.nn.Linear(50, 64, bias=False)
            with torch.no_grad():
                whole.weight.copy_(full)
            bw = BackSlash(whole, lam=1.0, beta_method="root")
            res = {"identical": all(torch.equal(allp[0], a) for a in allp[1:]),
                   "changed": not torch.equal(flat, torch.cat([p.detach().reshape(-1) for p in _net(0).parameters()])),
                   "nu_sharded": nu, "nu_full": bw.estimate_beta(), "n_sharded": bss.n, "n_full": bw.n,
                   "rate_sharded": rate, "rate_full": float(bw.rate())}
            with open(out, "w") as fh:
                json.dump(res, fh)
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_identical_and_sharded_stats(tmp_path):
    import torch.multiprocessing as mp

    out = tmp_path / "res.json"
    mp.spawn(_worker, args=(2, str(tmp_path / "store"), str(out)), nprocs=2, join=True)
    r = json.loads(out.read_text())
    assert r["identical"] and r["changed"]
    assert r["n_sharded"] == r["n_full"] == 64 * 50
    assert r["nu_sharded"] == pytest.approx(r["nu_full"], rel=1e-5)  # float32 per-tensor norms
    assert r["rate_sharded"] == pytest.approx(r["rate_full"], rel=1e-6)
