"""The run folder: where each result lives, typed save/load, and fingerprints of the inputs.

Layout of a run folder (``clipica run --out RUN``; each command can also write its
part on its own)::

    RUN/store/            the EmbeddingStore (manifest.json, image.f32, text.f32, rows.parquet, errors.jsonl)
    RUN/stability/        stability.json (the K sweep and the chosen K) + stability.png
    RUN/ica/              the fitted decomposition (ica.json + arrays.safetensors)
    RUN/ica/naming/       naming.json + naming.txt (component names)
    RUN/ica/decoder/      the image decoder of the traversals
    RUN/probe/            probe.json, tables, heatmap.png, selectivity.json
    RUN/traversals/       component_II.json + PNGs per traversed component
    RUN/compare/          compare.json (other decompositions on the same rows)
    RUN/fewshot/          the few-shot table
    RUN/report.html       RUN/summary.json

Every result file is JSON with a format tag (``"format": "clipica.<kind>/<version>"``) and
``"fingerprints"``: short content hashes of what it was computed from (``store``,
``decomposition``, ``params``). :func:`load_result` refuses, with one line
(:class:`~clipica.errors.StaleArtifactError`), a result whose fingerprints differ from
the current inputs, so a stage never mixes results of two fits; :func:`read_valid` is
the quiet form a stage uses to decide between "reuse" and "recompute".

A path stored inside a result (a PNG beside an ``intervene.json``) is read only through
:func:`resolve_inside`, which refuses absolute paths, ``..`` and symlinks that leave the
folder: a hand-edited artifact cannot make a report embed a file from elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from clipica._atomic import atomic_write_json
from clipica.errors import ArtifactError, StaleArtifactError, UnsafePathError

#: file names inside the run folder (relative paths)
STORE, STABILITY, ICA, PROBE, TRAVERSALS, COMPARE, FEWSHOT = (
    "store", "stability", "ica", "probe", "traversals", "compare", "fewshot")
NAMING, DECODER = "ica/naming", "ica/decoder"
REPORT, SUMMARY = "report.html", "summary.json"
STABILITY_JSON, PROBE_JSON, NAMING_JSON = "stability.json", "probe.json", "naming.json"
SELECTIVITY_JSON = "selectivity.json"


class RunFolder:
    """The paths of one run folder (nothing is created until a stage writes).

    >>> run = RunFolder("runs/demo"); run.probe_json
    PosixPath('runs/demo/probe/probe.json')
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.root)!r})"

    store = property(lambda self: self.root / STORE)
    stability = property(lambda self: self.root / STABILITY)
    ica = property(lambda self: self.root / ICA)
    naming = property(lambda self: self.root / NAMING)
    decoder = property(lambda self: self.root / DECODER)
    probe = property(lambda self: self.root / PROBE)
    traversals = property(lambda self: self.root / TRAVERSALS)
    compare = property(lambda self: self.root / COMPARE)
    fewshot = property(lambda self: self.root / FEWSHOT)
    report = property(lambda self: self.root / REPORT)
    summary = property(lambda self: self.root / SUMMARY)
    stability_json = property(lambda self: self.stability / STABILITY_JSON)
    probe_json = property(lambda self: self.probe / PROBE_JSON)
    naming_json = property(lambda self: self.naming / NAMING_JSON)
    selectivity_json = property(lambda self: self.probe / SELECTIVITY_JSON)

    def inside(self, relative: str | os.PathLike) -> Path:
        """``relative`` resolved inside the folder (see :func:`resolve_inside`)."""
        return resolve_inside(self.root, relative)


# ------------------------------------------------------------------ paths


def resolve_inside(root: str | os.PathLike, relative: str | os.PathLike) -> Path:
    """The real path of ``root/relative``, refusing anything that leaves ``root``.

    Refused (:class:`~clipica.errors.UnsafePathError`): an absolute path, a ``..``
    component, and a path whose symlinks resolve outside ``root``. The file need not
    exist. Returns the resolved absolute path.
    """
    rel = Path(relative)
    if rel.is_absolute() or rel.drive or str(relative).startswith(("/", "\\", "~")):
        raise UnsafePathError(f"{str(relative)!r} is an absolute path; only files inside {root} are read")
    if any(part == ".." for part in rel.parts):
        raise UnsafePathError(f"{str(relative)!r} leaves its folder (..); only files inside {root} are read")
    base = Path(root).resolve()
    target = (base / rel).resolve()
    if target != base and base not in target.parents:
        raise UnsafePathError(
            f"{str(relative)!r} resolves to {target}, outside {base} (a symlink?); not read")
    return target


# ------------------------------------------------------------------ fingerprints


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, bytes):
            h.update(p)
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def params_fingerprint(params: Mapping[str, Any]) -> str:
    """Hash of a stage's settings (JSON-serialisable values; tuples count as lists)."""
    return _digest(_plain(params))


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


_SAMPLE = 1 << 20  # bytes hashed at each end of a matrix file


def store_fingerprint(store: Any) -> str:
    """Hash of a finished store: its manifest's settings key, counts, shape and data bytes.

    The key (model, pretrained tag, preprocessing, data fingerprint, options) and the
    counts say what produced the store; the sizes and the first and last MiB of each
    matrix catch a store re-extracted into the same folder. Timestamps are left out, so
    the same extraction run twice (or resumed after a kill) has the same fingerprint.
    ``store`` is an :class:`~clipica.store.EmbeddingStore` (anything with ``path`` and
    ``manifest``) or its folder; this module reads the manifest itself because it sits
    below the store in the layers.
    """
    if hasattr(store, "manifest") and hasattr(store, "path"):
        folder, m = Path(store.path), store.manifest
    else:
        folder = Path(store)
        m = read_json(folder / "manifest.json")
    parts: list[Any] = [m.get("key"), m.get("counts"), m.get("embed_dim"), m.get("normalize"),
                        m.get("label_columns")]
    for name in ("image.f32", "text.f32", "rows.parquet"):
        p = folder / name
        if not p.is_file():
            parts.append([name, None])
            continue
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(_SAMPLE)
            f.seek(max(0, size - _SAMPLE))
            tail = f.read(_SAMPLE)
        parts += [[name, size], head, tail]
    return _digest(*parts)


def decomposition_fingerprint(decomposition: Any) -> str:
    """Content hash of a fitted decomposition: its own ``fingerprint()`` when it has one,
    else the hash of ``mean_`` and ``components_`` (what every downstream result depends on)."""
    fp = getattr(decomposition, "fingerprint", None)
    if callable(fp):
        return str(fp())
    import numpy as np

    parts = [np.ascontiguousarray(np.asarray(getattr(decomposition, n), dtype=np.float64)).tobytes()
             for n in ("mean_", "components_")]
    return _digest(*parts)


# ------------------------------------------------------------------ typed results


def format_tag(kind: str, version: int = 1) -> str:
    return f"clipica.{kind}/{version}"


def save_result(path: str | os.PathLike, payload: Mapping[str, Any], *, kind: str,
                fingerprints: Mapping[str, str], version: int = 1) -> Path:
    """Write ``payload`` atomically as JSON with its format tag and input fingerprints.

    A ``"format"`` already in ``payload`` (a result's own ``to_dict``) is kept when it is
    of the same kind; ``fingerprints`` replaces any in ``payload``.
    """
    path = Path(path)
    doc = dict(payload)
    tag = doc.get("format")
    if not (isinstance(tag, str) and tag.startswith(f"clipica.{kind}/")):
        doc["format"] = format_tag(kind, version)
    doc["fingerprints"] = dict(fingerprints)
    atomic_write_json(path, doc)
    return path


def read_json(path: str | os.PathLike) -> dict:
    """A JSON object from ``path``; :class:`~clipica.errors.ArtifactError` when unreadable."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path} does not exist") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not readable JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(doc, dict):
        raise ArtifactError(f"{path} holds a JSON {type(doc).__name__}, not an object")
    return doc


def check_result(doc: Mapping[str, Any], path: str | os.PathLike, kind: str,
                 expect: Mapping[str, str | None] | None = None) -> None:
    """Raise unless ``doc`` is a ``clipica.<kind>/*`` result whose fingerprints equal ``expect``.

    ``expect`` maps an input (``store``, ``decomposition``, ``params``) to its current
    fingerprint; inputs given as None are not checked.
    """
    tag = doc.get("format")
    if not (isinstance(tag, str) and tag.startswith(f"clipica.{kind}/")):
        raise ArtifactError(f"{path} is not a clipica {kind} result (format {tag!r}); recompute it")
    have = doc.get("fingerprints") or {}
    for what, want in (expect or {}).items():
        if want is None:
            continue
        got = have.get(what)
        if got != want:
            raise StaleArtifactError(
                f"{path} was computed from another {what} ({got or 'unrecorded'}, now {want}); "
                "recompute it (rerun the command that wrote it) instead of mixing results")


def load_result(path: str | os.PathLike, kind: str,
                expect: Mapping[str, str | None] | None = None) -> dict:
    """The result at ``path``, checked (:func:`check_result`); raises on missing or stale."""
    doc = read_json(path)
    check_result(doc, path, kind, expect)
    return doc


def read_valid(path: str | os.PathLike, kind: str,
               expect: Mapping[str, str | None] | None = None) -> dict | None:
    """The result at ``path`` when it exists and matches ``expect``, else None (recompute)."""
    if not Path(path).is_file():
        return None
    try:
        return load_result(path, kind, expect)
    except ArtifactError:
        return None


# ------------------------------------------------------------------ folders as a unit


def replace_dir(path: str | os.PathLike, fill: Callable[[Path], Any]) -> Any:
    """Write a folder as a unit: ``fill(tmp)`` writes a sibling temp folder, which then
    replaces ``path`` (the old folder, with anything stale inside it, is removed).

    A kill before the swap leaves the old folder untouched; a kill between the two renames
    leaves ``path`` absent (recomputed) and a ``.name.old`` folder removed next time.
    Returns what ``fill`` returns.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp"
    old = path.parent / f".{path.name}.old"
    for leftover in (tmp, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    tmp.mkdir()
    try:
        value = fill(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
    return value


__all__ = [
    "RunFolder", "check_result", "decomposition_fingerprint", "format_tag", "load_result",
    "params_fingerprint", "read_json", "read_valid", "replace_dir", "resolve_inside",
    "save_result", "store_fingerprint",
]
