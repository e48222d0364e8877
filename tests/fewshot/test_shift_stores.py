"""``fewshot --shift`` refuses a store of another encoder (issue 26, defect 4): trained
tiny-faces against random-weight tiny-faces (same width) gave rc 0 and meaningless accuracies."""

from __future__ import annotations

import numpy as np
import pytest

from clipica.errors import InputError
from clipica.fewshot.stores import fewshot_from_stores

TRAINED = {"spec": "tiny-faces", "pretrained": None, "preprocess": "original",
           "encoder": {"backend": "open_clip", "architecture": "tiny-faces",
                       "weights": "checkpoint file /cache/tiny-faces.safetensors",
                       "preprocess": {"mode": "original", "crop": 64}}}


def _store(path, X, y, model, normalize=False, layer=None):
    from clipica.embeddings.store import StoreWriter

    key = {"model": "tiny-faces", "data": "d", "normalize": normalize, **({"layer": layer} if layer else {})}
    w = StoreWriter(path, key)
    w.begin({"schema_version": 1, "key": key, "embed_dim": X.shape[1], "has_text": False,
             "label_columns": ["A"], "model": model, "data": {"spec": "d"}, "normalize": normalize,
             **({"layer": layer} if layer else {})}, 0)
    rows = [{"id": f"r{i}", "source_index": i, "caption": "c", "split": None, "caption_truncated": False,
             "A": int(y[i])} for i in range(len(X))]
    w.commit(X.astype(np.float32), None, rows, errors=[], next_position=len(X))
    w.finalize()
    return path


def _blobs(seed, n=80, d=5):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return rng.standard_normal((n, d)) + 2.0 * y[:, None], y


@pytest.mark.parametrize("change, field", [
    ({"encoder": {**TRAINED["encoder"], "weights": "random initialisation (torch seed 0), not trained"}},
     "weights"),
    ({"encoder": {**TRAINED["encoder"], "preprocess": {"mode": "native"}}}, "preprocessing"),
])
def test_a_shift_store_of_another_encoder_is_refused(tmp_path, change, field):
    X, y = _blobs(0)
    train = _store(tmp_path / "train", X, y, TRAINED)
    Xs, ys = _blobs(1, n=40)
    other = _store(tmp_path / "other", Xs, ys, {**TRAINED, **change})
    same = _store(tmp_path / "same", Xs, ys, TRAINED)
    kw = dict(label="A", shots=[1], val_shots=[1], seeds=[0], variants=["linear"], settings=[("l2", "fewshot")])
    res = fewshot_from_stores(train, shifts={"ok": same}, **kw)  # the same encoder: scored
    assert res.results[0].test_sets[-1] == "ok"
    with pytest.raises(InputError, match=f"shift 'bad' store .* other {field} than the train store"):
        fewshot_from_stores(train, shifts={"bad": other}, **kw)


def test_a_shift_store_with_other_normalisation_is_refused(tmp_path):
    X, y = _blobs(0)
    train = _store(tmp_path / "train", X, y, TRAINED)
    other = _store(tmp_path / "other", *_blobs(1, n=40), TRAINED, normalize=True)
    with pytest.raises(InputError, match="other normalisation"):
        fewshot_from_stores(train, shifts={"n": other}, label="A", shots=[1], val_shots=[1], seeds=[0],
                            variants=["linear"])


def test_a_shift_store_of_another_layer_is_refused(tmp_path):
    X, y = _blobs(0)
    train = _store(tmp_path / "train", X, y, TRAINED)  # written before --layer: the final layer
    other = _store(tmp_path / "other", *_blobs(1, n=40), TRAINED, layer="block:1")
    with pytest.raises(InputError, match="other layer"):
        fewshot_from_stores(train, shifts={"b": other}, label="A", shots=[1], val_shots=[1], seeds=[0],
                            variants=["linear"])
