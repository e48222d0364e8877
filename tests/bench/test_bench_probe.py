"""``clipica bench probe`` on a small problem: runs, agrees with sklearn, reports a ratio."""

import json

from clipica.bench.probe import make_data
from clipica.cli import main


def test_make_data_prevalence_and_shapes():
    codes, labels = make_data(n=5000, k=8, attributes=6, seed=1)
    assert codes.shape == (5000, 8) and labels.shape == (5000, 6)
    prev = labels.mean(axis=0)
    assert prev.min() > 0.02 and prev.max() < 0.6


def test_bench_probe_small_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "probe",
            "--json",
            "--n",
            "3000",
            "--k",
            "6",
            "--attributes",
            "4",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["max_abs_delta_auc"] <= 0.005
    assert printed["clipica_converged"]
    assert printed["speedup"] > 0 and printed["n_test"] == 900


def test_bench_probe_rejects_tiny_sizes(capsys):
    assert main(["bench", "probe", "--n", "10"]) == 2
    assert "--n >= 100" in capsys.readouterr().err
