"""Retrieval and image views of a traversal: nearest dataset rows to each edited
embedding (cosine similarity), and the component decoder's pixels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from clipica._linalg import unit_rows
from clipica.errors import InputError, StoreError
from clipica.intervene.edit import Traversal, _as_matrix


def retrieve_neighbours(
    queries: Any, bank: Any, *, k: int = 1, exclude: Any = None, chunk: int = 16384
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ``bank`` rows to each query by cosine similarity.

    Parameters
    ----------
    queries : array (M, D).
    bank : array (P, D) -- e.g. the store's embeddings (memmap is streamed in chunks).
    k : neighbours per query.
    exclude : array (M,) of int, optional -- one bank index per query never to
        return (the query's own source row); -1 means none.

    Returns
    -------
    indices : int64 array (M, k), best first; similarities : float32 array (M, k).
    """
    Q = unit_rows(queries, np.float32)
    M, D = Q.shape
    P = len(bank)
    if k < 1 or k > P - (1 if exclude is not None else 0):
        raise InputError(
            f"k must be between 1 and the number of candidate rows, got k={k} with {P} rows"
        )
    excl = None if exclude is None else np.asarray(exclude, dtype=np.int64).reshape(-1)
    if excl is not None and excl.shape[0] != M:
        raise InputError(f"exclude has {excl.shape[0]} entries for {M} queries")
    best_s = np.full((M, 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((M, 0), dtype=np.int64)
    from clipica._linalg import row_chunks

    for start, block in row_chunks(bank, chunk):  # memory: one chunk, whatever P
        B = unit_rows(_as_matrix(block, D, "bank"), np.float32)
        sims = Q @ B.T  # (M, b)
        if excl is not None:
            hit = (excl >= start) & (excl < start + len(B))
            sims[np.nonzero(hit)[0], excl[hit] - start] = -np.inf
        if sims.shape[1] > k:  # the chunk's k best only (a partition, not a sort of the chunk)
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            idx = part + start
            sims = np.take_along_axis(sims, part, 1)
        else:
            idx = np.broadcast_to(np.arange(start, start + len(B)), sims.shape)
        all_s = np.concatenate([best_s, sims], axis=1)
        all_i = np.concatenate([best_i, idx], axis=1)
        # best first; equal similarities: the lower row index first
        take = np.lexsort((all_i, -all_s), axis=1)[:, :k] if all_s.size else all_i
        best_s = np.take_along_axis(all_s, take, 1)
        best_i = np.take_along_axis(all_i, take, 1)
    return best_i, best_s


def load_images(store: Any, indices: Any, size: int) -> np.ndarray:
    """Store rows ``indices`` (any shape, flattened) -> float32 (n, size, size, 3) in [0, 1]."""
    try:
        return store.image_array(indices, size)
    except StoreError as exc:
        raise StoreError(
            f"{exc}; interventions need the dataset images: check that the data source recorded "
            "in the manifest is still readable"
        ) from exc


@dataclass
class RetrievalTraversal:
    """Nearest dataset rows to each edited embedding.

    indices : int (A, N, k) store row indices (source row excluded);
    similarity : (A, N, k) cosine similarities; images : float32
    (N, A, size, size, 3) in [0, 1] of the first neighbour (grid layout:
    rows = source samples, columns = alphas), or None when not loaded.
    """

    alphas: np.ndarray
    rows: np.ndarray | None
    indices: np.ndarray
    similarity: np.ndarray
    images: np.ndarray | None = None
    sources: np.ndarray | None = None


def retrieval_traversal(
    traversal: Traversal,
    bank: Any,
    *,
    store: Any = None,
    k: int = 1,
    image_size: int = 64,
) -> RetrievalTraversal:
    """For each edited embedding, the nearest ``bank`` rows by cosine similarity.

    ``bank`` is the (P, D) matrix of dataset embeddings (``store.image``);
    each edited row's own source row (``traversal.rows``) is excluded. With a
    ``store`` the first neighbour's images are loaded and drawn as a grid
    (rows = source samples, columns = alphas); :func:`clipica.viz.traversal.plot_views`
    draws it.
    """
    A_, N, D = traversal.embeddings.shape
    excl = None
    if traversal.rows is not None:
        excl = np.tile(traversal.rows, A_)
    idx, sim = retrieve_neighbours(traversal.embeddings.reshape(A_ * N, D), bank, k=k, exclude=excl)
    idx = idx.reshape(A_, N, k)
    sim = sim.reshape(A_, N, k)
    res = RetrievalTraversal(
        alphas=traversal.alphas, rows=traversal.rows, indices=idx, similarity=sim
    )
    if store is not None:
        flat = idx[:, :, 0].T.reshape(-1)  # (N*A,) row-major in the (N, A) grid
        res.images = load_images(store, flat, image_size).reshape(N, A_, image_size, image_size, 3)
        if traversal.rows is not None:
            res.sources = load_images(store, traversal.rows, image_size)
    return res


@dataclass
class DecodedTraversal:
    """Edited components decoded to pixels: images (N, A, H, W, 3) float32 in [0, 1]."""

    alphas: np.ndarray
    images: np.ndarray


def decoded_traversal(traversal: Traversal, decoder: Any) -> DecodedTraversal:
    """Decode the edited sources with a :class:`clipica.intervene.decoder.ComponentDecoder`.

    Grid layout as in :func:`retrieval_traversal`: rows = source samples,
    columns = alphas. Pixels are real values in [0, 1] (sigmoid output), never clipped.
    """
    A_, N, K = traversal.sources.shape
    imgs = decoder.decode(traversal.sources.transpose(1, 0, 2).reshape(N * A_, K))
    imgs = imgs.reshape(N, A_, *imgs.shape[1:])
    res = DecodedTraversal(alphas=traversal.alphas, images=imgs)
    return res
