"""The HTML report: self-contained, shows what it was given, says what is missing."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import numpy as np
import pytest

from clipica.report import build_report, folded_auc, naming_poles, probe_attributes, sweep_columns
from clipica.viz.report_figures import plot_auc_comparison

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.links, self.scripts, self.tables, self.open = [], [], [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))
        elif tag == "link":
            self.links.append(attrs)
        elif tag == "script":
            self.scripts.append(attrs)
        elif tag == "table":
            self.tables += 1
        if tag in ("table", "tr", "figure", "main", "pre"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in ("table", "tr", "figure", "main", "pre"):
            assert self.open and self.open[-1] == tag, f"unbalanced </{tag}>"
            self.open.pop()


def _planted_probe(winner_fails: str = "Blond_Hair"):
    attrs = {}
    for i, name in enumerate(["Smiling", "Eyeglasses", "Male", "Blond_Hair"]):
        best = 0.97 if name != "Male" else 0.04  # Male on the negative pole: folds to 0.96
        pca = 0.99 if name == winner_fails else 0.81
        attrs[name] = {
            "best_component": i,
            "best_auc": best,
            "runner_up_auc": 0.61,
            "linear_probe_auc": 0.995,
            "pca": {"best_auc": pca},
            "raw": {"best_auc": 0.77},
            "random_rotation": {"best_auc": 0.70},
        }
    return {"attributes": attrs, "mcc": {"ica": 0.83, "pca": 0.41, "raw": 0.37}}


def _tiny_figure(seed=0):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1.5))
    fig.add_subplot(111).imshow(np.random.default_rng(seed).random((4, 6)))
    return fig


def test_folded_auc():
    assert folded_auc(0.9) == pytest.approx(0.9)
    assert folded_auc(0.1) == pytest.approx(0.9)
    assert folded_auc(None) is None
    assert folded_auc(float("nan")) is None


def test_probe_attributes_reads_nested_flat_and_grouped_baselines():
    nested = {"A": {"best_component": 3, "best_auc": 0.2, "pca": {"best_auc": 0.7}}}
    flat = {"A": {"best_component": 3, "best_auc": 0.2, "pca_best_auc": 0.7}}
    grouped = {"attributes": {"A": {"best_component": 3, "best_auc": 0.2,
                                    "baselines": {"pca": {"best_auc": 0.7}}}}}
    for probe in (nested, flat, grouped):
        row = probe_attributes(probe)["A"]
        assert row["ica"] == pytest.approx(0.8)
        assert row["pole"] == "-"
        assert row["pca"] == pytest.approx(0.7)
        assert row["raw"] is None


def test_naming_poles_accepts_pairs_and_dicts():
    a = naming_poles({"components": [{"component": 2, "positive": [["smiling", 0.4]],
                                      "negative": [{"word": "frowning", "score": 0.3}]}]})
    assert a == {2: {"positive": [("smiling", 0.4)], "negative": [("frowning", 0.3)]}}


def test_report_is_self_contained_and_shows_the_numbers(tmp_path):
    naming = {"components": [{"component": i, "positive": [[f"word{i}", 0.5]],
                              "negative": [[f"anti{i}", 0.4]]} for i in range(4)]}
    sweep = {"k": [4, 8, 16], "stability_mean": [0.99, 0.9, 0.6],
             "explained_variance": [0.5, 0.7, 0.9], "chosen_k": 8, "rule": "the rule"}
    path = build_report(
        tmp_path,
        probe=_planted_probe(),
        heatmap=_tiny_figure(1),
        naming=naming,
        interventions=[{"component": 0, "attribute": "Smiling", "selectivity": 4.25,
                        "alphas": [-3, 0, 3], "decoded_png": _tiny_figure(2)}],
        stability=sweep,
        summary={"n_rows": 1234, "model": "tiny-faces", "k": 8,
                 "timings": {"extract": 12.5}},
        provenance={"data": "synthetic-faces:1234", "commands": ["clipica demo --out X"]},
    )
    assert path == tmp_path / "report.html"
    text = path.read_text()
    parser = _Collect()
    parser.feed(text)
    assert parser.open == []
    # self-contained: every image inline, nothing fetched
    assert len(parser.imgs) == 4  # AUC bars, heatmap, traversal, stability sweep
    for src in parser.imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    assert not parser.links and not parser.scripts
    assert "http://" not in text and "https://" not in text
    # numbers: folded AUC of the negative pole, baselines, means, names, selectivity
    assert "0.960" in text and "2-" in text
    assert "0.810" in text and "0.770" in text and "0.700" in text
    mean_ica = np.mean([0.97, 0.97, 0.96, 0.97])
    assert f"{mean_ica:.3f}" in text
    assert "word0" in text and "anti3" in text
    assert "4.25" in text
    assert "1234" in text and "tiny-faces" in text and "clipica demo --out X" in text
    assert "0.830" in text  # MCC of ICA
    # where ICA does not beat a baseline, the report says so by name
    assert "here: <b>Blond_Hair</b>" in text
    assert "Not computed" not in text


def test_missing_sections_are_stated(tmp_path):
    text = build_report(tmp_path, probe=None).read_text()
    for what in ("attribute probes", "component names", "traversals", "stability sweep"):
        assert f"Not computed: {what}" in text


def test_sweep_columns_keep_only_per_k_lists():
    cols = sweep_columns({"k": [2, 4], "stability_mean": [1.0, 0.5], "chosen_k": 2,
                          "rule": "r", "per_component": {"2": [1, 1]}})
    assert cols == {"k": [2, 4], "stability_mean": [1.0, 0.5]}


def test_stability_section_lists_every_k(tmp_path):
    sweep = {"k": [4, 8, 16], "stability_mean": [0.991, 0.873, 0.612], "chosen_k": 8,
             "rule": "largest K with mean component stability >= 0.8"}
    text = build_report(tmp_path, stability=sweep).read_text()
    assert "Chosen K = 8: largest K with mean component stability &gt;= 0.8" in text
    for v in ("0.991", "0.873", "0.612"):
        assert v in text


def test_auc_comparison_bars():
    rows = probe_attributes(_planted_probe())
    fig = plot_auc_comparison(rows)
    bars = [p.get_height() for p in fig.axes[0].patches]
    assert len(bars) == 3 * 4  # ica, pca, raw for 4 attributes
    assert bars[:4] == pytest.approx([0.97, 0.97, 0.96, 0.97])


def test_report_cli_errors_are_one_line(tmp_path, capsys):
    from clipica.cli import main

    assert main(["report", str(tmp_path / "no-store"), "--ica", str(tmp_path / "no-ica"),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "not an embedding store" in err and "Traceback" not in err
    assert main(["report", str(tmp_path), "--ica", str(tmp_path), "--out", str(tmp_path),
                 "--traversals", "-1"]) == 2
    assert "--traversals" in capsys.readouterr().err


def test_non_converged_ica_is_flagged(tmp_path):
    text = build_report(tmp_path, probe=_planted_probe(),
                        summary={"ica_converged": False, "ica_n_iter": 200}).read_text()
    assert "Not converged:" in text and "200 iterations" in text
    text = build_report(tmp_path, probe=_planted_probe(),
                        summary={"ica_converged": True, "ica_n_iter": 12}).read_text()
    assert "did not converge" not in text


def test_the_gaussian_block_is_shown_as_one_unidentifiable_block(tmp_path):
    text = build_report(tmp_path, probe=_planted_probe(),
                        summary={"ica_converged": True, "k": 8, "ica_gaussian_block": [5, 6, 7]}).read_text()
    assert "Components 5–7 (3 of 8) are one unidentifiable Gaussian block" in text
    text = build_report(tmp_path, probe=_planted_probe(), summary={"ica_converged": True}).read_text()
    assert "unidentifiable" not in text


def test_block_names_are_shown_as_one_unit(tmp_path):
    """naming.json's blocks (a categorical factor's components) get their own table; singletons do not."""
    naming = {"components": [{"component": i, "positive": [[f"word{i}", 3.5]], "negative": []}
                             for i in range(4)],
              "blocks": [{"block": [1, 3], "top": [{"text": "with black hair", "norm": 4.2},
                                                   {"text": "with blond hair", "norm": 3.9}]},
                         {"block": [2], "top": [{"text": "lonely", "norm": 9.0}]}]}
    text = build_report(tmp_path, probe=_planted_probe(), naming=naming).read_text()
    assert "Blocks of dependent components" in text
    assert "<td>1, 3</td>" in text and "black hair" in text and "4.20" in text
    assert "lonely" not in text
    plain = build_report(tmp_path / "b", probe=_planted_probe(),
                         naming={k: v for k, v in naming.items() if k != "blocks"}).read_text()
    assert "Blocks of dependent components" not in plain


def test_gaussian_components_are_flagged_instead_of_named(tmp_path):
    """naming.json's ``unidentifiable`` (the ICA's Gaussian block): flagged in the names table, no words."""
    naming = {"components": [{"component": i, "positive": [[f"word{i}", 3.5]], "negative": []} for i in range(4)],
              "unidentifiable": [2, 3]}
    text = build_report(tmp_path, probe=_planted_probe(), naming=naming).read_text()
    assert text.count("indistinguishable from Gaussian") == 2
    assert "word0" in text and "word1" in text and "word2" not in text and "word3" not in text
    plain = build_report(tmp_path / "b", probe=_planted_probe(),
                         naming={"components": naming["components"]}).read_text()
    assert "indistinguishable from Gaussian" not in plain and "word3" in plain
