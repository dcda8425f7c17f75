"""Bit-exact transformer inference (rf8sim.study.minilm.transformer), statistics, and their bad inputs."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from rf8sim.study.common.config import ConfigError, config_from_dict
from rf8sim.workloads.models import MiniLM
from rf8sim.study.common.stats import StatsError, bootstrap_ci, paired_test, retrieval_scores
from rf8sim.study.minilm.transformer import (DatapathConfig, DatapathError, ExactLinear, check_assignment, exactify,
                                      flag_totals, parse_configs, torch_check)


def _tiny_bert(seed=0):
    torch.manual_seed(seed)
    m = MiniLM(vocab=64, d=32, n_layer=2, n_head=4, d_ff=48, max_pos=16)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.2)
    return m.eval()


def _batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 64, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 4:] = 0
    return ids, mask


def _f32_of(v: Fraction) -> np.float32:
    from rf8sim.study.mnist1d.inference import _fraction_to_f32

    return _fraction_to_f32(v)


def _captured(q, lin, ids, mask):
    """The activations ``lin`` receives in one forward pass of the quantized model ``q``."""
    cap = []
    lin.capture = cap
    with torch.no_grad():
        q(ids, mask)
    lin.capture = None
    return cap[0]


def _ref_linear(lin: ExactLinear, x2: np.ndarray) -> np.ndarray:
    """One layer from the definition with Python integers / Fractions (torch quantizer for the codes)."""
    from rf8sim import formats as F
    from rf8sim import training as T

    c = lin.cfg
    af, wf = F.get(c.act_format), F.get(c.w_format)
    ac, ak = T.quantize(torch.from_numpy(x2), af, rounding="nearest", granularity="channel")
    wc, wk = T.quantize(torch.from_numpy(lin.w_float), wf, rounding=c.rounding, granularity=c.granularity)
    ac, ak, wc, wk = ac.numpy(), ak.numpy(), wc.numpy(), np.broadcast_to(wk.numpy(), (wc.shape[0],))
    spec = lin.acc
    out = np.zeros((x2.shape[0], wc.shape[0]), np.float32)

    def val(fmt, code):
        return (-1) ** int(fmt.sign[code]) * Fraction(int(fmt.sig[code])) * Fraction(2) ** int(fmt.exp[code])

    for m in range(x2.shape[0]):
        for n in range(wc.shape[0]):
            acc = 0
            for k in range(x2.shape[1]):
                p = val(af, ac[m, k]) * val(wf, wc[n, k]) * 2 ** spec.frac_bits
                acc = min(max(acc + (p.numerator // p.denominator), spec.min), spec.max)
            v = Fraction(acc) * Fraction(2) ** (int(ak[m]) + int(wk[n]) - spec.frac_bits)
            out[m, n] = _f32_of(v) + (lin.bias[n] if lin.bias is not None else np.float32(0))
    return out


@pytest.mark.parametrize("cfg", [DatapathConfig("rf8"), DatapathConfig("e4m3", acc="4:20"),
                                 DatapathConfig("int8", granularity="tensor", acc="0:18")])
def test_every_linear_is_bit_exact_against_python_integers_and_torch(cfg):
    model = _tiny_bert()
    q = exactify(model, cfg)
    layers = [m for m in q.modules() if isinstance(m, ExactLinear)]
    assert len(layers) == 2 * 6  # Q, K, V, attention output, intermediate, output per layer
    ids, mask = _batch()
    rows = torch_check(q, lambda: q(ids, mask))
    assert len(rows) == 12 and sum(r["outputs"] for r in rows) > 0
    assert sum(r["mismatches"] for r in rows) == 0, [r for r in rows if r["mismatches"]]
    # two layers from the definition, a few rows each
    compared = 0
    for lin in (layers[0], layers[-1]):
        x2 = _captured(q, lin, ids, mask)[:3]
        got = lin.golden_rows(x2)[0]
        ref = _ref_linear(lin, x2)
        assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))
        compared += got.size
    assert compared == 3 * 32 + 3 * 32
    # the embeddings differ from float32 but are close
    with torch.no_grad():
        e, f = q(ids, mask), model(ids, mask)
    assert not torch.equal(e, f)
    assert float((e * f).sum(1).min()) > (0.9 if cfg.acc == "exact" else 0.5)


def test_narrow_accumulator_saturates_and_counts_flags():
    model = _tiny_bert()
    q = exactify(model, DatapathConfig("int8", acc="0:12"))  # 12 bits: sums of int8 products saturate
    ids, mask = _batch()
    with torch.no_grad():
        q(ids, mask)
    fl = flag_totals(q)
    assert fl["outputs"] > 0 and fl["overflow"] > 0
    rows = torch_check(q, lambda: q(ids, mask))
    assert sum(r["mismatches"] for r in rows) == 0


def test_bad_models_and_configs_are_named_before_work():
    model = _tiny_bert()
    with pytest.raises(DatapathError, match="accumulator '9:zz' does not exist"):
        check_assignment(model, DatapathConfig("rf8", acc="9:zz"))
    with pytest.raises(DatapathError, match="no rounding"):
        check_assignment(model, DatapathConfig("e4m3", rounding="paper"))
    with pytest.raises(DatapathError, match="16-bit codes; the fixed-point accumulator"):
        check_assignment(model, DatapathConfig("rf8", a_format="bf16", acc="exact"))
    with pytest.raises(DatapathError, match=r"sums 48 products: aligned:32:16 needs K=32"):
        check_assignment(model, DatapathConfig("rf8", a_format="bf16", acc="aligned:32:16"))
    with pytest.raises(DatapathError, match="int8 has none"):
        check_assignment(model, DatapathConfig("int8", acc="aligned:16:16"))
    with pytest.raises(DatapathError, match="W\\[:ROUNDING\\]"):
        parse_configs("rf8/@fp32")
    with pytest.raises(DatapathError, match="nope"):
        check_assignment(model, DatapathConfig("nope"))
    with pytest.raises(DatapathError, match="unknown layer"):
        check_assignment(model, {"encoder.layer.9.x": DatapathConfig()})
    with pytest.raises(DatapathError, match=r"layer 'encoder.layer.0.output.dense' sums 48 products.*max_terms"):
        check_assignment(model, DatapathConfig("rf8"), max_terms=40)

    class WithConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(2, 2, 3)
            self.fc = nn.Linear(4, 2)

    with pytest.raises(DatapathError, match="layer 'conv' is a Conv1d"):
        check_assignment(WithConv(), DatapathConfig())
    with pytest.raises(DatapathError, match="no nn.Linear"):
        check_assignment(nn.ReLU(), DatapathConfig())
    with pytest.raises(ConfigError, match=r"\[transformer\] configs/acc"):
        config_from_dict({"transformer": {"model": "minilm", "configs": ["rf8"], "acc": ["3:200"]}})
    with pytest.raises(ConfigError, match=r"\[transformer\] model"):
        config_from_dict({"transformer": {"model": "bert-large"}})


def test_sentences_that_do_not_tokenize_are_refused():
    from rf8sim.study.minilm.study import SentenceError, TransformerSpec, prepare

    spec = TransformerSpec(sentences=20, configs=("rf8",))
    good = [f"This is sentence number {i} of the test." for i in range(20)]
    with pytest.raises(SentenceError, match="sentence 3"):
        prepare(spec, good[:3] + ["\u0378\u0379"] + good[4:])
    with pytest.raises(SentenceError, match="empty or not strings"):
        prepare(spec, good[:5] + [""] + good[6:])


def test_bootstrap_and_paired_tests():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 1.0, 400)
    ci = bootstrap_ci(x, 4000, seed=1)
    # against scipy's percentile bootstrap (independent implementation, different resamples)
    from scipy.stats import bootstrap

    ref = bootstrap((x,), np.mean, n_resamples=4000, method="percentile", random_state=2).confidence_interval
    assert abs(ci["lo"] - ref.low) < 0.03 and abs(ci["hi"] - ref.high) < 0.03
    assert ci["lo"] < x.mean() < ci["hi"] and ci["n"] == 400
    y = x + rng.normal(0.3, 0.2, 400)
    r = paired_test(y, x)
    assert r["significant"] and r["lo"] > 0 and r["p_wilcoxon"] < 1e-10
    z = x + rng.normal(0.0, 0.2, 400)
    assert not paired_test(z, x)["significant"] or abs(paired_test(z, x)["diff"]) < 0.05
    same = paired_test(x, x)
    assert same == {**same, "diff": 0.0, "p_wilcoxon": 1.0, "significant": False}
    with pytest.raises(StatsError, match="same items"):
        paired_test(x, x[:-1])
    with pytest.raises(StatsError, match="finite"):
        bootstrap_ci([1.0, np.nan, 2.0])


def test_retrieval_scores_by_hand():
    ref = np.eye(12)[:, :12] + 0.0
    ref[1] = ref[0] * 0.9 + ref[1] * 0.1
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    s = retrieval_scores(ref, ref, k=10)
    assert s["top1"].tolist() == [1.0] * 12 and s["top10"].min() == 1.0
    emb = ref.copy()
    emb[0] = ref[2]  # query 0 now finds 2 instead of 1
    s = retrieval_scores(ref, emb, k=10)
    assert s["top1"][0] == 0.0
    with pytest.raises(StatsError):
        retrieval_scores(ref[:5], ref[:5], k=10)


W8A16 = [DatapathConfig("rf8", "bf16", acc="fp32"), DatapathConfig("e4m3", "bf16", acc="aligned:16:12"),
         DatapathConfig("int8", "fp16", acc="fp32"), DatapathConfig("bf16", "bf16", acc="aligned:16:24"),
         DatapathConfig("rf8", acc="fp32")]


def _ref_float_linear(lin: ExactLinear, x2: np.ndarray) -> np.ndarray:
    """W8A16 layer from the contract with Fractions: codes from ml_dtypes / the torch quantizer,
    fp32 chain or aligned blocks, each step rounded to float32 from the definition."""
    import ml_dtypes

    from rf8sim import formats as F
    from rf8sim import training as T

    c, spec = lin.cfg, lin.acc
    af, wf = F.get(c.act_format), F.get(c.w_format)
    if af.code_bits == 16:
        dt = ml_dtypes.bfloat16 if af.name == "bf16" else np.float16
        av = np.vectorize(Fraction)(x2.astype(dt).astype(np.float64))
    else:
        ac, ak = T.quantize(torch.from_numpy(x2), af, rounding="nearest", granularity="channel")
        av = np.array([[Fraction(float(af.values[int(ac[m, k])])) * Fraction(2) ** int(ak[m])
                        for k in range(x2.shape[1])] for m in range(x2.shape[0])], object)
    if wf.code_bits == 16:
        wv = np.vectorize(Fraction)(lin.w_float.astype(ml_dtypes.bfloat16).astype(np.float64))
    else:
        wc, wk = T.quantize(torch.from_numpy(lin.w_float), wf, rounding=c.rounding, granularity=c.granularity)
        wk = np.broadcast_to(wk.numpy(), (wc.shape[0],))
        wv = np.array([[Fraction(float(wf.values[int(wc[n, k])])) * Fraction(2) ** int(wk[n])
                        for k in range(wc.shape[1])] for n in range(wc.shape[0])], object)
    out = np.zeros((x2.shape[0], wv.shape[0]), np.float32)
    K = x2.shape[1]
    for m in range(x2.shape[0]):
        for n in range(wv.shape[0]):
            acc = Fraction(0)
            if spec.kind == "fp32":
                for k in range(K):
                    acc = Fraction(float(_f32_of(acc + av[m, k] * wv[n, k])))
            else:
                Kb, M = spec.block, spec.align_bits
                for b0 in range(0, K, Kb):
                    blk = av[m, b0:b0 + Kb]
                    # exponent field of a bf16/fp16 value: floor(log2|a|) + bias, at least 1
                    f = [max(1, math.frexp(float(a))[1] - 1 + af.bias) if a else 1 for a in blk]
                    q = max(f) - af.bias - (M - 2)
                    S = sum(min(round(abs(a) / Fraction(2) ** q), 2 ** (M - 1) - 1) * (1 if a >= 0 else -1)
                            * Fraction(2) ** q * wv[n, b0 + i] for i, a in enumerate(blk))
                    acc = Fraction(float(_f32_of(acc + S)))
            out[m, n] = np.float32(float(acc)) + (lin.bias[n] if lin.bias is not None else np.float32(0))
    return out


@pytest.mark.parametrize("cfg", W8A16, ids=lambda c: c.label)
def test_w8a16_layers_are_bit_exact_against_fractions(cfg):
    model = _tiny_bert()
    q = exactify(model, cfg)
    layers = [m for m in q.modules() if isinstance(m, ExactLinear)]
    assert len(layers) == 12
    ids, mask = _batch()
    rows = torch_check(q, lambda: q(ids, mask))
    assert len(rows) == 12 and all(r["outputs"] > 0 for r in rows)
    assert sum(r["mismatches"] for r in rows) == 0, [r for r in rows if r["mismatches"]]
    compared = 0
    for lin in (layers[0], layers[-1]):
        x2 = _captured(q, lin, ids, mask)[:2]
        got = lin.golden_float(x2)[0]
        ref = _ref_float_linear(lin, x2)
        assert np.array_equal(got.view(np.uint32), ref.view(np.uint32)), (got, ref)
        compared += got.size
    assert compared == 2 * 32 + 2 * 32
    with torch.no_grad():
        e, f = q(ids, mask), model(ids, mask)
    assert float((e * f).sum(1).min()) > 0.9


def test_w8a16_config_syntax_and_fp16_overflow():
    dps = parse_configs("rf8/bf16", accs=("exact", "aligned:16:16"))
    assert [(d.w_format, d.act_format, d.acc) for d in dps] == [("rf8", "bf16", "aligned:16:16")]
    assert [d.acc for d in parse_configs("rf8:paper/bf16")] == ["fp32"]
    assert [(d.rounding, d.acc) for d in parse_configs("rf8:paper@4:30", accs=("exact",))] == [("paper", "4:30")]
    assert [d.acc for d in parse_configs("e4m3", accs=("exact", "fp32"))] == ["exact", "fp32"]
    model = _tiny_bert()
    q = exactify(model, DatapathConfig("rf8", "fp16", acc="fp32"))
    lin = next(m for m in q.modules() if isinstance(m, ExactLinear))
    x = np.full((1, 32), 1.0, np.float32)
    x[0, 5] = 70000.0
    with pytest.raises(DatapathError, match=r"70000.0 \(row 0, feature 5\) overflows fp16"):
        lin(torch.from_numpy(x))
    cfg = config_from_dict({"transformer": {"model": "minilm", "configs": ["rf8", "rf8/bf16@aligned:32:16"]}})
    assert cfg.transformer.configs == ("rf8", "rf8/bf16@aligned:32:16")
    with pytest.raises(ConfigError, match="16-bit codes"):
        config_from_dict({"transformer": {"model": "minilm", "configs": ["rf8/bf16@exact"]}})


@pytest.mark.slow
def test_minilm_study_with_w8a16_on_a_prefix():
    """The real model, one 8-bit and one W8A16 config (the latter on the first 20 of 24 sentences):
    paired tests use the common prefix, the weight-bits search runs, every layer check matches."""
    from rf8sim.study.minilm.study import TransformerSpec, run_transformer_study

    spec = TransformerSpec(sentences=24, configs=("rf8", "rf8/bf16@aligned:32:16"), a16_sentences=20,
                           sensitivity_sentences=4, bootstrap=200, batch_size=24)
    res = run_transformer_study(spec, {"rf8xrf8": 100.0}, progress=False)
    assert [p["sentences"] for p in res["points"]] == [24, 20]
    assert {p["sentences"] for p in res["pairs"]} == {20} and len(res["pairs"]) == 3
    assert res["mixed_bits"]["metric"] == "weight_bits" and len(res["mixed_bits"]["uniform"]) == 2
    # the W8A16 unit takes part in the area and energy searches with its recorded costs
    assert [u["source"] for u in res["mixed"]["uniform"]] == ["synthesized in this run",
                                                             "record hdl/results/synth_w8a16.json"]
    assert res["mixed_energy"]["metric"] == "energy" and len(res["mixed_energy"]["uniform"]) == 2
    assert res["mixed_energy"]["uniform"][1]["source"] == "record hdl/results/ppa_w8a16.json, 4 lanes"
    assert len(res["torch_check"]) == 72 and sum(r["mismatches"] for r in res["torch_check"]) == 0
    assert any(r.get("reference", "").startswith("torch rf8sim.training.w8a16") for r in res["torch_check"])
    w = next(p for p in res["points"] if p["a_format"] == "bf16")
    assert 0.99 < w["cosine"] < 1 and w["overflow"] == 0
