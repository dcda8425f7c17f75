"""The transformer study: all-MiniLM-L6-v2 through the bit-exact datapath, with statistics.

For every configuration (weight/activation format, rounding, granularity, accumulator) every
Linear layer of the encoder runs through ``rf8sim.golden.gemm`` (:mod:`rf8sim.study.minilm.transformer`)
on ``sentences`` real English sentences (``pydoc_data.topics``).  Per sentence: cosine of the
embedding to the float32 embedding, top-1 retrieval agreement and top-10 overlap (nearest other
sentences by cosine).  Every mean comes with a 95 % bootstrap interval over sentences, and
configurations are compared pairwise on the same sentences (paired bootstrap + Wilcoxon,
:mod:`rf8sim.study.common.stats`).

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

__all__ = ["TransformerSpec", "prepare", "run_transformer_study", "SentenceError", "layer_groups", "greedy_assign",
           "MIXED_UNITS"]


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
    objectives: tuple = ("area", "energy")  # costs the mixed-format search minimises (rf8sim.study.minilm.mac_costs)

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
    from ...workloads.data import load_sentences
    from ...workloads.models import load_minilm

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
    from ..common.stats import retrieval_scores

    cos = (ref.astype(np.float64) * emb.astype(np.float64)).sum(1)
    return {"cosine": cos, **retrieval_scores(ref, emb, 10)}


def run_transformer_study(spec: TransformerSpec, areas: dict, *, progress: bool = True, console=None,
                          sentences=None) -> dict:
    """Run the sweep, the sensitivity scan and the mixed-format search; returns JSON-able results.

    ``areas``: MAC area per datapath key ``"AxW"`` (e.g. ``"rf8xrf8"``) of the MACs this run synthesized
    (8-bit, exact accumulator); every other cost (W8A16 units, energies) comes from the checked-in
    records (:mod:`rf8sim.study.minilm.mac_costs`).  A configuration without a cost for one of
    ``spec.objectives`` raises :class:`~rf8sim.study.minilm.mac_costs.CostError` before any work.
    """
    import torch
    from tqdm.auto import tqdm

    from ..common.stats import bootstrap_ci, paired_test

    from .mac_costs import cost_table

    t0 = time.perf_counter()
    dps = spec.datapaths()
    costs = cost_table(dps, areas, spec.objectives)  # a configuration without a cost fails here, before the work
    model, sentences, lengths = prepare(spec, sentences)
    n = len(sentences)
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
               "area_um2": costs[dp.label].area_um2 if dp.label in costs else None,
               "pj_per_mac": costs[dp.label].pj_per_mac if dp.label in costs else None,
               "area_source": costs[dp.label].area_source if dp.label in costs else "",
               "energy_source": costs[dp.label].energy_source if dp.label in costs else "",
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
    # assignment -> verification, shared by the searches (they often land on the same one); an assignment
    # that puts every group on one configuration is that configuration's sweep point
    seen = uniform_verifications(dps, sens["groups"], per, spec)
    mixed = {o: _mixed(model, sentences, lengths, spec, dps, ref, costs, sens, per, progress, o, seen)
             for o in spec.objectives}
    mixed_bits = _mixed(model, sentences, lengths, spec, dps, ref, costs, sens, per, progress, "weight_bits", seen)
    timing["total"] = time.perf_counter() - t0
    return {"model": "all-MiniLM-L6-v2", "sentences": n, "tokens": int(lengths.sum()),
            "words": [spec.min_words, spec.max_words], "points": points, "pairs": pairs, "torch_check": checks,
            "sensitivity": sens, "mixed": mixed.get("area") or {"skipped": "objective 'area' not requested"},
            "mixed_energy": mixed.get("energy"), "mixed_bits": mixed_bits, "timing_s": timing, "spec": _spec_dict(spec)}


def _spec_dict(spec) -> dict:
    import dataclasses

    d = dataclasses.asdict(spec)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def uniform_verifications(dps, groups, per: dict, spec) -> dict:
    """The mixed searches' verifications that the sweep has already made, keyed as the searches key them.

    An assignment that puts every layer group on one configuration quantizes every Linear layer with it,
    exactly as that configuration's sweep point did (the groups cover every Linear layer), on the same
    sentences (``a16_sentences`` for a float accumulator), so its cosines are the sweep's, bit for bit."""
    from ..common.stats import bootstrap_ci

    return {tuple(sorted((g, dp.label) for g in groups)):
            (len(per[dp.label]["cosine"]), bootstrap_ci(per[dp.label]["cosine"], spec.bootstrap, seed=spec.seed))
            for dp in dps}


def _sensitivity(model, sentences, lengths, spec, dps, ref, progress) -> dict:
    """Per layer group and configuration: mean ``1 - cosine`` with only that group quantized."""
    from tqdm.auto import tqdm

    from ..common.stats import bootstrap_ci

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
    from ... import formats as F

    bits = float(getattr(F.get(dp.w_format), "code_bits", 8))
    if bits <= 8 and dp.granularity == "block":
        bits += 8.0 / dp.block
    return bits


def greedy_assign(groups, gmacs: dict, loss: dict, unit: dict, budget: float, verify, *,
                  max_checks: int = 2) -> dict:
    """Greedy per-group assignment minimising ``sum_g gmacs[g] * unit[config_g] / sum(gmacs)`` subject to a
    predicted loss ``sum_g loss[(g, config_g)] <= budget`` (the additive sensitivity model).

    Starts every group on the cheapest configuration (ties: the least sensitive), then repeatedly moves the
    group with the largest predicted loss reduction per unit of cost added to a dearer configuration.  When
    the prediction fits, ``verify(assign) -> (ok, info)`` checks the assignment for real (at most
    ``max_checks`` times; a miss halves the budget and the search continues).  Returns the assignment, its
    cost, the prediction, whether a verification passed, the last verification's info and the history."""
    groups = list(groups)
    labels = list(unit)
    tot = sum(gmacs[g] for g in groups)

    def cost(a):
        return sum(gmacs[g] * unit[a[g]] for g in groups) / tot

    def predicted(a):
        return sum(loss[(g, a[g])] for g in groups)

    tot_loss = {c: sum(loss[(g, c)] for g in groups) for c in labels}
    by_cost = sorted(labels, key=lambda c: (unit[c], tot_loss[c]))  # ties: least sensitive first
    assign = {g: by_cost[0] for g in groups}
    history, info, ok = [], None, False
    checks_left = max_checks
    for _ in range(4 * len(groups) * len(labels)):
        if predicted(assign) <= budget and checks_left:
            checks_left -= 1
            ok, info = verify(dict(assign))
            history.append({"assignment_cost": cost(assign), "predicted_loss": predicted(assign), "verified": ok})
            if ok:
                break
            budget *= 0.5  # the additive model was optimistic: tighten and continue
        best = None
        for g in groups:
            for c in labels:
                if unit[c] <= unit[assign[g]]:
                    continue
                gain = loss[(g, assign[g])] - loss[(g, c)]
                dc = gmacs[g] * (unit[c] - unit[assign[g]]) / tot
                if gain > 0 and (best is None or gain / dc > best[0]):
                    best = (gain / dc, g, c)
        if best is None:
            break
        assign[best[1]] = best[2]
    return {"assignment": assign, "cost": cost(assign), "predicted_loss": predicted(assign), "ok": ok,
            "info": info, "history": history}


#: the mixed searches: metric -> (result key of the cost per MAC, unit)
MIXED_UNITS = {"area": ("cost_um2_per_mac", "µm² per MAC"), "energy": ("cost_pj_per_mac", "pJ per MAC"),
               "weight_bits": ("cost_bits_per_weight", "bits per weight")}


def _mixed(model, sentences, lengths, spec, dps, ref, costs, sens, per, progress, metric: str = "area",
           seen: dict | None = None) -> dict:
    """Greedy per-group assignment minimising a MAC-weighted cost s.t. mean cosine >= min_cosine.

    ``metric="area"``: MAC area (µm² per MAC); ``"energy"``: pJ per MAC on the MiniLM operand stream, so the
    cost x the MAC count is the energy of the layers' MACs; both from ``costs``
    (:func:`rf8sim.study.minilm.mac_costs.cost_table`: this run's synthesis or a checked-in record, each with its
    source); ``"weight_bits"``: stored bits per weight.  Every configuration (W8A16 included) takes part."""
    from ..common.stats import bootstrap_ci

    if metric == "weight_bits":
        unit = {dp.label: weight_bits(dp) for dp in dps}
        sources = {}
    else:
        unit = {dp.label: float(costs[dp.label].get(metric)) for dp in dps}
        sources = {dp.label: costs[dp.label].source(metric) for dp in dps}
    by_label = {dp.label: dp for dp in dps}
    groups = sens["groups"]
    macs = _mac_counts(model, lengths)
    gmacs = {g: sum(macs[n] for n in names) for g, names in groups.items()}
    loss = {(r["group"], r["config"]): r["loss"] for r in sens["rows"]}
    verified_n = []

    seen = {} if seen is None else seen

    def verify(assign):
        key = tuple(sorted(assign.items()))
        if key in seen:  # verified by an earlier search: the same bits, no second pass
            nv, v = seen[key]
            verified_n.append(nv)
            return v["mean"] >= spec.min_cosine, v
        chosen = {g: by_label[assign[g]] for g in groups}
        nv = min(len(sentences), spec.a16_sentences) if any(d.float_acc for d in chosen.values()) \
            else len(sentences)
        q = exactify(model, {nm: chosen[g] for g, names in groups.items() for nm in names}, spec.max_terms)
        emb = _encode(q, sentences[:nv], lengths[:nv], spec.batch_size)
        cos = (ref[:nv].astype(np.float64) * emb.astype(np.float64)).sum(1)
        v = bootstrap_ci(cos, spec.bootstrap, seed=spec.seed)
        seen[key] = (nv, v)
        verified_n.append(nv)
        return v["mean"] >= spec.min_cosine, v

    g = greedy_assign(groups, gmacs, loss, unit, 1 - spec.min_cosine, verify)
    for h, nv in zip(g["history"], verified_n):
        h["sentences"] = nv
    uniform = [{"config": d.label, "cost": unit[d.label], "cosine": float(per[d.label]["cosine"].mean()),
                "sentences": len(per[d.label]["cosine"]), **({"source": sources[d.label]} if sources else {})}
               for d in dps]
    key = MIXED_UNITS[metric][0]
    out = {"constraint": f"mean cosine to float32 >= {spec.min_cosine}", "assignment": g["assignment"],
           "metric": metric, key: g["cost"], "verified": g["info"], "meets_constraint": bool(g["ok"]),
           "uniform": uniform, "history": g["history"], "group_macs": gmacs}
    if metric == "energy":  # pJ/MAC x MACs of each group over the sentences
        out["energy_uj"] = g["cost"] * sum(gmacs.values()) * 1e-6
    return out
