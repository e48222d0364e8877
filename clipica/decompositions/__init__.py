"""Decompositions of embedding matrices behind one contract, :class:`LinearDecomposition`.

>>> from clipica.decompositions import make_decomposition, load_decomposition
>>> dec = make_decomposition("ica", 16, random_state=0).fit(X)   # or "pca", "random_rotation", "identity"
>>> codes = dec.transform(X); dec.save("runs/ica16"); dec = load_decomposition("runs/ica16")

:mod:`clipica.decompositions.stability` (``stability``, ``sweep_k``, ``choose_k``) measures
how reproducible each component is, for any of them; ``sweep``/``sweep_k``/``choose_k`` are
re-exported here (the function ``stability`` is not: it would hide its module's name).
"""

from __future__ import annotations

from clipica._lazy import lazy_exports

# name -> module that defines it, imported on first access (PEP 562): the estimator classes
# need scikit-learn, which the folder readers (clipica.decompositions.saved) do not
_LAZY = {
    "ICA": "clipica.decompositions.ica",
    "PCA": "clipica.decompositions.pca",
    "Identity": "clipica.decompositions.baselines",
    "RandomRotation": "clipica.decompositions.baselines",
    "LinearDecomposition": "clipica.decompositions.base",
    "REGISTRY": "clipica.decompositions.registry",
    "decomposition_class": "clipica.decompositions.registry",
    "load_decomposition": "clipica.decompositions.registry",
    "make_decomposition": "clipica.decompositions.registry",
    "SavedDecomposition": "clipica.decompositions.saved",
    "load_contract": "clipica.decompositions.registry",
    "GaussianityTest": "clipica.decompositions.gaussianity",
    "component_significance": "clipica.decompositions.gaussianity",
    "StabilityResult": "clipica.decompositions.stability",
    "StabilitySweep": "clipica.decompositions.stability",
    "choose_k": "clipica.decompositions.stability",
    "sweep": "clipica.decompositions.stability",
    "sweep_k": "clipica.decompositions.stability",
}


__all__ = [
    "GaussianityTest",
    "ICA",
    "PCA",
    "REGISTRY",
    "Identity",
    "LinearDecomposition",
    "RandomRotation",
    "SavedDecomposition",
    "StabilityResult",
    "StabilitySweep",
    "choose_k",
    "component_significance",
    "decomposition_class",
    "load_contract",
    "load_decomposition",
    "make_decomposition",
    "sweep",
    "sweep_k",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
