"""Small on-disk datasets in real formats, written by tests (seeded, a few KB each).

Every dataset holds mostly ordinary RGB JPEGs plus the awkward cases: an RGBA
PNG, a grayscale PNG and one corrupt (truncated) JPEG. ``BAD`` names the ids
that must end up in the errors log.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from clipica.data.celeba import CELEBA_ATTRIBUTES


def rgb_image(seed: int, size: int = 24) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def truncated_jpeg(seed: int = 99) -> bytes:
    data = jpeg_bytes(rgb_image(seed, 32))
    return data[: len(data) // 2]


def special_image(kind: str, seed: int) -> bytes:
    """Encoded bytes of an awkward image: 'rgba', 'gray' or 'corrupt'."""
    rng = np.random.default_rng(seed)
    if kind == "rgba":
        arr = rng.integers(0, 256, (24, 24, 4), dtype=np.uint8)
        return png_bytes(Image.fromarray(arr, "RGBA"))
    if kind == "gray":
        return png_bytes(Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8), "L"))
    if kind == "corrupt":
        return truncated_jpeg(seed)
    raise ValueError(kind)


#: position -> kind for the awkward rows of every fake dataset
SPECIAL = {1: "rgba", 2: "gray", 4: "corrupt"}


def _image_bytes(i: int) -> tuple[bytes, str]:
    kind = SPECIAL.get(i)
    if kind is None:
        return jpeg_bytes(rgb_image(i)), "jpg"
    return special_image(kind, i), "jpg" if kind == "corrupt" else "png"


def write_celeba(root: Path, n: int = 10, seed: int = 0, captions: dict | None = None) -> list[str]:
    """The official layout; returns the ids. Row 4 is a truncated JPEG; rows 1/2 RGBA/grey (saved as .jpg names)."""
    rng = np.random.default_rng(seed)
    img_dir = root / "img_align_celeba"
    img_dir.mkdir(parents=True)
    ids = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, name in enumerate(ids):
        data, _ = _image_bytes(i)
        (img_dir / name).write_bytes(data)  # CelebA names every file .jpg; PIL sniffs the content
    attrs = rng.choice([-1, 1], size=(n, len(CELEBA_ATTRIBUTES)))
    lines = [str(n), " ".join(CELEBA_ATTRIBUTES)]
    for name, row in zip(ids, attrs, strict=True):
        # the official file pads values with two spaces for 1 and one for -1
        lines.append(name + "".join(f" {v:2d}" for v in row))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    parts = [0] * (n - 4) + [1, 1, 2, 2]
    (root / "list_eval_partition.txt").write_text("".join(f"{name} {p}\n" for name, p in zip(ids, parts, strict=True)))
    if captions is not None:
        with open(root / "captions.jsonl", "w") as f:
            for k, v in captions.items():
                f.write(json.dumps({"image_id": k, "caption": v}) + "\n")
    return ids


def celeba_attrs(root: Path) -> np.ndarray:
    """(n, 40) attributes as written (-1/1)."""
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()[2:]
    return np.array([[int(v) for v in ln.split()[1:]] for ln in lines])


def write_folder(root: Path, n: int = 8, metadata: str | None = "csv") -> list[str]:
    """Images + metadata.csv/jsonl (file_name, caption, smiling, age); returns file names."""
    root.mkdir(parents=True, exist_ok=True)
    names = []
    records = []
    for i in range(n):
        data, ext = _image_bytes(i)
        name = f"img_{i:03d}.{ext}"
        (root / name).write_bytes(data)
        names.append(name)
        records.append({"file_name": name, "caption": f"picture number {i}", "smiling": i % 2, "age": 20.5 + i})
    if metadata == "csv":
        import pandas as pd

        pd.DataFrame(records).to_csv(root / "metadata.csv", index=False)
    elif metadata == "jsonl":
        with open(root / "metadata.jsonl", "w") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
    return names


def write_hf(root: Path, n: int = 8) -> None:
    """A datasets.Dataset with an Image feature, saved with save_to_disk; row 4's bytes are corrupt."""
    import datasets

    images = [{"bytes": _image_bytes(i)[0], "path": None} for i in range(n)]
    ds = datasets.Dataset.from_dict(
        {
            "image": images,
            "text": [f"caption {i}" for i in range(n)],
            "label": [i % 3 for i in range(n)],
            "score": [0.5 * i for i in range(n)],
        },
        features=datasets.Features(
            {
                "image": datasets.Image(),
                "text": datasets.Value("string"),
                "label": datasets.ClassLabel(names=["a", "b", "c"]),
                "score": datasets.Value("float32"),
            }
        ),
    )
    ds.save_to_disk(str(root))
