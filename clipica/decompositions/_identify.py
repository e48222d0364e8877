"""The identifiable part of an ICA: non-Gaussian sources apart from a Gaussian remainder (private).

ICA identifies independent sources up to order and sign only when at most one of them is
Gaussian (Comon 1994). Embeddings hold many near-Gaussian directions: with K larger than the
number of non-Gaussian sources m, the K − m remaining directions span a Gaussian subspace in
which every rotation is as good as any other, so a symmetric FastICA of all K can never
converge: it spends its whole budget rotating noise, and ranks the noise beside the sources.

What the ``"fastica"`` solver does instead (:class:`clipica.decompositions.ica.ICA` with
``identify=True``), in the spirit of non-Gaussian component analysis (NGCA: Blanchard et al.,
"In search of non-Gaussian components of a high-dimensional distribution", JMLR 2006), which
splits the data into a non-Gaussian subspace and a Gaussian one, and of deflation with a
Gaussianity stop:

1. **Search.** Symmetric FastICA of all K whitened directions for a fixed budget
   (:data:`clipica.decompositions.gaussianity.NULL_ITERATIONS` iterations, on the warm-start
   subsample when there is one): the non-Gaussian sources emerge; the Gaussian directions do
   not settle, and need not.
2. **Test.** Each direction's non-Gaussianity ``T`` on all rows, against the null of that same
   search fitted to Gaussian data of the same D and K
   (:func:`clipica.decompositions.gaussianity.significance_from_statistic`: family-wise over the
   K directions at ``alpha``). The m significant ones are the identifiable part.
3. **Polish.** FastICA of those m sources only, on all rows, from where the search left them
   (:func:`clipica.decompositions._fastica_torch.fastica_partial`: their fixed points are the
   m most non-Gaussian directions; the other K − m directions stay free). Convergence is
   judged on these m (the stationarity on the Stiefel manifold); the fit converges when they do.
4. **The Gaussian block.** The K − m directions orthogonal to the m sources (within the K
   whitened ones) form one unidentifiable block: an orthonormal basis of it, deterministic but
   arbitrary (any rotation of it is as good).

m = K: the polish is the ordinary symmetric FastICA of all K. m = 0: no rotation is
identifiable; the codes are the whitened principal directions, all in the block, and the fit
counts as converged (there is nothing to converge on).
"""

from __future__ import annotations

import time

import numpy as np


def identify_and_rotate(data, *, n_features: int, fun: str, max_iter: int, tol: float, alpha: float,
                        random_state, warm_start_rows: int, n_identifiable: int | None = None):
    """Steps 1-4 (module docstring) on whitened rows ``data`` (N, K).

    ``n_identifiable``: take that many directions (the largest statistics) instead of the
    significant ones (a bootstrap refit keeps its reference's count: resampled rows deviate
    from the population about twice as much as a fresh sample, which the null does not model).

    Returns ``(R, m, test, res, info)``: ``R`` (K, K) orthogonal, its first ``m`` rows the
    identifiable sources and the rest the Gaussian block; ``test`` the GaussianityTest of the
    search's directions; ``res`` the polish's FastICAResult (None when m = 0); ``info`` counts
    and timings.
    """
    from clipica.decompositions import _fastica_torch as F
    from clipica.decompositions import gaussianity as G

    k, n = data.k, data.n
    budget = min(int(max_iter), G.NULL_ITERATIONS)
    t0 = time.perf_counter()
    # the search: on the subsample alone when warm-starting (its Gaussian directions never
    # settle, so iterating them on all rows would buy nothing)
    search = F.fastica(data, fun=fun, max_iter=budget, tol=tol, random_state=random_state,
                       warm_start_rows=warm_start_rows, full_iter=0 if warm_start_rows else budget)
    W = search.rotation
    t_search = time.perf_counter() - t0
    t0 = time.perf_counter()
    stats = F.source_statistics(data, W, fun, stationarity=False)
    test = G.significance_from_statistic(G.statistic_from_moments(stats["logcosh"], stats["oddexp"], n), n,
                                         n_features=n_features, alpha=alpha)
    t_test = time.perf_counter() - t0
    sig = test.significant
    if n_identifiable is not None:
        sig = np.zeros(k, dtype=bool)
        sig[np.argsort(-test.statistic, kind="stable")[: min(int(n_identifiable), k)]] = True
    m = int(sig.sum())
    used = search.n_iter
    info = {"search_iterations": int(used), "search_iterations_warm": int(search.n_iter_warm),
            "search_converged": bool(search.converged), "n_identifiable": m,
            "warm_start_rows": int(search.warm_start_rows), "polish_iterations": 0,
            "seconds": {"search": t_search, "test": t_test}}
    t0 = time.perf_counter()
    if m == 0:
        info["seconds"]["polish"] = 0.0
        return np.eye(k), 0, test, None, info
    if m == k and search.converged and not warm_start_rows:
        res = search
    elif m == k:
        res = F.fastica(data, fun=fun, max_iter=max_iter, tol=tol, w_init=W)
    else:
        # strongest first: the polish and the block basis do not depend on it, the record reads better
        order = np.argsort(-test.statistic[sig], kind="stable")
        res = F.fastica_partial(data, W[sig][order], fun=fun, max_iter=max_iter, tol=tol)
    Wm = res.rotation
    R = np.vstack([Wm, F.complement(Wm)]) if m < k else Wm
    info["seconds"]["polish"] = time.perf_counter() - t0
    info["polish_iterations"] = int(res.n_iter_full)
    info["stationarity_history"] = [float(h) for h in res.history_full]
    return R, m, test, res, info
