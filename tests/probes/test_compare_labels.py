"""compare on label tables as users have them (issue 26): missing cells (defect 3), declared
factors whose columns are not mutually exclusive or share a column (defect 10)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clipica.errors import InputError
from clipica.probes.compare import compare


def _store(seed: int, n: int = 200, d: int = 6):
    """Embeddings (n, d) and labels: two binary attributes carried by the first two directions,
    a 3-way exclusive factor carried by the third, and a latent."""
    rng = np.random.default_rng(seed)
    S = rng.laplace(size=(n, d))
    X = (S @ rng.standard_normal((d, d))).astype(np.float32)
    cls = np.digitize(S[:, 2], [-0.5, 0.5])
    df = pd.DataFrame({"A": (S[:, 0] > 0).astype(float), "B": (S[:, 1] > 0).astype(float),
                       **{f"C{i}": (cls == i).astype(float) for i in range(3)},
                       "latent_z": S[:, 3]})
    return X, df


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_missing_label_cells_are_skipped_not_a_crash(seed):
    """Defect 3: empty or nan label cells (accepted by extract, probe and run) used to stop
    compare with "factors contains N non-finite values" though no factor was declared."""
    X, df = _store(seed)
    rng = np.random.default_rng(seed)
    for col in ("A", "B", "C0", "latent_z"):
        df.loc[rng.choice(len(df), 9, replace=False), col] = np.nan
    res = compare(X, df, k=4, methods=["pca", "raw"], seeds=[0, 1])
    for m in res.methods.values():
        assert m.mcc_attributes is not None and 0.0 <= m.mcc_attributes <= 1.0
        assert m.mcc_latents is not None and 0.0 <= m.mcc_latents <= 1.0
        assert 0.5 <= m.attributes["A"]["best_auc"] <= 1.0
    # scored on the rows where the latent is known (raw codes are the embeddings, shifted)
    from clipica.metrics.mcc import mcc

    ok = df["latent_z"].notna().to_numpy()
    want = mcc(X[ok], df.loc[ok, ["latent_z"]].to_numpy()).score
    assert res.methods["raw"].mcc_latents == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_factor_of_columns_that_are_not_mutually_exclusive_is_refused(seed):
    """Defect 10: `--factor f=A,B` (A and B set together on about a quarter of the rows) used
    to be scored on the rows with exactly one set, reporting a high accuracy."""
    X, df = _store(seed)
    with pytest.raises(InputError, match="not mutually exclusive.*A and B are both 1 on"):
        compare(X, df, k=4, methods=["raw"], seeds=[0, 1], factors=["f=A,B"])
    res = compare(X, df, k=4, methods=["raw"], seeds=[0, 1], factors=["c=C0,C1,C2"])  # exclusive: scored
    assert [f["columns"] for f in res.factors] == [["C0", "C1", "C2"]]


def test_two_factors_sharing_a_column_are_refused():
    X, df = _store(0)
    with pytest.raises(InputError, match="'C1' is already in factor 'c'"):
        compare(X, df, k=4, methods=["raw"], seeds=[0, 1], factors=["c=C0,C1,C2", "d=C1,C2"])
