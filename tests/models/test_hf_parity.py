"""One CLIP, two loaders: open_clip and transformers give the same embeddings (issue 18).

The fixture builds the case offline: random ``ViT-B-32-quickgelu`` weights
(OpenAI's architecture, as ``--pretrained none`` makes them), converted to a
``transformers.CLIPModel`` with the mapping of transformers' own conversion
script, with a ``CLIPTokenizer`` built from the BPE vocabulary that open_clip
ships. Images and captions are the ones that broke parity before: crop offsets
that round differently, tall/wide/tiny images, odd modes, and captions that
only OpenAI's cleaning maps to the same tokens.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import clipica
from clipica.errors import InputError, ModelNotFoundError, StoreMismatchError
from clipica.models.preprocess import (
    ORIGINAL_IMAGE,
    ClipImageTransform,
    center_crop_box,
    clean_caption,
)
from tests.helpers.fake_models import save_hf_conversion, write_clip_bpe_files

ARCH = "ViT-B-32-quickgelu"
#: (width, height) of the RGB images the issue lists
SIZES = [(640, 427), (427, 640), (500, 334), (224, 227), (257, 1999), (333, 777), (64, 48)]
LONG = "a photograph of a small brown dog running across a wide green field " * 8
#: caption kind -> caption; native tokenisation differs from the original exactly on the "differs" ones
CAPTIONS = {
    "curly": "the dog’s “favourite” toy",
    "ligature": "the oﬃce and the ﬂat",
    "fullwidth": "ＦＵＬＬＷＩＤＴＨ ｌｅｔｔｅｒｓ",
    "html": "salt &amp; pepper, &quot;fresh&quot; &amp;amp; hot",
    "mojibake": "cafÃ© crÃ¨me brÃ»lÃ©e",
    "emoji": "party time 🎉🐶",
    "cjk": "一只猫坐在垫子上",
    "empty": "",
    "long": LONG,
    "plain": "a photo of a dog",
    "whitespace": "  two   dogs\tand\na cat  ",
}
DIFFERS = {"curly", "ligature", "fullwidth", "html", "mojibake"}
#: (width, height) of all 11 images: the issue's sizes, then grey, RGBA, palette and 16-bit
IMAGE_SIZES = [*SIZES, (300, 200), (320, 241), (255, 190), (250, 181)]


def _crop_shifted(w, h, side=224):
    """Does transformers' floored centre-crop offset differ from the original's (round half to even)?"""
    from clipica.models.preprocess import shortest_side_size

    rw, rh = shortest_side_size(w, h, side)
    left, top, _, _ = center_crop_box(rw, rh, side)
    return (left, top) != ((rw - side) // 2, (rh - side) // 2)


def _noise(rng, w, h, channels=3, dtype=np.uint8, high=256):
    shape = (h, w, channels) if channels > 1 else (h, w)
    return rng.integers(0, high, size=shape, dtype=dtype)


def write_hostile_dataset(root) -> tuple:
    """11 PNGs (the issue's sizes, grey, RGBA, palette, 16-bit) + captions.jsonl; returns (jsonl, kinds)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(_noise(rng, w, h)) for w, h in SIZES]
    (gw, gh), (aw, ah), (pw, ph), (iw, ih) = IMAGE_SIZES[len(SIZES):]
    images.append(Image.fromarray(_noise(rng, gw, gh, 1)))  # L
    images.append(Image.fromarray(_noise(rng, aw, ah, 4)))  # RGBA, alpha varies per pixel
    images.append(Image.fromarray(_noise(rng, pw, ph)).quantize(64))  # P
    images.append(Image.fromarray(_noise(rng, iw, ih, 1, np.uint16, 65536)))  # 16-bit grey
    assert [im.mode for im in images[-4:]] == ["L", "RGBA", "P", "I;16"]
    kinds = list(CAPTIONS)
    lines = []
    for i, (im, kind) in enumerate(zip(images, kinds, strict=True)):
        im.save(root / f"{i:02d}.png")
        lines.append(json.dumps({"id": f"r{i:02d}", "image": f"{i:02d}.png", "caption": CAPTIONS[kind]}))
    (root / "captions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "captions.jsonl", kinds


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    data, kinds = write_hostile_dataset(root / "data")
    enc = clipica.load_encoder(ARCH, pretrained="none")
    hf_dir = save_hf_conversion(enc.model, root / "hf")
    del enc
    return {"root": root, "data": f"jsonl:{data}", "kinds": kinds, "hf": str(hf_dir)}


def _extract(case, model, out, **kw):
    pretrained = "none" if model == ARCH else None
    return clipica.extract(model=model, pretrained=pretrained, data=case["data"], out=case["root"] / out,
                           batch_size=16, num_workers=0, progress=False, **kw)


@pytest.fixture(scope="module")
def stores(case):
    return _extract(case, ARCH, "open_clip"), _extract(case, case["hf"], "transformers")


@pytest.mark.real_arch
def test_open_clip_and_transformers_stores_of_one_model_agree(stores):
    oc, hf = stores
    assert oc.n_rows == hf.n_rows == 11 and oc.manifest["counts"]["errors"] == 0
    assert list(oc.rows["id"]) == list(hf.rows["id"])
    assert oc.manifest["model"]["encoder"]["backend"] == "open_clip"
    assert hf.manifest["model"]["encoder"]["backend"] == "transformers"
    image_gap = np.abs(np.asarray(oc.image) - np.asarray(hf.image)).max()
    text_gap = np.abs(np.asarray(oc.text) - np.asarray(hf.text)).max()
    assert image_gap < 1e-4, image_gap
    assert text_gap < 1e-4, text_gap
    # the embeddings are not trivially small: 1e-4 is a real tolerance
    assert np.abs(np.asarray(oc.image)).max() > 0.1 and np.abs(np.asarray(oc.text)).max() > 0.1
    flags = list(oc.rows["caption_truncated"])
    assert flags == list(hf.rows["caption_truncated"])
    assert flags == [c == LONG for c in oc.rows["caption"]]


@pytest.mark.real_arch
def test_both_manifests_record_the_original_preprocessing(stores):
    for store in stores:
        assert store.manifest["key"]["preprocess"] == "original"
        assert store.manifest["model"]["preprocess"] == "original"
        pp = store.manifest["model"]["encoder"]["preprocess"]
        assert pp["mode"] == "original" and pp["image"]["pipeline"] == ORIGINAL_IMAGE
    assert "OpenAI cleaning" in stores[1].manifest["model"]["encoder"]["preprocess"]["text"]


@pytest.mark.real_arch
def test_native_keeps_the_transformers_processor_and_differs_where_expected(case, stores):
    hf = stores[1]
    native = _extract(case, case["hf"], "native", preprocess="native")
    assert native.manifest["key"]["preprocess"] == "native"
    assert native.manifest["model"]["preprocess"] == "native"
    pp = native.manifest["model"]["encoder"]["preprocess"]
    assert pp["mode"] == "native" and pp["image"]["pipeline"].startswith("transformers CLIPImageProcessor")
    assert pp["text"].startswith("transformers CLIPTokenizer")
    # every image here is resized, and transformers resizes with its own kernel ...
    image_gap = np.abs(np.asarray(native.image) - np.asarray(hf.image)).max(axis=1)
    assert (image_gap > 1e-4).all(), image_gap
    # ... and where its floored crop offset is one pixel off the original's, the embedding moves a lot
    shifted = np.array([_crop_shifted(w, h) for w, h in IMAGE_SIZES])
    assert shifted.sum() == 4, shifted  # 640x427, 427x640, 500x334, 224x227
    assert (image_gap[shifted] > 0.1).all() and (image_gap[~shifted] < 0.1).all(), image_gap
    # text: only the captions that OpenAI's cleaning changes get other tokens
    text_gap = np.abs(np.asarray(native.text) - np.asarray(hf.text)).max(axis=1)
    for kind, gap in zip(case["kinds"], text_gap, strict=True):
        if kind in DIFFERS:
            assert gap > 1e-2, (kind, gap)
        else:
            assert gap < 1e-5, (kind, gap)


@pytest.mark.real_arch
def test_resume_never_mixes_two_preprocessings(case, stores):
    with pytest.raises(StoreMismatchError, match="preprocess"):
        _extract(case, case["hf"], "transformers", preprocess="native")


@pytest.mark.real_arch
def test_unknown_preprocess_is_refused(case, tmp_path):
    with pytest.raises(InputError, match="--preprocess must be one of original, native"):
        clipica.extract(model=ARCH, pretrained="none", data=case["data"], out=tmp_path / "s",
                        preprocess="openai", progress=False)
    with pytest.raises(InputError, match="--preprocess"):
        clipica.load_encoder(case["hf"], preprocess="bogus")


# -- the pieces, without forward passes ------------------------------------------------------


def test_clean_caption_is_open_clips_cleaning():
    from open_clip.tokenizer import SimpleTokenizer

    reference = SimpleTokenizer().clean_fn  # the default ("lower"): OpenAI's basic + whitespace clean
    for caption in [*CAPTIONS.values(), "&amp;amp;amp;", "Ａ\u00a0b\u200bc", None]:
        assert clean_caption(caption) == reference("" if caption is None else caption)
    assert clean_caption("the dog’s &quot;toy&quot;  ") == "the dog's \"toy\""


def test_clip_tokenizer_after_cleaning_gives_open_clips_token_ids(tmp_path):
    import transformers
    from open_clip.tokenizer import SimpleTokenizer

    vocab, merges = write_clip_bpe_files(tmp_path)
    hf = transformers.CLIPTokenizer(str(vocab), str(merges))
    oc = SimpleTokenizer()
    for caption in CAPTIONS.values():
        expected = [oc.sot_token_id, *oc.encode(caption), oc.eot_token_id]
        assert hf(clean_caption(caption))["input_ids"] == expected, caption


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_original_image_transform_is_open_clips_bit_for_bit(interpolation):
    import torch
    from open_clip.transform import PreprocessCfg, image_transform_v2
    from PIL import Image

    rng = np.random.default_rng(1)
    cfg = PreprocessCfg(size=224, interpolation=interpolation)
    reference = image_transform_v2(cfg, is_train=False)
    ours = ClipImageTransform(224, 224, cfg.mean, cfg.std, interpolation)
    for w, h in [*SIZES, (224, 224), (225, 224), (1, 300), (449, 224)]:
        image = Image.fromarray(_noise(rng, w, h))
        a, b = ours(image), reference(image)
        assert a.dtype == torch.float32 and tuple(a.shape) == (3, 224, 224)
        assert torch.equal(a, b), (w, h)


def test_centre_crop_offset_rounds_half_to_even_like_torchvision():
    from PIL import Image
    from torchvision.transforms import CenterCrop

    rng = np.random.default_rng(2)
    # 640x427 resizes to 335x224: (335 - 224) / 2 = 55.5 -> 56, where flooring gives 55
    assert center_crop_box(335, 224, 224) == (56, 0, 280, 224)
    assert center_crop_box(333, 224, 224) == (54, 0, 278, 224)  # 54.5 -> 54 (to even)
    for w, h in [(335, 224), (333, 224), (224, 227), (224, 1745), (300, 300)]:
        image = Image.fromarray(_noise(rng, w, h))
        ours = np.asarray(image.crop(center_crop_box(w, h, 224)))
        assert np.array_equal(ours, np.asarray(CenterCrop(224)(image))), (w, h)


# -- trust_remote_code (issue 12, item 12) -------------------------------------------------------


def test_hf_repo_with_custom_code_is_refused_without_running_or_asking(tmp_path, monkeypatch):
    folder = tmp_path / "custom"
    folder.mkdir()
    sentinel = tmp_path / "code-ran"
    (folder / "config.json").write_text(json.dumps({
        "model_type": "clipica-custom-clip",
        "auto_map": {"AutoConfig": "configuration_custom.CustomConfig", "AutoModel": "modeling_custom.CustomModel"},
    }))
    body = f"open({str(sentinel)!r}, 'w').write('ran')\n"
    (folder / "configuration_custom.py").write_text(body)
    (folder / "modeling_custom.py").write_text(body)

    def no_prompt(*args, **kwargs):
        raise AssertionError("transformers asked whether to trust remote code")

    monkeypatch.setattr("builtins.input", no_prompt)
    with pytest.raises(ModelNotFoundError, match="trust_remote_code=False"):
        clipica.load_encoder(str(folder))
    assert not sentinel.exists()


def test_every_transformers_loader_is_called_with_trust_remote_code_false(tmp_path, monkeypatch):
    import transformers

    from tests.helpers.fake_models import save_tiny_hf_clip

    folder = save_tiny_hf_clip(tmp_path / "tiny")
    seen = {}
    for name in ("AutoModel", "AutoTokenizer", "AutoImageProcessor"):
        cls = getattr(transformers, name)
        original = cls.from_pretrained

        def spy(*args, _name=name, _original=original, **kwargs):
            seen[_name] = kwargs.get("trust_remote_code", "unset")
            return _original(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    clipica.load_encoder(str(folder))
    assert seen == {"AutoModel": False, "AutoTokenizer": False, "AutoImageProcessor": False}


# -- layers (--layer): the same random weights agree at every layer, as the final embedding does


@pytest.fixture(scope="module")
def encoders(case):
    return clipica.load_encoder(ARCH, pretrained="none"), clipica.load_encoder(case["hf"])


@pytest.mark.parametrize("layer,image_width,text_width", [("pre-projection", 768, 512), ("block:0", 768, 512),
                                                          ("block:5", 768, 512), ("block:11", 768, 512),
                                                          ("final", 512, 512)])
@pytest.mark.real_arch
def test_both_backends_agree_at_every_layer(case, encoders, layer, image_width, text_width):
    from PIL import Image

    oc, hf = (e.use_layer(layer) for e in encoders)
    assert (oc.embed_dim, oc.text_dim) == (hf.embed_dim, hf.text_dim) == (image_width, text_width)
    images = [Image.open(case["root"] / "data" / f"{i:02d}.png") for i in range(4)]
    captions = [CAPTIONS[k] for k in ("plain", "long", "empty", "emoji")]
    for a, b in ((oc.encode_images(images), hf.encode_images(images)),
                 (oc.encode_texts(captions), hf.encode_texts(captions))):
        assert np.abs(a).max() > 0.1  # not trivially small: 1e-4 is a real tolerance
        gap = np.abs(a - b).max()
        assert gap < 1e-4, (layer, gap)
    assert oc.describe()["layer"] == hf.describe()["layer"] == layer


@pytest.mark.real_arch
def test_a_block_beyond_the_towers_is_one_line_for_both_backends(encoders):
    for enc in encoders:
        with pytest.raises(InputError, match=r"image tower has 12 blocks \(block:0 \.\. block:11\); it has no block:12"):
            enc.use_layer("block:12")
        assert enc.layer == "final"
