"""A saved decomposition folder, read without its class (and without scikit-learn).

The folder format is :mod:`clipica.decompositions.base`'s (``arrays.safetensors`` + a tagged
JSON). :func:`read_folder` checks it; :func:`clipica.decompositions.registry.load_contract` returns a
:class:`SavedDecomposition`: the contract arrays (``mean_``, ``components_``, ``mixing_``),
``blocks_``, ``kind`` and the same ``fingerprint()`` as the fitted class. Commands that only
read the contract (``clipica intervene``) use it: importing scikit-learn, which every
estimator class needs, costs more CPU time than the rest of a cached intervention.
:func:`clipica.decompositions.load_decomposition` returns the full estimator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipica.errors import ArtifactError

ARRAYS_FILE = "arrays.safetensors"
#: JSON file names a saved decomposition folder may hold (ICA keeps its historical name)
META_FILES = ("ica.json", "decomposition.json")


def _plain_blocks(blocks) -> list[list[int]] | None:
    return None if blocks is None else [[int(i) for i in b] for b in blocks]


def contract_fingerprint(mean, components, mixing, *, kind: str, blocks=None) -> str:
    """sha256 of the kind, the blocks and the contract arrays (float64): equal fingerprints
    transform and invert identically (``LinearDecomposition.fingerprint``)."""
    from clipica._format import content_hash

    arrays = {name: np.asarray(a, dtype=np.float64)
              for name, a in (("mean_", mean), ("components_", components), ("mixing_", mixing))}
    return content_hash(arrays, {"kind": kind, "blocks": _plain_blocks(blocks)})


def find_meta_file(path) -> Path:
    """The JSON file of a saved decomposition folder; ArtifactError if there is none."""
    path = Path(path)
    for name in META_FILES:
        if (path / name).is_file():
            return path / name
    raise ArtifactError(
        f"{path} is not a saved decomposition (expected {' or '.join(META_FILES)} and {ARRAYS_FILE} "
        "inside); write one with .save(path) or `clipica ica STORE -k K --out DIR`"
    )


def read_folder(path, cls=None) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and check a saved decomposition folder: ``(meta, arrays)``.

    With ``cls``, the format tag must be ``cls.format_tag``. Checks that every array
    the JSON names is present with the recorded shape, that the contract arrays have
    shapes (D,), (K, D), (D, K) for the recorded K and D, and that they are finite.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from clipica._format import read_json, untag

    path = Path(path)
    meta_path = find_meta_file(path) if cls is None else path / cls.meta_file
    if cls is not None and not meta_path.is_file():
        if cls.kind == "ica":
            raise ArtifactError(
                f"{path} is not a saved ICA (expected {cls.meta_file} and {ARRAYS_FILE} inside); "
                "write one with ICA.save or `clipica ica STORE -k K --out DIR`"
            )
        find_meta_file(path)  # the generic message when there is no JSON at all
        raise ArtifactError(f"{path} holds no {cls.meta_file}: it is not a saved {cls.__name__}")
    meta = read_json(meta_path)
    if cls is not None:
        untag(meta, cls.format_tag, source=str(meta_path))
    try:
        k, d = int(meta["n_components"]), int(meta["n_features"])
    except (KeyError, TypeError, ValueError):
        raise ArtifactError(f"{meta_path} lacks valid 'n_components'/'n_features'; was it hand-edited?") from None
    arrays_path = path / ARRAYS_FILE
    if not arrays_path.is_file():
        raise ArtifactError(f"{path} has {meta_path.name} but no {ARRAYS_FILE}; the folder is incomplete")
    try:
        arrays = load_file(str(arrays_path))
    except (SafetensorError, OSError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArtifactError(f"{arrays_path} is corrupt ({msg}); refit and save the decomposition again") from None
    info = meta.get("arrays") or {}
    names = info.get("names") or []
    shapes = info.get("shapes") or {}
    expected = {"mean": (d,), "components": (k, d), "mixing": (d, k)}
    for name in set(names) | set(expected):
        if name not in arrays:
            raise ArtifactError(f"{arrays_path} has no array {name!r} (its JSON lists {sorted(names)})")
    for name, arr in arrays.items():
        want = tuple(shapes[name]) if name in shapes else expected.get(name)
        if name in expected and want != expected[name]:
            raise ArtifactError(
                f"{meta_path} records shape {list(want)} for {name!r} but n_components={k}, "
                f"n_features={d} need {list(expected[name])}; was it hand-edited?"
            )
        if want is not None and tuple(arr.shape) != tuple(want):
            raise ArtifactError(
                f"{arrays_path}: array {name!r} has shape {list(arr.shape)} but {meta_path.name} "
                f"says {list(want)}; the files do not belong together"
            )
        if name in expected and not np.all(np.isfinite(arr)):
            raise ArtifactError(f"{arrays_path}: array {name!r} holds NaN or infinity; it is corrupt")
    return meta, arrays


class SavedDecomposition:
    """The contract of a saved decomposition, without its estimator class.

    Attributes: ``kind`` (registry name), ``mean_`` (D,), ``components_`` (K, D),
    ``mixing_`` (D, K), ``blocks_`` (list of index lists or None), ``n_components_``,
    ``path`` and ``meta`` (the folder's JSON). ``fingerprint()`` equals the fitted
    class's. It has no ``transform``: an encoder that is not linear (sparse coding, SAEs)
    needs its class (:func:`clipica.decompositions.load_decomposition`).
    """

    def __init__(self, kind: str, arrays: dict, blocks, path: Path, meta: dict) -> None:
        self.kind = kind
        self.mean_ = arrays["mean"]
        self.components_ = arrays["components"]
        self.mixing_ = arrays["mixing"]
        self.blocks_ = None if blocks is None else [[int(i) for i in b] for b in blocks]
        self.path = path
        self.meta = meta

    @property
    def n_components_(self) -> int:
        return int(self.components_.shape[0])

    def fingerprint(self) -> str:
        return contract_fingerprint(self.mean_, self.components_, self.mixing_, kind=self.kind,
                                    blocks=self.blocks_)

    def __repr__(self) -> str:
        K, D = self.components_.shape
        return f"SavedDecomposition(kind={self.kind!r}, n_components={K}, n_features={D}, path={str(self.path)!r})"
