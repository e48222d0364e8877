"""Categorical factors as groups of one-hot columns: declared, detected, validated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clipica.data.label_groups import (
    CategoricalFactor,
    check_factors,
    detect_exclusive_groups,
    parse_factor_spec,
)
from clipica.errors import InputError

HAIR = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]


def _labels(n=3000, seed=0, none_rate=0.0, noise=0.0):
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 4, n)
    df = pd.DataFrame({c: (h == i).astype(float) for i, c in enumerate(HAIR)})
    df.loc[rng.random(n) < none_rate, HAIR] = 0.0  # bald or unlabelled
    flip = rng.random(n) < noise  # CelebA-like label noise: a second colour set
    df.loc[flip, "Gray_Hair"] = 1.0
    df["Male"] = (rng.random(n) < 0.5).astype(float)
    df["Wearing_Lipstick"] = ((1 - df["Male"]) * (rng.random(n) < 0.8)).astype(float)
    df["Smiling"] = (rng.random(n) < 0.5).astype(float)
    df["latent_x"] = rng.normal(size=n)
    return df, h


def test_one_hot_hair_is_detected_and_named():
    df, _ = _labels()
    assert detect_exclusive_groups(df) == [CategoricalFactor("hair", tuple(HAIR), "detected")]


def test_detection_tolerates_celeba_like_noise_and_unlabelled_rows():
    df, _ = _labels(none_rate=0.3, noise=0.005)
    found = detect_exclusive_groups(df)
    assert [f.columns for f in found] == [tuple(HAIR)]


def test_an_exclusive_pair_is_not_a_factor():
    df, _ = _labels()
    found = detect_exclusive_groups(df.drop(columns=HAIR))  # Male / Wearing_Lipstick exclusive
    assert found == []


def test_low_coverage_cliques_are_not_factors():
    rng = np.random.default_rng(0)
    n = 2000
    r = rng.integers(0, 20, n)  # three rare exclusive columns covering 15% of rows
    df = pd.DataFrame({f"a{i}": (r == i).astype(int) for i in range(3)})
    assert detect_exclusive_groups(df) == []
    assert len(detect_exclusive_groups(df, min_coverage=0.1)) == 1


def test_codes_mark_undefined_rows():
    df, h = _labels(none_rate=0.2, noise=0.01)
    y = parse_factor_spec("hair=" + ",".join(HAIR)).codes(df)
    s = df[HAIR].sum(axis=1).to_numpy()
    assert np.all(y[s != 1] == -1)
    one = df[HAIR].to_numpy().argmax(axis=1)
    assert np.all(y[s == 1] == one[s == 1])
    clean = (s == 1) & (df["Gray_Hair"].to_numpy() == (h == 3))
    assert np.all(y[clean] == h[clean])


@pytest.mark.parametrize("spec", ["hair", "hair=Black_Hair", "=a,b", "hair=a,a"])
def test_bad_factor_specs_say_the_expected_form(spec):
    with pytest.raises(InputError, match="NAME=COL1,COL2"):
        parse_factor_spec(spec)


def test_check_factors_validates_columns():
    df, _ = _labels()
    ok = check_factors(["hair=" + ",".join(HAIR)], df)
    assert ok[0].source == "declared"
    with pytest.raises(InputError, match="not found"):
        check_factors(["hair=Black_Hair,Red_Hair"], df)
    with pytest.raises(InputError, match="0/1"):
        check_factors(["x=Smiling,latent_x"], df)
    with pytest.raises(InputError, match="twice"):
        check_factors(["h=Black_Hair,Blond_Hair", "h=Brown_Hair,Gray_Hair"], df)


def test_round_trip():
    f = CategoricalFactor("hair", tuple(HAIR), "detected")
    assert CategoricalFactor.from_dict(f.to_dict()) == f
