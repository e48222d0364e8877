"""``clipica bench pipeline``'s planted store: the right size and format, attributes that the codes carry."""

import numpy as np

from clipica.bench.pipeline import attribute_names, write_planted_store
from clipica.bench.probe import make_data


def test_planted_store_shapes_labels_and_recoverable_attributes(tmp_path):
    from clipica.decompositions.ica import ICA
    from clipica.embeddings.store import EmbeddingStore
    from clipica.probes import auc_matrix

    store = write_planted_store(tmp_path / "s", n=3000, d=32, k=6, attributes=5, seed=2, chunk=1000)
    again = EmbeddingStore.open(tmp_path / "s")
    assert again.image.shape == (3000, 32) and again.image.dtype == np.float32
    assert store.label_columns == attribute_names(5)
    Y = store.rows[store.label_columns].to_numpy(dtype=float)
    prev = Y.mean(axis=0)
    assert set(np.unique(Y)) == {0.0, 1.0} and prev.min() > 0.02 and prev.max() < 0.6
    # the planted codes and labels are bench probe's (same seed), mixed into 32 dimensions
    true_codes, labels = make_data(3000, 6, 5, 2)
    np.testing.assert_array_equal(labels, Y)
    # they live in a 6-d subspace with 80 % of the variance: a 6-component ICA finds them, so
    # each attribute's best single-component AUC is the planted code's, up to the noise
    codes = ICA(n_components=6, random_state=0).fit(np.asarray(store.image)).transform(store.image)
    best = np.abs(auc_matrix(codes, Y) - 0.5).max(axis=0) + 0.5
    planted = np.abs(auc_matrix(true_codes, Y) - 0.5).max(axis=0) + 0.5
    assert np.all(best > 0.6) and np.all(best <= planted + 0.01) and np.all(best > planted - 0.05)
    # seeded: the same call writes the same matrix (chunking moves only float32 rounding)
    other = write_planted_store(tmp_path / "t", n=3000, d=32, k=6, attributes=5, seed=2, chunk=700)
    np.testing.assert_allclose(np.asarray(other.image), np.asarray(store.image), rtol=1e-5, atol=1e-6)


def test_probe_stage_result_does_not_depend_on_its_workers(tmp_path):
    """The probe stage's tasks (code sets, metrics) on 1 or 3 threads: the same report."""
    from clipica.decompositions.ica import ICA
    from clipica.pipeline import probe_params
    from clipica.pipeline.analyses import compute_probe

    store = write_planted_store(tmp_path / "s", n=2500, d=24, k=5, attributes=4, seed=1)
    ica = ICA(n_components=5, random_state=0).fit(np.asarray(store.image))
    params = probe_params(seed=0, curve_rows=1000, dci_rows=400, dci_trees=5)
    one = compute_probe(store, ica, params, progress=False, workers=1).to_dict()
    three = compute_probe(store, ica, params, progress=False, workers=3).to_dict()
    assert list(one["codes"]) == ["ica", "raw", "pca", "random_rotation"]  # the plan's order
    assert one == three
    assert set(one["dci"]["baselines"]) == {"raw", "pca", "random_rotation"}


def test_probe_stage_stops_at_a_failed_task_without_running_the_queue(tmp_path, monkeypatch):
    """A task that raises ends the stage with its error; the tasks still queued are cancelled."""
    import time

    import pytest

    from clipica.decompositions.ica import ICA
    from clipica.errors import InputError
    from clipica.pipeline import analyses, probe_params

    store = write_planted_store(tmp_path / "s", n=1500, d=16, k=4, attributes=3, seed=0)
    ica = ICA(n_components=4, random_state=0).fit(np.asarray(store.image))
    sap_calls = []

    def broken(*args, **kwargs):
        time.sleep(1.0)  # long enough for the stage to see the failure and cancel the queue
        raise InputError("planted failure")

    def counted_sap(*args, **kwargs):
        sap_calls.append(1)
        raise AssertionError("a queued task ran after the failure")

    monkeypatch.setattr("clipica.metrics.mig", broken)
    monkeypatch.setattr("clipica.metrics.sap", counted_sap)
    with pytest.raises(InputError, match="planted failure"):
        analyses.compute_probe(store, ica, probe_params(seed=0, dci_rows=300, dci_trees=2),
                               progress=False, workers=1)
    # one worker: the four MIG tasks precede the SAP tasks in the queue; after the first
    # MIG failure at most the next MIG task is running, and no SAP task ever starts
    assert sap_calls == []


def test_realistic_store_has_celeba_prevalences_correlations_and_one_hair_colour(tmp_path):
    from clipica.bench.realistic import BINARY, HAIR, label_names, write_realistic_store

    store = write_realistic_store(tmp_path / "r", n=20000, d=48, seed=3, chunk=7000)
    assert store.image.shape == (20000, 48) and store.label_columns == label_names()
    Y = store.rows[store.label_columns]
    for name, p in BINARY.items():  # exact marginals of the latent thresholds, up to sampling
        assert abs(Y[name].mean() - p) < 4 * np.sqrt(p * (1 - p) / 20000) + 1e-3, name
    hair = Y[list(HAIR)].to_numpy()
    assert np.all(hair.sum(axis=1) == 1)  # one hair colour per row
    r = np.corrcoef(Y["Male"], Y["No_Beard"])[0, 1]
    assert r < -0.3 and np.corrcoef(Y["Male"], Y["Wearing_Lipstick"])[0, 1] < -0.3
    assert abs(np.corrcoef(Y["Male"], Y["Smiling"])[0, 1]) < 0.05
