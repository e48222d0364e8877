"""``clipica run``: resume after ``kill -9`` in every stage, reuse, and stale results refused.

Small on purpose: the test-size tiny-faces on 240 synthetic faces, K from {2, 3}, two
bootstrap fits per K, one traversal without the decoder.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from clipica.cli import main

ROWS = 240
ARGS = ["run", "--model", "tiny-faces", "--data", f"synthetic-faces:{ROWS}", "--k-grid", "2", "3",
        "--restarts", "2", "--batch-size", "40", "--traversals", "1", "--no-decoder"]
# The test-size tiny-faces on 240 rows: FastICA does not settle at K = 2 or 3 (its stationarity
# oscillates between ~0.003 and ~0.06 over the last 50 iterations and ends ~0.03-0.05 against
# tol 1e-4; on a 3000-row store still ~0.01 after 1000 iterations). The run records that in
# summary.json "convergence" (with why) and first in the report's headline, which the tests
# check; the solver's warning is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:clipica FastICA did not converge")

#: summary fields that legitimately differ between two runs of the same command
VOLATILE = ("timings", "reused", "commands")


def _cli(out, env=None):
    """The command as a user runs it, in a fresh process (so that kill -9 is real)."""
    e = dict(os.environ)
    e.pop("CLIPICA_TEST_KILL_AT", None)
    e.update(env or {})
    cmd = [sys.executable, "-m", "clipica", *ARGS, "--out", str(out)]
    return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=900)


def _stable(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in VOLATILE}


def _assert_same(a, b, path="summary"):
    """Equal, floats to 1e-5 relative: the DCI lasso is not bit-reproducible across processes
    (the AUCs, K, components and fingerprints are compared exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), (path, sorted(set(a) ^ set(b)))
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        tol = 0.0 if ".attributes." in path or path.endswith("mean_best_auc") else 1e-5
        assert a == pytest.approx(b, rel=tol, abs=tol), path
    else:
        assert a == b, path


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, tiny_faces_cache):
    """An uninterrupted run (in this process: the same code, without a second import)."""
    out = tmp_path_factory.mktemp("run") / "R"
    assert main([*ARGS, "--out", str(out), "--quiet"]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_run_writes_the_run_folder(clean_run):
    out, s = clean_run
    for rel in ("store/manifest.json", "stability/stability.json", "stability/stability.png",
                "ica/ica.json", "ica/naming/naming.json", "probe/probe.json", "probe/heatmap.png",
                "probe/selectivity.json", "report.html", "summary.json"):
        assert (out / rel).is_file(), rel
    assert s["format"] == "clipica.summary/1"
    assert set(s["fingerprints"]) == {"store", "decomposition"}
    assert s["n_rows"] == ROWS and s["k"] in (2, 3)
    stab = json.loads((out / "stability" / "stability.json").read_text())
    assert stab["format"] == "clipica.stability/1" and stab["chosen_k"] == s["k"]
    probe = json.loads((out / "probe" / "probe.json").read_text())
    assert probe["fingerprints"]["decomposition"] == s["fingerprints"]["decomposition"]
    assert len(list((out / "traversals").glob("component_*.json"))) == 1
    assert set(s["timings"]) == {"model", "extract", "stability", "ica", "probe", "naming",
                                 "selectivity", "traversals", "report", "total"}
    # converged, or said why not: in the summary and first in the report's headline
    c = s["convergence"]
    assert c["ica"]["converged"] == s["ica_converged"]
    assert c["all_converged"] == (not c["problems"])
    if not c["ica"]["converged"]:
        assert c["ica"]["why_not"] and "stationarity" in c["problems"][0]
    html = (out / "report.html").read_text()
    assert ("Not converged:" in html) == (not c["all_converged"])


def _kill_during_extraction(out):
    """Start the command and ``kill -9`` it once the extraction has committed a batch."""
    env = dict(os.environ, CLIPICA_TEST_COMMIT_PAUSE="0.3")
    env.pop("CLIPICA_TEST_KILL_AT", None)
    proc = subprocess.Popen([sys.executable, "-m", "clipica", *ARGS, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = out / "store" / "progress.json"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(progress.read_text()).get("n_rows", 0) > 0:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    assert proc.poll() is None, "the extraction finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not json.loads((out / "store" / "manifest.json").read_text()).get("complete")


def _kill_at(out, stage, reused):
    proc = _cli(out, {"CLIPICA_TEST_KILL_AT": stage})
    assert proc.returncode == -signal.SIGKILL, (stage, proc.stderr[-2000:])
    for name in reused:
        assert f"   {name} reused" in proc.stderr, (stage, name, proc.stderr[-2000:])
    assert f"   {stage} reused" not in proc.stderr
    assert not (out / "summary.json").exists()


def _finish(out, reference, reused):
    proc = _cli(out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reused"] == reused
    for name in reused:
        assert f"   {name} reused" in proc.stderr
    _assert_same(_stable(summary), _stable(reference))


@pytest.mark.subprocess
def test_kill_9_during_extraction_and_probe_then_rerun_gives_the_same_summary(clean_run, tmp_path):
    _, reference = clean_run
    out = tmp_path / "R"
    _kill_during_extraction(out)
    _kill_at(out, "probe", ["model"])  # the extraction resumes; the sweep and the fit run
    _finish(out, reference, ["model", "extract", "stability", "ica"])


@pytest.mark.slow
@pytest.mark.subprocess
def test_kill_9_in_every_stage_then_rerun_gives_the_same_summary(clean_run, tmp_path):
    """Extraction (mid-batch), then the sweep, the fit, the probe and the traversals each
    killed as they start; every rerun reuses exactly the stages finished before it."""
    _, reference = clean_run
    out = tmp_path / "R"
    _kill_during_extraction(out)
    _kill_at(out, "stability", ["model"])
    _kill_at(out, "ica", ["model", "extract"])
    _kill_at(out, "probe", ["model", "extract", "stability"])
    _kill_at(out, "traversals", ["model", "extract", "stability", "ica"])
    _finish(out, reference, ["model", "extract", "stability", "ica", "probe", "naming", "selectivity"])


# ------------------------------------------------------------------ stale results


def _copy_run(src, dst):
    import shutil

    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_refit_with_another_k_then_report_name_probe_never_mix(clean_run, tmp_path, capsys):
    src, s = clean_run
    out = _copy_run(src, tmp_path / "R")
    store, ica = str(out / "store"), str(out / "ica")
    other_k = 3 if s["k"] == 2 else 2
    assert main(["ica", store, "-k", str(other_k), "--out", ica, "--overwrite", "--quiet"]) == 0
    assert not (out / "ica" / "naming").exists()  # refit replaces the folder, stale names included
    from clipica.decompositions.ica import ICA
    from clipica.pipeline import artifacts

    new_fp = artifacts.decomposition_fingerprint(ICA.load(ica))
    assert new_fp != s["fingerprints"]["decomposition"]
    capsys.readouterr()

    # report without computing: the probe in the folder is the old fit's -> one line, exit 2
    assert main(["report", store, "--ica", ica, "--out", str(out), "--no-compute", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another decomposition" in err and "probe.json" in err

    # report that may compute: recomputes the probe and the names for the new fit, saying
    # what it is doing at every step (a fresh folder computes for minutes)
    assert main(["report", store, "--ica", ica, "--out", str(out), "--traversals", "0"]) == 0
    err = capsys.readouterr().err
    for line in ("== clipica report [1/4] probe", "disentanglement metrics", "[2/4] naming",
                 "loading the text encoder of", "[3/4] traversals", "[4/4] report"):
        assert line in err, line
    probe = json.loads((out / "probe" / "probe.json").read_text())
    naming = json.loads((out / "ica" / "naming" / "naming.json").read_text())
    assert probe["fingerprints"]["decomposition"] == new_fp
    assert naming["fingerprints"]["decomposition"] == new_fp
    assert len(naming["components"]) == other_k
    html = (out / "report.html").read_text()
    assert f'<div class="v">{other_k}</div><div class="k">components K</div>' in html
    # the traversal left from the old fit is not shown beside the new fit's tables
    assert "Not computed: traversals" in html

    # name and probe recompute for the new fit
    assert main(["name", store, "--ica", ica]) == 0
    assert json.loads((out / "ica" / "naming" / "naming.json").read_text())["fingerprints"][
        "decomposition"] == new_fp
    assert main(["probe", store, "--ica", ica, "--out", str(out / "probe"), "--overwrite"]) == 0
    assert json.loads((out / "probe" / "probe.json").read_text())["inputs"]["n_components"] == other_k


def test_rerun_after_a_refit_by_hand_refits_and_keeps_what_still_matches(clean_run, tmp_path):
    """`clipica run` into a folder whose ICA was refitted by hand with another K: the fit
    stage sees other settings and refits (the names went with the replaced folder). The
    refit is the same ICA as before, so the probe, selectivity and traversals computed for
    that content are valid again and reused; the summary is the uninterrupted run's."""
    src, s = clean_run
    out = _copy_run(src, tmp_path / "R")
    other_k = 3 if s["k"] == 2 else 2
    assert main(["ica", str(out / "store"), "-k", str(other_k), "--out", str(out / "ica"),
                 "--overwrite", "--quiet"]) == 0
    assert main([*ARGS, "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reused"][:3] == ["model", "extract", "stability"]
    assert "ica" not in summary["reused"] and "naming" not in summary["reused"]
    assert "probe" in summary["reused"]
    _assert_same(_stable(summary), _stable(s))


def test_a_crafted_intervene_json_embeds_nothing_from_outside(clean_run, tmp_path, capsys):
    src, _ = clean_run
    out = _copy_run(src, tmp_path / "R")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\n" + b"SECRET-BYTES-" * 40)
    (out / "traversals" / "evil_link.png").symlink_to(secret)
    [path] = list((out / "traversals").glob("component_*.json"))
    doc = json.loads(path.read_text())
    doc["figure_png"] = str(secret)                 # absolute
    doc["decoded_png"] = "../../secret.png"         # ..
    doc["retrieval_png"] = "evil_link.png"          # a symlink leaving the folder
    path.write_text(json.dumps(doc))
    assert main(["report", str(out / "store"), "--ica", str(out / "ica"), "--out", str(out),
                 "--no-compute", "--quiet"]) == 0
    html = (out / "report.html").read_text()
    needle = base64.b64encode(secret.read_bytes())[:24].decode()
    assert needle not in html
    assert "Component" in html  # the traversal's own text is still shown


def test_two_reports_into_one_folder_with_different_decompositions(clean_run, tmp_path, capsys):
    src, _ = clean_run
    store = str(src / "store")
    a, b, rep = tmp_path / "a", tmp_path / "b", tmp_path / "report"
    assert main(["ica", store, "-k", "2", "--out", str(a), "--quiet"]) == 0
    assert main(["ica", store, "-k", "3", "--out", str(b), "--quiet", "--seed", "1"]) == 0
    for ica in (a, b):
        assert main(["report", store, "--ica", str(ica), "--out", str(rep), "--traversals", "0",
                     "--quiet"]) == 0
    from clipica.decompositions.ica import ICA
    from clipica.pipeline import artifacts

    probe = json.loads((rep / "probe" / "probe.json").read_text())
    assert probe["fingerprints"]["decomposition"] == artifacts.decomposition_fingerprint(ICA.load(b))
    assert probe["inputs"]["n_components"] == 3
    html = (rep / "report.html").read_text()
    assert '<div class="v">3</div><div class="k">components K</div>' in html
    assert str(b) in html and str(a) not in html


def test_k_auto_reads_the_sweep_of_clipica_stability(clean_run, tmp_path, capsys):
    src, s = clean_run
    store = str(src / "store")
    sweep = tmp_path / "sweep"
    assert main(["stability", store, "--k-grid", "2", "3", "--restarts", "2", "--out", str(sweep),
                 "--quiet"]) == 0
    doc = json.loads((sweep / "stability.json").read_text())
    assert (sweep / "stability.png").is_file()
    assert doc["chosen_k"] == s["k"]  # the same sweep as the run's
    assert main(["ica", store, "-k", "auto", "--sweep", str(sweep), "--out", str(tmp_path / "ica"),
                 "--quiet"]) == 0
    assert json.loads((tmp_path / "ica" / "ica.json").read_text())["n_components"] == s["k"]
    capsys.readouterr()
    # no sweep: one line saying what to run
    assert main(["ica", store, "-k", "auto", "--sweep", str(tmp_path / "none"),
                 "--out", str(tmp_path / "ica2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "clipica stability" in err


def test_report_reuses_every_valid_result_and_computes_nothing(clean_run, tmp_path, monkeypatch):
    """`clipica report` on a finished run folder, and into another folder given the paths of
    the results: nothing is recomputed (the probe, names and traversals are reused)."""
    src, _ = clean_run
    out = _copy_run(src, tmp_path / "R")
    store, ica = str(out / "store"), str(out / "ica")
    from clipica.pipeline import analyses

    def refuse(*a, **k):
        raise AssertionError("recomputed a result that was valid")

    for name in ("compute_probe", "attribute_selectivity"):
        monkeypatch.setattr(analyses, name, refuse)
    monkeypatch.setattr("clipica.naming.names.name_components", refuse)
    monkeypatch.setattr("clipica.intervene.run_intervention", refuse)
    assert main(["report", store, "--ica", ica, "--out", str(out), "--quiet"]) == 0
    html = (out / "report.html").read_text()
    assert "Not computed" not in html.replace("Not computed: traversals", "")
    other = tmp_path / "elsewhere"
    assert main(["report", store, "--ica", ica, "--out", str(other), "--quiet",
                 "--probe", str(out / "probe" / "probe.json"),
                 "--traversals-dir", str(out / "traversals")]) == 0
    assert not (other / "probe").exists() and not (other / "traversals").exists()
    assert "Not computed: traversals" not in (other / "report.html").read_text()


def test_compare_stage_runs_once_then_is_reused_and_feeds_the_report(clean_run, tmp_path, capsys):
    import shutil

    src, s = clean_run
    out = tmp_path / "R"
    shutil.copytree(src, out)
    argv = [*ARGS, "--out", str(out), "--compare", "ica,pca", "--compare-quick"]
    assert main(argv) == 0
    doc = json.loads((out / "compare" / "compare.json").read_text())
    assert doc["format"] == "clipica.compare/1" and doc["k"] == s["k"] and list(doc["methods"]) == ["ica", "pca"]
    assert doc["fingerprints"]["store"] == s["fingerprints"]["store"] and doc["fingerprints"]["params"]
    assert (out / "compare" / "compare_scores.png").is_file()
    assert "Other decompositions on the same rows" in (out / "report.html").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert any(c.startswith("clipica compare ") and "--quick" in c for c in summary["commands"])
    assert "compare" in summary["timings"] and "compare" not in summary["reused"]
    assert "ica" in summary["reused"]  # the earlier stages were not recomputed
    # the same command again: compare reused; other methods: recomputed
    assert main(argv) == 0
    assert "compare" in json.loads((out / "summary.json").read_text())["reused"]
    assert main([*ARGS, "--out", str(out), "--compare", "pca", "--compare-quick", "--quiet"]) == 0
    assert list(json.loads((out / "compare" / "compare.json").read_text())["methods"]) == ["pca"]
    assert main([*ARGS, "--out", str(out), "--compare", "ica,bogus"]) == 2
    assert "bogus" in capsys.readouterr().err
