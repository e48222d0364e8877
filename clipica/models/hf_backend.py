"""Hugging Face transformers CLIP-style models (``CLIPModel`` and friends).

From a hub id (``hf-hub:openai/clip-vit-base-patch32``) or a local folder
written by ``model.save_pretrained(DIR)`` plus the processor's
``save_pretrained(DIR)`` (tokenizer and image processor files). Offline, only
the HF cache is consulted; a missing model is one clear message. Code shipped
inside a repo is never run (``trust_remote_code=False``): such a repo is
refused with one line instead of a prompt.

Preprocessing (``preprocess=``): for CLIP models (a ``CLIPImageProcessor`` and
a ``CLIPTokenizer``), ``"original"`` applies the OpenAI/open_clip pipeline of
:mod:`clipica.models.preprocess` instead of the processor, so the same weights
embed the same way as through open_clip; ``"native"`` keeps the processor and
tokenizer as they are. Other models always keep their own processor.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np

from clipica.errors import ModelNotFoundError
from clipica.models.base import Encoder
from clipica.models.preprocess import ORIGINAL_TEXT


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

    def __init__(self, model, image_processor, tokenizer, *, spec: str, source: str, device, precision: str,
                 preprocess: str = "original"):
        from clipica.models.preprocess import hf_original_image_transform, hf_uses_clip_tokenizer

        self.model = model
        self._image_processor = image_processor
        self._tokenizer = tokenizer
        self.preprocess_mode = preprocess
        original = preprocess == "original"
        # None: the processor as-is (native, or a model whose original pipeline is its processor)
        self._image_transform = hf_original_image_transform(image_processor) if original else None
        self._clean_text = original and hf_uses_clip_tokenizer(tokenizer)
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
        if self._image_transform is not None:
            return self._image_transform(image)
        out = self._image_processor(images=image, return_tensors="pt")
        return out["pixel_values"][0]

    def tokenize(self, texts: list[str]):
        from clipica.models.preprocess import clean_caption

        texts = ["" if t is None else str(t) for t in texts]
        if self._clean_text:
            texts = [clean_caption(t) for t in texts]
        tok = self._tokenizer
        ctx = self.context_length
        full = tok(texts, truncation=False)["input_ids"]
        truncated = np.array([len(ids) > ctx for ids in full], dtype=bool)
        batch = tok(texts, padding="max_length", truncation=True, max_length=ctx, return_tensors="pt")
        keep = ("input_ids", "attention_mask")
        return {k: v for k, v in batch.items() if k in keep}, truncated

    def encode_image(self, pixels):
        from clipica.models.layers import hf_image

        return hf_image(self.model, pixels, self.layer_spec,
                        lambda: _first(self.model.get_image_features(pixel_values=pixels)))

    def encode_text(self, tokens):
        from clipica.models.layers import hf_text

        self._text_layer_check()
        return hf_text(self.model, tokens, self.layer_spec, lambda: _first(self.model.get_text_features(**tokens)))

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
            "layer": self.layer,
            "text_dim": self.text_dim,
            "preprocess": {
                "mode": self.preprocess_mode,
                "image": (self._image_transform.describe() if self._image_transform is not None else {
                    "pipeline": f"transformers {type(ip).__name__} as-is",
                    "mean": list(getattr(ip, "image_mean", []) or []),
                    "std": list(getattr(ip, "image_std", []) or []),
                    "size": _jsonable(getattr(ip, "size", None)),
                    "crop_size": _jsonable(getattr(ip, "crop_size", None)),
                }),
                "text": (ORIGINAL_TEXT + f", then transformers {type(self._tokenizer).__name__}" if self._clean_text
                         else f"transformers {type(self._tokenizer).__name__} as-is"),
            },
            "transformers_version": __import__("transformers").__version__,
        }


def _jsonable(v):
    if v is None or isinstance(v, (int, float, str)):
        return v
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items() if x is not None}
    try:
        return {k: x for k, x in dict(v).items() if x is not None}
    except (TypeError, ValueError):
        return str(v)


def load_hf_clip(name: str, device, precision: str = "fp32", preprocess: str = "original") -> HFClipEncoder:
    """``name``: a local ``save_pretrained`` folder or a hub id (``ORG/NAME``, optionally ``hf-hub:``-prefixed).

    ``preprocess``: "original" or "native" (see the module docstring).
    Raises ModelNotFoundError for a missing model and for a repo that ships its own code.
    """
    import transformers

    from clipica.data.hf import hub_reachable
    from clipica.models.preprocess import check_preprocess

    check_preprocess(preprocess)

    repo = name[len("hf-hub:"):] if name.startswith("hf-hub:") else name
    local = Path(os.path.expanduser(repo))
    if local.is_dir():
        source, spec, kwargs = str(local.resolve()), f"hf:{local.resolve()}", {}
        if not (local / "config.json").is_file():
            raise ModelNotFoundError(f"{local} has no config.json: save the model there with model.save_pretrained(DIR)")
    else:
        source, spec = repo, f"hf:{repo}"
        kwargs = {} if hub_reachable() else {"local_files_only": True}
    # never run code shipped in a repo, and never ask: a repo with custom code is refused
    kwargs["trust_remote_code"] = False
    stage = "model"
    try:
        model = transformers.AutoModel.from_pretrained(source, **kwargs)
        stage = "tokenizer"
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        stage = "image processor"
        image_processor = transformers.AutoImageProcessor.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        msg = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        if "trust_remote_code" in str(exc):
            raise ModelNotFoundError(
                f"{repo}: the {stage} needs code shipped inside the repo, which clipica never runs "
                "(trust_remote_code=False); use a model that transformers supports natively"
            ) from None
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
    return HFClipEncoder(model, image_processor, tokenizer, spec=spec, source=source, device=device,
                         precision=precision, preprocess=preprocess)

