"""Train the built-in ``tiny-faces`` CLIP on fresh synthetic faces, and ship its weights.

The training side of :mod:`clipica.models.tiny` (the library's loading side never
imports this module). Training: open_clip's ``ClipLoss`` (symmetric InfoNCE over
in-batch pairs, learnable temperature), AdamW with linear warm-up and cosine decay, a
fresh batch of ``synthetic-faces`` rows every step (rendered in a background thread),
tqdm showing loss and in-batch image->text accuracy. After training the model is scored
on held-out faces (:func:`clipica.models.tiny.evaluate.evaluate`, ``eval.json``).

The recipe (:func:`recipe`) is the architecture, every training setting and a digest
of the code that defines the training numerics; its hash (:func:`recipe_hash`) is
written to ``recipe.json`` next to the weights, so a shipped checkpoint whose recipe no
longer matches the code is detected (tests/test_tiny_shipped.py).

Checkpoints (:mod:`clipica.models.tiny.checkpoint`): every ``checkpoint_every`` steps
the model, the AdamW moments, the torch RNG state, the step and the running metrics go
into ``checkpoint.safetensors`` in the output folder. A later call with the same
settings resumes from it; the learning-rate schedule is a function of the step, and
step ``s`` always trains on rows ``s * batch_size ...``, so a resumed run ends with the
same weights as an uninterrupted one. The file is removed once the final weights are
written.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import math
import os
import queue
import textwrap
import threading
import time
from pathlib import Path

from clipica.data.synthetic_faces import SyntheticFaces
from clipica.models.tiny.checkpoint import (
    CHECKPOINT_EVERY,
    CHECKPOINT_NAME,
    checkpoint_settings,
    load_checkpoint,
    save_checkpoint,
)
from clipica.models.tiny.evaluate import (
    EVAL_SEED_OFFSET,
    RETRIEVAL_CANDIDATES,
    evaluate,
    normaliser,
)

#: the recipe's optimiser settings (CLIP's betas and eps, decoupled weight decay on matrices)
LR = 2e-3
WEIGHT_DECAY = 0.05
WARMUP_FRAC = 0.06
BETAS = (0.9, 0.98)
EPS = 1e-6
#: held-out faces for eval.json
N_EVAL = 2048

__all__ = [
    "EVAL_SEED_OFFSET",
    "auto_threads",
    "ensure_trained",
    "export_fp16",
    "recipe",
    "recipe_hash",
    "train_tiny",
]


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


def _optimizer(model, lr: float, weight_decay: float):
    import torch

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
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
        betas=BETAS,
        eps=EPS,
        # one fused kernel instead of a Python loop over ~100 parameter tensors: the
        # optimiser step went from 0.09 to 0.02 s per step on one core (same update rule)
        fused=True,
    )


def _step(model, opt, loss_fn, pixels, tokens, labels) -> tuple[float, float]:
    """One optimiser step on a batch; returns (loss, in-batch image->text accuracy)."""
    import torch

    img, txt, scale = model(pixels, tokens)
    loss = loss_fn(img, txt, scale)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, math.log(100))  # CLIP's cap on the inverse temperature
        acc = (img @ txt.T).argmax(1).eq(labels).float().mean().item()
    return loss.item(), acc


#: the functions whose code defines the training numerics: their source (docstrings and
#: comments aside) is part of the recipe hash
_RECIPE_CODE = (_batches, _lr_at, _optimizer, _step, normaliser)


def _code_digest() -> str:
    """sha256 of the recipe functions' syntax trees, docstrings stripped: formatting and
    comments do not change it, any change of what the code computes does."""
    parts = []
    for fn in _RECIPE_CODE:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (
                isinstance(body, list)
                and body
                and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
        parts.append(ast.dump(tree, annotate_fields=False))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def recipe(
    steps: int | None = None,
    batch_size: int | None = None,
    variant: str = "independent",
    lr: float = LR,
    weight_decay: float = WEIGHT_DECAY,
    warmup_frac: float = WARMUP_FRAC,
    n_eval: int = N_EVAL,
) -> dict:
    """The training recipe as JSON-able data: architecture, settings, data, code digest.

    Everything that decides the trained weights except the seed (recorded beside it) and
    the torch thread count (which only reorders floating-point sums). Defaults: the
    shipped recipe.
    """
    from clipica.models import tiny

    return {
        "model": tiny.MODEL_NAME,
        "architecture": tiny.model_config(),
        "steps": tiny.DEFAULT_STEPS if steps is None else int(steps),
        "batch_size": tiny.DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size),
        "variant": str(variant),
        "optimizer": {
            "name": "AdamW (fused)",
            "lr": float(lr),
            "betas": list(BETAS),
            "eps": EPS,
            "weight_decay": float(weight_decay),
            "weight_decay_on": "matrices only (not gains, biases, embeddings, temperature)",
            "warmup_frac": float(warmup_frac),
            "schedule": "linear warm-up over warmup_frac of the steps, cosine decay to 0",
        },
        "loss": "open_clip.loss.ClipLoss (symmetric InfoNCE, learnable temperature, logit scale <= 100)",
        "data": "clipica.data.synthetic_faces v1: SyntheticFaces(seed=seed), step s trains on rows "
        "s * batch_size ...; evaluation on seed + 10000000",
        "n_eval": int(n_eval),
        "code_digest": _code_digest(),
    }


def recipe_hash(rec: dict | None = None) -> str:
    """Short sha256 of a recipe's canonical JSON (default: the current code's shipped recipe)."""
    canon = json.dumps(recipe() if rec is None else rec, sort_keys=True)
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


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
    lr: float = LR,
    weight_decay: float = WEIGHT_DECAY,
    warmup_frac: float = WARMUP_FRAC,
    n_eval: int = N_EVAL,
    progress: bool = True,
    num_threads: int | str | None = "auto",
    checkpoint_every: int | None = CHECKPOINT_EVERY,
) -> dict:
    """Train ``tiny-faces`` contrastively on synthetic faces, save it, evaluate it.

    Parameters
    ----------
    steps : int, optional
        Optimiser steps (default :data:`clipica.models.tiny.DEFAULT_STEPS`;
        :data:`~clipica.models.tiny.TEST_STEPS` for tests).
    seed : int
        Seeds the initialisation (torch) and the training rows ``SyntheticFaces(seed=seed)``.
    variant : {"independent", "correlated"}
        Dependency structure of the training (and evaluation) faces.
    out : path, optional
        Output folder (default ``cache_dir() / "tiny-faces"``). Receives
        ``tiny-faces.safetensors`` (fp32), ``tiny-faces.json`` (config), ``recipe.json``
        (:func:`recipe`, its hash and the seed), ``training.json`` (metadata and final
        training metrics) and ``eval.json``.
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
    rec = recipe(steps, batch_size, variant, lr, weight_decay, warmup_frac, n_eval)
    try:
        return _train(out, rec, seed, progress, int(checkpoint_every or 0))
    finally:
        torch.set_num_threads(previous_threads)


def _train(out: Path, rec: dict, seed: int, progress: bool, checkpoint_every: int = 0) -> dict:
    """Train by the recipe ``rec`` from ``seed`` into ``out``, then evaluate (see train_tiny)."""
    import open_clip
    import torch

    from clipica.models import tiny

    steps, batch_size, variant = rec["steps"], rec["batch_size"], rec["variant"]
    lr, weight_decay = rec["optimizer"]["lr"], rec["optimizer"]["weight_decay"]
    warmup_frac = rec["optimizer"]["warmup_frac"]
    tiny.register_config()
    torch.manual_seed(seed)
    model = open_clip.create_model(tiny.MODEL_NAME)
    model.train()
    opt = _optimizer(model, lr, weight_decay)
    settings = checkpoint_settings(steps, seed, variant, batch_size, lr, weight_decay, warmup_frac)
    ckpt_path = out / CHECKPOINT_NAME
    first_step, running = 0, {}
    if checkpoint_every:
        restored = load_checkpoint(ckpt_path, model, opt, settings)
        if restored is not None:
            first_step, running = restored
    source = SyntheticFaces(n=steps * batch_size, seed=seed, variant=variant)
    warmup = max(1, int(round(warmup_frac * steps)))
    running = _loop(
        model, opt, source, rec, warmup, first_step, running, progress,
        lambda done, run: save_checkpoint(ckpt_path, model, opt, done, settings, run)
        if checkpoint_every and done % checkpoint_every == 0 and done < steps
        else None,
    )
    model.eval()
    meta = _training_meta(rec, seed, warmup, source, running, first_step, checkpoint_every)
    meta["final_metrics"]["logit_scale"] = float(model.logit_scale.exp().item())
    _save_weights(out, model, rec, seed, meta)
    ckpt_path.unlink(missing_ok=True)  # the final weights supersede it

    tokenizer = open_clip.get_tokenizer(tiny.MODEL_NAME)
    metrics = _evaluate(model, tokenizer, rec, seed, meta["train_seconds"])
    from clipica._atomic import atomic_write_json

    atomic_write_json(out / tiny.EVAL_NAME, metrics)
    return {"weights": out / tiny.WEIGHTS_NAME, "training": meta, "eval": metrics}


def _loop(model, opt, source, rec, warmup, first_step, running, progress, on_step) -> dict:
    """Steps ``first_step .. steps``; ``on_step(done, running)`` after each (checkpoints).

    Returns the running metrics: loss and in-batch accuracy EMAs, wall and CPU seconds
    (those of a resumed run's earlier part included).
    """
    import open_clip
    import torch
    from tqdm.auto import tqdm

    from clipica.models import tiny

    steps, batch_size, lr = rec["steps"], rec["batch_size"], rec["optimizer"]["lr"]
    tokenizer = open_clip.get_tokenizer(tiny.MODEL_NAME)
    to_pixels = normaliser()
    loss_fn = open_clip.loss.ClipLoss()
    t0, c0 = time.perf_counter(), time.process_time()
    prior_seconds = float(running.get("train_seconds", 0.0))
    prior_cpu = float(running.get("train_cpu_seconds", 0.0))
    ema_loss, ema_acc = running.get("loss_ema"), running.get("inbatch_accuracy_ema")
    bar = tqdm(
        total=steps, initial=first_step, desc="train-tiny", disable=not progress, unit="step"
    )
    if first_step:
        bar.write(f"train-tiny: resuming from the checkpoint at step {first_step}")
    labels = torch.arange(batch_size)

    def now() -> dict:
        return {
            "loss_ema": ema_loss,
            "inbatch_accuracy_ema": ema_acc,
            "train_seconds": prior_seconds + time.perf_counter() - t0,
            "train_cpu_seconds": prior_cpu + time.process_time() - c0,
        }

    for step, (images, captions) in enumerate(
        _batches(source, batch_size, steps, first_step), start=first_step
    ):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr, warmup)
        loss, acc = _step(model, opt, loss_fn, to_pixels(images), tokenizer(captions), labels)
        ema_loss = loss if ema_loss is None else 0.9 * ema_loss + 0.1 * loss
        ema_acc = acc if ema_acc is None else 0.9 * ema_acc + 0.1 * acc
        bar.set_postfix(loss=f"{ema_loss:.3f}", acc=f"{ema_acc:.2f}", refresh=False)
        bar.update(1)
        on_step(step + 1, now())
    bar.close()
    return now()


def _training_meta(rec, seed, warmup, source, running, first_step, checkpoint_every) -> dict:
    """``training.json``: the recipe's settings, the seed, the data, the costs, final metrics."""
    import torch

    from clipica.models import tiny

    opt = dict(rec["optimizer"], schedule=f"linear warm-up {warmup} steps, cosine decay to 0")
    return {
        "model": tiny.MODEL_NAME,
        "config_hash": tiny.config_hash(),
        "config": tiny.model_config(),
        "recipe_hash": recipe_hash(rec),
        "steps": rec["steps"],
        "seed": seed,
        "variant": rec["variant"],
        "batch_size": rec["batch_size"],
        "optimizer": opt,
        "loss": rec["loss"],
        "data": source.describe(),
        "train_seconds": round(running["train_seconds"], 1),
        "train_cpu_seconds": round(running["train_cpu_seconds"], 1),
        "resumed_from_step": first_step,
        "checkpoint_every": checkpoint_every,
        "torch_threads": torch.get_num_threads(),
        "final_metrics": {
            "loss_ema": running["loss_ema"],
            "inbatch_accuracy_ema": running["inbatch_accuracy_ema"],
        },
    }


def _save_weights(out: Path, model, rec: dict, seed: int, meta: dict, dtype=None) -> None:
    """Config, weights (``dtype``: None keeps fp32), recipe.json, then the training.json
    that marks the folder complete (:func:`clipica.models.tiny.is_trained`)."""
    from safetensors.torch import save as st_save

    from clipica._atomic import atomic_write_bytes, atomic_write_json
    from clipica.models import tiny

    atomic_write_json(out / tiny.CONFIG_NAME, tiny.model_config())
    state = {
        k: (v.detach().to(dtype) if dtype is not None and v.is_floating_point() else v.detach())
        .contiguous()
        for k, v in model.state_dict().items()
    }
    atomic_write_bytes(out / tiny.WEIGHTS_NAME, st_save(state, metadata={"model": tiny.MODEL_NAME}))
    atomic_write_json(
        out / tiny.RECIPE_NAME, {"recipe_hash": recipe_hash(rec), "seed": seed, "recipe": rec}
    )
    atomic_write_json(out / tiny.TRAINING_NAME, meta)


def _evaluate(model, tokenizer, rec: dict, seed: int, train_seconds: float) -> dict:
    t1 = time.perf_counter()
    metrics = evaluate(
        model, tokenizer, n=rec["n_eval"], seed=seed + EVAL_SEED_OFFSET, variant=rec["variant"]
    )
    metrics["eval_seconds"] = round(time.perf_counter() - t1, 1)
    metrics["training"] = {
        "steps": rec["steps"],
        "seed": seed,
        "variant": rec["variant"],
        "train_seconds": train_seconds,
        "recipe_hash": recipe_hash(rec),
    }
    return metrics


def export_fp16(src: str | Path, out: str | Path, *, rec: dict | None = None) -> dict:
    """Ship a trained folder: its weights in fp16, re-evaluated as loaded (fp32 from fp16).

    ``src``: a ``train_tiny`` output folder (fp32 weights and ``training.json``). ``out``
    receives ``tiny-faces.safetensors`` (fp16, half the size), ``tiny-faces.json``,
    ``recipe.json`` (``rec``, default: :func:`recipe` of the current code, its hash and
    the seed), ``training.json`` (``src``'s, with ``"dtype": "float16"``) and an
    ``eval.json`` measured on the fp16 weights. Returns that ``eval.json``.
    """
    import open_clip
    import torch

    from clipica.models import tiny

    src, out = Path(src), Path(out)
    meta = json.loads((src / tiny.TRAINING_NAME).read_text())
    rec = recipe() if rec is None else rec
    # a folder trained before recipe hashes existed is checked on its recorded settings
    same = (meta.get("recipe_hash", recipe_hash(rec)) == recipe_hash(rec)
            and meta["config_hash"] == tiny.config_hash()
            and [meta["steps"], meta["batch_size"], meta["variant"]]
            == [rec["steps"], rec["batch_size"], rec["variant"]]
            and all(meta["optimizer"][k] == rec["optimizer"][k] for k in ("lr", "weight_decay")))
    if not same:
        from clipica.errors import InputError

        raise InputError(f"export: {src} was not trained with the recipe {recipe_hash(rec)}")
    model, _, _ = tiny.load_model(src)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(meta, recipe_hash=recipe_hash(rec), dtype="float16")
    _save_weights(out, model, rec, int(meta["seed"]), meta, dtype=torch.float16)
    shipped, _, _ = tiny.load_model(out)  # as a user loads it: fp16 widened to fp32
    metrics = _evaluate(shipped, open_clip.get_tokenizer(tiny.MODEL_NAME), rec, int(meta["seed"]),
                        meta["train_seconds"])
    metrics["dtype"] = "float16 weights, loaded as float32"
    from clipica._atomic import atomic_write_json

    atomic_write_json(out / tiny.EVAL_NAME, metrics)
    return metrics
