"""summary.json's categorical block scores and convergence record, and where they are shown:
the report's headline and ``clipica demo``'s printed result."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np

from clipica.cli.demo import claims
from clipica.pipeline.summary import convergence, factor_group
from clipica.report import build_report

HAIR = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]


def _ica(converged=True, n_ident=5, k=6):
    return SimpleNamespace(converged_=converged, n_iter_=200 if not converged else 31, max_iter=200,
                           tol=1e-4, stationarity_=0.03 if not converged else 5e-5,
                           identifiable_=np.arange(k) < n_ident, components_=np.zeros((k, 10)))


def _probe(converged=True, block_auc=None):
    probe = {"codes": {"ica": {"converged": True}, "pca": {"converged": True},
                       "raw": {"converged": converged}}}
    if block_auc is not None:
        probe["categorical"] = {"hair": {
            "columns": HAIR, "source": "detected", "m": 3, "block_auc": block_auc,
            "scores": {"ica": {"columns": [4, 7], "accuracy": 0.97},
                       "pca": {"columns": [0, 1, 2], "accuracy": 0.8},
                       "raw": {"skipped": "factor 'hair' needs >= 2 values"}}}}
    return probe


def test_convergence_says_which_fit_did_not_converge():
    ok = convergence(_ica(), {"k": [4, 6, 8], "converged_fraction": [1.0, 1.0, 0.6]}, 6, _probe())
    assert ok["all_converged"] and ok["problems"] == []
    assert ok["ica"]["judged_on"] == "the 5 identifiable components of 6"
    assert ok["stability_sweep"] == {"chosen_k_converged_fraction": 1.0, "not_converged_k": [8]}
    bad = convergence(_ica(converged=False, n_ident=6), {"k": [6], "converged_fraction": [0.5]}, 6,
                      _probe(converged=False))
    assert not bad["all_converged"] and len(bad["problems"]) == 3
    assert "after 200 fixed-point" in bad["problems"][0] and "all 6 components" in bad["problems"][0]
    assert "50%" in bad["problems"][1] and "raw" in bad["problems"][2]
    assert bad["probes"] == {"ica": True, "pca": True, "raw": False}
    # K given (no sweep): nothing said about one
    assert convergence(_ica(), None, 6, _probe())["stability_sweep"] is None


def test_factor_group_carries_the_probe_stage_block_scores():
    means = {"ica": 0.84, "pca": 0.9, "raw": 0.92}
    factor = {"name": "hair", "columns": HAIR, "source": "detected"}
    g = factor_group(_probe(block_auc={"ica": 0.995, "pca": 0.93, "raw": None}), factor, means)
    assert g["block_auc"] == {"ica": 0.995, "pca": 0.93, "raw": None} and g["block_m"] == 3
    assert g["block_columns"] == {"ica": [4, 7], "pca": [0, 1, 2]}
    assert "raw" in g["block_skipped"] and g["mean_best_auc"] == means and g["categorical"]
    # a probe.json without block scores (an older one): the column-by-column means only
    assert "block_auc" not in factor_group(_probe(), factor, means)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_report_headline_gives_the_block_scores_and_non_convergence_first(tmp_path):
    attrs = {a: {"best_component": i, "best_auc": 0.84, "pole": "+", "runner_up_auc": 0.6,
                 "pca": {"best_auc": 0.9}, "raw": {"best_auc": 0.92}} for i, a in enumerate(HAIR)}
    attrs["Smiling"] = {"best_component": 5, "best_auc": 0.99, "pole": "+", "runner_up_auc": 0.55,
                        "pca": {"best_auc": 0.9}, "raw": {"best_auc": 0.93}}
    probe = {"attributes": attrs, **_probe(block_auc={"ica": 0.995, "pca": 0.93, "raw": 0.95})}
    factors = [{"name": "hair", "columns": HAIR, "source": "detected"}]
    summary = {"convergence": convergence(_ica(converged=False), None, 6, _probe())}
    html = build_report(tmp_path, probe=probe, factors=factors, summary=summary).read_text()
    text = _text(html)
    assert ("the best ICA block of at most 3 components (components 4, 7) gives a mean one-vs-rest "
            "AUC of 0.995 on the held-out rows, against the best 3 PCA components 0.930; the best 3 "
            "raw dimensions 0.950 — ICA wins.") in text
    assert "column by column" not in text.split("Categorical factors")[1].split(".")[0]
    head = html.index('class="headline warn"')
    assert head < html.index("Binary attributes (1)") and "Not converged:" in text
    assert "stopped after 200 fixed-point iterations in all (max_iter=200)" in text
    probe["categorical"]["hair"]["block_auc"]["raw"] = 0.999
    text = _text(build_report(tmp_path, probe=probe, factors=factors).read_text())
    assert "ICA does not win (the best 3 raw dimensions 0.999 > 0.995)" in text
    assert "Not converged" not in text
    # equal as shown (both at the ceiling) is a tie, not a win
    probe["categorical"]["hair"]["block_auc"].update(ica=1.0, pca=0.99996, raw=0.93)
    text = _text(build_report(tmp_path, probe=probe, factors=factors).read_text())
    assert "raw dimensions 0.930 — ICA ties the best 3 PCA components 1.000." in text


def test_demo_states_each_group_against_its_baselines():
    s = {"groups": {
        "binary attributes": {"attributes": ["a", "b"], "mean_best_auc": {"ica": 0.97, "pca": 0.9, "raw": 0.93}},
        "hair": {"attributes": HAIR, "categorical": True, "block_m": 3,
                 "mean_best_auc": {"ica": 0.84, "pca": 0.9, "raw": 0.92},
                 "block_auc": {"ica": 0.995, "pca": 0.996, "raw": 0.95}}},
        "convergence": {"problems": ["the ICA stopped at 200 iterations"]}}
    lines = claims(s)
    assert lines[0] == ("binary attributes (2, mean AUC): best single ICA component 0.970 against "
                        "PCA 0.900, raw 0.930: ICA ahead of both")
    assert lines[1] == ("hair (categorical, 4 values, mean one-vs-rest AUC): best ICA block (found "
                        "without labels) 0.995 against best 3 PCA 0.996, best 3 raw 0.950: ICA behind "
                        "best 3 PCA (their codes chosen with the labels)")
    assert lines[2] == "NOT CONVERGED: the ICA stopped at 200 iterations"
    s["groups"]["hair"]["block_auc"] = {"ica": 1.0, "pca": 0.99999, "raw": 0.92}
    assert "1.000 against best 3 PCA 1.000, best 3 raw 0.920: ICA ties best 3 PCA and is ahead of the other" \
        in claims(s)[1]
