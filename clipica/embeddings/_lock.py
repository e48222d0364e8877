"""One writer at a time: an exclusive ``flock`` held for a writer's lifetime, naming its holder.

The kernel drops a ``flock`` when the last descriptor of its open file goes
away, so a ``kill -9`` never leaves a folder locked (the lock file it leaves
behind is overwritten by the next writer). Forked children (DataLoader
workers) would inherit the descriptor and keep the lock alive after their
parent died; they close their copy right after the fork.
"""

from __future__ import annotations

import json
import os
import weakref
from pathlib import Path

from clipica.errors import StoreLockedError

_HELD: weakref.WeakSet = weakref.WeakSet()


def _close_in_child() -> None:
    for lock in list(_HELD):
        lock._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


class WriterLock:
    """An exclusive ``flock`` on ``path`` until :meth:`release`; the file names the holder.

    The holder unlinks the file before it lets go; an acquirer that finds it
    locked an unlinked file (it raced with that release) simply tries again, so
    two writers can never both believe they hold the lock. Raises
    StoreLockedError naming the holder (pid, host, command, since when).
    """

    def __init__(self, path: Path):
        import fcntl

        self.path = Path(path)
        self._fd: int | None = None
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4000, 0).decode("utf-8", "replace")
                os.close(fd)
                raise StoreLockedError(
                    f"{self.path.parent} is being written by another clipica process ({_holder_line(holder)}); "
                    "wait for it to finish or stop it, or choose another --out"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        _HELD.add(self)
        info = json.dumps(_holder_info()).encode("utf-8") + b"\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)

    def release(self) -> None:
        """Remove the lock file and let go (idempotent)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it: see the class docstring
        except FileNotFoundError:
            pass
        self._forget()

    def _forget(self) -> None:
        fd, self._fd = self._fd, None
        _HELD.discard(self)
        if fd is not None:
            os.close(fd)

    def __del__(self):  # a writer dropped without close() must not keep the folder locked
        try:
            self._forget()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _holder_info() -> dict:
    import socket
    import sys
    import time

    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("clipica", "__main__.py"):  # `clipica ...` or `python -m clipica ...`
        argv[0] = "clipica"
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(argv),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _holder_line(text: str) -> str:
    try:
        info = json.loads(text)
        return (f"pid {info.get('pid')} on {info.get('host')}, running "
                f"`{' '.join(str(info.get('command', '?')).split())}` since {info.get('since')}")
    except (ValueError, AttributeError):
        return "holder unknown: it is just starting"
