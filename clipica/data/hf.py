"""``hf:NAME_OR_PATH[:SPLIT]``: a Hugging Face ``datasets`` dataset.

A local folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``
is opened with ``load_from_disk``; any other local folder or a hub name goes
through ``datasets.load_dataset`` (the hub only when it is reachable; offline,
only what is already in the HF cache). The split comes from ``:SPLIT`` or
``--split`` (default: ``train`` when the dataset has one, else its only split).

Columns are detected (an ``Image`` feature or a column named like ``image``;
a string column named like ``caption``/``text``, or a list of strings whose
first entry is used; numeric, boolean and ``ClassLabel`` columns as labels) or
named with the options ``image_column``, ``caption_column``, ``id_column`` and
``label_columns``. Images are decoded by clipica's safe decoder, never by
``datasets``, so a corrupt entry is one bad row, not a crash.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from clipica.data.base import Row, Source
from clipica.data.table import (
    CAPTION_COLUMNS,
    ID_COLUMNS,
    IMAGE_COLUMNS,
    _label_columns,
    _reject_unknown,
    normalise_split,
)
from clipica.errors import DataSourceError

_OPTIONS = {"image_column", "caption_column", "id_column", "label_columns"}


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """True when a TCP connection to the hub opens (False at once when DNS fails)."""
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def offline_hub():
    """Make huggingface_hub/datasets use their caches only, for the duration (no retry loops)."""
    import huggingface_hub.constants as hc

    saved = [(hc, "HF_HUB_OFFLINE", hc.HF_HUB_OFFLINE)]
    hc.HF_HUB_OFFLINE = True
    try:
        import datasets.config as dc

        saved.append((dc, "HF_HUB_OFFLINE", dc.HF_HUB_OFFLINE))
        dc.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover
        pass
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def _hf_cache_dir() -> str:
    try:
        import datasets.config as dc

        return str(dc.HF_DATASETS_CACHE)
    except Exception:  # pragma: no cover
        return "~/.cache/huggingface/datasets"


def _load(name: str, split: str | None, spec: str):
    import datasets

    path = Path(os.path.expanduser(name))
    if path.is_dir() and ((path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file()
                          or (path / "state.json").is_file()):
        try:
            ds = datasets.load_from_disk(str(path))
        except Exception as exc:  # noqa: BLE001 - datasets raises many kinds
            raise DataSourceError(f"{spec}: cannot load the saved dataset in {path}: {exc}") from None
        return ds, "load_from_disk"
    local = path.exists()
    ctx = contextlib.nullcontext() if local or hub_reachable() else offline_hub()
    try:
        with ctx:
            ds = datasets.load_dataset(str(path) if local else name, split=split)
    except Exception as exc:  # noqa: BLE001
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if local:
            raise DataSourceError(f"{spec}: datasets.load_dataset cannot read {path}: {msg}") from None
        raise DataSourceError(
            f"{spec}: cannot load dataset {name!r} ({msg}). Offline, only datasets already in the "
            f"HF cache ({_hf_cache_dir()}) can be used: download it where the hub is reachable "
            f"(datasets.load_dataset({name!r}).save_to_disk(DIR)) and pass hf:DIR"
        ) from None
    return ds, "load_dataset"


def open_hf(arg: str, spec: str, *, split=None, limit=None, **opts) -> HFSource:
    import datasets

    _reject_unknown(opts, _OPTIONS, spec)
    name, spec_split = arg, None
    if not Path(os.path.expanduser(arg)).exists() and ":" in arg:
        name, spec_split = arg.rsplit(":", 1)
    if spec_split and split and spec_split != split:
        raise DataSourceError(f"{spec}: the spec names split {spec_split!r} but --split is {split!r}")
    want = spec_split or split
    ds, how = _load(name, want, spec)
    if isinstance(ds, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        names = list(ds.keys())
        if want is None:
            want = "train" if "train" in names else (names[0] if len(names) == 1 else None)
            if want is None:
                raise DataSourceError(f"{spec}: the dataset has splits {names}; choose one with :SPLIT or --split")
        if want not in ds:
            raise DataSourceError(f"{spec}: no split {want!r}; splits: {names}")
        ds = ds[want]
    elif isinstance(ds, datasets.Dataset) and want is not None and how == "load_from_disk":
        saved = str(ds.split) if ds.split is not None else None
        if saved is not None and saved != want:
            raise DataSourceError(f"{spec}: this saved dataset is split {saved!r}, not {want!r}")
    if isinstance(ds, datasets.IterableDataset):
        raise DataSourceError(f"{spec}: streaming datasets are not supported; load or save it to disk first")
    return HFSource(spec, ds, split=want, limit=limit, loaded_with=how, **opts)


class HFSource(Source):
    """Rows of a ``datasets.Dataset`` (random access on its Arrow table)."""

    def __init__(self, spec, ds, *, split=None, limit=None, loaded_with="load_from_disk",
                 image_column=None, caption_column=None, id_column=None, label_columns=None):
        import datasets

        features = ds.features
        cols = list(features)

        def pick(explicit, candidates, what, ok=lambda c: True):
            if explicit is not None:
                if explicit not in cols:
                    raise DataSourceError(f"{spec}: {what} column {explicit!r} not found; columns: {cols}")
                return explicit
            lower = {c.lower(): c for c in cols}
            for cand in candidates:
                if cand in lower and ok(lower[cand]):
                    return lower[cand]
            return None

        image_col = image_column
        if image_col is None:
            image_col = next((c for c in cols if isinstance(features[c], datasets.Image)), None)
        image_col = pick(image_col, IMAGE_COLUMNS, "image")
        if image_col is None:
            raise DataSourceError(
                f"{spec}: no image column found (an Image feature or a column named {list(IMAGE_COLUMNS)}); "
                f"name it with the image_column option; columns: {cols}"
            )

        def is_text(c):
            f = features[c]
            if isinstance(f, datasets.Value):
                return f.dtype in ("string", "large_string")
            inner = getattr(f, "feature", None) if not isinstance(f, list) else f[0]
            return isinstance(inner, datasets.Value) and inner.dtype in ("string", "large_string")

        caption_col = pick(caption_column, CAPTION_COLUMNS, "caption", is_text)
        id_col = pick(id_column, ID_COLUMNS, "id")
        used = {image_col, caption_col, id_col}
        numeric = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                   "float16", "float32", "float64", "bool")
        labels = _label_columns(
            cols, label_columns, used, spec,
            lambda c: isinstance(features[c], datasets.ClassLabel)
            or (isinstance(features[c], datasets.Value) and features[c].dtype in numeric),
        )
        if isinstance(features[image_col], datasets.Image):
            ds = ds.cast_column(image_col, datasets.Image(decode=False))
        if limit is not None:
            if limit < 0:
                raise DataSourceError(f"--limit must be >= 0, got {limit}")
            ds = ds.select(range(min(limit, len(ds))))
        self.spec = spec
        self.ds = ds
        if split is None and getattr(ds, "split", None) is not None:
            split = str(ds.split)
        self.split = split
        self._row_split = normalise_split(split) if split is not None else None
        self.limit = limit
        self.image_column, self.caption_column, self.id_column = image_col, caption_col, id_col
        self.label_columns = list(labels)
        self.has_captions = caption_col is not None
        self.loaded_with = loaded_with
        self.class_names = {
            c: list(features[c].names) for c in labels if isinstance(features[c], datasets.ClassLabel)
        }
        self._ids = None

    def __len__(self) -> int:
        return len(self.ds)

    def _ids_list(self) -> list[str]:
        if self._ids is None:
            if self.id_column is not None:
                self._ids = [str(v) for v in self.ds[self.id_column]]
            else:
                self._ids = [str(i) for i in range(len(self.ds))]
        return self._ids

    def row_id(self, index: int) -> str:
        return self._ids_list()[index]

    def __getitem__(self, index: int) -> Row:
        from clipica.data.images import decode_image
        from clipica.errors import BadImageError

        n = len(self.ds)
        if not -n <= index < n:
            raise IndexError(f"row {index} out of range for {n} rows")
        index %= n
        rec = self.ds[index]
        rid = str(rec[self.id_column]) if self.id_column is not None else str(index)
        value = rec[self.image_column]
        if isinstance(value, dict):
            data, path = value.get("bytes"), value.get("path")
            if data:
                image = decode_image(data, name=f"{rid} ({path or 'embedded bytes'})")
            elif path:
                image = decode_image(path, name=f"{rid} ({path})")
            else:
                raise BadImageError(f"{rid}: no image data (empty bytes and no path)")
        elif isinstance(value, (bytes, str)) or value is None:
            if value is None:
                raise BadImageError(f"{rid}: no image (null)")
            image = decode_image(value, name=f"{rid} ({value if isinstance(value, str) else 'bytes'})")
        else:  # an already decoded PIL image
            from clipica.data.images import to_rgb

            image = to_rgb(value, name=rid)
        caption = None
        if self.caption_column is not None:
            caption = rec[self.caption_column]
            if isinstance(caption, (list, tuple)):
                caption = caption[0] if caption else None
            caption = None if caption is None else str(caption)
        labels = {}
        for c in self.label_columns:
            v = rec[c]
            labels[c] = int(v) if isinstance(v, bool) else v
        return Row(id=rid, image=image, caption=caption, labels=labels, split=self._row_split)

    def fingerprint(self) -> str:
        import hashlib

        key = f"{self.spec}|{self.split}|{self.limit}|{len(self)}|{getattr(self.ds, '_fingerprint', '')}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def describe(self) -> dict:
        return {
            "spec": self.spec,
            "n_rows": len(self),
            "split": self.split,
            "limit": self.limit,
            "loaded_with": self.loaded_with,
            "image_column": self.image_column,
            "caption_column": self.caption_column,
            "id_column": self.id_column,
            "label_columns": list(self.label_columns),
            "class_names": self.class_names,
            "has_captions": self.has_captions,
        }
