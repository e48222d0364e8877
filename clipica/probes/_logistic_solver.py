"""The stages of :func:`clipica.probes.logistic.fit_logistic`'s solver, and the blockwise passes.

Private to :mod:`clipica.probes`. Every function works on the stacked, per-label-scaled problem
of :func:`~clipica.probes.logistic.fit_logistic` (``W`` (p, A) weights, ``b`` (A,) intercepts on
standardised features, each label's objective divided by ``C * n_a``):

- the blockwise passes over a float32 (or memmapped) matrix: :func:`_row_blocks`,
  :func:`_blocked_stats`, :func:`_standardised` (a wide matrix is never copied whole to float64);
- the objective and gradient (:func:`_logistic_parts`), the preconditioned L-BFGS
  (:func:`_lbfgs`, :func:`_preconditioner`);
- :class:`StreamedRows`: the standardised rows of a wide matrix as an operator, block by block;
- stages 1 and 3: :func:`_subsample_start` (L-BFGS on a subsample) and :func:`_finish` (L-BFGS
  on all rows); stage 2, Newton steps on all rows, is :mod:`clipica.probes._logistic_newton`.

numpy/scipy only; no torch.
"""

from __future__ import annotations

import numpy as np

#: float64 values per row block of the blockwise passes (4 MiB): a wide matrix's blocks and
#: their temporaries stay small beside the arrays the probe keeps
_BLOCK_VALUES = 1 << 19


def _column_stats(X: np.ndarray) -> tuple[None, np.ndarray, np.ndarray]:
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    # a constant column stays 0 after centring instead of dividing by 0
    scale = np.where(scale > 1e-12 * max(1.0, float(np.abs(mean).max(initial=0.0))), scale, 1.0)
    return None, mean, scale


def _row_blocks(X, rows: np.ndarray | None = None):
    """``(start, float64 block)`` over ``X`` (or ``X[rows]``), about ``_BLOCK_VALUES`` values
    (at least 256 rows) at a time.

    A block of a float64 ``X`` may be a view of it: read-only for the caller."""
    n = X.shape[0] if rows is None else len(rows)
    step = max(256, _BLOCK_VALUES // max(1, X.shape[1]))
    for a in range(0, n, step):
        idx = slice(a, a + step) if rows is None else rows[a : a + step]
        yield a, np.asarray(X[idx], dtype=np.float64)


def _blocked_stats(X, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and scale (as :func:`_column_stats`) of ``X`` (or ``X[rows]``) in float64.

    Two passes over row blocks (mean, then squared deviations): a float32 matrix of any
    size is never copied whole to float64.
    """
    n = X.shape[0] if rows is None else len(rows)
    total = np.zeros(X.shape[1])
    for _, blk in _row_blocks(X, rows):
        total += blk.sum(axis=0)
    mean = total / n
    sq = np.zeros(X.shape[1])
    for _, blk in _row_blocks(X, rows):
        d = blk - mean  # never in place: a float64 block may be a view of the caller's X
        sq += np.einsum("ij,ij->j", d, d)
    scale = np.sqrt(sq / n)
    scale = np.where(scale > 1e-12 * max(1.0, float(np.abs(mean).max(initial=0.0))), scale, 1.0)
    return mean, scale


def _standardised(X, mean, scale, dtype, rows: np.ndarray | None = None) -> np.ndarray:
    """``(X[rows] - mean) / scale`` in ``dtype``, computed in float64 one row block at a time."""
    out = np.empty((X.shape[0] if rows is None else len(rows), X.shape[1]), dtype=dtype)
    for a, blk in _row_blocks(X, rows):
        out[a : a + blk.shape[0]] = (blk - mean) / scale
    return out


class StreamedRows:
    """``(X[rows] - mean) / scale`` in ``dtype`` as an operator read from ``X`` block by block.

    Supports what the solver's passes need -- ``S @ W`` (n, A), ``S.T @ R`` (p, A) float64,
    ``S[idx]`` (len(idx), p) -- without a standardised copy of the whole matrix: for a wide
    matrix (512 raw embedding dimensions) that copy would be the largest array of the probe
    stage (0.7 x the image matrix for the probe's training rows) and grow with the store.
    Each pass re-reads ``X`` (a memmap: the page cache) and standardises one block of
    ``_BLOCK_VALUES`` values at a time, in ``dtype``.
    """

    def __init__(self, X, rows: np.ndarray | None, mean: np.ndarray, scale: np.ndarray, dtype):
        self.X, self.rows = X, rows
        self.shape = (X.shape[0] if rows is None else len(rows), X.shape[1])
        self.dtype = np.dtype(dtype)
        self._mean = mean.astype(self.dtype)
        self._inv = (1.0 / scale).astype(self.dtype)
        self._step = max(256, _BLOCK_VALUES // max(1, X.shape[1]))

    def _block(self, idx) -> np.ndarray:
        # a fresh array either way (X is never written): a slice is a view, so copy it; rows
        # picked by an index array are a copy already
        blk = self.X[idx]
        blk = np.array(blk, dtype=self.dtype) if isinstance(idx, slice) else blk.astype(self.dtype, copy=False)
        blk -= self._mean
        blk *= self._inv
        return blk

    def blocks(self):
        """``(slice of positions, standardised block)`` over the rows, in order."""
        for a in range(0, self.shape[0], self._step):
            pos = slice(a, min(a + self._step, self.shape[0]))
            yield pos, self._block(pos if self.rows is None else self.rows[pos])

    def __matmul__(self, W: np.ndarray) -> np.ndarray:
        out = np.empty((self.shape[0], W.shape[1]), dtype=np.result_type(self.dtype, W.dtype))
        for pos, blk in self.blocks():
            np.matmul(blk, W, out=out[pos])
        return out

    def __getitem__(self, idx) -> np.ndarray:
        """Standardised rows at positions ``idx`` (a slice or an int array)."""
        idx = idx if isinstance(idx, slice) else np.asarray(idx)
        return self._block(idx if self.rows is None else self.rows[idx])

    @property
    def T(self):
        return _TransposedRows(self)


class _TransposedRows:
    def __init__(self, rows: StreamedRows):
        self.rows = rows

    def __matmul__(self, R: np.ndarray) -> np.ndarray:
        out = np.zeros((self.rows.shape[1], R.shape[1]))
        for pos, blk in self.rows.blocks():
            out += blk.T @ R[pos]
        return out


def _logistic_parts(Xc, W, b, Y, Wrow, lam, mask, dtype, want_loss=True):
    """Objective and gradient of the stacked, per-label-scaled problem.

    ``Xc`` (n, p), ``W`` (p, A), ``b`` (A,), ``Y`` (n, A) 0/1 (0 where missing), ``Wrow``
    (n, A) row weights (1 / n_a on observed rows, 0 on missing ones) or (A,) when every
    row is observed. Returns ``(f, gW, gb)``. Memory: two (n, A) buffers in Xc's dtype.
    """
    from scipy.special import expit

    Z = Xc @ W.astype(dtype, copy=False)
    Z += b.astype(dtype, copy=False)
    f = float("nan")
    if want_loss:
        # logloss(y, z) = log(1 + e^z) - y z = log(1 + e^{(1 - 2y) z}) for y in {0, 1}
        L = np.multiply(Y, Z, dtype=Z.dtype)
        L *= -2.0
        L += Z
        np.logaddexp(0.0, L, out=L)
        L *= Wrow
        f = float(np.sum(L, dtype=np.float64)) + 0.5 * float(np.sum(lam * (W * W).sum(axis=0)))
        del L
    R = expit(Z, out=Z)  # Z is not needed again: P, then the residual, in place
    R -= Y
    R *= Wrow
    gW = (Xc.T @ R).astype(np.float64) + lam * W
    if mask is not None:
        gW *= mask
    gb = R.sum(axis=0, dtype=np.float64)
    return f, gW, gb


def _inv_sqrt(G: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``(G^-1/2, G^1/2, largest eigenvalue)`` of a PSD matrix, eigenvalues floored at 1e-3 max."""
    w, V = np.linalg.eigh(G)
    top = max(float(w.max(initial=0.0)), 1e-12)
    w = np.maximum(w, 1e-3 * top)
    return (V / np.sqrt(w)) @ V.T, (V * np.sqrt(w)) @ V.T, top


def _preconditioner(Xs_sample: np.ndarray, mask: np.ndarray | None):
    """Reparametrisation ``w = P v`` with ``P = G^-1/2``, G the features' correlation.

    Correlated features (raw embedding dimensions) make the logistic loss badly
    conditioned in ``w``; in ``v`` its curvature is close to isotropic, so L-BFGS needs
    far fewer iterations. The objective and its minimiser are unchanged (only the
    coordinates move). With a feature mask each label gets ``G^-1/2`` of its own support.
    Returns ``(per_label, top)``: a list of (support or None, P, P^-1) and the largest
    eigenvalue (to translate the gradient tolerance).
    """
    G = Xs_sample.T @ Xs_sample / Xs_sample.shape[0]
    if mask is None:
        P, Pinv, top = _inv_sqrt(G)
        return [(None, P, Pinv)], top
    out, top = [], 0.0
    for a in range(mask.shape[1]):
        S = np.flatnonzero(mask[:, a])
        P, Pinv, t = _inv_sqrt(G[np.ix_(S, S)]) if S.size else (np.zeros((0, 0)),) * 2 + (1.0,)
        out.append((S, P, Pinv))
        top = max(top, t)
    return out, top


def _lbfgs(Xc, Y, Wrow, lam, mask, W0, b0, *, dtype, max_iter, tol, precond=None):
    from scipy.optimize import minimize

    p, A = W0.shape
    gtol = tol
    if precond is None:
        to_w = to_v = to_gv = None
    else:
        blocks, top = precond
        gtol = tol / np.sqrt(top)  # |grad_w| <~ sqrt(top) |grad_v|
        if blocks[0][0] is None:  # one P shared by every label (no mask)
            _, P, Pinv = blocks[0]

            def to_w(v):
                return P @ v

            def to_v(w):
                return Pinv @ w

            to_gv = to_w  # P is symmetric: grad_v = P^T grad_w
        else:

            def _apply(M_index, X_in):
                out = np.zeros_like(X_in)
                for a, blk in enumerate(blocks):
                    S = blk[0]
                    if S.size:
                        out[S, a] = blk[M_index] @ X_in[S, a]
                return out

            def to_w(v):
                return _apply(1, v)

            def to_v(w):
                return _apply(2, w)

            to_gv = to_w

    def fun(theta):
        V = theta[: p * A].reshape(p, A)
        W = V if to_w is None else to_w(V)
        if mask is not None:
            W = W * mask
        f, gW, gb = _logistic_parts(Xc, W, theta[p * A :], Y, Wrow, lam, mask, dtype)
        gV = gW if to_gv is None else to_gv(gW)
        return f, np.concatenate([gV.ravel(), gb])

    V0 = W0 if to_v is None else to_v(W0)
    res = minimize(
        fun,
        np.concatenate([V0.ravel(), b0]),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": gtol, "ftol": 64 * np.finfo(float).eps, "maxls": 50},
    )
    V = res.x[: p * A].reshape(p, A)
    W = V if to_w is None else to_w(V)
    if mask is not None:
        W = W * mask
    return W, res.x[p * A :].copy(), int(res.nit)


# Newton steps need one (p+1) x (p+1) Hessian per label; above this many features that
# costs more than the L-BFGS iterations it saves (and the rows are streamed: StreamedRows)
_NEWTON_MAX_FEATURES = 96


def _grad_norm(Xc, W, b, Yf, Wrow, lam, mask, dtype) -> float:
    """The largest absolute entry of the full-data gradient (the stopping rule's figure)."""
    _, gW, gb = _logistic_parts(Xc, W, b, Yf, Wrow, lam, mask, dtype, want_loss=False)
    return max(float(np.abs(gW).max(initial=0.0)), float(np.abs(gb).max()))


def _sample_rows(n: int, subsample: int, rows: np.ndarray | None, random_state: int):
    """``(sub, sample_rows)``: the warm start's subsample (positions in 0..n-1, or None when
    n <= 2 * subsample) and the rows of ``X`` the preconditioner is estimated on (None: all)."""
    rng = np.random.default_rng(random_state)
    sub = np.sort(rng.choice(n, size=subsample, replace=False)) if n > 2 * subsample else None
    sample = (
        sub
        if sub is not None
        else (np.sort(rng.choice(n, size=subsample, replace=False)) if n > subsample else None)
    )
    if sample is not None and rows is not None:
        return sub, rows[sample]
    return sub, (rows if sample is None else sample)


def _subsample_start(Xsub, Y, observed, sub, lam, mask, W, b, *, max_iter, tol, precond):
    """Stage 1: L-BFGS on the subsample rows ``sub`` (``Xsub`` their standardised float64
    features, the full problem's penalty ``lam``). Returns ``(W, b, n_iter)``.

    The subsample optimum is only O(1/sqrt(subsample)) from the full one, so a loose
    tolerance (1e-3) here loses nothing."""
    obs_s = observed[sub]
    m_a = np.maximum(obs_s.sum(axis=0), 1).astype(np.float64)
    Ysub = np.where(obs_s, Y[sub], 0.0)
    return _lbfgs(
        Xsub, Ysub, obs_s / m_a, lam, mask, W, b,
        dtype=np.float64, max_iter=max_iter, tol=max(tol, 1e-3), precond=precond,
    )


def _finish(Xc, Yf, Wrow, lam, mask, W, b, *, dtype, max_iter, tol, precond):
    """Stage 3: preconditioned L-BFGS on all rows; if its stop rule (translated through the
    preconditioner) was too loose for ``tol``, plain L-BFGS from there.
    Returns ``(W, b, n_iter, grad_norm)``."""
    W, b, n_iter = _lbfgs(
        Xc, Yf, Wrow, lam, mask, W, b, dtype=dtype, max_iter=max_iter, tol=tol, precond=precond
    )
    grad_norm = _grad_norm(Xc, W, b, Yf, Wrow, lam, mask, dtype)
    if grad_norm > tol:  # the preconditioned stop rule was too loose: finish plainly
        W, b, it = _lbfgs(Xc, Yf, Wrow, lam, mask, W, b, dtype=dtype, max_iter=max_iter, tol=tol)
        n_iter += it
        grad_norm = _grad_norm(Xc, W, b, Yf, Wrow, lam, mask, dtype)
    return W, b, n_iter, grad_norm
