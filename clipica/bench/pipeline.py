"""``clipica bench pipeline``: the analysis stages on a planted store of CelebA's size.

The store (:func:`write_planted_store`): ``n`` rows of ``d``-dimensional float32 "image
embeddings" built from ``k`` independent unit-variance Laplace codes and ``attributes``
binary labels planted on them exactly as ``clipica bench probe`` plants them
(:func:`clipica.bench.probe.make_data`: each attribute a logistic function of 1-3
codes, prevalence 5-50 %), mixed into ``d`` dimensions by a seeded random matrix
(entries N(0, 1/d), scaled so the codes carry 80 % of the variance) plus isotropic
Gaussian noise (the other 20 %). Rows get no split column, so the probe draws its own
seeded held-out split, and no captions. Defaults: CelebA's 202,599 rows, ViT-B/32's 512
dimensions, K = 64, 40 attributes.
"""

from __future__ import annotations

import numpy as np

HELP = "time every analysis stage on a planted store of CelebA's size (202,599 x 512, K=64, 40 attributes)"
STORE_KEY = {"model": "planted", "data": "clipica bench pipeline"}


def attribute_names(attributes: int) -> list[str]:
    return [f"attr_{a:02d}" for a in range(attributes)]


def write_planted_store(
    path,
    n: int = 202_599,
    d: int = 512,
    k: int = 64,
    attributes: int = 40,
    seed: int = 0,
    chunk: int = 50_000,
):
    """Write the planted store (module docstring) to ``path``; returns the open EmbeddingStore.

    Memory: the codes and labels (n x (k + attributes) float64) plus one chunk of
    ``chunk x d`` float32 rows; the embedding matrix goes to disk chunk by chunk.
    """
    from clipica.bench.probe import make_data
    from clipica.store import SCHEMA_VERSION, EmbeddingStore, StoreWriter

    codes, labels = make_data(n, k, attributes, seed)
    rng = np.random.default_rng(seed + 1)
    mixing = (rng.standard_normal((k, d)) / np.sqrt(d)).astype(np.float32)
    # codes have unit variance; rows of `mixing` have squared norm ~1: the codes add ~k/d
    # variance per dimension, the noise the rest of an 80/20 split
    noise_sd = float(np.sqrt(0.25 * k / d))
    names = attribute_names(attributes)
    w = StoreWriter(path, STORE_KEY, overwrite=True)
    try:
        w.begin(
            {
                "schema_version": SCHEMA_VERSION,
                "key": STORE_KEY,
                "embed_dim": d,
                "has_text": False,
                "label_columns": names,
                "model": {"spec": "planted"},
                "data": {"spec": f"planted:{n}x{d}?k={k}&attributes={attributes}&seed={seed}"},
            },
            0,
        )
        for a in range(0, n, chunk):
            b = min(a + chunk, n)
            X = codes[a:b].astype(np.float32) @ mixing
            X += noise_sd * rng.standard_normal(X.shape, dtype=np.float32)
            # plain Python floats once per chunk: a dict per row is the slow part at 200k rows
            rows = [
                {"id": f"p{i}", "source_index": i, "caption": None, "split": None,
                 "caption_truncated": False, **dict(zip(names, values, strict=True))}
                for i, values in zip(range(a, b), labels[a:b].tolist(), strict=True)
            ]
            w.commit(X, None, rows, errors=[], next_position=b)
        w.finalize()
    finally:
        w.close()
    return EmbeddingStore.open(path)
