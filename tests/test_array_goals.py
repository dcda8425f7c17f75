"""Issue 19's goal verdicts (rf8sim.hdl.array_cost.goal_verdict) on hand-made rows with known ratios."""

import pytest

from rf8sim.hdl.array_cost import goal_verdict


def _row(area, crit, tops_mm2, pj=None, tops_w=None, per_mac=None):
    r = {"area_um2": area, "critical_path_ns": crit, "tops_per_mm2_at_fmax": tops_mm2,
         "area_per_mac_um2": per_mac if per_mac is not None else area / 16}
    if pj is not None:
        r.update(energy={}, pj_per_mac=pj, tops_per_w_at_fmax=tops_w)
    return r


def test_goals_met_and_missed_with_known_ratios():
    by = {("bf16", "bf16"): _row(400.0, 9.0, 1.0, pj=30.0, tops_w=2.0),
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
    by[("bf16", "e4m3")]["area_per_mac_um2"] = 9.0
    assert not goal_verdict(by)["area_order_met"]


def test_goals_absent_without_the_baseline():
    by = {("bf16", "rf8"): _row(200.0, 12.0, 3.0, pj=25.0, tops_w=2.5)}
    assert goal_verdict(by) == {}
