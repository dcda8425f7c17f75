"""Re-export: the accumulator spec lives beside the formats in :mod:`rf8sim.accspec`."""

from ..accspec import MAX_FRAC_BITS, MAX_WIDTH, AccSpec, AccSpecError  # noqa: F401

__all__ = ["AccSpec", "AccSpecError", "MAX_WIDTH", "MAX_FRAC_BITS"]
