"""clipica compare: every method on the same rows, one JSON with format tag and seeds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clipica.errors import InputError
from clipica.probes.compare import CompareResult, compare, dictionary_stability
from tests.helpers.planted import planted

HAIR = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]


def _planted_store(n=1500, seed=0):
    X, S, _, _, classes = planted(n, seed)
    df = pd.DataFrame({c: (classes == i).astype(int) for i, c in enumerate(HAIR)})
    df["Laplace_Pos"] = (S[:, 5] > 0).astype(int)  # a binary attribute carried by one source
    df["Bernoulli"] = (S[:, 8] > 0.5).astype(int)
    df["latent_uniform"] = S[:, 6]
    return X.astype(np.float32), df


def test_dictionary_stability_is_one_for_permuted_signed_copies_and_lower_for_random():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(10, 5))
    B = -A[:, [3, 1, 4, 0, 2]] * 2.0
    assert dictionary_stability(A, B) == pytest.approx(1.0)
    assert dictionary_stability(A, rng.normal(size=(10, 5))) < 0.8


def test_compare_scores_the_planted_factor_by_its_block(tmp_path):
    X, df = _planted_store()
    res = compare(X, df, k=9, methods=["ica", "pca", "raw", "varimax"], seeds=[0, 1], quick=True,
                  fingerprints={"store": "abc"})
    assert list(res.methods) == ["ica", "pca", "raw", "varimax"]
    assert [f["columns"] for f in res.factors] == [HAIR]
    ica = res.methods["ica"]
    assert sorted(len(b) for b in ica.blocks) == [1, 1, 1, 1, 2, 3]
    hair = ica.factors["hair"]
    assert hair["from_block"] and hair["size"] == 3 and hair["accuracy"] >= 0.97
    assert res.methods["pca"].factors["hair"]["size"] == 3  # same m for the baselines
    assert ica.attribute_score["Black_Hair"] == hair["ovr_auc"]["Black_Hair"]
    assert ica.attributes["Laplace_Pos"]["best_auc"] > 0.95
    assert ica.attributes["Laplace_Pos"]["codes_to_auc_0.95"] == 1
    assert ica.r2 == pytest.approx(1.0, abs=1e-3)  # K = 9 sources span the 9-dim signal
    assert res.methods["raw"].n_components == 15 and res.methods["raw"].stability == 1.0
    assert 0.0 <= ica.stability <= 1.0 and len(ica.stability_per_seed) == 1
    assert ica.mcc_latents is not None
    d = json.loads(json.dumps(res.to_dict()))
    assert d["format"] == "clipica.compare/1" and d["fingerprints"] == {"store": "abc"}
    assert d["seeds"] == [0, 1] and d["n_rows"] == 1500 and "numpy" in d["versions"]
    back = CompareResult.from_dict(d)
    assert back.methods["ica"].attribute_score_mean == pytest.approx(ica.attribute_score_mean)
    from clipica.viz.compare import plot_compare_methods, plot_compare_scores

    plot_compare_scores(back).savefig(tmp_path / "s.png")
    plot_compare_methods(back).savefig(tmp_path / "m.png")


@pytest.mark.parametrize(
    "kwargs, match",
    [({"methods": ["ica", "nope"]}, "unknown method"), ({"seeds": [0]}, "seeds"),
     ({"k": 99}, "k must be")],
)
def test_bad_arguments(kwargs, match):
    X, df = _planted_store(300)
    with pytest.raises(InputError, match=match):
        compare(X, df, **{"k": 4, **kwargs})


def test_cli_compare_writes_json_table_and_figures(tmp_path, tiny_faces_cache):
    from clipica.cli import main

    store = tmp_path / "store"
    assert main(["extract", "--model", "tiny-faces", "--data", "synthetic-faces:300", "--out",
                 str(store), "--quiet", "--num-workers", "0"]) == 0
    out = tmp_path / "cmp"
    assert main(["compare", str(store), "--methods", "ica,pca,raw", "--k", "6", "--out", str(out),
                 "--quick", "--quiet", "--seeds", "0,1"]) == 0
    d = json.loads((out / "compare.json").read_text())
    assert d["format"] == "clipica.compare/1" and set(d["methods"]) == {"ica", "pca", "raw"}
    assert d["fingerprints"]["store"]
    assert (out / "compare.csv").exists() and (out / "compare_scores.png").stat().st_size > 0
    assert main(["compare", str(store), "--k", "6", "--out", str(out), "--quiet"]) == 2  # exists
    assert main(["compare", str(store), "--k", "6", "--out", str(tmp_path / "x"),
                 "--methods", "ica,bogus"]) == 2
    # a compare.json in RUN/compare for the same store feeds `clipica report RUN`'s section
    run = tmp_path / "run"
    (run / "compare").mkdir(parents=True)
    (run / "compare" / "compare.json").write_text((out / "compare.json").read_text())
    assert main(["ica", str(store), "-k", "6", "--out", str(run / "ica"), "--quiet"]) == 0
    assert main(["report", str(store), "--ica", str(run / "ica"), "--out", str(run),
                 "--traversals", "0", "--quiet"]) == 0
    assert "Other decompositions on the same rows" in (run / "report.html").read_text()


def test_report_renders_a_compare_section(tmp_path):
    from clipica.report import build_report

    X, df = _planted_store(600)
    res = compare(X, df, k=9, methods=["ica", "pca"], seeds=[0, 1], quick=True)
    path = build_report(tmp_path, compare=res.to_dict())
    html = path.read_text()
    assert "Other decompositions on the same rows" in html and "hair accuracy" in html
    assert "ICA blocks of dependent components" in html
