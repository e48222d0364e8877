"""The extraction loop end to end: sources -> tiny random CLIP -> store; resume after kill -9; shards; CLI errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import clipica
from clipica.cli import main
from clipica.data.celeba import CELEBA_ATTRIBUTES
from clipica.embeddings.store import EmbeddingStore
from clipica.errors import BadImageError, StoreMismatchError
from tests.helpers.fake_datasets import write_celeba, write_folder, write_hf
from tests.helpers.fake_models import save_tiny_hf_clip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_celeba(root / "celeba", n=10)
    write_folder(root / "folder", n=8)
    write_hf(root / "hf", n=8)
    return root


def _extract(model_file, spec, out, **kw):
    kw.setdefault("batch_size", 3)
    kw.setdefault("num_workers", 0)
    kw.setdefault("progress", False)
    return clipica.extract(model=model_file, data=spec, out=out, **kw)


def test_celeba_store_is_row_aligned(model_file, data, tmp_path):
    store = _extract(model_file, f"celeba:{data / 'celeba'}", tmp_path / "s", num_workers=1)
    ids = [f"{i + 1:06d}.jpg" for i in range(10)]
    assert store.image.shape == (9, 16) and store.text.shape == (9, 16)
    assert store.rows["id"].tolist() == [i for i in ids if i != "000005.jpg"]
    assert list(store.rows.columns) == ["id", "source_index", "caption", "split", *CELEBA_ATTRIBUTES,
                                        "caption_truncated"]
    assert store.label_columns == list(CELEBA_ATTRIBUTES)
    errs = store.errors
    assert errs["id"].tolist() == ["000005.jpg"] and errs["source_index"].tolist() == [4]
    assert "truncated" in errs["reason"][0]
    m = store.manifest
    assert m["complete"] and m["schema_version"] == 1 and m["normalize"] is False
    assert m["counts"]["rows"] == 9 and m["counts"]["errors"] == 1
    assert m["data"]["source"]["captions"].startswith("generated from attributes")
    assert m["versions"]["torch"] and m["model"]["encoder"]["backend"] == "open_clip"
    # every row holds the embedding of *its* image and caption (no shift after the bad row)
    enc = store.load_encoder()
    images = store.load_images(range(len(store.rows)))
    assert np.allclose(enc.encode_images(images), store.image, atol=1e-5)
    assert np.allclose(enc.encode_texts(store.rows["caption"].tolist()), store.text, atol=1e-5)
    # labels as 0/1 ints from the -1/1 file
    raw = [ln.split() for ln in (data / "celeba" / "list_attr_celeba.txt").read_text().splitlines()[2:]]
    want = {r[0]: [1 if v == "1" else 0 for v in r[1:]] for r in raw}
    for _, row in store.rows.iterrows():
        assert [row[a] for a in CELEBA_ATTRIBUTES] == want[row["id"]]


@pytest.mark.parametrize("kind", ["folder", "hf", "csv"])
def test_other_sources(model_file, data, tmp_path, kind):
    spec = {"folder": f"folder:{data / 'folder'}", "hf": f"hf:{data / 'hf'}",
            "csv": f"csv:{data / 'folder' / 'metadata.csv'}"}[kind]
    store = _extract(model_file, spec, tmp_path / "s", limit=6)
    assert store.image.shape == (5, 16) and len(store.rows) == 5  # 6 rows, one corrupt
    assert store.errors["source_index"].tolist() == [4]
    assert store.rows["source_index"].tolist() == [0, 1, 2, 3, 5]


def test_hf_and_open_clip_backends_write_the_same_schema(model_file, data, tmp_path):
    hf_dir = save_tiny_hf_clip(tmp_path / "hfmodel")
    a = _extract(model_file, f"folder:{data / 'folder'}", tmp_path / "a")
    b = _extract(str(hf_dir), f"folder:{data / 'folder'}", tmp_path / "b")
    assert a.image.shape == b.image.shape and a.text.shape == b.text.shape
    assert a.image.dtype == b.image.dtype == np.float32
    assert list(a.rows.columns) == list(b.rows.columns)
    assert a.rows.dtypes.tolist() == b.rows.dtypes.tolist()
    assert a.rows.drop(columns="caption_truncated").equals(b.rows.drop(columns="caption_truncated"))
    assert set(a.manifest) == set(b.manifest)
    assert a.manifest["model"]["encoder"]["backend"] == "open_clip"
    assert b.manifest["model"]["encoder"]["backend"] == "transformers"
    assert sorted(os.listdir(a.path)) == sorted(os.listdir(b.path))


def test_normalize_rerun_and_mismatch(model_file, data, tmp_path):
    spec = f"folder:{data / 'folder'}"
    raw = _extract(model_file, spec, tmp_path / "raw")
    unit = _extract(model_file, spec, tmp_path / "unit", normalize=True)
    assert np.allclose(np.linalg.norm(unit.image, axis=1), 1, atol=1e-5)
    assert np.allclose(unit.image, raw.image / np.linalg.norm(raw.image, axis=1, keepdims=True), atol=1e-5)
    assert unit.manifest["normalize"] is True and raw.manifest["normalize"] is False
    # the same command again: the finished store is returned untouched
    before = (tmp_path / "raw" / "image.f32").stat().st_mtime_ns
    again = _extract(model_file, spec, tmp_path / "raw")
    assert np.array_equal(again.image, raw.image)
    assert (tmp_path / "raw" / "image.f32").stat().st_mtime_ns == before
    with pytest.raises(StoreMismatchError, match="normalize: False -> True"):
        _extract(model_file, spec, tmp_path / "raw", normalize=True)
    over = _extract(model_file, spec, tmp_path / "raw", normalize=True, overwrite=True)
    assert np.array_equal(over.image, unit.image)


def test_on_error_fail_keeps_committed_batches_then_resumes(model_file, data, tmp_path):
    spec = f"celeba:{data / 'celeba'}"
    with pytest.raises(BadImageError, match="000005.jpg"):
        _extract(model_file, spec, tmp_path / "s", batch_size=2, on_error="fail")
    partial = EmbeddingStore.open(tmp_path / "s", require_complete=False)
    assert partial.n_rows == 4 and partial.image.shape == (4, 16)
    done = _extract(model_file, spec, tmp_path / "s", batch_size=2)  # on_error is not part of the key
    ref = _extract(model_file, spec, tmp_path / "ref", batch_size=2)
    assert np.array_equal(done.image, ref.image) and done.rows.equals(ref.rows)


def test_shards_and_merge(model_file, data, tmp_path):
    spec = f"celeba:{data / 'celeba'}"
    full = _extract(model_file, spec, tmp_path / "full")
    shards = [str(tmp_path / f"s{i}") for i in range(3)]
    for i in (2, 0, 1):
        _extract(model_file, spec, shards[i], shard=f"{i}/3")
    assert [len(EmbeddingStore.open(s).rows) + len(EmbeddingStore.open(s).errors) for s in shards] == [3, 3, 4]
    merged = clipica.merge([shards[1], shards[2], shards[0]], tmp_path / "m")
    assert merged.rows.equals(full.rows)
    assert np.allclose(merged.image, full.image, atol=1e-5) and np.allclose(merged.text, full.text, atol=1e-5)
    assert merged.errors.equals(full.errors)
    assert merged.manifest["counts"] == full.manifest["counts"]
    with pytest.raises(StoreMismatchError, match="exactly once"):
        clipica.merge(shards[:2], tmp_path / "m2")


def _cli(*args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "clipica", "extract", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.subprocess
def test_resume_after_kill_9_equals_uninterrupted(model_file, data, tmp_path):
    """kill -9 lands between a batch's data write and its progress commit; the rerun ends identical."""
    spec = f"folder:{data / 'folder'}"
    args = ["--model", model_file, "--data", spec, "--batch-size", "2", "--num-workers", "1", "--quiet"]
    out = tmp_path / "killed"
    env = {**os.environ, "CLIPICA_TEST_COMMIT_PAUSE": "0.4"}
    proc = _cli(*args, "--out", str(out), env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            prog = out / "progress.json"
            img = out / "image.f32"
            if prog.exists() and img.exists():
                try:
                    p = json.loads(prog.read_text())
                except ValueError:
                    continue
                # one batch committed and the next one's bytes already written: inside the commit window
                if p["n_rows"] >= 2 and img.stat().st_size > p["bytes"]["image.f32"]:
                    break
            if proc.poll() is not None:
                pytest.fail(f"extraction ended before it could be killed: {proc.stderr.read()}")
            time.sleep(0.01)
        else:
            pytest.fail("extraction never reached a commit window")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    m = json.loads((out / "manifest.json").read_text())
    p = json.loads((out / "progress.json").read_text())
    assert m["complete"] is False and p["next_position"] < 8
    assert (out / "image.f32").stat().st_size > p["bytes"]["image.f32"]  # uncommitted bytes on disk

    # the same command again (in-process: a second interpreter start would double the test's cost)
    assert main(["extract", *args, "--out", str(out)]) == 0
    ref = _extract(model_file, spec, tmp_path / "ref", batch_size=2)
    got = EmbeddingStore.open(out)
    assert (out / "image.f32").read_bytes() == (tmp_path / "ref" / "image.f32").read_bytes()
    assert (out / "text.f32").read_bytes() == (tmp_path / "ref" / "text.f32").read_bytes()
    pd.testing.assert_frame_equal(got.rows, ref.rows)
    pd.testing.assert_frame_equal(got.errors, ref.errors)
    assert got.manifest["counts"] == ref.manifest["counts"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "ViT-B-31", "--pretrained", "none"], "did you mean ViT-B-32"),
        (["--data", "nope:/x"], "unknown data spec"),
        (["--shard", "3/2"], "--shard 3/2"),
        (["--batch-size", "0"], "--batch-size must be a positive integer"),
        (["--data", "celeba:/definitely/not/here"], "not a directory"),
        (["--on-error", "fail", "--batch-size", "2"], "000005.jpg"),
    ],
)
def test_cli_user_errors_exit_2(model_file, data, tmp_path, capsys, args, message):
    base = {"--model": model_file, "--data": f"celeba:{data / 'celeba'}", "--out": str(tmp_path / "s")}
    argv = ["extract", "--quiet", "--num-workers", "0"]
    given = dict(zip(args[::2], args[1::2], strict=True))
    for k, v in {**base, **given}.items():
        argv += [k, v]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_extract_and_merge(model_file, data, tmp_path, capsys):
    spec = f"folder:{data / 'folder'}"
    for i in range(2):
        assert main(["extract", "--model", model_file, "--data", spec, "--out", str(tmp_path / f"s{i}"),
                     "--shard", f"{i}/2", "--quiet", "--num-workers", "0"]) == 0
    assert main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "7 rows from 2 shards" in out
    assert main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_tiny_faces_on_synthetic_faces(tiny_faces_cache, tmp_path):
    """The built-in pair through the CLI contract: tiny-faces + synthetic-faces, labels incl. latents."""
    pytest.importorskip("clipica.data.synthetic_faces")
    out = tmp_path / "s"
    assert main(["extract", "--model", "tiny-faces", "--data", "synthetic-faces:12?seed=3", "--out", str(out),
                 "--batch-size", "5", "--quiet", "--num-workers", "1"]) == 0
    store = EmbeddingStore.open(out)
    assert store.image.shape == (12, store.embed_dim) and store.text.shape == (12, store.embed_dim)
    assert any(c.startswith("latent_") for c in store.label_columns)
    assert store.rows["id"].is_unique and store.manifest["counts"]["errors"] == 0
    enc = store.load_encoder()
    assert np.allclose(enc.encode_images(store.load_images([0, 11])), store.image[[0, 11]], atol=1e-5)


def test_killed_after_last_commit_before_finalize(model_file, data, tmp_path, monkeypatch):
    """Every batch committed but rows.parquet / the complete flag not yet written: the rerun just finishes."""
    from clipica.embeddings.store import StoreWriter

    spec = f"folder:{data / 'folder'}"

    def killed(self, extra=None):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(StoreWriter, "finalize", killed)
        with pytest.raises(KeyboardInterrupt):
            _extract(model_file, spec, tmp_path / "s", num_workers=1)
    progress = json.loads((tmp_path / "s" / "progress.json").read_text())
    assert progress["next_position"] == 8 and not (tmp_path / "s" / "rows.parquet").exists()
    done = _extract(model_file, spec, tmp_path / "s", num_workers=1)
    ref = _extract(model_file, spec, tmp_path / "ref")
    assert np.array_equal(done.image, ref.image) and done.rows.equals(ref.rows)
    assert done.errors.equals(ref.errors)


# -- --layer: recorded in the manifest and the resume key


def test_layer_is_recorded_and_part_of_the_resume_key(model_file, data, tmp_path):
    spec = f"folder:{data / 'folder'}"
    final = _extract(model_file, spec, tmp_path / "final")
    assert final.manifest["layer"] == "final" and "layer" not in final.manifest["key"]
    pre = _extract(model_file, spec, tmp_path / "pre", layer="pre-projection")
    assert pre.manifest["layer"] == "pre-projection" == pre.manifest["key"]["layer"]
    assert pre.manifest["model"]["encoder"]["layer"] == "pre-projection"
    # the tiny test ViT: width 32 in both towers before the 16-dim projection
    assert pre.embed_dim == 32 and pre.text.shape == (len(pre.rows), 32) and pre.manifest["text_skipped"] is None
    enc = pre.load_encoder()  # the encoder that produced the store, at its layer
    assert enc.layer == "pre-projection"
    np.testing.assert_allclose(enc.encode_images(pre.load_images([0, 1])), pre.image[[0, 1]], atol=1e-5)
    with pytest.raises(StoreMismatchError, match="layer"):
        _extract(model_file, spec, tmp_path / "pre")  # final into a pre-projection store
    block = _extract(model_file, spec, tmp_path / "b0", layer="block:0")
    assert block.embed_dim == 32 and not np.allclose(block.image, pre.image, atol=1e-3)


def test_a_layer_the_model_lacks_is_one_line(model_file, data, tmp_path, capsys):
    argv = ["extract", "--model", model_file, "--data", f"folder:{data / 'folder'}", "--out", str(tmp_path / "s"),
            "--quiet", "--num-workers", "0"]
    assert main([*argv, "--layer", "block:1"]) == 2
    err = capsys.readouterr().err
    assert "the image tower has 1 block (block:0 .. block:0); it has no block:1" in err and err.count("\n") == 1
    assert main([*argv, "--layer", "penultimate"]) == 2
    err = capsys.readouterr().err
    assert "--layer must be final" in err and err.count("\n") == 1


def test_a_text_tower_without_the_layer_leaves_the_store_image_only(tmp_path):
    """tiny-faces (random weights): 4 image stages, a shallower text tower."""
    from clipica.models import tiny

    depth = tiny.model_config()["text_cfg"]["layers"]
    assert depth < 4
    store = clipica.extract(model="tiny-faces", pretrained="none", data="synthetic-faces:6", out=tmp_path / "s",
                            layer="block:3", batch_size=3, num_workers=0, progress=False)
    assert store.text is None and not store.manifest["has_text"]
    assert f"text tower has {depth} blocks" in store.manifest["text_skipped"]
    assert store.image.shape[0] == 6 and store.embed_dim == store.load_encoder().embed_dim
