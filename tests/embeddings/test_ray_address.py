"""``--engine ray --address`` at something that is not Ray (issue 26, defect 5): one line within
about ``CONNECT_TIMEOUT_S``, never a hang and never Ray's own log lines. Loopback only: each test
listens on a 127.0.0.1 port of its own, and every wait is bounded."""

from __future__ import annotations

import socket
import threading

import pytest

from clipica.embeddings import ray_engine
from clipica.errors import ClusterError


class _Listener:
    """A 127.0.0.1 port that accepts connections and then stays silent (``reply=None``) or
    answers ``reply`` and closes, like a web server or a database on the port a user typed."""

    def __init__(self, reply: bytes | None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(30)  # the test is over long before: bounded either way
        self.port = self.sock.getsockname()[1]
        self.reply, self.conns = reply, []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            while True:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
                if self.reply is not None:
                    conn.recv(64)
                    conn.sendall(self.reply)
                    conn.close()
        except OSError:
            return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def no_ray_init(monkeypatch):
    """Joining must be refused before ``ray.init`` (which retries for minutes on a non-Ray port)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")

    def refuse(*a, **k):
        raise AssertionError("ray.init reached a port that is not Ray")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray_engine, "CONNECT_TIMEOUT_S", 2.0)


@pytest.mark.parametrize("reply", [None, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
                                   b"-ERR unknown command\r\n"])
def test_a_listening_port_that_is_not_ray_is_one_line_within_the_timeout(no_ray_init, reply):
    listener = _Listener(reply)
    try:
        engine = ray_engine.RayEngine(address=f"127.0.0.1:{listener.port}")
        with pytest.raises(ClusterError) as err:
            engine.connect()
    finally:
        listener.close()
    line = str(err.value)
    assert "\n" not in line and f"127.0.0.1:{listener.port}" in line and "Ray cluster" in line
    assert ("did not answer" in line) if reply is None else ("not as a Ray cluster" in line)


def test_a_closed_port_is_one_line(no_ray_init):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens
    with pytest.raises(ClusterError, match="cannot reach a Ray cluster"):
        ray_engine.RayEngine(address=f"127.0.0.1:{port}").connect()


def test_ray_s_own_lines_while_joining_go_to_a_log_not_the_terminal(capfd, monkeypatch):
    """What Ray's C++ core writes to file descriptor 2 while joining is kept off the terminal,
    and named in the one line when the join fails; CLIPICA_RAY_LOGS=1 shows it."""
    import os

    monkeypatch.delenv(ray_engine.RAY_LOGS_ENV, raising=False)
    quiet = ray_engine.QuietRayLogs()
    with pytest.raises(ConnectionError), quiet:
        os.write(2, b"[2026-12-07 W gcs_client.cc:1] Failed to connect to GCS\n")
        raise ConnectionError("no GCS")
    assert "gcs_client" not in capfd.readouterr().err
    assert "gcs_client" in open(quiet.path).read() and quiet.path in quiet.where()
    os.unlink(quiet.path)
    monkeypatch.setenv(ray_engine.RAY_LOGS_ENV, "1")
    with ray_engine.QuietRayLogs():
        os.write(2, b"shown\n")
    assert "shown" in capfd.readouterr().err


@pytest.mark.slow
@pytest.mark.ray
def test_ray_extraction_with_quiet_prints_nothing(tmp_path, tiny_faces_cache):
    """Defect 13: `--engine ray --quiet` printed Ray's own lines (the driver's core worker, Ray
    Data's "Progress bars disabled"); quiet means nothing on stderr. Starts a local Ray."""
    import os
    import subprocess
    import sys

    pytest.importorskip("ray.data")
    proc = subprocess.run(
        [sys.executable, "-m", "clipica", "extract", "--model", "tiny-faces", "--data", "synthetic-faces:8",
         "--out", str(tmp_path / "s"), "--engine", "ray", "--batch-size", "4", "--quiet"],
        env=dict(os.environ), capture_output=True, text=True, timeout=590)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == ""
