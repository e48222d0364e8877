"""``clipica run --layer``: the whole method on another layer of the towers (issue 27 item 3's
extraction option, through the one command). Outside the joint image-text space the naming
stage is skipped with its reason, and everything else runs and reruns as usual."""

from __future__ import annotations

import json

from clipica.cli import main

ARGS = ["run", "--model", "tiny-faces", "--data", "synthetic-faces:60", "--restarts", "2", "--k", "4",
        "--batch-size", "30", "--traversals", "2", "--no-decoder"]


def test_run_at_pre_projection_skips_naming_and_reruns_reusing_every_stage(tmp_path, tiny_faces_cache, capsys):
    out = tmp_path / "R"
    assert main([*ARGS, "--layer", "pre-projection", "--out", str(out)]) == 0
    first = capsys.readouterr()
    manifest = json.loads((out / "store" / "manifest.json").read_text())
    assert manifest["layer"] == "pre-projection"
    assert "naming skipped: the store is read at --layer pre-projection" in first.out + first.err
    assert not (out / "ica" / "naming" / "naming.json").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["layer"] == "pre-projection"
    assert summary["attributes"] and all(v["top_words"] == [] for v in summary["attributes"].values())
    assert "naming" not in summary["timings"] and "probe" in summary["timings"]
    assert (out / "report.html").is_file()
    # a rerun of the same command reuses every stage it ran
    assert main([*ARGS, "--layer", "pre-projection", "--out", str(out), "--quiet"]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert set(again["reused"]) >= {"extract", "ica", "probe", "selectivity", "traversals"}


def test_run_with_a_layer_the_model_does_not_have_is_one_line_and_exit_2(tmp_path, tiny_faces_cache, capsys):
    assert main([*ARGS, "--layer", "block:99", "--out", str(tmp_path / "R"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "block:99" in err[0]
