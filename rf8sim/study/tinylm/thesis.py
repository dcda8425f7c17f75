"""The paper's thesis on the flow's axis: does training with the GG prior, or RF8-aware QAT, close RF8's gap?

Post-training quantization of the flow's TinyLM (:mod:`rf8sim.study.tinylm.study`) puts RF8 last among the 8-bit
weight formats.  The paper's answer is "it takes a good model": weights trained toward a generalized
Gaussian (GG) prior, or trained with RF8 in the loop, should suit RF8.  This module trains the same TinyLM
(same data, same optimizer, :func:`rf8sim.study.tinylm.study._train` with a *recipe*) under

* ``plain``: the flow's training, unchanged;
* ``gg``: every Linear weight drawn by :func:`rf8sim.training.gg_init_` (GG shape ``gg_beta``, the
  variance of torch's default Linear init, ``xi = 1/3``), :class:`rf8sim.training.BackSlash` after every
  optimizer step on the Linear weights with ``lam`` scaled to the parameter count (one step moves a weight
  by at most ``bs_strength`` times the initial RMS, so the weights never blow up), and
  :func:`rf8sim.training.deepshape_` (all Linear weights pooled, grid 2^-``ds_step_exp``, target shape
  x ``ds_shape``, scale x ``ds_scale``) at
  ``ds_at`` of the steps, the remaining steps being the fine-tune;
* ``qat-FMT``: :func:`rf8sim.training.quantize_model_` with FMT weights per output channel and bf16
  activations (the weight-only datapath evaluated below) on every Linear layer; the latent float32
  weights are the recipe's float32 model.

Every model is evaluated on the same held-out chunks (chunk order of seed 0) through the bit-exact
weight-only datapath ``FMT/bf16@fp32`` (:func:`rf8sim.study.minilm.transformer.exactify`, per-channel scales, the
flow's scale rules), torch emulation checked per layer.  Per recipe: each format's loss against that
recipe's float32 model and the gaps RF8 − E4M3 and RF8 − INT8 (bits per byte, paired bootstrap + Wilcoxon
on chunks; pooled over seeds by averaging each chunk's bits over the seeds).

Verdict rule (:func:`verdict`), per recipe and reference format X, from the pooled gap:
``closed`` if the RF8 − X gap is not significantly > 0; otherwise ``narrowed`` if the gap minus plain
training's gap (paired on chunks) is significantly < 0; otherwise ``not closed``.  ``no gap`` when plain
training shows no significant gap to close.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...infra.cliargs import add_record_args
from ...infra.docgen import DocgenError
from ..common.config import spec_from
from .study import TinyLMError, TinyLMSpec, _model, chunk_bits, heldout_chunks

__all__ = ["ThesisSpec", "RECIPES", "THESIS_RECORD", "run_thesis", "verdict", "train_recipe", "record_run"]

#: the checked-in record (repo-relative)
THESIS_RECORD = Path("study") / "results" / "thesis-tinylm.json"

RECIPES = ("plain", "gg", "qat-rf8", "qat-e4m3")
FORMATS = ("rf8", "e4m3", "int8")


@dataclass(frozen=True)
class ThesisSpec:
    seeds: int = 2
    steps: int = 600                # the flow's TinyLM training length
    chunks: int = 128
    recipes: tuple = ("plain", "gg", "qat-rf8")
    formats: tuple = FORMATS        # the first is the one on trial (rf8)
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    block: int = 64
    batch_size: int = 32
    lr: float = 1e-2
    gg_beta: float = 1.0            # GG init shape (Laplace)
    bs_strength: float = 0.005      # BackSlash: one step moves a weight by <= this x the initial RMS
    ds_step_exp: int = 11           # DeepShape grid 2^-11 (the authors' 2^-13 leaves too few weights per level)
    ds_at: float = 0.8              # DeepShape after this fraction of the steps
    ds_shape: float = 0.8           # DeepShape target shape factor (the authors')
    ds_scale: float = 1.0           # DeepShape target scale factor (authors 0.6; 1 keeps the weights' scale)
    bootstrap: int = 1000
    max_terms: int = 2048

    def tinylm(self, seed: int) -> TinyLMSpec:
        return spec_from(TinyLMSpec, self, seed=seed)

    def check(self) -> None:
        for k in ("seeds", "steps", "chunks", "bootstrap"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise TinyLMError(f"thesis: {k} must be a positive integer, got {v!r}")
        bad = [r for r in self.recipes if r not in RECIPES]
        if bad or not self.recipes or self.recipes[0] != "plain":
            raise TinyLMError(f"thesis: recipes must start with 'plain' and be among {', '.join(RECIPES)}; "
                              f"got {', '.join(self.recipes)}")
        if len(self.formats) < 2:
            raise TinyLMError("thesis: formats needs the format on trial and at least one reference")


def _linears(model):
    import torch

    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


class Recipe:
    """Hooks for :func:`rf8sim.study.tinylm.study._train` (``plain``: none)."""

    def __init__(self, name: str, spec: ThesisSpec, seed: int):
        self.name, self.spec, self.seed = name, spec, seed
        self.info: dict = {"recipe": name}
        self.bs = None

    def setup(self, model) -> None:
        import torch

        from ...training import BackSlash, QATConfig, gg_init_, quantize_model_

        s = self.spec
        if self.name == "gg":
            g = torch.Generator().manual_seed(10_000 + self.seed)
            names = []
            for n, m in _linears(model):
                gg_init_(m.weight, beta=s.gg_beta, xi=1.0 / 3.0, generator=g)
                names.append(n + ".weight")
            ws = [m.weight for _, m in _linears(model)]
            n = sum(w.numel() for w in ws)
            rms = math.sqrt(float(sum(w.detach().double().square().sum() for w in ws)) / n)
            lam = s.bs_strength * rms * n / 2.0  # step lam*beta/n*(|w|+1)^(beta-1) <= strength*rms for beta <= 2
            self.bs = BackSlash(model, lam=lam, eps=1.0, select=names)
            self.info.update(gg_beta=s.gg_beta, gg_xi=1.0 / 3.0, backslash_lam=lam, backslash_params=int(n),
                             init_rms=rms)
        elif self.name.startswith("qat-"):
            fmt = self.name[4:]
            quantize_model_(model, QATConfig(weight_fmt=fmt, weight_granularity="channel", act_fmt="bf16"))
            self.info.update(qat_weight_fmt=fmt, qat_act="bf16", qat_granularity="channel")

    def after_step(self, model, step: int) -> None:
        if self.bs is None:
            return
        self.bs.step()
        if step + 1 == max(1, int(self.spec.ds_at * self.spec.steps)):
            from ...training import deepshape_

            names = [n + ".weight" for n, _ in _linears(model)]
            r = deepshape_(model, mode="global", step_exp=self.spec.ds_step_exp, core_count=0.01,
                           shape_factor=self.spec.ds_shape, scale_factor=self.spec.ds_scale, select=names)
            self.info.update(deepshape_step=step + 1, deepshape_mode="global", deepshape_step_exp=self.spec.ds_step_exp,
                             deepshape_core=r.groups[0].n_core, deepshape_shape=self.spec.ds_shape,
                             deepshape_scale=self.spec.ds_scale,
                             deepshape_fit_beta=[round(float(gr.fitted[0]), 3) for gr in r.groups])

    def finish(self, model) -> None:
        if self.bs is not None:
            self.info["backslash_final_beta"] = float(self.bs.beta)
        if self.name.startswith("qat-"):
            from torch.nn.utils import parametrize

            for _, m in _linears(model):  # keep the latent float32 weights: the recipe's float32 model
                parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
                h = getattr(m, "_rf8sim_act_handle", None)
                if h is not None:
                    h.remove()
                    del m._rf8sim_act_handle
                del m._rf8sim_qat


def train_recipe(spec: ThesisSpec, recipe: str, seed: int, progress: bool = False):
    """The TinyLM trained by ``recipe`` (one torch thread, seeded) and the recipe's details."""
    import torch

    from ...workloads.data import load_text_corpus
    from .study import _train

    corpus = load_text_corpus()
    r = Recipe(recipe, spec, seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t = time.perf_counter()
    try:
        model, losses = _train(spec.tinylm(seed), corpus.train, progress, recipe=r)
    finally:
        torch.set_num_threads(threads)
    return model, {**r.info, "seed": seed, "train_s": time.perf_counter() - t,
                   "final_train_loss_bits": float(np.mean(losses[-50:]) / math.log(2))}


def _datapaths(spec: ThesisSpec):
    from ..minilm.transformer import parse_configs

    return {f: parse_configs(f"{f}/bf16@fp32", "channel", 32, ("exact",))[0] for f in spec.formats}


def evaluate(model, chunks, spec: ThesisSpec) -> tuple[dict, list]:
    """Per-chunk bits per byte of float32 and of each format's weight-only datapath; torch check rows."""
    import torch

    from ..minilm.transformer import exactify, torch_check

    per = {"float32": chunk_bits(model, chunks)}
    checks = []
    for f, dp in _datapaths(spec).items():
        q = exactify(model, dp, spec.max_terms)
        per[f] = chunk_bits(q, chunks)
        with torch.no_grad():
            checks += torch_check(q, lambda: q(chunks[:2, :-1]))
    return per, checks


def _pt(a, b, spec: ThesisSpec) -> dict:
    from ..common.stats import paired_test

    r = paired_test(np.asarray(a), np.asarray(b), spec.bootstrap, seed=0)
    return {k: r[k] for k in ("diff", "lo", "hi", "p_wilcoxon", "significant")}


def verdict(gap: dict, change: dict | None, plain_gap: dict) -> str:
    """The stated rule (module docstring) on paired-test dicts (``diff``, ``significant``)."""
    if not (plain_gap["significant"] and plain_gap["diff"] > 0):
        return "no gap"
    if not (gap["significant"] and gap["diff"] > 0):
        return "closed"
    if change is not None and change["significant"] and change["diff"] < 0:
        return "narrowed"
    return "not closed"


def _job(args):
    """One (recipe, seed): train, evaluate on the shared held-out chunks (a worker process may run it)."""
    from ...workloads.data import load_text_corpus

    spec, recipe, seed = args
    chunks = heldout_chunks(load_text_corpus().test, spec.block, spec.chunks, 0)
    model, info = train_recipe(spec, recipe, seed)
    t = time.perf_counter()
    bits, ck = evaluate(model, chunks, spec)
    return info, bits, ck, time.perf_counter() - t


def run_thesis(spec: ThesisSpec, progress: bool = True, workers: int = 1) -> dict:
    """Train every recipe x seed, evaluate, compare; JSON-able results."""
    from tqdm.auto import tqdm

    from ...workloads.data import load_text_corpus
    from ..minilm.transformer import check_assignment

    spec.check()
    for dp in _datapaths(spec).values():
        check_assignment(_model(spec.tinylm(0)), dp, spec.max_terms)
    corpus = load_text_corpus()
    heldout_chunks(corpus.test, spec.block, spec.chunks, 0)  # checked before the long work
    t0 = time.perf_counter()
    runs, per = [], {}
    checks = 0
    bad = 0
    bar = tqdm(total=len(spec.recipes) * spec.seeds, desc="thesis: recipe x seed", disable=not progress)
    jobs = [(spec, recipe, seed) for recipe in spec.recipes for seed in range(spec.seeds)]
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as ex:
            done = list(ex.map(_job, jobs))
    else:
        done = map(_job, jobs)
    for (_, recipe, seed), (info, bits, ck, eval_s) in zip(jobs, done):
        checks += sum(r["outputs"] for r in ck)
        bad += sum(r["mismatches"] for r in ck)
        per[(recipe, seed)] = bits
        row = {**info, "eval_s": eval_s, "bpb": {k: float(v.mean()) for k, v in bits.items()},
               "loss": {f: _pt(bits[f], bits["float32"], spec) for f in spec.formats},
               "gap": {x: _pt(bits[spec.formats[0]], bits[x], spec) for x in spec.formats[1:]}}
        runs.append(row)
        bar.update()
    bar.close()
    trial = spec.formats[0]
    pooled = {}
    for recipe in spec.recipes:
        mean = {k: np.mean([per[(recipe, s)][k] for s in range(spec.seeds)], axis=0)
                for k in ("float32",) + tuple(spec.formats)}
        pooled[recipe] = {"bpb": {k: float(v.mean()) for k, v in mean.items()},
                          "loss": {f: _pt(mean[f], mean["float32"], spec) for f in spec.formats},
                          "gap": {x: _pt(mean[trial], mean[x], spec) for x in spec.formats[1:]}, "_mean": mean}
    for recipe in spec.recipes:
        p, b = pooled[recipe], pooled["plain"]
        p["change"], p["verdict"] = {}, {}
        for x in spec.formats[1:]:
            ch = None if recipe == "plain" else _pt(p["_mean"][trial] - p["_mean"][x],
                                                    b["_mean"][trial] - b["_mean"][x], spec)
            p["change"][x] = ch
            p["verdict"][x] = "baseline" if recipe == "plain" else verdict(p["gap"][x], ch, b["gap"][x])
    for p in pooled.values():
        del p["_mean"]
    return {"model": "TinyLM", "data": "pydoc_data.topics held-out paragraphs", "chunks": spec.chunks,
            "block": spec.block, "datapath": "W/bf16@fp32 (weight-only, per-channel scales, bit-exact golden.gemm)",
            "rule": "per recipe and reference X, pooled over seeds: 'closed' if RF8 - X is not significantly > 0; "
                    "else 'narrowed' if (RF8 - X) minus plain's (RF8 - X), paired on chunks, is significantly < 0; "
                    "else 'not closed'; 'no gap' if plain shows no significant gap. Significant: paired 95 % "
                    "bootstrap interval excludes 0 and Wilcoxon p < 0.05",
            "runs": runs, "pooled": pooled, "torch_check": {"outputs": checks, "mismatches": bad},
            "seconds": time.perf_counter() - t0,
            "spec": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()}}


# ---------------------------------------------------------------------------- record, docs, CLI

def _d(v: float) -> str:
    return f"{v:+.4f}" if v == 0 or abs(v) >= 1e-3 else f"{v:+.1e}"


def _ci(r: dict) -> str:
    return f"{_d(r['diff'])} [{_d(r['lo'])}, {_d(r['hi'])}]" + (" *" if r["significant"] else "")


def table(res: dict) -> str:
    fm = res["spec"]["formats"]
    trial = fm[0]
    head = ["recipe", "float32 bits/byte"] + [f"{f} − float32" for f in fm] + [f"{trial} − {x}" for x in fm[1:]] \
        + [f"vs {x}: verdict" for x in fm[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r, p in res["pooled"].items():
        cells = [r, f"{p['bpb']['float32']:.4f}"] + [_ci(p["loss"][f]) for f in fm] + \
            [_ci(p["gap"][x]) for x in fm[1:]] + [p["verdict"][x] for x in fm[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def seed_table(res: dict) -> str:
    fm = res["spec"]["formats"]
    lines = ["| recipe | seed | float32 | " + " | ".join(f"{fm[0]} − {x}" for x in fm[1:]) + " | train s |",
             "|" + "---|" * (4 + len(fm) - 1)]
    for r in res["runs"]:
        lines.append(f"| {r['recipe']} | {r['seed']} | {r['bpb']['float32']:.4f} | "
                     + " | ".join(_ci(r["gap"][x]) for x in fm[1:]) + f" | {r['train_s']:.0f} |")
    return "\n".join(lines) + "\n"


def summary(res: dict) -> str:
    s = res["spec"]
    fm = s["formats"]
    out = [f"TinyLM (d_model {s['d_model']}, {s['n_layer']} layers) trained {s['steps']} steps per recipe, "
           f"{s['seeds']} seeds per recipe, evaluated on {res['chunks']} held-out chunks of {res['block']} bytes "
           f"through {res['datapath']}; torch emulation check: {res['torch_check']['outputs']:,} outputs, "
           f"{res['torch_check']['mismatches']} mismatches. Rule: {res['rule']}."]
    trained = [r for r in res["pooled"] if r != "plain"]
    vs = [res["pooled"][r]["verdict"][x] for r in trained for x in fm[1:]]
    out.append(f"- Over the {len(vs)} (recipe, reference) pairs ({', '.join(trained)} x {', '.join(fm[1:])}), "
               f"verdicts on {fm[0]}'s gap: " + ", ".join(f"{k} {vs.count(k)}" for k in
                                                ("closed", "narrowed", "not closed", "no gap") if vs.count(k))
               + " (plain training's gaps: " + ", ".join(
                   f"{fm[0]} − {x} {_ci(res['pooled']['plain']['gap'][x])}" for x in fm[1:]) + ").")
    for r in trained:
        p = res["pooled"][r]
        for x in fm[1:]:
            ch = p["change"][x]
            out.append(f"- **{r}**, {fm[0]} − {x}: {_ci(p['gap'][x])} bits/byte against plain training's "
                       f"{_ci(res['pooled']['plain']['gap'][x])} (change {_ci(ch)}): **{p['verdict'][x]}**.")
    return "\n".join(out) + "\n"


def write_record(path, res: dict, *, overwrite: bool = False, command=None) -> Path:
    from ...infra.records import write_record as _w

    return _w(path, {"kind": "rf8sim-thesis", "thesis": res}, overwrite=overwrite, command=command)


def load_thesis_record() -> dict:
    from ...infra.docgen import load_record

    rec = load_record(THESIS_RECORD, "rf8sim-thesis", f"rf8sim study thesis --record {THESIS_RECORD}")
    if not rec.get("thesis"):
        raise DocgenError(f"{THESIS_RECORD} has no thesis results")
    return rec


def render() -> str:
    rec = load_thesis_record()
    pv, res = rec["provenance"], rec["thesis"]
    m = pv["machine"]
    return (f"Record `{THESIS_RECORD}`: `{pv['command']}` at commit {str(pv['commit'])[:10]}"
            f"{' (dirty tree)' if pv.get('dirty') else ''} on {m['cpu']}, {m['cores']} cores, load average "
            f"{m.get('load_1min')} at the end; {res['seconds']:.0f} s. Bits per byte, pooled over seeds (each "
            "chunk's bits averaged over the seeds), paired 95 % intervals, * = significant:\n\n"
            + table(res) + "\n" + summary(res) + "\nPer seed:\n\n" + seed_table(res))


def record_run(spec: ThesisSpec, record=None, *, force: bool = False, progress: bool = True, workers: int = 1) -> int:
    from ...infra.fileio import check_output_path
    from ..common.report import print_table

    spec.check()
    if record:
        check_output_path(record, force)
    res = run_thesis(spec, progress=progress, workers=workers)
    path = None
    if record and not res["torch_check"]["mismatches"]:  # the record first: nothing in the printing can lose it
        path = write_record(record, res, overwrite=force)
    rows = [{"recipe": r, **{f"{spec.formats[0]}-{x}": p["gap"][x]["diff"] for x in spec.formats[1:]},
             **{f"verdict {x}": p["verdict"][x] for x in spec.formats[1:]}} for r, p in res["pooled"].items()]
    print_table(rows, list(rows[0]), title="thesis: RF8 gap per training recipe (bits/byte, pooled)", digits=4)
    if res["torch_check"]["mismatches"]:
        raise TinyLMError(f"torch emulation disagrees with the golden model in {res['torch_check']['mismatches']} "
                          "value(s); not recorded")
    if path:
        print(path)
    return 0


def add_parser(ssub) -> None:
    """``rf8sim study thesis``."""
    q = ssub.add_parser("thesis", help="does GG-prior training or RF8-aware QAT close RF8's TinyLM gap to "
                                       "E4M3 and INT8? (weight-only, bit-exact, paired intervals)")
    q.add_argument("--seeds", type=int, default=ThesisSpec.seeds)
    q.add_argument("--steps", type=int, default=ThesisSpec.steps, help="training steps per model")
    q.add_argument("--chunks", type=int, default=ThesisSpec.chunks, help="held-out chunks")
    q.add_argument("--recipes", default=",".join(ThesisSpec.recipes),
                   help=f"comma-separated, starting with plain; valid: {', '.join(RECIPES)}")
    q.add_argument("--d-model", type=int, default=ThesisSpec.d_model)
    q.add_argument("--n-layer", type=int, default=ThesisSpec.n_layer)
    q.add_argument("--block", type=int, default=ThesisSpec.block)
    add_record_args(q, f"write a record (e.g. {THESIS_RECORD})", progress=True)
    q.add_argument("--workers", type=int, default=1, help="train recipe x seed in this many processes")
    q.set_defaults(func=_cmd)


def _cmd(a) -> int:
    spec = ThesisSpec(seeds=a.seeds, steps=a.steps, chunks=a.chunks,
                      recipes=tuple(r.strip() for r in a.recipes.split(",") if r.strip()),
                      d_model=a.d_model, n_layer=a.n_layer, block=a.block)
    return record_run(spec, a.record, force=a.force, progress=not a.no_progress, workers=max(1, a.workers))
