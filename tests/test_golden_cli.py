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


def test_16bit_formats_on_the_command_line(capsys, tmp_path):
    assert main(["encode", "1.00390625", "1e39", "-f", "bf16"]) == 0
    out = capsys.readouterr().out
    assert "0x3F80" in out and "0x7F80" in out and "0011111110000000" in out  # tie to even; overflow -> Inf
    assert main(["encode", "1e39", "-f", "bf16", "--saturate"]) == 0
    assert "0x7F7F" in capsys.readouterr().out
    x = np.linspace(-70000, 70000, 301).astype(np.float32)
    xi, co = tmp_path / "x.npy", tmp_path / "c.npy"
    np.save(xi, x)
    assert main(["encode", "-i", str(xi), "-f", "fp16", "-o", str(co)]) == 0
    codes = np.load(co)
    assert codes.dtype == np.uint16 and np.array_equal(codes, x.astype(np.float16).view(np.uint16))
    assert main(["decode", "-i", str(co), "-f", "e4m3"]) == 2
    assert "e4m3 codes must be uint8" in capsys.readouterr().err
    assert main(["decode", "0x7E00", "0x3C00", "-f", "fp16"]) == 0
    assert "nan" in capsys.readouterr().out
    assert main(["decode", "0x10000", "-f", "fp16"]) == 2
    assert "outside 0..65535" in capsys.readouterr().err


def test_table_and_formats_commands(capsys):
    assert main(["formats", "--json"]) == 0
    import json

    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["bf16"]["bits"] == 16 and rows["bf16"]["nan_codes"] == 254 and rows["e4m3"]["bits"] == 8
    assert main(["table", "bf16", "--csv", "--range", "0x7F7F:0x7F81"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1:] == ["0x7F7F,0111111101111111,3.389531389e+38,yes,", "0x7F80,0111111110000000,inf,yes,Inf"]
    assert main(["table", "fp16", "--csv", "--all"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 65536
    assert main(["table", "fp16", "--csv"]) == 0
    cap = capsys.readouterr()
    assert len(cap.out.strip().splitlines()) == 1 + 256 and "use --range LO:HI or --all" in cap.err
    assert main(["table", "e4m3", "--csv"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 256
    assert main(["table", "fp16", "--range", "5:3"]) == 2
    assert "0 <= LO < HI <= 65536" in capsys.readouterr().err
