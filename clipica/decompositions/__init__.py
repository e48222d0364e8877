"""Decompositions of embedding matrices behind one contract, :class:`LinearDecomposition`.

>>> from clipica.decompositions import make_decomposition, load_decomposition
>>> dec = make_decomposition("ica", 16, random_state=0).fit(X)   # or "pca", "random_rotation", "identity"
>>> codes = dec.transform(X); dec.save("runs/ica16"); dec = load_decomposition("runs/ica16")

:mod:`clipica.decompositions.stability` (``stability``, ``sweep_k``, ``choose_k``) measures
how reproducible each component is, for any of them; ``sweep``/``sweep_k``/``choose_k`` are
re-exported here (the function ``stability`` is not: it would hide its module's name).
"""

from clipica.decompositions.base import LinearDecomposition
from clipica.decompositions.baselines import Identity, RandomRotation
from clipica.decompositions.ica import ICA
from clipica.decompositions.pca import PCA
from clipica.decompositions.registry import (
    REGISTRY,
    decomposition_class,
    load_decomposition,
    make_decomposition,
)
from clipica.decompositions.stability import (
    StabilityResult,
    StabilitySweep,
    choose_k,
    sweep,
    sweep_k,
)

__all__ = [
    "ICA",
    "PCA",
    "REGISTRY",
    "Identity",
    "LinearDecomposition",
    "RandomRotation",
    "StabilityResult",
    "StabilitySweep",
    "choose_k",
    "decomposition_class",
    "load_decomposition",
    "make_decomposition",
    "sweep",
    "sweep_k",
]
