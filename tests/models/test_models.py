"""Encoder backends on real architectures with random weights (offline, small)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clipica.errors import InputError, ModelNotFoundError
from clipica.models import load_encoder
from tests.helpers.fake_datasets import rgb_image
from tests.helpers.fake_models import TINY_CONFIG, register_tiny_open_clip, save_tiny_hf_clip


@pytest.fixture(scope="module")
def tiny_arch(tmp_path_factory):
    return register_tiny_open_clip(tmp_path_factory.mktemp("oc"))


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    return save_tiny_hf_clip(tmp_path_factory.mktemp("hf") / "model")


@pytest.fixture(scope="module")
def images():
    # different sizes and aspect ratios: preprocessing must bring them all to the model's input
    return [rgb_image(s, size) for s, size in ((0, 24), (1, 40), (2, 33))]


def _check_encoder(enc, images, dim=16):
    assert enc.embed_dim == dim and enc.image_size == 32 and enc.context_length == 16
    assert tuple(enc.preprocess(images[1]).shape) == (3, 32, 32)
    x = enc.encode_images(images)
    assert x.shape == (3, dim) and x.dtype == np.float32 and np.isfinite(x).all()
    # stored as returned by the projection: not unit norm
    assert not np.allclose(np.linalg.norm(x, axis=1), 1.0)
    # distinct images -> distinct embeddings
    assert np.abs(x[0] - x[1]).max() > 1e-4
    t = enc.encode_texts(["a photo of a face", "a smiling person"])
    assert t.shape == (2, dim) and np.abs(t[0] - t[1]).max() > 1e-4
    tokens, truncated = enc.tokenize(["short", "word " * 40])
    assert truncated.tolist() == [False, True]
    return x, t


def test_open_clip_random_weights_are_explicit_and_reproducible(tiny_arch, images):
    a = load_encoder(tiny_arch, pretrained="none")
    x, t = _check_encoder(a, images)
    b = load_encoder(tiny_arch, pretrained="none")
    assert np.array_equal(x, b.encode_images(images))
    assert np.array_equal(t, b.encode_texts(["a photo of a face", "a smiling person"]))
    d = a.describe()
    assert d["backend"] == "open_clip" and d["pretrained"] == "none" and "random" in d["weights"]
    assert a.spec == f"open_clip:{tiny_arch}@none"
    tokens, _ = a.tokenize(["word " * 40])
    assert tokens.shape == (1, 16) and int(tokens[0, -1]) == a._tokenizer.eot_token_id


def test_open_clip_needs_explicit_pretrained(tiny_arch):
    with pytest.raises(ModelNotFoundError, match="pretrained='none' for random weights"):
        load_encoder("ViT-B-32")
    with pytest.raises(ModelNotFoundError, match="known tags: openai"):
        load_encoder("ViT-B-32", pretrained="no-such-tag")


def test_unknown_arch_lists_close_names():
    with pytest.raises(ModelNotFoundError, match="did you mean ViT-B-32"):
        load_encoder("ViT-B-31")


def test_offline_weights_are_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        load_encoder("RN50", pretrained="openai")
    msg = str(info.value)
    assert "Download" in msg and "cache" in msg and "pretrained='/path" in msg and "\n" not in msg
    with pytest.raises(ModelNotFoundError, match="huggingface-cli download openai/clip-vit-base-patch32"):
        load_encoder("hf-hub:openai/clip-vit-base-patch32")
    with pytest.raises(ModelNotFoundError, match="save_pretrained"):
        load_encoder("openai/clip-vit-base-patch32")


def test_open_clip_checkpoint_file_and_folder(tiny_arch, images, tmp_path):
    from safetensors.torch import save_file

    ref = load_encoder(tiny_arch, pretrained="none")
    ckpt = tmp_path / "ckpt.safetensors"
    save_file({k: v.contiguous() for k, v in ref.model.state_dict().items()}, str(ckpt))
    x = ref.encode_images(images)
    by_tag = load_encoder(tiny_arch, pretrained=str(ckpt))
    assert np.allclose(by_tag.encode_images(images), x, atol=1e-6)
    assert by_tag.describe()["weights"].startswith("checkpoint file")
    with pytest.raises(ModelNotFoundError, match="model='ARCH', pretrained="):
        load_encoder(str(ckpt))
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CONFIG}))
    bare = load_encoder(str(ckpt))
    assert np.allclose(bare.encode_images(images), x, atol=1e-6)


def test_hf_transformers_clip_from_local_dir(hf_dir, images):
    a = load_encoder(str(hf_dir))
    x, t = _check_encoder(a, images)
    assert a.describe()["backend"] == "transformers" and a.spec == f"hf:{hf_dir.resolve()}"
    b = load_encoder(f"hf:{hf_dir}")
    assert np.array_equal(x, b.encode_images(images))
    tokens, truncated = a.tokenize(["a photo", "word " * 40])
    assert tokens["input_ids"].shape == (2, 16) and truncated.tolist() == [False, True]
    with pytest.raises(InputError, match="does not apply"):
        load_encoder(str(hf_dir), pretrained="openai")


def test_tiny_faces_dispatch(monkeypatch, tmp_path, images):
    """tiny-faces = register the shipped config + open_clip with ensure_weights()' file."""
    import open_clip
    from safetensors.torch import save_file

    from clipica.models import tiny

    tiny.register_config()
    model = open_clip.create_model("tiny-faces", pretrained=None)
    path = tmp_path / "tiny-faces.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    monkeypatch.setattr(tiny, "ensure_weights", lambda *a, **k: path)
    enc = load_encoder("tiny-faces")
    assert enc.describe()["pretrained"] == str(path.resolve())
    assert enc.embed_dim == tiny.model_config()["embed_dim"]
    assert enc.encode_images(images[:1]).shape == (1, enc.embed_dim)


def test_bad_device_and_precision(tiny_arch):
    with pytest.raises(InputError, match="precision must be one of"):
        load_encoder(tiny_arch, pretrained="none", precision="fp8")
    with pytest.raises(InputError, match="device"):
        load_encoder(tiny_arch, pretrained="none", device="tpu")
