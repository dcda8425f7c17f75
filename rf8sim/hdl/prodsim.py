"""Exhaustive Icarus simulation of one generated product stage against the golden products.

Every (activation, weight) code pair goes through the product stage's Verilog (the
:func:`rf8sim.hdl.units.product_stage` of a :class:`MacSpec`, as synthesized and SAT-proved), and
each output is compared with :func:`rf8sim.golden.products`, the exact product of the two codes:

* fixed-point product stages (8-bit activations): ``p * 2**(sh + xmin)`` equals the exact signed
  product and ``special`` the golden NaN/Inf flag;
* float product stages (16-bit activations): ``(-1)**sign * mag * 2**exp`` equals it, the sign
  too (a zero product's sign reaches the float32 accumulator), and ``nan | inf`` the golden flag.

This is the check of the units the generator builds as product stages only (the 4-bit weight
formats, whose whole MAC is not generated), and a second one for any other.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .spec import HdlError, MacSpec

__all__ = ["simulate_product_stage"]


def _tb(spec: MacSpec, name: str, outs: list[tuple[str, int]]) -> str:
    ab, wb = spec.a_bits, spec.w_bits
    decl = "\n".join(f"  wire [{w - 1}:0] {o};" for o, w in outs)
    conn = ", ".join(f".{o}({o})" for o, _ in outs)
    fmt = " ".join("%h" for _ in outs)
    return f"""`timescale 1ns/1ps
module rf8sim_prod_tb;
  reg [{ab - 1}:0] a;
  reg [{wb - 1}:0] w;
{decl}
  {name} dut(.a(a), .w(w), {conn});
  integer i, j, f;
  initial begin
    f = $fopen("out.txt", "w");
    for (i = 0; i < {1 << ab}; i = i + 1) begin
      for (j = 0; j < {1 << wb}; j = j + 1) begin
        a = i; w = j; #1;
        $fwrite(f, "{fmt}\\n", {", ".join(o for o, _ in outs)});
      end
    end
    $fclose(f);
    $finish;
  end
endmodule
"""


def _parse(text: str, widths: list[int], n: int) -> list[np.ndarray]:
    rows = text.split()
    if len(rows) != n * len(widths):
        raise HdlError(f"product-stage simulation wrote {len(rows)} fields, expected {n * len(widths)}")
    if any(("x" in r or "z" in r) for r in rows[: 64 * len(widths)]):
        raise HdlError("product-stage simulation output holds x/z")
    cols = [np.array([int(v, 16) for v in rows[k::len(widths)]], dtype=np.int64) for k in range(len(widths))]
    return cols


def simulate_product_stage(spec: MacSpec, workdir=None) -> dict:
    """Simulate ``spec``'s product stage on every code pair with Icarus and compare with the golden
    products.  Returns ``{"pairs": n, "mismatches": m, "first": (a, w) or None}``."""
    from amaranth.back import verilog

    from .. import formats as F
    from ..golden import products
    from ..infra.tools import iverilog_exes
    from .units import product_stage

    iv, vvp = iverilog_exes()
    fixed = spec.kind == "fixed"
    if not fixed:
        spec = MacSpec.make(spec.a, spec.w, "fp32", 1)
    unit = product_stage(spec)
    if fixed:
        plan = spec.product
        outs = [("p", plan.p_width), ("sh", plan.sh_width), ("special", 1)]
    else:
        outs = [("sign", 1), ("mag", spec.p_width), ("exp", spec.p_exp_width), ("nan", 1), ("inf", 1)]
    name = "rf8sim_prod"
    with tempfile.TemporaryDirectory(prefix="rf8sim-prodsim-", dir=workdir) as tmp:
        work = Path(tmp)
        (work / "dut.v").write_text(verilog.convert(unit, name=name, emit_src=False))
        (work / "tb.v").write_text(_tb(spec, name, outs))
        r = subprocess.run([iv, "-g2005", "-o", "sim.vvp", "-s", "rf8sim_prod_tb", "tb.v", "dut.v"], cwd=work,
                           capture_output=True, text=True)
        if r.returncode:
            raise HdlError(f"iverilog failed on the product stage of {spec.a.name} x {spec.w.name}:\n{r.stderr[-1500:]}")
        r = subprocess.run([vvp, "-n", "sim.vvp"], cwd=work, capture_output=True, text=True)
        if r.returncode or not (work / "out.txt").is_file():
            raise HdlError(f"vvp failed on the product stage of {spec.a.name} x {spec.w.name}:\n{r.stderr[-1500:]}")
        text = (work / "out.txt").read_text()
    na, nw = 1 << spec.a_bits, 1 << spec.w_bits
    n = na * nw
    cols = _parse(text, [w for _, w in outs], n)
    a_codes = np.repeat(np.arange(na), nw).astype(spec.a.code_dtype)
    w_codes = np.tile(np.arange(nw), na).astype(spec.w.code_dtype)
    g_sign, g_sig, g_exp, g_sp = products(a_codes, w_codes, spec.a, spec.w)
    g_val = np.where(g_sign == 1, -1.0, 1.0) * np.ldexp(g_sig.astype(np.float64), g_exp)  # exact: sig < 2**53
    special = g_sp.astype(bool)
    if fixed:
        p, sh, sp = cols
        p = np.where(p >= 1 << (plan.p_width - 1), p - (1 << plan.p_width), p)
        val = np.ldexp(p.astype(np.float64), sh + plan.xmin)
        bad = (sp.astype(bool) != special) | (~special & (val != g_val))
    else:
        sign, mag, ex, nan, inf = cols
        ew = spec.p_exp_width
        ex = np.where(ex >= 1 << (ew - 1), ex - (1 << ew), ex)
        val = np.where(sign == 1, -1.0, 1.0) * np.ldexp(mag.astype(np.float64), ex)
        dut_sp = (nan | inf).astype(bool)
        bad = (dut_sp != special) | (~special & ((val != g_val) | (sign != g_sign)))
        # NaN for a NaN operand or Inf x 0, Inf otherwise (the MAC's invalid / infinity flags)
        fin_a = spec.a.special[a_codes] == F.SPECIAL_FINITE
        fin_w = spec.w.special[w_codes] == F.SPECIAL_FINITE
        is_nan = ((spec.a.special[a_codes] == F.SPECIAL_NAN) | (spec.w.special[w_codes] == F.SPECIAL_NAN)
                  | (~fin_a & fin_w & (g_sig == 0) & (spec.w.sig[w_codes] == 0))
                  | (~fin_w & fin_a & (spec.a.sig[a_codes] == 0)))
        bad |= special & (nan.astype(bool) != is_nan)
    idx = np.flatnonzero(bad)
    first = None if not idx.size else (int(a_codes[idx[0]]), int(w_codes[idx[0]]))
    return {"pairs": int(n), "mismatches": int(idx.size), "first": first}
