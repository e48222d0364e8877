"""The match stage: the components of two run folders matched on the rows both embedded.

``match_stage(RUN_A, RUN_B, DIR)`` reads each run's ``store/`` and decomposition folder
(``ica/`` by default), joins the rows on ids, and writes ``DIR/match.json``
(:class:`~clipica.match.MatchResult`), ``DIR/pairs.csv`` and ``DIR/match.png``. Reused
when its fingerprints (both stores, both decompositions, the settings) still match.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from clipica.errors import InputError, StaleArtifactError
from clipica.pipeline import artifacts
from clipica.pipeline._log import reuse_valid

MATCH_JSON = "match.json"
OUTPUTS = (MATCH_JSON, "pairs.csv", "match.png")


def match_params(*, decomposition: str = "ica", modality: str = "image", control: bool = True,
                 top: int | None = None) -> dict:
    """The settings a ``match.json``'s ``params`` fingerprint covers."""
    if modality not in ("image", "text"):
        raise InputError(f"modality must be 'image' or 'text', got {modality!r}")
    name = str(decomposition)
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise InputError(f"--decomposition names a folder inside each run (e.g. ica), got {decomposition!r}")
    if top is not None and int(top) < 1:
        raise InputError(f"--top must be a positive number of pairs, got {top}")
    return {"decomposition": name, "modality": modality, "control": bool(control),
            "top": None if top is None else int(top)}


def load_side(run: str | os.PathLike, decomposition: str, side: str):
    """``(store, decomposition, store_fp, info)`` of one run folder; one line when it is not one."""
    from clipica.decompositions.registry import load_decomposition
    from clipica.embeddings.store import EmbeddingStore
    from clipica.pipeline.fit import fitted_inputs

    run = Path(run)
    if not run.is_dir():
        raise InputError(f"run {side} ({run}) is not a folder; pass run folders from `clipica run`")
    rf = artifacts.RunFolder(run)
    if not (rf.store / "manifest.json").is_file():
        raise InputError(f"run {side} ({run}) has no store/ (embeddings); pass a folder written by `clipica run`")
    dec_dir = artifacts.resolve_inside(run, decomposition)
    if not dec_dir.is_dir():
        raise InputError(f"run {side} ({run}) has no {decomposition}/ decomposition; fit one "
                         f"(`clipica ica {rf.store} -k K --out {run / decomposition}`) or pass --decomposition")
    store = EmbeddingStore.open(rf.store)
    store_fp = artifacts.store_fingerprint(store)
    fitted_on = fitted_inputs(dec_dir).get("store")
    if fitted_on is not None and fitted_on != store_fp:
        raise StaleArtifactError(f"{dec_dir} was fitted on another store than {rf.store}; refit it")
    dec = load_decomposition(dec_dir)
    model = store.manifest.get("model") or {}
    info = {"run": str(run), "decomposition": decomposition, "kind": getattr(dec, "kind", None),
            "k": int(dec.components_.shape[0]), "model": model.get("spec"),
            "pretrained": model.get("pretrained"), "layer": store.manifest.get("layer", "final"),
            "n_rows": int(store.n_rows), "embed_dim": int(store.embed_dim)}
    return store, dec, store_fp, info


def _matrix(store, modality: str, side: str) -> np.ndarray:
    X = store.image if modality == "image" else store.text
    if X is None:
        raise InputError(f"run {side}'s store has no {modality} embeddings")
    return np.asarray(X, dtype=np.float32)


def match_stage(run_a, run_b, out_dir, params: dict, *, log=None, reuse: bool = True) -> dict:
    """Write ``out_dir/match.json`` (+ ``pairs.csv``, ``match.png``); returns the payload."""
    from clipica._atomic import atomic_write_text
    from clipica.match import MatchResult, match

    sa, da, fa, ia = load_side(run_a, params["decomposition"], "A")
    sb, db, fb, ib = load_side(run_b, params["decomposition"], "B")
    out_dir = Path(out_dir)
    expect = {"store_a": fa, "decomposition_a": artifacts.decomposition_fingerprint(da),
              "store_b": fb, "decomposition_b": artifacts.decomposition_fingerprint(db),
              "params": artifacts.params_fingerprint(params)}
    path = out_dir / MATCH_JSON
    if reuse:
        doc = reuse_valid(path, "match", expect, log, check=lambda d: (out_dir / "match.png").is_file())
        if doc is not None:
            return doc
    Xa, Xb = _matrix(sa, params["modality"], "A"), _matrix(sb, params["modality"], "B")
    for side, X, dec in (("A", Xa, da), ("B", Xb, db)):
        if X.shape[1] != dec.components_.shape[1]:
            raise InputError(f"run {side}'s decomposition expects {dec.components_.shape[1]} features, "
                             f"its {params['modality']} embeddings have {X.shape[1]}")
    result = match(Xa, da, Xb, db, ids_a=sa.rows["id"].to_numpy(), ids_b=sb.rows["id"].to_numpy(),
                   labels=sa.rows, control=params["control"], top=params["top"], significance=True,
                   fingerprints=expect, inputs={"a": ia, "b": ib})
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = result.to_dict()
    artifacts.save_result(path, doc, kind="match", fingerprints=expect)
    atomic_write_text(out_dir / "pairs.csv", result.table().to_csv(index=False))
    _figure(MatchResult.from_dict(doc), out_dir / "match.png")
    return doc


def _figure(result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clipica.viz.match import plot_match

    fig = plot_match(result)
    fig.savefig(path, dpi=120)
    plt.close(fig)
