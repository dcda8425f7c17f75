"""``rf8sim bench``: every part's benchmarks, printed as ratios against baselines measured in the same run.

Each part provides ``rf8sim/<part>/bench.py`` with ``run(quick: bool) -> list[dict]``;
a row has ``part``, ``name``, ``value``, ``unit`` and optionally ``baseline`` (its
name), ``ratio`` (ours / baseline, "higher is better" unless ``lower_is_better``)
and ``goal`` (text).  Timings are wall-clock on a possibly noisy machine, so each
ratio compares two measurements taken back to back in this process.
"""

from __future__ import annotations

import importlib
import platform
import time
from pathlib import Path

PARTS = ("golden", "hdl", "training")

#: The checked-in record of ``make bench`` that README's "Measured here" table is generated from.
RECORD = Path(__file__).resolve().parents[1] / "results" / "bench.json"


def machine() -> str:
    import os

    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}"


def run(parts=PARTS, quick: bool = False, json_out: str | None = None, record: str | None = None,
        force: bool = False) -> list[dict]:
    """Run every part's benchmarks; ``record``: write them with provenance (rf8sim.infra.records) to that file."""
    from rf8sim.infra.console import Console
    from rich.table import Table

    from .infra import fileio, records

    for path in (json_out, record):
        if path:
            fileio.check_output_path(path, overwrite=force)  # before minutes of work
    prov = records.provenance()  # the commit and diff the run started from
    last, last_from = previous_ratios(RECORD)  # read before --record may replace it
    rows: list[dict] = []
    console = Console()
    for part in parts:
        try:
            mod = importlib.import_module(f"rf8sim.{part}.bench")
        except ModuleNotFoundError as e:
            console.print(f"[yellow]bench: part {part!r} has no benchmarks ({e.name} not importable)[/]")
            continue
        t0 = time.perf_counter()
        got = mod.run(quick=quick)
        for r in got:
            r.setdefault("part", part)
        rows += got
        console.print(f"[dim]{part}: {len(got)} rows in {time.perf_counter() - t0:.1f} s[/]")
    t = Table(title=f"rf8sim bench ({machine()})")
    for h in ("part", "benchmark", "value", "baseline", "ratio", "last recorded", "goal"):
        t.add_column(h)
    worse = []
    for r in rows:
        ratio = r.get("ratio")
        prev = last.get(r["name"])
        if ratio is not None and prev and ratio < REGRESSION * prev:
            worse.append(f"{r['name']}: {ratio:.2f}x, recorded {prev:.2f}x")
        t.add_row(r["part"], r["name"], f"{r['value']:.4g} {r.get('unit', '')}", r.get("baseline", ""),
                  "" if ratio is None else f"{ratio:.2f}x", compare_cell(ratio, prev), r.get("goal", ""))
    console.print(t)
    console.print(f"last recorded: {last_from}")
    if worse:
        console.print(f"[bold yellow]{len(worse)} ratio(s) below {REGRESSION:g} x the last recorded one "
                      f"(a regression, or a busier machine: load {prov['machine'].get('load_1min')}):[/]")
        for w in worse:
            console.print(f"  {w}")
    payload = {"provenance": prov, "kind": "rf8sim bench", "quick": quick, "parts": list(parts), "rows": rows}
    for path in (json_out, record):
        if path:
            records.write_record(path, payload, overwrite=force)
            console.print(f"record: {path}")
    return rows


#: a ratio below this fraction of the last recorded one is flagged after the table
REGRESSION = 0.8


def previous_ratios(path) -> tuple[dict, str]:
    """``({row name: ratio}, "where from")`` of the last recorded bench (empty when there is none)."""
    import json

    p = Path(path)
    try:
        rec = json.loads(p.read_text())
        prov = rec.get("provenance", {})
        got = {r["name"]: float(r["ratio"]) for r in rec.get("rows", []) if r.get("ratio") is not None}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}, f"no readable record at {_rel(p)}"
    return got, (f"{_rel(p)}, commit {str(prov.get('commit'))[:10]}, {prov.get('utc')}, load "
                 f"{prov.get('machine', {}).get('load_1min')}")


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(RECORD.parents[1]))
    except ValueError:
        return str(p)


def compare_cell(ratio, prev) -> str:
    """'7.29x (-12 %)': the last recorded ratio and the change of this run's against it."""
    if prev is None:
        return "–"
    if ratio is None or not prev:
        return f"{prev:.2f}x"
    return f"{prev:.2f}x ({100 * (ratio / prev - 1):+.0f} %)"


# ---- README's "Measured here" table, generated from the records (rf8sim docs) -------------------

GPU_RECORD = Path(__file__).resolve().parents[1] / "training" / "results" / "gpu_check_h100.json"
TRAINING_RECORD = Path(__file__).resolve().parents[1] / "training" / "results" / "bench_training_cpu.json"
NARROW_RECORD = Path(__file__).resolve().parents[1] / "results" / "golden-narrow-gemm.json"
W8A16_RECORD = Path(__file__).resolve().parents[1] / "results" / "golden-w8a16-gemm.json"


def _read(path: Path) -> dict:
    import json

    from .infra.docgen import DocgenError

    if not path.is_file():
        raise DocgenError(f"record {path} missing: it is checked in (regenerate with `make bench` / gpu_check)")
    return json.loads(path.read_text())


def _row(rows: list, prefix: str) -> dict:
    from .infra.docgen import DocgenError

    for r in rows:
        if r["name"].startswith(prefix):
            return r
    raise DocgenError(f"no benchmark row starting with {prefix!r} in the record; rerun `make bench`")


def _x(r: dict) -> str:
    """The ratio as 'N.N×' of the baseline's speed (higher is better) or time (lower is better)."""
    return f"{r['ratio']:.2f}×"


def measured_table() -> str:
    b = _read(RECORD)
    g = _read(GPU_RECORD)
    rows, grows = b["rows"], g["bench"]
    prov = b["provenance"]
    m = prov["machine"]
    dirty = " + uncommitted changes" if prov.get("dirty") else ""
    if TRAINING_RECORD.is_file():
        tp = _read(TRAINING_RECORD)["provenance"]
        tdirty = " + uncommitted changes" if tp.get("dirty") else ""
        tnote = (f" Training rows (fake_quant, QAT, BackSlash): `{tp['command']}` (load {tp['machine']['load_1min']:g}), "
                 f"commit {str(tp['commit'])[:10]}{tdirty}, {tp['utc']} — record `training/results/bench_training_cpu.json`.")
    else:
        tnote = ""
    head = (f"CPU rows: `{prov['command']}` on {m['cpu']} ({m['cores']} cores, load {m['load_1min']:g} at the "
            f"start: a shared machine, so each ratio compares two timings taken back to back), torch "
            f"{prov['versions'].get('torch')}, commit {str(prov['commit'])[:10]}{dirty}, {prov['utc']} — "
            f"record `results/bench.json`. GPU rows: `python -m rf8sim.training.gpu_check` on "
            f"{g['info']['device_name']}, torch {g['info']['torch']} — record `training/results/gpu_check_h100.json` "
            "(that record has no commit or dirty flag: it predates rf8sim.infra.records)." + tnote)
    enc = [_row(rows, f"encode f32->{f} nearest") for f in ("rf8", "e4m3")]
    dec = [_row(rows, f"decode {f}->f32") for f in ("e4m3", "rf8")]
    gemm = _row(rows, "exact rf8 x rf8 GEMM 512^3 (auto")
    # training rows: the dedicated training record (python -m rf8sim.training.bench --record) when present
    t = _read(TRAINING_RECORD) if TRAINING_RECORD.is_file() else None
    trows = t["rows"] if t else rows
    rows_all, rows = rows, trows
    fq = _row(rows, "fake_quant rf8 tensor, 16M")
    fqc = _row(rows, "fake_quant rf8 per-channel (1024 cols)")
    fq_fused = [r for r in rows if r["name"].startswith("fake_quant ") and "(fused op, torch.compile" in r["name"]]
    qat = _row(rows, "QAT step (rf8 weights")
    qat_c = [r for r in rows if r["name"].startswith("QAT step, same model, fake_quant via torch.compile")]
    bs = [r for r in rows if r["name"].startswith("BackSlash step") and "fused" not in r["name"]]
    bs_c = [r for r in rows if r["name"].startswith("BackSlash step") and "fused" in r["name"]]
    rows = rows_all
    ic_run = _row(rows, "icarus streamed beats/s (65536 beats, whole run")
    ic_loop = _row(rows, "icarus streamed beats/s (65536 beats, simulation loop only")
    g_fqc = _row(grows, "fake_quant rf8 per-channel, 16M fp32 (torch.compile")
    g_fq = _row(grows, "fake_quant rf8 tensor, 16M")
    g_qat = _row(grows, "QAT step, same model, fake_quant via torch.compile")
    g_bs = [r for r in grows if r["name"].startswith("BackSlash step")]
    ex = g["exactness"]
    n_cmp, n_bad = sum(r["compared"] for r in ex), sum(r["mismatches"] for r in ex)

    def rng(rs):
        lo, hi = min(r["ratio"] for r in rs), max(r["ratio"] for r in rs)
        return f"{lo:.2f}×" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}–{hi:.2f}×"

    one = [r for f in ("rf8", "e4m3") for r in rows if r["name"].startswith(f"encode f32->{f} nearest")
           and r["name"].endswith("one Numba thread")]
    one_txt = f"; with one Numba thread {_x(one[0])} / {_x(one[1])}" if len(one) == 2 else ""
    table = [
        ("encode float32 → rf8 `nearest` / e4m3, 16M values",
         f"{_x(enc[0])} / {_x(enc[1])} the speed of ml_dtypes' `astype(float8_e4m3fn)` (goal ≥ 2×){one_txt}",
         "`make bench`"),
        ("decode e4m3 / rf8 → float32", f"{_x(dec[0])} / {_x(dec[1])} ml_dtypes (goal ≥ 4×)", "`make bench`"),
        ("exact rf8×rf8 GEMM 512³, 49-bit accumulator",
         f"{gemm['ratio']:.2f}× the speed of numpy's float64 matmul (goal ≥ 0.33×, i.e. within 3× its time)",
         "`make bench`"),
        ("fake_quant, 16M fp32, time vs the float8 cast (goal ≤ 2×)",
         (f"CPU fused op compiled {rng(fq_fused)} over {len(fq_fused)} format/rounding modes; " if fq_fused else "")
         + f"CPU eager rf8 {_x(fq)} (per-channel {_x(fqc)}); {g['info']['device_name']} (earlier code) eager "
         f"{_x(g_fq)}, compiled {_x(g_fqc)}", "`make bench`, `gpu_check`"),
        ("QAT step, small transformer, time vs float32 (goal ≤ 1.3×)",
         (f"CPU compiled fake-quant op {rng(qat_c)}, " if qat_c else "") + f"CPU eager {_x(qat)}; "
         f"GPU (earlier code) compiled {_x(g_qat)}", "same"),
        ("BackSlash overhead per step (goal ≤ 1.05×)",
         (f"CPU fused step {rng(bs_c)}, " if bs_c else "") + f"CPU foreach step {rng(bs)}; GPU (earlier code) "
         f"{rng(g_bs)}", "same"),
        ("Icarus MAC simulation (goal ≥ 20k beats/s)",
         f"{ic_loop['value'] / 1e3:.1f}k beats/s in the loop, {ic_run['value'] / 1e3:.1f}k beats/s whole 65,536-beat run",
         "`make bench`"),
        ("torch quantizer on CUDA vs CPU", f"{n_cmp:,} values, {n_bad} mismatches ({g['info']['device_name']})",
         "`python -m rf8sim.training.gpu_check`"),
    ]
    w16 = [r for r in rows if r["name"].startswith("W8A16 bf16 x ") and ", auto (" in r["name"]]
    if w16:  # time vs float32 A @ B of the same shape in the same run (records from before the fast path lack them)
        shape = w16[0]["name"].split(" GEMM ")[1].split(",")[0].replace("x", "×")
        by = {(r["name"].split(" x ")[1].split()[0], r["name"].split(", acc ")[1].split(",")[0]): 1 / r["ratio"]
              for r in w16}
        table.insert(3, (f"W8A16 golden GEMM {shape}, bf16 activations, time vs float32 `A @ B` (goal ≤ 10×)",
                         "; ".join(f"{wn} weights: " + ", ".join(f"{acc} {by[(wn, acc)]:.1f}×"
                                                                 for acc in ("fp32", "aligned:32:16") if (wn, acc) in by)
                                   for wn in ("rf8", "bf16"))
                         + ("; one thread, CPU time, each timed alternately with `A @ B`"
                            if all("baseline_ms" in r for r in w16) else ""), "`make bench`"))
    if not w16 and W8A16_RECORD.is_file():  # the W8A16 rows on their own (python -m rf8sim.golden.bench_w8a16)
        wr = _read(W8A16_RECORD)
        worst = max(wr["rows"], key=lambda r: r["time_x"])
        table.insert(3, (f"W8A16 golden GEMM {wr['rows'][0]['shape'].replace('x', '×')} (bf16/fp16 activations × "
                         "rf8/bf16 weights, fp32 and aligned:32:16), time vs float32 `A @ B` (goal ≤ 10×)",
                         f"{min(r['time_x'] for r in wr['rows']):.1f}× to {worst['time_x']:.1f}× "
                         f"(worst {worst['act']} × {worst['weight']} {worst['acc']}); one thread, CPU time, commit "
                         f"{str(wr['provenance']['commit'])[:10]} — record `results/golden-w8a16-gemm.json`, table "
                         "in docs/formats.md", "`python -m rf8sim.golden.bench_w8a16`"))
    if NARROW_RECORD.is_file():
        nr = _read(NARROW_RECORD)
        nrows = [r for r in nr["rows"] if "time_x" in r]
        met = [r for r in nrows if r["time_x"] <= (50 if r["saturating"] else 10)]
        worst = max(nrows, key=lambda r: r["time_x"] / (50 if r["saturating"] else 10))
        sc = [r for r in nrows if str(r.get("data", "")).startswith("scaled")]
        sc_text = ""
        if sc:  # the operands the MiniLM flow passes, scale exponents included
            ws = max(sc, key=lambda r: r["time_x"])
            sc_text = (f"; the {len(sc)} rows with the flow's scaled operands (x ∼ N(0, 1), w ∼ Laplace(0.05), "
                       f"per-channel and per-block scale exponents passed) {min(r['time_x'] for r in sc):.1f}× to "
                       f"{ws['time_x']:.1f}× ({ws['fmt']} {ws['acc']}, {ws['data']})")
        table.insert(4, (f"narrow-accumulator golden GEMM {nr['size']}³ (16:32, 8:36, 4:30, exact), time vs float32 "
                         "`A @ B` (goal ≤ 10×, ≤ 50× with saturation)",
                         f"{len(met)} of {len(nrows)} rows meet their goal; worst {worst['time_x']:.1f}× "
                         f"({worst['fmt']} {worst['acc']}, {worst['data']}){sc_text}; one thread, CPU time, commit "
                         f"{str(nr['provenance']['commit'])[:10]} — record `results/golden-narrow-gemm.json`, "
                         "table in docs/formats.md", "`python -m rf8sim.golden.bench --narrow`"))
    out = [head, "", "| what | number | command |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in table]
    return "\n".join(out)
