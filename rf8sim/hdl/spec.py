"""One specification for every generated unit: :class:`MacSpec` (formats, accumulator, lanes, result).

A spec is parsed once (``MacSpec.make`` at the CLI or API boundary) from format names or
:class:`rf8sim.formats.Format` objects and an accumulator text or :class:`rf8sim.accspec.AccSpec`;
everything below it (the Amaranth units, Verilog, simulation, synthesis, formal proofs,
stimulus and the reference) takes the spec and never re-resolves a name.  The datapath
follows ``acc.kind`` exactly as :func:`rf8sim.golden.mac` does:

* ``fixed``  -- 8-bit codes, exact products floored to ``frac_bits`` in a saturating
  fixed-point register (:class:`rf8sim.hdl.mac.MacUnit`);
* ``fp32``   -- 16-bit float activations, a chain of exact fused adds into a float32
  register (:class:`rf8sim.hdl.w8a16.Fp32MacUnit`);
* ``aligned`` -- 16-bit float activations pre-aligned per block of K to M-bit integers
  (:class:`rf8sim.hdl.w8a16.AlignedMacUnit` = ``AlignUnit`` + ``AlignedColumn``).

Every internal width is derived here from the Format tables (pure Python, no Amaranth),
so a registered format variant gets its own hardware without editing a generator.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from .. import formats as F
from ..accspec import ALIGN_BITS_RANGE, MAX_BLOCK, MAX_WIDTH, W16_FORMATS, AccSpec
from ..errors import RF8SimError

__all__ = ["HdlError", "MacSpec", "ProductPlan", "FloatFields", "WeightPlan", "float_fields", "LATENCY",
           "RESULTS", "MAX_LANES", "float_activation_formats"]

#: Clock edges from sampling a beat to the fixed-point accumulator (and flags, fp32) showing it.
LATENCY = 2
#: The unit's result: the fixed-point accumulator, or also its RNE float32 (fixed accumulators);
#: the fp32 / aligned accumulators' result is the float32 register itself.
RESULTS = ("fixed", "fp32")
MAX_LANES = 64


class HdlError(RF8SimError, ValueError):
    """Invalid generator parameters or a missing HDL tool, with what to change or install."""


def _bits_signed(lo: int, hi: int) -> int:
    """Smallest two's complement width holding every integer in [lo, hi]."""
    return max(max(hi, 0).bit_length(), max(-lo - 1, 0).bit_length()) + 1


# ---------------------------------------------------------------------------
# 8-bit codes: the bit layout the decoders build, checked against the Format tables


def _layout(fmt: F.Format):
    """Per code, what the 8-bit decoder computes; checked against the Format tables."""
    kind = fmt.kind
    if fmt.code_bits == NARROW_BITS:
        # 4-bit codes (APoT4; E2M1, the elements of MXFP4 and NVFP4): a 16-entry table of (sign,
        # significand, exponent - its minimum), whatever their kind
        nz = fmt.finite & (fmt.sig > 0)
        return dict(kind="table", exp_const=int(fmt.exp[nz].min()))
    if kind == "residual":
        dmax = max(d for _, d in fmt.residuals)
        return dict(kind=kind, dmax=dmax, exp_const=-(fmt.bias + dmax))
    if kind == "float":
        return dict(kind=kind, exp_const=-(fmt.bias + fmt.man_bits))
    if kind == "int":
        return dict(kind=kind, exp_const=0)
    if kind in TABLE_KINDS and fmt.code_bits == 8:
        # decoded by a 256-entry table (sign, odd significand, exponent - its minimum): APoT, LNS, posits,
        # the three-term RF8 variants; exponent field = exp - exp_const >= 0
        nz = fmt.finite & (fmt.sig > 0)
        return dict(kind="table", exp_const=int(fmt.exp[nz].min()))
    raise HdlError(f"format {fmt.name!r} has kind {kind!r}; the generator builds residual, float, int and "
                   f"8-bit table formats ({', '.join(TABLE_KINDS)})")


def _model_decode(fmt: F.Format, code: int):
    """(sign, sig, exp, special) exactly as the hardware decoder derives them from the bit fields."""
    lay = _layout(fmt)
    special = int(fmt.special[code])
    if lay["kind"] == "int":
        v = code - 256 if code & 0x80 else code
        return (1 if v < 0 else 0), abs(v), 0, special
    if lay["kind"] == "table":
        sig = int(fmt.sig[code]) if not special else 0
        return int(fmt.sign[code]), sig, (int(fmt.exp[code]) if sig else None), special
    s = code >> 7
    E = (code >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
    M = code & ((1 << fmt.man_bits) - 1)
    if lay["kind"] == "residual":
        t, d = fmt.residuals[M]
        dmax = lay["dmax"]
        if E == 0:
            return s, 0, None, special
        return s, (1 << dmax) + (t << (dmax - d) if t else 0), E + lay["exp_const"], special
    if special:
        return s, 0, None, special
    sig = M | (1 << fmt.man_bits) if E else M
    return s, sig, max(E, 1) + lay["exp_const"], special


#: rf8sim.formats kinds the 8-bit decoders build as a table (ROM) of (sign, significand, exponent)
TABLE_KINDS = ("levels", "lns", "posit", "terms")


#: code width of the narrow weight formats the generator builds as 16-entry tables (product stages)
NARROW_BITS = 4


@functools.lru_cache(maxsize=None)
def _check_layout(fmt: F.Format) -> None:
    if fmt.code_bits not in (8, NARROW_BITS):
        raise HdlError(f"format {fmt.name!r} has {fmt.code_bits}-bit codes; the fixed-point MAC takes 8-bit "
                       f"formats ({', '.join(F.names(8))}) and the 4-bit ones ({', '.join(F.names(NARROW_BITS))}) "
                       f"as weights; 16-bit activations take acc fp32 or aligned:K:M")
    for c in range(fmt.n_codes):
        s, sig, e, sp = _model_decode(fmt, c)
        if sp != F.SPECIAL_FINITE:
            continue
        ok = s == int(fmt.sign[c]) and sig == int(fmt.sig[c]) and (sig == 0 or e == int(fmt.exp[c]))
        if not ok:
            raise HdlError(f"format {fmt.name!r}: code 0x{c:02X} does not follow the {fmt.kind} bit layout "
                           "the generator builds (sign | exponent field | low field)")


@dataclass(frozen=True)
class ProductPlan:
    """How the exact product of one 8-bit code pair is built, and its ranges."""

    a_fmt: F.Format
    w_fmt: F.Format
    mode: str          # "int-multiply", "shift-add(a)", "shift-add(w)", "multiply"
    p_lo: int
    p_hi: int
    xmin: int          # exponent of P's LSB when SH == 0
    xmax: int

    @classmethod
    def make(cls, a_fmt, w_fmt) -> "ProductPlan":
        a, w = F.get(a_fmt), F.get(w_fmt)
        return _product_plan(a, w)

    @property
    def p_width(self) -> int:
        return _bits_signed(self.p_lo, self.p_hi)

    @property
    def sh_width(self) -> int:
        return max(1, (self.xmax - self.xmin).bit_length())

    def aligned_range(self, frac_bits: int) -> tuple[int, int]:
        s_lo = self.xmin + frac_bits
        s_hi = self.xmax + frac_bits

        def al(v, s):
            return v << s if s >= 0 else v >> -s
        lo = min(al(self.p_lo, s_lo), al(self.p_lo, s_hi))
        hi = max(al(self.p_hi, s_lo), al(self.p_hi, s_hi))
        return min(lo, 0), max(hi, 0)


@functools.lru_cache(maxsize=None)
def _product_plan(a: F.Format, w: F.Format) -> ProductPlan:
    if a.kind == "int" and w.kind == "int":
        mode = "int-multiply"
    elif a.kind == "residual":
        mode = "shift-add(a)"
    elif w.kind == "residual":
        mode = "shift-add(w)"
    else:
        mode = "multiply"
    sa = np.where(a.sign == 1, -a.sig, a.sig)[a.finite]
    sw = np.where(w.sign == 1, -w.sig, w.sig)[w.finite]
    prods = np.outer(sa, sw)
    p_lo, p_hi = int(prods.min()), int(prods.max())
    xa = [x for x in (_model_decode(a, c)[2] for c in range(a.n_codes)) if x is not None]
    xw = [x for x in (_model_decode(w, c)[2] for c in range(w.n_codes)) if x is not None]
    return ProductPlan(a, w, mode, p_lo, p_hi, min(xa) + min(xw), max(xa) + max(xw))


# ---------------------------------------------------------------------------
# 16-bit float codes (fp32 / aligned accumulators)


@dataclass(frozen=True)
class FloatFields:
    """Bit fields of an IEEE-style float with 16-bit codes (taken from its rf8sim Format)."""

    name: str
    exp_bits: int
    man_bits: int
    bias: int

    @property
    def bits(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def emax_field(self) -> int:
        return (1 << self.exp_bits) - 1


def _is_ieee16(f: F.Format) -> bool:
    return f.code_bits == 16 and f.kind == "float" and f.specials == "ieee"


def float_activation_formats() -> tuple[str, ...]:
    """Registered formats the fp32 / aligned units take as activations: IEEE-style floats with 16-bit codes."""
    return tuple(n for n in F.names(16) if _is_ieee16(F.get(n)))


@functools.lru_cache(maxsize=None)
def float_fields(fmt) -> FloatFields:
    """The :class:`FloatFields` of a 16-bit IEEE-style float; HdlError naming the valid ones otherwise."""
    f = F.get(fmt)
    if not _is_ieee16(f):
        raise HdlError(f"{f.name!r} is not a 16-bit IEEE-style float; the 16-bit formats the generator builds "
                       f"are {', '.join(float_activation_formats())}")
    fl = FloatFields(f.name, f.exp_bits, f.man_bits, f.bias)
    # the decoder must reproduce the Format's tables (checked on all 65,536 codes)
    c = np.arange(1 << 16, dtype=np.int64)
    E = (c >> fl.man_bits) & fl.emax_field
    M = c & ((1 << fl.man_bits) - 1)
    fin = E != fl.emax_field
    sig = np.where(E == 0, M, M | (1 << fl.man_bits))
    exp = np.maximum(E, 1) - fl.bias - fl.man_bits
    ok = (np.array_equal(f.finite, fin) and np.array_equal(np.asarray(f.sig)[fin], sig[fin])
          and np.array_equal(np.asarray(f.sign)[fin], (c >> 15)[fin])
          and np.array_equal(np.asarray(f.exp)[fin & (sig > 0)], exp[fin & (sig > 0)]))
    if not ok:
        raise HdlError(f"format {f.name!r} does not follow the IEEE bit layout the generator builds")
    return fl


@dataclass(frozen=True)
class WeightPlan:
    """How a weight code of an fp32 / aligned unit is decoded in hardware: kind, widths and exponent range."""

    name: str
    kind: str          # residual / float / int / float16
    bits: int          # code width
    sig_hi: int        # largest hardware significand (residual: 2**dmax * (1 + t 2**-d))
    exp_lo: int        # exponent of the hardware significand's LSB, smallest and largest
    exp_hi: int

    @classmethod
    def make(cls, w_fmt) -> "WeightPlan":
        return _weight_plan(F.get(w_fmt))


@functools.lru_cache(maxsize=None)
def _weight_plan(f: F.Format) -> WeightPlan:
    if f.code_bits == 16:
        if f.name not in W16_FORMATS:
            raise HdlError(f"16-bit weight format {f.name!r}: the 16-bit weights are {', '.join(W16_FORMATS)} "
                           f"(the dequantized-weight baseline); 8-bit weights: {', '.join(F.names(8))}")
        fl = float_fields(f)
        return WeightPlan(f.name, "float16", 16, (1 << (fl.man_bits + 1)) - 1, 1 - fl.bias - fl.man_bits,
                          fl.emax_field - 1 - fl.bias - fl.man_bits)
    _check_layout(f)
    lay = _layout(f)
    if f.kind == "int":
        return WeightPlan(f.name, "int", 8, 128, 0, 0)
    E_hi = (1 << f.exp_bits) - 1
    if f.kind == "residual":
        dmax = lay["dmax"]
        hi = max((1 << dmax) + (t << (dmax - d) if t else 0) for t, d in f.residuals)
        return WeightPlan(f.name, "residual", 8, hi, 1 + lay["exp_const"], E_hi + lay["exp_const"])
    if lay["kind"] == "table":  # table decoder: odd significand, exponent field = exp - exp_const
        nz = f.finite & (f.sig > 0)
        return WeightPlan(f.name, "table", f.code_bits, int(f.sig[nz].max()), lay["exp_const"], int(f.exp[nz].max()))
    efs = {((c >> f.man_bits) & E_hi) for c in range(256) if f.finite[c]}  # exponent fields of finite codes
    return WeightPlan(f.name, "float", 8, (1 << (f.man_bits + 1)) - 1, max(min(efs), 1) + lay["exp_const"],
                      max(efs) + lay["exp_const"])


_PRODUCT_MODE = {"residual": "shift-add", "int": "int-multiply", "float": "multiply", "float16": "multiply",
                 "table": "multiply"}


# ---------------------------------------------------------------------------
# the spec


def _format(x, what: str) -> F.Format:
    if isinstance(x, F.Format):
        return x
    try:
        return F.get(x)
    except F.FormatError as e:
        if isinstance(x, str) and x.strip().lower() != x:
            try:
                return F.get(x.strip().lower())  # BF16 -> bf16: names are case-insensitive at the boundary
            except F.FormatError:
                pass
        raise HdlError(f"{what}: {e}") from None


def _lanes(lanes) -> int:
    if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or not 1 <= lanes <= MAX_LANES:
        raise HdlError(f"lanes must be an integer in 1..{MAX_LANES}, got {lanes!r}")
    return int(lanes)


@dataclass(frozen=True)
class MacSpec:
    """A MAC / dot-product unit: ``a`` x ``w`` (:class:`~rf8sim.formats.Format`), accumulator ``acc``
    (:class:`~rf8sim.accspec.AccSpec`; its ``kind`` picks the datapath), ``lanes`` products per beat,
    and the ``result`` port (``fixed``: the fixed-point accumulator; ``fp32``: also its RNE float32 --
    the fp32 / aligned accumulators' result is always the float32 register, ``result="fp32"``).

    Build it with :meth:`make` (validates, parses names once); every width the hardware needs is a
    property.  ``MacSpec`` is hashable, so it keys caches and parametrizes tests.
    """

    a: F.Format
    w: F.Format
    acc: AccSpec
    lanes: int = 1
    result: str = "fixed"

    @classmethod
    def make(cls, a="rf8", w="rf8", acc=None, lanes: int = 1, result: str | None = None) -> "MacSpec":
        """Validate and parse once: ``a``/``w`` a Format or a registered name (case-insensitive); ``acc``
        an AccSpec, ``"FRAC:WIDTH"``, ``"exact[:TERMS]"``, ``"fp32"``, ``"aligned:K:M"``, ``(frac, width)``
        or None (exact for 1024 terms with 8-bit activations, fp32 with 16-bit ones); ``result`` None
        picks the accumulator's own (fixed, or fp32 for the float accumulators)."""
        if isinstance(a, MacSpec):
            return a
        af, wf = _format(a, "activation format"), _format(w, "weight format")
        lanes = _lanes(lanes)
        if acc is None:
            acc = AccSpec.fp32() if af.code_bits == 16 else None
        if isinstance(acc, tuple):
            acc = AccSpec(*acc)
        elif isinstance(acc, str):
            text = acc.strip().lower()
            if af.code_bits == 16 and (text.startswith("exact") or re.fullmatch(r"\d+:\d+", text)):
                raise HdlError(f"accumulator {acc!r} is fixed point, which takes 8-bit activations; {af.name} "
                               f"activations take 'fp32' or 'aligned:K:M' (K in 1..{MAX_BLOCK}, a multiple of "
                               f"lanes; M in {ALIGN_BITS_RANGE[0]}..{ALIGN_BITS_RANGE[1]})")
            if af.code_bits == 8:
                _check_layout(af)
                _check_layout(wf)
            acc = AccSpec.parse(text, af, wf)
        if acc is None:
            _check_layout(af)
            _check_layout(wf)
            acc = AccSpec.exact(af, wf)
        if not isinstance(acc, AccSpec):
            raise HdlError(f"acc must be an AccSpec, 'FRAC:WIDTH', 'exact[:TERMS]', 'fp32', 'aligned:K:M' or "
                           f"(frac, width); got {acc!r}")
        if acc.kind == "fixed":
            return cls._make_fixed(af, wf, acc, lanes, "fixed" if result is None else result)
        return cls._make_float(af, wf, acc, lanes, "fp32" if result is None else result)

    @classmethod
    def _make_fixed(cls, a, w, acc, lanes, result) -> "MacSpec":
        for f in (a, w):
            _check_layout(f)
        if acc.width > MAX_WIDTH:  # AccSpec already refuses this; kept for a clear message
            raise HdlError(f"accumulator width {acc.width} exceeds the golden model's {MAX_WIDTH} bits")
        if acc.width < acc.frac_bits + 2:
            raise HdlError(
                f"accumulator {acc} is too narrow: it cannot hold the product 1 x 1 = 1.0 "
                f"(needs width >= frac_bits + 2 = {acc.frac_bits + 2}); widen it or lower frac_bits")
        if result not in RESULTS:
            raise HdlError(f"result must be one of {', '.join(RESULTS)}, got {result!r}")
        spec = cls(a, w, acc, lanes, result)
        lo, hi = spec.aligned_range
        # the golden model holds one beat's lane sum plus the accumulator in 127 bits
        if lanes * (max(hi, -lo) + 1) + (1 << (acc.width - 1)) >= 1 << MAX_WIDTH:
            raise HdlError(
                f"accumulator {acc} with {lanes} lane(s) of {a.name} x {w.name} needs a lane sum wider than the "
                f"golden model's {MAX_WIDTH}-bit datapath; use fewer frac_bits or fewer lanes")
        return spec

    @classmethod
    def _make_float(cls, a, w, acc, lanes, result) -> "MacSpec":
        if not _is_ieee16(a):
            raise HdlError(f"activation format {a.name!r}: the {acc.kind} accumulator takes 16-bit float "
                           f"activations ({', '.join(float_activation_formats())}); 8-bit activations take a "
                           "fixed-point accumulator (exact[:TERMS] or FRAC:WIDTH)")
        float_fields(a)
        _weight_plan(w)
        if result != "fp32":
            raise HdlError(f"result {result!r}: the {acc} accumulator is a float32 register (out_acc holds its bit "
                           "pattern), so its result is fp32; result 'fixed' needs a fixed-point accumulator")
        if acc.kind == "aligned" and acc.block % lanes:
            raise HdlError(f"{acc}: K = {acc.block} must be a multiple of lanes = {lanes} "
                           "(a block is K / lanes beats)")
        return cls(a, w, acc, lanes, result)

    # ---- common --------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The datapath: ``acc.kind`` (fixed, fp32 or aligned)."""
        return self.acc.kind

    @property
    def a_bits(self) -> int:
        return self.a.code_bits

    @property
    def w_bits(self) -> int:
        return self.w.code_bits

    @property
    def acc_bits(self) -> int:
        """Width of ``out_acc``: the fixed-point register, or 32 (float32 bit pattern)."""
        return self.acc.width if self.kind == "fixed" else 32

    @property
    def has_fp32_port(self) -> bool:
        """Whether the unit has a separate ``out_fp32`` port (fixed accumulators with ``result="fp32"``)."""
        return self.kind == "fixed" and self.result == "fp32"

    @property
    def latency(self) -> int:
        """Clock edges from sampling a beat to its output (aligned: for a block fed on consecutive clocks)."""
        if self.kind == "aligned":
            return self.beats_per_block + 3
        return LATENCY

    def module_name(self) -> str:
        """The Verilog module name encoding the spec (a legal identifier)."""
        if self.kind == "fixed":
            name = f"mac_{self.a.name}x{self.w.name}_f{self.acc.frac_bits}w{self.acc.width}_l{self.lanes}_{self.result}"
        else:
            acc = "fp32" if self.kind == "fp32" else f"al{self.acc.block}m{self.acc.align_bits}"
            name = f"mac_{self.a.name}x{self.w.name}_{acc}_l{self.lanes}"
        return re.sub(r"[^A-Za-z0-9_]", "_", name)

    def describe(self) -> dict:
        """The spec and its derived widths (the ``config`` of records and Verilog headers)."""
        if self.kind == "fixed":
            p = self.product
            return {
                "a_fmt": self.a.name, "w_fmt": self.w.name, "acc_frac_bits": self.acc.frac_bits,
                "acc_width": self.acc.width, "lanes": self.lanes, "out": self.result, "latency": self.latency,
                "product": p.mode, "product_width": p.p_width, "shift_width": p.sh_width,
                "exp_offset": p.xmin, "aligned_width": self.aligned_width, "lane_sum_width": self.lane_sum_width,
            }
        d = {"a_fmt": self.a.name, "w_fmt": self.w.name, "acc": str(self.acc), "lanes": self.lanes,
             "latency": self.latency, "product": _PRODUCT_MODE[self.w_plan.kind], "product_width": self.p_width,
             "product_exp_width": self.p_exp_width}
        if self.kind == "aligned":
            d.update(K=self.acc.block, M=self.acc.align_bits, beats_per_block=self.beats_per_block,
                     block_width=self.block_width, lane_sum_width=self.lane_sum_width,
                     buffer_bits=2 * self.acc.block * (16 + self.w_plan.bits))
        return d

    def with_(self, **changes) -> "MacSpec":
        """A validated copy with some fields changed (e.g. ``spec.with_(lanes=1)``)."""
        d = {"a": self.a, "w": self.w, "acc": self.acc, "lanes": self.lanes, "result": self.result, **changes}
        return MacSpec.make(d["a"], d["w"], d["acc"], d["lanes"], d["result"])

    # ---- fixed accumulator: widths from exact ranges over the 65,536 code pairs ----
    @property
    def product(self) -> ProductPlan:
        return _product_plan(self.a, self.w)

    @property
    def aligned_range(self) -> tuple[int, int]:
        return self.product.aligned_range(self.acc.frac_bits)

    @property
    def aligned_width(self) -> int:
        return _bits_signed(*self.aligned_range)

    @property
    def lane_sum_width(self) -> int:
        """Bits of the exact adder tree over the lanes (fixed: aligned products; aligned: block terms)."""
        if self.kind == "fixed":
            lo, hi = self.aligned_range
            return _bits_signed(lo * self.lanes, hi * self.lanes)
        return _bits_signed(-self.lanes * self.term_hi, self.lanes * self.term_hi)

    # ---- fp32 / aligned accumulators ----------------------------------------
    @property
    def a_fields(self) -> FloatFields:
        return float_fields(self.a)

    @property
    def w_plan(self) -> WeightPlan:
        return _weight_plan(self.w)

    @property
    def beats_per_block(self) -> int:
        return self.acc.block // self.lanes if self.kind == "aligned" else 1

    @property
    def a_sig_hi(self) -> int:
        return (1 << (self.a_fields.man_bits + 1)) - 1

    @property
    def p_width(self) -> int:
        """Bits of the exact product magnitude of the float product stage."""
        return (self.a_sig_hi * self.w_plan.sig_hi).bit_length()

    @property
    def a_exp_range(self) -> tuple[int, int]:
        a = self.a_fields
        return 1 - a.bias - a.man_bits, a.emax_field - 1 - a.bias - a.man_bits

    @property
    def p_exp_width(self) -> int:
        lo, hi = self.a_exp_range
        return _bits_signed(lo + self.w_plan.exp_lo, hi + self.w_plan.exp_hi)

    @property
    def term_hi(self) -> int:
        """aligned: largest |a_int * w| in units of 2**(q + exp_lo of the weight)."""
        w = self.w_plan
        return ((1 << (self.acc.align_bits - 1)) - 1) * w.sig_hi << (w.exp_hi - w.exp_lo)

    @property
    def block_width(self) -> int:
        """aligned: bits of the exact block register (K terms cannot overflow it)."""
        return _bits_signed(-self.acc.block * self.term_hi, self.acc.block * self.term_hi)
