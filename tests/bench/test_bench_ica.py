"""clipica bench ica at a small size: every solver runs, the JSON has the promised shape."""

import json

import numpy as np
import pytest

from clipica.bench.ica import make_data, run_benchmark


def test_make_data_plants_non_gaussian_sources():
    X, A = make_data(n=4000, d=12, k=3, seed=0, chunk=1500)
    assert X.shape == (4000, 12) and X.dtype == np.float32 and A.shape == (12, 3)
    # unmixing the planted sources exactly: kurtosis of Laplace (+3), uniform (-1.2), bimodal (< -1)
    rng = np.random.default_rng(0)
    full = rng.standard_normal((12, 12)) / np.sqrt(12)  # the same draw make_data makes first
    S = np.linalg.solve(full, X.T.astype(np.float64)).T[:, :3]
    S = (S - S.mean(0)) / S.std(0)
    kurt = (S**4).mean(0) - 3
    assert kurt[0] > 2 and -1.5 < kurt[1] < -1.0 and kurt[2] < -1.0


def test_small_benchmark_all_solvers(capsys):
    out = run_benchmark(n=6000, d=24, k=4, seed=0, progress=lambda msg: None)
    names = [r["solver"] for r in out["results"]]
    assert names[:4] == ["clipica", "sklearn-svd", "sklearn-eigh", "picard"]
    for r in out["results"]:
        assert set(r) >= {"solver", "seconds", "n_iter", "converged", "amari"}
        assert r["seconds"] > 0 and r["n_iter"] >= 1 and r["amari"] < 0.05
    by = {r["solver"]: r for r in out["results"]}
    assert abs(by["clipica"]["amari"] - by["sklearn-eigh"]["amari"]) < 0.01
    assert set(out["speedup"]) >= {"vs_sklearn_svd", "vs_sklearn_eigh", "clipica_over_floor"}
    assert out["floor"]["n_iter"] == by["sklearn-eigh"]["n_iter"] and out["floor"]["seconds"] > 0
    assert out["meets_targets"]["amari_ok"] is True
    json.dumps(out)  # JSON-ready


def test_cli_json(tmp_path, capsys):
    from clipica.cli import main

    assert main(["bench", "ica", "--n", "3000", "--d", "12", "--k", "3", "--solvers", "clipica,sklearn-eigh",
                 "--json", "--out", str(tmp_path / "b.json")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["solver"] for r in doc["results"]] == ["clipica", "sklearn-eigh"]
    assert json.loads((tmp_path / "b.json").read_text())["n"] == 3000
    assert main(["bench", "ica", "--solvers", "jade", "--n", "100"]) == 2


@pytest.mark.slow
def test_default_size_recovers_the_sources_and_reports_every_ratio():
    """N=200k, D=512, K=64 (minutes: scikit-learn's svd whitening alone takes 40 s to 5 min).

    Whether the speed targets are met is the bench's verdict (``meets_targets``), read by people on
    quiet cores; CI's cores are shared, so a timed assertion here would test the neighbours. What
    this test holds is the part that does not depend on the clock: at the default size clipica
    recovers the planted sources as well as scikit-learn does, and every ratio and verdict is there.
    Picard is left out: no target reads it, and it took 175 of the ~610 s of the run the README
    once quoted (load 6-13)."""
    out = run_benchmark(solvers=("clipica", "sklearn-svd", "sklearn-eigh"), progress=lambda msg: None)
    assert out["meets_targets"]["amari_ok"] is True
    assert set(out["meets_targets"]) == {"speedup_vs_sklearn_svd_ok", "speedup_vs_sklearn_eigh_ok", "amari_ok"}
    assert out["speedup"]["vs_sklearn_svd"] > 0 and out["speedup"]["vs_sklearn_eigh"] > 0
    by = {r["solver"]: r for r in out["results"]}
    assert by["clipica"]["amari"] < 0.05 and abs(by["clipica"]["amari"] - by["sklearn-eigh"]["amari"]) < 0.01
