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
