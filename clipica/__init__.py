"""clipica: find and measure disentangled factors inside pretrained CLIP models.

``import clipica`` is light: the heavy parts (torch, open_clip, transformers,
matplotlib) load when a function that needs them is first used.

>>> import clipica
>>> store = clipica.extract(model="tiny-faces", data="synthetic-faces:2000", out="runs/s")
>>> ica = clipica.ICA(n_components=16, random_state=0).fit(store.image)
"""

from __future__ import annotations

from clipica import _moved
from clipica._lazy import lazy_exports
from clipica._version import __version__
from clipica.errors import (
    ArtifactError,
    ArtifactExistsError,
    BadImageError,
    ClipicaError,
    DataSourceError,
    DependencyError,
    InputError,
    ModelNotFoundError,
    StaleArtifactError,
    StoreError,
    StoreLockedError,
    StoreMismatchError,
)

# public name -> module that defines it; resolved on first access (PEP 562)
_LAZY = {
    "EmbeddingStore": "clipica.embeddings.store",
    "extract": "clipica.embeddings.extract",
    "merge": "clipica.embeddings.extract",
    "load_encoder": "clipica.models",
    "open_source": "clipica.data",
    "ICA": "clipica.decompositions.ica",
    "PCA": "clipica.decompositions.pca",
    "RandomRotation": "clipica.decompositions.baselines",
    "Identity": "clipica.decompositions.baselines",
    "LinearDecomposition": "clipica.decompositions.base",
    "make_decomposition": "clipica.decompositions.registry",
    "load_decomposition": "clipica.decompositions.registry",
    "decompositions": "clipica.decompositions",
    "stability": "module:clipica.decompositions.stability",
    "metrics": "clipica.metrics",
    "probe": "clipica.probes",
    "match": "clipica.match",
    "ProbeReport": "clipica.probes",
    "intervene": "clipica.intervene",
    "naming": "clipica.naming",
    "simulate": "clipica.simulate",
    "viz": "clipica.viz",
    "report": "clipica.report",
}

__all__ = [
    "__version__",
    "ArtifactError",
    "ArtifactExistsError",
    "BadImageError",
    "ClipicaError",
    "DataSourceError",
    "DependencyError",
    "InputError",
    "ModelNotFoundError",
    "StaleArtifactError",
    "StoreError",
    "StoreLockedError",
    "StoreMismatchError",
    *_LAZY,
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)

_moved.install()  # the 0.1 module paths, with a DeprecationWarning each
