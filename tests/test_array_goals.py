"""Issue 19's goal verdicts (rf8sim.hdl.array_cost.goal_verdict) on hand-made rows with known ratios: against
the float32 BF16 x BF16 array (the baseline), and against the pre-aligned BF16 x BF16 array (a second comparison)."""

import pytest

from rf8sim.hdl.array_cost import BASELINE, goal_verdict, rows_by_pair


def _row(area, crit, tops_mm2, pj=None, tops_w=None, per_mac=None):
    r = {"area_um2": area, "critical_path_ns": crit, "tops_per_mm2_at_fmax": tops_mm2,
         "area_per_mac_um2": per_mac if per_mac is not None else area / 16}
    if pj is not None:
        r.update(energy={}, pj_per_mac=pj, tops_per_w_at_fmax=tops_w)
    return r


def test_goals_met_and_missed_with_known_ratios():
    by = {BASELINE: _row(400.0, 9.0, 1.0, pj=30.0, tops_w=2.0),
          ("bf16", "bf16"): _row(1000.0, 20.0, 0.5, pj=100.0, tops_w=0.5),
          ("bf16", "rf8"): _row(200.0, 12.0, 3.0, pj=25.0, tops_w=2.5, per_mac=10.0),
          ("bf16", "e4m3"): _row(210.0, 9.0, 1.0, per_mac=11.0),
          ("bf16", "int8"): _row(220.0, 9.0, 1.0, per_mac=12.0)}
    g = goal_verdict(by)
    assert g["tops_mm2"] == 2.0 and g["tops_mm2_met"]          # 400 / 200 at a common clock
    assert g["common_clock_ns"] == 12.0                        # the slower array's critical path
    assert g["tops_mm2_own_fmax"] == 3.0
    assert g["tops_w"] == pytest.approx(1.2) and not g["tops_w_met"]  # 30 / 25 < 1.5
    assert g["tops_w_own_fmax"] == 1.25
    assert g["area_per_mac"] == [10.0, 11.0, 12.0] and g["area_order_met"]
    al = g["aligned"]   # the pre-aligned BF16 array: its own ratios, never the baseline's
    assert al["tops_mm2"] == 5.0 and al["common_clock_ns"] == 20.0 and al["tops_mm2_own_fmax"] == 6.0
    assert al["tops_w"] == 4.0 and al["tops_w_met"] and al["tops_w_own_fmax"] == 5.0
    by[("bf16", "e4m3")]["area_per_mac_um2"] = 9.0
    assert not goal_verdict(by)["area_order_met"]


def test_goals_absent_without_the_baseline():
    by = {("bf16", "rf8"): _row(200.0, 12.0, 3.0, pj=25.0, tops_w=2.5)}
    assert goal_verdict(by) == {}
    # the pre-aligned BF16 array alone is not the baseline: only the second comparison
    by[("bf16", "bf16")] = _row(400.0, 9.0, 1.0, pj=30.0, tops_w=2.0)
    g = goal_verdict(by)
    assert "tops_mm2" not in g and g["aligned"]["tops_mm2"] == 2.0


def test_rows_by_pair_keeps_the_fp32_baseline_apart():
    """The fp32 and the pre-aligned BF16 x BF16 rows share (a_fmt, w_fmt): the fp32 one is keyed BASELINE, and
    (no edge adder) belongs to both edge designs; the aligned rows follow their edge_stages."""
    def row(acc, edge=0, R=4):
        return {"config": {"a_fmt": "bf16", "w_fmt": "bf16" if acc != "rf8" else "rf8", "rows": R, "cols": R,
                           "acc": "aligned:32:16" if acc == "rf8" else acc, "edge_stages": edge}}
    rows = [row("fp32"), row("aligned:32:16"), row("aligned:32:16", 1), row("rf8"), row("rf8", 1), row("fp32", R=8)]
    for e in (0, 1):
        by = rows_by_pair(rows, 4, 4, e)
        assert set(by) == {BASELINE, ("bf16", "bf16"), ("bf16", "rf8")}
        assert by[BASELINE] is rows[0] and by[("bf16", "bf16")] is rows[1 + e] and by[("bf16", "rf8")] is rows[3 + e]
    assert rows_by_pair(rows, 8, 8, 0) == {BASELINE: rows[5]}


def _arow(a, w, acc, R, parts, e=0, module=None):
    return {"config": {"a_fmt": a, "w_fmt": w, "acc": acc, "rows": R, "cols": R, "edge_stages": e},
            "area_um2": float(sum(parts.values())), "area_by_part_um2": dict(parts), "module": module or f"{a}{w}{acc}{R}"}


def test_area_budget_measured_extrapolated_and_fallbacks():
    """The equal-area budget (array_cost.area_budget): the fp32 BF16 8x8 array when measured; else its 4x4 scaled
    part by part with the RF8 x BF16 pair's measured 8x8/4x4 part ratios (a part the pair lacks: x4 = R x C);
    else the aligned BF16 8x8; else the largest BF16 array. Expected areas computed by hand."""
    from rf8sim.hdl.array_cost import area_budget

    rf4 = _arow("bf16", "rf8", "aligned:32:16", 4, {"PE datapath": 100.0, "edge accumulation": 200.0}, e=1)
    rf8 = _arow("bf16", "rf8", "aligned:32:16", 8, {"PE datapath": 400.0, "edge accumulation": 900.0}, e=1)
    fp4 = _arow("bf16", "bf16", "fp32", 4, {"PE datapath": 1000.0, "edge accumulation": 10.0, "control": 5.0})
    al8 = _arow("bf16", "bf16", "aligned:32:16", 8, {"PE datapath": 7.0})
    al4 = _arow("bf16", "bf16", "aligned:32:16", 4, {"PE datapath": 3.0})
    b = area_budget([rf4, rf8, fp4, al4])
    assert b["how"] == "extrapolated" and "extrapolated to 8x8" in b["label"] and "fp32 4x4" in b["label"]
    assert b["area_um2"] == 1000.0 * 4 + 10.0 * 4.5 + 5.0 * 4  # PE x4, edge x4.5 (900/200), control x4 (R x C)
    assert b["part_ratios"] == {"PE datapath": 4.0, "edge accumulation": 4.5, "control": 4.0}
    fp8 = _arow("bf16", "bf16", "fp32", 8, {"PE datapath": 123.0})
    assert area_budget([rf4, rf8, fp8, al8]) == {"label": "bf16 x bf16 fp32 8x8", "area_um2": 123.0,
                                                 "how": "measured", "module": fp8["module"], "size": [8, 8]}
    m = area_budget([rf4, rf8, fp4, fp8, al8])  # measured, with what the extrapolation would have said
    assert m["area_um2"] == 123.0 and m["extrapolation_check"]["area_um2"] == b["area_um2"]
    assert m["extrapolation_check"]["error_pct"] == 100 * (b["area_um2"] / 123.0 - 1)
    assert area_budget([rf4, fp4, al8])["label"] == "bf16 x bf16 aligned:32:16 8x8"  # no RF8 8x8 to scale by
    assert area_budget([rf4, rf8, al4])["label"] == "bf16 x bf16 aligned:32:16 4x4"
    assert area_budget([rf4, rf8]) is None


def test_equal_area_lines_ratio_and_label():
    """The equal-area bullets: RF8 x BF16 at the budget's size gets budget / its area as its TOPS/mm² ratio (goal
    >= 2x), the TOPS/W ratio from the fp32 BF16 array's pJ/MAC, and an extrapolated budget says so."""
    from rf8sim.hdl.array_cost import add_inference, equal_area_lines

    rf4 = _arow("bf16", "rf8", "aligned:32:16", 4, {"PE datapath": 100.0, "edge accumulation": 200.0}, e=1)
    rf8 = _arow("bf16", "rf8", "aligned:32:16", 8, {"PE datapath": 400.0, "edge accumulation": 900.0}, e=1)
    fp4 = _arow("bf16", "bf16", "fp32", 4, {"PE datapath": 1000.0})
    for r, pj in ((rf8, 100.0), (fp4, 250.0)):
        r.update(fmax_mhz=10.0, pe_stages=1, pj_per_mac=pj,
                 energy={"static_pj_per_cycle": 1.0, "dynamic_pj_per_mac": pj})
        r["config"]["pe_stages"] = 1
    rows = [rf4, rf8, fp4]
    inf = add_inference(rows)
    assert inf["area_budget"] == "bf16 x bf16 fp32 4x4, extrapolated to 8x8" and inf["area_budget_detail"]["area_um2"] == 4000.0
    text = "\n".join(equal_area_lines({"inference": inf, "rows": rows}))
    assert "extrapolated, not synthesized" in text
    assert "TOPS/mm² (goal ≥ 2×): met** against an extrapolated baseline area: 3.08×" in text  # 4000 / 1300
    assert "TOPS/W 2.50×" in text and "a smaller array" in text  # 250 / 100 pJ/MAC, fp32 array is 4x4
    measured = {"inference": {**inf, "area_budget_detail": {**inf["area_budget_detail"], "how": "measured"}},
                "rows": rows}
    assert len(equal_area_lines(measured)) == 1  # the goal bullets of that size compare with a synthesized budget
    rf8["area_um2"] = 2500.0
    assert "not met** against an extrapolated baseline area: 1.60×" in "\n".join(equal_area_lines({"inference": inf,
                                                                                                    "rows": rows}))
