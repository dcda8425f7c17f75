"""Command-line tools of the training part: verify-layer, training-sweep, gpu_check (no Numba), bench."""

import json
import subprocess
import sys

import pytest

from rf8sim.cli import main


def test_verify_layer_cli(capsys):
    assert main(["verify-layer", "--in-features", "48", "--out-features", "8", "--batch", "3", "--no-rtl"]) == 0
    out = capsys.readouterr().out
    # says plainly which legs ran: never a bare "bit-identical" when the RTL leg did not run
    assert "OK: torch == golden (bit-identical); RTL not run (--no-rtl)" in " ".join(out.split())
    assert "accumulators (torch vs golden)" in out
    assert main(["verify-layer", "--in-features", "48", "--out-features", "8", "--batch", "3", "--no-rtl",
                 "--require-all"]) == 1
    assert main(["verify-layer", "--in-features", "0"]) == 2
    assert main(["verify-layer", "--w-fmt", "e4m3", "--rounding", "paper", "--no-rtl"]) == 2
    err = capsys.readouterr().err
    assert "rounding 'paper' is not valid for e4m3" in err


def test_training_sweep_cli_range(capsys):
    # a slice of the 2^32 sweep: around 1.0f and the RF8 range, every mode
    assert main(["training-sweep", "--start", "0x3F000000", "--stop", "0x3F100000", "--chunk-bits", "20"]) == 0
    assert "mismatches" in capsys.readouterr().out
    assert main(["training-sweep", "--start", "0x43000000", "--stop", "0x43010000", "--chunk-bits", "16",
                 "--modes", "rf8:paper,e5m2:nearest:nosat"]) == 0
    assert main(["training-sweep", "--modes", "fp4:nearest"]) == 2


def test_gpu_check_runs_without_numba(tmp_path):
    """The GPU script on CPU: exactness section only, and it must not import Numba / rf8sim.golden."""
    out = tmp_path / "gc.json"
    code = ("import sys, runpy; sys.argv = ['gpu_check', '--device', 'cpu', '--values', '20000', '--rows', '8', "
            f"'--no-bench', '--out', {str(out)!r}]; "
            "import rf8sim.training.gpu_check as g; rc = g.main(sys.argv[1:]); "
            "assert 'numba' not in sys.modules and 'rf8sim.golden' not in sys.modules, 'golden imported'; "
            "sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["info"]["numba_imported"] is False
    assert sum(x["compared"] for x in res["exactness"]) >= 8 * 20000
    assert all(x["mismatches"] == 0 for x in res["exactness"])


@pytest.mark.slow
def test_bench_quick_rows():
    from rf8sim.training.bench import run

    rows = run(quick=True, device="cpu")
    names = " ".join(r["name"] for r in rows)
    assert "fake_quant" in names and "QAT step" in names and "BackSlash" in names
    assert all(r["device"] == "cpu" for r in rows) and all(r["value"] > 0 for r in rows)
