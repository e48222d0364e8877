"""tiny-faces: config registration, training at test size, safetensors round trip, eval."""

import json
import math

import numpy as np
import pytest

from clipica.models import tiny
from clipica.models.tiny.evaluate import retrieval_scores
from clipica.models.tiny.train import _lr_at


def test_config_is_registered_with_open_clip():
    import open_clip

    tiny.register_config()
    tiny.register_config()  # idempotent
    assert open_clip.list_models().count("tiny-faces") == 1
    cfg = open_clip.get_model_config("tiny-faces")
    assert cfg == tiny.model_config()
    assert cfg["vision_cfg"]["image_size"] == 64


@pytest.mark.parametrize("variant", ["independent", "correlated"])
def test_captions_fit_the_context_length(variant):
    import open_clip

    from clipica.data.synthetic_faces import sample_factors

    tiny.register_config()
    tok = open_clip.get_tokenizer("tiny-faces")
    ctx = tiny.model_config()["text_cfg"]["context_length"]
    longest = max(len(tok.encode(sample_factors(3, i, variant).caption)) + 2 for i in range(1500))
    assert longest <= ctx  # no caption is truncated, so no attribute is cut off


@pytest.mark.parametrize(
    ("cores", "load", "expected"),
    [(2, 0.0, 1), (2, 3.0, 1), (1, 0.0, 1), (4, 0.5, 2), (4, 1.5, 1), (8, 5.0, 2), (8, 7.0, 1)],
)
def test_auto_threads_uses_two_only_when_three_cores_are_free(monkeypatch, cores, load, expected):
    from clipica.models.tiny import train as tt

    monkeypatch.setattr(tt.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(tt.os, "getloadavg", lambda: (load, load, load), raising=False)
    assert tt.auto_threads() == expected


def test_lr_schedule_warms_up_then_decays_to_zero():
    lr, steps, warm = 1e-3, 100, 10
    assert _lr_at(0, steps, lr, warm) == pytest.approx(lr / warm)
    assert _lr_at(warm - 1, steps, lr, warm) == pytest.approx(lr)
    assert _lr_at(warm, steps, lr, warm) == pytest.approx(lr)
    assert _lr_at(55, steps, lr, warm) == pytest.approx(lr / 2)
    assert _lr_at(steps, steps, lr, warm) == pytest.approx(0.0, abs=1e-12)
    vals = [_lr_at(s, steps, lr, warm) for s in range(warm, steps)]
    assert all(a >= b for a, b in zip(vals, vals[1:], strict=False))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_scores_known_answers(seed):
    rng = np.random.default_rng(seed)
    n, d = 512, 16
    emb = rng.normal(size=(n, d))
    attrs = np.arange(n)[:, None]  # all distinct: perfect model, ceiling 1
    r = retrieval_scores(emb, emb + 1e-6, attrs)
    assert r["retrieval_top1"] == 1.0 and r["retrieval_top1_ceiling"] == 1.0
    assert r["retrieval_blocks"] == 2
    # pairs of rows sharing attributes: ceiling 1/2
    r = retrieval_scores(emb, emb, np.arange(n)[:, None] // 2)
    assert r["retrieval_top1_ceiling"] == pytest.approx(0.5)
    # random text: chance level, 1/256
    r = retrieval_scores(emb, rng.normal(size=(n, d)), attrs)
    assert r["retrieval_top1"] < 0.03


def test_missing_weights_without_training_is_a_clear_error(tmp_path, monkeypatch):
    from clipica.errors import ModelNotFoundError

    monkeypatch.setenv("CLIPICA_CACHE", str(tmp_path))
    assert not tiny.is_trained()
    with pytest.raises(ModelNotFoundError, match="train-tiny"):
        tiny.ensure_weights(tiny.default_dir())
    with pytest.raises(ModelNotFoundError, match="train-tiny --out"):
        tiny.weights_for(str(tmp_path))  # a folder without weights


def test_the_cache_folder_is_found_without_training(tiny_faces_cache):
    d = tiny_faces_cache / "tiny-faces"
    assert tiny.default_dir() == d
    for name in ("tiny-faces.safetensors", "tiny-faces.json", "training.json", "eval.json"):
        assert (d / name).is_file(), name
    assert tiny.is_trained(d)
    assert tiny.ensure_weights(d) == d / "tiny-faces.safetensors"
    assert tiny.weights_for("cache") == str(d / "tiny-faces.safetensors")
    assert tiny.weights_for(str(d)) == str(d / "tiny-faces.safetensors")
    assert tiny.read_eval("cache") == json.loads((d / "eval.json").read_text())


@pytest.mark.slow
def test_training_at_test_size_beats_chance_by_a_wide_margin(tmp_path):
    """The one test-size training (TEST_STEPS x TEST_BATCH_SIZE, about a minute on one core):
    the folder train-tiny writes, and a model that learned the boldest attributes."""
    from clipica.models.tiny.train import recipe_hash, train_tiny

    d = tmp_path / "tiny-faces"
    train_tiny(steps=tiny.TEST_STEPS, batch_size=tiny.TEST_BATCH_SIZE, seed=0, out=d,
               n_eval=512, progress=False, num_threads=1)
    for name in ("tiny-faces.safetensors", "tiny-faces.json", "training.json", "eval.json",
                 "recipe.json"):
        assert (d / name).is_file(), name
    meta = json.loads((d / "training.json").read_text())
    assert (
        meta["steps"] == tiny.TEST_STEPS and meta["seed"] == 0 and meta["variant"] == "independent"
    )
    assert meta["config_hash"] == tiny.config_hash()
    assert math.isfinite(meta["final_metrics"]["loss_ema"])
    rec = json.loads((d / "recipe.json").read_text())
    assert rec["seed"] == 0 and rec["recipe_hash"] == recipe_hash(rec["recipe"]) != recipe_hash()
    assert tiny.ensure_weights(d) == d / "tiny-faces.safetensors"

    ev = json.loads((d / "eval.json").read_text())
    chance = 1 / 256
    assert ev["retrieval_top1"] > 10 * chance, ev["retrieval_top1"]
    assert ev["retrieval_top1_ceiling"] >= ev["retrieval_top1"]
    for key in ("zero_shot_auc", "content_accuracy"):
        assert set(ev[key]) >= {"Smiling", "Eyeglasses", "Male", "Gray_Hair"}
    assert set(ev["style_r2"]["image_embedding"]) == set(ev["style_r2"]["raw_pixels_2x2_pooled"])
    # even a briefly trained model separates the boldest attributes
    assert ev["content_accuracy"]["Wearing_Hat"] > 0.8


def test_reload_is_bit_identical_and_never_unpickles(tiny_faces_cache, monkeypatch):
    import open_clip
    import torch
    from safetensors.torch import load_file

    from clipica.data.synthetic_faces import SyntheticFaces

    path = tiny.ensure_weights(tiny.default_dir())
    saved = load_file(str(path))

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load (pickle) was called while loading tiny-faces")

    monkeypatch.setattr(torch, "load", no_pickle)
    tiny.register_config()
    model, _, preprocess = open_clip.create_model_and_transforms("tiny-faces", pretrained=str(path))
    model.eval()
    state = model.state_dict()
    assert set(state) == set(saved)
    for k, v in saved.items():
        # the shipped weights are fp16, widened exactly to the model's fp32 on load
        assert state[k].dtype == torch.float32 or not v.is_floating_point(), k
        assert torch.equal(state[k], v.to(state[k].dtype)), k

    rows = [SyntheticFaces(4, seed=9)[i] for i in range(4)]
    pixels = torch.stack([preprocess(r.image) for r in rows])
    tok = open_clip.get_tokenizer("tiny-faces")
    model2, _, _ = tiny.load_model(tiny.default_dir())
    with torch.inference_mode():
        a = model.encode_image(pixels), model.encode_text(tok([r.caption for r in rows]))
        b = model2.encode_image(pixels), model2.encode_text(tok([r.caption for r in rows]))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == (4, tiny.model_config()["embed_dim"])


def test_cli_train_tiny_writes_weights_and_eval(tmp_path, capsys):
    from clipica.cli import main

    out = tmp_path / "tf"
    code = main(
        [
            "train-tiny",
            "--steps",
            "2",
            "--batch-size",
            "16",
            "--n-eval",
            "512",
            "--out",
            str(out),
            "--quiet",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2
    assert (out / "tiny-faces.safetensors").is_file()
    ev = json.loads((out / "eval.json").read_text())
    assert 0 <= ev["retrieval_top1"] <= 1 and ev["n_eval"] == 512
    assert tiny.is_trained(out)


def test_cli_rejects_bad_steps(tmp_path, capsys):
    from clipica.cli import main

    assert main(["train-tiny", "--steps", "0", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "steps" in err and "Traceback" not in err


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """Kill the run at step 7 (checkpoints every 3): the rerun starts at step 6 and ends
    with the same weights as a run that was never interrupted."""
    from safetensors.numpy import load_file

    from clipica.models.tiny import train as tt

    monkeypatch.setattr(tt, "evaluate", lambda *a, **k: {})  # weights are what we compare
    # one thread in both runs: the thread count changes the order of floating-point sums
    kw = dict(
        steps=9, seed=3, batch_size=8, n_eval=512, progress=False, checkpoint_every=3, num_threads=1
    )
    tt.train_tiny(out=tmp_path / "straight", **kw)

    real_lr_at = tt._lr_at

    def dies_at_step_7(step, *a):
        if step == 7:
            raise KeyboardInterrupt  # what Ctrl-C during `make demo` raises
        return real_lr_at(step, *a)

    monkeypatch.setattr(tt, "_lr_at", dies_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        tt.train_tiny(out=tmp_path / "resumed", **kw)
    assert (tmp_path / "resumed" / tt.CHECKPOINT_NAME).is_file()
    assert not tiny.is_trained(tmp_path / "resumed")
    monkeypatch.setattr(tt, "_lr_at", real_lr_at)
    result = tt.train_tiny(out=tmp_path / "resumed", **kw)
    assert result["training"]["resumed_from_step"] == 6
    assert 7 - result["training"]["resumed_from_step"] <= kw["checkpoint_every"]  # steps redone
    assert not (tmp_path / "resumed" / tt.CHECKPOINT_NAME).exists()  # superseded by the weights

    a = load_file(tmp_path / "straight" / tiny.WEIGHTS_NAME)
    b = load_file(tmp_path / "resumed" / tiny.WEIGHTS_NAME)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_the_demo_training_redoes_at_most_150_steps_after_an_interrupt(monkeypatch):
    """`make demo` trains through the pipeline's model stage: it keeps train_tiny's default
    checkpoint interval, so an interrupted first demo redoes fewer steps than that interval
    (the resume itself: the test above), at most 150."""
    import inspect

    from clipica.models.tiny import train as tt
    from clipica.pipeline import fit

    default = inspect.signature(tt.train_tiny).parameters["checkpoint_every"].default
    calls = []
    monkeypatch.setattr(tt, "train_tiny", lambda **kw: calls.append(kw))
    fit.train_tiny_stage(steps=5, progress=False)
    every = calls[0].get("checkpoint_every", default)
    assert every is not None and 0 < every <= 150


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path, monkeypatch):
    from clipica.models.tiny import train as tt

    monkeypatch.setattr(tt, "evaluate", lambda *a, **k: {})
    real_lr_at = tt._lr_at

    def dies_at_step_4(step, *a):
        if step == 4:
            raise KeyboardInterrupt
        return real_lr_at(step, *a)

    monkeypatch.setattr(tt, "_lr_at", dies_at_step_4)
    kw = dict(steps=6, batch_size=8, n_eval=512, progress=False, checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        tt.train_tiny(out=tmp_path, seed=0, **kw)
    monkeypatch.setattr(tt, "_lr_at", real_lr_at)
    assert tt.train_tiny(out=tmp_path, seed=1, **kw)["training"]["resumed_from_step"] == 0


def test_loading_never_trains_and_tiny_does_not_import_training(tmp_path, monkeypatch):
    """A missing model is a typed error naming `clipica train-tiny`; loading never trains."""
    import subprocess
    import sys

    from clipica.errors import ModelNotFoundError
    from clipica.models import load_encoder
    from clipica.models.tiny import train as tt

    monkeypatch.setenv("CLIPICA_CACHE", str(tmp_path))
    monkeypatch.setattr(tt, "train_tiny", lambda *a, **k: pytest.fail("loading started training"))
    with pytest.raises(ModelNotFoundError, match="clipica train-tiny") as info:
        load_encoder("tiny-faces", pretrained="cache")
    assert "\n" not in str(info.value) and "clipica demo" in str(info.value)
    with pytest.raises(ModelNotFoundError):
        tiny.load_model(tiny.default_dir())
    code = (
        "import sys, clipica.models.tiny as t, clipica.models as m; t.weights_dir(None); "
        "bad = [k for k in sys.modules if k.startswith('clipica.models.tiny.')]; "
        "assert not bad, f'the loader imported the training side: {bad}'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ensure_trained_announces_the_expected_duration_then_trains_once(tmp_path, monkeypatch):
    from clipica.models.tiny import train as tt

    calls, lines = [], []

    def fake_train(steps, out, progress):
        calls.append((steps, out))
        out.mkdir(parents=True)
        (out / tiny.WEIGHTS_NAME).write_bytes(b"x")
        (out / tiny.TRAINING_NAME).write_text(json.dumps({"config_hash": tiny.config_hash()}))

    monkeypatch.setattr(tt, "train_tiny", fake_train)
    d = tmp_path / "tf"
    path = tt.ensure_trained(steps=80, directory=d, announce=lines.append)
    assert path == d / tiny.WEIGHTS_NAME and calls == [(80, d)]
    assert len(lines) == 1 and "80 steps" in lines[0] and "expected about 1 minutes" in lines[0]
    assert tt.ensure_trained(steps=80, directory=d, announce=lines.append) == path
    assert len(calls) == 1 and len(lines) == 1  # cached: no second training, no announcement
