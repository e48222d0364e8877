"""The store refuses what it cannot trust: a second writer, edited counts, damaged or missing files,
hand-edited manifests (issue 12, items 2, 9, 10)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from clipica.embeddings.store import IMAGE, LOCK, MANIFEST, ROWS, TEXT, EmbeddingStore, StoreWriter
from clipica.errors import StoreError, StoreLockedError

KEY = {"model": "m", "data": "d"}


def _manifest():
    return {"schema_version": 1, "key": KEY, "embed_dim": 3, "has_text": True, "label_columns": ["smiling"],
            "model": {"spec": "m"}, "data": {"spec": "d"}}


def _complete_store(path, n=5, seed=0):
    rng = np.random.default_rng(seed)
    w = StoreWriter(path, KEY)
    w.begin(_manifest(), 0)
    rows = [{"id": f"r{i}", "source_index": i, "caption": "c", "split": None, "smiling": i % 2,
             "caption_truncated": False} for i in range(n)]
    w.commit(rng.standard_normal((n, 3)).astype(np.float32), rng.standard_normal((n, 3)).astype(np.float32),
             rows, errors=[], next_position=n)
    return w.finalize()


def _edit_manifest(path, **changes):
    m = json.loads((path / MANIFEST).read_text())
    for k, v in changes.items():
        if "." in k:
            outer, inner = k.split(".")
            m[outer][inner] = v
        else:
            m[k] = v
    (path / MANIFEST).write_text(json.dumps(m))


def test_second_writer_is_refused_naming_the_holder(tmp_path):
    path = tmp_path / "s"
    first = StoreWriter(path, KEY)
    first.begin(_manifest(), 0)
    holder = json.loads((path / LOCK).read_text())
    assert holder["pid"] == os.getpid() and holder["host"]
    with pytest.raises(StoreLockedError, match=f"pid {os.getpid()} on "):
        StoreWriter(path, KEY)
    with pytest.raises(StoreLockedError):
        StoreWriter(path, KEY, overwrite=True)  # --overwrite does not break another writer's lock
    assert first.state == "new" and (path / MANIFEST).is_file()
    first.finalize()
    assert not (path / LOCK).exists()  # released (and removed) when the writer finishes
    assert StoreWriter(path, KEY).state == "complete"


def test_failed_writer_releases_its_lock_and_its_empty_folder(tmp_path):
    path = tmp_path / "new"
    w = StoreWriter(path, KEY)
    assert (path / LOCK).is_file()
    w.close()  # e.g. the model failed to load before the first manifest
    assert not path.exists()
    StoreWriter(path, KEY).close()


def test_a_stale_lock_file_of_a_dead_writer_does_not_block(tmp_path):
    path = tmp_path / "s"
    path.mkdir()
    (path / LOCK).write_text(json.dumps({"pid": 999999, "host": "gone", "command": "clipica extract"}))
    w = StoreWriter(path, KEY)  # flock is gone with its process; only the file remained
    assert json.loads((path / LOCK).read_text())["pid"] == os.getpid()
    w.close()


@pytest.mark.parametrize("edit", ["rows+1", "rows-1", "dim+1", "image+4", "text-4"])
def test_complete_store_needs_exactly_n_by_d_float32(tmp_path, edit):
    path = tmp_path / "s"
    _complete_store(path)
    if edit == "rows+1":
        _edit_manifest(path, **{"counts.rows": 6})
    elif edit == "rows-1":
        _edit_manifest(path, **{"counts.rows": 4})
    elif edit == "dim+1":
        _edit_manifest(path, embed_dim=4)
    elif edit == "image+4":
        with open(path / IMAGE, "ab") as f:
            f.write(b"\0" * 4)
    else:
        os.truncate(path / TEXT, 5 * 3 * 4 - 4)
    with pytest.raises(StoreError, match="the store is damaged or its manifest was edited"):
        EmbeddingStore.open(path)
    # and a rerun of the writer does not call it "already complete"
    with pytest.raises(StoreError, match="bytes"):
        StoreWriter(path, KEY)


def test_complete_store_without_rows_parquet_is_an_error(tmp_path):
    path = tmp_path / "s"
    _complete_store(path)
    (path / ROWS).unlink()
    with pytest.raises(StoreError, match="rows.parquet is missing"):
        EmbeddingStore.open(path).rows  # noqa: B018
    with pytest.raises(StoreError, match="rows.parquet is missing"):
        StoreWriter(path, KEY)


def test_corrupt_rows_parquet_is_an_error(tmp_path):
    path = tmp_path / "s"
    _complete_store(path)
    data = (path / ROWS).read_bytes()
    (path / ROWS).write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match="rows.parquet cannot be read"):
        EmbeddingStore.open(path).rows  # noqa: B018


def test_rows_parquet_of_another_length_is_an_error(tmp_path):
    _complete_store(tmp_path / "a", n=5)
    _complete_store(tmp_path / "b", n=4)
    (tmp_path / "a" / ROWS).write_bytes((tmp_path / "b" / ROWS).read_bytes())
    with pytest.raises(StoreError, match="4 rows"):
        EmbeddingStore.open(tmp_path / "a").rows  # noqa: B018


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "JSON list"),
    ("{\"schema_version\": 1", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
])
def test_unparsable_manifest_is_an_error(tmp_path, text, message):
    path = tmp_path / "s"
    _complete_store(path)
    (path / MANIFEST).write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(StoreError, match=message):
        EmbeddingStore.open(path)


@pytest.mark.parametrize("field, value", [
    ("embed_dim", "3"), ("embed_dim", -3), ("embed_dim", 0), ("has_text", "yes"), ("complete", 1),
    ("label_columns", "smiling"), ("counts", None), ("counts.rows", "5"), ("counts.rows", -1), ("key", []),
])
def test_hand_edited_manifest_fields_are_errors(tmp_path, field, value):
    path = tmp_path / "s"
    _complete_store(path)
    _edit_manifest(path, **{field: value})
    with pytest.raises(StoreError, match="manifest is damaged or was edited"):
        EmbeddingStore.open(path)


def test_damaged_progress_json_is_an_error_on_resume(tmp_path):
    path = tmp_path / "s"
    w = StoreWriter(path, KEY)
    w.begin(_manifest(), 0)
    w.close()
    (path / "progress.json").write_text(json.dumps({"next_position": "x", "n_rows": 0, "n_errors": 0, "bytes": {}}))
    with pytest.raises(StoreError, match="progress.json is damaged"):
        StoreWriter(path, KEY)
