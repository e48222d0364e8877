"""Covariance, PCA whitening and the runner that shares row blocks out to threads (private).

The first half of every linear decomposition clipica fits: :class:`Runner` (where block work
runs: CPU worker threads or a CUDA device), :func:`mean_and_covariance` (one streamed pass over
``X`` (N, D), N·D²/2 multiply-adds, float64 sums), :func:`whiten` (float64 eigendecomposition of
the D×D covariance, truncated to the top K, rank-checked) and :class:`ProjectedRows` (the
whitened rows, in memory or re-projected chunk by chunk from a memory-mapped ``X``). PCA
(:mod:`clipica.decompositions.pca`) uses it directly; ICA's solver
(:mod:`clipica.decompositions._fastica_torch`) rotates its output. The cost model and the
precision scheme are in that solver's docstring.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

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
#: target rows per block in the FastICA iterations
BLOCK_ROWS = 32_768
#: hold the whitened rows (N, K) float32 in memory up to this many bytes, else stream ``X``
MAX_WHITENED_BYTES = 2 * 1024**3
#: below this many input entries (N·D) a fit runs on one thread: hand-offs would cost more
#: than the arithmetic
SMALL_PROBLEM = 2_000_000

class Runner:
    """Where and how block work runs: ``device`` (torch.device) and an optional thread pool.

    Use as a context manager: inside, torch and BLAS run single-threaded and block work is
    mapped over ``workers`` Python threads (CPU), or runs in order on the device (CUDA).
    """

    def __init__(self, device="cpu", n_entries: int = 0, workers: int | None = None):
        import torch

        self.device = resolve_device(device) if isinstance(device, str) else device
        self.cuda = self.device.type == "cuda"
        if workers is None:
            workers = 1 if (self.cuda or n_entries < SMALL_PROBLEM) else torch.get_num_threads()
        self.workers = max(1, int(workers))
        self._pool = None
        self._limits = None
        self._old_threads = None

    def __enter__(self):
        import torch
        from threadpoolctl import threadpool_limits

        self._old_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self._limits = threadpool_limits(limits=1, user_api="blas")
        if self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="clipica-ica")
        return self

    def __exit__(self, *exc):
        import torch

        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._limits.restore_original_limits()
        torch.set_num_threads(self._old_threads)
        return False

    def blas_threads(self):
        """Context in which numpy's BLAS may use ``workers`` threads (for library calls such
        as scikit-learn's or Picard's solvers that do their own big products)."""
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=self.workers, user_api="blas")

    def map(self, fn, items):
        items = list(items)
        if self._pool is None or len(items) == 1:
            return [fn(it) for it in items]
        return list(self._pool.map(fn, items))

    def split(self, n: int, target: int) -> list[tuple[int, int]]:
        """Row ranges covering ``range(n)``: about ``target`` rows each, a multiple of workers."""
        nb = max(1, -(-n // target))
        nb = -(-nb // self.workers) * self.workers if n >= self.workers * 1024 else nb
        size = -(-n // nb)
        return [(a, min(a + size, n)) for a in range(0, n, size)]


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


def mean_and_covariance(X, runner: Runner, *, chunk_rows: int = CHUNK_ROWS):
    """Column mean (D,) and covariance (D, D) of ``X`` (N, D), both float64, ddof=0.

    Streams ``X`` in chunks of ``chunk_rows`` rows, so a memory-mapped matrix larger than
    RAM works. See the module docstring for the precision scheme.
    """
    n, d = X.shape
    cdt = np.float64 if X.dtype == np.float64 else np.float32
    shift64 = np.asarray(X[: min(n, 1024)], dtype=np.float64).mean(axis=0)
    shift = shift64.astype(cdt)

    if runner.cuda:
        import torch

        sh = torch.as_tensor(shift, device=runner.device)
        gram = torch.zeros((d, d), dtype=torch.float64, device=runner.device)
        colsum = torch.zeros(d, dtype=torch.float64, device=runner.device)
        for a, b in _chunks(n, chunk_rows):
            # np.array copies (a read-only memmap slice cannot back a torch tensor)
            xb = torch.from_numpy(np.array(X[a:b], dtype=cdt)).to(runner.device) - sh
            gram += (xb.T @ xb).to(torch.float64)
            colsum += xb.sum(0, dtype=torch.float64)
        gram, colsum = gram.cpu().numpy(), colsum.cpu().numpy()
    else:
        def part(ab):
            xb = np.asarray(X[ab[0]:ab[1]], dtype=cdt) - shift  # a fresh array: syrk below
            return (xb.T @ xb).astype(np.float64), xb.sum(0, dtype=np.float64)

        gram = np.zeros((d, d))
        colsum = np.zeros(d)
        for g, c in runner.map(part, _chunks(n, chunk_rows)):
            gram += g
            colsum += c
    dm = colsum / n  # mean of the shifted data
    cov = gram / n - np.outer(dm, dm)
    cov = 0.5 * (cov + cov.T)
    return shift64 + dm, cov


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
    for reproducibility; the canonical form in :mod:`clipica.decompositions.ica` does not depend on it).
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


class ProjectedRows:
    """Rows ``Z = (X - mean) @ P'`` (N, K) float32: held in memory, or re-projected from ``X``.

    With ``P`` a whitening matrix these are the whitened rows; with ``P`` an unmixing they
    are sources. ``block(a, b)`` returns rows a..b (numpy on CPU, a torch tensor on CUDA);
    ``ranges()`` splits all rows into blocks for ``runner``. In streaming mode every pass
    re-reads ``X`` (see the module docstring for the cost).
    """

    def __init__(self, X, mean, P, runner: Runner, *, in_memory: bool | None = None):
        self.X = X
        self.n = X.shape[0]
        self.k = P.shape[0]
        self.runner = runner
        self._mean = np.asarray(mean, dtype=np.float32)
        self._proj = np.ascontiguousarray(np.asarray(P, dtype=np.float32).T)
        if in_memory is None:
            in_memory = self.n * self.k * 4 <= MAX_WHITENED_BYTES
        self.Z = None
        if in_memory:
            Z = np.empty((self.n, self.k), dtype=np.float32)

            def fill(ab):
                Z[ab[0]:ab[1]] = self._project(*ab)

            runner.map(fill, _chunks(self.n, CHUNK_ROWS))
            self.Z = self._to_device(Z)

    def _to_device(self, Z):
        if self.runner.cuda:
            import torch

            return torch.as_tensor(Z, device=self.runner.device)
        return Z

    @classmethod
    def from_array(cls, Z, runner: Runner) -> ProjectedRows:
        self = cls.__new__(cls)
        self.X = None
        self.runner = runner
        self.n, self.k = Z.shape
        self.Z = self._to_device(Z) if isinstance(Z, np.ndarray) else Z
        return self

    def _project(self, a: int, b: int) -> np.ndarray:
        xb = np.asarray(self.X[a:b], dtype=np.float32) - self._mean
        return xb @ self._proj

    def ranges(self, target: int = BLOCK_ROWS):
        if self.Z is None:
            return list(_chunks(self.n, CHUNK_ROWS))
        return self.runner.split(self.n, target)

    def block(self, a: int, b: int):
        if self.Z is not None:
            return self.Z[a:b]
        return self._to_device(self._project(a, b))

    def subset(self, rows: np.ndarray) -> ProjectedRows:
        """The rows ``rows`` (sorted indices) held in memory."""
        if self.Z is not None:
            if self.runner.cuda:
                import torch

                return ProjectedRows.from_array(
                    self.Z.index_select(0, torch.as_tensor(rows, device=self.Z.device)), self.runner)
            return ProjectedRows.from_array(self.Z[rows], self.runner)
        xb = np.asarray(self.X[rows], dtype=np.float32) - self._mean
        return ProjectedRows.from_array(xb @ self._proj, self.runner)

    def numpy(self) -> np.ndarray:
        """All rows as a (N, K) float32 numpy array (materialises them)."""
        if self.Z is not None:
            return self.Z.cpu().numpy() if self.runner.cuda else self.Z
        return np.concatenate([self._project(a, b) for a, b in _chunks(self.n, CHUNK_ROWS)])


def whitened_rows(X, w: Whitening, runner: Runner, *, in_memory: bool | None = None) -> ProjectedRows:
    """Whitened rows ``(X - w.mean) @ w.matrix'`` (N, K) float32."""
    return ProjectedRows(X, w.mean, w.matrix, runner, in_memory=in_memory)
