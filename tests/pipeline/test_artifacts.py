"""The run folder: typed results with fingerprints, stale refusal, paths kept inside."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from clipica.errors import ArtifactError, StaleArtifactError, UnsafePathError
from clipica.pipeline import artifacts

# ------------------------------------------------------------------ paths


def test_resolve_inside_accepts_a_file_below_the_root(tmp_path):
    (tmp_path / "a").mkdir()
    assert artifacts.resolve_inside(tmp_path, "a/b.png") == (tmp_path / "a" / "b.png").resolve()


@pytest.mark.parametrize("name", ["/etc/passwd", "../secret.png", "a/../../secret.png", "~/x.png"])
def test_resolve_inside_refuses_paths_that_leave(tmp_path, name):
    with pytest.raises(UnsafePathError):
        artifacts.resolve_inside(tmp_path / "run", name)


def test_resolve_inside_refuses_a_symlink_that_leaves(tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"\x89PNG secret")
    run = tmp_path / "run"
    run.mkdir()
    os.symlink(outside, run / "link.png")
    with pytest.raises(UnsafePathError, match="outside"):
        artifacts.resolve_inside(run, "link.png")
    os.symlink(tmp_path, run / "up")
    with pytest.raises(UnsafePathError):
        artifacts.resolve_inside(run, "up/outside.png")


def test_run_folder_layout(tmp_path):
    rf = artifacts.RunFolder(tmp_path)
    assert rf.store == tmp_path / "store"
    assert rf.stability_json == tmp_path / "stability" / "stability.json"
    assert rf.naming_json == tmp_path / "ica" / "naming" / "naming.json"
    assert rf.decoder == tmp_path / "ica" / "decoder"
    assert rf.probe_json == tmp_path / "probe" / "probe.json"
    assert (rf.report, rf.summary) == (tmp_path / "report.html", tmp_path / "summary.json")


# ------------------------------------------------------------------ typed results


def test_save_then_load_round_trips_with_tag_and_fingerprints(tmp_path):
    fps = {"store": "s1", "decomposition": "d1"}
    path = artifacts.save_result(tmp_path / "probe.json", {"attributes": {"a": 1.5}, "format": "x"},
                                 kind="probe", fingerprints=fps)
    doc = json.loads(path.read_text())
    assert doc["format"] == "clipica.probe/1" and doc["fingerprints"] == fps
    back = artifacts.load_result(path, "probe", {"store": "s1", "decomposition": "d1"})
    assert back["attributes"] == {"a": 1.5}
    assert artifacts.read_valid(path, "probe", fps)["attributes"] == {"a": 1.5}


def test_a_result_from_another_decomposition_is_refused_in_one_line(tmp_path):
    path = artifacts.save_result(tmp_path / "naming.json", {"components": []}, kind="naming",
                                 fingerprints={"store": "s1", "decomposition": "k4"})
    with pytest.raises(StaleArtifactError) as info:
        artifacts.load_result(path, "naming", {"store": "s1", "decomposition": "k8"})
    assert "\n" not in str(info.value) and "decomposition" in str(info.value)
    assert artifacts.read_valid(path, "naming", {"decomposition": "k8"}) is None
    # an input the caller does not know is not checked
    assert artifacts.read_valid(path, "naming", {"store": "s1", "decomposition": None}) is not None


def test_wrong_kind_untagged_and_broken_files_are_refused(tmp_path):
    p = artifacts.save_result(tmp_path / "x.json", {}, kind="probe", fingerprints={})
    with pytest.raises(ArtifactError, match="not a"):
        artifacts.load_result(p, "naming")
    (tmp_path / "old.json").write_text(json.dumps({"attributes": {}}))
    with pytest.raises(ArtifactError, match="no format tag"):
        artifacts.load_result(tmp_path / "old.json", "probe")
    (tmp_path / "bad.json").write_text("{not json")
    assert artifacts.read_valid(tmp_path / "bad.json", "probe") is None
    assert artifacts.read_valid(tmp_path / "missing.json", "probe") is None


# ------------------------------------------------------------------ fingerprints


def _fake_store(path, image, key):
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.json").write_text(json.dumps({
        "key": key, "counts": {"rows": len(image)}, "embed_dim": image.shape[1], "complete": True,
        "created_utc": str(np.random.default_rng().random())}))
    (path / "image.f32").write_bytes(np.ascontiguousarray(image, dtype=np.float32).tobytes())


def test_store_fingerprint_follows_content_not_timestamps(tmp_path):
    X = np.random.default_rng(0).normal(size=(50, 8))
    _fake_store(tmp_path / "a", X, {"model": "m"})
    _fake_store(tmp_path / "b", X, {"model": "m"})  # same extraction, another time stamp
    fa, fb = artifacts.store_fingerprint(tmp_path / "a"), artifacts.store_fingerprint(tmp_path / "b")
    assert fa == fb
    X2 = X.copy()
    X2[-1, -1] += 1.0  # the last row changed: the tail sample sees it
    _fake_store(tmp_path / "c", X2, {"model": "m"})
    assert artifacts.store_fingerprint(tmp_path / "c") != fa
    _fake_store(tmp_path / "d", X, {"model": "other"})
    assert artifacts.store_fingerprint(tmp_path / "d") != fa


def test_decomposition_and_params_fingerprints():
    class Fit:
        def __init__(self, w):
            self.mean_, self.components_ = np.zeros(3), np.asarray(w, dtype=float)

    a, b = Fit(np.eye(3)[:2]), Fit(np.eye(3)[:2])
    assert artifacts.decomposition_fingerprint(a) == artifacts.decomposition_fingerprint(b)
    assert artifacts.decomposition_fingerprint(Fit(np.eye(3))) != artifacts.decomposition_fingerprint(a)
    assert artifacts.params_fingerprint({"k": [1, 2]}) == artifacts.params_fingerprint({"k": (1, 2)})
    assert artifacts.params_fingerprint({"k": 4}) != artifacts.params_fingerprint({"k": 8})


# ------------------------------------------------------------------ folders as a unit


def test_replace_dir_swaps_the_whole_folder(tmp_path):
    d = tmp_path / "ica"
    d.mkdir()
    (d / "naming").mkdir()
    (d / "naming" / "naming.json").write_text("{}")  # stale with the old fit

    def fill(tmp):
        (tmp / "ica.json").write_text("{}")
        return 7

    assert artifacts.replace_dir(d, fill) == 7
    assert sorted(p.name for p in d.iterdir()) == ["ica.json"]
    assert not any(p.name.startswith(".ica") for p in tmp_path.iterdir())


def test_replace_dir_keeps_the_old_folder_when_filling_fails(tmp_path):
    d = tmp_path / "ica"
    d.mkdir()
    (d / "ica.json").write_text("old")

    def fill(tmp):
        (tmp / "ica.json").write_text("new")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        artifacts.replace_dir(d, fill)
    assert (d / "ica.json").read_text() == "old"
