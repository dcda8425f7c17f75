"""The torch quantizer's per-format lookup tables, group folding and input checks, below the public
quantizer (:mod:`.quant`), its fused kernels (:mod:`.fastquant`) and the 16-bit float codes
(:mod:`.floatcodes`), so that none of them imports another.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from .. import formats as F
from ..errors import RF8SimError
from ..scales import BLOCK_GRANULARITIES

#: smallest 24-bit significand whose value is >= sqrt(2) * 2**23 (sqrt(2) is irrational: no equality)
_SQRT2_SIG = math.isqrt(2 << 46) + 1


class QuantError(RF8SimError, ValueError):
    """Bad input to the torch quantizer (NaN where a format has none, bad dtype, shape ...)."""


# ---------------------------------------------------------------------------
# tables


class _Tables:
    """Per-format lookup tables derived from rf8sim.formats (numpy, moved to a device on demand)."""

    def __init__(self, fmt: F.Format):
        self.fmt = fmt
        mags = np.asarray(fmt.magnitudes, np.float64)
        if fmt.thresholds is not None:  # the format's own boundaries (posits, LNS), exact float32
            mids = np.asarray(fmt.thresholds, np.float64)
            tie_up = np.asarray(fmt.tie_up, bool)
        else:
            mids = (mags[1:] + mags[:-1]) / 2  # exact in float64 and in float32 (checked below)
            tie_up = np.zeros(len(mids), bool)
        self.overflow_idx = None
        if fmt.kind == "float":
            # the value after max if the exponent range were unbounded: OCP's non-saturating
            # rule (overflow -> NaN / Inf) applies from the midpoint between them (ties to even)
            codes = np.flatnonzero(fmt.finite & (fmt.values == fmt.max))
            nxt = fmt.max + math.ldexp(1.0, int(fmt.exp[codes[0]]))  # max + one ulp of its binade
            mids = np.append(mids, (fmt.max + nxt) / 2)
            tie_up = np.append(tie_up, False)
            self.overflow_idx = len(mags)
        assert np.all(mids.astype(np.float32).astype(np.float64) == mids)
        mid_bits = mids.astype(np.float32).view(np.int32)
        # fraction bits needed so that every midpoint is a bucket start
        low = 0
        for b in mid_bits.tolist():
            tz = (b & -b).bit_length() - 1 if b else 23
            low = max(low, 23 - min(tz, 23))
        # formats whose boundaries need more than 13 fraction bits (APoT, LNS, posits) or tie
        # upwards: a binary search over the boundary bit patterns instead of a bucket table
        self.search = bool(low > 13 or tie_up.any())
        i = np.arange(len(mids))
        self.thr_bits = mid_bits.astype(np.int32)
        self.tie_idx = np.where(tie_up, i + 1, i + (i & 1)).astype(np.int32)
        if self.search:
            low = 0
            mids = mids[:0]
        self.shift = 23 - low
        nb = 1 << (31 - self.shift)
        sbits = np.arange(nb, dtype=np.int64) << self.shift
        starts = np.minimum(sbits, 0x7F800000).astype(np.uint32).view(np.float32).astype(np.float64)
        # exponent field 255 (Inf, NaN) counts as above every midpoint
        L = np.searchsorted(mids, starts, side="left")
        is_mid = np.zeros(nb, bool)
        inb = L < len(mids)
        is_mid[inb] = mids[L[inb]] == starts[inb]
        # index for a value strictly inside the bucket and for a value equal to its start
        above = L + is_mid
        at_start = np.where(is_mid, L + (L & 1), L)  # tie -> even index
        self.lut_above = above.astype(np.int32)
        self.lut_start = at_start.astype(np.int32)
        # idx -> canonical positive code / magnitude (overflow index -> the OCP special)
        n_idx = len(mags) + (1 if self.overflow_idx is not None else 0)
        code_of_idx = np.zeros(n_idx, np.int32)
        canon = fmt.is_canonical
        if fmt.kind != "int":  # int8 is rounded arithmetically (asymmetric range); no magnitude table needed
            # each magnitude's smallest canonical positive code (one pass: posit16 has 32,767 magnitudes)
            pos = np.flatnonzero(canon & fmt.finite & (fmt.sign == 0))
            at = np.searchsorted(mags, np.abs(np.asarray(fmt.values, np.float64)[pos]))
            ok = (at < len(mags)) & (mags[np.minimum(at, len(mags) - 1)] == np.abs(fmt.values[pos]))
            first_idx, first = np.unique(at[ok], return_index=True)
            assert np.array_equal(first_idx, np.arange(len(mags))), f"{fmt.name}: a magnitude without a code"
            code_of_idx[: len(mags)] = pos[ok][first]
        val_of_idx = np.append(mags, np.nan if fmt.inf_code is None else np.inf)[:n_idx]
        if self.overflow_idx is not None:
            ovf = fmt.inf_code if fmt.inf_code is not None else fmt.nan_code
            code_of_idx[self.overflow_idx] = 0 if ovf is None else ovf  # None (e2m1): an error, see _encode32
        self.code_of_idx = code_of_idx
        self.val_of_idx = val_of_idx.astype(np.float32)
        self.n_mags = len(mags)
        # interleaved value table for fake_quant: [2b] value above bucket start, [2b+1] value at it;
        # saturating (overflow index -> max)
        if fmt.kind != "int":
            last = len(mags) - 1
            va = val_of_idx[np.minimum(above, last)].astype(np.float32)
            vs = val_of_idx[np.minimum(at_start, last)].astype(np.float32)
            self.vlut = np.stack([va, vs], axis=1).reshape(-1)
        else:
            self.vlut = np.zeros(2, np.float32)
        vals = np.asarray(fmt.values, np.float64)
        self.values32 = vals.astype(np.float32)
        self.canonical = np.asarray(fmt.canonical, np.int32)
        self.max_code = int(code_of_idx[len(mags) - 1])
        # residual formats: (t, d) -> R and E = e + bias
        if fmt.kind == "residual":
            rmap = np.full((3, 8), -1, np.int32)  # [t+1, d] -> R
            for r, (t, d) in enumerate(fmt.residuals):
                if t:
                    rmap[t + 1, d] = r
            self.rmap = rmap
            self.dmax = max(d for _, d in fmt.residuals)
            self.e_min = 1 - fmt.bias
            self.e_max = (1 << fmt.exp_bits) - 1 - fmt.bias
        self._dev: dict = {}

    def on(self, device) -> dict:
        key = str(device)
        d = self._dev.get(key)
        if d is None:
            t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
            d = {
                "above": t(self.lut_above), "start": t(self.lut_start),
                "code": t(self.code_of_idx), "val": t(self.val_of_idx),
                "values": t(self.values32), "canonical": t(self.canonical), "vlut": t(self.vlut),
                "slut": t(np.concatenate([self.vlut, -self.vlut])),
                "thr": t(self.thr_bits), "tie": t(self.tie_idx),
            }
            if self.fmt.negation == "twos":
                n = self.fmt.n_codes
                c = np.arange(n)
                d["twos"] = t(np.where(c < n >> 1, c, (-(c - (n >> 1))) & (n - 1)).astype(np.int32))
            if self.fmt.kind == "residual":
                d["rmap"] = t(self.rmap.reshape(-1))
            self._dev[key] = d
        return d


@lru_cache(maxsize=None)
def _tables_by_name(name: str) -> _Tables:
    return _Tables(F.get(name))


def _tables(fmt: F.Format) -> _Tables:
    if F.get(fmt.name) is fmt:
        return _tables_by_name(fmt.name)
    return _Tables(fmt)  # an unregistered variant (studies): not cached


def _fold(x: torch.Tensor, granularity: str, block: int) -> tuple[torch.Tensor, tuple]:
    """View x as (groups, group_size) (block: zero-padded), so one scale per row."""
    if granularity == "tensor":
        return x.reshape(1, -1), ()
    if granularity == "channel":
        return x.reshape(x.shape[0], -1), (x.shape[0],)
    n = x.shape[-1]
    nb = -(-n // block)
    pad = nb * block - n
    y = x.reshape(-1, n)
    if pad:
        y = torch.nn.functional.pad(y, (0, pad))
    return y.reshape(-1, block), x.shape[:-1] + (nb,)


def _unfold(y: torch.Tensor, shape: tuple, granularity: str, block: int) -> torch.Tensor:
    """Inverse of _fold (drops the block padding)."""
    if granularity not in BLOCK_GRANULARITIES:
        return y.reshape(shape)
    rows = math.prod(shape[:-1])
    return y.reshape(rows, -1)[:, : shape[-1]].reshape(shape)


def _raise_nonfinite(x: torch.Tensor):
    bad = (~torch.isfinite(x)).reshape(-1)
    nn_ = int(torch.isnan(x).sum())
    raise QuantError(f"x contains {int(bad.sum())} non-finite value(s) ({nn_} NaN; first at flat index "
                     f"{int(torch.nonzero(bad)[0, 0])}); scaled quantization needs finite input "
                     "(fake_quant(nonfinite='propagate') passes NaN/Inf through)")


def _as_float32(t, what="x") -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        if isinstance(t, np.ndarray) and t.dtype == np.float32:
            t = torch.from_numpy(t)
        else:
            raise QuantError(f"{what} must be a torch.Tensor (float32, float16 or bfloat16), got {type(t).__name__}")
    if t.dtype == torch.float32:
        return t
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.float()  # every float16/bfloat16 value is exact in float32
    if t.dtype == torch.float64:
        f = t.float()
        bad = ~((f.double() == t) | (torch.isnan(t) & torch.isnan(f)))
        if bool(bad.any()):
            first = int(torch.nonzero(bad.reshape(-1))[0, 0])
            raise QuantError(
                f"{what}: {int(bad.sum())} of {t.numel()} float64 values are not exactly representable in "
                f"float32 (first at flat index {first}); rf8sim refuses to round twice - convert with "
                ".float() if that is what you want")
        return f
    raise QuantError(f"{what} has dtype {t.dtype}; give float32 (float16/bfloat16 convert exactly; "
                     "float64 only when every value is exact in float32)")
