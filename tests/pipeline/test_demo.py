"""``clipica demo --quick`` end to end, at test size, on the session's test-size tiny-faces."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from clipica.cli import main

SUMMARY_ATTRIBUTE_FIELDS = {
    "best_component",
    "ica_best_auc",
    "pca_best_auc",
    "raw_best_auc",
    "linear_probe_auc",
    "selectivity",
    "top_words",
}
STAGES = ("model", "extract", "stability", "ica", "probe", "naming", "selectivity", "traversals",
          "report")


def test_summary_fields(demo_run):
    out, s = demo_run
    assert s["n_rows"] == 600
    assert s["model"] == "tiny-faces"
    assert s["k"] in (4, 8)
    assert "stability" in s["k_rule"]
    assert 0.0 <= s["stability_mean"] <= 1.0
    assert isinstance(s["ica_converged"], bool) and s["ica_n_iter"] >= 1
    from clipica.data.synthetic_faces import SHARED_COLUMNS

    assert list(s["attributes"]) == list(SHARED_COLUMNS)
    for name, a in s["attributes"].items():
        assert SUMMARY_ATTRIBUTE_FIELDS <= set(a), name
        assert 0 <= a["best_component"] < s["k"]
        for key in ("ica_best_auc", "pca_best_auc", "raw_best_auc"):
            assert 0.5 <= a[key] <= 1.0, (name, key)
        assert 0.0 <= a["linear_probe_auc"] <= 1.0
        assert a["selectivity"] >= 0.0
        # names above the chance level only: the test-size model may have none for an attribute
        assert isinstance(a["top_words"], list)
        assert all(isinstance(w, str) and w for w in a["top_words"])
    assert set(s["mcc"]) >= {"ica", "pca", "raw"}
    assert all(0.0 <= v <= 1.0 for v in s["mcc"].values())
    assert {"disentanglement", "completeness", "informativeness"} <= set(s["dci"])
    assert set(s["timings"]) == {*STAGES, "total"}
    assert s["timings"]["total"] == pytest.approx(sum(s["timings"][k] for k in STAGES), abs=0.05)
    assert all(cmd.startswith("clipica ") for cmd in s["commands"])


def test_summary_agrees_with_the_artifacts(demo_run):
    """The summary repeats probe.json / stability.json; it must not drift from them."""
    out, s = demo_run
    probe = json.loads((out / "probe" / "probe.json").read_text())
    for name, a in s["attributes"].items():
        p = probe["attributes"][name]
        assert a["best_component"] == p["best_component"]
        assert a["ica_best_auc"] == p["best_auc"]
        assert a["pca_best_auc"] == p["pca"]["best_auc"]
        assert a["raw_best_auc"] == p["raw"]["best_auc"]
    means = {m: np.mean([a[f"{m}_best_auc"] for a in s["attributes"].values()])
             for m in ("ica", "pca", "raw")}
    for m, v in means.items():
        assert s["mean_best_auc"][m] == pytest.approx(v)
    for g in s["groups"].values():
        want = np.mean([s["attributes"][a]["ica_best_auc"] for a in g["attributes"]])
        assert g["mean_best_auc"]["ica"] == pytest.approx(want)
    sweep = json.loads((out / "stability" / "stability.json").read_text())
    assert sweep["chosen_k"] == s["k"]
    assert sweep["k"] == [4, 8]
    import pandas as pd

    from clipica.decompositions.stability import choose_k

    table = pd.DataFrame({"k": sweep["k"], "stability_mean": sweep["stability_mean"],
                          "converged_fraction": sweep["converged_fraction"]})
    table.attrs["per_component"] = {int(k): v for k, v in sweep["per_component"].items()}
    assert (s["k"], s["k_rule"]) == choose_k(table, min_stability=sweep["threshold"])
    assert s["stability_mean"] == sweep["stability_mean"][sweep["k"].index(s["k"])]
    # the K rule never takes a K whose fits did not all converge (unless none did, said aloud)
    frac = dict(zip(sweep["k"], sweep["converged_fraction"], strict=True))
    assert frac[s["k"]] == max(frac.values())
    assert (frac[s["k"]] == 1.0) == ("NO K's fits all converged" not in s["k_rule"])
    assert s["convergence"]["stability_sweep"]["chosen_k_converged_fraction"] == frac[s["k"]]


def test_hair_is_scored_as_a_block_against_pca_and_raw(demo_run):
    """summary.json's groups.hair.block_auc repeats probe.json's categorical scores: the best ICA
    block of at most 3 components (never the Gaussian block) against the best 3 PCA components
    and the best 3 raw dimensions, on the probes' held-out rows."""
    out, s = demo_run
    probe = json.loads((out / "probe" / "probe.json").read_text())
    hair = probe["categorical"]["hair"]
    assert hair["m"] == 3 and hair["columns"] == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]
    g = s["groups"]["hair"]
    assert set(g["block_auc"]) == {"ica", "pca", "raw"} and g["block_m"] == 3
    for name, auc in g["block_auc"].items():
        score = hair["scores"][name]
        assert auc == pytest.approx(np.mean(list(score["ovr_auc"].values())))
        assert 0.5 <= auc <= 1.0 and len(score["columns"]) <= 3
        assert score["n_test"] <= probe["split"]["n_test"]
    from clipica.decompositions.ica import ICA

    gaussian = set(ICA.load(out / "ica").gaussian_block_)
    assert not gaussian & set(g["block_columns"]["ica"])


def test_convergence_is_recorded_and_a_non_converged_fit_is_in_the_headline(demo_run):
    """Every fit's convergence is in summary.json; one that did not converge is said in the
    report's headline with why (the test-size model's ICA often does not: near-Gaussian
    directions under the contrast)."""
    out, s = demo_run
    c = s["convergence"]
    assert c["ica"]["converged"] == s["ica_converged"] and c["ica"]["n_iter"] == s["ica_n_iter"]
    assert set(c["probes"]) == {"ica", "pca", "raw", "random_rotation"}
    assert c["all_converged"] == (not c["problems"])
    html = (out / "report.html").read_text()
    assert ("Not converged:" in html) == (not c["all_converged"])
    if not c["ica"]["converged"]:
        assert c["ica"]["why_not"] and c["ica"]["why_not"][0] in c["problems"][0]


def test_the_folder_continues_with_the_other_commands(demo_run, tmp_path):
    """store/ and ica/ are what `clipica extract` and `clipica ica` write."""
    out, s = demo_run
    from clipica.decompositions.ica import ICA
    from clipica.embeddings.store import EmbeddingStore

    store = EmbeddingStore.open(out / "store")
    assert store.manifest["complete"]
    assert store.image.shape[0] == s["n_rows"]
    ica = ICA.load(out / "ica")
    assert ica.components_.shape == (s["k"], store.image.shape[1])
    meta = json.loads((out / "ica" / "ica.json").read_text())
    assert meta  # written by `clipica ica`
    # a user goes on with another command on the same folder
    png = tmp_path / "c0.png"
    assert main(["intervene", str(out / "store"), "--ica", str(out / "ica"), "--component", "0",
                 "--out", str(png), "--rows", "2", "--no-decoder", "--no-text", "--quiet"]) == 0
    assert png.is_file()


def test_report_is_written_and_self_contained(demo_run):
    out, s = demo_run
    html = (out / "report.html").read_text()
    srcs = re.findall(r'<img[^>]* src="([^"]+)"', html)
    assert len(srcs) >= 5  # bars, heatmap, stability, and traversal views
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    assert "Not computed" not in html
    for name in s["attributes"]:
        assert name in html
    # the hair colours are one categorical factor, detected from the labels: the headline and
    # the cards average the binary attributes apart from it
    assert list(s["groups"]) == ["binary attributes", "hair"]
    assert s["groups"]["hair"]["attributes"] == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]
    assert f"{s['groups']['binary attributes']['mean_best_auc']['ica']:.3f}" in html
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Binary attributes (7):" in text and "Categorical factors (1)" in text
    assert "hair (Black_Hair, Blond_Hair, Brown_Hair, Gray_Hair; detected from the labels)" in text
    # traversals of the attributes the demo promises
    traversed = {t["attribute"] for t in s["traversals"]}
    assert traversed <= {"Smiling", "Eyeglasses", "Blond_Hair"} and traversed


def test_no_pole_names_a_phrase_and_its_negation_without_the_flag(demo_run):
    """On the demo store: wherever the names shown at one pole hold a phrase and its negation,
    that pair is flagged as not separated by the model, in naming.json and in the report."""
    from clipica.naming.names import negation_pairs

    out, _ = demo_run
    doc = json.loads((out / "ica" / "naming" / "naming.json").read_text())
    html = (out / "report.html").read_text()
    flagged = 0
    for comp in doc["components"]:
        for pole in ("+", "-"):
            named = comp["named"][pole]
            shown = [n["text"] for n in named["names"]]
            assert all(abs(n["score"]) > doc["chance"]["threshold"] for n in named["names"])
            pairs = {tuple(p) for p in negation_pairs(shown)}
            assert pairs <= {tuple(p) for p in named["unseparated"]}, (comp["component"], pole)
            flagged += bool(pairs)
    assert ("not separated by the model" in html) == (flagged > 0)


def test_demo_rejects_bad_sizes(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "x"), "--rows", "10"]) == 2
    assert "--rows" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "x"), "--k-grid", "1"]) == 2


@pytest.mark.slow
def test_ica_beats_pca_and_raw_on_the_binary_attributes_with_the_default_model(tmp_path, user_cache):
    """The demo's headline claim, on the default-size tiny-faces (trained once, cached).

    Not in the fast suite: the test-size model of ``tiny_faces_cache`` has not learned
    the attributes well enough for any rotation to isolate them (ICA 0.72 against PCA
    0.76 and raw 0.77 at 600 rows). Uses the user's cache (``CLIPICA_CACHE`` or the
    platform cache folder), training the default model there if it is missing.

    The claim is made for the seven binary attributes. The four hair colours are one
    categorical factor with four nearly equiprobable values: in its 3-d subspace the
    three "two colours against the other two" splits are pairwise independent, strongly
    non-Gaussian (symmetric bimodal) variables, so ICA rightly returns those splits and
    no component is one colour against the rest (best AUC ~0.84 each), while a PCA
    direction can happen to isolate one colour. The test pins that behaviour too, so a
    change in it is noticed.
    """
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick", "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    binary = ("Smiling", "Eyeglasses", "Wearing_Hat", "Bangs", "Mustache", "Male", "Pale_Skin")
    mean = {m: np.mean([s["attributes"][a][f"{m}_best_auc"] for a in binary]) for m in ("ica", "pca", "raw")}
    assert mean["ica"] > mean["pca"], mean
    assert mean["ica"] > mean["raw"], mean
    # each binary attribute lives in one component, and exclusively (the runner-up is far)
    for a in binary:
        assert s["attributes"][a]["ica_best_auc"] > 0.85, a
        assert s["attributes"][a]["ica_best_auc"] - s["attributes"][a]["runner_up_auc"] > 0.2, a
    hair = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
    assert all(0.75 < s["attributes"][a]["ica_best_auc"] < 0.92 for a in hair)
