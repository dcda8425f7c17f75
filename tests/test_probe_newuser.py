"""Issue 22's probe findings (bad or unusual input on documented paths): each ends in a clear
one-line error naming what is valid, or in the correct result.  Each test failed before its fix."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rf8sim.cli import main
from rf8sim.errors import OutputError, RF8SimError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cli(capsys, *argv):
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# ------------------------------------------------------------------ CLI options (probe 8)

@pytest.mark.parametrize("argv", [
    ("gg-fit", "model.safetensors", "--json", ""),
    ("verify-layer", "--json", ""),
    ("verilog", "-o", ""),
])
def test_empty_option_value_is_refused(capsys, tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    rc, out, err = _cli(capsys, *argv)
    assert rc == 2
    assert "was given an empty value" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_verify_layer_rtl_slice_zero_is_refused(capsys):
    rc, out, err = _cli(capsys, "verify-layer", "--rtl-slice", "0")
    assert rc == 2 and "--rtl-slice must be >= 1" in err and "--no-rtl" in err


def _never(what):
    def fn(*a, **k):
        raise AssertionError(f"{what} ran although its options were wrong")
    return fn


def test_output_path_naming_a_folder_is_refused(capsys, tmp_path):
    rc, out, err = _cli(capsys, "verilog", "-o", str(tmp_path / "newdir") + "/")
    assert rc == 2 and "ends with '/'" in err
    assert not (tmp_path / "newdir").exists()


@pytest.mark.parametrize("g,want", [("ceil", "block"), ("block", "block"), ("channel", "channel")])
def test_study_config_takes_the_library_granularity_names(g, want):
    from rf8sim.study.common.config import config_from_dict

    cfg = config_from_dict({"sweep": {"granularities": [g]}, "transformer": {"granularity": g},
                            "tinylm": {"granularity": g}})
    assert cfg.sweep.granularities == (want,) or list(cfg.sweep.granularities) == [want]
    assert cfg.transformer.granularity == want and cfg.tinylm.granularity == want


def test_study_config_mx_refused_by_name():
    from rf8sim.study.common.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match="'mx'.*not swept.*valid: tensor, channel, ceil"):
        config_from_dict({"sweep": {"granularities": ["mx"]}})


# ------------------------------------------------------------------ flow / study (probes 3, 7)

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_flow_unreachable_cluster_fails_up_front(capsys, tmp_path, monkeypatch):
    from rf8sim.study.flow import run as flow

    monkeypatch.setattr(flow, "run_flow", _never("the flow"))
    rc, out, err = _cli(capsys, "flow", "--out", str(tmp_path / "r"), "--cluster", f"127.0.0.1:{_closed_port()}")
    assert rc == 2 and "Ray" in err and len(err.strip().splitlines()) == 1


def test_flow_cluster_with_skip_hdl_is_refused(capsys, tmp_path, monkeypatch):
    from rf8sim.study.flow import run as flow

    monkeypatch.setattr(flow, "run_flow", _never("the flow"))
    rc, out, err = _cli(capsys, "flow", "--out", str(tmp_path / "r"), "--skip-hdl", "--cluster", "auto")
    assert rc == 2 and "--skip-hdl" in err


def test_second_flow_into_the_same_out_stops_at_once(tmp_path, monkeypatch):
    from rf8sim.infra import fileio
    from rf8sim.study.flow import stages as flow_stages
    from rf8sim.study.flow.run import default_config, run_flow

    monkeypatch.setattr(flow_stages, "STAGES", (("a", lambda ctx: {}),))
    out = tmp_path / "r"
    with fileio.claim_dir(out):  # the first run, still going
        with pytest.raises(OutputError, match="in use by another rf8sim run"):
            run_flow(default_config(quick=True), out, progress=False)
    assert not (out / "report.md").exists()
    assert run_flow(default_config(quick=True), out, progress=False).exit_code == 0  # free again
    assert run_flow(default_config(quick=True), out, progress=False).exit_code == 0  # replaces its own folder


def test_second_sweep_into_the_same_out_stops_at_once(tmp_path):
    from rf8sim.infra import fileio
    from rf8sim.study.mnist1d.area_accuracy import run_sweep
    from rf8sim.study.common.config import config_from_dict

    cfg = config_from_dict({"sweep": {"formats": ["rf8"], "roundings": ["nearest"], "granularities": ["tensor"],
                                      "acc": ["exact"]}, "area": {"mode": "off"}, "study": {"workers": 1}})
    acc = lambda job: {"accuracy": 0.5}  # noqa: E731
    with fileio.claim_dir(tmp_path / "o"):
        with pytest.raises(OutputError, match="in use by another rf8sim run"):
            run_sweep(cfg, tmp_path / "o", accuracy_fn=acc, progress=False)
    assert not (tmp_path / "o" / "results.json").exists()
    run_sweep(cfg, tmp_path / "o", accuracy_fn=acc, progress=False)
    assert (tmp_path / "o" / "results.json").exists()


# ------------------------------------------------------------------ training API (probes 9, 10)

def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 8))


def test_save_rf8_creates_the_folder(tmp_path):
    from rf8sim.training.export import load_rf8, save_rf8

    m = _mlp()
    p = tmp_path / "missing" / "deeper" / "m.safetensors"
    save_rf8(m, p)
    m2 = _mlp(1)
    load_rf8(p, m2)
    assert sorted(x.name for x in p.parent.iterdir()) == ["m.safetensors"]  # no temporary file left


def test_load_rf8_not_strict_into_a_model_lacking_a_weight(tmp_path):
    from rf8sim.training.export import load_rf8, save_rf8
    from rf8sim.training.quant import fake_quant

    m = _mlp()
    save_rf8(m, tmp_path / "m.safetensors")
    small = nn.Sequential(nn.Linear(32, 32))  # holds "0.weight" / "0.bias", not "2.*"
    load_rf8(tmp_path / "m.safetensors", small, strict=False)
    want = fake_quant(m[0].weight.detach(), "rf8", granularity="channel")
    assert torch.equal(small[0].weight.detach(), want)
    assert torch.equal(small[0].bias.detach(), m[0].bias.detach())


@pytest.mark.parametrize("n", [0, 1, -1, 2.5, True])
def test_fit_gg_max_samples_validated(n):
    from rf8sim.training.gg import GGError, fit_gg

    with pytest.raises(GGError, match="max_samples must be None"):
        fit_gg(torch.randn(1000), "mle", max_samples=n)


@pytest.mark.parametrize("loc", ["median", "", float("nan"), None, True])
def test_fit_gg_loc_validated(loc):
    from rf8sim.training.gg import GGError, fit_gg

    with pytest.raises(GGError, match="loc must be 'auto'"):
        fit_gg(torch.randn(1000), "moments", loc=loc)


def test_fit_gg_fixed_loc_still_works():
    from rf8sim.training.gg import fit_gg

    x = torch.randn(4000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 3
    assert fit_gg(x, "moments", loc=3).loc == 3.0
    assert fit_gg(x, "moments", loc=np.float32(3)).loc == 3.0


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.uint8])
def test_gg_init_refuses_integer_tensors(dtype):
    from rf8sim.training.gg import GGError, gg_init_

    t = torch.zeros(8, 8, dtype=dtype)
    with pytest.raises(GGError, match="floating-point"):
        gg_init_(t)
    assert not t.any()


def test_gg_fit_cli_on_an_rf8_file_fits_its_decoded_weights(tmp_path, capsys):
    import json

    from rf8sim.training.export import save_rf8
    from rf8sim.training.gg import fit_gg
    from rf8sim.training.quant import fake_quant

    m = nn.Sequential(nn.Linear(64, 48))
    save_rf8(m, tmp_path / "m.safetensors")
    rc, out, err = _cli(capsys, "gg-fit", str(tmp_path / "m.safetensors"), "--method", "moments",
                        "--json", str(tmp_path / "rows.json"))
    assert rc == 0, err
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [r["name"] for r in rows] == ["0.weight"]
    want = fit_gg(fake_quant(m[0].weight.detach(), "rf8", granularity="channel"), "moments")
    assert rows[0]["beta_moments"] == pytest.approx(want.beta, rel=1e-12)


def test_gg_fit_cli_renamed_truncated_file_says_so(tmp_path, capsys):
    from safetensors.torch import save_file

    save_file({"w": torch.randn(64, 64)}, str(tmp_path / "full.safetensors"))
    data = (tmp_path / "full.safetensors").read_bytes()
    (tmp_path / "model.pt").write_bytes(data[: len(data) // 2])
    rc, out, err = _cli(capsys, "gg-fit", str(tmp_path / "model.pt"))
    assert rc == 2 and "safetensors file that cannot be read (truncated or corrupted?)" in err
    assert "WeightsUnpickler" not in err and len(err.strip().splitlines()) == 1


def test_errors_are_rf8sim_errors():
    from rf8sim.training.gg import GGError

    assert issubclass(GGError, RF8SimError)


# ------------------------------------------------------------------ BackSlash / DeepShape (probe 5)

def _small(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 10))


def test_backslash_warns_when_a_step_exceeds_the_weights():
    from rf8sim.training import BackSlash

    m = _small()
    bs = BackSlash(m, lam=2e3)  # the authors' lambda on 3,200 weights: a step of ~1 per batch
    with pytest.warns(RuntimeWarning, match=r"scale lam with the parameter count") as rec:
        bs.step()
        bs.step()
    assert len([w for w in rec if issubclass(w.category, RuntimeWarning)]) == 1  # once
    assert rec[0].filename == __file__  # points at the caller's line


def test_backslash_scaled_lambda_is_quiet():
    import warnings

    from rf8sim.training import BackSlash

    m = _small()
    n = sum(p.numel() for name, p in m.named_parameters() if name.endswith("weight"))
    bs = BackSlash(m, lam=1e-4 * n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            bs.step()


def test_deepshape_names_blown_up_weights():
    from rf8sim.training import deepshape_
    from rf8sim.training.deepshape import DeepShapeError

    m = _small()
    with torch.no_grad():
        m[0].weight.mul_(2e5)  # what 20 steps of an unscaled BackSlash did (|w| ~ 4e4)
    with pytest.raises(DeepShapeError, match=r"0\.weight: values reach .*scale lam"):
        deepshape_(m)


def test_deepshape_warns_when_few_values_reach_the_core():
    from rf8sim.training import deepshape_

    m = _small()
    with pytest.warns(RuntimeWarning) as rec:
        deepshape_(m)
    msgs = [str(w.message) for w in rec]
    assert any(re.search(r"2\.weight: only \d+ of 640 values .*step_exp=", m) for m in msgs), msgs


# ------------------------------------------------------------------ quantize_ (probe 6)

@pytest.mark.parametrize("forward", ["fake", "exact"])
def test_quantize_keeps_a_bf16_model_bf16(forward):
    from rf8sim.training import QuantConfig, quantize_

    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 8)).to(torch.bfloat16)
    ref = nn.Sequential(*[nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 8)])
    ref.load_state_dict({k: v.float() for k, v in m.state_dict().items()})
    quantize_(m, QuantConfig(forward=forward))
    quantize_(ref, QuantConfig(forward=forward))
    x = torch.randn(4, 32).to(torch.bfloat16)
    y = m(x)  # the second packed layer takes the first one's bf16 output
    assert y.dtype == torch.bfloat16
    # the float32 model fed the same bf16-rounded activations between layers gives the same bits
    h = ref[0](x.float()).to(torch.bfloat16)
    want = ref[2](torch.relu(h).float()).to(torch.bfloat16)
    assert torch.equal(y, want)


def test_quantconfig_float_acc_with_8bit_activations_refused_at_construction():
    from rf8sim.training import QuantConfig
    from rf8sim.training.quant import QuantError

    for acc in ("fp32", "aligned:32:16"):
        with pytest.raises(QuantError, match="float accumulator.*exact, exact:TERMS or FRAC:WIDTH"):
            QuantConfig(act_fmt="rf8", forward="exact", acc=acc)
    with pytest.raises(QuantError, match="acc:"):
        QuantConfig(act_fmt="rf8", forward="exact", acc="bogus")
    assert QuantConfig(act_fmt="rf8", forward="exact", acc="16:40").acc == "16:40"


def test_quantize_reports_multihead_attention_left_in_float():
    import warnings

    from rf8sim.training import quantize_
    from rf8sim.training.ptq import RF8Linear

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.att = nn.MultiheadAttention(16, 2, batch_first=True)
            self.fc = nn.Linear(16, 16)

    b = Block()
    with pytest.warns(UserWarning, match=r"leaves att in float.*MultiheadAttention"):
        quantize_(b)
    assert isinstance(b.fc, RF8Linear)
    b2 = Block()
    with warnings.catch_warnings():  # excluded on purpose: nothing to report
        warnings.simplefilter("error")
        quantize_(b2, filter_fn=lambda mod, fqn: not fqn.startswith("att"))


# ------------------------------------------------------------------ tracebacks (probe 9)

def test_binary_config_is_one_line(capsys, tmp_path):
    bad = tmp_path / "cfg.toml"
    bad.write_bytes(bytes(range(128, 256)) * 2)
    for argv in (("study", "area-accuracy", "--config", str(bad), "--out", str(tmp_path / "o")),
                 ("flow", "--config", str(bad), "--out", str(tmp_path / "f"))):
        rc, out, err = _cli(capsys, *argv)
        assert rc == 2 and "not a TOML text file" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [("synth", "--no-liberty"), ("study", "area-accuracy", "--config", "tiny"),
                                  ("flow", "--skip-hdl")])
def test_cache_dir_that_is_a_file(capsys, tmp_path, monkeypatch, argv):
    from rf8sim.hdl import synth
    from rf8sim.study.mnist1d import area_accuracy
    from rf8sim.study.flow import run as flow

    for mod, name in ((synth, "run_cli"), (area_accuracy, "run_sweep"), (flow, "run_flow")):
        if hasattr(mod, name):
            monkeypatch.setattr(mod, name, _never(name))
    f = tmp_path / "file"
    f.write_text("x")
    extra = ("--out", str(tmp_path / "o")) if argv[0] in ("study", "flow") else ()
    rc, out, err = _cli(capsys, *argv, *extra, "--cache-dir", str(f))
    assert rc == 2 and "is a file; the cache root is a folder" in err
    rc, out, err = _cli(capsys, *argv, *extra, "--cache-dir", str(f / "sub"))
    assert rc == 2 and "cannot be created" in err


def test_read_only_working_folder_is_named_up_front(capsys, tmp_path, monkeypatch):
    from rf8sim.infra import cache
    from rf8sim import verify

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(cache.ENV, raising=False)
    monkeypatch.setattr(cache, "_ROOT", None)
    monkeypatch.setattr(verify, "verify_layer", _never("verify-layer"))
    real = os.access
    monkeypatch.setattr(cache.os, "access", lambda p, m: False if Path(p) == tmp_path else real(p, m))
    rc, out, err = _cli(capsys, "verify-layer", "--no-rtl")
    assert rc == 2 and "default cache root" in err and "--cache-dir" in err


def test_os_error_in_the_cache_is_one_line(capsys, tmp_path, monkeypatch):
    from rf8sim.infra import cache
    from rf8sim.training import commands as T

    monkeypatch.setattr(cache, "_ROOT", tmp_path / "c")

    def boom(args):
        raise OSError(30, "Read-only file system", str(tmp_path / "c" / "hdl" / "x"))

    monkeypatch.setattr(T, "cmd_verify_layer", boom)
    rc, out, err = _cli(capsys, "verify-layer", "--no-rtl")
    assert rc == 2 and "cannot write the cache" in err and "Read-only file system" in err

    def other(args):
        raise OSError(5, "I/O error", "/elsewhere")

    monkeypatch.setattr(T, "cmd_verify_layer", other)
    with pytest.raises(OSError):  # not the cache: a bug keeps its traceback
        main(["verify-layer", "--no-rtl"])


def test_corrupt_record_under_docs_check(tmp_path, monkeypatch, capsys):
    import json

    from rf8sim.infra import docgen, records
    from rf8sim.errors import InputError

    bad = tmp_path / "rec.json"
    bad.write_text('{"provenance": {"command": "x"}, "kind": "k", "rows": [1, 2')
    with pytest.raises(docgen.DocgenError, match=r"not valid JSON.*git checkout"):
        docgen.load_record(bad, "k", "rf8sim something")
    with pytest.raises(InputError, match="not valid JSON"):
        records.read_record(bad)
    docgen.load_all()
    key = sorted(docgen.REGISTRY)[0]
    monkeypatch.setitem(docgen.REGISTRY, key, lambda: json.loads(bad.read_text()))
    with pytest.raises(docgen.DocgenError, match=rf"{re.escape(key)}.*JSONDecodeError"):
        docgen.render(key)
    rc, out, err = _cli(capsys, "docs", "--check")
    assert rc == 2 and "JSONDecodeError" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ silent before (probe 10)

@pytest.mark.parametrize("k", [-128, -200, 128, 300])
def test_scale_exponents_outside_e8m0_refused(k):
    import rf8sim
    from rf8sim.golden import AccSpec, gemm
    from rf8sim.training.gemm import gemm as tgemm
    from rf8sim.training.quant import dequantize as tdeq

    c = rf8sim.encode(np.float32([1.0, 2.0, 0.5, 3.0]), "rf8")
    with pytest.raises(RF8SimError, match="outside the E8M0 range -127..127"):
        rf8sim.dequantize(c, np.array(k), "rf8")
    with pytest.raises(RF8SimError, match="outside the E8M0 range -127..127"):
        tdeq(torch.from_numpy(c), torch.tensor(k), "rf8")
    a = c.reshape(1, 4)
    acc = AccSpec.exact("rf8", "rf8", 1024)
    with pytest.raises(RF8SimError, match="outside the E8M0 range -127..127"):
        gemm(a, a, "rf8", "rf8", acc, a_scale_exp=np.array(k), w_scale_exp=np.array(0))
    with pytest.raises(RF8SimError, match="outside the E8M0 range -127..127"):
        tgemm(torch.from_numpy(a), torch.from_numpy(a), "rf8", "rf8", "exact", a_scale_exp=torch.tensor(0),
              w_scale_exp=torch.tensor([k]), w_granularity="channel")


def test_scale_exponents_at_the_e8m0_ends_still_work():
    from fractions import Fraction

    import rf8sim

    c = rf8sim.encode(np.float32([1.0, 0.5]), "rf8")
    assert rf8sim.dequantize(c, np.array(127), "rf8").tolist() == [2.0 ** 127, 2.0 ** 126]
    got = rf8sim.dequantize(c, np.array(-127), "rf8").tolist()
    assert [Fraction(v) for v in got] == [Fraction(1, 2 ** 127), Fraction(1, 2 ** 128)]


def test_encode_saturate_must_be_a_bool():
    import rf8sim
    from rf8sim.training.quant import encode as tenc

    for bad in ("False", "no", 0.0):
        with pytest.raises(RF8SimError, match="saturate must be True"):
            rf8sim.encode(np.float32([1e6]), "rf8", saturate=bad)
        with pytest.raises(RF8SimError, match="saturate must be True"):
            tenc(torch.tensor([1e6]), "rf8", saturate=bad)
    assert int(rf8sim.encode(np.float32([1e6]), "rf8", saturate=np.bool_(True))[0]) == \
        int(rf8sim.encode(np.float32([384.0]), "rf8")[0])


def test_claims_quick_writes_in_the_working_folder(tmp_path, monkeypatch):
    from rf8sim.study.claims import common as C
    from rf8sim.study.claims.runner import out_path

    monkeypatch.chdir(tmp_path)
    p = out_path("gg-fit", True)
    assert p.resolve() == tmp_path / "build" / "claims" / "gg-fit.quick.json"
    assert out_path("gg-fit", False).parent == C.RESULTS_DIR


@pytest.mark.parametrize("argv", [("study", "area-accuracy", "--config", "tiny", "--workers", "2", "--cluster", "auto"),
                                  ("claims", "gg-fit", "--quick", "--workers", "2", "--cluster", "auto")])
def test_workers_with_a_ray_cluster_is_refused(capsys, tmp_path, monkeypatch, argv):
    from rf8sim.study.mnist1d import area_accuracy
    from rf8sim.study.claims import runner

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(area_accuracy, "run_sweep", _never("the sweep"))
    monkeypatch.setattr(runner, "run_claim", _never("the claim"))
    rc, out, err = _cli(capsys, *argv)
    assert rc == 2 and "drop --workers" in err
