"""Component decoder: learns beyond the mean image, outputs real pixels, round-trips to disk."""

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clipica.errors import InputError  # noqa: E402
from clipica.intervene.decoder import (  # noqa: E402
    ComponentDecoder,
    ica_fingerprint,
    load_or_train,
    train_decoder,
)


@pytest.fixture(autouse=True)
def one_thread():
    # the test machines are shared; one thread avoids oversubscription stalls
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def blobs(seed, N=256, size=16, K=4):
    """Images whose content is a known function of K sources: blob position, colour, background."""
    rng = np.random.default_rng(seed)
    S = rng.uniform(-1, 1, size=(N, K))
    yy, xx = np.mgrid[0:size, 0:size] / size
    cx, cy = 0.5 + 0.3 * S[:, 0], 0.5 + 0.3 * S[:, 1]
    blob = np.exp(
        -((xx[None] - cx[:, None, None]) ** 2 + (yy[None] - cy[:, None, None]) ** 2) / (2 * 0.12**2)
    )
    imgs = np.empty((N, size, size, 3), np.float32)
    imgs[..., 0] = blob
    imgs[..., 1] = blob * (0.5 + 0.4 * S[:, 2, None, None])
    imgs[..., 2] = 0.3 + 0.3 * S[:, 3, None, None]
    return S, imgs


@pytest.mark.parametrize("seed", [0, 1])
def test_short_training_beats_mean_image_and_stays_in_unit_range(seed):
    S, imgs = blobs(seed)
    dec = train_decoder(S, imgs, image_size=16, presentations=3072, seed=seed, progress=False)
    h = dec.history_
    assert h["presentations"] == 3072 and h["steps"] == 48
    assert h["val_mse"] < 0.3 * h["baseline_mse"], h
    out = dec.decode(S[:50])
    assert out.shape == (50, 16, 16, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    # far-out sources (a +-6 sd traversal) still decode to valid pixels, unclipped
    far = dec.decode(np.tile(S[:1], (2, 1)) + np.array([[6, 0, 0, 0], [-6, 0, 0, 0]]))
    assert far.min() >= 0.0 and far.max() <= 1.0


def test_budget_is_presentations_not_rows(monkeypatch):
    """The decoder's cost is its budget of presentations: twice the rows, the same steps;
    ``epochs`` is the other way to say the budget; both at once is refused."""
    for n in (96, 192):
        S, imgs = blobs(0, N=n)
        h = train_decoder(S, imgs, image_size=16, presentations=256, progress=False).history_
        assert (h["steps"], h["presentations"]) == (4, 256), h
    h = train_decoder(S, imgs, image_size=16, epochs=2, progress=False).history_
    assert h["n_train"] == 173 and h["presentations"] >= 346 and h["steps"] == 6
    with pytest.raises(InputError, match="not both"):
        train_decoder(S, imgs, image_size=16, epochs=1, presentations=64, progress=False)


def test_load_or_train_uses_a_seeded_subsample(tmp_path):
    """At most ``max_images`` rows are loaded (the same ones for the same seed)."""
    S, imgs = blobs(4, N=120)
    rng = np.random.default_rng(0)
    A = rng.normal(size=(10, 4))
    ica = SimpleNamespace(mean_=np.zeros(10), components_=np.linalg.pinv(A), mixing_=A)
    store = _Store((S @ A.T).astype(np.float32), imgs)
    dec = load_or_train(store, ica, tmp_path / "a", image_size=16, max_images=80,
                        presentations=128, progress=False)
    assert store.loaded == 80 and dec.history_["rows_used"] == 80
    assert dec.history_["store_rows"] == 120 and dec.history_["steps"] == 2
    again = load_or_train(store, ica, tmp_path / "b", image_size=16, max_images=80,
                          presentations=128, progress=False)
    np.testing.assert_array_equal(again.decode(S[:3]), dec.decode(S[:3]))


def test_save_load_round_trip(tmp_path):
    S, imgs = blobs(0, N=64)
    dec = train_decoder(S, imgs, image_size=16, epochs=1, progress=False)
    dec.ica_fingerprint_ = "abc"
    dec.save(tmp_path)
    back = ComponentDecoder.load(tmp_path)
    assert back.ica_fingerprint_ == "abc" and back.image_size == 16
    np.testing.assert_array_equal(back.decode(S[:5]), dec.decode(S[:5]))


def test_rejects_normalised_pixels_and_bad_sizes():
    S, imgs = blobs(0, N=16)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        train_decoder(S, imgs * 2 - 1, image_size=16, epochs=1, progress=False)
    with pytest.raises(InputError, match="image_size"):
        ComponentDecoder(4, image_size=48)
    with pytest.raises(InputError, match="shape"):
        train_decoder(S, imgs, image_size=32, epochs=1, progress=False)


class _Store:
    def __init__(self, X, imgs):
        from PIL import Image

        self.image = X
        self._pil = [Image.fromarray((im * 255).astype(np.uint8)) for im in imgs]
        self.calls = self.loaded = 0

    def load_images(self, idx):
        self.calls += 1
        self.loaded += len(idx)
        return [self._pil[i] for i in idx]

    from clipica.embeddings.store import EmbeddingStore

    image_array = EmbeddingStore.image_array  # the real reader, over this fake's load_images


def test_load_or_train_saves_with_the_ica_and_reuses(tmp_path):
    S, imgs = blobs(3, N=96)
    rng = np.random.default_rng(0)
    A = rng.normal(size=(10, 4))
    ica = SimpleNamespace(mean_=np.zeros(10), components_=np.linalg.pinv(A), mixing_=A)
    store = _Store((S @ A.T).astype(np.float32), imgs)
    dec = load_or_train(store, ica, tmp_path, image_size=16, epochs=1, progress=False)
    assert (tmp_path / "decoder.safetensors").is_file() and (tmp_path / "decoder.json").is_file()
    assert dec.ica_fingerprint_ == ica_fingerprint(ica)
    calls = store.calls
    again = load_or_train(store, ica, tmp_path, image_size=16, epochs=1, progress=False)
    assert store.calls == calls  # reused: no image loading, no training
    np.testing.assert_array_equal(again.decode(S[:3]), dec.decode(S[:3]))
    # a different ICA does not reuse it
    ica2 = SimpleNamespace(mean_=np.ones(10), components_=ica.components_, mixing_=A)
    load_or_train(store, ica2, tmp_path, image_size=16, epochs=1, progress=False)
    assert store.calls > calls
