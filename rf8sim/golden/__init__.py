"""Numba golden model: the bit-exact reference semantics of every rf8sim datapath."""

from .accspec import AccSpec, AccSpecError, MAX_WIDTH

__all__ = ["AccSpec", "AccSpecError", "MAX_WIDTH"]
