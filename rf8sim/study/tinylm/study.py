"""TinyLM held-out bits per byte through the bit-exact datapath, with statistics (flow stage ``tinylm``).

A small byte-level decoder (:class:`rf8sim.workloads.models.TinyLM`: token + position embeddings,
pre-LayerNorm blocks with a packed QKV ``nn.Linear``, causal softmax attention, a GELU MLP, an
``nn.Linear`` head) is trained inside the flow on the training split of CPython's
``pydoc_data.topics`` (:func:`rf8sim.workloads.data.load_text_corpus`: held-out paragraphs are
disjoint from the training paragraphs), seeded, one thread, and cached under the cache root's
``model/`` by a hash of the training settings, the torch version and the code it runs.

Evaluation: ``chunks`` non-overlapping windows of ``block + 1`` held-out bytes, spread evenly over
the held-out text (in a seeded random order); per chunk the bits per byte of the next-byte predictions
(``sum -log2 p(byte)`` / ``block``).  float32 first, then every configuration of the
``[tinylm]`` (by default the ``[transformer]``) section through :func:`rf8sim.study.minilm.transformer.exactify`:
every Linear layer (QKV, attention output, both MLP layers, the head) through
``rf8sim.golden.gemm`` with that weight/activation format, rounding, scale granularity and
accumulator; softmax, LayerNorm, GELU and the embeddings stay float32.  Configurations with
float32 / aligned accumulators (W8A16) run on the first ``a16_chunks`` chunks (a random sample of them).  Per layer,
:func:`~rf8sim.study.minilm.transformer.torch_check` compares the golden bits with the torch emulation.

Statistics (:mod:`rf8sim.study.common.stats`): per configuration the mean bits per byte with a 95 %
bootstrap interval over chunks; between every two configurations (float32 included) a paired
bootstrap of the mean difference and a Wilcoxon signed-rank test on the same chunks, marked
significant when the interval excludes 0 and p < 0.05.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rf8sim.errors import RF8SimError

from ...infra.cliargs import add_record_args
from ...infra.docgen import DocgenError
from ..common.config import TINYLM_MIN_CHUNKS, spec_from
from ..minilm.transformer import DatapathConfig, check_assignment, exactify, flag_totals, linear_layers, torch_check

__all__ = ["TinyLMSpec", "TinyLMError", "heldout_chunks", "chunk_bits", "train_tinylm", "prepare",
           "run_tinylm_study", "pairwise", "TINYLM_RECORD", "write_tinylm_record", "load_tinylm_record"]

#: the checked-in record of the flow's TinyLM stage (repo-relative)
TINYLM_RECORD = Path("study") / "results" / "tinylm-flow.json"

#: at least this many held-out chunks (bootstrap intervals and paired tests over fewer say little)
MIN_CHUNKS = TINYLM_MIN_CHUNKS


class TinyLMError(RF8SimError, ValueError):
    """Bad TinyLM settings: too few held-out bytes, a model shape that cannot exist, ..."""


@dataclass(frozen=True)
class TinyLMSpec:
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    block: int = 64             # context length = bytes per held-out chunk
    steps: int = 600            # training steps (AdamW, cosine learning rate)
    batch_size: int = 32
    lr: float = 1e-2
    seed: int = 0
    chunks: int = 512           # held-out chunks (the statistics' units)
    a16_chunks: int = 128       # configs with fp32/aligned accumulators (W8A16) on the first N chunks
    max_rel_loss: float = 0.001  # accuracy constraint of the report's answer: bits/byte <= float32's x (1 + this)
    configs: tuple = ("rf8", "e4m3", "int8")
    granularity: str = "channel"
    acc: tuple = ("exact",)
    scale_block: int = 32
    bootstrap: int = 2000
    torch_check: bool = True
    max_terms: int = 2048       # "exact" accumulators are exact for this many products
    eval_batch: int = 64

    def datapaths(self) -> list[DatapathConfig]:
        from ..minilm.transformer import parse_configs

        out = []
        for c in self.configs:
            out += parse_configs(c, self.granularity, self.scale_block, self.acc)
        return out

    def train_key(self) -> dict:
        return {k: getattr(self, k) for k in ("d_model", "n_layer", "n_head", "block", "steps", "batch_size", "lr",
                                              "seed")}


def _model(spec: TinyLMSpec):
    from ...workloads.models import ModelError, TinyLM

    try:
        return TinyLM(d_model=spec.d_model, n_layer=spec.n_layer, n_head=spec.n_head, block=spec.block)
    except ModelError as e:
        raise TinyLMError(str(e)) from None


def heldout_chunks(tokens, block: int, n: int, seed: int = 0):
    """``n`` non-overlapping windows of ``block + 1`` bytes spread evenly over ``tokens``, in a seeded random
    order (so that the first ``a16_chunks`` are a sample of the whole held-out text, not its first topics):
    (n, block + 1) int64."""
    import torch

    avail = (len(tokens) - 1) // block  # windows of block inputs + block targets, overlapping by one byte
    if n < MIN_CHUNKS:
        raise TinyLMError(f"[tinylm] chunks must be >= {MIN_CHUNKS} (bootstrap intervals over fewer say little), got {n}")
    if n > avail:
        raise TinyLMError(f"[tinylm] chunks = {n} needs {n * block + 1:,} held-out bytes for block {block}, but the "
                          f"held-out text has {len(tokens):,} ({avail} chunks); lower chunks or block")
    starts = (np.random.default_rng(seed).permutation(n) * avail // n) * block
    return torch.stack([tokens[s:s + block + 1] for s in starts.tolist()])


def chunk_bits(model, chunks, batch: int = 64) -> np.ndarray:
    """Bits per byte of each chunk: ``sum over its block targets of -log2 p(target)`` / block.

    float32 logits (the model's), log-softmax in float64."""
    import torch

    out = []
    model.eval()
    with torch.no_grad():
        for s in range(0, len(chunks), batch):
            c = chunks[s:s + batch]
            logits = model(c[:, :-1]).double()
            lp = torch.log_softmax(logits, -1).gather(-1, c[:, 1:, None])[..., 0]
            out.append((-lp.sum(1) / (math.log(2) * lp.shape[1])).numpy())
    return np.concatenate(out)


def _code_hash() -> str:
    import hashlib

    from ...workloads import data, models

    h = hashlib.sha256()
    for src in (inspect.getsource(models), inspect.getsource(data), inspect.getsource(_train)):
        h.update(src.encode())
    return h.hexdigest()[:16]


def _train(spec: TinyLMSpec, tokens, progress: bool, recipe=None):
    """AdamW with linear warm-up and cosine decay, gradient clipping 1, random windows (seeded).

    ``recipe`` (optional, :mod:`rf8sim.study.tinylm.thesis`): ``setup(model)`` before the optimizer is built,
    ``after_step(model, step)`` after every optimizer step, ``finish(model)`` at the end."""
    import torch
    from tqdm.auto import tqdm

    from ...workloads.data import lm_batch

    torch.manual_seed(spec.seed)
    g = torch.Generator().manual_seed(spec.seed)
    model = _model(spec)
    if recipe is not None:
        recipe.setup(model)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.0)
    warm = max(1, spec.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / spec.steps))))
    model.train()
    losses = []
    for _ in tqdm(range(spec.steps), desc="TinyLM training", disable=not progress, leave=False):
        xb, yb = lm_batch(tokens, spec.batch_size, spec.block, g)
        loss = model.loss(xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if recipe is not None:
            recipe.after_step(model, len(losses))
        losses.append(loss.item())
    if recipe is not None:
        recipe.finish(model)
    return model.eval(), losses


def train_tinylm(spec: TinyLMSpec, *, cache_dir=None, progress: bool = True, use_cache: bool = True):
    """The trained TinyLM and its metadata; cached under ``model/tinylm-<hash>.npz`` of the cache root."""
    import torch

    from ...infra import cache as _cache
    from ...workloads.data import load_text_corpus

    key = _cache.content_hash({"tinylm": spec.train_key(), "torch": torch.__version__, "code": _code_hash(), "v": 1})
    f = _cache.subdir("model", cache_dir) / f"tinylm-{key}.npz"
    if use_cache and f.is_file():
        try:
            z = np.load(f, allow_pickle=False)
            meta = json.loads(str(z["meta"]))
            model = _model(spec)
            model.load_state_dict({k: torch.from_numpy(z[f"p:{k}"]) for k in meta["params"]}, strict=True)
            return model.eval(), {**meta, "cached": True, "cache_file": f"model/{f.name}"}  # cache-relative
        except (OSError, ValueError, KeyError, RuntimeError):
            pass  # a damaged entry is retrained
    corpus = load_text_corpus()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same floats on every run (and the flow runs other work)
    t = time.perf_counter()
    try:
        model, losses = _train(spec, corpus.train, progress)
    finally:
        torch.set_num_threads(threads)
    sd = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    meta = {"train_s": time.perf_counter() - t, "train_bytes": int(len(corpus.train)),
            "heldout_bytes": int(len(corpus.test)), "train_paragraphs": corpus.n_train_paragraphs,
            "heldout_paragraphs": corpus.n_test_paragraphs,
            "n_params": int(sum(p.numel() for p in model.parameters())),
            "final_train_loss_bits": float(np.mean(losses[-50:]) / math.log(2)), "params": list(sd),
            "settings": spec.train_key(), "key": key}
    if use_cache:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_name(f"{f.stem}.tmp{os.getpid()}.npz")
        np.savez(tmp, meta=json.dumps(meta), **{f"p:{k}": v for k, v in sd.items()})
        os.replace(tmp, f)
    return model, {**meta, "cached": False, "cache_file": f"model/{f.name}"}  # relative to the cache root


def prepare(spec: TinyLMSpec):
    """Everything checked before training or evaluation: model shape, configs on its layers, held-out bytes.
    Returns the held-out chunks."""
    from ...workloads.data import load_text_corpus

    for k in ("d_model", "n_layer", "n_head", "block", "steps", "batch_size", "a16_chunks", "bootstrap",
              "eval_batch", "scale_block"):
        v = getattr(spec, k)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise TinyLMError(f"[tinylm] {k} must be a positive integer, got {v!r}")
    if not spec.lr > 0:
        raise TinyLMError(f"[tinylm] lr must be > 0, got {spec.lr!r}")
    model = _model(spec)  # untrained: the layer shapes are what the datapath checks need
    for dp in spec.datapaths():
        check_assignment(model, dp, spec.max_terms)  # names the layer / config that cannot run
    corpus = load_text_corpus()
    return heldout_chunks(corpus.test, spec.block, spec.chunks, spec.seed)


def pairwise(per: dict, n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """Paired test of every two configurations on their common chunks (a prefix: the shorter one's)."""
    from ..common.stats import paired_test

    labels = list(per)
    out = []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            a, b = labels[i], labels[j]
            n = min(len(per[a]), len(per[b]))
            r = paired_test(per[a][:n], per[b][:n], n_boot, seed=seed)
            out.append({"a": a, "b": b, "metric": "bits_per_byte", "chunks": n, **r})
    return out


def run_tinylm_study(spec: TinyLMSpec, areas: dict | None = None, *, progress: bool = True, cache_dir=None) -> dict:
    """Train (or load) the TinyLM, evaluate float32 and every configuration bit-exactly; JSON-able results."""
    import torch
    from tqdm.auto import tqdm

    from ..common.stats import bootstrap_ci

    areas = areas or {}
    t0 = time.perf_counter()
    chunks = prepare(spec)
    dps = spec.datapaths()
    model, meta = train_tinylm(spec, cache_dir=cache_dir, progress=progress)
    timing = {"train" + (" (cached)" if meta["cached"] else ""): time.perf_counter() - t0}
    n = len(chunks)
    t = time.perf_counter()
    per = {"float32": chunk_bits(model, chunks, spec.eval_batch)}
    timing["float32"] = time.perf_counter() - t
    ci = bootstrap_ci(per["float32"], spec.bootstrap, seed=spec.seed)
    points = [{"label": "float32", "chunks": n, "bpb": ci["mean"], "bpb_lo": ci["lo"], "bpb_hi": ci["hi"],
               "seconds": timing["float32"]}]
    checks = []
    bar = tqdm(total=len(dps), desc="TinyLM configs", disable=not progress, leave=False)
    for dp in dps:
        t = time.perf_counter()
        q = exactify(model, dp, spec.max_terms)
        nd = min(n, spec.a16_chunks) if dp.float_acc else n  # the float-accumulator kernels are slower
        bits = chunk_bits(q, chunks[:nd], spec.eval_batch)
        per[dp.label] = bits
        fl = flag_totals(q)
        ci = bootstrap_ci(bits, spec.bootstrap, seed=spec.seed)
        row = {"label": dp.label, "w_format": dp.w_format, "a_format": dp.act_format, "rounding": dp.rounding,
               "granularity": dp.granularity, "acc": dp.acc, "mac": f"{dp.act_format}x{dp.w_format}",
               "area_um2": areas.get(f"{dp.act_format}x{dp.w_format}") if dp.acc == "exact" else None,
               "chunks": nd, "bpb": ci["mean"], "bpb_lo": ci["lo"], "bpb_hi": ci["hi"],
               "overflow": fl["overflow"], "invalid": fl["invalid"], "outputs": fl["outputs"]}
        if spec.torch_check:
            with torch.no_grad():
                checks += torch_check(q, lambda: q(chunks[:2, :-1]))
        row["seconds"] = time.perf_counter() - t
        timing[dp.label] = row["seconds"]
        points.append(row)
        bar.update()
    bar.close()
    pairs = pairwise(per, spec.bootstrap, spec.seed)
    vs = {(r["a"], r["b"]): r for r in pairs}
    for p in points[1:]:  # the loss against float32 with its paired interval
        r = vs[("float32", p["label"])]
        p.update(delta=-r["diff"], delta_lo=-r["hi"], delta_hi=-r["lo"], delta_significant=r["significant"])
    timing["total"] = time.perf_counter() - t0
    layers = [name for name, _ in linear_layers(model)]
    return {"model": "TinyLM", "data": "pydoc_data.topics held-out paragraphs", "chunks": n, "block": spec.block,
            "bytes": int(n * spec.block), "layers": layers, "train": meta, "points": points, "pairs": pairs,
            "per_chunk": {k: v.tolist() for k, v in per.items()}, "torch_check": checks, "timing_s": timing,
            "spec": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()}}


# ---------------------------------------------------------------------------
# flow glue, report, record and docs


def spec_from_config(cfg) -> TinyLMSpec:
    """The stage's :class:`TinyLMSpec` from ``[tinylm]`` (``configs = "transformer"``: the transformer's
    configs, granularity and accumulators)."""
    t = cfg.tinylm
    src = cfg.transformer if t.configs == "transformer" else t
    return spec_from(TinyLMSpec, t, seed=cfg.study.seed, configs=tuple(src.configs), granularity=src.granularity,
                     acc=tuple(src.acc), max_terms=cfg.study.max_terms)


def plot_bpb(res: dict, path) -> None:
    """Each configuration's loss against float32 (bits per byte) with its paired 95 % interval: the
    absolute intervals over chunks are wide (chunks differ), the paired ones are what tells formats apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [p for p in res["points"] if "delta" in p]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(pts) + 1.4))
    y = np.arange(len(pts))[::-1]
    m = np.array([p["delta"] for p in pts])
    err = np.array([[p["delta"] - p["delta_lo"] for p in pts], [p["delta_hi"] - p["delta"] for p in pts]])
    col = ["tab:red" if p["delta_significant"] else "tab:gray" for p in pts]
    for yi, mi, e0, e1, c in zip(y, m, err[0], err[1], col):
        ax.errorbar(mi, yi, xerr=[[e0], [e1]], fmt="o", capsize=3, color=c)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, [_lab(p, res) for p in pts])
    ax.set_xlabel("bits per byte − float32 (paired 95 % CI; red = significant)")
    ax.set_title(f"TinyLM, {res['chunks']} held-out chunks, float32 {res['points'][0]['bpb']:.3f} bits/byte",
                 fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _lab(p, res) -> str:
    return p["label"] + ("" if p["chunks"] == res["chunks"] else f" ({p['chunks']}-chunk sample)")


def _d(v: float) -> str:
    """A signed difference in bits per byte: 4 decimals, or 2 significant digits below 0.001."""
    return f"{v:+.4f}" if v == 0 or abs(v) >= 1e-3 else f"{v:+.1e}"


def points_table(res: dict) -> str:
    lines = ["| configuration | bits per byte [95 % CI] | − float32 [paired 95 % CI] | significant | MAC area µm² "
             "| saturated outputs |", "|---|---|---|---|---|---|"]
    for p in res["points"]:
        d = "–" if "delta" not in p else f"{_d(p['delta'])} [{_d(p['delta_lo'])}, {_d(p['delta_hi'])}]"
        sig = "–" if "delta" not in p else ("**yes**" if p["delta_significant"] else "no")
        area = "–" if p.get("area_um2") is None else f"{p['area_um2']:,.0f}"
        lines.append(f"| {_lab(p, res)} | {p['bpb']:.4f} [{p['bpb_lo']:.4f}, {p['bpb_hi']:.4f}] | {d} | {sig} "
                     f"| {area} | {p.get('overflow', '–')} |")
    return "\n".join(lines) + "\n"


def pairs_table(res: dict) -> str:
    lines = ["| A | B | chunks | A − B bits per byte [95 % CI] | p (Wilcoxon) | significant |",
             "|---|---|---|---|---|---|"]
    for r in res["pairs"]:
        lines.append(f"| {r['a']} | {r['b']} | {r['chunks']} | {_d(r['diff'])} [{_d(r['lo'])}, {_d(r['hi'])}] "
                     f"| {r['p_wilcoxon']:.3g} | {'**yes**' if r['significant'] else 'no'} |")
    return "\n".join(lines) + "\n"


def check_summary(res: dict) -> str:
    ck = res["torch_check"]
    refs = sorted({r.get("reference", "torch rf8sim.training gemm") for r in ck})
    return (f"Per-layer torch emulation check: {len(ck)} layer runs ({len(res['layers'])} Linear layers × "
            f"{len(res['points']) - 1} configurations), {sum(r['outputs'] for r in ck):,} outputs, "
            f"{sum(r['mismatches'] for r in ck)} mismatches (references: {', '.join(refs)}).")


def model_summary(res: dict) -> str:
    tr, s = res["train"], res["spec"]
    return (f"TinyLM (byte level, d_model {s['d_model']}, {s['n_layer']} layers, {s['n_head']} heads, context "
            f"{s['block']}; {tr['n_params']:,} parameters; {len(res['layers'])} Linear layers: "
            f"{', '.join(res['layers'])}) trained for {s['steps']} steps of {s['batch_size']} windows on "
            f"{tr['train_bytes']:,} bytes ({tr['train_paragraphs']} paragraphs) of pydoc_data.topics; evaluated on "
            f"{res['chunks']} chunks of {res['block']} bytes from the {tr['heldout_paragraphs']} held-out paragraphs "
            f"({tr['heldout_bytes']:,} bytes, disjoint from training).")


def report_markdown(res: dict, out) -> list[str]:
    """The flow report's TinyLM section (and the plot next to report.md)."""
    plot_bpb(res, Path(out) / "tinylm_bpb.png")
    return ["## TinyLM held-out bits per byte through the bit-exact datapath\n",
            model_summary(res) + " Every Linear layer through `rf8sim.golden.gemm`; softmax, LayerNorm, GELU and "
            "the embeddings float32. Means with 95 % bootstrap intervals over chunks; − float32 = the configuration's "
            "loss, paired on the same chunks.\n",
            points_table(res), "![TinyLM: loss against float32 per configuration](tinylm_bpb.png)\n",
            "Paired comparisons on the same chunks (paired bootstrap of the mean difference, Wilcoxon signed-rank); "
            "**significant** = the interval excludes 0 and p < 0.05:\n", pairs_table(res), check_summary(res) + "\n"]


def write_tinylm_record(path, res: dict, *, overwrite: bool = False, command=None) -> Path:
    from ...infra.records import write_record

    return write_record(path, {"kind": "rf8sim-tinylm", "tinylm": res}, overwrite=overwrite, command=command)


def _root() -> Path:
    return Path(__file__).resolve().parents[3]


def load_tinylm_record() -> dict:
    """The checked-in record (:data:`TINYLM_RECORD`) for the docs' generated blocks."""
    from ...infra.docgen import load_record

    rec = load_record(TINYLM_RECORD, "rf8sim-tinylm", f"rf8sim study tinylm --record {TINYLM_RECORD}")
    if not rec.get("tinylm"):
        raise DocgenError(f"{TINYLM_RECORD} has no TinyLM results")
    return rec


def render_run() -> str:
    rec = load_tinylm_record()
    pv, res = rec["provenance"], rec["tinylm"]
    m = pv["machine"]
    tm = res["timing_s"]
    return (f"Record `{TINYLM_RECORD}`: `{pv['command']}` at commit {str(pv['commit'])[:10]}"
            f"{' (dirty tree)' if pv.get('dirty') else ''} on {m['cpu']}, {m['cores']} cores, load average "
            f"{m.get('load_1min')} at the end. " + model_summary(res)
            + f" Wall seconds: {', '.join(f'{k} {v:.1f}' for k, v in tm.items())}.\n")


def render_points() -> str:
    return points_table(load_tinylm_record()["tinylm"])


def render_pairs() -> str:
    res = load_tinylm_record()["tinylm"]
    return pairs_table(res) + "\n" + check_summary(res) + "\n"


def render_answer() -> str:
    from ..flow.answer import tinylm_answer

    return "\n".join(tinylm_answer(load_tinylm_record()["tinylm"])) + "\n"


def record_run(config=None, record=None, *, cache_dir=None, force: bool = False, progress: bool = True) -> int:
    """The flow's TinyLM stage alone (the config's ``[tinylm]``; default the embedded flow.toml), printed as a
    table and written as a record (``rf8sim study tinylm --record study/results/tinylm-flow.json``)."""
    from ...infra.fileio import check_output_path
    from ..common.config import StudyConfig, load_config
    from ..common.report import print_table

    cfg = config if isinstance(config, StudyConfig) else load_config(
        config or _root() / "rf8sim" / "study" / "configs" / "flow.toml")
    if cfg.tinylm.model == "none":
        raise TinyLMError("[tinylm] model = 'none' in this config: nothing to run")
    if record:
        check_output_path(record, force)  # before the long work
    res = run_tinylm_study(spec_from_config(cfg), progress=progress, cache_dir=cache_dir)
    bad = sum(r["mismatches"] for r in res["torch_check"])
    path = None
    if record and not bad:  # the record first: nothing in the printing can lose it
        path = write_tinylm_record(record, res, overwrite=force)
    print_table([{k: p.get(k) for k in ("label", "chunks", "bpb", "bpb_lo", "bpb_hi", "delta", "seconds")}
                 for p in res["points"]], ["label", "chunks", "bpb", "bpb_lo", "bpb_hi", "delta", "seconds"],
                title="TinyLM held-out bits per byte", digits=4)
    print(check_summary(res))
    if bad:
        raise TinyLMError(f"torch emulation disagrees with the golden model in {bad} value(s); not recorded")
    if path:
        print(path)
    return 0


def main(argv=None) -> int:
    """``python -m rf8sim.study.tinylm.study --record FILE.json`` (= ``rf8sim study tinylm``)."""
    import argparse

    ap = argparse.ArgumentParser(description="The flow's TinyLM stage alone (its [tinylm] section), as a record.")
    ap.add_argument("--config", default=None, help="flow config (default: the embedded flow.toml)")
    add_record_args(ap, None, progress=True)
    ap.add_argument("--record", default=None, metavar="FILE.json")
    ap.add_argument("--cache-dir", default=None)
    a = ap.parse_args(argv)
    return record_run(a.config, a.record, cache_dir=a.cache_dir, force=a.force, progress=not a.no_progress)


if __name__ == "__main__":
    from rf8sim.study.tinylm.study import main as _main  # the registered module, not this __main__ copy

    try:
        raise SystemExit(_main())
    except RF8SimError as e:
        raise SystemExit(f"error: {e}") from None
