"""The rich Console every rf8sim command prints through: tables stay whole when piped.

Without a terminal (``rf8sim synth ... | tee log``, a CI log, a file) rich assumes 80 columns and
shrinks a wider table until every cell ends in "…".  :class:`Console` widens itself, for the
print of a table only, to the table's natural width, so a piped table is the full table; text,
rules and progress keep the ordinary width.  On a terminal nothing changes.
"""

from __future__ import annotations

from rich import console as _rc
from rich.measure import Measurement
from rich.table import Table

__all__ = ["Console", "natural_width"]

#: the widest a piped table may become (a guard against a runaway cell, not a layout choice)
MAX_PIPED_WIDTH = 100_000


def natural_width(console: "_rc.Console", renderable) -> int:
    """The width ``renderable`` takes when nothing limits it."""
    return Measurement.get(console, console.options.update_width(MAX_PIPED_WIDTH), renderable).maximum


class Console(_rc.Console):
    """``rich.console.Console`` that prints tables at their full width when not writing to a terminal."""

    def print(self, *objects, **kwargs):  # noqa: A003 - rich's name
        if self.is_terminal or kwargs.get("width") is not None or not any(isinstance(o, Table) for o in objects):
            return super().print(*objects, **kwargs)
        need = max(natural_width(self, o) for o in objects if isinstance(o, Table))
        if need <= self.width:
            return super().print(*objects, **kwargs)
        saved = self._width
        self.width = need
        try:
            return super().print(*objects, **kwargs)
        finally:
            self._width = saved
