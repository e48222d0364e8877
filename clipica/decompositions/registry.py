"""Decompositions by name, and loading a saved one whatever its class.

``make_decomposition("pca", 16)`` builds an unfitted estimator; ``load_decomposition(path)``
reads the folder's format tag and returns the right fitted class. A new decomposition
registers itself by adding an entry to :data:`REGISTRY` (name -> ``"module:Class"``); the
format tag's kind must equal the name.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from clipica.errors import ArtifactError, InputError

#: name -> "module:Class"; the class's ``kind`` equals the name
REGISTRY: dict[str, str] = {
    "ica": "clipica.decompositions.ica:ICA",
    "pca": "clipica.decompositions.pca:PCA",
    "random_rotation": "clipica.decompositions.baselines:RandomRotation",
    "identity": "clipica.decompositions.baselines:Identity",
    "varimax": "clipica.decompositions.factor_analysis:Varimax",
    "dict": "clipica.decompositions.dictionary:DictionaryLearning",
    "semi_nmf": "clipica.decompositions.dictionary:SemiNMF",
    "topk_sae": "clipica.decompositions.sae:TopKSAE",
    "batchtopk_sae": "clipica.decompositions.sae:BatchTopKSAE",
}
#: other spellings accepted by :func:`make_decomposition`
ALIASES = {"raw": "identity", "random-rotation": "random_rotation", "random": "random_rotation",
           "fa": "varimax", "dictionary": "dict", "semi-nmf": "semi_nmf", "sae": "topk_sae",
           "topk": "topk_sae", "batchtopk": "batchtopk_sae"}


def decomposition_class(name: str):
    """The class registered under ``name`` (or an alias); InputError listing the names."""
    key = ALIASES.get(name, name)
    target = REGISTRY.get(key)
    if target is None:
        raise InputError(
            f"unknown decomposition {name!r}; choose one of {', '.join(sorted(REGISTRY))} "
            f"(aliases: {', '.join(sorted(ALIASES))})"
        )
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def make_decomposition(name: str, n_components: int | None = None, **params):
    """An unfitted decomposition: ``make_decomposition("ica", 16, random_state=0)``.

    Keyword arguments go to the class; ``random_state`` is dropped for classes without
    randomness (PCA, Identity) so one call site can build any of them.
    """
    cls = decomposition_class(name)
    known = cls._get_param_names()
    if "random_state" in params and "random_state" not in known:
        params.pop("random_state")
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InputError(
            f"{cls.__name__} has no parameter(s) {', '.join(unknown)}; its parameters are "
            f"{', '.join(known)}"
        )
    return cls(n_components=n_components, **params)


def load_decomposition(path):
    """Load the saved decomposition in folder ``path``, whatever its class.

    Raises :class:`clipica.errors.ArtifactError` (one line) when the folder holds none,
    its tag names an unknown kind, or its files are corrupt.
    """
    from clipica._format import parse_tag, read_json
    from clipica.decompositions.saved import find_meta_file

    meta_path = find_meta_file(path)
    meta = read_json(meta_path)
    tag = meta.get("format")
    try:
        kind, _ = parse_tag(tag)
    except ValueError:
        raise ArtifactError(f"{meta_path} has no valid format tag (found {tag!r}); was it hand-edited?") from None
    if kind not in REGISTRY:
        raise ArtifactError(
            f"{meta_path} holds a {kind!r} decomposition, which this clipica does not know "
            f"(known: {', '.join(sorted(REGISTRY))})"
        )
    return decomposition_class(kind).load(Path(path))
