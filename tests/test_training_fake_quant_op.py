"""The fused fake-quant op (rf8sim.training.fastquant) against the golden model.

Reference: rf8sim.golden.quantize + dequantize (Numba, written independently of the
torch code).  Inputs are built to hit every bucket edge of every binade: for every
float32 exponent field, mantissas at and around each format midpoint and the
sqrt(2) threshold of the paper rounding, plus random rows at random scales,
subnormal, all-zero and huge rows.
"""

import math

import numpy as np
import pytest
import torch

import rf8sim.golden as G
from rf8sim import formats as F
from rf8sim.training import fake_quant, set_compile
from rf8sim.training import fastquant as FQ
from rf8sim.training.quant import fake_quant_op
from rf8sim.training.quant import _SCALE_MAX, _SCALE_MIN, _SQRT2_SIG
from toolcheck import require

MODES = [("rf8", "nearest"), ("rf8", "paper"), ("rf8", "truncate"), ("e4m3", "nearest"), ("e5m2", "nearest"),
         ("int8", "nearest")]


def _edge_rows(fmt_name: str) -> np.ndarray:
    """Rows of 256 float32 values: every exponent field, mantissas at/around every midpoint of the
    format's magnitude grid in that binade and at the sqrt(2) threshold, both signs."""
    fmt = F.get(fmt_name)
    mags = np.asarray(fmt.magnitudes, np.float64)
    mids = (mags[1:] + mags[:-1]) / 2
    # midpoints as mantissa fractions of their binade: the same set recurs in every binade
    fr = set()
    for m in mids[mids > 0]:
        e = math.floor(math.log2(m))
        fr.add(int(round((m / 2.0 ** e - 1) * (1 << 23))))
    fr.add(_SQRT2_SIG - (1 << 23))
    mant = set()
    for f in fr | {0, (1 << 23) - 1}:
        for dlt in (-1, 0, 1):
            if 0 <= f + dlt < (1 << 23):
                mant.add(f + dlt)
    mant = np.array(sorted(mant), np.uint32)
    rows = []
    for E in range(0, 254):  # (field 254: values whose rounding overflows float32, tested apart)
        bits = (np.uint32(E) << 23) | mant
        row = np.concatenate([bits, bits | np.uint32(0x80000000)]).view(np.float32)
        rows.append(np.resize(row, 256))
    return np.stack(rows)


def _cases(fmt_name: str) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((300, 77)) * np.exp2(rng.integers(-40, 40, (300, 1)))).astype(np.float32)
    x[0, :5] = [1e-40, -3e-39, 2e-45, 0.0, -0.0]
    x[1, :3] = [3e38, -1e-30, 1e-38]
    x[2, :] = 0.0
    x[3, :4] = [1e-44, -1e-45, 0.0, 3e-42]  # amax subnormal: k clamps to the storable minimum
    return [_edge_rows(fmt_name), x]


def _golden(x: np.ndarray, fmt, rounding, gran, block=16) -> np.ndarray:
    block = 32 if gran == "mx" else block
    c, k = G.quantize(x, fmt, rounding=rounding, granularity=gran, block=block)
    return G.dequantize(c, k, fmt, granularity=gran, block=block)


def _check(fmt, rounding, compiled: bool, grans=("tensor", "channel", "ceil", "mx")) -> int:
    n = 0
    for x in _cases(fmt):
        for gran in grans:
            want = _golden(x, fmt, rounding, gran)
            y = torch.from_numpy(x)
            from rf8sim.training.quant import _fold, _unfold

            b = 32 if gran == "mx" else 16
            y2, _ = _fold(y, gran, b)
            got, ok = FQ.kernel_values(y2, fmt, rounding, compiled, _SCALE_MIN, _SCALE_MAX, gran == "mx")
            got = _unfold(got, y.shape, gran, b).numpy()
            assert bool(ok)
            bad = got.view(np.int32) != want.view(np.int32)
            assert not bad.any(), (fmt, rounding, gran, int(bad.sum()), x[bad][:4], got[bad][:4], want[bad][:4])
            n += x.size
    return n


@pytest.mark.parametrize("fmt,rounding", MODES)
def test_eager_kernel_matches_golden(fmt, rounding, one_torch_thread):
    n = _check(fmt, rounding, compiled=False)
    assert n == 4 * (254 * 256 + 300 * 77)


def _require_compiler():
    import shutil

    require(shutil.which("g++") or shutil.which("c++"), "a C++ compiler (torch.compile's CPU backend)",
            "apt-get install g++")


def test_compiled_kernel_matches_golden_and_does_not_fall_back():
    """One mode compiled here (each compilation costs ~15-30 s, and a one-row tensor scale is a
    second specialisation); all modes and granularities in the slow test."""
    _require_compiler()
    before = FQ.compile_status()["compiled_calls"]
    n = _check("rf8", "nearest", compiled=True, grans=("channel", "ceil"))
    st = FQ.compile_status()
    assert st["failed"] is None, st["failed"]
    assert st["compiled_calls"] - before == 4  # 2 cases x 2 granularities: every call ran compiled
    assert n == 2 * (254 * 256 + 300 * 77)


@pytest.mark.slow
@pytest.mark.parametrize("fmt,rounding", MODES)
def test_compiled_kernel_all_modes(fmt, rounding):
    _require_compiler()
    before = FQ.compile_status()["compiled_calls"]
    _check(fmt, rounding, compiled=True)
    st = FQ.compile_status()
    assert st["failed"] is None and st["compiled_calls"] - before == 8


def test_public_fake_quant_uses_the_op_and_compiled_switch():
    """fake_quant routes registered formats through the op; set_compile(True) makes it compile."""
    x = torch.randn(64, 32)
    b = FQ.compile_status()
    fake_quant(x, "rf8")
    assert FQ.compile_status()["eager_calls"] == b["eager_calls"] + 1
    set_compile(False)
    try:
        fake_quant(x, "e4m3", granularity="channel")
        assert FQ.compile_status()["compiled_calls"] == b["compiled_calls"]
    finally:
        set_compile("auto")


def test_nonfinite_propagate_and_raise():
    x = torch.randn(8, 16)
    x[1, 3], x[2, 0], x[5, 5] = float("nan"), float("inf"), -float("inf")
    for fmt, rounding in MODES:
        out, ok = FQ.kernel_values(x, fmt, rounding, False, _SCALE_MIN, _SCALE_MAX)
        assert not bool(ok)
        assert torch.isnan(out[1, 3]) and out[2, 0] == float("inf") and out[5, 5] == -float("inf")
        fin = torch.isfinite(x)
        want = fake_quant(x, fmt, rounding, "channel", nonfinite="propagate")
        assert torch.equal(out[fin], want[fin])
    with pytest.raises(ValueError, match="non-finite"):
        fake_quant(x, "rf8")


def test_overflow_of_the_rounded_value_is_an_error_as_in_dequantize():
    x = torch.full((4, 8), 3.4e38)
    x[0, 0] = torch.finfo(torch.float32).max  # rf8 nearest rounds this binade's top up to 2**128
    for compiled in (False,):
        with pytest.raises(ValueError, match="overflow float32"):
            fake_quant_op(x, "rf8", "nearest", "tensor", 32, "raise", compiled)
        with pytest.raises(ValueError, match="overflow float32"):
            G.dequantize(*G.quantize(x.numpy(), "rf8"), "rf8")
    out = fake_quant(x, "rf8", nonfinite="propagate")
    assert out[0, 0] == float("inf")


def test_op_registration_and_straight_through_gradient():
    x = torch.randn(16, 8, requires_grad=True)
    torch.library.opcheck(fake_quant_op, (x, "rf8", "paper", "channel", 32, "raise", False),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))
    g = torch.randn(16, 8)
    fake_quant(x, "rf8", "paper", "channel").backward(g)
    assert torch.equal(x.grad, g)


def test_torch_compile_sees_the_op_without_graph_breaks():
    lin = torch.nn.Linear(32, 16)

    def f(inp):
        return torch.nn.functional.linear(inp, fake_quant(lin.weight, "rf8", granularity="channel"), lin.bias)

    ex = torch._dynamo.explain(f)(torch.randn(4, 32))
    torch._dynamo.reset()
    assert ex.graph_break_count == 0 and ex.graph_count == 1


def test_sweep_compares_every_pattern_and_can_fail(monkeypatch):
    """The exhaustive `training-sweep --fake-quant` machinery on slices: the top of the float32
    range (rounding overflow, Inf, NaN payloads), subnormals, and a broken kernel is caught."""
    from rf8sim.training import sweep as S

    top = np.arange(0x7F7F0000, 0x7F800400, dtype=np.uint64).astype(np.uint32)
    top = np.concatenate([top, top | np.uint32(0x80000000)])
    low = np.arange(0, 1 << 15, dtype=np.uint32)
    n = 0
    for fmt, rounding in S.FQ_MODES:
        for bits in (top, low):
            got = S.compare_fake_quant(bits, fmt, rounding, compiled=False)
            assert got == (bits.size, 0), (fmt, rounding)
            n += got[0]
    assert n == 6 * (top.size + low.size)
    real = FQ._KERNELS["paper"]

    def broken(y, *a):
        out, ok = real(y, *a)
        return torch.where(out.abs() == 1.0625, out * 2, out), ok

    monkeypatch.setitem(FQ._KERNELS, "paper", broken)
    mid = np.arange(0x3F800000, 0x3F800000 + (1 << 20), dtype=np.uint32)
    assert S.compare_fake_quant(mid, "rf8", "paper", compiled=False)[1] > 0


def test_backslash_compiled_step_matches_foreach_step():
    """The fused BackSlash step (set_compile(True)) against the eager foreach step: the same update
    up to the last bits of the vectorised pow; and it must really have compiled."""
    import copy

    from rf8sim.training import BackSlash
    from rf8sim.training.backslash import _UPDATE

    _require_compiler()
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    m2 = copy.deepcopy(m)
    w0 = [p.detach().clone() for p in m.parameters()]
    b1, b2 = BackSlash(m, lam=2e3), BackSlash(m2, lam=2e3)
    set_compile(False)
    b1.step()
    set_compile(True)
    try:
        b2.step()
    finally:
        set_compile("auto")
    assert _UPDATE["failed"] is None, _UPDATE["failed"]
    n = 0
    for p1, p2, p0 in zip(m.parameters(), m2.parameters(), w0):
        if p0.dim() < 2:  # biases are not selected: untouched by both
            assert torch.equal(p1, p0) and torch.equal(p2, p0)
            continue
        assert not torch.equal(p1, p0)
        torch.testing.assert_close(p2 - p0, p1 - p0, rtol=1e-5, atol=1e-7)
        n += p1.numel()
    assert n == 64 * 128 + 128 * 10
