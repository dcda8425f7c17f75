"""The normative definition of every 8-bit format in rf8sim.

This module is the single source of truth: biases, field widths, value tables,
special codes and the exact (sign, integer significand, exponent) decomposition
that the golden model, the RTL generator and the torch emulation all derive
their arithmetic from.  Nothing else in the package hard-codes a format constant.

A :class:`Format` is immutable.  Every finite value of every format is exact in
float32, so ``values`` (float64) and ``values.astype(float32)`` hold the same
numbers.

Value of a finite code ``c``::

    value(c) == (-1)**sign[c] * sig[c] * 2.0**exp[c]

with ``sig`` a non-negative integer.  Products of two codes are therefore exact
integers times a power of two, which is what the fixed-point accumulator of
:mod:`rf8sim.golden` and the RTL consume.
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable

import numpy as np

__all__ = [
    "Format",
    "FormatError",
    "SPECIAL_FINITE",
    "SPECIAL_NAN",
    "SPECIAL_INF",
    "ROUNDINGS",
    "RF8_RESIDUALS",
    "get",
    "names",
    "register",
    "residual_format",
    "values",
    "RF8",
    "E4M3",
    "E5M2",
    "INT8",
]

SPECIAL_FINITE = 0
SPECIAL_NAN = 1
SPECIAL_INF = 2

#: Rounding modes understood by ``encode``.  ``paper`` and ``truncate`` exist
#: only for residual (RF8-like) formats; the others are round-to-nearest.
ROUNDINGS = ("nearest", "paper", "truncate")


class FormatError(RF8SimError, ValueError):
    """An unknown format or an operation a format does not support."""


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Format:
    """One 8-bit format, completely described by data.

    Attributes
    ----------
    name : registry name (``rf8``, ``e4m3``, ``e5m2``, ``int8`` ...).
    kind : ``"residual"`` (RF8 family), ``"float"`` (OCP FP8) or ``"int"``.
    exp_bits, man_bits : widths of the exponent field and of the field below it
        (the mantissa for floats, the residual selector ``R`` for RF8; 7 for int8).
    bias : exponent bias (RF8: leading exponent ``e = E - bias``).
    values : the 256 code values as float64 (NaN/Inf where the code is special).
    sign, sig, exp : exact decomposition of each finite code
        (``value = (-1)**sign * sig * 2**exp``; zero has ``sig == 0``).
    special : per code, ``SPECIAL_FINITE``, ``SPECIAL_NAN`` or ``SPECIAL_INF``.
    canonical : per code, the canonical code of its value (smallest code that
        decodes to the same value, signed zeros distinct; NaN codes map to
        ``nan_code``).
    magnitudes : ascending distinct finite magnitudes, zero included; the
        tie-breaking rule of ``nearest`` uses the parity of an index into it.
    max, min_positive : largest finite value and smallest positive value.
    nan_code : the code ``encode`` writes for NaN (None if the format has none).
    inf_code : the code of +Inf (None if none; -Inf is ``inf_code | 0x80``).
    residuals : RF8 family only: for ``R`` = 0..7 the residual term as
        ``(t, d)`` meaning multiplier ``1 + t * 2**-d`` (``t = 0``: no term).
    roundings : rounding modes ``encode`` accepts for this format.
    """

    name: str
    kind: str
    exp_bits: int
    man_bits: int
    bias: int
    values: np.ndarray = field(repr=False)
    sign: np.ndarray = field(repr=False)
    sig: np.ndarray = field(repr=False)
    exp: np.ndarray = field(repr=False)
    special: np.ndarray = field(repr=False)
    canonical: np.ndarray = field(repr=False)
    magnitudes: np.ndarray = field(repr=False)
    max: float
    min_positive: float
    nan_code: int | None
    inf_code: int | None
    residuals: tuple = ()
    roundings: tuple = ("nearest",)
    description: str = ""

    # ---- derived facts -------------------------------------------------
    @property
    def is_canonical(self) -> np.ndarray:
        """Boolean mask of the codes that ``encode`` can return."""
        return self.canonical == np.arange(256, dtype=np.uint8)

    @property
    def finite(self) -> np.ndarray:
        return self.special == SPECIAL_FINITE

    @property
    def nan_codes(self) -> tuple[int, ...]:
        return tuple(int(c) for c in np.flatnonzero(self.special == SPECIAL_NAN))

    @property
    def inf_codes(self) -> tuple[int, ...]:
        return tuple(int(c) for c in np.flatnonzero(self.special == SPECIAL_INF))

    @property
    def sig_bits(self) -> int:
        """Width of the largest integer significand."""
        return int(self.sig[self.finite].max()).bit_length()

    @property
    def exp_min(self) -> int:
        """Exponent of the least significant bit of the smallest nonzero term."""
        nz = self.finite & (self.sig > 0)
        return int(self.exp[nz].min())

    @property
    def exp_max(self) -> int:
        nz = self.finite & (self.sig > 0)
        return int(self.exp[nz].max())

    def exact_value(self, code: int) -> Fraction:
        """The exact value of a finite code as a Fraction (raises for NaN/Inf)."""
        code = int(code)
        if not 0 <= code <= 255:
            raise FormatError(f"code {code} is not in 0..255")
        if self.special[code] != SPECIAL_FINITE:
            raise FormatError(f"{self.name} code 0x{code:02X} is not finite")
        v = Fraction(int(self.sig[code])) * Fraction(2) ** int(self.exp[code])
        return -v if self.sign[code] else v

    def fields(self) -> str:
        if self.kind == "residual":
            return f"s{'e' * self.exp_bits}{'r' * self.man_bits}"
        if self.kind == "float":
            return f"s{'e' * self.exp_bits}{'m' * self.man_bits}"
        return "two's complement"

    def summary(self) -> dict:
        """Key numbers, as printed by ``rf8sim formats`` and tabulated in docs."""
        canon = self.is_canonical
        finite = self.finite
        distinct = len({float(v) for v in self.values[finite]})  # -0 == +0
        return {
            "name": self.name,
            "fields": self.fields(),
            "bias": self.bias,
            "max": self.max,
            "min_positive": self.min_positive,
            "distinct_values": distinct,
            "distinct_magnitudes": len(self.magnitudes),
            "canonical_codes": int(canon.sum()),
            "duplicate_codes": int((~canon & finite).sum()),
            "nan_codes": len(self.nan_codes),
            "inf_codes": len(self.inf_codes),
        }

    def __repr__(self) -> str:
        return f"Format({self.name!r})"

    def __reduce__(self):  # pickle by name: formats are registry singletons
        return (get, (self.name,))


# ---------------------------------------------------------------------------
# construction helpers


def _finish(name, kind, exp_bits, man_bits, bias, sign, sig, exp, special, *,
            nan_code, inf_code, residuals=(), roundings=("nearest",), description=""):
    sign = np.asarray(sign, np.uint8)
    sig = np.asarray(sig, np.int64)
    exp = np.asarray(exp, np.int64)
    special = np.asarray(special, np.uint8)
    vals = np.empty(256, np.float64)
    for c in range(256):
        if special[c] == SPECIAL_NAN:
            vals[c] = math.copysign(math.nan, -1.0 if sign[c] else 1.0)
        elif special[c] == SPECIAL_INF:
            vals[c] = -np.inf if sign[c] else np.inf
        else:
            v = math.ldexp(float(sig[c]), int(exp[c]))
            vals[c] = -v if sign[c] else v
    # canonical: smallest code with the same (value, sign-of-zero); NaNs -> nan_code
    canonical = np.empty(256, np.uint8)
    first: dict = {}
    for c in range(256):
        if special[c] == SPECIAL_NAN:
            canonical[c] = nan_code
            continue
        key = (vals[c], bool(sign[c]) if vals[c] == 0 else None)
        canonical[c] = first.setdefault(key, c)
    fin = special == SPECIAL_FINITE
    mags = np.unique(np.abs(vals[fin]))
    assert np.all(np.isfinite(vals[fin]))
    for c in range(256):  # every finite value is exact in float32
        if fin[c]:
            assert float(np.float32(vals[c])) == vals[c], (name, c)
    maxv = float(vals[fin].max())  # int8: 127, not |-128|
    minpos = float(mags[mags > 0][0])
    return Format(
        name=name, kind=kind, exp_bits=exp_bits, man_bits=man_bits, bias=bias,
        values=_readonly(vals), sign=_readonly(sign), sig=_readonly(sig), exp=_readonly(exp),
        special=_readonly(special), canonical=_readonly(canonical), magnitudes=_readonly(mags),
        max=maxv, min_positive=minpos, nan_code=nan_code, inf_code=inf_code,
        residuals=tuple(residuals), roundings=tuple(roundings), description=description,
    )


#: RF8 residual selector: R -> (t, d), multiplier 1 + t * 2**-d.
RF8_RESIDUALS = ((0, 0), (1, 1), (1, 2), (1, 3), (1, 4), (-1, 2), (-1, 3), (-1, 4))


def residual_format(name: str, residuals: Iterable[tuple[int, int]] = RF8_RESIDUALS, *,
                    exp_bits: int = 4, bias: int = 7, description: str = "") -> Format:
    """Build an RF8-family format: ``s | E (exp_bits) | R (8-1-exp_bits)``.

    ``E == 0`` is a signed zero whatever ``R``; otherwise the value is
    ``(-1)**s * 2**(E - bias) * (1 + t * 2**-d)`` with ``(t, d) = residuals[R]``.
    Each multiplier is a sum of at most two signed powers of two, so products of
    two such codes are shifts and adds.
    """
    residuals = tuple((int(t), int(d)) for t, d in residuals)
    man_bits = 7 - exp_bits
    if len(residuals) != 1 << man_bits:
        raise FormatError(f"{name}: need {1 << man_bits} residuals for {man_bits} R bits, got {len(residuals)}")
    for t, d in residuals:
        if t not in (-1, 0, 1) or (t != 0 and d < 1) or (t == 0 and d != 0):
            raise FormatError(f"{name}: residual (t={t}, d={d}) must be t in (-1, 0, 1), d >= 1 (t=0: d=0)")
    dmax = max(d for _, d in residuals)
    sign, sig, exp, special = [], [], [], []
    for c in range(256):
        s = c >> 7
        E = (c >> man_bits) & ((1 << exp_bits) - 1)
        R = c & ((1 << man_bits) - 1)
        sign.append(s)
        special.append(SPECIAL_FINITE)
        if E == 0:
            sig.append(0)
            exp.append(1 - bias - dmax)
            continue
        t, d = residuals[R]
        # multiplier * 2**dmax is an integer: 2**dmax + t * 2**(dmax - d)
        sig.append((1 << dmax) + (t << (dmax - d) if t else 0))
        exp.append(E - bias - dmax)
    return _finish(name, "residual", exp_bits, man_bits, bias, sign, sig, exp, special,
                   nan_code=None, inf_code=None, residuals=residuals,
                   roundings=ROUNDINGS, description=description)


def _ocp_float(name: str, exp_bits: int, man_bits: int, bias: int, ieee_specials: bool,
               description: str) -> Format:
    """OCP 8-bit float (rev 1.0). E4M3 ('FN'): only S.1111.111 is NaN; E5M2: IEEE-like."""
    sign, sig, exp, special = [], [], [], []
    emax_field = (1 << exp_bits) - 1
    for c in range(256):
        s = c >> 7
        E = (c >> man_bits) & emax_field
        M = c & ((1 << man_bits) - 1)
        sign.append(s)
        sp = SPECIAL_FINITE
        if ieee_specials and E == emax_field:
            sp = SPECIAL_INF if M == 0 else SPECIAL_NAN
        elif not ieee_specials and E == emax_field and M == (1 << man_bits) - 1:
            sp = SPECIAL_NAN
        special.append(sp)
        if sp != SPECIAL_FINITE:
            sig.append(0)
            exp.append(0)
        elif E == 0:  # subnormal (and zero)
            sig.append(M)
            exp.append(1 - bias - man_bits)
        else:
            sig.append((1 << man_bits) | M)
            exp.append(E - bias - man_bits)
    nan_code = 0x7F if not ieee_specials else (emax_field << man_bits) | (1 << (man_bits - 1))
    inf_code = (emax_field << man_bits) if ieee_specials else None
    return _finish(name, "float", exp_bits, man_bits, bias, sign, sig, exp, special,
                   nan_code=nan_code, inf_code=inf_code, description=description)


def _int8() -> Format:
    sign, sig, exp, special = [], [], [], []
    for c in range(256):
        v = c - 256 if c >= 128 else c
        sign.append(1 if v < 0 else 0)
        sig.append(abs(v))
        exp.append(0)
        special.append(SPECIAL_FINITE)
    return _finish("int8", "int", 0, 7, 0, sign, sig, exp, special, nan_code=None, inf_code=None,
                   description="two's complement -128..127, round half to even, saturating")


# ---------------------------------------------------------------------------
# registry

_REGISTRY: dict[str, Format] = {}


def register(fmt: Format, *, replace: bool = False) -> Format:
    """Add a format to the registry (e.g. a study's RF8 variant)."""
    if fmt.name in _REGISTRY and not replace:
        raise FormatError(f"a format named {fmt.name!r} is already registered")
    _REGISTRY[fmt.name] = fmt
    return fmt


RF8 = register(residual_format(
    "rf8", RF8_RESIDUALS,
    description="residual float: (-1)^s 2^(E-7) (1 + t 2^-d), two leading signed powers of two"))
E4M3 = register(_ocp_float("e4m3", 4, 3, 7, False, "OCP FP8 E4M3 (FN): no Inf, NaN = S.1111.111, max 448"))
E5M2 = register(_ocp_float("e5m2", 5, 2, 15, True, "OCP FP8 E5M2: IEEE-like Inf/NaN, max 57344"))
INT8 = register(_int8())


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get(fmt: "str | Format") -> Format:
    """Look a format up by name (case-insensitive); a Format passes through."""
    if isinstance(fmt, Format):
        return fmt
    if not isinstance(fmt, str):
        raise FormatError(f"a format is a name or a Format, got {type(fmt).__name__}")
    key = fmt.strip().lower()
    try:
        return _REGISTRY[key]
    except KeyError:
        raise FormatError(f"unknown format {fmt!r}; valid formats: {', '.join(_REGISTRY)}") from None


def values(fmt: "str | Format") -> np.ndarray:
    """The 256 code values of ``fmt`` as float64 (read-only)."""
    return get(fmt).values
