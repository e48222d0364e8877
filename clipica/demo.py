"""``clipica demo``: the whole method, offline, on the built-in default.

synthetic faces → ``tiny-faces`` (trained and cached on first use) → extraction
→ stability sweep over K → ICA → probes with baselines and ground-truth metrics →
component naming → selectivity of every attribute's component → traversals of the
strongest components → ``report.html`` and ``summary.json``.

The output folder is laid out as the individual commands write it, so a user can
go on from it with any command or a notebook::

    DIR/store/            clipica extract --model tiny-faces --data synthetic-faces:N --out DIR/store
    DIR/stability.json    clipica.stability.sweep_k over the K grid (and the rule that chose K)
    DIR/ica/              clipica ica DIR/store -k K --out DIR/ica
    DIR/probe/            clipica probe DIR/store --ica DIR/ica --out DIR/probe
    DIR/ica/naming/       clipica name DIR/store --ica DIR/ica
    DIR/traversals/       clipica intervene DIR/store --ica DIR/ica --component I --out DIR/traversals/cI.png
    DIR/report.html       clipica report DIR/store --ica DIR/ica --out DIR
    DIR/summary.json      the headline numbers and the wall time of each stage

The ICA, probe, naming and intervention artifacts are produced by running those
commands in-process, so they are byte-for-byte what the commands write.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clipica._atomic import atomic_write_json
from clipica.errors import ClipicaError, InputError

#: the attributes shown as traversals (one hair colour stands for the four)
TRAVERSAL_ATTRIBUTES = ("Smiling", "Eyeglasses", "Blond_Hair")


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and choices of one demo run; recorded in ``summary.json``.

    n_rows : synthetic faces embedded.  k_grid : candidate numbers of components.
    stability_threshold / restarts : the K rule, :func:`clipica.stability.choose_k` (the
    largest K with at least 90% of its components at or above the threshold in stability
    over bootstrap refits).
    traversal_rows : source rows per traversal grid.  decoder_epochs : None = the
    decoder's default budget.  tiny_steps : training steps if the model is not cached.
    """

    n_rows: int = 20000
    k_grid: tuple[int, ...] = (4, 8, 12, 16, 24, 32)
    stability_threshold: float = 0.8
    restarts: int = 5
    sweep_rows: int = 20000
    seed: int = 0
    batch_size: int = 256
    traversal_attributes: tuple[str, ...] = TRAVERSAL_ATTRIBUTES
    traversal_rows: int = 5
    decoder_epochs: int | None = None
    tiny_steps: int | None = None
    model: str = "tiny-faces"

    @classmethod
    def quick(cls, **overrides: Any) -> DemoConfig:
        """A few thousand rows and a short decoder: about a minute with a cached model."""
        base = dict(n_rows=3000, k_grid=(4, 8, 12, 16), restarts=3, sweep_rows=3000,
                    traversal_rows=4, decoder_epochs=6)
        base.update(overrides)
        return cls(**base)


# ------------------------------------------------------------------ plumbing


class _Stages:
    """Stage headers on stderr and the wall time of each stage."""

    def __init__(self, total: int, quiet: bool = False):
        self.total, self.quiet, self.i = total, quiet, 0
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, what: str) -> Iterator[None]:
        self.i += 1
        if not self.quiet:
            sys.stderr.write(f"\n== clipica demo [{self.i}/{self.total}] {name}: {what}\n")
            sys.stderr.flush()
        t0 = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - t0, 2)
        if not self.quiet:
            sys.stderr.write(f"   {name} done in {self.timings[name]:.1f} s\n")


def _clipica(*argv: str) -> None:
    """Run a clipica command in-process; a failure raises instead of returning 2."""
    from clipica.cli import main

    code = main([str(a) for a in argv])
    if code != 0:
        raise ClipicaError(f"`clipica {' '.join(map(str, argv))}` failed (exit status {code}); see above")


def _read_json(path: Path) -> dict:
    import json

    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------ the demo


def run_demo(
    out: str | os.PathLike,
    *,
    quick: bool = False,
    config: DemoConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> dict:
    """Run the whole method into ``out`` and return the summary (also ``out/summary.json``).

    Re-running on the same folder reuses the finished store, the cached model and
    the trained decoder; the ICA, probes, names and traversals are recomputed. A store
    extracted with other settings (e.g. another row count) is refused unless ``overwrite``.
    """
    import numpy as np

    from clipica.data.synthetic_faces import SHARED_COLUMNS

    cfg = config or (DemoConfig.quick() if quick else DemoConfig())
    if cfg.n_rows < 200:
        raise InputError(f"the demo needs at least 200 rows to probe anything, got {cfg.n_rows}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store_dir, ica_dir, probe_dir = out / "store", out / "ica", out / "probe"
    trav_dir = out / "traversals"
    st = _Stages(total=9, quiet=not progress)
    q = [] if progress else ["--quiet"]
    commands: list[str] = []

    with st.stage("model", f"{cfg.model} (trained and cached on first use)"):
        from clipica.models import tiny

        weights = tiny.ensure_weights(train_if_missing=True, steps=cfg.tiny_steps)
        model_eval = _maybe_json(weights.parent / tiny.EVAL_NAME)

    data_spec = f"synthetic-faces:{cfg.n_rows}"
    with st.stage("extract", f"{data_spec} through {cfg.model} into {store_dir}"):
        from clipica.extraction import extract

        cmd = f"clipica extract --model {cfg.model} --data {data_spec} --out {store_dir} --batch-size {cfg.batch_size}"
        commands.append(cmd)
        store = extract(cfg.model, data_spec, store_dir, batch_size=cfg.batch_size,
                        overwrite=overwrite, progress=progress)
        X = store.image
        n_rows = int(X.shape[0])

    with st.stage("stability", f"ICA restarts for K in {list(cfg.k_grid)}"):
        from clipica.decompositions.stability import choose_k, sweep_k

        ks = [k for k in cfg.k_grid if k < min(X.shape)]
        rng = np.random.default_rng(cfg.seed)
        rows = np.arange(n_rows) if n_rows <= cfg.sweep_rows else np.sort(
            rng.choice(n_rows, cfg.sweep_rows, replace=False))
        sweep = sweep_k(np.asarray(X[rows]), ks, n_runs=cfg.restarts, random_state=cfg.seed,
                        progress=progress)
        k, rule = choose_k(sweep, min_stability=cfg.stability_threshold)
        table = _sweep_dict(sweep)
        stability = {**table, "chosen_k": k, "rule": rule, "threshold": cfg.stability_threshold,
                     "n_runs": cfg.restarts,
                     "resampling": "bootstrap", "n_rows": int(len(rows)),
                     "per_component": {str(kk): v for kk, v in sweep.attrs.get("per_component", {}).items()}}
        atomic_write_json(out / "stability.json", stability)
        stability_mean = float(table["stability_mean"][table["k"].index(k)])

    with st.stage("ica", f"K = {k} ({rule})"):
        argv = ["ica", store_dir, "-k", k, "--seed", cfg.seed, "--out", ica_dir, "--overwrite"]
        commands.append("clipica " + " ".join(map(str, argv)))
        _clipica(*argv)

    with st.stage("probe", "every component against every attribute, next to PCA / raw / random rotation"):
        argv = ["probe", store_dir, "--ica", ica_dir, "--out", probe_dir, "--overwrite"]
        commands.append("clipica " + " ".join(map(str, argv)))
        _clipica(*argv)
        probe_json = _read_json(probe_dir / "probe.json")

    with st.stage("naming", "top words at both poles of every component"):
        argv = ["name", store_dir, "--ica", ica_dir]
        commands.append("clipica " + " ".join(map(str, argv)))
        _clipica(*argv)
        naming = _read_json(ica_dir / "naming" / "naming.json")

    shared = [a for a in SHARED_COLUMNS if a in probe_json.get("attributes", {})]
    with st.stage("selectivity", "sweep each attribute's best component, watch every attribute probe"):
        selectivity = attribute_selectivity(store, ica_dir, probe_json, shared, seed=cfg.seed)

    with st.stage("traversals", f"decoded and retrieved traversals for {list(cfg.traversal_attributes)}"):
        traversed = []
        for attr in cfg.traversal_attributes:
            entry = probe_json["attributes"].get(attr)
            if entry is None or entry["best_component"] in {t["component"] for t in traversed}:
                continue
            comp = int(entry["best_component"])
            png = trav_dir / f"component_{comp:02d}.png"
            argv = ["intervene", store_dir, "--ica", ica_dir, "--component", comp, "--out", png,
                    "--rows", cfg.traversal_rows, "--seed", cfg.seed, *q]
            if cfg.decoder_epochs is not None:
                argv += ["--decoder-epochs", cfg.decoder_epochs]
            commands.append("clipica " + " ".join(map(str, argv)))
            _clipica(*argv)
            traversed.append({"component": comp, "attribute": attr})

    summary = _summary(cfg, store, ica_dir, n_rows, k, rule, stability_mean, probe_json, naming,
                       selectivity, shared, model_eval)
    summary["traversals"] = traversed
    summary["commands"] = commands
    with st.stage("report", f"{out / 'report.html'}"):
        from clipica.report import report_from_dirs

        summary["timings"] = dict(st.timings)  # the report shows the stages before it
        atomic_write_json(out / "summary.json", summary)
        report_from_dirs(store_dir, ica_dir, out, compute_missing=False, progress=progress)
    summary["timings"] = dict(st.timings)
    summary["timings"]["total"] = round(sum(st.timings.values()), 2)
    atomic_write_json(out / "summary.json", summary)
    return summary


def _maybe_json(path: Path) -> dict | None:
    try:
        return _read_json(path)
    except (OSError, ValueError):
        return None


def _sweep_dict(sweep: Any) -> dict:
    """The sweep DataFrame as plain lists, one per column."""
    cols = [c for c in ("k", "stability_mean", "stability_min", "stability_median", "n_stable",
                        "explained_variance", "converged_fraction", "seconds") if c in sweep]
    return {c: [int(v) if c in ("k", "n_stable") else float(v) for v in sweep[c]] for c in cols}


def attribute_selectivity(
    store: Any,
    ica_dir: str | os.PathLike,
    probe_json: dict,
    attributes: Sequence[str],
    *,
    alphas: Sequence[float] = (-3.0, 3.0),
    n_rows: int = 500,
    seed: int = 0,
) -> dict[str, float]:
    """Selectivity of each attribute's best ICA component for that attribute.

    Shifts the component by ``alphas`` standard deviations on ``n_rows`` random rows
    and reads every attribute's linear probe (:mod:`clipica.intervene`):
    ``|Δ logit of the attribute| / Σ_others |Δ logit|``. Larger is more selective.
    """
    import numpy as np

    from clipica.decompositions.ica import ICA
    from clipica.intervene import attribute_response, edit_components, fit_attribute_probes

    ica = ICA.load(ica_dir)
    X = store.image
    labels = store.rows
    probes = fit_attribute_probes(X, labels, list(attributes), seed=seed)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(X), min(n_rows, len(X)), replace=False))
    out = {}
    for attr in attributes:
        comp = int(probe_json["attributes"][attr]["best_component"])
        tr = edit_components(np.asarray(X[idx]), ica, comp, alphas, reference=X)
        out[attr] = float(attribute_response(tr, probes, target=attr, plot=False).selectivity)
    return out


def _summary(cfg, store, ica_dir, n_rows, k, rule, stability_mean, probe_json, naming,
             selectivity, shared, model_eval) -> dict:
    from clipica.report import naming_poles, short_phrase

    poles = naming_poles(naming)
    attrs = {}
    for a in shared:
        e = probe_json["attributes"][a]
        comp = int(e["best_component"])
        pole = "negative" if e.get("pole") == "-" else "positive"
        attrs[a] = {
            "best_component": comp,
            "pole": e.get("pole", "+"),
            "ica_best_auc": e["best_auc"],
            "runner_up_auc": e.get("runner_up_auc"),
            "pca_best_auc": (e.get("pca") or {}).get("best_auc"),
            "raw_best_auc": (e.get("raw") or {}).get("best_auc"),
            "random_rotation_best_auc": (e.get("random_rotation") or {}).get("best_auc"),
            "linear_probe_auc": e.get("linear_probe_auc"),
            "selectivity": selectivity.get(a),
            "top_words": [short_phrase(w) for w, _ in poles.get(comp, {}).get(pole, [])][:5],
        }

    def mean(key):
        vals = [v[key] for v in attrs.values() if v.get(key) is not None]
        return float(sum(vals) / len(vals)) if vals else None

    manifest = store.manifest
    ica_meta = _maybe_json(ica_dir / "ica.json") or {}
    return {
        "n_rows": n_rows,
        "model": manifest.get("model", {}).get("spec") if isinstance(manifest.get("model"), dict)
        else manifest.get("model", cfg.model),
        "data": f"synthetic-faces:{cfg.n_rows}",
        "k": k,
        "k_rule": rule,
        "stability_mean": stability_mean,
        "ica_converged": ica_meta.get("converged"),
        "ica_n_iter": ica_meta.get("n_iter"),
        "attributes": attrs,
        "mean_best_auc": {"ica": mean("ica_best_auc"), "pca": mean("pca_best_auc"),
                          "raw": mean("raw_best_auc"),
                          "random_rotation": mean("random_rotation_best_auc")},
        "ica_beats_baselines": [a for a, v in attrs.items()
                                if all(v[b] is None or v["ica_best_auc"] > v[b]
                                       for b in ("pca_best_auc", "raw_best_auc"))],
        "mcc": _mcc(probe_json.get("mcc")),
        "dci": probe_json.get("dci"),
        "model_eval": model_eval,
        "config": asdict(cfg),
    }


def _mcc(mcc: Any) -> dict | None:
    if not isinstance(mcc, dict):
        return None
    out = {}
    for name, v in mcc.items():
        out[name] = v.get("mcc", v.get("score")) if isinstance(v, dict) else v
    return out


__all__ = ["DemoConfig", "TRAVERSAL_ATTRIBUTES", "attribute_selectivity", "run_demo"]
