"""The MiniLM mixed-format search's costs (area, energy; W8A16 included) and its greedy objective."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from rf8sim.errors import RF8SimError
from rf8sim.study.minilm import mac_costs
from rf8sim.study.common.config import ConfigError, config_from_dict
from rf8sim.study.minilm.mac_costs import CostError, cost_table, mac_key, recorded_costs
from rf8sim.study.minilm.study import TransformerSpec, greedy_assign, run_transformer_study
from rf8sim.study.minilm.transformer import parse_configs

ROOT = Path(__file__).resolve().parents[1]


def _dps(*entries):
    return [d for e in entries for d in parse_configs(e)]


def _brute_force(groups, gmacs, loss, unit, budget):
    """Every assignment (configs ** groups), written independently of the greedy search."""
    best = None
    for combo in itertools.product(sorted(unit), repeat=len(groups)):
        a = dict(zip(groups, combo))
        if sum(loss[(g, a[g])] for g in groups) > budget:
            continue
        c = sum(gmacs[g] * unit[a[g]] for g in groups) / sum(gmacs.values())
        if best is None or c < best[0]:
            best = (c, a)
    return best


def test_energy_objective_picks_the_hand_computed_assignment():
    """Two layer groups (attention 3x the MACs of the FFN), an 8-bit MAC, a cheaper 8-bit MAC and a W8A16
    unit, pJ/MAC as the cost.  By hand, with budget 3.5e-3 (predicted loss):
    (int8, int8) 6.0e-3, (int8, rf8) 5.5e-3, (int8, w16) 4.0e-3 miss; (rf8, int8) 3.0e-3 fits at
    (3*80 + 1*50)/4 = 72.5 pJ/MAC, the cheapest fitting one ((rf8, rf8) 80, (rf8, w16) 201.25,
    (w16, *) >= 437.5)."""
    groups = ["attn", "ffn"]
    gmacs = {"attn": 3, "ffn": 1}
    unit = {"int8": 50.0, "rf8": 80.0, "rf8/a:bf16": 565.0}
    loss = {("attn", "int8"): 4e-3, ("attn", "rf8"): 1e-3, ("attn", "rf8/a:bf16"): 0.0,
            ("ffn", "int8"): 2e-3, ("ffn", "rf8"): 1.5e-3, ("ffn", "rf8/a:bf16"): 0.0}
    calls = []

    def verify(a):  # the "bit-exact" check agrees with the additive model here
        calls.append(a)
        return sum(loss[(g, a[g])] for g in groups) <= 3.5e-3, {"mean": 1 - sum(loss[(g, a[g])] for g in groups)}

    g = greedy_assign(groups, gmacs, loss, unit, 3.5e-3, verify)
    assert g["assignment"] == {"attn": "rf8", "ffn": "int8"} and g["ok"]
    assert g["cost"] == pytest.approx(72.5) and g["predicted_loss"] == pytest.approx(3e-3)
    assert calls == [{"attn": "rf8", "ffn": "int8"}]
    bf = _brute_force(groups, gmacs, loss, unit, 3.5e-3)
    assert bf[1] == g["assignment"] and bf[0] == pytest.approx(g["cost"])
    # a tighter budget, 1.2e-3, needs the W8A16 unit somewhere: by hand only (rf8, w16) 1.0e-3 at
    # (3*80 + 565)/4 = 201.25 and (w16, w16) 0 at 565 fit, so the FFN gets the W8A16 unit
    g2 = greedy_assign(groups, gmacs, loss, unit, 1.2e-3, lambda a: (True, None))
    assert g2["assignment"] == {"attn": "rf8", "ffn": "rf8/a:bf16"} and g2["cost"] == pytest.approx(201.25)
    assert _brute_force(groups, gmacs, loss, unit, 1.2e-3)[1] == g2["assignment"]


def test_a_failed_verification_tightens_and_moves_on():
    groups = ["a", "b"]
    gmacs = {"a": 1, "b": 1}
    unit = {"lo": 1.0, "hi": 2.0}
    loss = {("a", "lo"): 1e-3, ("a", "hi"): 0.0, ("b", "lo"): 1e-3, ("b", "hi"): 0.0}
    seen = []

    def verify(a):  # the real check misses the first (optimistic) fit
        seen.append(dict(a))
        return len(seen) > 1, None

    g = greedy_assign(groups, gmacs, loss, unit, 2e-3, verify)
    assert seen[0] == {"a": "lo", "b": "lo"} and len(seen) == 2 and g["ok"]
    assert sum(v == "hi" for v in g["assignment"].values()) >= 1 and [h["verified"] for h in g["history"]] == [False, True]


def test_w8a16_costs_come_from_the_checked_in_records():
    """Read the records directly (json, by module name) and compare with the cost table."""
    synth16 = {r["module"]: r for r in json.loads((ROOT / "hdl/results/synth_w8a16.json").read_text())["rows"]}
    ppa16 = {r["module"]: r for r in json.loads((ROOT / "hdl/results/ppa_w8a16.json").read_text())["rows"]}
    ppa8 = {(r["module"], r["lanes"]): r for r in json.loads((ROOT / "hdl/results/ppa.json").read_text())["rows"]}
    t = cost_table(_dps("rf8", "int8", "rf8/bf16@fp32", "bf16/bf16@fp32", "rf8/bf16@aligned:32:16"),
                   {"rf8xrf8": 12345.0})
    assert len(t) == 5
    rf8, int8 = t["rf8 channel acc exact"], t["int8 channel acc exact"]
    assert rf8.area_um2 == 12345.0 and rf8.area_source == "synthesized in this run"
    int8_row = next(r for (m, lanes), r in ppa8.items() if lanes == 1 and r["a_fmt"] == r["w_fmt"] == "int8"
                    and r["acc_label"] == "exact" and r["stage"] == "mac")
    assert int8.area_um2 == int8_row["area_um2"] and int8.area_source == "record hdl/results/ppa.json"
    assert int8.pj_per_mac == int8_row["streams"]["minilm"]["pj_per_mac"]
    w = t["rf8/a:bf16 channel acc fp32"]
    assert w.mac == "bf16xrf8@fp32"
    assert w.area_um2 == synth16["mac_bf16xrf8_fp32_l1"]["area_um2"]
    assert w.pj_per_mac == ppa16["mac_bf16xrf8_fp32_l1"]["streams"]["minilm"]["pj_per_mac"]
    assert w.energy_source == "record hdl/results/ppa_w8a16.json"
    b = t["bf16 channel acc fp32"]
    assert b.pj_per_mac == ppa16["mac_bf16xbf16_fp32_l1"]["streams"]["minilm"]["pj_per_mac"]
    al = t["rf8/a:bf16 channel acc aligned:32:16"]  # energy recorded for 4 lanes only: said so
    assert al.area_um2 == synth16["mac_bf16xrf8_al32m16_l1"]["area_um2"]
    assert al.pj_per_mac == ppa16["mac_bf16xrf8_al32m16_l4"]["streams"]["minilm"]["pj_per_mac"]
    assert al.energy_source.endswith("4 lanes")
    assert mac_key(_dps("rf8:paper")[0]) == "rf8xrf8@exact"  # rounding does not change the MAC


def test_a_config_without_a_cost_is_named_before_any_work(monkeypatch):
    with pytest.raises(CostError, match=r"rf8/a:fp16 channel acc fp32 \(fp16xrf8@fp32\): no energy") as e:
        cost_table(_dps("rf8", "rf8/fp16@fp32"))
    assert isinstance(e.value, RF8SimError) and "rf8 channel acc exact" not in str(e.value)  # only the culprit
    with pytest.raises(CostError, match=r"rf8m8 channel acc exact \(rf8m8xrf8m8@exact\): no area"):
        cost_table(_dps("rf8m8"), objectives=("area",))
    assert cost_table(_dps("rf8/fp16@fp32"), objectives=("area",))  # area is recorded, energy not asked for
    with pytest.raises(CostError, match="unknown mixed-search objective"):
        cost_table(_dps("rf8"), objectives=("power",))

    def boom(*a, **k):
        raise AssertionError("the model was loaded before the costs were checked")

    monkeypatch.setattr("rf8sim.study.minilm.study.prepare", boom)
    with pytest.raises(CostError, match="rf8m8"):
        run_transformer_study(TransformerSpec(configs=("rf8", "rf8m8")), {"rf8xrf8": 1.0}, progress=False)
    with pytest.raises(ConfigError, match="objectives"):
        config_from_dict({"transformer": {"model": "minilm", "objectives": ["area", "power"]}})


def test_recorded_costs_skip_missing_records(tmp_path):
    got = recorded_costs({"ppa": tmp_path / "none.json", "ppa_w8a16": tmp_path / "none.json"})
    assert got and all(k.startswith(("bf16x", "fp16x")) for k in got)  # only synth_w8a16 left: areas only
    assert all(c.pj_per_mac is None and c.area_source.endswith("synth_w8a16.json") for c in got.values())
    assert set(mac_costs.RECORDS) == {"ppa", "ppa_w8a16", "synth_w8a16"}


def test_report_shows_energy_search_sources_and_two_cost_axes(tmp_path):
    from rf8sim.study.flow.report import mixed_markdown
    from rf8sim.study.common.report import plot_pareto_ci

    mx = {"constraint": "mean cosine to float32 >= 0.999", "metric": "energy",
          "assignment": {"L0.attn": "rf8 channel acc exact", "L0.ffn": "rf8/a:bf16 channel acc fp32"},
          "cost_pj_per_mac": 123.4, "energy_uj": 5.0, "meets_constraint": True,
          "verified": {"mean": 0.9992, "lo": 0.9990, "hi": 0.9994, "n": 40},
          "uniform": [{"config": "rf8 channel acc exact", "cost": 82.3, "cosine": 0.995,
                       "source": "record hdl/results/ppa.json"},
                      {"config": "rf8/a:bf16 channel acc fp32", "cost": 565.8, "cosine": 0.9996,
                       "source": "record hdl/results/ppa_w8a16.json"}]}
    text = "\n".join(mixed_markdown(mx))
    assert "MAC energy on the MiniLM stream" in text and "**123 pJ per MAC**" in text
    assert "verified bit-exactly on 40 sentences" in text and "5e-06 J" in text
    assert "record hdl/results/ppa_w8a16.json" in text and "cost from" in text
    pts = [{"label": "rf8 channel acc exact", "loss": 5e-3, "loss_lo": 4e-3, "loss_hi": 6e-3, "area_um2": 30000.0,
            "pj_per_mac": 82.0, "sentences": 40},
           {"label": "rf8/a:bf16 channel acc fp32", "loss": 4e-4, "loss_lo": 3e-4, "loss_hi": 5e-4,
            "area_um2": 79455.0, "pj_per_mac": 565.0, "sentences": 20}]
    tr = {"sentences": 40, "points": pts, "mixed": {**mx, "metric": "area", "cost_um2_per_mac": 50000.0},
          "mixed_energy": mx}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    orig = plt.subplots
    monkey = lambda *a, **k: made.append(orig(*a, **k)) or made[-1]  # noqa: E731
    plt.subplots = monkey
    try:
        p = plot_pareto_ci(tr, tmp_path / "p.png")
    finally:
        plt.subplots = orig
    assert p.stat().st_size > 1000
    axs = made[0][1][0]
    assert len(axs) == 2 and "area" in axs[0].get_xlabel() and "pJ" in axs[1].get_xlabel()
    # each panel: 2 uniform points and the mixed one, all with error bars
    assert [len(ax.containers) for ax in axs] == [3, 3]


def test_accuracy_interval_matches_the_binomial_width():
    """Bootstrap of n 0/1 outcomes vs the normal approximation of the binomial (written independently)."""
    from rf8sim.study.common.report import accuracy_ci

    for p, n in ((0.6, 1000), (0.25, 400), (0.95, 2000)):
        lo, hi = accuracy_ci(p, n)
        half = 1.959964 * (p * (1 - p) / n) ** 0.5
        assert lo < p < hi
        assert abs((hi - lo) / 2 - half) < 0.15 * half, (p, n, lo, hi, half)
    assert accuracy_ci(1.0, 50) == (1.0, 1.0)


def test_sweep_points_take_recorded_energy_and_missing_areas():
    from rf8sim.study.minilm.mac_costs import sweep_costs

    ppa8 = [r for r in json.loads((ROOT / "hdl/results/ppa.json").read_text())["rows"]
            if r["stage"] == "mac" and r["lanes"] == 1]
    rf8x = next(r for r in ppa8 if r["a_fmt"] == r["w_fmt"] == "rf8" and r["acc_label"] == "exact")
    e4n = next(r for r in ppa8 if r["a_fmt"] == r["w_fmt"] == "e4m3" and r["acc"] == "16:32")
    rows = [{"a_format": "rf8", "w_format": "rf8", "acc": "exact", "acc_frac": 20, "acc_width": 49, "lanes": 1,
             "area_um2": 111.0, "accuracy": 0.5},
            {"a_format": "e4m3", "w_format": "e4m3", "acc": "16:32", "acc_frac": 16, "acc_width": 32, "lanes": 1,
             "area_um2": None, "accuracy": 0.5},
            {"a_format": "rf8m8", "w_format": "rf8m8", "acc": "exact", "acc_frac": 22, "acc_width": 51, "lanes": 1,
             "area_um2": None, "accuracy": 0.5},
            {"a_format": "rf8", "w_format": "rf8", "acc": "exact", "acc_frac": 20, "acc_width": 49, "lanes": 4,
             "area_um2": 5.0, "accuracy": 0.5}]
    got, srcs = sweep_costs(rows)
    assert len(got) == 3 and rows[1]["area_um2"] is None  # copies; the 4-lane point is left out
    assert got[0]["area_um2"] == 111.0 and got[0]["pj_per_mac"] == rf8x["streams"]["minilm"]["pj_per_mac"]
    assert got[1]["area_um2"] == e4n["area_um2"] and got[1]["pj_per_mac"] == e4n["streams"]["minilm"]["pj_per_mac"]
    assert got[2]["area_um2"] is None and got[2]["pj_per_mac"] is None
    assert srcs == ["area: record hdl/results/ppa.json", "area: synthesized in this run",
                    "energy: record hdl/results/ppa.json"]


def test_the_shipped_demo_configs_all_have_recorded_costs():
    """`make demo` must not stop on a CostError: every default [transformer] config has an area and an energy
    even without this run's synthesis (--skip-hdl)."""
    dps = mac_costs._default_configs()
    t = cost_table(dps, {})
    assert len(t) == len(dps) >= 5 and all(c.area_um2 and c.pj_per_mac for c in t.values())
    assert any(d.float_acc for d in dps)  # the W8A16 units are in the default search


def test_this_runs_w8a16_synthesis_is_preferred_for_area():
    """A W8A16 unit synthesized by the flow ([flow] macs 'AxW@ACC') gives the area; energy stays the record's;
    a W8A16 key never stands in for the 8-bit MAC of the same formats, nor the reverse."""
    t = cost_table(_dps("rf8/bf16@fp32", "bf16/bf16@fp32", "rf8"), {"bf16xrf8@fp32": 777.0, "bf16xbf16": 5.0})
    w = t["rf8/a:bf16 channel acc fp32"]
    assert (w.area_um2, w.area_source) == (777.0, "synthesized in this run")
    assert w.energy_source == "record hdl/results/ppa_w8a16.json" and w.pj_per_mac > 0
    b = t["bf16 channel acc fp32"]
    assert b.area_source == "record hdl/results/ppa_w8a16.json" and b.area_um2 != 5.0
    assert t["rf8 channel acc exact"].area_source == "record hdl/results/ppa.json"


@pytest.mark.parametrize("mac,msg", [("bf16xrf8", "16-bit formats need a W8A16 accumulator"),
                                     ("rf8xrf8@fp32", "a W8A16 unit takes 16-bit activations"),
                                     ("bf16xrf8@4:30", "a W8A16 unit takes 16-bit activations"),
                                     ("bf16xrf8@aligned:32", "aligned"),
                                     ("bf16-rf8", r"'AxW' \(8-bit")])
def test_flow_mac_entries_are_checked(mac, msg):
    import tomllib

    from rf8sim.study.common.config import ConfigError, config_from_dict

    raw = tomllib.loads((ROOT / "rf8sim/study/configs/flow_quick.toml").read_text())
    raw["flow"]["macs"] = [mac]
    with pytest.raises(ConfigError, match=msg):
        config_from_dict(raw)


def test_uniform_assignments_take_the_sweep_point_instead_of_a_second_encode(monkeypatch):
    """A search that lands on one configuration for every layer group takes that configuration's sweep
    point (:func:`uniform_verifications`) instead of encoding the sentences again; its verification equals
    a fresh encode of the model with every Linear layer on that configuration."""
    import numpy as np

    from rf8sim.study.common.stats import bootstrap_ci
    from rf8sim.study.minilm import study

    spec = TransformerSpec(sentences=20, configs=("int8",), sensitivity_sentences=2, bootstrap=100, batch_size=20,
                           min_cosine=0.9, torch_check=False)
    calls = []
    real = study.exactify
    monkeypatch.setattr(study, "exactify", lambda m, a, t=None: calls.append(a) or real(m, a, t))
    res = run_transformer_study(spec, {"int8xint8": 1.0}, progress=False)
    groups = res["sensitivity"]["groups"]
    assert len(groups) == 12 and len(calls) == 1 + len(groups)  # the sweep point and the scan; no search encodes

    model, sentences, lengths = study.prepare(spec)
    ref = study._encode(model, sentences, lengths, spec.batch_size)
    emb = study._encode(real(model, spec.datapaths()[0], spec.max_terms), sentences, lengths, spec.batch_size)
    fresh = bootstrap_ci((ref.astype(np.float64) * emb.astype(np.float64)).sum(1), spec.bootstrap, seed=spec.seed)
    for key in ("mixed", "mixed_energy", "mixed_bits"):
        m = res[key]
        assert set(m["assignment"].values()) == {"int8 channel acc exact"} and m["meets_constraint"], key
        assert m["verified"] == fresh and [h["sentences"] for h in m["history"]] == [20], key
