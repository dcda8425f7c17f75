"""Power-of-two scales: the granularities, the scale-exponent range and the two scale rules.

Spec objects beside :mod:`rf8sim.formats` (numpy only, no Numba); the golden model
(:func:`rf8sim.golden.quantize`), torch (:mod:`rf8sim.training`) and the studies use them.

A quantized tensor is ``codes`` plus integer scale exponents ``k``, one per group;
the value of an element is ``decode(code) * 2**k``.  Groups (``granularity``):

* ``tensor`` - one ``k`` (shape ``()``);
* ``channel`` - one per index of axis 0 (shape ``(x.shape[0],)``);
* ``ceil`` - one per run of ``block`` contiguous values along the last axis (the last run
  may be shorter; shape ``x.shape[:-1] + (ceil(n / block),)``).  ``block`` is the
  deprecated old name of ``ceil`` and is still accepted;
* ``mx`` - OCP Microscaling v1.0: blocks of exactly :data:`MX_BLOCK` = 32 values along
  the last axis, same shape rule.

Scale rules:

* **ceil** (``tensor``, ``channel``, ``ceil``): ``k`` = the smallest integer with
  ``amax / 2**k <= fmt.max``, i.e. ``ceil(log2(amax / max))`` decided exactly; no element
  ever clips.  ``amax == 0`` gives ``k = 0``.  This is torchao's ``RCEIL``.
* **mx** (OCP MX v1.0 section 6.3): ``k = floor(log2 amax) - floor(log2 max)``
  (``emax_elem``); elements are then rounded with saturation (they may exceed ``max``
  by up to one binade).  An all-zero block gets ``k = -127``; a block holding NaN or
  +-Inf gets the NaN scale :data:`SCALE_NAN` and every element of it decodes to NaN.

``max`` above is ``fmt.scale_target``: the format's largest value, except for posits, whose
scale rules aim at ``useed = 2**(2**es)`` (the top of their most precise region).

Both are clamped to the E8M0 range :data:`SCALE_MIN`..:data:`SCALE_MAX` = -127..127
(``ceil``: a clamp at -127 still satisfies its bound; a clamp at 127 cannot happen for
float32 inputs and formats with ``max >= 2``).  Scale exponents are stored as ``int8``;
:func:`to_e8m0` gives the OCP E8M0 byte ``k + 127`` (0xFF for the NaN scale).

Named block formats (:data:`BLOCK_FORMATS`, issue 21): ``mxfp4`` (E2M1 elements, E8M0 scale per
32), ``mxfp8`` (E4M3, E8M0 per 32) and ``mxint8`` (int8, E8M0 per 32) are rf8sim's ``mx``
granularity of their element format; ``nvfp4`` (E2M1 elements, an E4M3 scale per 16 and a
float32 tensor scale) is not a power-of-two scaling and has its own rule (torchao's
``nvfp4_quantize`` with a per-tensor scale, step for step in float32):

1. ``s_t = float32(amax(|x|)) / 2688`` (2688 = 448 * 6; an all-zero tensor takes ``s_t = 1``);
2. per block of 16: ``b = amax_block / 6``; ``s8 = e4m3(clamp(b / s_t, 2**-6, 448))`` (RNE);
3. elements: ``e2m1(clamp(x * ((1 / s_t) / s8), -6, 6))`` (RNE), every operation a float32 one;
4. dequantized value: ``e2m1_value * (s_t * s8)`` (float32).

Named block formats take only tensors whose last axis is a multiple of the block (no padded
last block) and, for nvfp4, finite values; anything else is a one-line :class:`ScaleError`.

Note for ``int8`` under ``mx``: rf8sim's int8 codes are integers (-128..127), OCP
MXINT8 elements are the same bytes read as ``int * 2**-6``; so rf8sim's ``k`` is the
OCP MXINT8 scale minus 6, and the dequantized values are identical.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import formats as F
from .errors import RF8SimError

__all__ = [
    "GRANULARITIES",
    "BLOCK_GRANULARITIES",
    "GRANULARITY_ALIASES",
    "SCALE_RULES",
    "SCALE_MIN",
    "SCALE_MAX",
    "SCALE_NAN",
    "MX_BLOCK",
    "NV_BLOCK",
    "BlockFormat",
    "BLOCK_FORMATS",
    "block_format",
    "check_block_shape",
    "ScaleError",
    "canonical_granularity",
    "check_block",
    "scale_rule",
    "scale_shape",
    "scale_exponents",
    "to_e8m0",
    "from_e8m0",
]

#: Valid granularities (current names).
GRANULARITIES = ("tensor", "channel", "ceil", "mx")
#: Granularities whose groups are blocks along the last axis.
BLOCK_GRANULARITIES = ("ceil", "mx")
#: Deprecated names still accepted: ``block`` was the ceil rule's old name.
GRANULARITY_ALIASES = {"block": "ceil"}
#: The two scale rules (see the module docstring).
SCALE_RULES = ("ceil", "mx")
#: E8M0 range of a scale exponent, and the int8 value of the NaN scale (E8M0 byte 0xFF).
SCALE_MIN, SCALE_MAX, SCALE_NAN = -127, 127, -128
#: OCP MX block size.
MX_BLOCK = 32


#: NVFP4: block size, the E4M3 block-scale clamp and the tensor-scale divisor (E4M3 max * E2M1 max).
NV_BLOCK = 16
NV_SCALE_MIN, NV_SCALE_MAX = 2.0 ** -6, 448.0
NV_TENSOR_DIV = 448.0 * 6.0


class ScaleError(RF8SimError, ValueError):
    """An unknown granularity, a bad block size or scale exponents a tensor cannot use."""


class BlockFormat(NamedTuple):
    """A named block format: element format, block length, scale type and bits per weight."""

    name: str
    element: str
    block: int
    scale: str  # "e8m0" (OCP MX: power of two per block) or "e4m3+fp32" (NVFP4)
    scale_bits: int  # per block
    description: str

    @property
    def granularity(self) -> str:
        return "mx" if self.scale == "e8m0" else "nv"

    def bits_per_weight(self, n: int | None = None) -> float:
        """Element bits + block scale bits / block (+ 32 / n for the NVFP4 tensor scale of n values)."""
        extra = 32.0 / n if (self.scale == "e4m3+fp32" and n) else 0.0
        return F.get(self.element).code_bits + self.scale_bits / self.block + extra


#: name -> BlockFormat: the block formats available by name (see the module docstring).
BLOCK_FORMATS: dict = {
    "mxfp4": BlockFormat("mxfp4", "e2m1", MX_BLOCK, "e8m0", 8, "OCP MXFP4: E2M1 elements, E8M0 scale per 32"),
    "mxfp8": BlockFormat("mxfp8", "e4m3", MX_BLOCK, "e8m0", 8, "OCP MXFP8 (E4M3): E4M3 elements, E8M0 scale per 32"),
    "mxint8": BlockFormat("mxint8", "int8", MX_BLOCK, "e8m0", 8, "OCP MXINT8: int8 elements, E8M0 scale per 32"),
    "nvfp4": BlockFormat("nvfp4", "e2m1", NV_BLOCK, "e4m3+fp32", 8,
                         "NVFP4: E2M1 elements, E4M3 scale per 16, float32 tensor scale"),
}


for _bf in BLOCK_FORMATS.values():
    F.register_block_format(_bf)


def block_format(name) -> BlockFormat | None:
    """The :class:`BlockFormat` called ``name`` (case-insensitive), or None if it is not one."""
    return BLOCK_FORMATS.get(name.strip().lower()) if isinstance(name, str) else None


def check_block_shape(bf: BlockFormat, shape) -> None:
    """A tensor of ``shape`` fits ``bf``: at least one axis, the last a multiple of the block."""
    shape = tuple(int(s) for s in shape)
    if not shape or shape[-1] % bf.block:
        raise ScaleError(f"{bf.name} cuts the last axis into blocks of {bf.block}; shape {shape} "
                         f"{'has no axis' if not shape else f'has a last axis of {shape[-1]}'}, not a multiple of "
                         f"{bf.block} (pad it)")


def canonical_granularity(granularity) -> str:
    """The current name of ``granularity`` (``block`` -> ``ceil``); ScaleError if unknown."""
    g = GRANULARITY_ALIASES.get(granularity, granularity) if isinstance(granularity, str) else granularity
    if g not in GRANULARITIES:
        raise ScaleError(f"unknown granularity {granularity!r}; valid: {', '.join(GRANULARITIES)} "
                         f"('block' is accepted as the old name of 'ceil')")
    return g


def scale_rule(granularity) -> str:
    """``mx`` for the mx granularity, ``ceil`` for all others."""
    return "mx" if canonical_granularity(granularity) == "mx" else "ceil"


def check_block(granularity, block) -> int:
    """Validate ``block`` for ``granularity``; returns it as an int (``mx``: must be 32)."""
    g = canonical_granularity(granularity)
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise ScaleError(f"block must be a positive integer, got {block!r}")
    if g == "mx" and int(block) != MX_BLOCK:
        raise ScaleError(f"granularity 'mx' uses OCP MX blocks of {MX_BLOCK} values, got block={block}")
    return int(block)


def scale_shape(shape, granularity: str = "tensor", block: int = 32) -> tuple:
    """Shape of the scale exponents for codes/values of ``shape``."""
    g = canonical_granularity(granularity)
    shape = tuple(int(s) for s in shape)
    if g == "tensor":
        return ()
    if len(shape) < 1:
        raise ScaleError(f"granularity {granularity!r} needs an array with at least one axis")
    if g == "channel":
        return (shape[0],)
    b = check_block(g, block)
    return shape[:-1] + (-(-shape[-1] // b),)


def _ceil_exponents(am: np.ndarray, fmax: float) -> np.ndarray:
    _, ea = np.frexp(am)
    _, em = math.frexp(fmax)
    k = (ea.astype(np.int64) - em) - 1
    for _ in range(3):  # candidates ea-em-1, ea-em, ea-em+1: the first that fits
        k = np.where(am <= np.ldexp(fmax, k), k, k + 1)
    for _ in range(2):  # k may have overshot when an earlier candidate already fit
        km = k - 1
        k = np.where(am <= np.ldexp(fmax, km), km, k)
    return np.where(am == 0, 0, k)


def scale_exponents(amax, fmt, rule: str = "ceil") -> np.ndarray:
    """The scale exponent of each group maximum ``amax`` (>= 0; float32 or float64), as int8.

    ``ceil``: smallest integer k with ``amax / 2**k <= fmt.max`` (0 where amax == 0), decided
    by exact float64 comparisons ``amax <= ldexp(max, k)``; non-finite amax is a ScaleError.
    ``mx``: ``floor(log2 amax) - floor(log2 fmt.max)``, -127 for amax == 0, SCALE_NAN for a
    NaN/Inf amax.  Both clamped to SCALE_MIN..SCALE_MAX.
    """
    fmt = F.get(fmt)
    if rule not in SCALE_RULES:
        raise ScaleError(f"unknown scale rule {rule!r}; valid: {', '.join(SCALE_RULES)}")
    am = np.asarray(amax, np.float64)
    if np.any(am < 0):
        raise ScaleError("amax must be >= 0 (a group's largest magnitude)")
    fin = np.isfinite(am)
    if rule == "ceil":
        if not fin.all():
            raise ScaleError(f"{int((~fin).sum())} non-finite amax value(s); the ceil rule needs finite values")
        k = _ceil_exponents(am, fmt.scale_target)
        return np.clip(k, SCALE_MIN, SCALE_MAX).astype(np.int8)
    _, ea = np.frexp(np.where(fin, am, 0.0))  # am = f * 2**ea, 0.5 <= f < 1: floor(log2 am) = ea - 1
    emax_elem = math.frexp(fmt.scale_target)[1] - 1
    k = np.clip(ea.astype(np.int64) - 1 - emax_elem, SCALE_MIN, SCALE_MAX)
    k = np.where(am == 0, SCALE_MIN, k)
    k = np.where(fin, k, SCALE_NAN)
    return k.astype(np.int8)


def to_e8m0(scale_exp) -> np.ndarray:
    """OCP E8M0 bytes (uint8 ``k + 127``; SCALE_NAN -> 0xFF) of int8 scale exponents."""
    k = np.asarray(scale_exp)
    if k.dtype.kind not in "iu":
        raise ScaleError(f"scale exponents must be integers, got dtype {k.dtype}")
    k = k.astype(np.int64)
    bad = (k != SCALE_NAN) & ((k < SCALE_MIN) | (k > SCALE_MAX))
    if bad.any():
        raise ScaleError(f"{int(bad.sum())} scale exponent(s) outside the E8M0 range {SCALE_MIN}..{SCALE_MAX}")
    return np.where(k == SCALE_NAN, 0xFF, k + 127).astype(np.uint8)


def from_e8m0(scale_bytes) -> np.ndarray:
    """Inverse of :func:`to_e8m0`: int8 scale exponents (0xFF -> SCALE_NAN)."""
    b = np.asarray(scale_bytes)
    if b.dtype != np.uint8:
        raise ScaleError(f"E8M0 scales must be uint8 bytes, got dtype {b.dtype}")
    k = b.astype(np.int64)
    return np.where(k == 0xFF, SCALE_NAN, k - 127).astype(np.int8)
