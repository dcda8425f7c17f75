"""Operand checks shared by golden's fixed-point (:mod:`.arith`) and float (:mod:`.fpacc`)
accumulators, below both: the shape error, the MAC trace's clear flags and the scale exponents of
a GEMM's operands by granularity.  ``arith.mac`` / ``arith.gemm`` (the front doors) dispatch to
``fpacc`` for the float accumulators; ``fpacc`` imports nothing from ``arith``.
"""

from __future__ import annotations

import numpy as np

from ..errors import RF8SimError
from .codec import DTypeError

__all__ = ["ShapeError", "clear_flags"]


class ShapeError(RF8SimError, ValueError):
    """Operand arrays whose shapes do not fit together (or an unknown option value)."""


def clear_flags(clear, n: int) -> np.ndarray:
    """The per-beat ``clear`` flags of a MAC trace (None: never cleared), checked: bool, shape ``(n,)``."""
    if clear is None:
        return np.zeros(n, bool)
    clear = np.asarray(clear)
    if clear.dtype != np.bool_:
        raise DTypeError(f"clear must be a bool array, got dtype {clear.dtype}")
    if clear.shape != (n,):
        raise ShapeError(f"clear must have shape ({n},) (one flag per beat), got {clear.shape}")
    return np.ascontiguousarray(clear)


def _segments(K: int, ba: int, bw: int):
    """Boundaries of the runs of k over which both operands' scale groups are constant."""
    starts = sorted(set(range(0, K, ba)) | set(range(0, K, bw)))
    seg = np.array(starts + [K], np.int64)
    st = np.array(starts, np.int64)
    return seg, st // ba, st // bw


def _scale_rows(scale, rows: int, K: int, granularity: str, block: int, what: str):
    """Scale exponents as an int64 (rows, groups) array plus the group length along K."""
    from .. import scales as S

    try:
        granularity = S.canonical_granularity(granularity)
    except S.ScaleError:
        raise S.ScaleError(f"unknown {what} granularity {granularity!r}; valid: {', '.join(S.GRANULARITIES)} "
                           f"('block' is the old name of 'ceil')") from None
    if scale is None:
        return np.zeros((rows, 1), np.int64), max(K, 1)
    s = np.asarray(scale)
    if s.dtype.kind not in "iu":
        raise DTypeError(f"{what}_scale_exp must be an integer array, got dtype {s.dtype}")
    flat = s.reshape(-1)
    bad = flat[((flat < S.SCALE_MIN) | (flat > S.SCALE_MAX)) & ((flat != S.SCALE_NAN) | (granularity != "mx"))]
    if bad.size:  # such a product would be floored to 0 (or overflow): never a scale quantize makes
        raise S.ScaleError(f"{what}_scale_exp holds {bad.size} exponent(s) outside the E8M0 range "
                           f"{S.SCALE_MIN}..{S.SCALE_MAX} (first {int(bad[0])}); quantize's scales lie in it")
    if granularity == "tensor":
        if s.shape != ():
            raise ValueError(f"{what}_scale_exp for granularity 'tensor' must be a scalar, got shape {s.shape}")
        return np.full((rows, 1), int(s), np.int64), max(K, 1)
    if granularity == "channel":
        if s.shape != (rows,):
            raise ValueError(f"{what}_scale_exp for granularity 'channel' must have shape ({rows},), got {s.shape}")
        return np.ascontiguousarray(s.astype(np.int64).reshape(rows, 1)), max(K, 1)
    S.check_block(granularity, block)
    nb_ = -(-K // int(block))
    if s.shape != (rows, nb_):
        raise ValueError(f"{what}_scale_exp for granularity {granularity!r} (block={block}) must have shape "
                         f"({rows}, {nb_}), got {s.shape}")
    if granularity == "mx" and (s == S.SCALE_NAN).any():
        raise S.ScaleError(f"{what}_scale_exp holds {int((s == S.SCALE_NAN).sum())} NaN scale(s) (mx blocks "
                           f"with NaN/Inf); the integer datapath cannot multiply them")
    return np.ascontiguousarray(s.astype(np.int64)), int(block)
