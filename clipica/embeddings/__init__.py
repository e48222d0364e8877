"""Embeddings on disk: the resumable :class:`EmbeddingStore` and the extraction loop.

- :mod:`clipica.embeddings.store`: :class:`EmbeddingStore` (memory-mapped float32 matrices, the
  row table, the manifest) and :class:`StoreWriter` (the crash protocol), one writer at a time
  (:class:`WriterLock`, :mod:`clipica.embeddings._lock`, also the run folder's lock);
- :mod:`clipica.embeddings.extract`: :func:`extract` (dataset -> CLIP -> store, resumable,
  sharded) and :func:`merge`;
- :mod:`clipica.embeddings.batches`: one batch, shared by both engines;
- :mod:`clipica.embeddings.ray_engine`: :class:`RayEngine`, extraction on a Ray cluster
  (``pip install 'clipica[ray]'``).
"""

from __future__ import annotations

from clipica._lazy import lazy_exports

_LAZY = {
    "EmbeddingStore": "clipica.embeddings.store",
    "StoreWriter": "clipica.embeddings.store",
    "extract": "clipica.embeddings.extract",
    "merge": "clipica.embeddings.extract",
    "RayEngine": "clipica.embeddings.ray_engine",
    "WriterLock": "clipica.embeddings._lock",
}
__all__ = list(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
