"""``clipica run`` on a real architecture (ViT-B-32, random weights) and the official CelebA layout.

The fake CelebA has the official files (``img_align_celeba/``, ``list_attr_celeba.txt``,
``list_eval_partition.txt``) with random attributes, so the numbers mean nothing; the test
is that the whole chain runs on a real model layout and writes its report and summary.
"""

from __future__ import annotations

import json

import pytest

from clipica.cli import main
from tests.helpers.fake_datasets import write_celeba

N = 20  # the official partition file puts the last 4 rows in val/test


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    root = tmp_path_factory.mktemp("celeba")
    write_celeba(root, n=N)
    assert (root / "list_eval_partition.txt").is_file()
    return root


def _run(celeba, out, *extra, model=("--model", "ViT-B-32", "--pretrained", "none")):
    return main(["run", *model, "--data", f"celeba:{celeba}",
                 "--out", str(out), "--k", "auto", "--k-grid", "2", "3", "--restarts", "2",
                 "--batch-size", "8", "--traversals", "1", "--decoder-epochs", "1", "--quiet", *extra])


@pytest.mark.real_arch
def test_run_vit_b_32_on_celeba_writes_report_and_summary(celeba, tmp_path):
    out = tmp_path / "R"
    assert _run(celeba, out) == 0
    assert (out / "report.html").is_file()
    s = json.loads((out / "summary.json").read_text())
    assert s["model"] == "ViT-B-32" and s["k"] in (2, 3)
    assert s["n_rows"] == N - 1  # row 4 is a truncated JPEG, skipped and logged
    assert len(s["attributes"]) > 0
    probe = json.loads((out / "probe" / "probe.json").read_text())
    assert probe["fingerprints"]["decomposition"] == s["fingerprints"]["decomposition"]
    assert list((out / "traversals").glob("component_*_decoded.png"))


def test_run_on_the_train_split_only_holds_out_rows_itself(celeba, tmp_path, tiny_faces_cache):
    """`--split train`: every row is `train`; the probe holds out a seeded part (never an error).

    The split logic does not depend on the model, so this one runs the built-in tiny-faces
    (ViT-B-32's forward and text passes are most of the test above's time).
    """
    out = tmp_path / "R"
    assert _run(celeba, out, "--split", "train", "--limit", "12", model=("--model", "tiny-faces")) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["n_rows"] == 11  # the first 12 train rows, less the truncated JPEG
    assert (out / "report.html").is_file()
