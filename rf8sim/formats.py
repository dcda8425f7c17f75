"""The normative definition of every format in rf8sim.

This module is the single source of truth: biases, field widths, value tables,
special codes and the exact (sign, integer significand, exponent) decomposition
that the golden model, the RTL generator and the torch emulation all derive
their arithmetic from.  Nothing else in the package hard-codes a format constant.

Formats have ``code_bits`` of 2..16 (``n_codes = 2**code_bits`` codes, stored as
``uint8`` up to 8 bits and ``uint16`` above).  Three public constructors build them
from a handful of parameters, the way gfloat's ``FormatInfo`` does:

* :func:`float_format` - any IEEE-style binary float (sign, exponent, mantissa;
  bias, subnormals on/off, Inf/NaN convention ``ieee`` / ``fn`` / ``none``, default
  saturation).  ``e4m3``, ``e5m2``, ``bf16`` and ``fp16`` are built with it; a user
  defines E3M4, E2M1 or an FP6 the same way and may :func:`register` it.
* :func:`residual_format` - the RF8 family (a leading power of two plus one signed
  residual term).
* :func:`int_format` - two's complement integers.

A :class:`Format` is immutable.  Every finite value of every format is exact in
float32 (the constructors refuse formats where that is not so), so ``values``
(float64) and ``values.astype(float32)`` hold the same numbers.

Value of a finite code ``c``::

    value(c) == (-1)**sign[c] * sig[c] * 2.0**exp[c]

with ``sig`` a non-negative integer.  Products of two codes are therefore exact
integers times a power of two, which is what the fixed-point accumulator of
:mod:`rf8sim.golden` and the RTL consume.

This module imports numpy only (no Numba): the hdl and training packages use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable

import numpy as np

from rf8sim.errors import RF8SimError

__all__ = [
    "Format",
    "FormatError",
    "SPECIAL_FINITE",
    "SPECIAL_NAN",
    "SPECIAL_INF",
    "ROUNDINGS",
    "SPECIALS",
    "RF8_RESIDUALS",
    "RF8_VARIANTS",
    "register_rf8_variants",
    "MAX_CODE_BITS",
    "float_format",
    "residual_format",
    "int_format",
    "greedy_roundings",
    "rounding_unsupported",
    "get",
    "names",
    "register",
    "check_role",
    "ROLES",
    "values",
    "RF8",
    "E4M3",
    "E5M2",
    "INT8",
    "BF16",
    "FP16",
    "E2M1",
    "APOT4",
    "APOT8",
    "LNS8",
    "POSIT8",
    "POSIT16",
    "APOT_TERMS",
    "RF8_TERMS_VARIANTS",
    "level_format",
    "apot_levels",
    "apot_format",
    "terms_format",
    "lns_format",
    "posit_format",
    "posit_value",
]

SPECIAL_FINITE = 0
SPECIAL_NAN = 1
SPECIAL_INF = 2

#: Rounding modes understood by ``encode``.  ``paper`` and ``truncate`` exist only for
#: residual (RF8-like) formats whose residual set has the terms the greedy algorithms
#: produce (see :func:`greedy_roundings`); ``nearest`` exists for every format.
ROUNDINGS = ("nearest", "paper", "truncate")

#: Inf/NaN conventions of :func:`float_format`:
#: ``ieee`` - exponent field all ones: M == 0 is +-Inf, M != 0 is NaN (E5M2, bf16, fp16);
#: ``fn`` - no Inf, only S.1..1.1..1 is NaN (OCP E4M3, "finite + NaN");
#: ``none`` - every code is a finite number (OCP E2M1, E2M3, E3M2).
SPECIALS = ("ieee", "fn", "none")

#: The roles a format can play in a datapath (Format.roles).
ROLES = ("weight", "activation")

#: Widest code the package handles (tables of 2**16 entries).
MAX_CODE_BITS = 16


class FormatError(RF8SimError, ValueError):
    """An unknown format or an operation a format does not support."""


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Format:
    """One format, completely described by data.

    Attributes
    ----------
    name : registry name (``rf8``, ``e4m3``, ``e5m2``, ``int8``, ``bf16``, ``fp16`` ...).
    kind : ``"residual"`` (RF8 family), ``"float"`` (IEEE-style binary float) or ``"int"``.
    exp_bits, man_bits : widths of the exponent field and of the field below it
        (the mantissa for floats, the residual selector ``R`` for RF8; 7 for int8).
    bias : exponent bias (RF8: leading exponent ``e = E - bias``).
    values : the ``n_codes`` code values as float64 (NaN/Inf where the code is special).
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
    inf_code : the code of +Inf (None if none; -Inf is ``inf_code | sign_bit``).
    residuals : RF8 family only: for ``R`` = 0..2**man_bits-1 the residual term as
        ``(t, d)`` meaning multiplier ``1 + t * 2**-d`` (``t = 0``: no term).
    roundings : rounding modes ``encode`` implements for this format (exactly those).
    code_bits : width of a code (2..16); ``n_codes = 2**code_bits``.
    subnormals : floats: whether ``E == 0`` codes are subnormals (else signed zeros).
    specials : floats: ``ieee``, ``fn`` or ``none`` (see :data:`SPECIALS`); others ``none``.
    saturate : the default of ``encode(..., saturate=None)``: True clamps out-of-range
        values to +-max, False gives Inf/NaN (or an error where the format has neither).
    thresholds, tie_up : None (the default) for formats that round to the nearest value
        (ties to the even index of ``magnitudes``).  Otherwise the ``len(magnitudes) - 1``
        rounding boundaries of ``nearest`` between neighbouring magnitudes, each an exact
        float32 (float64 array), and per boundary whether an input equal to it goes up
        (True) or to the even index (False).  Posits (the bit-string midpoints of the Posit
        Standard) and LNS (midpoints in the log domain, irrational: stored as the next
        float32 above, ``tie_up``) use them.
    negation : ``sign`` (sign-magnitude: -x is code | sign_bit) or ``twos`` (posits: -x is the
        two's complement of the code, the code 2**(code_bits-1) is NaR).
    params : the constructor's defining parameters as (key, value) pairs (for docs).
    roles : ``weight`` and/or ``activation``: what a datapath may feed it as (APoT and the
        three-term RF8 variants are weight sets; posit16 is an activation format).
    scale_max : the value the scale rules of :mod:`rf8sim.scales` map a group's largest
        magnitude to (None: ``max``).  Posits use ``useed = 2**(2**es)``, the top of their
        most precise region, instead of maxpos.
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
    code_bits: int = 8
    subnormals: bool = True
    specials: str = "none"
    saturate: bool = True
    thresholds: np.ndarray | None = field(default=None, repr=False)
    tie_up: np.ndarray | None = field(default=None, repr=False)
    negation: str = "sign"
    params: tuple = ()
    scale_max: float | None = None
    roles: tuple = ROLES

    # ---- derived facts -------------------------------------------------
    @property
    def n_codes(self) -> int:
        return 1 << self.code_bits

    @property
    def code_dtype(self) -> np.dtype:
        """``uint8`` for codes of up to 8 bits, ``uint16`` above."""
        return np.dtype(np.uint8) if self.code_bits <= 8 else np.dtype(np.uint16)

    @property
    def sign_bit(self) -> int:
        """The sign bit of a sign-magnitude code (the two's complement sign bit for ints)."""
        return 1 << (self.code_bits - 1)

    @property
    def codes(self) -> np.ndarray:
        """Every code, ascending, in ``code_dtype``."""
        return np.arange(self.n_codes, dtype=self.code_dtype)

    @property
    def is_canonical(self) -> np.ndarray:
        """Boolean mask of the codes that ``encode`` can return."""
        return self.canonical == np.arange(self.n_codes)

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

    @property
    def scale_target(self) -> float:
        """What the scale rules aim a group maximum at: ``scale_max`` or ``max``."""
        return self.max if self.scale_max is None else self.scale_max

    @property
    def max_code(self) -> int:
        """The canonical code of +max."""
        return int(self.canonical[int(np.flatnonzero(self.values == self.max)[0])])

    def exact_value(self, code: int) -> Fraction:
        """The exact value of a finite code as a Fraction (raises for NaN/Inf)."""
        code = int(code)
        if not 0 <= code < self.n_codes:
            raise FormatError(f"code {code} is not in 0..{self.n_codes - 1} ({self.name} has "
                              f"{self.code_bits}-bit codes)")
        if self.special[code] != SPECIAL_FINITE:
            raise FormatError(f"{self.name} code 0x{code:0{self._hexw}X} is not finite")
        v = Fraction(int(self.sig[code])) * Fraction(2) ** int(self.exp[code])
        return -v if self.sign[code] else v

    @property
    def _hexw(self) -> int:
        return (self.code_bits + 3) // 4

    def fields(self) -> str:
        if self.kind == "residual":
            return f"s{'e' * self.exp_bits}{'r' * self.man_bits}"
        if self.kind == "float":
            return f"s{'e' * self.exp_bits}{'m' * self.man_bits}"
        if self.kind == "terms":
            return f"s{'e' * self.exp_bits}{'r' * self.man_bits}"
        if self.kind == "lns":
            return f"s{'l' * (self.code_bits - 1)}"
        if self.kind == "levels":
            return f"s{'i' * (self.code_bits - 1)}"
        if self.kind == "posit":
            return f"posit<{self.code_bits},{self.exp_bits}>"
        return "two's complement"

    def summary(self) -> dict:
        """Key numbers, as printed by ``rf8sim formats`` and tabulated in docs."""
        canon = self.is_canonical
        finite = self.finite
        distinct = len(np.unique(self.values[finite]))  # -0 == +0
        return {
            "name": self.name,
            "bits": self.code_bits,
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
            "roundings": ",".join(self.roundings),
        }

    def __repr__(self) -> str:
        return f"Format({self.name!r})"

    def __reduce__(self):
        # registered formats pickle by name (registry singletons); a user's unregistered format by value
        if _REGISTRY.get(self.name) is self:
            return (get, (self.name,))
        from dataclasses import fields as _fields

        return (_rebuild, ({f.name: getattr(self, f.name) for f in _fields(self)},))


def _rebuild(kw: dict) -> "Format":
    for k, v in kw.items():
        if isinstance(v, np.ndarray):
            kw[k] = _readonly(v)
    return Format(**kw)


# ---------------------------------------------------------------------------
# construction helpers


def _check_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise FormatError(f"a format name is a non-empty string, got {name!r}")
    return name.strip().lower()


def _int_param(what: str, v, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise FormatError(f"{what} must be an integer, got {v!r}")
    if not lo <= int(v) <= hi:
        raise FormatError(f"{what} must be in {lo}..{hi}, got {v}")
    return int(v)


def _finish(name, kind, exp_bits, man_bits, bias, sign, sig, exp, special, *, code_bits=8,
            nan_code, inf_code, residuals=(), roundings=("nearest",), description="",
            subnormals=True, specials="none", saturate=True, thresholds=None, tie_up=None,
            negation="sign", params=(), scale_max=None, roles=ROLES) -> Format:
    n = 1 << code_bits
    sign = np.asarray(sign, np.uint8)
    sig = np.asarray(sig, np.int64)
    exp = np.asarray(exp, np.int64)
    special = np.asarray(special, np.uint8)
    assert sign.shape == sig.shape == exp.shape == special.shape == (n,)
    fin = special == SPECIAL_FINITE
    neg = sign.astype(bool)
    with np.errstate(over="ignore"):
        mag = np.ldexp(sig.astype(np.float64), np.where(fin, exp, 0).astype(np.int32))
    vals = np.where(neg, -mag, mag)
    vals[special == SPECIAL_INF] = np.where(neg, -np.inf, np.inf)[special == SPECIAL_INF]
    vals[special == SPECIAL_NAN] = np.where(neg, -np.nan, np.nan)[special == SPECIAL_NAN]
    if not fin.any() or not np.all(np.isfinite(vals[fin])):
        raise FormatError(f"{name}: finite codes must decode to finite numbers")
    v32 = vals[fin].astype(np.float32)
    inexact = v32.astype(np.float64) != vals[fin]
    if inexact.any():
        c = int(np.flatnonzero(fin)[np.flatnonzero(inexact)[0]])
        raise FormatError(f"{name}: code 0x{c:X} has value {vals[c]!r}, which float32 cannot hold exactly; "
                          f"rf8sim formats must lie inside float32 (2**-149 .. 2**128)")
    # canonical: smallest code with the same float64 bit pattern (signed zeros distinct); NaNs -> nan_code
    keys = vals.view(np.int64)
    canonical = np.empty(n, np.int64)
    fidx = np.flatnonzero(fin)
    _, first, inv = np.unique(keys[fidx], return_index=True, return_inverse=True)
    canonical[fidx] = fidx[first][inv.reshape(-1)]
    canonical[special == SPECIAL_INF] = np.flatnonzero(special == SPECIAL_INF)
    if (special == SPECIAL_NAN).any():
        canonical[special == SPECIAL_NAN] = nan_code
    mags = np.unique(np.abs(vals[fin]))
    if mags.size < 2:
        raise FormatError(f"{name}: needs a nonzero finite value")
    maxv = float(vals[fin].max())  # int8: 127, not |-128|
    minpos = float(mags[mags > 0][0])
    dt = np.uint8 if code_bits <= 8 else np.uint16
    if thresholds is not None:
        thresholds = np.asarray(thresholds, np.float64)
        tie_up = np.asarray(tie_up, bool)
        if thresholds.shape != (len(mags) - 1,) or tie_up.shape != thresholds.shape:
            raise FormatError(f"{name}: need {len(mags) - 1} rounding thresholds, got {thresholds.shape}")
        if np.any(thresholds.astype(np.float32).astype(np.float64) != thresholds):
            raise FormatError(f"{name}: rounding thresholds must be exact float32 values")
        if np.any(thresholds <= mags[:-1]) or np.any(thresholds > mags[1:]):
            raise FormatError(f"{name}: each rounding threshold must lie in (lower, upper] of its neighbours")
        thresholds, tie_up = _readonly(thresholds), _readonly(tie_up)
    return Format(
        name=name, kind=kind, exp_bits=exp_bits, man_bits=man_bits, bias=bias,
        values=_readonly(vals), sign=_readonly(sign), sig=_readonly(sig), exp=_readonly(exp),
        special=_readonly(special), canonical=_readonly(canonical.astype(dt)), magnitudes=_readonly(mags),
        max=maxv, min_positive=minpos, nan_code=nan_code, inf_code=inf_code,
        residuals=tuple(residuals), roundings=tuple(roundings), description=description,
        code_bits=code_bits, subnormals=bool(subnormals), specials=specials, saturate=bool(saturate),
        thresholds=thresholds, tie_up=tie_up, negation=negation, params=tuple(params),
        scale_max=scale_max, roles=tuple(roles),
    )


# ---------------------------------------------------------------------------
# IEEE-style binary floats


def float_format(name: str, exp_bits: int, man_bits: int, *, bias: int | None = None,
                 subnormals: bool = True, specials: str = "ieee", saturate: bool | None = None,
                 description: str = "") -> Format:
    """An IEEE-style binary float ``s | E (exp_bits) | M (man_bits)``, ``code_bits = 1 + exp_bits + man_bits``.

    Parameters
    ----------
    exp_bits : 1..8; man_bits : 0..15 (with ``1 + exp_bits + man_bits <= 16``).
    bias : exponent bias; default ``2**(exp_bits - 1) - 1``.
    subnormals : True: ``E == 0`` codes are subnormals ``M * 2**(1 - bias - man_bits)``;
        False: every ``E == 0`` code is a signed zero (encode writes ``M == 0``).
    specials : ``ieee`` (E all ones: Inf if M == 0, else NaN), ``fn`` (only S.1..1.1..1
        is NaN, no Inf) or ``none`` (all codes finite); see :data:`SPECIALS`.
    saturate : default of ``encode(..., saturate=None)``; default False for ``ieee``
        (overflow to Inf, as IEEE and ml_dtypes casts), True otherwise.

    Normal codes: ``sig = 2**man_bits | M``, ``exp = E - bias - man_bits``.  The canonical
    NaN (``nan_code``) is the positive quiet NaN: E all ones with the top mantissa bit
    (``ieee``) or all ones (``fn``).  Every value must be exact in float32.
    """
    name = _check_name(name)
    exp_bits = _int_param(f"{name}: exp_bits", exp_bits, 1, 8)
    man_bits = _int_param(f"{name}: man_bits", man_bits, 0, MAX_CODE_BITS - 2)
    code_bits = 1 + exp_bits + man_bits
    if code_bits > MAX_CODE_BITS:
        raise FormatError(f"{name}: 1 + exp_bits + man_bits = {code_bits} bits; at most {MAX_CODE_BITS} "
                          f"are supported")
    if specials not in SPECIALS:
        raise FormatError(f"{name}: specials {specials!r} is not one of {', '.join(SPECIALS)}")
    if specials == "ieee" and (man_bits < 1 or exp_bits < 2):
        raise FormatError(f"{name}: specials='ieee' needs man_bits >= 1 and exp_bits >= 2 (Inf and NaN "
                          f"take the top binade)")
    if specials == "fn" and code_bits < 3:
        raise FormatError(f"{name}: specials='fn' needs at least 3 bits")
    if bias is None:
        bias = (1 << (exp_bits - 1)) - 1
    bias = _int_param(f"{name}: bias", bias, -1 << 10, 1 << 10)
    if saturate is None:
        saturate = specials != "ieee"
    n = 1 << code_bits
    c = np.arange(n, dtype=np.int64)
    s = c >> (code_bits - 1)
    ef = (1 << exp_bits) - 1
    E = (c >> man_bits) & ef
    M = c & ((1 << man_bits) - 1)
    special = np.full(n, SPECIAL_FINITE, np.uint8)
    if specials == "ieee":
        special[(E == ef) & (M == 0)] = SPECIAL_INF
        special[(E == ef) & (M != 0)] = SPECIAL_NAN
    elif specials == "fn":
        special[(E == ef) & (M == (1 << man_bits) - 1)] = SPECIAL_NAN
    sub = E == 0
    sig = np.where(sub, M if subnormals else 0, (1 << man_bits) | M)
    exp = np.where(sub, 1 - bias - man_bits, E - bias - man_bits)
    fin = special == SPECIAL_FINITE
    sig = np.where(fin, sig, 0)
    exp = np.where(fin, exp, 0)
    nan_code = inf_code = None
    if specials == "ieee":
        nan_code = (ef << man_bits) | (1 << (man_bits - 1))
        inf_code = ef << man_bits
    elif specials == "fn":
        nan_code = (1 << (code_bits - 1)) - 1
    return _finish(name, "float", exp_bits, man_bits, bias, s, sig, exp, special, code_bits=code_bits,
                   nan_code=nan_code, inf_code=inf_code, description=description,
                   subnormals=subnormals, specials=specials, saturate=saturate)


# ---------------------------------------------------------------------------
# RF8 family

#: RF8 residual selector: R -> (t, d), multiplier 1 + t * 2**-d.
RF8_RESIDUALS = ((0, 0), (1, 1), (1, 2), (1, 3), (1, 4), (-1, 2), (-1, 3), (-1, 4))


def _greedy_missing(residuals, mode: str) -> str:
    """Why ``mode`` (``paper``/``truncate``) cannot run on this residual set ('' if it can)."""
    terms = {(int(t), int(d)) for t, d in residuals}
    D = max(d for _, d in terms)
    if (0, 0) not in terms:
        return f"no residual code for 'no second term'; {mode} needs one"
    for d in range(1, D + 1):
        if (1, d) not in terms:
            return f"residual set lacks +2^-{d}; {mode} needs +2^-1..+2^-{D}"
        if mode == "paper" and d >= 2 and (-1, d) not in terms:
            return f"residual set lacks -2^-{d}; paper needs -2^-2..-2^-{D}"
    return ""


def greedy_roundings(residuals) -> tuple[str, ...]:
    """The roundings the golden model implements for a residual set (always ``nearest``).

    ``truncate`` and ``paper`` are RF8's greedy two-term algorithms: they keep a second term
    iff its distance ``d`` to the leading one is at most ``D`` (the largest ``d`` of the set).
    ``truncate`` produces ``+2**-d`` for every d = 1..D, ``paper`` also ``-2**-d`` for d = 2..D;
    a set lacking one of those (or a "no second term" code) cannot take that rounding.
    """
    return ("nearest",) + tuple(m for m in ("paper", "truncate") if not _greedy_missing(residuals, m))


def rounding_unsupported(fmt: "Format", rounding: str) -> str:
    """'' when ``encode`` implements ``rounding`` for ``fmt``; otherwise the reason, in words."""
    if rounding not in ROUNDINGS:
        return f"unknown rounding {rounding!r}; valid: {', '.join(ROUNDINGS)}"
    if rounding in fmt.roundings:
        return ""
    if fmt.kind != "residual":
        return f"{rounding} is RF8's greedy two-term rounding; {fmt.kind} formats round to nearest only"
    return _greedy_missing(fmt.residuals, rounding)


def residual_format(name: str, residuals: Iterable[tuple[int, int]] = RF8_RESIDUALS, *,
                    exp_bits: int = 4, bias: int = 7, code_bits: int = 8, description: str = "") -> Format:
    """Build an RF8-family format: ``s | E (exp_bits) | R (code_bits - 1 - exp_bits)``.

    ``E == 0`` is a signed zero whatever ``R``; otherwise the value is
    ``(-1)**s * 2**(E - bias) * (1 + t * 2**-d)`` with ``(t, d) = residuals[R]``.
    Each multiplier is a sum of at most two signed powers of two, so products of
    two such codes are shifts and adds.  ``roundings`` is :func:`greedy_roundings`.
    """
    name = _check_name(name)
    code_bits = _int_param(f"{name}: code_bits", code_bits, 3, MAX_CODE_BITS)
    exp_bits = _int_param(f"{name}: exp_bits", exp_bits, 1, code_bits - 2)
    residuals = tuple((int(t), int(d)) for t, d in residuals)
    man_bits = code_bits - 1 - exp_bits
    if len(residuals) != 1 << man_bits:
        raise FormatError(f"{name}: need {1 << man_bits} residuals for {man_bits} R bits, got {len(residuals)}")
    for t, d in residuals:
        if t not in (-1, 0, 1) or (t != 0 and d < 1) or (t == 0 and d != 0):
            raise FormatError(f"{name}: residual (t={t}, d={d}) must be t in (-1, 0, 1), d >= 1 (t=0: d=0)")
    dmax = max(d for _, d in residuals)
    n = 1 << code_bits
    c = np.arange(n, dtype=np.int64)
    s = c >> (code_bits - 1)
    E = (c >> man_bits) & ((1 << exp_bits) - 1)
    R = c & ((1 << man_bits) - 1)
    # multiplier * 2**dmax is an integer: 2**dmax + t * 2**(dmax - d)
    msig = np.array([(1 << dmax) + (t << (dmax - d) if t else 0) for t, d in residuals], np.int64)
    sig = np.where(E == 0, 0, msig[R])
    exp = np.where(E == 0, 1 - bias - dmax, E - bias - dmax)
    special = np.full(n, SPECIAL_FINITE, np.uint8)
    return _finish(name, "residual", exp_bits, man_bits, bias, s, sig, exp, special, code_bits=code_bits,
                   nan_code=None, inf_code=None, residuals=residuals,
                   roundings=greedy_roundings(residuals), description=description)


#: The RF8 variants a study sweeps (not registered by default; :func:`register_rf8_variants`).
#: name -> keyword arguments of :func:`residual_format`.  See rf8sim.study.mnist1d.variants for why.
RF8_VARIANTS: dict = {
    "rf8m8": dict(
        residuals=((0, 0), (1, 1), (1, 2), (1, 3), (1, 4), (-1, 5), (-1, 3), (-1, 4)),
        description="RF8 with R=5 -> 1-2^-5: eight distinct multipliers per binade (1.9375 added), "
                    "no duplicate nonzero codes"),
    "rf8m8lo": dict(
        residuals=((0, 0), (1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (-1, 3), (-1, 4)),
        description="RF8 with R=5 -> 1+2^-5: eight distinct multipliers per binade (1.03125 added)"),
}


def register_rf8_variants() -> tuple[str, ...]:
    """Register every format of :data:`RF8_VARIANTS` (idempotent); return their names."""
    for name, spec in RF8_VARIANTS.items():
        if name not in _REGISTRY:
            register(residual_format(name, **spec))
    return tuple(RF8_VARIANTS)


# ---------------------------------------------------------------------------
# table formats: APoT levels, RF8 with three-term multipliers, LNS, posits


def _dyadic(name: str, v) -> tuple[int, int]:
    """(sig, exp) with ``v == sig * 2**exp`` (sig odd, or 0) for a non-negative dyadic rational."""
    v = Fraction(v)
    if v < 0:
        raise FormatError(f"{name}: magnitude {v} is negative")
    if v == 0:
        return 0, 0
    p, q = v.numerator, v.denominator
    if q & (q - 1):
        raise FormatError(f"{name}: value {v} is not a dyadic rational (an integer times a power of two)")
    tz = (p & -p).bit_length() - 1
    return p >> tz, tz - (q.bit_length() - 1)


def _sm_arrays(name: str, code_bits: int, pos_mags) -> tuple:
    """sign, sig, exp of a sign-magnitude table: code c < half is +pos_mags[c], c | half is -pos_mags[c]."""
    h = 1 << (code_bits - 1)
    if len(pos_mags) != h:
        raise FormatError(f"{name}: {code_bits}-bit codes need {h} magnitudes, got {len(pos_mags)}")
    se = [_dyadic(name, m) for m in pos_mags]
    sig = np.array([s for s, _ in se] * 2, np.int64)
    exp = np.array([e for _, e in se] * 2, np.int64)
    sign = np.repeat(np.array([0, 1], np.uint8), h)
    return sign, sig, exp


def level_format(name: str, levels, *, code_bits: int, description: str = "", params=(),
                 roles=("weight",)) -> Format:
    """A sign-magnitude format from its list of magnitudes: code ``s | i`` is ``(-1)**s * levels[i]``.

    ``levels`` are ``2**(code_bits - 1)`` distinct non-negative dyadic rationals (Fractions or
    ints), ascending, ``levels[0] == 0``.  ``nearest`` rounds to the nearest level, ties to the
    even index.  APoT is built with it (:func:`apot_levels`).
    """
    name = _check_name(name)
    code_bits = _int_param(f"{name}: code_bits", code_bits, 2, MAX_CODE_BITS)
    levels = [Fraction(v) for v in levels]
    if levels[0] != 0 or any(b <= a for a, b in zip(levels, levels[1:])):
        raise FormatError(f"{name}: levels must be ascending and distinct, starting at 0")
    sign, sig, exp = _sm_arrays(name, code_bits, levels)
    return _finish(name, "levels", 0, code_bits - 1, 0, sign, sig, exp,
                   np.full(1 << code_bits, SPECIAL_FINITE, np.uint8), code_bits=code_bits, nan_code=None,
                   inf_code=None, description=description, params=params, roles=roles)


def apot_levels(terms) -> list[Fraction]:
    """The APoT level set (Li et al., ICLR 2020, eq. 5): every sum ``p_0 + p_1 + ...`` with one
    ``p_i`` from each ``terms[i]`` (a set of powers of two, 0 included), ascending, unnormalized."""
    sums = {Fraction(0)}
    for t in terms:
        sums = {a + Fraction(b) for a in sums for b in t}
    return sorted(sums)


#: APoT term sets.  ``apot4``: the 4-bit weight set of the authors' code (3 magnitude bits,
#: ``build_power_value(B=3)``: {0, 2^-1, 2^-2, 2^-4} + {0, 2^-3}).  ``apot8``: eq. 5 with two
#: additive terms and the paper's interleaving p_i in {0, 2^-(i+1), 2^-(i+3), ...}: p0 on the odd
#: exponents 2^-1..2^-23, p1 on the even ones 2^-2..2^-22 (every sum then fits a float32; the
#: paper's own 8-bit set, k = 4, reaches 2^-29 + 2^-2, which no float32 holds); its 156 distinct
#: levels are cut to zero plus the 127 largest to fill 7 magnitude bits.
APOT_TERMS: dict = {
    "apot4": ((0, Fraction(1, 2), Fraction(1, 4), Fraction(1, 16)), (0, Fraction(1, 8))),
    "apot8": ((0,) + tuple(Fraction(1, 2 ** (2 * i + 1)) for i in range(12)),
              (0,) + tuple(Fraction(1, 2 ** (2 * i + 2)) for i in range(11))),
}


def apot_format(name: str, terms, *, code_bits: int, description: str = "") -> Format:
    """APoT: sign + the index of a level of :func:`apot_levels`: zero and the
    ``2**(code_bits-1) - 1`` largest nonzero levels (all of them when there are no more)."""
    lv = apot_levels(terms)
    h = 1 << (code_bits - 1)
    if len(lv) < h:
        raise FormatError(f"{name}: the terms give {len(lv)} levels; {code_bits}-bit codes need {h}")
    lv = [lv[0]] + lv[len(lv) - (h - 1):]
    return level_format(name, lv, code_bits=code_bits, description=description,
                        params=(("terms", tuple(tuple(str(Fraction(p)) for p in t) for t in terms)),))


def terms_format(name: str, multipliers, *, exp_bits: int = 4, bias: int = 7, code_bits: int = 8,
                 zero_binade: bool = True, description: str = "") -> Format:
    """RF8 layout ``s | E | R`` with a multiplier of up to three signed power-of-two terms.

    ``multipliers[R]`` is a tuple of ``(t, d)`` terms (t = +-1, d >= 1): multiplier
    ``1 + sum(t * 2**-d)`` (``()`` is 1).  Codes with ``E >= 1`` are
    ``(-1)**s * 2**(E - bias) * multiplier[R]``.  ``E == 0``: ``R == 0`` is the signed zero;
    with ``zero_binade`` the other R take the binade below E = 1
    (``2**(-bias) * multiplier[R]``) instead of RF8's seven duplicate zeros per sign.
    """
    name = _check_name(name)
    code_bits = _int_param(f"{name}: code_bits", code_bits, 3, MAX_CODE_BITS)
    exp_bits = _int_param(f"{name}: exp_bits", exp_bits, 1, code_bits - 2)
    man_bits = code_bits - 1 - exp_bits
    mults = []
    for terms in multipliers:
        m = Fraction(1)
        for t, d in terms:
            if t not in (-1, 1) or int(d) < 1:
                raise FormatError(f"{name}: term (t={t}, d={d}) needs t = +-1 and d >= 1")
            m += Fraction(t, 2 ** int(d))
        mults.append(m)
    if len(mults) != 1 << man_bits:
        raise FormatError(f"{name}: need {1 << man_bits} multipliers for {man_bits} R bits, got {len(mults)}")
    if mults[0] != 1 or any(not Fraction(1, 2) < m < 2 for m in mults):
        raise FormatError(f"{name}: multiplier[0] must be 1 and every multiplier in (1/2, 2)")
    pos = []
    for E in range(1 << exp_bits):
        for R, m in enumerate(mults):
            if E == 0:
                pos.append(Fraction(0) if (R == 0 or not zero_binade) else m * Fraction(2) ** (-bias))
            else:
                pos.append(m * Fraction(2) ** (E - bias))
    sign, sig, exp = _sm_arrays(name, code_bits, pos)
    return _finish(name, "terms", exp_bits, man_bits, bias, sign, sig, exp,
                   np.full(1 << code_bits, SPECIAL_FINITE, np.uint8), code_bits=code_bits, nan_code=None,
                   inf_code=None, description=description,
                   params=(("multipliers", tuple(tuple(m) for m in multipliers)), ("zero_binade", zero_binade)),
                   roles=("weight",))


def _iroot_pow2(n: int, k: int) -> int:
    """floor(n ** (1 / 2**k)) for n >= 0 (nested integer square roots are exact floors)."""
    for _ in range(k):
        n = math.isqrt(n)
    return n


def _pow2_frac(num: int, log_den: int, bits: int, mode: str) -> Fraction:
    """2**(num / 2**log_den) rounded to ``bits`` fraction bits of its binade.

    ``mode``: ``nearest`` (never a tie: the value is irrational unless num / 2**log_den is an
    integer) or ``up`` (the least such number strictly above an irrational value)."""
    den = 1 << log_den
    ib, r = divmod(num, den)
    if r == 0:
        return Fraction(2) ** ib
    # 2**(r/den) * 2**bits in [2**bits, 2**(bits+1)): floor of its den-th root
    m = _iroot_pow2(1 << (r + bits * den), log_den)
    if mode == "nearest":
        if (2 * m + 1) ** den < (1 << (r + (bits + 1) * den)):
            m += 1
    else:
        m += 1
    return Fraction(m, 1 << bits) * Fraction(2) ** ib


def lns_format(name: str, *, code_bits: int = 8, frac_bits: int = 3, table_bits: int = 8,
               description: str = "") -> Format:
    """Logarithmic number system: ``s | L``, ``L`` a ``code_bits - 1``-bit two's complement
    fixed-point log2 with ``frac_bits`` fraction bits.

    The most negative ``L`` (code ``0b?100...0``) is the signed zero; any other code is
    ``(-1)**s * 2**(L >> frac_bits) * A[L & (2**frac_bits - 1)]`` where the antilog table
    ``A[f]`` is ``2**(f / 2**frac_bits)`` rounded to nearest with ``table_bits`` fraction bits
    (what a log-to-linear converter stores; 2**(L/8) itself is irrational).
    ``nearest`` rounds ``log2 |x|`` to the nearest multiple of ``2**-frac_bits`` (the LNS
    rounding): the boundary between L and L + 1 is ``2**((L + 1/2) / 2**frac_bits)``, never a
    float32, so no ties; below the smallest code the zero code stands in for the most negative
    L.  Beyond the largest L: saturate (default) or an error.
    """
    name = _check_name(name)
    code_bits = _int_param(f"{name}: code_bits", code_bits, 3, MAX_CODE_BITS)
    frac_bits = _int_param(f"{name}: frac_bits", frac_bits, 0, code_bits - 2)
    table_bits = _int_param(f"{name}: table_bits", table_bits, 1, 20)
    w = code_bits - 1
    lmin = -(1 << (w - 1))
    pos = []
    for c in range(1 << w):
        L = c - (1 << w) if c >= 1 << (w - 1) else c
        pos.append(Fraction(0) if L == lmin else _pow2_frac(L, frac_bits, table_bits, "nearest"))
    order = sorted(range(1 << w), key=lambda c: pos[c])
    Ls = [c - (1 << w) if c >= 1 << (w - 1) else c for c in order]  # ascending: lmin (zero), lmin+1, ...
    thr = [_pow2_frac(2 * L + 1, frac_bits + 1, 23, "up") for L in Ls[:-1]]
    sign, sig, exp = _sm_arrays(name, code_bits, pos)
    return _finish(name, "lns", w - frac_bits, frac_bits, 0, sign, sig, exp,
                   np.full(1 << code_bits, SPECIAL_FINITE, np.uint8), code_bits=code_bits, nan_code=None,
                   inf_code=None, description=description, thresholds=[float(t) for t in thr],
                   tie_up=[True] * len(thr),
                   params=(("frac_bits", frac_bits), ("table_bits", table_bits)))


def posit_value(code: int, nbits: int, es: int = 2) -> Fraction | None:
    """The exact value of an ``nbits``-bit posit code (Posit Standard 2022); None for NaR."""
    mask = (1 << nbits) - 1
    code &= mask
    if code == 0:
        return Fraction(0)
    if code == 1 << (nbits - 1):
        return None
    neg = code >> (nbits - 1)
    if neg:
        code = (-code) & mask
    bits = format(code, f"0{nbits}b")[1:]
    first = bits[0]
    run = len(bits) - len(bits.lstrip(first))
    k = run - 1 if first == "1" else -run
    rest = bits[run + 1:]
    e = int(rest[:es].ljust(es, "0"), 2) if es else 0
    fb = rest[es:]
    f = Fraction(int(fb, 2), 1 << len(fb)) if fb else Fraction(0)
    v = Fraction(2) ** (k * (1 << es) + e) * (1 + f)
    return -v if neg else v


def posit_format(name: str, nbits: int = 8, es: int = 2, *, description: str = "", roles=ROLES) -> Format:
    """A posit of ``nbits`` bits and ``es`` exponent bits (Posit Standard 2022: es = 2).

    Codes are the standard's: two's complement negation, 0 is zero, ``2**(nbits-1)`` is NaR
    (decoded as NaN; NaN and +-Inf encode to NaR).  ``nearest`` is the standard's rounding:
    round the bit string to nearest, ties to the even code, so the boundary between codes c
    and c + 1 is the ``nbits + 1``-bit posit ``2c + 1``; nonzero values never round to zero
    and finite ones never to NaR (below minpos: minpos; above maxpos: maxpos).
    """
    name = _check_name(name)
    nbits = _int_param(f"{name}: nbits", nbits, 3, MAX_CODE_BITS)
    es = _int_param(f"{name}: es", es, 0, 4)
    n = 1 << nbits
    h = n >> 1
    sign = np.zeros(n, np.uint8)
    sig = np.zeros(n, np.int64)
    exp = np.zeros(n, np.int64)
    special = np.full(n, SPECIAL_FINITE, np.uint8)
    for c in range(n):
        v = posit_value(c, nbits, es)
        if v is None:
            special[c] = SPECIAL_NAN
            continue
        sign[c] = v < 0
        sig[c], exp[c] = _dyadic(name, abs(v))
    thr = [float(2.0 ** -149)]  # nonzero never rounds to zero
    thr += [float(posit_value(2 * c + 1, nbits + 1, es)) for c in range(1, h - 1)]
    tie = [True] + [False] * (h - 2)
    return _finish(name, "posit", es, nbits - 1 - es, 0, sign, sig, exp, special, code_bits=nbits,
                   nan_code=h, inf_code=None, description=description, thresholds=thr, tie_up=tie,
                   negation="twos", params=(("nbits", nbits), ("es", es)), scale_max=float(2 ** (1 << es)), roles=roles)


#: RF8 variants that reclaim the 42 duplicate codes (the 14 extra zeros become a sixteenth
#: binade, the 28 duplicate 1.5 codes R = 5 a new multiplier) with three-term multipliers:
#: name -> keyword arguments of :func:`terms_format`.  See rf8sim.study.mnist1d.variants for the design.
RF8_TERMS_VARIANTS: dict = {
    "rf8t1": dict(
        multipliers=((), ((1, 1),), ((1, 2),), ((1, 3),), ((1, 4),), ((1, 2), (1, 3)), ((-1, 3),), ((-1, 4),)),
        description="RF8 with R=5 -> 1+2^-2+2^-3 (1.375, a three-term multiplier, fills the 1.25..1.5 gap) "
                    "and E=0 as a sixteenth binade: no duplicate codes"),
    "rf8t2": dict(
        multipliers=((), ((1, 1),), ((1, 2),), ((1, 3),), ((1, 2), (1, 3)), ((1, 1), (1, 3)), ((-1, 3),),
                     ((-1, 4),)),
        description="RF8 with 1+2^-4 -> 1+2^-1+2^-3 (1.625) and R=5 -> 1+2^-2+2^-3 (1.375): per binade "
                    "E4M3's multipliers 1, 1.125, ..., 1.875 (two of them three-term); E=0 a sixteenth binade"),
}


# ---------------------------------------------------------------------------
# integers


def int_format(name: str, code_bits: int = 8, *, description: str = "") -> Format:
    """Two's complement integers of ``code_bits`` bits (round half to even, saturating)."""
    name = _check_name(name)
    code_bits = _int_param(f"{name}: code_bits", code_bits, 2, MAX_CODE_BITS)
    n = 1 << code_bits
    c = np.arange(n, dtype=np.int64)
    v = np.where(c >= n >> 1, c - n, c)
    return _finish(name, "int", 0, code_bits - 1, 0, (v < 0).astype(np.uint8), np.abs(v),
                   np.zeros(n, np.int64), np.full(n, SPECIAL_FINITE, np.uint8), code_bits=code_bits,
                   nan_code=None, inf_code=None, description=description)


# ---------------------------------------------------------------------------
# registry

_REGISTRY: dict[str, Format] = {}


def register(fmt: Format, *, replace: bool = False) -> Format:
    """Add a format to the registry (e.g. a study's RF8 variant, or a user's E3M4)."""
    if not isinstance(fmt, Format):
        raise FormatError(f"register takes a Format, got {type(fmt).__name__}")
    if fmt.name in _REGISTRY and not replace:
        raise FormatError(f"a format named {fmt.name!r} is already registered")
    _REGISTRY[fmt.name] = fmt
    return fmt


RF8 = register(residual_format(
    "rf8", RF8_RESIDUALS,
    description="residual float: (-1)^s 2^(E-7) (1 + t 2^-d), two leading signed powers of two"))
E4M3 = register(float_format("e4m3", 4, 3, bias=7, specials="fn", saturate=True,
                             description="OCP FP8 E4M3 (FN): no Inf, NaN = S.1111.111, max 448"))
E5M2 = register(float_format("e5m2", 5, 2, bias=15, specials="ieee", saturate=True,
                             description="OCP FP8 E5M2: IEEE-like Inf/NaN, max 57344"))
INT8 = register(int_format("int8", 8, description="two's complement -128..127, round half to even, saturating"))
BF16 = register(float_format("bf16", 8, 7, bias=127, specials="ieee", saturate=False,
                             description="bfloat16: 1-8-7, bias 127, IEEE Inf/NaN, overflow to Inf"))
FP16 = register(float_format("fp16", 5, 10, bias=15, specials="ieee", saturate=False,
                             description="IEEE binary16: 1-5-10, bias 15, IEEE Inf/NaN, overflow to Inf"))
E2M1 = register(float_format("e2m1", 2, 1, bias=1, specials="none",
                             description="OCP FP4 E2M1 (the MXFP4 / NVFP4 element): no Inf/NaN, max 6"))
APOT4 = register(apot_format("apot4", APOT_TERMS["apot4"], code_bits=4,
                             description="APoT 4-bit weights (Li et al. 2020, authors' B=3 set): sign + "
                                         "{0, 2^-1, 2^-2, 2^-4} + {0, 2^-3}, max 0.625"))
APOT8 = register(apot_format("apot8", APOT_TERMS["apot8"], code_bits=8,
                             description="APoT 8-bit, two terms: sign + p0 + p1, p0 in {0, 2^-1, 2^-3, ..., "
                                         "2^-23}, p1 in {0, 2^-2, ..., 2^-22}; zero and the 127 largest sums"))
LNS8 = register(lns_format("lns8", code_bits=8, frac_bits=3, table_bits=8,
                           description="8-bit LNS: sign + 7-bit two's complement log2 with 3 fraction bits "
                                       "(L = -64 is zero), antilog table 2^(f/8) to 8 fraction bits, "
                                       "log-domain rounding"))
POSIT8 = register(posit_format("posit8", 8, 2, description="posit<8,2> (Posit Standard 2022), NaR 0x80"))
POSIT16 = register(posit_format("posit16", 16, 2, roles=("activation",),
                                description="posit<16,2> (Posit Standard 2022), NaR 0x8000; an activation format"))
for _n, _kw in RF8_TERMS_VARIANTS.items():
    register(terms_format(_n, **_kw))


def check_role(fmt: "str | Format", role: str) -> Format:
    """``fmt`` (looked up) when it can play ``role`` (``weight`` / ``activation``); FormatError otherwise."""
    f = get(fmt)
    if role not in ROLES:
        raise FormatError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")
    if role not in f.roles:
        valid = ", ".join(n for n, g in _REGISTRY.items() if role in g.roles and g.code_bits == f.code_bits)
        raise FormatError(f"format {f.name} has no {role} role (it is a {'/'.join(f.roles)} format); "
                          f"{f.code_bits}-bit {role} formats: {valid}")
    return f


def names(code_bits: int | None = None) -> tuple[str, ...]:
    """Registered format names (only those with ``code_bits``-bit codes when given)."""
    if code_bits is None:
        return tuple(_REGISTRY)
    return tuple(n for n, f in _REGISTRY.items() if f.code_bits == code_bits)


#: name -> block format (an rf8sim.scales.BlockFormat), filled by :func:`register_block_format` when
#: rf8sim.scales is imported (always, by ``import rf8sim``): get() names them in its errors without
#: importing scales (scales imports this module).
_BLOCK_FORMATS: dict = {}


def register_block_format(bf) -> None:
    """Make :func:`get` say that ``bf.name`` is a block format (called by rf8sim.scales)."""
    _BLOCK_FORMATS[bf.name] = bf


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
        bf = _BLOCK_FORMATS.get(key)
        if bf is not None:
            raise FormatError(f"{bf.name} is a block format ({bf.description}), not an element format: its element "
                              f"format is {bf.element}; quantize with rf8sim.golden.blocks.quantize_block, "
                              f"QuantConfig(weight_fmt={bf.name!r}) or `rf8sim study zoo`") from None
        raise FormatError(f"unknown format {fmt!r}; valid formats: {', '.join(_REGISTRY)} (block formats: "
                          f"{', '.join(_BLOCK_FORMATS)})") from None


def values(fmt: "str | Format") -> np.ndarray:
    """The ``n_codes`` code values of ``fmt`` as float64 (read-only)."""
    return get(fmt).values
