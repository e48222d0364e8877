"""Interventions: the edit math, retrieval, probes and selectivity on planted data."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from clipica.errors import InputError
from clipica.intervene import (
    attribute_response,
    component_stats,
    edit_components,
    fit_attribute_probes,
    retrieve_neighbours,
    selectivity,
    text_response,
)


def planted_ica(seed, D=12, K=5, N=400, residual=0.3):
    """Embeddings X = mean + S A^T + r with r outside span(A); an ICA object with W = pinv(A)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(D, K))
    W = np.linalg.pinv(A)
    mean = rng.normal(size=D) * 3
    S = rng.laplace(size=(N, K)) * rng.uniform(0.5, 2.0, size=K)
    R = rng.normal(size=(N, D)) * residual
    R = R - (R @ W.T) @ A.T  # keep only the part outside the component subspace
    X = (mean + S @ A.T + R).astype(np.float32)
    ica = SimpleNamespace(mean_=mean, components_=W, mixing_=A)
    return ica, X, S


def residual(ica, X):
    Xc = np.asarray(X, dtype=np.float64) - ica.mean_
    return Xc - (Xc @ ica.components_.T) @ ica.mixing_.T


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_alpha_zero_returns_original_exactly(seed):
    ica, X, _ = planted_ica(seed)
    tr = edit_components(X[:10], ica, 2, [-2.0, 0.0, 1.5], reference=X)
    assert tr.embeddings.dtype == np.float32
    assert np.array_equal(tr.embeddings[1], X[:10])
    assert not np.allclose(tr.embeddings[0], X[:10])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("component", [0, 3])
def test_edit_moves_only_its_source_by_alpha_sigma(seed, component):
    ica, X, S = planted_ica(seed)
    alphas = [-3, -1, 0, 2, 3]
    tr = edit_components(X[:20].astype(np.float64), ica, component, alphas, reference=X)
    # the unit is the component's std measured on the reference rows
    sigma = ((np.asarray(X, np.float64) - ica.mean_) @ ica.components_.T)[:, component].std(ddof=1)
    assert tr.sigma == pytest.approx(sigma, rel=1e-10)
    assert tr.sigma == pytest.approx(S[:, component].std(ddof=1), rel=1e-6)
    S0 = (tr.original - ica.mean_) @ ica.components_.T
    for j, a in enumerate(alphas):
        Sj = (tr.embeddings[j] - ica.mean_) @ ica.components_.T
        diff = Sj - S0
        expected = np.zeros_like(diff)
        expected[:, component] = a * sigma
        np.testing.assert_allclose(diff, expected, atol=1e-9)
        np.testing.assert_allclose(tr.sources[j], Sj, atol=1e-9)
        # the residual outside the component subspace is unchanged
        np.testing.assert_allclose(
            residual(ica, tr.embeddings[j]), residual(ica, tr.original), atol=1e-9
        )


@pytest.mark.parametrize("seed", [0, 1])
def test_set_mode_sets_the_source(seed):
    ica, X, _ = planted_ica(seed)
    mu, sd = component_stats(ica, X)
    tr = edit_components(X[:7], ica, 1, [-1.0, 2.0], mode="set", reference=X)
    for j, a in enumerate([-1.0, 2.0]):
        Sj = (np.asarray(tr.embeddings[j], np.float64) - ica.mean_) @ ica.components_.T
        np.testing.assert_allclose(Sj[:, 1], mu[1] + a * sd[1], atol=1e-4)
        S0 = (np.asarray(X[:7], np.float64) - ica.mean_) @ ica.components_.T
        np.testing.assert_allclose(np.delete(Sj, 1, 1), np.delete(S0, 1, 1), atol=1e-4)
        np.testing.assert_allclose(residual(ica, tr.embeddings[j]), residual(ica, X[:7]), atol=1e-4)


def test_bad_inputs_raise_input_error():
    ica, X, _ = planted_ica(0)
    with pytest.raises(InputError, match="out of range"):
        edit_components(X, ica, 5)
    with pytest.raises(InputError, match="out of range"):
        edit_components(X, ica, -1)
    with pytest.raises(InputError, match="shape"):
        edit_components(X[:, :5], ica, 0)
    with pytest.raises(InputError, match="mode"):
        edit_components(X, ica, 0, mode="scale")
    with pytest.raises(InputError, match="alphas"):
        edit_components(X, ica, 0, alphas=[])


def test_retrieval_excludes_the_source_row():
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(50, 8)).astype(np.float32)
    q = bank[[3, 10]] * 2.0  # same direction as rows 3 and 10: cosine 1
    idx, sim = retrieve_neighbours(q, bank, k=2, chunk=7)
    assert idx[:, 0].tolist() == [3, 10]
    np.testing.assert_allclose(sim[:, 0], 1.0, atol=1e-5)
    idx2, _ = retrieve_neighbours(q, bank, k=2, exclude=[3, 10], chunk=7)
    assert 3 not in idx2[0] and 10 not in idx2[1]
    # brute force agrees
    U = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    s = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ U.T
    s[0, 3] = s[1, 10] = -np.inf
    assert idx2.tolist() == np.argsort(-s, axis=1)[:, :2].tolist()


def test_a_memmapped_bank_is_read_in_chunks_with_the_same_answers(tmp_path):
    """A store's memmap is read block by block from the file (row_chunks): the same blocks,
    neighbours and component statistics as from the array in memory."""
    from clipica._linalg import row_chunks
    from clipica.intervene.edit import component_stats

    rng = np.random.default_rng(1)
    bank = rng.normal(size=(103, 8)).astype(np.float32)
    bank.tofile(tmp_path / "image.f32")
    mm = np.memmap(tmp_path / "image.f32", dtype=np.float32, mode="r", shape=(103, 8))
    blocks = list(row_chunks(mm, 10))
    assert [a for a, _ in blocks] == list(range(0, 103, 10)) and type(blocks[0][1]) is np.ndarray
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), bank)
    np.testing.assert_array_equal(np.concatenate([b for _, b in row_chunks(mm[5:50], 10)]), bank[5:50])
    q = rng.normal(size=(4, 8))
    for a, b in zip(retrieve_neighbours(q, mm, k=3, chunk=10), retrieve_neighbours(q, bank, k=3, chunk=10),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    ica = SimpleNamespace(mean_=bank.mean(0).astype(np.float64), components_=rng.normal(size=(3, 8)),
                          mixing_=rng.normal(size=(8, 3)))
    mu, sd = component_stats(ica, mm, chunk=10)
    S = (bank.astype(np.float64) - ica.mean_) @ ica.components_.T
    np.testing.assert_allclose(mu, S.mean(0), atol=1e-10)
    np.testing.assert_allclose(sd, S.std(0, ddof=1), rtol=1e-10)


def test_selectivity_definition():
    t, s = selectivity([0.5, -4.0, 1.0, -0.5])
    assert t == 1 and s == pytest.approx(4.0 / 2.0)
    t, s = selectivity([0.5, -4.0, 1.0, -0.5], target=2)
    assert t == 2 and s == pytest.approx(1.0 / 5.0)
    assert selectivity([2.0, 0.0])[1] == float("inf")


def planted_attributes(seed, N=1500, D=16, n_attr=4, n_noise=3):
    """Components 0..n_attr-1 each drive one binary attribute; the rest are pure noise."""
    rng = np.random.default_rng(seed)
    K = n_attr + n_noise
    ica, _, _ = planted_ica(seed, D=D, K=K, N=2)
    Y = rng.integers(0, 2, size=(N, n_attr))
    S = rng.laplace(size=(N, K)) * 0.3
    S[:, :n_attr] += 2.0 * Y - 1.0
    X = ica.mean_ + S @ ica.mixing_.T + rng.normal(size=(N, D)) * 0.05
    labels = pd.DataFrame(Y, columns=[f"attr{j}" for j in range(n_attr)])
    labels["latent_x"] = rng.normal(size=N)  # continuous: never probed
    return ica, X.astype(np.float32), labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selectivity_high_for_attribute_component_low_for_noise(seed):
    ica, X, labels = planted_attributes(seed)
    probes = fit_attribute_probes(X, labels)
    assert probes.attributes == ["attr0", "attr1", "attr2", "attr3"]
    assert probes.train_accuracy.min() > 0.95
    rows = X[:40]
    sels = {}
    for comp in range(7):
        tr = edit_components(rows, ica, comp, [-3, -1.5, 0, 1.5, 3], reference=X)
        res = attribute_response(tr, probes)
        sels[comp] = res.selectivity
        if comp < 4:
            assert res.target == f"attr{comp}"
            # probability of the planted attribute rises along the sweep
            j = probes.attributes.index(f"attr{comp}")
            assert res.proba[0, j] < 0.2 and res.proba[-1, j] > 0.8
            assert np.all(np.diff(res.proba[:, j]) > 0)
    assert min(sels[c] for c in range(4)) > 5.0
    # a noise component moves every probe a little, none much: max/sum(rest) stays O(1)
    assert max(sels[c] for c in range(4, 7)) < 3.0
    assert min(sels[c] for c in range(4)) > 3 * max(sels[c] for c in range(4, 7))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_attribute_probes_match_scikit_learn(seed):
    """The joint solve gives scikit-learn's per-attribute fits on standardised features."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 10)) * rng.uniform(0.2, 5, size=10) + rng.normal(size=10)
    w = rng.normal(size=(10, 3))
    Y = (X @ w + rng.normal(size=(600, 3)) * 3 > np.median(X @ w, 0)).astype(float)
    labels = pd.DataFrame(Y, columns=["a", "b", "c"])
    labels.loc[:20, "b"] = np.nan  # a missing label excludes that row for that attribute only
    probes = fit_attribute_probes(X, labels, C=0.5)
    m, s = X.mean(0), X.std(0)
    for j, name in enumerate("abc"):
        ok = labels[name].notna().to_numpy()
        clf = LogisticRegression(C=0.5, max_iter=5000, tol=1e-10)
        clf.fit((X[ok] - m) / s, labels[name][ok].astype(int))
        ref = clf.decision_function((X - m) / s)
        got = probes.logits(X)[:, j]
        np.testing.assert_allclose(got, ref, atol=2e-3 * np.abs(ref).max())
        assert probes.train_accuracy[j] == pytest.approx(clf.score((X[ok] - m) / s, labels[name][ok].astype(int)), abs=0.01)
        assert probes.positive_rate[j] == pytest.approx(labels[name][ok].mean())


def test_logits_linear_in_alpha_and_probe_folding():
    """Folded probes are exactly linear, so the sweep's logit change is alpha-span * sigma * w.A_i."""
    ica, X, labels = planted_attributes(0)
    probes = fit_attribute_probes(X, labels)
    tr = edit_components(X[:5], ica, 2, [-2, 0, 2], reference=X)
    res = attribute_response(tr, probes)
    expected = 4.0 * tr.sigma * (probes.coef_ @ ica.mixing_[:, 2])
    # edited embeddings are float32: agree to float32 rounding of the inputs
    np.testing.assert_allclose(
        res.delta_logit, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max()
    )


def test_text_response_follows_the_planted_direction():
    ica, X, _ = planted_ica(4, D=12, K=5)
    # a prompt pair whose difference points along component 1's mixing column
    base = X.mean(0)
    pos = base + 5 * ica.mixing_[:, 1]
    neg = base - 5 * ica.mixing_[:, 1]
    other_pos = base + 5 * ica.mixing_[:, 3]
    other_neg = base - 5 * ica.mixing_[:, 3]
    tr = edit_components(X[:10], ica, 1, [-3, 0, 3], reference=X)
    res = text_response(
        tr,
        np.stack([pos, other_pos]),
        np.stack([neg, other_neg]),
        ["c1", "c3"],
        logit_scale=10.0,
    )
    assert res.proba.shape == (3, 2)
    assert res.margin[-1, 0] > res.margin[0, 0]
    assert abs(res.margin[-1, 0] - res.margin[0, 0]) > 3 * abs(res.margin[-1, 1] - res.margin[0, 1])


def test_fit_probes_rejects_label_free_tables():
    X = np.zeros((10, 3), np.float32)
    with pytest.raises(InputError, match="binary"):
        fit_attribute_probes(X, pd.DataFrame({"latent_a": np.arange(10.0)}))


# ---------------------------------------------------------------------------
# command line, on a real (tiny, random-weight) store
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):

    import clipica
    import tests.helpers.fake_models as fm

    root = tmp_path_factory.mktemp("intervene")
    name = fm.register_tiny_open_clip(root)
    store = clipica.extract(
        model=name,
        pretrained="none",
        data="synthetic-faces:64",
        out=root / "store",
        progress=False,
        num_workers=0,
    )
    clipica.ICA(n_components=5, random_state=0).fit(store.image).save(root / "ica")
    return root


def test_cli_writes_png_and_json(tiny_store, tmp_path, capsys):
    import json

    from clipica.cli import main

    out = tmp_path / "figs" / "c1.png"
    code = main(
        [
            "intervene",
            str(tiny_store / "store"),
            "--ica",
            str(tiny_store / "ica"),
            "--component",
            "1",
            "--out",
            str(out),
            "--rows",
            "2",
            "--alphas",
            "2",
            "-2",
            "0",
            "--no-decoder",
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert out.is_file() and out.read_bytes()[:4] == b"\x89PNG"
    js = json.loads((out.parent / "c1.json").read_text())  # beside the figure, named after it
    assert js["format"] == "clipica.intervene/1" and set(js["fingerprints"]) >= {"store", "decomposition"}
    assert js["component"] == 1 and js["alphas"] == [-2.0, 0.0, 2.0]  # sorted for every view
    assert set(js["attribute_probabilities"]) >= {"Smiling", "Eyeglasses"}
    assert all(len(v) == 3 for v in js["attribute_probabilities"].values())
    assert js["selected_attribute"] in js["attribute_probabilities"]
    assert js["selectivity"] is None or js["selectivity"] > 0
    assert len(js["retrieved_rows"]) == 2 and len(js["retrieved_rows"][0]) == 3
    for src, per_alpha in zip(js["rows"], js["retrieved_rows"], strict=True):
        assert all(src not in cell for cell in per_alpha)  # the source row is never retrieved
    assert js["decoded"] is False and "text_response" in js
    assert (out.parent / js["retrieval_png"]).is_file()


def test_cli_with_decoder_trains_once_and_reuses(tiny_store, tmp_path):
    import json

    from clipica.cli import main

    args = [
        "intervene",
        str(tiny_store / "store"),
        "--ica",
        str(tiny_store / "ica"),
        "--component",
        "0",
        "--rows",
        "2",
        "--alphas",
        "-1",
        "1",
        "--decoder-epochs",
        "1",
        "--no-text",
        "--quiet",
    ]
    assert main([*args, "--out", str(tmp_path / "a.png")]) == 0
    weights = tiny_store / "ica" / "decoder" / "decoder.safetensors"  # the run folder's ica/decoder/
    assert weights.is_file()
    stamp = weights.stat().st_mtime_ns
    assert main([*args, "--out", str(tmp_path / "b.png")]) == 0
    assert weights.stat().st_mtime_ns == stamp
    js = json.loads((tmp_path / "b.json").read_text())
    assert js["decoded"] is True and js["decoder"]["baseline_mse"] > 0
    assert (tmp_path / js["decoded_png"]).is_file()


def test_cli_bad_component_exits_2(tiny_store, tmp_path, capsys):
    from clipica.cli import main

    code = main(
        [
            "intervene",
            str(tiny_store / "store"),
            "--ica",
            str(tiny_store / "ica"),
            "--component",
            "5",
            "--out",
            str(tmp_path / "x.png"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "out of range" in err and "5 components" in err and "Traceback" not in err


def test_cli_store_without_images_exits_2(tiny_store, tmp_path, capsys):
    import json
    import shutil

    from clipica.cli import main

    # a store whose data source is gone: its images cannot be reloaded
    shutil.copytree(tiny_store / "store", tmp_path / "store")
    man = json.loads((tmp_path / "store" / "manifest.json").read_text())
    man["data"]["spec"] = f"folder:{tmp_path / 'moved-away'}"
    (tmp_path / "store" / "manifest.json").write_text(json.dumps(man))
    code = main(
        [
            "intervene",
            str(tmp_path / "store"),
            "--ica",
            str(tiny_store / "ica"),
            "--component",
            "0",
            "--out",
            str(tmp_path / "x.png"),
            "--no-decoder",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "images" in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_traversal_viewer_state_and_widget(tiny_store):
    import clipica
    from clipica.intervene.decoder import ComponentDecoder
    from clipica.viz import TraversalViewer

    store = clipica.EmbeddingStore.open(tiny_store / "store")
    ica = clipica.ICA.load(tiny_store / "ica")
    dec = ComponentDecoder(5, image_size=16)  # untrained: only shapes and range matter here
    viewer = TraversalViewer(store, ica, rows=3, decoder=dec)
    st = viewer.state(2, 1.5)
    assert (
        st["decoded"].shape == (3, 16, 16, 3)
        and 0 <= st["decoded"].min() <= st["decoded"].max() <= 1
    )
    assert st["neighbour_images"].shape == (3, 64, 64, 3)
    assert np.all(st["neighbours"] != viewer.rows)  # each edit never retrieves its own source row
    assert set(st["probabilities"]) >= {"Smiling", "Eyeglasses"}
    # alpha = 0: the edited embedding is the original, so probes give the unedited probabilities
    p0 = viewer.state(2, 0.0)["probabilities"]
    ref = viewer.probes.proba(np.asarray(store.image[viewer.rows])).mean(0)
    np.testing.assert_allclose([p0[a] for a in viewer.probes.attributes], ref, rtol=1e-6)
    box = viewer.widget
    png = viewer.image_widget.value
    assert png[:4] == b"\x89PNG"
    viewer.alpha_widget.value = 2.0  # the observer redraws
    assert viewer.image_widget.value != png
    assert box.children[0].children[0] is viewer.component_widget


@pytest.mark.slow
def test_tiny_faces_attribute_components_are_selective(tmp_path, user_cache):
    """End to end on synthetic faces with the shipped tiny-faces (never trained here).

    The component with the best single-component AUC for a bold attribute selects that
    attribute, and its selectivity beats random unit-variance directions of the same subspace.
    """
    from sklearn.metrics import roc_auc_score

    import clipica
    from clipica.intervene import run_intervention
    store = clipica.extract(
        model="tiny-faces", data="synthetic-faces:2000", out=tmp_path / "s", progress=False
    )
    ica = clipica.ICA(n_components=8, random_state=0).fit(store.image)
    X = np.asarray(store.image, dtype=np.float64)
    S = ica.transform(X)
    probes = fit_attribute_probes(X, store.rows)
    rows = np.arange(8)
    rng = np.random.default_rng(1)
    rand = []
    for _ in range(10):
        R, _ = np.linalg.qr(rng.normal(size=(8, 8)))
        rot = SimpleNamespace(
            mean_=ica.mean_, components_=R.T @ ica.components_, mixing_=ica.mixing_ @ R
        )
        rand.append(
            attribute_response(
                edit_components(X[rows], rot, 0, reference=X), probes
            ).selectivity
        )
    for attr in ("Wearing_Hat", "Eyeglasses"):
        auc = [roc_auc_score(store.rows[attr], S[:, k]) for k in range(8)]
        k = int(np.argmax(np.abs(np.asarray(auc) - 0.5)))
        res = run_intervention(
            store, ica, k, rows=rows, probes=probes, prompt_pairs=None
        )
        assert res.attributes.target == attr
        assert res.attributes.selectivity > np.mean(rand)


def test_attribute_probes_are_cached_per_store_and_decomposition(tmp_path, monkeypatch):
    """A second intervention reuses the saved probes; another decomposition or store refits."""
    from types import SimpleNamespace

    import clipica.intervene as iv
    from clipica.pipeline.analyses import attribute_probes_stage

    ica, X, labels = planted_attributes(0, N=300)
    store = SimpleNamespace(image=X, rows=labels, label_columns=list(labels.columns),
                            embed_dim=X.shape[1])
    fits = []
    real_fit = iv.fit_attribute_probes
    monkeypatch.setattr(iv, "fit_attribute_probes", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    path = tmp_path / "attribute_probes.json"

    first = attribute_probes_stage(store, ica, path, store_fp="s1")
    again = attribute_probes_stage(store, ica, path, store_fp="s1")
    assert len(fits) == 1  # no refit
    assert again.attributes == first.attributes == ["attr0", "attr1", "attr2", "attr3"]
    np.testing.assert_array_equal(again.coef_, first.coef_)  # JSON round trip is exact
    np.testing.assert_array_equal(again.intercept_, first.intercept_)
    np.testing.assert_array_equal(again.train_accuracy, first.train_accuracy)

    other = SimpleNamespace(mean_=ica.mean_, components_=ica.components_[::-1].copy(),
                            mixing_=ica.mixing_)
    attribute_probes_stage(store, other, path, store_fp="s1")
    assert len(fits) == 2  # changed decomposition: stale, refitted
    attribute_probes_stage(store, other, path, store_fp="s2")
    assert len(fits) == 3  # changed store: refitted
    attribute_probes_stage(store, other, path, store_fp="s2")
    assert len(fits) == 3
    path.write_text("{not json")
    attribute_probes_stage(store, other, path, store_fp="s2")
    assert len(fits) == 4  # a damaged cache is refitted


def test_component_stats_are_cached_per_store_and_decomposition(tmp_path, monkeypatch):
    """The traversal unit (each component's std on the store) is measured once per store and
    decomposition: exact through JSON, recomputed when either changes or the file is damaged."""
    from types import SimpleNamespace

    import clipica.intervene as iv
    from clipica.pipeline.analyses import component_stats_stage

    ica, X, labels = planted_attributes(1, N=200)
    store = SimpleNamespace(image=X, rows=labels, label_columns=list(labels.columns), embed_dim=X.shape[1])
    calls = []
    real = iv.component_stats
    monkeypatch.setattr(iv, "component_stats", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = tmp_path / "component_stats.json"
    mu, sd = component_stats_stage(store, ica, path, store_fp="s1")
    mu2, sd2 = component_stats_stage(store, ica, path, store_fp="s1")
    assert len(calls) == 1
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(sd2, sd)
    np.testing.assert_array_equal(sd, real(ica, X)[1])
    component_stats_stage(store, ica, path, store_fp="s2")
    assert len(calls) == 2  # another store
    other = SimpleNamespace(mean_=ica.mean_, components_=ica.components_[::-1].copy(), mixing_=ica.mixing_)
    component_stats_stage(store, other, path, store_fp="s2")
    assert len(calls) == 3  # another decomposition
    path.write_text("{not json")
    component_stats_stage(store, other, path, store_fp="s2")
    assert len(calls) == 4  # damaged: measured again


def test_selectivity_stage_reads_the_shared_attribute_probe_cache(tmp_path, monkeypatch):
    """Selectivity fits no probes of its own: it fills (or reads) the run folder's
    attribute-probe cache that traversals read, and its value is the intervention's."""
    from types import SimpleNamespace

    import clipica.intervene as iv
    from clipica.pipeline.analyses import attribute_probes_stage, selectivity_stage

    ica, X, labels = planted_attributes(1, N=300)
    store = SimpleNamespace(image=X, rows=labels, label_columns=list(labels.columns),
                            embed_dim=X.shape[1])
    fits = []
    real_fit = iv.fit_attribute_probes
    monkeypatch.setattr(iv, "fit_attribute_probes", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    probes_path = tmp_path / "ica" / "attribute_probes.json"
    best = {"attr0": 0, "attr1": 1}
    sel = selectivity_stage(store, ica, tmp_path / "sel.json", best, store_fp="s1",
                            probes_path=probes_path)
    assert len(fits) == 1 and probes_path.is_file()  # the one fit lands in the shared cache
    probes = attribute_probes_stage(store, ica, probes_path, store_fp="s1")  # as traversals do
    assert len(fits) == 1
    for attr, comp in best.items():
        tr = iv.edit_components(np.asarray(X), ica, comp, (-3.0, 3.0), reference=X)
        want = iv.attribute_response(tr, probes, target=attr).selectivity
        assert sel[attr] == pytest.approx(want, rel=1e-9)  # 300 rows < n_rows: every row is used
    assert min(sel.values()) > 1.0  # a planted attribute's own component is selective
    (tmp_path / "sel.json").unlink()
    selectivity_stage(store, ica, tmp_path / "sel.json", best, store_fp="s1", probes_path=probes_path)
    assert len(fits) == 1  # recomputing selectivity reuses the cached probes


@pytest.mark.parametrize("seed", [0, 1])
def test_attribute_probes_match_sklearn_logistic_regression(seed):
    """The one solver (fit_logistic) gives scikit-learn's per-attribute solution."""
    from sklearn.linear_model import LogisticRegression

    ica, X, labels = planted_attributes(seed, N=800)
    labels.loc[5, "attr1"] = np.nan  # a missing label is left out for that attribute only
    probes = fit_attribute_probes(X, labels, C=0.5)
    X64 = np.asarray(X, dtype=np.float64)
    m, s = X64.mean(0), X64.std(0)
    for j, name in enumerate(probes.attributes):
        y = labels[name].to_numpy(dtype=float)
        ok = ~np.isnan(y)
        clf = LogisticRegression(C=0.5, max_iter=5000, tol=1e-8).fit(((X64 - m) / s)[ok], y[ok])
        ref = clf.decision_function((X64 - m) / s)
        ours = probes.logits(X)[:, j]
        np.testing.assert_allclose(ours, ref, atol=2e-3 * np.abs(ref).max())
        assert abs(probes.positive_rate[j] - np.nanmean(y)) < 1e-12


def test_intervention_result_round_trips_through_json(tiny_store):
    import json

    from clipica.decompositions import load_decomposition
    from clipica.embeddings.store import EmbeddingStore
    from clipica.errors import ArtifactError
    from clipica.intervene import InterventionResult, run_intervention

    store = EmbeddingStore.open(tiny_store / "store")
    dec = load_decomposition(tiny_store / "ica")
    res = run_intervention(store, dec, 1, rows=2, alphas=[-1, 0, 1], prompt_pairs=None)
    d = json.loads(json.dumps(res.to_dict(fingerprints={"decomposition": dec.fingerprint()})))
    assert d["format"] == "clipica.intervene/1"
    assert d["fingerprints"] == {"decomposition": dec.fingerprint()}
    back = InterventionResult.from_dict(d)
    assert back.to_dict(fingerprints={"decomposition": dec.fingerprint()}) == d
    assert back.attributes.target == res.attributes.target
    np.testing.assert_allclose(back.attributes.proba, res.attributes.proba)
    np.testing.assert_array_equal(back.retrieval.indices, res.retrieval.indices)
    with pytest.raises(ArtifactError, match="not a intervene|holds a clipica probe"):
        InterventionResult.from_dict({**d, "format": "clipica.probe/1"})
    with pytest.raises(ArtifactError, match="malformed"):
        InterventionResult.from_dict({k: v for k, v in d.items() if k != "sigma"})

def test_prompt_embeddings_are_cached_per_store(tmp_path):
    """The text view's prompts are encoded once; the cache round-trips float32 exactly."""
    from types import SimpleNamespace

    from clipica.pipeline.analyses import prompt_encoder_stage

    rng = np.random.default_rng(0)
    table = {}
    loads = []

    class Enc:
        def encode_texts(self, texts):
            return np.stack([table.setdefault(t, rng.normal(size=4).astype(np.float32)) for t in texts])

    store = SimpleNamespace(embed_dim=4, load_encoder=lambda: loads.append(1) or Enc())
    path = tmp_path / "prompt_embeddings.json"
    a = prompt_encoder_stage(store, path, ["a man", "a woman"], store_fp="s1")
    b = prompt_encoder_stage(store, path, ["a woman", "a man"], store_fp="s1")
    assert len(loads) == 1
    np.testing.assert_array_equal(b.encode_texts(["a man", "a woman"]), a.encode_texts(["a man", "a woman"]))
    np.testing.assert_array_equal(b.encode_texts(["a man"])[0], table["a man"])
    prompt_encoder_stage(store, path, ["a man", "a woman"], store_fp="s2")  # other model/store
    prompt_encoder_stage(store, path, ["a man", "a child"], store_fp="s2")  # other prompts
    assert len(loads) == 3


# ------------------------------------------------------------------ blocks: --block, block names


def _ica_with_blocks(tiny_store):
    """The fixture's ICA (K = 5) saved again with declared blocks."""
    from clipica.decompositions import load_decomposition

    out = tiny_store / "ica_blocks"
    if not out.exists():
        ica = load_decomposition(tiny_store / "ica")
        ica.blocks_ = [[0, 1, 2], [3], [4]]  # declared: the CLI reads blocks_ whoever found them
        # ... and counted fully identifiable (the tiny store's ICA has a Gaussian block otherwise)
        ica.identifiable_, ica.gaussian_block_ = np.ones(5, dtype=bool), []
        ica.save(out)
    return out


def test_block_traversal_writes_a_grid_of_nearest_images(tiny_store, tmp_path, capsys):
    import json

    from clipica.cli import main
    from clipica.decompositions import load_decomposition
    from clipica.embeddings.store import EmbeddingStore

    out = tmp_path / "t" / "block0.png"
    code = main(["intervene", str(tiny_store / "store"), "--ica", str(_ica_with_blocks(tiny_store)),
                 "--block", "0", "--axes", "2", "0", "--rows", "2", "--alphas", "-1", "0", "1",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "block 0 [0, 1, 2]" in capsys.readouterr().out
    js = json.loads((tmp_path / "t" / "block0.json").read_text())
    assert js["format"] == "clipica.block_traversal/1" and set(js["fingerprints"]) >= {"store", "decomposition"}
    assert js["block"] == [0, 1, 2] and js["axes"] == [2, 0] and js["alphas"] == [-1.0, 0.0, 1.0]
    assert js["figures"] == ["block0.png", "block0_row1.png"]
    for f in js["figures"]:
        assert (tmp_path / "t" / f).read_bytes()[:4] == b"\x89PNG"
    nb = np.array(js["neighbours"])
    assert nb.shape == (3, 3, 2)
    # the centre cell is the unedited row: its neighbour is the nearest *other* row (cosine)
    X = np.asarray(EmbeddingStore.open(tiny_store / "store").image, dtype=np.float64)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    for j, r in enumerate(js["rows"]):
        sim = U @ U[r]
        sim[r] = -np.inf
        assert nb[1, 1, j] == int(np.argmax(sim))
        assert r not in nb[:, :, j]
    # the units: each swept component's std on the store rows (edit_block's own test checks the shifts)
    ica = load_decomposition(_ica_with_blocks(tiny_store))
    assert js["sigma"][0] > 0 and js["sigma"][1] > 0
    assert ica.blocks_ == [[0, 1, 2], [3], [4]]


@pytest.mark.parametrize("argv, match", [
    (["--block", "1"], "--component 3"),
    (["--block", "7"], "out of range"),
    (["--component", "0", "--axes", "0", "1"], "--axes goes with --block"),
])
def test_bad_block_requests_are_one_line(tiny_store, tmp_path, capsys, argv, match):
    from clipica.cli import main

    code = main(["intervene", str(tiny_store / "store"), "--ica", str(_ica_with_blocks(tiny_store)),
                 "--out", str(tmp_path / "x.png"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and match in err and len(err.splitlines()) == 1


def test_block_traversal_needs_blocks(tiny_store, tmp_path, capsys):
    from clipica.cli import main
    from clipica.decompositions import load_decomposition

    ica = load_decomposition(tiny_store / "ica")
    gaussian = ica.gaussian_block_
    ica.blocks_ = None
    ica.save(tmp_path / "no_blocks")
    code = main(["intervene", str(tiny_store / "store"), "--ica", str(tmp_path / "no_blocks"),
                 "--block", "0", "--out", str(tmp_path / "x.png")])
    assert code == 2 and "no blocks_" in capsys.readouterr().err
    # the unidentifiable Gaussian block is refused: a traversal of noise
    if len(gaussian) > 1:
        ica.blocks_ = [[i] for i in range(gaussian[0])] + [gaussian]
        ica.save(tmp_path / "gauss")
        code = main(["intervene", str(tiny_store / "store"), "--ica", str(tmp_path / "gauss"),
                     "--block", str(gaussian[0]), "--out", str(tmp_path / "y.png")])
        assert code == 2 and "unidentifiable Gaussian block" in capsys.readouterr().err


def test_name_prints_and_writes_block_names(tiny_store, tmp_path, capsys):
    import json

    from clipica.cli import main

    vocab = tmp_path / "words.txt"
    vocab.write_text("smiling\neyeglasses\na hat\nblond hair\nblack hair\ngray hair\n")
    code = main(["name", str(tiny_store / "store"), "--ica", str(_ica_with_blocks(tiny_store)),
                 "--vocab", str(vocab), "--top", "3", "--out", str(tmp_path / "names")])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "block [0, 1, 2]:" in printed
    js = json.loads((tmp_path / "names" / "naming.json").read_text())
    assert [b["block"] for b in js["blocks"]] == [[0, 1, 2]]  # singletons have poles, not block names
    top = js["blocks"][0]["top"]
    # ranked by the norm of each entry's scores over the block's components
    words = vocab.read_text().split("\n")[:-1]  # naming.json's "vocabulary" holds the file's path
    S = np.asarray(js["scores"], dtype=np.float64).reshape(len(words), -1)
    norm = np.sqrt((S[:, [0, 1, 2]] ** 2).sum(axis=1))
    assert [t["text"] for t in top] == [words[j] for j in np.argsort(-norm, kind="stable")[:3]]
    np.testing.assert_allclose([t["norm"] for t in top], np.sort(norm)[::-1][:3])
    assert "block [0, 1, 2]" in (tmp_path / "names" / "naming.txt").read_text()
