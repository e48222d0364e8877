"""clipica's own FastICA solver (torch; CPU threads or CUDA).

The estimator in :mod:`clipica.ica` calls :func:`whiten` and :func:`fastica`; this module
knows nothing about canonical signs or order. Arrays crossing the module boundary are
numpy; torch stays inside.

Pipeline and cost for ``X`` of shape (N, D), K components:

1. **Covariance** — one pass over ``X`` in row chunks (a memory-mapped matrix larger than
   RAM streams). Each chunk is shifted by the first rows' mean (avoids the cancellation
   of ``E[xx'] - mm'``), its Gram matrix is a float32 (float64 for float64 input) product
   and the chunk Grams are summed in float64. Cost: N·D² multiply-adds.
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
5. **Warm start** (optional): iterate to convergence on a random subsample of rows, then
   polish on all rows. Sample optima differ by O(1/√m), so a few full-data iterations
   finish the job; this is where most of the speed over scikit-learn comes from.

Convergence is a **stationarity** criterion rather than a step size: with ``Y = WZ``,
``C = E[g(Y) Y']`` (K×K) and ``s_i = sign(C_ii − E[g'(y_i)])``, the Riemannian gradient of
the FastICA contrast on the orthogonal group is ``skew(diag(s) C)``; we report its largest
absolute entry and stop when it falls below ``tol``. Fixed points of the FastICA update are
exactly its zeros, it is dimensionless (sources have unit variance) and it can be evaluated
for any solver's solution (it is Picard-O's gradient with FastICA's nonlinearity), so the
numbers are comparable across solvers.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from clipica.errors import InputError

# torch's OpenMP threads spin while waiting at each operation's barrier; when the CPU is
# shared with other processes a spinning thread steals the time slice its partner needs and
# every small operation becomes 5-10x slower (measured on a 2-core machine at load 10).
# Passive waiting costs little when the machine is idle. It only takes effect if set before
# torch (libgomp) loads, and a value the user set is kept.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: rows per chunk when streaming ``X`` (covariance, projection, re-reads of a memmap)
CHUNK_ROWS = 16_384
#: rows per block in the FastICA iterations (float32 products, float64 sums across blocks)
BLOCK_ROWS = 32_768
#: hold the whitened rows (N, K) float32 in memory up to this many bytes, else stream ``X``
MAX_WHITENED_BYTES = 2 * 1024**3

FUNS = ("logcosh", "exp", "cube")

#: below this many input entries (N·D) a fit runs torch single-threaded: on small problems
#: the thread-pool hand-offs cost more than the arithmetic (10-100x slower on a shared CPU)
SMALL_PROBLEM = 2_000_000


@contextmanager
def thread_budget(n_entries: int, *, limit_blas: bool = True):
    """Threads for one fit: numpy's BLAS single-threaded (it only does the D×D / K×K
    algebra here, where a spinning BLAS thread pool costs more than it saves), torch
    single-threaded too for problems smaller than :data:`SMALL_PROBLEM`."""
    import torch
    from threadpoolctl import threadpool_limits

    small = n_entries < SMALL_PROBLEM
    old = torch.get_num_threads()
    if small:
        torch.set_num_threads(1)
    try:
        if limit_blas or small:
            with threadpool_limits(limits=1, user_api="blas"):
                yield
        else:
            yield
    finally:
        if small:
            torch.set_num_threads(old)


def resolve_device(device: str):
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available) -> torch.device."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(
            f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto'; got device={device!r}."
        ) from exc
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto'; got device={device!r}.")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device={device!r} was requested but torch sees no CUDA device; "
            "use device='cpu' (or 'auto' to pick CUDA only when present)."
        )
    return dev


def _compute_dtype(X):
    import torch

    return torch.float64 if np.asarray(X[:1]).dtype == np.float64 else torch.float32


def _as_tensor(block, device):
    """A numpy block as a torch tensor on ``device`` (read-only memmap chunks are copied)."""
    import torch

    block = np.asarray(block)
    if not block.flags.writeable:
        block = block.copy()
    return torch.as_tensor(block, device=device)


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(start + size, n)


def check_finite(X, chunk_rows: int = CHUNK_ROWS) -> None:
    """Raise :class:`InputError` naming the first non-finite entry of ``X`` (N, D); streams."""
    for a, b in _chunks(X.shape[0], chunk_rows):
        block = np.asarray(X[a:b])
        if not np.isfinite(block.sum(dtype=np.float64)) and not np.isfinite(block).all():
            r, c = np.argwhere(~np.isfinite(block))[0]
            raise InputError(
                f"X contains NaN or infinity (first at row {a + int(r)}, column {int(c)}: "
                f"{block[r, c]!r}); ICA needs finite values. Drop or impute those rows first."
            )


def mean_and_covariance(X, *, device="cpu", chunk_rows: int = CHUNK_ROWS, progress=None):
    """Column mean (D,) and covariance (D, D) of ``X`` (N, D), both float64, ddof=0.

    Streams ``X`` in chunks of ``chunk_rows`` rows, so a memory-mapped matrix larger than
    RAM works. See the module docstring for the precision scheme.
    """
    import torch

    dev = resolve_device(device) if isinstance(device, str) else device
    n, d = X.shape
    cdt = _compute_dtype(X)
    shift = torch.from_numpy(np.asarray(X[: min(n, 1024)], dtype=np.float64).mean(axis=0))
    shift_c = shift.to(dev, cdt)
    gram = torch.zeros((d, d), dtype=torch.float64, device=dev)
    colsum = torch.zeros(d, dtype=torch.float64, device=dev)
    for a, b in _chunks(n, chunk_rows):
        xb = _as_tensor(X[a:b], dev).to(cdt) - shift_c
        gram += (xb.T @ xb).to(torch.float64)
        colsum += xb.sum(0, dtype=torch.float64)
        if progress is not None:
            progress(b - a)
    dm = colsum / n  # mean of the shifted data
    cov = gram / n - torch.outer(dm, dm)
    cov = 0.5 * (cov + cov.T)
    mean = shift.to(dev) + dm
    return mean.cpu().numpy(), cov.cpu().numpy()


@dataclass(frozen=True)
class Whitening:
    """PCA whitening of the top K directions (unit covariance, ddof=0).

    ``matrix`` (K, D): ``z = matrix @ (x - mean)``; ``eigenvalues`` (K,) the variances of
    the kept directions (descending, data units²); ``total_variance`` the covariance trace;
    ``rank`` the numerical rank of the covariance.
    """

    mean: np.ndarray
    matrix: np.ndarray
    eigenvalues: np.ndarray
    total_variance: float
    rank: int


def numerical_rank_tolerance(eigenvalues: np.ndarray, n_features: int, dtype) -> float:
    """Eigenvalues of the covariance at or below this are treated as zero: D · eps · λ_max."""
    eps = np.finfo(np.float64 if dtype == np.float64 else np.float32).eps
    return float(max(eigenvalues.max(), 0.0) * n_features * eps)


def whiten(mean: np.ndarray, cov: np.ndarray, n_components: int | None, *, dtype=np.float32) -> Whitening:
    """Whitening for the top ``n_components`` eigen-directions of ``cov`` (D, D).

    ``n_components=None`` keeps every direction above the numerical rank tolerance.
    Eigenvector signs are fixed so each vector's largest-magnitude entry is positive (only
    for reproducibility; the canonical form in :mod:`clipica.ica` does not depend on it).
    """
    d = cov.shape[0]
    evals, evecs = np.linalg.eigh(cov)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    tol = numerical_rank_tolerance(evals, d, dtype)
    rank = int(np.sum(evals > tol))
    k = rank if n_components is None else int(n_components)
    if rank == 0:
        raise InputError("X has zero variance in every column (numerical rank 0); nothing to decompose.")
    if k > rank:
        raise InputError(
            f"n_components={k} exceeds the numerical rank of X's covariance ({rank} of {d} "
            f"directions have variance above {tol:.3g}); choose n_components <= {rank}."
        )
    v = evecs[:, :k]
    idx = np.argmax(np.abs(v), axis=0)
    v = v * np.sign(v[idx, np.arange(k)])
    lam = evals[:k].copy()
    matrix = (v / np.sqrt(lam)).T
    return Whitening(
        mean=np.asarray(mean, dtype=np.float64),
        matrix=np.ascontiguousarray(matrix),
        eigenvalues=lam,
        total_variance=float(max(np.trace(cov), 0.0)),
        rank=rank,
    )


class WhitenedRows:
    """Whitened rows ``Z`` (N, K) float32 on ``device``: in memory, or re-projected from ``X``.

    ``blocks()`` yields (n_b, K) tensors covering all rows in order. In streaming mode each
    call re-reads ``X`` (see the module docstring for the cost).
    """

    def __init__(self, X, w: Whitening, device, *, in_memory: bool | None = None,
                 chunk_rows: int = CHUNK_ROWS, block_rows: int = BLOCK_ROWS):
        import torch

        self.X = X
        self.n = X.shape[0]
        self.k = w.matrix.shape[0]
        self.device = device
        self.block_rows = block_rows
        self.chunk_rows = chunk_rows
        self._mean = torch.from_numpy(w.mean).to(device, torch.float32)
        self._proj = torch.from_numpy(w.matrix.T.copy()).to(device, torch.float32)
        if in_memory is None:
            in_memory = self.n * self.k * 4 <= MAX_WHITENED_BYTES
        self.Z = None
        if in_memory:
            self.Z = torch.empty((self.n, self.k), dtype=torch.float32, device=device)
            for a, b in _chunks(self.n, chunk_rows):
                self.Z[a:b] = self._project(a, b)

    @classmethod
    def from_tensor(cls, Z, block_rows: int = BLOCK_ROWS) -> WhitenedRows:
        self = cls.__new__(cls)
        self.X, self.Z = None, Z
        self.n, self.k = Z.shape
        self.device = Z.device
        self.block_rows = block_rows
        return self

    def _project(self, a: int, b: int):
        import torch

        xb = _as_tensor(self.X[a:b], self.device).to(torch.float32)
        return (xb - self._mean) @ self._proj

    def blocks(self):
        if self.Z is not None:
            for a, b in _chunks(self.n, self.block_rows):
                yield self.Z[a:b]
        else:
            for a, b in _chunks(self.n, self.chunk_rows):
                yield self._project(a, b)

    def subset(self, rows: np.ndarray) -> WhitenedRows:
        """The rows ``rows`` (sorted indices) as an in-memory :class:`WhitenedRows`."""
        import torch

        if self.Z is not None:
            idx = torch.as_tensor(rows, device=self.Z.device)
            return WhitenedRows.from_tensor(self.Z.index_select(0, idx).contiguous(), self.block_rows)
        xb = _as_tensor(self.X[rows], self.device).to(torch.float32)
        return WhitenedRows.from_tensor(((xb - self._mean) @ self._proj).contiguous(), self.block_rows)

    def numpy(self) -> np.ndarray:
        """All whitened rows as a (N, K) float32 numpy array (materialises them)."""
        import torch

        if self.Z is not None:
            return self.Z.cpu().numpy()
        return torch.cat([b.cpu() for b in self.blocks()]).numpy()


def _g(y, fun: str):
    """In place: y <- g(y); returns (g(y), sum over rows of g'(y) as float64)."""
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


def _moments(data: WhitenedRows, W: np.ndarray, fun: str):
    """One pass: M = E[g(WZ) Z'] (K, K) and E[g'(WZ)] (K,), float64 numpy.

    Only the products over rows run in torch (float32, block by block); the K×K algebra
    stays in numpy float64, which also keeps the per-iteration overhead small.
    """
    import torch

    W32 = torch.from_numpy(np.ascontiguousarray(W.T, dtype=np.float32)).to(data.device)
    k = W.shape[0]
    M = torch.zeros((k, k), dtype=torch.float64, device=data.device)
    dsum = torch.zeros(k, dtype=torch.float64, device=data.device)
    for zb in data.blocks():
        gy, ds = _g(zb @ W32, fun)
        M += (gy.T @ zb).to(torch.float64)
        dsum += ds
    return M.cpu().numpy() / data.n, dsum.cpu().numpy() / data.n


def _stationarity(M: np.ndarray, W: np.ndarray, dmean: np.ndarray) -> float:
    """Largest |entry| of skew(diag(s) C), C = M W' = E[g(y) y'] (see module docstring)."""
    C = M @ W.T
    s = np.sign(np.diag(C) - dmean)
    s[s == 0] = 1.0
    G = s[:, None] * C
    return float(np.abs(0.5 * (G - G.T)).max())


def sym_decorrelation(W: np.ndarray) -> np.ndarray:
    """``(W W')^-1/2 W`` by a float64 eigendecomposition of the K×K product."""
    s, u = np.linalg.eigh(W @ W.T)
    s = np.clip(s, np.finfo(np.float64).tiny, None)
    return (u / np.sqrt(s)) @ u.T @ W


def _iterate(data: WhitenedRows, W, *, fun, max_iter, tol, history):
    """FastICA fixed-point iterations from W (K, K) float64; returns (W, n_updates, converged, grad)."""
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
    """Rows for the warm start under ``warm_start_samples="auto"``: max(20 000, 300·K), or 0
    (no warm start) when that is more than half the data."""
    m = max(20_000, 300 * n_components)
    return m if 2 * m <= n_samples else 0


def fastica(data: WhitenedRows, *, fun="logcosh", max_iter=200, tol=1e-4, w_init=None,
            random_state=None, warm_start_rows=0) -> FastICAResult:
    """Parallel FastICA on whitened rows; see the module docstring.

    ``w_init`` (K, K) or None (standard normal from ``random_state``, a
    ``numpy.random.RandomState``); ``warm_start_rows`` > 0 first iterates on that many
    randomly chosen rows. ``max_iter`` bounds each phase separately.
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
        sub = data.subset(rows)
        W, n_warm, _, _ = _iterate(sub, W, fun=fun, max_iter=max_iter, tol=tol, history=hist_warm)
        del sub
        seconds["warm_start"] = time.perf_counter() - t0
    else:
        m = 0
    t0 = time.perf_counter()
    W, n_full, converged, grad = _iterate(data, W, fun=fun, max_iter=max_iter, tol=tol, history=hist_full)
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


def source_statistics(blocks, fun: str = "logcosh") -> dict:
    """Moments of sources given as an iterable of (n_b, K) blocks (torch or numpy).

    Returns float64 numpy arrays: ``n``; ``m1..m4`` (K,) raw moments E[s^p];
    ``logcosh`` (K,) E[log cosh s]; ``stationarity`` (float) the criterion of the module
    docstring evaluated with ``fun`` (meaningful when the sources are whitened, i.e. have
    unit variance and are uncorrelated).
    """
    import torch

    n = 0
    acc = None
    for sb in blocks:
        s = torch.as_tensor(sb)
        s64 = s.to(torch.float64)
        s2 = s64 * s64
        # log cosh s = |s| + log1p(exp(-2|s|)) - log 2 (no overflow)
        a = s64.abs()
        lc = a + torch.log1p(torch.exp(-2.0 * a)) - np.log(2.0)
        gy, ds = _g(s.to(torch.float32).clone(), fun)
        parts = [s64.sum(0), s2.sum(0), (s2 * s64).sum(0), (s2 * s2).sum(0), lc.sum(0), ds,
                 (gy.T @ s.to(torch.float32)).to(torch.float64)]
        acc = parts if acc is None else [x + y for x, y in zip(acc, parts, strict=True)]
        n += s.shape[0]
    m1, m2, m3, m4, lc, ds, C = (x.cpu().numpy() / n for x in acc)
    s = np.sign(np.diag(C) - ds)
    s[s == 0] = 1.0
    G = s[:, None] * C
    return {
        "n": n, "m1": m1, "m2": m2, "m3": m3, "m4": m4, "logcosh": lc,
        "stationarity": float(np.abs(0.5 * (G - G.T)).max()),
    }
