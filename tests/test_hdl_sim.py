"""cocotb verification of generated units on Icarus (default run) and Verilator (marker `verilator`).

One list of unit specs covers the fixed-point MACs (8-bit codes) and the float-accumulator units
(16-bit float activations, fp32 and aligned:K:M).  Every beat of every stream is compared bit for
bit (accumulator, sticky flags and, with result fp32 on a fixed accumulator, the float32 output)
with rf8sim.golden.mac (and, with model "both", the independent pure-Python reference), and the
number of compared beats is asserted.

Default run (Icarus): rf8xrf8, e4m3xe4m3, e5m2xe5m2, int8xint8, rf8xint8 with all 65,536 single
products (clear every beat) plus 100 random sequences (length <= 256), exact accumulator, lanes 1;
rf8xrf8 lanes 4 fp32 (every lane sees every pair); bf16xrf8 fp32 (64 activation codes x every
weight code + 40 sequences); fp16xrf8 aligned:8:16 lanes 4 against golden and reference; narrow
accumulators that overflow; one Python-driven cocotb test; the checked-in golden/mac_*.npz traces
and three golden/mac16_*.npz traces replayed; the README's rtlsim commands.  Verilator lane: rf8xrf8
exact lanes 1.  Slow (--runslow): 10,000 sequences per pair and configuration, more float units,
Verilator sweeps of every activation code.
"""


import pytest
import toolcheck

from rf8sim.cli import main
from rf8sim.hdl import MacSpec
from rf8sim.hdl.sim import render_verify_records, run_direct, vector_files, verify, verify_vector_file
from rf8sim.hdl.stimulus import float_product_sweep, random_stream, sweep_codes

PAIRS = [("rf8", "rf8"), ("e4m3", "e4m3"), ("e5m2", "e5m2"), ("int8", "int8"), ("rf8", "int8")]

icarus = toolcheck.icarus
verilator = [pytest.mark.verilator, toolcheck.verilator]


def _check(summary, spec: MacSpec, products, n_random: int, max_len: int, seed: int):
    """Assert that every beat was compared and matched, and that the counts are what we sent."""
    runs = summary["runs"]
    expected_beats = 0
    if products is not False and spec.kind != "aligned":
        r = runs["products"]
        if spec.kind == "fixed":
            assert r["beats"] == 65536 and r["products"] == 65536 * spec.lanes and r["sequences"] == 65536
        else:
            n = len(float_product_sweep(spec, sweep_codes(spec.a_fields, None if products is True else products, seed)))
            assert r["beats"] == r["sequences"] == n >= 256 * (64 if products is not True else 65536)
        expected_beats += r["beats"]
    if n_random:
        s = random_stream(spec, n_random, seed, max_len)
        r = runs["random"]
        assert r["beats"] == len(s) and r["sequences"] == n_random
        expected_beats += len(s)
    for tag, r in runs.items():
        assert r["latency"] == summary["config"]["latency"] == spec.latency
        for c in r["comparisons"]:
            assert c["compared_beats"] == r["beats"], (tag, c)
            assert c["mismatched_beats"] == 0, (tag, c.get("first_mismatch"))
            assert c["model"] in ("golden", "reference") or c["model"].startswith("golden/products_")
    assert summary["compared_beats"] == expected_beats
    assert summary["ok"]


def _unit(a, w, acc=None, lanes=1, result=None, products=True, n_random=100, max_len=256, seed=1, model="golden",
          marks=()):
    spec = (a, w, acc, lanes, result)
    return pytest.param(spec, products, n_random, max_len, seed, model, marks=marks,
                        id=f"{a}x{w}-{acc or 'exact'}-l{lanes}" + (f"-{result}" if result else ""))


#: the default Icarus run: fixed-point MACs, then the float-accumulator units
UNITS = [*(_unit(a, w) for a, w in PAIRS),
         _unit("rf8", "rf8", None, 4, "fp32", n_random=50, seed=2),
         _unit("bf16", "rf8", "fp32", 1, products=64, n_random=40, max_len=128, seed=0),
         _unit("fp16", "rf8", "aligned:8:16", 4, products=False, n_random=30, max_len=96, seed=0, model="both")]

#: --runslow: more float-accumulator units and longer runs
SLOW_UNITS = [_unit("bf16", "e4m3", "fp32", 4, False, 300, 512, 0, "golden"),
              _unit("bf16", "int8", "aligned:32:16", 4, False, 300, 512, 0, "golden"),
              _unit("fp16", "bf16", "fp32", 2, False, 300, 512, 0, "both"),
              _unit("bf16", "bf16", "aligned:32:16", 1, False, 300, 512, 0, "both"),
              _unit("fp16", "e5m2", "aligned:16:12", 16, False, 300, 512, 0, "golden"),
              *(_unit(a, w, acc, lanes, result, True, 10000, 1024, 100)
                for a, w in PAIRS for acc, lanes, result in
                [("exact", 1, "fixed"), ("exact", 4, "fp32"), ("16:32", 4, "fixed"), ("16:32", 1, "fp32")])]


@icarus
@pytest.mark.parametrize("spec,products,n_random,max_len,seed,model",
                         UNITS + [pytest.param(*p.values, marks=pytest.mark.slow, id=p.id) for p in SLOW_UNITS])
def test_icarus_units(spec, products, n_random, max_len, seed, model):
    spec = MacSpec.make(*spec)
    s = verify(spec, products=products, n_random=n_random, max_len=max_len, seed=seed, model=model)
    _check(s, spec, products, n_random, max_len, seed)
    comparisons = [c["model"] for r in s["runs"].values() for c in r["comparisons"]]
    if model == "both":
        assert "golden" in comparisons and "reference" in comparisons
    if spec.kind == "fixed" and products is True:
        assert f"golden/products_{spec.a.name}_{spec.w.name}.npz" in comparisons  # the checked-in contract
    if spec.a.name in ("e4m3", "e5m2") or spec.kind != "fixed":
        assert sum(r["invalid_beats"] for r in s["runs"].values()) > 0  # NaN/Inf codes were exercised
    if spec.kind == "fp32":
        assert s["runs"]["random"]["overflow_beats"] > 0


@icarus
@pytest.mark.parametrize("pair,acc,lanes,out", [
    (("rf8", "rf8"), "16:32", 1, "fp32"),
    (("e4m3", "e4m3"), "4:12", 4, "fixed"),
    (("int8", "int8"), "0:12", 2, "fp32"),
    pytest.param(("rf8", "rf8"), "2:10", 2, "fp32", marks=pytest.mark.slow),
    pytest.param(("e5m2", "e5m2"), "2:10", 2, "fp32", marks=pytest.mark.slow),
], ids=["rf8-16:32", "e4m3-4:12", "int8-0:12", "rf8-2:10", "e5m2-2:10"])
def test_icarus_narrow_accumulators_overflow(pair, acc, lanes, out):
    spec = MacSpec.make(*pair, acc, lanes, out)
    both = pair == ("rf8", "rf8")  # also against the independent reference
    s = verify(spec, products=False, n_random=150, max_len=512, seed=3, model="both" if both else "golden")
    _check(s, spec, False, 150, 512, 3)
    assert len(s["runs"]["random"]["comparisons"]) == (2 if both else 1)
    assert s["runs"]["random"]["overflow_beats"] > 0  # saturation really happened


@icarus
def test_icarus_python_driven_ports():
    """cocotb drives the generated module's own ports (no wrapper) and checks every beat."""
    cfg = MacSpec.make("e5m2", "e5m2", "4:12", 2, "fp32")
    r = run_direct(cfg, sequences=20, seed=4, max_len=30)
    s = random_stream(cfg, 20, 4, 30)
    assert r["compared_beats"] == len(s) and r["mismatched_beats"] == 0 and r["failed_tests"] == 0
    assert r["latency"] == cfg.latency
    assert r["overflow_beats"] > 0 and r["invalid_beats"] > 0


_DEFAULT_FLOAT_VECTORS = ("mac16_bf16_rf8_fp32_l4", "mac16_bf16_rf8_aligned_32_16_l4", "mac16_bf16_bf16_fp32_l1")


def test_vector_files_present():
    fixed, floats = vector_files("fixed"), vector_files("fp32")
    assert len(fixed) >= 13 and set(_DEFAULT_FLOAT_VECTORS) <= set(floats) and len(floats) >= 12


@icarus
def test_icarus_replays_golden_mac_vectors():
    """Every checked-in golden/mac_*.npz trace (fixed accumulators; fp32 output on every other file) and three
    golden/mac16_*.npz traces (16-bit activations), replayed through the RTL."""
    names = [(n, "fp32" if i % 2 else "fixed") for i, n in enumerate(vector_files("fixed"))]
    names += [(n, None) for n in _DEFAULT_FLOAT_VECTORS]
    total = 0
    for name, out in names:
        c = verify_vector_file(name, out=out or "fixed")
        assert c["compared_beats"] == c["beats"] >= (1000 if out is None else 1), (name, c)
        assert c["mismatched_beats"] == 0, (name, c.get("first_mismatch"))
        total += c["compared_beats"]
    assert len(names) >= 16 and total >= 13 * 1500 + 3 * 1000


@icarus
@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in vector_files("fp32") if n not in _DEFAULT_FLOAT_VECTORS])
def test_icarus_replays_every_float_trace(name):
    c = verify_vector_file(name)
    assert c["compared_beats"] == c["beats"] >= 1000 and c["mismatched_beats"] == 0, c.get("first_mismatch")


@pytest.mark.parametrize("spec,products,n_random,max_len,seed", [
    (("rf8", "rf8", None, 1, "fixed"), True, 100, 1024, 5),
    pytest.param(("e5m2", "e5m2", "16:32", 4, "fp32"), True, 100, 1024, 5, marks=pytest.mark.slow),  # a 2nd C++ build
    pytest.param(("bf16", "rf8", "fp32", 1, None), False, 1000, 1024, 0, marks=pytest.mark.slow),
    pytest.param(("bf16", "rf8", "aligned:32:16", 4, None), False, 1000, 1024, 0, marks=pytest.mark.slow),
    *(pytest.param((a, w, "fp32", 1, None), True, 0, 1024, 0, marks=pytest.mark.slow)
      for a in ("bf16", "fp16") for w in ("rf8", "e4m3", "int8")),   # every activation code x every weight code
], ids=lambda x: str(x))
@pytest.mark.verilator
@toolcheck.verilator
def test_verilator_lane(spec, products, n_random, max_len, seed):
    spec = MacSpec.make(*spec)
    s = verify(spec, products=products, n_random=n_random, max_len=max_len, seed=seed, simulator="verilator")
    _check(s, spec, products, n_random, max_len, seed)


@icarus
def test_cli_rtlsim_readme_commands(tmp_path, capsys):
    """The README's rtlsim commands run as printed (fewer sequences); the aligned unit has no product sweep."""
    import json

    rec = tmp_path / "v.json"
    assert main(["rtlsim", "--a-fmt", "bf16", "--w-fmt", "rf8", "--acc", "aligned:32:16", "--lanes", "4",
                 "--random", "4", "--record", str(rec)]) == 0
    out = capsys.readouterr().out
    assert "no product sweep for aligned:32:16" in out
    r = json.loads(rec.read_text())
    assert r["kind"] == "verify_w8a16" and r["ok"] and list(r["runs"]) == ["random"]
    assert main(["rtlsim", "--a-fmt", "bf16", "--acc", "aligned:32:16", "--lanes", "4", "--sweep", "8"]) == 2
    assert "--sweep" in capsys.readouterr().err


def test_verification_records_in_docs():
    from pathlib import Path

    text = render_verify_records()
    assert text.count("\n") >= 4 and " 0 of 16,777,216 |" in text      # at least one exhaustive sweep recorded
    doc = (Path(__file__).resolve().parents[1] / "docs" / "hdl.md").read_text()
    assert f"<!-- BEGIN generated:hdl:w8a16-verify -->\n{text}<!-- END generated:hdl:w8a16-verify -->" in doc
