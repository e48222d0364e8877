"""One line and exit status 2 where a traceback used to be (issue 12, items 9 and 11): the machine
saying no (disk full, file too large, permission denied, a file where a folder goes), damaged
artifacts, bad --template/--vocab, labels that look like mathtext, and a killed merge."""

from __future__ import annotations

import errno
import io
import json

import numpy as np
import pandas as pd
import pytest

import clipica
from clipica.cli import main, os_error_line
from clipica.embeddings.store import EmbeddingStore, StoreWriter
from clipica.errors import ArtifactError, ArtifactExistsError, InputError
from tests.helpers.fake_datasets import jpeg_bytes, rgb_image


def _folder(root, n=6):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"im_{i}.jpg").write_bytes(jpeg_bytes(rgb_image(i, 32)))
    return root


def _args(model_file, folder, out):
    return ["extract", "--model", model_file, "--data", f"folder:{folder}", "--out", str(out),
            "--batch-size", "2", "--num-workers", "0", "--quiet"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "No space left on device"),
    (errno.EFBIG, "file too large"),
    (errno.EACCES, "Permission denied"),
])
def test_os_errors_mid_extraction_are_one_line_and_resume_identically(model_file, tmp_path, capsys,
                                                                      monkeypatch, code, words):
    """The disk fills up (or a file grows too large, or permission goes) after the first commit."""
    import os

    folder = _folder(tmp_path / "d")
    out = tmp_path / "s"
    real_commit = StoreWriter.commit
    calls = []

    def failing_commit(self, image, text, rows, errors, **kw):
        calls.append(1)
        if len(calls) == 2:  # half the batch reaches the disk, then the write fails
            self._files["image.f32"].write(np.asarray(image, np.float32).tobytes()[:10])
            raise OSError(code, os.strerror(code), str(out / "image.f32"))
        return real_commit(self, image, text, rows, errors, **kw)

    monkeypatch.setattr(StoreWriter, "commit", failing_commit)
    assert main(_args(model_file, folder, out)) == 2
    err = _one_line(capsys)
    assert words in err and "image.f32" in err
    if code != errno.ENOSPC:  # the resume below is the same for every errno: check it once
        return
    monkeypatch.setattr(StoreWriter, "commit", real_commit)
    assert main(_args(model_file, folder, out)) == 0  # the same command resumes
    ref = clipica.extract(model=model_file, data=f"folder:{folder}", out=tmp_path / "ref", batch_size=2,
                          num_workers=0, progress=False)
    assert (out / "image.f32").read_bytes() == (tmp_path / "ref" / "image.f32").read_bytes()
    pd.testing.assert_frame_equal(EmbeddingStore.open(out).rows, ref.rows)


def test_out_below_a_regular_file_is_one_line(model_file, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(_args(model_file, _folder(tmp_path / "d", 2), tmp_path / "afile" / "store")) == 2
    assert "afile" in _one_line(capsys)


def test_os_error_line_names_path_and_what_to_do():
    line = os_error_line(OSError(errno.ENOSPC, "No space left on device", "/data/s/image.f32"))
    assert line.startswith("No space left on device (/data/s/image.f32): ") and "rerun" in line
    assert "\n" not in os_error_line(OSError(errno.EIO, "Input/output\nerror"))


def _store(path, n=4):
    w = StoreWriter(path, {"model": "m", "data": "d"})
    w.begin({"schema_version": 1, "key": {"model": "m", "data": "d"}, "embed_dim": 3, "has_text": False,
             "label_columns": [], "model": {"spec": "m"}, "data": {"spec": "d"}}, 0)
    rows = [{"id": f"r{i}", "source_index": i, "caption": None, "split": None, "caption_truncated": False}
            for i in range(n)]
    w.commit(np.random.default_rng(0).standard_normal((n, 3)).astype(np.float32), None, rows, errors=[],
             next_position=n)
    return w.finalize().path


@pytest.mark.parametrize("damage, words", [
    ("manifest-json", "not valid JSON"),
    ("manifest-list", "JSON list"),
    ("manifest-dim", "embed_dim must be a positive integer"),
    ("counts", "manifest says (5, 3) float32"),
    ("rows-missing", "rows.parquet is missing"),
])
def test_damaged_store_is_one_line_for_every_command(tmp_path, capsys, damage, words):
    path = _store(tmp_path / "s")
    m = json.loads((path / "manifest.json").read_text())
    if damage == "manifest-json":
        (path / "manifest.json").write_text('{"schema_version": 1,')
    elif damage == "manifest-list":
        (path / "manifest.json").write_text("[]")
    elif damage == "manifest-dim":
        m["embed_dim"] = "3"
        (path / "manifest.json").write_text(json.dumps(m))
    elif damage == "counts":
        m["counts"]["rows"] = 5
        (path / "manifest.json").write_text(json.dumps(m))
    else:
        (path / "rows.parquet").unlink()
    assert main(["ica", str(path), "-k", "2", "--out", str(tmp_path / "ica")]) == 2
    assert words in _one_line(capsys)


def test_corrupt_rows_parquet_is_one_line(tmp_path, capsys):
    path = _store(tmp_path / "s")
    (path / "rows.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(clipica.errors.StoreError, match="rows.parquet cannot be read"):
        EmbeddingStore.open(path).rows  # noqa: B018


@pytest.fixture
def saved_decoder(tmp_path):
    pytest.importorskip("torch")
    from clipica.intervene.decoder import train_decoder

    rng = np.random.default_rng(0)
    dec = train_decoder(rng.standard_normal((16, 3)), rng.uniform(0, 1, (16, 16, 16, 3)).astype(np.float32),
                        image_size=16, epochs=1, progress=False)
    dec.save(tmp_path / "dec")
    return tmp_path / "dec"


@pytest.mark.parametrize("edit, words", [
    ("invalid", "not valid JSON"),
    ("n_components", "n_components must be a positive integer"),
    ("image_size", "does not hold the decoder"),
    ("source_mean", "source_mean must hold 3 finite numbers"),
    ("source_std", "source_std must be positive"),
    ("weights", "does not hold the decoder"),
])
def test_damaged_decoder_is_one_typed_line(saved_decoder, edit, words):
    from clipica.intervene.decoder import ComponentDecoder

    meta_file = saved_decoder / "decoder.json"
    meta = json.loads(meta_file.read_text())
    if edit == "invalid":
        meta_file.write_text(meta_file.read_text()[:-20])
    elif edit == "n_components":
        meta["n_components"] = "3"
    elif edit == "image_size":
        meta["image_size"] = 32
    elif edit == "source_mean":
        meta["source_mean"] = meta["source_mean"][:2]
    elif edit == "source_std":
        meta["source_std"] = [0.0, 1.0, 1.0]
    else:
        data = (saved_decoder / "decoder.safetensors").read_bytes()
        (saved_decoder / "decoder.safetensors").write_bytes(data[: len(data) // 2])
    if edit not in ("invalid", "weights"):
        meta_file.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=words) as info:
        ComponentDecoder.load(saved_decoder)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("template", ["{} {0}", "{x}", "{", "{}}", "{:q}", "{}{}", "no slot", "{0}"])
def test_bad_name_template_is_an_input_error(template):
    from clipica.naming.names import load_vocabulary

    with pytest.raises(InputError, match="--template must contain exactly one"):
        load_vocabulary(["smiling", "frowning"], template=template)


def test_template_with_escaped_braces_works():
    from clipica.naming.names import load_vocabulary

    assert load_vocabulary(["a", "b"], template="{{x}} {}") == ["{x} a", "{x} b"]


def test_non_utf8_vocab_is_an_input_error(tmp_path):
    from clipica.naming.names import load_vocabulary

    f = tmp_path / "vocab.txt"
    f.write_bytes("smiling\nfrown\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8 text.*0xe9"):
        load_vocabulary(f)


MATH = r"$\undefined$"


def _render(fig) -> None:
    fig.savefig(io.BytesIO(), format="png")


def test_mathtext_like_labels_render_literally_in_probe_heatmap():
    """A label column named $\\undefined$ is drawn as written; matplotlib's mathtext is not invoked."""
    pytest.importorskip("matplotlib")
    from clipica.probes import probe
    from clipica.viz.probe import plot_probe_heatmap

    rng = np.random.default_rng(0)
    codes = rng.standard_normal((200, 3))
    labels = pd.DataFrame({MATH: (codes[:, 0] > 0).astype(int), "$x$ and $": (codes[:, 1] > 0).astype(int)})
    fig = plot_probe_heatmap(probe(codes, labels))
    _render(fig)
    shown = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sorted(t.replace("\\$", "$") for t in shown) == sorted([MATH, "$x$ and $"])


def test_mathtext_like_labels_render_in_report_and_traversal_figures():
    pytest.importorskip("matplotlib")
    from clipica.viz import plot_attribute_response, plot_auc_comparison, plot_text_response

    _render(plot_auc_comparison({MATH: {"ica": 0.9, "pca": 0.7}, "ok": {"ica": 0.8, "pca": 0.6}}))
    alphas = np.linspace(-2, 2, 5)
    proba = np.linspace(0, 1, 10).reshape(5, 2)
    _render(plot_attribute_response(alphas, proba, [MATH, "b"], target=MATH, title=MATH))
    _render(plot_text_response(alphas, proba, [MATH, "$b"], title=MATH))


# ------------------------------------------------------------------ merge (item 11)
def _shards(model_file, tmp_path):
    folder = _folder(tmp_path / "d", n=5)
    shards = []
    for i in range(2):
        s = tmp_path / f"shard{i}"
        clipica.extract(model=model_file, data=f"folder:{folder}", out=s, shard=f"{i}/2", batch_size=2,
                        num_workers=0, progress=False)
        shards.append(str(s))
    return shards


def test_killed_merge_leaves_no_half_store_and_overwrite_clears_leftovers(model_file, tmp_path, monkeypatch,
                                                                          capsys):
    from clipica.embeddings.extract import merge

    shards = _shards(model_file, tmp_path)
    out = tmp_path / "merged"
    ref = merge(shards, tmp_path / "ref")

    def killed(*a, **k):
        raise KeyboardInterrupt  # stands for a kill between the data files and the manifest

    with monkeypatch.context() as mp:
        mp.setattr("clipica.embeddings.extract.atomic_write_json", killed)
        with pytest.raises(KeyboardInterrupt):
            merge(shards, out)
    assert not out.exists()  # nothing half-written under the final name
    assert not list(tmp_path.glob(".merged*"))  # and no temporary folder left behind

    # the leftovers of a merge killed by an older clipica (data files, no manifest): --overwrite clears them
    out.mkdir()
    for name in ("image.f32", "rows.parquet", "errors.jsonl", ".manifest.json.x1y2.tmp"):
        (out / name).write_bytes(b"partial")
    with pytest.raises(ArtifactExistsError, match="--overwrite"):
        merge(shards, out)
    assert main(["merge", *shards, "--out", str(out), "--overwrite"]) == 0
    capsys.readouterr()
    assert (out / "image.f32").read_bytes() == (tmp_path / "ref" / "image.f32").read_bytes()
    pd.testing.assert_frame_equal(EmbeddingStore.open(out).rows, ref.rows)

    # a folder holding anything else is still refused, even with --overwrite
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "image.f32").write_bytes(b"x")
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    assert main(["merge", *shards, "--out", str(tmp_path / "mine"), "--overwrite"]) == 2
    assert "notes.txt" in _one_line(capsys)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


# ------------------------------------------------ damaged ICA folders through the commands (item 9)
def _fitted(tmp_path):
    from clipica.decompositions.ica import ICA

    rng = np.random.default_rng(0)
    X = rng.laplace(size=(300, 3)) @ rng.standard_normal((3, 3))
    w = StoreWriter(tmp_path / "store", {"model": "m", "data": "d"})
    w.begin({"schema_version": 1, "key": {"model": "m", "data": "d"}, "embed_dim": 3, "has_text": False,
             "label_columns": ["flag"], "model": {"spec": "m"}, "data": {"spec": "d"}}, 0)
    rows = [{"id": f"r{i}", "source_index": i, "caption": None, "split": None, "flag": int(X[i, 0] > 0),
             "caption_truncated": False} for i in range(len(X))]
    w.commit(X.astype(np.float32), None, rows, errors=[], next_position=len(X))
    w.finalize()
    for k in (2, 3):
        ICA(n_components=k, random_state=0).fit(X.astype(np.float32)).save(tmp_path / f"ica{k}")
    return tmp_path / "store", tmp_path / "ica2"


@pytest.mark.parametrize("damage", ["json-invalid", "json-list", "json-k", "arrays-truncated", "arrays-other-k"])
@pytest.mark.parametrize("command", ["probe", "name", "intervene"])
def test_damaged_ica_folder_is_one_line_for_each_command(tmp_path, capsys, damage, command):
    store, ica = _fitted(tmp_path)
    meta_file = next(p for p in ica.iterdir() if p.suffix == ".json")
    arrays = ica / "arrays.safetensors"
    if damage == "json-invalid":
        meta_file.write_text(meta_file.read_text()[:-30])
    elif damage == "json-list":
        meta_file.write_text("[]")
    elif damage == "json-k":
        meta = json.loads(meta_file.read_text())
        meta["n_components"] = 5
        meta["params"]["n_components"] = 5
        meta_file.write_text(json.dumps(meta))
    elif damage == "arrays-truncated":
        arrays.write_bytes(arrays.read_bytes()[:100])
    else:
        arrays.write_bytes((tmp_path / "ica3" / "arrays.safetensors").read_bytes())
    argv = {"probe": ["probe", str(store), "--ica", str(ica), "--out", str(tmp_path / "p")],
            "name": ["name", str(store), "--ica", str(ica)],
            "intervene": ["intervene", str(store), "--ica", str(ica), "--component", "0",
                          "--out", str(tmp_path / "t.png")]}[command]
    assert main(argv) == 2
    err = _one_line(capsys)
    assert str(ica) in err or "ica" in err.lower()
