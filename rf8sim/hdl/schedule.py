"""GEMM scheduler for the weight-stationary PE array (pure Python / numpy, no HDL imports).

``C[m, n] = sum_k a[m, k] * w[n, k]`` (nn.Linear layout) on an R x C array with ``depth``
accumulator entries per column:

* **Tiling**: N in tiles of C columns (``N % C == 0``), K in tiles of R rows
  (``K % R == 0``; aligned: R divides the block, the block divides K), M in chunks of up to
  ``depth`` activation vectors (one accumulator entry each; the last chunk may be shorter).
* **Loop order** (outer to inner): N tile, M chunk, K tile.  Each (N tile, M chunk, K tile)
  is one weight tile: its R x C weights are loaded, then the chunk's activation vectors stream
  through, one per clock.  A chunk's outputs leave the array after its last K tile.
* **Weight reloads** are double buffered: tile j+1's R load clocks start once tile j's swap
  has passed every PE (``R + C - 1`` clocks after tile j's first vector), and tile j+1 may
  start ``R - 1`` clocks after its load began.  A chunk shorter than ``2R + C - 2`` vectors
  therefore leaves idle clocks (counted as ``stall_cycles``).
* **Skew / deskew**: the array skews row r by r clocks itself (the streams are unskewed
  vectors); column c's outputs appear c clocks after column 0's, and :attr:`Schedule.out_m` /
  :attr:`Schedule.out_n` give, per column, the output each emitted value belongs to (the deskew).

:func:`plan` gives the timing from the shape alone; :func:`streams` the per-cycle operand
streams for given codes (what the array's input ports see each clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import RF8SimError

__all__ = ["ScheduleError", "Schedule", "plan", "streams", "block_emax"]


class ScheduleError(RF8SimError, ValueError):
    """A GEMM shape or stream that the array cannot run, with what is valid."""


@dataclass
class Schedule:
    """Timing of one GEMM on the array (from :func:`plan`)."""

    M: int
    K: int
    N: int
    rows: int
    cols: int
    depth: int
    block: int | None            # aligned:K:M block length, or None (fixed point)
    latency: int                 # array latency (clocks from in_a to column 0's output)
    tile_start: np.ndarray       # per weight tile: first clock of its activation vectors
    load_start: np.ndarray       # per weight tile: first of its R weight-load clocks
    tile_rows: np.ndarray        # activation vectors per tile
    tile_idx: np.ndarray         # (tiles, 3): N tile, M chunk, K tile
    cycles: int                  # clocks until the last output has left the array
    out_m: np.ndarray = field(repr=False, default=None)   # (C, M*N/C): output row per emitted value
    out_n: np.ndarray = field(repr=False, default=None)

    @property
    def tiles(self) -> int:
        return len(self.tile_start)

    @property
    def weight_loads(self) -> int:
        return self.tiles

    @property
    def macs(self) -> int:
        return self.M * self.K * self.N

    @property
    def busy_cycles(self) -> int:
        return int(self.tile_rows.sum())

    @property
    def stall_cycles(self) -> int:
        """Clocks between tiles with no activation vector (weight loads not hidden)."""
        last = self.tile_start[-1] + self.tile_rows[-1]
        return int(last - self.tile_start[0] - self.busy_cycles)

    @property
    def utilization(self) -> float:
        """MACs / (R * C * cycles): the fraction of PE-clocks doing useful work."""
        return self.macs / (self.rows * self.cols * self.cycles)

    def summary(self) -> dict:
        return {"M": self.M, "K": self.K, "N": self.N, "rows": self.rows, "cols": self.cols, "depth": self.depth,
                "tiles": self.tiles, "weight_loads": self.weight_loads, "cycles": self.cycles,
                "busy_cycles": self.busy_cycles, "stall_cycles": self.stall_cycles,
                "fill_drain_cycles": int(self.cycles - self.busy_cycles - self.stall_cycles),
                "utilization": self.utilization, "macs": self.macs}


def _pos(what: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ScheduleError(f"{what} must be a positive integer, got {v!r}")
    return int(v)


def plan(M: int, K: int, N: int, rows: int, cols: int, depth: int, block: int | None = None,
         latency: int | None = None) -> Schedule:
    """Tile ``M x K x N`` onto the array; ScheduleError naming the valid shapes if it does not tile."""
    M, K, N = _pos("M", M), _pos("K", K), _pos("N", N)
    R, C, D = _pos("rows", rows), _pos("cols", cols), _pos("depth", depth)
    if K % R:
        raise ScheduleError(f"GEMM K = {K} does not tile on {R} rows: K must be a multiple of R = {R}")
    if N % C:
        raise ScheduleError(f"GEMM N = {N} does not tile on {C} columns: N must be a multiple of C = {C}")
    if block is not None:
        if block % R:
            raise ScheduleError(f"block K = {block} must be a multiple of rows R = {R}")
        if K % block:
            raise ScheduleError(f"GEMM K = {K} is not a multiple of the alignment block {block}")
    lat = R + 2 if latency is None else int(latency)
    NT, KT, MC = N // C, K // R, -(-M // D)
    nt, mc, kt = np.meshgrid(np.arange(NT), np.arange(MC), np.arange(KT), indexing="ij")
    idx = np.stack([nt.ravel(), mc.ravel(), kt.ravel()], axis=1)
    rows_t = np.minimum(D, M - idx[:, 1] * D)
    n = len(idx)
    T = np.empty(n, np.int64)
    L = np.empty(n, np.int64)
    L[0], T[0] = 0, R - 1
    gap = R + C - 1
    for j in range(1, n):   # the recurrence of the module docstring
        L[j] = T[j - 1] + gap
        T[j] = max(L[j] + R - 1, T[j - 1] + rows_t[j - 1])
    # the last output (column C-1) is registered by edge T + rows - 1 + lat + C - 1: that many clocks
    cycles = int(T[-1] + rows_t[-1] + lat + C - 2)
    s = Schedule(M, K, N, R, C, D, block, lat, T, L, rows_t, idx, cycles)
    # deskew: per column, emitted values in order (N tile, M chunk, row within chunk)
    m_of = np.arange(M)
    s.out_m = np.tile(m_of, NT)[None, :].repeat(C, axis=0)
    s.out_n = (np.repeat(np.arange(NT) * C, M)[None, :] + np.arange(C)[:, None])
    return s


def block_emax(a_codes: np.ndarray, exp_bits: int, man_bits: int, block: int) -> np.ndarray:
    """Per row and alignment block: the largest biased exponent field of the activations (zeros and
    subnormals count as 1) - the ``in_emax`` the activation buffer supplies with each vector."""
    a = np.asarray(a_codes).astype(np.int64)
    E = (a >> man_bits) & ((1 << exp_bits) - 1)
    E = np.maximum(E, 1)
    M, K = a.shape
    return E.reshape(M, K // block, block).max(axis=2)


def streams(s: Schedule, a_codes: np.ndarray, w_codes: np.ndarray, emax: np.ndarray | None = None) -> dict:
    """Per-clock input port values for ``s`` (arrays of length ``s.cycles``): ``valid``, ``swap``,
    ``clear``, ``last``, ``addr``, ``bfirst``, ``blast``, ``emax``, ``a`` (cycles, R), ``wload``,
    ``w`` (cycles, C).  ``emax`` (M, K/block) is needed for aligned schedules."""
    a = np.asarray(a_codes)
    w = np.asarray(w_codes)
    if a.shape != (s.M, s.K) or w.shape != (s.N, s.K):
        raise ScheduleError(f"operands {a.shape} and {w.shape} do not match the schedule's a ({s.M}, {s.K}) "
                            f"and w ({s.N}, {s.K})")
    R, C, D, n = s.rows, s.cols, s.depth, s.cycles
    out = {k: np.zeros(n, np.uint8) for k in ("valid", "swap", "clear", "last", "bfirst", "blast", "wload")}
    out["addr"] = np.zeros(n, np.uint16)
    out["emax"] = np.zeros(n, np.uint8)
    out["a"] = np.zeros((n, R), a.dtype)
    out["w"] = np.zeros((n, C), w.dtype)
    KT = s.K // R
    blk = s.block
    if blk is not None and emax is None:
        raise ScheduleError("an aligned schedule needs the block exponents (emax)")
    for j in range(s.tiles):
        nt, mc, kt = (int(x) for x in s.tile_idx[j])
        T, L, rws = int(s.tile_start[j]), int(s.load_start[j]), int(s.tile_rows[j])
        m0 = mc * D
        sl = slice(T, T + rws)
        out["valid"][sl] = 1
        out["swap"][T] = 1
        out["addr"][sl] = np.arange(rws)
        out["a"][sl] = a[m0:m0 + rws, kt * R:(kt + 1) * R]
        if blk is None:
            out["clear"][sl] = kt == 0
        else:
            b = kt * R // blk
            out["clear"][sl] = b == 0
            out["bfirst"][sl] = (kt * R) % blk == 0
            out["blast"][sl] = ((kt + 1) * R) % blk == 0
            out["emax"][sl] = emax[m0:m0 + rws, b]
        out["last"][sl] = kt == KT - 1
        out["wload"][L:L + R] = 1
        # load clock i shifts in row R-1-i of the tile
        tile_w = w[nt * C:(nt + 1) * C, kt * R:(kt + 1) * R]      # (C, R)
        out["w"][L:L + R] = tile_w.T[::-1]
    return out
