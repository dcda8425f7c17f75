"""Amaranth generator of a weight-stationary R x C array of processing elements (PEs).

Dataflow (docs/hdl.md, "PE array")::

              in_w (C weight codes) + in_wload: shadow weights shift down each column
                 |        |        |
    in_a[0] --> [align] -> skew 0 -> PE(0,0) -> PE(0,1) -> ... -> PE(0,C-1)      activations move right,
    in_a[1] --> [align] -> skew 1 -> PE(1,0) -> PE(1,1) -> ...                   one PE per clock
      ...                               |          |                             partial sums move down,
    in_a[R-1] -> [align] -> skew R-1 -> PE(R-1,0) ...                           one PE per clock
                                        |          |
    tag (valid, clear, last, addr) ->  edge 0  ->  edge 1  -> ... edge C-1     the tag moves right
                                        |          |                            along the bottom edge
                                     out 0      out 1     (column c is c clocks after column 0)

* ``in_a`` is one activation vector per clock (row r = the r-th of R consecutive k), unskewed;
  the array skews row r by r clocks.  Every activation carries a ``swap`` bit: the PE that
  sees it switches to its shadow weight (double buffering: the next tile's weights shift in
  while the current tile computes).
* A PE multiplies its activation by its stationary weight and adds the product to the partial
  sum from above: an exact integer, ``R`` products per column.
* Fixed-point accumulators (``F:W``, 8-bit formats): the PE is a :class:`~rf8sim.hdl.mac.ProductStage`
  plus the floor alignment of :func:`~rf8sim.hdl.mac.align_product`; the column sum of R aligned
  products meets one saturating add into the edge accumulator (entry ``addr`` of ``depth``).
  This is the golden model's ``AccSpec(F, W, group=R)`` order.
* ``aligned:K:M`` (W8A16): one alignment unit per activation row (block exponent ``in_emax``
  from the activation buffer, :func:`~rf8sim.hdl.w8a16.align_activation`), its pre-aligned
  bus shared by the whole row; the PE term is :func:`~rf8sim.hdl.w8a16.aligned_term`;
  partial sums are integers down each column; at the edge an exact block register per entry
  and, at a block's last tile, one :class:`~rf8sim.hdl.w8a16.Fp32Add` per column.  R must divide K.
  ``edge_stages=1`` registers the block sum when a block ends and adds it to the fp32 accumulator
  one clock later: the adder's operands are held between blocks (it switches on R/K of the clocks)
  and it has a clock of its own; same adds in the same order (docs/hdl.md says why it is not shared).
* ``fp32`` (the float32 baseline, TPU/Gemmini style, bf16/fp16 activations): the PE is a
  :class:`~rf8sim.hdl.w8a16.FloatProductStage` (the exact product of the fp32 MAC unit) and one
  :class:`~rf8sim.hdl.w8a16.Fp32Add`; the partial sum flowing down a column is a float32 (plus the
  sticky overflow / invalid bits), rounded once per PE.  The running sum of output (m, n) re-enters
  the top of column n from its edge accumulator entry for the next K tile (+0 on the first), so every
  output is the float32 chain of its products in k order: the golden model's ``AccSpec.fp32()``,
  no new order.  ``pe_stages=2`` registers the exact product before the adder.


The schedule (loop order, weight loads, tags) is :mod:`rf8sim.hdl.schedule`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .. import formats as F
from ..accspec import AccSpec, AccSpecError
from .mac import ProductStage, align_product
from .spec import HdlError, MacSpec
from .w8a16 import FloatProductStage, Fp32Add, align_activation, aligned_term

__all__ = ["ArrayConfig", "PEArray", "generate_array_verilog", "MAX_DIM", "MAX_DEPTH", "PE_STAGES",
           "EDGE_STAGES", "ARRAY_ACC_KINDS"]

#: Largest R and C the generator builds (a 32 x 32 array is ~1,000 PEs; beyond that synthesis is impractical here).
MAX_DIM = 32
#: Largest number of accumulator entries per column.
MAX_DEPTH = 1024
#: PE pipeline depths: 1 = product and partial-sum add in one clock; 2 = product registered first.
PE_STAGES = (1, 2)
#: Register stages between an aligned column's block sum and its float32 edge adder: 0 = the block add and
#: the fp32 add in one clock; 1 = the block sum registered at a block's last tile (the adder's operands only
#: change there, R/K of the clocks) and added to the fp32 accumulator one clock later.
EDGE_STAGES = (0, 1)
#: Accumulator kinds the array builds: fixed point down a column (8-bit activations), pre-aligned blocks
#: (W8A16) and a float32 partial sum down a column (bf16/fp16 activations; the float baseline).
ARRAY_ACC_KINDS = ("fixed", "aligned", "fp32")


def _bits_signed(lo: int, hi: int) -> int:
    return max(max(hi, 0).bit_length(), max(-lo - 1, 0).bit_length()) + 1


def _dim(what: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= MAX_DIM:
        raise HdlError(f"{what} must be an integer in 1..{MAX_DIM} (the synthesizable bound), got {v!r}")
    return int(v)


def parse_size(text: str) -> tuple[int, int]:
    """``"RxC"`` -> (R, C); HdlError naming the syntax otherwise (the bounds are checked by ArrayConfig)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not m:
        raise HdlError(f"array size {text!r} is not RxC (rows x columns, e.g. 4x4, 8x8, 16x16)")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class ArrayConfig:
    """Validated array parameters; ``unit`` is the column's MAC configuration (R lanes)."""

    a_fmt: F.Format
    w_fmt: F.Format
    acc: AccSpec
    rows: int
    cols: int
    depth: int
    pe_stages: int
    unit: MacSpec  # the column's unit: R lanes, fixed or aligned
    edge_stages: int = 0  # aligned: registers between the block sum and the fp32 edge adder (EDGE_STAGES)

    @classmethod
    def make(cls, a_fmt="rf8", w_fmt="rf8", acc=None, rows: int = 4, cols: int = 4, depth: int | None = None,
             pe_stages: int = 1, edge_stages: int = 0) -> "ArrayConfig":
        R, C = _dim("rows (R)", rows), _dim("cols (C)", cols)
        if isinstance(pe_stages, bool) or pe_stages not in PE_STAGES:
            raise HdlError(f"pe_stages must be one of {PE_STAGES}, got {pe_stages!r}")
        if isinstance(edge_stages, bool) or edge_stages not in EDGE_STAGES:
            raise HdlError(f"edge_stages must be one of {EDGE_STAGES}, got {edge_stages!r}")
        if depth is None:
            depth = max(16, 1 << (2 * R + C - 2 - 1).bit_length())
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or not 1 <= depth <= MAX_DEPTH:
            raise HdlError(f"depth (accumulator entries per column) must be an integer in 1..{MAX_DEPTH}, "
                           f"got {depth!r}")
        try:
            a, w = F.get(a_fmt), F.get(w_fmt)
        except F.FormatError as e:
            raise HdlError(str(e)) from None
        a16 = a.code_bits == 16  # the aligned accumulator's activations (MacSpec checks the format)
        if acc is None:
            acc = "aligned:32:16" if a16 else "exact"
        try:
            spec = acc if isinstance(acc, AccSpec) else AccSpec.parse(acc, a, w) if not a16 or str(acc) != "exact" \
                else AccSpec.parse("aligned:32:16")
        except AccSpecError as e:
            raise HdlError(str(e)) from None
        if spec.kind not in ARRAY_ACC_KINDS:
            raise HdlError(f"accumulator {spec}: the PE array builds fixed-point 'FRAC:WIDTH' (8-bit activations), "
                           "'aligned:K:M' and 'fp32' (bf16/fp16 activations)")
        if spec.kind == "fixed":
            if a16:
                raise HdlError(f"activation format {a.name}: a fixed-point accumulator takes 8-bit activations; "
                               "use 'aligned:K:M' for bf16/fp16")
            if spec.group not in (1, R):
                raise HdlError(f"accumulator {spec}: the array's order is groups of R = {R} rows; "
                               f"give group 1 or {R}")
            if edge_stages:
                raise HdlError(f"edge_stages {edge_stages}: only the aligned (W8A16) arrays have a float32 edge "
                               "adder to register; fixed-point arrays take edge_stages 0")
            spec = AccSpec(spec.frac_bits, spec.width, group=R)
            unit = MacSpec.make(a, w, spec.ungrouped(), R, "fixed")
        elif spec.kind == "fp32":
            if not a16:
                raise HdlError(f"accumulator fp32: the fp32 array takes bf16/fp16 activations, got {a.name} "
                               "(8-bit activations take a fixed-point accumulator, e.g. 'exact' or 'FRAC:WIDTH')")
            if edge_stages:
                raise HdlError(f"edge_stages {edge_stages}: the fp32 array adds in every PE and has no edge adder to "
                               "register; it takes edge_stages 0")
            if R + C < 3:
                raise HdlError(f"array {R}x{C}: the fp32 array needs R + C >= 3 (a tile's running sums must leave the "
                               "column before the next K tile reads them back at the top); use 1x2, 2x1 or larger")
            unit = MacSpec.make(a, w, spec, R)
        else:
            if not a16:
                raise HdlError(f"accumulator {spec}: the aligned array takes bf16/fp16 activations, "
                               f"got {a.name}")
            if spec.block % R:
                raise HdlError(f"accumulator {spec}: rows R = {R} must divide the block K = {spec.block} "
                               f"(a column sums R terms of one block); valid R: "
                               f"{', '.join(str(d) for d in range(1, min(MAX_DIM, spec.block) + 1) if spec.block % d == 0)}")
            unit = MacSpec.make(a, w, spec, R)
        return cls(a, w, spec, R, C, int(depth), int(pe_stages), unit, int(edge_stages))

    def make_args(self) -> dict:
        """The keyword arguments of :meth:`make` (and :class:`PEArray`, :func:`generate_array_verilog`)
        that rebuild this configuration."""
        return {"a_fmt": self.a_fmt.name, "w_fmt": self.w_fmt.name, "acc": str(self.acc.ungrouped()),
                "rows": self.rows, "cols": self.cols, "depth": self.depth, "pe_stages": self.pe_stages,
                "edge_stages": self.edge_stages}

    # ---- derived
    @property
    def kind(self) -> str:
        return self.acc.kind

    @property
    def a_bits(self) -> int:
        return self.a_fmt.code_bits if hasattr(self.a_fmt, "code_bits") else 8

    @property
    def w_bits(self) -> int:
        return self.unit.w_bits

    @property
    def out_width(self) -> int:
        return self.acc.width if self.kind == "fixed" else 32

    @property
    def addr_bits(self) -> int:
        return max(1, (self.depth - 1).bit_length())

    @property
    def emax_bits(self) -> int:
        return self.unit.a_fields.exp_bits if self.kind == "aligned" else 0

    @property
    def latency(self) -> int:
        """Clocks from an activation vector on ``in_a`` to its output on column 0 (column c: + c)."""
        return self.rows + self.pe_stages + 1 + self.edge_stages

    @property
    def load_gap(self) -> int:
        """Clocks from a tile's first activation (its swap) to the first weight load of the next tile."""
        return self.rows + self.cols - 1

    def psum_width(self, r: int) -> int:
        """Bits of the partial sum below row r (r + 1 terms); fp32: the float32 (its flags travel beside it)."""
        if self.kind == "fp32":
            return 32
        if self.kind == "fixed":
            lo, hi = self.unit.aligned_range
        else:
            lo, hi = -self.unit.term_hi, self.unit.term_hi
        return _bits_signed(lo * (r + 1), hi * (r + 1))

    def golden_acc(self) -> AccSpec:
        """The accumulator under which ``rf8sim.golden.gemm`` gives this array's results."""
        return self.acc

    def module_name(self) -> str:
        acc = (f"f{self.acc.frac_bits}w{self.acc.width}" if self.kind == "fixed"
               else "fp32" if self.kind == "fp32" else f"al{self.acc.block}m{self.acc.align_bits}")
        name = (f"array_{self.a_fmt.name}x{self.w_fmt.name}_{acc}_{self.rows}x{self.cols}_d{self.depth}"
                f"_s{self.pe_stages}" + (f"_e{self.edge_stages}" if self.edge_stages else ""))
        return re.sub(r"[^A-Za-z0-9_]", "_", name)

    def describe(self) -> dict:
        d = {"a_fmt": self.a_fmt.name, "w_fmt": self.w_fmt.name, "acc": str(self.acc.ungrouped()),
             "golden_acc": str(self.acc), "rows": self.rows, "cols": self.cols, "depth": self.depth,
             "pe_stages": self.pe_stages, "latency": self.latency, "out_width": self.out_width,
             "psum_width": self.psum_width(self.rows - 1), "pes": self.rows * self.cols}
        if self.kind == "aligned":
            d.update(block_width=self.unit.block_width, align_units=self.rows, edge_fp32_adders=self.cols,
                     edge_adder_duty=self.rows / self.acc.block, edge_stages=self.edge_stages)
        elif self.kind == "fp32":
            d.update(pe_fp32_adders=self.rows * self.cols, top_reentry=True)
        return d

    def ports(self) -> dict:
        """Port name -> (direction, bits): the Verilog interface, in the order of the stimulus word."""
        R, C = self.rows, self.cols
        p = {"in_valid": ("in", 1), "in_swap": ("in", 1), "in_clear": ("in", 1), "in_last": ("in", 1),
             "in_addr": ("in", self.addr_bits)}
        if self.kind == "aligned":
            p.update(in_bfirst=("in", 1), in_blast=("in", 1), in_emax=("in", self.emax_bits))
        p.update(in_a=("in", R * self.a_bits), in_wload=("in", 1), in_w=("in", C * self.w_bits),
                 out_valid=("out", C), out_acc=("out", C * self.out_width), out_overflow=("out", C),
                 out_invalid=("out", C))
        return p


def _delay(m: Module, sig, n: int, name: str, reset_less: bool = True):
    """``sig`` delayed by ``n`` clocks (a shift register; reset to 0 unless ``reset_less``)."""
    cur = sig
    for i in range(n):
        nxt = Signal(len(sig), name=f"{name}_d{i + 1}", reset_less=reset_less)
        m.d.sync += nxt.eq(cur)
        cur = nxt
    return cur


class PEArray(wiring.Component):
    """The R x C weight-stationary array (see the module docstring and docs/hdl.md).

    Ports (Verilog names; ``clk``, ``rst`` synchronous active high added by Amaranth):

    * ``in_valid``, ``in_swap`` (first vector of a weight tile), ``in_clear`` (start the
      accumulation of entry ``in_addr``), ``in_last`` (emit entry ``in_addr`` after this tile),
      ``in_addr`` (accumulator entry, one per activation vector of a tile), ``in_a`` (R codes,
      row r in bits ``r*A+A-1..r*A``); aligned only: ``in_bfirst``/``in_blast`` (the tile is the
      first / last of an alignment block), ``in_emax`` (the block's largest exponent field).
    * ``in_wload``, ``in_w`` (C weight codes): one row of the next tile's weights per clock,
      shifting down the shadow registers (R clocks, row R-1 first).
    * ``out_valid``/``out_acc``/``out_overflow``/``out_invalid`` per column (column c in bits
      ``c*W+W-1..c*W``): the accumulator after a ``last`` tile, ``latency + c`` clocks after its
      activation vector; fixed: two's complement with ``frac_bits`` fraction bits; aligned: float32 bits.
    """

    def __init__(self, a_fmt="rf8", w_fmt="rf8", acc=None, rows: int = 4, cols: int = 4, depth: int | None = None,
                 pe_stages: int = 1, edge_stages: int = 0):
        try:
            self.config = ArrayConfig.make(a_fmt, w_fmt, acc, rows, cols, depth, pe_stages, edge_stages)
        except Exception:
            self._MustUse__silence = True
            raise
        cfg = self.config
        sig = {}
        for name, (d, bits) in cfg.ports().items():
            sig[name] = (In if d == "in" else Out)(bits)
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        R, C, S = cfg.rows, cfg.cols, cfg.pe_stages
        AB, WB = cfg.a_bits, cfg.w_bits
        aligned = cfg.kind == "aligned"
        fp = cfg.kind == "fp32"
        # ---- activation rows: (alignment), skew by r, then a register per PE moving right
        rowbus = []
        for r in range(R):
            code = self.in_a[AB * r:AB * (r + 1)]
            if aligned:
                sgn, mag, spec = align_activation(m, cfg.unit, code, self.in_emax, r)
                word = Signal(cfg.acc.align_bits + 2, name=f"row{r}_in")
                m.d.comb += word.eq(Cat(mag, sgn, spec, self.in_valid & self.in_swap))
            else:
                word = Signal(AB + 1, name=f"row{r}_in")
                m.d.comb += word.eq(Cat(code, self.in_valid & self.in_swap))
            rowbus.append(_delay(m, word, r, f"skew{r}"))
        # ---- weights: shadow (loaded through a shift chain down each column) and active
        shadow = [[Signal(WB, name=f"wsh_{r}_{c}", reset_less=True) for c in range(C)] for r in range(R)]
        with m.If(self.in_wload):
            for c in range(C):
                m.d.sync += shadow[0][c].eq(self.in_w[WB * c:WB * (c + 1)])
                for r in range(1, R):
                    m.d.sync += shadow[r][c].eq(shadow[r - 1][c])
        # ---- fp32: the running sums re-enter the top of each column from the edge accumulator (docs/hdl.md)
        top_tag = None
        if fp:
            top_in = Signal(2 + cfg.addr_bits, name="tag_top_in")
            m.d.comb += top_in.eq(Cat(self.in_valid, self.in_clear, self.in_addr))
            # a vector on in_a at clock t meets row 0 of column c at t + S + c (its adder's clock)
            top_tag = _delay(m, top_in, S, "tag_top", reset_less=False)
            accmems = []
        # ---- PEs
        psum_above = [None] * C
        spec_above = [None] * C
        flags_above = [None] * C
        for r in range(R):
            prev = rowbus[r]
            for c in range(C):
                areg = Signal(len(prev), name=f"a_{r}_{c}", reset_less=True)
                m.d.sync += areg.eq(prev)
                prev = areg
                swap = areg[-1]
                wact = Signal(WB, name=f"w_{r}_{c}", reset_less=True)
                wuse = Signal(WB, name=f"wuse_{r}_{c}")
                m.d.comb += wuse.eq(Mux(swap, shadow[r][c], wact))
                m.d.sync += wact.eq(wuse)
                tag = f"{r}_{c}"
                if fp:
                    fps = FloatProductStage(cfg.unit)
                    m.submodules[f"pe_{tag}"] = fps
                    m.d.comb += [fps.a.eq(areg[0:AB]), fps.w.eq(wuse)]
                    prod = {k: getattr(fps, k) for k in ("sign", "mag", "exp", "nan", "inf")}
                    if S == 2:  # the exact product registered before the adder
                        regs = {k: Signal.like(v, name=f"prod_{k}_{tag}", reset_less=True) for k, v in prod.items()}
                        m.d.sync += [regs[k].eq(prod[k]) for k in prod]
                        prod = regs
                    if r == 0:   # the column's top: the running sum of this output, +0 on its first K tile
                        if c:
                            top_tag = _delay(m, top_tag, 1, f"tag_top_c{c}", reset_less=False)
                        clear_t, addr_t = top_tag[1], top_tag[2:]
                        mem = Memory(shape=34, depth=cfg.depth, init=[])
                        m.submodules[f"accmem{c}"] = mem
                        rd = mem.read_port(domain="comb")
                        accmems.append(mem)
                        m.d.comb += rd.addr.eq(addr_t)
                        acc_in = Mux(clear_t, 0, rd.data[0:32])
                        ovf_in, inv_in = rd.data[32] & ~clear_t, rd.data[33] & ~clear_t
                    else:
                        acc_in = psum_above[c]
                        ovf_in, inv_in = flags_above[c]
                    add = Fp32Add(cfg.unit.p_width, cfg.unit.p_exp_width)
                    m.submodules[f"pe_fadd_{tag}"] = add
                    m.d.comb += [add.acc.eq(acc_in), add.xs.eq(prod["sign"]), add.xm.eq(prod["mag"]),
                                 add.xe.eq(prod["exp"]), add.xnan.eq(prod["nan"]), add.xinf.eq(prod["inf"])]
                    psum = Signal(32, name=f"psum_{tag}", reset_less=True)
                    povf = Signal(name=f"povf_{tag}", reset_less=True)
                    pinv = Signal(name=f"pinv_{tag}", reset_less=True)
                    m.d.sync += [psum.eq(add.res), povf.eq(ovf_in | add.ovf), pinv.eq(inv_in | add.inv)]
                    psum_above[c], flags_above[c] = psum, (povf, pinv)
                    continue
                if aligned:
                    Mb = cfg.acc.align_bits
                    term, wspec = aligned_term(m, cfg.unit, areg[Mb - 1], areg[0:Mb - 1], wuse, tag)
                    spec = areg[Mb] | wspec
                else:
                    ps = ProductStage(cfg.a_fmt, cfg.w_fmt)
                    m.submodules[f"pe_{tag}"] = ps
                    m.d.comb += [ps.a.eq(areg[0:AB]), ps.w.eq(wuse)]
                    term = align_product(m, cfg.unit, ps.p, ps.sh, tag)
                    spec = ps.special
                if S == 2:
                    t2 = Signal.like(term, name=f"prod_{tag}", reset_less=True)
                    s2 = Signal(name=f"prodspec_{tag}", reset_less=True)
                    m.d.sync += [t2.eq(term), s2.eq(spec)]
                    term, spec = t2, s2
                ps_w = cfg.psum_width(r)
                psum = Signal(signed(ps_w), name=f"psum_{tag}", reset_less=True)
                pspec = Signal(name=f"pspec_{tag}", reset_less=True)
                if r == 0:
                    m.d.sync += [psum.eq(term), pspec.eq(spec)]
                else:
                    m.d.sync += [psum.eq(psum_above[c] + term), pspec.eq(spec_above[c] | spec)]
                psum_above[c], spec_above[c] = psum, pspec
        # ---- tag along the bottom edge
        tag_fields = [self.in_valid, self.in_clear, self.in_last, self.in_addr]
        if aligned:
            tag_fields += [self.in_bfirst, self.in_blast, self.in_emax]
        tag_in = Signal(sum(len(f) for f in tag_fields), name="tag_in")
        m.d.comb += tag_in.eq(Cat(*tag_fields))
        # the tag's registers reset to 0: no output or accumulator write from whatever they held before
        tag = _delay(m, tag_in, R + S, "tag", reset_less=False)
        W = cfg.out_width
        D = cfg.depth
        for c in range(C):
            if c:
                tag = _delay(m, tag, 1, f"tag_c{c}", reset_less=False)
            off = 0
            fields = {}
            for name, f in zip(("valid", "clear", "last", "addr", "bfirst", "blast", "emax"), tag_fields):
                fields[name] = tag[off:off + len(f)]
                off += len(f)
            v, clear, last, addr = fields["valid"], fields["clear"], fields["last"], fields["addr"]
            ps, sp = psum_above[c], spec_above[c]
            o_v = Signal(name=f"o_valid{c}")
            o_acc = Signal(W, name=f"o_acc{c}", reset_less=True)
            o_ovf = Signal(name=f"o_ovf{c}", reset_less=True)
            o_inv = Signal(name=f"o_inv{c}", reset_less=True)
            if fp:
                # the column's running sum after this K tile goes back to its entry (read at the top by the
                # next K tile of the same outputs, R + 1 or more clocks later: the schedule's tile spacing)
                povf, pinv = flags_above[c]
                wr = accmems[c].write_port()
                m.d.comb += [wr.addr.eq(addr), wr.data.eq(Cat(ps, povf, pinv)), wr.en.eq(v)]
                m.d.sync += [o_v.eq(v & last), o_acc.eq(ps), o_ovf.eq(povf), o_inv.eq(pinv)]
            elif not aligned:
                acc = cfg.unit.acc
                mem = Memory(shape=W + 2, depth=D, init=[])
                m.submodules[f"accmem{c}"] = mem
                rd = mem.read_port(domain="comb")
                wr = mem.write_port()
                cur = rd.data
                m.d.comb += [rd.addr.eq(addr), wr.addr.eq(addr)]
                tw = max(len(ps), acc.width) + 1
                total = Signal(signed(tw), name=f"edge_total{c}")
                m.d.comb += total.eq(Mux(clear, 0, cur[0:W].as_signed()) + ps)
                hi, lo = total > acc.max, total < acc.min
                new = Signal(W, name=f"edge_new{c}")
                m.d.comb += new.eq(Mux(hi, acc.max, Mux(lo, acc.min, total)))
                ovf = (cur[W] & ~clear) | hi | lo
                inv = (cur[W + 1] & ~clear) | sp
                m.d.comb += [wr.data.eq(Cat(new, ovf, inv)), wr.en.eq(v)]
                m.d.sync += [o_v.eq(v & last), o_acc.eq(new), o_ovf.eq(ovf), o_inv.eq(inv)]
            else:
                u = cfg.unit
                BW = u.block_width
                bfirst, blast, emax = fields["bfirst"], fields["blast"], fields["emax"]
                bmem = Memory(shape=BW + 1, depth=D, init=[])
                amem = Memory(shape=34, depth=D, init=[])
                m.submodules[f"blkmem{c}"] = bmem
                m.submodules[f"accmem{c}"] = amem
                brd, bwr = bmem.read_port(domain="comb"), bmem.write_port()
                ard, awr = amem.read_port(domain="comb"), amem.write_port()
                m.d.comb += [brd.addr.eq(addr), bwr.addr.eq(addr)] + (
                    [] if cfg.edge_stages else [ard.addr.eq(addr), awr.addr.eq(addr)])
                blk = Signal(signed(BW), name=f"edge_block{c}")
                m.d.comb += blk.eq(Mux(bfirst, 0, brd.data[0:BW].as_signed()) + ps)
                bspec = Signal(name=f"edge_bspec{c}")
                m.d.comb += bspec.eq((brd.data[BW] & ~bfirst) | sp)
                m.d.comb += [bwr.data.eq(Cat(blk, bspec)), bwr.en.eq(v)]
                fire = v & blast  # a block's last tile: its sum goes to the fp32 accumulator
                if cfg.edge_stages:
                    # the block sum and its tag registered when a block ends, held otherwise: the fp32
                    # adder's operands change on R/K of the clocks, and it has a clock of its own
                    e_v = Signal(name=f"edge_fire{c}")
                    e_blk = Signal(signed(BW), name=f"edge_blk_r{c}", reset_less=True)
                    e_spec = Signal(name=f"edge_bspec_r{c}", reset_less=True)
                    e_emax = Signal(len(emax), name=f"edge_emax_r{c}", reset_less=True)
                    e_addr = Signal(len(addr), name=f"edge_addr_r{c}", reset_less=True)
                    e_clear = Signal(name=f"edge_clear_r{c}", reset_less=True)
                    e_last = Signal(name=f"edge_last_r{c}", reset_less=True)
                    m.d.sync += e_v.eq(fire)
                    with m.If(fire):
                        m.d.sync += [e_blk.eq(blk), e_spec.eq(bspec), e_emax.eq(emax), e_addr.eq(addr),
                                     e_clear.eq(clear), e_last.eq(last)]
                    fire, blk, bspec, emax, addr, clear, last = e_v, e_blk, e_spec, e_emax, e_addr, e_clear, e_last
                    m.d.comb += [ard.addr.eq(addr), awr.addr.eq(addr)]
                xoff = u.a_fields.bias + u.acc.align_bits - 2 - u.w_plan.exp_lo
                add = Fp32Add(BW, _bits_signed(1 - xoff, u.a_fields.emax_field - xoff) + 1)
                m.submodules[f"fadd{c}"] = add
                neg = blk < 0
                accv = ard.data
                m.d.comb += [add.acc.eq(Mux(clear, 0, accv[0:32])), add.xs.eq(neg),
                             add.xm.eq(Mux(neg, -blk, blk)[0:BW]), add.xe.eq(emax - xoff),
                             add.xnan.eq(bspec), add.xinf.eq(0)]
                ovf = (accv[32] & ~clear) | add.ovf
                inv = (accv[33] & ~clear) | add.inv
                m.d.comb += [awr.data.eq(Cat(add.res, ovf, inv)), awr.en.eq(fire)]
                m.d.sync += [o_v.eq(fire & last), o_acc.eq(add.res), o_ovf.eq(ovf), o_inv.eq(inv)]
            m.d.comb += [self.out_valid[c].eq(o_v), self.out_acc[W * c:W * (c + 1)].eq(o_acc),
                         self.out_overflow[c].eq(o_ovf), self.out_invalid[c].eq(o_inv)]
        return m


def _header(cfg: ArrayConfig, name: str) -> str:
    from .. import __version__
    from .verilog import LINT_WAIVERS

    d = cfg.describe()
    ports = ", ".join(f"{n} [{b}]" for n, (_, b) in cfg.ports().items())
    lines = [
        f"// {name}: rf8sim weight-stationary PE array, generated by rf8sim {__version__} (Amaranth); do not edit.",
        f"// a_fmt={d['a_fmt']} w_fmt={d['w_fmt']} acc={d['acc']} rows={d['rows']} cols={d['cols']} "
        f"depth={d['depth']} pe_stages={d['pe_stages']} (golden order: acc={d['golden_acc']})",
        f"// latency={d['latency']}: an activation vector on in_a at clock t shows on column c's outputs at "
        f"t+{d['latency']}+c; ports (bits): clk, rst, {ports}",
        f"// regenerate: rf8sim array generate --a-fmt {d['a_fmt']} --w-fmt {d['w_fmt']} --acc {d['acc']} "
        f"--rows {d['rows']} --cols {d['cols']} --depth {d['depth']} --pe-stages {d['pe_stages']}"
        + (f" --edge-stages {cfg.edge_stages}" if cfg.edge_stages else "") + f" -o {name}.v",
    ]
    lines += [f"// verilator lint_off {rule}" for rule in LINT_WAIVERS]
    return "\n".join(lines) + "\n"


def generate_array_verilog(a_fmt="rf8", w_fmt="rf8", acc=None, rows: int = 4, cols: int = 4,
                           depth: int | None = None, pe_stages: int = 1, name: str | None = None,
                           edge_stages: int = 0) -> tuple[str, ArrayConfig]:
    """Verilog-2005 text of a :class:`PEArray` and its :class:`ArrayConfig`; ``a_fmt`` may be an
    :class:`ArrayConfig` (the other configuration arguments are then ignored)."""
    from amaranth.back import verilog

    if isinstance(a_fmt, ArrayConfig):
        arr = PEArray(**a_fmt.make_args())
    else:
        arr = PEArray(a_fmt, w_fmt, acc, rows, cols, depth, pe_stages, edge_stages)
    name = name or arr.config.module_name()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise HdlError(f"module name {name!r} is not a plain Verilog identifier")
    body = verilog.convert(arr, name=name, emit_src=False)
    return _header(arr.config, name) + body, arr.config
