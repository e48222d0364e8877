"""``folder:DIR``: a folder of images, following Hugging Face's ``imagefolder`` convention.

- With ``metadata.csv`` or ``metadata.jsonl`` at the top: one row per line, in
  file order; ``file_name`` (path relative to DIR) names the image, ``caption``
  /``text`` the caption, numeric columns are labels, a ``split`` column
  splits. A listed file that is missing or broken becomes a bad row.
- Without metadata: every image file under DIR (symlinked subfolders
  followed, each folder once: a link loop is skipped with a warning),
  sorted by relative path. When
  the top-level folders are ``train``/``val``/``validation``/``test`` they are
  the splits; the folder right above each image is its class, stored as the
  label ``label`` (index into the sorted class names, listed by ``describe()``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from clipica.data.images import is_image_file
from clipica.data.table import (
    RecordsSource,
    _reject_unknown,
    normalise_split,
    read_table,
    source_from_frame,
)
from clipica.errors import DataSourceError

_SPLIT_DIRS = {"train", "val", "valid", "validation", "test", "dev"}
_OPTIONS = {"image_column", "caption_column", "id_column", "split_column", "label_columns"}


def open_folder(arg: str, spec: str, *, split=None, limit=None, **opts) -> RecordsSource:
    root = Path(os.path.expanduser(arg))
    if not root.is_dir():
        raise DataSourceError(f"{spec}: not a directory: {root}")
    _reject_unknown(opts, _OPTIONS, spec)
    for name, kind in (("metadata.csv", "csv"), ("metadata.jsonl", "jsonl")):
        meta = root / name
        if meta.is_file():
            frame = read_table(meta, kind, spec)
            opts.setdefault("image_column", "file_name" if "file_name" in frame.columns else None)
            return source_from_frame(
                frame, spec, root, split=split, limit=limit,
                info={"format": "imagefolder", "metadata": name}, **opts,
            )
    if opts:
        raise DataSourceError(f"{spec}: options {sorted(opts)} need a metadata.csv or metadata.jsonl in {root}")
    return _scan(root, spec, split=split, limit=limit)


def _scan(root: Path, spec: str, *, split, limit) -> RecordsSource:
    files = []
    # symlinked subfolders are followed; a folder reached a second time (a link loop, or
    # a link to a folder already included) is skipped with a warning, so the walk ends
    seen = {os.path.realpath(root)}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        keep = []
        for d in sorted(d for d in dirnames if not d.startswith(".")):
            real = os.path.realpath(os.path.join(dirpath, d))
            if real in seen:
                rel = Path(dirpath, d).relative_to(root).as_posix()
                warnings.warn(f"{spec}: skipping {rel}: it links to {real}, a folder already included "
                              "(a symlink loop or a second link to it)", stacklevel=3)
                continue
            seen.add(real)
            keep.append(d)
        dirnames[:] = keep
        for fn in filenames:
            if not fn.startswith(".") and is_image_file(fn):
                files.append(Path(dirpath, fn).relative_to(root))
    files.sort(key=lambda p: p.as_posix())
    if not files:
        raise DataSourceError(f"{spec}: no image files found under {root}")
    splits = None
    if all(len(p.parts) > 1 and p.parts[0].lower() in _SPLIT_DIRS for p in files):
        splits = [normalise_split(p.parts[0]) for p in files]
    depth0 = 1 if splits is not None else 0
    # class = the folder right above the image, when every image has one below the split level
    classes = None
    labels: dict[str, list] = {}
    if all(len(p.parts) > depth0 + 1 for p in files):
        class_names = [p.parts[-2] for p in files]
        classes = sorted(set(class_names))
        index = {c: i for i, c in enumerate(classes)}
        labels["label"] = [index[c] for c in class_names]
    ids = [p.as_posix() for p in files]
    images = [str(root / p) for p in files]
    info = {"format": "imagefolder", "metadata": None, "class_names": classes}
    return RecordsSource(spec, ids, images, None, labels, splits, split=split, limit=limit, info=info)
