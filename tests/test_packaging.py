"""A non-editable install works away from the checkout: runtime folders ship as package data."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(out), str(ROOT)], capture_output=True, text=True, cwd=out)
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = out.glob("rf8sim-*.whl")
    return whl


def test_wheel_ships_testbenches_scripts_and_vectors(wheel):
    from rf8sim.infra.resources import DATA_FOLDERS

    names = set(zipfile.ZipFile(wheel).namelist())
    n = 0
    for folder in DATA_FOLDERS:  # every file of each folder in the checkout, byte for byte
        for f in (ROOT / folder).rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                arc = f"rf8sim/_data/{f.relative_to(ROOT).as_posix()}"
                assert arc in names, arc
                assert zipfile.ZipFile(wheel).read(arc) == f.read_bytes(), arc
                n += 1
    assert n >= 3 + 2 + 26  # testbenches, synthesis scripts, golden vectors + manifest (at least)
    assert "rf8sim/study/configs/flow.toml" in names
    assert not any("__pycache__" in x for x in names)


def test_installed_copy_finds_its_data_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                        str(target), str(wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    code = ("import rf8sim, rf8sim.infra.resources as R\n"
            "from rf8sim.hdl.synth import _scripts_dir\n"
            "from rf8sim.hdl.sim import hdl_dir\n"
            "from rf8sim.golden import vectors\n"
            "assert R.source_root() is None, R.source_root()\n"
            "print(rf8sim.__file__); print(_scripts_dir()); print(hdl_dir()); print(len(vectors.list_vectors()))\n"
            "print((_scripts_dir() / 'generic.ys').is_file())\n"
            "from rf8sim.cli import main; raise SystemExit(main(['formats', '--json']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    site = str(target.resolve())
    assert lines[0].startswith(site) and lines[1] == f"{site}/rf8sim/_data/hdl/synth"
    assert lines[2] == f"{site}/rf8sim/_data/hdl" and int(lines[3]) >= 26 and lines[4] == "True"
    assert '"name": "rf8"' in r.stdout
