"""Datasets and models of rf8sim.workloads: determinism, shapes, and the MiniLM forward
checked against sentence-transformers' own offline load of the same folder."""

import os
import random

import numpy as np
import pytest
import torch
from toolcheck import package

from rf8sim.workloads import data as D
from rf8sim.workloads import models as M

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_mnist1d_shapes_determinism_and_global_rng_untouched():
    np.random.seed(123)
    random.seed(123)
    expect_np, expect_py = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(123)
    xtr, ytr, xte, yte = D.load_mnist1d(n=200)
    # the generator reseeds numpy/random internally; the caller's stream must be unchanged
    assert np.random.rand() == expect_np and random.random() == expect_py
    assert xtr.shape == (160, 40) and xte.shape == (40, 40)
    assert xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert set(ytr.tolist()) <= set(range(10)) and len(set(ytr.tolist())) == 10
    again = D.load_mnist1d(n=200)
    assert all(torch.equal(a, b) for a, b in zip((xtr, ytr, xte, yte), again))
    other = D.load_mnist1d(seed=1, n=200)
    assert not torch.equal(xtr, other[0])
    # returned tensors are copies: mutating one does not poison the cache
    xtr.zero_()
    assert not torch.equal(D.load_mnist1d(n=200)[0], xtr)


def test_mnist1d_matches_the_generator_directly():
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = 100
    ref = make_dataset(args)
    got = D.load_mnist1d(n=100)
    np.testing.assert_array_equal(got[0].numpy(), ref["x"].astype(np.float32))
    np.testing.assert_array_equal(got[3].numpy(), ref["y_test"])


@pytest.mark.parametrize("bad", [dict(n=55), dict(n=0), dict(seed=-1), dict(n=12.5)])
def test_mnist1d_bad_args(bad):
    with pytest.raises(D.DataError):
        D.load_mnist1d(**bad)


def test_text_corpus_split_is_disjoint_deterministic_and_english():
    from pydoc_data.topics import topics

    c = D.load_text_corpus()
    total = sum(len(v.encode()) for v in topics.values())
    assert c.vocab_size == 256
    assert 0.05 < len(c.test) / (len(c.train) + len(c.test)) < 0.2
    # every distinct paragraph is accounted for (duplicated paragraphs kept once)
    distinct = {p for v in topics.values() for p in v.split("\n\n") if p.strip()}
    assert c.n_train_paragraphs + c.n_test_paragraphs == len(distinct)
    assert len(c.train) + len(c.test) == sum(len(p.encode()) for p in distinct) + 2 * (len(distinct) - 2)
    assert len(c.train) + len(c.test) > total // 2
    assert int(c.train.max()) < 256 and int(c.train.min()) >= 0
    text = c.decode(c.test)
    assert " the " in text and text.count("\n\n") == c.n_test_paragraphs - 1
    # no held-out paragraph is (as a whole) in the training text
    train_text = c.decode(c.train)
    held = [p for p in text.split("\n\n") if len(p) > 200]
    assert len(held) > 20
    assert sum(p in train_text for p in held) == 0
    assert torch.equal(D.load_text_corpus().test, c.test)
    small = D.load_text_corpus(max_bytes=1000)
    assert len(small.train) == 1000 and len(small.test) == 1000
    with pytest.raises(D.DataError):
        D.load_text_corpus(holdout_every=1)


def test_lm_batch_targets_are_shifted_inputs():
    toks = torch.arange(1000)
    g = torch.Generator().manual_seed(0)
    x, y = D.lm_batch(toks, 8, 16, g)
    assert x.shape == y.shape == (8, 16)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, 0], x[:, 0] + 1)
    with pytest.raises(D.DataError):
        D.lm_batch(toks[:10], 2, 16, g)


def test_sentences_are_real_distinct_and_deterministic():
    s = D.load_sentences(200)
    assert len(s) == 200 == len(set(s))
    assert s == D.load_sentences(200)
    assert all(6 <= len(x.split()) <= 40 and x.endswith(".") for x in s)
    assert D.load_sentences(50, seed=1) != D.load_sentences(50, seed=0)


def test_small_models_shapes_and_errors():
    x = torch.randn(5, 40)
    assert M.MLP()(x).shape == (5, 10)
    assert M.CNN1D()(x).shape == (5, 10)
    lm = M.TinyLM(d_model=32, n_layer=1, n_head=2, block=16)
    idx = torch.randint(0, 256, (3, 16))
    assert lm(idx).shape == (3, 16, 256)
    # causality: changing a later token does not change earlier logits
    idx2 = idx.clone()
    idx2[:, -1] = (idx2[:, -1] + 1) % 256
    torch.testing.assert_close(lm(idx)[:, :-1], lm(idx2)[:, :-1])
    assert 0 < lm.loss(idx[:, :-1], idx[:, 1:]).item() < 10
    with pytest.raises(M.ModelError):
        lm(torch.randint(0, 256, (1, 17)))
    with pytest.raises(M.ModelError):
        M.TinyLM(d_model=30, n_head=4)
    with pytest.raises(M.ModelError):
        M.CNN1D(kernel=4)


@pytest.fixture(scope="module")
def minilm():
    return M.load_minilm()


@package("sentence_transformers", "sentence-transformers (the reference implementation of MiniLM)")
def test_minilm_matches_sentence_transformers(minilm):
    import sentence_transformers as st

    ref_model = st.SentenceTransformer(str(M.minilm_dir()), device="cpu")
    sents = D.load_sentences(48) + ["word " * 400, "x", "Ünïcode — text…"]  # includes one truncated at 256
    ids, mask = minilm.tokenize(sents)
    assert ids.shape[1] == 256 and int(mask[-3].sum()) == 256
    ours = minilm.encode(sents, batch_size=16)
    ref = torch.from_numpy(ref_model.encode(sents, batch_size=16, convert_to_numpy=True))
    assert ours.shape == ref.shape == (51, 384)
    err = (ours - ref).abs().max().item()
    assert err < 1e-5, err
    torch.testing.assert_close(ours.norm(dim=1), torch.ones(51))
    # and the embeddings carry meaning: a sentence is its own nearest neighbour, others differ
    sim = ours @ ours.T
    assert float(sim.diag().min()) > 0.999 and float(sim[0, 1:48].max()) < 0.99


def test_minilm_padding_invariance_and_errors(minilm):
    s = D.load_sentences(3)
    alone = minilm.encode([s[0]])
    batched = minilm.encode(s)  # padded to the longest of three
    torch.testing.assert_close(alone[0], batched[0], atol=1e-6, rtol=0)
    with pytest.raises(M.ModelError):
        minilm.tokenize("not a list")
    n = sum(p.numel() for p in minilm.parameters())
    assert n == 22_565_376  # all-MiniLM-L6-v2 without its unused pooler
