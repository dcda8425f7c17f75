"""cocotb verification of generated MACs on Icarus (default run) and Verilator (marker `verilator`).

Every beat of every stream is compared bit for bit (accumulator, sticky flags and,
with out="fp32", the float32 output) with rf8sim.golden.mac (or, where the golden
model is missing, the independent pure-Python reference), and the number of
compared beats is asserted.

Default run (Icarus): for each of rf8xrf8, e4m3xe4m3, e5m2xe5m2, int8xint8, rf8xint8 all
65,536 single products (clear every beat) plus 100 random sequences (length <= 256),
exact accumulator, lanes 1, fixed; rf8xrf8 lanes 4 fp32 (65,536 beats x 4 lanes, every
lane sees every pair) + 50 sequences; narrow accumulators that overflow (16:32 against
golden and the pure-Python reference, 4:12, 0:12) with 150 sequences; one Python-driven
cocotb test; every checked-in golden/mac_*.npz trace replayed (and the
products sweeps also compared with golden/products_*.npz).  Verilator lane: rf8xrf8 exact lanes 1
(products + 100 sequences of length 1..1024); e5m2 16:32 lanes 4 fp32 in the slow run.  Slow (--runslow): 10,000
sequences of length 1..1024 per pair and configuration, lanes 1 and 4, both modes.
"""


import pytest
import toolcheck

from rf8sim.hdl.mac import MacConfig
from rf8sim.hdl.sim import _vectors, run_direct, verify, verify_vector_file
from rf8sim.hdl.stimulus import random_stream

PAIRS = [("rf8", "rf8"), ("e4m3", "e4m3"), ("e5m2", "e5m2"), ("int8", "int8"), ("rf8", "int8")]

icarus = toolcheck.icarus
verilator = [pytest.mark.verilator, toolcheck.verilator]


def _check(summary, products: bool, n_random: int, lanes: int, max_len: int = 1024, seed: int = 0,
           pair=None):
    """Assert that every beat was compared and matched, and that the counts are what we sent."""
    runs = summary["runs"]
    expected_beats = 0
    if products:
        r = runs["products"]
        assert r["beats"] == 65536 and r["products"] == 65536 * lanes and r["sequences"] == 65536
        expected_beats += 65536
    if n_random:
        s = random_stream(pair[0], pair[1], lanes, n_random, seed, max_len)
        r = runs["random"]
        assert r["beats"] == len(s) and r["sequences"] == n_random
        expected_beats += len(s)
    for tag, r in runs.items():
        assert r["latency"] == summary["config"]["latency"]
        for c in r["comparisons"]:
            assert c["compared_beats"] == r["beats"], (tag, c)
            assert c["mismatched_beats"] == 0, (tag, c.get("first_mismatch"))
            assert c["model"] in ("golden", "reference") or c["model"].startswith("golden/products_")
    assert summary["compared_beats"] == expected_beats
    assert summary["ok"]


@icarus
@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}x{p[1]}")
def test_icarus_all_products_and_random(pair):
    s = verify(*pair, None, 1, "fixed", products=True, n_random=100, max_len=256, seed=1)
    _check(s, True, 100, 1, 256, 1, pair)
    models = [c["model"] for c in s["runs"]["products"]["comparisons"]]
    if _vectors() is not None:  # also the checked-in golden/products_<a>_<w>.npz contract
        assert f"golden/products_{pair[0]}_{pair[1]}.npz" in models
    if pair[0] in ("e4m3", "e5m2"):
        assert s["runs"]["products"]["invalid_beats"] > 0  # NaN/Inf codes were exercised


@icarus
def test_icarus_rf8_lanes4_fp32():
    s = verify("rf8", "rf8", None, 4, "fp32", products=True, n_random=50, max_len=256, seed=2)
    _check(s, True, 50, 4, 256, 2, ("rf8", "rf8"))


@icarus
@pytest.mark.parametrize("pair,acc,lanes,out", [
    (("rf8", "rf8"), "16:32", 1, "fp32"),
    (("e4m3", "e4m3"), "4:12", 4, "fixed"),
    (("int8", "int8"), "0:12", 2, "fp32"),
], ids=["rf8-16:32", "e4m3-4:12", "int8-0:12"])
def test_icarus_narrow_accumulators_overflow(pair, acc, lanes, out):
    both = pair == ("rf8", "rf8")  # also against the independent reference
    s = verify(*pair, acc, lanes, out, products=False, n_random=150, max_len=512, seed=3,
               model="both" if both else "golden")
    _check(s, False, 150, lanes, 512, 3, pair)
    assert len(s["runs"]["random"]["comparisons"]) == (2 if both else 1)
    assert s["runs"]["random"]["overflow_beats"] > 0  # saturation really happened


@icarus
def test_icarus_python_driven_ports():
    """cocotb drives the generated module's own ports (no wrapper) and checks every beat."""
    cfg = MacConfig.make("e5m2", "e5m2", "4:12", 2, "fp32")
    r = run_direct(cfg, sequences=20, seed=4, max_len=30)
    s = random_stream("e5m2", "e5m2", 2, 20, 4, 30)
    assert r["compared_beats"] == len(s) and r["mismatched_beats"] == 0 and r["failed_tests"] == 0
    assert r["latency"] == cfg.latency
    assert r["overflow_beats"] > 0 and r["invalid_beats"] > 0


def _mac_vector_files():
    vec = _vectors()
    return [n for n in vec.list_vectors() if n.startswith("mac_")] if vec else []


@icarus
def test_icarus_replays_golden_mac_vectors():
    """Every checked-in golden/mac_*.npz trace, replayed through the RTL (fp32 output on every other file)."""
    names = _mac_vector_files()  # checked in under golden/: their absence is a failure, not a skip
    total = 0
    for i, name in enumerate(names):
        c = verify_vector_file(name, out="fp32" if i % 2 else "fixed")
        assert c["compared_beats"] == c["beats"] > 0 and c["mismatched_beats"] == 0, (name, c.get("first_mismatch"))
        total += c["compared_beats"]
    assert len(names) >= 13 and total >= 13 * 1500


# ---- the full suites ------------------------------------------------------------

SLOW_CONFIGS = [("exact", 1, "fixed"), ("exact", 4, "fp32"), ("16:32", 4, "fixed"), ("16:32", 1, "fp32")]


@icarus
@pytest.mark.slow
@pytest.mark.parametrize("acc,lanes,out", SLOW_CONFIGS, ids=lambda x: str(x))
@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}x{p[1]}")
def test_icarus_full_suite(pair, acc, lanes, out):
    s = verify(*pair, acc, lanes, out, products=True, n_random=10000, max_len=1024, seed=100)
    _check(s, True, 10000, lanes, 1024, 100, pair)


@icarus
@pytest.mark.slow
@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}x{p[1]}")
def test_icarus_very_narrow_accumulator(pair):
    s = verify(*pair, "2:10", 2, "fp32", products=False, n_random=2000, max_len=1024, seed=200)
    _check(s, False, 2000, 2, 1024, 200, pair)
    assert s["runs"]["random"]["overflow_beats"] > 0


@pytest.mark.parametrize("pair,acc,lanes,out", [
    (("rf8", "rf8"), None, 1, "fixed"),
    pytest.param(("e5m2", "e5m2"), "16:32", 4, "fp32", marks=pytest.mark.slow),  # a second C++ build
], ids=["rf8-exact-l1", "e5m2-16:32-l4-fp32"])
@pytest.mark.verilator
@toolcheck.verilator
def test_verilator_lane(pair, acc, lanes, out):
    s = verify(*pair, acc, lanes, out, products=True, n_random=100, max_len=1024, seed=5, simulator="verilator")
    _check(s, True, 100, lanes, 1024, 5, pair)
