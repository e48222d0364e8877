"""Decompositions by name, and loading a saved one whatever its class.

``make_decomposition("pca", 16)`` builds an unfitted estimator; ``load_decomposition(path)``
reads the folder's format tag and returns the right fitted class; ``load_contract(path)`` the
contract arrays alone, without the class (:func:`saved_kind` is the one kind check of both). A new decomposition
registers itself by adding an entry to :data:`REGISTRY` (name -> ``"module:Class"``); the
format tag's kind must equal the name.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from clipica.decompositions.saved import SavedDecomposition, find_meta_file, read_folder
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


def saved_kind(path) -> str:
    """The registered kind of the saved decomposition in folder ``path`` (from its format tag).

    The one kind check of a saved folder (:func:`load_decomposition` and :func:`load_contract`).
    Raises :class:`clipica.errors.ArtifactError` (one line) when the folder holds none, its tag
    is missing or malformed, or names a kind this clipica does not know.
    """
    from clipica._format import parse_tag, read_json

    meta_path = find_meta_file(path)
    tag = read_json(meta_path).get("format")
    try:
        kind, _ = parse_tag(tag)
    except ValueError:
        raise ArtifactError(f"{meta_path} has no valid format tag (found {tag!r}); was it hand-edited?") from None
    if kind not in REGISTRY:
        raise ArtifactError(
            f"{meta_path} holds a {kind!r} decomposition, which this clipica does not know "
            f"(known: {', '.join(sorted(REGISTRY))})"
        )
    return kind


def load_decomposition(path):
    """Load the saved decomposition in folder ``path``, whatever its class.

    Raises :class:`clipica.errors.ArtifactError` (one line) when the folder holds none,
    its tag names an unknown kind, or its files are corrupt.
    """
    return decomposition_class(saved_kind(path)).load(Path(path))


def load_contract(path) -> SavedDecomposition:
    """The contract arrays of the saved decomposition in folder ``path``, whatever its kind,
    checked as :func:`~clipica.decompositions.saved.read_folder` checks them (what
    :func:`load_decomposition` accepts, this accepts) without importing its class (nor
    scikit-learn); :class:`clipica.errors.ArtifactError` (one line) for a folder that holds
    none or an unknown kind."""
    kind = saved_kind(path)
    meta, arrays = read_folder(path)
    return SavedDecomposition(kind, arrays, meta.get("blocks"), Path(path), meta)
