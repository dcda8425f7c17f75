"""rf8sim.verify (verify-layer) on a real all-MiniLM-L6-v2 layer: 8-bit and W8A16 paths, honest verdicts."""

import shutil

import pytest
import torch

from rf8sim import formats as F
from rf8sim.verify import DEFAULT_LAYER, VerifyError, verdict, verify_layer
from toolcheck import needs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_minilm_layer_8bit_and_w8a16():
    n = 0
    rep = verify_layer(layer=DEFAULT_LAYER, batch=6, a_fmt="rf8", w_fmt="rf8", rtl_slice=0)
    assert rep["ok"] and rep["config"]["in"] == 384 and rep["config"]["batch"] == 6
    assert verdict(rep) == "OK: torch == golden (bit-identical); RTL not run (--no-rtl)"
    n += sum(c["compared"] for c in rep["checks"])
    for acc in ("fp32", "aligned:32:16"):
        rep = verify_layer(layer=DEFAULT_LAYER, batch=6, a_fmt="bf16", w_fmt="rf8", acc=acc, rtl_slice=0)
        assert rep["ok"] and rep["acc"] == acc
        assert rep["checks"][0]["compared"] == 6 * 384 and rep["checks"][0]["mismatches"] == 0
        golden = "ran" if "bf16" in F.names() else "not run"
        assert rep["legs"]["golden"].startswith(golden) and rep["legs"]["rtl"] == "not run (--no-rtl)"
        v = verdict(rep)
        if golden == "ran":
            assert v == "OK: torch == golden (bit-identical); RTL not run (--no-rtl)"
        else:
            assert v.startswith("OK: torch (its own checks only); golden not run (")
        n += sum(c["compared"] for c in rep["checks"])
        # the fast path (float32 F.linear) is not the sequential chain: it agrees on part of the outputs only
        assert 0.0 < rep["float32_linear_bitexact_fraction"] < 1.0 or acc != "fp32"
    assert n > 20000


def test_verdict_on_a_mismatch():
    rep = verify_layer(in_features=32, out_features=4, batch=2, rtl_slice=0)
    rep["checks"][2]["mismatches"] = 1
    rep["ok"] = False
    assert verdict(rep).startswith("MISMATCH in accumulators")


def test_bad_arguments():
    with pytest.raises(VerifyError, match="MiniLM has no Linear layer 'encoder.nope'"):
        verify_layer(layer="encoder.nope", rtl_slice=0)
    with pytest.raises(VerifyError, match="rounding 'paper' is not valid for e4m3"):
        verify_layer(w_fmt="e4m3", rounding="paper", rtl_slice=0)
    with pytest.raises(VerifyError, match="aligned:24:16: K=24 must divide the layer's 256 inputs"):
        verify_layer(a_fmt="bf16", acc="aligned:24:16", rtl_slice=0)
    with pytest.raises(VerifyError, match="8-bit activations .e4m3. take a fixed-point accumulator"):
        verify_layer(a_fmt="e4m3", acc="fp32", rtl_slice=0)
    with pytest.raises(VerifyError, match="weights are 8-bit formats here, got bf16"):
        verify_layer(a_fmt="bf16", w_fmt="bf16", rtl_slice=0)
    with pytest.raises(VerifyError, match="batch must be a positive integer"):
        verify_layer(batch=0)
    assert torch.is_tensor(torch.zeros(1))


@needs(shutil.which("iverilog"), "Icarus Verilog", "apt-get install iverilog (make sysdeps)")
def test_w8a16_rtl_leg_runs(tmp_path):
    """bf16 x rf8 through the W8A16 MAC on Icarus: all three legs, and the record says so."""
    from rf8sim.cli import main
    from rf8sim.infra.records import read_record

    out = tmp_path / "v.json"
    assert main(["verify-layer", "--in-features", "32", "--out-features", "4", "--batch", "2", "--a-fmt", "bf16",
                 "--acc", "aligned:16:12", "--rtl-slice", "2", "--require-all", "--json", str(out)]) == 0
    rec = read_record(out)
    assert rec["verdict"] == "OK: torch == golden == RTL (bit-identical)"
    rtl = [c for c in rec["verify_layer"]["checks"] if c["check"].startswith("RTL W8A16 MAC")]
    assert len(rtl) == 1 and rtl[0]["compared"] == 6 and rtl[0]["mismatches"] == 0
    assert rec["provenance"]["command"].startswith("rf8sim") or rec["provenance"]["command"]


def test_docs_table_is_generated_from_the_records():
    import pathlib
    import re

    from rf8sim.verify import RECORDS, render_records

    root = pathlib.Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "training.md").read_text()
    m = re.search(r"^<!-- BEGIN generated:training:verify-layer -->\n(.*?)^<!-- END generated:training:verify-layer -->$",
                  doc, re.S | re.M)
    assert m and m.group(1) == render_records(root)
    assert m.group(1).count("OK: torch == golden == RTL (bit-identical)") == len(RECORDS) == 3
