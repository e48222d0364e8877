"""``EmbeddingStore``: image/text embeddings on disk, row-aligned with a row table.

Layout of a store folder::

    manifest.json      provenance (model, data, options, versions), counts, ``complete`` flag
    image.f32          (N, D) float32, C order, no header: np.memmap-able
    text.f32           (N, D) float32 when the source has captions
    rows.parquet       N rows: id, source_index, caption, split, <label columns...>, caption_truncated
    errors.jsonl       one line per row that could not be embedded: id, source_index, reason

While an extraction runs (or after it was killed) the folder also holds
``progress.json`` and ``rows.partial.jsonl``. The commit protocol makes a
``kill -9`` at any instant harmless: a batch is appended to the data files,
they are fsynced, and only then ``progress.json`` (the byte length of every
file and the next source position) is replaced atomically. On resume every
file is truncated back to the lengths in ``progress.json``, so bytes written
after the last commit are discarded and the batch is recomputed.
Nothing is pickled; embeddings never accumulate in memory.

One writer at a time: :class:`StoreWriter` holds an exclusive ``flock`` on
``writer.lock`` (which records the holder's pid, host and command) from the
moment it opens the folder until it finishes or fails; a second writer gets
:class:`~clipica.errors.StoreLockedError` naming the holder. The kernel drops
the lock when its process dies, so a ``kill -9`` never leaves a store locked.

A complete store is checked when opened: every matrix file holds exactly
``n_rows * embed_dim * 4`` bytes, ``rows.parquet`` exists and has ``n_rows``
rows, and the manifest's fields have the right types; anything else is a
:class:`~clipica.errors.StoreError`, never garbage read as embeddings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from clipica._atomic import atomic_write_json
from clipica.embeddings._lock import WriterLock
from clipica.embeddings.manifest import model_entry
from clipica.errors import (
    ArtifactExistsError,
    ClipicaError,
    StoreError,
    StoreMismatchError,
    describe_exception,
)

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
IMAGE = "image.f32"
TEXT = "text.f32"
ROWS = "rows.parquet"
ERRORS = "errors.jsonl"
PROGRESS = "progress.json"
ROWS_PARTIAL = "rows.partial.jsonl"
LOCK = "writer.lock"
_DATA_FILES = (IMAGE, TEXT, ROWS_PARTIAL, ERRORS)
_ALL_FILES = (MANIFEST, IMAGE, TEXT, ROWS, ERRORS, PROGRESS, ROWS_PARTIAL, LOCK)
BASE_COLUMNS = ("id", "source_index", "caption", "split")


class EmbeddingStore:
    """A finished (or, with ``require_complete=False``, partial) store opened for reading.

    Attributes
    ----------
    path : Path
    manifest : dict
    image : ndarray of shape (n_rows, embed_dim), float32, read-only memmap
    text : ndarray of shape (n_rows, embed_dim), float32 memmap, or None without captions
    rows : pandas.DataFrame with n_rows rows aligned with ``image``/``text``
    label_columns : list of str
    errors : pandas.DataFrame of rows that failed (id, source_index, reason)
    """

    def __init__(self, path: Path, manifest: dict):
        self.path = Path(path)
        self.manifest = manifest
        self._image = None
        self._text = None
        self._rows = None
        self._encoders: dict[str, Any] = {}

    @classmethod
    def open(cls, path: str | os.PathLike, require_complete: bool = True) -> EmbeddingStore:
        """Open the store at ``path``; raises StoreError when missing or unfinished."""
        path = Path(path)
        mpath = path / MANIFEST
        if not mpath.is_file():
            raise StoreError(f"{path} is not an embedding store (no {MANIFEST}); create one with `clipica extract`")
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise StoreError(f"{mpath} is not valid JSON ({exc}); re-extract the store") from None
        if not isinstance(manifest, dict):
            raise StoreError(f"{mpath} holds a JSON {type(manifest).__name__}, not a store manifest; re-extract the store")
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise StoreError(
                f"{path}: store schema version {manifest.get('schema_version')} is not "
                f"{SCHEMA_VERSION}, the one this clipica reads; re-extract it"
            )
        check_manifest(manifest, mpath)
        if require_complete and not manifest.get("complete"):
            raise StoreError(
                f"{path}: the extraction into this store did not finish; rerun the same "
                "`clipica extract` command to resume it"
            )
        store = cls(path, manifest)
        if manifest.get("complete"):
            store.check_files()
        return store

    def check_files(self) -> None:
        """A complete store's files match its manifest: exact matrix sizes, a row table (stat only)."""
        n, d = self.n_rows, self.embed_dim
        for name, wanted in ((IMAGE, True), (TEXT, bool(self.manifest.get("has_text")))):
            if wanted:
                _check_size(self.path / name, n, d)
        if not (self.path / ROWS).is_file():
            raise StoreError(f"{self.path}: the store is marked complete but {ROWS} is missing; "
                             "the store is damaged: re-extract it (--overwrite)")

    # -- sizes ---------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        return int(self.manifest["embed_dim"])

    @property
    def n_rows(self) -> int:
        if self.manifest.get("complete"):
            return int(self.manifest["counts"]["rows"])
        progress = _read_json(self.path / PROGRESS) or {}
        return int(progress.get("n_rows", 0))

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        return (f"EmbeddingStore({str(self.path)!r}, rows={self.n_rows}, dim={self.embed_dim}, "
                f"text={'yes' if self.manifest.get('has_text') else 'no'})")

    # -- arrays ----------------------------------------------------------------
    def _matrix(self, name: str) -> np.ndarray:
        n, d = self.n_rows, self.embed_dim
        file = self.path / name
        if self.manifest.get("complete"):
            _check_size(file, n, d)
        else:  # a partial store may hold uncommitted bytes after the last commit
            size = file.stat().st_size if file.exists() else -1
            if size < n * d * 4:
                raise StoreError(f"{file}: {size} bytes, fewer than the {n * d * 4} committed for ({n}, {d}) "
                                 "float32; the store is damaged")
        if n == 0:
            return np.zeros((0, d), dtype=np.float32)
        return np.memmap(file, dtype=np.float32, mode="r", shape=(n, d))

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            self._image = self._matrix(IMAGE)
        return self._image

    @property
    def text(self) -> np.ndarray | None:
        if not self.manifest.get("has_text"):
            return None
        if self._text is None:
            self._text = self._matrix(TEXT)
        return self._text

    @property
    def rows(self):
        if self._rows is None:
            import pandas as pd

            if self.manifest.get("complete"):
                file = self.path / ROWS
                if not file.is_file():
                    raise StoreError(f"{self.path}: the store is marked complete but {ROWS} is missing; "
                                     "re-extract it (--overwrite)")
                try:
                    rows = pd.read_parquet(file)
                except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
                    raise StoreError(f"{file} cannot be read ({describe_exception(exc)}); "
                                     "the store is damaged: re-extract it (--overwrite)") from None
                missing = [c for c in (*BASE_COLUMNS, *self.label_columns) if c not in rows.columns]
                if missing or len(rows) != self.n_rows:
                    raise StoreError(
                        f"{file}: {len(rows)} rows with columns missing {missing} for the manifest's "
                        f"{self.n_rows} rows; the store is damaged: re-extract it (--overwrite)"
                    )
                self._rows = rows
            else:  # an unfinished store: the partial table, cut to the committed rows
                self._rows = rows_frame(_read_jsonl(self.path / ROWS_PARTIAL)[: self.n_rows], self.label_columns)
        return self._rows

    @property
    def label_columns(self) -> list[str]:
        return list(self.manifest.get("label_columns", []))

    @property
    def errors(self):
        import pandas as pd

        recs = _read_jsonl(self.path / ERRORS)
        if not self.manifest.get("complete"):
            recs = recs[: int((_read_json(self.path / PROGRESS) or {}).get("n_errors", 0))]
        return pd.DataFrame(recs, columns=["id", "source_index", "reason"])

    # -- back to the inputs ----------------------------------------------------
    def open_source(self):
        """The data source recorded in the manifest, reopened with the same options."""
        from clipica.data import open_source

        data = self.manifest["data"]
        source = open_source(data["spec"], split=data.get("split"), limit=data.get("limit"),
                             **(data.get("options") or {}))
        if source.fingerprint() != data.get("fingerprint"):
            raise StoreError(
                f"{self.path}: the data at {data['spec']} changed since extraction (fingerprint "
                f"{source.fingerprint()} != {data.get('fingerprint')}); its rows may no longer match the store"
            )
        return source

    def load_images(self, indices) -> list:
        """Store rows ``indices`` -> their RGB PIL images, decoded again from the data source."""
        source = self.open_source()
        src_idx = self.rows["source_index"].to_numpy()
        return [source[int(src_idx[int(i)])].image for i in np.atleast_1d(indices)]

    def image_array(self, indices, size: int, *, dtype=np.float32) -> np.ndarray:
        """The RGB pixels of store rows ``indices``, resized to ``size`` x ``size`` (bilinear).

        Returns an ndarray of shape (n, size, size, 3): float32 in [0, 1] by default, or the
        raw 0-255 values with ``dtype=np.uint8`` (4x less memory for many images). Raises
        :class:`StoreError` when the data source cannot be read or a row has no image.
        """
        from PIL import Image

        idx = [int(i) for i in np.asarray(indices).reshape(-1)]
        try:
            images = self.load_images(idx)
        except ClipicaError as exc:
            raise StoreError(f"this store's images cannot be loaded ({exc})") from exc
        out = np.empty((len(idx), size, size, 3), dtype=dtype)
        for j, im in enumerate(images):
            if im is None:
                raise StoreError(f"store row {idx[j]} has no image (a text-only source?)")
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            px = np.asarray(im)
            out[j] = px if dtype == np.uint8 else px.astype(np.float32) / 255.0
        return out

    def load_encoder(self, device="cpu"):
        """The encoder that produced the store (same spec and weights).

        Loaded once per store object and device: the stages of one run (names, traversal
        prompts, the text view) each ask for it, and a large model takes seconds to build.
        """
        from clipica.models import load_encoder

        if device not in self._encoders:
            model = model_entry(self.manifest)
            self._encoders[device] = load_encoder(
                model["spec"], pretrained=model.get("pretrained"), device=device,
                precision=self.manifest.get("precision", "fp32"),
                preprocess=model.get("preprocess", "original"), layer=self.manifest.get("layer", "final"))
        return self._encoders[device]


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path} is not valid JSON lines ({exc}); the store is damaged") from None


def _check_size(file: Path, n: int, d: int) -> None:
    """A complete store's matrix holds exactly ``n * d`` float32 values."""
    expected = n * d * 4
    size = file.stat().st_size if file.is_file() else -1
    if size != expected:
        have = "is missing" if size < 0 else f"has {size} bytes"
        raise StoreError(
            f"{file} {have}, but the manifest says ({n}, {d}) float32 = {expected} bytes; "
            "the store is damaged or its manifest was edited: re-extract it (--overwrite)"
        )


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def check_manifest(m: dict, where) -> None:
    """Raise StoreError naming the first field of a (hand-edited) manifest with the wrong type."""
    problems = []
    if not _is_count(m.get("embed_dim")) or m.get("embed_dim") == 0:
        problems.append(f"embed_dim must be a positive integer, got {m.get('embed_dim')!r}")
    if not isinstance(m.get("has_text", False), bool):
        problems.append(f"has_text must be true or false, got {m.get('has_text')!r}")
    if not isinstance(m.get("complete", False), bool):
        problems.append(f"complete must be true or false, got {m.get('complete')!r}")
    labels = m.get("label_columns", [])
    if not isinstance(labels, list) or not all(isinstance(c, str) for c in labels):
        problems.append(f"label_columns must be a list of names, got {labels!r}")
    for field in ("key", "model", "data"):
        if field in m and not isinstance(m[field], dict):
            problems.append(f"{field} must be an object, got {m[field]!r}")
    if m.get("complete") is True:
        counts = m.get("counts")
        if not isinstance(counts, dict) or not _is_count(counts.get("rows")):
            problems.append(f"counts.rows must be a whole number >= 0, got {counts!r}")
    if problems:
        raise StoreError(f"{where}: {problems[0]}; the manifest is damaged or was edited: re-extract the store")


def rows_frame(records: list[dict], label_columns: list[str]):
    """Row dicts -> the row table with stable column order and dtypes."""
    import pandas as pd

    cols = [*BASE_COLUMNS, *label_columns, "caption_truncated"]
    frame = pd.DataFrame.from_records(records, columns=cols)
    frame["id"] = frame["id"].astype(str)
    frame["source_index"] = frame["source_index"].astype("int64")
    frame["caption"] = frame["caption"].astype(object)
    frame["split"] = frame["split"].astype(object)
    frame["caption_truncated"] = frame["caption_truncated"].fillna(False).astype(bool)
    for c in label_columns:
        col = frame[c]
        numeric = pd.to_numeric(col, errors="coerce")
        if col.notna().all() and (numeric == numeric.round()).all() and all(
            isinstance(v, (int, np.integer, bool)) for v in col
        ):
            frame[c] = numeric.astype("int64")
        else:
            frame[c] = numeric.astype("float64")
    return frame


class StoreWriter:
    """Appends committed batches to a store folder (the resumable half of EmbeddingStore)."""

    def __init__(self, path: str | os.PathLike, key: dict, *, overwrite: bool = False):
        """Open ``path`` for writing: take the writer lock, then decide new / resume / complete.

        Raises StoreLockedError while another process writes the folder, StoreMismatchError
        for a store made with another ``key`` (unless ``overwrite``), StoreError for a damaged
        one, ArtifactExistsError for a folder that is not a store. The lock is held until
        :meth:`close` (or :meth:`finalize`), also when the writer is garbage-collected.
        """
        self.path = Path(path)
        self.key = key
        self.state = "new"  # new | resume | complete
        self.progress: dict[str, Any] = {}
        self.manifest: dict | None = None
        self._files: dict[str, Any] = {}
        self._lock = None
        self._created = False
        if self.path.exists() and not self.path.is_dir():
            raise ArtifactExistsError(f"--out {self.path} exists and is not a folder")
        if self.path.is_dir() and not (self.path / MANIFEST).is_file():
            foreign = [p.name for p in self.path.iterdir() if not is_store_file(p.name)]
            if foreign:  # only our own leftovers (a run killed before its first manifest) may be replaced
                raise ArtifactExistsError(
                    f"--out {self.path} is a non-empty folder that is not an embedding store "
                    f"(it holds {foreign[0]!r}); choose a new folder"
                )
        self._created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = WriterLock(self.path / LOCK)
        try:
            self._open_existing(overwrite)
        except BaseException:
            self.close()
            raise

    def _open_existing(self, overwrite: bool) -> None:
        key = self.key
        existing = None
        if (self.path / MANIFEST).is_file():
            existing = _read_json(self.path / MANIFEST)
            if not isinstance(existing, dict):
                existing = None
                if not overwrite:
                    raise StoreError(f"{self.path}/{MANIFEST} is unreadable; pass --overwrite to start again")
        if existing is not None:
            same = existing.get("key") == key and existing.get("schema_version") == SCHEMA_VERSION
            if not same and not overwrite:
                old_key = existing.get("key") if isinstance(existing.get("key"), dict) else {}
                if {k for k in set(old_key) | set(key) if old_key.get(k) != key.get(k)} == {"fingerprint"}:
                    raise StoreMismatchError(
                        f"{self.path}: the data changed since this store was made (an image file was "
                        "replaced, added or removed, or its size or modification time differs); "
                        "rerun with --overwrite to embed it again, or use a new --out folder"
                    )
                diffs = _key_diff(old_key, key)
                raise StoreMismatchError(
                    f"{self.path} already holds a store made with different settings ({diffs}); "
                    "use a new --out folder, or --overwrite to replace it"
                )
            if same and not overwrite:
                self.manifest = existing
                if existing.get("complete"):
                    # "already complete" only when the files say so too
                    EmbeddingStore.open(self.path)
                    self.state = "complete"
                else:
                    check_manifest(existing, self.path / MANIFEST)
                    self.state = "resume"
                    self.progress = _read_json(self.path / PROGRESS) or {}
                    if self.progress:
                        _check_progress(self.progress, self.path / PROGRESS)
            # same + overwrite, or mismatch + overwrite: start afresh below
        if self.state == "new":
            for p in self.path.iterdir():
                if is_store_file(p.name) and p.name != LOCK and p.is_file():
                    p.unlink()

    # -- lifecycle -----------------------------------------------------------------
    def begin(self, manifest: dict, start: int) -> int:
        """Write the initial manifest (fresh store) or truncate to the last commit (resume).

        Returns the source position to continue from.
        """
        if self.state == "resume" and self.progress:
            lengths = self.progress["bytes"]
        else:
            lengths = {name: 0 for name in _DATA_FILES}
            self.progress = {"next_position": start, "n_rows": 0, "n_errors": 0, "n_truncated": 0,
                             "n_missing_captions": 0, "bytes": lengths}
        self.path.mkdir(parents=True, exist_ok=True)
        if self.state != "resume":
            self.manifest = dict(manifest)
            self.manifest["complete"] = False
            atomic_write_json(self.path / MANIFEST, self.manifest)
        else:
            # resume: keep what was recorded at the start; refresh run-time details only
            self.manifest.update({k: manifest[k] for k in ("device",) if k in manifest})
        for name in _DATA_FILES:
            p = self.path / name
            p.touch()  # create if missing
            size = p.stat().st_size
            want = int(lengths.get(name, 0))
            if size < want:
                raise StoreError(
                    f"{p} is shorter ({size} bytes) than its last commit ({want}); "
                    "the store is damaged: rerun with --overwrite"
                )
            if size > want:
                os.truncate(p, want)  # drop what a killed run wrote after its last commit
            self._files[name] = open(p, "ab")  # noqa: SIM115 - closed in close()
        if self.state != "resume" or not (self.path / PROGRESS).is_file():
            atomic_write_json(self.path / PROGRESS, self.progress)
        return int(self.progress["next_position"])

    def commit(self, image: np.ndarray, text: np.ndarray | None, rows: list[dict], errors: list[dict],
               next_position: int, n_truncated: int = 0, n_missing_captions: int = 0,
               _pause: float = 0.0) -> None:
        """Append one batch durably, then advance ``progress.json`` atomically."""
        f = self._files
        f[IMAGE].write(np.ascontiguousarray(image, dtype=np.float32).tobytes())
        if text is not None:
            f[TEXT].write(np.ascontiguousarray(text, dtype=np.float32).tobytes())
        if rows:
            f[ROWS_PARTIAL].write("".join(json.dumps(r) + "\n" for r in rows).encode("utf-8"))
        if errors:
            f[ERRORS].write("".join(json.dumps(e) + "\n" for e in errors).encode("utf-8"))
        lengths = {}
        for name, handle in f.items():
            handle.flush()
            os.fsync(handle.fileno())
            lengths[name] = handle.tell()
        if _pause:  # test hook: widen the window between data and progress writes
            import time

            time.sleep(_pause)
        p = self.progress
        p.update(
            next_position=int(next_position),
            n_rows=p["n_rows"] + len(rows),
            n_errors=p["n_errors"] + len(errors),
            n_truncated=p["n_truncated"] + int(n_truncated),
            n_missing_captions=p.get("n_missing_captions", 0) + int(n_missing_captions),
            bytes=lengths,
        )
        atomic_write_json(self.path / PROGRESS, p)

    def close_files(self) -> None:
        """Close the data files; the writer keeps its lock (see :meth:`close`)."""
        for handle in self._files.values():
            handle.close()
        self._files = {}

    def close(self) -> None:
        """Close the data files and release the writer lock (idempotent).

        A folder this writer created and left empty (it failed before its first
        manifest) is removed again.
        """
        self.close_files()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
            if self._created:
                try:
                    self.path.rmdir()  # only succeeds when empty
                except OSError:
                    pass

    def finalize(self, extra: dict | None = None) -> EmbeddingStore:
        """Write rows.parquet and mark the manifest complete (idempotent after a crash)."""
        self.close_files()
        label_columns = list(self.manifest.get("label_columns", []))
        p = self.progress
        records = _read_jsonl(self.path / ROWS_PARTIAL)
        if len(records) != p["n_rows"]:
            raise StoreError(f"{self.path}: {len(records)} rows in the table for {p['n_rows']} committed")
        frame = rows_frame(records, label_columns)
        tmp = self.path / f".{ROWS}.tmp"
        frame.to_parquet(tmp, index=False)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / ROWS)
        del frame, records
        m = self.manifest
        m["counts"] = {
            "rows": p["n_rows"],
            "errors": p["n_errors"],
            "truncated_captions": p["n_truncated"],
            "missing_captions": p.get("n_missing_captions", 0),
        }
        m.update(extra or {})
        m["complete"] = True
        atomic_write_json(self.path / MANIFEST, m)
        for name in (PROGRESS, ROWS_PARTIAL):
            try:
                (self.path / name).unlink()
            except FileNotFoundError:
                pass
        self.close()
        return EmbeddingStore.open(self.path)


def _check_progress(p: dict, where: Path) -> None:
    ok = isinstance(p, dict) and all(_is_count(p.get(k)) for k in ("next_position", "n_rows", "n_errors"))
    ok = ok and isinstance(p.get("bytes"), dict) and all(_is_count(v) for v in p["bytes"].values())
    if not ok:
        raise StoreError(f"{where} is damaged or was edited; rerun with --overwrite to start the store again")


def is_store_file(name: str) -> bool:
    """A file a store writes, including the temp files of an atomic write killed half-way."""
    if name in _ALL_FILES:
        return True
    return name.startswith(".") and name.endswith(".tmp") and any(name[1:].startswith(f) for f in _ALL_FILES)


def _key_diff(old: dict, new: dict) -> str:
    parts = []
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            parts.append(f"{k}: {old.get(k)!r} -> {new.get(k)!r}")
    return "; ".join(parts) or "schema version"


def remove_store(path: Path, keep: tuple[str, ...] = ()) -> None:
    """Delete a store folder's known files (never anything else, nor ``keep``), then the folder if empty."""
    for p in path.iterdir():
        if is_store_file(p.name) and p.name not in keep and p.is_file():
            p.unlink()
    try:
        path.rmdir()
    except OSError:
        pass
