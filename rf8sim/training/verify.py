"""``rf8sim verify-layer``: one Linear layer, RF8 weights and activations, three implementations.

1. torch: ``quantize`` activations and weights, then the exact integer GEMM
   emulation (:func:`rf8sim.training.gemm.gemm`) with an ``AccSpec``;
2. golden: ``rf8sim.golden.quantize`` + ``rf8sim.golden.gemm`` (Numba);
3. RTL (when ``rf8sim.hdl`` imports and a simulator is installed): a slice of
   the outputs streamed through the generated MAC unit with cocotb.  The MAC has
   no scale inputs, so each simulated output uses a MAC built with
   ``frac_bits + scale_a + scale_w`` fraction bits - the same aligned integers.

Codes, scale exponents, accumulators, flags and the float32 outputs must agree
bit for bit; the report counts every comparison.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .. import formats as F

__all__ = ["verify_layer", "print_report", "layer_accspec"]


def layer_accspec(a_fmt, w_fmt, K: int, a_k: np.ndarray, w_k: np.ndarray):
    """The smallest AccSpec that sums K products exactly, given the scale exponents in use."""
    from ..golden.accspec import AccSpec

    a, w = F.get(a_fmt), F.get(w_fmt)
    smin = int(a_k.min()) + int(w_k.min())
    smax = int(a_k.max()) + int(w_k.max())
    frac = max(0, -(a.exp_min + w.exp_min + smin))  # no product loses a bit to the floor
    from fractions import Fraction
    import math

    big = max(abs(Fraction(v)) for v in a.values[a.finite]) * max(abs(Fraction(v)) for v in w.values[w.finite])
    mag = math.ceil(big * Fraction(2) ** (frac + smax)) * K  # no partial sum can saturate
    return AccSpec(frac, mag.bit_length() + 1)


def verify_layer(in_features: int = 256, out_features: int = 64, batch: int = 16, a_fmt="rf8", w_fmt="rf8",
                 rounding: str = "nearest", granularity: str = "channel", block: int = 32, acc="exact",
                 seed: int = 0, rtl_slice: int = 4, simulator: str = "icarus") -> dict:
    """Run the comparison; returns a report dict with ``ok`` and counts."""
    import rf8sim.golden as G
    from ..errors import InputError
    from ..golden.accspec import AccSpec
    from .gemm import gemm as tgemm, to_float32 as t_to_f32
    from .quant import dequantize, quantize

    for name, v in (("in_features", in_features), ("out_features", out_features), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{name} must be a positive integer, got {v!r}")
    a_fmt, w_fmt = F.get(a_fmt), F.get(w_fmt)
    g = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(in_features, out_features, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(out_features, in_features, generator=g) / in_features ** 0.5)
    x = torch.randn(batch, in_features, generator=g)
    rep = {"config": {"in": in_features, "out": out_features, "batch": batch, "a_fmt": a_fmt.name,
                      "w_fmt": w_fmt.name, "rounding": rounding, "granularity": granularity, "block": block,
                      "seed": seed}, "checks": [], "ok": True}

    def check(name, n, bad, note=""):
        rep["checks"].append({"check": name, "compared": int(n), "mismatches": int(bad), "note": note})
        rep["ok"] &= bad == 0 and n > 0

    a_round = w_round = rounding  # never silently replaced: the quantizer refuses a rounding a format lacks
    t0 = time.perf_counter()
    ac, ak = quantize(x, a_fmt, a_round, granularity, block)
    wc, wk = quantize(layer.weight.detach(), w_fmt, w_round, granularity, block)
    gac, gak = G.quantize(x.numpy(), a_fmt, a_round, granularity, block)
    gwc, gwk = G.quantize(layer.weight.detach().numpy(), w_fmt, w_round, granularity, block)
    check("activation codes + scales (torch vs golden)", ac.numel() + ak.numel(),
          int((ac.numpy() != gac).sum()) + int((ak.numpy() != gak).sum()))
    check("weight codes + scales (torch vs golden)", wc.numel() + wk.numel(),
          int((wc.numpy() != gwc).sum()) + int((wk.numpy() != gwk).sum()))
    if isinstance(acc, str) and acc.strip().lower() == "exact":
        spec = layer_accspec(a_fmt, w_fmt, in_features, ak.numpy(), wk.numpy())
    else:
        spec = acc if isinstance(acc, AccSpec) else AccSpec.parse(acc, a_fmt, w_fmt)
    rep["acc"] = str(spec)
    tr = tgemm(ac, wc, a_fmt, w_fmt, spec, ak, wk, granularity, granularity, block)
    gr = G.gemm(gac, gwc, a_fmt, w_fmt, spec, gak, gwk, granularity, granularity, block)
    n = batch * out_features
    check("accumulators (torch vs golden)", n, int((tr.acc.numpy() != np.asarray(gr.acc, np.int64)).sum()))
    check("overflow + invalid flags (torch vs golden)", 2 * n,
          int((tr.overflow.numpy() != gr.overflow).sum()) + int((tr.invalid.numpy() != gr.invalid).sum()),
          f"{int(gr.overflow.sum())} saturated")
    y_t = t_to_f32(tr.acc, spec.frac_bits)
    y_g = G.to_float32(gr.acc, spec.frac_bits)
    check("float32 outputs (torch vs golden, RNE)", n, int((y_t.numpy().view(np.uint32) != y_g.view(np.uint32)).sum()))
    # context: the same layer in float arithmetic on the dequantized tensors
    aq = dequantize(ac, ak, a_fmt, granularity, block).double()
    wq = dequantize(wc, wk, w_fmt, granularity, block).double()
    y64 = aq @ wq.T
    rep["float64_matmul_max_abs_diff"] = float((y64 - y_t.double()).abs().max())
    y32 = torch.nn.functional.linear(aq.float(), wq.float())
    rep["float32_linear_bitexact_fraction"] = float((y32 == y_t).double().mean())
    rep["torch_golden_s"] = time.perf_counter() - t0
    rep["rtl"] = _rtl_slice(rep, check, ac.numpy(), wc.numpy(), ak.numpy(), wk.numpy(), a_fmt, w_fmt, spec,
                            granularity, tr.acc.numpy(), tr.overflow.numpy(), rtl_slice, simulator)
    return rep


def _rtl_slice(rep, check, a, w, ak, wk, a_fmt, w_fmt, spec, granularity, acc, ovf, n_out, simulator):
    if n_out <= 0:
        return {"status": "skipped (--no-rtl)"}
    try:
        from ..hdl.mac import MacConfig
        from ..hdl.sim import check_simulator, run_stream
        from ..hdl.stimulus import Stream
    except ImportError as e:
        return {"status": f"skipped: rf8sim.hdl not importable ({e})"}
    try:
        check_simulator(simulator)
    except Exception as e:  # noqa: BLE001 - report any reason the simulator is unusable
        return {"status": f"skipped: simulator {simulator!r} unavailable ({e})"}
    if granularity == "block":
        return {"status": "skipped: the MAC has no scale inputs; block scales vary along K"}
    from ..golden.accspec import AccSpec

    M, K = a.shape
    m = 0
    s_a = int(ak) if ak.ndim == 0 else int(ak[m])
    s_w = wk.reshape(-1) if wk.ndim else np.full(w.shape[0], int(wk))
    # outputs of row m sharing the most common scale sum: one MAC build serves them all
    vals, cnt = np.unique(s_w, return_counts=True)
    s = int(vals[np.argmax(cnt)])
    ns = np.flatnonzero(s_w == s)[:n_out]
    frac = spec.frac_bits + s_a + s
    if frac < 0:
        return {"status": f"skipped: scales give {frac} fraction bits (< 0) for the MAC"}
    try:
        cfg = MacConfig.make(a_fmt, w_fmt, AccSpec(frac, spec.width), 1, "fixed")
    except Exception as e:  # noqa: BLE001
        return {"status": f"skipped: MAC config rejected ({e})"}
    aa = np.concatenate([a[m] for _ in ns])[:, None]
    ww = np.concatenate([w[n] for n in ns])[:, None]
    clear = np.zeros(len(ns) * K, bool)
    clear[::K] = True
    stream = Stream(aa.astype(np.uint8), ww.astype(np.uint8), clear, np.zeros(len(clear), np.uint8))
    t0 = time.perf_counter()
    got = run_stream(cfg, stream, simulator, tag="verify-layer")
    last = np.arange(1, len(ns) + 1) * K - 1
    rtl_acc = np.asarray(got["acc"])[last].astype(np.int64)
    rtl_ovf = np.asarray(got["overflow"])[last]
    bad = int((rtl_acc != acc[m, ns]).sum()) + int((rtl_ovf != ovf[m, ns]).sum())
    check(f"RTL MAC ({simulator}) vs torch: row {m}, {len(ns)} outputs x {K} beats", 2 * len(ns), bad,
          f"MAC acc {frac}:{spec.width}")
    return {"status": "ran", "outputs": [int(v) for v in ns], "beats": int(len(clear)),
            "seconds": time.perf_counter() - t0, "mac": f"{frac}:{spec.width}"}


def print_report(rep: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    c = rep["config"]
    t = Table(title=f"verify-layer: Linear({c['in']} -> {c['out']}), batch {c['batch']}, "
                    f"{c['a_fmt']} x {c['w_fmt']}, {c['granularity']}, acc {rep.get('acc')}")
    for h in ("check", "compared", "mismatches", "note"):
        t.add_column(h)
    for r in rep["checks"]:
        t.add_row(r["check"], f"{r['compared']:,}", str(r["mismatches"]), r["note"])
    con = Console(width=max(Console().width, 120))
    con.print(t)
    con.print(f"RTL: {rep['rtl'].get('status')}")
    con.print(f"float64 matmul of the dequantized tensors vs exact output: max |diff| = "
              f"{rep['float64_matmul_max_abs_diff']:.3g}; float32 F.linear bit-exact on "
              f"{100 * rep['float32_linear_bitexact_fraction']:.1f} % of outputs")
    con.print("[bold green]OK: bit-identical[/]" if rep["ok"] else "[bold red]MISMATCH[/]")
