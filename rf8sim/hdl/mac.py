"""Amaranth generator of the rf8sim MAC / dot-product unit.

Datapath (one beat = ``lanes`` code pairs per clock)::

    stage 1 (registered)      decode -> exact product P (signed integer) and exponent offset SH
                              per lane; NaN/Inf operands force P = 0 and raise the beat's invalid bit
    stage 2 (accumulator)     P * 2**(SH + xmin + frac) floored (arithmetic shift), exact adder tree
                              over lanes, one saturating add into the accumulator, sticky flags

Everything is derived from the :class:`rf8sim.formats.Format` objects and the
:class:`rf8sim.golden.AccSpec`: field positions, biases, RF8 residual shifts, and
every internal width (computed from the exact range of the 65,536 products), so
a registered RF8 variant gets its own hardware without editing this file.

The product stage is specialised per format pair:

* an RF8-family operand is ``2**e * (1 + t * 2**-d)``, so a product with it is
  ``(x << dmax) +/- (x << (dmax - d))``: one shifter mux and one adder, no multiplier array;
* two OCP floats multiply their significands (hidden bit from ``E != 0``, so
  subnormals come for free) in a small array multiplier;
* INT8 x INT8 is a signed 8 x 8 multiplier.
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import formats as F
from ..golden.accspec import MAX_WIDTH, AccSpec

__all__ = ["HdlError", "MacConfig", "MacUnit", "ProductStage", "Fp32Convert", "LATENCY",
           "OUT_MODES", "MAX_LANES"]

#: Clock edges from sampling a beat to the accumulator (and flags, fp32) showing it.
LATENCY = 2
OUT_MODES = ("fixed", "fp32")
MAX_LANES = 64


class HdlError(RF8SimError, ValueError):
    """Invalid generator parameters or a missing HDL tool, with what to change or install."""


def _bits_signed(lo: int, hi: int) -> int:
    """Smallest two's complement width holding every integer in [lo, hi]."""
    return max(max(hi, 0).bit_length(), max(-lo - 1, 0).bit_length()) + 1


def _layout(fmt: F.Format):
    """Per code, what the decoder below computes; checked against the Format tables."""
    kind = fmt.kind
    if kind == "residual":
        dmax = max(d for _, d in fmt.residuals)
        return dict(kind=kind, dmax=dmax, exp_const=-(fmt.bias + dmax))
    if kind == "float":
        return dict(kind=kind, exp_const=-(fmt.bias + fmt.man_bits))
    if kind == "int":
        return dict(kind=kind, exp_const=0)
    raise HdlError(f"format {fmt.name!r} has kind {kind!r}; the generator builds residual, float and int formats")


def _model_decode(fmt: F.Format, code: int):
    """(sign, sig, exp, special) exactly as the hardware decoder derives them from the bit fields."""
    lay = _layout(fmt)
    special = int(fmt.special[code])
    if lay["kind"] == "int":
        v = code - 256 if code & 0x80 else code
        return (1 if v < 0 else 0), abs(v), 0, special
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


def _check_layout(fmt: F.Format) -> None:
    for c in range(256):
        s, sig, e, sp = _model_decode(fmt, c)
        if sp != F.SPECIAL_FINITE:
            continue
        ok = s == int(fmt.sign[c]) and sig == int(fmt.sig[c]) and (sig == 0 or e == int(fmt.exp[c]))
        if not ok:
            raise HdlError(f"format {fmt.name!r}: code 0x{c:02X} does not follow the {fmt.kind} bit layout "
                           "the generator builds (sign | exponent field | low field)")


@dataclass(frozen=True)
class MacConfig:
    """Validated generator parameters and every width derived from them."""

    a_fmt: F.Format
    w_fmt: F.Format
    acc: AccSpec
    lanes: int
    out: str

    @classmethod
    def make(cls, a_fmt, w_fmt, acc=None, lanes: int = 1, out: str = "fixed") -> "MacConfig":
        a, w = F.get(a_fmt), F.get(w_fmt)
        for f in (a, w):
            _check_layout(f)
        if acc is None:
            acc = AccSpec.exact(a, w)
        elif isinstance(acc, str):
            acc = AccSpec.parse(acc, a, w)
        elif isinstance(acc, tuple):
            acc = AccSpec(*acc)
        if not isinstance(acc, AccSpec):
            raise HdlError(f"acc must be an AccSpec, 'FRAC:WIDTH', 'exact[:TERMS]' or (frac, width); got {acc!r}")
        if acc.width > MAX_WIDTH:  # AccSpec already refuses this; kept for a clear message
            raise HdlError(f"accumulator width {acc.width} exceeds the golden model's {MAX_WIDTH} bits")
        if acc.width < acc.frac_bits + 2:
            raise HdlError(
                f"accumulator {acc} is too narrow: it cannot hold the product 1 x 1 = 1.0 "
                f"(needs width >= frac_bits + 2 = {acc.frac_bits + 2}); widen it or lower frac_bits")
        if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or not 1 <= lanes <= MAX_LANES:
            raise HdlError(f"lanes must be an integer in 1..{MAX_LANES}, got {lanes!r}")
        if out not in OUT_MODES:
            raise HdlError(f"out must be one of {', '.join(OUT_MODES)}, got {out!r}")
        cfg = cls(a, w, acc, int(lanes), out)
        lo, hi = cfg.aligned_range
        # the golden model holds one beat's lane sum plus the accumulator in 127 bits
        if int(lanes) * (max(hi, -lo) + 1) + (1 << (acc.width - 1)) >= 1 << MAX_WIDTH:
            raise HdlError(
                f"accumulator {acc} with {lanes} lane(s) of {a.name} x {w.name} needs a lane sum wider than the "
                f"golden model's {MAX_WIDTH}-bit datapath; use fewer frac_bits or fewer lanes")
        return cfg

    # ---- derived widths (all from exact ranges over the 65,536 code pairs) ----
    @property
    def product(self) -> "ProductPlan":
        return ProductPlan.make(self.a_fmt, self.w_fmt)

    @property
    def aligned_range(self) -> tuple[int, int]:
        p = self.product
        return p.aligned_range(self.acc.frac_bits)

    @property
    def aligned_width(self) -> int:
        return _bits_signed(*self.aligned_range)

    @property
    def sum_width(self) -> int:
        lo, hi = self.aligned_range
        return _bits_signed(lo * self.lanes, hi * self.lanes)

    @property
    def latency(self) -> int:
        return LATENCY

    def describe(self) -> dict:
        p = self.product
        return {
            "a_fmt": self.a_fmt.name, "w_fmt": self.w_fmt.name, "acc_frac_bits": self.acc.frac_bits,
            "acc_width": self.acc.width, "lanes": self.lanes, "out": self.out, "latency": self.latency,
            "product": p.mode, "product_width": p.p_width, "shift_width": p.sh_width,
            "exp_offset": p.xmin, "aligned_width": self.aligned_width, "lane_sum_width": self.sum_width,
        }


@dataclass(frozen=True)
class ProductPlan:
    """How the exact product of one code pair is built, and its ranges."""

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
        xa = [(_model_decode(a, c)[2]) for c in range(256)]
        xw = [(_model_decode(w, c)[2]) for c in range(256)]
        xa = [x for x in xa if x is not None]
        xw = [x for x in xw if x is not None]
        return cls(a, w, mode, p_lo, p_hi, min(xa) + min(xw), max(xa) + max(xw))

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


class _Decoded:
    """Hardware fields of one operand code."""

    def __init__(self, m: Module, fmt: F.Format, code, name: str):
        lay = _layout(fmt)
        self.fmt, self.kind = fmt, lay["kind"]
        self.exp_const = lay["exp_const"]
        # NaN/Inf: an OR of the 7-bit patterns the Format table marks special (sign ignored)
        pats = sorted({c & 0x7F for c in range(256) if fmt.special[c] != F.SPECIAL_FINITE})
        if any(fmt.special[p] != fmt.special[p | 0x80] for p in pats):
            raise HdlError(f"format {fmt.name!r}: specials depend on the sign bit, which the generator does not support")
        self.special = Signal(name=f"{name}_special")
        m.d.comb += self.special.eq(0)
        for p in pats:
            with m.If(code[0:7] == p):
                m.d.comb += self.special.eq(1)
        if self.kind == "int":
            self.sign = Const(0, 1)
            self.value = code.as_signed()           # signed 8-bit, the operand itself
            self.efield = Const(0, 1)
            self.efield_min = 0
            self.zero = Const(0, 1)
            return
        mb, eb = fmt.man_bits, fmt.exp_bits
        self.sign = code[7]
        E = code[mb:mb + eb]
        low = code[0:mb]
        self.low = low
        if self.kind == "residual":
            self.dmax = lay["dmax"]
            self.efield = E
            self.efield_min = 1
            self.zero = Signal(name=f"{name}_zero")
            m.d.comb += self.zero.eq(E == 0)
            # significand * 2**dmax as a constant mux on R (used when the other operand shifts by this one)
            sig = Signal(range(1 << (self.dmax + 2)), name=f"{name}_sig")
            with m.Switch(low):
                for r, (t, d) in enumerate(fmt.residuals):
                    with m.Case(r):
                        m.d.comb += sig.eq(Mux(self.zero, 0, (1 << self.dmax) + (t << (self.dmax - d) if t else 0)))
            self.value = sig
        else:  # OCP float: hidden bit = (E != 0); subnormals use exponent field 1
            nz = Signal(name=f"{name}_normal")
            m.d.comb += nz.eq(E != 0)
            self.value = Cat(low, nz)
            ef = Signal(eb, name=f"{name}_efield")
            m.d.comb += ef.eq(Mux(nz, E, 1))
            self.efield = ef
            self.efield_min = 1
            self.zero = Const(0, 1)


def _shift_add(m: Module, r: _Decoded, x, name: str):
    """x * (2**dmax + t * 2**(dmax - d)) for the residual operand r: one mux of shifts, one adder."""
    dmax = r.dmax
    xw = len(x) + dmax + 1
    xs = x.as_signed() if x.shape().signed else x
    base = Signal(signed(xw + 1), name=f"{name}_base")
    m.d.comb += base.eq(xs << dmax)
    term = Signal(signed(xw + 1), name=f"{name}_term")
    sub = Signal(name=f"{name}_sub")
    with m.Switch(r.low):
        for code, (t, d) in enumerate(r.fmt.residuals):
            with m.Case(code):
                m.d.comb += [term.eq(xs << (dmax - d) if t else 0), sub.eq(t < 0)]
    res = Signal(signed(xw + 2), name=f"{name}_sum")
    # one adder: base - term == base + ~term + 1
    m.d.comb += res.eq(base + (term ^ sub.replicate(len(term))) + sub)
    return res


class ProductStage(wiring.Component):
    """Exact product of one code pair, combinational.

    ``p * 2**(sh + xmin)`` is the exact product (``xmin = plan.xmin``); NaN/Inf operands
    give ``p = 0`` and ``special = 1``.  ``sh`` is meaningless when ``p == 0``.
    """

    def __init__(self, a_fmt, w_fmt):
        self.plan = ProductPlan.make(a_fmt, w_fmt)
        for f in (self.plan.a_fmt, self.plan.w_fmt):
            _check_layout(f)
        super().__init__({
            "a": In(8), "w": In(8),
            "p": Out(signed(self.plan.p_width)), "sh": Out(self.plan.sh_width), "special": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        a = _Decoded(m, plan.a_fmt, self.a, "a")
        w = _Decoded(m, plan.w_fmt, self.w, "w")
        if plan.mode == "shift-add(a)":
            prod, neg = _shift_add(m, a, w.value, "pa"), a.sign ^ w.sign
        elif plan.mode == "shift-add(w)":
            prod, neg = _shift_add(m, w, a.value, "pw"), a.sign ^ w.sign
        else:  # array multipliers: signed 8x8 for int, unsigned significands for floats
            prod, neg = a.value * w.value, a.sign ^ w.sign
        kill = a.special | w.special | a.zero | w.zero
        p = Signal(signed(plan.p_width), name="p_exact")
        m.d.comb += p.eq(Mux(kill, 0, Mux(neg, -prod, prod)))
        m.d.comb += [self.p.eq(p), self.special.eq(a.special | w.special)]
        # exponent offset: sum of exponent fields minus their smallest nonzero-product sum
        shw = plan.sh_width
        esum = Signal(shw + 2, name="esum")
        m.d.comb += esum.eq(a.efield + w.efield - (a.efield_min + w.efield_min))
        m.d.comb += self.sh.eq(esum[0:shw])
        return m


def align_product(m: Module, cfg: "MacConfig", p, sh, i):
    """``floor(p * 2**(sh + xmin) * 2**frac_bits)`` of one product from :class:`ProductStage`
    (an arithmetic shift: toward -inf), as a signed ``cfg.aligned_width``-bit signal."""
    plan = cfg.product
    span = plan.xmax - plan.xmin
    s0 = plan.xmin + cfg.acc.frac_bits
    wide = Signal(signed(plan.p_width + span), name=f"shifted{i}")
    m.d.comb += wide.eq((p << sh)[0:plan.p_width + span])
    al = Signal(signed(cfg.aligned_width), name=f"aligned{i}")
    m.d.comb += al.eq(wide << s0 if s0 >= 0 else wide >> -s0)  # signed >>: floor
    return al


class Fp32Convert(wiring.Component):
    """Round-to-nearest-even float32 of a signed fixed-point value with ``frac_bits`` fraction bits.

    No overflow or subnormal handling is needed: widths <= 127 and frac_bits <= 96
    keep every nonzero magnitude inside [2**-96, 2**126].
    """

    def __init__(self, width: int, frac_bits: int):
        self.width, self.frac_bits = width, frac_bits
        super().__init__({"x": In(signed(width)), "f": Out(32)})

    def elaborate(self, platform):
        m = Module()
        W, FB = self.width, self.frac_bits
        sign = self.x[W - 1]
        mag = Signal(W, name="mag")
        m.d.comb += mag.eq(Mux(sign, -self.x, self.x))
        msb = Signal(range(W), name="msb")  # index of the leading one (priority: last If wins)
        for i in range(W):
            with m.If(mag[i]):
                m.d.comb += msb.eq(i)
        NW = max(W, 26)
        lz = Signal(range(NW), name="lz")
        m.d.comb += lz.eq(W - 1 - msb)
        ext = Signal(NW, name="ext")
        m.d.comb += ext.eq(mag << (NW - W))
        norm = Signal(NW, name="norm")
        m.d.comb += norm.eq((ext << lz)[0:NW])
        man = norm[NW - 24:NW - 1]
        rnd = norm[NW - 25]
        sticky = norm[0:NW - 25].any() if NW > 25 else Const(0, 1)
        inc = rnd & (sticky | man[0])
        bexp = Signal(8, name="bexp")
        m.d.comb += bexp.eq(msb - FB + 127)
        body = Signal(31, name="body")
        m.d.comb += body.eq(Cat(man, bexp) + inc)  # a mantissa carry bumps the exponent
        m.d.comb += self.f.eq(Mux(mag == 0, 0, Cat(body, sign)))
        return m


class MacUnit(wiring.Component):
    """A ``lanes``-wide MAC: ``acc += sum_i a_i * w_i`` per beat, bit-exact to :mod:`rf8sim.golden`.

    Ports (Verilog names): ``clk``, ``rst`` (synchronous, active high), ``in_valid``,
    ``in_clear``, ``in_a``/``in_w`` (lane i in bits 8i+7..8i), ``out_valid``, ``out_acc``,
    ``out_overflow``, ``out_invalid`` and, with ``out="fp32"``, ``out_fp32``.  The
    accumulator after a beat appears ``latency`` (= 2) clocks after the beat was sampled.
    """

    def __init__(self, a_fmt="rf8", w_fmt="rf8", acc=None, lanes: int = 1, out: str = "fixed"):
        try:
            self.config = MacConfig.make(a_fmt, w_fmt, acc, lanes, out)
        except Exception:
            self._MustUse__silence = True  # a rejected configuration is not an unused elaboratable
            raise
        cfg = self.config
        ports = {
            "in_valid": In(1), "in_clear": In(1),
            "in_a": In(8 * cfg.lanes), "in_w": In(8 * cfg.lanes),
            "out_valid": Out(1), "out_acc": Out(signed(cfg.acc.width)),
            "out_overflow": Out(1), "out_invalid": Out(1),
        }
        if cfg.out == "fp32":
            ports["out_fp32"] = Out(32)
        super().__init__(ports)

    @property
    def latency(self) -> int:
        return self.config.latency

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        plan = cfg.product
        acc = cfg.acc
        L = cfg.lanes
        # ---- stage 1: products -------------------------------------------------
        v1 = Signal(name="s1_valid")
        c1 = Signal(name="s1_clear")
        inv1 = Signal(name="s1_invalid", reset_less=True)
        m.d.sync += [v1.eq(self.in_valid), c1.eq(self.in_clear)]
        p1, sh1, specials = [], [], []
        for i in range(L):
            ps = ProductStage(cfg.a_fmt, cfg.w_fmt)
            m.submodules[f"product{i}"] = ps
            m.d.comb += [ps.a.eq(self.in_a[8 * i:8 * i + 8]), ps.w.eq(self.in_w[8 * i:8 * i + 8])]
            p = Signal(signed(plan.p_width), name=f"s1_p{i}", reset_less=True)
            sh = Signal(plan.sh_width, name=f"s1_sh{i}", reset_less=True)
            m.d.sync += [p.eq(ps.p), sh.eq(ps.sh)]
            p1.append(p)
            sh1.append(sh)
            specials.append(ps.special)
        m.d.sync += inv1.eq(Cat(*specials).any())
        # ---- stage 2: align (floor), lane sum, saturating accumulate ------------
        aligned = [align_product(m, cfg, p1[i], sh1[i], i) for i in range(L)]
        sw = cfg.sum_width
        level = 0
        while len(aligned) > 1:  # balanced adder tree; every node is wide enough for the exact sum
            nxt = []
            for j in range(0, len(aligned) - 1, 2):
                s = Signal(signed(sw), name=f"tree{level}_{j // 2}")
                m.d.comb += s.eq(aligned[j] + aligned[j + 1])
                nxt.append(s)
            if len(aligned) % 2:
                nxt.append(aligned[-1])
            aligned, level = nxt, level + 1
        beat = aligned[0]
        accr = Signal(signed(acc.width), name="acc")
        ovf = Signal(name="overflow")
        inv = Signal(name="invalid")
        v2 = Signal(name="s2_valid")
        tw = max(sw, acc.width) + 1
        total = Signal(signed(tw), name="total")
        m.d.comb += total.eq(Mux(c1, 0, accr) + beat)
        hi = total > acc.max
        lo = total < acc.min
        m.d.sync += v2.eq(v1)
        with m.If(v1):
            m.d.sync += [
                accr.eq(Mux(hi, acc.max, Mux(lo, acc.min, total))),
                ovf.eq((ovf & ~c1) | hi | lo),
                inv.eq((inv & ~c1) | inv1),
            ]
        m.d.comb += [self.out_valid.eq(v2), self.out_acc.eq(accr),
                     self.out_overflow.eq(ovf), self.out_invalid.eq(inv)]
        if cfg.out == "fp32":
            conv = Fp32Convert(acc.width, acc.frac_bits)
            m.submodules.fp32 = conv
            m.d.comb += [conv.x.eq(accr), self.out_fp32.eq(conv.f)]
        return m
