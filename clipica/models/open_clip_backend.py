"""open_clip models: architecture name + pretrained tag, ``hf-hub:`` repos, local files and folders.

``pretrained`` is always explicit: a tag from open_clip's registry, a
checkpoint file, or ``"none"`` for random weights (seeded, so two loads give
the same model: tests and benchmarks rely on it). With no ``pretrained`` the
loader refuses and lists the known tags rather than silently building a
random model.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np

from clipica.errors import InputError, ModelNotFoundError
from clipica.models.base import Encoder

#: seed of ``pretrained="none"`` models: the same random weights on every load
RANDOM_WEIGHTS_SEED = 0
_RANDOM = ("none", "random")


def _open_clip():
    import open_clip

    return open_clip


def _unknown_arch(arch: str) -> ModelNotFoundError:
    import difflib

    names = _open_clip().list_models()
    close = difflib.get_close_matches(arch, names, n=6, cutoff=0.5)
    if not close:
        close = difflib.get_close_matches(arch.lower(), [n.lower() for n in names], n=6, cutoff=0.3)
        close = [n for n in names if n.lower() in close]
    hint = f"did you mean {', '.join(close)}?" if close else f"known architectures include {', '.join(names[:12])}, ..."
    return ModelNotFoundError(
        f"unknown model {arch!r}: not an open_clip architecture, a local file or folder, "
        f"hf-hub:ORG/NAME or tiny-faces; {hint} (open_clip.list_models() lists all {len(names)})"
    )


def _short_list(items, n: int = 8) -> str:
    items = list(items)
    return ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "")


def _weights_cache_hint() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


class OpenClipEncoder(Encoder):
    """An open_clip ``CLIP``/``CustomTextCLIP`` model behind clipica's encoder protocol."""

    def __init__(self, model, preprocess, tokenizer, *, spec: str, info: dict, device, precision: str,
                 preprocess_mode: str = "original", preprocess_info: dict | None = None):
        self.model = model
        self._preprocess = preprocess
        self.preprocess_mode = preprocess_mode
        self._preprocess_info = preprocess_info or {}
        self._tokenizer = tokenizer
        self.spec = spec
        self.device = device
        self.precision = precision
        self._info = info
        visual = model.visual
        size = getattr(visual, "image_size", None)
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.context_length = int(getattr(model, "context_length", None) or tokenizer.context_length)
        out_dim = getattr(visual, "output_dim", None)
        if out_dim is None:
            import torch

            with torch.inference_mode():
                dummy = torch.zeros(1, 3, self.image_size, self.image_size, device=device)
                out_dim = model.encode_image(dummy).shape[-1]
        self.embed_dim = int(out_dim)

    # DataLoader workers get a copy without the network (cheap to pickle under spawn)
    def worker_view(self) -> OpenClipEncoder:
        view = copy.copy(self)
        view.model = None
        return view

    def preprocess(self, image):
        return self._preprocess(image)

    def tokenize(self, texts: list[str]):
        import torch

        texts = ["" if t is None else str(t) for t in texts]
        tok = self._tokenizer
        ctx = self.context_length
        if hasattr(tok, "encode") and hasattr(tok, "sot_token_id") and getattr(tok, "reduction_fn", None) is None:
            # open_clip's SimpleTokenizer, done here so we see each caption's full length
            result = torch.zeros(len(texts), ctx, dtype=torch.long)
            truncated = np.zeros(len(texts), dtype=bool)
            for i, text in enumerate(texts):
                ids = [tok.sot_token_id, *tok.encode(text), tok.eot_token_id]
                if len(ids) > ctx:
                    truncated[i] = True
                    ids = ids[:ctx]
                    ids[-1] = tok.eot_token_id
                result[i, : len(ids)] = torch.tensor(ids)
            return result, truncated
        tokens = tok(texts, context_length=ctx)
        inner = getattr(tok, "tokenizer", None)
        if inner is not None and callable(inner):  # HFTokenizer: lengths from the wrapped tokenizer
            lengths = [len(x) for x in inner(texts)["input_ids"]]
            truncated = np.array([n > ctx for n in lengths], dtype=bool)
        else:  # unknown tokenizer: a full row without padding means the text filled the context
            truncated = (tokens != 0).all(dim=1).cpu().numpy()
        return tokens, truncated

    def encode_image(self, pixels):
        from clipica.models.layers import open_clip_image

        return open_clip_image(self.model, pixels, self.layer_spec)

    def encode_text(self, tokens):
        from clipica.models.layers import open_clip_text

        self._text_layer_check()
        return open_clip_text(self.model, tokens, self.layer_spec)

    def describe(self) -> dict:
        tok = self._tokenizer
        clean = getattr(getattr(tok, "clean_fn", None), "__name__", None)
        text = (f"open_clip {type(tok).__name__}, its own cleaning ({clean})"
                + ("; _clean_lower is the OpenAI cleaning" if clean == "_clean_lower" else "")
                if clean else f"open_clip {type(tok).__name__}")
        out = {
            "backend": "open_clip",
            **self._info,
            "embed_dim": self.embed_dim,
            "image_size": self.image_size,
            "context_length": self.context_length,
            "precision": self.precision,
            "layer": self.layer,
            "text_dim": self.text_dim,
            "preprocess": {"mode": self.preprocess_mode, "image": self._preprocess_info, "text": text},
            "open_clip_version": _open_clip().__version__,
        }
        return out


def load_open_clip(name: str, pretrained: str | None, device, precision: str = "fp32",
                   preprocess: str = "original") -> OpenClipEncoder:
    """Build an :class:`OpenClipEncoder`.

    name : architecture (``ViT-B-32``), ``hf-hub:ORG/NAME`` or a local folder with
        ``open_clip_config.json``.
    pretrained : tag, checkpoint file or ``"none"`` (architectures only).
    preprocess : "original" (clipica's definition of the OpenAI/open_clip pipeline,
        see :mod:`clipica.models.preprocess`) or "native" (open_clip's own
        transform); both give the same pixels for OpenAI-style configurations.
    """
    import torch

    open_clip = _open_clip()

    from clipica.data.hf import hub_reachable, offline_hub
    from clipica.models.preprocess import check_preprocess, open_clip_image_transform

    check_preprocess(preprocess)

    info: dict[str, Any] = {}
    create_kwargs: dict[str, Any] = {}
    if name.startswith("hf-hub:"):
        if pretrained not in (None, ""):
            raise InputError(f"pretrained={pretrained!r} cannot be combined with {name}: the repo holds the weights")
        model_name, tok_name = name, name
        spec = f"open_clip:{name}"
        info.update(architecture=name, pretrained=name, weights=f"Hugging Face hub repo {name[7:]}")
        remote = True
    elif Path(os.path.expanduser(name)).is_dir():
        folder = Path(os.path.expanduser(name)).resolve()
        if pretrained not in (None, ""):
            raise InputError(f"pretrained={pretrained!r} cannot be combined with the folder {folder}: it holds the weights")
        model_name = f"local-dir:{folder}"
        tok_name = model_name
        spec = f"open_clip:{folder}"
        info.update(architecture=str(folder), pretrained=str(folder), weights=f"local folder {folder}")
        remote = False
    else:
        arch = name.replace("/", "-")
        if arch not in open_clip.list_models():
            raise _unknown_arch(name)
        model_name, tok_name = arch, arch
        tags = open_clip.list_pretrained_tags_by_model(arch)
        remote = False
        if pretrained is None or pretrained == "":
            raise ModelNotFoundError(
                f"{arch}: say which weights to load with pretrained='TAG' "
                f"({'known tags: ' + _short_list(tags) if tags else 'no published tags'}), "
                "pretrained='/path/to/checkpoint', or pretrained='none' for random weights"
            )
        if pretrained.lower() in _RANDOM:
            spec = f"open_clip:{arch}@none"
            info.update(architecture=arch, pretrained="none",
                        weights=f"random initialisation (torch seed {RANDOM_WEIGHTS_SEED}), not trained")
        elif Path(os.path.expanduser(pretrained)).is_file():
            path = Path(os.path.expanduser(pretrained)).resolve()
            create_kwargs["pretrained"] = str(path)
            spec = f"open_clip:{arch}@{path}"
            info.update(architecture=arch, pretrained=str(path), weights=f"checkpoint file {path}")
        elif pretrained in tags:
            create_kwargs["pretrained"] = pretrained
            spec = f"open_clip:{arch}@{pretrained}"
            cfg = open_clip.get_pretrained_cfg(arch, pretrained)
            info.update(architecture=arch, pretrained=pretrained,
                        weights=f"open_clip tag {pretrained}", source=cfg.get("hf_hub") or cfg.get("url"))
            remote = True
        else:
            raise ModelNotFoundError(
                f"{arch}: unknown pretrained tag or missing file {pretrained!r}; "
                f"known tags: {_short_list(tags) if tags else '(none)'}; or pass a checkpoint path or 'none'"
            )

    import contextlib
    import warnings

    offline = remote and not hub_reachable()
    ctx = offline_hub() if offline else contextlib.nullcontext()
    stage = "weights"
    import logging

    # open_clip logs its own errors/warnings on the root logger; ours is the one message people see
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with ctx, torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            # torch.load's warnings about pickles (weights_only) would be a second message
            warnings.filterwarnings("ignore", message=".*weights_only.*")
            torch.manual_seed(RANDOM_WEIGHTS_SEED)  # makes pretrained="none" reproducible
            model = open_clip.create_model(model_name, device=device, **create_kwargs)
            stage = "tokenizer"
            tokenizer = open_clip.get_tokenizer(tok_name)
    except Exception as exc:  # noqa: BLE001 - open_clip wraps hub/URL errors in RuntimeError
        msg = (str(exc).splitlines() or [type(exc).__name__])[0]
        if msg.startswith("Weights only load failed") or type(exc).__name__ == "UnpicklingError":
            # torch's text goes on to suggest weights_only=False, i.e. running the pickle's code
            msg = ("the file is a pickle holding more than tensors; it was not unpickled (that could "
                   "run any code in it). Save the weights as safetensors or a plain state_dict")
        msg = msg if len(msg) <= 200 else msg[:197] + "..."
        if remote:
            what = str(info.get("source") or name).rstrip("/")
            raise ModelNotFoundError(
                f"cannot load the {stage} of {spec} ({'offline: ' if offline else ''}{msg}). Download {what} "
                f"where the network is reachable (it is cached under {_weights_cache_hint()} or ~/.cache/clip), "
                "or pass a local checkpoint: model='ARCH', pretrained='/path/to/weights.safetensors'"
            ) from None
        raise ModelNotFoundError(f"cannot load the {stage} of {spec}: {msg}") from None
    finally:
        logging.disable(previous)
    model.eval()
    pp, pp_info = open_clip_image_transform(model.visual.preprocess_cfg, preprocess)
    return OpenClipEncoder(model, pp, tokenizer, spec=spec, info=info, device=device, precision=precision,
                           preprocess_mode=preprocess, preprocess_info=pp_info)
