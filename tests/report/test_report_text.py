"""The report's words: headline per attribute group, glossary, warnings, trusted names, order."""

from __future__ import annotations

import re

from clipica.report import build_report, naming_poles, probe_attributes
from clipica.report.text import (
    GLOSSARY,
    binary_headline,
    factor_headline,
    headline,
    report_factors,
    split_warning,
)


def _probe(n_test=600):
    attrs = {
        "Smiling": {"best_component": 0, "best_auc": 0.97, "runner_up_auc": 0.6,
                    "pca": {"best_auc": 0.80}, "raw": {"best_auc": 0.75}},
        "Male": {"best_component": 1, "best_auc": 0.04, "runner_up_auc": 0.6,  # folds to 0.96
                 "pca": {"best_auc": 0.90}, "raw": {"best_auc": 0.70}},
        "Blond_Hair": {"best_component": 2, "best_auc": 0.85, "runner_up_auc": 0.8,
                       "pca": {"best_auc": 0.95}, "raw": {"best_auc": 0.70}},
    }
    return {"attributes": attrs, "split": {"source": "random", "n_test": n_test, "n_train": 10}}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_binary_headline_states_means_wins_and_losses():
    rows = probe_attributes(_probe())
    text = _text(binary_headline(rows, ["pca", "raw"]))
    # means of the folded AUCs: ICA (0.97 + 0.96 + 0.85) / 3, PCA (0.80 + 0.90 + 0.95) / 3
    assert "0.927" in text and "PCA 0.883 (ICA higher on 2 of 3)" in text
    assert "the raw embedding 0.717 (ICA higher on 3 of 3)" in text
    assert "does not win on Blond_Hair (PCA 0.950 ≥ 0.850)" in text
    rows["Blond_Hair"]["pca"] = 0.5
    assert "wins on every attribute against every baseline" in _text(binary_headline(rows, ["pca", "raw"]))


def test_factor_headline_per_factor_and_where_ica_loses():
    hair = {"name": "hair", "columns": ["Black_Hair", "Blond_Hair", "Brown_Hair"]}
    age = {"name": "age", "columns": ["Young", "Old", "Middle"]}
    compare = {
        "factors": [hair, age],
        "methods": {
            "ica": {"factors": {"hair": {"accuracy": 0.9}, "age": {"accuracy": 0.7}}},
            "pca": {"factors": {"hair": {"accuracy": 0.8}, "age": {"accuracy": 0.75}}},
        },
    }
    facs = report_factors([], compare)
    text = _text(factor_headline({}, ["pca"], facs, compare))
    assert "hair (Black_Hair, Blond_Hair, Brown_Hair; declared): held-out accuracy from the best " \
           "ICA block 0.900 against the same number of codes of pca 0.800 — ICA wins" in text
    assert "age (Young, Old, Middle; declared): held-out accuracy from the best ICA block 0.700 " \
           "against the same number of codes of pca 0.750 — ICA does not win (pca 0.750)" in text
    assert factor_headline({}, ["pca"], report_factors([], {"methods": compare["methods"]})) == ""


def test_headline_groups_factors_detected_from_labels_without_compare():
    """Hair colours detected as one factor leave the binary group; without block scores the
    factor is scored column by column, and the headline says so and where ICA loses."""
    probe = _probe()
    probe["attributes"]["Black_Hair"] = {"best_component": 3, "best_auc": 0.90, "runner_up_auc": 0.6,
                                         "pca": {"best_auc": 0.92}, "raw": {"best_auc": 0.7}}
    probe["attributes"]["Brown_Hair"] = {"best_component": 4, "best_auc": 0.80, "runner_up_auc": 0.6,
                                         "pca": {"best_auc": 0.70}, "raw": {"best_auc": 0.6}}
    rows = probe_attributes(probe)
    hair = {"name": "hair", "columns": ["Black_Hair", "Blond_Hair", "Brown_Hair"], "source": "detected"}
    paras = re.findall(r'<p class="headline">(.*?)</p>', headline(rows, ["pca", "raw"], None, [hair]))
    assert len(paras) == 2
    binary, factor = map(_text, paras)
    # the binary group is Smiling and Male only: ICA (0.97 + 0.96) / 2, PCA (0.80 + 0.90) / 2
    assert "Binary attributes (2):" in binary and "0.965" in binary and "PCA 0.850 (ICA higher on 2 of 2)" in binary
    assert "Hair" not in binary
    assert "hair (Black_Hair, Blond_Hair, Brown_Hair; detected from the labels): column by column" in factor
    assert "not scored as a block in this run" in factor
    # columns: ICA (0.90 + 0.85 + 0.80) / 3 = 0.850, PCA (0.92 + 0.95 + 0.70) / 3 = 0.857
    assert "mean AUC of 0.850" in factor and "PCA 0.857 (ICA higher on 1 of 3)" in factor
    assert "does not win on Black_Hair (PCA 0.920 ≥ 0.900); Blond_Hair (PCA 0.950 ≥ 0.850)" in factor
    # a compare.json with block scores for the same columns replaces the column-by-column sentence
    compare = {"factors": [{"name": "hair_colour", "columns": hair["columns"]}],
               "methods": {"ica": {"factors": {"hair_colour": {"accuracy": 0.97}}},
                           "pca": {"factors": {"hair_colour": {"accuracy": 0.93}}}}}
    factor = _text(factor_headline(rows, ["pca"], report_factors([hair], compare), compare))
    assert "hair (Black_Hair, Blond_Hair, Brown_Hair; detected from the labels): held-out accuracy " \
           "from the best ICA block 0.970 against the same number of codes of pca 0.930 — ICA wins" in factor
    assert "not scored as a block" not in factor


def test_small_split_warning_gives_the_size():
    assert "only 20 rows" in split_warning({"n_test": 20, "source": "random"})
    assert split_warning({"n_test": 200}) == ""
    assert split_warning(None) == ""


def test_names_below_chance_are_hidden_and_negations_flagged(tmp_path):
    naming = {
        "chance": {"threshold": 2.0},
        "components": [{
            "component": 0,
            "positive": [{"text": "a photo of a smiling person", "score": 2.5},
                         {"text": "a photo of a person wearing a hat", "score": 1.2}],
            "negative": [{"text": "a photo of a person with black hair", "score": -1.0}],
            "named": {"+": {"names": [{"text": "a photo of a smiling person", "score": 2.5},
                                      {"text": "a photo of a person who is not smiling", "score": 2.1}],
                            "unseparated": [["a photo of a smiling person",
                                             "a photo of a person who is not smiling"]]},
                      "-": {"names": [], "unseparated": []}},
        }],
    }
    poles = naming_poles(naming)
    assert [w for w, _ in poles[0]["positive"]] == ["a photo of a smiling person",
                                                    "a photo of a person who is not smiling"]
    assert poles[0]["negative"] == []
    html = build_report(tmp_path, probe=_probe(n_test=20), naming=naming).read_text()
    text = _text(html)
    assert "wearing a hat" not in text and "with black hair" not in text  # below chance
    assert "not separated by the model" in text and "chance level 2.00" in text
    assert "Small held-out split: only 20 rows" in text
    # the table headers explain themselves on hover, and the glossary has every term
    assert f'title="{GLOSSARY["runner-up"]}"' in html
    for term in GLOSSARY:
        assert f"<dt>{term}</dt>" in html
    # no ground-truth latents (no MCC): no "Against the ground truth"; no traversal: no selectivity column
    assert "Against the ground truth" not in text
    assert not re.search(r"<th[^>]*>selectivity</th>", html)


def test_traversals_strongest_first_and_weak_labelled(tmp_path):
    items = [{"component": c, "selectivity": s, "alphas": [-1, 0, 1], "selected_attribute": "Smiling"}
             for c, s in ((3, 0.35), (7, 6.2), (5, 2.0))]
    html = build_report(tmp_path, interventions=items).read_text()
    heads = re.findall(r"<h3>Component (\d+)", html)
    assert heads == ["7", "5", "3"]
    weak = re.findall(r"<h3>Component (\d+)[^<]*<span class=\"weak\">", html)
    assert weak == ["3"]


def test_component_stability_of_clipica_ica_is_shown(tmp_path):
    stab = {"n_components": 3, "n_runs": 4, "stability": [0.95, 0.9, 0.4], "stability_mean": 0.75}
    html = build_report(tmp_path, stability=stab).read_text()
    assert "Not computed: stability" not in html
    assert "<td>0.40</td>" in html and "over 4 bootstrap refits" in html


def test_many_attributes_get_a_sorted_dot_plot():
    from clipica.viz.report_figures import MANY_ATTRIBUTES, plot_auc_comparison

    rows = {f"a{i}": {"ica": 0.5 + i / 100, "pca": 0.7} for i in range(MANY_ATTRIBUTES + 5)}
    ax = plot_auc_comparison(rows, columns=("ica", "pca")).axes[0]
    assert not ax.patches  # no bars
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == f"a{MANY_ATTRIBUTES + 4}" and labels[0] == "a0"  # best ICA at the top
    assert ax.get_legend() is not None
    few = plot_auc_comparison({"x": {"ica": 0.9, "pca": 0.8}}, columns=("ica", "pca")).axes[0]
    assert few.patches


def test_typed_stability_sweep_rows_are_read():
    from clipica.report import sweep_columns

    doc = {"rows": [{"k": 4, "stability_mean": 0.9, "explained_variance": 0.5},
                    {"k": 8, "stability_mean": 0.8, "explained_variance": 0.7}], "chosen_k": 4}
    assert sweep_columns(doc) == {"k": [4, 8], "stability_mean": [0.9, 0.8], "explained_variance": [0.5, 0.7]}


def test_text_panel_is_a_change_from_alpha_zero_with_target_and_controls():
    import numpy as np

    from clipica.viz.traversal import plot_text_response

    alphas = np.array([-2.0, 0.0, 2.0])
    proba = np.array([[0.1, 0.5, 0.45, 0.5, 0.2], [0.5, 0.5, 0.5, 0.5, 0.5], [0.9, 0.6, 0.5, 0.5, 0.9]])
    names = ["Smiling", "Male", "Bangs", "Hat", "Blond_Hair"]
    ax = plot_text_response(alphas, proba, names, target="Smiling", n_controls=2).axes[0]
    labelled = {line.get_label(): line.get_ydata() for line in ax.get_lines()
                if not line.get_label().startswith("_")}
    assert set(labelled) == {"Smiling (traversed)", "Blond_Hair (control)", "Male (control)"}
    np.testing.assert_allclose(labelled["Smiling (traversed)"], [-0.4, 0.0, 0.4])  # minus P at α = 0
    legend = ax.get_legend()
    assert legend is not None and legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1


def test_report_factors_detected_from_labels_and_declared(tmp_path):
    """The report stage groups mutually exclusive label columns (detected) and declared
    factors; a declared factor replaces a detected one sharing its columns; bad ones are refused."""
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd
    import pytest

    from clipica.errors import InputError
    from clipica.pipeline.report import report_factors as stage_factors

    rng = np.random.default_rng(0)
    n = 400
    hair = rng.integers(0, 4, n)
    rows = pd.DataFrame({f"{c}_Hair": (hair == i).astype(int)
                         for i, c in enumerate(("Black", "Blond", "Brown", "Gray"))})
    rows["Smiling"] = rng.integers(0, 2, n)
    rows["Male"] = rng.integers(0, 2, n)
    rows["Old"] = (rows["Male"] == 0).astype(int)  # a pair only: never a group on its own
    store = SimpleNamespace(rows=rows)
    probe = {"attributes": {c: {} for c in rows.columns}}
    got = stage_factors(store, probe)
    assert got == [{"name": "hair", "columns": ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"],
                    "source": "detected"}]
    declared = stage_factors(store, probe, ["colour=Black_Hair,Blond_Hair,Brown_Hair"])
    assert [(f["name"], f["source"]) for f in declared] == [("colour", "declared")]
    with pytest.raises(InputError):
        stage_factors(store, probe, ["hair=Black_Hair,No_Such_Column"])
    assert stage_factors(store, {"attributes": {"Smiling": {}}}) == []
    # the rendered report: the hair columns leave the binary headline and get their own group
    attrs = {c: {"best_component": i, "best_auc": 0.9, "runner_up_auc": 0.6, "pca": {"best_auc": 0.8}}
             for i, c in enumerate(rows.columns)}
    html = build_report(tmp_path, probe={"attributes": attrs}, factors=got).read_text()
    text = _text(html)
    assert "Binary attributes (3):" in text and "Categorical factors (1)" in text
    assert "hair: categorical factor (detected from the labels)" in text
    assert "mean best-single AUC over 3 binary attributes, ICA" in text


def test_factor_losing_on_every_column_names_the_strongest_rival_per_column():
    rows = {c: {"ica": 0.83, "pca": p, "raw": r} for c, p, r in
            (("A_Hair", 0.99, 0.85), ("B_Hair", 0.90, 0.95), ("C_Hair", 0.91, 0.84))}
    f = {"name": "hair", "columns": ["A_Hair", "B_Hair", "C_Hair"], "source": "detected"}
    text = _text(factor_headline(rows, ["pca", "raw"], [f]))
    assert ("ICA does not win on any of its 3 columns (strongest rival per column: A_Hair PCA 0.990 "
            "≥ 0.830; B_Hair the raw embedding 0.950 ≥ 0.830; C_Hair PCA 0.910 ≥ 0.830)") in text
    assert "spans up to 2 dimensions" in text


def test_metric_settings_are_a_caption_not_rows_of_dashes(tmp_path):
    metrics = {"dci": {"disentanglement": 0.8, "completeness": 0.7, "informativeness": 0.9,
                       "baselines": {"pca": {"disentanglement": 0.6, "completeness": 0.5,
                                             "informativeness": 0.9}},
                       "n_rows": 1000, "subsample_seed": 1, "n_estimators": 20, "max_depth": 3,
                       "test_size": 0.25, "model": "gradient_boosting"},
               "mig": {"score": 0.5, "baselines": {"pca": {"score": 0.4}}, "n_rows": 3000,
                       "subsample_seed": 0}}
    text = _text(build_report(tmp_path, metrics=metrics).read_text())
    assert "subsample_seed" not in text and "n_estimators" not in text and "max_depth" not in text
    assert "dci disentanglement 0.800 0.600" in text and "mig 0.500 0.400" in text
    assert ("computed on DCI: 1000 rows, subsample seed 1, 20 trees of depth 3, 0.25 held out; "
            "MIG: 3000 rows, subsample seed 0.") in text


def test_near_chance_attributes_are_named_apart_and_carry_no_names(tmp_path):
    """Attributes no representation separates (CelebA's noise columns on a small model) are
    not listed as ICA's losses one by one, are not 'carried' by their best component, and do
    not borrow the names of the attribute that component does carry."""
    attrs = {
        "Pale_Skin": {"best_component": 2, "best_auc": 0.99, "runner_up_auc": 0.6,
                      "pca": {"best_auc": 0.90}},
        "Chubby": {"best_component": 2, "best_auc": 0.53, "runner_up_auc": 0.52,
                   "pca": {"best_auc": 0.55}},
        "Mustache": {"best_component": 7, "best_auc": 0.74, "runner_up_auc": 0.7,
                     "pca": {"best_auc": 0.91}},
    }
    rows = probe_attributes({"attributes": attrs})
    text = _text(binary_headline(rows, ["pca"]))
    assert "1 of them no representation separates (every best AUC below 0.6: Chubby)" in text
    assert "Elsewhere ICA does not win on Mustache (PCA 0.910 ≥ 0.740)" in text
    assert "Chubby (" not in text
    naming = {"chance": {"threshold": 2.0}, "components": [
        {"component": 2, "positive": [], "negative": [],
         "named": {"+": {"names": [{"text": "a photo of a person with pale skin", "score": 6.5}],
                         "unseparated": []}, "-": {"names": [], "unseparated": []}}}]}
    html = build_report(tmp_path, probe={"attributes": attrs}, naming=naming).read_text()
    row = {m.group(1): m.group(2) for m in re.finditer(r'<tr><td class="l">(\w+)</td>(.*?)</tr>', html)}
    assert "with pale skin" in row["Pale_Skin"] and "with pale skin" not in row["Chubby"]
    assert "Pale_Skin+ (0.99)" in _text(html) and "1 more near chance" in _text(html)
