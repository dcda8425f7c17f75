"""The claim recipes: helpers against hand-computed cases, and every --quick setting end to end."""

import json
import math
import os

import pytest
import torch

from rf8sim.study.claims import common as C
from rf8sim.study.claims.runner import out_path, run_claim

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_mean_std_and_format():
    d = C.mean_std([1.0, 2.0, 3.0])
    assert d["mean"] == 2.0 and d["std"] == 1.0 and d["n"] == 3
    assert C.mean_std([5.0])["std"] == 0.0
    assert C.fmt_ms(d) == "2 ± 1"
    assert C.fmt_ms(C.mean_std([])) == "-"


def test_steps_to_target_window_mean():
    from rf8sim.study.claims.gg_init import steps_to_target

    losses = [5, 4, 3, 2, 1, 1, 1]
    # trailing 2-step means: 4.5, 3.5, 2.5, 1.5, 1, 1 -> first <= 2.0 at step 5
    assert steps_to_target(losses, 2.0, 2) == 5
    assert steps_to_target(losses, 0.5, 2) is None
    assert steps_to_target(losses, 5.0, 1) == 1


def test_retrieval_agreement_counts_top1_neighbours():
    from rf8sim.study.claims.rf8_inference import retrieval_agreement

    e = torch.nn.functional.normalize(torch.tensor([[1.0, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1]]), dim=1)
    assert retrieval_agreement(e, e.clone()) == 1.0
    # swap the last two rows' identity: rows 2 and 3 still point at each other, rows 0,1 too
    perm = e[[1, 0, 3, 2]]
    assert retrieval_agreement(e, perm) == 1.0
    far = e.clone()
    far[1] = torch.tensor([0.0, 0.0, 1.0])  # row 1 moves next to row 3
    assert retrieval_agreement(e, far) < 1.0


def test_init_weights_variance_matches_kaiming_and_bias_zero():
    from rf8sim.study.claims.gg_init import init_weights_
    from rf8sim.workloads.models import MLP

    m = MLP(hidden=(400, 400))
    init_weights_(m, "kaiming-normal", torch.Generator().manual_seed(0))
    w = m.layers[1].weight.detach()
    assert abs(float(w.var()) / (2 / 400) - 1) < 0.05
    assert float(m.layers[1].bias.detach().abs().max()) == 0.0
    with pytest.raises(C.ClaimError):
        init_weights_(m, "nope", None)


def test_out_path_and_refusal(tmp_path):
    assert out_path("gg-fit", True, tmp_path) == tmp_path / "gg-fit.quick.json"
    assert out_path("gg-fit", False).parent == C.RESULTS_DIR
    p = tmp_path / "x.json"
    p.write_text("{}")
    with pytest.raises(FileExistsError):
        C.check_out_path(p, force=False)
    C.check_out_path(p, force=True)
    with pytest.raises(FileExistsError):
        C.write_json(p, {"a": 1}, force=False)
    C.write_json(p, {"a": 1}, force=True)
    assert json.loads(p.read_text()) == {"a": 1}
    with pytest.raises(C.ClaimError):
        run_claim("nope", out=tmp_path)
    with pytest.raises(C.ClaimError):
        run_claim("gg-fit", seeds=0, out=tmp_path)


def test_cli_refuses_to_overwrite(tmp_path, capsys):
    from rf8sim.cli import main

    (tmp_path / "gg-init.quick.json").write_text("precious")
    rc = main(["claims", "gg-init", "--quick", "--out", str(tmp_path), "--no-progress"])
    assert rc == 2 and "--force" in capsys.readouterr().err
    assert (tmp_path / "gg-init.quick.json").read_text() == "precious"


def _check_payload(p, name):
    assert p["claim"] == name and p["setting"] == "quick"
    assert p["wall_time_s"] > 0 and p["provenance"]["torch"] == torch.__version__
    prov = p["provenance"]  # rf8sim.infra.records: the commit, whether the tree was dirty, and the diff's hash
    assert len(prov["commit"]) == 40 and isinstance(prov["dirty"], bool)
    assert (prov["diff_sha256"] is not None) == prov["dirty"]
    assert p["verdict"]["verdict"] in ("supported", "partly supported", "not supported") and p["verdict"]["rule"]
    assert p["rows"] and p["summary"] and p["config"]
    # the markdown report renders every row of the payload
    from rf8sim.study.claims.report import render_one

    md = render_one(json.loads(json.dumps(p)))
    assert p["command"] in md and md.count("\n|") >= len(p["rows"]) + 1


def test_quick_rf8_inference(tmp_path):
    p = run_claim("rf8-inference", quick=True, out=tmp_path, progress=False)
    _check_payload(p, "rf8-inference")
    on_disk = json.loads((tmp_path / "rf8-inference.quick.json").read_text())
    assert on_disk["rows"].keys() == p["rows"].keys()
    # torch quantizer vs the Numba golden model: 8 rows x 384 of one matrix, 6 schemes x 3 granularities
    assert p["config"]["minilm"]["golden_crosscheck_values"] == 8 * 384 * 6 * 3
    small = p["small_models"]
    assert set(small) == {"mlp/plain", "mlp/backslash", "mlp/deepshape"}
    assert all(0 <= v["mean"] <= 1 for r in small.values() for v in r.values())
    rows = p["rows"]
    # bf16 rounding is far finer than any 8-bit format: it must be closest to float32
    assert rows["bf16-cast/none"]["cos_mean"]["mean"] > max(r["cos_mean"]["mean"] for k, r in rows.items()
                                                            if k != "bf16-cast/none")
    for r in rows.values():
        assert 0.9 < r["cos_mean"]["mean"] <= 1.0 + 1e-6 and 0 <= r["top1_agreement"]["mean"] <= 1
        assert 0 < r["weight_rel_err_mean"] < 0.2


def test_quick_gg_init(tmp_path):
    p = run_claim("gg-init", quick=True, out=tmp_path, progress=False)
    _check_payload(p, "gg-init")
    inits, tasks = p["config"]["inits"], p["config"]["tasks"]
    assert set(tasks) == {"mlp", "cnn", "tinylm"} and len(inits) == 4
    assert sorted(p["rows"]) == sorted(f"{t}/{m}" for t in tasks for m in inits)
    chance = {"mlp": math.log(10), "cnn": math.log(10), "tinylm": math.log(256)}
    for key, r in p["rows"].items():
        t, m = key.split("/")
        assert (r["task"], r["init"]) == (t, m)
        # every model learned something: losses below the uniform-guess loss, accuracy above chance
        assert r["final_train_loss"]["mean"] < chance[t] and r["test_loss"]["mean"] < chance[t], key
        if t != "tinylm":
            assert 0.1 < r["test_acc"]["mean"] <= 1, key
        # "reached" agrees with the steps recorded (None = not reached within the budget)
        stt = r["steps_to_target"]
        n_reached = int(r["reached"].split("/")[0])
        assert (stt["mean"] is not None) == (n_reached == 1), key
    for t in tasks:  # the initializer really changes the run: no two inits give the same test loss
        losses = {m: p["rows"][f"{t}/{m}"]["test_loss"]["mean"] for m in inits}
        assert len(set(losses.values())) == len(inits), (t, losses)
        s = p["summary"][t]  # the summary is the argmin of the rows it summarizes
        assert s["best_test_loss"] == min(losses, key=losses.get)
        gg = {m: v for m, v in losses.items() if m.startswith("gg-")}
        base = {m: v for m, v in losses.items() if not m.startswith("gg-")}
        assert s["best_gg"] == min(gg, key=gg.get) and s["best_baseline"] == min(base, key=base.get)
        assert s["best_gg_test_loss"]["mean"] == gg[s["best_gg"]]


def test_quick_gg_fit(tmp_path):
    p = run_claim("gg-fit", quick=True, out=tmp_path, progress=False)
    _check_payload(p, "gg-fit")
    assert (tmp_path / "gg-fit.quick.png").stat().st_size > 10_000
    assert len(p["rows"]) == 2 and p["summary"]["tensors"] == 2
    for r in p["rows"].values():
        assert r["n"] == 20000
        # the GG family contains the Gaussian and the Laplace: its ML fit cannot be worse
        assert r["loglik_gg"] >= max(r["loglik_gauss"], r["loglik_laplace"]) - 1e-9
        assert 0.3 < r["beta"] < 3 and 0 < r["ks_gg"] < 0.1


def test_pruning_and_rate_grid_helpers():
    from rf8sim.study.claims.backslash import RATE_STEP_BITS, magnitude_pruned, uniform_quantized

    ws = {"a": torch.arange(1.0, 11.0).reshape(2, 5), "b": -torch.arange(11.0, 21.0)}
    p = magnitude_pruned(0.5)(ws)
    zeros = sum(int((v == 0).sum()) for v in p.values())
    assert zeros == 10 and int((p["a"] == 0).sum()) == 10 and int((p["b"] == 0).sum()) == 0
    p8 = magnitude_pruned(0.8)(ws)
    assert sum(int((v == 0).sum()) for v in p8.values()) == 16
    q = uniform_quantized({"w": torch.tensor([0.3, -0.001, 1 / 2 ** RATE_STEP_BITS])})["w"]
    assert q.tolist() == [round(0.3 * 256) / 256, 0.0, 1 / 256]


def test_quick_backslash(tmp_path):
    p = run_claim("backslash", quick=True, out=tmp_path, progress=False)
    _check_payload(p, "backslash")
    assert set(p["rows"]) == {"mlp/plain/0", "mlp/backslash/3", "mlp/l1/3"}
    for r in p["rows"].values():
        # entropy is a lower bound of the real coder (which also pays side information)
        assert r["uniform_coded_bits"]["mean"] >= r["entropy_bits"]["mean"]
        assert 0 < r["coded_bits"]["mean"] < 9 and 0 <= r["metric"]["mean"] <= 1
    assert p["rows"]["mlp/plain/0"]["saving_vs_plain_exp_golomb_bits"] == 0
    assert "BackSlash(lam=3" in p["config"]["regularizers"]["mlp/backslash/3"]


def test_quick_deepshape(tmp_path):
    p = run_claim("deepshape", quick=True, out=tmp_path, progress=False)
    _check_payload(p, "deepshape")
    from rf8sim.study.claims.deepshape import STAGES

    rows = {r["stage"]: r for r in p["rows"].values()}
    assert [r["stage"] for r in p["rows"].values()] == list(STAGES)
    params = {r["params"]["mean"] for r in rows.values()}
    assert len(params) == 1 and params.pop() > 1000
    for st, r in rows.items():
        assert 0 <= r["metric"]["mean"] <= 1, st
        # an entropy coder cannot beat the empirical entropy of what it codes
        assert r["uniform_coded_bits"]["mean"] >= r["entropy_bits"]["mean"] > 0, st
        assert r["coded_bits"]["mean"] >= r["rf8_entropy_bits"]["mean"] > 0, st
    # reshaping to a heavier-tailed, narrower law lowers the rate on the fixed grid ...
    assert rows["reshaped"]["exp_golomb_bits"]["mean"] < rows["trained"]["exp_golomb_bits"]["mean"] - 0.5
    assert rows["reshaped"]["entropy_bits"]["mean"] < rows["trained"]["entropy_bits"]["mean"]
    # ... and the controls (fine-tuned without reshaping) keep the trained rate
    for k in (1, 2, 3):
        assert abs(rows[f"control-ft{k}"]["exp_golomb_bits"]["mean"] - rows["trained"]["exp_golomb_bits"]["mean"]) < 0.2
    # the recorded fits follow the stated rule: target shape x0.8, scale x0.6 of the fitted one
    fits = [f for fs in p["config"]["fits"].values() for f in fs]
    assert fits
    for f in fits:
        assert f["target_nu"] == pytest.approx(0.8 * f["fitted_nu"], rel=1e-12)
        assert f["target_alpha"] == pytest.approx(0.6 * f["fitted_alpha"], rel=1e-12)
        assert 0 < f["n_core"] <= f["n"]


def test_deepshape_leaves_tiny_tensors_alone():
    from rf8sim.study.claims.deepshape import MIN_NUMEL, reshape_
    from rf8sim.workloads.models import CNN1D

    torch.manual_seed(0)
    m = CNN1D()
    before = {k: v.detach().clone() for k, v in m.state_dict().items()}
    groups = reshape_(m)
    assert [g["name"] for g in groups] == ["convs.1.weight", "convs.2.weight", "head.weight"]
    assert m.convs[0].weight.numel() < MIN_NUMEL and torch.equal(m.convs[0].weight, before["convs.0.weight"])
    assert not torch.equal(m.convs[1].weight, before["convs.1.weight"])
    assert all(torch.equal(m.state_dict()[k], before[k]) for k in before if k.endswith("bias"))
