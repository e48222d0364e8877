"""Dataset sources and the safe image decoder, on small files written in the real formats."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from clipica.data import SCHEMES, open_source
from clipica.data.celeba import CELEBA_ATTRIBUTES, template_caption
from clipica.data.images import decode_image
from clipica.errors import BadImageError, DataSourceError
from tests.helpers.fake_datasets import (
    SPECIAL,
    celeba_attrs,
    rgb_image,
    truncated_jpeg,
    write_celeba,
    write_folder,
    write_hf,
)

# -- the decoder ---------------------------------------------------------------


def _save(img: Image.Image, path, fmt="PNG", **kw):
    img.save(path, format=fmt, **kw)
    return path


def test_decode_rgba_composites_on_white(tmp_path):
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 200
    arr[0, 0, 3] = 255  # one opaque red-ish pixel, the rest fully transparent
    img = decode_image(_save(Image.fromarray(arr, "RGBA"), tmp_path / "a.png"))
    assert img.mode == "RGB"
    px = np.asarray(img)
    assert tuple(px[0, 0]) == (200, 0, 0)
    assert tuple(px[1, 1]) == (255, 255, 255)  # transparent -> white, not black


def test_decode_gray_and_palette(tmp_path):
    g = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    img = decode_image(_save(Image.fromarray(g, "L"), tmp_path / "g.png"))
    assert img.mode == "RGB" and np.array_equal(np.asarray(img)[..., 1], g)
    p = Image.fromarray(g, "L").convert("P")
    p.info["transparency"] = int(np.asarray(p)[0, 0])
    out = decode_image(_save(p, tmp_path / "p.png", transparency=p.info["transparency"]))
    assert out.mode == "RGB" and tuple(np.asarray(out)[0, 0]) == (255, 255, 255)


def test_decode_16bit_gray_is_scaled_not_clipped(tmp_path):
    arr = np.array([[0, 257 * 100], [65535, 257 * 200]], dtype=np.uint16)
    img16 = Image.fromarray(arr)  # mode I;16
    assert img16.mode.startswith("I;16")
    buf = io.BytesIO()
    img16.save(buf, format="PNG")
    out = np.asarray(decode_image(buf.getvalue()))
    assert out[..., 0].tolist() == [[0, 100], [255, 200]]
    # the same data opened as a 16-bit TIFF keeps mode I;16
    _save(img16, tmp_path / "x.tif", fmt="TIFF")
    assert np.asarray(decode_image(tmp_path / "x.tif"))[..., 2].tolist() == [[0, 100], [255, 200]]


def test_decode_cmyk_and_bilevel(tmp_path):
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
    out = np.asarray(decode_image(_save(cmyk, tmp_path / "c.jpg", fmt="JPEG", quality=100)))
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 60
    bw = Image.new("1", (4, 4), 1)
    assert np.asarray(decode_image(_save(bw, tmp_path / "b.png"))).min() == 255


@pytest.mark.parametrize(
    "setup, reason",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("this is not an image"), "not an image"),
        (lambda p: p.write_bytes(truncated_jpeg()), "truncated"),
        (lambda p: None, "not found"),
    ],
)
def test_decode_bad_files(tmp_path, setup, reason):
    path = tmp_path / "x.jpg"
    setup(path)
    with pytest.raises(BadImageError, match=reason) as info:
        decode_image(path)
    assert "x.jpg" in str(info.value)


def test_decode_bomb_refused(tmp_path, monkeypatch):
    path = _save(Image.new("L", (64, 64)), tmp_path / "big.png")
    with pytest.raises(BadImageError, match="decompression bomb"):
        decode_image(path, max_pixels=1000)
    # PIL's own limit, including the range where PIL only warns
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64 - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(BadImageError, match="decompression bomb"):
            decode_image(path)


# -- CelebA --------------------------------------------------------------------


@pytest.fixture(scope="module")
def celeba_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("celeba")
    write_celeba(root, n=10)
    return root


def test_celeba_official_layout(celeba_dir):
    src = open_source(f"celeba:{celeba_dir}")
    assert len(src) == 10
    assert src.label_columns == list(CELEBA_ATTRIBUTES)
    raw = celeba_attrs(celeba_dir)
    for i in (0, 3, 9):
        row = src[i]
        assert row.id == f"{i + 1:06d}.jpg"
        assert [row.labels[a] for a in CELEBA_ATTRIBUTES] == [1 if v == 1 else 0 for v in raw[i]]
        assert row.image.mode == "RGB"
        assert row.caption == template_caption(row.labels)
    assert [src[i].split for i in (0, 6, 7, 8, 9)] == ["train", "val", "val", "test", "test"]
    for i, kind in SPECIAL.items():
        if kind == "corrupt":
            with pytest.raises(BadImageError, match=src.row_id(i)):
                src[i]
        else:
            assert src[i].image.mode == "RGB"
    info = src.describe()
    assert info["captions"].startswith("generated from attributes")


def test_celeba_split_limit_and_order(celeba_dir):
    test = open_source(f"celeba:{celeba_dir}", split="test")
    assert [test.row_id(i) for i in range(len(test))] == ["000009.jpg", "000010.jpg"]
    val = open_source(f"celeba:{celeba_dir}", split="validation", limit=1)
    assert len(val) == 1 and val.row_id(0) == "000007.jpg"
    a, b = open_source(f"celeba:{celeba_dir}"), open_source(f"celeba:{celeba_dir}")
    assert a.fingerprint() == b.fingerprint() != test.fingerprint()


def test_celeba_captions_file_keyed_by_id(tmp_path):
    # keys written in reverse order: captions must follow ids, not file order
    caps = {f"{i + 1:06d}.jpg": f"person number {i}" for i in reversed(range(6))}
    write_celeba(tmp_path, n=6, captions=caps)
    src = open_source(f"celeba:{tmp_path}")
    assert src[3].caption == "person number 3"
    assert "captions.jsonl" in src.describe()["captions"]


def test_celeba_layout_errors(tmp_path):
    with pytest.raises(DataSourceError, match="list_attr_celeba.txt"):
        open_source(f"celeba:{tmp_path}")
    write_celeba(tmp_path / "c", n=4)
    attr = tmp_path / "c" / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    attr.write_text("\n".join(["7", *lines[1:]]) + "\n")
    with pytest.raises(DataSourceError, match="announces 7 images but lists 4"):
        open_source(f"celeba:{tmp_path / 'c'}")


def test_template_caption_known_answers():
    assert (
        template_caption({"Smiling": 1, "Male": 0, "Blond_Hair": 1, "Eyeglasses": 1, "Young": 1, "No_Beard": 1})
        == "a photo of a smiling woman with blond hair wearing eyeglasses"
    )
    assert (
        template_caption({"Smiling": 0, "Male": 1, "Young": 0, "No_Beard": 0, "Wearing_Hat": 1})
        == "a photo of an older man with a beard wearing a hat"
    )


# -- folder / csv / jsonl -------------------------------------------------------


@pytest.mark.parametrize("meta", ["csv", "jsonl"])
def test_folder_with_metadata(tmp_path, meta):
    names = write_folder(tmp_path, n=6, metadata=meta)
    src = open_source(f"folder:{tmp_path}")
    assert [src.row_id(i) for i in range(6)] == names
    assert src.label_columns == ["smiling", "age"]
    r = src[3]
    assert r.caption == "picture number 3" and r.labels == {"smiling": 1, "age": 23.5}
    assert src[1].image.mode == "RGB" and src[2].image.mode == "RGB"
    with pytest.raises(BadImageError):
        src[4]


def test_folder_imagefolder_convention(tmp_path):
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for k in range(2):
                rgb_image(k).save(d / f"{k}.jpg")
    (tmp_path / "train" / "cat" / "notes.txt").write_text("ignored: not an image suffix")
    src = open_source(f"folder:{tmp_path}")
    assert len(src) == 8
    assert src.row_id(0) == "test/cat/0.jpg"
    assert src[0].split == "test" and src[0].labels == {"label": 0}
    assert src[3].labels == {"label": 1}
    assert src.describe()["class_names"] == ["cat", "dog"]
    train = open_source(f"folder:{tmp_path}", split="train")
    assert len(train) == 4 and all(train[i].split == "train" for i in range(4))


def test_csv_and_jsonl_tables(tmp_path):
    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    for i in range(3):
        rgb_image(i).save(img_dir / f"{i}.jpg")
    (tmp_path / "t.csv").write_text(
        "path,text,score,flag,note\nimgs/0.jpg,zero,0.5,True,a\nimgs/1.jpg,one,1.5,False,b\nimgs/missing.jpg,two,2.5,True,c\n"
    )
    src = open_source(f"csv:{tmp_path / 't.csv'}")
    assert src.label_columns == ["score", "flag"]
    assert src[1].caption == "one" and src[1].labels == {"score": 1.5, "flag": 0}
    with pytest.raises(BadImageError, match="not found"):
        src[2]
    with open(tmp_path / "t.jsonl", "w") as f:
        for i in range(3):
            f.write(json.dumps({"img": f"imgs/{i}.jpg", "desc": f"c{i}", "y": i, "id": f"r{i}"}) + "\n")
    src = open_source(f"jsonl:{tmp_path / 't.jsonl'}", caption_column="desc", label_columns="y")
    assert src.row_id(2) == "r2" and src[2].caption == "c2" and src[2].labels == {"y": 2}
    with pytest.raises(DataSourceError, match="caption column 'nope' not found"):
        open_source(f"jsonl:{tmp_path / 't.jsonl'}", caption_column="nope")


# -- Hugging Face datasets ------------------------------------------------------


def test_hf_save_to_disk(tmp_path):
    write_hf(tmp_path / "ds", n=6)
    src = open_source(f"hf:{tmp_path / 'ds'}")
    assert len(src) == 6 and src.label_columns == ["label", "score"]
    r = src[5]
    assert r.caption == "caption 5" and r.labels["label"] == 2 and r.labels["score"] == 2.5
    assert src[1].image.mode == "RGB" and src[2].image.mode == "RGB"
    with pytest.raises(BadImageError):
        src[4]
    assert len(open_source(f"hf:{tmp_path / 'ds'}", limit=2)) == 2


def test_hf_dataset_dict_splits(tmp_path):
    import datasets

    d = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"image": [str(tmp_path / "a.jpg")] * 3, "caption": ["x"] * 3}),
            "validation": datasets.Dataset.from_dict({"image": [str(tmp_path / "a.jpg")] * 2, "caption": ["y"] * 2}),
        }
    )
    rgb_image(0).save(tmp_path / "a.jpg")
    d.save_to_disk(str(tmp_path / "dd"))
    assert len(open_source(f"hf:{tmp_path / 'dd'}")) == 3
    val = open_source(f"hf:{tmp_path / 'dd'}:validation")
    assert len(val) == 2 and val[0].split == "val" and val[0].caption == "y"
    with pytest.raises(DataSourceError, match="no split 'test'"):
        open_source(f"hf:{tmp_path / 'dd'}", split="test")


def test_hf_offline_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataSourceError, match="Offline, only datasets already in the HF cache"):
        open_source("hf:someorg/surely-not-cached-dataset")


# -- dispatcher -------------------------------------------------------------------


def test_unknown_scheme_lists_valid_ones():
    with pytest.raises(DataSourceError) as info:
        open_source("imagenet:/data")
    for scheme in SCHEMES:
        assert scheme in str(info.value)
    with pytest.raises(DataSourceError, match="missing its argument"):
        open_source("folder:")


def test_synthetic_faces_dispatch():
    pytest.importorskip("clipica.data.synthetic_faces")
    src = open_source("synthetic-faces:6")
    assert len(src) == 6
    assert len(open_source("synthetic-faces:6", limit=4)) == 4
    with pytest.raises(DataSourceError, match="whole number"):
        open_source("synthetic-faces:many")
