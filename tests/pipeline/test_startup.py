"""The analysis commands start fast: none imports the model libraries.

``clipica ica``, ``stability``, ``probe``, ``compare``, ``fewshot`` and ``report`` (with every
result present) read a store's embeddings; they never need a model, so they never import
open_clip, transformers, datasets or torchvision (seconds of start-up each). One fresh
interpreter runs them in turn on a copy of the demo's run folder and checks ``sys.modules``
after each: a module imported by one command stays imported, so the first command that pulls
one in is the one named.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from tests.helpers import REPO

MODEL_LIBRARIES = ("open_clip", "transformers", "datasets", "torchvision")

_SCRIPT = """
import json, sys
from clipica.cli import main
libs = {libs!r}
for name, argv in json.loads(sys.argv[1]):
    assert not [m for m in libs if m in sys.modules], "imported before " + name
    rc = main(argv)
    print(json.dumps({{"command": name, "rc": rc, "imported": [m for m in libs if m in sys.modules]}}),
          flush=True)
"""


def test_analysis_commands_never_import_the_model_libraries(demo_run, tmp_path):
    src, s = demo_run
    run = tmp_path / "run"
    shutil.copytree(src, run)  # the report rewrites report.html: not in the shared folder
    before = {p: p.read_bytes() for p in (run / "probe").iterdir()}
    store, ica, t = str(run / "store"), str(run / "ica"), tmp_path
    commands = [
        ("stability", ["stability", store, "--k-grid", "4", "--restarts", "2", "--out", f"{t}/stab",
                       "--quiet"]),
        ("ica", ["ica", store, "-k", "4", "--out", f"{t}/ica", "--quiet"]),
        ("probe", ["probe", store, "--ica", ica, "--out", f"{t}/probe", "--metrics-rows", "200",
                   "--dci-rows", "100", "--dci-trees", "2"]),
        ("compare", ["compare", store, "--k", "4", "--methods", "ica,pca,raw", "--quick",
                     "--out", f"{t}/compare", "--quiet"]),
        # --no-zeroshot: the zero-shot line encodes class prompts with the store's model (its
        # text encoder), which does import the model libraries
        ("fewshot", ["fewshot", "--train", store, "--label", "Smiling", "--seeds", "1",
                     "--shots", "2", "--variants", "linear,ica", "--no-zeroshot",
                     "--out", f"{t}/fewshot"]),
        # every result present: --no-compute refuses to compute (a missing or stale one fails)
        ("report", ["report", store, "--ica", ica, "--out", str(run), "--no-compute", "--quiet"]),
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(libs=MODEL_LIBRARIES), json.dumps(commands)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    done = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"command"')]
    assert [d["command"] for d in done] == [c for c, _ in commands], proc.stdout[-2000:]
    for d in done:
        assert d["rc"] == 0, (d, proc.stderr[-2000:])
        assert d["imported"] == [], d
    assert (run / "report.html").is_file()
    assert {p: p.read_bytes() for p in (run / "probe").iterdir()} == before  # reused, not recomputed
    assert s["k"] in (4, 8)
