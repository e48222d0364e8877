"""The format-tag envelope shared by every saved result and artifact.

Every result written by clipica is a JSON object of the form::

    {"format": "clipica.<kind>/<version>",
     "fingerprints": {"store": "<sha256>", "decomposition": "<sha256>", ...},
     ...the result's own fields...}

``tagged`` builds one, ``untag`` checks the tag and splits it back into the body and
the fingerprints, ``check_fingerprints`` refuses an artifact computed from other
inputs, and ``content_hash`` is the one fingerprint function (named arrays + JSON
metadata -> sha256 hex digest). The fingerprints of a run's inputs (a store, a decomposition,
a stage's settings) are here too, so that every layer can compute them. Ground layer:
imports only numpy, json and errors.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from clipica.errors import ArtifactError, StaleArtifactError

FORMAT_KEY = "format"
FINGERPRINTS_KEY = "fingerprints"
_TAG_RE = re.compile(r"^clipica\.([a-z][a-z0-9_.-]*)/([0-9]+)$")


def parse_tag(tag: str) -> tuple[str, int]:
    """``"clipica.probe/1"`` -> ``("probe", 1)``; ValueError on anything else."""
    m = _TAG_RE.match(tag) if isinstance(tag, str) else None
    if m is None:
        raise ValueError(f"format tag must look like 'clipica.<kind>/<version>', got {tag!r}")
    return m.group(1), int(m.group(2))


def tagged(tag: str, body: Mapping[str, Any], fingerprints: Mapping[str, str] | None = None) -> dict:
    """Wrap ``body`` (a JSON-ready mapping) with its format tag and input fingerprints.

    The envelope is flat (``format`` and ``fingerprints`` first, then the body's keys)
    so the file stays readable; the body may therefore not use those two keys.
    """
    parse_tag(tag)
    clash = {FORMAT_KEY, FINGERPRINTS_KEY} & set(body)
    if clash:
        raise ValueError(f"body may not contain the reserved key(s) {sorted(clash)}")
    fps = {str(k): str(v) for k, v in (fingerprints or {}).items()}
    return {FORMAT_KEY: tag, FINGERPRINTS_KEY: fps, **body}


def untag(d: Any, tag: str, *, source: str = "artifact") -> tuple[dict, dict[str, str]]:
    """Check ``d``'s format tag against ``tag``; return ``(body, fingerprints)``.

    Raises :class:`clipica.errors.ArtifactError` (one line naming ``source``) when
    ``d`` is not a mapping, has no tag, or carries another kind or version.
    """
    kind, version = parse_tag(tag)
    if not isinstance(d, Mapping):
        raise ArtifactError(f"{source} is not a clipica {kind} (expected a JSON object, got {type(d).__name__})")
    found = d.get(FORMAT_KEY)
    if found is None:
        raise ArtifactError(f"{source} has no format tag; expected {tag!r} (was it written by clipica?)")
    try:
        f_kind, f_version = parse_tag(found)
    except ValueError:
        raise ArtifactError(f"{source} has an unreadable format tag {found!r}; expected {tag!r}") from None
    if f_kind != kind:
        raise ArtifactError(f"{source} holds a clipica {f_kind} ({found!r}), not a {kind} ({tag!r})")
    if f_version != version:
        newer = "a newer" if f_version > version else "an older"
        raise ArtifactError(
            f"{source} was written in {newer} format ({found!r}); this clipica reads {tag!r}; "
            "recompute it with this version"
        )
    fps = d.get(FINGERPRINTS_KEY) or {}
    if not isinstance(fps, Mapping):
        raise ArtifactError(f"{source}: 'fingerprints' must be an object, got {type(fps).__name__}")
    body = {k: v for k, v in d.items() if k not in (FORMAT_KEY, FINGERPRINTS_KEY)}
    return body, {str(k): str(v) for k, v in fps.items()}


def check_fingerprints(found: Mapping[str, str], expected: Mapping[str, str | None], *,
                       source: str = "artifact") -> None:
    """Raise :class:`StaleArtifactError` if any input in ``expected`` differs from ``found``.

    Keys whose expected value is ``None`` are not checked (the caller does not know
    that input). A key missing from ``found`` counts as a mismatch.
    """
    for name, want in expected.items():
        if want is None:
            continue
        have = found.get(name)
        if have != want:
            was = "no record of it" if have is None else f"{name} {_short(have)}"
            raise StaleArtifactError(
                f"{source} was computed from another {name} ({was}; given {_short(want)}); "
                "recompute it"
            )


def _short(h: str) -> str:
    return h[:12] if isinstance(h, str) else repr(h)


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces; numpy values as Python; NaN as null)."""
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _plain(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic)):
        return _plain(obj.tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def content_hash(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> str:
    """sha256 hex digest of named arrays (name, dtype, shape, bytes) and canonical JSON ``meta``.

    Independent of the order of ``arrays`` and of memory layout (arrays are hashed as
    C-contiguous); sensitive to every byte, the dtype and the shape.
    """
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        header = canonical_json({"name": str(name), "dtype": a.dtype.str, "shape": list(a.shape)})
        h.update(header.encode("utf-8"))
        h.update(b"\0")
        h.update(memoryview(a).cast("B") if a.size else b"")
        h.update(b"\0")
    h.update(canonical_json(dict(meta or {})).encode("utf-8"))
    return h.hexdigest()


def read_json(path: str | os.PathLike, tag: str | None = None) -> dict:
    """Read a JSON object; with ``tag``, also check its format tag (the body keeps the envelope).

    Raises :class:`ArtifactError` with one line on a missing file, invalid JSON, a
    non-object, or a wrong tag.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); was it hand-edited?") from None
    if not isinstance(d, dict):
        raise ArtifactError(f"{path} must hold a JSON object, got {type(d).__name__}")
    if tag is not None:
        untag(d, tag, source=str(path))
    return d


# ------------------------------------------------------------------ fingerprints of inputs


def params_fingerprint(params: Mapping[str, Any]) -> str:
    """Hash of a stage's settings (JSON-serialisable values; tuples count as lists)."""
    return content_hash({}, {"params": params})


_SAMPLE = 1 << 20  # bytes hashed at each end of a matrix file


def store_fingerprint(store: Any) -> str:
    """Hash of a finished store: its manifest's settings key, counts, shape and data bytes.

    The key (model, pretrained tag, preprocessing, data fingerprint, options) and the
    counts say what produced the store; the sizes and the first and last MiB of each
    data file catch a store re-extracted into the same folder. Timestamps are left out,
    so the same extraction run twice (or resumed after a kill) has the same fingerprint.
    ``store`` is an :class:`~clipica.embeddings.store.EmbeddingStore` (anything with ``path`` and
    ``manifest``) or its folder; this module reads the manifest itself because it sits
    below the store in the layers.
    """
    if hasattr(store, "manifest") and hasattr(store, "path"):
        folder, m = Path(store.path), store.manifest
    else:
        folder = Path(store)
        m = read_json(folder / "manifest.json")
    meta: dict[str, Any] = {k: m.get(k) for k in ("key", "counts", "embed_dim", "normalize",
                                                   "label_columns", "schema_version")}
    arrays = {}
    for name in ("image.f32", "text.f32", "rows.parquet"):
        p = folder / name
        if not p.is_file():
            meta[f"{name}_size"] = None
            continue
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(_SAMPLE)
            f.seek(max(0, size - _SAMPLE))
            tail = f.read(_SAMPLE)
        meta[f"{name}_size"] = size
        arrays[f"{name}/head"] = np.frombuffer(head, dtype=np.uint8)
        arrays[f"{name}/tail"] = np.frombuffer(tail, dtype=np.uint8)
    return content_hash(arrays, meta)


def decomposition_fingerprint(decomposition: Any) -> str:
    """Content hash of a fitted decomposition: its own ``fingerprint()`` when it has one,
    else the hash of ``mean_`` and ``components_`` (what every downstream result depends on)."""
    fp = getattr(decomposition, "fingerprint", None)
    if callable(fp):
        return str(fp())
    return content_hash({n: np.asarray(getattr(decomposition, n), dtype=np.float64)
                         for n in ("mean_", "components_")})
