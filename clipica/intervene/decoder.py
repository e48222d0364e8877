"""A small image decoder from ICA components to pixels, for traversal pictures.

Embeddings cannot be drawn; a decoder trained to map the K ICA sources of a
row back to its image can. It is a plain transposed-convolution stack:
``Linear(K -> C*4*4)``, then ``log2(image_size / 4)`` stride-2 transposed
convolutions (each doubling the side, halving the channels, BatchNorm + ReLU),
then a 3x3 convolution to RGB and a **sigmoid**, so outputs are real pixel
values in [0, 1]. It is trained on real pixels in [0, 1] (never on
normalised tensors, and never clipped afterwards: an original pitfall) with
mean squared error.

The decoder belongs to one fitted ICA: :func:`load_or_train` saves it inside
the ICA directory (``decoder.safetensors`` + ``decoder.json``) with a
fingerprint of the ICA, and reuses it when the fingerprint matches.

Inputs are standardised sources (per-component mean and std from the training
rows, stored with the weights), so edited sources in the same units decode
consistently. torch is used only inside this module; numpy in, numpy out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from clipica.errors import InputError, StoreError

WEIGHTS_FILE = "decoder.safetensors"
#: training images shown to a new decoder by default (batches of 64): its cost is fixed,
#: whatever the store's size (about 2.5 ms of one core per image). Halved from 24,000: on the
#: demo's ICA the held-out MSE went from 0.0512 to 0.0526 (mean-image baseline 0.0711) and
#: the decoded traversals stayed as legible, for half the time
DEFAULT_PRESENTATIONS = 12_000
#: rows (images) a new decoder trains on by default: a seeded subsample of the store
DEFAULT_ROWS = 6_000
META_FILE = "decoder.json"
SCHEMA = 1

__all__ = ["DEFAULT_PRESENTATIONS", "DEFAULT_ROWS", "ComponentDecoder", "ica_fingerprint", "load_or_train", "train_decoder"]


def _build_module(n_components: int, image_size: int, width: int) -> Any:
    import torch
    from torch import nn

    n_up = int(round(math.log2(image_size / 4)))
    if image_size < 8 or 4 * 2**n_up != image_size:
        raise InputError(
            f"image_size must be 4 * 2**n with n >= 1 (8, 16, 32, 64, 128), got {image_size}"
        )
    chans = [
        width * 2 ** (n_up - j) for j in range(n_up + 1)
    ]  # halves per stage: width*2**n_up ... width

    class _Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c0 = chans[0]
            self.fc = nn.Linear(n_components, chans[0] * 16)
            layers: list[nn.Module] = []
            for a, b in zip(chans[:-1], chans[1:], strict=True):
                layers += [
                    nn.ConvTranspose2d(a, b, 4, stride=2, padding=1),
                    nn.BatchNorm2d(b),
                    nn.ReLU(inplace=True),
                ]
            self.up = nn.Sequential(*layers)
            self.out = nn.Conv2d(chans[-1], 3, 3, padding=1)
            # per-pixel logit offset, set to logit(mean training image) before training:
            # the decoder starts at the mean-image baseline and learns the differences
            self.pixel_bias = nn.Parameter(torch.zeros(3, image_size, image_size))

        def forward(self, s: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.fc(s)).view(-1, self.c0, 4, 4)
            return torch.sigmoid(self.out(self.up(h)) + self.pixel_bias)  # (B, 3, H, W) in [0, 1]

    return _Decoder()


class ComponentDecoder:
    """Decoder from K ICA sources to RGB images in [0, 1].

    Parameters
    ----------
    n_components : K.
    image_size : output side in pixels (4 * 2**n; default 64).
    width : channels of the last stage; the first stage has ``width * image_size / 8``.

    Attributes (after training or loading)
    --------------------------------------
    source_mean_, source_std_ : (K,) input standardisation.
    history_ : dict with ``train_mse``, ``val_mse``, ``baseline_mse`` (MSE of
        predicting the mean training image on the validation rows), ``epochs``, ``n_train``.
    ica_fingerprint_ : str or None -- the ICA this decoder belongs to.
    """

    def __init__(self, n_components: int, image_size: int = 64, width: int = 8) -> None:
        self.n_components = int(n_components)
        self.image_size = int(image_size)
        self.width = int(width)
        self.module = _build_module(self.n_components, self.image_size, self.width)
        self.source_mean_ = np.zeros(self.n_components)
        self.source_std_ = np.ones(self.n_components)
        self.history_: dict = {}
        self.ica_fingerprint_: str | None = None

    def _inputs(self, S: Any) -> Any:
        import torch

        S = np.asarray(S, dtype=np.float64)
        if S.ndim != 2 or S.shape[1] != self.n_components:
            raise InputError(f"sources must have shape (n, {self.n_components}), got {S.shape}")
        if not np.all(np.isfinite(S)):
            raise InputError("sources contain NaN or infinite values")
        return torch.from_numpy(((S - self.source_mean_) / self.source_std_).astype(np.float32))

    def decode(self, S: Any, batch_size: int = 256) -> np.ndarray:
        """(N, K) sources -> float32 images (N, image_size, image_size, 3) in [0, 1]."""
        import torch

        x = self._inputs(S)
        self.module.eval()
        out = []
        with torch.inference_mode():
            for s in range(0, len(x), batch_size):
                out.append(self.module(x[s : s + batch_size]).permute(0, 2, 3, 1).numpy())
        if not out:
            return np.zeros((0, self.image_size, self.image_size, 3), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    # -- persistence -------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``decoder.safetensors`` and ``decoder.json`` into ``directory`` (atomically)."""
        from safetensors.torch import save as st_save

        from clipica._atomic import atomic_write_bytes, atomic_write_json

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.module.state_dict().items()}
        atomic_write_bytes(d / WEIGHTS_FILE, st_save(tensors))
        atomic_write_json(
            d / META_FILE,
            {
                "schema": SCHEMA,
                "n_components": self.n_components,
                "image_size": self.image_size,
                "width": self.width,
                "output": "RGB pixels in [0, 1] (sigmoid), shape (image_size, image_size, 3)",
                "source_mean": self.source_mean_.tolist(),
                "source_std": self.source_std_.tolist(),
                "ica_fingerprint": self.ica_fingerprint_,
                "history": self.history_,
            },
        )
        return d

    @classmethod
    def load(cls, directory: str | Path) -> ComponentDecoder:
        """Read a decoder written by :meth:`save`."""
        from safetensors.torch import load_file

        d = Path(directory)
        if not (d / META_FILE).is_file() or not (d / WEIGHTS_FILE).is_file():
            raise StoreError(f"no decoder in {str(d)!r} (expected {META_FILE} and {WEIGHTS_FILE})")
        from clipica._format import read_json
        from clipica.errors import ArtifactError, describe_exception

        meta = read_json(d / META_FILE)
        fix = "delete the folder's decoder files or pass --retrain-decoder to train a new one"

        def bad(what: str) -> ArtifactError:
            return ArtifactError(f"{d / META_FILE}: {what}; was it hand-edited? {fix}")

        for field in ("n_components", "image_size", "width"):
            v = meta.get(field)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise bad(f"{field} must be a positive integer, got {v!r}")
        if meta.get("schema", SCHEMA) != SCHEMA:
            raise bad(f"schema {meta.get('schema')!r} is not {SCHEMA}, the one this clipica reads")
        stats = {}
        for field in ("source_mean", "source_std"):
            try:
                arr = np.asarray(meta.get(field), dtype=np.float64)
            except (TypeError, ValueError):
                raise bad(f"{field} must be a list of numbers") from None
            if arr.shape != (meta["n_components"],) or not np.all(np.isfinite(arr)):
                raise bad(f"{field} must hold {meta['n_components']} finite numbers")
            stats[field] = arr
        if np.any(stats["source_std"] <= 0):
            raise bad("source_std must be positive")
        try:
            dec = cls(meta["n_components"], meta["image_size"], meta["width"])
            dec.module.load_state_dict(load_file(str(d / WEIGHTS_FILE)))
        except Exception as exc:  # noqa: BLE001 - safetensors/torch raise several types for damaged weights
            why = " ".join(describe_exception(exc).split())[:300]  # torch's message spans lines
            raise ArtifactError(f"{d / WEIGHTS_FILE} does not hold the decoder {META_FILE} describes ({why}); {fix}") from None
        dec.source_mean_ = stats["source_mean"]
        dec.source_std_ = stats["source_std"]
        dec.history_ = meta.get("history", {})
        dec.ica_fingerprint_ = meta.get("ica_fingerprint")
        dec.module.eval()
        return dec


def _to_chw(images: Any, image_size: int) -> np.ndarray:
    """(N, H, W, 3) uint8 or float in [0, 1] -> float32 (N, 3, H, W) in [0, 1]."""
    im = np.asarray(images)
    if im.ndim != 4 or im.shape[-1] != 3 or im.shape[1:3] != (image_size, image_size):
        raise InputError(
            f"images must have shape (N, {image_size}, {image_size}, 3), got {im.shape}"
        )
    if im.dtype == np.uint8:
        im = im.astype(np.float32) / 255.0
    im = np.asarray(im, dtype=np.float32)
    if im.size and (im.min() < 0 or im.max() > 1):
        raise InputError(
            "float images must hold real pixel values in [0, 1] (not normalised tensors)"
        )
    return np.ascontiguousarray(im.transpose(0, 3, 1, 2))


def train_decoder(
    sources: Any,
    images: Any,
    *,
    image_size: int = 64,
    width: int = 8,
    presentations: int | None = None,
    epochs: float | None = None,
    batch_size: int = 64,
    lr: float = 3e-3,
    val_fraction: float = 0.1,
    seed: int = 0,
    progress: bool = True,
) -> ComponentDecoder:
    """Train a :class:`ComponentDecoder` from sources (N, K) to images (N, H, W, 3).

    The budget is ``presentations`` training images shown in all (default
    :data:`DEFAULT_PRESENTATIONS`), or ``epochs`` passes over the training rows when
    given instead; batches walk through seeded permutations of the training rows, so the
    last pass may be partial. The cost is ``presentations`` forward/backward passes,
    whatever N. Adam with a one-cycle learning rate, MSE on [0, 1] pixels. A held-out
    ``val_fraction`` of rows gives ``history_["val_mse"]`` beside the mean-image
    baseline ``history_["baseline_mse"]``. A tqdm bar shows the images presented.
    """
    import torch

    S = np.asarray(sources, dtype=np.float64)
    Y = _to_chw(images, image_size)
    if S.ndim != 2 or len(S) != len(Y):
        raise InputError(
            f"sources (N, K) and images (N, ...) must have the same N, got {S.shape} and {Y.shape}"
        )
    if len(S) < 8:
        raise InputError(f"need at least 8 images to train a decoder, got {len(S)}")
    if presentations is not None and epochs is not None:
        raise InputError("give the decoder's budget as presentations or as epochs, not both")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(S))
    n_val = int(round(val_fraction * len(S))) if val_fraction > 0 else 0
    val, tr = perm[:n_val], perm[n_val:]
    presentations = _budget(presentations, epochs, len(tr))
    batch_size = max(2, min(int(batch_size), len(tr)))  # BatchNorm needs 2+ samples
    steps = max(1, math.ceil(presentations / batch_size))
    torch.manual_seed(seed)
    dec = ComponentDecoder(S.shape[1], image_size=image_size, width=width)
    dec.source_mean_ = S[tr].mean(0)
    sd = S[tr].std(0)
    dec.source_std_ = np.where(sd > 0, sd, 1.0)
    with torch.no_grad():
        m = torch.from_numpy(Y[tr].mean(0)).clamp(0.01, 0.99)
        dec.module.pixel_bias.copy_(torch.log(m / (1 - m)))
    train_mse = _optimise(dec.module, dec._inputs(S), torch.from_numpy(Y), tr, steps=steps,
                          batch_size=batch_size, lr=lr, seed=seed, progress=progress)
    hist = {
        "train_mse_running": train_mse,
        "presentations": int(steps * batch_size),
        "steps": int(steps),
        "batch_size": int(batch_size),
        "epochs": round(steps * batch_size / len(tr), 3),
        "n_train": int(len(tr)),
        "n_val": int(len(val)),
    }
    mean_img = Y[tr].mean(0)
    eval_rows = val if len(val) else tr
    pred = dec.decode(S[eval_rows]).transpose(0, 3, 1, 2)
    hist["val_mse" if len(val) else "train_mse"] = float(np.mean((pred - Y[eval_rows]) ** 2))
    hist["baseline_mse"] = float(np.mean((mean_img[None] - Y[eval_rows]) ** 2))
    hist["baseline"] = "mean training image"
    dec.history_ = hist
    return dec


def _budget(presentations: int | None, epochs: float | None, n_train: int) -> int:
    """Training images to present: ``presentations``, or ``epochs`` passes over ``n_train`` rows."""
    if epochs is not None:
        if not epochs > 0:
            raise InputError(f"epochs must be > 0, got {epochs}")
        presentations = int(math.ceil(float(epochs) * n_train))
    elif presentations is None:
        presentations = DEFAULT_PRESENTATIONS
    presentations = int(presentations)
    if presentations < 1:
        raise InputError(f"presentations must be a positive integer, got {presentations}")
    return presentations


def _optimise(model: Any, X: Any, Yt: Any, tr: np.ndarray, *, steps: int, batch_size: int, lr: float,
              seed: int, progress: bool) -> float:
    """Adam with a one-cycle learning rate on MSE over the training rows ``tr``; returns the
    running training MSE of the last batches."""
    import torch
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(seed)
    tr_t = torch.from_numpy(tr)
    bar = tqdm(total=steps * batch_size, desc="training component decoder", unit="img",
               disable=not progress, unit_scale=True)
    order, pos = tr_t[torch.randperm(len(tr_t), generator=gen)], 0
    tot, cnt, train_mse = 0.0, 0, float("nan")
    model.train()
    for step in range(steps):
        if pos + batch_size > len(order):  # a fresh permutation: every row once per pass
            order, pos = tr_t[torch.randperm(len(tr_t), generator=gen)], 0
        b = order[pos : pos + batch_size]
        pos += batch_size
        loss = torch.mean((model(X[b]) - Yt[b]) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        tot += float(loss.detach()) * len(b)
        cnt += len(b)
        bar.update(len(b))
        if (step + 1) % 20 == 0 or step + 1 == steps:
            train_mse, tot, cnt = tot / max(cnt, 1), 0.0, 0  # running MSE of the last batches
            bar.set_postfix(mse=f"{train_mse:.4f}", refresh=False)
    bar.close()
    return train_mse


def ica_fingerprint(ica: Any) -> str:
    """The decomposition's ``fingerprint()`` (a decoder belongs to one decomposition).

    Objects that only carry the contract arrays (``mean_``, ``components_``, ``mixing_``)
    get the same content hash of those arrays.
    """
    fp = getattr(ica, "fingerprint", None)
    if callable(fp):
        return str(fp())
    from clipica._format import content_hash

    arrays = {name: np.asarray(getattr(ica, name), dtype=np.float64)
              for name in ("mean_", "components_", "mixing_") if hasattr(ica, name)}
    return content_hash(arrays, {"kind": "", "blocks": None})


def load_or_train(
    store: Any,
    ica: Any,
    ica_dir: str | Path,
    *,
    image_size: int = 64,
    max_images: int = DEFAULT_ROWS,
    presentations: int | None = None,
    epochs: float | None = None,
    retrain: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> ComponentDecoder:
    """The decoder saved in ``ica_dir``, or train one on the store's images and save it there.

    A saved decoder is reused when it was trained for this ICA (same
    fingerprint) and image size; otherwise (or with ``retrain``) a new one is
    trained on a seeded subsample of at most ``max_images`` of the store's rows, for a
    budget of ``presentations`` images (default :data:`DEFAULT_PRESENTATIONS`; or
    ``epochs`` passes over the subsample). Neither the images loaded nor the training
    steps grow with the store: a 200k-row store costs what a 20k-row one does.
    """
    from tqdm.auto import tqdm


    d = Path(ica_dir)
    fp = ica_fingerprint(ica)
    if not retrain and (d / META_FILE).is_file():
        dec = ComponentDecoder.load(d)
        if dec.ica_fingerprint_ == fp and dec.image_size == image_size:
            return dec
    X = store.image
    N = len(X)
    rng = np.random.default_rng(seed)
    idx = np.arange(N) if N <= max_images else np.sort(rng.choice(N, max_images, replace=False))
    mean = np.asarray(ica.mean_, dtype=np.float64)
    W = np.asarray(ica.components_, dtype=np.float64)
    S = (np.asarray(X[idx], dtype=np.float64) - mean) @ W.T
    imgs = np.empty((len(idx), image_size, image_size, 3), dtype=np.uint8)
    chunk = 256
    for s in tqdm(
        range(0, len(idx), chunk), desc="loading images for the decoder", disable=not progress
    ):
        try:
            imgs[s : s + chunk] = store.image_array(idx[s : s + chunk], image_size, dtype=np.uint8)
        except StoreError as exc:
            raise StoreError(f"cannot train the decoder: {exc}") from exc
    dec = train_decoder(S, imgs, image_size=image_size, presentations=presentations,
                        epochs=epochs, seed=seed, progress=progress)
    dec.ica_fingerprint_ = fp
    dec.history_["rows_used"] = int(len(idx))
    dec.history_["store_rows"] = int(N)
    dec.save(d)
    return dec
