"""Resumable checkpoints of the ``tiny-faces`` training (:mod:`clipica.models.tiny.train`).

One safetensors file, written atomically: the model's tensors (``model/<name>``),
the AdamW moments and step counts (``opt/<param index>/<key>``) and the torch RNG
state (``rng/torch``); the metadata holds the format tag, the step reached, the
settings the run must match to resume, the optimiser's param groups and the running
metrics as JSON. Nothing is pickled, so loading a checkpoint runs no code. The
learning-rate schedule is a pure function of the step, so the step is its state.
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINT_NAME = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "clipica.tiny-checkpoint/1"
#: default checkpoint interval in steps (a checkpoint costs well under a second)
CHECKPOINT_EVERY = 100


def checkpoint_settings(steps, seed, variant, batch_size, lr, weight_decay, warmup_frac) -> dict:
    """What a checkpoint must match to be resumed: architecture and every training setting."""
    from clipica.models import tiny

    return {
        "config_hash": tiny.config_hash(),
        "steps": int(steps),
        "seed": int(seed),
        "variant": str(variant),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "weight_decay": float(weight_decay),
        "warmup_frac": float(warmup_frac),
    }


def save_checkpoint(path: Path, model, opt, step: int, settings: dict, running: dict) -> None:
    """One atomic safetensors file: ``model/<name>``, ``opt/<i>/<key>``, ``rng/torch``.

    ``step`` is the number of steps completed. The optimiser's param groups (lr,
    betas, ...) and ``running`` (EMA metrics, elapsed seconds) go into the metadata
    as JSON, next to the format tag and ``settings``.
    """
    import json

    import torch
    from safetensors.torch import save as st_save

    from clipica._atomic import atomic_write_bytes

    tensors = {f"model/{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()
    for idx, entry in opt_state["state"].items():
        for key, value in entry.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"opt/{idx}/{key}"] = t.detach().contiguous()
    tensors["rng/torch"] = torch.get_rng_state()
    meta = {
        "format": CHECKPOINT_FORMAT,
        "step": str(int(step)),
        "settings": json.dumps(settings, sort_keys=True),
        "param_groups": json.dumps(opt_state["param_groups"]),
        "running": json.dumps(running),
    }
    atomic_write_bytes(path, st_save(tensors, metadata=meta))


def load_checkpoint(path: Path, model, opt, settings: dict) -> tuple[int, dict] | None:
    """Restore ``model``/``opt``/torch RNG from ``path``; ``(step, running)`` or None.

    None (nothing restored) when the file is missing, unreadable, of another
    format, or written with other ``settings``: training then starts from step 0.
    """
    import json

    import torch
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != CHECKPOINT_FORMAT:
                return None
            if json.loads(meta.get("settings", "null")) != json.loads(
                json.dumps(settings, sort_keys=True)
            ):
                return None
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        step = int(meta["step"])
        groups = json.loads(meta["param_groups"])
        running = json.loads(meta["running"])
    except (OSError, ValueError, KeyError, RuntimeError):
        return None  # a damaged checkpoint costs the steps since the start, never the run
    model.load_state_dict(
        {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    )
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("opt/"):
            _, idx, name = key.split("/", 2)
            state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": groups})
    torch.set_rng_state(tensors["rng/torch"])
    return step, running
