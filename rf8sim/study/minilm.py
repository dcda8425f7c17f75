"""The transformer study: all-MiniLM-L6-v2 through the bit-exact datapath, with statistics.

For every configuration (weight/activation format, rounding, granularity, accumulator) every
Linear layer of the encoder runs through ``rf8sim.golden.gemm`` (:mod:`rf8sim.study.transformer`)
on ``sentences`` real English sentences (``pydoc_data.topics``).  Per sentence: cosine of the
embedding to the float32 embedding, top-1 retrieval agreement and top-10 overlap (nearest other
sentences by cosine).  Every mean comes with a 95 % bootstrap interval over sentences, and
configurations are compared pairwise on the same sentences (paired bootstrap + Wilcoxon,
:mod:`rf8sim.study.stats`).

Sensitivity: each layer group (per encoder layer: attention = Q, K, V, output projection;
FFN = intermediate, output) in one format, everything else float32, on the first
``sensitivity_sentences`` sentences: the loss ``1 - cosine`` it alone causes.  Mixed formats:
a greedy search over per-group formats minimising the MAC-count-weighted MAC area (from the
synthesized MACs) under the stated constraint (mean cosine >= ``min_cosine``), predicted from
the additive sensitivity model and then verified bit-exactly on all sentences (upgrading the
most loss-per-area group until the verified constraint holds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from rf8sim.errors import RF8SimError

from .transformer import DatapathConfig, DatapathError, check_assignment, exactify, flag_totals, torch_check

__all__ = ["TransformerSpec", "prepare", "run_transformer_study", "SentenceError", "layer_groups"]


class SentenceError(RF8SimError, ValueError):
    """Sentences that do not tokenize into something the model can embed."""


@dataclass(frozen=True)
class TransformerSpec:
    model: str = "minilm"
    sentences: int = 1000
    min_words: int = 5
    max_words: int = 32
    seed: int = 0
    configs: tuple = ("rf8", "e4m3", "int8")
    granularity: str = "channel"
    acc: tuple = ("exact",)
    block: int = 32
    sensitivity_sentences: int = 200
    a16_sentences: int = 1000   # configurations with fp32/aligned accumulators (W8A16) run on the first N
    min_cosine: float = 0.999
    batch_size: int = 64
    bootstrap: int = 2000
    torch_check: bool = True
    max_terms: int = 2048       # "exact" accumulators are exact for this many products (>= 1536)

    def datapaths(self) -> list[DatapathConfig]:
        from .transformer import parse_configs

        out = []
        for c in self.configs:  # "rf8", "rf8:paper", "rf8/bf16@fp32" (see parse_configs)
            out += parse_configs(c, self.granularity, self.block, self.acc)
        return out


def layer_groups(model) -> dict[str, list[str]]:
    """Encoder layer groups: ``L{i}.attn`` (Q, K, V, output) and ``L{i}.ffn`` (intermediate, output)."""
    from .transformer import linear_layers

    groups: dict[str, list[str]] = {}
    for name, _ in linear_layers(model):
        parts = name.split(".")
        if "layer" in parts:
            i = parts[parts.index("layer") + 1]
            kind = "attn" if "attention" in parts else "ffn"
            groups.setdefault(f"L{i}.{kind}", []).append(name)
        else:
            groups.setdefault(name, []).append(name)
    return groups


def _mac_counts(model, lengths: np.ndarray) -> dict[str, int]:
    """MACs per Linear layer over the sentences (tokens x in x out)."""
    from .transformer import linear_layers

    tok = int(lengths.sum())
    return {n: tok * m.in_features * m.out_features for n, m in linear_layers(model)}


def prepare(spec: TransformerSpec, sentences=None):
    """Load the model and sentences and validate everything before any long work."""
    from .data import load_sentences
    from .models import load_minilm

    if spec.model != "minilm":
        raise DatapathError(f"[transformer] model {spec.model!r}: valid: minilm (or none)")
    if spec.sentences < 20:
        raise SentenceError(f"[transformer] sentences must be >= 20 (retrieval needs neighbours), got {spec.sentences}")
    model = load_minilm()
    if sentences is None:
        sentences = load_sentences(spec.sentences, spec.min_words, spec.max_words, spec.seed)
    bad = [i for i, s in enumerate(sentences) if not isinstance(s, str) or not s.strip()]
    if bad:
        raise SentenceError(f"sentence(s) {bad[:5]} are empty or not strings")
    enc = model.tokenizer.encode_batch(list(sentences))
    unk = model.tokenizer.token_to_id("[UNK]")
    for i, e in enumerate(enc):
        real = [t for t, m in zip(e.ids, e.attention_mask) if m][1:-1]  # without [CLS] / [SEP]
        if not real or all(t == unk for t in real):
            raise SentenceError(f"sentence {i} ({sentences[i][:40]!r}) does not tokenize: only unknown or no "
                                f"word pieces")
    lengths = np.array([sum(e.attention_mask) for e in enc])
    for dp in spec.datapaths():
        check_assignment(model, dp, spec.max_terms)  # names the layer / config that cannot run
    return model, list(sentences), lengths


def _encode(model, sentences, lengths, batch_size, progress=None) -> np.ndarray:
    """Embeddings in the sentences' order, batched by similar length (little padding)."""
    import torch

    order = np.argsort(lengths, kind="stable")
    out = np.zeros((len(sentences), 384), np.float32)
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            e = model.encode([sentences[i] for i in idx], batch_size=len(idx))
            out[idx] = e.numpy()
            if progress is not None:
                progress(len(idx))
    return out


def _scores(ref, emb) -> dict:
    from .stats import retrieval_scores

    cos = (ref.astype(np.float64) * emb.astype(np.float64)).sum(1)
    return {"cosine": cos, **retrieval_scores(ref, emb, 10)}


def run_transformer_study(spec: TransformerSpec, areas: dict, *, progress: bool = True, console=None,
                          sentences=None) -> dict:
    """Run the sweep, the sensitivity scan and the mixed-format search; returns JSON-able results.

    ``areas``: MAC area per datapath key ``"AxW"`` (e.g. ``"rf8xrf8"``) for the configurations'
    accumulators (the flow passes its synthesized MACs); configurations without an area are
    evaluated but left out of the mixed-format search.
    """
    import torch
    from tqdm.auto import tqdm

    from .stats import bootstrap_ci, paired_test

    t0 = time.perf_counter()
    model, sentences, lengths = prepare(spec, sentences)
    n = len(sentences)
    dps = spec.datapaths()
    torch.manual_seed(spec.seed)
    bar = tqdm(total=n * (1 + len(dps)), desc="MiniLM sentences", disable=not progress, leave=False)
    ref = _encode(model, sentences, lengths, spec.batch_size, bar.update)
    timing = {"float32": time.perf_counter() - t0}
    per: dict[str, dict] = {}
    embs: dict[str, np.ndarray] = {}
    points = []
    checks = []
    for dp in dps:
        t = time.perf_counter()
        q = exactify(model, dp, spec.max_terms)
        nd = min(n, spec.a16_sentences) if dp.float_acc else n  # the float-accumulator kernels are slower
        emb = _encode(q, sentences[:nd], lengths[:nd], spec.batch_size, bar.update)
        bar.update(n - nd)
        sc = _scores(ref[:nd], emb)
        per[dp.label] = sc
        embs[dp.label] = emb
        fl = flag_totals(q)
        row = {"label": dp.label, "w_format": dp.w_format, "a_format": dp.act_format, "rounding": dp.rounding,
               "granularity": dp.granularity, "acc": dp.acc, "mac": f"{dp.act_format}x{dp.w_format}",
               "area_um2": areas.get(f"{dp.act_format}x{dp.w_format}") if dp.acc == "exact" else None,
               "sentences": nd, "overflow": fl["overflow"], "invalid": fl["invalid"], "outputs": fl["outputs"],
               "seconds": time.perf_counter() - t}
        for k, v in sc.items():
            ci = bootstrap_ci(v if k != "cosine" else 1 - v, spec.bootstrap, seed=spec.seed)
            if k == "cosine":
                row.update(loss=ci["mean"], loss_lo=ci["lo"], loss_hi=ci["hi"], cosine=1 - ci["mean"],
                           cosine_min=float(v.min()))
            else:
                row.update({k: ci["mean"], f"{k}_lo": ci["lo"], f"{k}_hi": ci["hi"]})
        points.append(row)
        if spec.torch_check:
            few = [sentences[i] for i in np.argsort(lengths)[:4]]
            checks += torch_check(q, lambda: q.encode(few))
        timing[dp.label] = row["seconds"]
    bar.close()

    # pairwise comparisons (same sentences): cosine loss, top-1, top-10
    pairs = []
    for i in range(len(dps)):
        for j in range(i + 1, len(dps)):
            a, b = dps[i].label, dps[j].label
            nn_ = min(len(embs[a]), len(embs[b]))  # the same sentences (a prefix) for both
            sa, sb = ((per[a], per[b]) if nn_ == n else
                      (_scores(ref[:nn_], embs[a][:nn_]), _scores(ref[:nn_], embs[b][:nn_])))
            for metric in ("cosine", "top1", "top10"):
                r = paired_test(sa[metric], sb[metric], spec.bootstrap, seed=spec.seed)
                pairs.append({"a": a, "b": b, "metric": metric, "sentences": nn_, **r})

    sens = _sensitivity(model, sentences, lengths, spec, dps, ref, progress)
    mixed = _mixed(model, sentences, lengths, spec, dps, ref, areas, sens, per, progress)
    mixed_bits = _mixed(model, sentences, lengths, spec, dps, ref, areas, sens, per, progress, "weight_bits")
    timing["total"] = time.perf_counter() - t0
    return {"model": "all-MiniLM-L6-v2", "sentences": n, "tokens": int(lengths.sum()),
            "words": [spec.min_words, spec.max_words], "points": points, "pairs": pairs, "torch_check": checks,
            "sensitivity": sens, "mixed": mixed, "mixed_bits": mixed_bits, "timing_s": timing, "spec": _spec_dict(spec)}


def _spec_dict(spec) -> dict:
    import dataclasses

    d = dataclasses.asdict(spec)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _sensitivity(model, sentences, lengths, spec, dps, ref, progress) -> dict:
    """Per layer group and configuration: mean ``1 - cosine`` with only that group quantized."""
    from tqdm.auto import tqdm

    from .stats import bootstrap_ci

    ns = min(spec.sensitivity_sentences, len(sentences))
    sub = sentences[:ns]
    sub_len = lengths[:ns]
    groups = layer_groups(model)
    rows = []
    bar = tqdm(total=len(groups) * len(dps), desc="sensitivity", disable=not progress, leave=False)
    for g, names in groups.items():
        for dp in dps:
            q = exactify(model, {nm: dp for nm in names}, spec.max_terms)
            emb = _encode(q, sub, sub_len, spec.batch_size)
            loss = 1 - (ref[:ns].astype(np.float64) * emb.astype(np.float64)).sum(1)
            ci = bootstrap_ci(loss, spec.bootstrap, seed=spec.seed)
            rows.append({"group": g, "config": dp.label, "loss": ci["mean"], "lo": ci["lo"], "hi": ci["hi"]})
            bar.update()
    bar.close()
    return {"sentences": ns, "groups": {g: names for g, names in groups.items()}, "rows": rows}


def weight_bits(dp: DatapathConfig) -> float:
    """Stored bits per weight: the code plus its share of the power-of-two scale (8 bits per channel
    row is negligible; per block of ``block`` values it is 8/block)."""
    from .. import formats as F

    bits = float(getattr(F.get(dp.w_format), "code_bits", 8))
    if bits <= 8 and dp.granularity == "block":
        bits += 8.0 / dp.block
    return bits


def _mixed(model, sentences, lengths, spec, dps, ref, areas, sens, per, progress, metric: str = "area") -> dict:
    """Greedy per-group assignment minimising a MAC-weighted cost s.t. mean cosine >= min_cosine.

    ``metric="area"``: synthesized MAC area (configurations with a MAC in the flow);
    ``metric="weight_bits"``: stored bits per weight (every configuration; the W8A16 question)."""
    from .stats import bootstrap_ci

    if metric == "area":
        cands = [dp for dp in dps if dp.acc == "exact" and areas.get(f"{dp.act_format}x{dp.w_format}")]
        if not cands:
            return {"skipped": "no configuration has a synthesized MAC area"}
        area = {dp.label: float(areas[f"{dp.act_format}x{dp.w_format}"]) for dp in cands}
    else:
        cands = list(dps)
        area = {dp.label: weight_bits(dp) for dp in cands}
    groups = sens["groups"]
    macs = _mac_counts(model, lengths)
    gmacs = {g: sum(macs[n] for n in names) for g, names in groups.items()}
    tot = sum(gmacs.values())
    loss = {(r["group"], r["config"]): r["loss"] for r in sens["rows"]}
    budget = 1 - spec.min_cosine

    def cost(assign):
        return sum(gmacs[g] * area[assign[g]] for g in groups) / tot

    def predicted(assign):
        return sum(loss[(g, assign[g])] for g in groups)

    tot_loss = {d.label: sum(loss[(g, d.label)] for g in groups) for d in cands}
    by_area = sorted(cands, key=lambda d: (area[d.label], tot_loss[d.label]))  # ties: least sensitive first
    assign = {g: by_area[0].label for g in groups}
    # upgrade the group with the best predicted loss reduction per area added until the prediction fits
    history = []
    verified = None
    checks_left = 2  # each verification is a full bit-exact pass over the sentences
    for _ in range(4 * len(groups) * len(cands)):
        if predicted(assign) <= budget and checks_left:
            checks_left -= 1
            chosen = {g: next(d for d in cands if d.label == assign[g]) for g in groups}
            nv = min(len(sentences), spec.a16_sentences) if any(d.float_acc for d in chosen.values()) \
                else len(sentences)
            q = exactify(model, {nm: chosen[g] for g, names in groups.items() for nm in names}, spec.max_terms)
            emb = _encode(q, sentences[:nv], lengths[:nv], spec.batch_size)
            cos = (ref[:nv].astype(np.float64) * emb.astype(np.float64)).sum(1)
            verified = bootstrap_ci(cos, spec.bootstrap, seed=spec.seed)
            history.append({"assignment_cost": cost(assign), "predicted_loss": predicted(assign),
                            "verified_cosine": verified["mean"], "sentences": nv})
            if verified["mean"] >= spec.min_cosine:
                break
            budget *= 0.5  # the additive model was optimistic: tighten and continue
        best = None
        for g in groups:
            for d in cands:
                if area[d.label] <= area[assign[g]]:
                    continue
                gain = loss[(g, assign[g])] - loss[(g, d.label)]
                dc = gmacs[g] * (area[d.label] - area[assign[g]]) / tot
                if gain > 0 and (best is None or gain / dc > best[0]):
                    best = (gain / dc, g, d.label)
        if best is None:
            break
        assign[best[1]] = best[2]
    uniform = [{"config": d.label, "cost": area[d.label], "cosine": float(per[d.label]["cosine"].mean())}
               for d in cands]
    ok = verified is not None and verified["mean"] >= spec.min_cosine
    unit = "cost_um2_per_mac" if metric == "area" else "cost_bits_per_weight"
    return {"constraint": f"mean cosine to float32 >= {spec.min_cosine}", "assignment": assign, "metric": metric,
            unit: cost(assign), "verified": verified, "meets_constraint": ok,
            "uniform": uniform, "history": history, "group_macs": gmacs}
