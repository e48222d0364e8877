"""synthetic-faces: determinism, caption/label agreement, dependency strengths, visibility."""

import json
import re

import numpy as np
import pytest

from clipica.data.base import Source
from clipica.data.synthetic_faces import (
    _HAIR_WORDS,
    _NOUNS,
    _TEMPLATES,
    BINARY_COLUMNS,
    HAIR_COLUMNS,
    LABEL_COLUMNS,
    LATENT_COLUMNS,
    LATENT_RANGES,
    PHRASES,
    SHARED_COLUMNS,
    FaceFactors,
    SyntheticFaces,
    render_face,
    sample_factors,
)
from clipica.errors import InputError

# -- contract and determinism ---------------------------------------------------------


def test_is_a_source_with_the_contract_columns():
    src = SyntheticFaces(5)
    assert isinstance(src, Source)
    assert len(src) == 5
    assert src.label_columns == list(LABEL_COLUMNS)
    assert src.spec == "synthetic-faces:5"
    row = src[3]
    assert set(row.labels) == set(src.label_columns)
    assert row.image.mode == "RGB" and row.image.size == (64, 64)
    assert all(row.labels[c] in (0, 1) for c in SHARED_COLUMNS)
    assert sum(row.labels[c] for c in HAIR_COLUMNS) == 1
    for name, (lo, hi) in LATENT_RANGES.items():
        assert lo <= row.labels[name] <= hi
    json.dumps(src.describe())  # JSON-able provenance


@pytest.mark.parametrize("seed", [0, 1, 17])
def test_row_is_a_pure_function_of_seed_and_index(seed):
    a = SyntheticFaces(40, seed=seed)
    b = SyntheticFaces(3000, seed=seed)  # n does not matter
    for i in (0, 7, 39):
        ra, rb = a[i], b[i]
        assert ra.id == rb.id == a.row_id(i)
        assert ra.caption == rb.caption
        assert ra.labels == rb.labels
        assert np.array_equal(np.asarray(ra.image), np.asarray(rb.image))
    # reversed access order gives the same rows (no hidden state)
    fwd = [a[i].caption for i in range(10)]
    bwd = [a[i].caption for i in reversed(range(10))][::-1]
    assert fwd == bwd
    other = SyntheticFaces(40, seed=seed + 1)
    assert sum(a[i].caption != other[i].caption for i in range(10)) >= 8
    assert not np.array_equal(np.asarray(a[0].image), np.asarray(other[0].image))


def test_batch_matches_getitem_and_ids_are_unique():
    src = SyntheticFaces(50, seed=3, variant="correlated")
    images, captions, labels = src.batch(10, 6)
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.uint8
    for k in range(6):
        row = src[10 + k]
        assert np.array_equal(images[k], np.asarray(row.image))
        assert captions[k] == row.caption
        for c in LABEL_COLUMNS:
            assert labels[c][k] == pytest.approx(row.labels[c], abs=1e-6)
    ids = [src.row_id(i) for i in range(50)]
    assert len(set(ids)) == 50
    assert src.row_id(-1) == src.row_id(49)


def test_fingerprint_and_describe_depend_on_what_defines_the_rows():
    fps = {
        SyntheticFaces(10).fingerprint(),
        SyntheticFaces(11).fingerprint(),
        SyntheticFaces(10, seed=1).fingerprint(),
        SyntheticFaces(10, variant="correlated").fingerprint(),
        SyntheticFaces(10, image_size=32).fingerprint(),
    }
    assert len(fps) == 5
    assert SyntheticFaces(10).fingerprint() == SyntheticFaces(10).fingerprint()
    d = SyntheticFaces(10, variant="correlated").describe()
    assert d["variant"] == "correlated" and "Mustache" in d["dependencies"]
    assert (
        SyntheticFaces(10, seed=2, variant="correlated").spec
        == "synthetic-faces:10?seed=2&variant=correlated"
    )


def test_other_image_sizes():
    row = SyntheticFaces(2, image_size=224)[1]
    assert row.image.size == (224, 224)
    # same factors at any size
    assert row.labels == SyntheticFaces(2)[1].labels


def test_bad_arguments_raise_typed_errors():
    with pytest.raises(InputError, match="variant"):
        SyntheticFaces(10, variant="celeba")
    with pytest.raises(InputError, match="image_size"):
        SyntheticFaces(10, image_size=4)
    with pytest.raises(InputError, match="non-negative"):
        SyntheticFaces(-1)
    with pytest.raises(IndexError):
        SyntheticFaces(3)[3]


# -- captions -----------------------------------------------------------------------------

_PHRASE_TO_FACTOR = {}
for _name, (_present, _absent) in PHRASES.items():
    for _p in _present:
        _PHRASE_TO_FACTOR[_p] = (_name, 1)
    for _p in _absent:
        _PHRASE_TO_FACTOR[_p] = (_name, 0)
for _hair, _words in _HAIR_WORDS.items():
    for _w in _words:
        _PHRASE_TO_FACTOR[f"with {_w} hair"] = (_hair, 1)
_NOUN_TO_MALE = {n: m for m, nouns in _NOUNS.items() for n in nouns}
_PREFIXES = sorted({t.split("{noun}")[0] for t in _TEMPLATES}, key=len, reverse=True)


def _parse(caption: str) -> tuple[int, list[tuple[str, int]]]:
    """Caption -> (Male, [(factor, value) for each phrase]); fails on anything unknown."""
    text = caption.rstrip(".")
    prefix = next(p for p in _PREFIXES if text.startswith(p))
    noun, rest = text[len(prefix) :].split(" ", 1)
    phrases = re.split(r", | and ", rest)
    return _NOUN_TO_MALE[noun], [_PHRASE_TO_FACTOR[p] for p in phrases]


@pytest.mark.parametrize("variant", ["independent", "correlated"])
@pytest.mark.parametrize("seed", [0, 5])
def test_every_attribute_in_the_caption_matches_the_label(variant, seed):
    n_absent_mentions = 0
    for i in range(400):
        f = sample_factors(seed, i, variant)
        male, stated = _parse(f.caption)
        assert male == f.shared["Male"], f.caption
        names = [name for name, _ in stated]
        assert len(names) == len(set(names)), f"an attribute is stated twice: {f.caption}"
        for name, value in stated:
            assert f.shared[name] == value, (
                f"{name}={f.shared[name]} but caption says {value}: {f.caption}"
            )
        # every present shared attribute is stated (hair always, sex via the noun)
        for name in BINARY_COLUMNS:
            if name != "Male" and f.shared[name]:
                assert (name, 1) in stated, f"{name} present but not in caption: {f.caption}"
        assert sum(1 for name, _ in stated if name in HAIR_COLUMNS) == 1
        n_absent_mentions += sum(1 for _, v in stated if v == 0)
        assert sum(1 for _, v in stated if v == 0) <= 2
    assert n_absent_mentions > 50  # the "without a hat" text-only factor is exercised


def test_text_only_factors_vary():
    caps = [sample_factors(0, i).caption for i in range(300)]
    assert len({next(p for p in _PREFIXES if c.startswith(p)) for c in caps}) == len(_PREFIXES)
    assert any("spectacles" in c for c in caps) and any("eyeglasses" in c for c in caps)
    # attribute order varies: hair is not always the first phrase
    positions = {
        [n for n, _ in _parse(c)[1]].index(next(h for h in HAIR_COLUMNS if h in dict(_parse(c)[1])))
        for c in caps
    }
    assert len(positions) >= 4


# -- dependency structure -------------------------------------------------------------------


def _table(variant: str, n: int, seed: int = 11) -> dict[str, np.ndarray]:
    rows = [sample_factors(seed, i, variant) for i in range(n)]
    return {c: np.array([r.shared[c] for r in rows]) for c in SHARED_COLUMNS}


def _close(p_hat: float, p: float, n: int) -> bool:
    return abs(p_hat - p) <= 4.5 * np.sqrt(p * (1 - p) / n) + 1e-9


def test_independent_variant_is_balanced_and_independent():
    n = 6000
    t = _table("independent", n)
    for c in BINARY_COLUMNS:
        assert _close(t[c].mean(), 0.5, n), c
    for c in HAIR_COLUMNS:
        assert _close(t[c].mean(), 0.25, n), c
    x = np.stack([t[c] for c in BINARY_COLUMNS], axis=1).astype(float)
    corr = np.corrcoef(x.T)
    assert np.abs(corr[np.triu_indices(len(BINARY_COLUMNS), 1)]).max() < 0.06


def test_correlated_variant_frequencies_match_the_spec():
    n = 12000
    t = _table("correlated", n)
    male, pale, gray = t["Male"] == 1, t["Pale_Skin"] == 1, t["Gray_Hair"] == 1
    assert _close(male.mean(), 0.45, n)
    assert _close(pale.mean(), 0.30, n)
    assert t["Mustache"][~male].sum() == 0  # only on male faces
    assert _close(t["Mustache"][male].mean(), 0.45, male.sum())
    assert _close(t["Bangs"][male].mean(), 0.15, male.sum())
    assert _close(t["Bangs"][~male].mean(), 0.50, (~male).sum())
    assert _close(t["Smiling"][male].mean(), 0.40, male.sum())
    assert _close(t["Smiling"][~male].mean(), 0.65, (~male).sum())
    assert _close(gray[pale].mean(), 0.35, pale.sum())
    assert _close(gray[~pale].mean(), 0.06, (~pale).sum())
    assert _close(t["Eyeglasses"][gray].mean(), 0.45, gray.sum())
    assert _close(t["Eyeglasses"][~gray].mean(), 0.15, (~gray).sum())
    assert _close(t["Wearing_Hat"].mean(), 0.20, n)
    # non-gray hair among men: (black, blond, brown) = (0.40, 0.15, 0.45)
    m_ng = male & ~gray
    for c, p in zip(("Black_Hair", "Blond_Hair", "Brown_Hair"), (0.40, 0.15, 0.45), strict=True):
        assert _close(t[c][m_ng].mean(), p, m_ng.sum()), c
    f_ng = ~male & ~gray
    for c, p in zip(("Black_Hair", "Blond_Hair", "Brown_Hair"), (0.30, 0.40, 0.30), strict=True):
        assert _close(t[c][f_ng].mean(), p, f_ng.sum()), c


# -- visibility -------------------------------------------------------------------------------


def _pixels(shared: dict, latents: dict) -> np.ndarray:
    return np.asarray(render_face(FaceFactors(shared, latents, ""), 64), dtype=np.int16)


@pytest.mark.parametrize("seed", [2, 9])
def test_every_shared_attribute_is_boldly_visible(seed):
    """Flip one attribute, keep everything else: many pixels must change a lot.

    At 64 px a small CLIP did not learn a 1-pixel smile or a 2-pixel mustache, so
    each attribute must move at least ~30 pixels by more than 40 levels, whatever
    the pose, colours and other attributes.
    """
    min_changed = {}
    for i in range(25):
        f = sample_factors(seed, i)
        for name in BINARY_COLUMNS:
            off, on = dict(f.shared), dict(f.shared)
            off[name], on[name] = 0, 1
            changed = (np.abs(_pixels(off, f.latents) - _pixels(on, f.latents)).max(-1) > 40).sum()
            min_changed[name] = min(min_changed.get(name, 10**9), int(changed))
        for a in HAIR_COLUMNS:
            for b in HAIR_COLUMNS:
                if a < b:
                    sa = {**f.shared, **{h: int(h == a) for h in HAIR_COLUMNS}}
                    sb = {**f.shared, **{h: int(h == b) for h in HAIR_COLUMNS}}
                    changed = (
                        np.abs(_pixels(sa, f.latents) - _pixels(sb, f.latents)).max(-1) > 40
                    ).sum()
                    min_changed["hair"] = min(min_changed.get("hair", 10**9), int(changed))
    assert all(v >= 30 for v in min_changed.values()), min_changed


def test_image_only_latents_move_the_picture_but_not_the_caption():
    f = sample_factors(4, 0)
    base = _pixels(f.shared, f.latents)
    for name, (lo, hi) in LATENT_RANGES.items():
        lat = dict(f.latents)
        lat[name] = (
            lo + 0.8 * (hi - lo) if f.latents[name] < (lo + hi) / 2 else lo + 0.2 * (hi - lo)
        )
        assert (np.abs(_pixels(f.shared, lat) - base).max(-1) > 20).sum() > 50, name
    # the caption is drawn from the same stream but never mentions the latents
    words = " ".join(sample_factors(4, i).caption for i in range(200))
    for w in ("background", "left", "right", "rotat", "bright", "large", "small"):
        assert w not in words
    assert set(LATENT_COLUMNS) == set(LATENT_RANGES)


# ---------------------------------------------------------------------------- domain shifts
def test_shifts_move_only_their_latents_into_the_stated_ranges():
    from clipica.data.synthetic_faces import LATENT_RANGES, SHIFTS, SyntheticFaces

    base = SyntheticFaces(200, seed=1)
    for name, spec in SHIFTS.items():
        src = SyntheticFaces(200, seed=1, shift=name)
        for i in range(200):
            a, b = base.factors(i), src.factors(i)
            assert a.shared == b.shared and a.caption == b.caption
            for col, value in b.latents.items():
                if col in spec:
                    lo, hi, mirrored = spec[col]
                    assert lo <= (abs(value) if mirrored else value) <= hi
                else:
                    assert value == a.latents[col]
        # the out-of-range shifts leave the training range entirely
        for col in spec:
            lo, hi = LATENT_RANGES[col]
            vals = [src.factors(i).latents[col] for i in range(200)]
            if name != "bg-hue":
                assert all(not lo <= v <= hi for v in vals), (name, col)
        if any(spec[c][2] for c in spec):  # mirrored: both sides appear
            col = next(iter(spec))
            vals = np.array([src.factors(i).latents[col] for i in range(200)])
            assert (vals > 0).mean() > 0.3 and (vals < 0).mean() > 0.3


def test_shift_is_part_of_spec_id_and_fingerprint_and_unknown_names_fail():
    from clipica.data import open_source
    from clipica.data.synthetic_faces import SyntheticFaces
    from clipica.errors import InputError

    plain = SyntheticFaces(10)
    src = open_source("synthetic-faces:10?shift=rotation,brightness")
    assert src.shift == ("brightness", "rotation")
    assert src.spec == "synthetic-faces:10?shift=brightness,rotation"
    assert src.row_id(3) == "sf-i0-brightness-rotation-00000003"
    assert src.fingerprint() != plain.fingerprint()
    assert plain.fingerprint() == SyntheticFaces(10, shift=None).fingerprint()
    assert src.describe()["shift"]["rotation"] == {"latent_rotation": [30.0, 50.0, True]}
    with pytest.raises(InputError, match="unknown shift darkness.*brightness"):
        SyntheticFaces(10, shift="darkness")
