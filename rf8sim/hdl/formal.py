"""Yosys SAT proof that a generated product stage equals a table-driven reference.

The reference is written in Verilog from the :mod:`rf8sim.formats` tables alone:
four 256-entry case statements per operand (sign, integer significand, exponent,
NaN/Inf) and a plain ``*`` of the significands.  A checker asserts, for every one of
the 2^16 code pairs at once (SAT, not simulation), that the generated stage gives
the same NaN/Inf flag, the same signed product ``p`` and, for nonzero products, the
same exponent ``sh + xmin``.  ``mutate=True`` flips one table entry so that tests can
see the proof fail.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .. import formats as F
from .mac import HdlError, ProductPlan, ProductStage

__all__ = ["prove_product_stage"]


def _table_module(name: str, fmt: F.Format, ew: int, sw: int, mutate: bool = False) -> str:
    lines = [f"module {name}(input [7:0] c, output reg s, output reg [{sw - 1}:0] sig,",
             f"    output reg signed [{ew - 1}:0] e, output reg sp);",
             "  always @* begin", "    case (c)"]
    for c in range(256):
        sp = int(fmt.special[c] != F.SPECIAL_FINITE)
        sig = 0 if sp else int(fmt.sig[c])
        e = 0 if sp else int(fmt.exp[c])
        if mutate and c == 0x3A:
            sig ^= 1
        lines.append(f"      8'd{c}: begin s = 1'b{int(fmt.sign[c])}; sig = {sw}'d{sig}; "
                     f"e = {'-' if e < 0 else ''}{ew}'sd{abs(e)}; sp = 1'b{sp}; end")
    lines += ["      default: begin s = 1'b0; sig = 0; e = 0; sp = 1'b0; end",
              "    endcase", "  end", "endmodule"]
    return "\n".join(lines)


def prove_product_stage(a_fmt, w_fmt, workdir: str | Path, mutate: bool = False) -> dict:
    """SAT-prove the generated product stage of ``a_fmt x w_fmt`` against the format tables.

    Returns ``{"proved": bool, "log": path}``; raises HdlError if yosys itself fails.
    """
    from amaranth.back import verilog

    from .synth import _yosys_cmd

    a, w = F.get(a_fmt), F.get(w_fmt)
    plan = ProductPlan.make(a, w)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    dut_name = "dut_product"
    (work / "dut.v").write_text(verilog.convert(ProductStage(a, w), name=dut_name, emit_src=False))
    ew, sw = 10, 9  # exponents of all 8-bit formats fit in 10 signed bits, significands in 9
    pw, shw = plan.p_width, plan.sh_width
    ref = [_table_module("tab_a", a, ew, sw, mutate), _table_module("tab_w", w, ew, sw)]
    ref.append(f"""
module check(input [7:0] a, input [7:0] w, output ok);
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
    (work / "prove.ys").write_text(
        "read_verilog dut.v\nread_verilog ref.v\nhierarchy -top check\nproc\nflatten\nmemory\nopt -fast\n"
        "sat -prove ok 1 -verify -show-inputs check\n")
    r = subprocess.run(_yosys_cmd() + ["-q", "-l", "prove.log", "-s", "prove.ys"], cwd=work,
                       capture_output=True, text=True)
    log = (work / "prove.log").read_text() if (work / "prove.log").exists() else ""
    if r.returncode == 0 and re.search(r"SAT (proof finished|solving finished) - no model found: SUCCESS", log):
        return {"proved": True, "log": str(work / "prove.log")}
    if "failed" in log.lower() or "FAIL" in log:
        return {"proved": False, "log": str(work / "prove.log")}
    raise HdlError(f"yosys SAT run failed in {work}:\n{(r.stderr or log)[-1500:]}")
