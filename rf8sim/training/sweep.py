"""Compare the torch quantizer with the Numba golden model on float32 patterns (chunked).

``rf8sim training-sweep`` (and the slow test) runs all 2**32 float32 bit patterns
through every format and rounding mode.  This module imports rf8sim.golden, so it
is not part of the GPU-only path (gpu_check compares CUDA against CPU instead).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import formats as F

__all__ = ["MODES", "compare_patterns", "sweep"]

#: (format, rounding, saturate) combinations compared
MODES = tuple([("rf8", r, True) for r in ("nearest", "paper", "truncate")]
              + [(f, "nearest", s) for f in ("e4m3", "e5m2") for s in (True, False)]
              + [("int8", "nearest", True)])


def _golden_codes(x: np.ndarray, fmt: str, rounding: str, saturate: bool):
    import rf8sim.golden as G

    return G.encode(x, fmt, rounding=rounding, saturate=saturate)


def compare_patterns(bits: np.ndarray, fmt: str, rounding: str, saturate: bool) -> tuple[int, int]:
    """(compared, mismatches) of torch encode vs golden encode on uint32 patterns (NaN skipped
    for formats without NaN, where both raise)."""
    from .quant import encode

    x = bits.view(np.float32)
    f = F.get(fmt)
    if f.nan_code is None:
        x = x[~np.isnan(x)]
    if not saturate and fmt in ("rf8", "int8"):
        raise ValueError("saturate=False raises for rf8/int8 out-of-range values; sweep saturating only")
    g = _golden_codes(x, fmt, rounding, saturate)
    t = encode(torch.from_numpy(x), fmt, rounding, saturate).numpy()
    return int(x.size), int((g != t).sum())


def sweep(chunk_bits: int = 24, modes=MODES, start: int = 0, stop: int = 1 << 32, progress: bool = True):
    """All float32 patterns in [start, stop) through every mode; returns rows {mode, compared, mismatches}."""
    from tqdm import tqdm

    chunk = 1 << chunk_bits
    rows = {m: [0, 0] for m in modes}
    it = range(start, stop, chunk)
    for lo in tqdm(it, disable=not progress, desc="float32 patterns", unit="chunk"):
        bits = np.arange(lo, min(lo + chunk, stop), dtype=np.uint64).astype(np.uint32)
        for m in modes:
            n, bad = compare_patterns(bits, *m)
            rows[m][0] += n
            rows[m][1] += bad
    return [{"format": m[0], "rounding": m[1], "saturate": m[2], "compared": v[0], "mismatches": v[1]}
            for m, v in rows.items()]
