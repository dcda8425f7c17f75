"""Training benchmarks, as ratios against baselines measured in the same run.

1. ``fake_quant`` rf8 (per tensor, nearest) on 16M float32 vs torch's
   ``x.to(torch.float8_e4m3fn).float()`` - goal within 3x (eager and, where
   torch.compile works, compiled);
2. a QAT training step of a small transformer (RF8 fake-quantized weights) vs the
   same float32 step - goal within 1.5x;
3. BackSlash's per-batch step added to a float32 training step - goal <= 10 %.

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


def run(quick: bool = False, device=None) -> list[dict]:
    from .backslash import BackSlash
    from .qat import QATConfig, quantize_model_
    from .quant import fake_quant, set_compile

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dev = str(device)
    rows = []
    rep = 3 if quick else 5

    # 1. fake_quant vs the float8 cast
    n = (1 << 20) if quick else (1 << 24)
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, device=device, generator=g)
    set_compile(False)
    t_f8, t_fq = timeit_pair(lambda: x.to(torch.float8_e4m3fn).float(), lambda: fake_quant(x, "rf8"), device, rep)
    t_f8b, t_fqc = timeit_pair(lambda: x.to(torch.float8_e4m3fn).float(),
                               lambda: fake_quant(x.view(-1, 1024), "rf8", granularity="channel"), device, rep)
    rows.append({"name": f"fake_quant rf8 tensor, {n / 2**20:.0f}M fp32 (eager)", "value": n / t_fq / 1e6,
                 "unit": "M values/s", "baseline": "x.to(float8_e4m3fn).float()", "ratio": t_fq / t_f8,
                 "lower_is_better": True, "goal": "<= 3x baseline time", "device": dev,
                 "baseline_value": n / t_f8 / 1e6})
    rows.append({"name": f"fake_quant rf8 per-channel (1024 cols), {n / 2**20:.0f}M fp32 (eager)",
                 "value": n / t_fqc / 1e6, "unit": "M values/s", "baseline": "x.to(float8_e4m3fn).float()",
                 "ratio": t_fqc / t_f8b, "lower_is_better": True, "goal": "<= 3x baseline time", "device": dev,
                 "baseline_value": n / t_f8b / 1e6})
    if not quick and device.type == "cuda":
        try:
            set_compile(True)
            t0 = time.perf_counter()
            fake_quant(x.view(-1, 1024), "rf8", granularity="channel")
            _sync(device)
            tc = time.perf_counter() - t0
            t_f8c, t_c = timeit_pair(lambda: x.to(torch.float8_e4m3fn).float(),
                                     lambda: fake_quant(x.view(-1, 1024), "rf8", granularity="channel"), device, rep)
            rows.append({"name": f"fake_quant rf8 per-channel, {n / 2**20:.0f}M fp32 (torch.compile; "
                                 f"first call {tc:.0f} s)", "value": n / t_c / 1e6, "unit": "M values/s",
                         "baseline": "x.to(float8_e4m3fn).float()", "ratio": t_c / t_f8c, "lower_is_better": True,
                         "goal": "<= 3x baseline time", "device": dev, "compile_s": tc})
        except Exception as e:  # noqa: BLE001 - compile needs a C++ compiler / triton; report, don't fail
            rows.append({"name": f"fake_quant torch.compile unavailable: {type(e).__name__}", "value": 0.0,
                         "unit": "", "device": dev})
        finally:
            set_compile(False)
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
                 "baseline": "float32 step", "ratio": t_q / t_fp, "lower_is_better": True, "goal": "<= 1.5x",
                 "device": dev, "baseline_value": t_fp * 1e3})
    if not quick and device.type == "cuda":
        try:
            set_compile(True)
            s_q()
            t_fp, t_qc = timeit_pair(s_fp, s_q, device, rep + 4, 2)
            rows.append({"name": "QAT step, same model, fake_quant via torch.compile", "value": t_qc * 1e3,
                         "unit": "ms/step", "baseline": "float32 step", "ratio": t_qc / t_fp,
                         "lower_is_better": True, "goal": "<= 1.5x", "device": dev, "baseline_value": t_fp * 1e3})
        except Exception as e:  # noqa: BLE001
            rows.append({"name": f"QAT compiled unavailable: {type(e).__name__}", "value": 0.0, "unit": "",
                         "device": dev})
        finally:
            set_compile(False)

    # 3. BackSlash overhead on a step
    s_fp2 = _train_step(fp, torch.optim.AdamW(fp.parameters(), 1e-3), tok, tgt)
    for every in (1, 10):
        bsm = small_transformer(**kw).to(device)
        bsm.load_state_dict(fp.state_dict())
        bs = BackSlash(bsm, lam=2e3, eps=1.0, every=every)
        opt = torch.optim.AdamW(bsm.parameters(), 1e-3)
        s_bs = _train_step(bsm, opt, tok, tgt, bs.step)
        t_fp2, t_bs = timeit_pair(s_fp2, s_bs, device, rep + 4, 2)
        rows.append({"name": f"BackSlash step (lam=2e3, nu re-estimated every {every} step(s)) added to a "
                             "training step", "value": t_bs * 1e3, "unit": "ms/step", "baseline": "float32 step",
                     "ratio": t_bs / t_fp2, "lower_is_better": True, "goal": "<= 1.10x", "device": dev,
                     "baseline_value": t_fp2 * 1e3})
    set_compile("auto")
    for r in rows:
        r.setdefault("part", "training")
    return rows
