"""Amaranth generator of the W8A16 units: 8-bit (or bf16) weights against bf16/fp16 activations.

Two accumulators (docs/formats.md, "W8A16"):

``fp32``  (:class:`Fp32MacUnit`)::

    stage 1 (registered)  per lane: decode, exact product (sign, magnitude, exponent, NaN/Inf) --
                          an RF8 weight is one shift-and-add of the activation significand,
                          OCP floats / bf16 / int8 multiply significands
    stage 2 (accumulator) a chain of ``lanes`` exact fused adders (:class:`Fp32Add`, one RNE
                          each, lane 0 first) into the float32 accumulator register, sticky flags

``aligned:K:M``  (:class:`AlignedMacUnit` = :class:`AlignUnit` + :class:`AlignedColumn`)::

    AlignUnit       double-buffered block buffer (2 x K activation/weight pairs), running max of
                    the exponent fields per block, then per lane a right shifter with RNE and
                    saturation to a sign + (M-1)-bit magnitude; emits one pre-aligned beat per clock
    AlignedColumn   per lane one shift-and-add (RF8) or small multiplier, an exact adder tree, the
                    exact fixed-point block register, and one :class:`Fp32Add` at the block's end

In an array the AlignUnit is built once per activation stream and its pre-aligned bus
is shared by every output column (FIGNA's arrangement); the generated unit is one
column, so synthesis reports the two parts separately (docs/hdl.md).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import formats as F
from .mac import _Decoded, _shift_add, spec_of
from .spec import HdlError, FloatFields, MacSpec, WeightPlan, _bits_signed, float_fields

__all__ = ["FloatProductStage", "Fp32Add", "Fp32MacUnit", "AlignUnit", "AlignedColumn", "AlignedMacUnit"]

NAN32 = 0x7FC00000


# ---------------------------------------------------------------------------
# decoders


class _Dec16:
    """Fields of an IEEE-style 16-bit code: sign, significand (hidden bit from E != 0), exponent of its LSB."""

    def __init__(self, m: Module, fl: FloatFields, code, name: str):
        mb, eb = fl.man_bits, fl.exp_bits
        E = code[mb:mb + eb]
        Mf = code[0:mb]
        self.E, self.M = E, Mf
        self.sign = code[15]
        self.nz = Signal(name=f"{name}_normal")
        m.d.comb += self.nz.eq(E != 0)
        self.sig = Cat(Mf, self.nz)
        self.efield = Signal(eb, name=f"{name}_efield")     # subnormals and zeros count as 1
        m.d.comb += self.efield.eq(Mux(self.nz, E, 1))
        top = E == fl.emax_field
        self.nan = Signal(name=f"{name}_nan")
        self.inf = Signal(name=f"{name}_inf")
        self.zero = Signal(name=f"{name}_zero")
        m.d.comb += [self.nan.eq(top & (Mf != 0)), self.inf.eq(top & (Mf == 0)),
                     self.zero.eq((E == 0) & (Mf == 0))]
        self.exp_const = -(fl.bias + mb)


class _WeightDec:
    """Sign, hardware significand, exponent field (offset ``exp_const``), zero, NaN, Inf of a weight code."""

    def __init__(self, m: Module, plan: WeightPlan, code, name: str):
        self.plan = plan
        if plan.kind == "float16":
            d = _Dec16(m, float_fields(plan.name), code, name)
            self.sign, self.sig, self.efield, self.exp_const = d.sign, d.sig, d.efield, d.exp_const
            self.zero, self.nan, self.inf = d.zero, d.nan, d.inf
            self.efield_min = 1
            self.residual = None
            return
        f = F.get(plan.name)
        dec = _Decoded(m, f, code, name)
        self.residual = dec if plan.kind == "residual" else None
        if plan.kind == "table":  # the 256- (16-) entry table: NaR (posits) is the only special, a NaN
            self.sign, self.sig, self.efield, self.exp_const = dec.sign, dec.value, dec.efield, dec.exp_const
            self.zero, self.nan, self.inf, self.efield_min = dec.zero, dec.special, Const(0, 1), 0
            return
        self.nan = Signal(name=f"{name}_nan")
        self.inf = Signal(name=f"{name}_inf")
        m.d.comb += [self.nan.eq(0), self.inf.eq(0)]
        for kind, sig in ((F.SPECIAL_NAN, self.nan), (F.SPECIAL_INF, self.inf)):
            for p in sorted({c & 0x7F for c in range(256) if f.special[c] == kind}):
                with m.If(code[0:7] == p):
                    m.d.comb += sig.eq(1)
        self.zero = Signal(name=f"{name}_zero")
        if plan.kind == "int":
            self.sign = code[7]
            mag = Signal(8, name=f"{name}_mag")
            m.d.comb += mag.eq(Mux(code[7], -code.as_signed(), code))
            self.sig = mag
            self.efield = Const(0, 1)
            self.exp_const = 0
            self.efield_min = 0
            m.d.comb += self.zero.eq(code == 0)
            return
        self.sign = code[7]
        self.exp_const = dec.exp_const
        self.efield = dec.efield
        self.efield_min = 1
        if plan.kind == "residual":
            self.sig = dec.value          # 2**dmax * (1 + t 2**-d), zero when E == 0
            m.d.comb += self.zero.eq(dec.zero)
        else:
            self.sig = dec.value          # Cat(M, E != 0)
            m.d.comb += self.zero.eq(dec.value == 0)


# ---------------------------------------------------------------------------
# product stage (fp32 path)


class FloatProductStage(wiring.Component):
    """Exact product of one 16-bit float activation and one weight code, combinational.

    ``value = (-1)**sign * mag * 2**exp``; ``nan`` for a NaN operand or Inf x 0, ``inf`` for
    Inf x finite nonzero (``mag`` is 0 for both).  An RF8 weight multiplies by one shift-and-add.
    Built from any fp32 / aligned :class:`MacSpec` (only its formats matter).
    """

    def __init__(self, spec: MacSpec):
        self.spec = c = spec if spec.kind == "fp32" and spec.lanes == 1 else MacSpec.make(spec.a, spec.w, "fp32", 1)
        super().__init__({"a": In(16), "w": In(c.w_plan.bits), "sign": Out(1), "mag": Out(c.p_width),
                          "exp": Out(signed(c.p_exp_width)), "nan": Out(1), "inf": Out(1)})

    def elaborate(self, platform):
        m = Module()
        c = self.spec
        a = _Dec16(m, c.a_fields, self.a, "a")
        w = _WeightDec(m, c.w_plan, self.w, "w")
        if w.residual is not None:
            prod = _shift_add(m, w.residual, a.sig, "pw")   # (sig << dmax) +/- (sig << (dmax - d))
        else:
            prod = a.sig * w.sig
        nan = a.nan | w.nan | (a.inf & w.zero) | (w.inf & a.zero)
        inf = (a.inf | w.inf) & ~nan
        kill = a.nan | a.inf | w.nan | w.inf | w.zero
        m.d.comb += [
            self.mag.eq(Mux(kill, 0, prod[0:c.p_width])),
            self.sign.eq(a.sign ^ w.sign),
            self.exp.eq(a.efield + w.efield + (a.exp_const + w.exp_const)),
            self.nan.eq(nan), self.inf.eq(inf),
        ]
        return m


# ---------------------------------------------------------------------------
# the exact float32 adder


def _lzc(m: Module, x, name: str):
    """Leading zeros of x (len(x) when x == 0), a priority encoder."""
    W = len(x)
    lz = Signal(range(W + 1), name=name)
    m.d.comb += lz.eq(W)
    for i in range(W):
        with m.If(x[i]):
            m.d.comb += lz.eq(W - 1 - i)
    return lz


class Fp32Add(wiring.Component):
    """``res = RNE_f32(acc + x)`` for a float32 ``acc`` and an exact ``x = (-1)**xs * xm * 2**xe``.

    One rounding (nearest, ties to even), subnormal results kept, overflow to +-Inf with
    ``ovf``; NaN (canonical 0x7FC00000) with ``inv`` for a NaN operand or Inf - Inf.
    Both operands are normalised to N = max(24, width(xm)) bits, the smaller one is
    shifted right with guard, round and sticky bits, added, renormalised (clamped at
    the subnormal exponent) and rounded.
    """

    def __init__(self, x_width: int, xe_width: int):
        self.wx, self.xew = x_width, xe_width
        super().__init__({"acc": In(32), "xs": In(1), "xm": In(x_width), "xe": In(signed(xe_width)),
                          "xnan": In(1), "xinf": In(1), "res": Out(32), "ovf": Out(1), "inv": Out(1)})

    def elaborate(self, platform):
        m = Module()
        wx = self.wx
        N = max(24, wx)
        EW = max(self.xew, 10) + 3
        acc = self.acc
        aE, aM, as_ = acc[23:31], acc[0:23], acc[31]
        a_top = aE == 255
        a_nan = a_top & (aM != 0)
        a_inf = a_top & (aM == 0)
        a_sig = Cat(aM, aE != 0)
        a_zero = Signal(name="a_zero")
        x_zero = Signal(name="x_zero")
        m.d.comb += [a_zero.eq(a_sig == 0), x_zero.eq(self.xm == 0)]
        # normalise both operands: value = sig * 2**(T - (N - 1)), MSB of sig at bit N-1
        aN = Signal(N, name="a_n")
        m.d.comb += aN.eq(a_sig << (N - 24))
        lz_a = _lzc(m, aN, "lz_a")
        a_norm = Signal(N, name="a_norm")
        m.d.comb += a_norm.eq((aN << lz_a)[0:N])
        T_a = Signal(signed(EW), name="t_a")
        m.d.comb += T_a.eq(Mux(aE == 0, 1, aE) - 150 + 23 - lz_a)
        xN = Signal(N, name="x_n")
        m.d.comb += xN.eq(self.xm << (N - wx))
        lz_x = _lzc(m, xN, "lz_x")
        x_norm = Signal(N, name="x_norm")
        m.d.comb += x_norm.eq((xN << lz_x)[0:N])
        T_x = Signal(signed(EW), name="t_x")
        m.d.comb += T_x.eq(self.xe + (wx - 1) - lz_x)
        x_big = Signal(name="x_big")
        m.d.comb += x_big.eq(a_zero | (~x_zero & ((T_x > T_a) | ((T_x == T_a) & (x_norm >= a_norm)))))
        big = Signal(N, name="big")
        small = Signal(N, name="small")
        T_big = Signal(signed(EW), name="t_big")
        d = Signal(signed(EW + 1), name="d")
        s_big = Signal(name="s_big")
        sub = Signal(name="sub")
        small_zero = Mux(x_big, a_zero, x_zero)
        m.d.comb += [big.eq(Mux(x_big, x_norm, a_norm)), small.eq(Mux(x_big, a_norm, x_norm)),
                     T_big.eq(Mux(x_big, T_x, T_a)), d.eq(Mux(x_big, T_x - T_a, T_a - T_x)),
                     s_big.eq(Mux(x_big, self.xs, as_)), sub.eq(self.xs ^ as_)]
        G = N + 3  # guard, round, sticky below the N significand bits
        dc = Signal(range(G + 1), name="dc")
        m.d.comb += dc.eq(Mux(small_zero | (d > G), G, d[0:len(dc)]))
        small_ext = Cat(Const(0, 3), small)
        shifted = Signal(G, name="small_shifted")
        m.d.comb += shifted.eq(small_ext >> dc)
        mask = Signal(G + 1, name="lost_mask")
        m.d.comb += mask.eq((Const(1, G + 1) << dc) - 1)
        lost = (small_ext & mask[0:G]).any()
        small_al = Cat(shifted[0] | lost, shifted[1:])
        big_ext = Cat(Const(0, 3), big)
        S = Signal(G + 1, name="sum")
        m.d.comb += S.eq(Mux(sub, big_ext - small_al, big_ext + small_al))
        lzS = _lzc(m, S, "lz_s")
        # exponent of the result's MSB, clamped at the subnormal exponent -126
        Tr = Signal(signed(EW + 1), name="t_r")
        m.d.comb += Tr.eq(T_big + 1 - lzS)
        ef = Signal(signed(EW + 1), name="ef")
        m.d.comb += ef.eq(Mux(Tr < -126, -126, Tr))
        sl = Signal(signed(EW + 2), name="sl")
        m.d.comb += sl.eq(T_big - ef)    # left shift putting weight 2**ef at bit N+2
        R = Signal(G + 1, name="r")
        rs = Signal(range(G + 3), name="rs")
        m.d.comb += rs.eq(Mux(-sl > G + 2, G + 2, (-sl)[0:len(rs)]))
        rmask = Signal(G + 3, name="r_mask")
        m.d.comb += rmask.eq((Const(1, G + 3) << rs) - 1)
        r_lost = (S & rmask[0:G + 1]).any()
        r_right = Signal(G + 1, name="r_right")
        m.d.comb += r_right.eq(S >> rs)
        lsh = Signal(range(G + 1), name="lsh")
        m.d.comb += lsh.eq(sl[0:len(lsh)])
        with m.If(sl < 0):
            m.d.comb += R.eq(Cat(r_right[0] | r_lost, r_right[1:]))
        with m.Else():
            m.d.comb += R.eq((S << lsh)[0:G + 1])
        # R: hidden bit at N+2, 23 fraction bits N-21..N+1, guard N-22, sticky below
        hidden = R[N + 2]
        frac = R[N - 21:N + 2]
        guard = R[N - 22]
        sticky = R[0:N - 22].any()
        inc = guard & (sticky | R[N - 21])
        bexp = Signal(signed(EW + 2), name="bexp")
        m.d.comb += bexp.eq(Mux(hidden, ef + 127, 0))
        body = Signal(32, name="body")
        m.d.comb += body.eq(Cat(frac, bexp[0:8]) + inc)
        of = Signal(name="of")
        m.d.comb += of.eq((bexp > 254) | (body >= (255 << 23)))
        exact_zero = S == 0
        zero_sign = a_zero & x_zero & as_ & self.xs
        r_nan = a_nan | self.xnan | (a_inf & self.xinf & (as_ ^ self.xs))
        r_inf = a_inf | self.xinf
        with m.If(r_nan):
            m.d.comb += self.res.eq(NAN32)
        with m.Elif(r_inf):
            m.d.comb += self.res.eq(Cat(Const(0x7F800000, 31), Mux(a_inf, as_, self.xs)))
        with m.Elif(exact_zero):
            m.d.comb += self.res.eq(Cat(Const(0, 31), zero_sign))
        with m.Elif(of):
            m.d.comb += self.res.eq(Cat(Const(0x7F800000, 31), s_big))
        with m.Else():
            m.d.comb += self.res.eq(Cat(body[0:31], s_big))
        m.d.comb += [self.inv.eq(r_nan), self.ovf.eq(~r_nan & ~r_inf & ~exact_zero & of)]
        return m


# ---------------------------------------------------------------------------
# fp32 MAC


def _ports(spec: MacSpec) -> dict:
    return {"in_valid": In(1), "in_clear": In(1), "in_a": In(16 * spec.lanes), "in_w": In(spec.w_bits * spec.lanes),
            "out_valid": Out(1), "out_acc": Out(32), "out_overflow": Out(1), "out_invalid": Out(1)}


class _Unit(wiring.Component):
    want = ""

    def __init__(self, *args, **kwargs):
        try:
            self.spec = spec_of(args, kwargs, type(self).__name__)
            if self.spec.kind != self.want:
                raise HdlError(f"{type(self).__name__} builds the {self.want} accumulator, got {self.spec.acc}: "
                               "use rf8sim.hdl.make_unit(spec), which picks the datapath by acc.kind")
            from .mac import narrow_unit_error

            narrow_unit_error(self.spec)
        except Exception:
            self._MustUse__silence = True
            raise
        super().__init__(_ports(self.spec))

    @property
    def config(self) -> MacSpec:
        """Deprecated name of :attr:`spec`."""
        return self.spec

    @property
    def latency(self) -> int:
        return self.spec.latency


class Fp32MacUnit(_Unit):
    """W8A16 MAC with the float32 accumulator: ``acc = RNE(acc + p_i)`` for lanes i = 0, 1, ... per beat.

    Ports as :class:`rf8sim.hdl.MacUnit` with ``in_a`` 16 bits per lane and ``out_acc`` the
    float32 bit pattern; latency 2.
    """

    want = "fp32"

    def elaborate(self, platform):
        m = Module()
        c = self.spec
        L, wb = c.lanes, c.w_bits
        v1, c1 = Signal(name="s1_valid"), Signal(name="s1_clear")
        m.d.sync += [v1.eq(self.in_valid), c1.eq(self.in_clear)]
        prods = []
        for i in range(L):
            ps = FloatProductStage(c)
            m.submodules[f"product{i}"] = ps
            m.d.comb += [ps.a.eq(self.in_a[16 * i:16 * i + 16]), ps.w.eq(self.in_w[wb * i:wb * i + wb])]
            regs = {k: Signal.like(getattr(ps, k), name=f"s1_{k}{i}", reset_less=True)
                    for k in ("sign", "mag", "exp", "nan", "inf")}
            m.d.sync += [regs[k].eq(getattr(ps, k)) for k in regs]
            prods.append(regs)
        accr = Signal(32, name="acc")
        ovf, inv, v2 = Signal(name="overflow"), Signal(name="invalid"), Signal(name="s2_valid")
        cur = Signal(32, name="chain0")
        m.d.comb += cur.eq(Mux(c1, 0, accr))
        ovfs, invs = [], []
        for i, p in enumerate(prods):   # lane 0 first: a chain of fused adds
            add = Fp32Add(c.p_width, c.p_exp_width)
            m.submodules[f"fadd{i}"] = add
            m.d.comb += [add.acc.eq(cur), add.xs.eq(p["sign"]), add.xm.eq(p["mag"]), add.xe.eq(p["exp"]),
                         add.xnan.eq(p["nan"]), add.xinf.eq(p["inf"])]
            nxt = Signal(32, name=f"chain{i + 1}")
            m.d.comb += nxt.eq(add.res)
            cur = nxt
            ovfs.append(add.ovf)
            invs.append(add.inv)
        m.d.sync += v2.eq(v1)
        with m.If(v1):
            m.d.sync += [accr.eq(cur), ovf.eq((ovf & ~c1) | Cat(*ovfs).any()),
                         inv.eq((inv & ~c1) | Cat(*invs).any())]
        m.d.comb += [self.out_valid.eq(v2), self.out_acc.eq(accr), self.out_overflow.eq(ovf),
                     self.out_invalid.eq(inv)]
        return m


# ---------------------------------------------------------------------------
# aligned:K:M


def align_activation(m: Module, c: MacSpec, code, emax, i):
    """One activation of a block pre-aligned to the block's exponent field ``emax``:
    ``|a| / 2**q`` rounded to nearest even and saturated at ``2**(M-1) - 1``,
    ``q = emax - bias - (M - 2)``.  Returns (sign, (M-1)-bit magnitude, NaN/Inf flag); combinational."""
    Mb = c.acc.align_bits
    eb, mb = c.a_fields.exp_bits, c.a_fields.man_bits
    L0 = max(0, Mb - 2 - mb)
    R0 = max(0, mb - (Mb - 2))
    Xw = mb + 1 + L0
    sat = (1 << (Mb - 1)) - 1
    E = code[mb:mb + eb]
    sig = Cat(code[0:mb], E != 0)
    ef = Mux(E == 0, 1, E)
    sh = Signal(eb + 1, name=f"q_shift{i}")
    m.d.comb += sh.eq(emax - ef + R0)
    rs = Signal(range(Xw + 3), name=f"q_rs{i}")
    m.d.comb += rs.eq(Mux(sh > Xw + 2, Xw + 2, sh[0:len(rs)]))
    X = Signal(Xw, name=f"q_x{i}")
    m.d.comb += X.eq(sig << L0)
    Y = Signal(2 * Xw + 2, name=f"q_y{i}")
    m.d.comb += Y.eq(Cat(Const(0, Xw + 2), X) >> rs)
    ip = Y[Xw + 2:]
    rb = Y[Xw + 1]
    st = Y[0:Xw + 1].any()
    q = Signal(Xw + 1, name=f"q_round{i}")
    m.d.comb += q.eq(ip + (rb & (st | ip[0])))
    mag = Signal(Mb - 1, name=f"q_mag{i}")
    m.d.comb += mag.eq(Mux(q > sat, sat, q))
    return code[15], mag, E == c.a_fields.emax_field


def aligned_term(m: Module, c: MacSpec, sign, mag, wcode, i):
    """``(-1)**(sa^sw) * |a_int| * sig_w * 2**(exp_w - exp_w_min)`` of one pre-aligned activation
    and one weight code (0 for a zero/NaN/Inf weight): for an RF8 weight one shift-and-add of
    ``|a_int|`` then the weight's exponent shift.  Returns (signed term, weight NaN/Inf flag)."""
    Mb = c.acc.align_bits
    span = c.w_plan.exp_hi - c.w_plan.exp_lo
    tw = _bits_signed(-c.term_hi, c.term_hi)
    w = _WeightDec(m, c.w_plan, wcode, f"w{i}")
    if w.residual is not None:
        base = _shift_add(m, w.residual, mag, f"sa{i}")      # |a| * 2**dmax * (1 + t 2**-d)
    else:
        base = mag * w.sig
    # the shift-add's adder carries a spare top bit (complement trick): keep the exact width
    base = base[0:(((1 << (Mb - 1)) - 1) * c.w_plan.sig_hi).bit_length()]
    shift = Signal(max(1, span.bit_length()), name=f"wshift{i}")
    m.d.comb += shift.eq(w.efield - w.efield_min)
    um = Signal(tw - 1, name=f"term_mag{i}")
    m.d.comb += um.eq(Mux(w.zero | w.nan | w.inf, 0, (base << shift)[0:tw - 1]))
    t = Signal(signed(tw), name=f"term{i}")
    m.d.comb += t.eq(Mux(sign ^ w.sign, -um, um))
    return t, w.nan | w.inf


class AlignUnit(wiring.Component):
    """Block pre-alignment of activations (iFPU / FIGNA style) for ``lanes`` lanes.

    A double-buffered block buffer (2 banks of K/lanes beats of activation and weight codes)
    collects a block while the previous one drains, and tracks the block's largest exponent
    field (zeros/subnormals as 1) and whether it holds a NaN/Inf activation.  Each drained beat
    is quantised per lane: ``|a| / 2**q`` rounded to nearest even and saturated at
    ``2**(M-1) - 1``, ``q = E_max - bias - (M - 2)``.  Outputs (registered): ``out_sign``/
    ``out_mag`` per lane (sign + (M-1)-bit magnitude), the weight codes, ``out_emax``, the
    block's first/last beat, its clear and NaN/Inf flag.
    """

    def __init__(self, spec: MacSpec):
        if spec.kind != "aligned":
            raise HdlError(f"AlignUnit needs an aligned:K:M spec, got {spec.acc}")
        self.spec = spec
        L, Mb, wb = spec.lanes, spec.acc.align_bits, spec.w_bits
        super().__init__({
            "in_valid": In(1), "in_clear": In(1), "in_a": In(16 * L), "in_w": In(wb * L),
            "out_valid": Out(1), "out_clear": Out(1), "out_first": Out(1), "out_last": Out(1),
            "out_sign": Out(L), "out_mag": Out((Mb - 1) * L), "out_w": Out(wb * L),
            "out_emax": Out(spec.a_fields.exp_bits), "out_special": Out(1)})

    def elaborate(self, platform):
        m = Module()
        c = self.spec
        L, Mb, wb = c.lanes, c.acc.align_bits, c.w_bits
        B = c.beats_per_block
        fl = c.a_fields
        eb, mb = fl.exp_bits, fl.man_bits
        # ---- write side: bank/row counters, running max exponent and NaN/Inf flag per bank
        rows_a = [Signal(16 * L, name=f"buf_a{r}", reset_less=True) for r in range(2 * B)]
        rows_w = [Signal(wb * L, name=f"buf_w{r}", reset_less=True) for r in range(2 * B)]
        wbank = Signal(name="wbank")
        wrow = Signal(range(max(B, 2)), name="wrow")
        emax = [Signal(eb, name=f"emax{b}") for b in range(2)]
        spec = [Signal(name=f"aspecial{b}") for b in range(2)]
        clr = [Signal(name=f"bclear{b}") for b in range(2)]
        full = [Signal(name=f"full{b}") for b in range(2)]
        row = Signal(range(max(B, 2)), name="row_in")
        m.d.comb += row.eq(Mux(self.in_clear, 0, wrow))
        ef_in, sp_in = [], []
        for i in range(L):
            code = self.in_a[16 * i:16 * i + 16]
            E = code[mb:mb + eb]
            ef = Signal(eb, name=f"in_efield{i}")
            m.d.comb += ef.eq(Mux(E == 0, 1, E))
            ef_in.append(ef)
            sp_in.append(E == fl.emax_field)
        bmax = ef_in[0]   # max over the beat's lanes: a comparator tree
        k = 0
        while True:
            if len(ef_in) == 1:
                bmax = ef_in[0]
                break
            nxt = []
            for j in range(0, len(ef_in) - 1, 2):
                s = Signal(eb, name=f"emax_t{k}_{j // 2}")
                m.d.comb += s.eq(Mux(ef_in[j] > ef_in[j + 1], ef_in[j], ef_in[j + 1]))
                nxt.append(s)
            if len(ef_in) % 2:
                nxt.append(ef_in[-1])
            ef_in, k = nxt, k + 1
        beat_spec = Cat(*sp_in).any()
        with m.If(self.in_valid):
            for b in range(2):
                with m.If(wbank == b):
                    for r in range(B):
                        with m.If(row == r):
                            m.d.sync += [rows_a[b * B + r].eq(self.in_a), rows_w[b * B + r].eq(self.in_w)]
                    with m.If(row == 0):
                        m.d.sync += [emax[b].eq(bmax), spec[b].eq(beat_spec), clr[b].eq(self.in_clear)]
                    with m.Else():
                        m.d.sync += [emax[b].eq(Mux(bmax > emax[b], bmax, emax[b])), spec[b].eq(spec[b] | beat_spec)]
                    with m.If(row == B - 1):
                        m.d.sync += full[b].eq(1)
            with m.If(row == B - 1):
                m.d.sync += [wbank.eq(~wbank), wrow.eq(0)]
            with m.Else():
                m.d.sync += wrow.eq(row + 1)
        # ---- read side: drain a full bank at one beat per clock
        rbank = Signal(name="rbank")
        rrow = Signal(range(max(B, 2)), name="rrow")
        r_valid = Signal(name="r_valid")
        r_a = Signal(16 * L, name="r_a", reset_less=True)
        r_w = Signal(wb * L, name="r_w", reset_less=True)
        r_emax = Signal(eb, name="r_emax", reset_less=True)
        r_first, r_last, r_clear, r_spec = (Signal(name=n) for n in ("r_first", "r_last", "r_clear", "r_special"))
        m.d.sync += r_valid.eq(0)
        for b in range(2):
            with m.If((rbank == b) & full[b]):
                with m.Switch(rrow):
                    for r in range(B):
                        with m.Case(r):
                            m.d.sync += [r_a.eq(rows_a[b * B + r]), r_w.eq(rows_w[b * B + r])]
                    with m.Default():
                        m.d.sync += [r_a.eq(0), r_w.eq(0)]
                m.d.sync += [r_valid.eq(1),
                             r_emax.eq(emax[b]), r_first.eq(rrow == 0), r_last.eq(rrow == B - 1),
                             r_clear.eq(clr[b] & (rrow == 0)), r_spec.eq(spec[b])]
                with m.If(rrow == B - 1):
                    m.d.sync += [full[b].eq(0), rbank.eq(~rbank), rrow.eq(0)]
                    # a block completing in the other bank on this very edge is kept
                with m.Else():
                    m.d.sync += rrow.eq(rrow + 1)
        # ---- quantise the drained beat (registered outputs)
        signs, mags = [], []
        for i in range(L):
            sgn, mag, _ = align_activation(m, c, r_a[16 * i:16 * i + 16], r_emax, i)
            signs.append(sgn)
            mags.append(mag)
        o = {n: Signal(name=f"o_{n}") for n in ("valid", "clear", "first", "last", "special")}
        o_sign = Signal(L, name="o_sign", reset_less=True)
        o_mag = Signal((Mb - 1) * L, name="o_mag", reset_less=True)
        o_w = Signal(wb * L, name="o_w", reset_less=True)
        o_emax = Signal(eb, name="o_emax", reset_less=True)
        m.d.sync += [o["valid"].eq(r_valid), o["clear"].eq(r_clear), o["first"].eq(r_first),
                     o["last"].eq(r_last), o["special"].eq(r_spec), o_sign.eq(Cat(*signs)),
                     o_mag.eq(Cat(*mags)), o_w.eq(r_w), o_emax.eq(r_emax)]
        m.d.comb += [self.out_valid.eq(o["valid"]), self.out_clear.eq(o["clear"]), self.out_first.eq(o["first"]),
                     self.out_last.eq(o["last"]), self.out_special.eq(o["special"]), self.out_sign.eq(o_sign),
                     self.out_mag.eq(o_mag), self.out_w.eq(o_w), self.out_emax.eq(o_emax)]
        return m


class AlignedColumn(wiring.Component):
    """One output column fed by a pre-aligned activation bus.

    Per lane the term ``(-1)**(sa^sw) * |a_int| * sig_w * 2**(exp_w - exp_w_min)``: for an RF8
    weight one shift-and-add of ``|a_int|`` then the weight's exponent shift; an exact adder tree;
    the exact block register (``block_width`` bits, cannot overflow for K terms); on the block's
    last beat one :class:`Fp32Add` of the block sum into the float32 accumulator.
    """

    def __init__(self, spec: MacSpec):
        if spec.kind != "aligned":
            raise HdlError(f"AlignedColumn needs an aligned:K:M spec, got {spec.acc}")
        self.spec = spec
        L, Mb, wb = spec.lanes, spec.acc.align_bits, spec.w_bits
        super().__init__({
            "in_valid": In(1), "in_clear": In(1), "in_first": In(1), "in_last": In(1),
            "in_sign": In(L), "in_mag": In((Mb - 1) * L), "in_w": In(wb * L),
            "in_emax": In(spec.a_fields.exp_bits), "in_special": In(1),
            "out_valid": Out(1), "out_acc": Out(32), "out_overflow": Out(1), "out_invalid": Out(1)})

    def elaborate(self, platform):
        m = Module()
        c = self.spec
        L, Mb, wb = c.lanes, c.acc.align_bits, c.w_bits
        cw, ca = c.w_plan, c.a_fields
        terms, wspec = [], []
        for i in range(L):
            t, ws = aligned_term(m, c, self.in_sign[i], self.in_mag[(Mb - 1) * i:(Mb - 1) * (i + 1)],
                                 self.in_w[wb * i:wb * (i + 1)], i)
            terms.append(t)
            wspec.append(ws)
        sw = c.lane_sum_width
        lvl = 0
        while len(terms) > 1:
            nxt = []
            for j in range(0, len(terms) - 1, 2):
                s = Signal(signed(sw), name=f"tree{lvl}_{j // 2}")
                m.d.comb += s.eq(terms[j] + terms[j + 1])
                nxt.append(s)
            if len(terms) % 2:
                nxt.append(terms[-1])
            terms, lvl = nxt, lvl + 1
        BW = c.block_width
        blk = Signal(signed(BW), name="block")
        bspec = Signal(name="block_wspecial")
        tot = Signal(signed(BW), name="block_next")
        m.d.comb += tot.eq(Mux(self.in_first, 0, blk) + terms[0])
        spec_next = Signal(name="block_special_next")
        m.d.comb += spec_next.eq(Mux(self.in_first, 0, bspec) | Cat(*wspec).any() | self.in_special)
        accr = Signal(32, name="acc")
        ovf, inv, v = Signal(name="overflow"), Signal(name="invalid"), Signal(name="out_v")
        xoff = ca.bias + Mb - 2 - cw.exp_lo
        add = Fp32Add(BW, _bits_signed(1 - xoff, ca.emax_field - xoff) + 1)
        m.submodules.fadd = add
        neg = tot < 0
        m.d.comb += [add.acc.eq(Mux(self.in_clear, 0, accr)), add.xs.eq(neg),
                     add.xm.eq(Mux(neg, -tot, tot)[0:BW]),
                     add.xe.eq(self.in_emax - (ca.bias + Mb - 2 - cw.exp_lo)),
                     add.xnan.eq(spec_next), add.xinf.eq(0)]
        m.d.sync += v.eq(self.in_valid)
        with m.If(self.in_valid):
            m.d.sync += [blk.eq(tot), bspec.eq(spec_next)]
            with m.If(self.in_last):
                m.d.sync += [accr.eq(add.res), ovf.eq((ovf & ~self.in_clear) | add.ovf),
                             inv.eq((inv & ~self.in_clear) | add.inv)]
            with m.Elif(self.in_clear):
                m.d.sync += [accr.eq(0), ovf.eq(0), inv.eq(0)]
        m.d.comb += [self.out_valid.eq(v), self.out_acc.eq(accr), self.out_overflow.eq(ovf),
                     self.out_invalid.eq(inv)]
        return m


class AlignedMacUnit(_Unit):
    """W8A16 dot product with the ``aligned:K:M`` accumulator: :class:`AlignUnit` + :class:`AlignedColumn`.

    One output per input beat, in order; the accumulator changes on a block's last beat.
    Latency ``K/lanes + 3`` clocks for a block fed on consecutive clocks (idle cycles inside a
    block delay its outputs).  A clear must start a block (a clear inside a block restarts it).
    """

    want = "aligned"

    def elaborate(self, platform):
        m = Module()
        c = self.spec
        m.submodules.align = al = AlignUnit(c)
        m.submodules.column = col = AlignedColumn(c)
        m.d.comb += [al.in_valid.eq(self.in_valid), al.in_clear.eq(self.in_clear), al.in_a.eq(self.in_a),
                     al.in_w.eq(self.in_w)]
        for n in ("valid", "clear", "first", "last", "sign", "mag", "w", "emax", "special"):
            m.d.comb += getattr(col, f"in_{n}").eq(getattr(al, f"out_{n}"))
        m.d.comb += [self.out_valid.eq(col.out_valid), self.out_acc.eq(col.out_acc),
                     self.out_overflow.eq(col.out_overflow), self.out_invalid.eq(col.out_invalid)]
        return m

