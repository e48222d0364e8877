"""Train and evaluate the built-in ``tiny-faces`` CLIP on fresh synthetic faces.

Training: open_clip's ``ClipLoss`` (symmetric InfoNCE over in-batch pairs,
learnable temperature), AdamW with linear warm-up and cosine decay, a fresh
batch of ``synthetic-faces`` rows every step (rendered in a background thread),
tqdm showing loss and in-batch image->text accuracy.

Evaluation (:func:`evaluate`, written to ``eval.json``) on held-out faces drawn
with a different seed:

* ``retrieval_top1``: image -> caption top-1 accuracy among 256 candidates
  (mean over blocks of 256), with the tie-aware ceiling a perfect model can reach
  (captions carry no image-only information, so identical attribute sets tie);
* ``zero_shot_auc``: per shared attribute, ROC AUC of cos(img, prompts with the
  attribute) - cos(img, prompts without it), prompts averaged over the other
  shared words (sex, hair colour) so they do not leak in;
* ``content_accuracy``: per shared attribute, held-out accuracy of a logistic
  probe on the image embedding (train on one half, test on the other);
* ``style_r2``: per image-only latent, held-out R² of an RBF kernel ridge
  regressor (grid-searched by 3-fold CV on the training half) on the image
  embedding and on raw pixels (2x2 box-averaged); the circular background hue is scored as the
  mean R² of its cosine and sine.

Checkpoints: every ``checkpoint_every`` steps the model, the AdamW moments, the
torch RNG state, the step and the running metrics go into ``checkpoint.safetensors``
in the output folder (one atomic write; settings as JSON in the safetensors
metadata, tagged ``clipica.tiny-checkpoint/1``; never pickled). A later call with
the same settings resumes from it, so an interrupted first ``make demo`` redoes at
most ``checkpoint_every`` steps; the learning-rate schedule is a function of the
step, and step ``s`` always trains on rows ``s * batch_size ...``, so a resumed run
ends with the same weights as an uninterrupted one. The file is removed once the
final weights are written.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from pathlib import Path

import numpy as np

from clipica.data.synthetic_faces import (
    BINARY_COLUMNS,
    HAIR_COLUMNS,
    LATENT_COLUMNS,
    PHRASES,
    SHARED_COLUMNS,
    SyntheticFaces,
)
from clipica.models.tiny_checkpoint import (
    CHECKPOINT_EVERY,
    CHECKPOINT_NAME,
    checkpoint_settings,
    load_checkpoint,
    save_checkpoint,
)

#: training rows come from SyntheticFaces(seed=seed); evaluation rows from seed + EVAL_SEED_OFFSET
EVAL_SEED_OFFSET = 10_000_000
RETRIEVAL_CANDIDATES = 256


def _normaliser():
    import torch
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    mean = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)

    def to_pixels(images: np.ndarray):
        """uint8 (B, H, W, 3) -> float (B, 3, H, W) normalised as open_clip's preprocess does."""
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
        return (x - mean) / std

    return to_pixels


def _batches(source: SyntheticFaces, batch_size: int, steps: int, first_step: int = 0):
    """Yield (images, captions) for steps first_step.. in a background thread (2 batches ahead)."""
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def work():
        try:
            for step in range(first_step, steps):
                if stop.is_set():
                    return
                images, captions, _ = source.batch(step * batch_size, batch_size)
                q.put((images, captions))
        except BaseException as exc:  # surface rendering errors in the training loop
            q.put(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        for _ in range(first_step, steps):
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def auto_threads() -> int:
    """torch threads for training when none are given: 2 when 3 cores are free, else 1.

    On a 2-core machine a second thread gains little and risks much: with both cores
    idle, 2 threads trained the default model at 0.26 s per step against 0.32 s for one
    (the face-rendering thread already uses part of the second core); with the second
    core busy they ran 9x slower (5.0 vs 0.56 s, OpenMP threads spin-waiting for a core).
    So two only when the 1-minute load average leaves 3 cores free (two for torch, one for
    rendering; on systems without a load average: at least 4 cores). The count is
    recorded in ``training.json``; it changes the last digits of the results (the order
    of floating-point sums), not the recipe.
    """
    n = os.cpu_count() or 1
    try:
        free = n - os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows)
        free = n - 1.0
    return 2 if free >= 3.0 else 1


def _lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def ensure_trained(
    steps: int | None = None,
    directory: str | Path | None = None,
    *,
    progress: bool = True,
    announce=None,
) -> Path:
    """The explicit training stage: the cached weights, trained first if missing.

    When ``directory`` (default ``cache_dir() / "tiny-faces"``) holds no current weights,
    says so with the expected duration (``steps`` x
    :data:`clipica.models.tiny.SECONDS_PER_STEP`) through ``announce`` (a callable taking
    one line; default: stderr) and trains ``steps`` steps (default
    :data:`clipica.models.tiny.DEFAULT_STEPS`). Returns the safetensors path.
    """
    import sys

    from clipica.models import tiny

    d = Path(directory) if directory is not None else tiny.default_dir()
    if tiny.is_trained(d):
        return tiny.weights_path(d)
    n = tiny.DEFAULT_STEPS if steps is None else int(steps)
    line = (
        f"clipica: tiny-faces weights not found in {d}; training them now: {n} steps on "
        f"synthetic faces, expected about {max(1, round(n * tiny.SECONDS_PER_STEP / 60))} minutes "
        "on one CPU core (done once, then cached)"
    )
    if announce is None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    else:
        announce(line)
    train_tiny(steps=n, out=d, progress=progress)
    return tiny.weights_path(d)


def train_tiny(
    steps: int | None = None,
    seed: int = 0,
    variant: str = "independent",
    out: str | Path | None = None,
    batch_size: int | None = None,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    warmup_frac: float = 0.06,
    n_eval: int = 2048,
    progress: bool = True,
    num_threads: int | str | None = "auto",
    checkpoint_every: int | None = CHECKPOINT_EVERY,
) -> dict:
    """Train ``tiny-faces`` contrastively on synthetic faces, save it, evaluate it.

    Parameters
    ----------
    steps : int, optional
        Optimiser steps (default :data:`clipica.models.tiny.DEFAULT_STEPS`, about
        8 minutes on one CPU core; :data:`~clipica.models.tiny.TEST_STEPS` for tests).
    seed : int
        Seeds the initialisation (torch) and the training rows ``SyntheticFaces(seed=seed)``.
    variant : {"independent", "correlated"}
        Dependency structure of the training (and evaluation) faces.
    out : path, optional
        Output folder (default ``cache_dir() / "tiny-faces"``). Receives
        ``tiny-faces.safetensors``, ``tiny-faces.json`` (config), ``training.json``
        (metadata and final training metrics) and ``eval.json``.
    batch_size : int, optional
        Pairs per step (in-batch negatives: ``batch_size - 1`` per pair); default
        :data:`clipica.models.tiny.DEFAULT_BATCH_SIZE`.
    lr, weight_decay, warmup_frac : float
        AdamW peak learning rate, decoupled weight decay (not on gains, biases,
        embeddings or the temperature) and warm-up length as a fraction of ``steps``.
    n_eval : int
        Held-out faces for ``eval.json`` (half fit the probes, half score them).
    num_threads : int, "auto" or None
        torch intra-op threads for this call (restored afterwards); None keeps
        torch's setting; "auto" (default): :func:`auto_threads`, 2 on a machine with
        three idle cores, else 1 (on a busy 2-core machine 2 threads ran 9x slower).
    checkpoint_every : int or None
        Save a resumable checkpoint every this many steps (None or 0: never). A
        checkpoint in ``out`` written with the same settings is resumed from;
        one with other settings is ignored (and overwritten by the next save).

    Returns
    -------
    dict with ``weights`` (path), ``training`` (the metadata) and ``eval`` (the metrics).
    """
    import torch

    from clipica.errors import InputError
    from clipica.models import tiny

    steps = tiny.DEFAULT_STEPS if steps is None else int(steps)
    batch_size = tiny.DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
    if steps < 1:
        raise InputError(f"train-tiny: steps must be a positive integer, got {steps}.")
    if batch_size < 2:
        raise InputError(
            f"train-tiny: batch_size must be at least 2 (in-batch negatives), got {batch_size}."
        )
    if n_eval < 2 * RETRIEVAL_CANDIDATES:
        raise InputError(
            f"train-tiny: n_eval must be at least {2 * RETRIEVAL_CANDIDATES}, got {n_eval}."
        )
    if checkpoint_every is not None and int(checkpoint_every) < 0:
        raise InputError(
            f"train-tiny: checkpoint_every must be >= 0 (0: no checkpoints), got {checkpoint_every}."
        )
    out = Path(out) if out is not None else tiny.default_dir()
    out.mkdir(parents=True, exist_ok=True)
    if num_threads == "auto":
        num_threads = auto_threads()
    previous_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        return _train(
            out,
            steps,
            seed,
            variant,
            batch_size,
            lr,
            weight_decay,
            warmup_frac,
            n_eval,
            progress,
            int(checkpoint_every or 0),
        )
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    out,
    steps,
    seed,
    variant,
    batch_size,
    lr,
    weight_decay,
    warmup_frac,
    n_eval,
    progress,
    checkpoint_every=0,
) -> dict:
    import open_clip
    import torch
    from safetensors.torch import save as st_save
    from tqdm.auto import tqdm

    from clipica._atomic import atomic_write_bytes, atomic_write_json
    from clipica.models import tiny

    source = SyntheticFaces(n=steps * batch_size, seed=seed, variant=variant)

    tiny.register_config()
    torch.manual_seed(seed)
    model = open_clip.create_model(tiny.MODEL_NAME)
    model.train()
    tokenizer = open_clip.get_tokenizer(tiny.MODEL_NAME)
    to_pixels = _normaliser()
    loss_fn = open_clip.loss.ClipLoss()

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        # CLIP recipe: no decay on gains/biases (1-D), embeddings and the temperature
        if (
            p.ndim < 2
            or "embedding" in name
            or "logit_scale" in name
            or name.endswith("class_embedding")
        ):
            no_decay.append(p)
        else:
            decay.append(p)
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
        betas=(0.9, 0.98),
        eps=1e-6,
        # one fused kernel instead of a Python loop over ~100 parameter tensors: the
        # optimiser step went from 0.09 to 0.02 s per step on one core (same update rule)
        fused=True,
    )
    warmup = max(1, int(round(warmup_frac * steps)))

    settings = checkpoint_settings(steps, seed, variant, batch_size, lr, weight_decay, warmup_frac)
    ckpt_path = out / CHECKPOINT_NAME
    first_step, running = 0, {}
    if checkpoint_every:
        restored = load_checkpoint(ckpt_path, model, opt, settings)
        if restored is not None:
            first_step, running = restored
    t0, c0 = time.perf_counter(), time.process_time()
    prior_seconds = float(running.get("train_seconds", 0.0))
    prior_cpu = float(running.get("train_cpu_seconds", 0.0))
    ema_loss, ema_acc = running.get("loss_ema"), running.get("inbatch_accuracy_ema")
    bar = tqdm(
        total=steps, initial=first_step, desc="train-tiny", disable=not progress, unit="step"
    )
    if first_step:
        bar.write(f"train-tiny: resuming from the checkpoint at step {first_step} ({ckpt_path})")
    labels = torch.arange(batch_size)
    batches = _batches(source, batch_size, steps, first_step)
    for step, (images, captions) in enumerate(batches, start=first_step):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr, warmup)
        pixels = to_pixels(images)
        tokens = tokenizer(captions)
        img, txt, scale = model(pixels, tokens)
        loss = loss_fn(img, txt, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))  # CLIP's cap on the inverse temperature
            acc = (img @ txt.T).argmax(1).eq(labels).float().mean().item()
        ema_loss = loss.item() if ema_loss is None else 0.9 * ema_loss + 0.1 * loss.item()
        ema_acc = acc if ema_acc is None else 0.9 * ema_acc + 0.1 * acc
        bar.set_postfix(loss=f"{ema_loss:.3f}", acc=f"{ema_acc:.2f}", refresh=False)
        bar.update(1)
        done = step + 1
        if checkpoint_every and done % checkpoint_every == 0 and done < steps:
            save_checkpoint(
                ckpt_path,
                model,
                opt,
                done,
                settings,
                {
                    "loss_ema": ema_loss,
                    "inbatch_accuracy_ema": ema_acc,
                    "train_seconds": prior_seconds + time.perf_counter() - t0,
                    "train_cpu_seconds": prior_cpu + time.process_time() - c0,
                },
            )
    bar.close()
    train_seconds = prior_seconds + time.perf_counter() - t0
    train_cpu_seconds = prior_cpu + time.process_time() - c0
    model.eval()

    # config first, then weights, then the metadata that marks the folder complete
    atomic_write_json(out / tiny.CONFIG_NAME, tiny.model_config())
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(out / tiny.WEIGHTS_NAME, st_save(state, metadata={"model": tiny.MODEL_NAME}))
    meta = {
        "model": tiny.MODEL_NAME,
        "config_hash": tiny.config_hash(),
        "config": tiny.model_config(),
        "steps": steps,
        "seed": seed,
        "variant": variant,
        "batch_size": batch_size,
        "optimizer": {
            "name": "AdamW",
            "lr": lr,
            "betas": [0.9, 0.98],
            "eps": 1e-6,
            "weight_decay": weight_decay,
            "schedule": f"linear warm-up {warmup} steps, cosine decay to 0",
        },
        "loss": "open_clip.loss.ClipLoss (symmetric InfoNCE, learnable temperature, logit scale <= 100)",
        "data": source.describe(),
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu_seconds, 1),
        "resumed_from_step": first_step,
        "checkpoint_every": checkpoint_every,
        "torch_threads": torch.get_num_threads(),
        "final_metrics": {
            "loss_ema": ema_loss,
            "inbatch_accuracy_ema": ema_acc,
            "logit_scale": float(model.logit_scale.exp().item()),
        },
    }
    atomic_write_json(out / tiny.TRAINING_NAME, meta)
    ckpt_path.unlink(missing_ok=True)  # the final weights supersede it

    t1 = time.perf_counter()
    metrics = evaluate(model, tokenizer, n=n_eval, seed=seed + EVAL_SEED_OFFSET, variant=variant)
    metrics["eval_seconds"] = round(time.perf_counter() - t1, 1)
    metrics["training"] = {
        "steps": steps,
        "seed": seed,
        "variant": variant,
        "train_seconds": meta["train_seconds"],
    }
    atomic_write_json(out / tiny.EVAL_NAME, metrics)
    return {"weights": out / tiny.WEIGHTS_NAME, "training": meta, "eval": metrics}


# -- evaluation ------------------------------------------------------------------------


def _prompts(attribute: str) -> tuple[list[str], list[str]]:
    """Prompts stating ``attribute`` and prompts stating its absence, over sex and hair colour."""
    nouns = ("man", "woman")
    hair_words = {
        "Black_Hair": "black",
        "Blond_Hair": "blond",
        "Brown_Hair": "brown",
        "Gray_Hair": "gray",
    }
    if attribute == "Male":
        return (
            [f"a photo of a man with {h} hair." for h in hair_words.values()],
            [f"a photo of a woman with {h} hair." for h in hair_words.values()],
        )
    if attribute in HAIR_COLUMNS:
        pos = [f"a photo of a {n} with {hair_words[attribute]} hair." for n in nouns]
        neg = [
            f"a photo of a {n} with {w} hair."
            for n in nouns
            for h, w in hair_words.items()
            if h != attribute
        ]
        return pos, neg
    present, absent = PHRASES[attribute]
    pos = [
        f"a photo of a {n} with {w} hair {p}."
        for n in nouns
        for w in hair_words.values()
        for p in present
    ]
    neg = [
        f"a photo of a {n} with {w} hair {p}."
        for n in nouns
        for w in hair_words.values()
        for p in absent
    ]
    return pos, neg


def _encode(model, tokenizer, images: np.ndarray, captions: list[str], batch: int = 256):
    import torch

    to_pixels = _normaliser()
    ims, txs = [], []
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            ims.append(model.encode_image(to_pixels(images[s : s + batch])).float().numpy())
        for s in range(0, len(captions), batch):
            txs.append(model.encode_text(tokenizer(captions[s : s + batch])).float().numpy())
    dim = model.text_projection.shape[1]
    return (
        np.concatenate(ims) if ims else np.zeros((0, dim), np.float32),
        np.concatenate(txs) if txs else np.zeros((0, dim), np.float32),
    )


def _unit(x: np.ndarray) -> np.ndarray:
    from clipica._linalg import unit_rows

    return unit_rows(x)


def retrieval_scores(
    img: np.ndarray, txt: np.ndarray, attrs: np.ndarray, block: int = RETRIEVAL_CANDIDATES
) -> dict:
    """Image -> caption retrieval among ``block`` candidates (mean over consecutive blocks).

    ``img``, ``txt``: (n, D) embeddings of paired rows; ``attrs``: (n, k) shared labels.
    Returns top-1 (exact pair), top-1 up to captions with identical shared labels,
    and the exact-pair ceiling of a perfect model that breaks those ties at random.
    """
    img, txt = _unit(img), _unit(txt)
    exact, same_attrs, ceiling = [], [], []
    for s in range(0, len(img) - block + 1, block):
        sims = img[s : s + block] @ txt[s : s + block].T
        pick = sims.argmax(1)
        a = attrs[s : s + block]
        exact.append(np.mean(pick == np.arange(block)))
        same_attrs.append(np.mean(np.all(a[pick] == a, axis=1)))
        ties = (a[:, None, :] == a[None, :, :]).all(-1).sum(1)  # includes the row itself
        ceiling.append(np.mean(1.0 / ties))
    return {
        "retrieval_top1": float(np.mean(exact)),
        "retrieval_top1_same_attributes": float(np.mean(same_attrs)),
        "retrieval_top1_ceiling": float(np.mean(ceiling)),
        "retrieval_candidates": block,
        "retrieval_blocks": len(exact),
    }


def kernel_ridge_r2(
    x: np.ndarray,
    y: np.ndarray,
    n_train: int,
    alphas=(1e-3, 1e-2, 1e-1, 1.0),
    gamma_factors=(0.3, 1.0, 3.0),
    n_folds: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """Held-out R² of RBF kernel ridge regression, one value per target column.

    ``x``: (n, d) features (standardised on the fitting rows here); ``y``: (n, t)
    targets. Rows ``:n_train`` fit, rows ``n_train:`` score. ``gamma`` is
    ``factor / median squared distance``; ``alpha`` and ``gamma`` are chosen per
    target by ``n_folds``-fold CV on the fitting rows. Closed form through one
    eigendecomposition per (fold, gamma), so the whole grid costs a few
    ``n_train``-sized eigensolves (sklearn's GridSearchCV refits every cell).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
    mu, sd = x[:n_train].mean(0), x[:n_train].std(0)
    x = (x - mu) / np.where(sd > 0, sd, 1.0)
    sq = np.einsum("ij,ij->i", x, x)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
    tr = np.arange(n_train)
    med = float(np.median(d2[np.ix_(tr, tr)][np.triu_indices(n_train, 1)])) or 1.0
    folds = np.array_split(np.random.default_rng(seed).permutation(n_train), n_folds)

    def fit_predict(k_fit, k_pred, y_fit):
        """Predictions for every alpha: (n_alpha, n_pred, t). Targets centred on the fit rows."""
        lam, u = np.linalg.eigh(k_fit)
        mean = y_fit.mean(0)
        uy = u.T @ (y_fit - mean)
        kp_u = k_pred @ u
        return np.stack([kp_u @ (uy / (lam + a)[:, None]) + mean for a in alphas])

    cv = np.zeros((len(gamma_factors), len(alphas), y.shape[1]))
    for g, factor in enumerate(gamma_factors):
        k = np.exp(-(factor / med) * d2)
        for va in folds:
            fi = np.setdiff1d(tr, va)
            pred = fit_predict(k[np.ix_(fi, fi)], k[np.ix_(va, fi)], y[fi])
            sse = ((pred - y[va]) ** 2).sum(1)
            cv[g] += sse
    best = cv.reshape(-1, y.shape[1]).argmin(0)
    te = np.arange(n_train, len(x))
    out = np.empty(y.shape[1])
    solved: dict = {}  # one eigendecomposition per chosen gamma, shared by its targets
    for col in range(y.shape[1]):
        g, a = divmod(int(best[col]), len(alphas))
        if g not in solved:
            k = np.exp(-(gamma_factors[g] / med) * d2)
            solved[g] = (k, *np.linalg.eigh(k[np.ix_(tr, tr)]))
        k, lam, u = solved[g]
        yc = y[tr, col] - y[tr, col].mean()
        pred = k[np.ix_(te, tr)] @ (u @ ((u.T @ yc) / (lam + alphas[a]))) + y[tr, col].mean()
        resid = ((y[te, col] - pred) ** 2).sum()
        total = ((y[te, col] - y[te, col].mean()) ** 2).sum()
        out[col] = 1.0 - resid / total if total > 0 else float("nan")
    return out


def style_r2(
    features: np.ndarray, latents: dict[str, np.ndarray], n_train: int, seed: int = 0
) -> dict:
    """Held-out nonlinear (RBF kernel ridge) R² per image-only latent from ``features`` (n, d).

    Rows ``:n_train`` fit (hyper-parameters by CV), the rest score.
    ``latent_bg_hue`` (turns, circular) is scored as the mean R² of its cos and sin.
    """
    cols, names = [], []
    for name in LATENT_COLUMNS:
        y = latents[name].astype(np.float64)
        if name == "latent_bg_hue":
            cols += [np.cos(2 * np.pi * y), np.sin(2 * np.pi * y)]
            names += [name, name]
        else:
            cols.append(y)
            names.append(name)
    r2 = kernel_ridge_r2(features, np.stack(cols, axis=1), n_train, seed=seed)
    return {
        name: float(np.mean([v for n_, v in zip(names, r2, strict=True) if n_ == name]))
        for name in LATENT_COLUMNS
    }


def evaluate(
    model, tokenizer, n: int = 2048, seed: int = EVAL_SEED_OFFSET, variant: str = "independent"
) -> dict:
    """The four headline metrics of a CLIP-style ``model`` on ``n`` held-out synthetic faces.

    ``model`` is an open_clip CLIP (``encode_image``/``encode_text``); ``tokenizer``
    maps strings to token tensors. ``n`` must be at least 2 x 256. Returns a
    JSON-able dict (see the module docstring).
    """
    from clipica.errors import InputError

    if n < 2 * RETRIEVAL_CANDIDATES:
        raise InputError(f"evaluate: n must be at least {2 * RETRIEVAL_CANDIDATES}, got {n}.")
    model.eval()
    source = SyntheticFaces(n=n, seed=seed, variant=variant)
    images, captions, labels = source.batch(0, n)
    img, txt = _encode(model, tokenizer, images, captions)
    prompts = {name: _prompts(name) for name in SHARED_COLUMNS}
    prompt_emb = {
        name: (
            _encode(model, tokenizer, images[:0], pos)[1],
            _encode(model, tokenizer, images[:0], neg)[1],
        )
        for name, (pos, neg) in prompts.items()
    }
    from threadpoolctl import threadpool_limits

    # The probes are small: one BLAS thread is as fast on an idle machine and avoids
    # OpenBLAS's spin-waiting collapse (15x slower) on a CPU shared with other jobs.
    with threadpool_limits(limits=1):
        return _score(images, img, txt, labels, prompt_emb, n, seed, variant)


def _score(images, img, txt, labels, prompt_emb, n, seed, variant) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    attrs = np.stack([labels[c] for c in SHARED_COLUMNS], axis=1)
    result = {"n_eval": n, "eval_seed": seed, "variant": variant}
    result.update(retrieval_scores(img, txt, attrs))

    # zero-shot: prompt ensembles with vs without each attribute
    img_u = _unit(img)
    auc = {}
    for name in SHARED_COLUMNS:
        tp, tn = prompt_emb[name]
        score = (
            img_u @ _unit(_unit(tp).mean(0, keepdims=True))[0]
            - img_u @ _unit(_unit(tn).mean(0, keepdims=True))[0]
        )
        y = labels[name]
        auc[name] = float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")
    result["zero_shot_auc"] = auc
    result["zero_shot_auc_mean"] = float(np.nanmean(list(auc.values())))

    # content: logistic probe, first half fits, second half scores
    half = n // 2
    scaler = StandardScaler().fit(img_u[:half])
    x = scaler.transform(img_u)
    acc, base = {}, {}
    for name in SHARED_COLUMNS:
        y = labels[name].astype(int)
        if len(np.unique(y[:half])) < 2:
            acc[name] = float("nan")
            continue
        clf = LogisticRegression(max_iter=2000, C=1.0).fit(x[:half], y[:half])
        acc[name] = float(clf.score(x[half:], y[half:]))
        base[name] = float(max(y[half:].mean(), 1 - y[half:].mean()))
    result["content_accuracy"] = acc
    result["content_accuracy_mean"] = float(np.nanmean(list(acc.values())))
    result["content_majority_baseline"] = base

    # style: nonlinear regression of the image-only latents, from embeddings and from raw pixels
    latents = {c: labels[c] for c in LATENT_COLUMNS}
    # raw pixels, 2x2 box-averaged (a 4x cheaper kernel, same information at this scale)
    h = images.shape[1] // 2 * 2
    pooled = images[:, :h, :h].astype(np.float32).reshape(n, h // 2, 2, h // 2, 2, 3).mean((2, 4))
    pixels = pooled.reshape(n, -1) / 255.0
    result["style_r2"] = {
        "image_embedding": style_r2(img, latents, half, seed=0),
        "raw_pixels_2x2_pooled": style_r2(pixels, latents, half, seed=0),
        "regressor": (
            "RBF kernel ridge on standardised features; alpha in (1e-3, 1e-2, 0.1, 1), "
            "gamma in (0.3, 1, 3) / median squared distance, chosen by 3-fold CV on the fitting half"
        ),
        "hue": "latent_bg_hue scored as mean R2 of cos(2 pi hue) and sin(2 pi hue)",
    }
    result["binary_attributes"] = list(BINARY_COLUMNS)
    return result
