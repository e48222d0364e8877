"""The LinearDecomposition contract, for every registered decomposition."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clipica.decompositions import (
    ICA,
    PCA,
    REGISTRY,
    Identity,
    LinearDecomposition,
    RandomRotation,
    load_decomposition,
    make_decomposition,
)
from clipica.errors import ArtifactError, ArtifactExistsError, InputError

NAMES = sorted(REGISTRY)


def _data(seed=0, n=400, d=6):
    rng = np.random.default_rng(seed)
    S = rng.laplace(size=(n, d))
    A = rng.normal(size=(d, d))
    return S @ A.T + rng.normal(size=d)


#: small training budgets for the iterative decompositions (their own tests: test_decompositions_more)
_FAST = {"dict": {"max_iter": 2}, "semi_nmf": {"max_iter": 30},
         "topk_sae": {"n_steps": 40, "batch_size": 100},
         "batchtopk_sae": {"n_steps": 40, "batch_size": 100}}


def _make(name, k=4, seed=0):
    return make_decomposition(name, None if name == "identity" else k, random_state=seed,
                              **_FAST.get(name, {}))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contract_shapes_round_trip_and_fit_transform(name, seed):
    X = _data(seed)
    dec = _make(name, seed=seed).fit(X)
    assert isinstance(dec, LinearDecomposition)
    k = dec.n_components_
    d = X.shape[1]
    assert dec.mean_.shape == (d,) and dec.components_.shape == (k, d) and dec.mixing_.shape == (d, k)
    S = dec.transform(X)
    assert S.shape == (X.shape[0], k) and S.dtype == X.dtype
    if dec.linear_encoder:
        np.testing.assert_allclose(S, (X - dec.mean_) @ dec.components_.T, rtol=1e-10, atol=1e-10)
    if dec.linear_encoder and dec.exact_inverse:
        # components_ @ mixing_ = I: encoding a decoded code gives the code back
        np.testing.assert_allclose(dec.components_ @ dec.mixing_, np.eye(k), atol=1e-8)
        np.testing.assert_allclose(dec.transform(dec.inverse_transform(S)), S, atol=1e-8)
    if k == d and dec.exact_inverse:  # full rank: the data itself comes back
        np.testing.assert_allclose(dec.inverse_transform(S), X, atol=1e-8)
    np.testing.assert_allclose(_make(name, seed=seed).fit_transform(X), S, rtol=1e-12, atol=1e-12)
    # ICA reports a Gaussian remainder as one block (the last), every other component alone
    assert dec.blocks_ is None or (name == "ica" and dec.blocks_[-1] == dec.gaussian_block_
                                   and dec.blocks_[:-1] == [[i] for i in range(k - len(dec.gaussian_block_))])
    X32 = X.astype(np.float32)
    assert dec.transform(X32).dtype == np.float32


def test_pca_and_rotation_codes_are_whitened_principal_subspace():
    X = _data(3)
    pca = PCA(3).fit(X)
    S = pca.transform(X)
    np.testing.assert_allclose(np.cov(S.T, ddof=0), np.eye(3), atol=1e-8)
    # top-3 eigenvectors of the covariance (numpy reference), up to sign
    evals, evecs = np.linalg.eigh(np.cov(X.T, ddof=0))
    ref = (X - X.mean(0)) @ evecs[:, ::-1][:, :3] / np.sqrt(evals[::-1][:3])
    np.testing.assert_allclose(np.abs(np.sum(S * ref, 0) / len(X)), 1.0, atol=1e-8)
    assert np.all(np.diff(pca.explained_variance_) <= 0)
    rr = RandomRotation(3, random_state=5).fit(X)
    R = rr.transform(X)
    np.testing.assert_allclose(np.cov(R.T, ddof=0), np.eye(3), atol=1e-8)
    np.testing.assert_allclose(R, S @ rr.rotation_, atol=1e-8)  # same subspace, rotated
    assert not np.allclose(np.abs(R), np.abs(S), atol=1e-3)
    assert not np.allclose(RandomRotation(3, random_state=6).fit(X).rotation_, rr.rotation_)


def test_identity_codes_are_centred_raw_dimensions():
    X = _data(4)
    S = Identity().fit(X).transform(X)
    np.testing.assert_allclose(S, X - X.mean(0), atol=1e-12)
    with pytest.raises(InputError, match="n_components must be None or n_features"):
        Identity(n_components=3).fit(X)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_via_registry(name, tmp_path):
    X = _data(1)
    dec = _make(name).fit(X)
    dec.save(tmp_path / "d")
    back = load_decomposition(tmp_path / "d")
    assert type(back) is type(dec)
    assert back.fingerprint() == dec.fingerprint()
    np.testing.assert_array_equal(back.transform(X), dec.transform(X))
    assert type(dec).load(tmp_path / "d").fingerprint() == dec.fingerprint()
    meta = json.loads(next(p for p in (tmp_path / "d").glob("*.json")).read_text())
    assert meta["format"] == dec.format_tag and meta["kind"] == name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    # the contract read without the class: the same arrays, blocks and fingerprint
    from clipica.decompositions import load_contract

    view = load_contract(tmp_path / "d")
    assert view.kind == name and view.fingerprint() == dec.fingerprint()
    assert view.n_components_ == dec.n_components_ and view.blocks_ == dec.blocks_
    np.testing.assert_array_equal(view.components_, dec.components_)
    np.testing.assert_array_equal(view.mixing_, dec.mixing_)


@pytest.mark.parametrize("name", NAMES)
def test_fingerprint_changes_when_arrays_change(name):
    X = _data(2)
    dec = _make(name).fit(X)
    fp = dec.fingerprint()
    assert len(fp) == 64 and fp == dec.fingerprint()
    dec.components_ = dec.components_.copy()
    dec.components_[0, 0] += 1e-9
    assert dec.fingerprint() != fp
    other = _make(name).fit(X + 1.0)  # another mean
    assert other.fingerprint() != fp


#: dictionaries and SAEs may be overcomplete (K > rank is their point); factor analysis fits noise
_SUBSPACE = [n for n in NAMES if n in ("ica", "pca", "random_rotation")]


@pytest.mark.parametrize("name", _SUBSPACE)
def test_k_above_rank_is_an_input_error(name):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 6))  # rank 2 in 6 dimensions
    with pytest.raises(InputError, match="n_components=4 exceeds the numerical rank"):
        make_decomposition(name, 4).fit(X)
    with pytest.raises(InputError, match="n_components=7 is larger than n_features=6"):
        make_decomposition(name, 7).fit(X)


@pytest.mark.parametrize("name", NAMES)
def test_nan_and_bad_shapes_are_input_errors(name):
    X = _data(0)
    X[5, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        _make(name).fit(X)
    with pytest.raises(InputError, match="2-D"):
        _make(name).fit(np.ones(10))
    dec = _make(name).fit(_data(0))
    with pytest.raises(ValueError, match="features"):
        dec.transform(np.ones((3, 5)))
    with pytest.raises(InputError, match="columns"):
        dec.inverse_transform(np.ones((3, dec.n_components_ + 1)))


# Identity is left out: check_estimator sets n_components=1, which Identity refuses by design
# (raw dimensions are all kept); test_identity_codes_are_centred_raw_dimensions covers it.
@pytest.mark.parametrize("cls", [PCA, RandomRotation])
def test_sklearn_estimator_checks(cls):
    from sklearn.utils.estimator_checks import check_estimator

    check_estimator(cls())


def test_make_decomposition_rejects_unknown_names_and_params():
    with pytest.raises(InputError, match="unknown decomposition 'nmf'.*ica"):
        make_decomposition("nmf", 3)
    with pytest.raises(InputError, match="no parameter"):
        make_decomposition("pca", 3, solver="fastica")
    assert isinstance(make_decomposition("raw"), Identity)
    assert isinstance(make_decomposition("ica", 3, random_state=1, max_iter=50), ICA)


def test_save_refuses_to_overwrite_and_replaces_whole_folder(tmp_path):
    X = _data(0)
    d = tmp_path / "dec"
    PCA(3).fit(X).save(d)
    (d / "naming").mkdir()  # something derived from the old decomposition
    with pytest.raises(ArtifactExistsError, match="overwrite=True"):
        PCA(2).fit(X).save(d)
    PCA(2).fit(X).save(d, overwrite=True)
    assert load_decomposition(d).n_components_ == 2
    assert not (d / "naming").exists()
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("keep me")
    with pytest.raises(ArtifactExistsError, match="holds no saved decomposition"):
        PCA(2).fit(X).save(stranger, overwrite=True)
    assert (stranger / "notes.txt").read_text() == "keep me"


def _saved(tmp_path, name="ica"):
    d = tmp_path / name
    _make(name, k=3).fit(_data(0)).save(d)
    return d, next(d.glob("*.json"))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m.update(format="clipica.ica/9"), "newer format"),
        (lambda m: m.pop("format"), "no valid format tag"),
        (lambda m: m.update(n_components=5), "hand-edited|shape"),
        (lambda m: m["arrays"]["shapes"].update(mixing=[6, 2]), "hand-edited|shape"),
        (lambda m: m.update(format="clipica.sae/1"), "does not know"),
    ],
)
def test_load_refuses_hand_edited_json_with_one_line(tmp_path, edit, match):
    d, meta_path = _saved(tmp_path)
    meta = json.loads(meta_path.read_text())
    edit(meta)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=match) as info:
        load_decomposition(d)
    assert "\n" not in str(info.value)


def test_reading_a_saved_contract_imports_no_scikit_learn(tmp_path):
    """`clipica intervene` reads the contract arrays only (load_contract): no estimator
    class, so no scikit-learn import (most of a cached intervention's CPU time)."""
    import subprocess
    import sys

    ICA(n_components=2, random_state=0).fit(_data(2)).save(tmp_path / "d")
    code = ("import sys; from clipica.decompositions import load_contract; "
            f"v = load_contract({str(tmp_path / 'd')!r}); v.fingerprint(); "
            "print(','.join(m for m in ('sklearn', 'scipy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_load_refuses_corrupt_files_with_one_line(tmp_path):
    d, meta_path = _saved(tmp_path, "pca")
    meta_path.write_text(meta_path.read_text()[:40])
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_decomposition(d)
    d, meta_path = _saved(tmp_path, "random_rotation")
    arrays = d / "arrays.safetensors"
    arrays.write_bytes(arrays.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="corrupt") as info:
        load_decomposition(d)
    assert "\n" not in str(info.value)
    with pytest.raises(ArtifactError, match="not a saved decomposition"):
        load_decomposition(tmp_path / "nothing")
    d, _ = _saved(tmp_path, "identity")
    with pytest.raises(ArtifactError, match="not a saved ICA"):
        ICA.load(d)
