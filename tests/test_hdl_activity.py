"""Fast zero-delay activity (rf8sim.hdl.activity) against Icarus without cell delays.

The evaluator builds every gate from the Liberty ``function`` / ``ff`` text; Icarus runs the
same netlist on the osu018 Verilog cell models (a different description of the cells).
Per-net toggle counts must be identical on every net Icarus dumps; the numbers of nets and
cycles compared are asserted.
"""

from __future__ import annotations

import numpy as np
import pytest

from rf8sim.hdl.mac import HdlError
from tests.test_hdl_power import sim_synth as _flow

MIXED = """module mixed(input clk, input rst, input en, input [7:0] a, input [7:0] b, output reg [15:0] acc,
                    output [7:0] y, output z, output [1:0] k);
  wire [15:0] p = a * b;
  always @(posedge clk) if (rst) acc <= 16'd0; else if (en) acc <= acc + p; else acc <= acc - {8'd0, a};
  assign y = (a > b) ? a - b : {b[3:0], a[7:4]};
  assign z = ^acc;
  assign k = 2'b10;
endmodule
"""


def _compare(netp, libp, stim, warm):
    from rf8sim.hdl.activity import compile_netlist, simulate_fast
    from rf8sim.hdl.gatesim import simulate

    c = compile_netlist(netp, libp)
    fast = simulate_fast(c, stim, warm)
    ref = simulate(netp, stim, warm, period_ns=20.0, specify=False, workdir=netp.parent / "zero")
    nets = set(ref.toggles) | set(fast.toggles)
    mism = [n for n in nets if ref.toggles.get(n, -1) != fast.toggles.get(n, -1)]
    return c, fast, ref, nets, mism


@_flow
def test_mixed_circuit_matches_icarus_zero_delay(tmp_path):
    from rf8sim.hdl.power import map_to_cells

    netp = map_to_cells(MIXED, "mixed", tmp_path / "syn")
    rng = np.random.default_rng(1)
    n = 300
    stim = {"rst": [1, 1] + [0] * (n - 2), "en": list(rng.integers(0, 2, n)),
            "a": list(rng.integers(0, 256, n)), "b": list(rng.integers(0, 256, n))}
    c, fast, ref, nets, mism = _compare(netp, netp.parent / "cells.lib", stim, 3)
    assert fast.cycles == ref.cycles == n - 3
    assert len(c.f_state) == 16 and len(c.g_out) > 150
    assert len(nets) == len(ref.toggles) and len(nets) > 200
    assert mism == []
    assert sum(ref.toggles.values()) > 10 * n  # real activity was compared


@_flow
def test_mac_unit_matches_icarus_zero_delay():
    from pathlib import Path

    from rf8sim.hdl.gatesim import parse_netlist
    from rf8sim.hdl.power import stimulus
    from rf8sim.hdl.streams import make_stream
    from rf8sim.hdl.synth import synthesize

    r = synthesize("rf8", "rf8", "16:32", 1, "fixed", "mac")
    work = Path(r["workdir"])
    netp = work / "mapped.v"
    stim = stimulus(parse_netlist(netp), make_stream("random", "rf8", "rf8", 1, 160, 32, 0))
    c, fast, ref, nets, mism = _compare(netp, work / "cells.lib", stim, 6)
    assert fast.cycles == 156
    assert len(nets) == len(ref.toggles) >= 600
    assert mism == []
    assert sum(ref.toggles.values()) > 20 * fast.cycles


def test_liberty_functions():
    from rf8sim.hdl.activity import _parse_function, _truth_table

    def tt(f):
        ast, ins = _parse_function(f)
        return ins, _truth_table(ast, ins)

    # reference truth tables written from the definitions, bit idx = value at (A=idx&1, B=idx>>1&1, ...)
    def ref(ins, fn):
        return sum(1 << i for i in range(1 << len(ins)) if fn(*[(i >> k) & 1 for k in range(len(ins))]))

    cases = {
        "(!((A B)+C))": lambda a, b, c: 1 - ((a & b) | c),
        "(!((A+B) (C+D)))": lambda a, b, c, d: 1 - ((a | b) & (c | d)),
        "(((A B)+(B C))+(C A))": lambda a, b, c: (a & b) | (b & c) | (c & a),
        "((A^B)^C)": lambda a, b, c: a ^ b ^ c,
        "(!((S A) + (!S B)))": lambda s, a, b: 1 - ((s & a) | ((1 - s) & b)),
        "A&B|C": lambda a, b, c: (a & b) | c,
        "A|B&C": lambda a, b, c: a | (b & c),
        "A'^B C": lambda a, b, c: ((1 - a) ^ b) & c,  # ^ binds tighter than AND
        "!A1 | (A2*B1)": lambda a1, a2, b1: (1 - a1) | (a2 & b1),
    }
    n = 0
    for f, fn in cases.items():
        ins, t = tt(f)
        assert t == ref(ins, fn), f
        n += 1
    assert n == len(cases)
    for bad in ("(A B", "A + ", "A $ B"):
        with pytest.raises(HdlError):
            tt(bad)


def test_unsupported_cells_and_loops(tmp_path):
    from rf8sim.hdl.activity import compile_netlist

    lib = tmp_path / "t.lib"
    lib.write_text("""library (t) {
cell (INV) { pin (A) { direction : input; } pin (Y) { direction : output; function : "(!A)"; } }
cell (LAT) { latch (IQ,IQN) { enable : "G"; data_in : "D"; }
  pin (D) { direction : input; } pin (G) { direction : input; }
  pin (Q) { direction : output; function : "IQ"; } }
cell (DFFR) { ff (IQ,IQN) { next_state : "D"; clocked_on : "CLK"; clear : "(!R)"; }
  pin (D) { direction : input; } pin (CLK) { direction : input; } pin (R) { direction : input; }
  pin (Q) { direction : output; function : "IQ"; } }
}
""")
    loop = tmp_path / "loop.v"
    loop.write_text("module loop(a, y);\n  input a;\n  wire a;\n  output y;\n  wire y;\n  wire _1_;\n"
                    "  INV _2_ (.A(y), .Y(_1_));\n  INV _3_ (.A(_1_), .Y(y));\nendmodule\n")
    with pytest.raises(HdlError, match="combinational loop"):
        compile_netlist(loop, lib)
    lat = tmp_path / "lat.v"
    lat.write_text("module lat(d, g, q);\n  input d;\n  wire d;\n  input g;\n  wire g;\n  output q;\n  wire q;\n"
                   "  LAT _1_ (.D(d), .G(g), .Q(q));\nendmodule\n")
    with pytest.raises(HdlError, match="latch"):
        compile_netlist(lat, lib)
    ffr = tmp_path / "ffr.v"
    ffr.write_text("module ffr(clk, d, r, q);\n  input clk;\n  wire clk;\n  input d;\n  wire d;\n  input r;\n"
                   "  wire r;\n  output q;\n  wire q;\n  DFFR _1_ (.CLK(clk), .D(d), .R(r), .Q(q));\nendmodule\n")
    with pytest.raises(HdlError, match="clear/preset"):
        compile_netlist(ffr, lib)
    unk = tmp_path / "unk.v"
    unk.write_text("module unk(a, y);\n  input a;\n  wire a;\n  output y;\n  wire y;\n  NAND9 _1_ (.A(a), .Y(y));\n"
                   "endmodule\n")
    with pytest.raises(HdlError, match="not in t.lib"):
        compile_netlist(unk, lib)


def test_stimulus_errors_and_glitch_model(tmp_path):
    from rf8sim.hdl.activity import LEVEL_BINS, GlitchModel, compile_netlist, fit_glitch, simulate_fast

    lib = tmp_path / "t.lib"
    lib.write_text('library (t) { cell (INV) { pin (A) { direction : input; } '
                   'pin (Y) { direction : output; function : "(!A)"; } } }\n')
    v = tmp_path / "inv.v"
    v.write_text("module inv(a, y);\n  input [1:0] a;\n  wire [1:0] a;\n  output [1:0] y;\n  wire [1:0] y;\n"
                 "  INV _1_ (.A(a[0]), .Y(y[0]));\n  INV _2_ (.A(a[1]), .Y(y[1]));\nendmodule\n")
    c = compile_netlist(v, lib)
    g = simulate_fast(c, {"a": [0, 1, 2, 3, 0, 3]}, 1)
    # toggles are counted from row 1 (the row after the warm-up), on the input and on the inverter output
    a = np.array([0, 1, 2, 3, 0, 3])
    for bit in (0, 1):
        b = (a >> bit) & 1
        assert g.toggles[f"a[{bit}]"] == g.toggles[f"y[{bit}]"] == int(np.sum(b[1:] != b[:-1]))
    with pytest.raises(HdlError, match="does not fit"):
        simulate_fast(c, {"a": [4]}, 0)
    with pytest.raises(HdlError, match="missing ports"):
        simulate_fast(c, {"b": [1]}, 0)
    with pytest.raises(HdlError, match="warm-up"):
        simulate_fast(c, {"a": [1, 2]}, 2)
    # the fit: a bin's factor is the weighted delay/zero ratio; level-0 nets are never scaled
    u = {"weights": {"n1": 1.0, "n2": 3.0, "p": 5.0}, "levels": {"n1": 1, "n2": 2, "p": 0},
         "zero": {"n1": 10, "n2": 10, "p": 4}, "delay": {"n1": 20, "n2": 10, "p": 4}}
    m = fit_glitch([u])
    assert len(m.factors) == len(LEVEL_BINS) - 1
    assert m.factors[1] == pytest.approx((20 + 3 * 10) / (10 + 3 * 10))
    est = m.apply({"n1": 10, "p": 4}, u["levels"])
    assert est["p"] == 4 and est["n1"] == pytest.approx(10 * m.factors[1])
    assert GlitchModel([1.0] * 10).apply({"x": 3}, {"x": 50})["x"] == 3


def test_sky130_liberty_cells_all_read_with_their_functions(tmp_path):
    """sky130's Liberty quotes pin directions (``direction : "output"``): the evaluator read none of them, so
    every sky130 gate was a cell without an output function and an array's energy on sky130 was its clock and
    leakage only. All 51 characterized cells must come with their output functions (the one with an
    asynchronous reset stays marked unsupported, which fails a netlist using it loudly), and a pin whose
    direction cannot be read marks its cell unsupported instead of dropping its function."""
    from pathlib import Path

    from rf8sim.hdl.activity import CellLib

    lib = Path(__file__).resolve().parents[1] / "hdl" / "tech" / "sky130" / "sky130_fd_sc_hd__tt_025C_1v80.rf8sim.lib"
    cells = CellLib.read(lib).cells
    assert len(cells) == 51
    with_funcs = [n for n, c in cells.items() if c["funcs"]]
    assert len(with_funcs) == 51
    unsupported = {n: c["unsupported"] for n, c in cells.items() if c["unsupported"]}
    assert unsupported == {"sky130_fd_sc_hd__dfrtp_1": "asynchronous clear/preset"}
    nand = cells["sky130_fd_sc_hd__nand2_1"]["funcs"]["Y"]
    assert sorted(nand[0]) == ["A", "B"] and nand[1] == 0b0111  # !(A&B): true unless both inputs are 1

    bad = tmp_path / "bad.lib"
    bad.write_text('library (x) { cell (odd) { pin (A) { capacitance : 1; } '
                   'pin (Y) { direction : "output"; function : "!A"; } } }')
    assert CellLib.read(bad).cells["odd"]["unsupported"] == "pin A without a readable direction"
