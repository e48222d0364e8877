"""A busy core: the benches' second condition, beside idle cores.

On a shared machine another process often holds one of the cores. Thread choices that are
right on idle cores can then cost several times over: a parallel region whose threads wait
for each other at a barrier stalls whenever the scheduler parks one of them behind the other
process (tiny-faces training with 2 torch threads ran 9x slower that way). ``clipica bench
pipeline --busy-core`` and ``clipica bench extract --busy-core`` time their stages idle and
then again inside :class:`BusyCore`, and report ``busy / idle`` per stage against
:data:`TARGET_SLOWDOWN`.

Why 2.5x: a stage that used both cores keeps one of them and shares the other with the
spinning process, so it can expect about 1.5x-2x; past 2.5x its threads are waiting for
each other, not computing.
"""

from __future__ import annotations

import sys
import time

#: the most a stage may slow down with one of two cores busy (module docstring)
TARGET_SLOWDOWN = 2.5


class BusyCore:
    """Context: another process keeps one core busy (a pure-Python spin loop) while inside.

    ``on=False`` makes it a no-op, so a caller can write ``with BusyCore(flag):``.
    """

    def __init__(self, on: bool = True):
        self.on = on
        self._proc = None

    def __enter__(self):
        if self.on:
            import subprocess

            self._proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.2)  # let it reach the loop before the clock starts
        return self

    def __exit__(self, *exc):
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


def slowdown(idle_seconds: float, busy_seconds: float) -> dict:
    """``{"idle_seconds", "busy_seconds", "slowdown", "within_target"}`` for one stage, where
    slowdown = busy / idle wall-clock seconds of the same work in the same bench run."""
    ratio = busy_seconds / idle_seconds if idle_seconds > 0 else float("inf")
    return {"idle_seconds": round(idle_seconds, 3), "busy_seconds": round(busy_seconds, 3),
            "slowdown": round(ratio, 3), "target_slowdown": TARGET_SLOWDOWN,
            "within_target": bool(ratio <= TARGET_SLOWDOWN)}
