"""Which layer an encoder embeds at (``--layer``), for open_clip and transformers CLIPs alike.

``final``
    the projected embedding (the joint image-text space), the default;
``pre-projection``
    the pooled features just before the projection: the class token after the last
    layer norm for a ViT (transformers' ``pooler_output``), the attention pool's output
    before its output projection for a ModifiedResNet, the end-of-text token after the
    final layer norm for a text tower (the features the CLIP paper's linear probes used);
``block:N``
    the residual stream after transformer block N (0-based, as open_clip's
    ``forward_intermediates`` counts), at the class token for a ViT and at the end-of-text
    token for a text tower, before any final layer norm; for a ModifiedResNet, stage N
    (``layer1`` is block 0) averaged over space.

Blocks are read with a forward hook that stops the forward pass once the block ran, so a
shallow layer costs only the blocks before it. Outside ``final`` the two towers need not
share a width (ViT-B/32: 768 image, 512 text), nor a depth (``tiny-faces``: 4 image
stages, 2 text blocks): each tower reports its own (:func:`tower_blocks`).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

from clipica.errors import InputError

FINAL = "final"
PRE_PROJECTION = "pre-projection"
_BLOCK_RE = re.compile(r"^block:(-?\d+)$")
LAYER_HELP = "final (projected embedding), pre-projection (pooled features before the projection) or block:N"


@dataclass(frozen=True)
class Layer:
    """A parsed ``--layer``: ``kind`` is ``final``, ``pre-projection`` or ``block``."""

    kind: str
    index: int | None = None

    def __str__(self) -> str:
        return f"block:{self.index}" if self.kind == "block" else self.kind


def parse_layer(spec: Any) -> Layer:
    """``"final"`` / ``"pre-projection"`` / ``"block:N"`` -> :class:`Layer`; one-line InputError otherwise."""
    if isinstance(spec, Layer):
        return spec
    text = FINAL if spec is None else str(spec).strip().lower()
    if text in (FINAL, PRE_PROJECTION):
        return Layer(text)
    m = _BLOCK_RE.match(text)
    if m is None or int(m.group(1)) < 0:
        raise InputError(f"--layer must be {LAYER_HELP} with N >= 0; got {spec!r}")
    return Layer("block", int(m.group(1)))


class _Stop(Exception):
    """Raised by a block hook once the block's output is captured: the rest of the forward is skipped."""


@contextlib.contextmanager
def _capture(module):
    """Run the forward inside; the hooked ``module``'s output lands in ``box[0]``."""
    box: list = []

    def hook(_mod, _inp, out):
        box.append(out[0] if isinstance(out, tuple) else out)
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        yield box
    except _Stop:
        pass
    finally:
        handle.remove()


def _blocks_of(tower) -> list:
    """The blocks of an open_clip or transformers tower (empty when it has none we know)."""
    for path in ("transformer.resblocks", "encoder.layers"):
        obj = tower
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if obj is not None:
            return list(obj)
    if all(hasattr(tower, f"layer{i}") for i in range(1, 5)):  # ModifiedResNet stages
        return [getattr(tower, f"layer{i}") for i in range(1, 5)]
    return []


def tower_blocks(tower) -> int:
    return len(_blocks_of(tower))


def block_module(tower, layer: Layer, what: str):
    """The module whose output is ``layer``'s block; one line when the tower has fewer."""
    blocks = _blocks_of(tower)
    if layer.index >= len(blocks):
        have = f"block:0 .. block:{len(blocks) - 1}" if blocks else "none clipica can read"
        noun = "block" if len(blocks) == 1 else "blocks"
        raise InputError(f"{what} has {len(blocks)} {noun} ({have}); it has no {layer}")
    return blocks[layer.index]


# ------------------------------------------------------------------ open_clip


def _oc_text_tower(model):
    """(module holding the text transformer, its pool type, its eos id): CLIP keeps them on the
    model, CustomTextCLIP on ``model.text``."""
    tower = getattr(model, "text", None) or model
    return tower, getattr(tower, "text_pool_type", getattr(model, "text_pool_type", "argmax")), \
        getattr(tower, "text_eos_id", getattr(model, "text_eos_id", None))


@contextlib.contextmanager
def _without(obj, name: str, value):
    """Temporarily replace ``obj.name`` (a projection) by ``value``."""
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _identity_linear(linear):
    import torch

    n = linear.in_features
    eye = torch.nn.Linear(n, n).to(device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        eye.weight.copy_(torch.eye(n))
        eye.bias.zero_()
    return eye


def open_clip_image(model, pixels, layer: Layer):
    """(B, 3, H, W) pixels -> (B, width) features of an open_clip model's image tower at ``layer``."""
    visual = model.visual
    if layer.kind == FINAL:
        return model.encode_image(pixels)
    if layer.kind == PRE_PROJECTION:
        if hasattr(visual, "attnpool"):  # ModifiedResNet: the attention pool without its output projection
            with _without(visual.attnpool, "c_proj", _identity_linear(visual.attnpool.c_proj)):
                return visual(pixels)
        if not hasattr(visual, "proj"):
            raise InputError(f"{type(visual).__name__} has no projection clipica can leave out; use final or block:N")
        with _without(visual, "proj", None):
            return visual(pixels)
    with _capture(block_module(visual, layer, "the image tower")) as box:
        visual(pixels)
    x = box[0]
    if x.ndim == 4:  # a ResNet stage: (B, C, H, W) averaged over space
        return x.mean(dim=(2, 3))
    if not getattr(visual.transformer, "batch_first", True):
        x = x.transpose(0, 1)
    return x[:, 0]


def open_clip_text(model, tokens, layer: Layer):
    """(B, L) token ids -> (B, width) features of an open_clip model's text tower at ``layer``."""
    if layer.kind == FINAL:
        return model.encode_text(tokens)
    tower, pool, eos = _oc_text_tower(model)
    if layer.kind == PRE_PROJECTION:
        with _without(tower, "text_projection", None):
            return model.encode_text(tokens)
    from open_clip.transformer import text_global_pool

    with _capture(block_module(tower, layer, "the text tower")) as box:
        model.encode_text(tokens)
    x = box[0]
    if not getattr(tower.transformer, "batch_first", True):
        x = x.transpose(0, 1)
    return text_global_pool(x, tokens, pool, eos_token_id=eos)


# ------------------------------------------------------------------ transformers


def _hf_tower(model, name: str):
    tower = getattr(model, name, None)
    if tower is None:
        raise InputError(f"{type(model).__name__} has no {name}; only final is available for it")
    return tower


def hf_image(model, pixels, layer: Layer, final):
    """transformers CLIP image tower at ``layer`` (``final``: the model's own projected features)."""
    if layer.kind == FINAL:
        return final()
    tower = _hf_tower(model, "vision_model")
    if layer.kind == PRE_PROJECTION:
        return tower(pixel_values=pixels).pooler_output
    with _capture(block_module(tower, layer, "the image tower")) as box:
        tower(pixel_values=pixels)
    return box[0][:, 0]


def hf_text(model, tokens: dict, layer: Layer, final):
    """transformers CLIP text tower at ``layer``, pooled at the end-of-text token as transformers pools."""
    import torch

    if layer.kind == FINAL:
        return final()
    tower = _hf_tower(model, "text_model")
    if layer.kind == PRE_PROJECTION:
        return tower(**tokens).pooler_output
    with _capture(block_module(tower, layer, "the text tower")) as box:
        tower(**tokens)
    ids = tokens["input_ids"].to(torch.int)
    eos = getattr(tower, "eos_token_id", 2)
    # transformers' own rule: the largest id (old configs, eos 2) or the first eos id
    pos = ids.argmax(dim=-1) if eos == 2 else (ids == eos).int().argmax(dim=-1)
    x = box[0]
    return x[torch.arange(x.shape[0], device=x.device), pos.to(x.device)]
