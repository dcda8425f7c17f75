"""`rf8sim study zoo` (issue 21, item 2): its pieces, its generated sentences and its bad input."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from rf8sim.cli import main
from rf8sim.golden import dequantize, quantize
from rf8sim.golden.blocks import dequantize_block, quantize_block
from rf8sim.study.zoo import study as zoo
from rf8sim.study.zoo.report import ZOO_RECORD, load_zoo_record, zoo_facts


def test_fake_weights_and_bits():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 64)).astype(np.float32)
    for name in ("rf8", "apot8", "lns8", "posit8", "rf8t1"):
        c, k = quantize(w, name, granularity="channel")
        assert np.array_equal(zoo.fake_weights(w, name), dequantize(c, k, name, granularity="channel"))
    for name in ("mxfp4", "nvfp4", "mxint8"):
        assert np.array_equal(zoo.fake_weights(w, name), dequantize_block(quantize_block(w, name), name))
    assert zoo.bits_per_weight("rf8", 6, 64) == 8 + 8 / 64
    assert zoo.bits_per_weight("mxfp4", 6, 64) == 4.25
    assert zoo.bits_per_weight("nvfp4", 6, 64) == 4.5 + 32 / (6 * 64)


def test_gg_sqnr_rows():
    rows = zoo.gg_sqnr(("rf8", "e4m3", "rf8t2", "mxfp4"), shapes=(1.0,), rows=4, cols=256)
    by = {r["format"]: r for r in rows}
    assert len(rows) == 4 and by["mxfp4"]["bits_per_weight"] == 4.25
    assert by["rf8t2"]["sqnr_db"] > by["rf8"]["sqnr_db"] + 2  # the reclaimed codes buy about 3 dB


def _fake_record(rf8_minus_apot: float, best_minus_e4m3: float) -> dict:
    fm = ["rf8", "rf8t1", "e4m3", "apot8"]
    sq = {"rf8": 28.0, "apot8": 28.0 - rf8_minus_apot, "e4m3": 31.0, "rf8t1": 31.0 + best_minus_e4m3}
    return {"params": {"formats": fm, "shapes": [1.0]},
            "gg": [{"format": f, "shape": 1.0, "sqnr_db": sq[f], "bits_per_weight": 8.0} for f in fm],
            "minilm_weights": [{"format": f, "sqnr_db": sq[f], "bits_per_weight": 8.016} for f in fm],
            "minilm_cosine": []}


def test_generated_sentences_either_way():
    up = zoo_facts(_fake_record(5.0, 0.5))
    assert "RF8's SQNR on the MiniLM weights is 5.00 dB above APoT8's" in up[0]
    assert "rf8t1 (of rf8t1), is 0.50 dB above E4M3" in up[1]
    down = zoo_facts(_fake_record(-2.0, -1.0))
    assert "2.00 dB below APoT8's" in down[0] and "1.00 dB below E4M3" in down[1]


def test_checked_in_record_facts():
    rec = load_zoo_record()
    facts = zoo_facts(copy.deepcopy(rec))
    assert facts[0].startswith("RF8 against APoT at equal bits") and "E4M3" in facts[1]
    assert {"rf8", "apot8", "e4m3", "mxfp4", "nvfp4"} <= set(rec["params"]["formats"])
    assert str(ZOO_RECORD) == "study/results/zoo.json"


@pytest.mark.parametrize("fmts,msg", [("rf8,posit16", "posit16 has no weight role"),
                                      ("rf9", "unknown format 'rf9'")])
def test_zoo_cli_bad_input(fmts, msg, capsys):
    assert main(["study", "zoo", "--formats", fmts, "--no-cosine"]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and err.strip().count("\n") == 0


def _cos_row(fmt, mode, loss, sentences=1000, datapath="float32 model, quantized weights", **kw):
    return {"format": fmt, "mode": mode, "datapath": datapath, "loss": loss, "loss_lo": loss * 0.99,
            "loss_hi": loss * 1.01, "sentences": sentences, "seconds": 1.0, **kw}


def test_reusable_rows_only_where_the_quantized_weights_are_unchanged():
    old = {"provenance": {"commit": "a" * 40, "utc": "2026-12-07T19:06:21Z", "command": "rf8sim study zoo"},
           "params": {"seed": 0},
           "minilm_weights": [{"format": "rf8", "sqnr_db": 28.455518463612105},
                              {"format": "apot8", "sqnr_db": 22.402341572835326}],
           "minilm_cosine": [_cos_row("rf8", "weight-only", 3e-3), _cos_row("apot8", "weight-only", 1e-2),
                             _cos_row("rf8", "W8A8", 5e-3, 200, "rf8 channel acc exact")]}
    now = [{"format": "rf8", "sqnr_db": 28.455518463612105}, {"format": "apot8", "sqnr_db": 22.40234157283533}]
    got = zoo.reusable_rows(old, now, seed=0)
    # apot8's weights moved in the last bit of their SQNR: its row is measured again
    assert set(got) == {("rf8", "weight-only", "float32 model, quantized weights", 1000),
                        ("rf8", "W8A8", "rf8 channel acc exact", 200)}
    r = got[("rf8", "weight-only", "float32 model, quantized weights", 1000)]
    assert r["reused_from"]["commit"] == "a" * 40 and r["loss"] == 3e-3
    assert zoo.reusable_rows(old, now, seed=1) == {}  # another seed: other sentences' bootstrap
    # a row reused once keeps naming the record that measured it
    old2 = {**old, "provenance": {"commit": "b" * 40}, "minilm_cosine": [r]}
    again = zoo.reusable_rows(old2, now, seed=0)
    assert next(iter(again.values()))["reused_from"]["commit"] == "a" * 40


def test_w8a16_table_and_posit16_sentence():
    from rf8sim.study.zoo.report import render_zoo_table

    rec = _fake_record(5.0, 0.5)
    chk = {"sentences": 1, "layers": 36, "rows": 288, "outputs": 165_888, "mismatches": 0, "reference": "torch"}
    rec["minilm_cosine"] = [_cos_row("rf8", "W8A16", 4e-3, datapath="rf8/a:posit16 channel acc fp32",
                                     activation="posit16", torch_check=chk),
                            _cos_row("rf8", "W8A16", 2e-3, datapath="rf8/a:bf16 channel acc fp32",
                                     activation="bf16", torch_check=chk)]
    facts = zoo_facts(rec)
    assert any(f.startswith("posit16 against bf16 activations on RF8 weights") and "lower for bf16" in f
               for f in facts)
    rec["minilm_cosine"][0]["loss"] = 1.5e-3
    rec["minilm_cosine"][0]["loss_lo"], rec["minilm_cosine"][0]["loss_hi"] = 1.4e-3, 1.6e-3
    assert any("lower for posit16" in f for f in zoo_facts(rec))
    rec.update(provenance={"command": "c", "commit": "d" * 40, "machine": {"cpu": "x", "cores": 2}},
               params={**rec["params"], "rows": 4, "cols": 8})
    import rf8sim.study.zoo.report as R

    orig = R.load_zoo_record
    R.load_zoo_record = lambda path=None: rec
    try:
        table = render_zoo_table()
    finally:
        R.load_zoo_record = orig
    assert "| rf8 | posit16 | 1.50e-03 [1.40e-03, 1.60e-03] | 165,888 in 36 layers (0) |" in table


def test_zoo_mac_table_and_sentences():
    from rf8sim.study.zoo.report import render_zoo_mac_rows

    def row(a, w, mac, prod):
        return {"a": a, "w": w, "acc": "exact" if a != "bf16" else "fp32", "power_stream": "minilm",
                "power_beats": 2000, "clock_ns": 10.0, "mac_area_um2": 10_000.0, "mac_pj": mac,
                "product_area_um2": 4_000.0, "product_pj": prod, "product_share": prod / mac}

    rec = {"provenance": {"command": "rf8sim study zoo-mac", "commit": "e" * 40, "machine": {"cpu": "x", "cores": 2}},
           "rows": [row("e4m3", "e4m3", 40.0, 8.0), row("rf8", "rf8", 30.0, 9.0), row("bf16", "rf8", 100.0, 10.0),
                    row("bf16", "e4m3", 90.0, 15.0)]}
    t = render_zoo_mac_rows(rec)
    assert "| rf8 × rf8 | exact | 10,000 | 30.00 | 4,000 | 9.00 | 30 % |" in t
    assert "with 8-bit activations the least energy per whole MAC is rf8 × rf8's (30.00 pJ of e4m3 × e4m3, " \
           "rf8 × rf8; the least per product stage e4m3 × e4m3's, 8.00 pJ)" in t
    assert "with bf16 activations the least energy per whole MAC is bf16 × e4m3's" in t
    assert "the product stage is 10 to 30 % of a whole MAC's energy here" in t


def test_zoo_mac_cli_bad_input(capsys):
    assert main(["study", "zoo-mac", "--pairs", "e4m3:e2m1"]) == 2
    err = capsys.readouterr().err
    assert "e2m1 has 4-bit codes: the generator builds its product stage only" in err and len(err.splitlines()) == 1
    assert main(["study", "zoo-mac", "--pairs", "e4m3:rf8", "--beats", "0"]) == 2
    assert "--beats must be >= 1" in capsys.readouterr().err
