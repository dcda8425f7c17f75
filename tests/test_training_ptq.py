"""quantize_ (post-training quantization, packed RF8Linear) and its save_rf8/load_rf8 round trip,
against the golden model (codes, scales, GEMM) and the Fraction W8A16 model."""

import ml_dtypes
import numpy as np
import pytest
import torch
from torch import nn

import rf8sim.golden as G
from oracles import w8a16 as R
from rf8sim.training import (QuantConfig, QuantError, RF8FileError, RF8Linear, load_rf8, quantize_, save_rf8)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Net(nn.Module):
    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.enc = nn.Sequential(nn.Linear(64, 96), nn.GELU(), nn.Linear(96, 32, bias=False))
        self.head = nn.Linear(32, 8)
        self.norm = nn.LayerNorm(32)

    def forward(self, x):
        return self.head(self.norm(self.enc(x)))


def test_quantize_replaces_linears_with_packed_codes():
    net = Net(0)
    ref = {n: m.weight.detach().clone() for n, m in net.named_modules() if isinstance(m, nn.Linear)}
    cfg = QuantConfig(weight_fmt="e4m3", granularity="channel")
    quantize_(net, cfg, filter_fn=lambda module, fqn: fqn.startswith("enc."))
    assert isinstance(net.enc[0], RF8Linear) and isinstance(net.enc[2], RF8Linear) and type(net.head) is nn.Linear
    n = 0
    for name in ("enc.0", "enc.2"):
        m = net.get_submodule(name)
        gc, gk = G.quantize(ref[name].numpy(), "e4m3", "nearest", "channel")
        assert np.array_equal(m.codes.numpy(), gc) and np.array_equal(m.scale_exp.numpy(), gk)
        assert m.codes.dtype == torch.uint8 and m.scale_exp.dtype == torch.int8
        assert np.array_equal(m.weight.numpy(), G.dequantize(gc, gk, "e4m3", "channel"))
        assert not any(p.shape == m.codes.shape for p in m.parameters())  # no float weight left
        n += gc.size
    assert n == 64 * 96 + 96 * 32


def test_fake_forward_is_bf16_activations_times_dequantized_weights():
    net = nn.Sequential(nn.Linear(40, 24))
    x = torch.randn(5, 40) * 3
    w0, b0 = net[0].weight.detach().clone(), net[0].bias.detach().clone()
    quantize_(net, QuantConfig("rf8", "bf16"))
    gc, gk = G.quantize(w0.numpy(), "rf8", "nearest", "channel")
    xb = torch.from_numpy(x.numpy().astype(ml_dtypes.bfloat16).astype(np.float32))
    want = nn.functional.linear(xb, torch.from_numpy(G.dequantize(gc, gk, "rf8", "channel")), b0)
    assert torch.equal(net(x), want)


def test_exact_forward_bf16_matches_fraction_model():
    torch.manual_seed(3)
    lin = nn.Linear(16, 3, bias=False)
    x = torch.randn(2, 16)
    net = nn.Sequential(lin)
    for acc in ("fp32", "aligned:8:12"):
        cfg = QuantConfig("rf8", "bf16", forward="exact", acc=acc)
        m = RF8Linear.from_linear(lin, cfg)
        y = m(x)
        a = x.numpy().astype(ml_dtypes.bfloat16).view(np.uint16)
        for i in range(2):
            for j in range(3):
                k = [int(m.scale_exp[j])] * 16
                if acc == "fp32":
                    b, _, _ = R.fp32_dot(a[i], m.codes[j].numpy(), "bf16", "rf8", k)
                else:
                    b, _, _ = R.aligned_dot(a[i], m.codes[j].numpy(), "bf16", "rf8", k, 8, 12)
                assert int(y[i, j].view(torch.int32)) & 0xFFFFFFFF == b, (acc, i, j)
    assert isinstance(net[0], nn.Linear)


def test_exact_forward_8bit_activations_matches_golden_gemm():
    torch.manual_seed(4)
    lin = nn.Linear(48, 6)
    x = torch.randn(3, 48)
    cfg = QuantConfig("rf8", "e4m3", forward="exact", acc="20:40")
    m = RF8Linear.from_linear(lin, cfg)
    gac, gak = G.quantize(x.numpy(), "e4m3", "nearest", "tensor")
    r = G.gemm(gac, m.codes.numpy(), "e4m3", "rf8", "20:40", gak, m.scale_exp.numpy(), "tensor", "channel")
    want = G.to_float32(r.acc, 20) + lin.bias.detach().numpy()
    assert np.array_equal(m(x).detach().numpy(), want)


def test_save_load_roundtrip_packed(tmp_path):
    cfg = QuantConfig("rf8", "bf16", granularity="mx")
    a = quantize_(Net(1), cfg)
    nb = Net(2)
    with torch.no_grad():
        for m in nb.modules():
            if isinstance(m, nn.Linear):
                m.weight.mul_(16.0)  # other scales, so that the load must restore them
    b = quantize_(nb, cfg)
    assert not torch.equal(a.enc[0].scale_exp, b.enc[0].scale_exp)
    p = tmp_path / "m.rf8.safetensors"
    meta = save_rf8(a, p)
    assert meta["quantized"]["enc.0.weight"]["packed"]["granularity"] == "mx"
    assert not torch.equal(a.enc[0].codes, b.enc[0].codes)
    load_rf8(p, b)
    n = 0
    for name in ("enc.0", "enc.2", "head"):
        ma, mb = a.get_submodule(name), b.get_submodule(name)
        assert torch.equal(ma.codes, mb.codes) and torch.equal(ma.scale_exp, mb.scale_exp)
        n += ma.codes.numel()
    x = torch.randn(4, 64)
    assert torch.equal(a(x), b(x)) and n == 64 * 96 + 96 * 32 + 32 * 8
    # the same file into a plain float model: dequantized weights
    plain = Net(5)
    load_rf8(p, plain)
    assert torch.equal(plain.enc[0].weight, a.enc[0].weight)
    # a module packed differently is refused, untouched
    c = quantize_(Net(3), QuantConfig("e4m3", "bf16", granularity="mx"))
    before = c.enc[0].codes.clone()
    with pytest.raises(RF8FileError, match="the file holds .'rf8', 'mx', 32. .*expects .'e4m3', 'mx', 32."):
        load_rf8(p, c)
    assert torch.equal(c.enc[0].codes, before)
    # one flipped byte: checksum
    raw = bytearray(p.read_bytes())
    raw[-5] ^= 0x10
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(RF8FileError, match="checksum mismatch"):
        load_rf8(bad, b)


def test_bad_configs():
    with pytest.raises(QuantError, match="forward='exact' needs act_fmt"):
        QuantConfig(act_fmt=None, forward="exact")
    with pytest.raises(QuantError, match="needs acc, an AccSpec string"):
        QuantConfig(act_fmt="e4m3", forward="exact")
    with pytest.raises(QuantError, match="rounding 'paper' is not valid for e4m3"):
        QuantConfig("e4m3", rounding="paper")
    with pytest.raises(QuantError, match="forward='gpu' is not valid; valid: fake, exact"):
        QuantConfig(forward="gpu")
    with pytest.raises(QuantError, match="selected no nn.Linear"):
        quantize_(Net(0), filter_fn=lambda module, fqn: False)
    with pytest.raises(QuantError, match="wrap a bare Linear"):
        quantize_(nn.Linear(3, 3))
    assert QuantConfig(granularity="block").granularity == "ceil"
    assert QuantConfig(forward="exact").acc == "fp32"


def test_qat_weight_only_bf16_activations():
    from rf8sim.training import QATConfig, fake_quant, quantize_model_

    torch.manual_seed(7)
    m = nn.Sequential(nn.Linear(20, 12), nn.ReLU(), nn.Linear(12, 4))
    w2 = m[2].weight.detach().clone()
    quantize_model_(m, QATConfig(weight_fmt="rf8", act_fmt="bf16"), filter_fn=lambda module, fqn: fqn == "0")
    x = torch.randn(6, 20) * 4
    y = m(x)
    lat = m[0].parametrizations.weight.original
    xb = torch.from_numpy(x.numpy().astype(ml_dtypes.bfloat16).astype(np.float32))
    h = torch.relu(nn.functional.linear(xb, fake_quant(lat.detach(), "rf8", granularity="channel"), m[0].bias))
    assert torch.equal(y, nn.functional.linear(h, w2, m[2].bias))
    y.sum().backward()
    assert lat.grad is not None and bool((lat.grad != 0).any())
