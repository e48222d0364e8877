"""EmbeddingStore on its own: commit protocol, truncation on resume, refusing bad folders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clipica.embeddings.store import (
    IMAGE,
    PROGRESS,
    ROWS_PARTIAL,
    TEXT,
    EmbeddingStore,
    StoreWriter,
)
from clipica.errors import ArtifactExistsError, StoreError, StoreMismatchError

KEY = {"model": "m", "data": "d"}
LABELS = ["smiling", "age"]


def _manifest(has_text=True):
    return {"schema_version": 1, "key": KEY, "embed_dim": 3, "has_text": has_text, "label_columns": LABELS,
            "model": {"spec": "m"}, "data": {"spec": "d"}}


def _batch(start, n, rng):
    img = rng.standard_normal((n, 3)).astype(np.float32)
    txt = rng.standard_normal((n, 3)).astype(np.float32)
    rows = [{"id": f"r{i}", "source_index": i, "caption": f"c{i}", "split": None, "smiling": i % 2,
             "age": 20.0 + i, "caption_truncated": False} for i in range(start, start + n)]
    return img, txt, rows


def test_commit_then_finalize_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    w = StoreWriter(tmp_path / "s", KEY)
    assert w.begin(_manifest(), 0) == 0
    batches = [_batch(0, 4, rng), _batch(4, 3, rng)]
    w.commit(*batches[0], errors=[], next_position=4)
    w.commit(*batches[1], errors=[{"id": "bad", "source_index": 7, "reason": "x"}], next_position=8)
    store = w.finalize()
    assert store.manifest["complete"] and store.manifest["counts"]["rows"] == 7
    assert np.array_equal(store.image, np.concatenate([b[0] for b in batches]))
    assert np.array_equal(store.text, np.concatenate([b[1] for b in batches]))
    assert isinstance(store.image, np.memmap)
    assert list(store.rows.columns) == ["id", "source_index", "caption", "split", *LABELS, "caption_truncated"]
    assert store.rows["smiling"].dtype == np.int64 and store.rows["age"].dtype == np.float64
    assert store.errors.to_dict("records") == [{"id": "bad", "source_index": 7, "reason": "x"}]
    assert not (tmp_path / "s" / PROGRESS).exists() and not (tmp_path / "s" / ROWS_PARTIAL).exists()


def test_resume_truncates_uncommitted_bytes(tmp_path):
    """Bytes appended after the last progress write (a kill mid-commit) are discarded on resume."""
    rng = np.random.default_rng(1)
    path = tmp_path / "s"
    w = StoreWriter(path, KEY)
    w.begin(_manifest(), 0)
    first = _batch(0, 2, rng)
    w.commit(*first, errors=[], next_position=2)
    w.close()
    # a killed run got as far as appending half of the next batch
    for name in (IMAGE, TEXT, ROWS_PARTIAL):
        with open(path / name, "ab") as f:
            f.write(b"garbage-from-a-killed-run")
    partial = EmbeddingStore.open(path, require_complete=False)
    assert partial.n_rows == 2 and np.array_equal(partial.image, first[0])
    w2 = StoreWriter(path, KEY)
    assert w2.state == "resume"
    assert w2.begin(_manifest(), 0) == 2
    second = _batch(2, 2, rng)
    w2.commit(*second, errors=[], next_position=4)
    store = w2.finalize()
    assert np.array_equal(store.image, np.concatenate([first[0], second[0]]))
    assert store.rows["id"].tolist() == ["r0", "r1", "r2", "r3"]


def test_mismatch_and_overwrite(tmp_path):
    path = tmp_path / "s"
    w = StoreWriter(path, KEY)
    w.begin(_manifest(), 0)
    w.finalize()
    with pytest.raises(StoreMismatchError, match="model: 'm' -> 'other'"):
        StoreWriter(path, {**KEY, "model": "other"})
    assert StoreWriter(path, KEY).state == "complete"
    w = StoreWriter(path, {**KEY, "model": "other"}, overwrite=True)
    assert w.state == "new" and not (path / "manifest.json").exists()


def test_refuses_foreign_folders_and_unfinished_stores(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ArtifactExistsError, match="not an embedding store"):
        StoreWriter(tmp_path / "mine", KEY, overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").exists()
    with pytest.raises(StoreError, match="not an embedding store"):
        EmbeddingStore.open(tmp_path / "mine")
    w = StoreWriter(tmp_path / "s", KEY)
    w.begin(_manifest(), 0)
    w.close()
    with pytest.raises(StoreError, match="rerun the same"):
        EmbeddingStore.open(tmp_path / "s")


def test_store_without_text_and_empty(tmp_path):
    w = StoreWriter(tmp_path / "s", KEY)
    w.begin(_manifest(has_text=False), 0)
    store = w.finalize()
    assert store.text is None and store.image.shape == (0, 3) and len(store.rows) == 0
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert m["complete"] is True and m["counts"]["rows"] == 0


def test_kill_before_first_manifest_leaves_a_resumable_folder(tmp_path):
    """A run killed inside the very first atomic write leaves only a temp file: rerunning must not refuse."""
    path = tmp_path / "s"
    path.mkdir()
    (path / ".manifest.json.abc123.tmp").write_text("{half")
    w = StoreWriter(path, KEY)
    assert w.state == "new" and not (path / ".manifest.json.abc123.tmp").exists()
    w.begin(_manifest(), 0)
    assert w.finalize().manifest["complete"]


def test_one_manifest_reader_answers_model_data_and_normalisation():
    from clipica.embeddings.manifest import data_spec, model_entry, normalizes

    written = {"model": {"spec": "ViT-B-32", "pretrained": "openai", "preprocess": "original"},
               "data": {"spec": "celeba:/d"}, "normalize": True}
    assert model_entry(written) == {"spec": "ViT-B-32", "pretrained": "openai", "preprocess": "original"}
    assert data_spec(written) == "celeba:/d" and normalizes(written) is True
    bare = {"model": "tiny-faces", "data": "synthetic-faces:10"}  # hand-made: bare specs
    assert model_entry(bare) == {"spec": "tiny-faces", "pretrained": None}
    assert data_spec(bare) == "synthetic-faces:10" and normalizes(bare) is False
    assert model_entry({}) == {"spec": None, "pretrained": None} and normalizes(type("S", (), {"manifest": written})())
