"""A warning on the command line is one line, like an error (issue 26, defect 13: the
symlink-loop warning took 2 lines, the second the source of the ``warnings.warn`` call)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers.fake_datasets import write_folder


def test_the_symlink_loop_warning_is_one_line(model_file, tmp_path):
    root = tmp_path / "imgs"
    write_folder(root / "a", n=3, metadata=None)
    os.symlink(root, root / "a" / "loop")  # a link back to the top: a loop
    env = dict(os.environ, PYTHONWARNINGS="default")
    proc = subprocess.run([sys.executable, "-m", "clipica", "extract", "--model", model_file, "--data",
                           f"folder:{root}", "--out", str(tmp_path / "s"), "--quiet", "--num-workers", "0"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("clipica extract: UserWarning:") and "symlink loop" in lines[0]
