"""The pipeline tests' shared run folder."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, tiny_faces_cache):
    """``clipica demo --quick`` at test size (600 rows, K from 4 or 8), run once per session:
    ``(run folder, summary.json as a dict)``. Tests only read it (copy before writing)."""
    from clipica.cli import main

    out = tmp_path_factory.mktemp("demo") / "run"
    code = main(["demo", "--out", str(out), "--quick", "--rows", "600", "--k-grid", "4", "8",
                 "--quiet"])
    assert code == 0
    return out, json.loads((out / "summary.json").read_text())
