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
    RUN/fewshot/          fewshot.json + table.md/csv + fewshot.png (clipica fewshot --out RUN/fewshot)
    RUN/report.html       RUN/summary.json

Every result file is JSON in the envelope of :mod:`clipica._format`: a format tag
(``"format": "clipica.<kind>/<version>"``) and ``"fingerprints"``: content hashes of what it was computed from (``store``,
``decomposition``, ``params``). :func:`load_result` refuses, with one line
(:class:`~clipica.errors.StaleArtifactError`), a result whose fingerprints differ from
the current inputs, so a stage never mixes results of two fits; :func:`read_valid` is
the quiet form a stage uses to decide between "reuse" and "recompute".

A path stored inside a result (a PNG beside an ``intervene.json``) is read only through
:func:`resolve_inside`, which refuses absolute paths, ``..`` and symlinks that leave the
folder: a hand-edited artifact cannot make a report embed a file from elsewhere.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from clipica._atomic import atomic_write_json
from clipica._format import (
    FINGERPRINTS_KEY,
    FORMAT_KEY,
    check_fingerprints,
    decomposition_fingerprint,
    params_fingerprint,
    read_json,
    store_fingerprint,
    tagged,
    untag,
)
from clipica.errors import ArtifactError, UnsafePathError

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


# ------------------------------------------------------------------ typed results

#: the current version of each result kind this module writes and reads
VERSIONS = {"probe": 1, "naming": 1, "stability": 1, "intervene": 1, "selectivity": 1, "summary": 1,
            "attribute_probes": 1, "prompt_embeddings": 1, "block_traversal": 1, "compare": 1,
            "component_stats": 1, "match": 1, "fewshot": 2}


def format_tag(kind: str) -> str:
    return f"clipica.{kind}/{VERSIONS.get(kind, 1)}"


def save_result(path: str | os.PathLike, payload: Mapping[str, Any], *, kind: str,
                fingerprints: Mapping[str, str]) -> Path:
    """Write ``payload`` atomically as JSON in the format envelope (:mod:`clipica._format`):
    its format tag and the fingerprints of its inputs. An envelope already in ``payload``
    (a result's own ``to_dict``) is replaced."""
    path = Path(path)
    body = {k: v for k, v in payload.items() if k not in (FORMAT_KEY, FINGERPRINTS_KEY)}
    atomic_write_json(path, tagged(format_tag(kind), body, {k: v for k, v in fingerprints.items()
                                                           if v is not None}))
    return path


def check_result(doc: Mapping[str, Any], path: str | os.PathLike, kind: str,
                 expect: Mapping[str, str | None] | None = None) -> None:
    """Raise unless ``doc`` is a current ``clipica.<kind>`` result whose fingerprints equal
    ``expect`` (:class:`~clipica.errors.ArtifactError` /
    :class:`~clipica.errors.StaleArtifactError`, one line). ``expect`` maps an input
    (``store``, ``decomposition``, ``params``) to its current fingerprint; None skips it.
    """
    _, found = untag(doc, format_tag(kind), source=str(path))
    check_fingerprints(found, dict(expect or {}), source=str(path))


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
