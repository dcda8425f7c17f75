"""Synthesis driver: results are self-consistent and the RF8 product stage has no multiplier."""


import pytest
import toolcheck

from rf8sim.hdl import HdlError
from rf8sim.hdl.synth import NAND2_WEIGHTS, default_liberty, synthesize

pytestmark = toolcheck.yosys


def _liberty():
    try:
        return default_liberty()
    except HdlError:
        return None


def test_product_stage_generic_and_cells(tmp_path):
    lib = _liberty()
    r = synthesize("rf8", "rf8", "16:32", 1, "fixed", "product", liberty=lib, use_cache=False, root=tmp_path)
    g = r["generic"]
    assert g["flops"] == 0 and g["nand2_eq_seq"] == 0  # combinational
    assert g["nand2_eq"] == sum(n * NAND2_WEIGHTS[c] for c, n in g["cells"].items())
    assert g["gates"] == sum(g["cells"].values()) and g["depth"] > 0
    if lib is not None:
        lr = r["liberty"]
        assert lr["area_seq_um2"] == 0 and lr["area_um2"] > 0
        assert abs(lr["area_um2"] - lr["yosys_chip_area_um2"]) < 1e-6 * lr["area_um2"] + 1e-3
    # cached on the second call, same numbers
    r2 = synthesize("rf8", "rf8", "16:32", 1, "fixed", "product", liberty=lib, root=tmp_path)
    assert r2["cached"] and r2["generic"] == g


def test_mac_has_registers(tmp_path):
    r = synthesize("int8", "int8", "0:12", 1, "fixed", "mac", liberty=None, use_cache=False, root=tmp_path)
    # stage-1 registers (product 16 + valid/clear/invalid) and the accumulator with its flags and valid
    assert r["generic"]["flops"] >= 12 + 16 and r["generic"]["nand2_eq_seq"] > 0
    assert "liberty" not in r


def test_bad_liberty(tmp_path):
    with pytest.raises(HdlError, match="Liberty file .*nope.lib not found"):
        synthesize("rf8", "rf8", "16:32", 1, "fixed", "product", liberty=tmp_path / "nope.lib", root=tmp_path)
    with pytest.raises(HdlError, match="stage"):
        synthesize("rf8", "rf8", "16:32", 1, "fixed", "adder", liberty=None, root=tmp_path)
