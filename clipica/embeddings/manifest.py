"""Questions about a store's manifest, answered once: which model produced it, from which data,
and were its rows L2-normalised.

Stores written by clipica record ``"model"`` as a dict (``spec``, ``pretrained``, ``preprocess``,
``encoder``) and ``"normalize"`` as a bool; hand-made or older manifests may hold a bare model
spec string. Every reader (pipeline, naming, report, few-shot) asks here instead of repeating
the checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def manifest_of(store_or_manifest: Any) -> Mapping[str, Any]:
    """The manifest dict of an :class:`~clipica.embeddings.store.EmbeddingStore` (or of anything
    with a ``manifest`` attribute), or the mapping itself; ``{}`` when there is none."""
    if isinstance(store_or_manifest, Mapping):
        return store_or_manifest
    return getattr(store_or_manifest, "manifest", None) or {}


def model_entry(store_or_manifest: Any) -> dict[str, Any]:
    """The model that produced the store as a dict with at least ``spec`` (None when unknown)
    and ``pretrained``; a bare spec string becomes ``{"spec": ..., "pretrained": None}``."""
    model = manifest_of(store_or_manifest).get("model")
    if isinstance(model, Mapping):
        return {"pretrained": None, **model}
    return {"spec": model, "pretrained": None}


def data_spec(store_or_manifest: Any) -> str | None:
    """The ``--data`` spec the store was extracted from (None when unknown)."""
    data = manifest_of(store_or_manifest).get("data")
    return data.get("spec") if isinstance(data, Mapping) else data


def normalizes(store_or_manifest: Any) -> bool:
    """Whether the store's rows were L2-normalised at extraction (``manifest["normalize"]``), so
    that text embeddings compared with them must be too."""
    return bool(manifest_of(store_or_manifest).get("normalize", False))
