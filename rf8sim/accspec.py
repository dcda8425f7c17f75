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
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

import re
from dataclasses import dataclass

from . import formats as _formats

__all__ = ["AccSpec", "AccSpecError", "MAX_WIDTH", "MAX_FRAC_BITS"]

#: Widest accumulator the golden model handles (two 64-bit limbs, one bit of headroom).
MAX_WIDTH = 127
#: Largest supported number of fraction bits.
MAX_FRAC_BITS = 96


class AccSpecError(RF8SimError, ValueError):
    """An accumulator specification that rf8sim cannot honour exactly."""


@dataclass(frozen=True)
class AccSpec:
    """A two's complement fixed-point accumulator of ``width`` bits, ``frac_bits`` of them fractional."""

    frac_bits: int
    width: int

    def __post_init__(self):
        for name in ("frac_bits", "width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                try:
                    import numpy as np
                    ok = isinstance(v, np.integer)
                except ImportError:  # pragma: no cover
                    ok = False
                if not ok:
                    raise AccSpecError(f"AccSpec.{name} must be an integer, got {v!r}")
                object.__setattr__(self, name, int(v))
        if not 2 <= self.width <= MAX_WIDTH:
            raise AccSpecError(f"AccSpec.width must be in 2..{MAX_WIDTH}, got {self.width}")
        if not 0 <= self.frac_bits <= MAX_FRAC_BITS:
            raise AccSpecError(f"AccSpec.frac_bits must be in 0..{MAX_FRAC_BITS}, got {self.frac_bits}")

    # ------------------------------------------------------------------
    @property
    def min(self) -> int:
        return -(1 << (self.width - 1))

    @property
    def max(self) -> int:
        return (1 << (self.width - 1)) - 1

    @property
    def limbs(self) -> int:
        """64-bit limbs the golden model uses (1 up to 63 bits, else 2)."""
        return 1 if self.width <= 63 else 2

    def align(self, sign: int, sig: int, exp: int) -> int:
        """Reference alignment of one exact product (Python integers)."""
        v = -sig if sign else sig
        shift = exp + self.frac_bits
        return v << shift if shift >= 0 else v >> -shift  # >> floors: toward -inf

    def saturate(self, v: int) -> tuple[int, bool]:
        if v > self.max:
            return self.max, True
        if v < self.min:
            return self.min, True
        return v, False

    def max_aligned_product(self, a_fmt, w_fmt) -> int:
        """Largest |aligned product| of two finite codes."""
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
        """Parse ``exact``, ``exact:TERMS`` or ``FRAC:WIDTH`` (the CLI syntax)."""
        t = str(text).strip().lower()
        m = re.fullmatch(r"exact(?::(\d+))?", t)
        if m:
            return cls.exact(a_fmt, w_fmt, int(m.group(1) or 1024))
        m = re.fullmatch(r"(\d+):(\d+)", t)
        if m:
            return cls(int(m.group(1)), int(m.group(2)))
        raise AccSpecError(f"accumulator spec {text!r} is not 'exact', 'exact:TERMS' or 'FRAC:WIDTH'")

    def __str__(self) -> str:
        return f"{self.frac_bits}:{self.width}"


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
