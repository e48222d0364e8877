"""The store's commit order, reuse without a lock, and merge leftovers (issue 26).

- the guard on the crash protocol: the data files are fsynced before ``progress.json`` is
  replaced (a test that fails when that fsync is removed);
- defect 12: a finished store is reused without its writer lock (read-only storage);
- defect 14: the hidden folder of a merge killed with ``kill -9`` is removed by the next merge.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

import clipica
from clipica.embeddings import store as store_module
from clipica.embeddings.store import IMAGE, PROGRESS, TEXT, StoreWriter
from tests.helpers.fake_datasets import write_folder

#: the data files of a commit (rows.partial.jsonl and errors.jsonl beside the matrices)
DATA = (IMAGE, TEXT, "rows.partial.jsonl", "errors.jsonl")


def _record_fsync_and_replace(monkeypatch) -> list[tuple[str, object]]:
    """Every ``os.fsync`` (as the inode it synced) and ``os.replace`` (as its target name)."""
    events: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        return real_fsync(fd)

    def replace(src, dst, *a, **k):
        events.append(("replace", Path(dst).name))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_commit_fsyncs_the_data_before_replacing_progress(tmp_path, monkeypatch, seed):
    """The commit protocol: a batch's bytes are durable before progress.json says they exist,
    so a power cut can never leave progress.json pointing past the data on disk."""
    rng = np.random.default_rng(seed)
    writer = StoreWriter(tmp_path / "s", {"test": seed})
    writer.begin({"schema_version": 1, "key": {"test": seed}}, 0)
    events = _record_fsync_and_replace(monkeypatch)
    n_commits = int(rng.integers(2, 5))
    for i in range(n_commits):
        n = int(rng.integers(1, 4))
        writer.commit(rng.standard_normal((n, 4), dtype=np.float32),
                      rng.standard_normal((n, 4), dtype=np.float32),
                      [{"id": f"{i}-{j}"} for j in range(n)],
                      [{"id": f"bad-{i}", "source_index": i, "reason": "x"}] if i % 2 else [],
                      next_position=(i + 1) * 10)
    inode = {os.stat(tmp_path / "s" / name).st_ino: name for name in DATA}
    writer.close()
    replaces = [i for i, (kind, what) in enumerate(events) if kind == "replace" and what == PROGRESS]
    assert len(replaces) == n_commits
    start = 0
    for end in replaces:
        synced = {inode.get(what) for kind, what in events[start:end] if kind == "fsync"}
        assert set(DATA) <= synced, f"commit replaced progress.json before fsyncing {set(DATA) - synced}"
        start = end + 1


def _extract(model_file, spec, out, **kw):
    return clipica.extract(model=model_file, data=spec, out=out, batch_size=3, num_workers=0,
                           progress=False, **kw)


@pytest.fixture(scope="module")
def folder_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "folder"
    write_folder(root, n=6)
    return f"folder:{root}"


def test_a_finished_store_is_reused_without_its_writer_lock(model_file, folder_data, tmp_path, monkeypatch):
    """Defect 12: reusing a finished store only reads it; on read-only storage the lock file
    cannot be created, which must not stop the reuse (simulated: tests may run as root)."""
    done = _extract(model_file, folder_data, tmp_path / "s")

    def read_only(path):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(store_module, "WriterLock", read_only)
    again = _extract(model_file, folder_data, tmp_path / "s")
    assert np.array_equal(again.image, done.image) and again.rows.equals(done.rows)
    with pytest.raises(OSError, match="Read-only"):  # a write still needs the lock
        _extract(model_file, folder_data, tmp_path / "s", overwrite=True)


def test_a_merge_killed_with_kill_9_leaves_nothing_after_the_next_merge(model_file, folder_data, tmp_path):
    """Defect 14: the hidden folder of a merge killed with ``kill -9`` (as large as the store)
    is removed by the next merge into the same folder; another target's is left alone."""
    shards = [str(tmp_path / f"s{i}") for i in range(2)]
    for i in range(2):
        _extract(model_file, folder_data, shards[i], shard=f"{i}/2")
    killed = tmp_path / ".m.k1ll3d_x.merge.tmp"  # what mkdtemp made before the kill
    killed.mkdir()
    (killed / IMAGE).write_bytes(b"\0" * 4096)
    other = tmp_path / ".m.x.abcd1234.merge.tmp"  # a merge into `m.x`, not ours
    other.mkdir()
    merged = clipica.merge(shards, tmp_path / "m")
    assert merged.n_rows + len(merged.errors) == 6
    assert not killed.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [other.name]
