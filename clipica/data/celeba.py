"""``celeba:DIR``: CelebA in its official layout.

::

    DIR/img_align_celeba/000001.jpg ...      (also DIR/img_align_celeba/img_align_celeba/, as some mirrors ship it)
    DIR/list_attr_celeba.txt                 line 1: image count; line 2: the 40 attribute names;
                                             then "000001.jpg -1  1 ..." (values -1/1)
    DIR/list_eval_partition.txt              "000001.jpg 0" with 0/1/2 = train/val/test (optional)

The Kaggle CSV variants (``list_attr_celeba.csv``, ``list_eval_partition.csv``)
are read too. Attributes become 0/1 ints under CelebA's own column names, in
the file's order; rows follow the attribute file's order.

Captions: from a captions file keyed by image id when one is given
(``captions=PATH`` option) or found in DIR (``captions.jsonl``, ``captions.csv``,
``captions.txt`` with "000001.jpg some text" lines, or a ``captions/`` /
``celeba-caption/`` folder of ``<stem>.txt`` files); otherwise generated from
the attributes by templates ("a photo of a smiling woman with blond hair
wearing eyeglasses"). ``describe()["captions"]`` says which.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from clipica.data.table import RecordsSource, _reject_unknown
from clipica.errors import DataSourceError

#: CelebA's 40 attributes, in the order of list_attr_celeba.txt
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
    "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
    "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()

PARTITIONS = {"0": "train", "1": "val", "2": "test"}
_CAPTION_FILES = ("captions.jsonl", "captions.csv", "captions.txt")
_CAPTION_DIRS = ("captions", "celeba-caption")


def template_caption(attrs: dict) -> str:
    """A caption built from CelebA attributes (0/1), deterministic.

    >>> template_caption({"Smiling": 1, "Male": 0, "Blond_Hair": 1, "Eyeglasses": 1})
    'a photo of a smiling woman with blond hair wearing eyeglasses'
    """

    def on(name):
        return attrs.get(name) == 1

    adjectives = []
    if on("Smiling"):
        adjectives.append("smiling")
    if attrs.get("Young") == 0:
        adjectives.append("older")
    if on("Bald"):
        adjectives.append("bald")
    noun = {1: "man", 0: "woman"}.get(attrs.get("Male"), "person")
    words = [*adjectives, noun]
    article = "an" if words[0][0] in "aeiou" else "a"

    with_parts = []
    hair = [c for c in ("blond", "black", "brown", "gray") if on(f"{c.capitalize()}_Hair")]
    texture = "wavy " if on("Wavy_Hair") else "straight " if on("Straight_Hair") else ""
    if hair and not on("Bald"):
        with_parts.append(f"{texture}{' and '.join(hair)} hair")
    elif texture and not on("Bald"):
        with_parts.append(f"{texture}hair")
    if on("Bangs"):
        with_parts.append("bangs")
    if attrs.get("No_Beard") == 0:
        with_parts.append("a beard")
    if on("Mustache"):
        with_parts.append("a mustache")
    if on("Goatee"):
        with_parts.append("a goatee")
    wearing = [
        text
        for name, text in (
            ("Eyeglasses", "eyeglasses"),
            ("Wearing_Hat", "a hat"),
            ("Wearing_Lipstick", "lipstick"),
            ("Wearing_Earrings", "earrings"),
            ("Wearing_Necklace", "a necklace"),
            ("Wearing_Necktie", "a necktie"),
        )
        if on(name)
    ]
    caption = f"a photo of {article} {' '.join(words)}"
    if with_parts:
        caption += " with " + _join(with_parts)
    if wearing:
        caption += " wearing " + _join(wearing)
    return caption


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _read_attr_txt(path: Path, spec: str):
    """list_attr_celeba.txt -> (ids, names, (n, k) int array of -1/1)."""
    import numpy as np
    import pandas as pd

    with open(path, encoding="utf-8") as f:
        first = f.readline()
        header = f.readline()
    if not header:
        raise DataSourceError(f"{spec}: {path.name} is too short: expected a count line and a header line")
    try:
        count = int(first.strip())
    except ValueError:
        raise DataSourceError(
            f"{spec}: {path.name} line 1 should be the image count, got {first[:60]!r}"
        ) from None
    names = header.split()
    try:  # pandas' C parser: a second for the 202,599 x 40 official file
        frame = pd.read_csv(path, sep=r"\s+", skiprows=2, header=None, names=["id", *names],
                            dtype={"id": str}, engine="c")
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"{spec}: {path.name} is not in the official layout ({exc})") from None
    if frame[names].isna().any().any():
        raise DataSourceError(f"{spec}: {path.name}: some rows have fewer than {len(names)} values")
    try:
        rows = frame[names].to_numpy(dtype=np.int64)
    except (ValueError, TypeError):
        raise DataSourceError(f"{spec}: {path.name}: attribute values must be -1 or 1") from None
    ids = frame["id"].tolist()
    if count != len(ids):
        raise DataSourceError(f"{spec}: {path.name} announces {count} images but lists {len(ids)}")
    return ids, names, rows


def _read_attr_csv(path: Path, spec: str):
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise DataSourceError(f"{spec}: {path.name} is empty")
        names = header[1:]
        ids, rows = [], []
        for lineno, parts in enumerate(reader, start=2):
            if not parts:
                continue
            if len(parts) != len(names) + 1:
                raise DataSourceError(
                    f"{spec}: {path.name} line {lineno} has {len(parts) - 1} values for {len(names)} attributes"
                )
            try:
                rows.append([int(v) for v in parts[1:]])
            except ValueError:
                raise DataSourceError(f"{spec}: {path.name} line {lineno}: values must be -1 or 1") from None
            ids.append(parts[0])
    return ids, names, rows


def _read_partition(root: Path, spec: str) -> dict[str, str] | None:
    txt, csvp = root / "list_eval_partition.txt", root / "list_eval_partition.csv"
    if txt.is_file():
        pairs = [line.split() for line in txt.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif csvp.is_file():
        lines = csvp.read_text(encoding="utf-8").splitlines()[1:]
        pairs = [line.split(",") for line in lines if line.strip()]
    else:
        return None
    out = {}
    for parts in pairs:
        if len(parts) != 2 or parts[1].strip() not in PARTITIONS:
            raise DataSourceError(f"{spec}: bad line in the partition file: {' '.join(parts)!r} (expected 'ID 0|1|2')")
        out[parts[0].strip()] = PARTITIONS[parts[1].strip()]
    return out


def _find_captions(root: Path, explicit: str | None) -> Path | None:
    if explicit is not None:
        path = Path(os.path.expanduser(explicit))
        return path if path.is_absolute() or path.exists() else root / path
    for name in _CAPTION_FILES:
        if (root / name).is_file():
            return root / name
    for name in _CAPTION_DIRS:
        if (root / name).is_dir():
            return root / name
    return None


def _read_captions(path: Path, spec: str) -> dict[str, str]:
    """Captions file -> {id or stem: caption}."""
    if not path.exists():
        raise DataSourceError(f"{spec}: captions file not found: {path}")
    out: dict[str, str] = {}
    if path.suffix == ".jsonl":
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataSourceError(f"{spec}: {path.name} line {lineno} is not JSON: {exc}") from None
            key = next((rec[k] for k in ("id", "image_id", "file_name", "image") if k in rec), None)
            text = next((rec[k] for k in ("caption", "text") if k in rec), None)
            if key is None or text is None:
                raise DataSourceError(f"{spec}: {path.name} line {lineno} needs an id and a caption field")
            out[str(key)] = str(text)
    elif path.suffix == ".csv":
        import csv

        with open(path, newline="", encoding="utf-8") as f:
            for rec in csv.DictReader(f):
                key = next((rec[k] for k in ("id", "image_id", "file_name", "image") if k in rec), None)
                text = next((rec[k] for k in ("caption", "text") if k in rec), None)
                if key is None or text is None:
                    raise DataSourceError(f"{spec}: {path.name} needs an id column and a caption column")
                out[str(key)] = text
    else:  # "000001.jpg a caption with spaces"
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _, text = line.strip().partition(" ")
            if key:
                out[key] = text.strip()
    return out


def _count_missing(captions, caption_dir) -> int | None:
    if caption_dir is not None:
        return None  # per-image files are read lazily; missing ones are counted in the store
    return 0 if captions is None else sum(c is None for c in captions)


class CelebASource(RecordsSource):
    """CelebA rows; captions come from a file, a per-image folder, or attribute templates."""

    def __init__(self, *args, caption_dir: Path | None = None, templated: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.caption_dir = caption_dir
        self.templated = templated
        if templated:
            self.has_captions = True

    def _fingerprint_captions(self):
        # templated captions are a function of the labels (hashed anyway) and the template code
        return ["<templated v1>"] if self.templated else self.captions

    def caption_of(self, index: int) -> str | None:
        if self.templated:
            return template_caption({k: int(v[index]) for k, v in self.labels.items()})
        if self.caption_dir is None:
            return super().caption_of(index)
        stem = Path(self.ids[index]).stem
        for name in (f"{stem}.txt", f"{int(stem)}.txt" if stem.isdigit() else None):
            if name and (self.caption_dir / name).is_file():
                lines = [ln.strip() for ln in (self.caption_dir / name).read_text(encoding="utf-8").splitlines()]
                return next((ln for ln in lines if ln), "")
        return None


def open_celeba(arg: str, spec: str, *, split=None, limit=None, **opts) -> CelebASource:
    _reject_unknown(opts, {"captions"}, spec)
    root = Path(os.path.expanduser(arg))
    if not root.is_dir():
        raise DataSourceError(f"{spec}: not a directory: {root}")
    if (root / "list_attr_celeba.txt").is_file():
        ids, names, rows = _read_attr_txt(root / "list_attr_celeba.txt", spec)
    elif (root / "list_attr_celeba.csv").is_file():
        ids, names, rows = _read_attr_csv(root / "list_attr_celeba.csv", spec)
    else:
        raise DataSourceError(
            f"{spec}: {root} is not a CelebA folder: list_attr_celeba.txt is missing "
            "(expected img_align_celeba/, list_attr_celeba.txt and optionally list_eval_partition.txt)"
        )
    img_dir = root / "img_align_celeba"
    if (img_dir / "img_align_celeba").is_dir():
        img_dir = img_dir / "img_align_celeba"
    if not img_dir.is_dir():
        raise DataSourceError(f"{spec}: image folder missing: {root / 'img_align_celeba'}")

    import numpy as np

    rows = np.asarray(rows, dtype=np.int64).reshape(len(ids), len(names))
    bad = ~np.isin(rows, (-1, 0, 1))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataSourceError(f"{spec}: attribute {names[c]} of {ids[r]} is {rows[r, c]}; expected -1 or 1")
    labels = {name: (rows[:, j] == 1).astype(np.int64) for j, name in enumerate(names)}

    partition = _read_partition(root, spec)
    splits = None
    if partition is not None:
        splits = [partition.get(i) for i in ids]

    cap_path = _find_captions(root, opts.get("captions"))
    captions, caption_dir = None, None
    if cap_path is not None and cap_path.is_dir():
        caption_source = f"folder {cap_path.name}/ keyed by image id"
        caption_dir = cap_path
        captions = [None] * len(ids)  # read lazily per row (caption_of)
    elif cap_path is not None:
        table = _read_captions(cap_path, spec)
        captions = [table.get(i, table.get(Path(i).stem)) for i in ids]
        caption_source = f"file {cap_path.name} keyed by image id"
    else:
        captions = None  # generated per row from its attributes (see CelebASource.caption_of)
        caption_source = "generated from attributes by templates"

    info = {
        "format": "celeba",
        "captions": caption_source,
        "n_missing_captions": _count_missing(captions, caption_dir),
        "image_dir": str(img_dir),
        "partition": partition is not None,
    }
    prefix = str(img_dir) + os.sep  # plain string joins: Path() per row costs seconds at CelebA scale
    images = [prefix + i for i in ids]
    return CelebASource(
        spec, ids, images, captions, labels, splits, split=split, limit=limit, info=info,
        caption_dir=caption_dir, templated=captions is None,
    )
