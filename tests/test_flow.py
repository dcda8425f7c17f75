"""`rf8sim flow`: stage bookkeeping (skips are reported, failures exit non-zero) and a real quick run."""

import json
from pathlib import Path

import pytest
import toolcheck

from rf8sim.cli import main
from rf8sim.study.flow import stages as flow_stages
from rf8sim.study.flow.run import REPORT_MARKER, StageSkipped, default_config, run_flow


def _fake_stages(monkeypatch, behaviour):
    def mk(name, what):
        def fn(ctx):
            if what == "skip":
                raise StageSkipped(f"{name} cannot run here: reason {name}")
            if what == "fail":
                raise RuntimeError(f"{name} broke")
            return {"_detail": f"{name} done"}
        return fn
    monkeypatch.setattr(flow_stages, "STAGES", tuple((n, mk(n, w)) for n, w in behaviour))


def test_skips_are_reported_and_exit_zero(tmp_path, monkeypatch, capsys):
    _fake_stages(monkeypatch, [("a", "ok"), ("b", "skip"), ("c", "ok")])
    res = run_flow(default_config(quick=True), tmp_path / "r", progress=False)
    assert res.exit_code == 0
    assert [s.status for s in res.stages] == ["ok", "skipped", "ok"]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "**Skipped: b** -- b cannot run here: reason b" in md
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    assert [s["status"] for s in data["stages"]] == ["ok", "skipped", "ok"]
    assert "skipped: b" in capsys.readouterr().out


def test_a_failed_stage_exits_nonzero_and_later_stages_still_run(tmp_path, monkeypatch, capsys):
    _fake_stages(monkeypatch, [("a", "fail"), ("b", "ok")])
    res = run_flow(default_config(quick=True), tmp_path / "r", progress=False)
    assert res.exit_code == 1
    assert [s.status for s in res.stages] == ["failed", "ok"]
    assert "RuntimeError: a broke" in res.stages[0].detail
    assert "FAILED: a" in (tmp_path / "r" / "report.md").read_text()
    assert "flow FAILED in stage(s): a" in capsys.readouterr().out


def test_out_dir_not_ours_is_not_replaced(tmp_path, monkeypatch):
    _fake_stages(monkeypatch, [("a", "ok")])
    d = tmp_path / "mine"
    d.mkdir()
    (d / "precious.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="--force"):
        run_flow(default_config(quick=True), d, progress=False)
    assert (d / "precious.txt").read_text() == "keep"
    # a folder the flow wrote is replaced without asking
    run_flow(default_config(quick=True), tmp_path / "ours", progress=False)
    assert (tmp_path / "ours" / REPORT_MARKER).exists()
    run_flow(default_config(quick=True), tmp_path / "ours", progress=False)


def test_missing_simulator_is_a_reported_skip(tmp_path, monkeypatch):
    monkeypatch.setattr(flow_stages.shutil, "which", lambda name, *a, **k: None)
    ctx = flow_stages.Context(cfg=default_config(quick=True), out=tmp_path, console=None)
    with pytest.raises(StageSkipped, match="iverilog"):
        flow_stages.stage_verify(ctx)
    ctx.skip_hdl = True
    for st in (flow_stages.stage_rtl, flow_stages.stage_verify, flow_stages.stage_synth):
        with pytest.raises(StageSkipped, match="--skip-hdl"):
            st(ctx)


def test_quick_flow_end_to_end_without_hdl(tmp_path, capsys):
    """Every non-RTL stage for real on tiny settings: training, rate, bit-exact evaluation, report."""
    out = tmp_path / "report"
    rc = main(["flow", "--quick", "--skip-hdl", "--out", str(out), "--no-progress",
               "--cache-dir", str(tmp_path / "cache")])
    data = json.loads((out / "results.json").read_text())
    status = {s["name"]: s["status"] for s in data["stages"]}
    assert status == {"rtl": "skipped", "verify": "skipped", "synth": "skipped", "train": "ok", "rate": "ok",
                      "evaluate": "ok", "transformer": "skipped", "array": "skipped", "tinylm": "ok"}, data["stages"]
    assert rc == 0
    cfg = default_config(quick=True)
    # rf8: nearest + paper, e4m3 and int8: nearest -> 4 x 2 granularities, each through the golden GEMM
    assert len(data["points"]) == 4 * len(cfg.sweep.granularities)
    assert all(0.0 <= p["accuracy"] <= 1.0 and p["n_eval"] == cfg.model.eval_samples for p in data["points"])
    md = (out / "report.md").read_text()
    for s in ("**Skipped: verify** -- --skip-hdl given", "weights_hist.png", "bits_per_param.png",
              "bit-exact accuracy"):
        assert s in md
    assert (out / "weights_hist.png").stat().st_size > 1000
    # no synthesis here: the accuracy-vs-cost plot takes the recorded MAC areas and energies, and says so
    assert (out / "pareto.png").stat().st_size > 1000
    assert "area: record hdl/results/ppa.json; energy: record hdl/results/ppa.json" in md
    # the TinyLM stage: float32 + 3 configs (W8A16 on its prefix), every pair tested, every layer checked
    tl = data["tinylm"]
    assert [p["label"] for p in tl["points"]] == ["float32", "rf8 channel acc exact", "int8 channel acc exact",
                                                   "rf8/a:bf16 channel acc fp32"]
    assert [p["chunks"] for p in tl["points"]] == [40, 40, 40, 8]
    assert len(tl["pairs"]) == 6 and all(r["chunks"] == (8 if "bf16" in r["b"] else 40) for r in tl["pairs"])
    assert len(tl["torch_check"]) == 3 * len(tl["layers"]) == 3 * 5
    assert sum(r["mismatches"] for r in tl["torch_check"]) == 0
    assert "## TinyLM held-out bits per byte" in md and (out / "tinylm_bpb.png").stat().st_size > 1000
    # the report leads with the generated answer; the MLP follows as the smoke test, the stage times last
    heads = [ln for ln in md.splitlines() if ln.startswith("## ")]
    assert heads[0] == "## The answer" and heads[-1] == "## Stages", heads
    tiny = next(i for i, h in enumerate(heads) if h.startswith("## TinyLM held-out bits per byte"))
    assert tiny < heads.index("## MNIST-1D MLP: the pipeline's smoke test")
    answer = md.split("## The answer")[1].split("\n## ")[0]
    assert "- TinyLM set (40 held-out chunks of" in answer and "rf8/a:bf16 @fp32" in answer
    assert "flow finished" in capsys.readouterr().out


@toolcheck.needs(lambda: flow_stages.hdl_unavailable(need_sim=True) == "", "RTL tools (Icarus Verilog, cocotb, yosys)",
                 toolcheck.ICARUS_HINT + "; pip install 'rf8sim[hdl]'")
def test_hdl_stages_for_real(tmp_path):
    """rtl -> verify (Icarus, every beat counted) -> synth on one MAC, through the flow's own stage code."""
    import dataclasses

    cfg = default_config(quick=True)
    cfg = dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, macs=("int8xint8", "bf16xrf8@fp32"),
                                                            verify_sequences=5, verify_max_len=8))
    ctx = flow_stages.Context(cfg=cfg, out=tmp_path, console=None, progress=False, cache_dir=tmp_path / "cache")
    r = flow_stages.stage_rtl(ctx)
    row, row16 = r["macs"]
    assert (tmp_path / row["file"]).read_text().startswith("// mac_int8xint8")
    assert row16["mac"] == "bf16xrf8@fp32" and "module mac16_bf16xrf8_fp32_l1" in (tmp_path / row16["file"]).read_text()
    v, v16 = flow_stages.stage_verify(ctx)["macs"]
    assert v["products"] == 65536 and v["sequences"] == 5 and v["mismatches"] == 0
    assert v["beats"] == 65536 + v["seq_beats"] and v["ok"]
    # the W8A16 unit: 256 activation codes x all 256 rf8 codes as single products, then the sequences
    assert v16["mac"] == "bf16xrf8@fp32" and v16["products"] == 256 * 256 and v16["sequences"] == 5
    assert v16["beats"] == 65536 + v16["seq_beats"] and v16["mismatches"] == 0 and v16["ok"]
    from rf8sim.study.mnist1d.area_accuracy import area_available

    # synthesis needs yosys and the osu018 Liberty file: a skip locally, a failure under CI
    toolcheck.require(lambda: area_available()[0], "yosys and the osu018 Liberty file", "make sysdeps")
    s, s16 = flow_stages.stage_synth(ctx)["macs"]
    assert s["area_um2"] > 0 and s["nand2_eq"] > 0 and s["acc"] == row["acc"]
    # the same generator and yosys as the checked-in W8A16 synthesis record: the same area
    rec = json.loads((Path(__file__).resolve().parents[1] / "hdl/results/synth_w8a16.json").read_text())
    (want,) = [x["area_um2"] for x in rec["rows"] if (x["a_fmt"], x["w_fmt"], x["acc"], x["lanes"], x["stage"])
               == ("bf16", "rf8", "fp32", 1, "mac")]
    assert s16["mac"] == "bf16xrf8@fp32" and s16["area_um2"] == want


def _shipped_configs():
    from importlib import resources

    from rf8sim.study.common.config import load_config

    d = resources.files("rf8sim.study").joinpath("configs")
    out = {}
    for name in ("flow.toml", "flow_quick.toml"):
        with resources.as_file(d.joinpath(name)) as p:
            out[name] = load_config(p)
    return out


def test_every_flow_mac_is_run_by_the_model_stages():
    """A unit in `[flow] macs` is built, verified and synthesized only to be measured: the MiniLM and
    TinyLM stages (whichever a shipped config runs) must each run a configuration on it."""
    import dataclasses

    cfgs = _shipped_configs()
    n = 0
    for name, cfg in cfgs.items():
        got = flow_stages.unrun_macs(cfg)
        assert got and all(v == [] for v in got.values()), (name, got)
        n += len(got)
    assert n == 3  # flow.toml: transformer + tinylm; flow_quick.toml: tinylm only
    # the check can fail: a unit no model configuration uses is named, per stage
    cfg = cfgs["flow.toml"]
    cfg = dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, macs=tuple(cfg.flow.macs) + ("bf16xe5m2@fp32",)))
    assert flow_stages.unrun_macs(cfg) == {"transformer": ["bf16xe5m2@fp32"], "tinylm": ["bf16xe5m2@fp32"]}
    cfg = dataclasses.replace(cfg, transformer=dataclasses.replace(
        cfg.transformer, configs=[c for c in cfg.transformer.configs if c != "int8/bf16@fp32"]))
    assert flow_stages.unrun_macs(cfg)["transformer"] == ["bf16xint8@fp32", "bf16xe5m2@fp32"]


def test_default_w8a16_set_covers_every_costed_weight_format():
    """The default flow runs a W8A16 unit (bf16 activations, fp32 accumulator) for every weight format whose
    unit is costed in hdl/results/ppa_w8a16.json, so no competitor with a unit is left out of the answer."""
    from rf8sim.hdl.power import ppa_rows

    rec = Path(__file__).resolve().parents[1] / "hdl" / "results" / "ppa_w8a16.json"
    costed = {r["w_fmt"] for r in ppa_rows(rec) if r["stage"] == "mac" and r["a_fmt"] == "bf16"
              and str(r["acc"]).lower() == "fp32"}
    assert {"rf8", "e4m3", "int8", "bf16"} <= costed
    cfg = _shipped_configs()["flow.toml"]
    units = {m.w for m in flow_stages._macs(cfg) if m.a16 and m.a == "bf16" and str(m.acc) == "fp32"}
    assert units == costed
    runs = {dp.w_format for dp in flow_stages.transformer_spec(cfg).datapaths() if dp.act_format == "bf16"}
    assert runs == costed


def _record_units(points) -> set[str]:
    """The `[flow] macs` units a record's points ran (``AxW`` exact, ``AxW@ACC`` W8A16), as dp_mac names them."""
    from types import SimpleNamespace

    return {flow_stages.dp_mac(SimpleNamespace(act_format=p["a_format"], w_format=p["w_format"], acc=p["acc"]))
            for p in points if p["label"] != "float32"}


def records_missing_units(cfg, records: dict) -> dict[str, list[str]]:
    """Per checked-in record stage: the `[flow] macs` units of ``cfg`` whose configuration it did not run."""
    labels = [m.label for m in flow_stages._macs(cfg)]
    return {name: [u for u in labels if u not in _record_units(points)] for name, points in records.items()}


def test_checked_in_model_records_run_every_flow_mac():
    """The checked-in records the docs are generated from ran a configuration on every unit the default flow
    lists in `[flow] macs`: a stale record (one re-recorded before a unit was added) fails here."""
    root = Path(__file__).resolve().parents[1] / "study" / "results"
    flow = json.loads((root / "minilm-flow.json").read_text())
    tiny = json.loads((root / "tinylm-flow.json").read_text())
    records = {"minilm-flow.json transformer": flow["transformer"]["points"],
               "minilm-flow.json tinylm": flow["tinylm"]["points"],
               "tinylm-flow.json": tiny["tinylm"]["points"]}
    cfg = _shipped_configs()["flow.toml"]
    assert len(flow_stages._macs(cfg)) == 7
    assert records_missing_units(cfg, records) == {k: [] for k in records}
    # it can fail: a record lacking the int8 x bf16 unit's configuration is named
    short = {"r": [p for p in tiny["tinylm"]["points"] if p["label"] != "int8/a:bf16 channel acc fp32"]}
    assert records_missing_units(cfg, short) == {"r": ["bf16xint8@fp32"]}
