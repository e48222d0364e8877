"""tools/docs_tables.py: the result tables of README.md and docs/ regenerated from the JSON the
commands write (``make docs-tables``)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.helpers import REPO


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("docs_tables", REPO / "tools" / "docs_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _summary(hair_block=None):
    attrs = {
        "Smiling": {"best_component": 3, "pole": "+", "ica_best_auc": 0.99, "pca_best_auc": 0.9,
                    "raw_best_auc": 0.95, "runner_up_auc": 0.52, "linear_probe_auc": 1.0,
                    "selectivity": 3.2, "top_words": ["smiling person", "grin"]},
        "Black_Hair": {"best_component": 1, "pole": "-", "ica_best_auc": 0.84, "pca_best_auc": 0.92,
                       "raw_best_auc": 0.88, "runner_up_auc": 0.83, "linear_probe_auc": 1.0,
                       "selectivity": 0.25, "top_words": []},
    }
    groups = {"binary attributes": {"attributes": ["Smiling"], "mean_best_auc": {"ica": 0.99, "pca": 0.9, "raw": 0.95}},
              "hair": {"attributes": ["Black_Hair"], "categorical": True,
                       "mean_best_auc": {"ica": 0.84, "pca": 0.92, "raw": 0.88}}}
    if hair_block:
        groups["hair"].update(block_auc=hair_block, block_m=3)
    return {"n_rows": 3000, "model": "tiny-faces", "k": 8, "k_rule": "stability", "stability_mean": 0.97,
            "ica_converged": False, "ica_n_iter": 200, "attributes": attrs, "groups": groups,
            "mcc": {"ica": 0.08, "pca": 0.07}, "timings": {"extract": 10.0, "probe": 2.5, "total": 12.5}}


def test_demo_table_has_every_attribute_the_winner_in_bold_and_the_block_row(tables):
    text = tables.demo_table(_summary(hair_block={"ica": 1.0, "pca": 0.97, "raw": 0.9}))
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[2].startswith("| Smiling | 3+ | **0.990** | 0.900 | 0.950 | 0.520 | 1.000 | 3.20 | smiling person, grin |")
    assert rows[3].startswith("| Black_Hair | 1- | 0.840 | **0.920** | 0.880 |")
    assert ("| hair as one factor: best ICA block of ≤ 3 components against the best 3 PCA / raw codes "
            "(mean one-vs-rest AUC) | | **1.000** | 0.970 | 0.900 |") in text
    assert "- hair (categorical, 1 values, mean one-vs-rest AUC): best ICA block" in text  # the demo's claims
    assert "mean, hair (1 columns of one categorical factor)" in text
    assert "**did not converge**" in text  # a fit that did not converge says so
    assert "extract 10.0, probe 2.5; total 12.5" in text
    assert "block AUC" not in tables.demo_table(_summary())


def test_regenerate_rewrites_a_marked_table_and_leaves_one_without_its_json(tables, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "summary.json").write_text(json.dumps(_summary()))
    page = ("# t\n\n<!-- table:demo (runs/summary.json) -->\nold\n<!-- /table:demo -->\n\n"
            "<!-- table:compare (runs/missing.json) -->\nkept\n<!-- /table:compare -->\nend\n")
    (tmp_path / "README.md").write_text(page)
    said = []
    assert tables.regenerate(tmp_path, check=True, say=said.append) == 1
    assert (tmp_path / "README.md").read_text() == page  # --check writes nothing
    assert tables.regenerate(tmp_path, say=said.append) == 1
    new = (tmp_path / "README.md").read_text()
    assert "old" not in new and "| Smiling | 3+ |" in new
    assert "kept" in new and new.endswith("<!-- /table:compare -->\nend\n")
    assert any("runs/missing.json not found" in s for s in said)
    assert tables.regenerate(tmp_path, check=True, say=said.append) == 0  # now up to date


def test_every_table_in_the_repository_names_a_renderer(tables):
    found = []
    for page in tables._pages(REPO):
        for m in tables.MARKER.finditer(page.read_text(encoding="utf-8")):
            found.append((page.name, m["name"]))
            assert m["name"] in tables.RENDER, (page.name, m["name"])
            assert m["src"].endswith(".json"), (page.name, m["src"])
    assert ("README.md", "demo") in found
