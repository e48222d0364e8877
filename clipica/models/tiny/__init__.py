"""``tiny-faces``: the built-in small CLIP, trained on ``synthetic-faces``; this module loads it.

The architecture is data: an open_clip JSON config shipped in the package
(``clipica/models/configs/tiny-faces.json``: a 64 px ModifiedResNet and a 2-layer text
transformer using open_clip's own BPE tokenizer, so everything works offline).
:func:`register_config` adds it to open_clip's registry, after which it loads through the
same backend as any open_clip model::

    register_config()
    open_clip.create_model_and_transforms("tiny-faces", pretrained=str(weights_for(None)))

Weights come from one of three places, chosen by ``--pretrained`` (:func:`weights_for`):

* **shipped** (the default): trained checkpoints carried by the package under
  ``weights/<folder>/`` (:data:`SHIPPED`: tag -> folder; ``seed0`` is the default,
  ``seed1`` the same recipe from seed 1). Each folder is what ``clipica train-tiny``
  writes, in fp16 (loaded as fp32): ``tiny-faces.safetensors``, ``recipe.json`` (the
  training recipe, its hash and the seed), ``training.json`` and ``eval.json`` (measured
  on the fp16 weights as loaded). A further checkpoint is one folder and one line in
  :data:`SHIPPED`.
* ``cache``: what ``clipica train-tiny`` trains without ``--out``, in
  ``clipica._cache.cache_dir() / "tiny-faces"``.
* a folder written by ``clipica train-tiny --out DIR`` (or its safetensors file).

This package's loading side never trains and never imports the training side
(:mod:`clipica.models.tiny.train`, :mod:`~clipica.models.tiny.evaluate`,
:mod:`~clipica.models.tiny.checkpoint`). Loading never unpickles (open_clip reads
``.safetensors`` with ``safetensors``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

MODEL_NAME = "tiny-faces"
WEIGHTS_NAME = "tiny-faces.safetensors"
TRAINING_NAME = "training.json"
EVAL_NAME = "eval.json"
RECIPE_NAME = "recipe.json"
CONFIG_NAME = "tiny-faces.json"

#: the shipped checkpoints, ``--pretrained TAG`` -> folder under ``weights/`` (package data)
SHIPPED: dict[str, str] = {
    "seed0": "seed0",
    "seed1": "seed1",
}
#: the shipped checkpoint ``--model tiny-faces`` loads when no ``--pretrained`` is given
DEFAULT_PRETRAINED = "seed0"
#: ``--pretrained cache``: the weights ``clipica train-tiny`` trained into the cache
CACHE_TAG = "cache"

#: the shipped recipe's training budget: optimiser steps of :data:`DEFAULT_BATCH_SIZE` pairs
#: (128,000 faces; data card, "Choosing the recipe")
DEFAULT_STEPS = 1000
#: pairs per training step of the shipped recipe
DEFAULT_BATCH_SIZE = 128
#: CPU seconds per training step of the shipped recipe with one torch thread, rendering
#: included (seed 0: 459 s of CPU for 1000 steps on this project's shared 2-core machine):
#: the announced expected duration of a training
SECONDS_PER_STEP = 0.46
#: test-size training used by the tests that exercise training: well under a minute
TEST_STEPS = 200
TEST_BATCH_SIZE = 32


def config_path() -> Path:
    """The shipped open_clip config (JSON) of ``tiny-faces``."""
    return Path(__file__).parent.parent / "configs" / CONFIG_NAME


def model_config() -> dict:
    """The ``tiny-faces`` architecture as a dict (open_clip's config schema)."""
    return json.loads(config_path().read_text())


def config_hash() -> str:
    """Short hash of the architecture, recorded with the weights to detect stale caches."""
    canon = json.dumps(model_config(), sort_keys=True)
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def register_config() -> None:
    """Make ``"tiny-faces"`` a model name open_clip knows (idempotent)."""
    import open_clip

    if MODEL_NAME not in open_clip.list_models():
        open_clip.add_model_config(config_path())


def default_dir() -> Path:
    """Where ``clipica train-tiny`` trains by default: ``cache_dir() / "tiny-faces"``."""
    from clipica._cache import cache_dir

    return cache_dir() / MODEL_NAME


def shipped_dir(tag: str = DEFAULT_PRETRAINED) -> Path:
    """The package folder of the shipped checkpoint ``tag`` (a key of :data:`SHIPPED`)."""
    from clipica.errors import ModelNotFoundError

    if tag not in SHIPPED:
        raise ModelNotFoundError(
            f"tiny-faces: no shipped checkpoint {tag!r}; shipped: {', '.join(SHIPPED)}"
        )
    return Path(__file__).with_name("weights") / SHIPPED[tag]


def weights_path(directory: str | Path | None = None) -> Path:
    """The safetensors file of a weights folder (default: the cache folder)."""
    return Path(directory or default_dir()) / WEIGHTS_NAME


def is_trained(directory: str | Path | None = None) -> bool:
    """True when ``directory`` (default: the cache folder) holds weights and metadata for
    the shipped architecture."""
    d = Path(directory or default_dir())
    meta_file = d / TRAINING_NAME
    if not (d / WEIGHTS_NAME).is_file() or not meta_file.is_file():
        return False
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError):
        return False
    return meta.get("config_hash") == config_hash()


def ensure_weights(directory: str | Path | None = None) -> Path:
    """Path of the ``tiny-faces`` safetensors in ``directory``; never trains.

    ``directory`` None: the default weights (:func:`weights_dir` of no ``--pretrained``:
    the shipped default checkpoint, or the cache folder when the package ships none).
    Raises :class:`~clipica.errors.ModelNotFoundError` (one line saying how to train it)
    when the folder holds no current weights.
    """
    from clipica.errors import ModelNotFoundError

    d = Path(directory) if directory is not None else weights_dir(None)
    if is_trained(d):
        return d / WEIGHTS_NAME
    minutes = DEFAULT_STEPS * SECONDS_PER_STEP / 60
    where = "" if d == default_dir() else f" --out {d}"
    raise ModelNotFoundError(
        f"tiny-faces: no trained weights in {d}; train them once with `clipica train-tiny{where}` "
        f"(about {minutes:.0f} minutes on a CPU; `clipica demo` and `clipica run` also train the "
        "cached model as an announced first stage), or set CLIPICA_CACHE to a folder that has them"
    )


def weights_dir(pretrained: str | None = None) -> Path | None:
    """The weights folder ``--pretrained`` names, or None when it names a file or
    something else open_clip resolves (``"none"``: random weights).

    None or "": the shipped default (the cache folder when none is shipped); a key of :data:`SHIPPED`: that shipped checkpoint;
    ``"cache"``: :func:`default_dir`; a folder: itself.
    """
    if pretrained in (None, ""):
        return shipped_dir(DEFAULT_PRETRAINED) if DEFAULT_PRETRAINED in SHIPPED else default_dir()
    if pretrained in SHIPPED:
        return shipped_dir(pretrained)
    if pretrained == CACHE_TAG:
        return default_dir()
    path = Path(os.path.expanduser(pretrained))
    return path if path.is_dir() else None


def weights_for(pretrained: str | None = None) -> str:
    """What ``--model tiny-faces --pretrained VALUE`` loads, as open_clip's ``pretrained``.

    A shipped tag, ``"cache"`` or a folder become the path of their safetensors file
    (checked with :func:`ensure_weights`); a file and ``"none"`` (random weights) are
    returned as given; anything else is a :class:`~clipica.errors.ModelNotFoundError`
    listing the choices. Never trains.
    """
    d = weights_dir(pretrained)
    if d is not None:
        return str(ensure_weights(d))
    if str(pretrained).lower() in ("none", "random") or Path(os.path.expanduser(pretrained)).is_file():
        return str(pretrained)
    from clipica.errors import ModelNotFoundError

    raise ModelNotFoundError(
        f"tiny-faces: pretrained={pretrained!r} is none of: a shipped checkpoint "
        f"({', '.join(SHIPPED) or 'none shipped'}), 'cache', a `clipica train-tiny --out` folder, "
        "a safetensors file, or 'none' (random weights)"
    )


def read_eval(pretrained: str | None = None) -> dict | None:
    """The ``eval.json`` next to the weights ``--pretrained`` names (None when absent)."""
    d = weights_dir(pretrained)
    if d is None and pretrained:
        d = Path(os.path.expanduser(pretrained)).parent
    try:
        return json.loads((Path(d) / EVAL_NAME).read_text())
    except (OSError, ValueError, TypeError):
        return None


def load_model(directory: str | Path | None = None, device: str = "cpu"):
    """``(model, preprocess, tokenizer)`` of a ``tiny-faces`` checkpoint via open_clip.

    ``directory``: a weights folder (default: the shipped default checkpoint). Never
    trains (see :func:`ensure_weights`). The model is in eval mode, in fp32 (shipped
    fp16 weights are widened on load). ``preprocess`` maps a PIL image to a
    (3, 64, 64) tensor; ``tokenizer`` maps a list of strings to a (n, context_length)
    int64 tensor.
    """
    import open_clip

    register_config()
    path = ensure_weights(directory)
    model, _, preprocess = open_clip.create_model_and_transforms(
        MODEL_NAME, pretrained=str(path), device=device
    )
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(MODEL_NAME)
