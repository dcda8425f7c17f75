"""RTL for the zoo's 8-bit weight formats (issue 21, item 3): the table decoder of rf8sim.hdl.

LNS, posits, the three-term RF8 variants (and APoT) decode through a 256-entry table of
(sign, odd significand, exponent) built from rf8sim.formats; the product stage then multiplies
(or shift-adds against an RF8 operand) as for the other formats.  Each unit is simulated with
Icarus on all 65,536 code pairs plus random accumulation sequences against the golden model.
"""

from __future__ import annotations

import pytest
import toolcheck

from rf8sim.hdl import HdlError, MacSpec
from rf8sim.hdl.sim import verify

icarus = toolcheck.icarus


def _ok(s, n_random):
    runs = s["runs"]
    assert runs["products"]["beats"] == 65536 and runs["products"]["products"] == 65536
    if n_random:
        assert runs["random"]["sequences"] == n_random
    for r in runs.values():
        for c in r["comparisons"]:
            assert c["compared_beats"] == r["beats"] and c["mismatched_beats"] == 0, c.get("first_mismatch")
    assert s["ok"]


@icarus
@pytest.mark.parametrize("a,w", [("int8", "lns8"), ("e4m3", "rf8t1"),
                                 pytest.param("posit8", "posit8", marks=pytest.mark.slow),
                                 pytest.param("rf8", "rf8t2", marks=pytest.mark.slow),
                                 pytest.param("e4m3", "posit8", marks=pytest.mark.slow)])
def test_table_formats_match_golden(a, w):
    spec = MacSpec.make(a=a, w=w, acc=None)
    _ok(verify(spec, products=True, n_random=20, max_len=64, vectors=False), 20)


@icarus
def test_table_weights_with_bf16_activations():
    spec = MacSpec.make(a="bf16", w="lns8", acc="fp32")
    s = verify(spec, products=16, n_random=10, max_len=32, vectors=False)
    for r in s["runs"].values():
        for c in r["comparisons"]:
            assert c["compared_beats"] == r["beats"] > 0 and c["mismatched_beats"] == 0
    assert s["runs"]["products"]["beats"] >= 16 * 256 and s["ok"]


def test_table_formats_bad_input():
    with pytest.raises(HdlError, match="posit16': the fp32 accumulator takes 16-bit float activations"):
        MacSpec.make(a="posit16", w="rf8", acc=None)
    with pytest.raises(HdlError, match="'posit16' has 16-bit codes; the fixed-point MAC takes 8-bit formats"):
        MacSpec.make(a="e4m3", w="posit16", acc=None)
    # 4-bit weights: a spec and its product stage, never a whole unit
    from rf8sim.hdl import make_unit
    from rf8sim.hdl.units import product_stage

    for a, w in (("e4m3", "apot4"), ("bf16", "e2m1")):
        spec = MacSpec.make(a=a, w=w, acc=None)
        product_stage(spec)
        with pytest.raises(HdlError, match=f"{w} has 4-bit codes: the generator builds its product stage only"):
            make_unit(spec)


# ---------------------------------------------------------------------------
# 4-bit weights (APoT4; E2M1, the elements of MXFP4 and NVFP4): product stages only


icarus_only = toolcheck.needs(toolcheck.iverilog_available, "Icarus Verilog", "apt-get install iverilog")
NARROW8 = (("e4m3", "apot4"), ("e4m3", "e2m1"), ("int8", "e2m1"), ("rf8", "apot4"))


@icarus_only
def test_narrow_product_stages_every_code_pair():
    from rf8sim.hdl.prodsim import simulate_product_stage

    n = 0
    for a, w in NARROW8:
        r = simulate_product_stage(MacSpec.make(a=a, w=w, acc=None))
        assert r["mismatches"] == 0, (a, w, r["first"])
        n += r["pairs"]
    assert n == 4 * 256 * 16


@icarus_only
def test_product_stage_check_catches_a_wrong_circuit(monkeypatch):
    from rf8sim.hdl import prodsim, units

    wrong = units.product_stage(MacSpec.make(a="e4m3", w="e2m1", acc=None))  # e2m1's circuit, apot4's spec
    monkeypatch.setattr(units, "product_stage", lambda spec: wrong)
    r = prodsim.simulate_product_stage(MacSpec.make(a="e4m3", w="apot4", acc=None))
    assert r["pairs"] == 4096 and r["mismatches"] > 1000 and r["first"] is not None


@icarus_only
@pytest.mark.slow
@pytest.mark.parametrize("w", ("apot4", "e2m1"))
def test_narrow_product_stages_bf16_every_code_pair(w):
    from rf8sim.hdl.prodsim import simulate_product_stage

    r = simulate_product_stage(MacSpec.make(a="bf16", w=w, acc="fp32"))
    assert r["pairs"] == 1 << 20 and r["mismatches"] == 0, r["first"]


@toolcheck.yosys
@pytest.mark.parametrize("a,w", [("e4m3", "apot4"), ("bf16", "e2m1")])
def test_narrow_product_stages_sat_proved(a, w, tmp_path):
    from rf8sim.hdl.formal import prove_product_stage

    spec = MacSpec.make(a=a, w=w, acc=None)
    r = prove_product_stage(spec, workdir=tmp_path / "ok")
    assert r["proved"] and r["pairs"] == (1 << (spec.a_bits + 4))
    assert not prove_product_stage(spec, workdir=tmp_path / "mutated", mutate=True)["proved"]
