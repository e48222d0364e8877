"""``clipica bench extract`` on a tiny random-weight model (the real default is ViT-B-32)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from clipica.bench import extract as bench


def _args(**kw):
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    bench.add_arguments(parser)
    ns = parser.parse_args([])
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def test_jpeg_folder_is_deterministic(tmp_path):
    a = bench.write_jpeg_folder(tmp_path / "a", 3)
    b = bench.write_jpeg_folder(tmp_path / "b", 3)
    assert (a / "000002.jpg").read_bytes() == (b / "000002.jpg").read_bytes()
    img = Image.open(a / "000000.jpg")
    assert img.size == (178, 218) and img.format == "JPEG"
    assert (a / "metadata.csv").read_text().count("\n") == 4


def test_bench_reports_ratio_of_same_run_figures(model_file, tmp_path, capsys):
    args = _args(model=model_file, pretrained=None, rows=8, batch_size=4, num_workers=0, json=True,
                 out=str(tmp_path))
    assert args.repeat == 1
    assert bench.run(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] == 8 and result["batch_size"] == 4 and result["embed_dim"] == 16
    fwd, pipe = result["forward_images_per_s"], result["pipeline_images_per_s"]
    assert fwd > 0 and pipe > 0
    (rnd,) = result["rounds"]
    # the ratio is stored rounded to 4 decimals: a busy machine's 0.0104 is 0.01036 (rel 4e-3)
    assert result["ratio"] == rnd["ratio"] == pytest.approx(pipe / fwd, abs=5e-5 + 1e-9)
    assert np.mean(rnd["forward_before_after"]) == pytest.approx(fwd, rel=1e-3)
    assert json.loads((tmp_path / "bench_extract.json").read_text())["ratio"] == result["ratio"]


def test_bench_busy_core_reports_busy_over_idle(model_file, capsys):
    args = _args(model=model_file, pretrained=None, rows=8, batch_size=4, num_workers=0, json=True,
                 busy_core=True)
    assert bench.run(args) == 0
    result = json.loads(capsys.readouterr().out)
    busy = result["busy_core_slowdown"]
    (rnd,) = result["rounds"]
    assert busy["pipeline"]["idle_seconds"] == pytest.approx(rnd["pipeline_seconds"], abs=1e-3)
    for part in ("pipeline", "forward"):
        b = busy[part]
        # busy / idle of the unrounded seconds; each figure is rounded to 3 decimals in the JSON
        err = 5e-4 * (1 + b["slowdown"] + b["idle_seconds"])
        assert b["busy_seconds"] > 0 and abs(b["slowdown"] * b["idle_seconds"] - b["busy_seconds"]) <= err
        assert b["within_target"] == (b["slowdown"] <= 2.5)
    assert busy["within_target"] == (busy["pipeline"]["within_target"] and busy["forward"]["within_target"])


@pytest.mark.slow
def test_bench_memory_runs(model_file, capsys):
    args = _args(model=model_file, pretrained=None, rows=8, batch_size=4, num_workers=1, json=True,
                 memory=True, memory_rows=8)
    assert bench.run(args) == 0
    mem = json.loads(capsys.readouterr().out)["memory"]
    assert mem["rows"] == [8, 32] and all(v > 0 for v in mem["peak_rss_mb"])


def test_bench_repeat_takes_the_median(model_file, capsys):
    args = _args(model=model_file, pretrained=None, rows=4, batch_size=4, num_workers=0, json=True, repeat=3)
    assert bench.run(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["rounds"]) == 3
    assert result["ratio"] == pytest.approx(np.median([r["ratio"] for r in result["rounds"]]))
    # consecutive rounds share their bracketing forward timing
    assert result["rounds"][0]["forward_before_after"][1] == result["rounds"][1]["forward_before_after"][0]
