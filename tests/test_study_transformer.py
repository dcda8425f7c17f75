"""Bit-exact transformer inference (rf8sim.study.transformer), statistics, and their bad inputs."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from rf8sim.study.config import ConfigError, config_from_dict
from rf8sim.study.models import MiniLM
from rf8sim.study.stats import StatsError, bootstrap_ci, paired_test, retrieval_scores
from rf8sim.study.transformer import (DatapathConfig, DatapathError, ExactLinear, check_assignment, exactify,
                                      flag_totals, torch_check)


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
    from rf8sim.study.inference import _fraction_to_f32

    return _fraction_to_f32(v)


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
        cap = []
        lin.capture = cap
        with torch.no_grad():
            q(ids, mask)
        lin.capture = None
        x2 = cap[0][:3]
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
    with pytest.raises(DatapathError, match="not wired"):
        check_assignment(model, DatapathConfig("rf8", a_format="bf16", acc="fp32"))
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
    from rf8sim.study.minilm import SentenceError, TransformerSpec, prepare

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
