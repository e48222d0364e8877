"""``clipica bench pipeline`` end to end at a tiny size: every stage timed, the report reuses, the
probe agrees with its full computation, and the agreement check can fail."""

import copy
import json

import pytest

from clipica.bench.pipeline import agreement, run_benchmark


@pytest.mark.slow  # three probe stages, an ICA with stability and a report: ~30 s on 2 idle cores
def test_bench_pipeline_small_runs_every_stage_and_reports_agreement(tmp_path):
    out = run_benchmark(2400, 2000, shape="laplace", dim=24, k=5, attributes=4, seed=1, stability=2,
                        text_model=None, curve_rows=600, busy_core=True, workdir=tmp_path / "w",
                        progress=lambda m: None)
    st = out["stages"]
    assert set(st) == {"ica", "names", "probe", "report"} and "skipped" in st["names"]
    for name in ("ica", "probe", "report"):
        assert st[name]["wall_seconds"] > 0 and st[name]["cpu_seconds"] >= 0
    assert st["report"]["reused_every_result"] is True
    assert (tmp_path / "w" / "run" / "report.html").is_file()
    assert st["probe"]["subsampling"]["curve_rows"] == 600
    assert st["probe"]["peak_traced_bytes"] > 0
    base = out["baseline"]
    assert base["default_probe"]["subsampling"]["curves"].startswith("seeded subsample of 600")
    ext = base["full_probe_extrapolated_to_rows"]
    assert abs(ext["wall_seconds"] - base["full_probe"]["wall_seconds"] * 2400 / 2000) < 0.1
    ag = base["agreement"]
    assert set(ag["codes"]) == {"ica", "raw", "pca", "random_rotation"}
    # best-single and linear-probe AUCs are computed on every row either way
    assert ag["max_abs_delta_auc"] == 0.0 and ag["meets_targets"]
    assert set(out["checks"]) >= {"probe_seconds", "probe_peak_memory", "agreement", "busy_core_slowdown"}
    # --busy-core: the ica and probe stages again, busy / idle of the same work in the same run
    busy = out["busy_core_slowdown"]
    for name in ("ica", "probe"):
        b = busy[name]
        assert b["idle_seconds"] == round(st[name]["wall_seconds"], 3) and b["busy_seconds"] > 0
        assert abs(b["slowdown"] * b["idle_seconds"] - b["busy_seconds"]) <= 5e-4 * (1 + b["slowdown"] + b["idle_seconds"])
    assert busy["ica"]["busy_converged"] is True and busy["target_slowdown"] == 2.5
    assert (tmp_path / "w" / "ica_busy" / "ica.json").is_file()
    assert (tmp_path / "w" / "run" / "probe_busy" / "probe.json").is_file()
    json.dumps(out)  # the --json document


def test_agreement_counts_deltas_and_best_component_mismatches():
    doc = {"codes": {"ica": {"best_component": [0, 1], "best_auc": [0.9, 0.8],
                             "runner_up_auc": [0.7, 0.795], "linear_probe_auc": [0.95, 0.9],
                             "sparse_k": [1, 2], "sparse_auc": [[0.9, 0.8], [0.95, 0.9]]}}}
    assert agreement(doc, doc)["meets_targets"]
    other = copy.deepcopy(doc)
    other["codes"]["ica"]["linear_probe_auc"] = [0.95, 0.89]
    other["codes"]["ica"]["best_component"] = [2, 3]  # attribute 1's gap is 0.005: not counted
    ag = agreement(doc, other)
    assert abs(ag["max_abs_delta_auc"] - 0.01) < 1e-12
    assert ag["best_component_mismatches_where_gap_over_0.01"] == 1 and not ag["meets_targets"]


def test_bench_pipeline_realistic_ica_stage_reports_the_identifiable_part(tmp_path):
    """The default shape's ica stage: the ICA converges on its identifiable part, finds no more
    non-Gaussian components than were planted, and puts the rest in one Gaussian block. (The
    whole bench on this shape runs its 40-attribute probe twice: too slow for the test tier.)"""
    from clipica.bench.pipeline import _ica_stage
    from clipica.bench.realistic import write_realistic_store
    from clipica.pipeline import artifacts

    store = write_realistic_store(tmp_path / "store", n=4000, d=64, seed=0)
    args = {"shape": "realistic", "k": 40}
    ica, rec = _ica_stage(store.image, tmp_path, 40, 0, 2, artifacts.store_fingerprint(store), args)
    assert rec["converged"] is True and ica.converged_
    assert rec["planted_nongaussian"] == 39 and 10 <= rec["n_identifiable"] <= 39
    assert rec["gaussian_block_size"] == 40 - rec["n_identifiable"] == len(ica.gaussian_block_)
    assert rec["stability"]["gaussian_block"]["size"] == rec["gaussian_block_size"]
    assert ica.blocks_[-1] == ica.gaussian_block_
    json.dumps(rec)
