"""Encoder backends behind one protocol: ``clipica.load_encoder(spec, pretrained, device)``.

Model specs (``--model``)::

    ViT-B-32 --pretrained openai        an open_clip architecture + tag / checkpoint file / "none"
    hf-hub:ORG/NAME                     a hub repo: open_clip's format when it has open_clip_config.json,
                                        else a transformers CLIP model
    ORG/NAME                            a transformers CLIP model on the hub
    /path/to/dir                        a local folder: open_clip_config.json (open_clip) or
                                        config.json (transformers save_pretrained)
    /path/to/ckpt.safetensors           an open_clip checkpoint with open_clip_config.json beside it
                                        (otherwise: --model ARCH --pretrained FILE)
    tiny-faces                          the built-in small CLIP (trained once, then cached)
    open_clip:SPEC / hf:SPEC            force a backend

This module stays light: torch and the backends load on first use.
"""

from __future__ import annotations

import os
from pathlib import Path

from clipica.errors import InputError, ModelNotFoundError
from clipica.models.base import Encoder

__all__ = ["Encoder", "load_encoder", "resolve_device", "PRECISIONS"]

PRECISIONS = ("fp32", "bf16", "fp16")


def resolve_device(device="cpu"):
    """'cpu' | 'cuda' | 'cuda:N' | 'auto' (cuda when available) -> torch.device."""
    import torch

    if isinstance(device, torch.device):
        return device
    name = str(device or "cpu").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device={device!r}: CUDA is not available on this machine; use device='cpu' or 'auto'")
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError(f"device={device!r} is not a device; expected cpu, cuda, cuda:N or auto") from None


def load_encoder(spec: str, pretrained: str | None = None, device="cpu", precision: str = "fp32",
                 preprocess: str = "original", layer: str = "final") -> Encoder:
    """Load a CLIP-style encoder (see the module docstring for ``spec``), embedding at ``layer``:
    ``final`` (the projected embedding), ``pre-projection`` or ``block:N``
    (:mod:`clipica.models.layers`; a layer the model lacks is one line).
    """
    from clipica.models.layers import parse_layer

    parsed = parse_layer(layer)  # a bad spelling fails before the model loads
    enc = _load_encoder(spec, pretrained, device, precision, preprocess)
    return enc.use_layer(parsed)  # at final: no forward pass, sets text_dim = embed_dim


def _load_encoder(spec: str, pretrained: str | None = None, device="cpu", precision: str = "fp32",
                  preprocess: str = "original") -> Encoder:
    """Load a CLIP-style encoder at its final layer (see the module docstring for ``spec``).

    Parameters
    ----------
    spec : model spec.
    pretrained : open_clip weights: a tag, a checkpoint file, or ``"none"`` for
        random (seeded) weights. Required for bare open_clip architectures.
    device : "cpu", "cuda", "cuda:N" or "auto".
    precision : "fp32", "bf16" or "fp16": recorded here; the extraction loop
        applies it as autocast on GPU (CPU always computes in fp32).
    preprocess : "original" (default): the pipeline of the model's original
        implementation; for CLIP models whose original is OpenAI's or open_clip's,
        both backends apply the same one (:mod:`clipica.models.preprocess`), so
        the same weights embed the same way whichever way they are loaded.
        "native": the loader's own processor as-is (transformers'
        CLIPImageProcessor and CLIPTokenizer for Hugging Face models).

    Raises
    ------
    ModelNotFoundError for unknown names and weights that are not available offline.
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}; got precision={precision!r}")
    if not isinstance(spec, str) or not spec.strip():
        raise ModelNotFoundError(f"model must name a model; got model={spec!r}")
    spec = spec.strip()
    from clipica.models.preprocess import check_preprocess

    pp = check_preprocess(preprocess)
    dev = resolve_device(device)
    from clipica.models.hf_backend import load_hf_clip
    from clipica.models.open_clip_backend import load_open_clip

    if spec == "tiny-faces" or spec == "open_clip:tiny-faces":
        from clipica.models import tiny

        tiny.register_config()
        # a shipped tag (default: seed0), "cache", a train-tiny folder -> its safetensors file
        pretrained = tiny.weights_for(pretrained)
        enc = load_open_clip("tiny-faces", pretrained, dev, precision, pp)
        return enc
    if spec.startswith("open_clip:"):
        return _open_clip_spec(spec[len("open_clip:"):], pretrained, dev, precision, pp)
    for prefix in ("hf:", "transformers:"):
        if spec.startswith(prefix):
            _no_pretrained(pretrained, spec)
            return load_hf_clip(spec[len(prefix):], dev, precision, pp)
    if spec.startswith("hf-hub:"):
        if _hub_repo_is_open_clip(spec[len("hf-hub:"):]):
            return load_open_clip(spec, pretrained, dev, precision, pp)
        _no_pretrained(pretrained, spec)
        return load_hf_clip(spec, dev, precision, pp)
    path = Path(os.path.expanduser(spec))
    if path.is_dir():
        if (path / "open_clip_config.json").is_file():
            return load_open_clip(str(path), pretrained, dev, precision, pp)
        if (path / "config.json").is_file():
            _no_pretrained(pretrained, spec)
            return load_hf_clip(str(path), dev, precision, pp)
        raise ModelNotFoundError(
            f"{path} is a folder but neither an open_clip folder (open_clip_config.json) nor a "
            "transformers save_pretrained folder (config.json)"
        )
    if path.is_file():
        return _checkpoint_file(path, pretrained, dev, precision, pp)
    return _open_clip_spec(spec, pretrained, dev, precision, pp)


def _no_pretrained(pretrained, spec):
    if pretrained not in (None, ""):
        raise InputError(f"pretrained={pretrained!r} does not apply to {spec}: the model folder/repo holds its weights")


def _open_clip_spec(name, pretrained, dev, precision, preprocess="original"):
    import open_clip

    from clipica.models.open_clip_backend import load_open_clip

    if (
        "/" in name
        and not name.startswith("hf-hub:")
        and name.replace("/", "-") not in open_clip.list_models()
        and not Path(os.path.expanduser(name)).exists()
    ):
        # ORG/NAME: a transformers hub id
        from clipica.models.hf_backend import load_hf_clip

        _no_pretrained(pretrained, name)
        return load_hf_clip(name, dev, precision, preprocess)
    return load_open_clip(name, pretrained, dev, precision, preprocess)


def _hub_repo_is_open_clip(repo: str) -> bool:
    """Does the hub repo use open_clip's format? Cache first, then the hub when reachable."""
    from huggingface_hub import try_to_load_from_cache

    from clipica.data.hf import hub_reachable

    for filename, verdict in (("open_clip_config.json", True), ("config.json", False)):
        hit = try_to_load_from_cache(repo, filename)
        if isinstance(hit, str):
            return verdict
    if not hub_reachable():
        from huggingface_hub import constants

        raise ModelNotFoundError(
            f"hf-hub:{repo} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and the hub is not "
            f"reachable: download it where it is (huggingface-cli download {repo}) or pass a local folder "
            "(model='/path/to/dir') or checkpoint (model='ARCH', pretrained='FILE')"
        )
    try:
        from huggingface_hub import file_exists

        return bool(file_exists(repo, "open_clip_config.json"))
    except Exception as exc:  # noqa: BLE001
        raise ModelNotFoundError(f"hf-hub:{repo}: cannot query the hub ({exc})") from None


def _checkpoint_file(path: Path, pretrained, dev, precision, preprocess="original"):
    """A bare checkpoint: its architecture comes from open_clip_config.json beside it."""
    import hashlib
    import json
    import tempfile

    from clipica.models.open_clip_backend import load_open_clip

    cfg_file = path.parent / "open_clip_config.json"
    if pretrained not in (None, ""):
        raise InputError(
            f"model={str(path)!r} is a checkpoint file; give the architecture as model='ARCH', pretrained={str(path)!r}"
        )
    if not cfg_file.is_file():
        raise ModelNotFoundError(
            f"{path}: cannot tell its architecture (no open_clip_config.json beside it); "
            f"use model='ARCH', pretrained={str(path)!r}"
        )
    try:
        cfg = json.loads(cfg_file.read_text())
        model_cfg = cfg.get("model_cfg", cfg)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"{cfg_file}: not a readable open_clip config ({exc})") from None
    if not all(k in model_cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
        raise ModelNotFoundError(f"{cfg_file}: needs embed_dim, vision_cfg and text_cfg")
    import open_clip

    digest = hashlib.sha256(json.dumps(model_cfg, sort_keys=True).encode()).hexdigest()[:12]
    name = f"clipica-local-{digest}"
    if name not in open_clip.list_models():
        # open_clip reads the file once into its registry; the temp copy can go right after
        with tempfile.TemporaryDirectory(prefix="clipica-config-") as tmp:
            reg = Path(tmp) / f"{name}.json"
            reg.write_text(json.dumps(model_cfg))
            open_clip.add_model_config(reg)
    return load_open_clip(name, str(path), dev, precision, preprocess)
