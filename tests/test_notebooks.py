"""Every notebook in notebooks/ executes without error at test size, so none can rot.

Each notebook reads ``CLIPICA_NB_SIZE`` (``test`` here; ``full`` by default for
people) and scales its data, steps and K with it. The kernel is the one the
running interpreter provides (ipykernel's native ``python3`` spec), started with
this process' environment, so it sees the test's model cache.
"""

from __future__ import annotations

import re
import shutil

import pytest

from tests.helpers import REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
WRITES = {
    "01_quickstart.ipynb": ("runs/nb01_quickstart/report.html", "runs/nb01_quickstart/ica/ica.json"),
    "02_real_clip_celeba.ipynb": ("runs/nb02_real_clip_celeba/report.html",),
    "03_interventions.ipynb": ("runs/nb03_interventions/ica/ica.json",),
    "05_fewshot.ipynb": ("runs/nb05_fewshot/fewshot.json",),
}
# a plot cell ends with a figure expression: a viz ``plot_*`` call, a ``.figure`` or ``fig``
PLOT_CELL = re.compile(r"(plot_\w+\(.*\)|\.figure(\(.*\))?|^fig)\s*(#.*)?$")
# how many plot cells each notebook has, so the image check below cannot pass vacuously
N_PLOTS = {
    "01_quickstart.ipynb": 3,
    "02_real_clip_celeba.ipynb": 2,
    "03_interventions.ipynb": 2,
    "04_identifiability.ipynb": 2,
    "05_fewshot.ipynb": 1,
}
EXPECTED = {
    "01_quickstart.ipynb",
    "02_real_clip_celeba.ipynb",
    "03_interventions.ipynb",
    "04_identifiability.ipynb",
    "05_fewshot.ipynb",
}


def test_all_notebooks_are_present_and_have_no_outputs():
    assert EXPECTED <= {p.name for p in NOTEBOOKS}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.get("outputs"), f"{path.name}: commit notebooks without outputs"
                assert cell.get("execution_count") is None, f"{path.name}: clear execution counts"
        sources = "\n".join(c.source for c in nb.cells)
        assert "CLIPICA_NB_SIZE" in sources, f"{path.name} is not parameterised by CLIPICA_NB_SIZE"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_at_test_size(path, tmp_path, monkeypatch, tiny_faces_cache):
    # the kernel inherits os.environ: test size, the cached tiny model, no network
    monkeypatch.setenv("CLIPICA_NB_SIZE", "test")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("CLIPICA_CELEBA", raising=False)  # 02 takes its offline fallback
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(path, work / path.name)
    nb = nbformat.read(work / path.name, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(work)}},
    )
    client.execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    # every plot cell displays its figure as an image, not as "<Figure size ... with 2 Axes>"
    plot_cells = [
        cell for cell in nb.cells
        if cell.cell_type == "code" and cell.source.strip()
        and PLOT_CELL.search(cell.source.strip().splitlines()[-1].strip())
    ]
    assert len(plot_cells) == N_PLOTS[path.name], [c.source.splitlines()[-1] for c in plot_cells]
    for cell in plot_cells:
        mimes = [set(out.get("data", {})) for out in cell.get("outputs", [])]
        assert any("image/png" in m for m in mimes), f"{path.name}: no image from {cell.source.splitlines()[-1]!r}: {mimes}"
        texts = [out["data"].get("text/plain", "") for out in cell.get("outputs", []) if "data" in out]
        assert sum("<Figure size" in t for t in texts) <= sum("image/png" in m for m in mimes)
    # what each notebook leaves behind, inside its working folder (never the repository)
    for rel in WRITES.get(path.name, ()):
        assert (work / rel).is_file(), f"{path.name} did not write {rel}"
