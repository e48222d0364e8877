"""The benches' busy core: another process really spins while inside, and is gone after."""

import os
import time

import pytest

from clipica.bench.busy import TARGET_SLOWDOWN, BusyCore, slowdown


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
def test_busy_core_spins_another_process_while_inside():
    with BusyCore() as busy:
        pid = busy._proc.pid
        t0, c0 = time.perf_counter(), _cpu_seconds(pid)
        time.sleep(0.6)
        used = (_cpu_seconds(pid) - c0) / (time.perf_counter() - t0)
    assert used > 0.3  # a core's share, not an idle process (even on 2 loaded cores)
    assert busy._proc is None and not os.path.exists(f"/proc/{pid}")  # killed and reaped
    with BusyCore(on=False) as off:
        assert off._proc is None


def test_slowdown_is_busy_over_idle_against_the_target():
    assert slowdown(2.0, 3.0) == {"idle_seconds": 2.0, "busy_seconds": 3.0, "slowdown": 1.5,
                                  "target_slowdown": TARGET_SLOWDOWN, "within_target": True}
    assert slowdown(1.0, 2.6)["within_target"] is False
    assert slowdown(0.0, 1.0)["within_target"] is False
