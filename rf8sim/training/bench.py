"""Training benchmarks, as ratios against baselines measured in the same run.

1. ``fake_quant`` (rf8 per tensor and per channel, nearest; per channel also
   paper, e4m3 and int8) on 16M float32 vs torch's ``x.to(torch.float8_e4m3fn).float()``
   - goal within 2x for the fused op compiled (CPU: a C++ compiler; CUDA: Triton),
   eager shown beside it; torchao's MX-E4M3 emulation measured against the same
   baseline as a peer;
2. a QAT training step of a small transformer (RF8 fake-quantized weights) vs the
   same float32 step - goal within 1.3x (eager and compiled fake-quant op);
3. BackSlash's per-batch step added to a float32 training step - goal <= 5 %.

Pure torch (no Numba), so ``python -m rf8sim.training.gpu_check`` runs it on CUDA.
"""

from __future__ import annotations

import time

import torch

__all__ = ["run", "timeit", "timeit_pair", "small_transformer"]


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timeit(fn, device, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds (device synchronised)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def timeit_pair(fa, fb, device, repeat: int = 5, warmup: int = 1) -> tuple[float, float]:
    """Median times of ``fa`` and ``fb`` measured alternately (A B A B ...), so load drifts hit both."""
    for _ in range(warmup):
        fa()
        fb()
    _sync(device)
    ta, tb = [], []
    for _ in range(repeat):
        for f, ts in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            f()
            _sync(device)
            ts.append(time.perf_counter() - t0)
    ta.sort()
    tb.sort()
    return ta[len(ta) // 2], tb[len(tb) // 2]


def small_transformer(d=128, layers=2, heads=4, ff=512, vocab=1000, seq=64):
    """A small encoder-only transformer LM head (nn.TransformerEncoder)."""
    class TinyLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, d)
            self.pos = torch.nn.Parameter(torch.zeros(seq, d))
            layer = torch.nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True)
            self.enc = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.head = torch.nn.Linear(d, vocab)

        def forward(self, tok):
            return self.head(self.enc(self.emb(tok) + self.pos[: tok.shape[1]]))

    return TinyLM()


def _train_step(model, opt, tok, tgt, extra=None):
    def step():
        opt.zero_grad(set_to_none=True)
        out = model(tok)
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), tgt.reshape(-1))
        loss.backward()
        opt.step()
        if extra is not None:
            extra()
    return step


def compile_possible(device) -> bool:
    """torch.compile can build the fused kernel here: Triton on CUDA, a C++ compiler on CPU."""
    import shutil

    if torch.device(device).type == "cuda":
        return True
    return bool(shutil.which("g++") or shutil.which("c++"))


def _torchao_rows(x, f8, device, rep) -> list[dict]:
    """Peer baseline: torchao's pure-torch emulation of the same kind of operation, same run."""
    try:
        from torchao.prototype.mx_formats.mx_tensor import MXTensor
    except Exception as e:  # noqa: BLE001 - torchao is a test extra; say it was not measured
        return [{"name": f"torchao peer baseline not measured ({type(e).__name__}: torchao not importable)",
                 "value": 0.0, "unit": "", "device": str(device)}]
    rows = []
    xb = x.view(-1, 1024)
    fn = lambda: MXTensor.to_mx(xb, torch.float8_e4m3fn, 32).dequantize(torch.float32)  # noqa: E731
    t_f8, t_mx = timeit_pair(f8, fn, device, rep)
    rows.append({"name": f"torchao MX-E4M3 quantize+dequantize (emulated), {x.numel() / 2**20:.0f}M fp32",
                 "value": x.numel() / t_mx / 1e6, "unit": "M values/s", "baseline": "x.to(float8_e4m3fn).float()",
                 "ratio": t_mx / t_f8, "lower_is_better": True, "goal": "peer (for comparison)",
                 "device": str(device), "baseline_value": x.numel() / t_f8 / 1e6})
    return rows


def run(quick: bool = False, device=None) -> list[dict]:
    from .backslash import BackSlash
    from .qat import QATConfig, quantize_model_
    from .quant import fake_quant, set_compile

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dev = str(device)
    rows = []
    rep = 3 if quick else 5

    # 1. fake_quant vs the float8 cast (and torchao's MX emulation as a peer)
    n = (1 << 20) if quick else (1 << 24)
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, device=device, generator=g)
    f8 = lambda: x.to(torch.float8_e4m3fn).float()  # noqa: E731
    goal = "<= 2x baseline time"
    set_compile(False)
    for label, fn in (("rf8 tensor", lambda: fake_quant(x, "rf8")),
                      ("rf8 per-channel (1024 cols)", lambda: fake_quant(x.view(-1, 1024), "rf8",
                                                                        granularity="channel"))):
        t_f8, t_fq = timeit_pair(f8, fn, device, rep)
        rows.append({"name": f"fake_quant {label}, {n / 2**20:.0f}M fp32 (eager)", "value": n / t_fq / 1e6,
                     "unit": "M values/s", "baseline": "x.to(float8_e4m3fn).float()", "ratio": t_fq / t_f8,
                     "lower_is_better": True, "goal": goal, "device": dev, "baseline_value": n / t_f8 / 1e6})
    if compile_possible(device):
        set_compile(True)
        try:
            modes = (("rf8", "nearest"),) if quick else (("rf8", "nearest"), ("rf8", "paper"), ("rf8", "truncate"),
                                                         ("e4m3", "nearest"), ("int8", "nearest"))
            for fmt, rounding in modes:
                fn = lambda: fake_quant(x.view(-1, 1024), fmt, rounding, granularity="channel")  # noqa: E731
                t0 = time.perf_counter()
                fn()
                _sync(device)
                tc = time.perf_counter() - t0
                t_f8, t_c = timeit_pair(f8, fn, device, rep)
                rows.append({"name": f"fake_quant {fmt} {rounding} per-channel, {n / 2**20:.0f}M fp32 "
                                     f"(fused op, torch.compile; first call {tc:.0f} s)", "value": n / t_c / 1e6,
                             "unit": "M values/s", "baseline": "x.to(float8_e4m3fn).float()", "ratio": t_c / t_f8,
                             "lower_is_better": True, "goal": goal, "device": dev, "compile_s": tc,
                             "baseline_value": n / t_f8 / 1e6})
        finally:
            set_compile(False)
        from .fastquant import compile_status

        st = compile_status()
        if st["failed"]:
            rows.append({"name": f"fake_quant torch.compile FAILED: {st['failed']}", "value": 0.0, "unit": "",
                         "device": dev})
    rows += _torchao_rows(x, f8, device, rep)
    del x

    # 2. QAT step vs float32 step
    torch.manual_seed(0)
    if quick:
        batch, seq, kw = 8, 32, dict(vocab=500)
    elif device.type == "cuda":  # big enough that kernel launches do not dominate the step
        batch, seq, kw = 32, 128, dict(d=256, layers=4, heads=8, ff=1024, vocab=4000)
    else:
        batch, seq, kw = 16, 64, dict(vocab=1000)
    vocab = kw["vocab"]
    kw["seq"] = seq
    tok = torch.randint(0, vocab, (batch, seq), device=device)
    tgt = torch.randint(0, vocab, (batch, seq), device=device)
    fp = small_transformer(**kw).to(device)
    qat = small_transformer(**kw).to(device)
    qat.load_state_dict(fp.state_dict())
    quantize_model_(qat, QATConfig(weight_fmt="rf8", weight_granularity="channel"))
    s_fp = _train_step(fp, torch.optim.AdamW(fp.parameters(), 1e-3), tok, tgt)
    s_q = _train_step(qat, torch.optim.AdamW(qat.parameters(), 1e-3), tok, tgt)
    set_compile(False)
    t_fp, t_q = timeit_pair(s_fp, s_q, device, rep + 4, 2)
    nparam = sum(p.numel() for p in fp.parameters())
    rows.append({"name": f"QAT step (rf8 weights, per channel), transformer {nparam / 1e6:.2f}M params, "
                         f"batch {batch}x{seq} (eager)", "value": t_q * 1e3, "unit": "ms/step",
                 "baseline": "float32 step", "ratio": t_q / t_fp, "lower_is_better": True, "goal": "<= 1.3x",
                 "device": dev, "baseline_value": t_fp * 1e3})
    if compile_possible(device):
        try:
            set_compile(True)
            s_q()
            t_fp, t_qc = timeit_pair(s_fp, s_q, device, rep + 4, 2)
            rows.append({"name": "QAT step, same model, fake_quant via torch.compile", "value": t_qc * 1e3,
                         "unit": "ms/step", "baseline": "float32 step", "ratio": t_qc / t_fp,
                         "lower_is_better": True, "goal": "<= 1.3x", "device": dev, "baseline_value": t_fp * 1e3})
        except Exception as e:  # noqa: BLE001
            rows.append({"name": f"QAT compiled unavailable: {type(e).__name__}", "value": 0.0, "unit": "",
                         "device": dev})
        finally:
            set_compile(False)

    # 3. BackSlash overhead on a step (eager foreach step, and the fused step when it compiles)
    s_fp2 = _train_step(fp, torch.optim.AdamW(fp.parameters(), 1e-3), tok, tgt)
    for compiled in ((False, True) if compile_possible(device) else (False,)):
        set_compile(compiled)
        for every in (1, 10):
            bsm = small_transformer(**kw).to(device)
            bsm.load_state_dict(fp.state_dict())
            bs = BackSlash(bsm, lam=2e3, eps=1.0, every=every)
            opt = torch.optim.AdamW(bsm.parameters(), 1e-3)
            s_bs = _train_step(bsm, opt, tok, tgt, bs.step)
            t_fp2, t_bs = timeit_pair(s_fp2, s_bs, device, rep + 4, 2)
            rows.append({"name": f"BackSlash step (lam=2e3, nu re-estimated every {every} step(s)) added to a "
                                 f"training step ({'fused, torch.compile' if compiled else 'eager foreach'})",
                         "value": t_bs * 1e3, "unit": "ms/step", "baseline": "float32 step",
                         "ratio": t_bs / t_fp2, "lower_is_better": True, "goal": "<= 1.05x", "device": dev,
                         "baseline_value": t_fp2 * 1e3})
    set_compile("auto")
    for r in rows:
        r.setdefault("part", "training")
    return rows


def main(argv=None) -> int:
    """``python -m rf8sim.training.bench [--quick] [--device D] [--record FILE [--force]]``."""
    import argparse

    from rf8sim.infra.console import Console
    from rich.table import Table

    ap = argparse.ArgumentParser(prog="python -m rf8sim.training.bench", description=main.__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default=None)
    ap.add_argument("--record", metavar="FILE", help="write the rows as a results record")
    ap.add_argument("--force", action="store_true", help="overwrite an existing --record file")
    args = ap.parse_args(argv)
    if args.record:
        from rf8sim.infra.fileio import check_output_path

        check_output_path(args.record, args.force)
    from rf8sim.infra.records import provenance

    prov = provenance()  # the state of the code that runs (taken before the run, not after)
    rows = run(quick=args.quick, device=args.device)
    t = Table(title="rf8sim training benchmarks (ratios: same-run, interleaved)")
    for h in ("benchmark", "value", "baseline", "ratio", "goal"):
        t.add_column(h)
    for r in rows:
        ratio = r.get("ratio")
        t.add_row(r["name"], f"{r['value']:.4g} {r.get('unit', '')}", r.get("baseline", ""),
                  "" if ratio is None else f"{ratio:.2f}x", r.get("goal", ""))
    Console().print(t)
    if args.record:
        from rf8sim.infra.records import write_record

        write_record(args.record, {"provenance": prov, "kind": "bench-training",
                                   "device": str(rows[0]["device"]) if rows else None,
                                   "quick": args.quick, "torch_threads": torch.get_num_threads(), "rows": rows},
                     overwrite=args.force)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
