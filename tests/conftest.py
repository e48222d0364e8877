"""Shared pytest fixtures.

``tiny_faces_cache`` (session scope) points ``CLIPICA_CACHE`` at a folder holding a
copy of the shipped ``tiny-faces`` checkpoint for the whole session, so that
``clipica.load_encoder("tiny-faces")``, extraction, the demo and notebook tests use
the shipped weights and never train (and never touch the user's cache). Request it
by name::

    def test_something(tiny_faces_cache):
        enc = clipica.load_encoder("tiny-faces")   # loads, does not train

Keep this file light: anything heavy belongs in the fixture body, which runs
only when a test asks for it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

#: the user's own cache setting, before ``tiny_faces_cache`` replaces it for the session
_USER_CACHE = os.environ.get("CLIPICA_CACHE")


def pytest_collection_modifyitems(config, items):
    """Order and group the tests for ``pytest -n 2`` (``make test-all``, pytest-xdist).

    Modules with slow tests go first, whole (their module fixtures are set up once): a worker
    that drew the 7-minute retraining last would finish minutes after the other one
    (longest-first is the classic schedule for two machines). Ray's tests
    share one worker (``--dist loadgroup``), so that one session-scoped local cluster serves
    them all instead of two clusters competing for two cores. Serial runs are unaffected but
    for the order, which no test depends on.
    """
    ray_group = pytest.mark.xdist_group("ray")
    for item in items:
        if item.get_closest_marker("ray"):
            item.add_marker(ray_group)
    slow_modules = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module.__name__ not in slow_modules)  # stable sort


@pytest.fixture(scope="session")
def tiny_faces_cache(tmp_path_factory):
    """A session cache dir (``$CLIPICA_CACHE``) whose ``tiny-faces`` folder holds the
    shipped default checkpoint: nothing is trained.

    ``clipica.load_encoder("tiny-faces")`` loads the shipped default either way; the copy
    in ``<cache>/tiny-faces/`` (fp16 safetensors, config, ``recipe.json``,
    ``training.json``, ``eval.json``) serves the tests that read the cache folder
    (``--pretrained cache``, :func:`clipica.models.tiny.default_dir`). Only when the package
    ships no checkpoint does it train :data:`clipica.models.tiny.TEST_STEPS` steps instead
    (kept between sessions under ``$CLIPICA_TEST_CACHE`` when set). ``CLIPICA_CACHE`` is
    restored afterwards. Yields the cache folder (a ``pathlib.Path``).
    """
    from clipica.models import tiny

    shipped = tiny.DEFAULT_PRETRAINED in tiny.SHIPPED
    # CLIPICA_TEST_CACHE (developers' speed-up, unset in CI): a folder that keeps the
    # test-size model between pytest sessions, one sub-folder per architecture
    shared = None if shipped else os.environ.get("CLIPICA_TEST_CACHE")
    root = Path(shared) / tiny.config_hash() if shared else tmp_path_factory.mktemp("clipica-cache")
    done = root / tiny.MODEL_NAME / "eval.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIPICA_CACHE", str(root))
        if shipped:
            shutil.copytree(tiny.shipped_dir(tiny.DEFAULT_PRETRAINED), root / tiny.MODEL_NAME)
        elif not done.exists():
            from clipica.models.tiny.train import train_tiny

            train_tiny(
                steps=tiny.TEST_STEPS,
                batch_size=tiny.TEST_BATCH_SIZE,
                seed=0,
                out=root / tiny.MODEL_NAME,
                n_eval=512,
                progress=False,
                # one thread: as fast on an idle 2-core machine, and immune to the
                # oversubscription stalls of a CI box shared with other jobs
                num_threads=1,
            )
        yield root


@pytest.fixture
def user_cache(monkeypatch):
    """For one test, the user's own ``CLIPICA_CACHE`` (or the platform cache if unset).

    Slow tests that need the default-size ``tiny-faces`` use it, so that running them
    in the same session as ``tiny_faces_cache`` does not hand them the test-size model.
    """
    if _USER_CACHE is None:
        monkeypatch.delenv("CLIPICA_CACHE", raising=False)
    else:
        monkeypatch.setenv("CLIPICA_CACHE", _USER_CACHE)


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray for the session (2 CPUs, no dashboard); yields its GCS address (HOST:PORT).

    Tests that run ``--engine ray`` in-process join it; a subprocess driver joins it with
    ``--address``. Skips when Ray is not installed (``pip install 'clipica[ray]'``).
    """
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    """A random-weight tiny open_clip checkpoint + open_clip_config.json: usable as --model FILE in subprocesses.

    32 px input, 16-dim embeddings (``tests.helpers.fake_models.TINY_CONFIG``).
    """
    from tests.helpers.fake_models import save_tiny_open_clip_file

    return save_tiny_open_clip_file(tmp_path_factory.mktemp("model"))
