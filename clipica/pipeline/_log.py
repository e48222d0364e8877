"""Stage headers on stderr, the wall time of each stage, and which stages were reused."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from clipica.pipeline import artifacts

#: test hook: ``CLIPICA_TEST_KILL_AT=<stage>`` kills the process (SIGKILL, as ``kill -9``)
#: when that stage starts, after its header; the resume tests use it. Unset in normal use.
KILL_ENV = "CLIPICA_TEST_KILL_AT"


class StageLog:
    """Numbered stage headers (``== clipica run [i/n] name: what``) and per-stage timings.

    ``timings`` maps each stage to its wall seconds; ``reused`` lists the stages whose valid
    output was found and reused (the log line says "reused"). ``prefix`` names the command.
    """

    def __init__(self, total: int, *, quiet: bool = False, prefix: str = "clipica run"):
        self.total, self.quiet, self.prefix, self.i = total, quiet, prefix, 0
        self.timings: dict[str, float] = {}
        self.reused: list[str] = []
        self._reuse_note: str | None = None

    def _write(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(text)
            sys.stderr.flush()

    @contextmanager
    def stage(self, name: str, what: str) -> Iterator[StageLog]:
        self.i += 1
        self._reuse_note = None
        self._write(f"\n== {self.prefix} [{self.i}/{self.total}] {name}: {what}\n")
        if os.environ.get(KILL_ENV) == name:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        t0 = time.perf_counter()
        yield self
        self.timings[name] = round(time.perf_counter() - t0, 2)
        if self._reuse_note is not None:
            self.reused.append(name)
            self._write(f"   {name} reused: {self._reuse_note}\n")
        else:
            self._write(f"   {name} done in {self.timings[name]:.1f} s\n")

    def reuse(self, note: str) -> None:
        """Mark the current stage as reused (its finished, still valid output was found)."""
        self._reuse_note = note

    def note(self, text: str) -> None:
        self._write(f"   {text}\n")


class ReuseCounter:
    """A stand-in log for a single step: counts the reuses and keeps their notes."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    @property
    def n(self) -> int:
        return len(self.notes)

    def reuse(self, note: str) -> None:
        self.notes.append(note)


def reuse_valid(path, kind: str, expect, log=None, *, check=None, note: str | None = None) -> dict | None:
    """The result of ``kind`` at ``path`` when its format tag and fingerprints match ``expect``
    (and ``check(doc)`` holds, e.g. its figures exist), announced on ``log`` as reused
    (``note``, default the path); None when it must be recomputed. Every stage's reuse rule."""
    doc = artifacts.read_valid(path, kind, expect)
    if doc is None or (check is not None and not check(doc)):
        return None
    if log is not None:
        log.reuse(str(path) if note is None else note)
    return doc
