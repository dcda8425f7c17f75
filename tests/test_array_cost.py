"""Costing the PE arrays (rf8sim.hdl.array_cost): the renamed netlist, the parts, the tile stimulus,
fast activity on a synthesized array equal to Icarus without delays, bad input."""

from __future__ import annotations

import shutil
import numpy as np
import pytest

from rf8sim.hdl.mac import HdlError
from tests.test_hdl_power import sim_synth as _flow
from tests.toolcheck import needs



def test_plain_names_and_parts():
    from rf8sim.hdl.array_cost import _plain, part_of

    text = ("  wire [3:0] \\pe_0_1.p ;\n  DFFPOSX1 \\$auto$ff.cc:1$2  (.CLK(clk), .D(\\pe_0_1.p [2]), "
            ".Q(\\wsh_1_2 [0]));\n  assign out = \\$abc$5$n7 ;\n")
    plain, back = _plain(text)
    assert "\\" not in plain
    assert sorted(back.values()) == ["$abc$5$n7", "$auto$ff.cc:1$2", "pe_0_1.p", "wsh_1_2"]
    assert ".D(_e0_[2])" in plain.replace(" ", "") or ".D(_e0_ [2])" in plain
    cases = {"wsh_1_2": "weight buffers", "w_1_2": "weight buffers", "a_3_0": "activation registers",
             "psum_2_1": "PE datapath", "pe_0_1.p": "PE datapath", "sa0_1_term": "PE datapath",
             "edge_total3": "edge accumulation", "accmem0.data": "edge accumulation", "fadd2.lz_a": "edge accumulation",
             "o_acc2": "edge accumulation", "row3_in": "row alignment + skew", "skew2_d1": "row alignment + skew",
             "tag_d3": "control", "$abc$5$n7": None, "_12_": None}
    for name, part in cases.items():
        assert part_of(name) == part, name
    assert len(cases) == 15


def test_tile_stimulus_packing():
    from rf8sim.hdl.array_cost import RESET_ROWS, tile_stimulus

    class Cfg:
        a_bits, w_bits = 16, 8

    rng = np.random.default_rng(0)
    n = 5
    st = {k: rng.integers(0, 2, n) for k in ("valid", "swap", "clear", "last", "wload")}
    st["addr"] = rng.integers(0, 16, n)
    st["a"] = rng.integers(0, 1 << 16, (n, 3))
    st["w"] = rng.integers(0, 256, (n, 2))
    ports = {"clk": 1, "rst": 1, "in_valid": 1, "in_swap": 1, "in_clear": 1, "in_last": 1, "in_addr": 4,
             "in_a": 48, "in_wload": 1, "in_w": 16}
    stim = tile_stimulus(Cfg, ports, st)
    assert set(stim) == set(ports) - {"clk"}
    assert stim["rst"][:RESET_ROWS].all() and not stim["rst"][RESET_ROWS:].any()
    for t in range(n):
        word = sum(int(b) << i for i, b in enumerate(stim["in_a"][RESET_ROWS + t]))
        assert word == sum(int(st["a"][t, r]) << (16 * r) for r in range(3))
        word = sum(int(b) << i for i, b in enumerate(stim["in_w"][RESET_ROWS + t]))
        assert word == sum(int(st["w"][t, c]) << (8 * c) for c in range(2))
        assert sum(int(b) << i for i, b in enumerate(stim["in_addr"][RESET_ROWS + t])) == st["addr"][t]
    with pytest.raises(HdlError, match="no stimulus rule"):
        tile_stimulus(Cfg, {**ports, "in_bogus": 3}, st)
    with pytest.raises(HdlError, match="in_addr is 3 bits"):
        tile_stimulus(Cfg, {**ports, "in_addr": 3}, {**st, "addr": np.full(n, 9)})
    with pytest.raises(HdlError, match="in_a is 40 bits"):
        tile_stimulus(Cfg, {**ports, "in_a": 40}, st)


@_flow
def test_small_array_activity_matches_icarus(tmp_path):
    """A 2x2 RF8 array through the array synthesis (names made plain): the fast activity equals Icarus
    without delays on every net over a scheduled random GEMM."""
    from pathlib import Path

    from rf8sim.hdl.activity import compile_netlist, simulate_fast
    from rf8sim.hdl.array import ArrayConfig
    from rf8sim.hdl.array_cost import RESET_ROWS, parts_of, synth_array, tile_stimulus
    from rf8sim.hdl.gatesim import parse_netlist, simulate
    from rf8sim.hdl.schedule import plan, streams

    cfg = ArrayConfig.make("rf8", "rf8", "16:32", 2, 2)
    syn = synth_array(cfg, root=tmp_path)
    work = Path(syn["workdir"])
    parts, area = parts_of(syn)
    assert syn["area_um2"] > 0 and abs(sum(area.values()) - syn["area_um2"]) < 1e-6 * syn["area_um2"]
    assert {"weight buffers", "PE datapath", "edge accumulation"} <= set(area)
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (12, 8)).astype(np.uint8)
    w = rng.integers(0, 256, (4, 8)).astype(np.uint8)
    s = plan(12, 8, 4, 2, 2, cfg.depth, None, cfg.latency)
    nl = parse_netlist(work / "mapped.v")
    stim = tile_stimulus(cfg, dict(nl.inputs), streams(s, a, w))
    c = compile_netlist(work / "mapped.v", work / "cells.lib")
    fast = simulate_fast(c, stim, RESET_ROWS + 2)
    ints = {p: [int(sum(int(b) << i for i, b in enumerate(row))) for row in v] for p, v in stim.items()}
    ref = simulate(work / "mapped.v", ints, RESET_ROWS + 2, period_ns=20.0, specify=False, workdir=tmp_path / "z")
    nets = set(ref.toggles) | set(fast.toggles)
    assert len(nets) == len(ref.toggles) > 500
    assert [n for n in nets if ref.toggles.get(n, -1) != fast.toggles.get(n, -1)] == []
    assert fast.cycles == s.cycles - 2 and sum(ref.toggles.values()) > 10 * fast.cycles


def test_cli_bad_input(tmp_path, capsys):
    from rf8sim.cli import main

    cases = [(["cost", "--record", str(tmp_path / "x.json")], "--table"), (["cost", "--clock-ns", "-1"], "clock"),
             (["cost", "--cached-only"], "--table"), (["cost", "--cycles", "0"], "--cycles"),
             (["synth", "--size", "0x4"], "1..32"), (["activity", "--cycles", "0"], "--cycles"),
             (["activity", "--check-cycles", "0"], "--check-cycles"), (["activity", "--check-size", "0x2"], "1..32"),
             (["activity", "--clock-ns", "0"], "clock")]
    for args, word in cases:
        assert main(["array", *args]) == 2, args
        err = capsys.readouterr().err
        assert word in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not (tmp_path / "x.json").exists()


def test_activity_check_stimulus_ints():
    """The Icarus stimulus of the array check: each row of a (rows, width) bit array as one int, bit 0 first
    (against int.from_bytes of the packed bits, little-endian bit order)."""
    from rf8sim.hdl.array_activity import _ints

    rng = np.random.default_rng(5)
    n = 0
    for width in (1, 7, 64, 129):
        bits = rng.integers(0, 2, (6, width)).astype(np.uint8)
        want = [int.from_bytes(np.packbits(row, bitorder="little").tobytes(), "little") for row in bits]
        assert _ints(bits) == want
        n += len(want)
    assert n == 24


def test_unknown_layer():
    from rf8sim.hdl.array import ArrayConfig
    from rf8sim.hdl.array_cost import tile_operands

    with pytest.raises(HdlError, match="no Linear layer"):
        tile_operands(ArrayConfig.make("rf8", "rf8", "16:32", 2, 2), layer="encoder.layer.9.nope")



@needs(shutil.which("iverilog"), "Icarus Verilog", "apt-get install iverilog")
def test_flow_array_stage(tmp_path):
    """The flow's array stage: a 2x2 W8A16 array generated and run on a real MiniLM tile on Icarus against
    the golden model (every output counted), its per-inference cost from the checked-in record attached to
    the MiniLM results; the record's numbers recomputed here from its per-cycle and per-MAC energies."""
    import dataclasses
    import json

    from rf8sim.hdl.array_cost import RECORD, per_inference
    from rf8sim.hdl.array import ArrayConfig
    from rf8sim.study.flow.answer import array_lines
    from rf8sim.study.flow.run import default_config
    from rf8sim.study.flow.stages import Context, stage_array

    cfg = default_config(quick=True)
    cfg = dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, arrays=("bf16xrf8@aligned:32:16",
                                                                                    "bf16xint8@aligned:32:16"),
                                                            array_size="2x2", array_depth=4),
                              study=dataclasses.replace(cfg.study, workers=2))  # two worker processes, as in the demo
    tr = {"tokens": 130, "sentences": 10}
    ctx = Context(cfg=cfg, out=tmp_path, console=None, progress=False, state={"transformer": tr})
    res = stage_array(ctx)
    run, run8 = res["arrays"]
    assert run8["module"] == "array_bf16xint8_al32m16_2x2_d4_s1" and run8["mismatches"] == 0 < run8["outputs"]
    assert run["module"] == "array_bf16xrf8_al32m16_2x2_d4_s1" and (tmp_path / "verilog" / f"{run['module']}.v").exists()
    t = run["tile"]
    assert run["outputs"] == t["M"] * t["N"] > 0 and run["compared"] == 3 * run["outputs"] and run["mismatches"] == 0
    assert t["K"] == 384 and t["layer"].startswith("encoder.layer.")
    rec = json.loads(RECORD.read_text())
    rows = [r for r in rec["rows"] if (r["config"]["a_fmt"], r["config"]["w_fmt"]) == ("bf16", "rf8")
            and not r["config"].get("edge_stages") and "energy" in r]
    inf, _ = tr["arrays"]["rows"]
    big = max(rows, key=lambda r: r["config"]["rows"])
    R = big["config"]["rows"]
    ref = per_inference(ArrayConfig.make("bf16", "rf8", "aligned:32:16", R, R), 13, big["fmax_mhz"],
                        big["energy"]["static_pj_per_cycle"], big["energy"]["dynamic_pj_per_mac"])
    assert inf["uj_per_inference"] == pytest.approx(ref["energy_uj"]) and inf["size"] == f"{R}x{R}"
    # an independent count of the sentence's MACs: 6 layers x (4 x 384^2 + 2 x 384 x 1536) per token
    assert ref["macs"] == 13 * 6 * (4 * 384 * 384 + 2 * 384 * 1536)
    line = array_lines(tr)[-1]
    assert line.startswith("- Per-inference array cost: bf16 × rf8 ") and "0 mismatches" in line


def test_flow_costs_compare_arrays_of_one_size():
    """The flow's per-inference rows come from the largest size every kind has in the record: the demo's
    RF8 x BF16 array (aligned, edge adder not registered) has 4x4 only, its fp32 BF16 baseline 4x4 and 8x8."""
    import json

    from rf8sim.hdl.array_cost import RECORD, common_size, recorded_inference

    rec = json.loads(RECORD.read_text())
    rf8, bf16 = ("bf16", "rf8", "aligned:32:16", 0), ("bf16", "bf16", "fp32", 0)
    have = {k: sorted((r["config"]["rows"], r["config"]["cols"]) for r in rec["rows"] if "energy" in r
                      and (r["config"]["a_fmt"], r["config"]["w_fmt"], r["config"]["acc"],
                           int(r["config"].get("edge_stages", 0))) == k) for k in (rf8, bf16)}
    assert have == {rf8: [(4, 4)], bf16: [(4, 4), (8, 8)]}
    assert common_size([rf8, bf16], rec) == (4, 4) and common_size([bf16], rec) == (8, 8)
    assert common_size([rf8, ("bf16", "bf16", "fp32", 1)], rec) == (4, 4)  # a kind with no row is left out
    assert common_size([("rf8", "rf8", "16:32", 0), ("bf16", "rf8", "aligned:32:16", 1)], rec) == (8, 8)
    alone = recorded_inference(*bf16, 27.0, rec)
    paired = recorded_inference(*bf16, 27.0, rec, (4, 4))
    assert alone["size"] == "8x8" and paired["size"] == "4x4" and paired["area_mm2"] < alone["area_mm2"]
    assert recorded_inference(*rf8, 27.0, rec, (8, 8)) is None


def test_flow_array_config_bad_input(tmp_path):
    from rf8sim.study.common.config import ConfigError, load_config

    cases = [('arrays = ["bf16xrf8"]', "'AxW@ACC'"), ('arrays = ["bf16xrf8@aligned:32:16"]\narray_size = "3x3"',
                                                      "must divide the block"),
             ('arrays = ["bf16xrf8@aligned:32:16"]\narray_edge_stages = 2', "edge_stages must be one of"),
             ('arrays = ["rf8xrf8@16:32"]\narray_synth = ["bf16xrf8@aligned:32:16"]', "is not one of [flow] arrays"),
             ('arrays = ["bf16xrf8@aligned:32:16"]\narray_depth = 0', "depth")]
    for i, (body, msg) in enumerate(cases):
        p = tmp_path / f"c{i}.toml"
        p.write_text("[flow]\n" + body + "\n")
        with pytest.raises(ConfigError) as e:
            load_config(p)
        assert msg in str(e.value) and "\n" not in str(e.value), (body, str(e.value))
    assert len(cases) == 5


def test_cost_table_title_names_the_library_of_its_rows(capsys):
    """`rf8sim array cost --tech sky130` printed "(osu018)" above sky130 numbers; the title now names the
    libraries of the rows it shows."""
    from rf8sim.hdl.array_cost_cli import _print_rows

    def row(lib):
        return {"config": {"a_fmt": "bf16", "w_fmt": "rf8", "acc": "aligned:32:16", "rows": 2, "cols": 2,
                           "edge_stages": 1}, "library": lib, "area_um2": 2.0, "area_per_mac_um2": 0.5,
                "critical_path_ns": 1.0, "fmax_mhz": 1000.0, "tops_per_mm2_at_fmax": 1.0, "pj_per_mac": 1.0,
                "tops_per_w_at_fmax": 1.0, "area_by_part_um2": {"pe": 1.0}, "energy": None}

    _print_rows([row("sky130_fd_sc_hd__tt_025C_1v80.rf8sim.lib")])
    title = capsys.readouterr().out.splitlines()[0]
    assert "(sky130)" in title and "osu018" not in title
    _print_rows([row("osu018_stdcells.lib"), row("sky130_fd_sc_hd__tt_025C_1v80.rf8sim.lib")])
    assert "(osu018, sky130)" in capsys.readouterr().out.splitlines()[0]
