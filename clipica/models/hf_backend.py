"""Hugging Face transformers CLIP-style models (``CLIPModel`` and friends).

From a hub id (``hf-hub:openai/clip-vit-base-patch32``) or a local folder
written by ``model.save_pretrained(DIR)`` plus the processor's
``save_pretrained(DIR)`` (tokenizer and image processor files). Offline, only
the HF cache is consulted; a missing model is one clear message.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np

from clipica.errors import ModelNotFoundError
from clipica.models.base import Encoder


def _first(out):
    """transformers >= 5 returns a model output whose pooler_output is the projected embedding."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if pooled is not None:
        return pooled
    return out[0]


class HFClipEncoder(Encoder):
    """A transformers model with ``get_image_features`` / ``get_text_features``."""

    def __init__(self, model, image_processor, tokenizer, *, spec: str, source: str, device, precision: str):
        self.model = model
        self._image_processor = image_processor
        self._tokenizer = tokenizer
        self.spec = spec
        self.device = device
        self.precision = precision
        self._source = source
        cfg = model.config
        vcfg, tcfg = cfg.vision_config, cfg.text_config
        self.image_size = int(vcfg.image_size)
        self.context_length = int(tcfg.max_position_embeddings)
        self.embed_dim = int(getattr(cfg, "projection_dim", None) or tcfg.hidden_size)

    def worker_view(self) -> HFClipEncoder:
        view = copy.copy(self)
        view.model = None
        return view

    def preprocess(self, image):
        out = self._image_processor(images=image, return_tensors="pt")
        return out["pixel_values"][0]

    def tokenize(self, texts: list[str]):
        texts = ["" if t is None else str(t) for t in texts]
        tok = self._tokenizer
        ctx = self.context_length
        full = tok(texts, truncation=False)["input_ids"]
        truncated = np.array([len(ids) > ctx for ids in full], dtype=bool)
        batch = tok(texts, padding="max_length", truncation=True, max_length=ctx, return_tensors="pt")
        keep = ("input_ids", "attention_mask")
        return {k: v for k, v in batch.items() if k in keep}, truncated

    def encode_image(self, pixels):
        return _first(self.model.get_image_features(pixel_values=pixels))

    def encode_text(self, tokens):
        return _first(self.model.get_text_features(**tokens))

    def describe(self) -> dict:
        ip = self._image_processor
        return {
            "backend": "transformers",
            "architecture": type(self.model).__name__ if self.model is not None else None,
            "pretrained": self._source,
            "weights": f"transformers from_pretrained({self._source})",
            "embed_dim": self.embed_dim,
            "image_size": self.image_size,
            "context_length": self.context_length,
            "precision": self.precision,
            "preprocess": {
                "processor": type(ip).__name__,
                "mean": list(getattr(ip, "image_mean", []) or []),
                "std": list(getattr(ip, "image_std", []) or []),
                "size": _jsonable(getattr(ip, "size", None)),
                "crop_size": _jsonable(getattr(ip, "crop_size", None)),
            },
            "transformers_version": __import__("transformers").__version__,
        }


def _jsonable(v):
    if v is None or isinstance(v, (int, float, str)):
        return v
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    try:
        return dict(v)
    except (TypeError, ValueError):
        return str(v)


def load_hf_clip(name: str, device, precision: str = "fp32") -> HFClipEncoder:
    """``name``: a local ``save_pretrained`` folder or a hub id (``ORG/NAME``, optionally ``hf-hub:``-prefixed)."""
    import transformers

    from clipica.data.hf import hub_reachable

    repo = name[len("hf-hub:"):] if name.startswith("hf-hub:") else name
    local = Path(os.path.expanduser(repo))
    if local.is_dir():
        source, spec, kwargs = str(local.resolve()), f"hf:{local.resolve()}", {}
        if not (local / "config.json").is_file():
            raise ModelNotFoundError(f"{local} has no config.json: save the model there with model.save_pretrained(DIR)")
    else:
        source, spec = repo, f"hf:{repo}"
        kwargs = {} if hub_reachable() else {"local_files_only": True}
    stage = "model"
    try:
        model = transformers.AutoModel.from_pretrained(source, **kwargs)
        stage = "tokenizer"
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        stage = "image processor"
        image_processor = transformers.AutoImageProcessor.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        msg = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        if local.is_dir():
            raise ModelNotFoundError(
                f"cannot load the {stage} from {local} ({msg}); save it with "
                "model.save_pretrained(DIR) and processor.save_pretrained(DIR)"
            ) from None
        from huggingface_hub import constants

        raise ModelNotFoundError(
            f"cannot load {stage} {repo!r} from the Hugging Face hub"
            f"{' (offline: not in the cache)' if kwargs else ''}: {msg}. Download it where the hub is "
            f"reachable (huggingface-cli download {repo}; cache: {constants.HF_HUB_CACHE}) "
            "or pass a local folder saved with save_pretrained: --model /path/to/dir"
        ) from None
    if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
        raise ModelNotFoundError(
            f"{repo}: {type(model).__name__} is not a CLIP-style dual encoder (no get_image_features/get_text_features)"
        )
    model.eval().to(device)
    return HFClipEncoder(model, image_processor, tokenizer, spec=spec, source=source, device=device, precision=precision)
