"""The K sweep on small or low-rank stores (issue 26, defects 6 and 8): the grid is clipped to
what an ICA can fit, and the clipping is said, never silent; no K fits -> one line saying
which would."""

from __future__ import annotations

import numpy as np
import pytest

from clipica.cli import main
from clipica.errors import InputError
from clipica.pipeline.fit import compute_stability, stability_params


def _low_rank(seed: int, n: int = 120, d: int = 32, rank: int = 6) -> np.ndarray:
    """(n, d) float32 of numerical rank ``rank`` (non-Gaussian sources, a random mixing)."""
    rng = np.random.default_rng(seed)
    return (rng.laplace(size=(n, rank)) @ rng.standard_normal((rank, d))).astype(np.float32)


def _params(grid):
    return stability_params(grid, restarts=2, sweep_rows=20000, seed=0, threshold=0.8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_sweep_clips_its_grid_to_the_numerical_rank_and_says_so(seed):
    """Defect 6: a random-weight ViT's 120 rows of rank 15 met the default grid 8 16 32 64 and
    the run stopped with "n_components=16 exceeds the numerical rank"."""
    doc = compute_stability(_low_rank(seed), _params([4, 8, 16]), progress=False)
    assert doc["k"] == [4] and doc["chosen_k"] == 4
    assert set(doc["k_grid_dropped"]) == {"8", "16"}
    assert all("numerical rank of the embeddings (6)" in why for why in doc["k_grid_dropped"].values())


def test_no_k_that_fits_is_one_line_saying_which_would():
    with pytest.raises(InputError, match=r"numerical rank 6, so K <= 6\); choose K values from 2 to 6"):
        compute_stability(_low_rank(0), _params([8, 16]), progress=False)


def _store(tmp_path, X):
    from clipica.embeddings.store import StoreWriter

    key = {"model": "m", "data": "d"}
    w = StoreWriter(tmp_path / "store", key)
    w.begin({"schema_version": 1, "key": key, "embed_dim": X.shape[1], "has_text": False,
             "label_columns": [], "model": {"spec": "m"}, "data": {"spec": "d"}}, 0)
    rows = [{"id": f"r{i}", "source_index": i, "caption": "c", "split": None, "caption_truncated": False}
            for i in range(len(X))]
    w.commit(X, None, rows, errors=[], next_position=len(X))
    w.finalize()
    return tmp_path / "store"


def test_cli_stability_names_the_k_values_it_drops(tmp_path, capsys):
    """Defect 8: `clipica stability --k-grid 4 64 100` on a 60-row store dropped 64 and 100
    without a word."""
    rng = np.random.default_rng(0)
    store = _store(tmp_path, rng.laplace(size=(60, 16)).astype(np.float32))
    assert main(["stability", str(store), "--k-grid", "4", "64", "100", "--restarts", "2",
                 "--out", str(tmp_path / "st"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "64, 100 dropped" in err and "16" in err
    assert "chosen K = 4" in out
