"""clipica.ICA: recovery, equivalence with scikit-learn, invariants, canonical form, errors."""

import json
import warnings

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from clipica.decompositions.ica import ICA
from clipica.errors import ArtifactExistsError, DependencyError, InputError
from clipica.metrics import amari_distance


def _sources(kinds, n, rng):
    cols = []
    for kind in kinds:
        if kind == "laplace":
            s = rng.laplace(size=n)
        elif kind == "uniform":
            s = rng.uniform(-1, 1, size=n)
        elif kind == "bimodal":
            s = rng.choice([-1.0, 1.0], size=n) + 0.3 * rng.standard_normal(n)
        elif kind == "exponential":  # skewed
            s = rng.exponential(size=n)
        else:
            raise ValueError(kind)
        cols.append((s - s.mean()) / s.std())
    return np.column_stack(cols)


def _planted(kinds, n, seed, extra_gaussian=0, noise_std=0.3):
    """X = [S, noise] @ M' with M random (D, D); returns X, the mixing of S (D, K)."""
    rng = np.random.default_rng(seed)
    S = _sources(kinds, n, rng) * rng.uniform(1.5, 3.0, size=len(kinds))
    if extra_gaussian:
        S = np.hstack([S, noise_std * rng.standard_normal((n, extra_gaussian))])
    d = S.shape[1]
    M = rng.standard_normal((d, d))
    return S @ M.T, M[:, : len(kinds)]


def _match(S1, S2):
    """|corr| between columns, matched by the Hungarian algorithm: (rows, cols, values)."""
    C = np.abs(np.corrcoef(S1.T, S2.T)[: S1.shape[1], S1.shape[1] :])
    r, c = linear_sum_assignment(-C)
    return r, c, C[r, c]


# ---------------------------------------------------------------------------- recovery
CASES = {
    # name: (kinds, n, extra Gaussian dims, Amari tolerance)
    "laplace-square": (["laplace"] * 5, 4000, 0, 0.05),
    "uniform-square": (["uniform"] * 5, 4000, 0, 0.05),
    "mixed-square": (["laplace", "uniform", "bimodal", "exponential", "laplace", "bimodal"], 5000, 0, 0.05),
    "mixed-noisy-D>K": (["laplace", "uniform", "bimodal", "exponential"], 6000, 12, 0.05),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_planted_sources(case, seed):
    kinds, n, extra, tol = CASES[case]
    X, A = _planted(kinds, n, seed, extra_gaussian=extra)
    ica = ICA(n_components=len(kinds), random_state=seed).fit(X)
    assert ica.converged_
    assert ica.stationarity_ < ica.tol
    assert amari_distance(ica.components_, A) < tol


def test_matches_sklearn_up_to_sign_and_permutation():
    from sklearn.decomposition import FastICA

    for seed in (0, 1):
        X, _ = _planted(["laplace", "uniform", "bimodal", "exponential"], 5000, seed, extra_gaussian=6)
        ours = ICA(n_components=4, random_state=seed).fit_transform(X)
        sk = FastICA(n_components=4, whiten="unit-variance", whiten_solver="eigh", random_state=seed,
                     tol=1e-6, max_iter=1000).fit_transform(X)
        _, _, corr = _match(ours, sk)
        assert corr.min() > 0.999


@pytest.mark.parametrize("solver", ["sklearn", "picard"])
def test_solvers_agree_in_canonical_form(solver):
    X, _ = _planted(["laplace", "exponential", "uniform", "bimodal"], 6000, 3, extra_gaussian=4)
    ref = ICA(n_components=4, random_state=0, tol=1e-6, max_iter=500).fit(X)
    other = ICA(n_components=4, solver=solver, random_state=5, tol=1e-6, max_iter=1000).fit(X)
    # same order and signs without any matching: that is the point of the canonical form
    np.testing.assert_allclose(other.components_, ref.components_, atol=2e-3 * np.abs(ref.components_).max())
    np.testing.assert_allclose(other.skewness_, ref.skewness_, atol=1e-3)
    assert other.stationarity_ < 1e-3


def test_sklearn_solver_uses_clipicas_whitening_and_no_sklearn_whitening_warnings():
    # rank-deficient data: scikit-learn's own whitening warns "using whiten_solver = 'svd'
    # might lead to more accurate results", an option clipica does not have
    rng = np.random.default_rng(0)
    S = _sources(["laplace", "exponential", "uniform"], 4000, rng)
    A = rng.normal(size=(3, 5))
    X = np.hstack([S @ A, S @ A])  # 10 columns of rank 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sk = ICA(n_components=3, solver="sklearn", random_state=0, tol=1e-6, max_iter=1000).fit(X)
    assert not [str(w.message) for w in caught if "whiten" in str(w.message)]
    assert sk.converged_
    ref = ICA(n_components=3, random_state=0, tol=1e-6, max_iter=1000).fit(X)
    # one whitening for every solver (the docstring's promise)
    np.testing.assert_allclose(sk.whitening_, ref.whitening_, atol=1e-10)
    # and it still recovers the sources
    corr = np.abs(np.corrcoef(sk.transform(X).T, S.T)[:3, 3:])
    assert corr.max(axis=1).min() > 0.99


# ---------------------------------------------------------------------------- invariants
def _check_invariants(ica, X):
    k = ica.components_.shape[0]
    np.testing.assert_allclose(ica.components_ @ ica.mixing_, np.eye(k), atol=1e-8)
    S = ica.transform(X)
    np.testing.assert_allclose(S.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(np.cov(S.T, bias=True), np.eye(k), atol=1e-6)
    # inverse_transform(transform(X)) = X projected on the top-K principal subspace
    Xc = X - X.mean(0)
    _, V = np.linalg.eigh(Xc.T @ Xc / len(X))
    V = V[:, ::-1][:, :k]
    np.testing.assert_allclose(ica.inverse_transform(S), X.mean(0) + Xc @ V @ V.T, atol=1e-6 * np.abs(X).max())
    # whitening_ whitens
    np.testing.assert_allclose(np.cov((Xc @ ica.whitening_.T).T, bias=True), np.eye(k), atol=1e-6)
    assert np.all(np.diff(ica.negentropy_) <= 0)
    assert ica.explained_variance_.shape == (k,) and np.all(np.diff(ica.explained_variance_) <= 0)


def test_invariants_after_fit_and_after_save_load(tmp_path):
    X, _ = _planted(["laplace", "uniform", "exponential"], 3000, 0, extra_gaussian=5)
    ica = ICA(n_components=3, random_state=0).fit(X)
    _check_invariants(ica, X)
    out = ica.save(tmp_path / "ica")
    meta = json.loads((out / "ica.json").read_text())
    assert meta["n_components"] == 3 and meta["converged"] is True
    assert meta["params"]["solver"] == "auto" and meta["fit"]["solver"] == "fastica"
    assert meta["provenance"]["data"]["shape"] == [3000, 8]
    assert "unit variance" in meta["component_scale"] and "skewness" in meta["canonical"]["sign"]
    assert len(meta["components"]) == 3 and "timings_seconds" in meta
    loaded = ICA.load(out)
    _check_invariants(loaded, X)
    for name in ("mean_", "whitening_", "components_", "mixing_", "skewness_", "kurtosis_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(ica, name))
    np.testing.assert_array_equal(loaded.transform(X), ica.transform(X))
    assert loaded.n_iter_ == ica.n_iter_ and loaded.get_params() == ica.get_params()


def test_save_refuses_to_overwrite(tmp_path):
    X, _ = _planted(["laplace", "uniform"], 1000, 0)
    ica = ICA(random_state=0).fit(X)
    ica.save(tmp_path / "ica")
    with pytest.raises(ArtifactExistsError, match="overwrite"):
        ica.save(tmp_path / "ica")
    ica.save(tmp_path / "ica", overwrite=True)
    assert ICA.load(tmp_path / "ica").components_.shape == (2, 2)


def test_dtypes_and_fit_transform():
    X, _ = _planted(["laplace", "uniform", "bimodal"], 2000, 1)
    X32 = X.astype(np.float32)
    ica = ICA(random_state=0).fit(X32)
    S32 = ica.transform(X32)
    assert S32.dtype == np.float32 and ica.inverse_transform(S32).dtype == np.float32
    assert ica.transform(X).dtype == np.float64
    np.testing.assert_allclose(ICA(random_state=0).fit_transform(X32), S32, atol=1e-5)
    # float32 and float64 fits agree to float32 precision
    ica64 = ICA(random_state=0).fit(X)
    np.testing.assert_allclose(ica.components_, ica64.components_, atol=1e-3 * np.abs(ica64.components_).max())


# ---------------------------------------------------------------------------- canonical form
def test_canonical_signs_and_order():
    kinds = ["exponential", "laplace", "uniform", "bimodal"]
    for seed in (0, 1, 2):
        X, A = _planted(kinds, 20000, seed)
        ica = ICA(random_state=seed).fit(X)
        tie = ica.sign_tie_threshold_
        assert np.isclose(tie, 3 * np.sqrt(6 / 20000))
        skewed = np.abs(ica.skewness_) >= tie
        assert np.all(ica.skewness_[skewed] > 0)
        for j in np.flatnonzero(~skewed):  # symmetric sources: largest loading positive
            col = ica.mixing_[:, j]
            assert col[np.argmax(np.abs(col))] > 0
        # the exponential source (skewness 2) must come out with positive skewness
        assert ica.skewness_.max() > 1.5
        assert np.all(np.diff(ica.negentropy_) <= 0)


def test_identical_for_same_seed_and_stable_across_seeds_and_row_order():
    X, _ = _planted(["exponential", "laplace", "uniform", "bimodal", "laplace"], 8000, 4, extra_gaussian=3)
    a = ICA(n_components=5, random_state=0).fit(X)
    b = ICA(n_components=5, random_state=0).fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)
    scale = np.abs(a.components_).max()
    for seed in (1, 2, 3):
        c = ICA(n_components=5, random_state=seed).fit(X)
        np.testing.assert_allclose(c.components_, a.components_, atol=2e-3 * scale)
    perm = np.random.default_rng(0).permutation(len(X))
    d = ICA(n_components=5, random_state=0).fit(X[perm])
    np.testing.assert_allclose(d.components_, a.components_, atol=2e-3 * scale)
    np.testing.assert_allclose(d.mean_, a.mean_, atol=1e-10 * np.abs(X).max())


def test_warm_start_and_streaming_give_the_same_solution(tmp_path, monkeypatch):
    from clipica.decompositions import _whitening as F

    X, A = _planted(["laplace", "uniform", "exponential", "bimodal"], 12000, 5, extra_gaussian=4)
    X = X.astype(np.float32)
    full = ICA(n_components=4, random_state=0, warm_start_samples=None).fit(X)
    warm = ICA(n_components=4, random_state=0, warm_start_samples=3000).fit(X)
    assert warm.fit_info_["warm_start_rows"] == 3000 and warm.fit_info_["n_iter_warm"] > 0
    assert full.fit_info_["warm_start_rows"] == 0
    scale = np.abs(full.components_).max()
    np.testing.assert_allclose(warm.components_, full.components_, atol=2e-3 * scale)
    # a memory-mapped input with whitened rows streamed from disk on every pass
    path = tmp_path / "x.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    monkeypatch.setattr(F, "MAX_WHITENED_BYTES", 0)
    monkeypatch.setattr(F, "CHUNK_ROWS", 2500)
    streamed = ICA(n_components=4, random_state=0, warm_start_samples=3000).fit(mm)
    np.testing.assert_allclose(streamed.components_, warm.components_, atol=1e-3 * scale)
    assert amari_distance(streamed.components_, A) < 0.05


def test_auto_warm_start_rule():
    from clipica.decompositions._fastica_torch import auto_warm_start_rows

    assert auto_warm_start_rows(200_000, 64) == 50_000
    assert auto_warm_start_rows(150_000, 64) == 0
    assert auto_warm_start_rows(2_000_000, 512) == 256_000


@pytest.mark.parametrize("fun", ["exp", "cube"])
def test_other_nonlinearities(fun):
    X, A = _planted(["laplace", "uniform", "laplace", "uniform"], 8000, 0)
    ica = ICA(fun=fun, random_state=0, max_iter=400).fit(X)
    assert amari_distance(ica.components_, A) < 0.05


def test_torch_device_code_path_matches_cpu_path(monkeypatch):
    """The CUDA code path (torch tensors end to end) run on CPU tensors gives the same fit."""
    from clipica.decompositions import _whitening as F

    X, A = _planted(["laplace", "uniform", "exponential"], 12000, 0, extra_gaussian=3)
    X = X.astype(np.float32)
    ref = ICA(n_components=3, random_state=0, warm_start_samples=3000).fit(X)

    class TorchPathRunner(F.Runner):
        def __init__(self, device="cpu", n_entries=0, workers=None):
            super().__init__("cpu", n_entries, workers=1)
            self.cuda = True  # take the device branch, on CPU tensors

    monkeypatch.setattr(F, "Runner", TorchPathRunner)
    dev = ICA(n_components=3, random_state=0, warm_start_samples=3000).fit(X)
    assert dev.fit_info_["n_iter_warm"] > 0
    np.testing.assert_allclose(dev.components_, ref.components_, atol=1e-3 * np.abs(ref.components_).max())
    assert amari_distance(dev.components_, A) < 0.05


@pytest.mark.skipif("not __import__('torch').cuda.is_available()")
def test_cuda_matches_cpu():  # pragma: no cover - needs a GPU
    X, _ = _planted(["laplace", "uniform", "exponential"], 5000, 0, extra_gaussian=3)
    cpu = ICA(n_components=3, random_state=0).fit(X.astype(np.float32))
    gpu = ICA(n_components=3, random_state=0, device="cuda").fit(X.astype(np.float32))
    np.testing.assert_allclose(gpu.components_, cpu.components_, atol=2e-3 * np.abs(cpu.components_).max())


# ---------------------------------------------------------------------------- errors
def _small():
    return _planted(["laplace", "uniform", "bimodal"], 500, 0)[0]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input(bad):
    X = _small()
    X[7, 1] = bad
    with pytest.raises(InputError, match=r"NaN or infinity \(first at row 7, column 1"):
        ICA().fit(X)


def test_shape_and_rank_errors():
    X = _small()
    with pytest.raises(InputError, match="2-D"):
        ICA().fit(X[:, 0])
    with pytest.raises(InputError, match=r"n_components=4 is larger than n_features=3"):
        ICA(n_components=4).fit(X)
    with pytest.raises(InputError, match=r"n_components=3 is larger than n_samples=2"):
        ICA(n_components=3).fit(X[:2])
    deficient = np.hstack([X, X[:, :1] + X[:, 1:2]])  # 4 columns, rank 3
    with pytest.raises(InputError, match=r"n_components=4 exceeds the numerical rank .*\(3 of 4"):
        ICA(n_components=4).fit(deficient)
    assert ICA(random_state=0).fit(deficient).components_.shape == (3, 4)  # None -> rank


@pytest.mark.parametrize(
    "params, pattern",
    [
        ({"solver": "jade"}, r"solver must be one of \('auto', 'fastica', 'sklearn', 'picard'\); got solver='jade'"),
        ({"fun": "tanh"}, r"fun must be one of .*got fun='tanh'"),
        ({"n_components": 0}, r"n_components must be a positive integer or None; got n_components=0"),
        ({"whiten": "arbitrary-variance"}, r"whiten must be one of \('unit-variance',\)"),
        ({"max_iter": 0}, "max_iter must be a positive integer; got max_iter=0"),
        ({"tol": -1.0}, "tol must be a positive finite number"),
        ({"device": "tpu"}, "device must be"),
        ({"warm_start_samples": "some"}, "warm_start_samples must be"),
    ],
)
def test_bad_parameters(params, pattern):
    with pytest.raises(InputError, match=pattern):
        ICA(**params).fit(_small())


def test_picard_missing_names_the_extra(monkeypatch):
    import clipica.decompositions.ica as mod

    monkeypatch.setattr(mod, "picard_available", lambda: False)
    with pytest.raises(DependencyError, match=r"clipica\[picard\]"):
        ICA(solver="picard").fit(_small())


def test_not_fitted_and_feature_mismatch():
    from sklearn.exceptions import NotFittedError

    X = _small()
    with pytest.raises(NotFittedError):
        ICA().transform(X)
    ica = ICA(random_state=0).fit(X)
    with pytest.raises(InputError, match="X has 2 features, but ICA is expecting 3 features"):
        ica.transform(X[:, :2])
    with pytest.raises(InputError, match="n_components=3"):
        ica.inverse_transform(np.zeros((2, 2)))


def test_non_convergence_is_flagged():
    X = np.random.default_rng(0).standard_normal((2000, 4))  # Gaussian: no fixed point to find
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ica = ICA(random_state=0, max_iter=3, tol=1e-8, identify=False).fit(X)
    assert not ica.converged_ and ica.n_iter_ == 3
    assert any("did not converge" in str(w.message) for w in caught)


def test_load_rejects_other_directories(tmp_path):
    from clipica.errors import ArtifactError

    with pytest.raises(ArtifactError, match="not a saved ICA"):
        ICA.load(tmp_path)


def test_sklearn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(ICA())


# ---------------------------------------------------------------------------- command line
def _store(tmp_path, X, text=True):
    from clipica.embeddings.store import StoreWriter

    d = X.shape[1]
    w = StoreWriter(tmp_path / "store", {"model": "m", "data": "d"})
    w.begin({"schema_version": 1, "key": {"model": "m", "data": "d"}, "embed_dim": d, "has_text": text,
             "label_columns": [], "model": {"spec": "m"}, "data": {"spec": "d"}}, 0)
    rows = [{"id": f"r{i}", "source_index": i, "caption": "c", "split": None, "caption_truncated": False}
            for i in range(len(X))]
    w.commit(X.astype(np.float32), (X[:, ::-1].astype(np.float32) if text else None), rows, errors=[],
             next_position=len(X))
    w.finalize()
    return tmp_path / "store"


def test_cli_reports_the_gaussian_block_and_stability_of_the_identifiable_part(tmp_path, capsys):
    from clipica.cli import main

    X, _ = _planted(["laplace", "uniform"], 3000, 0, extra_gaussian=3)
    store = _store(tmp_path, X)
    assert main(["ica", str(store), "-k", "5", "--out", str(tmp_path / "ica"), "--stability", "3"]) == 0
    out = capsys.readouterr().out
    assert "converged on its 2 identifiable components; components 2-4 are one unidentifiable" in out
    assert "stability over 3 bootstrap fits (identifiable components): mean" in out and "nan" not in out
    ica = ICA.load(tmp_path / "ica")
    assert ica.blocks_ == [[0], [1], [2, 3, 4]] and ica.gaussian_block_ == [2, 3, 4]


def test_cli_fits_a_store_and_writes_ica_dir(tmp_path, capsys):
    from clipica.cli import main

    X, A = _planted(["laplace", "uniform", "exponential"], 3000, 0, extra_gaussian=3)
    store = _store(tmp_path, X)
    assert main(["ica", str(store), "-k", "3", "--out", str(tmp_path / "ica"), "--seed", "1"]) == 0
    ica = ICA.load(tmp_path / "ica")
    assert amari_distance(ica.components_, A) < 0.05
    # independent sources: every component is its own block, saved with the ICA
    assert ica.blocks_ == [[0], [1], [2]]
    blocks = json.loads((tmp_path / "ica" / "blocks.json").read_text())
    assert blocks["format"] == "clipica.blocks/1" and blocks["fingerprints"]["decomposition"] == ica.fingerprint()
    meta = json.loads((tmp_path / "ica" / "ica.json").read_text())
    assert meta["extra"]["modality"] == "image" and meta["extra"]["store"] == str(store)
    assert meta["params"]["random_state"] == 1
    # the same fit through the library gives the same numbers
    np.testing.assert_allclose(ica.components_, ICA(n_components=3, random_state=1).fit(X.astype(np.float32)).components_)
    # refuses to overwrite (exit 2, one line), then overwrites when asked, with stability
    assert main(["ica", str(store), "-k", "3", "--out", str(tmp_path / "ica")]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "Traceback" not in err
    assert main(["ica", str(store), "-k", "3", "--out", str(tmp_path / "ica"), "--overwrite",
                 "--stability", "3", "--modality", "text", "--quiet"]) == 0
    meta = json.loads((tmp_path / "ica" / "ica.json").read_text())
    assert meta["extra"]["modality"] == "text" and len(meta["components"]) == 3
    assert all(0 <= c["stability"] <= 1 for c in meta["components"])
    assert json.loads((tmp_path / "ica" / "stability.json").read_text())["n_runs"] == 3
    assert ICA.load(tmp_path / "ica").stability_.shape == (3,)


def test_cli_user_errors_exit_2(tmp_path, capsys):
    from clipica.cli import main

    X, _ = _planted(["laplace", "uniform"], 500, 0)
    store = _store(tmp_path, X, text=False)
    np.save(tmp_path / "x.npy", X)
    cases = [
        (["ica", str(store), "-k", "5", "--out", str(tmp_path / "a")], "n_components=5 is larger than n_features=2"),
        (["ica", str(store), "-k", "2", "--modality", "text", "--out", str(tmp_path / "b")], "no text embeddings"),
        (["ica", str(tmp_path / "nowhere"), "-k", "2", "--out", str(tmp_path / "c")], "not an embedding store"),
        (["ica", str(store), "-k", "2", "--stability", "1", "--out", str(tmp_path / "d")], "--stability R needs"),
    ]
    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err
    bad = X.copy()
    bad[3, 0] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    assert main(["ica", str(tmp_path / "bad.npy"), "-k", "2", "--out", str(tmp_path / "e")]) == 2
    assert "NaN or infinity" in capsys.readouterr().err
    assert main(["ica", str(tmp_path / "x.npy"), "-k", "2", "--out", str(tmp_path / "f")]) == 0
    assert ICA.load(tmp_path / "f").components_.shape == (2, 2)
