"""Scoring a categorical factor from a block against the best m codes without blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clipica.errors import InputError
from clipica.probes.categorical import FactorScore, score_factor
from tests.helpers.planted import planted


def _split(n, seed=0):
    idx = np.random.default_rng(seed).permutation(n)
    return idx[: int(0.7 * n)], idx[int(0.7 * n) :]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_planted_categorical_block_wins_over_single_raw_dimensions(seed):
    from clipica.decompositions.blocks import find_blocks
    from clipica.decompositions.ica import ICA

    X, S, A, _, y = planted(3000, seed)
    S_hat = ICA(n_components=9, random_state=seed).fit(X).transform(X)
    blocks = find_blocks(S_hat, n_bootstrap=0).blocks
    tr, te = _split(len(y), seed)
    block = score_factor(S_hat, y, train=tr, test=te, m=3, blocks=blocks, codes_name="ica")
    raw = score_factor(X, y, train=tr, test=te, m=3, codes_name="raw")
    one = score_factor(S_hat, y, train=tr, test=te, m=1, blocks=blocks)
    assert block.from_block and len(block.columns) == 3
    assert block.accuracy >= 0.97 and np.all(block.ovr_auc >= 0.99)
    assert one.accuracy < 0.6  # one code of a 3-D factor separates two pairs of values at best
    assert raw.accuracy < block.accuracy and len(raw.columns) == 3


def test_known_answer_on_perfectly_separated_codes():
    rng = np.random.default_rng(0)
    n = 800
    y = rng.integers(0, 3, n)
    codes = np.column_stack([rng.normal(size=n), (y == 1) * 5.0 + rng.normal(size=n) * 0.1,
                             (y == 2) * 5.0 + rng.normal(size=n) * 0.1, rng.normal(size=n)])
    tr, te = _split(n)
    s = score_factor(codes, y, train=tr, test=te, m=2, values=["a", "b", "c"])
    assert sorted(s.columns) == [1, 2]
    assert s.accuracy == 1.0 and s.balanced_accuracy == 1.0
    np.testing.assert_allclose(s.ovr_auc, 1.0)
    only_noise = score_factor(codes, y, train=tr, test=te, m=2, blocks=[[0], [3], [0, 3]])
    assert only_noise.accuracy < 0.5 and only_noise.columns == [0, 3]


def test_undefined_rows_are_left_out_and_round_trip():
    rng = np.random.default_rng(1)
    n = 600
    y = rng.integers(-1, 3, n)
    codes = np.eye(3)[np.maximum(y, 0)] * 3 + rng.normal(size=(n, 3)) * 0.2
    tr, te = _split(n)
    s = score_factor(codes, y, train=tr, test=te, m=3, factor="f", values=["a", "b", "c"])
    assert s.n_train == int((y[tr] >= 0).sum()) and s.n_test == int((y[te] >= 0).sum())
    back = FactorScore.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back.columns == s.columns and back.values == ["a", "b", "c"]
    np.testing.assert_allclose(back.ovr_auc, s.ovr_auc)


def test_bad_input():
    codes = np.zeros((50, 2))
    y = np.zeros(50, dtype=int)
    with pytest.raises(InputError, match="needs >= 2 values"):
        score_factor(codes, y, train=np.arange(30), test=np.arange(30, 50))
    y[::2] = 1
    with pytest.raises(InputError, match="no block of size"):
        score_factor(codes, y, train=np.arange(30), test=np.arange(30, 50), m=1, blocks=[[0, 1]])
    with pytest.raises(InputError, match="m must be"):
        score_factor(codes, y, train=np.arange(30), test=np.arange(30, 50), m=0)


def test_block_probe_finds_each_attribute_in_its_block():
    import pandas as pd

    from clipica.probes.categorical import probe_blocks

    rng = np.random.default_rng(0)
    n = 1500
    y = rng.integers(0, 4, n)
    V = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], float)[y]  # a 2-D factor
    b = rng.integers(0, 2, n)
    codes = np.column_stack([V + 0.2 * rng.normal(size=(n, 2)), b + 0.3 * rng.normal(size=n),
                             rng.normal(size=n)])
    labels = pd.DataFrame({"v0": (y == 0).astype(float), "v3": (y == 3).astype(float),
                           "bin": b.astype(float)})
    tr, te = _split(n)
    res = probe_blocks(codes, labels, [[0, 1], [2], [3]], train=tr, test=te)
    assert res.auc.shape == (3, 3)
    best = res.best_block()
    assert best["v0"][0] == 0 and best["v0"][1] > 0.99 and best["v3"][0] == 0
    assert best["bin"] == (1, pytest.approx(res.auc[1, 2])) and res.auc[1, 2] > 0.95
    assert np.all(res.auc[2] < 0.6)  # the noise code carries nothing
    assert json.loads(json.dumps(res.to_dict()))["best_block"]["v0"]["block"] == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_score_factor_codes_never_takes_the_gaussian_block(seed):
    """The factor lives in codes 3 and 4, which the decomposition calls its unidentifiable
    Gaussian block: that block is never the factor's block, however well it scores; as an
    ordinary block it wins. Without blocks the best m codes are searched (indices kept)."""
    import pandas as pd

    from clipica.data.label_groups import CategoricalFactor
    from clipica.probes.categorical import score_factor_codes

    rng = np.random.default_rng(seed)
    n = 900
    y = rng.integers(0, 3, n)
    codes = rng.normal(size=(n, 6))
    codes[:, 3] += 3.0 * (y == 1)
    codes[:, 4] += 3.0 * (y == 2)
    df = pd.DataFrame({c: (y == i).astype(float) for i, c in enumerate(["a", "b", "c"])})
    f = CategoricalFactor("f", ("a", "b", "c"), "detected")
    tr, te = _split(n, seed)
    blocks = [[0], [1], [2], [5], [3, 4]]
    as_block = score_factor_codes(codes, f, df, tr, te, codes_name="ica", blocks=blocks)
    assert as_block.columns == [3, 4] and as_block.m == 2 and as_block.mean_ovr_auc > 0.95
    never = score_factor_codes(codes, f, df, tr, te, codes_name="ica", blocks=blocks, gaussian=[3, 4])
    assert never.from_block and not {3, 4} & set(never.columns) and never.mean_ovr_auc < 0.7
    greedy = score_factor_codes(codes, f, df, tr, te, codes_name="pca")
    assert not greedy.from_block and sorted(greedy.columns) == [3, 4]
