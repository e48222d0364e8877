"""``--engine ray``: the same store as ``--engine local``, resume after a killed driver, a killed worker retried.

All tests share one local Ray (the ``ray_local`` session fixture, 2 CPUs) and the tiny
random open_clip saved to a file (``model_file``), which Ray workers and subprocess drivers load.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clipica
from clipica.cli import main
from clipica.embeddings.store import EmbeddingStore
from clipica.errors import DependencyError
from tests.helpers.fake_datasets import write_celeba, write_folder

pytest.importorskip("ray.data")

# a local Ray cluster per session (~25 s to start): the `ray` tier (make test-all, pytest -m ray)
pytestmark = pytest.mark.ray

#: a file that is not an image at all, beside the fake datasets' truncated JPEG, RGBA and grey PNGs
GARBAGE = b"this is not an image, whatever its name says\n" * 4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A folder dataset and a fake CelebA, each with a truncated JPEG (row 4), an RGBA (1), a grey (2)
    and a garbage file (row 6)."""
    root = tmp_path_factory.mktemp("data")
    names = write_folder(root / "folder", n=8)
    (root / "folder" / names[6]).write_bytes(GARBAGE)
    ids = write_celeba(root / "celeba", n=9)
    (root / "celeba" / "img_align_celeba" / ids[6]).write_bytes(GARBAGE)
    return root


def _extract(model_file, spec, out, **kw):
    kw.setdefault("batch_size", 2)
    kw.setdefault("progress", False)
    if kw.get("engine") != "ray":
        kw.setdefault("num_workers", 0)
    return clipica.extract(model=model_file, data=spec, out=out, **kw)


def _assert_same_store(got: EmbeddingStore, ref: EmbeddingStore, atol: float = 0.0):
    pd.testing.assert_frame_equal(got.rows, ref.rows)
    pd.testing.assert_frame_equal(got.errors, ref.errors)
    assert got.manifest["counts"] == ref.manifest["counts"]
    for name in ("image", "text"):
        a, b = getattr(got, name), getattr(ref, name)
        assert a.shape == b.shape
        if atol:
            np.testing.assert_allclose(a, b, rtol=0, atol=atol)
        else:
            assert np.array_equal(a, b), f"{name}: max diff {np.abs(a - b).max()}"


@pytest.fixture(scope="module")
def ray_folder_store(ray_local, model_file, data, tmp_path_factory):
    """The uninterrupted Ray run on the folder dataset: the reference of the crash tests."""
    return _extract(model_file, f"folder:{data / 'folder'}", tmp_path_factory.mktemp("ref") / "s", engine="ray")


@pytest.mark.parametrize("kind", ["folder", "celeba"])
def test_ray_store_equals_local_store(ray_local, ray_folder_store, model_file, data, tmp_path, kind):
    spec = f"{kind}:{data / kind}"
    local = _extract(model_file, spec, tmp_path / "local")
    ray_store = ray_folder_store if kind == "folder" else _extract(model_file, spec, tmp_path / "ray", engine="ray")
    # same ids, order, labels and error rows; embeddings equal up to the float rounding of
    # a different torch thread count (the encoder actor has 1 CPU)
    _assert_same_store(ray_store, local, atol=1e-5)
    assert ray_store.rows["source_index"].is_monotonic_increasing
    errs = ray_store.errors
    assert errs["source_index"].tolist() == [4, 6]
    assert "truncated" in errs["reason"][0] and errs["reason"][0] == local.errors["reason"][0]
    assert {1, 2} <= set(ray_store.rows["source_index"])  # RGBA and grey rows were embedded
    m = ray_store.manifest
    assert m["engine"]["name"] == "ray" and m["engine"]["workers"] == 1
    assert m["engine"]["cluster"] == {"nodes": 1, "cpus": 2.0, "gpus": 0.0}
    assert local.manifest["engine"] == {"name": "local"}
    assert m["key"] == local.manifest["key"]  # either engine resumes the other's store


def _cli(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "clipica", "extract", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _in_commit_window(out: Path, min_rows: int) -> bool:
    """True once a batch is committed and the next one's bytes are written but not yet committed."""
    try:
        p = json.loads((out / "progress.json").read_text())
        return p["n_rows"] >= min_rows and (out / "image.f32").stat().st_size > p["bytes"]["image.f32"]
    except (FileNotFoundError, ValueError, KeyError):
        return False


def test_driver_killed_then_rerun_equals_uninterrupted(ray_local, ray_folder_store, model_file, data, tmp_path):
    """kill -9 of a driver joined to the cluster, inside a commit; the rerun skips committed rows."""
    spec = f"folder:{data / 'folder'}"
    args = ["--model", model_file, "--data", spec, "--batch-size", "2", "--engine", "ray", "--quiet"]
    out = tmp_path / "killed"
    env = {**os.environ, "CLIPICA_TEST_COMMIT_PAUSE": "0.5"}
    proc = _cli(*args, "--out", str(out), "--address", ray_local, env=env)
    try:
        deadline = time.time() + 300
        while not _in_commit_window(out, 2):
            if proc.poll() is not None:
                pytest.fail(f"the driver ended before it could be killed: {proc.stderr.read()[-2000:]}")
            if time.time() > deadline:
                pytest.fail("the driver never reached a commit window")
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    p = json.loads((out / "progress.json").read_text())
    assert p["next_position"] < 8 and (out / "image.f32").stat().st_size > p["bytes"]["image.f32"]
    committed = p["next_position"]

    # the same command again, in this process (it joins the session's Ray)
    assert main(["extract", *args, "--out", str(out)]) == 0
    got = EmbeddingStore.open(out)
    _assert_same_store(got, ray_folder_store)
    assert got.manifest["last_run"]["positions"] == 8 - committed  # only the uncommitted rows were redone


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _encoder_actor_pids() -> list[int]:
    pids = []
    for pid in _descendants(os.getpid()):  # only this session's Ray, not another user's
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("ray::") and "_EncoderActor" in cmd:
            pids.append(pid)
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds Ray's worker processes in /proc")
def test_killed_encoder_worker_is_retried_and_store_equals(ray_local, ray_folder_store, model_file, data,
                                                          tmp_path, monkeypatch):
    spec = f"folder:{data / 'folder'}"
    out = tmp_path / "s"
    monkeypatch.setenv("CLIPICA_TEST_RAY_ENCODE_PAUSE", "1.0")  # each window holds the actor ~1 s
    result: dict = {}

    def target():
        try:
            result["store"] = _extract(model_file, spec, out, engine="ray")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    killed = None
    deadline = time.time() + 300
    while killed is None and thread.is_alive() and time.time() < deadline:
        p = (out / "progress.json")
        pids = _encoder_actor_pids()
        try:
            mid_run = json.loads(p.read_text())["n_rows"] >= 1
        except (FileNotFoundError, ValueError, KeyError):
            mid_run = False
        if mid_run and pids:
            os.kill(pids[0], signal.SIGKILL)
            killed = pids[0]
        time.sleep(0.05)
    thread.join(timeout=600)
    assert killed is not None, f"never found the encoder actor mid-run ({result})"
    assert "error" not in result, repr(result.get("error"))
    assert killed not in _encoder_actor_pids()
    _assert_same_store(result["store"], ray_folder_store)


def test_unreachable_address_exits_2_quickly(model_file, data, tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "clipica", "extract", "--model", model_file, "--data", f"folder:{data / 'folder'}",
         "--out", str(tmp_path / "s"), "--engine", "ray", "--address", f"127.0.0.1:{port}", "--quiet"],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"127.0.0.1:{port}" in proc.stderr and "ray start --head" in proc.stderr
    assert time.time() - t0 < 120  # the connect probe gives up after 10 s; the rest is interpreter start


@pytest.mark.parametrize(
    "args, message",
    [
        (["--address", "not-an-address"], "is not a Ray address"),
        (["--workers", "0"], "--workers must be > 0"),
        (["--cpus-per-worker", "2"], "leave no CPU for decoding"),
        (["--gpus-per-worker", "1"], "the Ray cluster has 0"),
    ],
)
def test_cli_ray_user_errors_exit_2(ray_local, model_file, data, tmp_path, capsys, args, message):
    argv = ["extract", "--model", model_file, "--data", f"folder:{data / 'folder'}", "--out", str(tmp_path / "s"),
            "--engine", "ray", "--quiet", *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_on_error_fail_stops_at_the_bad_row_after_committing_earlier_ones(ray_local, model_file, data, tmp_path,
                                                                         capsys):
    out = tmp_path / "s"
    assert main(["extract", "--model", model_file, "--data", f"folder:{data / 'folder'}", "--out", str(out),
                 "--engine", "ray", "--batch-size", "2", "--on-error", "fail", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "img_004.jpg" in err and "--on-error fail stops here" in err and err.count("\n") == 1
    progress = json.loads((out / "progress.json").read_text())
    assert progress["n_rows"] == 4 and progress["next_position"] == 4  # rows 0-3 kept, as the local engine does


def test_ray_options_need_engine_ray(model_file, data, tmp_path, capsys):
    assert main(["extract", "--model", model_file, "--data", f"folder:{data / 'folder'}", "--out",
                 str(tmp_path / "s"), "--workers", "2", "--quiet"]) == 2
    assert "--workers only apply to --engine ray" in capsys.readouterr().err


def test_without_ray_one_line_names_the_extra(model_file, data, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(DependencyError):
        clipica.extract(model=model_file, data=f"folder:{data / 'folder'}", out=tmp_path / "a", engine="ray")
    assert main(["extract", "--model", model_file, "--data", f"folder:{data / 'folder'}", "--out",
                 str(tmp_path / "s"), "--engine", "ray", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'clipica[ray]'" in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()  # nothing written before the check


def test_bench_extract_ray_reports_ratio_of_same_run_figures(ray_local, model_file, tmp_path, capsys):
    import argparse

    from clipica.bench import extract as bench

    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    bench.add_arguments(parser)
    args = parser.parse_args(["--engine", "ray", "--model", model_file, "--rows", "6", "--batch-size", "2",
                              "--json", "--out", str(tmp_path)])
    args.pretrained = None
    assert bench.run(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["engine"] == "ray" and result["workers"] == 1 and result["forward_threads"] == 1
    (rnd,) = result["rounds"]
    assert result["ratio"] == rnd["ratio"] == pytest.approx(rnd["pipeline_images_per_s"] / rnd["forward_images_per_s"],
                                                            rel=1e-3)
    assert rnd["pipeline_images_per_s"] > 0 and result["forward_all_threads_images_per_s"] > 0
    assert json.loads((tmp_path / "bench_extract.json").read_text())["ratio"] == result["ratio"]
