"""Datasets for the studies, all generated or read offline.

* MNIST-1D (PyPI ``mnist1d``), built with its own offline generator
  ``make_dataset`` from its default arguments -- never its download path.
* English text from CPython's ``pydoc_data.topics`` (the help topics shipped
  with every Python), tokenized at byte level, with a held-out split by topic.
* Real sentences from the same text, for sentence-embedding experiments.

Everything is deterministic: the same arguments give the same tensors on every
machine (the corpus depends on the Python version, which results record).
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

import functools
import random
import re
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DataError",
    "load_mnist1d",
    "TextCorpus",
    "load_text_corpus",
    "lm_batch",
    "load_sentences",
    "MNIST1D_SEED",
]

#: Seed of the canonical MNIST-1D dataset (``get_dataset_args().seed``).
MNIST1D_SEED = 42


class DataError(RF8SimError, ValueError):
    """Bad arguments to a dataset loader."""


@functools.lru_cache(maxsize=8)
def _mnist1d_numpy(seed: int, num_samples: int):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    args.num_samples = num_samples
    # make_dataset reseeds the global numpy/random generators; put them back so
    # loading data never changes the caller's random stream.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return (d["x"].astype(np.float32), d["y"].astype(np.int64),
            d["x_test"].astype(np.float32), d["y_test"].astype(np.int64))


def load_mnist1d(seed: int | None = None, n: int | None = None):
    """MNIST-1D as ``(x_train, y_train, x_test, y_test)`` torch tensors.

    ``x`` is float32 of shape ``(N, 40)``, ``y`` int64 labels 0..9.
    ``seed`` is the generator seed (None: the canonical dataset, seed 42).
    ``n`` is the total number of samples generated (default 5000, split 80/20
    into train/test by the generator); it must be a positive multiple of 10
    (one template per class) and at least 50.
    """
    import torch

    seed = MNIST1D_SEED if seed is None else seed
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"load_mnist1d: seed must be a non-negative int or None, got {seed!r}")
    num = 5000 if n is None else n
    if not isinstance(num, (int, np.integer)) or num < 50 or num % 10:
        raise DataError(f"load_mnist1d: n must be a multiple of 10 and >= 50 (or None for 5000), got {n!r}")
    xs = _mnist1d_numpy(int(seed), int(num))
    return tuple(torch.from_numpy(a.copy()) for a in xs)


@dataclass(frozen=True)
class TextCorpus:
    """A byte-level corpus with a held-out split.

    ``train`` / ``test`` are 1-D int64 tensors of byte values (vocabulary 256);
    ``n_train_paragraphs`` / ``n_test_paragraphs`` count the paragraphs in each.
    """

    train: "object"
    test: "object"
    vocab_size: int
    n_train_paragraphs: int
    n_test_paragraphs: int

    @staticmethod
    def decode(tokens) -> str:
        """Bytes back to text (invalid UTF-8 replaced)."""
        return bytes(int(t) for t in tokens).decode("utf-8", errors="replace")


def _topics() -> dict:
    from pydoc_data.topics import topics

    return topics


def load_text_corpus(holdout_every: int = 10, max_bytes: int | None = None) -> TextCorpus:
    """English text of ``pydoc_data.topics`` as byte tokens, with a held-out split.

    The topics are taken in sorted name order and cut into paragraphs (blank-line
    separated), duplicates dropped; every ``holdout_every``-th paragraph (indices 4, 4 + k, ...) is
    held out for testing, the others form the training text; each split is
    joined with blank lines.  Splitting by paragraph (not by topic) keeps the
    test split about 1/k of the text and spread over all topics.
    ``max_bytes`` truncates each split (for quick runs).
    """
    import torch

    if not isinstance(holdout_every, int) or holdout_every < 2:
        raise DataError(f"load_text_corpus: holdout_every must be an int >= 2, got {holdout_every!r}")
    if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes < 2):
        raise DataError(f"load_text_corpus: max_bytes must be an int >= 2 or None, got {max_bytes!r}")
    topics = _topics()
    # Several topics repeat whole paragraphs of others; keep each paragraph once
    # (first occurrence) so no held-out paragraph is also training text.
    paras = list(dict.fromkeys(p for k in sorted(topics) for p in topics[k].split("\n\n") if p.strip()))
    test = [p for i, p in enumerate(paras) if i % holdout_every == 4]
    train = [p for i, p in enumerate(paras) if i % holdout_every != 4]

    def enc(ps):
        b = "\n\n".join(ps).encode("utf-8")
        if max_bytes is not None:
            b = b[:max_bytes]
        return torch.frombuffer(bytearray(b), dtype=torch.uint8).to(torch.int64)

    return TextCorpus(enc(train), enc(test), 256, len(train), len(test))


def lm_batch(tokens, batch: int, block: int, generator):
    """A random batch of ``(input, target)`` windows of length ``block`` for next-token prediction."""
    import torch

    if len(tokens) <= block + 1:
        raise DataError(f"lm_batch: corpus of {len(tokens)} tokens is too short for block {block}")
    ix = torch.randint(0, len(tokens) - block - 1, (batch,), generator=generator)
    x = torch.stack([tokens[i:i + block] for i in ix.tolist()])
    y = torch.stack([tokens[i + 1:i + block + 1] for i in ix.tolist()])
    return x, y


_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def load_sentences(n: int = 256, min_words: int = 6, max_words: int = 40, seed: int = 0) -> list[str]:
    """``n`` distinct real English sentences from ``pydoc_data.topics``.

    Paragraphs of prose (not indented code, not reST markup lines) are split
    into sentences; those with ``min_words``..``max_words`` words are kept,
    de-duplicated, sorted, and ``n`` are drawn with a seeded RNG.
    """
    if n < 1:
        raise DataError(f"load_sentences: n must be >= 1, got {n}")
    pool = set()
    for text in _topics().values():
        for para in text.split("\n\n"):
            lines = para.split("\n")
            if any(l.startswith(" ") for l in lines) or any(c in para for c in ("***", "===", "---", ">>>", "::")):
                continue
            para = " ".join(l.strip() for l in lines)
            for s in _SENT_SPLIT.split(para):
                w = s.split()
                if min_words <= len(w) <= max_words and s[:1].isupper() and s.endswith("."):
                    pool.add(" ".join(w))
    pool = sorted(pool)
    if n > len(pool):
        raise DataError(f"load_sentences: only {len(pool)} sentences qualify, asked for {n}")
    rng = random.Random(seed)
    return rng.sample(pool, n)
