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
    with pytest.raises(HdlError, match="'apot4' has 4-bit codes; the fixed-point MAC takes 8-bit formats"):
        MacSpec.make(a="e4m3", w="apot4", acc=None)
