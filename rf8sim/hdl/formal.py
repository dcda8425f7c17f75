"""Yosys SAT proofs that a generated product stage equals a reference written from the format definitions.

Fixed accumulators (8-bit codes): the reference is written in Verilog from the
:mod:`rf8sim.formats` tables alone: four 256-entry case statements per operand (sign,
integer significand, exponent, NaN/Inf) and a plain ``*`` of the significands.  A checker
asserts, for every one of the 2^16 code pairs at once (SAT, not simulation), that the
generated stage gives the same NaN/Inf flag, the same signed product ``p`` and, for nonzero
products, the same exponent ``sh + xmin``.

fp32 / aligned accumulators (16-bit float activations): the reference decodes the activation
from its IEEE fields (the contract's definition, checked against the ``rf8sim.formats``
tables by the tests) and the weight from 256-entry case statements of the ``Format`` tables
(bf16 weights from their fields), then multiplies the significands with a plain ``*``.  The
checker asserts, for every code pair at once (2^24 pairs, 2^32 for bf16 weights): same NaN
and Inf flags, same magnitude, same sign for every non-special product (zeros included:
their sign feeds the float32 zero rules), same exponent for nonzero products.

``mutate=True`` flips one table entry (or, for bf16 weights, the activation's bias) so that
tests can see the proof fail.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .. import formats as F
from .spec import HdlError, MacSpec, float_fields

__all__ = ["prove_product_stage"]

#: the code whose reference significand ``mutate`` flips (a proof must then fail); 0x3A mod 16 = 10
#: for the 4-bit formats
_MUTATED = 0x3A

def _table_module(name: str, fmt: F.Format, ew: int, sw: int, mutate: bool = False) -> str:
    nb = fmt.code_bits
    lines = [f"module {name}(input [{nb - 1}:0] c, output reg s, output reg [{sw - 1}:0] sig,",
             f"    output reg signed [{ew - 1}:0] e, output reg sp);",
             "  always @* begin", "    case (c)"]
    for c in range(fmt.n_codes):
        sp = int(fmt.special[c] != F.SPECIAL_FINITE)
        sig = 0 if sp else int(fmt.sig[c])
        e = 0 if sp else int(fmt.exp[c])
        if mutate and c == _MUTATED % fmt.n_codes:
            sig ^= 1
        lines.append(f"      {nb}'d{c}: begin s = 1'b{int(fmt.sign[c])}; sig = {sw}'d{sig}; "
                     f"e = {'-' if e < 0 else ''}{ew}'sd{abs(e)}; sp = 1'b{sp}; end")
    lines += ["      default: begin s = 1'b0; sig = 0; e = 0; sp = 1'b0; end",
              "    endcase", "  end", "endmodule"]
    return "\n".join(lines)


def _fixed_checker(spec: MacSpec, work: Path, mutate: bool) -> int:
    """Write dut.v and ref.v of an 8-bit product stage; returns the number of code pairs."""
    from amaranth.back import verilog

    from .mac import ProductStage

    a, w = spec.a, spec.w
    plan = spec.product
    dut_name = "dut_product"
    (work / "dut.v").write_text(verilog.convert(ProductStage(spec), name=dut_name, emit_src=False))
    # exponents of all 8-bit formats fit in 10 signed bits; significands in 9, or what a wider table needs
    ew, sw = 10, max(_sig_width(a, 9), _sig_width(w, 9))
    pw, shw = plan.p_width, plan.sh_width
    ref = [_table_module("tab_a", a, ew, sw, mutate), _table_module("tab_w", w, ew, sw)]
    ref.append(f"""
module check(input [{a.code_bits - 1}:0] a, input [{w.code_bits - 1}:0] w, output ok);
  wire signed [{pw - 1}:0] p;
  wire [{shw - 1}:0] sh;
  wire special;
  {dut_name} dut(.a(a), .w(w), .p(p), .sh(sh), .special(special));
  wire sa, sw_, spa, spw;
  wire [{sw - 1}:0] ga, gw;
  wire signed [{ew - 1}:0] ea, ew_;
  tab_a ta(.c(a), .s(sa), .sig(ga), .e(ea), .sp(spa));
  tab_w tw(.c(w), .s(sw_), .sig(gw), .e(ew_), .sp(spw));
  wire ref_special = spa | spw;
  wire [{2 * sw - 1}:0] mag = ga * gw;
  wire signed [{2 * sw + 1}:0] ref_p = ref_special ? 0 : ((sa ^ sw_) ? -$signed({{2'b0, mag}}) : $signed({{2'b0, mag}}));
  wire signed [{ew + 1}:0] ref_e = ea + ew_;
  wire signed [{ew + 1}:0] dut_e = $signed({{{ew + 2 - shw}'b0, sh}}) + ({plan.xmin});
  assign ok = (special == ref_special) && ($signed(p) == ref_p) && (ref_p == 0 || dut_e == ref_e);
endmodule
""")
    (work / "ref.v").write_text("\n".join(ref))
    return 1 << (a.code_bits + w.code_bits)


EW = 12   # signed exponent width of the reference (|exp| <= 300)
SW = 12   # significand width of the reference


def _dec16_module(name: str, fl, mutate: bool = False, sw: int = SW) -> str:
    eb, mb, bias = fl.exp_bits, fl.man_bits, fl.bias + (1 if mutate else 0)
    return f"""
module {name}(input [15:0] c, output s, output [{sw - 1}:0] sig, output signed [{EW - 1}:0] e,
              output nan, output inf);
  wire [{eb - 1}:0] E = c[{14}:{mb}];
  wire [{mb - 1}:0] M = c[{mb - 1}:0];
  assign s = c[15];
  assign nan = (E == {eb}'d{(1 << eb) - 1}) && (M != 0);
  assign inf = (E == {eb}'d{(1 << eb) - 1}) && (M == 0);
  // subnormal: M * 2**(1 - bias - mb); normal: (2**mb + M) * 2**(E - bias - mb)
  assign sig = (nan || inf) ? 0 : (E == 0) ? M : ({sw}'d{1 << mb} + M);
  assign e = (E == 0) ? $signed({EW}'d1) - {EW}'sd{bias + mb} : $signed({{{EW - eb}'d0, E}}) - {EW}'sd{bias + mb};
endmodule
"""


def _table8_module(name: str, fmt: F.Format, mutate: bool = False, sw: int = SW) -> str:
    nb = fmt.code_bits
    lines = [f"module {name}(input [{nb - 1}:0] c, output reg s, output reg [{sw - 1}:0] sig,",
             f"    output reg signed [{EW - 1}:0] e, output reg nan, output reg inf);",
             "  always @* begin", "    case (c)"]
    for c in range(fmt.n_codes):
        nan = int(fmt.special[c] == F.SPECIAL_NAN)
        inf = int(fmt.special[c] == F.SPECIAL_INF)
        sig = 0 if (nan or inf) else int(fmt.sig[c])
        e = 0 if (nan or inf) else int(fmt.exp[c])
        if mutate and c == _MUTATED % fmt.n_codes:
            sig ^= 1
        lines.append(f"      {nb}'d{c}: begin s = 1'b{int(fmt.sign[c])}; sig = {sw}'d{sig}; "
                     f"e = {'-' if e < 0 else ''}{EW}'sd{abs(e)}; nan = 1'b{nan}; inf = 1'b{inf}; end")
    lines += ["      default: begin s = 1'b0; sig = 0; e = 0; nan = 1'b0; inf = 1'b0; end",
              "    endcase", "  end", "endmodule"]
    return "\n".join(lines)


def _sig_width(fmt: F.Format, base: int = SW) -> int:
    """Reference significand width for an 8-bit table: ``base``, or wider where the table needs it."""
    fin = fmt.special == F.SPECIAL_FINITE
    return max(base, int(fmt.sig[fin].max(initial=0)).bit_length())


def _float_checker(spec: MacSpec, work: Path, mutate: bool) -> int:
    """Write dut.v and ref.v of a 16-bit-activation product stage; returns the number of code pairs."""
    from amaranth.back import verilog

    from .w8a16 import FloatProductStage

    cfg = MacSpec.make(spec.a, spec.w, "fp32", 1)
    (work / "dut.v").write_text(verilog.convert(FloatProductStage(cfg), name="dut16", emit_src=False))
    wb = cfg.w_bits
    sw = _sig_width(cfg.w) if wb != 16 else SW  # wider for APoT's 22-bit significands
    ref = [_dec16_module("ref_a", cfg.a_fields, mutate and wb == 16, sw)]
    if wb == 16:
        ref.append(_dec16_module("ref_w", float_fields(cfg.w), sw=sw))
    else:
        ref.append(_table8_module("ref_w", cfg.w, mutate, sw))
    pw, ew = cfg.p_width, cfg.p_exp_width
    ref.append(f"""
module check(input [15:0] a, input [{wb - 1}:0] w, output ok);
  wire sign, nan, inf;
  wire [{pw - 1}:0] mag;
  wire signed [{ew - 1}:0] exp;
  dut16 dut(.a(a), .w(w), .sign(sign), .mag(mag), .exp(exp), .nan(nan), .inf(inf));
  wire sa, sw_, na, ia, nw, iw;
  wire [{sw - 1}:0] ga, gw;
  wire signed [{EW - 1}:0] ea, ew_;
  ref_a ra(.c(a), .s(sa), .sig(ga), .e(ea), .nan(na), .inf(ia));
  ref_w rw(.c(w), .s(sw_), .sig(gw), .e(ew_), .nan(nw), .inf(iw));
  wire za = !na && !ia && ga == 0;
  wire zw = !nw && !iw && gw == 0;
  wire ref_nan = na || nw || (ia && zw) || (iw && za);
  wire ref_inf = (ia || iw) && !ref_nan;
  wire [{2 * sw - 1}:0] ref_mag = (na || ia || nw || iw) ? 0 : ga * gw;
  wire signed [{EW + 1}:0] ref_e = ea + ew_;
  wire signed [{EW + 1}:0] dut_e = exp;
  assign ok = (nan == ref_nan) && (inf == ref_inf) && ({{{2 * sw - pw}'d0, mag}} == ref_mag)
              && (ref_nan || ref_inf || sign == (sa ^ sw_)) && (ref_mag == 0 || dut_e == ref_e);
endmodule
""")
    (work / "ref.v").write_text("\n".join(ref))
    return 1 << (16 + wb)


def prove_product_stage(spec, *args, workdir: str | Path | None = None, mutate: bool = False,
                        timeout: int = 1800, split_w: bool = False, abc: bool = False) -> dict:
    """SAT-prove the generated product stage of ``spec`` (any :class:`MacSpec`; its datapath picks the
    checker) against the format definitions, for every code pair at once.

    ``split_w``: one SAT problem per weight code (``sat -set w K`` for every K; a constant weight makes
    the multiplier's equivalence easy for the solver), all in one yosys run; proved when every one of
    them is (wide significands, e.g. LNS, whose whole-space proof runs for many minutes).
    ``abc``: before SAT, map the flattened checker to an AND-inverter graph with ``abc -g AND`` (its
    fraiging merges the nodes it proves equivalent, so the remaining SAT problem is small); the proof
    then also trusts yosys' ABC step, as synthesis does.

    ``prove_product_stage(spec, workdir, mutate=False)``; the older ``prove_product_stage(a_fmt, w_fmt,
    workdir, mutate)`` still works.  Returns ``{"proved": bool, "pairs": n, "log": path}`` (with
    ``"sat_problems"`` when split); raises HdlError if yosys itself fails or runs past ``timeout`` seconds.
    """
    from .synth import _yosys_cmd

    args = list(args)
    if not isinstance(spec, MacSpec):
        spec = MacSpec.make(spec, args.pop(0))
    if args:
        workdir = args.pop(0)
    if args:
        mutate = args.pop(0)
    if workdir is None:
        raise HdlError("prove_product_stage needs a workdir")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    pairs = (_fixed_checker if spec.kind == "fixed" else _float_checker)(spec, work, mutate)
    sats = ([f"sat -prove ok 1 -verify -show-inputs -set w {k} check" for k in range(1 << spec.w_bits)] if split_w
            else ["sat -prove ok 1 -verify -show-inputs check"])
    (work / "prove.ys").write_text(
        "read_verilog dut.v\nread_verilog ref.v\nhierarchy -top check\nproc\nflatten\nmemory\nopt -fast\n"
        + ("techmap\nopt -fast\nabc -g AND\nopt\n" if abc else "") + "\n".join(sats) + "\n")
    try:
        r = subprocess.run(_yosys_cmd() + ["-q", "-l", "prove.log", "-s", "prove.ys"], cwd=work,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise HdlError(f"yosys SAT proof in {work} did not finish in {timeout} s") from None
    log = (work / "prove.log").read_text() if (work / "prove.log").exists() else ""
    res = {"pairs": pairs, "log": str(work / "prove.log")}
    if split_w:
        res["sat_problems"] = len(sats)
    ok = re.findall(r"SAT (proof finished|solving finished) - no model found: SUCCESS", log)
    if r.returncode == 0 and len(ok) == len(sats):
        return {**res, "proved": True}
    if "failed" in log.lower() or "FAIL" in log:
        return {**res, "proved": False}
    raise HdlError(f"yosys SAT run failed in {work}:\n{(r.stderr or log)[-1500:]}")
