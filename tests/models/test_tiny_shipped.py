"""The shipped tiny-faces checkpoints: current recipe, targets met, fp16 under 16 MB, loadable.

The fast tests read only the package data. The slow test retrains the shipped recipe
(seed 0, one torch thread: 15-25 minutes on a shared 2-core machine) and compares its
eval.json with the shipped one.
"""

import json

import numpy as np
import pytest

from clipica.models import tiny

#: the issue's targets for the shipped default (issue 24): held-out top-1 at the ceiling,
#: mean zero-shot AUC; ``clipica demo`` naming 6 of 7 binary components is in the data card
#: (a demo run is minutes: too slow for this file)
TARGETS = {"retrieval_top1": 0.78, "zero_shot_auc_mean": 0.99}
#: at most this many bytes per shipped checkpoint (16 MB)
MAX_BYTES = 16_000_000
#: how far a retrained model's eval.json may sit from the shipped one. One torch thread
#: reproduces the fp32 weights exactly on the same CPU type; the shipped eval.json is
#: measured on the fp16 copy, and another CPU's kernels reorder floating-point sums, so
#: the figures may move in the last digits: allowed, per figure, this much
RETRAIN_TOLERANCE = {
    "retrieval_top1": 0.02,
    "zero_shot_auc_mean": 0.01,
    "content_accuracy_mean": 0.01,
    "zero_shot_auc": 0.03,  # each attribute's
}

TAGS = sorted(tiny.SHIPPED)


def _recipe(tag):
    return json.loads((tiny.shipped_dir(tag) / tiny.RECIPE_NAME).read_text())


def test_the_registry_ships_a_default_and_a_second_seed():
    assert tiny.DEFAULT_PRETRAINED in tiny.SHIPPED and len(tiny.SHIPPED) >= 2
    assert tiny.weights_dir(None) == tiny.shipped_dir(tiny.DEFAULT_PRETRAINED)
    seeds = {_recipe(t)["seed"] for t in TAGS}
    assert len(seeds) == len(TAGS)  # one seed each
    assert _recipe("seed1")["seed"] == 1 and _recipe(tiny.DEFAULT_PRETRAINED)["seed"] == 0


@pytest.mark.parametrize("tag", TAGS)
def test_shipped_checkpoint_was_trained_with_the_current_recipe(tag):
    """Fails when the training recipe (architecture, settings, or the code of the training
    numerics) changed but the shipped checkpoint did not: retrain it with
    `clipica train-tiny --threads 1 --seed S --out DIR`, then export it (data card)."""
    from clipica.models.tiny.train import recipe, recipe_hash

    rec = _recipe(tag)
    assert rec["recipe_hash"] == recipe_hash(rec["recipe"])  # the file is self-consistent
    current = recipe()
    changed = sorted(k for k in current if current[k] != rec["recipe"].get(k))
    assert rec["recipe_hash"] == recipe_hash(), (
        f"{tag}: the tiny-faces recipe changed ({', '.join(changed)}) but the shipped "
        "checkpoint did not; retrain and re-export it (data_cards/synthetic-faces.md)"
    )
    meta = json.loads((tiny.shipped_dir(tag) / tiny.TRAINING_NAME).read_text())
    ev = json.loads((tiny.shipped_dir(tag) / tiny.EVAL_NAME).read_text())
    assert meta["recipe_hash"] == ev["training"]["recipe_hash"] == rec["recipe_hash"]
    assert meta["seed"] == ev["training"]["seed"] == rec["seed"]
    assert meta["config_hash"] == tiny.config_hash()


def test_a_changed_recipe_or_training_code_changes_the_hash(monkeypatch):
    from clipica.models.tiny import train

    base = train.recipe_hash()
    assert train.recipe_hash(train.recipe(lr=train.LR * 2)) != base
    assert train.recipe_hash(train.recipe(steps=tiny.DEFAULT_STEPS + 1)) != base
    assert train.recipe_hash() == base  # deterministic

    def _lr_at(step, steps, lr, warmup):  # another schedule: constant
        return lr

    monkeypatch.setattr(train, "_RECIPE_CODE", (train._batches, _lr_at, train._optimizer,
                                                 train._step, train.normaliser))
    assert train.recipe_hash() != base


@pytest.mark.parametrize("tag", TAGS)
def test_shipped_eval_meets_the_targets(tag):
    """The default meets the targets as stated; every checkpoint is at the retrieval ceiling
    of its own held-out faces (each seed is scored on faces of seed + 10,000,000, whose tie
    structure sets the ceiling: 0.793 for seed 0, 0.789 for seed 1) and at the AUC target."""
    ev = json.loads((tiny.shipped_dir(tag) / tiny.EVAL_NAME).read_text())
    assert ev["n_eval"] == 2048 and ev["dtype"].startswith("float16")
    if tag == tiny.DEFAULT_PRETRAINED:
        for key, target in TARGETS.items():
            assert ev[key] >= target, (tag, key, ev[key])
    assert ev["retrieval_top1"] >= ev["retrieval_top1_ceiling"] - 0.01  # at the ceiling
    assert ev["retrieval_top1_same_attributes"] >= 0.99
    assert ev["zero_shot_auc_mean"] >= TARGETS["zero_shot_auc_mean"]
    assert min(ev["zero_shot_auc"].values()) >= 0.95, ev["zero_shot_auc"]
    assert ev["content_accuracy_mean"] >= 0.99


@pytest.mark.parametrize("tag", TAGS)
def test_shipped_weights_are_fp16_small_and_load_as_fp32(tag):
    import torch
    from safetensors import safe_open

    from clipica.models import load_encoder

    path = tiny.shipped_dir(tag) / tiny.WEIGHTS_NAME
    assert path.stat().st_size <= MAX_BYTES, path.stat().st_size
    with safe_open(str(path), framework="pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
    assert dtypes <= {"F16", "I64"}, dtypes
    enc = load_encoder("tiny-faces", pretrained=tag)
    assert enc.describe()["pretrained"] == str(path.resolve())
    assert all(p.dtype == torch.float32 for p in enc.model.parameters())


def test_the_two_seeds_are_different_models():
    from clipica.data.synthetic_faces import SyntheticFaces
    from clipica.models import load_encoder

    images = [SyntheticFaces(4, seed=5)[i].image for i in range(4)]
    a = load_encoder("tiny-faces").encode_images(images)
    b = load_encoder("tiny-faces", pretrained="seed1").encode_images(images)
    c = load_encoder("tiny-faces", pretrained="seed0").encode_images(images)
    assert np.array_equal(a, c) and a.shape == b.shape
    assert not np.allclose(a, b, atol=1e-3)


def test_an_unknown_tag_is_passed_to_open_clip_and_refused_in_one_line():
    from clipica.errors import ModelNotFoundError
    from clipica.models import load_encoder

    with pytest.raises(ModelNotFoundError) as info:
        load_encoder("tiny-faces", pretrained="seed99")
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_retraining_the_recipe_reproduces_the_shipped_eval(tmp_path):
    """Retrain the shipped recipe from seed 0 and compare eval.json within RETRAIN_TOLERANCE."""
    from clipica.models.tiny.train import train_tiny

    shipped = json.loads((tiny.shipped_dir("seed0") / tiny.EVAL_NAME).read_text())
    result = train_tiny(seed=0, out=tmp_path / "retrained", progress=False, num_threads=1)
    ev = result["eval"]
    assert result["training"]["recipe_hash"] == _recipe("seed0")["recipe_hash"]
    for key in ("retrieval_top1", "zero_shot_auc_mean", "content_accuracy_mean"):
        assert abs(ev[key] - shipped[key]) <= RETRAIN_TOLERANCE[key], (key, ev[key], shipped[key])
    for name, auc in shipped["zero_shot_auc"].items():
        assert abs(ev["zero_shot_auc"][name] - auc) <= RETRAIN_TOLERANCE["zero_shot_auc"], name
    for key, target in TARGETS.items():
        assert ev[key] >= target, (key, ev[key])
