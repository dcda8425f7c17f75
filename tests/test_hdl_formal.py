"""Yosys SAT proof: each generated product stage equals a reference written from the format definitions,
for every code pair at once (2^16 pairs of 8-bit codes; 2^24 for a 16-bit activation x 8-bit weight,
2^32 with bf16 weights)."""

import pytest
import toolcheck

from rf8sim.hdl import MacSpec
from rf8sim.hdl.formal import prove_product_stage

pytestmark = toolcheck.yosys

#: (a, w, acc): the 8-bit pairs (fixed accumulator) and the 16-bit-activation units' product stages
SPECS = [("rf8", "rf8", None), ("e4m3", "e4m3", None), ("e5m2", "e5m2", None), ("int8", "int8", None),
         ("rf8", "int8", None), ("bf16", "rf8", "fp32")]
SLOW = [(a, w, "fp32") for a in ("bf16", "fp16") for w in ("rf8", "e4m3", "e5m2", "int8", "bf16")
        if (a, w) != ("bf16", "rf8")]


@pytest.mark.parametrize("a,w,acc", SPECS + [pytest.param(*s, marks=pytest.mark.slow) for s in SLOW],
                         ids=lambda x: str(x))
def test_product_stage_proved(a, w, acc, tmp_path):
    spec = MacSpec.make(a, w, acc)
    r = prove_product_stage(spec, tmp_path)
    assert r["proved"] and r["pairs"] == 1 << (spec.a_bits + spec.w_bits)


@pytest.mark.parametrize("a,w,acc", [("rf8", "rf8", None), ("bf16", "rf8", "fp32"),
                                     pytest.param("fp16", "bf16", "fp32", marks=pytest.mark.slow),
                                     pytest.param("bf16", "int8", "fp32", marks=pytest.mark.slow)])
def test_proof_can_fail(a, w, acc, tmp_path):
    """One wrong table entry (or, for bf16 weights, a wrong activation bias) in the reference breaks the proof."""
    assert not prove_product_stage(MacSpec.make(a, w, acc), tmp_path, mutate=True)["proved"]


def test_older_call_form(tmp_path):
    assert prove_product_stage("rf8", "int8", tmp_path, False)["proved"]
