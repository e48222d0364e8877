"""``clipica bench pipeline``: the analysis stages on a planted store of CelebA's size.

What it runs (:func:`run_benchmark`), each stage timed (wall and process CPU seconds,
the 1-minute load average beside them):

1. the planted store of ``--rows`` rows (not a stage: its time is reported apart), of one of
   two shapes (``--shape``): ``realistic``, the default (:mod:`clipica.bench.realistic`:
   CelebA-like correlated binary attributes, a categorical factor, 150 Gaussian nuisance
   directions, so a K = 64 ICA has about 25 Gaussian directions to take), or ``laplace``
   (below: K independent Laplace codes, every direction identifiable);
2. ``ica``: ``clipica ica -k K --stability 5`` (:func:`clipica.pipeline.fit_stage`), with its
   convergence (judged on the identifiable part), the identifiable count against the number
   of non-Gaussian directions planted, and the Gaussian block;
3. ``names``: ``clipica name`` (:func:`clipica.pipeline.name_stage`), the vocabulary
   embedded by a randomly initialised ViT-B-32 text tower (``--pretrained none``: the
   same work as a real model's naming, meaningless names; ``--text-model none`` skips it);
4. ``probe``: ``clipica probe`` with its defaults (:func:`clipica.pipeline.probe_stage`, on
   :func:`~clipica.pipeline.tasks.probe_workers` threads), timed; then run again for its
   peak memory, measured by ``tracemalloc`` (numpy's buffers and Python objects; the store's
   memory-mapped matrix is file cache, not counted) against the size of the store's image
   matrix (a separate run: tracemalloc's hooks slow the timed work);
5. ``report``: ``clipica report`` given every result (``compute_missing=False``: it may
   read, never compute; the bench checks probe.json and naming.json were not rewritten).

The baseline, in the same run: a planted store of ``--baseline-rows`` rows (same
settings and seed), an ICA on it, then the probe stage twice -- the full computation
(``curve_rows=0``: every sparse-curve point fitted on every training row with the joint
solver, the computation before the curves were subsampled) and the default one. The full
probe's time is extrapolated linearly to ``--rows``: ``t_full(N) = t_full(M) * N / M``
(every pass of the solver is over all training rows; its fixed per-fit work on an
8,192-row subsample does not grow, so this slightly overstates the full time at N).
Agreement (full vs default, same store and ICA) is reported per code set: the largest
|delta AUC| of the best single component, of the linear probe and of every curve point,
and the attributes whose best component differs although the best-vs-runner-up gap
exceeds 0.01. At ``--rows`` itself the best-single and linear-probe AUCs are the full
computation by construction (both use every row); ``--full`` also runs the full probe at
``--rows`` (about 20 minutes at the default size on 2 cores) and reports that agreement.

``--busy-core`` then runs the ica and probe stages again while another process keeps one core
busy, and reports busy / idle for each (:mod:`clipica.bench.busy`; target <= 2.5x).

The laplace store (:func:`write_planted_store`): ``n`` rows of ``d``-dimensional float32 "image
embeddings" built from ``k`` independent unit-variance Laplace codes and ``attributes``
binary labels planted on them exactly as ``clipica bench probe`` plants them
(:func:`clipica.bench.probe.make_data`: each attribute a logistic function of 1-3
codes, prevalence 5-50 %), mixed into ``d`` dimensions by a seeded random matrix
(entries N(0, 1/d), scaled so the codes carry 80 % of the variance) plus isotropic
Gaussian noise (the other 20 %). Rows get no split column, so the probe draws its own
seeded held-out split, and no captions. Defaults: CelebA's 202,599 rows, ViT-B/32's 512
dimensions, K = 64, 40 attributes.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from clipica.bench.realistic import write_planted

HELP = ("time every analysis stage (ica --stability 5, name, probe, report) on a planted store "
        "of CelebA's size (202,599 x 512, K=64, 40 attributes), the probe against its full computation")
TARGETS = {"ica_seconds": 90.0, "names_seconds": 30.0, "probe_seconds": 120.0, "report_seconds": 30.0,
           "probe_peak_memory_over_image_matrix": 2.0, "max_abs_delta_auc": 0.005,
           "best_component_mismatches_where_gap_over_0.01": 0}
NAMING_MODEL = {"spec": "ViT-B-32", "pretrained": "none"}


def attribute_names(attributes: int) -> list[str]:
    return [f"attr_{a:02d}" for a in range(attributes)]


def write_planted_store(
    path,
    n: int = 202_599,
    d: int = 512,
    k: int = 64,
    attributes: int = 40,
    seed: int = 0,
    chunk: int = 50_000,
    text_model: dict | None = None,
):
    """Write the planted store (module docstring) to ``path``; returns the open EmbeddingStore.

    ``text_model``: the manifest's model (e.g. ``{"spec": "ViT-B-32", "pretrained": "none"}``)
    so that ``clipica name`` can embed its vocabulary (d must be that model's width); by
    default ``{"spec": "planted"}``, which names nothing.

    Memory: the codes and labels (n x (k + attributes) float64) plus one chunk of
    ``chunk x d`` float32 rows; the embedding matrix goes to disk chunk by chunk.
    """
    from clipica.bench.probe import make_data

    codes, labels = make_data(n, k, attributes, seed)
    rng = np.random.default_rng(seed + 1)
    mixing = (rng.standard_normal((k, d)) / np.sqrt(d)).astype(np.float32)
    # codes have unit variance; rows of `mixing` have squared norm ~1: the codes add ~k/d
    # variance per dimension, the noise the rest of an 80/20 split
    noise_sd = float(np.sqrt(0.25 * k / d))

    def chunks():
        for a in range(0, n, chunk):
            X = codes[a : a + chunk].astype(np.float32) @ mixing
            X += noise_sd * rng.standard_normal(X.shape, dtype=np.float32)
            yield a, X, labels[a : a + chunk]

    return write_planted(path, chunks(), names=attribute_names(attributes), d=d, text_model=text_model,
                         data_spec=f"planted:{n}x{d}?k={k}&attributes={attributes}&seed={seed}")


# ------------------------------------------------------------------ the benchmark


class _Clock:
    """Wall and process-CPU seconds of a block, with the 1-minute load average at its start."""

    def __enter__(self):
        self.load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0

    def to_dict(self) -> dict:
        return {"wall_seconds": round(self.wall, 3), "cpu_seconds": round(self.cpu, 3),
                "load_average_1min_at_start": self.load}


def agreement(full: dict, fast: dict, gap: float = 0.01) -> dict:
    """Per code set of two ``probe.json`` payloads on the same store and decomposition: the
    largest |delta AUC| of the best single component, the linear probe and each curve point
    (k), and the attributes whose best component differs where ``full``'s best-vs-runner-up
    gap exceeds ``gap``."""
    out = {}
    for name, f in full["codes"].items():
        g = fast["codes"][name]

        def delta(key, f=f, g=g):
            a = np.asarray(f[key], dtype=float)
            b = np.asarray(g[key], dtype=float)
            return float(np.nanmax(np.abs(a - b))) if a.size else 0.0

        fb, gb = np.asarray(f["best_component"]), np.asarray(g["best_component"])
        clear = (np.asarray(f["best_auc"], dtype=float) - np.asarray(f["runner_up_auc"], dtype=float)) > gap
        sf, sg = np.asarray(f["sparse_auc"], dtype=float), np.asarray(g["sparse_auc"], dtype=float)
        out[name] = {
            "max_abs_delta_best_single_auc": delta("best_auc"),
            "max_abs_delta_linear_probe_auc": delta("linear_probe_auc"),
            "max_abs_delta_sparse_auc_by_k": {str(k): float(np.nanmax(np.abs(sf[i] - sg[i])))
                                              for i, k in enumerate(f["sparse_k"])},
            "best_component_mismatches_where_gap_over_0.01": int(np.sum(clear & (fb != gb))),
            "attributes_with_gap_over_0.01": int(clear.sum()),
        }
    worst = max((max(v["max_abs_delta_best_single_auc"], v["max_abs_delta_linear_probe_auc"])
                 for v in out.values()), default=0.0)
    mism = sum(v["best_component_mismatches_where_gap_over_0.01"] for v in out.values())
    return {"codes": out, "max_abs_delta_auc": worst,
            "best_component_mismatches_where_gap_over_0.01": mism,
            "meets_targets": bool(worst <= TARGETS["max_abs_delta_auc"] and mism == 0)}


SHAPES = ("realistic", "laplace")


def _store(work, name, n, args, text_model):
    from clipica.pipeline import artifacts

    with _Clock() as c:
        if args["shape"] == "realistic":
            from clipica.bench.realistic import write_realistic_store

            store = write_realistic_store(work / name, n=n, d=args["dim"], seed=args["seed"],
                                          text_model=text_model)
        else:
            store = write_planted_store(work / name, n=n, d=args["dim"], k=args["k"],
                                        attributes=args["attributes"], seed=args["seed"],
                                        text_model=text_model)
    return store, artifacts.store_fingerprint(store), c


def planted_nongaussian(args: dict) -> int:
    """Non-Gaussian directions planted in the store (what an ICA can identify)."""
    if args["shape"] == "realistic":
        from clipica.bench.realistic import N_NONGAUSSIAN

        return N_NONGAUSSIAN
    return int(args["k"])


def _probe(store, ica, out, store_fp, curve_rows, seed, *, memory=False):
    import tracemalloc

    from clipica.pipeline import probe_params, probe_stage
    from clipica.pipeline.analyses import strip_private

    params = probe_params(seed=seed, curve_rows=curve_rows)
    if memory:
        # the stage's libraries are imported first: their modules are not the stage's memory
        # (and importing under tracemalloc is slow)
        import matplotlib.pyplot  # noqa: F401
        import scipy.linalg  # noqa: F401
        import scipy.optimize  # noqa: F401
        import scipy.special  # noqa: F401
        import scipy.stats  # noqa: F401
        import sklearn.ensemble  # noqa: F401
        import sklearn.model_selection  # noqa: F401

        import clipica.metrics  # noqa: F401
        import clipica.viz.probe  # noqa: F401
        from clipica.decompositions.ica import load_solver

        load_solver()
        tracemalloc.start()
    try:
        with _Clock() as c:
            doc = probe_stage(store, ica, out, params, store_fp=store_fp, reuse=False, progress=False)
        peak = tracemalloc.get_traced_memory()[1] if memory else None
    finally:
        if memory:
            tracemalloc.stop()
    return strip_private(doc), c, peak


def _ica_stage(X, work, k, seed, stability, store_fp, args, folder: str = "ica") -> tuple:
    from clipica.pipeline import fit_stage, ica_params

    with _Clock() as c:
        ica = fit_stage(X, work / folder, ica_params(k, seed=seed, stability_runs=stability),
                        store_fp=store_fp, source={"store": str(work / "store")}, reuse=False,
                        progress=False)
    info = ica.fit_info_
    stab = None
    if (work / folder / "stability.json").is_file():
        stab = json.loads((work / folder / "stability.json").read_text())
    record = {
        **c.to_dict(), "command": f"clipica ica STORE -k {k} --stability {stability}",
        "converged": bool(ica.converged_), "converged_on": "the identifiable components",
        "stationarity": float(ica.stationarity_), "n_iter": int(ica.n_iter_),
        "n_identifiable": int(np.sum(ica.identifiable_)), "planted_nongaussian": planted_nongaussian(args),
        "gaussian_block_size": len(ica.gaussian_block_),
        "fit_seconds": {key: round(v, 3) for key, v in info.get("seconds", {}).items()},
        "identify": info.get("identify"),
    }
    if stab is not None:
        record["stability"] = {key: stab.get(key) for key in
                               ("stability_mean", "n_identifiable", "converged", "gaussian_block", "seconds")}
    return ica, record


def _names_stage(store, ica, work, store_fp, text_model) -> dict:
    from clipica.pipeline import name_stage, naming_params

    with _Clock() as c:
        name_stage(store, ica, work / "ica" / "naming", naming_params(), store_fp=store_fp, reuse=False)
    return {**c.to_dict(), "command": "clipica name STORE --ica ICA_DIR",
            "text_model": f"{text_model}, pretrained none (random weights)"}


def _probe_stage(store, ica, work, store_fp, curve_rows, seed, image_bytes) -> tuple:
    from clipica.pipeline.tasks import probe_workers

    probe_dir = work / "run" / "probe"
    doc, c, _ = _probe(store, ica, probe_dir, store_fp, curve_rows, seed)
    # memory in a second run: tracemalloc's hooks slow the allocation-heavy parts (the
    # metrics' trees) by ~15%, so the timed run goes without them
    _, c_mem, peak = _probe(store, ica, work / "run" / "probe_memory", store_fp, curve_rows, seed, memory=True)
    return doc, {**c.to_dict(), "command": "clipica probe STORE --ica ICA_DIR --out DIR",
                 "workers": probe_workers(), "peak_traced_bytes": peak,
                 "peak_memory_over_image_matrix": round(peak / image_bytes, 3),
                 "memory_run_wall_seconds": c_mem.to_dict()["wall_seconds"],
                 "subsampling": doc.get("subsampling"), "timings": doc.get("timings"),
                 "split": {key: doc["split"].get(key) for key in ("n_train", "n_test")}}


def _report_stage(work) -> dict:
    from clipica.pipeline import report_stage

    done = [work / "run" / "probe" / "probe.json", work / "ica" / "naming" / "naming.json"]
    before = {str(p): p.stat().st_mtime_ns for p in done if p.is_file()}
    with _Clock() as c:
        report_stage(work / "store", work / "ica", work / "run", probe=done[0],
                     naming=done[1] if done[1].is_file() else None, compute_missing=False,
                     n_traversals=0, progress=False)
    after = {str(p): p.stat().st_mtime_ns for p in done if p.is_file()}
    return {**c.to_dict(), "command": "clipica report STORE --ica ICA_DIR --out RUN",
            "reused_every_result": before == after,
            "traversals": "none (not run by this bench; issue 14 item 3)"}


def _baseline(work, rows, baseline_rows, args, curve_rows, save, out) -> dict:
    """The full and the default probe on a store of ``baseline_rows`` rows (module docstring)."""
    from clipica.pipeline import fit_stage, ica_params

    seed, k = args["seed"], args["k"]
    b_store, b_fp, c_store = _store(work, "baseline_store", baseline_rows, args, None)
    with _Clock() as c_ica:
        # only the probes' input: no stability runs, no blocks
        b_ica = fit_stage(b_store.image, work / "baseline_ica", ica_params(k, seed=seed, blocks=False),
                          store_fp=b_fp, reuse=False, progress=False)
    full_doc, c_full, _ = _probe(b_store, b_ica, work / "baseline_full", b_fp, 0, seed)
    out["baseline"] = {"rows": baseline_rows, "full_probe": c_full.to_dict()}
    save(out)
    fast_doc, c_fast, _ = _probe(b_store, b_ica, work / "baseline_default", b_fp, curve_rows, seed)
    scale = rows / baseline_rows
    return {
        "rows": baseline_rows,
        "full_probe": c_full.to_dict(),
        "default_probe": {**c_fast.to_dict(), "subsampling": fast_doc.get("subsampling")},
        "full_probe_extrapolated_to_rows": {
            "formula": "t_full(N) = t_full(M) * N / M",
            "N": rows, "M": baseline_rows,
            "wall_seconds": round(c_full.wall * scale, 1),
            "cpu_seconds": round(c_full.cpu * scale, 1)},
        "agreement": agreement(full_doc, fast_doc),
        "not_timed_here": {"store": c_store.to_dict(), "ica_without_stability": c_ica.to_dict()},
    }


def _null_cached(dim: int, k: int) -> bool:
    """Whether the ICA's Gaussian null for (D, K) is in the on-disk cache already (then the ica
    stage reads it; else it simulates it, ~30 s at D = 512, K = 64, and caches it)."""
    from clipica._cache import cache_dir

    return any((cache_dir() / "gaussian-null").glob(f"*-d{dim}-k{k}-*.json"))


def _busy_core_stages(store, ica, work, store_fp, curve_rows, stages, args, stability) -> dict:
    """The ica and probe stages again, with one core kept busy by another process
    (:mod:`clipica.bench.busy`): busy / idle wall seconds of the same work in this run. When
    the idle ica stage simulated the Gaussian null, the busy one does too (a fresh cache)."""
    import tempfile

    from clipica.bench.busy import TARGET_SLOWDOWN, BusyCore, slowdown
    from clipica.decompositions import gaussianity

    k, seed = args["k"], args["seed"]
    cold = stages["ica"]["gaussian_null"] == "simulated"
    saved = os.environ.get("CLIPICA_CACHE")
    with tempfile.TemporaryDirectory(prefix="clipica-bench-busy-") as fresh:
        if cold:
            os.environ["CLIPICA_CACHE"] = fresh
            gaussianity._null_maxima_cached.cache_clear()
        try:
            with BusyCore():
                _, ica_busy = _ica_stage(store.image, work, k, seed, stability, store_fp, args, folder="ica_busy")
        finally:
            if cold and saved is None:
                del os.environ["CLIPICA_CACHE"]
            elif cold:
                os.environ["CLIPICA_CACHE"] = saved
    with BusyCore():
        _, c, _ = _probe(store, ica, work / "run" / "probe_busy", store_fp, curve_rows, seed)
    out = {"ica": {**slowdown(stages["ica"]["wall_seconds"], ica_busy["wall_seconds"]),
                   "busy_cpu_seconds": ica_busy["cpu_seconds"], "busy_converged": ica_busy["converged"],
                   "gaussian_null": stages["ica"]["gaussian_null"]},
           "probe": {**slowdown(stages["probe"]["wall_seconds"], c.wall), "busy_cpu_seconds": round(c.cpu, 3)},
           "target_slowdown": TARGET_SLOWDOWN,
           "how": "a second process spins one core (while True: pass) during each rerun"}
    out["within_target"] = all(out[name]["within_target"] for name in ("ica", "probe"))
    return out


def _checks(out: dict) -> dict:
    stages = out["stages"]
    return {
        "ica_seconds": stages["ica"]["wall_seconds"] <= TARGETS["ica_seconds"],
        "names_seconds": (stages["names"].get("wall_seconds", 0.0) <= TARGETS["names_seconds"]),
        "probe_seconds": stages["probe"]["wall_seconds"] <= TARGETS["probe_seconds"],
        "report_seconds": stages["report"]["wall_seconds"] <= TARGETS["report_seconds"],
        "probe_peak_memory": (stages["probe"]["peak_memory_over_image_matrix"]
                              <= TARGETS["probe_peak_memory_over_image_matrix"]),
        "report_reused_every_result": stages["report"]["reused_every_result"],
        "ica_converged": stages["ica"]["converged"],
        "agreement": out["baseline"]["agreement"]["meets_targets"]
        and (out.get("full_at_rows", {}).get("agreement", {}).get("meets_targets", True)),
        **({"busy_core_slowdown": out["busy_core_slowdown"]["within_target"]}
           if "busy_core_slowdown" in out else {}),
    }


def run_benchmark(rows: int = 202_599, baseline_rows: int = 50_000, *, shape: str = "realistic",
                  dim: int = 512, k: int = 64, attributes: int = 40, seed: int = 0, stability: int = 5,
                  text_model: str | None = "ViT-B-32", curve_rows: int | None = None,
                  full: bool = False, busy_core: bool = False, workdir=None, progress=print,
                  partial=None) -> dict:
    """Run the stages (module docstring) and return the JSON document ``--json`` prints.

    ``shape``: "realistic" (:mod:`clipica.bench.realistic`; ``attributes`` is then its 40) or
    "laplace" (the planted Laplace codes below). ``busy_core``: the ica and probe stages are
    run again while another process keeps one core busy, and ``busy_core`` gives busy / idle
    per stage (:mod:`clipica.bench.busy`). ``partial``: a path the document so far
    is written to after every stage (atomically), so a run stopped part-way keeps its figures."""
    import shutil
    import tempfile
    from pathlib import Path

    from clipica._atomic import atomic_write_json
    from clipica.probes.probe import CURVE_ROWS

    def save(doc):
        if partial is not None:
            atomic_write_json(partial, {**doc, "partial": True})

    if shape not in SHAPES:
        from clipica.errors import InputError

        raise InputError(f"shape must be one of {SHAPES}; got shape={shape!r}.")
    if shape == "realistic":
        from clipica.bench.realistic import label_names

        attributes = len(label_names())
    args = {"dim": dim, "k": k, "attributes": attributes, "seed": seed, "shape": shape}
    curve_rows = CURVE_ROWS if curve_rows is None else int(curve_rows)
    model = dict(NAMING_MODEL, spec=text_model) if text_model else None
    own = workdir is None
    work = Path(tempfile.mkdtemp(prefix="clipica-bench-pipeline-") if own else workdir)
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {"shape": shape, "rows": rows, "dim": dim, "k": k, "attributes": attributes, "seed": seed,
                 "stability_runs": stability, "curve_rows": curve_rows, "baseline_rows": baseline_rows,
                 "busy_core": busy_core, "cpu_count": os.cpu_count(), "workdir": None if own else str(work)}
    try:
        progress(f"planted store ({shape}): {rows} x {dim}, {attributes} attributes ...")
        store, store_fp, c = _store(work, "store", rows, args, model)
        image_bytes = int(store.image.shape[0] * store.image.shape[1] * 4)
        out["store"] = {**c.to_dict(), "image_matrix_bytes": image_bytes}
        stages: dict = {}
        out["stages"] = stages
        progress(f"ica -k {k} --stability {stability} ...")
        null = "cached" if _null_cached(dim, k) else "simulated"
        ica, stages["ica"] = _ica_stage(store.image, work, k, seed, stability, store_fp, args)
        stages["ica"]["gaussian_null"] = null
        save(out)
        if model:
            progress(f"name (vocabulary embedded by {text_model}, random weights) ...")
            stages["names"] = _names_stage(store, ica, work, store_fp, text_model)
        else:
            stages["names"] = {"skipped": "--text-model none"}
        save(out)
        progress(f"probe (curve_rows={curve_rows}) ...")
        doc, stages["probe"] = _probe_stage(store, ica, work, store_fp, curve_rows, seed, image_bytes)
        save(out)
        progress("report (every result given; computes nothing) ...")
        stages["report"] = _report_stage(work)
        save(out)
        if full:
            progress("full probe computation at --rows (curve_rows=0) ...")
            full_doc, c, _ = _probe(store, ica, work / "run" / "probe_full", store_fp, 0, seed)
            out["full_at_rows"] = {**c.to_dict(), "agreement": agreement(full_doc, doc)}
            save(out)
        if busy_core:
            progress("ica and probe again, one core kept busy by another process ...")
            out["busy_core_slowdown"] = _busy_core_stages(store, ica, work, store_fp, curve_rows, stages, args,
                                                          stability)
            save(out)
        del store, ica
        if baseline_rows:
            progress(f"baseline: planted store of {baseline_rows} rows, ICA, full and default probe ...")
            out["baseline"] = _baseline(work, rows, baseline_rows, args, curve_rows, save, out)
            out["probe_speedup_vs_extrapolated_full"] = round(
                out["baseline"]["full_probe_extrapolated_to_rows"]["wall_seconds"]
                / stages["probe"]["wall_seconds"], 2)
        else:
            out["baseline"] = {"skipped": "--baseline-rows 0", "agreement": {"meets_targets": True}}
        out["targets"] = TARGETS
        out["checks"] = _checks(out)
        out["meets_targets"] = all(out["checks"].values())
        out["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        out["note"] = ("wall-clock seconds on a shared CPU: read them with cpu_seconds and the load "
                       "average; the probe's speedup is against the full computation in the same run")
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    return out


def add_arguments(parser) -> None:
    parser.add_argument("--shape", choices=SHAPES, default="realistic",
                        help="the planted store: 'realistic' (default: 36 correlated binary attributes with "
                             "CelebA's prevalences, a 4-value hair factor, 150 Gaussian nuisance directions, "
                             "noise; see clipica.bench.realistic) or 'laplace' (K Laplace codes carrying "
                             "--attributes logistic labels, the earlier bench)")
    parser.add_argument("--rows", type=int, default=202_599, help="rows of the planted store (default 202599, CelebA)")
    parser.add_argument("--baseline-rows", type=int, default=50_000, metavar="M",
                        help="rows of the baseline store the full probe is timed on (default 50000; 0 skips it)")
    parser.add_argument("--dim", type=int, default=512, help="embedding width (default 512, ViT-B/32)")
    parser.add_argument("--k", type=int, default=64, help="ICA components (default 64)")
    parser.add_argument("--attributes", type=int, default=40,
                        help="planted binary attributes of the laplace shape (default 40; the realistic "
                             "shape has CelebA's 40)")
    parser.add_argument("--stability", type=int, default=5, help="bootstrap fits of the ica stage (default 5)")
    parser.add_argument("--curve-rows", type=int, default=None, metavar="N",
                        help="the probe's curve_rows (default: clipica probe's, 20000)")
    parser.add_argument("--text-model", default="ViT-B-32", metavar="ARCH|none",
                        help="open_clip architecture (random weights) that embeds the naming vocabulary; "
                             "its width must be --dim (default ViT-B-32); none skips the names stage")
    parser.add_argument("--full", action="store_true",
                        help="also run the full probe at --rows and report that agreement (slow)")
    parser.add_argument("--busy-core", action="store_true",
                        help="then run the ica and probe stages again while another process keeps one core "
                             "busy, and report busy / idle per stage (how the stages fare on a shared CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, metavar="DIR",
                        help="keep the stores and results here (default: a temporary folder, removed)")
    parser.add_argument("--out", default=None,
                        help="also write the JSON result to this file (after every stage, with "
                             "\"partial\": true until the run ends)")


def run(args) -> int:
    from clipica.errors import InputError

    if args.rows < 200 or 0 < args.baseline_rows < 200 or args.k < 1 or args.attributes < 1:
        raise InputError(f"need --rows >= 200, --baseline-rows 0 or >= 200, --k >= 1, --attributes >= 1; got "
                         f"{args.rows}, {args.baseline_rows}, {args.k}, {args.attributes}.")
    if args.k > args.dim:
        raise InputError(f"--k must be at most --dim ({args.dim}); got {args.k}.")
    if args.stability == 1 or args.stability < 0:
        raise InputError(f"--stability needs 0 or at least 2 fits; got {args.stability}.")
    log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    text_model = None if str(args.text_model).lower() == "none" else args.text_model
    out = run_benchmark(args.rows, args.baseline_rows, shape=args.shape, dim=args.dim, k=args.k,
                        attributes=args.attributes, seed=args.seed, stability=args.stability,
                        text_model=text_model, curve_rows=args.curve_rows, full=args.full,
                        busy_core=args.busy_core, workdir=args.workdir, progress=log, partial=args.out)
    if args.out:
        from clipica._atomic import atomic_write_json

        atomic_write_json(args.out, out)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for name, st in out["stages"].items():
        if "wall_seconds" in st:
            print(f"{name:7s} {st['wall_seconds']:8.1f} s wall {st['cpu_seconds']:8.1f} s CPU  "
                  f"(load {st['load_average_1min_at_start']})")
        else:
            print(f"{name:7s} skipped")
    ica = out["stages"]["ica"]
    print(f"ica: converged {ica['converged']} (on the identifiable part), {ica['n_identifiable']} identifiable "
          f"of {ica['planted_nongaussian']} planted non-Gaussian, Gaussian block of {ica['gaussian_block_size']}")
    print(f"probe peak memory {out['stages']['probe']['peak_memory_over_image_matrix']:.2f}x the image matrix")
    base = out["baseline"]
    if "skipped" in base:
        print("meets targets:", out["meets_targets"], {k: v for k, v in out["checks"].items() if not v})
        return 0
    ext = base["full_probe_extrapolated_to_rows"]
    print(f"baseline: full probe {base['full_probe']['wall_seconds']:.1f} s at {base['rows']} rows -> "
          f"{ext['wall_seconds']:.0f} s at {out['rows']} ({ext['formula']}); speedup "
          f"{out['probe_speedup_vs_extrapolated_full']}x")
    ag = base["agreement"]
    print(f"agreement at {base['rows']} rows: max |dAUC| {ag['max_abs_delta_auc']:.4f}, best-component "
          f"mismatches {ag['best_component_mismatches_where_gap_over_0.01']}")
    print("meets targets:", out["meets_targets"], {k: v for k, v in out["checks"].items() if not v})
    return 0
