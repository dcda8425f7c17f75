"""The format zoo measured without RTL (issue 21, item 2): SQNR, bits per weight and MiniLM cosine.

For every format (8-bit element formats with per-channel power-of-two scales, and the named block
formats of :mod:`rf8sim.scales` with their own scales):

* SQNR of generalized Gaussian samples over the shapes β (scipy ``gennorm``, rows of ``cols``
  values, one scale per row) after quantize → dequantize in the golden model;
* SQNR of all Linear weights of all-MiniLM-L6-v2 (one scale per output channel; summed over layers);
* stored bits per weight: code bits plus the scale's share (8 bits per channel of MiniLM's mean row
  length, or per block; NVFP4 adds its float32 tensor scale);
* MiniLM cosine to the float32 embedding on real sentences: weight-only = the float32 model with
  its Linear weights replaced by their quantized values (the golden quantize → dequantize; the
  block formats with their own scales), on ``sentences``; W8A8 (activations in the same format,
  exact accumulator, fp32 where that is wider than 63 bits) through the bit-exact datapath of
  :mod:`rf8sim.study.minilm.transformer` (every Linear through ``rf8sim.golden.gemm``) where the format
  has an activation role, on the first ``w8a8_sentences`` (the datapath costs seconds per sentence on this 2-core machine).

``rf8sim study zoo --record study/results/zoo.json`` writes the record docs/study.md is generated from.
"""

from __future__ import annotations

import time

import numpy as np

from ... import formats as F
from ... import scales as S

__all__ = ["ZOO_FORMATS", "W8A8_FORMATS", "W8A16_PAIRS", "fake_weights", "bits_per_weight", "gg_sqnr", "minilm_weight_sqnr",
           "minilm_cosine", "reusable_rows", "run_zoo"]

#: formats the zoo study measures by default (element formats, then named block formats)
ZOO_FORMATS = ("rf8", "rf8m8", "rf8t1", "rf8t2", "e4m3", "e5m2", "int8", "apot8", "lns8", "posit8",
               "apot4", "e2m1", "mxfp4", "nvfp4", "mxint8")
#: formats whose W8A8 datapath (same format for activations, exact accumulator) is measured
W8A8_FORMATS = ("rf8", "e4m3", "int8", "lns8", "posit8")
#: (weight, 16-bit activation) datapaths measured with the float32 accumulator (the W8A16 contract):
#: posit16, the zoo's 16-bit activation format, on posit8 and rf8 weights, and bf16 on rf8 weights beside it
W8A16_PAIRS = (("posit8", "posit16"), ("rf8", "posit16"), ("rf8", "bf16"))
#: sentences whose every Linear layer is also run through the torch emulation (rf8sim.training) and
#: compared bit for bit with the golden datapath, for each W8A16 row
TORCH_CHECK_SENTENCES = 1


def _is_block(name: str) -> bool:
    return S.block_format(name) is not None


def fake_weights(w: np.ndarray, name: str) -> np.ndarray:
    """quantize → dequantize of a 2-D float32 matrix: per-row scales, or the block format's own."""
    from ...golden import dequantize, quantize
    from ...golden.blocks import dequantize_block, quantize_block

    if _is_block(name):
        return dequantize_block(quantize_block(w, name), name)
    if name not in ("rf8m8", "rf8m8lo"):
        F.get(name)
    else:
        F.register_rf8_variants()
    codes, k = quantize(w, name, granularity="channel")
    return dequantize(codes, k, name, granularity="channel")


def bits_per_weight(name: str, rows: int, cols: int) -> float:
    """Stored bits per weight of a rows x cols matrix: code + scale share (8-bit scale per row or block)."""
    bf = S.block_format(name)
    if bf is not None:
        return bf.bits_per_weight(rows * cols)
    return F.get(name).code_bits + 8.0 / cols


def _sqnr(x, y) -> float:
    x = np.asarray(x, np.float64)
    e = float(np.sum((x - np.asarray(y, np.float64)) ** 2))
    return float("inf") if e == 0 else 10.0 * np.log10(float(np.sum(x * x)) / e)


def gg_sqnr(formats, shapes=(0.5, 0.75, 1.0, 1.5, 2.0), rows: int = 64, cols: int = 1024, seed: int = 0) -> list:
    """SQNR (dB) per format and GG shape, one scale per row of ``cols`` (multiple of 32)."""
    from scipy.stats import gennorm

    rng = np.random.default_rng(seed)
    out = []
    for beta in shapes:
        x = gennorm.rvs(float(beta), size=(rows, cols), random_state=rng).astype(np.float32)
        for name in formats:
            out.append({"format": name, "shape": float(beta), "sqnr_db": _sqnr(x, fake_weights(x, name)),
                        "bits_per_weight": bits_per_weight(name, rows, cols)})
    return out


def _minilm_linears():
    from ...workloads.models import load_minilm
    from ..minilm.transformer import linear_layers

    model = load_minilm()
    return model, [(n, m.weight.detach().float().numpy()) for n, m in linear_layers(model)]


def minilm_weight_sqnr(formats) -> list:
    """SQNR over all MiniLM Linear weights together, and bits per weight (weighted by layer size)."""
    _, layers = _minilm_linears()
    out = []
    for name in formats:
        num = den = bits = 0.0
        n = 0
        for _, w in layers:
            y = fake_weights(w, name).astype(np.float64)
            w64 = w.astype(np.float64)
            num += float(np.sum(w64 * w64))
            den += float(np.sum((w64 - y) ** 2))
            bits += bits_per_weight(name, *w.shape) * w.size
            n += w.size
        out.append({"format": name, "sqnr_db": 10.0 * np.log10(num / den), "bits_per_weight": bits / n,
                    "weights": n, "layers": len(layers)})
    return out


def minilm_cosine(formats, w8a8=W8A8_FORMATS, sentences: int = 200, w8a8_sentences: int = 50, seed: int = 0,
                  bootstrap: int = 1000, progress: bool = True, reuse: "dict | None" = None,
                  w8a16=W8A16_PAIRS) -> list:
    """1 - cosine to the float32 embedding (mean, 95 % bootstrap CI) per configuration.

    Weight-only: the float32 model with every Linear weight replaced by its quantized value
    (:func:`fake_weights`, the golden quantize → dequantize), float32 activations, on ``sentences``.
    W8A8: the bit-exact datapath (activations quantized per tensor, every Linear through
    ``rf8sim.golden.gemm`` with the exact accumulator) on the first ``w8a8_sentences``.
    W8A16: ``w8a16`` (weight, 16-bit activation) pairs whose weight format is in ``formats``, the same
    datapath with unscaled 16-bit activation codes and the float32 accumulator, on the first
    ``w8a8_sentences``; each also runs every Linear layer of :data:`TORCH_CHECK_SENTENCES` sentences
    through the torch emulation and counts its bit mismatches with the golden datapath (``torch_check``).
    ``reuse``: {(format, mode, datapath, sentences): row} of rows already measured (:func:`reusable_rows`),
    taken over instead of recomputed.
    """
    import torch

    from ..minilm.study import TransformerSpec, _encode, _scores, prepare
    from ..common.stats import bootstrap_ci
    from ..minilm.transformer import DatapathConfig, exactify

    spec = TransformerSpec(sentences=sentences, configs=(), seed=seed)
    model, sents, lens = prepare(spec)
    torch.manual_seed(seed)
    ref = _encode(model, sents, lens, spec.batch_size)
    todo = [(name, "weight-only", None) for name in formats]
    for name in formats:
        if name in w8a8:  # exact accumulator; fp32 where the exact one is wider than 63 bits (posits)
            dp = DatapathConfig(name, name, "nearest", "channel", 32, "exact")
            if dp.spec(spec.max_terms).width > 63:
                dp = DatapathConfig(name, name, "nearest", "channel", 32, "fp32")
            todo.append((name, "W8A8", dp))
    for w, a in w8a16:
        if w in formats:
            todo.append((w, "W8A16", DatapathConfig(w, a, "nearest", "channel", 32, "fp32")))
    rows = []
    for i, (name, mode, dp) in enumerate(todo):
        t = time.perf_counter()
        path = "float32 model, quantized weights" if dp is None else dp.label
        ns = len(sents) if dp is None else min(w8a8_sentences, len(sents))
        old = (reuse or {}).get((name, mode, path, ns))
        if old is not None:
            rows.append(dict(old))
            if progress:
                print(f"  [{i + 1}/{len(todo)}] {name} {mode}: 1 - cosine {old['loss']:.3e} on {ns} sentences "
                      f"(reused from commit {old['reused_from']['commit'][:10]})", flush=True)
            continue
        if dp is None:
            q, path, ns = _fake_model(model, name), "float32 model, quantized weights", len(sents)
        else:
            q, path, ns = exactify(model, dp, spec.max_terms), dp.label, min(w8a8_sentences, len(sents))
        emb = _encode(q, sents[:ns], lens[:ns], spec.batch_size)
        loss = 1.0 - _scores(ref[:ns], emb)["cosine"]
        ci = bootstrap_ci(loss, bootstrap, seed=seed)
        rows.append({"format": name, "mode": mode, "datapath": path, "loss": ci["mean"], "loss_lo": ci["lo"],
                     "loss_hi": ci["hi"], "sentences": ns})
        if mode == "W8A16":
            rows[-1]["activation"] = dp.act_format
            rows[-1]["torch_check"] = _torch_check(q, sents, lens, spec.batch_size)
        rows[-1]["seconds"] = time.perf_counter() - t
        if progress:
            print(f"  [{i + 1}/{len(todo)}] {name} {mode}: 1 - cosine {ci['mean']:.3e} on {ns} sentences "
                  f"({rows[-1]['seconds']:.0f} s)", flush=True)
    return rows


def _torch_check(q, sents, lens, batch_size: int) -> dict:
    """Every exact Linear layer of the first :data:`TORCH_CHECK_SENTENCES` sentences through the torch
    emulation (:func:`rf8sim.study.minilm.transformer.torch_check`), summed over the layers."""
    from ..minilm.study import _encode
    from ..minilm.transformer import torch_check

    n = TORCH_CHECK_SENTENCES
    layers = torch_check(q, lambda: _encode(q, sents[:n], lens[:n], batch_size))
    refs = sorted({r["reference"] for r in layers})
    return {"sentences": n, "layers": len(layers), "rows": sum(r["rows"] for r in layers),
            "outputs": sum(r["outputs"] for r in layers), "mismatches": sum(r["mismatches"] for r in layers),
            "reference": "; ".join(refs)}


def _fake_model(model, name: str):
    import copy

    import torch

    from ..minilm.transformer import linear_layers

    q = copy.deepcopy(model)
    with torch.no_grad():
        for _, m in linear_layers(q):
            w = m.weight.detach().float().numpy()
            m.weight.copy_(torch.from_numpy(fake_weights(w, name)))
    return q


def reusable_rows(old: dict, minilm_weights: list, seed: int) -> dict:
    """The MiniLM cosine rows of an earlier zoo record ``old`` that this run may take over.

    A row is reused only when it was measured with the same seed, and the format's quantized MiniLM
    weights are those of this run: the SQNR of all MiniLM Linear weights just computed equals the old
    record's to the last bit (any change in quantization would move it).  Each reused row names the
    record's commit, time and command (``reused_from``)."""
    if old.get("params", {}).get("seed") != seed:
        return {}
    was = {r["format"]: r["sqnr_db"] for r in old.get("minilm_weights", [])}
    now = {r["format"]: r["sqnr_db"] for r in minilm_weights}
    pv = old.get("provenance", {})
    src = old.get("reused_from_record") or {}
    out = {}
    for r in old.get("minilm_cosine", []):
        f = r["format"]
        if f in now and was.get(f) == now[f]:
            row = dict(r)
            row.setdefault("reused_from", {"commit": pv.get("commit") or "?", "utc": pv.get("utc"),
                                           "command": pv.get("command"), **src})
            out[(f, r["mode"], r["datapath"], r["sentences"])] = row
    return out


def run_zoo(formats=ZOO_FORMATS, shapes=(0.5, 0.75, 1.0, 1.5, 2.0), sentences: int = 200, w8a8_sentences: int = 50,
            rows: int = 64, cols: int = 1024, seed: int = 0, cosine: bool = True, progress: bool = True,
            reuse: "dict | None" = None) -> dict:
    """All measurements of the zoo study (JSON-able).  ``reuse``: an earlier zoo record whose MiniLM cosine
    rows are taken over where :func:`reusable_rows` allows (the rest is measured)."""
    for name in formats:
        if not _is_block(name) and name not in ("rf8m8", "rf8m8lo"):
            F.check_role(name, "weight")
    F.register_rf8_variants()
    t0 = time.perf_counter()
    gg = gg_sqnr(formats, shapes, rows, cols, seed)
    t1 = time.perf_counter()
    mw = minilm_weight_sqnr(formats)
    t2 = time.perf_counter()
    again = reusable_rows(reuse, mw, seed) if reuse else {}
    cos = (minilm_cosine(formats, sentences=sentences, w8a8_sentences=w8a8_sentences, seed=seed, progress=progress,
                         reuse=again) if cosine else [])
    t3 = time.perf_counter()
    return {"params": {"formats": list(formats), "shapes": list(shapes), "rows": rows, "cols": cols,
                       "sentences": sentences, "w8a8_sentences": w8a8_sentences, "seed": seed,
                       "w8a8": [f for f in W8A8_FORMATS if f in formats],
                       "w8a16": [f"{w}/{a}" for w, a in W8A16_PAIRS if w in formats]},
            "gg": gg, "minilm_weights": mw, "minilm_cosine": cos,
            "timing_s": {"gg": t1 - t0, "minilm_weights": t2 - t1, "minilm_cosine": t3 - t2}}


#: (activation, weight) pairs whose product stage ``rf8sim study zoo-rtl`` verifies and synthesizes
RTL_PAIRS = (("e4m3", "rf8"), ("e4m3", "rf8t1"), ("e4m3", "rf8t2"), ("e4m3", "e4m3"), ("e4m3", "lns8"),
             ("e4m3", "posit8"), ("int8", "int8"), ("int8", "lns8"), ("lns8", "lns8"), ("posit8", "posit8"),
             ("rf8", "rf8"), ("rf8", "rf8t1"),
             ("bf16", "rf8"), ("bf16", "rf8t1"), ("bf16", "rf8t2"), ("bf16", "e4m3"), ("bf16", "lns8"),
             ("bf16", "posit8"), ("bf16", "apot8"), ("bf16", "int8"), ("bf16", "e5m2"), ("bf16", "rf8m8"),
             ("e4m3", "apot4"), ("e4m3", "e2m1"), ("bf16", "apot4"), ("bf16", "e2m1"))

#: the block formats whose elements a 4-bit product stage multiplies: MXFP4 and NVFP4 hold E2M1 codes.
#: Their block scales never enter the product stage: MXFP4's E8M0 scale (one per 32 weights) is an
#: exponent added to each block's sum, NVFP4's E4M3 scale (one per 16) multiplies each block's sum
#: and its float32 tensor scale the layer's output, all after the products are summed.
BLOCK_ELEMENTS = {"mxfp4": "e2m1", "nvfp4": "e2m1"}

#: activation codes of the bf16 product sweep (the edge codes and a seeded sample) x every weight code
A16_SWEEP = 256


#: beats of the MiniLM operand stream per product stage's energy run (as hdl/results/ppa.json)
POWER_BEATS = 2000


def product_sha(a: str, w: str) -> str:
    """SHA-256 (16 hex digits) of the Verilog of the (a, w) product stage the zoo synthesizes and proves:
    a record row holding it can be reused while the generator produces the same circuit."""
    import hashlib

    from amaranth.back import verilog

    from ...hdl import MacSpec
    from ...hdl.units import product_stage

    spec = MacSpec.make(a=a, w=w, acc="fp32" if F.get(a).code_bits == 16 else None)
    v = verilog.convert(product_stage(spec), name="product", emit_src=False)
    return hashlib.sha256(v.encode()).hexdigest()[:16]


def rtl_products(pairs=RTL_PAIRS, progress: bool = True, power: bool = False, beats: int = POWER_BEATS) -> list:
    """Per (activation, weight) pair: the MAC simulated with Icarus against the golden model and its
    product stage synthesized (osu018 area).  8-bit activations: the fixed-point (exact) MAC on all
    65,536 code pairs; bf16 activations: the fp32-accumulator MAC on :data:`A16_SWEEP` activation codes
    x all 256 weight codes plus 20 random accumulation sequences.

    ``power``: also the product stage's energy per product on ``beats`` beats of the MiniLM operand
    stream (:func:`rf8sim.hdl.power.ppa`, the flow of ``rf8sim synth --power``: OpenSTA cell energies x
    toggles of the gate-level netlist on Icarus with specify delays, 10 ns clock), and its critical path."""
    from ...hdl import MacSpec
    from ...hdl.sim import verify
    from ...hdl.spec import NARROW_BITS
    from ...hdl.synth import synthesize

    rows = []
    for i, (a, w) in enumerate(pairs):
        t = time.perf_counter()
        a16 = F.get(a).code_bits == 16
        spec = MacSpec.make(a=a, w=w, acc="fp32" if a16 else None)
        if NARROW_BITS in (spec.a_bits, spec.w_bits):  # product stage only: every code pair through it
            from ...hdl.prodsim import simulate_product_stage

            r = simulate_product_stage(spec)
            n_checked, mism, ok, check = r["pairs"], r["mismatches"], r["mismatches"] == 0, "product stage"
        else:
            v = verify(spec, products=A16_SWEEP if a16 else True, n_random=20 if a16 else 0, max_len=64,
                       vectors=False)
            mism = sum(c["mismatched_beats"] for run in v["runs"].values() for c in run["comparisons"])
            n_checked, ok, check = v["runs"]["products"]["products"], v["ok"], "MAC"
        s = synthesize(spec, stage="product")
        lib = s.get("liberty") or {}
        mode, pw = (spec.describe()["product"], spec.p_width) if a16 else (spec.product.mode, spec.product.p_width)
        rows.append({"a": a, "w": w, "acc": spec.acc.kind if a16 else "exact", "product": mode, "product_width": pw,
                     "verified_products": int(n_checked), "mismatches": int(mism), "ok": bool(ok), "simulated": check,
                     "area_um2": lib.get("area_um2"), "nand2_eq": s["generic"]["nand2_eq"],
                     "depth_cells": lib.get("depth_cells")})
        rows[-1]["product_sha"] = product_sha(a, w)
        elems = [b for b, e in BLOCK_ELEMENTS.items() if e == w]
        if elems:
            rows[-1]["block_formats"] = elems
        if power:
            from ...hdl.power import DEFAULT_CLOCK_NS, ppa

            e = ppa(synth=s, clock_ns=DEFAULT_CLOCK_NS, streams=("minilm",), beats=beats)
            m = e["streams"]["minilm"]
            rows[-1].update({"pj_per_mac": m["pj_per_mac"], "power_stream": "minilm", "power_beats": beats,
                             "clock_ns": DEFAULT_CLOCK_NS, "critical_path_ns": e["timing"]["critical_path_ns"],
                             "toggles_per_cycle": m["cell_output_toggles_per_cycle"]})
        rows[-1]["seconds"] = time.perf_counter() - t
        if progress:
            en = f", {rows[-1]['pj_per_mac']:.2f} pJ/product" if power else ""
            print(f"  [{i + 1}/{len(pairs)}] {a} x {w}: {'ok' if ok else 'MISMATCH'}, product stage "
                  f"{rows[-1]['area_um2']} um2{en} ({rows[-1]['seconds']:.0f} s)", flush=True)
    return rows


def rtl_proofs(pairs=RTL_PAIRS, whole_timeout: int = 120, split_timeout: int = 600, workdir=None,
               progress: bool = True, on_row=None) -> list:
    """Yosys SAT proof of each pair's product stage against the format definitions
    (:func:`rf8sim.hdl.formal.prove_product_stage`): first the whole code space as one SAT problem
    (``whole_timeout`` s); where that does not finish, the same after ABC's AND-inverter mapping
    (``abc -g AND``), then one SAT problem per weight code (``split_timeout`` s each).  A row says which
    method proved it, or that none finished in time.  ``on_row(rows)`` is called after each pair."""
    import tempfile

    from ...hdl import HdlError, MacSpec
    from ...hdl.formal import prove_product_stage

    rows = []
    with tempfile.TemporaryDirectory(prefix="rf8sim-zoo-prove-", dir=workdir) as tmp:
        for i, (a, w) in enumerate(pairs):
            spec = MacSpec.make(a=a, w=w, acc="fp32" if F.get(a).code_bits == 16 else None)
            t = time.perf_counter()
            row = {"a": a, "w": w, "pairs": 1 << (spec.a_bits + spec.w_bits), "proved": False, "method": None}
            for method, kw, limit in (("whole", {}, whole_timeout), ("whole after abc -g AND", {"abc": True},
                                                                     split_timeout),
                                      ("per weight code", {"split_w": True}, split_timeout)):
                try:
                    r = prove_product_stage(spec, workdir=f"{tmp}/{a}_{w}_{method[:5]}", timeout=limit, **kw)
                except HdlError as e:
                    if "did not finish" not in str(e):
                        raise
                    row.setdefault("timeouts", []).append(f"{method} > {limit} s")
                    continue
                row.update({"proved": bool(r["proved"]), "method": method,
                            "sat_problems": r.get("sat_problems", 1)})
                break
            row["seconds"] = time.perf_counter() - t
            row["product_sha"] = product_sha(a, w)
            rows.append(row)
            if on_row is not None:
                on_row(rows)  # e.g. rewrite the record, so that a run stopped early leaves what it proved
            if progress:
                st = f"proved ({row['method']})" if row["proved"] else ("FAILED" if row["method"] else "timed out")
                print(f"  [{i + 1}/{len(pairs)}] {a} x {w}: {row['pairs']:,} code pairs {st} "
                      f"({row['seconds']:.0f} s)", flush=True)
    return rows


#: (activation, weight) units whose whole MAC (product stage + accumulator) ``rf8sim study zoo-mac``
#: measures: the W8A8 units of the zoo's W8A8 rows and three bf16 units (fp32 accumulator)
MAC_PAIRS = (("e4m3", "e4m3"), ("rf8", "rf8"), ("int8", "int8"), ("posit8", "posit8"), ("lns8", "lns8"),
             ("bf16", "rf8"), ("bf16", "e4m3"), ("bf16", "apot8"))


def rtl_macs(pairs=MAC_PAIRS, beats: int = POWER_BEATS, progress: bool = True) -> list:
    """Per (activation, weight) pair: area and energy per MAC of the whole unit (product stage, exact
    fixed-point accumulator for 1,024 terms with 8-bit activations, fp32 accumulator with bf16) beside its
    product stage alone, both on ``beats`` beats of the MiniLM operand stream (:func:`rf8sim.hdl.power.ppa`,
    as :func:`rtl_products` with ``power``)."""
    from ...hdl import MacSpec
    from ...hdl.power import DEFAULT_CLOCK_NS, ppa

    rows = []
    for i, (a, w) in enumerate(pairs):
        t = time.perf_counter()
        spec = MacSpec.make(a=a, w=w, acc="fp32" if F.get(a).code_bits == 16 else None)
        row = {"a": a, "w": w, "acc": str(spec.acc), "power_stream": "minilm", "power_beats": beats,
               "clock_ns": DEFAULT_CLOCK_NS}
        for stage in ("product", "mac"):
            e = ppa(spec, stage=stage, clock_ns=DEFAULT_CLOCK_NS, streams=("minilm",), beats=beats)
            row[f"{stage}_area_um2"] = e["area_um2"]
            row[f"{stage}_pj"] = e["streams"]["minilm"]["pj_per_mac"]
        row["product_share"] = row["product_pj"] / row["mac_pj"]
        row["seconds"] = time.perf_counter() - t
        rows.append(row)
        if progress:
            print(f"  [{i + 1}/{len(pairs)}] {a} x {w} ({row['acc']}): MAC {row['mac_pj']:.2f} pJ, product stage "
                  f"{row['product_pj']:.2f} pJ ({row['seconds']:.0f} s)", flush=True)
    return rows
