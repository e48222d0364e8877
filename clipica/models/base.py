"""The one small protocol every encoder backend implements.

Backends (open_clip, Hugging Face transformers, the built-in ``tiny-faces``)
subclass :class:`Encoder` and implement the five primitives; the numpy
conveniences ``encode_images`` / ``encode_texts`` are shared. torch stays inside
``clipica.models`` and ``clipica.embeddings.extract``: what leaves is numpy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from PIL import Image


class Encoder(ABC):
    """A CLIP-style dual encoder.

    Attributes
    ----------
    spec : str
        Stable string naming the model and weights (``"open_clip:ViT-B-32@openai"``),
        recorded in every manifest.
    embed_dim : int
        Size D of the projected (joint) embedding space.
    image_size : int
        Side in pixels of the square input the vision tower expects.
    context_length : int
        Maximum number of text tokens; longer captions are truncated (and reported).
    device : torch.device
    layer : str
        Where the towers are read (:mod:`clipica.models.layers`): ``"final"`` (the
        projected embedding, the default), ``"pre-projection"`` or ``"block:N"``; set with
        :meth:`use_layer`, which also sets ``embed_dim`` to the image tower's width there.
    text_dim : int or None
        Width of the text features at ``layer`` (``embed_dim`` at ``final``); None when the
        text tower has no such layer.
    text_missing : str or None
        Why the text tower has no ``layer`` (one line), else None.
    """

    spec: str
    embed_dim: int
    image_size: int
    context_length: int
    device: Any
    layer: str = "final"
    text_dim: int | None = None
    text_missing: str | None = None

    # -- primitives ---------------------------------------------------------
    @abstractmethod
    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """One PIL image (any mode) -> float tensor of shape (3, image_size, image_size).

        Safe to call in DataLoader worker processes (no CUDA, no model access).
        """

    @abstractmethod
    def tokenize(self, texts: list[str]) -> tuple[Any, np.ndarray]:
        """Texts -> (model-ready token batch, bool array (n,) True where truncated).

        Safe to call in DataLoader worker processes.
        """

    @abstractmethod
    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) preprocessed pixels -> (B, embed_dim) projected embeddings, not normalised."""

    @abstractmethod
    def encode_text(self, tokens: Any) -> torch.Tensor:
        """Token batch from :meth:`tokenize` -> (B, embed_dim) projected embeddings, not normalised."""

    @abstractmethod
    def describe(self) -> dict:
        """JSON-able provenance: backend, architecture, weights, preprocessing (mean, std, size, interpolation)."""

    def use_layer(self, layer: str = "final") -> Encoder:
        """Embed at ``layer`` from now on (``final``, ``pre-projection`` or ``block:N``).

        Measures each tower's width there with one dummy input. Raises
        :class:`~clipica.errors.InputError` (one line) when the image tower lacks the layer; a
        text tower that lacks it leaves ``text_dim`` None (its ``encode_text`` then says why).
        """
        import torch

        from clipica.errors import InputError
        from clipica.models.layers import parse_layer

        parsed = parse_layer(layer)
        final = getattr(self, "_final_dim", None) or self.embed_dim
        self._final_dim = final
        before = {k: getattr(self, k, None) for k in ("_layer", "layer", "text_missing", "embed_dim", "text_dim")}
        self._layer = parsed
        self.layer, self.text_missing = str(parsed), None
        if parsed.kind == "final":
            self.embed_dim = self.text_dim = final
            return self
        try:
            with torch.inference_mode():
                dummy = torch.zeros(1, 3, self.image_size, self.image_size, device=self.device)
                self.embed_dim = int(self.encode_image(dummy).shape[-1])
        except InputError as exc:
            for k, v in before.items():  # the encoder stays at the layer it was at
                setattr(self, k, v)
            raise InputError(f"{self.spec}: {exc}") from None
        try:
            with torch.inference_mode():
                tokens, _ = self.tokenize([""])
                self.text_dim = int(self.encode_text(to_device(tokens, self.device)).shape[-1])
        except InputError as exc:
            self.text_dim, self.text_missing = None, str(exc)
        return self

    def _text_layer_check(self) -> None:
        if self.text_missing is not None:
            from clipica.errors import InputError

            raise InputError(f"{self.spec}: {self.text_missing}")

    @property
    def layer_spec(self):
        """The parsed :class:`~clipica.models.layers.Layer` (``final`` until :meth:`use_layer`)."""
        from clipica.models.layers import Layer

        return getattr(self, "_layer", None) or Layer("final")

    # -- numpy conveniences (used by naming, interventions, notebooks) -------
    def encode_images(self, images: list[Image.Image], batch_size: int = 64) -> np.ndarray:
        """PIL images -> float32 array of shape (n, embed_dim), unnormalised."""
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = torch.stack([self.preprocess(im) for im in images[start : start + batch_size]])
                out.append(self.encode_image(batch.to(self.device)).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def encode_texts(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """Strings -> float32 array of shape (n, embed_dim), unnormalised; long texts truncated."""
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                tokens, _ = self.tokenize(list(texts[start : start + batch_size]))
                tokens = to_device(tokens, self.device)
                out.append(self.encode_text(tokens).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


def to_device(tokens: Any, device: Any) -> Any:
    """Token ids (a tensor, or a dict of tensors for HF tokenizers) moved to ``device``."""
    if hasattr(tokens, "to"):
        return tokens.to(device, non_blocking=True)
    if isinstance(tokens, dict):
        return {k: v.to(device, non_blocking=True) for k, v in tokens.items()}
    return tokens
