"""Dataset sources: ``clipica.open_source(spec)`` turns a ``--data`` spec into a :class:`Source`.

Specs (see ARCHITECTURE.md)::

    synthetic-faces[:N]        generated faces with known latents (clipica.data.synthetic_faces)
    celeba:DIR                 CelebA, official layout
    hf:NAME_OR_PATH[:SPLIT]    a Hugging Face dataset (hub name or save_to_disk folder)
    folder:DIR                 a folder of images (imagefolder convention, optional metadata.csv/jsonl)
    csv:FILE / jsonl:FILE      a table of image paths, captions and labels

Options common to all: ``split`` (keep one split) and ``limit`` (the first N
rows after the split). Column options (``image_column``, ``caption_column``,
``id_column``, ``label_columns``) apply to hf/folder/csv/jsonl, ``captions``
(a captions file) to celeba. Row order is deterministic for every source.
"""

from __future__ import annotations

from clipica.data.base import Row, Source
from clipica.errors import DataSourceError

__all__ = ["Row", "Source", "open_source", "resolve_spec", "SCHEMES", "SubsetSource"]

SCHEMES = ("synthetic-faces", "celeba", "hf", "folder", "csv", "jsonl")


def open_source(spec: str, *, split: str | None = None, limit: int | None = None, **opts) -> Source:
    """Open the dataset named by ``spec``.

    Parameters
    ----------
    spec : a ``--data`` spec, e.g. ``"celeba:/data/celeba"`` or ``"synthetic-faces:2000"``.
    split : keep only rows of this split ("train", "val", "test"; "validation" = "val").
    limit : keep the first ``limit`` rows (after the split filter).
    **opts : source-specific options (column names, captions file; see the module docstring).
        ``None`` values are ignored.

    Raises
    ------
    DataSourceError for an unknown scheme, a missing path or a bad layout.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise DataSourceError(f"--data must be a spec like 'celeba:DIR'; got {spec!r}")
    opts = {k: v for k, v in opts.items() if v is not None}
    if limit is not None:
        limit = int(limit)
        if limit < 0:
            raise DataSourceError(f"--limit must be >= 0, got {limit}")
    spec = spec.strip()
    scheme, sep, arg = spec.partition(":")
    scheme = scheme.lower()
    if scheme == "synthetic-faces":
        return _open_synthetic(spec, arg if sep else "", split=split, limit=limit, **opts)
    if scheme not in SCHEMES:
        raise DataSourceError(
            f"unknown data spec {spec!r}: expected SCHEME:ARG with SCHEME one of "
            f"{', '.join(SCHEMES)} (e.g. celeba:/data/celeba, folder:./images, synthetic-faces:2000)"
        )
    if not arg:
        raise DataSourceError(f"data spec {spec!r} is missing its argument after '{scheme}:'")
    if scheme == "celeba":
        from clipica.data.celeba import open_celeba

        return open_celeba(arg, spec, split=split, limit=limit, **opts)
    if scheme == "hf":
        from clipica.data.hf import open_hf

        return open_hf(arg, spec, split=split, limit=limit, **opts)
    if scheme == "folder":
        from clipica.data.folder import open_folder

        return open_folder(arg, spec, split=split, limit=limit, **opts)
    from clipica.data.table import open_table

    return open_table(scheme, arg, spec, split=split, limit=limit, **opts)


def resolve_spec(spec: str, options: dict | None = None) -> tuple[str, dict]:
    """``spec`` and source ``options`` with local paths made absolute (``~`` expanded).

    Stores record the resolved form, so that reopening the source later
    (interventions, traversals, decoder training) works from any working
    directory. Hub names (``hf:ORG/NAME``) and generated sources stay as given.
    """
    import os

    options = dict(options or {})
    if not isinstance(spec, str):
        return spec, options
    scheme, sep, arg = spec.strip().partition(":")
    low = scheme.lower()

    def absolute(path: str) -> str:
        return os.path.abspath(os.path.expanduser(path))

    if sep and arg and low in ("celeba", "folder", "csv", "jsonl"):
        spec = f"{scheme}:{absolute(arg)}"
    elif sep and arg and low == "hf":
        name, split_sep, split = arg, "", ""
        if not os.path.exists(os.path.expanduser(arg)) and ":" in arg:
            name, split_sep, split = arg.rpartition(":")
        if os.path.exists(os.path.expanduser(name)):  # a save_to_disk folder, not a hub name
            spec = f"{scheme}:{absolute(name)}{split_sep}{split}"
    captions = options.get("captions")
    if isinstance(captions, str) and captions and os.path.exists(os.path.expanduser(captions)):
        options["captions"] = absolute(captions)
    return spec, options


def _open_synthetic(spec: str, arg: str, *, split=None, limit=None, **opts) -> Source:
    try:
        from clipica.data.synthetic_faces import SyntheticFaces
    except ModuleNotFoundError as exc:
        if exc.name == "clipica.data.synthetic_faces":
            raise DataSourceError("synthetic-faces is not available in this build of clipica") from None
        raise
    kwargs = dict(opts)
    arg, _, query = arg.partition("?")  # synthetic-faces:N?seed=1&image_size=224 (the source's own spec form)
    for item in filter(None, query.split("&")):
        k, sep, v = item.partition("=")
        if not sep:
            raise DataSourceError(f"{spec}: options after '?' look like key=value, got {item!r}")
        kwargs[k] = int(v) if v.lstrip("-").isdigit() else v
    if arg:
        try:
            kwargs["n"] = int(arg)
        except ValueError:
            raise DataSourceError(f"{spec}: N must be a whole number, e.g. synthetic-faces:2000") from None
        if kwargs["n"] <= 0:
            raise DataSourceError(f"{spec}: N must be positive")
    try:
        source = SyntheticFaces(**kwargs)
    except TypeError as exc:
        raise DataSourceError(f"{spec}: bad option for synthetic-faces ({exc})") from None
    if split is None and limit is None:
        return source
    return SubsetSource.select(source, split=split, limit=limit)


class SubsetSource(Source):
    """Rows ``indices`` of another source (split filter / limit for sources without their own)."""

    def __init__(self, base: Source, indices: list[int], *, split=None, limit=None):
        self.base = base
        self.indices = list(indices)
        self.spec = base.spec
        self.label_columns = list(base.label_columns)
        self.has_images = getattr(base, "has_images", True)
        self.has_captions = getattr(base, "has_captions", True)
        self.split, self.limit = split, limit

    @classmethod
    def select(cls, base: Source, *, split=None, limit=None) -> SubsetSource:
        from clipica.data.table import normalise_split

        indices = range(len(base))
        if split is not None:
            want = normalise_split(split)
            split_of = getattr(base, "split_of", None)
            if split_of is None and len(base) and base[0].split is None:
                raise DataSourceError(f"{base.spec}: --split {split} was given but this dataset defines no splits")
            # without a cheap accessor, read the rows (generated sources decode fast)
            indices = [i for i in indices if (split_of(i) if split_of else base[i].split) == want]
            if not indices:
                raise DataSourceError(f"{base.spec}: no rows in split {split!r}")
        indices = list(indices)
        if limit is not None:
            indices = indices[:limit]
        return cls(base, indices, split=split, limit=limit)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Row:
        return self.base[self.indices[index]]

    def row_id(self, index: int) -> str:
        return self.base.row_id(self.indices[index])

    def fingerprint(self) -> str:
        import hashlib

        key = f"{self.base.fingerprint()}|{self.split}|{self.limit}|{len(self)}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def describe(self) -> dict:
        out = dict(self.base.describe())
        out.update({"n_rows": len(self), "split": self.split, "limit": self.limit})
        return out
