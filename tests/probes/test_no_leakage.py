"""No leakage from the held-out rows into the probes' choices (issue 26, guard 2).

The sparse-probe curve ranks components on the training rows and scores the probes on the
held-out rows. Permuting the held-out labels must change the held-out scores (the test can
see them) and no choice: the components each probe is given at every k (the ranking, hence
the best single component a probe uses and the order along the curve).

Not covered by design: the table's ``best_component`` is the component with the highest
single-component AUC on *all* labelled rows (a description that fits nothing, see
:func:`clipica.probes.probe.probe`), so it may move with the held-out labels.
"""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

probe_module = importlib.import_module("clipica.probes.probe")  # the module (the package exports the function)


def _planted(seed: int, n: int = 240, k: int = 8, n_attr: int = 3):
    """Codes (n, k) and binary labels, attribute j carried by component 2j with strength
    falling with j, plus weak traces in every other component (so the ranking is not trivial)."""
    rng = np.random.default_rng(seed)
    codes = rng.standard_normal((n, k)).astype(np.float32)
    labels = {}
    for j in range(n_attr):
        logit = (2.0 - 0.5 * j) * codes[:, 2 * j] + 0.3 * codes @ rng.standard_normal(k)
        labels[f"attr{j}"] = (logit + rng.logistic(size=n) > 0).astype(np.int64)
    return codes, pd.DataFrame(labels)


def _choices(monkeypatch, codes, labels, split, curve_rows):
    """(the supports every sparse probe was fitted on, in call order; the report)."""
    seen: list[np.ndarray] = []
    real_supports, real_fit = probe_module.fit_logistic_supports, probe_module.fit_logistic

    def supports(X, Y, sup, **kw):
        seen.append(np.array(sup, copy=True))
        return real_supports(X, Y, sup, **kw)

    def fit(X, Y, **kw):
        mask = kw.get("feature_mask")
        seen.append(None if mask is None else np.array(mask, copy=True))
        return real_fit(X, Y, **kw)

    monkeypatch.setattr(probe_module, "fit_logistic_supports", supports)
    monkeypatch.setattr(probe_module, "fit_logistic", fit)
    report = probe_module.probe(codes, labels, split=split, curve_rows=curve_rows, max_sparse=4)
    monkeypatch.undo()
    return seen, report


@pytest.mark.parametrize("curve_rows", [None, 100])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_permuting_held_out_labels_changes_no_choice_of_the_probes(monkeypatch, seed, curve_rows):
    codes, labels = _planted(seed)
    rng = np.random.default_rng(100 + seed)
    order = rng.permutation(len(codes))
    split = {"train": order[:160], "test": order[160:]}
    te = np.sort(split["test"])
    shuffled = labels.copy()
    shuffled.iloc[te] = labels.iloc[rng.permutation(te)].to_numpy()
    assert not shuffled.iloc[te].equals(labels.iloc[te])

    a_sup, a = _choices(monkeypatch, codes, labels, split, curve_rows)
    b_sup, b = _choices(monkeypatch, codes, shuffled, split, curve_rows)
    assert len(a_sup) == len(b_sup) >= 2  # k = 1, 2, 4 and the linear probe
    for x, y in zip(a_sup, b_sup, strict=True):
        assert (x is None and y is None) or np.array_equal(x, y), "a probe's components moved"
    ra, rb = a.codes["ica"], b.codes["ica"]
    assert list(ra.sparse_k) == list(rb.sparse_k)
    # the permutation did reach the held-out scores: the test could have seen a leak
    assert not np.allclose(ra.sparse_auc, rb.sparse_auc)
