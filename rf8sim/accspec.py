"""Fixed-point accumulator specification shared by the golden model, the RTL and torch.

Semantics (normative, see docs/formats.md "Accumulation"):

* The exact product of two codes is ``(-1)**s * sig * 2**exp`` with
  ``sig = sig_a * sig_w`` and ``exp = exp_a + exp_w`` (plus any scale exponents).
* It is brought to ``frac_bits`` fraction bits by rounding toward -inf, i.e. the
  arithmetic right shift of its two's complement value:
  ``aligned = floor(value * 2**frac_bits)``.
* The aligned products of one beat (``lanes`` of them) are summed exactly, then
  added to the accumulator; the result saturates to
  ``[-2**(width-1), 2**(width-1) - 1]`` and a saturation sets the sticky overflow flag.
* A NaN or Inf operand contributes 0 and sets the sticky invalid flag.
* A beat with ``clear`` starts a new accumulation: the accumulator and both flags
  restart from zero before that beat's products are added.
* ``group=G`` (``FRAC:WIDTH:gG``; the PE array's order, rows = G): in ``gemm`` the aligned
  products of G consecutive k (from k = 0; the last group may be shorter) are summed exactly
  and each group sum is one saturating add.  ``group=1`` (the default) is k order.

Two floating-point accumulators (W8A16 contract; normative text in docs/formats.md,
"Accumulation: fp32" and "Accumulation: aligned:K:M") share the class, told apart by
``kind``: ``AccSpec.fp32()`` (an IEEE binary32 accumulator fed with exact products) and
``AccSpec.aligned(K, M)`` (blocks of K activations aligned to their largest exponent as
signed M-bit integers, summed exactly, each block sum added to a binary32 accumulator).
For those two, ``frac_bits`` and ``width`` are None; fixed-point consumers must check
``acc.kind == "fixed"`` (or ``acc.is_fixed``).
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

import re
from dataclasses import dataclass

from . import formats as _formats

__all__ = ["AccSpec", "AccSpecError", "MAX_WIDTH", "MAX_FRAC_BITS", "ACC_KINDS", "MAX_BLOCK",
           "ALIGN_BITS_RANGE", "W16_FORMATS"]

#: Widest accumulator the golden model handles (two 64-bit limbs, one bit of headroom).
MAX_WIDTH = 127
#: Largest supported number of fraction bits.
MAX_FRAC_BITS = 96
#: Accumulator kinds: two's complement fixed point, IEEE binary32, pre-aligned blocks into binary32.
ACC_KINDS = ("fixed", "fp32", "aligned")
#: Largest block length K of ``aligned:K:M``.
MAX_BLOCK = 4096
#: Valid M (bits of each aligned signed activation integer, sign included) of ``aligned:K:M``.
ALIGN_BITS_RANGE = (2, 24)
#: 16-bit formats allowed as weights of the fp32 / aligned accumulators (the dequantized-weight baseline).
W16_FORMATS = ("bf16",)


class AccSpecError(RF8SimError, ValueError):
    """An accumulator specification that rf8sim cannot honour exactly."""


@dataclass(frozen=True)
class AccSpec:
    """An accumulator: ``kind="fixed"`` (default) is a two's complement fixed-point register of
    ``width`` bits, ``frac_bits`` of them fractional; ``kind="fp32"`` and ``kind="aligned"``
    (with ``block`` = K and ``align_bits`` = M) are the floating-point accumulators, built with
    :meth:`fp32` and :meth:`aligned`."""

    frac_bits: int | None
    width: int | None
    kind: str = "fixed"
    block: int | None = None
    align_bits: int | None = None
    group: int = 1

    def __post_init__(self):
        g = _as_int("AccSpec.group", self.group)
        object.__setattr__(self, "group", g)
        if not 1 <= g <= MAX_BLOCK:
            raise AccSpecError(f"AccSpec.group must be in 1..{MAX_BLOCK} (products summed exactly before each "
                               f"saturating add), got {g}")
        if g != 1 and self.kind != "fixed":
            raise AccSpecError(f"AccSpec.group is a fixed-point option (FRAC:WIDTH:gG); a {self.kind} "
                               "accumulator takes none")
        if self.kind not in ACC_KINDS:
            raise AccSpecError(f"AccSpec.kind must be one of {', '.join(ACC_KINDS)}, got {self.kind!r}")
        if self.kind != "fixed":
            if self.frac_bits is not None or self.width is not None:
                raise AccSpecError(f"a {self.kind} accumulator has no frac_bits/width (give None); "
                                   f"use AccSpec.fp32() or AccSpec.aligned(K, M)")
            if self.kind == "fp32":
                if self.block is not None or self.align_bits is not None:
                    raise AccSpecError("AccSpec.fp32() takes no block/align_bits")
                return
            k = _as_int("AccSpec.block (K)", self.block)
            m = _as_int("AccSpec.align_bits (M)", self.align_bits)
            object.__setattr__(self, "block", k)
            object.__setattr__(self, "align_bits", m)
            if not 1 <= k <= MAX_BLOCK:
                raise AccSpecError(f"aligned:K:M needs 1 <= K <= {MAX_BLOCK} (terms per block), got K={k}")
            lo, hi = ALIGN_BITS_RANGE
            if not lo <= m <= hi:
                raise AccSpecError(f"aligned:K:M needs {lo} <= M <= {hi} (bits of each aligned signed "
                                   f"activation, sign included), got M={m}")
            return
        if self.block is not None or self.align_bits is not None:
            raise AccSpecError("a fixed-point AccSpec takes no block/align_bits")
        for name in ("frac_bits", "width"):
            object.__setattr__(self, name, _as_int(f"AccSpec.{name}", getattr(self, name)))
        if not 2 <= self.width <= MAX_WIDTH:
            raise AccSpecError(f"AccSpec.width must be in 2..{MAX_WIDTH}, got {self.width}")
        if not 0 <= self.frac_bits <= MAX_FRAC_BITS:
            raise AccSpecError(f"AccSpec.frac_bits must be in 0..{MAX_FRAC_BITS}, got {self.frac_bits}")

    @classmethod
    def fp32(cls) -> "AccSpec":
        """IEEE binary32 accumulator fed with exact products (CLI ``fp32``)."""
        return cls(None, None, "fp32")

    @classmethod
    def aligned(cls, block: int, align_bits: int) -> "AccSpec":
        """Pre-aligned block accumulator ``aligned:K:M`` (K = ``block``, M = ``align_bits``)."""
        return cls(None, None, "aligned", block, align_bits)

    @property
    def is_fixed(self) -> bool:
        return self.kind == "fixed"

    def _need_fixed(self, what: str):
        if self.kind != "fixed":
            raise AccSpecError(f"{what} is defined for fixed-point accumulators only, not {self}")

    def block_width(self, w_fmt, max_terms: int | None = None) -> int:
        """``aligned:K:M``: bits of the fixed-point block register (sign included) that hold the
        exact sum of K products ``a_int * (-1)**s_w * sig_w * 2**(exp_w - exp_w_min)`` for weights
        of ``w_fmt`` without overflow: ``bitlen(K * (2**(M-1) - 1) * max_w(sig_w * 2**(exp_w -
        exp_w_min))) + 1``."""
        if self.kind != "aligned":
            raise AccSpecError(f"block_width is defined for aligned:K:M accumulators only, not {self}")
        w = _formats.get(w_fmt)
        fin = w.finite & (w.sig > 0)
        emin = int(w.exp[fin].min())
        top = max(int(s) << (int(e) - emin) for s, e in zip(w.sig[fin], w.exp[fin]))
        k = self.block if max_terms is None else int(max_terms)
        return (k * ((1 << (self.align_bits - 1)) - 1) * top).bit_length() + 1

    # ------------------------------------------------------------------
    @property
    def min(self) -> int:
        self._need_fixed("AccSpec.min")
        return -(1 << (self.width - 1))

    @property
    def max(self) -> int:
        self._need_fixed("AccSpec.max")
        return (1 << (self.width - 1)) - 1

    @property
    def limbs(self) -> int:
        """64-bit limbs the golden model uses (1 up to 63 bits, else 2)."""
        self._need_fixed("AccSpec.limbs")
        return 1 if self.width <= 63 else 2

    def align(self, sign: int, sig: int, exp: int) -> int:
        """Reference alignment of one exact product (Python integers)."""
        self._need_fixed("AccSpec.align")
        v = -sig if sign else sig
        shift = exp + self.frac_bits
        return v << shift if shift >= 0 else v >> -shift  # >> floors: toward -inf

    def saturate(self, v: int) -> tuple[int, bool]:
        self._need_fixed("AccSpec.saturate")
        if v > self.max:
            return self.max, True
        if v < self.min:
            return self.min, True
        return v, False

    def max_aligned_product(self, a_fmt, w_fmt) -> int:
        """Largest |aligned product| of two finite codes."""
        self._need_fixed("AccSpec.max_aligned_product")
        a, w = _formats.get(a_fmt), _formats.get(w_fmt)
        best = 0
        for sa, ea in _extremes(a):
            for sw, ew in _extremes(w):
                best = max(best, abs(self.align(0, sa * sw, ea + ew)))
        return best

    def holds_one_product(self, a_fmt, w_fmt) -> bool:
        return self.max_aligned_product(a_fmt, w_fmt) <= self.max

    # ------------------------------------------------------------------
    @classmethod
    def exact(cls, a_fmt, w_fmt, max_terms: int = 1024) -> "AccSpec":
        """Smallest spec that sums up to ``max_terms`` products of these formats exactly."""
        if isinstance(max_terms, bool) or not isinstance(max_terms, int) or max_terms < 1:
            raise AccSpecError(f"max_terms must be a positive integer, got {max_terms!r}")
        a, w = _formats.get(a_fmt), _formats.get(w_fmt)
        frac = max(0, -(a.exp_min + w.exp_min))
        probe = cls(frac, MAX_WIDTH) if frac <= MAX_FRAC_BITS else None
        if probe is None:
            raise AccSpecError(f"{a.name} x {w.name} needs {frac} fraction bits (max {MAX_FRAC_BITS})")
        mag = probe.max_aligned_product(a, w) * max_terms
        width = mag.bit_length() + 1
        if width > MAX_WIDTH:
            raise AccSpecError(
                f"an exact accumulator for {max_terms} terms of {a.name} x {w.name} needs {width} bits; "
                f"the golden model supports at most {MAX_WIDTH}")
        return cls(frac, width)

    @classmethod
    def parse(cls, text: str, a_fmt="rf8", w_fmt="rf8") -> "AccSpec":
        """Parse the CLI syntax: ``fp32``, ``aligned:K:M``, ``exact``, ``exact:TERMS`` or ``FRAC:WIDTH``."""
        if isinstance(text, AccSpec):
            return text
        t = str(text).strip().lower()
        if t == "fp32":
            return cls.fp32()
        m = re.fullmatch(r"aligned:(\d+):(\d+)", t)
        if m:
            return cls.aligned(int(m.group(1)), int(m.group(2)))
        m = re.fullmatch(r"exact(?::(\d+))?", t)
        if m:
            return cls.exact(a_fmt, w_fmt, int(m.group(1) or 1024))
        m = re.fullmatch(r"(\d+):(\d+)(?::g(\d+))?", t)
        if m:
            return cls(int(m.group(1)), int(m.group(2)), group=int(m.group(3) or 1))
        raise AccSpecError(f"accumulator spec {text!r} is not one of 'fp32', 'aligned:K:M' "
                           f"(K in 1..{MAX_BLOCK}, M in {ALIGN_BITS_RANGE[0]}..{ALIGN_BITS_RANGE[1]}), "
                           f"'exact', 'exact:TERMS', 'FRAC:WIDTH' or 'FRAC:WIDTH:gG'")

    def __str__(self) -> str:
        if self.kind == "fp32":
            return "fp32"
        if self.kind == "aligned":
            return f"aligned:{self.block}:{self.align_bits}"
        return f"{self.frac_bits}:{self.width}" + (f":g{self.group}" if self.group != 1 else "")

    def ungrouped(self) -> "AccSpec":
        """The same accumulator with ``group=1`` (k order)."""
        return AccSpec(self.frac_bits, self.width) if self.kind == "fixed" else self


def _as_int(what: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        try:
            import numpy as np
            ok = isinstance(v, np.integer)
        except ImportError:  # pragma: no cover
            ok = False
        if not ok:
            raise AccSpecError(f"{what} must be an integer, got {v!r}")
    return int(v)


def _extremes(fmt):
    """(sig, exp) pairs that can give the largest product magnitude (all finite nonzero codes)."""
    import numpy as np

    nz = np.flatnonzero(fmt.finite & (fmt.sig > 0))
    seen = {}
    for c in nz:
        s, e = int(fmt.sig[c]), int(fmt.exp[c])
        v = s << (e - fmt.exp_min) if e >= fmt.exp_min else s
        if v > seen.get("v", -1):
            seen = {"v": v, "p": (s, e)}
    return [seen["p"]]
