"""clipica's own FastICA solver (torch; CPU threads or CUDA).

The estimator in :mod:`clipica.decompositions.ica` whitens with
:mod:`clipica.decompositions._whitening` (steps 1-3 below, shared with PCA) and rotates with
:func:`fastica` (steps 4-5); this module knows nothing about canonical signs or order. Arrays crossing the module boundary are
numpy; torch stays inside.

Pipeline and cost for ``X`` of shape (N, D), K components:

1. **Covariance** — one pass over ``X`` in row chunks (a memory-mapped matrix larger than
   RAM streams). Each chunk is shifted by the first rows' mean (avoids the cancellation
   of ``E[xx'] - mm'``), its Gram matrix is a float32 (float64 for float64 input)
   symmetric rank-k update and the chunk Grams are summed in float64. Cost: N·D²/2
   multiply-adds.
2. **Whitening** — symmetric eigendecomposition of the D×D covariance in float64 (never an
   SVD of the N×D data), truncated to the top K. ``whitening = diag(λ)^-1/2 V'`` so the
   whitened rows ``z = whitening (x - mean)`` have identity covariance (ddof=0). K above
   the numerical rank (eigenvalues ≤ D·eps·λ_max of the compute dtype) is an error.
3. **Whitened rows** ``Z`` (N, K) float32 are held in memory when they fit in
   :data:`MAX_WHITENED_BYTES` (one pass over ``X``: N·D·K multiply-adds); otherwise every
   iteration re-reads ``X`` chunk by chunk and re-projects it (cost per full-data iteration
   then ≈ N·D·K + the read of ``X`` instead of ≈ 2·N·K², i.e. about D/(2K) times more
   arithmetic plus I/O; the warm start keeps the number of such passes small).
4. **Parallel FastICA** (Hyvärinen 1999, symmetric) on ``Z``: ``W ← sym(E[g(WZ)Z'] −
   diag(E[g'(WZ)]) W)`` with ``sym(B) = (BB')^-1/2 B`` by a K×K eigendecomposition. Products
   over rows run in float32 on blocks of :data:`BLOCK_ROWS`; per-block results are summed
   in float64 and all K×K algebra is float64.
5. **Warm start** (optional): iterate on a random subsample of rows (re-whitened exactly)
   until the stationarity is below :data:`WARM_TOL`, then polish on all rows. Sample
   optima differ by O(1/√m), so a few full-data iterations finish the job.

**Threads.** On CPU the row blocks are shared out to ``W`` worker threads (``W`` =
``torch.get_num_threads()`` when the fit starts, 1 for problems below
:data:`SMALL_PROBLEM`), each running single-threaded kernels (numpy/OpenBLAS for the
products, torch for the elementwise nonlinearity) and returning float64 partial sums. One
hand-off per block instead of one barrier per operation keeps the speed when the CPU is
shared with other processes. On CUDA everything is torch on the device.

Convergence is a **stationarity** criterion rather than a step size: with ``Y = WZ``,
``C = E[g(Y) Y']`` (K×K) and ``s_i = sign(C_ii − E[g'(y_i)])``, the Riemannian gradient of
the FastICA contrast on the orthogonal group is ``skew(diag(s) C)``; we report its largest
absolute entry and stop when it falls below ``tol``. Fixed points of the FastICA update are
exactly its zeros, it is dimensionless (sources have unit variance) and it can be evaluated
for any solver's solution (it is Picard-O's gradient with FastICA's nonlinearity), so the
numbers are comparable across solvers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from clipica.decompositions._whitening import ProjectedRows
from clipica.errors import InputError

FUNS = ("logcosh", "exp", "cube")


def _g(y, fun: str):
    """In place on torch tensor y: y <- g(y); returns (g(y), sum over rows of g'(y), float64)."""
    import torch

    if fun == "logcosh":
        # tanh(y) = 2·sigmoid(2y) − 1: torch's float32 sigmoid is several times faster than its tanh
        torch.sigmoid_(y.mul_(2.0)).mul_(2.0).sub_(1.0)
        dsum = y.shape[0] - (y * y).sum(0, dtype=torch.float64)
        return y, dsum
    if fun == "exp":
        y2 = y * y
        e = torch.exp_(y2.mul(-0.5))
        dsum = ((1.0 - y2) * e).sum(0, dtype=torch.float64)
        return y.mul_(e), dsum
    if fun == "cube":
        y2 = y * y
        dsum = 3.0 * y2.sum(0, dtype=torch.float64)
        return y.mul_(y2), dsum
    raise InputError(f"fun must be one of {FUNS}; got fun={fun!r}.")


def _block_moments(zb, W32T, fun: str):
    """(E-sum of g(y) z', sum of g'(y)) for one block, y = zb W'; float64 numpy."""
    import torch

    if isinstance(zb, np.ndarray):
        y = zb @ W32T
        gy, ds = _g(torch.from_numpy(y), fun)  # in place on y's memory
        return (gy.numpy().T @ zb).astype(np.float64), ds.numpy()
    W = torch.as_tensor(W32T, device=zb.device)
    gy, ds = _g(zb @ W, fun)
    return (gy.T @ zb).to(torch.float64).cpu().numpy(), ds.cpu().numpy()


def _moments(data: ProjectedRows, W: np.ndarray, fun: str):
    """One pass: M = E[g(WZ) Z'] (m, K) and E[g'(WZ)] (m,), float64 numpy, for W (m, K), m <= K.

    Products over rows run in float32 block by block (in parallel on CPU); the per-block
    sums and all K×K algebra are float64.
    """
    W32T = np.ascontiguousarray(W.T, dtype=np.float32)

    def part(ab):
        return _block_moments(data.block(*ab), W32T, fun)

    M = np.zeros(W.shape)
    dsum = np.zeros(W.shape[0])
    for m, ds in data.runner.map(part, data.ranges()):
        M += m
        dsum += ds
    return M / data.n, dsum / data.n


def _stationarity(M: np.ndarray, W: np.ndarray, dmean: np.ndarray) -> float:
    """The stationarity criterion (module docstring) of W (m, K) with orthonormal rows.

    With ``G = diag(s) M`` (m, K): the largest |entry| of skew(G W') (the rotations among the
    m sources; all there is when m = K) and, when m < K, the largest row norm of
    ``G (I - W'W)`` (turning a source towards the K - m directions outside their span): the
    Riemannian gradient of the contrast on the Stiefel manifold, split in its two parts.
    """
    C = M @ W.T
    s = np.sign(np.diag(C) - dmean)
    s[s == 0] = 1.0
    G = s[:, None] * C
    grad = float(np.abs(0.5 * (G - G.T)).max())
    if W.shape[0] < W.shape[1]:
        out = s[:, None] * (M - C @ W)
        grad = max(grad, float(np.sqrt((out * out).sum(axis=1)).max()))
    return grad


def sym_decorrelation(W: np.ndarray) -> np.ndarray:
    """``(W W')^-1/2 W`` (W: (m, K), m <= K) by a float64 eigendecomposition of the m×m product."""
    s, u = np.linalg.eigh(W @ W.T)
    s = np.clip(s, np.finfo(np.float64).tiny, None)
    return (u / np.sqrt(s)) @ u.T @ W


def _iterate(data: ProjectedRows, W, *, fun, max_iter, tol, history):
    """FastICA fixed-point iterations from W (m, K) float64 (m = K: all sources; m < K: the m
    sources of a partial fit, the other directions left free); returns (W, n_updates,
    converged, grad)."""
    grad = float("inf")
    for it in range(max_iter + 1):
        M, dmean = _moments(data, W, fun)
        grad = _stationarity(M, W, dmean)
        history.append(grad)
        if grad < tol:
            return W, it, True, grad
        if it == max_iter:
            break
        W = sym_decorrelation(M - dmean[:, None] * W)
    return W, max_iter, False, grad


def _rewhitened(sub: ProjectedRows) -> tuple[ProjectedRows, np.ndarray]:
    """Centre and re-whiten in-memory rows exactly: returns (rows (z - mu) L', L (K, K))."""
    Z = sub.Z
    if isinstance(Z, np.ndarray):
        mu = Z.mean(0, dtype=np.float64)
        Zc = Z - mu.astype(np.float32)
        C = (Zc.T @ Zc).astype(np.float64) / Zc.shape[0]
    else:
        import torch

        mu = Z.mean(0, dtype=torch.float64)
        Zc = Z - mu.to(Z.dtype)
        C = (Zc.T @ Zc).to(torch.float64).cpu().numpy() / Zc.shape[0]
    s, u = np.linalg.eigh(0.5 * (C + C.T))
    L = (u / np.sqrt(np.clip(s, np.finfo(np.float64).tiny, None))) @ u.T  # C^-1/2, symmetric
    L32 = L.astype(np.float32)
    if isinstance(Zc, np.ndarray):
        return ProjectedRows.from_array(Zc @ L32, sub.runner), L
    import torch

    return ProjectedRows.from_array(Zc @ torch.as_tensor(L32, device=Zc.device), sub.runner), L


@dataclass
class FastICAResult:
    """Output of :func:`fastica`: ``rotation`` (K, K) orthogonal, float64, such that the
    sources are ``rotation @ z`` for whitened rows ``z``."""

    rotation: np.ndarray
    n_iter: int
    n_iter_warm: int
    n_iter_full: int
    converged: bool
    stationarity: float
    warm_start_rows: int
    history_warm: list = field(default_factory=list)
    history_full: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)


def auto_warm_start_rows(n_samples: int, n_components: int) -> int:
    """Rows for the warm start under ``warm_start_samples="auto"``: max(50 000, 500·K), or 0
    (no warm start) when that is more than a quarter of the data.

    Smaller subsamples are cheaper per iteration but, for weakly non-Gaussian sources,
    converge far more slowly than the full data (measured: 251 iterations on 20 000 rows vs
    16 on 50 000 and 10 on all 200 000 rows, K=32 Student-t sources), which loses more than
    the subsample saves.
    """
    m = max(50_000, 500 * n_components)
    return m if 4 * m <= n_samples else 0


#: the warm start stops at this stationarity (or ``tol`` if larger): the subsample optimum is
#: itself ~1e-3 away from the full-data one (first full-data value measured 1e-3 to 1e-2),
#: so iterating the subsample further buys nothing
WARM_TOL = 1e-3


def fastica(data: ProjectedRows, *, fun="logcosh", max_iter=200, tol=1e-4, w_init=None,
            random_state=None, warm_start_rows=0, full_iter=None) -> FastICAResult:
    """Parallel FastICA on whitened rows; see the module docstring.

    ``w_init`` (K, K) or None (standard normal from ``random_state``, a
    ``numpy.random.RandomState``); ``warm_start_rows`` > 0 first iterates on that many
    randomly chosen rows. ``max_iter`` bounds each phase separately; ``full_iter`` (default
    ``max_iter``) bounds the phase on all rows (0: only measure the stationarity there).
    """

    if fun not in FUNS:
        raise InputError(f"fun must be one of {FUNS}; got fun={fun!r}.")
    rs = random_state if random_state is not None else np.random.RandomState(0)
    k = data.k
    if w_init is None:
        w_init = rs.standard_normal((k, k))
    W = sym_decorrelation(np.asarray(w_init, dtype=np.float64))
    seconds = {}
    hist_warm, hist_full = [], []
    n_warm = 0
    m = int(warm_start_rows or 0)
    if 0 < m < data.n:
        t0 = time.perf_counter()
        rows = np.sort(rs.choice(data.n, size=m, replace=False))
        sub, L = _rewhitened(data.subset(rows))
        # iterate on exactly white subsample rows z L' (FastICA's orthogonality assumes it;
        # without it the iterations wander for tens of steps), then map back: sources are
        # W L z, whose nearest orthogonal matrix starts the polish on all rows
        W, n_warm, _, _ = _iterate(sub, W, fun=fun, max_iter=max_iter, tol=max(tol, WARM_TOL),
                                   history=hist_warm)
        W = sym_decorrelation(W @ L)
        del sub
        seconds["warm_start"] = time.perf_counter() - t0
    else:
        m = 0
    t0 = time.perf_counter()
    W, n_full, converged, grad = _iterate(data, W, fun=fun, max_iter=max_iter if full_iter is None else full_iter,
                                          tol=tol, history=hist_full)
    seconds["iterations"] = time.perf_counter() - t0
    return FastICAResult(
        rotation=W,
        n_iter=n_warm + n_full,
        n_iter_warm=n_warm,
        n_iter_full=n_full,
        converged=converged,
        stationarity=grad,
        warm_start_rows=m,
        history_warm=hist_warm,
        history_full=hist_full,
        seconds=seconds,
    )


def fastica_partial(data: ProjectedRows, W: np.ndarray, *, fun="logcosh", max_iter=200,
                    tol=1e-4) -> FastICAResult:
    """Symmetric FastICA of m < K sources from the start W (m, K) on all rows of ``data``.

    The fixed points are the m most non-Gaussian directions; the K − m others are not
    estimated (a Gaussian remainder has no preferred rotation, so estimating it could never
    converge). ``rotation`` of the result is (m, K) with orthonormal rows.
    """
    t0 = time.perf_counter()
    hist: list = []
    W, n_full, converged, grad = _iterate(data, sym_decorrelation(np.asarray(W, dtype=np.float64)),
                                          fun=fun, max_iter=max_iter, tol=tol, history=hist)
    return FastICAResult(rotation=W, n_iter=n_full, n_iter_warm=0, n_iter_full=n_full, converged=converged,
                         stationarity=grad, warm_start_rows=0, history_full=hist,
                         seconds={"iterations": time.perf_counter() - t0})


def complement(W: np.ndarray) -> np.ndarray:
    """An orthonormal basis (K − m, K) of the directions orthogonal to the rows of W (m, K).

    Deterministic for a given W (eigenvectors of I − W'W with eigenvalue 1, each with its
    largest-magnitude entry positive); any rotation of it is as good.
    """
    k = W.shape[1]
    m = W.shape[0]
    if m >= k:
        return np.zeros((0, k))
    evals, evecs = np.linalg.eigh(np.eye(k) - W.T @ W)
    Q = evecs[:, np.argsort(-evals)[: k - m]].T
    idx = np.argmax(np.abs(Q), axis=1)
    return Q * np.sign(Q[np.arange(k - m), idx])[:, None]


def source_statistics(data: ProjectedRows, R: np.ndarray | None = None, fun: str = "logcosh",
                      stationarity: bool = True) -> dict:
    """Moments of the sources ``s = R z`` for every row ``z`` of ``data`` (R=None: s = z).

    Returns float64 numpy arrays: ``n``; ``m1..m4`` (K,) raw moments E[s^p];
    ``logcosh`` (K,) E[log cosh s]; ``oddexp`` (K,) E[s exp(-s²/2)] (with ``logcosh``, the
    contrasts of :func:`clipica.decompositions.gaussianity.nongaussianity`); with
    ``stationarity=True`` also ``stationarity``
    (float), the criterion of the module docstring evaluated with ``fun`` (meaningful when
    the sources are white: unit variance, uncorrelated). Float32 arithmetic and sums within
    a block (torch's sums are cascaded), float64 across blocks.
    """
    import torch

    RT = None if R is None else np.ascontiguousarray(R.T, dtype=np.float32)

    def part(ab):
        zb = data.block(*ab)
        if isinstance(zb, np.ndarray):
            s = torch.from_numpy(zb.copy() if RT is None else zb @ RT)
        else:
            s = zb.clone() if RT is None else zb @ torch.as_tensor(RT, device=zb.device)
        out = [s.sum(0)]
        if stationarity:
            gy, ds = _g(s.clone(), fun)
            out += [ds, gy.T @ s]
        s2 = s * s
        out.append((s * torch.exp(s2.mul(-0.5))).sum(0))
        out += [s2.sum(0), (s2 * s).sum(0), s2.square_().sum(0)]
        a = s.abs_()
        lc = torch.log1p_(torch.exp(a.mul(-2.0))).add_(a)  # log cosh + log 2, no overflow
        out.append(lc.sum(0))
        return [o.to(torch.float64).cpu().numpy() for o in out]

    acc = None
    for parts in data.runner.map(part, data.ranges()):
        acc = parts if acc is None else [x + y for x, y in zip(acc, parts, strict=True)]
    n = data.n
    acc = [x / n for x in acc]
    m1 = acc.pop(0)
    out = {"n": n, "m1": m1}
    if stationarity:
        ds, C = acc.pop(0), acc.pop(0)
        sg = np.sign(np.diag(C) - ds)
        sg[sg == 0] = 1.0
        G = sg[:, None] * C
        out["stationarity"] = float(np.abs(0.5 * (G - G.T)).max())
    out["oddexp"], out["m2"], out["m3"], out["m4"], lc = acc
    out["logcosh"] = lc - np.log(2.0)
    return out
