"""Sources described by a table: ``csv:FILE`` and ``jsonl:FILE``, and the shared list-backed source.

A table has one row per sample: an image path (relative to the table's own
folder, or absolute), optionally a caption, an id, a split and label columns.
Columns are detected by name (see ``IMAGE_COLUMNS`` etc.) or named with the
options ``image_column``, ``caption_column``, ``id_column``, ``split_column``
and ``label_columns`` (a list or a comma-separated string). Without
``label_columns``, every numeric or boolean column that is not one of the
others is a label; so is a text column whose cells are all boolean words (``yes``/``no``,
``true``/``false``, ``y``/``n``, any case; empty = missing), read as 1/0. Row order is the
file's order.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from clipica.data.base import Row, Source
from clipica.errors import DataSourceError

IMAGE_COLUMNS = ("image", "image_path", "file_name", "filename", "file", "path", "filepath", "img", "img_path")
CAPTION_COLUMNS = ("caption", "text", "captions", "sentence", "prompt", "description", "title")
ID_COLUMNS = ("id", "image_id", "uid", "key")
SPLIT_COLUMNS = ("split",)
SPLIT_ALIASES = {"validation": "val", "valid": "val", "dev": "val", "eval": "val"}


def normalise_split(value: Any) -> str | None:
    """'validation'/'valid'/'dev' -> 'val'; None/NaN stay None; anything else as a lower-case string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    s = str(value).strip().lower()
    return SPLIT_ALIASES.get(s, s) or None


class RecordsSource(Source):
    """A source held as parallel lists (ids, image locations, captions, labels, splits).

    ``images`` holds what :meth:`_load_image` needs for each row (a path by
    default). ``split`` keeps only rows of that split; ``limit`` then keeps the
    first ``limit`` rows. Both are applied at construction, so ``len`` and
    indices refer to the rows that remain.
    """

    def __init__(
        self,
        spec: str,
        ids: list[str],
        images: list[Any] | None,
        captions: list[str | None] | None,
        labels: dict[str, list],
        splits: list[str | None] | None,
        *,
        split: str | None = None,
        limit: int | None = None,
        info: dict | None = None,
    ):
        n = len(ids)
        for name, col in [("images", images), ("captions", captions), ("splits", splits)]:
            if col is not None and len(col) != n:
                raise AssertionError(f"{name} has {len(col)} entries for {n} ids")
        if len(set(ids)) != n:
            dup = _first_duplicate(ids)
            raise DataSourceError(f"{spec}: row ids must be unique, {dup!r} appears more than once")
        keep = list(range(n))
        if split is not None:
            want = normalise_split(split)
            if splits is None:
                raise DataSourceError(
                    f"{spec}: --split {split} was given but this dataset defines no splits"
                )
            keep = [i for i in keep if splits[i] == want]
            if not keep:
                present = sorted({s for s in splits if s is not None})
                raise DataSourceError(f"{spec}: no rows in split {split!r}; splits present: {present}")
        if limit is not None:
            if limit < 0:
                raise DataSourceError(f"--limit must be >= 0, got {limit}")
            keep = keep[:limit]
        pick = (lambda col: [col[i] for i in keep]) if len(keep) != n else (lambda col: list(col))
        keep_arr = np.asarray(keep, dtype=np.int64)
        self.spec = spec
        self.ids = pick(ids)
        self.images = pick(images) if images is not None else None
        self.captions = pick(captions) if captions is not None else None
        # labels as numpy columns: cheap to subset and to fingerprint at CelebA scale (200k x 40)
        self.labels = {}
        for k, v in labels.items():
            arr = np.asarray(v)
            if arr.dtype == object or arr.dtype.kind not in "biuf":
                arr = np.asarray(v, dtype=np.float64)
            self.labels[k] = arr[keep_arr] if len(keep) != n else arr
        self.splits = pick(splits) if splits is not None else None
        self.label_columns = list(labels)
        self.has_images = images is not None
        self.has_captions = captions is not None
        self.split = normalise_split(split) if split is not None else None
        self.limit = limit
        self.info = dict(info or {})

    def __len__(self) -> int:
        return len(self.ids)

    def row_id(self, index: int) -> str:
        return self.ids[self._check(index)]

    def _check(self, index: int) -> int:
        n = len(self.ids)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"row {index} out of range for {n} rows")
        return index

    def _load_image(self, index: int):
        from clipica.data.images import decode_image

        return decode_image(self.images[index], name=f"{self.ids[index]} ({self.images[index]})")

    def caption_of(self, index: int) -> str | None:
        return self.captions[index] if self.captions is not None else None

    def __getitem__(self, index: int) -> Row:
        index = self._check(index)
        image = self._load_image(index) if self.images is not None else None
        return Row(
            id=self.ids[index],
            image=image,
            caption=self.caption_of(index),
            labels={k: v[index].item() for k, v in self.labels.items()},
            split=self.splits[index] if self.splits is not None else None,
        )

    def fingerprint(self) -> str:
        """Hash of spec, options, ids, captions, splits, image locations and label values,
        and of every image file's size and modification time (a replaced image changes it)."""
        h = hashlib.sha256()
        h.update(json.dumps([self.spec, self.split, self.limit, len(self.ids)]).encode())
        for col in (self.ids, self._fingerprint_captions(), self.splits, self.images):
            if col is None:
                h.update(b"\x01<none>")
            else:  # \x00 separates entries, \x02 marks a missing one
                h.update("\x00".join("\x02" if v is None else str(v) for v in col).encode("utf-8", "replace"))
        if self.images is not None:
            h.update(_file_stats(self.images))
        for k, v in self.labels.items():
            h.update(k.encode() + str(v.dtype).encode())
            h.update(np.ascontiguousarray(v).tobytes())
        return h.hexdigest()[:16]

    def _fingerprint_captions(self):
        return self.captions

    def describe(self) -> dict:
        out = {
            "spec": self.spec,
            "n_rows": len(self),
            "split": self.split,
            "limit": self.limit,
            "has_captions": self.has_captions,
            "label_columns": list(self.label_columns),
        }
        out.update(self.info)
        return out


def _file_stats(locations) -> bytes:
    """``size:mtime_ns`` of every location that is a file path ('-' when it cannot be read)."""
    parts = []
    for loc in locations:
        if isinstance(loc, (str, os.PathLike)):
            try:
                st = os.stat(loc)
                parts.append(f"{st.st_size}:{st.st_mtime_ns}")
            except (OSError, ValueError):
                parts.append("-")
        else:
            parts.append("")
    return "\x00".join(parts).encode()


def _first_duplicate(ids):
    seen = set()
    for i in ids:
        if i in seen:
            return i
        seen.add(i)
    return None


def _as_list(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def _label_columns(columns, explicit, used, spec: str, is_label) -> list:
    """The label columns: those named (all must exist), else every unused column ``is_label`` accepts."""
    wanted = _as_list(explicit)
    if wanted is not None:
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise DataSourceError(f"{spec}: label columns {missing} not found; columns: {columns}")
        return wanted
    return [c for c in columns if c not in used and is_label(c)]


def _pick_column(columns, explicit, candidates, what, spec, required=False):
    if explicit is not None:
        if explicit not in columns:
            raise DataSourceError(f"{spec}: {what} column {explicit!r} not found; columns: {list(columns)}")
        return explicit
    lower = {str(c).lower(): c for c in columns}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    if required:
        raise DataSourceError(
            f"{spec}: cannot find the {what} column; expected one of {list(candidates)} "
            f"(or name it with the {what}_column option); columns: {list(columns)}"
        )
    return None


def source_from_frame(
    frame,
    spec: str,
    base_dir: Path,
    *,
    image_column: str | None = None,
    caption_column: str | None = None,
    id_column: str | None = None,
    split_column: str | None = None,
    label_columns=None,
    split: str | None = None,
    limit: int | None = None,
    info: dict | None = None,
    image_required: bool = True,
) -> RecordsSource:
    """Build a :class:`RecordsSource` from a pandas DataFrame of one row per sample."""
    import pandas as pd

    cols = list(frame.columns)
    img_col = _pick_column(cols, image_column, IMAGE_COLUMNS, "image", spec, required=image_required)
    cap_col = _pick_column(cols, caption_column, CAPTION_COLUMNS, "caption", spec)
    id_col = _pick_column(cols, id_column, ID_COLUMNS, "id", spec)
    split_col = _pick_column(cols, split_column, SPLIT_COLUMNS, "split", spec)
    used = {c for c in (img_col, cap_col, id_col, split_col) if c is not None}
    frame = _boolean_words_as_binary(frame, [c for c in cols if c not in used])
    label_cols = _label_columns(
        cols, label_columns, used, spec,
        lambda c: pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]),
    )
    labels = {}
    for c in label_cols:
        series = frame[c]
        if pd.api.types.is_bool_dtype(series):
            series = series.astype(int)
        if not pd.api.types.is_numeric_dtype(series):
            raise DataSourceError(f"{spec}: label column {c!r} is not numeric (dtype {series.dtype})")
        if pd.api.types.is_integer_dtype(series):
            labels[str(c)] = [int(v) for v in series]
        else:
            labels[str(c)] = [float(v) for v in series]

    images = None
    if img_col is not None:
        images = []
        for v in frame[img_col]:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                images.append(base_dir / "<missing path>")
                continue
            p = Path(str(v)).expanduser()
            images.append(str(p if p.is_absolute() else base_dir / p))
    if id_col is not None:
        ids = [str(v) for v in frame[id_col]]
    elif img_col is not None:
        ids = [str(v) for v in frame[img_col]]
    else:
        ids = [str(i) for i in range(len(frame))]
    captions = None
    if cap_col is not None:
        captions = [None if _isnull(v) else str(v) for v in frame[cap_col]]
    splits = [normalise_split(v) for v in frame[split_col]] if split_col is not None else None
    meta = {"image_column": img_col, "caption_column": cap_col, "id_column": id_col, "split_column": split_col}
    meta.update(info or {})
    return RecordsSource(spec, ids, images, captions, labels, splits, split=split, limit=limit, info=meta)


#: spellings of a binary label in text tables (case and surrounding spaces ignored)
BOOLEAN_WORDS = {"yes": 1, "no": 0, "true": 1, "false": 0, "y": 1, "n": 0}


def _boolean_words_as_binary(frame, columns):
    """``frame`` with each text column of ``columns`` whose values are all boolean words
    (:data:`BOOLEAN_WORDS`; empty cells are missing labels) read as 0/1: a ``yes``/``no``
    column is a binary label, not a column to drop. Other columns are left as they are."""
    import pandas as pd

    out = frame
    for c in columns:
        series = frame[c]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        words = series.map(lambda v: None if _isnull(v) or not str(v).strip() else str(v).strip().lower())
        known = words.dropna()
        if known.empty or not known.isin(list(BOOLEAN_WORDS)).all():
            continue
        values = words.map(BOOLEAN_WORDS.get)
        out = out.copy() if out is frame else out
        out[c] = values.astype("int64") if values.notna().all() else values.astype("float64")
    return out


def _isnull(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def read_table(path: Path, kind: str, spec: str):
    """Read a CSV or JSON-lines file into a DataFrame, with errors for people."""
    import pandas as pd

    if not path.exists():
        raise DataSourceError(f"{spec}: file not found: {path}")
    if path.is_dir():
        raise DataSourceError(f"{spec}: expected a {kind} file, got a directory: {path}")
    try:
        if kind == "csv":
            # keep ids and paths as written (no "001" -> 1)
            frame = pd.read_csv(path, dtype={c: str for c in (*IMAGE_COLUMNS, *ID_COLUMNS)})
        else:
            frame = pd.read_json(path, lines=True, dtype=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataSourceError(f"{spec}: cannot parse {path} as {kind}: {exc}") from None
    return frame


def open_table(kind: str, arg: str, spec: str, *, split=None, limit=None, **opts) -> RecordsSource:
    """``csv:FILE`` / ``jsonl:FILE``: image paths are relative to the file's folder."""
    path = Path(os.path.expanduser(arg))
    frame = read_table(path, kind, spec)
    _reject_unknown(opts, {"image_column", "caption_column", "id_column", "split_column", "label_columns"}, spec)
    return source_from_frame(
        frame, spec, path.parent, split=split, limit=limit, info={"format": kind, "file": str(path)}, **opts
    )


def _reject_unknown(opts: dict, allowed: set, spec: str) -> None:
    extra = sorted(set(opts) - allowed)
    if extra:
        raise DataSourceError(f"{spec}: unknown option(s) {extra}; valid options: {sorted(allowed)}")
