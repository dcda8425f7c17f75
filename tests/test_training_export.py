"""QAT (quantize_model_ / convert) and the RF8 safetensors export (save_rf8 / load_rf8)."""

import json

import pytest
import torch
from torch import nn

from rf8sim.training.export import RF8FileError, load_rf8, read_rf8, save_rf8
from rf8sim.training.qat import QATConfig, convert, quantize_model_
from rf8sim.training.quant import QuantError, dequantize, fake_quant, quantize


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.conv = nn.Conv1d(16, 8, 3)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8 * 6, 5)

    def forward(self, tok):
        h = self.emb(tok).transpose(1, 2)
        h = self.norm(self.conv(h).transpose(1, 2))
        return self.fc(h.reshape(h.shape[0], -1))


def _net(seed=0):
    torch.manual_seed(seed)
    return Net()


def test_qat_forward_uses_fake_quant_and_trains():
    m = _net()
    w0 = m.fc.weight.detach().clone()
    quantize_model_(m, QATConfig(weight_granularity="channel", act_fmt="e4m3"))
    assert torch.equal(m.fc.weight, fake_quant(w0, "rf8", granularity="channel"))
    tok = torch.randint(0, 50, (4, 8))
    x = m.emb(tok).transpose(1, 2)
    # the conv sees fake-quantized inputs and weights
    want = nn.functional.conv1d(fake_quant(x, "e4m3"), m.conv.weight, m.conv.bias)
    got = {}
    h = m.conv.register_forward_hook(lambda mod, a, out: got.setdefault("out", out))
    m(tok)
    h.remove()
    assert torch.equal(got["out"], want)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    loss = m(tok).square().mean()
    loss.backward()
    assert m.fc.parametrizations.weight.original.grad is not None
    opt.step()
    packed = convert(m)
    assert set(packed) == {"conv.weight", "fc.weight"}
    for name, mod in (("conv.weight", m.conv), ("fc.weight", m.fc)):
        assert torch.equal(packed[name].dequantize(), mod.weight)  # what the forward used, bit for bit
        assert packed[name].codes.dtype == torch.uint8 and packed[name].scale_exp.dtype == torch.int8
    out_before = m(tok)
    convert(m, inplace=True)
    assert not hasattr(m.fc, "parametrizations") or not m.fc.parametrizations
    assert torch.equal(m.fc.weight, packed["fc.weight"].dequantize())
    with pytest.raises(QuantError, match="no fake-quantized layer"):
        convert(m)
    assert out_before.shape == (4, 5)


def test_qat_config_errors():
    with pytest.raises(QuantError, match="weight_rounding 'paper' is not valid for e4m3"):
        QATConfig(weight_fmt="e4m3", weight_rounding="paper")
    with pytest.raises(QuantError, match="act_granularity: unknown granularity 'row'"):
        QATConfig(act_fmt="rf8", act_granularity="row")
    m = _net()
    quantize_model_(m)
    with pytest.raises(QuantError, match="already parametrized"):
        quantize_model_(m)


def test_save_load_roundtrip_bit_exact(tmp_path):
    m = _net(1)
    p = tmp_path / "m.rf8.safetensors"
    meta = save_rf8(m, p, granularity="block", block=8)
    assert set(meta["quantized"]) == {"emb.weight", "conv.weight", "fc.weight"}
    assert meta["package_version"] and meta["format"] == "rf8" and len(meta["raw"]) == 4  # biases + norm
    m2 = _net(2)
    load_rf8(p, m2)
    for name in ("emb", "conv", "fc"):
        w = getattr(m, name).weight.detach()
        want = dequantize(*quantize(w, "rf8", "nearest", "block", 8), "rf8", "block", 8)
        assert torch.equal(getattr(m2, name).weight, want)
    assert torch.equal(m2.fc.bias, m.fc.bias) and torch.equal(m2.norm.weight, m.norm.weight)
    # no silent overwrite
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_rf8(m, p)
    save_rf8(m, p, overwrite=True)
    meta, tensors = read_rf8(p)
    assert tensors["fc.weight.codes"].dtype == torch.uint8 and tensors["fc.weight.scale_exp"].dtype == torch.int8


def test_save_qat_model_restores_forward_weights(tmp_path):
    m = _net(3)
    quantize_model_(m, QATConfig(weight_fmt="e4m3", weight_granularity="tensor"))
    p = tmp_path / "q.safetensors"
    meta = save_rf8(m, p)
    assert meta["quantized"]["fc.weight"]["format"] == "e4m3" and meta["quantized"]["emb.weight"]["format"] == "rf8"
    m2 = _net(4)
    load_rf8(p, m2)
    assert torch.equal(m2.fc.weight, m.fc.weight) and torch.equal(m2.conv.weight, m.conv.weight)


def test_corrupted_truncated_mismatched_files(tmp_path):
    m = _net()
    p = tmp_path / "m.safetensors"
    save_rf8(m, p)
    data = bytearray(p.read_bytes())
    before = {k: v.clone() for k, v in _net(5).state_dict().items()}
    # one flipped bit in the last tensor's data
    bad = tmp_path / "flip.safetensors"
    d2 = bytearray(data)
    d2[-3] ^= 0x10
    bad.write_bytes(bytes(d2))
    target = _net(5)
    with pytest.raises(RF8FileError, match="checksum mismatch"):
        load_rf8(bad, target)
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())  # untouched
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(RF8FileError, match="truncated or corrupted"):
        load_rf8(trunc, _net())
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(RF8FileError, match="not a readable safetensors"):
        load_rf8(tmp_path / "garbage.safetensors", _net())

    class Wider(Net):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8 * 6, 7)

    with pytest.raises(RF8FileError, match="fc.weight: shape"):
        load_rf8(p, Wider())
    with pytest.raises(RF8FileError, match="do not match the model"):
        load_rf8(p, nn.Sequential(nn.Linear(3, 3)))
    with pytest.raises(FileNotFoundError):
        load_rf8(tmp_path / "nope.safetensors", _net())
    # a plain safetensors file without our metadata
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(RF8FileError, match="no rf8sim metadata"):
        load_rf8(tmp_path / "plain.safetensors", _net())
    # tampered metadata: an unknown format (checksum catches it first)
    from safetensors import safe_open
    with safe_open(str(p), framework="pt") as f:
        md = json.loads(f.metadata()["rf8sim"])
        ts = {k: f.get_tensor(k) for k in f.keys()}
    md["quantized"]["fc.weight"]["format"] = "fp4"
    save_file(ts, str(tmp_path / "fmt.safetensors"), metadata={"rf8sim": json.dumps(md)})
    with pytest.raises(RF8FileError, match="checksum mismatch"):
        load_rf8(tmp_path / "fmt.safetensors", _net())
