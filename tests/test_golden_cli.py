"""`rf8sim encode`, `rf8sim decode` and `rf8sim golden` from the command line."""

import numpy as np

from rf8sim.cli import main
from rf8sim.golden import decode, encode


def test_encode_values(capsys):
    assert main(["encode", "1.5", "-0.3", "inf", "--format", "rf8", "--rounding", "paper"]) == 0
    out = capsys.readouterr().out
    assert "0x39" in out and "384" in out  # 1.5 -> 0x39; inf saturates to 384


def test_encode_decode_files(tmp_path, capsys):
    x = (np.random.default_rng(0).standard_normal((3, 50)) * 4).astype(np.float32)
    xi, co, vo = tmp_path / "x.npy", tmp_path / "c.npy", tmp_path / "v.npy"
    np.save(xi, x)
    assert main(["encode", "-i", str(xi), "-f", "e4m3", "-o", str(co)]) == 0
    assert np.array_equal(np.load(co), encode(x, "e4m3"))
    assert main(["encode", "-i", str(xi), "-f", "e4m3", "-o", str(co)]) == 2  # exists: refused
    assert "--force" in capsys.readouterr().err
    assert main(["encode", "-i", str(xi), "-f", "rf8", "-o", str(co), "--force"]) == 0
    assert main(["decode", "-i", str(co), "-f", "rf8", "-o", str(vo)]) == 0
    assert np.array_equal(np.load(vo), decode(encode(x, "rf8"), "rf8"))


def test_decode_codes(capsys):
    assert main(["decode", "0x39", "0b01001101", "63", "-f", "rf8"]) == 0
    out = capsys.readouterr().out
    assert "1.5" in out and "-> 0x41" in out  # 0x4D = (E=9, R=5) duplicates 0x41 = (E=8, R=1)
    assert main(["decode", "300"]) == 2
    assert "outside 0..255" in capsys.readouterr().err


def test_cli_errors(capsys, tmp_path):
    assert main(["encode", "nan", "-f", "rf8"]) == 2
    assert "NaN" in capsys.readouterr().err
    assert main(["encode", "1", "-f", "fp9"]) == 2
    assert "valid formats" in capsys.readouterr().err
    assert main(["encode", "1", "-f", "e5m2", "-r", "paper"]) == 2
    assert "nearest only" in capsys.readouterr().err
    assert main(["encode", "abc"]) == 2
    assert main(["encode"]) == 2
    assert main(["decode", "-i", str(tmp_path / "missing.npy")]) == 2


def test_golden_check(capsys):
    assert main(["golden", "--check"]) == 0
    assert "agree with the model" in capsys.readouterr().out
