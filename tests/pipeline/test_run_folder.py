"""A run folder under reruns with other settings, a second writer, and read-only storage
(issue 26, defects 1, 2, 7 and 12).

One small run (the test-size tiny-faces on 60 synthetic faces, K = 4, no decoder) is made once
and copied for each test.
"""

from __future__ import annotations

import errno
import json
import os
import shutil

import pytest

from clipica.cli import main

ARGS = ["run", "--model", "tiny-faces", "--data", "synthetic-faces:60", "--restarts", "2",
        "--batch-size", "30", "--traversals", "3", "--no-decoder", "--quiet"]


@pytest.fixture(scope="module")
def k4_run(tmp_path_factory, tiny_faces_cache):
    out = tmp_path_factory.mktemp("run") / "R"
    assert main([*ARGS, "--k", "4", "--out", str(out)]) == 0
    return out


def _copy(src, dst):
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _traversal_fingerprints(out) -> dict[str, str]:
    return {p.name: json.loads(p.read_text())["fingerprints"]["decomposition"]
            for p in sorted((out / "traversals").glob("*.json"))}


def test_lowering_k_between_reruns_removes_the_older_fits_traversals(k4_run, tmp_path, capsys):
    """Defect 1: K = 4 then K = 2 in the same folder. The K = 4 traversals of components 2 and
    3, which no K = 2 traversal replaces, used to block the report on every later rerun."""
    out = _copy(k4_run, tmp_path / "R")
    old = _traversal_fingerprints(out)
    assert any(int(name[len("component_"):][:2]) >= 2 for name in old)  # the case that broke
    capsys.readouterr()
    assert main([*ARGS, "--k", "2", "--out", str(out)]) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["k"] == 2
    fps = _traversal_fingerprints(out)
    assert fps and set(fps.values()) == {summary["fingerprints"]["decomposition"]}
    assert not [p.name for p in (out / "traversals").iterdir()
                if int(p.name[len("component_"):][:2]) >= 2]  # their PNGs went with them
    # and the folder stays usable: the same command again reuses everything
    assert main([*ARGS, "--k", "2", "--out", str(out)]) == 0
    assert "traversals" in json.loads((out / "summary.json").read_text())["reused"]


def test_a_second_run_on_a_folder_being_written_is_refused_naming_the_first(k4_run, tmp_path, capsys):
    """Defect 2: one writer per run folder; the second is refused in one line naming the first."""
    from clipica.embeddings._lock import WriterLock

    out = _copy(k4_run, tmp_path / "R")
    before = (out / "summary.json").read_bytes()
    first = WriterLock(out / "run.lock")  # the first run, still writing
    try:
        capsys.readouterr()
        assert main([*ARGS, "--k", "2", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"pid {os.getpid()}" in err and str(out) in err
        assert (out / "summary.json").read_bytes() == before  # nothing was refitted under it
    finally:
        first.release()
    assert main([*ARGS, "--k", "4", "--out", str(out)]) == 0  # once it is gone, the folder is free
    assert not (out / "run.lock").exists()


def test_extraction_after_overwrite_with_other_data_is_not_reported_as_reused(tmp_path, tiny_faces_cache):
    """Defect 7: `--overwrite` with another `--data` re-extracts; the log must not say reused."""
    from clipica.pipeline._log import ReuseCounter
    from clipica.pipeline.fit import extract_stage

    opts = dict(batch_size=20, num_workers=0, progress=False)
    log = ReuseCounter()
    extract_stage("tiny-faces", "synthetic-faces:20", tmp_path / "store", log=log, **opts)
    store = extract_stage("tiny-faces", "synthetic-faces:20", tmp_path / "store", log=log, **opts)
    assert log.n == 1 and store.n_rows == 20  # the same settings: reused
    store = extract_stage("tiny-faces", "synthetic-faces:24", tmp_path / "store", log=log, overwrite=True,
                          **opts)
    assert store.n_rows == 24 and log.n == 1  # re-extracted, not announced as reused


def test_a_finished_run_on_read_only_storage_reruns_without_writing(k4_run, tmp_path, monkeypatch, capsys):
    """Defect 12: every stage is reused, so no lock (store or run folder) and no write is needed.
    Read-only storage is simulated (the tests may run as root, whom chmod does not stop):
    every lock and every result write fails as a read-only file system does."""
    import clipica.embeddings
    import clipica.embeddings._lock
    import clipica.embeddings.store
    from clipica.pipeline import artifacts

    out = _copy(k4_run, tmp_path / "R")
    report = (out / "report.html").read_bytes()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(args[0]) if args else "")

    for module in (clipica.embeddings, clipica.embeddings._lock, clipica.embeddings.store):
        monkeypatch.setattr(module, "WriterLock", read_only, raising=False)
    monkeypatch.setattr(artifacts, "atomic_write_json", read_only)
    capsys.readouterr()
    assert main([*ARGS, "--k", "4", "--out", str(out)]) == 0, capsys.readouterr().err
    assert (out / "report.html").read_bytes() == report
