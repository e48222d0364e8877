"""``clipica bench ica``: clipica's ICA against scikit-learn and Picard on the same data, same run.

The data imitate an embedding matrix with known sources: K non-Gaussian sources
(Laplace, uniform and bimodal in turn; standard deviations 1.5-3) and D-K Gaussian
directions with standard deviation 0.5, mixed by one random D×D matrix (entries
N(0, 1/D)). The K non-Gaussian sources carry more variance than the Gaussian remainder,
so a K-component ICA should find them. Every solver's unmixing ``W`` (K, D) is scored by
the Amari distance of ``W @ A_ng`` (``A_ng`` the D×K mixing of the non-Gaussian sources;
``clipica.metrics.amari_distance``, 0 = perfect up to order, sign and scale).

Solvers: ``clipica`` (ICA(), solver "fastica", warm start "auto"), ``sklearn-svd``
(FastICA defaults: whiten_solver="svd"), ``sklearn-eigh`` (whiten_solver="eigh"),
``picard`` (ICA(solver="picard"): clipica's whitening + python-picard's Picard-O rotation)
and ``clipica-cuda`` when torch sees a GPU. The **arithmetic floor** is timed in the same
run: one float32 Gram matrix of the centred data, a float64 eigendecomposition of it,
and ``T`` times the two (N, K)×(K, K)-sized products of a FastICA iteration, with ``T``
the iterations scikit-learn ("eigh") needed on all rows.

Timings share the CPU with whatever else runs; ratios from the same run are the
meaningful figures.
"""

from __future__ import annotations

import json
import os
import time
import warnings

import numpy as np

HELP = "time clipica's ICA against scikit-learn FastICA (svd, eigh) and Picard on planted sources"

SOLVER_NAMES = ("clipica", "sklearn-svd", "sklearn-eigh", "picard")
TARGETS = {"speedup_vs_sklearn_svd": 10.0, "speedup_vs_sklearn_eigh": 4.0, "amari_margin": 0.01}


def make_data(n: int = 200_000, d: int = 512, k: int = 64, seed: int = 0, chunk: int = 50_000):
    """Planted embedding-like data (see the module docstring).

    Returns ``X`` (n, d) float32 and ``A_ng`` (d, k) float64, the mixing of the
    non-Gaussian sources (the first k columns of the full mixing).
    """
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d)) / np.sqrt(d)
    scales = rng.uniform(1.5, 3.0, size=k)
    At = A.T.astype(np.float32)
    X = np.empty((n, d), dtype=np.float32)
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        m = b - a
        S = np.empty((m, d), dtype=np.float32)
        for j in range(k):
            kind = j % 3
            if kind == 0:
                s = rng.laplace(size=m) / np.sqrt(2.0)
            elif kind == 1:
                s = rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=m)
            else:  # two modes at ±1 with spread 0.3, unit variance
                s = (rng.choice([-1.0, 1.0], size=m) + 0.3 * rng.standard_normal(m)) / np.sqrt(1.09)
            S[:, j] = s * scales[j]
        S[:, k:] = 0.5 * rng.standard_normal((m, d - k), dtype=np.float32)
        X[a:b] = S @ At
    return X, A[:, :k]


def _amari(W, A) -> float:
    from clipica.metrics import amari_distance

    return float(amari_distance(W, A))


def _time_clipica(X, A, k, seed, device="cpu", solver="fastica"):
    from clipica.decompositions.ica import ICA

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ica = ICA(n_components=k, solver=solver, random_state=seed, device=device).fit(X)
    sec = time.perf_counter() - t0
    info = ica.fit_info_
    n_iter = ica.n_iter_
    detail = {"stationarity": ica.stationarity_, "phases_seconds": info["seconds"]}
    if "n_iter_warm" in info:
        detail.update(n_iter_warm=info["n_iter_warm"], n_iter_full=info["n_iter_full"],
                      warm_start_rows=info["warm_start_rows"])
    return {"seconds": sec, "n_iter": int(n_iter), "converged": bool(ica.converged_),
            "amari": _amari(ica.components_, A), "detail": detail}


def _time_sklearn(X, A, k, seed, whiten_solver):
    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sk = FastICA(n_components=k, whiten="unit-variance", whiten_solver=whiten_solver,
                     random_state=seed).fit(X)
    sec = time.perf_counter() - t0
    converged = not any(issubclass(c.category, ConvergenceWarning) for c in caught)
    return {"seconds": sec, "n_iter": int(sk.n_iter_), "converged": converged,
            "amari": _amari(sk.components_, A), "detail": {"whiten_solver": whiten_solver}}


def _time_floor(X, k, n_iter):
    """Covariance (float32 Gram of centred X) + eigh + n_iter × the iteration's two products."""
    import torch

    Xt = torch.from_numpy(X)
    t0 = time.perf_counter()
    Xc = Xt - Xt.mean(0)
    G = (Xc.T @ Xc).double() / X.shape[0]
    t_cov = time.perf_counter() - t0
    del Xc
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):  # as clipica does it (see decompositions._whitening)
        np.linalg.eigh(G.numpy())
    t_eigh = time.perf_counter() - t0
    Z = torch.randn(X.shape[0], k, generator=torch.Generator().manual_seed(0))
    W = torch.linalg.qr(torch.randn(k, k, generator=torch.Generator().manual_seed(1)))[0]
    t0 = time.perf_counter()
    for _ in range(n_iter):
        Y = Z @ W.T
        (Y.T @ Z)
    t_it = time.perf_counter() - t0
    return {"seconds": t_cov + t_eigh + t_it, "covariance": t_cov, "eigh": t_eigh,
            "iterations": t_it, "n_iter": int(n_iter)}


def run_benchmark(n=200_000, d=512, k=64, seed=0, solvers=SOLVER_NAMES, progress=print) -> dict:
    """Run the comparison; returns the JSON-ready dict (``results``: one entry per solver)."""
    import platform

    # imported first so its OpenMP wait policy is set before torch loads (see that module);
    # here, not at module level: every `clipica` command builds this module's parser, and
    # importing torch there cost each command seconds before its first line of output
    from clipica.decompositions.ica import load_solver, picard_available

    load_solver()
    import torch


    t0 = time.perf_counter()
    X, A = make_data(n, d, k, seed)
    progress(f"data: X {X.shape} float32 with {k} planted sources ({time.perf_counter() - t0:.1f} s)")
    load_before = os.getloadavg()
    results = []
    runs = {
        "clipica": lambda: _time_clipica(X, A, k, seed),
        "sklearn-svd": lambda: _time_sklearn(X, A, k, seed, "svd"),
        "sklearn-eigh": lambda: _time_sklearn(X, A, k, seed, "eigh"),
        "picard": lambda: _time_clipica(X, A, k, seed, solver="picard"),
    }
    if torch.cuda.is_available():
        runs["clipica-cuda"] = lambda: _time_clipica(X, A, k, seed, device="cuda")
        solvers = (*solvers, "clipica-cuda")
    for name in solvers:
        if name == "picard" and not picard_available():
            progress("picard: skipped (python-picard not installed)")
            continue
        r = {"solver": name, **runs[name]()}
        progress(f"{name}: {r['seconds']:.2f} s, n_iter={r['n_iter']}, converged={r['converged']}, "
                 f"amari={r['amari']:.4f}")
        results.append(r)
    by = {r["solver"]: r for r in results}
    n_iter_floor = by.get("sklearn-eigh", by.get("sklearn-svd", {"n_iter": 100}))["n_iter"]
    floor = _time_floor(X, k, n_iter_floor)
    progress(f"arithmetic floor: {floor['seconds']:.2f} s (cov {floor['covariance']:.2f}, eigh "
             f"{floor['eigh']:.2f}, {n_iter_floor} iterations {floor['iterations']:.2f})")
    speedup = {}
    comparison = {}
    if "clipica" in by:
        c = by["clipica"]
        for ref in ("sklearn-svd", "sklearn-eigh", "picard"):
            if ref in by:
                speedup[f"vs_{ref.replace('-', '_')}"] = by[ref]["seconds"] / c["seconds"]
        speedup["clipica_over_floor"] = c["seconds"] / floor["seconds"]
        sk_amari = min((by[r]["amari"] for r in ("sklearn-svd", "sklearn-eigh") if r in by), default=None)
        comparison = {
            "speedup_vs_sklearn_svd_ok": speedup.get("vs_sklearn_svd", 0) >= TARGETS["speedup_vs_sklearn_svd"],
            "speedup_vs_sklearn_eigh_ok": speedup.get("vs_sklearn_eigh", 0) >= TARGETS["speedup_vs_sklearn_eigh"],
            "amari_ok": None if sk_amari is None else c["amari"] <= sk_amari + TARGETS["amari_margin"],
        }
    return {
        "benchmark": "ica",
        "n": n, "d": d, "k": k, "seed": seed,
        "data": "K Laplace/uniform/bimodal sources (std 1.5-3) + D-K Gaussian dims (std 0.5), random N(0,1/D) mixing",
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
                    "platform": platform.platform(), "cuda": torch.cuda.is_available()},
        "results": results,
        "floor": floor,
        "speedup": speedup,
        "targets": TARGETS,
        "meets_targets": comparison,
    }


def add_arguments(parser) -> None:
    parser.add_argument("--n", type=int, default=200_000, help="rows (default 200000)")
    parser.add_argument("--d", type=int, default=512, help="features (default 512)")
    parser.add_argument("--k", type=int, default=64, help="components = planted sources (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="data and solver seed (default 0)")
    parser.add_argument("--solvers", default=",".join(SOLVER_NAMES),
                        help=f"comma-separated subset of {','.join(SOLVER_NAMES)}")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")


def run(args) -> int:
    import sys

    from clipica.errors import InputError

    solvers = tuple(s.strip() for s in args.solvers.split(",") if s.strip())
    unknown = [s for s in solvers if s not in SOLVER_NAMES]
    if unknown:
        raise InputError(f"--solvers must be a subset of {','.join(SOLVER_NAMES)}; got {','.join(unknown)}.")
    if not (args.n > 1 and args.d >= 1 and 1 <= args.k <= args.d and args.k < args.n):
        raise InputError(f"need --n > --k >= 1 and --k <= --d; got n={args.n}, d={args.d}, k={args.k}.")
    log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    out = run_benchmark(args.n, args.d, args.k, args.seed, solvers, progress=log)
    if args.out:
        from clipica._atomic import atomic_write_json

        atomic_write_json(args.out, out)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for key, val in out["speedup"].items():
            print(f"{key}: {val:.2f}x")
        print("meets targets:", out["meets_targets"])
    return 0
