"""TinyLM held-out bits per byte (rf8sim.study.tinylm.study): the metric against independent references, every
Linear layer bit-exact, the statistics' marks, the cache, and bad input before any long work."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from rf8sim.infra.docgen import DocgenError
from rf8sim.study.tinylm import study as TL
from rf8sim.study.common.config import ConfigError, config_from_dict
from rf8sim.study.minilm.transformer import DatapathConfig, DatapathError, ExactLinear, exactify, torch_check

SPEC = TL.TinyLMSpec(d_model=32, n_layer=1, n_head=2, block=32, steps=30, batch_size=16, chunks=24, a16_chunks=6,
                     configs=("rf8", "int8", "rf8/bf16@fp32"), bootstrap=300, max_terms=1024)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return TL.run_tinylm_study(SPEC, progress=False, cache_dir=cache), cache


def _python_bits(logits: np.ndarray, targets: np.ndarray) -> float:
    """-log2 p(target) per byte from the float32 logits with Python floats (math.fsum log-sum-exp)."""
    tot = []
    for row, t in zip(logits.astype(float).tolist(), targets.tolist()):
        m = max(row)
        lse = m + math.log(math.fsum(math.exp(v - m) for v in row))
        tot.append((lse - row[t]) / math.log(2))
    return math.fsum(tot) / len(tot)


def test_bits_per_byte_against_independent_references(study):
    """float32 and one bit-exact config: chunk_bits == torch float32 cross entropy / ln 2 per byte, and == a
    Python-float log-sum-exp on three chunks; the recorded float32 mean == the reference mean."""
    res, cache = study
    model, meta = TL.train_tinylm(SPEC, cache_dir=cache, progress=False)
    assert meta["cached"]  # the study trained it; the same settings load it back
    chunks = TL.prepare(SPEC)
    assert chunks.shape == (24, 33)
    for m in (model, exactify(model, DatapathConfig("rf8"), 1024)):
        with torch.no_grad():
            logits = m(chunks[:, :-1])
            ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), chunks[:, 1:].flatten(), reduction="none")
        ref = ce.view(24, 32).double().sum(1).numpy() / (32 * math.log(2))
        got = TL.chunk_bits(m, chunks, batch=7)  # batching must not matter
        np.testing.assert_allclose(got, ref, rtol=2e-6)
        for i in (0, 11, 23):
            assert abs(got[i] - _python_bits(logits[i].numpy(), chunks[i, 1:].numpy())) < 1e-9
    f32 = res["points"][0]
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(chunks[:, :-1]).flatten(0, 1), chunks[:, 1:].flatten())
    assert f32["label"] == "float32" and abs(f32["bpb"] - float(loss) / math.log(2)) < 1e-5
    assert f32["bpb_lo"] < f32["bpb"] < f32["bpb_hi"]


def test_every_linear_layer_is_bit_exact(study):
    """Every Linear of the TinyLM is an ExactLinear; the stage's per-layer torch check compared all of them
    (count asserted) with 0 mismatches; one layer against Python integers / Fractions."""
    from test_study_minilm_transformer import _ref_linear

    res, cache = study
    assert res["layers"] == ["blocks.0.qkv", "blocks.0.proj", "blocks.0.fc1", "blocks.0.fc2", "head"]
    ck = res["torch_check"]
    assert len(ck) == 3 * 5 and {r["layer"] for r in ck} == set(res["layers"])
    assert sum(r["outputs"] for r in ck) > 0 and sum(r["mismatches"] for r in ck) == 0
    assert {r["reference"] for r in ck if "fp32" in r["config"]} == {"torch rf8sim.training.w8a16.gemm16"}
    model, _ = TL.train_tinylm(SPEC, cache_dir=cache, progress=False)
    q = exactify(model, DatapathConfig("e4m3", acc="4:20"), 1024)
    lins = [m for m in q.modules() if isinstance(m, ExactLinear)]
    assert len(lins) == 5
    rows = torch_check(q, lambda: q(TL.prepare(SPEC)[:1, :-1]))
    assert len(rows) == 5 and sum(r["mismatches"] for r in rows) == 0
    # fp16 activations with the aligned accumulator, block scales, RF8's paper rounding: bit-exact per layer too
    for dp in (DatapathConfig("rf8", "fp16", acc="aligned:32:16"), DatapathConfig("int8", granularity="block"),
               DatapathConfig("rf8", rounding="paper", granularity="tensor", acc="8:24")):
        q2 = exactify(model, dp, 1024)
        rows = torch_check(q2, lambda: q2(TL.prepare(SPEC)[:1, :-1]))
        assert len(rows) == 5 and sum(r["outputs"] for r in rows) > 0 and sum(r["mismatches"] for r in rows) == 0
    head = q.head
    x2 = np.random.default_rng(0).normal(0, 1, (2, 32)).astype(np.float32)
    np.testing.assert_array_equal(head.golden_rows(x2)[0].view(np.uint32), _ref_linear(head, x2).view(np.uint32))


def test_study_rows_pairs_and_cache(study, tmp_path):
    res, cache = study
    labels = [p["label"] for p in res["points"]]
    assert labels == ["float32", "rf8 channel acc exact", "int8 channel acc exact", "rf8/a:bf16 channel acc fp32"]
    assert [p["chunks"] for p in res["points"]] == [24, 24, 24, 6]
    assert len(res["pairs"]) == 6
    for r in res["pairs"]:
        n = min(len(res["per_chunk"][r["a"]]), len(res["per_chunk"][r["b"]]))
        assert r["chunks"] == n and r["n"] == n
        d = np.array(res["per_chunk"][r["a"]][:n]) - np.array(res["per_chunk"][r["b"]][:n])
        assert r["diff"] == pytest.approx(d.mean(), abs=1e-12)
    for p in res["points"][1:]:
        r = next(x for x in res["pairs"] if x["a"] == "float32" and x["b"] == p["label"])
        assert p["delta"] == -r["diff"] and p["delta_significant"] == r["significant"]
        assert p["overflow"] == 0 and p["outputs"] > 0
    assert res["train"]["cached"] is False and res["train"]["n_params"] == sum(
        p.numel() for p in TL._model(SPEC).parameters())


def test_pairwise_marks_significance():
    """Marks come from stats.paired_test: a consistent shift is significant, symmetric noise and identical
    values are not, and configs with fewer chunks are compared on the common prefix."""
    rng = np.random.default_rng(0)
    base = rng.normal(2.5, 0.3, 200)
    noise = rng.normal(0, 1e-3, 200)
    per = {"float32": base, "shift": base + 0.01 + noise, "noise": base + noise, "same": base.copy(),
           "short": (base + 0.02)[:30]}
    pr = {(r["a"], r["b"]): r for r in TL.pairwise(per, 500)}
    assert len(pr) == 10
    assert pr[("float32", "shift")]["significant"] and pr[("float32", "shift")]["hi"] < 0
    assert not pr[("float32", "noise")]["significant"]
    assert not pr[("float32", "same")]["significant"] and pr[("float32", "same")]["p_wilcoxon"] == 1.0
    assert pr[("float32", "short")]["chunks"] == 30 and pr[("float32", "short")]["significant"]
    assert pr[("shift", "noise")]["significant"] and pr[("shift", "noise")]["diff"] > 0


def test_heldout_text_is_disjoint_and_chunks_are_spread():
    from rf8sim.workloads.data import load_text_corpus

    c = load_text_corpus()
    train = set(c.decode(c.train).split("\n\n"))
    test = [p for p in c.decode(c.test).split("\n\n") if p.strip()]
    assert len(test) == c.n_test_paragraphs and not [p for p in test if p in train]
    ch = TL.heldout_chunks(c.test, 64, 100, seed=3)
    avail = (len(c.test) - 1) // 64
    want = {tuple(c.test[s:s + 65].tolist()): s for s in ((np.arange(100) * avail // 100) * 64).tolist()}
    got = [want[tuple(r.tolist())] for r in ch]  # every chunk is one of the evenly spread windows ...
    assert ch.shape == (100, 65) and sorted(got) == sorted(want.values())  # ... each exactly once
    assert max(got[:20]) > len(c.test) / 2 and min(got[:20]) < len(c.test) / 2  # a prefix samples the whole text
    assert (TL.heldout_chunks(c.test, 64, 100, seed=3) == ch).all()


def test_bad_input_is_refused_before_long_work(monkeypatch):
    import rf8sim.workloads.data as D

    def no_training(*a, **k):
        raise AssertionError("training started before the input was checked")

    monkeypatch.setattr(TL, "_train", no_training)
    c = D.load_text_corpus()
    with pytest.raises(TL.TinyLMError, match="needs .* held-out bytes .* lower chunks"):
        TL.heldout_chunks(c.test, 64, 10_000)
    with pytest.raises(TL.TinyLMError, match="chunks must be >= 20"):
        TL.heldout_chunks(c.test, 64, 5)
    with pytest.raises(TL.TinyLMError, match="held-out bytes"):
        TL.run_tinylm_study(dataclasses.replace(SPEC, block=512, chunks=200), progress=False)
    with pytest.raises(DatapathError, match="blocks.0.fc2.*sums 2048 products"):
        TL.run_tinylm_study(dataclasses.replace(SPEC, d_model=512, n_head=4), progress=False)
    with pytest.raises(DatapathError, match="rf9"):
        TL.run_tinylm_study(dataclasses.replace(SPEC, configs=("rf9",)), progress=False)
    with pytest.raises(TL.TinyLMError, match="multiple of n_head"):
        TL.run_tinylm_study(dataclasses.replace(SPEC, d_model=30, n_head=4), progress=False)
    ok = {"tinylm": {"model": "tinylm"}}
    config_from_dict(ok)
    for bad, msg in [({"model": "gpt2"}, "valid: 'tinylm', 'none'"), ({"chunks": 5}, "chunks must be >= 20"),
                     ({"configs": ["rf9"]}, r"\[tinylm\] configs/acc"), ({"d_model": 30}, "multiple of n_head"),
                     ({"configs": ["rf8/bf16@4:30"]}, "16-bit codes"), ({"a16_chunks": 1}, "a16_chunks must be >= 2"),
                     ({"lr": 0}, "lr must be > 0"), ({"granularity": "row"}, "granularity"),
                     ({"chunk": 40}, "unknown key")]:
        with pytest.raises(ConfigError, match=msg):
            config_from_dict({"tinylm": {"model": "tinylm", **bad}})
    with pytest.raises(ConfigError, match=r"taken by \[tinylm\]"):
        config_from_dict({"tinylm": {"model": "tinylm"}, "transformer": {"configs": ["e9m9"]}})


def test_missing_record_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(TL, "TINYLM_RECORD", tmp_path / "tinylm-flow.json")
    with pytest.raises(DocgenError, match="rf8sim study tinylm --record"):
        TL.render_points()
    (tmp_path / "tinylm-flow.json").write_text('{"kind": "rf8sim-flow"}')
    with pytest.raises(DocgenError, match="not a rf8sim-tinylm record"):
        TL.render_pairs()


def test_cli_writes_a_record_the_docs_render(tmp_path, monkeypatch, capsys):
    """`rf8sim study tinylm --record`: a provenance record, refused without --force the second time (before
    any work), rendered by the docs' generated blocks."""
    import json

    from rf8sim.cli import main

    rec = tmp_path / TL.TINYLM_RECORD
    rec.parent.mkdir(parents=True)
    args = ["study", "tinylm", "--config", "flow_quick", "--record", str(rec), "--no-progress",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    data = json.loads(rec.read_text())
    assert data["kind"] == "rf8sim-tinylm" and data["provenance"]["commit"]
    assert [p["chunks"] for p in data["tinylm"]["points"]] == [40, 40, 40, 8]
    assert "0 mismatches" in capsys.readouterr().out
    monkeypatch.setattr(TL, "run_tinylm_study", lambda *a, **k: (_ for _ in ()).throw(AssertionError("work started")))
    assert main(args) != 0
    assert "tinylm-flow.json exists; pass --force" in capsys.readouterr().err
    monkeypatch.setattr(TL, "TINYLM_RECORD", rec)
    table = TL.render_points()
    assert table.count("\n") == 2 + 4 and "| float32 | " in table and "rf8/a:bf16 channel acc fp32 (8-chunk sample)" in table
    assert TL.render_pairs().count("| **yes** |") + TL.render_pairs().count("| no |") == 6
    assert "3 configurations" in TL.render_pairs() and f"Record `{rec}`: `" in TL.render_run()


def test_flow_stage_fails_on_a_torch_mismatch_and_skips_when_off(tmp_path, monkeypatch):
    import dataclasses as dc

    from rf8sim.study.flow import stages as flow_stages
    from rf8sim.study.flow.run import StageSkipped, default_config

    cfg = default_config(quick=True)
    ctx = flow_stages.Context(cfg=dc.replace(cfg, tinylm=dc.replace(cfg.tinylm, model="none")), out=tmp_path,
                              console=None, progress=False)
    with pytest.raises(StageSkipped, match="model = 'none'"):
        flow_stages.stage_tinylm(ctx)
    fake = {"points": [{"label": "float32", "bpb": 3.0}], "pairs": [], "chunks": 40, "timing_s": {},
            "torch_check": [{"layer": "head", "mismatches": 0}, {"layer": "blocks.0.fc1", "mismatches": 2}]}
    monkeypatch.setattr(TL, "run_tinylm_study", lambda *a, **k: fake)
    ctx.cfg = cfg
    with pytest.raises(RuntimeError, match="disagrees with the golden model in 2 value"):
        flow_stages.stage_tinylm(ctx)


def test_spec_from_config_takes_the_transformer_configs_or_its_own():
    from rf8sim.study.flow.run import default_config

    full = default_config()
    sp = TL.spec_from_config(full)
    assert full.tinylm.configs == "transformer"
    assert sp.configs == tuple(full.transformer.configs) and sp.acc == tuple(full.transformer.acc)
    assert sp.max_terms == full.study.max_terms and sp.chunks == full.tinylm.chunks
    assert [d.label for d in sp.datapaths()][-4:] == [f"{w}/a:bf16 channel acc fp32" for w in ("rf8", "e4m3", "int8")] \
        + ["bf16 channel acc fp32"]  # every weight format with a W8A16 unit, then the bf16 baseline
    quick = default_config(quick=True)
    sq = TL.spec_from_config(quick)
    assert sq.configs == ("rf8", "int8", "rf8/bf16@fp32") and sq.d_model == 32 and sq.a16_chunks == 8
