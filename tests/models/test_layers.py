"""``--layer``: where an encoder is read (final, pre-projection, block:N), on the tiny
ModifiedResNet CLIP (random weights, no training); the ViT parity of both backends is in
test_hf_parity.py."""

from __future__ import annotations

import numpy as np
import pytest

from clipica.errors import InputError
from clipica.models.layers import Layer, parse_layer


@pytest.mark.parametrize("spec,want", [("final", Layer("final")), (None, Layer("final")),
                                       ("Pre-Projection", Layer("pre-projection")), ("block:0", Layer("block", 0)),
                                       ("block:11", Layer("block", 11))])
def test_layer_specs_parse(spec, want):
    assert parse_layer(spec) == want
    assert str(parse_layer(spec)) == str(want)


@pytest.mark.parametrize("spec", ["penultimate", "block:", "block:-1", "block:x", "12"])
def test_bad_layer_specs_are_one_line(spec):
    with pytest.raises(InputError, match=r"--layer must be final .*, pre-projection .* or block:N") as err:
        parse_layer(spec)
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def tiny_random():
    """The tiny-faces architecture with random (seeded) weights, and four noise images."""
    from PIL import Image

    from clipica.models import resolve_device, tiny
    from clipica.models.open_clip_backend import load_open_clip

    tiny.register_config()
    enc = load_open_clip("tiny-faces", "none", resolve_device("cpu"))
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(4)]
    return enc, images


def test_tiny_layers_have_their_widths_and_pre_projection_projects_to_final(tiny_random):
    import torch

    from clipica.models import tiny

    enc, images = tiny_random
    final = enc.use_layer("final").encode_images(images)
    cfg = tiny.model_config()
    w = cfg["vision_cfg"]["width"]
    # a ModifiedResNet of width w: stages of 4w, 8w, 16w, 32w channels; attention pool 32w -> embed_dim
    widths = {"final": cfg["embed_dim"], "pre-projection": 32 * w,
              **{f"block:{i}": 4 * w * 2**i for i in range(4)}}
    for layer, width in widths.items():
        enc.use_layer(layer)
        X = enc.encode_images(images)
        assert enc.layer == layer and X.shape == (4, width) == (4, enc.embed_dim)
        assert np.isfinite(X).all() and np.abs(X).max() > 1e-3
    # the attention pool's output projection applied to pre-projection gives final: a known answer
    enc.use_layer("pre-projection")
    with torch.inference_mode():
        pixels = torch.stack([enc.preprocess(im) for im in images])
        projected = enc.model.visual.attnpool.c_proj(enc.encode_image(pixels)).numpy()
    np.testing.assert_allclose(projected, final, atol=1e-5)
    assert np.abs(enc.use_layer("final").encode_images(images) - final).max() == 0.0  # restored exactly


def test_text_tower_layers_and_a_text_tower_too_shallow(tiny_random):
    from clipica.models import tiny

    enc, _ = tiny_random
    cfg = tiny.model_config()["text_cfg"]
    assert cfg["layers"] < 4  # the case below: a text tower shallower than the image tower's 4 stages
    texts = ["a smiling face", "a face with bangs"]
    final = enc.use_layer("final").encode_texts(texts)
    enc.use_layer("pre-projection")
    assert enc.text_dim == cfg["width"]
    pre = enc.encode_texts(texts)
    proj = enc.model.text_projection.detach().numpy()
    np.testing.assert_allclose(pre @ proj, final, atol=1e-5)
    assert enc.use_layer(f"block:{cfg['layers'] - 1}").text_dim == cfg["width"]
    enc.use_layer("block:3")
    assert enc.text_dim is None and enc.embed_dim == 32 * tiny.model_config()["vision_cfg"]["width"]
    with pytest.raises(InputError, match=f"the text tower has {cfg['layers']} blocks"):
        enc.encode_texts(texts)
    enc.use_layer("final")


def test_a_layer_the_model_lacks_is_one_line_and_leaves_the_encoder_as_it_was(tiny_random):
    enc, images = tiny_random
    enc.use_layer("block:1")
    width = enc.embed_dim
    with pytest.raises(InputError, match="has no block:9"):
        enc.use_layer("block:9")
    assert enc.layer == "block:1" and enc.embed_dim == width and enc.encode_images(images).shape == (4, width)
    enc.use_layer("final")
    with pytest.raises(InputError, match=r"tiny-faces.*image tower has 4 blocks \(block:0 \.\. block:3\); it has no block:4") as err:
        enc.use_layer("block:4")
    assert "\n" not in str(err.value)
    assert enc.layer == "final" and enc.embed_dim == 64
    assert enc.encode_images(images).shape == (4, 64)
