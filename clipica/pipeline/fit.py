"""Stages up to the fitted decomposition: the model, extraction, the K sweep, the fit.

Each returns what the next stage needs and reports through a :class:`StageLog` whether
its finished, still valid output was reused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from clipica.errors import ArtifactError, InputError
from clipica.pipeline import artifacts

# ------------------------------------------------------------------ model


def tiny_needs_training(pretrained: str | None = None) -> bool:
    """True when ``--model tiny-faces --pretrained PRETRAINED`` names the cache folder and it
    holds no trained weights (shipped checkpoints and given folders are never trained here)."""
    from clipica.models import tiny

    d = tiny.weights_dir(pretrained)
    return d is not None and d == tiny.default_dir() and not tiny.is_trained(d)


def train_tiny_stage(steps: int | None = None, *, progress: bool = True) -> Path:
    """Train the built-in ``tiny-faces`` into the cache (explicit: loading never trains)."""
    from clipica.models import tiny
    from clipica.models.tiny.train import train_tiny

    n = tiny.DEFAULT_STEPS if steps is None else int(steps)
    train_tiny(steps=n, out=tiny.default_dir(), progress=progress)
    return tiny.weights_path()


def tiny_training_estimate(steps: int | None = None) -> str:
    from clipica.models import tiny

    n = tiny.DEFAULT_STEPS if steps is None else int(steps)
    minutes = n * tiny.SECONDS_PER_STEP / 60
    return f"{n} steps, about {max(1, round(minutes))} min on one CPU core; done once, then cached"


def tiny_weights_label(pretrained: str | None = None) -> str:
    """How the model stage names the weights it uses: ``shipped seed0``, ``cached``, a path."""
    from clipica.models import tiny

    tag = pretrained or (tiny.DEFAULT_PRETRAINED if tiny.DEFAULT_PRETRAINED in tiny.SHIPPED else None)
    if tag in tiny.SHIPPED:
        return f"shipped weights {tag}"
    return "cached weights" if pretrained in (None, "", tiny.CACHE_TAG) else f"weights {pretrained}"


def model_eval(pretrained: str | None = None) -> dict | None:
    """The ``eval.json`` beside the tiny-faces weights ``pretrained`` names (None when absent)."""
    from clipica.models import tiny

    return tiny.read_eval(pretrained)


# ------------------------------------------------------------------ extraction


def store_is_complete(path: str | os.PathLike) -> bool:
    try:
        m = artifacts.read_json(Path(path) / "manifest.json")
    except ArtifactError:
        return False
    return bool(m.get("complete"))


def extract_stage(model: str, data: str, out: str | os.PathLike, *, log=None, **options: Any):
    """:func:`clipica.embeddings.extract.extract` (resumable; a finished store with the same settings
    is returned as is, and the log says "reused")."""
    from clipica.embeddings.extract import extract

    # with overwrite the store is extracted again even when it was complete (another --data)
    was_complete = store_is_complete(out) and not options.get("overwrite")
    store = extract(model, data, out, **options)
    if was_complete and log is not None:
        log.reuse(f"complete store in {out} ({store.n_rows} rows)")
    return store


# ------------------------------------------------------------------ K


def sweep_rows_index(n_rows: int, sweep_rows: int, seed: int) -> np.ndarray:
    """Rows of the sweep: all when ``n_rows <= sweep_rows``, else a seeded sorted subsample."""
    if n_rows <= sweep_rows:
        return np.arange(n_rows)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, sweep_rows, replace=False))


def sweep_table(sweep: Any) -> dict:
    """The sweep DataFrame as plain lists, one per column."""
    cols = [c for c in ("k", "stability_mean", "stability_min", "stability_median", "n_stable",
                        "explained_variance", "converged_fraction", "seconds") if c in sweep]
    return {c: [int(v) if c in ("k", "n_stable") else float(v) for v in sweep[c]] for c in cols}


def stability_params(k_grid, *, restarts: int, sweep_rows: int, seed: int, threshold: float,
                     modality: str = "image") -> dict:
    return {"k_grid": sorted({int(k) for k in k_grid}), "restarts": int(restarts),
            "sweep_rows": int(sweep_rows), "seed": int(seed), "threshold": float(threshold),
            "modality": modality}


def compute_stability(X, params: dict, *, progress: bool = True) -> dict:
    """The K sweep (bootstrap ICA refits per K) and the K rule, as the ``stability.json`` body.

    ``X`` is (n_rows, D); ``params`` from :func:`stability_params`. K values the ICA cannot fit
    (above the numerical rank of the sweep's rows, or not below their number) are dropped and
    listed with the reason in ``k_grid_dropped`` (:func:`fitting_k`). The body is the typed
    :class:`~clipica.decompositions.stability.StabilitySweep` (``rows``, ``per_component``,
    ``chosen_k``, ``rule``; its ``from_dict`` reads it) plus the same table as columns
    (``k``, ``stability_mean``, ...) for the report and scripts.
    """
    from clipica._format import FINGERPRINTS_KEY, FORMAT_KEY
    from clipica.decompositions.stability import sweep

    n_rows = int(X.shape[0])
    rows = sweep_rows_index(n_rows, params["sweep_rows"], params["seed"])
    Xs = np.asarray(X[rows])
    ks, dropped = fitting_k(params["k_grid"], Xs)
    result = sweep(Xs, ks, n_runs=params["restarts"], random_state=params["seed"], progress=progress)
    k = result.choose(min_stability=params["threshold"])
    table = sweep_table(result.to_frame())
    body = {key: v for key, v in result.to_dict().items() if key not in (FORMAT_KEY, FINGERPRINTS_KEY)}
    return {**body, **table, "threshold": params["threshold"], "n_runs": params["restarts"],
            "resampling": "bootstrap", "n_rows": int(len(rows)),
            "stability_mean_at_k": float(table["stability_mean"][table["k"].index(k)]),
            "k_grid_dropped": dropped, "stage_params": params}


def numerical_rank(X) -> int:
    """The numerical rank of the covariance of ``X`` (n_rows, D): eigenvalues above
    D · eps(float32) · λ_max, the ICA's own rule (its default float32 solver)."""
    X = np.asarray(X, dtype=np.float64)
    evals = np.linalg.eigvalsh(np.cov(X, rowvar=False, bias=True).reshape(X.shape[1], X.shape[1]))
    tol = max(float(evals.max()), 0.0) * X.shape[1] * float(np.finfo(np.float32).eps)
    return int(np.sum(evals > tol))


def fitting_k(k_grid, X) -> tuple[list[int], dict[str, str]]:
    """The K values of ``k_grid`` an ICA can fit on ``X`` (n_rows, D), and why each other one
    was dropped (``{K: reason}``): K must be below the number of rows and the dimension, and at
    most the numerical rank. InputError, saying which K would fit, when none does."""
    n, d = X.shape
    rank = numerical_rank(X) if n > 1 else 0
    limit = min(rank, n - 1, d)
    ks, dropped = [], {}
    for k in k_grid:
        if k > limit:
            dropped[str(k)] = (f"above the numerical rank of the embeddings ({rank})" if k > rank
                               else f"not below the number of rows ({n}) and dimensions ({d})")
        else:
            ks.append(int(k))
    if not ks:
        fits = f"choose K values from 2 to {limit}" if limit >= 2 else "embed more (or more varied) rows"
        raise InputError(
            f"no K in the grid {list(k_grid)} can be fitted on these {n} rows of {d}-d embeddings "
            f"(numerical rank {rank}, so K <= {limit}); {fits}")
    return ks, dropped


def stability_stage(store, out_dir: str | os.PathLike, params: dict, *, store_fp: str,
                    log=None, progress: bool = True) -> dict:
    """Reuse ``out_dir/stability.json`` for the same store and settings, else sweep and write
    it with ``stability.png``. Returns the payload (``chosen_k``, ``rule``, per-K columns)."""
    out_dir = Path(out_dir)
    path = out_dir / artifacts.STABILITY_JSON
    expect = {"store": store_fp, "params": artifacts.params_fingerprint(params)}
    doc = artifacts.read_valid(path, "stability", expect)
    if doc is not None:
        if log is not None:
            log.reuse(f"{path} (K = {doc['chosen_k']})")
        return doc
    X = store.image if params.get("modality", "image") == "image" else store.text
    doc = compute_stability(X, params, progress=progress)
    if doc.get("k_grid_dropped") and log is not None and hasattr(log, "note"):
        log.note(dropped_line(doc))
    artifacts.save_result(path, doc, kind="stability", fingerprints=expect)
    _save_stability_png(doc, out_dir / "stability.png")
    return doc


def _save_stability_png(doc: dict, path: Path) -> None:
    import io

    from clipica._atomic import atomic_write_bytes
    from clipica.viz.stability import plot_stability_vs_k

    fig = plot_stability_vs_k({k: doc[k] for k in ("k", "stability_mean", "stability_min",
                                                   "explained_variance") if k in doc},
                              chosen_k=doc.get("chosen_k"), threshold=doc.get("threshold", 0.8))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def dropped_line(doc: dict) -> str:
    """One line naming the K values the sweep could not fit and why (``k_grid_dropped``)."""
    by_reason: dict[str, list[str]] = {}
    for k, why in (doc.get("k_grid_dropped") or {}).items():
        by_reason.setdefault(why, []).append(k)
    return "K grid: " + "; ".join(f"{', '.join(ks)} dropped ({why})" for why, ks in by_reason.items()) + \
        f"; swept {doc.get('k')}"


def chosen_k(stability_dir: str | os.PathLike, store_fp: str) -> tuple[int, str]:
    """K chosen by the sweep in ``stability_dir`` for this store (``clipica ica -k auto``).

    Raises :class:`~clipica.errors.ArtifactError` (one line: run ``clipica stability``) when
    there is no sweep, and :class:`~clipica.errors.StaleArtifactError` when it was run on
    another store.
    """
    path = Path(stability_dir) / artifacts.STABILITY_JSON
    if not path.is_file():
        raise ArtifactError(
            f"-k auto needs a K sweep in {path.parent}; run `clipica stability STORE --k-grid 8 16 32 64 "
            f"--out {path.parent}` first (or pass -k K)")
    doc = artifacts.load_result(path, "stability", {"store": store_fp})
    return int(doc["chosen_k"]), str(doc.get("rule", ""))


# ------------------------------------------------------------------ fit


def ica_params(k: int, *, seed: int = 0, solver: str = "auto", fun: str = "logcosh",
               max_iter: int = 200, tol: float = 1e-4, device: str = "cpu",
               modality: str = "image", stability_runs: int = 0, blocks: bool = True) -> dict:
    return {"k": int(k), "seed": int(seed), "solver": solver, "fun": fun, "max_iter": int(max_iter),
            "tol": float(tol), "device": device, "modality": modality,
            "stability_runs": int(stability_runs), "blocks": bool(blocks)}


def fitted_inputs(ica_dir: str | os.PathLike) -> dict:
    """The input fingerprints recorded in a fitted ICA folder (empty when none or unreadable)."""
    try:
        meta = artifacts.read_json(Path(ica_dir) / "ica.json")
    except ArtifactError:
        return {}
    return dict(meta.get("fingerprints") or {})


def fit_ica(X, params: dict, *, progress: bool = True):
    """A fitted :class:`~clipica.decompositions.ica.ICA` (and its bootstrap stability result, or None)."""
    kw = {k: params[k] for k in ("solver", "fun", "max_iter", "tol", "device")}
    if params.get("stability_runs"):
        from clipica.decompositions.stability import stability

        stab = stability(X, params["k"], n_runs=params["stability_runs"], bootstrap=True,
                         random_state=params["seed"], progress=progress, **kw)
        ica = stab.reference
        ica.stability_ = stab.stability
        return ica, stab
    from clipica.decompositions.ica import ICA

    return ICA(n_components=params["k"], random_state=params["seed"], **kw).fit(X), None


#: what a decomposition folder may hold; anything else makes refitting into it refuse, since
#: the refit replaces the folder as a unit
_FIT_FILES = {"ica.json", "arrays.safetensors", "stability.json", "blocks.json", "naming", "decoder",
              "decoder.json", "decoder.safetensors",
              # the intervention caches (pipeline.analyses): derived, refitted with the folder
              "attribute_probes.json", "prompt_embeddings.json", "component_stats.json"}


def _check_replaceable(out_dir: Path) -> None:
    from clipica.errors import ArtifactExistsError

    if out_dir.exists() and not out_dir.is_dir():
        raise ArtifactExistsError(f"{out_dir} exists and is not a folder; choose another path")
    if out_dir.is_dir():
        other = sorted(p.name for p in out_dir.iterdir() if p.name not in _FIT_FILES)
        if other:
            raise ArtifactExistsError(
                f"{out_dir} holds files that are not a fitted decomposition ({', '.join(other[:3])}); "
                "a refit replaces the folder as a unit, so choose an empty or ICA folder")


def fit_stage(X, out_dir: str | os.PathLike, params: dict, *, store_fp: str | None,
              source: dict | None = None, log=None, progress: bool = True, reuse: bool = True):
    """Reuse the ICA in ``out_dir`` when it was fitted on this store with these settings,
    else fit and write the folder as a unit (its stale naming/ and decoder/ go with the old
    fit). Returns the fitted ICA."""
    import time

    from clipica.decompositions.ica import ICA

    out_dir = Path(out_dir)
    expect = {"store": store_fp, "params": artifacts.params_fingerprint(params)}
    if reuse and store_fp is not None and fitted_inputs(out_dir) == expect:
        try:
            ica = ICA.load(out_dir)
        except Exception:  # noqa: BLE001 - an unreadable fit is refitted, not trusted
            ica = None
        if ica is not None:
            if log is not None:
                log.reuse(f"{out_dir} (K = {ica.components_.shape[0]})")
            return ica
    _check_replaceable(out_dir)
    t0 = time.perf_counter()
    ica, stab = fit_ica(X, params, progress=progress)
    found = None
    if params.get("blocks"):
        from clipica.decompositions.blocks import MIN_ROWS, find_blocks

        if len(X) >= MIN_ROWS:
            # the ICA's unidentifiable Gaussian block stays one block, left out of the search
            found = find_blocks(ica.transform(X), n_bootstrap=10, random_state=params["seed"],
                                fixed_block=getattr(ica, "gaussian_block_", None))
            ica.blocks_ = found.blocks
        elif hasattr(log, "note"):
            # too few rows to measure dependence between sources: no blocks, said aloud
            log.note(f"blocks skipped: {len(X)} rows, dependence needs at least {MIN_ROWS}")
    extra = {**(source or {}), "command_seconds": time.perf_counter() - t0}
    if stab is not None:
        extra["stability"] = {k: v for k, v in stab.to_dict().items() if k != "stability"}

    def fill(tmp: Path) -> None:
        ica.save(tmp, overwrite=True, extra=extra, fingerprints={k: v for k, v in expect.items() if v})
        from clipica._atomic import atomic_write_json

        if stab is not None:
            atomic_write_json(tmp / "stability.json", stab.to_dict())
        if found is not None:
            atomic_write_json(tmp / "blocks.json", found.to_dict({"decomposition": ica.fingerprint()}))

    artifacts.replace_dir(out_dir, fill)
    return ica
