"""``rf8sim verify-layer``: one Linear layer through the three implementations, bit for bit.

Cross-layer code (torch, golden model, RTL), so it lives at the top of the
package and imports ``rf8sim.training``, ``rf8sim.golden`` and ``rf8sim.hdl``
lazily.  The layer is a real all-MiniLM-L6-v2 Linear with real activations
(``layer="encoder.layer.0.attention.self.query"``, the activations of a few
sentences captured at its input) or a seeded random one (``layer=None``).

8-bit activations (``a_fmt`` rf8, e4m3, ...) with a fixed-point ``AccSpec``:

1. torch: ``quantize`` activations and weights, then the exact integer GEMM
   emulation (:func:`rf8sim.training.gemm.gemm`);
2. golden: ``rf8sim.golden.quantize`` + ``rf8sim.golden.gemm`` (Numba);
3. RTL (when ``rf8sim.hdl`` imports and a simulator is installed): a slice of
   the outputs streamed through the generated MAC unit with cocotb.  The MAC has
   no scale inputs, so each simulated output uses a MAC built with
   ``frac_bits + scale_a + scale_w`` fraction bits - the same aligned integers.

16-bit activations (``a_fmt`` bf16 / fp16, weights only quantized; ``acc`` fp32
or aligned:K:M, the W8A16 contract):

1. torch: ``encode`` (torch's RNE cast) and ``quantize`` for the weights, then
   :func:`rf8sim.training.gemm` with the float accumulator (exact);
2. golden: ``rf8sim.golden.encode`` / ``quantize`` / ``gemm`` (acc fp32/aligned);
3. RTL: the W8A16 MAC of ``rf8sim.hdl`` on a slice of outputs, when present.

The report counts every comparison, lists the legs that ran and, for a leg that
did not, why ("torch == golden; RTL not run (reason)").  ``ok`` means every leg
that ran agreed; ``complete`` that all three ran.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from . import formats as F
from .errors import RF8SimError

__all__ = ["VerifyError", "verify_layer", "print_report", "layer_accspec", "verdict", "MINILM_SENTENCES",
           "DEFAULT_LAYER"]

#: the real activations fed to a MiniLM layer
MINILM_SENTENCES = ("RF8 stores each weight as the sum of two signed powers of two.",
                    "A cat sits on the mat and looks at the garden.",
                    "Weight-only quantization keeps activations in bfloat16.",
                    "The quick brown fox jumps over the lazy dog.")
DEFAULT_LAYER = "encoder.layer.0.attention.self.query"
A16 = ("bf16", "fp16")


class VerifyError(RF8SimError, ValueError):
    """Bad arguments to verify-layer."""


def layer_accspec(a_fmt, w_fmt, K: int, a_k: np.ndarray, w_k: np.ndarray):
    """The smallest AccSpec that sums K products exactly, given the scale exponents in use."""
    from .golden.accspec import AccSpec

    a, w = F.get(a_fmt), F.get(w_fmt)
    smin = int(a_k.min()) + int(w_k.min())
    smax = int(a_k.max()) + int(w_k.max())
    frac = max(0, -(a.exp_min + w.exp_min + smin))  # no product loses a bit to the floor
    from fractions import Fraction
    import math

    big = max(abs(Fraction(v)) for v in a.values[a.finite]) * max(abs(Fraction(v)) for v in w.values[w.finite])
    mag = math.ceil(big * Fraction(2) ** (frac + smax)) * K  # no partial sum can saturate
    return AccSpec(frac, mag.bit_length() + 1)


def _minilm_layer(name: str, batch: int):
    """(weight (out, in) float32, activations (tokens, in) float32) of a real MiniLM Linear."""
    from .workloads.models import load_minilm

    m = load_minilm()
    mods = dict(m.named_modules())
    if name not in mods or not isinstance(mods[name], torch.nn.Linear):
        lin = [n for n, mod in m.named_modules() if isinstance(mod, torch.nn.Linear)]
        raise VerifyError(f"MiniLM has no Linear layer {name!r}; valid: {', '.join(lin[:6])}, ... ({len(lin)} in all)")
    got = []
    h = mods[name].register_forward_pre_hook(lambda mod, args: got.append(args[0].detach()))
    try:
        ids, mask = m.tokenize(list(MINILM_SENTENCES))
        with torch.no_grad():
            m(ids, mask)
    finally:
        h.remove()
    x = got[0][mask.bool()]  # real tokens only (no padding)
    return mods[name].weight.detach().float().clone(), x[:batch].float().contiguous()


def _check_positive(**kw):
    for name, v in kw.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise VerifyError(f"{name} must be a positive integer, got {v!r}")


def verify_layer(in_features: int = 256, out_features: int = 64, batch: int = 16, a_fmt="rf8", w_fmt="rf8",
                 rounding: str = "nearest", granularity: str = "channel", block: int = 32, acc="exact",
                 seed: int = 0, rtl_slice: int = 4, simulator: str = "icarus", layer: str | None = None,
                 array: str | None = None, array_simulator: str = "verilator") -> dict:
    """Run the comparison; returns a report dict with ``ok``, ``complete``, ``legs`` and counts.

    ``layer``: a MiniLM Linear name (real weights, real activations of
    :data:`MINILM_SENTENCES`, the first ``batch`` tokens) or None for a seeded
    random ``in_features -> out_features`` layer.

    ``array="RxC"``: also run the whole layer's GEMM of codes cycle-accurately on an R x C PE
    array (:mod:`rf8sim.verify_array`) and compare every output with golden and torch.
    """
    _check_positive(batch=batch, **({} if layer else {"in_features": in_features, "out_features": out_features}))
    a_name = getattr(a_fmt, "name", a_fmt)
    try:
        w_fmt = F.get(w_fmt)
        a_fmt = a_name if a_name in A16 else F.get(a_fmt)
    except F.FormatError as e:
        raise VerifyError(str(e)) from None
    if w_fmt.name in A16:
        raise VerifyError(f"weights are 8-bit formats here, got {w_fmt.name}")
    for f in (w_fmt,) if a_name in A16 else (a_fmt, w_fmt):
        if rounding not in f.roundings:
            raise VerifyError(f"rounding {rounding!r} is not valid for {f.name}; valid: {', '.join(f.roundings)}")
    if layer:
        w, x = _minilm_layer(layer, batch)
        src = f"all-MiniLM-L6-v2 {layer} ({x.shape[0]} real tokens)"
    else:
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(out_features, in_features, generator=g) / in_features ** 0.5
        x = torch.randn(batch, in_features, generator=g)
        src = f"random Linear (seed {seed})"
    out_features, in_features = w.shape
    batch = x.shape[0]
    rep = {"config": {"in": in_features, "out": out_features, "batch": batch,
                      "a_fmt": a_name, "w_fmt": w_fmt.name, "rounding": rounding, "granularity": granularity,
                      "block": block, "seed": seed, "source": src}, "checks": [], "ok": True,
           "legs": {"torch": "ran", "golden": "not run", "rtl": "not run"}}

    def check(name, n, bad, note=""):
        rep["checks"].append({"check": name, "compared": int(n), "mismatches": int(bad), "note": note})
        rep["ok"] &= bad == 0 and n > 0

    if a_name not in A16 and str(acc).strip().lower().startswith(("fp32", "aligned")):
        raise VerifyError(f"--acc {acc}: the float accumulators (fp32, aligned:K:M) are checked here with bf16/fp16 "
                          f"activations; 8-bit activations ({a_name}) take a fixed-point accumulator "
                          "(exact, exact:TERMS or FRAC:WIDTH)")
    size = None
    if array:
        from .hdl.array import parse_size

        size = parse_size(array)
        rep["legs"]["array"] = "not run"
    if a_name in A16:
        _verify_float_acc(rep, check, x, w, a_name, w_fmt, rounding, granularity, block, acc, rtl_slice, simulator)
    else:
        _verify8(rep, check, x, w, a_fmt, w_fmt, rounding, granularity, block, acc, rtl_slice, simulator)
    codes = rep.pop("_codes", None)  # the layer's codes (numpy), for the array leg only
    if size and codes is not None:
        _array(rep, check, codes, a_name, w_fmt, size, array_simulator)
    rep["complete"] = all(v == "ran" for v in rep["legs"].values())
    return rep


def _array(rep, check, codes, a_name, w_fmt, size, simulator):
    """The layer's GEMM of codes on an R x C PE array vs golden (the array's order) and torch."""
    from .hdl.array import ArrayConfig
    from .verify_array import array_leg

    a, w, spec = codes
    R, C = size
    cfg = ArrayConfig.make(a_name, w_fmt, spec, R, C)
    r = array_leg(cfg, a, w, simulator, tag="verify-layer")
    g = r["golden"]
    check(f"PE array {R}x{C} ({simulator}) vs golden {cfg.golden_acc()}: every output, codes", g["compared"],
          g["mismatches"], f"{r['cycles']:,} cycles; scales 0 (outside the array); {g['overflowed']} saturated")
    if r["torch"] is not None:
        check(f"PE array {R}x{C} vs torch ({cfg.golden_acc()}): {r['torch']['outputs']:,} outputs, codes",
              r["torch"]["compared"], r["torch"]["mismatches"])
    rep["array"] = {"status": "ran", "size": f"{R}x{C}", "module": r["module"], "cycles": r["cycles"],
                    "utilization": r["schedule"]["utilization"], "sim_s": r["sim_s"]}
    rep["legs"]["array"] = "ran"


def _verify8(rep, check, x, w, a_fmt, w_fmt, rounding, granularity, block, acc, rtl_slice, simulator):
    import rf8sim.golden as G

    from .golden.accspec import AccSpec
    from .training.gemm import gemm as tgemm, to_float32 as t_to_f32
    from .training.quant import canonical_granularity, dequantize, quantize

    granularity = canonical_granularity(granularity)
    gg = "block" if granularity == "ceil" else granularity  # the golden model's name until spec lands
    batch, in_features = x.shape
    out_features = w.shape[0]
    a_round = w_round = rounding
    t0 = time.perf_counter()
    ac, ak = quantize(x, a_fmt, a_round, granularity, block)
    wc, wk = quantize(w, w_fmt, w_round, granularity, block)
    gac, gak = G.quantize(x.numpy(), a_fmt, a_round, gg, block)
    gwc, gwk = G.quantize(w.numpy(), w_fmt, w_round, gg, block)
    rep["legs"]["golden"] = "ran"
    check("activation codes + scales (torch vs golden)", ac.numel() + ak.numel(),
          int((ac.numpy() != gac).sum()) + int((ak.numpy() != gak).sum()))
    check("weight codes + scales (torch vs golden)", wc.numel() + wk.numel(),
          int((wc.numpy() != gwc).sum()) + int((wk.numpy() != gwk).sum()))
    if isinstance(acc, str) and acc.strip().lower() == "exact":
        spec = layer_accspec(a_fmt, w_fmt, in_features, ak.numpy(), wk.numpy())
    else:
        spec = acc if isinstance(acc, AccSpec) else AccSpec.parse(acc, a_fmt, w_fmt)
    rep["acc"] = str(spec)
    rep["_codes"] = (ac.numpy(), wc.numpy(), spec)
    tr = tgemm(ac, wc, a_fmt, w_fmt, spec, ak, wk, granularity, granularity, block)
    gr = G.gemm(gac, gwc, a_fmt, w_fmt, spec, gak, gwk, gg, gg, block)
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
    rep["legs"]["rtl"] = rep["rtl"]["status"]


def _rtl_unusable(n_out: int, simulator: str) -> dict | None:
    """Why the RTL leg cannot run (a status for the report), or None: no outputs asked for, rf8sim.hdl
    missing, or the simulator unusable."""
    if n_out <= 0:
        return {"status": "not run (--no-rtl)"}
    try:
        from .hdl.sim import check_simulator
    except ImportError as e:
        return {"status": f"not run (rf8sim.hdl not importable: {e})"}
    try:
        check_simulator(simulator)
    except Exception as e:  # noqa: BLE001 - report any reason the simulator is unusable
        return {"status": f"not run (simulator {simulator!r} unavailable: {e})"}
    return None


def _rtl_slice(rep, check, a, w, ak, wk, a_fmt, w_fmt, spec, granularity, acc, ovf, n_out, simulator):
    why = _rtl_unusable(n_out, simulator)
    if why:
        return why
    try:
        from .hdl.sim import run_stream
        from .hdl.spec import MacSpec
        from .hdl.stimulus import Stream
    except ImportError as e:
        return {"status": f"not run (rf8sim.hdl not importable: {e})"}
    if granularity in ("ceil", "mx"):
        return {"status": "not run (the MAC has no scale inputs; block scales vary along K)"}
    from .golden.accspec import AccSpec

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
        return {"status": f"not run (scales give {frac} fraction bits (< 0) for the MAC)"}
    try:
        cfg = MacSpec.make(a_fmt, w_fmt, AccSpec(frac, spec.width), 1, "fixed")
    except Exception as e:  # noqa: BLE001
        return {"status": f"not run (MAC config rejected: {e})"}
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


def _verify_float_acc(rep, check, x, w, a_name, w_fmt, rounding, granularity, block, acc, rtl_slice, simulator):
    """W8A16: 16-bit activations (torch cast), quantized weights, fp32 or aligned:K:M accumulator."""
    import ml_dtypes

    from .training.gemm import gemm
    from .training.quant import canonical_granularity, decode, dequantize, encode, quantize
    from .training.w8a16 import float_acc

    granularity = canonical_granularity(granularity)
    if isinstance(acc, str) and acc.strip().lower() == "exact":
        acc = "fp32"  # the 16-bit default: the contract's fp32 accumulator
    spec = float_acc(acc)
    batch, K = x.shape
    if spec.kind == "aligned" and K % spec.block:
        raise VerifyError(f"{spec}: K={spec.block} must divide the layer's {K} inputs")
    rep["acc"] = str(spec)
    t0 = time.perf_counter()
    ac = encode(x, a_name)
    ref = x.numpy().astype({"bf16": ml_dtypes.bfloat16, "fp16": np.float16}[a_name]).view(np.uint16)
    acn = ac.view(torch.int16).numpy().view(np.uint16)
    check(f"activation codes (torch {a_name} cast vs ml_dtypes/numpy)", acn.size, int((acn != ref).sum()))
    wc, wk = quantize(w, w_fmt, rounding, granularity, block)
    rep["_codes"] = (acn, wc.numpy(), str(spec))
    tr = gemm(ac, wc, a_name, w_fmt, spec, w_scale_exp=wk, w_granularity=granularity, block=block)
    n = tr.out.numel()
    rep["torch_s"] = time.perf_counter() - t0
    try:
        import rf8sim.golden as G

        F.get(a_name)
    except (ImportError, F.FormatError) as e:
        rep["legs"]["golden"] = f"not run (the golden model has no {a_name} here: {e})"
    else:
        gg = "block" if granularity == "ceil" else granularity
        gac = np.asarray(G.encode(x.numpy(), a_name)).astype(np.uint16)
        check(f"activation codes (torch vs golden {a_name} encode)", gac.size, int((gac != acn).sum()))
        gwc, gwk = G.quantize(w.numpy(), w_fmt, rounding, gg, block)
        check("weight codes + scales (torch vs golden)", wc.numel() + wk.numel(),
              int((wc.numpy() != gwc).sum()) + int((wk.numpy() != gwk).sum()))
        gr = G.gemm(gac, gwc, a_name, w_fmt, str(spec), None, gwk, "tensor", gg, block, specials="propagate")
        check(f"float32 outputs, {spec} (torch vs golden)", n,
              int((tr.bits.numpy().astype(np.uint32) != np.asarray(gr.acc, np.uint32)).sum()))
        check("overflow + invalid flags (torch vs golden)", 2 * n,
              int((tr.overflow.numpy() != np.asarray(gr.overflow)).sum())
              + int((tr.invalid.numpy() != np.asarray(gr.invalid)).sum()),
              f"{int(tr.overflow.sum())} overflowed")
        rep["legs"]["golden"] = "ran"
    # context: the fast path (float32 F.linear on the dequantized operands) and float64
    xa = decode(ac, a_name)
    wq = dequantize(wc, wk, w_fmt, granularity, block)
    y32 = torch.nn.functional.linear(xa, wq)
    rep["float32_linear_bitexact_fraction"] = float((y32.view(torch.int32) == tr.out.view(torch.int32)).double().mean())
    rep["float64_matmul_max_abs_diff"] = float((xa.double() @ wq.double().T - tr.out.double()).abs().max())
    rep["rtl"] = _rtl_float_acc(rep, check, acn, wc, wk, a_name, w_fmt, spec, granularity, tr, rtl_slice, simulator)
    rep["legs"]["rtl"] = rep["rtl"]["status"]


def _rtl_float_acc(rep, check, a, wc, wk, a_name, w_fmt, spec, granularity, tr, n_out, simulator):
    """A slice of outputs (row 0, ``n_out`` outputs x K beats) through the W8A16 MAC of rf8sim.hdl.

    The MAC has no scale input, so the slice is compared with torch's gemm on the
    same codes at weight scale 0 (the scale is a power of two outside the datapath).
    """
    why = _rtl_unusable(n_out, simulator)
    if why:
        return why
    try:
        from .hdl.sim import run_stream
        from .hdl.spec import MacSpec
        from .hdl.stimulus import Stream
    except ImportError as e:
        return {"status": f"not run (rf8sim.hdl has no W8A16 MAC here: {e})"}
    from .training.gemm import gemm

    cfg = MacSpec.make(a_name, w_fmt, str(spec), 1)
    K = a.shape[1]
    ns = list(range(min(n_out, wc.shape[0])))
    aa = np.concatenate([a[0] for _ in ns])[:, None].astype(np.uint16)
    ww = np.concatenate([wc[n].numpy() for n in ns])[:, None].astype(np.uint8)
    clear = np.zeros(len(ns) * K, bool)
    clear[::K] = True
    t0 = time.perf_counter()
    got = run_stream(cfg, Stream(aa, ww, clear, np.zeros(len(clear), np.uint8)), simulator, tag="verify-layer16")
    last = np.arange(1, len(ns) + 1) * K - 1
    a_t = torch.from_numpy(a[:1].astype(np.int32)).to(torch.int16).view(torch.uint16)
    want = gemm(a_t, wc[ns], a_name, w_fmt, spec, w_scale_exp=torch.zeros(len(ns), dtype=torch.int8),
                w_granularity="channel")
    bad = int((np.asarray(got["acc"])[last].astype(np.int64) != want.bits[0].numpy()).sum())
    bad += int((np.asarray(got["overflow"])[last] != want.overflow[0].numpy()).sum())
    bad += int((np.asarray(got["invalid"])[last] != want.invalid[0].numpy()).sum())
    check(f"RTL W8A16 MAC ({simulator}) vs torch: row 0, {len(ns)} outputs x {K} beats", 3 * len(ns), bad,
          "weight scales 0 (the MAC has no scale input)")
    return {"status": "ran", "outputs": ns, "beats": int(len(clear)), "seconds": time.perf_counter() - t0,
            "mac": cfg.module_name()}


LEG_NAMES = {"torch": "torch", "golden": "golden", "rtl": "RTL", "array": "PE array"}


def verdict(rep: dict) -> str:
    """One line that says which legs agreed and which did not run, e.g.
    ``OK: torch == golden; RTL not run (reason)``."""
    ran = [LEG_NAMES[k] for k, v in rep["legs"].items() if v == "ran"]
    missing = [f"{LEG_NAMES[k]} {v}" for k, v in rep["legs"].items() if v != "ran"]
    if not rep["ok"]:
        bad = [c["check"] for c in rep["checks"] if c["mismatches"] or not c["compared"]]
        return "MISMATCH in " + "; ".join(bad)
    head = "OK: " + " == ".join(ran) + (" (bit-identical)" if len(ran) > 1 else " (its own checks only)")
    return "; ".join([head] + missing)


def print_report(rep: dict) -> None:
    from rf8sim.infra.console import Console
    from rich.markup import escape
    from rich.table import Table

    c = rep["config"]
    t = Table(title=escape(f"verify-layer: {c['source']}: Linear({c['in']} -> {c['out']}), {c['batch']} rows, "
                           f"{c['a_fmt']} x {c['w_fmt']}, {c['granularity']}, acc {rep.get('acc')}"))
    for h in ("check", "compared", "mismatches", "note"):
        t.add_column(h)
    for r in rep["checks"]:
        t.add_row(escape(r["check"]), f"{r['compared']:,}", str(r["mismatches"]), escape(r["note"]))
    con = Console(width=max(Console().width, 120))
    con.print(t)
    for k, v in rep["legs"].items():
        con.print(escape(f"{LEG_NAMES[k]}: {v}"))
    con.print(f"float64 matmul of the dequantized tensors vs exact output: max |diff| = "
              f"{rep['float64_matmul_max_abs_diff']:.3g}; float32 F.linear bit-exact on "
              f"{100 * rep['float32_linear_bitexact_fraction']:.1f} % of outputs")
    line = escape(verdict(rep))
    con.print(f"[bold green]{line}[/]" if rep["ok"] else f"[bold red]{line}[/]")


#: the checked-in verify-layer records quoted by docs/training.md
RECORDS = ("training/results/verify-layer-minilm-rf8-rf8-exact.json",
           "training/results/verify-layer-minilm-bf16-rf8-fp32.json",
           "training/results/verify-layer-minilm-bf16-rf8-aligned-32-16.json")


def render_records(root=None) -> str:
    """Markdown table of the checked-in verify-layer records (docs/training.md, generated block
    ``training:verify-layer``)."""
    from pathlib import Path

    from .infra.records import read_record

    root = Path(root) if root else Path(__file__).resolve().parents[1]
    lines = ["| layer (real tokens) | a x w | accumulator | values compared | mismatches | RTL slice | "
             "F.linear float32 bit-exact | verdict | commit |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for rel in RECORDS:
        p = root / rel
        if not p.exists():
            raise VerifyError(f"record {rel} is missing (run the command in its provenance)")
        r = read_record(p)
        v, c = r["verify_layer"], r["verify_layer"]["config"]
        n = sum(x["compared"] for x in v["checks"])
        bad = sum(x["mismatches"] for x in v["checks"])
        rtl = [x for x in v["checks"] if x["check"].startswith("RTL")]
        rtl_s = f"{rtl[0]['compared']} values, {rtl[0]['mismatches']} off" if rtl else "not run"
        prov = r["provenance"]
        commit = (prov.get("commit") or "?")[:8] + (" (dirty)" if prov.get("dirty") else "")
        lines.append(f"| {c['source'].replace('all-MiniLM-L6-v2 ', '')} | {c['a_fmt']} x {c['w_fmt']} | "
                     f"{v['acc']} | {n:,} | {bad} | {rtl_s} | "
                     f"{100 * v['float32_linear_bitexact_fraction']:.1f} % | {r['verdict']} | {commit} |")
    return "\n".join(lines) + "\n"
