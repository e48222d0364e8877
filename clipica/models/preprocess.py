"""The model's preprocessing: one definition for CLIP models whose original is OpenAI's or open_clip's.

The same CLIP weights must give the same embeddings whichever way they are
loaded (an open_clip name or checkpoint, a transformers hub id or
``save_pretrained`` folder). Both backends therefore apply the pipeline
defined here, which reproduces OpenAI's ``clip.load`` / open_clip's evaluation
transform and tokenizer cleaning:

- **image**: Pillow resize of the shortest side to ``resize`` pixels (bicubic;
  the long side is ``int(resize * long / short)``, as torchvision's ``Resize``
  computes it), then a centre crop whose offset is
  ``round((side - crop) / 2)`` with Python's round-half-to-even (torchvision's
  ``CenterCrop``), then ``uint8 / 255`` and ``(x - mean) / std`` in float32;
- **text**: OpenAI's cleaning before tokenising: ``ftfy.fix_text``, HTML
  unescaped twice, whitespace collapsed and stripped, lower case.

transformers' own ``CLIPImageProcessor`` and ``CLIPTokenizer`` differ from the
original in three places, each measurable on ordinary data (issue 18): its
centre crop floors the offset (a one-pixel shift whenever
``(resized side - crop) % 4 == 3``, e.g. COCO's 640x427), it resizes with its
own kernel (1-4 grey levels off), and it does not clean text (curly quotes,
ligatures, HTML entities and mojibake get other token ids).
``preprocess="native"`` keeps a backend's own processor as-is, for models that
were trained with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clipica.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

#: ``preprocess=`` values (``--preprocess``)
PREPROCESS_MODES = ("original", "native")
#: what the image pipeline of ``preprocess="original"`` is called in manifests
ORIGINAL_IMAGE = "pillow resize of the shortest side + centre crop (offset rounded half to even), as OpenAI/open_clip"
#: what the text cleaning of ``preprocess="original"`` is called in manifests
ORIGINAL_TEXT = "OpenAI cleaning (ftfy.fix_text, html.unescape x2, whitespace, lower case) before tokenising"

_INTERPOLATIONS = ("bicubic", "bilinear")


def check_preprocess(mode) -> str:
    """Validate a ``preprocess=`` value; returns it. Raises InputError naming the allowed values."""
    if mode not in PREPROCESS_MODES:
        raise InputError(f"--preprocess must be one of {', '.join(PREPROCESS_MODES)}; got {mode!r}")
    return mode


def clean_caption(text: str | None) -> str:
    """OpenAI's CLIP text cleaning: what ``clip.tokenize`` and open_clip's tokenizer do before BPE.

    ``ftfy.fix_text`` (mojibake, ligatures, fullwidth letters, curly quotes,
    NFC), HTML unescaped twice (``&amp;quot;`` -> ``"``), runs of whitespace to
    one space, stripped, lower case. ``None`` becomes ``""``.
    """
    import html

    import ftfy

    text = "" if text is None else str(text)
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).lower()


def center_crop_box(width: int, height: int, crop: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of torchvision's ``CenterCrop(crop)`` on a (width, height) image.

    The offset is ``round((side - crop) / 2)`` with round-half-to-even, so a
    255-wide image cropped to 224 starts at 16 (15.5 rounds to 16), where
    ``(255 - 224) // 2`` gives 15.
    """
    left = int(round((width - crop) / 2.0))
    top = int(round((height - crop) / 2.0))
    return left, top, left + crop, top + crop


def shortest_side_size(width: int, height: int, resize: int) -> tuple[int, int]:
    """(width, height) after resizing the shortest side to ``resize`` (torchvision's ``Resize(int)`` rule)."""
    if width <= height:
        return resize, int(resize * height / width)
    return int(resize * width / height), resize


class ClipImageTransform:
    """PIL image -> float32 tensor of shape (3, crop, crop): the original CLIP evaluation transform.

    Parameters
    ----------
    resize : the shortest side is resized to this many pixels.
    crop : side of the square centre crop (``resize >= crop``).
    mean, std : per-channel normalisation of the [0, 1] pixels.
    interpolation : "bicubic" (OpenAI, open_clip) or "bilinear".

    Plain attributes only, so it pickles into DataLoader workers.
    """

    def __init__(self, resize: int, crop: int, mean, std, interpolation: str = "bicubic"):
        if interpolation not in _INTERPOLATIONS:
            raise InputError(f"interpolation must be one of {', '.join(_INTERPOLATIONS)}; got {interpolation!r}")
        if int(resize) < int(crop):
            raise InputError(f"resize ({resize}) must be at least crop ({crop})")
        self.resize = int(resize)
        self.crop = int(crop)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.interpolation = interpolation

    def describe(self) -> dict:
        return {"pipeline": ORIGINAL_IMAGE, "resize_shortest_side": self.resize, "crop": self.crop,
                "interpolation": self.interpolation, "mean": list(self.mean), "std": list(self.std)}

    def __call__(self, image: Image.Image):
        import numpy as np
        import torch
        from PIL import Image

        if image.mode != "RGB":
            image = image.convert("RGB")
        size = shortest_side_size(*image.size, self.resize)
        if size != image.size:
            resample = Image.Resampling.BICUBIC if self.interpolation == "bicubic" else Image.Resampling.BILINEAR
            image = image.resize(size, resample=resample)
        image = image.crop(center_crop_box(*image.size, self.crop))
        # the same float32 operations, in the same order, as ToTensor + Normalize
        pixels = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()
        pixels = pixels.to(torch.float32).div(255)
        mean = torch.as_tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return pixels.sub_(mean).div_(std)


def open_clip_image_transform(preprocess_cfg: dict, mode: str = "original"):
    """The image transform for an open_clip model's ``visual.preprocess_cfg``.

    ``original``: :class:`ClipImageTransform` for the OpenAI-style
    configuration (square size, shortest-side resize, bicubic or bilinear);
    other configurations (``squash``, ``longest``) are open_clip's own
    transform, which is their original. ``native``: open_clip's own transform.
    Returns ``(transform, description dict)``.
    """
    from open_clip.transform import PreprocessCfg, image_transform_v2

    cfg = dict(preprocess_cfg)
    size = cfg.get("size", 224)
    side = size if isinstance(size, int) else (size[0] if size[0] == size[1] else None)
    ours = (mode == "original" and side is not None and cfg.get("resize_mode", "shortest") == "shortest"
            and cfg.get("interpolation", "bicubic") in _INTERPOLATIONS and cfg.get("mode", "RGB") == "RGB")
    if ours:
        tf = ClipImageTransform(side, side, cfg.get("mean"), cfg.get("std"), cfg.get("interpolation", "bicubic"))
        return tf, tf.describe()
    tf = image_transform_v2(PreprocessCfg(**cfg), is_train=False)
    desc = {"pipeline": "open_clip image_transform_v2 (eval)",
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}}
    return tf, desc


def hf_original_image_transform(image_processor) -> ClipImageTransform | None:
    """The original CLIP transform with a transformers CLIP image processor's sizes and statistics.

    Returns None when the processor is not a CLIP one or is configured in a way
    the original pipeline does not cover (no shortest-edge resize, a
    non-square crop, another kernel, no normalisation): such a model keeps its
    own processor.
    """
    if not type(image_processor).__name__.startswith("CLIPImageProcessor"):
        return None
    get = lambda k, d=None: getattr(image_processor, k, d)  # noqa: E731
    size, crop = _as_dict(get("size")), _as_dict(get("crop_size"))
    resample = {2: "bilinear", 3: "bicubic"}.get(_resample_code(get("resample")))
    if not (get("do_resize", True) and get("do_center_crop", True) and get("do_normalize", True)
            and get("do_rescale", True)):
        return None
    if "shortest_edge" not in size or crop.get("height") != crop.get("width") or crop.get("height") is None:
        return None
    if resample is None or abs(float(get("rescale_factor", 1 / 255)) - 1 / 255) > 1e-12:
        return None
    mean, std = get("image_mean"), get("image_std")
    if mean is None or std is None or int(size["shortest_edge"]) < int(crop["height"]):
        return None
    return ClipImageTransform(int(size["shortest_edge"]), int(crop["height"]), mean, std, resample)


def hf_uses_clip_tokenizer(tokenizer) -> bool:
    """Is this transformers tokenizer CLIP's BPE (whose original cleans text the OpenAI way)?"""
    return type(tokenizer).__name__.startswith("CLIPTokenizer")


def _as_dict(v) -> dict:
    """A processor's size (a dict or transformers' SizeDict) -> {key: value} without the unset (None) keys."""
    if v is None:
        return {}
    try:
        d = dict(v)
    except (TypeError, ValueError):
        d = {k: getattr(v, k, None) for k in ("shortest_edge", "height", "width")}
    return {k: x for k, x in d.items() if x is not None}


def _resample_code(v) -> int | None:
    if v is None:
        return 3  # CLIPImageProcessor's default (bicubic)
    try:
        return int(getattr(v, "value", v))
    except (TypeError, ValueError):
        return None
