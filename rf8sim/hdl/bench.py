"""RTL benchmarks for ``rf8sim bench``: simulation beats/s, build times, synthesis time.

Baselines are measured in the same run: the file-streamed cocotb testbench is
compared with cocotb driving the ports from Python beat by beat, and Verilator
with Icarus on the same 65,536-beat stream (all rf8 x rf8 products, lanes 1).
Builds go to a fresh temporary directory so that build times are real.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

__all__ = ["run"]


def run(quick: bool = False) -> list[dict]:
    from .sim import check_simulator, run_direct, run_stream
    from .spec import MacSpec
    from .stimulus import product_stream
    from .synth import synthesize

    rows: list[dict] = []
    cfg = MacSpec.make("rf8", "rf8", None, 1)
    stream = product_stream(cfg)
    if quick:
        stream.a, stream.w, stream.clear, stream.gap = (x[:16384] for x in (stream.a, stream.w, stream.clear, stream.gap))
    n = len(stream)
    tmp = Path(tempfile.mkdtemp(prefix="rf8sim-bench-"))
    try:
        check_simulator("icarus")
        ic = run_stream(cfg, stream, "icarus", tmp, "bench")
        rows.append({"name": "icarus build (iverilog, rf8xrf8 exact l1)", "value": ic["build_s"], "unit": "s",
                     "lower_is_better": True})
        rows.append({"name": f"icarus streamed beats/s ({n} beats, whole run incl. cocotb start-up)",
                     "value": ic["beats_per_s"], "unit": "beats/s", "goal": ">= 20k beats/s"})
        rows.append({"name": f"icarus streamed beats/s ({n} beats, simulation loop only)",
                     "value": ic["stream_beats_per_s"], "unit": "beats/s", "goal": ">= 20k beats/s"})
        n_direct = 20 if quick else 60
        d = run_direct(cfg, sequences=n_direct, seed=0, max_len=32, simulator="icarus", root=tmp)
        direct_bps = d["compared_beats"] / max(d["loop_s"], 1e-9)
        rows.append({"name": f"icarus Python-driven beats/s ({d['compared_beats']} beats, loop only)",
                     "value": direct_bps, "unit": "beats/s"})
        rows[-2].update(baseline="Python-driven cocotb loop", ratio=ic["stream_beats_per_s"] / direct_bps)
        if not quick:
            try:
                check_simulator("verilator")
            except Exception as e:  # noqa: BLE001 - report, do not fail the bench
                rows.append({"name": f"verilator: skipped ({e})", "value": 0.0, "unit": ""})
            else:
                vl = run_stream(cfg, stream, "verilator", tmp, "bench")
                rows.append({"name": "verilator build (C++ compile)", "value": vl["build_s"], "unit": "s",
                             "lower_is_better": True, "baseline": "icarus build",
                             "ratio": vl["build_s"] / max(ic["build_s"], 1e-9)})
                rows.append({"name": f"verilator streamed beats/s ({n} beats, whole run)", "value": vl["beats_per_s"],
                             "unit": "beats/s", "baseline": "icarus whole run", "ratio": vl["beats_per_s"] / ic["beats_per_s"]})
                rows.append({"name": f"verilator streamed beats/s ({n} beats, simulation loop only)",
                             "value": vl["stream_beats_per_s"], "unit": "beats/s", "baseline": "icarus loop",
                             "ratio": vl["stream_beats_per_s"] / ic["stream_beats_per_s"]})
        configs = [("rf8", "rf8", "16:32", 1, "product")] if quick else [
            ("rf8", "rf8", "16:32", 1, "product"), ("rf8", "rf8", "16:32", 1, "mac"), ("e4m3", "e4m3", "16:32", 1, "mac"),
            ("rf8", "rf8", "exact", 4, "mac")]
        for a, w, acc, lanes, stage in configs:
            r = synthesize(a, w, acc, lanes, "fixed", stage, use_cache=False, root=tmp / "synth")
            rows.append({"name": f"synth {stage} {a}x{w} acc {acc} lanes {lanes} (generic + osu018)",
                         "value": r["synth_s"], "unit": "s", "lower_is_better": True})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def render_bench_table(path=None) -> str:
    """docs/hdl.md "Performance": the ``part == "hdl"`` rows of results/bench.json (``make bench``), with the
    Icarus goal (>= 20k beats/s) checked on the recorded numbers."""
    from ..infra.docgen import load_record, record_head

    rec = load_record(path or "results/bench.json", "rf8sim bench", "make bench")
    rows = [r for r in rec["rows"] if r.get("part") == "hdl"]
    if not rows:
        from ..infra.docgen import DocgenError

        raise DocgenError("results/bench.json has no hdl rows: run `make bench`")
    load = rec["provenance"].get("machine", {}).get("load_1min")
    out = [record_head(rec["provenance"]) + (f", load {load:g} at the start" if load is not None else "")
           + "; ratios are from the same run.", "", "| benchmark | value | baseline | ratio |", "|---|---|---|---|"]

    def val(r):
        v, u = r["value"], r["unit"]
        return f"{v / 1e3:.1f} k beats/s" if u == "beats/s" else f"{v:.2f} {u}"

    for r in rows:
        out.append(f"| {r['name']} | {val(r)} | {r.get('baseline', '')} | "
                   f"{'' if r.get('ratio') is None else format(r['ratio'], '.1f') + '×'} |")
    goal = [r for r in rows if r["name"].startswith("icarus streamed beats/s")]
    out += ["", "Goal ≥ 20 k beats/s on Icarus: " + "; ".join(
        f"{r['name'].split('(')[1].rstrip(')')}: {r['value'] / 1e3:.1f} k beats/s, "
        f"{'met' if r['value'] >= 20e3 else 'not met'}" for r in goal) + "."]
    return "\n".join(out) + "\n"
