"""Safe image decoding: any file or byte string -> RGB PIL image, or BadImageError.

One policy for every source. A row whose image cannot be used raises
:class:`clipica.errors.BadImageError` with a message that names the file and
the reason; the extraction loop records it and moves on (``--on-error skip``)
or stops (``--on-error fail``). What counts as unusable:

- a missing file, a zero-byte file, a file that is not an image;
- a truncated file (PIL's ``LOAD_TRUNCATED_IMAGES`` is never switched on: a
  half image would silently embed as a grey one);
- a decompression bomb (more pixels than ``max_pixels``, PIL's
  ``Image.MAX_IMAGE_PIXELS`` by default), refused before the pixels are decoded;
- any other exception a Pillow plugin raises on a hostile file (``struct.error``
  from a GIF while counting frames, ``NotImplementedError`` from a DDS variant,
  ...): the message names the file and the exception type, so one bad file is
  one bad row and never ends a run;
- (checked by the extraction loop with :func:`check_resize_bound`) an extreme
  aspect ratio whose shortest-edge resize would make a huge image, e.g. a
  60000x1 PNG of 256 bytes that becomes 13.4 M x 224 pixels.

The EXIF ``Orientation`` tag is applied (``ImageOps.exif_transpose``), as
Hugging Face ``datasets`` does, so phone photos are embedded upright.

Unusual modes are converted to RGB correctly rather than by PIL's defaults:
transparent images (RGBA, LA, palette with transparency) are composited onto
white, 16-bit and 32-bit integer grey (``I;16``, ``I``) are scaled into 0..255
instead of being clipped, float grey (``F``) is scaled from 0..1 when it looks
normalised, and CMYK goes through PIL's CMYK->RGB conversion.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from clipica.errors import BadImageError, describe_exception

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

#: most pixels an image may have after its shortest edge is resized to the model's input size
#: (4.2 M pixels = 12.6 MB as 8-bit RGB; at 224 px that allows aspect ratios up to 83:1)
MAX_RESIZED_PIXELS = 1 << 22

#: file suffixes treated as images when scanning folders
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")


def decode_image(
    src: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    max_pixels: int | None = None,
) -> Image.Image:
    """Decode ``src`` (a path or the encoded bytes) into an RGB image.

    Parameters
    ----------
    src : path or bytes
    name : how to call the image in error messages (defaults to the path).
    max_pixels : refuse images with more pixels than this (width * height);
        ``None`` uses ``PIL.Image.MAX_IMAGE_PIXELS``.

    Returns
    -------
    PIL.Image.Image in mode ``"RGB"``, fully loaded (the file is closed).

    Raises
    ------
    BadImageError
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(src, (bytes, bytearray, memoryview)):
        label = name or "<bytes>"
        data = bytes(src)
        if not data:
            raise BadImageError(f"{label}: empty image data (0 bytes)")
        fp = io.BytesIO(data)
    else:
        path = Path(src)
        label = name or str(path)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise BadImageError(f"{label}: file not found") from None
        except OSError as exc:
            raise BadImageError(f"{label}: cannot read file ({exc.strerror or exc})") from None
        if path.is_dir():
            raise BadImageError(f"{label}: is a directory, not an image file")
        if size == 0:
            raise BadImageError(f"{label}: empty file (0 bytes)")
        fp = path

    limit = max_pixels if max_pixels is not None else Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # PIL only *warns* between MAX_IMAGE_PIXELS and twice that; a bomb is a bomb.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as img:
                width, height = img.size
                if limit is not None and width * height > limit:
                    raise BadImageError(
                        f"{label}: image too large ({width}x{height} = {width * height} pixels, "
                        f"limit {limit}); refusing a possible decompression bomb"
                    )
                if getattr(img, "n_frames", 1) > 1:
                    img.seek(0)  # animated GIF/TIFF: the first frame stands for the image
                img.load()
                return to_rgb(_upright(img), name=label)
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImageError(f"{label}: refusing a possible decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise BadImageError(f"{label}: not an image file (PIL cannot identify it)") from None
    except Exception as exc:  # noqa: BLE001 - whatever a plugin raises on one file is that row's problem
        # PIL reports truncated/corrupt data with OSError ("image file is truncated"),
        # SyntaxError (bad headers), struct.error (GIF frame counting), NotImplementedError
        # (DDS variants), ValueError, EOFError, IndexError, MemoryError...
        raise BadImageError(f"{label}: corrupt or truncated image ({describe_exception(exc)})") from None


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF Orientation tag (phone photos); an unreadable EXIF block leaves the image as stored."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not cost the image itself
        return img


def check_resize_bound(img: Image.Image, size: int, *, name: str = "image",
                       max_pixels: int = MAX_RESIZED_PIXELS) -> None:
    """Refuse ``img`` when resizing its shortest edge to ``size`` px would exceed ``max_pixels``.

    CLIP preprocessing resizes the shortest edge to the input size before the
    centre crop, so a 60000x1 image becomes 13.4 M x 224 pixels (gigabytes, tens
    of seconds) although it passes the decompression-bomb check. Raises
    BadImageError naming the image and the sizes.
    """
    import math

    width, height = img.size
    if width < 1 or height < 1:
        raise BadImageError(f"{name}: image has no pixels ({width}x{height})")
    scale = size / min(width, height)
    rw, rh = math.ceil(width * scale), math.ceil(height * scale)
    if rw * rh > max_pixels:
        raise BadImageError(
            f"{name}: extreme aspect ratio ({width}x{height}); resizing its shortest edge to {size} px "
            f"would make {rw}x{rh} = {rw * rh} pixels (limit {max_pixels}); refused before preprocessing"
        )


def to_rgb(img: Image.Image, *, name: str = "image") -> Image.Image:
    """Convert a loaded PIL image of any mode to RGB (see the module docstring for the rules)."""
    import numpy as np
    from PIL import Image

    mode = img.mode
    if mode == "RGB":
        return img.copy() if img.readonly else img
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
        if mode == "RGB":
            return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("L", "1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return img.convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img).astype(np.float64)
        if arr.size == 0:
            raise BadImageError(f"{name}: image has no pixels")
        if mode.startswith("I;16"):
            arr = arr / 257.0  # 0..65535 -> 0..255, full scale
        elif mode == "I":
            hi = float(arr.max())
            if arr.min() < 0 or hi > 65535:
                lo = float(arr.min())
                arr = (arr - lo) / max(hi - lo, 1.0) * 255.0
            elif hi > 255:
                arr = arr / 257.0  # 16-bit data stored as 32-bit int (PNG 16-bit grey opens as I)
        else:  # "F"
            finite = arr[np.isfinite(arr)]
            if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
                arr = arr * 255.0
            arr = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
        grey = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise BadImageError(f"{name}: cannot convert image mode {mode!r} to RGB ({exc})") from None


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name has an image suffix (content is checked at decode time)."""
    return str(path).lower().endswith(IMAGE_SUFFIXES)
