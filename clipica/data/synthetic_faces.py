"""``synthetic-faces``: procedurally drawn CelebA-style faces with known ground truth.

Every row is a pure function of ``(seed, index)``: the generator draws from
``numpy.random.default_rng([seed, index])`` in a fixed order (shared factors,
image-only latents, text-only choices), renders with Pillow and writes a
template caption. Nothing is stored, any ``n`` is possible, and any row can be
regenerated on its own (resume, sharding, DataLoader workers).

Three groups of factors (the multimodal identifiability setting of
Daunhawer et al. 2023, Multimodal3DIdent):

* **shared** (drawn in the image *and* stated in the caption), with CelebA's
  column names as 0/1 labels: ``Smiling, Eyeglasses, Wearing_Hat, Bangs,
  Mustache, Male, Pale_Skin`` and the one-hot hair colour ``Black_Hair,
  Blond_Hair, Brown_Hair, Gray_Hair``;
* **image-only** continuous latents (never in the caption), as ``latent_*``
  label columns: background hue (in turns, circular), face x / y offset
  (fraction of the image side), face scale (multiplier), rotation (degrees),
  brightness (multiplier);
* **text-only**: caption template, attribute order, synonyms, and optional
  mentions of absent attributes ("without a hat"). These are recorded in the
  row id-independent ``describe()`` but not as labels.

Two dependency structures: ``"independent"`` (every binary attribute
Bernoulli(0.5), hair uniform over four colours) and ``"correlated"`` (CelebA-
like dependencies with the strengths listed in :data:`CORRELATED_SPEC`).
See ``data_cards/synthetic-faces.md``.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from clipica.data.base import Row, Source
from clipica.errors import InputError

# -- factor names ------------------------------------------------------------

HAIR_COLUMNS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
BINARY_COLUMNS = ("Smiling", "Eyeglasses", "Wearing_Hat", "Bangs", "Mustache", "Male", "Pale_Skin")
#: shared factors: in the image and in the caption (CelebA column names, 0/1)
SHARED_COLUMNS = BINARY_COLUMNS + HAIR_COLUMNS
#: image-only continuous latents (never in the caption)
LATENT_COLUMNS = (
    "latent_bg_hue",
    "latent_face_x",
    "latent_face_y",
    "latent_face_scale",
    "latent_rotation",
    "latent_brightness",
)
LABEL_COLUMNS = SHARED_COLUMNS + LATENT_COLUMNS

#: ranges of the image-only latents (uniform); units in the module docstring
LATENT_RANGES = {
    "latent_bg_hue": (0.0, 1.0),  # turns; circular (0 == 1)
    "latent_face_x": (-0.12, 0.12),  # fraction of the image side, + is right
    "latent_face_y": (-0.08, 0.08),  # fraction of the image side, + is down
    "latent_face_scale": (0.8, 1.15),  # multiplier of the base face size
    "latent_rotation": (-25.0, 25.0),  # degrees, + is counter-clockwise
    "latent_brightness": (0.8, 1.2),  # multiplier of every pixel value
}

VARIANTS = ("independent", "correlated")

#: domain shifts of the image-only latents (the ``shift`` option): latent -> (low, high, mirrored).
#: ``mirrored``: the value is drawn in [low, high] and its sign flipped with probability 1/2
#: (both sides of the training range). Every shift uses the same uniform draw ``u`` as the
#: training distribution, so a shifted row keeps its shared factors and caption.
SHIFTS = {
    "bg-hue": {"latent_bg_hue": (0.55, 0.70, False)},  # blues only: 15 % of the hue circle
    "brightness": {"latent_brightness": (0.50, 0.70, False)},  # darker than any training face
    "rotation": {"latent_rotation": (30.0, 50.0, True)},  # beyond +-25 degrees
    "position": {"latent_face_x": (0.13, 0.20, True), "latent_face_y": (0.09, 0.13, True)},
    "scale": {"latent_face_scale": (0.60, 0.76, False)},  # smaller than any training face
}

#: the correlated variant's generative process, in words and numbers (also in describe())
CORRELATED_SPEC = {
    "Male": "Bernoulli(0.45)",
    "Pale_Skin": "Bernoulli(0.30)",
    "Mustache": "Bernoulli(0.45) if Male else 0 (only on male faces)",
    "Bangs": "Bernoulli(0.15) if Male else Bernoulli(0.50)",
    "Smiling": "Bernoulli(0.40) if Male else Bernoulli(0.65)",
    "hair": (
        "Gray_Hair with probability 0.35 if Pale_Skin else 0.06; otherwise "
        "(Black, Blond, Brown) with probabilities (0.40, 0.15, 0.45) if Male else (0.30, 0.40, 0.30)"
    ),
    "Eyeglasses": "Bernoulli(0.45) if Gray_Hair else Bernoulli(0.15)",
    "Wearing_Hat": "Bernoulli(0.20), independent of the rest",
}

# -- caption vocabulary (text-only factors) ------------------------------------

_NOUNS = {1: ("man", "guy", "male"), 0: ("woman", "lady", "female")}
_HAIR_WORDS = {
    "Black_Hair": ("black",),
    "Blond_Hair": ("blond", "blonde"),
    "Brown_Hair": ("brown",),
    "Gray_Hair": ("gray", "grey"),
}
#: attribute -> (phrases when present, phrases when absent)
PHRASES = {
    "Smiling": (
        ("smiling", "with a smile", "with a big smile"),
        ("not smiling", "with a neutral expression"),
    ),
    "Eyeglasses": (
        ("wearing glasses", "wearing eyeglasses", "wearing spectacles", "with glasses"),
        ("without glasses", "without eyeglasses", "without spectacles"),
    ),
    "Wearing_Hat": (("wearing a hat", "with a hat"), ("without a hat", "with no hat")),
    "Bangs": (("with bangs", "with a fringe"), ("without bangs", "with no fringe")),
    "Mustache": (
        ("with a mustache", "with a moustache"),
        ("without a mustache", "with no mustache"),
    ),
    "Pale_Skin": (("with pale skin", "with fair skin"), ("with tan skin", "with darker skin")),
}
_TEMPLATES = (
    "a photo of a {noun} {rest}.",
    "a picture of a {noun} {rest}",
    "portrait of a {noun} {rest}.",
    "a {noun} {rest}",
    "close-up of a {noun} {rest}.",
    "a drawing of a {noun} {rest}.",
)
#: probability that each absent binary attribute is mentioned ("without a hat"), at most 2 per caption
P_MENTION_ABSENT = 0.2
MAX_ABSENT_MENTIONS = 2

# -- colours ---------------------------------------------------------------------

_HAIR_RGB = {
    "Black_Hair": (28, 24, 24),
    "Blond_Hair": (238, 206, 96),
    "Brown_Hair": (122, 70, 30),
    "Gray_Hair": (168, 168, 174),
}
_SKIN_RGB = {1: (253, 230, 218), 0: (188, 128, 86)}  # Pale_Skin = 1 / 0
_HAT_RGB = (52, 40, 150)
_HAT_BAND_RGB = (235, 235, 240)
_MUSTACHE_RGB = (58, 34, 20)


@dataclass(frozen=True)
class FaceFactors:
    """Everything that defines one row. ``shared`` and ``latents`` are the labels."""

    shared: dict[str, int]
    latents: dict[str, float]
    caption: str


# -- sampling ----------------------------------------------------------------------


def _sample_shared(rng: np.random.Generator, variant: str) -> dict[str, int]:
    u = rng.random(9)  # a fixed number of draws keeps the stream aligned across variants
    if variant == "independent":
        out = {name: int(u[k] < 0.5) for k, name in enumerate(BINARY_COLUMNS)}
        hair = HAIR_COLUMNS[min(int(u[7] * 4), 3)]
    else:
        male = int(u[0] < 0.45)
        pale = int(u[1] < 0.30)
        mustache = int(male and u[2] < 0.45)
        bangs = int(u[3] < (0.15 if male else 0.50))
        smiling = int(u[4] < (0.40 if male else 0.65))
        if u[5] < (0.35 if pale else 0.06):
            hair = "Gray_Hair"
        else:
            probs = (0.40, 0.15, 0.45) if male else (0.30, 0.40, 0.30)
            cum = np.cumsum(probs)
            hair = HAIR_COLUMNS[min(int(np.searchsorted(cum, u[7] * cum[-1], side="right")), 2)]
        glasses = int(u[6] < (0.45 if hair == "Gray_Hair" else 0.15))
        hat = int(u[8] < 0.20)
        out = {
            "Smiling": smiling,
            "Eyeglasses": glasses,
            "Wearing_Hat": hat,
            "Bangs": bangs,
            "Mustache": mustache,
            "Male": male,
            "Pale_Skin": pale,
        }
    for name in HAIR_COLUMNS:
        out[name] = int(name == hair)
    return out


def _sample_latents(rng: np.random.Generator, shift: tuple[str, ...] = ()) -> dict[str, float]:
    u = rng.random(len(LATENT_COLUMNS))
    ranges = {name: (lo, hi, False) for name, (lo, hi) in LATENT_RANGES.items()}
    for name in shift:
        ranges.update(SHIFTS[name])
    out = {}
    for k, (name, (lo, hi, mirrored)) in enumerate(ranges.items()):
        if mirrored:  # one uniform draw: its half picks the side, its position within the half the value
            side, v = (-1.0, 1.0 - 2.0 * u[k]) if u[k] < 0.5 else (1.0, 2.0 * u[k] - 1.0)
            out[name] = float(side * (lo + (hi - lo) * v))
        else:
            out[name] = float(lo + (hi - lo) * u[k])
    return out


def parse_shift(shift) -> tuple[str, ...]:
    """``"brightness,rotation"`` (or a sequence) -> ``("brightness", "rotation")``, sorted, checked."""
    if shift is None or shift == "" or shift == "none":
        return ()
    names = shift.split(",") if isinstance(shift, str) else list(shift)
    names = sorted({str(n).strip() for n in names if str(n).strip()})
    bad = [n for n in names if n not in SHIFTS]
    if bad:
        raise InputError(
            f"synthetic-faces: unknown shift {', '.join(bad)}; expected some of {', '.join(SHIFTS)} "
            "(comma-separated), e.g. shift=brightness,rotation"
        )
    touched = [c for n in names for c in SHIFTS[n]]
    if len(touched) != len(set(touched)):
        raise InputError(f"synthetic-faces: shifts {', '.join(names)} change the same latent")
    return tuple(names)


def _caption(rng: np.random.Generator, shared: dict[str, int]) -> str:
    """Template caption stating every shared factor; text-only choices drawn from ``rng``."""
    hair = next(h for h in HAIR_COLUMNS if shared[h])
    words = _HAIR_WORDS[hair]
    phrases = [f"with {words[rng.integers(len(words))]} hair"]
    absent = []
    for name, (present, missing) in PHRASES.items():
        mention = rng.random()  # always drawn, so the stream does not depend on the labels' order
        pick = rng.integers(1 << 30)
        if shared[name]:
            phrases.append(present[pick % len(present)])
        elif mention < P_MENTION_ABSENT:
            absent.append(missing[pick % len(missing)])
    phrases += absent[:MAX_ABSENT_MENTIONS]
    order = rng.permutation(len(phrases))
    phrases = [phrases[k] for k in order]
    if len(phrases) > 1 and rng.random() < 0.5:
        rest = ", ".join(phrases[:-1]) + " and " + phrases[-1]
    else:
        rest = ", ".join(phrases)
    nouns = _NOUNS[shared["Male"]]
    noun = nouns[rng.integers(len(nouns))]
    template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
    return template.format(noun=noun, rest=rest)


def sample_factors(seed: int, index: int, variant: str = "independent", shift: tuple[str, ...] = ()) -> FaceFactors:
    """Labels and caption of row ``index`` (no rendering). Pure function of its arguments."""
    rng = np.random.default_rng([int(seed), int(index)])
    shared = _sample_shared(rng, variant)
    latents = _sample_latents(rng, shift)
    caption = _caption(rng, shared)
    return FaceFactors(shared=shared, latents=latents, caption=caption)


# -- rendering -----------------------------------------------------------------------

# The face is drawn in "face units" (face half-width = 1, y down) on a canvas
# spanning [-_L, _L]^2, then one affine map places, scales and rotates it.
_L = 2.6


def render_face(factors: FaceFactors, image_size: int = 64):
    """Draw one face as an RGB ``PIL.Image`` of side ``image_size`` pixels.

    Attributes are drawn boldly (several pixels wide at 64 px): a 1-pixel smile
    or a 2-pixel mustache is not learned by a small CLIP at this size.
    """
    from PIL import Image, ImageDraw

    s, lat = factors.shared, factors.latents
    size = int(image_size)
    # The canvas holds the face at about twice the output resolution; one bilinear
    # affine map then places, scales and rotates it straight into the output
    # (0.3 ms per 64 px face; supersampled compositing was 4x slower).
    canvas = int(round(3 * size))
    unit = canvas / (2 * _L)  # canvas pixels per face unit

    def box(x0, y0, x1, y1):
        return [(x0 + _L) * unit, (y0 + _L) * unit, (x1 + _L) * unit, (y1 + _L) * unit]

    def pt(x, y):
        return ((x + _L) * unit, (y + _L) * unit)

    def w(units):
        return max(1, int(round(units * unit)))

    # the background is uniform, so it can be the canvas itself (rotation cannot show)
    r, g, bl = colorsys.hsv_to_rgb(lat["latent_bg_hue"], 0.45, 0.82)
    bg = (int(r * 255), int(g * 255), int(bl * 255))
    layer = Image.new("RGB", (canvas, canvas), bg)
    d = ImageDraw.Draw(layer)
    hair = next(h for h in HAIR_COLUMNS if s[h])
    hair_rgb = _HAIR_RGB[hair]
    skin = _SKIN_RGB[s["Pale_Skin"]]
    shade = tuple(int(c * 0.78) for c in skin)

    # hair behind the head: long for women (a big mass down to the shoulders), a short cap for men
    # with a dark outline, so the silhouette shows even on a background of the hair's colour
    hair_edge = tuple(int(c * 0.45) for c in hair_rgb)
    for m, colour in ((0.09, hair_edge), (0.0, hair_rgb)):
        if s["Male"]:
            d.ellipse(box(-1.12 - m, -1.55 - m, 1.12 + m, 0.3 + m), fill=colour)
        else:
            d.ellipse(box(-1.45 - m, -1.6 - m, 1.45 + m, 0.6), fill=colour)
            d.rectangle(box(-1.45 - m, -0.5, 1.45 + m, 1.9 + m), fill=colour)
    # ears, face
    d.ellipse(box(-1.18, -0.35, -0.82, 0.3), fill=shade)
    d.ellipse(box(0.82, -0.35, 1.18, 0.3), fill=shade)
    d.ellipse(box(-1.0, -1.3, 1.0, 1.3), fill=skin)
    # hair covers the top of the head down to the hairline; bangs bring a straight
    # fringe down over the forehead (the part of the face ellipse above y = fringe)
    fringe = -0.42 if s["Bangs"] else -0.92
    t0 = math.asin(max(-1.0, fringe / 1.32))
    ts = np.linspace(math.pi + abs(t0) if t0 < 0 else math.pi, 2 * math.pi - abs(t0), 24)
    cap = [pt(1.02 * math.cos(t), 1.32 * math.sin(t)) for t in ts]
    d.polygon(cap, fill=hair_rgb)
    # eyes
    for ex in (-0.4, 0.4):
        d.ellipse(box(ex - 0.22, -0.27, ex + 0.22, -0.01), fill=(250, 250, 250))
        d.ellipse(box(ex - 0.11, -0.25, ex + 0.11, -0.03), fill=(30, 30, 40))
    # eyebrows (short, dark), above the eyes, hidden by a fringe
    if not s["Bangs"]:
        for ex in (-0.4, 0.4):
            d.line([pt(ex - 0.2, -0.42), pt(ex + 0.2, -0.42)], fill=(70, 50, 40), width=w(0.07))
    # nose
    d.polygon([pt(0, -0.02), pt(-0.13, 0.3), pt(0.13, 0.3)], fill=shade)
    # mouth: a big open smile with teeth, or a straight closed mouth
    if s["Smiling"]:
        d.pieslice(box(-0.6, 0.28, 0.6, 1.08), 0, 180, fill=(120, 18, 32))
        d.chord(box(-0.5, 0.55, 0.5, 0.82), 0, 180, fill=(250, 250, 250))
    else:
        d.line([pt(-0.32, 0.78), pt(0.32, 0.78)], fill=(140, 50, 55), width=w(0.1))
    # mustache: a thick dark bar under the nose
    if s["Mustache"]:
        d.polygon(
            [pt(-0.66, 0.6), pt(-0.5, 0.34), pt(0, 0.3), pt(0.5, 0.34), pt(0.66, 0.6), pt(0, 0.52)],
            fill=_MUSTACHE_RGB,
        )
    # eyeglasses: thick dark frames, bridge and temples
    if s["Eyeglasses"]:
        fw = w(0.14)
        for ex in (-0.42, 0.42):
            d.ellipse(box(ex - 0.33, -0.4, ex + 0.33, 0.14), outline=(10, 10, 10), width=fw)
        d.line([pt(-0.1, -0.16), pt(0.1, -0.16)], fill=(10, 10, 10), width=fw)
        d.line([pt(-0.75, -0.2), pt(-1.02, -0.25)], fill=(10, 10, 10), width=fw)
        d.line([pt(0.75, -0.2), pt(1.02, -0.25)], fill=(10, 10, 10), width=fw)
    # hat: a tall crown with a white band and a wide brim, sitting above the hairline
    if s["Wearing_Hat"]:
        d.rectangle(box(-0.95, -2.35, 0.95, -1.05), fill=_HAT_RGB)
        d.rectangle(box(-0.95, -1.42, 0.95, -1.2), fill=_HAT_BAND_RGB)
        d.ellipse(box(-1.55, -1.22, 1.55, -0.88), fill=_HAT_RGB)

    # place: canvas pixel = A @ output pixel + c (Pillow wants the output -> input map)
    r_out = 0.28 * size * lat["latent_face_scale"]  # face half-width in output pixels
    k = unit / r_out  # canvas pixels per output pixel
    theta = math.radians(lat["latent_rotation"])
    cos, sin = math.cos(theta), math.sin(theta)
    cx = size * (0.5 + lat["latent_face_x"])
    cy = size * (0.5 + lat["latent_face_y"])
    # inverse of a counter-clockwise (on screen, y down) rotation and a scale about the face centre
    a, b = k * cos, -k * sin
    dd, e = k * sin, k * cos
    c0 = canvas / 2 - a * cx - b * cy
    f0 = canvas / 2 - dd * cx - e * cy
    placed = layer.transform(
        (size, size), Image.AFFINE, (a, b, c0, dd, e, f0), resample=Image.BILINEAR, fillcolor=bg
    )
    arr = np.asarray(placed, dtype=np.float32) * lat["latent_brightness"]
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")


# -- the Source ---------------------------------------------------------------------------


class SyntheticFaces(Source):
    """``synthetic-faces[:N]``: N procedurally drawn faces with captions and ground truth.

    Parameters
    ----------
    n : int
        Number of rows.
    seed : int
        Row ``i`` is a pure function of ``(seed, i, variant)`` (image size only resamples).
    image_size : int
        Side of the square RGB image in pixels (64 by default; 224 for full-size CLIPs).
    variant : {"independent", "correlated"}
        Dependency structure of the shared factors (see :data:`CORRELATED_SPEC`).
    shift : str or sequence of str, optional
        Domain shift of the image-only latents, comma-separated names of :data:`SHIFTS`
        (``"brightness"``, ``"rotation,scale"``...). Row ``i`` keeps its shared factors and
        caption; only the shifted latents move out of (or within) their training range.

    Labels: the shared CelebA columns as 0/1 ints and the image-only latents as
    floats in the units of :data:`LATENT_RANGES`.
    """

    has_images = True
    has_captions = True

    def __init__(
        self, n: int = 2000, seed: int = 0, image_size: int = 64, variant: str = "independent",
        shift=None,
    ):
        if int(n) != n or n < 0:
            raise InputError(f"synthetic-faces: n must be a non-negative integer, got {n!r}.")
        if variant not in VARIANTS:
            raise InputError(
                f"synthetic-faces: unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}."
            )
        if int(image_size) != image_size or not 16 <= image_size <= 1024:
            raise InputError(
                f"synthetic-faces: image_size must be an integer between 16 and 1024 pixels, got {image_size!r}."
            )
        self.n = int(n)
        self.seed = int(seed)
        self.image_size = int(image_size)
        self.variant = variant
        self.shift = parse_shift(shift)
        self.label_columns = list(LABEL_COLUMNS)
        opts = []
        if self.seed != 0:
            opts.append(f"seed={self.seed}")
        if self.image_size != 64:
            opts.append(f"image_size={self.image_size}")
        if self.variant != "independent":
            opts.append(f"variant={self.variant}")
        if self.shift:
            opts.append(f"shift={','.join(self.shift)}")
        self.spec = f"synthetic-faces:{self.n}" + (f"?{'&'.join(opts)}" if opts else "")

    def __len__(self) -> int:
        return self.n

    def _check(self, index: int) -> int:
        i = int(index)
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"synthetic-faces: row {index} out of range for {self.n} rows")
        return i

    def row_id(self, index: int) -> str:
        i = self._check(index)
        tag = "".join(f"-{n}" for n in self.shift)
        return f"sf-{self.variant[0]}{self.seed}{tag}-{i:08d}"

    def factors(self, index: int) -> FaceFactors:
        """Labels and caption of row ``index`` without rendering (cheap)."""
        return sample_factors(self.seed, self._check(index), self.variant, self.shift)

    def labels(self, index: int) -> dict[str, float]:
        f = self.factors(index)
        return {**f.shared, **f.latents}

    def __getitem__(self, index: int) -> Row:
        i = self._check(index)
        f = sample_factors(self.seed, i, self.variant, self.shift)
        return Row(
            id=self.row_id(i),
            image=render_face(f, self.image_size),
            caption=f.caption,
            labels={**f.shared, **f.latents},
            split=None,
        )

    def batch(self, start: int, count: int):
        """Rows ``start .. start+count-1`` rendered fast, for training.

        Returns ``(images, captions, labels)``: uint8 array of shape
        (count, image_size, image_size, 3), list of ``count`` strings, and a dict
        column -> ndarray of shape (count,) (int8 for shared factors, float32 for latents).
        """
        idx = range(int(start), int(start) + int(count))
        images = np.empty((len(idx), self.image_size, self.image_size, 3), dtype=np.uint8)
        captions = []
        rows = []
        for k, i in enumerate(idx):
            f = sample_factors(self.seed, i, self.variant, self.shift)
            images[k] = np.asarray(render_face(f, self.image_size))
            captions.append(f.caption)
            rows.append(f)
        labels = {c: np.array([f.shared[c] for f in rows], dtype=np.int8) for c in SHARED_COLUMNS}
        labels.update(
            {c: np.array([f.latents[c] for f in rows], dtype=np.float32) for c in LATENT_COLUMNS}
        )
        return images, captions, labels

    def fingerprint(self) -> str:
        key = f"synthetic-faces|v1|{self.n}|{self.seed}|{self.image_size}|{self.variant}"
        if self.shift:  # unshifted data keeps the fingerprint it always had
            key += "|shift=" + ",".join(self.shift)
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def describe(self) -> dict:
        return {
            "spec": self.spec,
            "n_rows": self.n,
            "label_columns": list(self.label_columns),
            "generator": "clipica.data.synthetic_faces v1 (Pillow)",
            "seed": self.seed,
            "image_size": self.image_size,
            "variant": self.variant,
            "shift": {n: {c: list(r) for c, r in SHIFTS[n].items()} for n in self.shift},
            "row_rng": "numpy.random.default_rng([seed, index])",
            "shared_factors": list(SHARED_COLUMNS),
            "image_only_latents": {k: list(v) for k, v in LATENT_RANGES.items()},
            "text_only_factors": {
                "templates": list(_TEMPLATES),
                "attribute_order": "uniform random permutation",
                "synonyms": {k: list(v[0]) for k, v in PHRASES.items()},
                "absent_mentions": {
                    "probability_each": P_MENTION_ABSENT,
                    "max_per_caption": MAX_ABSENT_MENTIONS,
                    "phrases": {k: list(v[1]) for k, v in PHRASES.items()},
                },
            },
            "dependencies": (
                {"all binary": "Bernoulli(0.5), independent", "hair": "uniform over 4 colours"}
                if self.variant == "independent"
                else dict(CORRELATED_SPEC)
            ),
        }
