"""Compare the torch quantizer with the Numba golden model on float32 patterns (chunked).

``rf8sim training-sweep`` (and the slow test) runs all 2**32 float32 bit patterns
through every format and rounding mode.  This module imports rf8sim.golden, so it
is not part of the GPU-only path (gpu_check compares CUDA against CPU instead).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import formats as F

__all__ = ["MODES", "FQ_MODES", "compare_patterns", "compare_fake_quant", "sweep"]

#: (format, rounding, saturate) combinations compared
MODES = tuple([("rf8", r, True) for r in ("nearest", "paper", "truncate")]
              + [(f, "nearest", s) for f in ("e4m3", "e5m2") for s in (True, False)]
              + [("int8", "nearest", True)])


#: (format, rounding) combinations of the fused fake-quant kernel compared by ``--fake-quant``
FQ_MODES = (("rf8", "nearest"), ("rf8", "paper"), ("rf8", "truncate"), ("e4m3", "nearest"), ("e5m2", "nearest"),
            ("int8", "nearest"))
_ROW = 1023  # patterns per row; each row gets the format's max appended, so rows within range have k = 0


def compare_fake_quant(bits: np.ndarray, fmt: str, rounding: str, compiled: bool = True) -> tuple[int, int]:
    """(compared, mismatches) of the fused fake-quant kernel vs the golden quantize + dequantize.

    The patterns are laid out in rows of 1023 consecutive patterns plus the format's
    max, one scale per row (granularity "channel"): every pattern whose magnitude is
    within the format's range is rounded at scale exponent 0, i.e. exactly as itself;
    larger ones at the scale their row needs.  Non-finite patterns must pass through
    unchanged (``nonfinite="propagate"``); finite ones must equal the golden model's
    value bit for bit (the golden dequantize's final float32 rounding is redone here
    without its overflow check, since propagate returns +-inf there).
    """
    import rf8sim.golden as G

    from .fastquant import kernel_values
    from .quant import _SCALE_MAX, _SCALE_MIN

    f = F.get(fmt)
    n = bits.size
    rows = -(-n // _ROW)
    pat = np.zeros(rows * _ROW, np.uint32)
    pat[:n] = bits
    x = pat.view(np.float32).reshape(rows, _ROW)
    x = np.concatenate([x, np.full((rows, 1), f.max, np.float32)], axis=1)
    finite = np.isfinite(x)
    xf = np.where(finite, x, np.float32(0))
    codes, k = G.quantize(xf, fmt, rounding=rounding, granularity="channel")
    with np.errstate(over="ignore"):
        want = np.ldexp(G.decode(codes, fmt).astype(np.float64), k.astype(np.int64)[:, None]).astype(np.float32)
    want = np.where(finite, want, x)
    got, _ = kernel_values(torch.from_numpy(x), fmt, rounding, compiled, _SCALE_MIN, _SCALE_MAX)
    bad = got.numpy().view(np.uint32)[:, :_ROW].reshape(-1)[:n] != want.view(np.uint32)[:, :_ROW].reshape(-1)[:n]
    return int(n), int(bad.sum())


def sweep_fake_quant(chunk_bits: int = 24, modes=FQ_MODES, start: int = 0, stop: int = 1 << 32,
                     compiled: bool = True, progress: bool = True):
    """All float32 patterns in [start, stop) through the fused kernel, every mode."""
    from tqdm import tqdm

    chunk = 1 << chunk_bits
    rows = {m: [0, 0] for m in modes}
    for lo in tqdm(range(start, stop, chunk), disable=not progress, desc="float32 patterns (fake_quant)",
                   unit="chunk"):
        bits = np.arange(lo, min(lo + chunk, stop), dtype=np.uint64).astype(np.uint32)
        for m in modes:
            n, bad = compare_fake_quant(bits, *m, compiled=compiled)
            rows[m][0] += n
            rows[m][1] += bad
    return [{"format": m[0], "rounding": m[1], "kernel": "fake_quant fused op" + (" (compiled)" if compiled else ""),
             "compared": v[0], "mismatches": v[1]} for m, v in rows.items()]


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
