"""``LinearDecomposition``: the one contract every decomposition of an embedding matrix meets.

A fitted decomposition of data ``X`` (n_samples, n_features = D) into K codes has

- ``n_components_`` : int, K;
- ``mean_`` : ndarray of shape (D,);
- ``components_`` : ndarray of shape (K, D), the encoder: ``codes = (X - mean_) @ components_.T``;
- ``mixing_`` : ndarray of shape (D, K), the decoder: ``X ≈ codes @ mixing_.T + mean_``;
- ``blocks_`` : list of lists of component indices, or None: groups of dependent codes
  (independent subspaces); None means every code is its own block;

and the verbs ``fit(X)``, ``transform(X)``, ``fit_transform(X)``, ``inverse_transform(S)``,
``save(path)`` / ``load(path)`` and ``fingerprint()``. Probes, naming, interventions, the
decoder, the report and stability analysis consume only this contract.

Persistence: a folder holding ``arrays.safetensors`` (named float64 arrays) and a JSON file
(``ica.json`` for ICA, ``decomposition.json`` for the others) that starts with the format
tag (``clipica.<kind>/<version>``), the decomposition's kind, its parameters, the array
names and shapes, and its fingerprint. The folder is written as a unit (a temp folder
beside it, then a rename): a reader never sees half of one. ``load`` checks the tag, the
JSON and every array's shape and raises :class:`clipica.errors.ArtifactError` (one line) on
a corrupt or hand-edited file.
"""

from __future__ import annotations

import json
import numbers
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from clipica.decompositions.saved import (  # noqa: F401  (re-exported: the folder readers)
    ARRAYS_FILE,
    META_FILES,
    _plain_blocks,
    contract_fingerprint,
    find_meta_file,
    read_folder,
)
from clipica.errors import ArtifactError, ArtifactExistsError, InputError

#: rows per chunk in transform / inverse_transform
_CHUNK = 65_536

#: kinds of parameter constraint in ``_parameter_constraints`` (scikit-learn's idea, small):
#: ``"positive_int"`` (an int >= 1, not a bool), ``"nonnegative_int"``, ``"positive_real"`` (a
#: finite number > 0), ``None`` (the value None) or a tuple of allowed values
_CONSTRAINT_WORDS = {"positive_int": "a positive integer", "nonnegative_int": "an integer >= 0",
                     "positive_real": "a positive finite number", None: "None"}


def _meets(value, constraint) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, tuple):
        return isinstance(value, str | int | float | type(None)) and value in constraint
    if isinstance(value, bool):
        return False
    if constraint == "positive_int":
        return isinstance(value, numbers.Integral) and value >= 1
    if constraint == "nonnegative_int":
        return isinstance(value, numbers.Integral) and value >= 0
    if constraint == "positive_real":
        return isinstance(value, numbers.Real) and bool(np.isfinite(value)) and value > 0
    raise TypeError(f"unknown parameter constraint {constraint!r}")


def validate_params(est, constraints: dict) -> None:
    """Check ``est``'s parameters against ``constraints`` (name -> list of allowed kinds, see
    :data:`_CONSTRAINT_WORDS`); :class:`clipica.errors.InputError` naming the parameter, what
    it may be and what it was."""
    for name, allowed in constraints.items():
        value = getattr(est, name)
        if any(_meets(value, c) for c in allowed):
            continue
        words = [f"one of {c}" if isinstance(c, tuple) else _CONSTRAINT_WORDS[c] for c in allowed]
        raise InputError(f"{name} must be {' or '.join(words)}; got {name}={value!r}.")


class LinearDecomposition(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class of clipica's decompositions (see the module docstring for the contract).

    Subclasses set ``kind`` (registry name), ``format_tag``, ``meta_file``, the tuple
    ``_array_names`` of fitted arrays to persist, and implement ``_fit(X, k)`` which sets
    ``mean_``, ``components_`` and ``mixing_`` (and anything else they keep).
    """

    kind: ClassVar[str] = ""
    format_tag: ClassVar[str] = ""
    meta_file: ClassVar[str] = "decomposition.json"
    _array_names: ClassVar[tuple[str, ...]] = ("mean_", "components_", "mixing_")
    #: fitted attributes that are not arrays, persisted in the JSON as ``state``
    _state_names: ClassVar[tuple[str, ...]] = ()
    #: parameter name -> allowed kinds, checked by ``fit`` (:func:`validate_params`)
    _parameter_constraints: ClassVar[dict] = {"n_components": ["positive_int", None]}

    #: groups of dependent codes; None: every code is its own block
    blocks_: list[list[int]] | None = None
    #: True: ``transform(X) == (X - mean_) @ components_.T``. False for encoders that solve
    #: an optimisation or apply a nonlinearity (sparse coding, SAEs); ``components_`` is
    #: then the class's documented *linear read-out* (naming, interventions use it)
    linear_encoder: ClassVar[bool] = True
    #: True: ``components_ @ mixing_ = I`` (decoding then encoding returns the codes).
    #: False e.g. for factor analysis, whose posterior-mean codes shrink towards 0
    exact_inverse: ClassVar[bool] = True

    # ------------------------------------------------------------------ the contract
    @property
    def n_components_(self) -> int:
        """K, the number of codes."""
        check_is_fitted(self)
        return int(self.components_.shape[0])

    def fit(self, X, y=None):
        """Fit on ``X`` of shape (n_samples, n_features); returns ``self``.

        Raises :class:`clipica.errors.InputError` for non-finite or 1-D input,
        ``n_components`` above n_features, n_samples or the numerical rank of ``X``, and
        unknown options.
        """
        self._check_params()
        X = self._validate_X(X, reset=True)
        n, d = X.shape
        k = self._check_n_components(n, d)
        from clipica.decompositions._whitening import check_finite

        check_finite(X)
        self._fit(X, k)
        return self

    def _fit(self, X, k: int | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def transform(self, X):
        """Codes of ``X`` (n_samples, n_features) -> (n_samples, n_components), X's dtype."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        dt = X.dtype
        U = self.components_.T.astype(dt)
        m = self.mean_.astype(dt)
        out = np.empty((X.shape[0], U.shape[1]), dtype=dt)
        for a in range(0, X.shape[0], _CHUNK):
            out[a : a + _CHUNK] = (np.asarray(X[a : a + _CHUNK]) - m) @ U
        return out

    def fit_transform(self, X, y=None):
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, S):
        """Codes (n_samples, n_components) -> data (n_samples, n_features), S's dtype.

        Returns ``S @ mixing_.T + mean_``: ``X`` projected on the subspace the codes span
        when ``S = transform(X)`` (exactly ``X`` when K = D).
        """
        check_is_fitted(self)
        from sklearn.utils import check_array

        try:
            S = check_array(S, dtype=[np.float64, np.float32])
        except ValueError as exc:
            raise InputError(f"{exc} (inverse_transform expects (n_samples, n_components).)") from exc
        k = self.components_.shape[0]
        if S.shape[1] != k:
            raise InputError(
                f"S has {S.shape[1]} columns but this {type(self).__name__} has n_components={k}."
            )
        dt = S.dtype
        return S @ self.mixing_.T.astype(dt) + self.mean_.astype(dt)

    def fingerprint(self) -> str:
        """sha256 of the kind, the blocks and the contract arrays (float64): equal
        fingerprints transform and invert identically."""
        check_is_fitted(self)
        return contract_fingerprint(self.mean_, self.components_, self.mixing_, kind=self.kind,
                                    blocks=self.blocks_)

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        validate_params(self, self._parameter_constraints)

    def _check_n_components(self, n: int, d: int) -> int | None:
        k = getattr(self, "n_components", None)
        if k is not None and k > d:
            raise InputError(f"n_components={k} is larger than n_features={d}; choose n_components <= {d}.")
        if k is not None and k > n:
            raise InputError(
                f"n_components={k} is larger than n_samples={n}; {type(self).__name__} needs at "
                "least as many rows as components."
            )
        return k

    def _validate_X(self, X, *, reset: bool):
        if getattr(X, "ndim", None) == 1:
            raise InputError(
                f"X must be 2-D (n_samples, n_features); got a 1-D array of shape {X.shape}. "
                "Reshape your data: X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample."
            )
        try:
            return validate_data(
                self,
                X,
                reset=reset,
                dtype=[np.float64, np.float32],
                ensure_min_samples=2 if reset else 1,
                ensure_all_finite=not reset,  # fit checks in chunks (memmaps) with row/column
            )
        except ValueError as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(
                f"{exc} ({type(self).__name__} expects X of shape (n_samples, n_features), finite values.)"
            ) from exc

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ------------------------------------------------------------------ persistence
    def _metadata(self, extra: dict | None) -> dict:
        """JSON fields specific to the subclass (the base adds the common ones)."""
        meta: dict[str, Any] = {"params": _json_params(self.get_params())}
        state = {name.rstrip("_"): _plain(getattr(self, name)) for name in self._state_names
                 if hasattr(self, name)}
        if state:
            meta["state"] = state
        if extra:
            meta["extra"] = extra
        return meta

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {name.rstrip("_"): np.ascontiguousarray(getattr(self, name), dtype=np.float64)
                  for name in self._array_names}
        return arrays

    def save(self, path, overwrite: bool = False, extra: dict | None = None,
             fingerprints: dict[str, str] | None = None) -> Path:
        """Write the folder ``path`` (``arrays.safetensors`` + the JSON) as a unit.

        ``extra`` adds caller fields (e.g. the store path); ``fingerprints`` records the
        inputs (e.g. ``{"store": ...}``) in the envelope. Refuses an existing non-empty
        folder unless ``overwrite=True``, and even then one that holds no saved
        decomposition (:class:`clipica.errors.ArtifactExistsError`). With ``overwrite``
        the old folder is replaced whole, so files derived from the old decomposition
        (names, decoder) do not survive next to the new one.
        """
        check_is_fitted(self)
        from safetensors.numpy import save as st_save

        from clipica._atomic import nan_to_none
        from clipica._format import FINGERPRINTS_KEY, FORMAT_KEY

        arrays = self._arrays()
        meta = self._metadata(extra)
        common = {
            FORMAT_KEY: self.format_tag,
            FINGERPRINTS_KEY: dict(fingerprints or {}),
            "kind": self.kind,
            "n_components": int(self.components_.shape[0]),
            "n_features": int(self.components_.shape[1]),
            "blocks": _plain_blocks(self.blocks_),
            "fingerprint": self.fingerprint(),
        }
        meta = {**common, **{k: v for k, v in meta.items() if k not in common}}
        meta["arrays"] = {"file": ARRAYS_FILE, "names": list(arrays),
                          "shapes": {k: list(v.shape) for k, v in arrays.items()}}
        text = json.dumps(nan_to_none(meta), indent=2) + "\n"
        write_folder(path, {ARRAYS_FILE: st_save(arrays), self.meta_file: text.encode("utf-8")},
                     overwrite=overwrite)
        return Path(path)

    @classmethod
    def load(cls, path) -> LinearDecomposition:
        """Read a folder written by :meth:`save`; returns a fitted estimator.

        Raises :class:`clipica.errors.ArtifactError` (one line) when the folder is not a
        saved decomposition of this class, or its JSON or arrays are corrupt or disagree.
        """
        meta, arrays = read_folder(path, cls)
        est = cls._restore(meta, arrays)
        est.n_features_in_ = int(meta["n_features"])
        blocks = meta.get("blocks")
        if blocks is not None:
            est.blocks_ = [[int(i) for i in b] for b in blocks]
        return est

    @classmethod
    def _restore(cls, meta: dict, arrays: dict[str, np.ndarray]) -> LinearDecomposition:
        """Build a fitted estimator from the checked JSON and arrays."""
        params = dict(meta.get("params") or {})
        if isinstance(params.get("random_state"), str):
            params["random_state"] = None
        try:
            est = cls(**params)
        except TypeError as exc:
            raise ArtifactError(f"saved {cls.kind} has parameters this clipica does not know: {exc}") from None
        for name in cls._array_names:
            setattr(est, name, arrays[name.rstrip("_")])
        for name, value in (meta.get("state") or {}).items():
            if f"{name}_" in cls._state_names:
                setattr(est, f"{name}_", value)
        return est


# ---------------------------------------------------------------------- folder I/O


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _json_params(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        if k == "random_state" and v is not None and not isinstance(v, numbers.Integral):
            v = repr(v)  # a RandomState instance: recorded, not restorable
        out[k] = _plain(v)
    return out


def write_folder(path, files: dict[str, bytes], *, overwrite: bool = False) -> None:
    """Write ``files`` (name -> bytes) as the folder ``path``, atomically as a unit.

    The files go to a temp folder beside ``path`` (each fsynced) which is then renamed
    onto ``path``; with ``overwrite`` an existing saved decomposition is moved aside
    first and removed after the rename.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ArtifactExistsError(f"{path} exists and is not a directory; choose another path.")
    replace = path.is_dir() and any(path.iterdir())
    if replace:
        if not overwrite:
            raise ArtifactExistsError(
                f"{path} already exists and is not empty; pass overwrite=True "
                "to replace it, or choose another path."
            )
        if not any((path / m).is_file() for m in META_FILES):
            raise ArtifactExistsError(
                f"{path} is not empty and holds no saved decomposition; refusing to replace it "
                "(choose an empty or new folder)."
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        from clipica._atomic import umask_mode

        os.chmod(tmp, umask_mode(0o777))  # mkdtemp makes 0700; the folder gets the umask's mode
        for name, data in files.items():
            with open(tmp / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if replace:
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.rename(path, old / "x")
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if path.is_dir():
                path.rmdir()  # empty: rename cannot replace it on every platform
            os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
