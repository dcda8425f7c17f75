"""Yosys SAT proof: each generated product stage equals the format-table reference on all 2^16 pairs."""

import pytest
import toolcheck

from rf8sim.hdl.formal import prove_product_stage

pytestmark = toolcheck.yosys


@pytest.mark.parametrize("a,w", [("rf8", "rf8"), ("e4m3", "e4m3"), ("e5m2", "e5m2"), ("int8", "int8"),
                                 ("rf8", "int8")])
def test_product_stage_proved(a, w, tmp_path):
    assert prove_product_stage(a, w, tmp_path)["proved"]


def test_proof_can_fail(tmp_path):
    """One wrong significand in the reference table must break the proof."""
    assert not prove_product_stage("rf8", "rf8", tmp_path, mutate=True)["proved"]
