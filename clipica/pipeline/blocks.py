"""Stages for blocks of dependent components: the 2-D block traversal, and compare.

``block_traversal_stage`` is ``clipica intervene --block B``: the decomposition's block
``B`` (``blocks_[B]``, 2 or more components; a 3-component block keeps its third
component fixed, see :mod:`clipica.intervene.block_traversal`) swept over a 2-D grid, each cell
shown by the nearest store image. ``compare_stage`` is ``clipica compare`` and the
``compare`` stage of ``clipica run``: :func:`clipica.probes.compare.compare` on a store,
written as ``compare.json`` (+ csv, figures) and reused while its inputs match.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from clipica.errors import InputError
from clipica.pipeline import artifacts
from clipica.pipeline._log import reuse_valid

#: images shown per grid (source rows), and the rows giving each component's std
BLOCK_ROWS = 2
REFERENCE_ROWS = 5000


def block_traversal_params(block: int, *, rows: int = BLOCK_ROWS, alphas=None, axes=None,
                           seed: int = 0) -> dict:
    """The parameters a block traversal's fingerprint covers."""
    from clipica.intervene.block_traversal import DEFAULT_GRID

    if rows < 1:
        raise InputError(f"--rows must be >= 1; got {rows}")
    al = [float(a) for a in (alphas if alphas else DEFAULT_GRID)]
    if len(al) < 2:
        raise InputError(f"a grid needs at least 2 steps per axis; got {al}")
    return {"block": int(block), "rows": int(rows), "alphas": al,
            "axes": None if axes is None else [int(a) for a in axes], "seed": int(seed)}


def block_traversal_stage(store, decomposition, png: str | os.PathLike, params: dict, *,
                          store_fp: str, inputs: dict | None = None, log=None,
                          reuse: bool = True) -> dict:
    """Sweep block ``params["block"]`` of ``decomposition.blocks_`` over a 2-D grid.

    Writes ``png`` (the grid for the first source row), ``<stem>_row<j>.png`` for the
    others, and ``<stem>.json`` (format ``clipica.block_traversal/1``: the block, axes,
    steps, units, source rows and the nearest store row of every cell). Returns that
    payload. Reuses it when its fingerprints match and its PNGs exist.
    """
    from clipica.intervene.block_traversal import edit_block, retrieve_grid
    from clipica.pipeline.analyses import fingerprints, traversal_paths

    png, stem, json_path = traversal_paths(png, decomposition, store)
    blocks = getattr(decomposition, "blocks_", None)
    if not blocks:
        raise InputError("this decomposition has no blocks_; fit it with blocks "
                         "(`clipica ica` finds them by default) or traverse one --component")
    b = params["block"]
    if not 0 <= b < len(blocks):
        raise InputError(f"block {b} is out of range: this decomposition has {len(blocks)} blocks "
                         f"(0 to {len(blocks) - 1}): {blocks}")
    block = [int(k) for k in blocks[b]]
    gaussian = set(getattr(decomposition, "gaussian_block_", None) or [])
    usable = [i for i, g in enumerate(blocks) if len(g) > 1 and not set(g) <= gaussian]
    if gaussian and set(block) <= gaussian:
        raise InputError(f"block {b} is the decomposition's unidentifiable Gaussian block: no direction "
                         f"in it means more than another, so its traversal would show noise "
                         f"(blocks of 2+ identifiable components: {usable})")
    if len(block) < 2:
        raise InputError(f"block {b} is the single component {block[0]}; traverse it with "
                         f"--component {block[0]} (blocks of 2+ components: {usable})")
    expect = fingerprints(store_fp, decomposition, params)
    if reuse:
        doc = reuse_valid(json_path, "block_traversal", expect, log,
                          check=lambda d: all((png.parent / f).is_file() for f in d.get("figures", [])))
        if doc is not None:
            return doc
    X = store.image
    n = X.shape[0]
    rng = np.random.default_rng(params["seed"])
    rows = np.sort(rng.choice(n, min(params["rows"], n), replace=False))
    ref = np.asarray(X[np.sort(rng.choice(n, min(REFERENCE_ROWS, n), replace=False))])
    tr = edit_block(np.asarray(X[rows]), decomposition, block, params["alphas"],
                    axes=params["axes"], reference=ref, rows=rows)
    retrieve_grid(tr, X)
    import matplotlib

    matplotlib.use("Agg")
    from clipica.intervene.retrieval import load_images
    from clipica.viz.traversal import plot_block_grid

    size = 64
    A = len(tr.alphas)
    png.parent.mkdir(parents=True, exist_ok=True)
    figures = []
    for j, r in enumerate(rows):
        images = load_images(store, tr.neighbours[:, :, j], size).reshape(A, A, size, size, 3)
        fixed = [k for k in block if k not in tr.axes]
        title = (f"block {b} {block}: c{tr.axes[0]} x c{tr.axes[1]} in std units"
                 + (f", {', '.join(f'c{k}' for k in fixed)} fixed" if fixed else "") + f"; nearest images, row {int(r)}")
        path = png if j == 0 else Path(f"{stem}_row{j}.png")
        fig = plot_block_grid(images, tr.alphas, tr.axes, title=title)
        fig.savefig(path, dpi=110)
        figures.append(path.name)
    doc = {**tr.to_dict(), "block_index": b, "figures": figures, **(inputs or {})}
    artifacts.save_result(json_path, doc, kind="block_traversal", fingerprints=expect)
    return {**doc, "format": artifacts.format_tag("block_traversal"), "fingerprints": expect}


# ------------------------------------------------------------------ compare


def compare_params(methods, k: int, *, seeds=None, quick: bool = False,
                   max_rows: int | None = None, factors=(), modality: str = "image") -> dict:
    """The settings a ``compare.json``'s fingerprint covers. ``quick``: at most 5000 rows and,
    unless ``seeds`` are given, 2 seeds (0, 1) instead of 3 (0, 1, 2)."""
    from clipica.probes.compare import METHODS, QUICK_SEEDS

    methods = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods) if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise InputError(f"unknown method(s) {', '.join(bad) or '(none given)'}; "
                         f"choose from {', '.join(METHODS)}")
    if max_rows is None and quick:
        max_rows = 5000
    if seeds is None:
        seeds = QUICK_SEEDS if quick else (0, 1, 2)
    return {"methods": list(dict.fromkeys(methods)), "k": int(k), "seeds": [int(s) for s in seeds],
            "quick": bool(quick), "max_rows": None if max_rows is None else int(max_rows),
            "factors": [str(f) for f in factors or ()], "modality": modality}


def compare_stage(store, out_dir: str | os.PathLike, params: dict, *, store_fp: str, log=None,
                  progress: bool = True, reuse: bool = True) -> dict:
    """``out_dir/compare.json`` (+ ``compare.csv``, ``compare_scores.png``,
    ``compare_methods.png``) for this store and settings: reused when its fingerprints
    (store, params) match, else computed with :func:`clipica.probes.compare.compare`. Returns the
    ``compare.json`` payload."""
    from clipica._atomic import atomic_write_text
    from clipica.errors import StoreError
    from clipica.probes.compare import CompareResult, compare

    out_dir = Path(out_dir)
    path = out_dir / "compare.json"
    expect = {"store": store_fp, "params": artifacts.params_fingerprint(params)}
    if reuse:
        doc = reuse_valid(path, "compare", expect, log)
        if doc is not None:
            return doc
    X = store.image if params["modality"] == "image" else store.text
    if X is None:
        raise StoreError("this store has no text embeddings; compare the image embeddings")
    rows = store.rows
    cols = [c for c in store.label_columns if c in rows.columns]
    if not cols:
        raise InputError("the store has no label columns to score the decompositions against")
    labels = rows[cols + (["split"] if "split" in rows.columns else [])]
    result = compare(np.asarray(X, dtype=np.float32), labels, k=params["k"], methods=params["methods"],
                     factors=params["factors"] or None, seeds=params["seeds"], quick=params["quick"],
                     max_rows=params["max_rows"], fingerprints=expect, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = result.to_dict()
    artifacts.save_result(path, doc, kind="compare", fingerprints=expect)
    atomic_write_text(out_dir / "compare.csv", result.table().to_csv())
    _compare_figures(CompareResult.from_dict(doc), out_dir)
    return doc


def _compare_figures(result, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from clipica.viz.compare import plot_compare_methods, plot_compare_scores

    for name, fn in (("compare_scores.png", plot_compare_scores),
                     ("compare_methods.png", plot_compare_methods)):
        fn(result).savefig(out_dir / name, dpi=120)
