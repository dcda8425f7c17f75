"""Amaranth generator of the rf8sim MAC / dot-product unit.

Datapath (one beat = ``lanes`` code pairs per clock)::

    stage 1 (registered)      decode -> exact product P (signed integer) and exponent offset SH
                              per lane; NaN/Inf operands force P = 0 and raise the beat's invalid bit
    stage 2 (accumulator)     P * 2**(SH + xmin + frac) floored (arithmetic shift), exact adder tree
                              over lanes, one saturating add into the accumulator, sticky flags

Everything is derived from the :class:`rf8sim.formats.Format` objects and the
:class:`rf8sim.accspec.AccSpec` (one :class:`rf8sim.hdl.spec.MacSpec`): field positions, biases, RF8 residual shifts, and
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

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import formats as F
from .spec import LATENCY, MAX_LANES, NARROW_BITS, RESULTS, HdlError, MacSpec, ProductPlan, _check_layout, _layout

__all__ = ["HdlError", "MacConfig", "MacUnit", "ProductStage", "Fp32Convert", "LATENCY", "OUT_MODES", "MAX_LANES",
           "spec_of"]

#: Deprecated name of :data:`rf8sim.hdl.spec.RESULTS`.
OUT_MODES = RESULTS


def spec_of(args, kwargs, owner: str) -> MacSpec:
    """The MacSpec of a unit constructor called as ``Unit(spec)`` or, deprecated, ``Unit(a_fmt, w_fmt, acc, ...)``."""
    if len(args) == 1 and not kwargs and isinstance(args[0], MacSpec):
        return args[0]
    import warnings

    warnings.warn(f"{owner}(a_fmt, w_fmt, acc, lanes, ...) is deprecated: build the unit from a spec, "
                  f"{owner}(MacSpec.make(a, w, acc, lanes, result)) or rf8sim.hdl.make_unit(spec)",
                  DeprecationWarning, stacklevel=3)
    names = ("a", "w", "acc", "lanes", "result")
    kw = dict(zip(names, args))
    for k, v in kwargs.items():
        kw[{"a_fmt": "a", "w_fmt": "w", "out": "result"}.get(k, k)] = v
    return MacSpec.make(**kw)


class MacConfig:
    """Deprecated: :meth:`rf8sim.hdl.MacSpec.make` (same arguments; ``out`` is ``result``)."""

    @staticmethod
    def make(a_fmt, w_fmt, acc=None, lanes: int = 1, out: str = "fixed") -> MacSpec:
        import warnings

        warnings.warn("MacConfig.make is deprecated: use rf8sim.hdl.MacSpec.make(a, w, acc, lanes, result)",
                      DeprecationWarning, stacklevel=2)
        return MacSpec.make(a_fmt, w_fmt, acc, lanes, out)


class _Decoded:
    """Hardware fields of one operand code."""

    def __init__(self, m: Module, fmt: F.Format, code, name: str):
        lay = _layout(fmt)
        self.fmt, self.kind = fmt, lay["kind"]
        self.exp_const = lay["exp_const"]
        if self.kind == "table":  # a 256-entry (4-bit codes: 16-entry) ROM: sign, significand, exponent field, special
            fin = fmt.finite & (fmt.sig > 0)
            n = fmt.n_codes
            sp = [int(fmt.special[c] != F.SPECIAL_FINITE) for c in range(n)]
            sig = [0 if sp[c] else int(fmt.sig[c]) for c in range(n)]
            fields = {"sign": [0 if sp[c] else int(fmt.sign[c]) for c in range(n)], "sig": sig,
                      "efield": [int(fmt.exp[c]) - self.exp_const if sig[c] else 0 for c in range(n)],
                      "special": sp, "zero": [int(v == 0) for v in sig]}
            out = {}
            for k, vals in fields.items():
                wd = max(1, max(vals).bit_length())
                rom = Const(sum(v << (c * wd) for c, v in enumerate(vals)), n * wd)
                out[k] = Signal(wd, name=f"{name}_{k}")
                # a constant indexed by the code: a continuous assignment (no process to start at time 0)
                m.d.comb += out[k].eq(rom.bit_select(code * wd, wd))
            self.sign, self.value, self.efield = out["sign"], out["sig"], out["efield"]
            self.special, self.zero, self.efield_min = out["special"], out["zero"], 0
            assert int(fmt.sig[fin].max()).bit_length() == len(self.value)
            return
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

    def __init__(self, a_fmt, w_fmt=None):
        """``ProductStage(spec)`` (a fixed-accumulator :class:`MacSpec`) or ``ProductStage(a_fmt, w_fmt)``."""
        if isinstance(a_fmt, MacSpec):
            a_fmt, w_fmt = a_fmt.a, a_fmt.w
        for f in (F.get(a_fmt), F.get(w_fmt)):
            _check_layout(f)
        self.plan = ProductPlan.make(a_fmt, w_fmt)
        super().__init__({
            "a": In(self.plan.a_fmt.code_bits), "w": In(self.plan.w_fmt.code_bits),
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


def narrow_unit_error(spec: MacSpec) -> None:
    """HdlError for a whole unit with 4-bit codes: those formats are built as product stages only."""
    narrow = [f.name for f in (spec.a, spec.w) if f.code_bits == NARROW_BITS]
    if narrow:
        raise HdlError(f"{', '.join(narrow)} has 4-bit codes: the generator builds its product stage only "
                       f"(rf8sim synth --stage product, rf8sim study zoo-prove / zoo-rtl), not a whole MAC unit; "
                       f"whole units take 8-bit weights ({', '.join(F.names(8))}) or bf16")


def align_product(m: Module, cfg: MacSpec, p, sh, i):
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
    ``out_overflow``, ``out_invalid`` and, with ``result="fp32"``, ``out_fp32``.  Built from a fixed-accumulator
    :class:`~rf8sim.hdl.spec.MacSpec` (``MacUnit(spec)``, or :func:`rf8sim.hdl.make_unit`); the older
    ``MacUnit(a_fmt, w_fmt, acc, lanes, out)`` still works with a DeprecationWarning.  The
    accumulator after a beat appears ``latency`` (= 2) clocks after the beat was sampled.
    """

    def __init__(self, *args, **kwargs):
        try:
            self.spec = spec_of(args, kwargs, "MacUnit")
            if self.spec.kind != "fixed":
                raise HdlError(f"MacUnit builds fixed-point accumulators, not {self.spec.acc}: use "
                               "rf8sim.hdl.make_unit(spec), which picks the datapath by acc.kind")
            narrow_unit_error(self.spec)
        except Exception:
            self._MustUse__silence = True  # a rejected configuration is not an unused elaboratable
            raise
        cfg = self.spec
        ports = {
            "in_valid": In(1), "in_clear": In(1),
            "in_a": In(8 * cfg.lanes), "in_w": In(8 * cfg.lanes),
            "out_valid": Out(1), "out_acc": Out(signed(cfg.acc.width)),
            "out_overflow": Out(1), "out_invalid": Out(1),
        }
        if cfg.has_fp32_port:
            ports["out_fp32"] = Out(32)
        super().__init__(ports)

    @property
    def config(self) -> MacSpec:
        """Deprecated name of :attr:`spec`."""
        return self.spec

    @property
    def latency(self) -> int:
        return self.spec.latency

    def elaborate(self, platform):
        m = Module()
        cfg = self.spec
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
            ps = ProductStage(cfg.a, cfg.w)
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
        sw = cfg.lane_sum_width
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
        if cfg.has_fp32_port:
            conv = Fp32Convert(acc.width, acc.frac_bits)
            m.submodules.fp32 = conv
            m.d.comb += [conv.x.eq(accr), self.out_fp32.eq(conv.f)]
        return m
