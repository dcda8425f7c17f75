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

import re
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import formats as F
from .mac import MAX_LANES, HdlError, _check_layout, _Decoded, _layout, _shift_add

__all__ = ["A16_FORMATS", "W_FORMATS", "A16Config", "ProductStage16", "Fp32Add", "Fp32MacUnit",
           "AlignUnit", "AlignedColumn", "AlignedMacUnit", "is_a16_request", "make_unit", "parse_acc16",
           "MAX_K", "M_RANGE"]

#: 16-bit activation formats (IEEE-style binary floats with subnormals, Inf and NaN)
A16_FORMATS = ("bf16", "fp16")
#: weight formats: the 8-bit ones, plus bf16 as the dequantized-weight baseline
W_FORMATS = ("rf8", "e4m3", "e5m2", "int8", "bf16")
MAX_K = 4096
M_RANGE = (2, 24)
NAN32 = 0x7FC00000


def _bits_signed(lo: int, hi: int) -> int:
    return max(max(hi, 0).bit_length(), max(-lo - 1, 0).bit_length()) + 1


@dataclass(frozen=True)
class Fields16:
    """Bit fields of an IEEE-style 16-bit float (taken from its rf8sim Format)."""

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


def _fields16(name: str) -> Fields16:
    f = F.get(name)
    if getattr(f, "code_bits", 8) != 16 or f.kind != "float" or getattr(f, "specials", "ieee") != "ieee":
        raise HdlError(f"{name!r} is not a 16-bit IEEE-style float; the 16-bit formats the generator builds "
                       f"are {', '.join(A16_FORMATS)}")
    fl = Fields16(f.name, f.exp_bits, f.man_bits, f.bias)
    # the decoder below must reproduce the Format's tables (checked on all 65,536 codes)
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
        raise HdlError(f"format {name!r} does not follow the IEEE bit layout the generator builds")
    return fl


def parse_acc16(acc) -> tuple:
    """``"fp32"`` -> ("fp32",); ``"aligned:K:M"`` -> ("aligned", K, M); clear HdlError otherwise."""
    if isinstance(acc, tuple) and acc and acc[0] in ("fp32", "aligned"):
        return acc
    # an AccSpec-like object from the golden model (AccSpec.fp32(), aligned) is taken by its text
    text = str(acc) if acc is not None else ""
    if text == "fp32":
        return ("fp32",)
    m = re.fullmatch(r"aligned:(\d+):(\d+)", text)
    if m:
        K, Mb = int(m.group(1)), int(m.group(2))
        if not 1 <= K <= MAX_K:
            raise HdlError(f"aligned:{K}:{Mb}: K must be in 1..{MAX_K}")
        if not M_RANGE[0] <= Mb <= M_RANGE[1]:
            raise HdlError(f"aligned:{K}:{Mb}: M must be in {M_RANGE[0]}..{M_RANGE[1]} (bits of the signed "
                           "pre-aligned activation)")
        return ("aligned", K, Mb)
    raise HdlError(f"accumulator {acc!r} is not valid for 16-bit activations: use 'fp32' or 'aligned:K:M' "
                   f"(K in 1..{MAX_K}, a multiple of lanes; M in {M_RANGE[0]}..{M_RANGE[1]})")


def is_a16_request(a_fmt, acc) -> bool:
    """True when (a_fmt, acc) asks for a W8A16 unit rather than the 8-bit fixed-point MAC."""
    name = a_fmt.name if isinstance(a_fmt, F.Format) else str(a_fmt)
    text = str(acc) if acc is not None else ""
    return name in A16_FORMATS or text == "fp32" or text.startswith("aligned")


@dataclass(frozen=True)
class WeightPlan:
    """How a weight code is decoded in hardware: kind, widths and exponent range."""

    name: str
    kind: str          # residual / float / int / float16
    bits: int          # code width
    sig_hi: int        # largest hardware significand (residual: 2**dmax * (1 + t 2**-d))
    exp_lo: int        # exponent of the hardware significand's LSB, smallest and largest
    exp_hi: int

    @classmethod
    def make(cls, w_fmt) -> "WeightPlan":
        name = w_fmt.name if isinstance(w_fmt, F.Format) else str(w_fmt)
        if name not in W_FORMATS:
            try:
                f = F.get(name)
            except F.FormatError:
                f = None
            if f is not None and f.kind == "residual":  # registered RF8 variants
                pass
            elif f is not None and getattr(f, "code_bits", 8) == 16:
                raise HdlError(f"16-bit weight format {name!r}: the only 16-bit weight is the bf16 baseline; "
                               f"weight formats: {', '.join(W_FORMATS)} (and registered RF8 variants)")
            else:
                raise HdlError(f"weight format {name!r}: valid are {', '.join(W_FORMATS)} "
                               "(and registered RF8 variants)")
        if name == "bf16":
            fl = _fields16(name)
            return cls(name, "float16", 16, (1 << (fl.man_bits + 1)) - 1, 1 - fl.bias - fl.man_bits,
                       fl.emax_field - 1 - fl.bias - fl.man_bits)
        f = F.get(name)
        _check_layout(f)
        lay = _layout(f)
        if f.kind == "int":
            return cls(name, "int", 8, 128, 0, 0)
        E_hi = (1 << f.exp_bits) - 1
        if f.kind == "residual":
            dmax = lay["dmax"]
            hi = max((1 << dmax) + (t << (dmax - d) if t else 0) for t, d in f.residuals)
            return cls(name, "residual", 8, hi, 1 + lay["exp_const"], E_hi + lay["exp_const"])
        # OCP float: exponent fields of finite codes
        efs = {((c >> f.man_bits) & E_hi) for c in range(256) if f.finite[c]}
        return cls(name, "float", 8, (1 << (f.man_bits + 1)) - 1, max(min(efs), 1) + lay["exp_const"],
                   max(efs) + lay["exp_const"])


@dataclass(frozen=True)
class A16Config:
    """Validated W8A16 generator parameters and the widths derived from them."""

    a: Fields16
    w: WeightPlan
    acc: tuple
    lanes: int

    @classmethod
    def make(cls, a_fmt="bf16", w_fmt="rf8", acc="fp32", lanes: int = 1) -> "A16Config":
        a_name = a_fmt.name if isinstance(a_fmt, F.Format) else str(a_fmt)
        if a_name not in A16_FORMATS:
            raise HdlError(f"activation format {a_name!r}: the fp32 and aligned accumulators take 16-bit "
                           f"activations {', '.join(A16_FORMATS)}")
        a = _fields16(a_name)
        w = WeightPlan.make(w_fmt)
        if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or not 1 <= lanes <= MAX_LANES:
            raise HdlError(f"lanes must be an integer in 1..{MAX_LANES}, got {lanes!r}")
        spec = parse_acc16(acc)
        if spec[0] == "aligned" and spec[1] % int(lanes):
            raise HdlError(f"aligned:{spec[1]}:{spec[2]}: K = {spec[1]} must be a multiple of lanes = {lanes} "
                           "(a block is K / lanes beats)")
        return cls(a, w, spec, int(lanes))

    @property
    def acc_text(self) -> str:
        return "fp32" if self.acc[0] == "fp32" else f"aligned:{self.acc[1]}:{self.acc[2]}"

    @property
    def kind(self) -> str:
        return self.acc[0]

    @property
    def beats_per_block(self) -> int:
        return self.acc[1] // self.lanes if self.kind == "aligned" else 1

    @property
    def latency(self) -> int:
        """Clock edges from sampling a beat to its output, for a block fed on consecutive clocks."""
        return 2 if self.kind == "fp32" else self.beats_per_block + 3

    # ---- fp32 product stage widths
    @property
    def a_sig_hi(self) -> int:
        return (1 << (self.a.man_bits + 1)) - 1

    @property
    def p_width(self) -> int:
        return (self.a_sig_hi * self.w.sig_hi).bit_length()

    @property
    def a_exp_range(self) -> tuple[int, int]:
        lo = 1 - self.a.bias - self.a.man_bits
        return lo, self.a.emax_field - 1 - self.a.bias - self.a.man_bits

    @property
    def p_exp_width(self) -> int:
        lo, hi = self.a_exp_range
        return _bits_signed(lo + self.w.exp_lo, hi + self.w.exp_hi)

    # ---- aligned widths
    @property
    def term_hi(self) -> int:
        """Largest |a_int * w| in units of 2**(q + exp_lo of the weight)."""
        Mb = self.acc[2]
        return ((1 << (Mb - 1)) - 1) * self.w.sig_hi << (self.w.exp_hi - self.w.exp_lo)

    @property
    def block_width(self) -> int:
        return _bits_signed(-self.acc[1] * self.term_hi, self.acc[1] * self.term_hi)

    @property
    def lane_sum_width(self) -> int:
        return _bits_signed(-self.lanes * self.term_hi, self.lanes * self.term_hi)

    def describe(self) -> dict:
        d = {"a_fmt": self.a.name, "w_fmt": self.w.name, "acc": self.acc_text, "lanes": self.lanes,
             "latency": self.latency, "product": _product_mode(self.w), "product_width": self.p_width,
             "product_exp_width": self.p_exp_width}
        if self.kind == "aligned":
            d.update(K=self.acc[1], M=self.acc[2], beats_per_block=self.beats_per_block,
                     block_width=self.block_width, lane_sum_width=self.lane_sum_width,
                     buffer_bits=2 * self.acc[1] * (16 + self.w.bits))
        return d

    def module_name(self) -> str:
        acc = "fp32" if self.kind == "fp32" else f"al{self.acc[1]}m{self.acc[2]}"
        return re.sub(r"[^A-Za-z0-9_]", "_", f"mac_{self.a.name}x{self.w.name}_{acc}_l{self.lanes}")


def _product_mode(w: WeightPlan) -> str:
    return {"residual": "shift-add", "int": "int-multiply", "float": "multiply",
            "float16": "multiply"}[w.kind]


# ---------------------------------------------------------------------------
# decoders


class _Dec16:
    """Fields of an IEEE-style 16-bit code: sign, significand (hidden bit from E != 0), exponent of its LSB."""

    def __init__(self, m: Module, fl: Fields16, code, name: str):
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
            d = _Dec16(m, _fields16(plan.name), code, name)
            self.sign, self.sig, self.efield, self.exp_const = d.sign, d.sig, d.efield, d.exp_const
            self.zero, self.nan, self.inf = d.zero, d.nan, d.inf
            self.efield_min = 1
            self.residual = None
            return
        f = F.get(plan.name)
        dec = _Decoded(m, f, code, name)
        self.residual = dec if plan.kind == "residual" else None
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


class ProductStage16(wiring.Component):
    """Exact product of one activation and one weight code, combinational.

    ``value = (-1)**sign * mag * 2**exp``; ``nan`` for a NaN operand or Inf x 0, ``inf`` for
    Inf x finite nonzero (``mag`` is 0 for both).  An RF8 weight multiplies by one shift-and-add.
    """

    def __init__(self, a_fmt, w_fmt):
        self.cfg = A16Config.make(a_fmt, w_fmt, "fp32", 1)
        c = self.cfg
        super().__init__({"a": In(16), "w": In(c.w.bits), "sign": Out(1), "mag": Out(c.p_width),
                          "exp": Out(signed(c.p_exp_width)), "nan": Out(1), "inf": Out(1)})

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        a = _Dec16(m, c.a, self.a, "a")
        w = _WeightDec(m, c.w, self.w, "w")
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


def _ports(cfg: A16Config) -> dict:
    return {"in_valid": In(1), "in_clear": In(1), "in_a": In(16 * cfg.lanes), "in_w": In(cfg.w.bits * cfg.lanes),
            "out_valid": Out(1), "out_acc": Out(32), "out_overflow": Out(1), "out_invalid": Out(1)}


class _Unit(wiring.Component):
    def __init__(self, a_fmt, w_fmt, acc, lanes, want):
        try:
            self.config = A16Config.make(a_fmt, w_fmt, acc, lanes)
            if self.config.kind != want:
                raise HdlError(f"{type(self).__name__} builds the {want} accumulator, got {self.config.acc_text}")
        except Exception:
            self._MustUse__silence = True
            raise
        super().__init__(_ports(self.config))

    @property
    def latency(self) -> int:
        return self.config.latency


class Fp32MacUnit(_Unit):
    """W8A16 MAC with the float32 accumulator: ``acc = RNE(acc + p_i)`` for lanes i = 0, 1, ... per beat.

    Ports as :class:`rf8sim.hdl.MacUnit` with ``in_a`` 16 bits per lane and ``out_acc`` the
    float32 bit pattern; latency 2.
    """

    def __init__(self, a_fmt="bf16", w_fmt="rf8", acc="fp32", lanes: int = 1):
        super().__init__(a_fmt, w_fmt, acc, lanes, "fp32")

    def elaborate(self, platform):
        m = Module()
        c = self.config
        L, wb = c.lanes, c.w.bits
        v1, c1 = Signal(name="s1_valid"), Signal(name="s1_clear")
        m.d.sync += [v1.eq(self.in_valid), c1.eq(self.in_clear)]
        prods = []
        for i in range(L):
            ps = ProductStage16(c.a.name, c.w.name)
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


def align_activation(m: Module, c: A16Config, code, emax, i):
    """One activation of a block pre-aligned to the block's exponent field ``emax``:
    ``|a| / 2**q`` rounded to nearest even and saturated at ``2**(M-1) - 1``,
    ``q = emax - bias - (M - 2)``.  Returns (sign, (M-1)-bit magnitude, NaN/Inf flag); combinational."""
    Mb = c.acc[2]
    eb, mb = c.a.exp_bits, c.a.man_bits
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
    return code[15], mag, E == c.a.emax_field


def aligned_term(m: Module, c: A16Config, sign, mag, wcode, i):
    """``(-1)**(sa^sw) * |a_int| * sig_w * 2**(exp_w - exp_w_min)`` of one pre-aligned activation
    and one weight code (0 for a zero/NaN/Inf weight): for an RF8 weight one shift-and-add of
    ``|a_int|`` then the weight's exponent shift.  Returns (signed term, weight NaN/Inf flag)."""
    Mb = c.acc[2]
    span = c.w.exp_hi - c.w.exp_lo
    tw = _bits_signed(-c.term_hi, c.term_hi)
    w = _WeightDec(m, c.w, wcode, f"w{i}")
    if w.residual is not None:
        base = _shift_add(m, w.residual, mag, f"sa{i}")      # |a| * 2**dmax * (1 + t 2**-d)
    else:
        base = mag * w.sig
    # the shift-add's adder carries a spare top bit (complement trick): keep the exact width
    base = base[0:(((1 << (Mb - 1)) - 1) * c.w.sig_hi).bit_length()]
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

    def __init__(self, cfg: A16Config):
        self.cfg = cfg
        L, Mb, wb = cfg.lanes, cfg.acc[2], cfg.w.bits
        super().__init__({
            "in_valid": In(1), "in_clear": In(1), "in_a": In(16 * L), "in_w": In(wb * L),
            "out_valid": Out(1), "out_clear": Out(1), "out_first": Out(1), "out_last": Out(1),
            "out_sign": Out(L), "out_mag": Out((Mb - 1) * L), "out_w": Out(wb * L),
            "out_emax": Out(cfg.a.exp_bits), "out_special": Out(1)})

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        L, Mb, wb = c.lanes, c.acc[2], c.w.bits
        B = c.beats_per_block
        fl = c.a
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

    def __init__(self, cfg: A16Config):
        self.cfg = cfg
        L, Mb, wb = cfg.lanes, cfg.acc[2], cfg.w.bits
        super().__init__({
            "in_valid": In(1), "in_clear": In(1), "in_first": In(1), "in_last": In(1),
            "in_sign": In(L), "in_mag": In((Mb - 1) * L), "in_w": In(wb * L),
            "in_emax": In(cfg.a.exp_bits), "in_special": In(1),
            "out_valid": Out(1), "out_acc": Out(32), "out_overflow": Out(1), "out_invalid": Out(1)})

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        L, Mb, wb = c.lanes, c.acc[2], c.w.bits
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
        xoff = c.a.bias + Mb - 2 - c.w.exp_lo
        add = Fp32Add(BW, _bits_signed(1 - xoff, c.a.emax_field - xoff) + 1)
        m.submodules.fadd = add
        neg = tot < 0
        m.d.comb += [add.acc.eq(Mux(self.in_clear, 0, accr)), add.xs.eq(neg),
                     add.xm.eq(Mux(neg, -tot, tot)[0:BW]),
                     add.xe.eq(self.in_emax - (c.a.bias + Mb - 2 - c.w.exp_lo)),
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

    def __init__(self, a_fmt="bf16", w_fmt="rf8", acc="aligned:32:16", lanes: int = 1):
        super().__init__(a_fmt, w_fmt, acc, lanes, "aligned")

    def elaborate(self, platform):
        m = Module()
        c = self.config
        m.submodules.align = al = AlignUnit(c)
        m.submodules.column = col = AlignedColumn(c)
        m.d.comb += [al.in_valid.eq(self.in_valid), al.in_clear.eq(self.in_clear), al.in_a.eq(self.in_a),
                     al.in_w.eq(self.in_w)]
        for n in ("valid", "clear", "first", "last", "sign", "mag", "w", "emax", "special"):
            m.d.comb += getattr(col, f"in_{n}").eq(getattr(al, f"out_{n}"))
        m.d.comb += [self.out_valid.eq(col.out_valid), self.out_acc.eq(col.out_acc),
                     self.out_overflow.eq(col.out_overflow), self.out_invalid.eq(col.out_invalid)]
        return m


def make_unit(a_fmt="bf16", w_fmt="rf8", acc="fp32", lanes: int = 1):
    """The W8A16 unit for ``acc`` (``fp32`` or ``aligned:K:M``)."""
    kind = parse_acc16(acc)[0]
    return Fp32MacUnit(a_fmt, w_fmt, acc, lanes) if kind == "fp32" else AlignedMacUnit(a_fmt, w_fmt, acc, lanes)
