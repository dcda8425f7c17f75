"""Yosys SAT proofs of the zoo's product stages (issue 21): the ABC-assisted and per-weight-code forms of
:func:`rf8sim.hdl.formal.prove_product_stage` prove a table-decoded unit and fail on a broken reference."""

import pytest
import toolcheck

from rf8sim import formats as F
from rf8sim.hdl import MacSpec
from rf8sim.hdl.formal import prove_product_stage

pytestmark = toolcheck.yosys


@pytest.mark.parametrize("mutate", [False, True])
def test_abc_assisted_proof(mutate, tmp_path):
    F.register_rf8_variants()
    r = prove_product_stage(MacSpec.make("rf8", "rf8t1", None), workdir=tmp_path, abc=True, mutate=mutate)
    assert r["proved"] is (not mutate) and r["pairs"] == 1 << 16


@pytest.mark.slow
@pytest.mark.parametrize("mutate", [False, True])
def test_per_weight_code_proof(mutate, tmp_path):
    r = prove_product_stage(MacSpec.make("e4m3", "rf8", None), workdir=tmp_path, split_w=True, mutate=mutate)
    assert r["proved"] is (not mutate) and r["pairs"] == 1 << 16 and r["sat_problems"] == 256
