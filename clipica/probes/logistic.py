"""The binary logistic-regression solver of clipica: many L2 logistic regressions at once.

:func:`fit_logistic` fits one L2-penalised logistic regression per label column on
standardised features, all labels in one L-BFGS/Newton run (the problems are separable,
so the solution is scikit-learn's ``LogisticRegression(C=C)`` per label;
``tests/probes/test_probes.py`` checks it). Used by the attribute probes (:mod:`clipica.probes`),
the intervention attribute probes (:mod:`clipica.intervene`) and tiny-faces' evaluation;
the few-shot protocol's multinomial problems use :mod:`clipica.probes.multinomial`.
The solver's stages and blockwise passes are in :mod:`clipica.probes._logistic_solver`.
numpy/scipy only; no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipica.errors import InputError
from clipica.probes._logistic_newton import newton
from clipica.probes._logistic_solver import (
    _NEWTON_MAX_FEATURES,
    StreamedRows,
    _blocked_stats,
    _column_stats,
    _finish,
    _preconditioner,
    _row_blocks,
    _sample_rows,
    _standardised,
    _subsample_start,
)


@dataclass(frozen=True)
class LogisticFit:
    """Weights of many logistic regressions fitted jointly by :func:`fit_logistic`.

    ``coef`` (n_features, n_labels) and ``intercept`` (n_labels,) act on features
    standardised with ``mean`` and ``scale`` (the training rows' statistics).
    """

    coef: np.ndarray
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    n_iter: int
    converged: bool
    grad_norm: float

    def decision_function(self, X: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Logits of shape (n_samples, n_labels) for raw (unstandardised) features X.

        ``rows``: score ``X[rows]`` (shape (len(rows), n_labels)). Only the features some
        label uses are read, in blocks of rows, so a wide float32 matrix (or memmap) is
        never copied whole to float64.
        """
        X = X if hasattr(X, "shape") and getattr(X, "ndim", 0) == 2 else np.asarray(X)
        used = np.flatnonzero(np.any(self.coef != 0, axis=1))
        all_used = used.size == self.coef.shape[0]
        coef, mean, scale = self.coef[used], self.mean[used], self.scale[used]
        out = np.empty((X.shape[0] if rows is None else len(rows), self.coef.shape[1]))
        for a, blk in _row_blocks(X, rows):
            blk = blk if all_used else blk[:, used]
            out[a : a + blk.shape[0]] = ((blk - mean) / scale) @ coef
        out += self.intercept
        return out


def fit_logistic(
    X,
    Y,
    *,
    C: float = 1.0,
    feature_mask: np.ndarray | None = None,
    max_iter: int = 500,
    tol: float = 1e-4,
    subsample: int = 8192,
    random_state: int = 0,
    dtype=np.float32,
    rows: np.ndarray | None = None,
) -> LogisticFit:
    """Fit one L2-penalised logistic regression per label column, all at once.

    For every label ``a`` this minimises scikit-learn's objective
    ``C * sum_i logloss(y_ia, x_i . w_a + b_a) + ||w_a||^2 / 2`` (intercept not
    penalised) on features standardised with the training mean and standard deviation,
    i.e. the same solution as ``LogisticRegression(C=C).fit(standardised X, Y[:, a])``.
    Each label's objective is divided by ``C * n_a`` (scikit-learn's lbfgs scaling) and
    the problems are stacked: they share no parameters, so the joint minimiser is the
    tuple of individual minimisers, and every pass over the data serves all labels with
    two (n, p) x (p, n_labels) matrix products.

    Solver (why it is fast): (1) L-BFGS on a random subsample of ``subsample`` rows
    (with the full problem's penalty) gives a start within O(1/sqrt(subsample)) of the
    optimum; (2) Newton steps on all rows (:mod:`clipica.probes._logistic_newton`): first
    with each label's Hessian taken once on the subsample (one pass per step), and where
    those stall, label by label: the exact full-data gradient, each label's Hessian at its
    current weights estimated from 8,192 rows (half of them the rows that weigh most in it, which on a rare, nearly
    separable attribute carry almost all of it; a sampled Hessian only slows the rate,
    never moves the fixed point), and each label's own line search on its exact objective;
    a label that has converged costs nothing more; (3) if a label's line search fails, or
    when a label may use more than 96 features, L-BFGS on all rows finishes from there,
    preconditioned by the inverse square root of the features' correlation matrix
    (correlated raw embedding dimensions otherwise make it crawl). Stopping rule
    as scikit-learn's lbfgs: the largest absolute gradient entry of the scaled objective
    below ``tol`` (1e-4, scikit-learn's default).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_labels)
        0/1 labels; NaN marks a missing label (that row does not count for that label).
    C : float
        Inverse regularisation strength, as in scikit-learn.
    feature_mask : bool array of shape (n_features, n_labels), optional
        Which features each label may use (sparse probes); others stay exactly 0.
    max_iter, tol :
        Iteration limit of each L-BFGS stage; tolerance on the largest gradient entry.
    subsample : int
        Rows for the warm start and the Hessians (all rows when n <= 2 * subsample).
    dtype :
        float32 (default) or float64 for the passes over all rows. float32 halves their
        cost; rounding in the gradient stays far below ``tol`` = 1e-4 (use float64 for a
        tighter ``tol``).

    rows : int array, optional
        Fit on ``X[rows]`` (``Y`` then has ``len(rows)`` rows) without copying ``X[rows]``
        first: with a wide float32 matrix the only full-size array is the standardised
        ``dtype`` copy.

    Small problems (under 2e7 multiply-adds per pass over the data) run with one BLAS
    thread: at that size threading costs more than it saves, and on a shared CPU a
    spinning second thread can make it several times slower.
    """
    from threadpoolctl import threadpool_limits

    if feature_mask is not None:
        mask = np.asarray(feature_mask, dtype=bool)
        keep = mask.any(axis=1) if mask.ndim == 2 else None
        if keep is not None and mask.shape[0] == np.shape(X)[1] and not keep.all():
            return _fit_on_used_features(
                X, Y, mask, keep, rows, C=C, max_iter=max_iter, tol=tol, subsample=subsample,
                random_state=random_state, dtype=dtype,
            )
    shape = np.shape(X)
    width = np.shape(Y)[1] if np.ndim(Y) == 2 else 1
    n_rows = shape[0] if rows is None else len(rows)
    work = float(n_rows) * (shape[1] if len(shape) > 1 else 1) * width
    kwargs = dict(
        rows=None if rows is None else np.asarray(rows, dtype=np.int64),
        C=C,
        feature_mask=feature_mask,
        max_iter=max_iter,
        tol=tol,
        subsample=subsample,
        random_state=random_state,
        dtype=dtype,
    )
    if work < 2e7:
        with threadpool_limits(limits=1, user_api="blas"):
            return _fit_logistic_impl(X, Y, **kwargs)
    return _fit_logistic_impl(X, Y, **kwargs)



def _fit_on_used_features(X, Y, mask, keep, rows, **kwargs) -> LogisticFit:
    """:func:`fit_logistic` when some features no label may use (``~keep``): they would cost a
    full column of every matrix product, so fit on the union of the used ones and put zeros
    back (mean and scale of every feature, as a fit on all of them reports)."""
    X = np.asarray(X if rows is None else X[rows], dtype=np.float64)
    fit = fit_logistic(X[:, keep], Y, feature_mask=mask[keep], **kwargs)
    _, mean, scale = _column_stats(X)
    coef = np.zeros((X.shape[1], fit.coef.shape[1]))
    coef[keep] = fit.coef
    return LogisticFit(coef, fit.intercept, mean, scale, fit.n_iter, fit.converged, fit.grad_norm)


def _checked(X, Y, rows, C, feature_mask):
    """``(X, Y (n, A) float64, observed (n, A), n_a (A,), mask or None)``, or InputError."""
    if not (hasattr(X, "dtype") and X.dtype in (np.float32, np.float64)):
        X = np.asarray(X, dtype=np.float64)  # a float32 matrix or memmap stays as it is
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    n = X.shape[0] if rows is None else len(rows)
    if X.ndim != 2 or n != Y.shape[0]:
        raise InputError(
            f"X must be (n_samples, n_features) and Y (n_samples, n_labels); got {X.shape} and {Y.shape}"
            + ("" if rows is None else f" with {n} rows") + "."
        )
    if not C > 0:
        raise InputError(f"C must be > 0; got {C}.")
    p, A = X.shape[1], Y.shape[1]
    observed = ~np.isnan(Y)
    n_a = observed.sum(axis=0).astype(np.float64)
    if np.any(n_a == 0):
        raise InputError("every label column needs at least one observed row.")
    mask = None
    if feature_mask is not None:
        mask = np.asarray(feature_mask, dtype=bool)
        if mask.shape != (p, A):
            raise InputError(f"feature_mask must have shape {(p, A)}; got {mask.shape}.")
    return X, Y, observed, n_a, mask


def _fit_logistic_impl(
    X,
    Y,
    *,
    C: float = 1.0,
    feature_mask: np.ndarray | None = None,
    max_iter: int = 500,
    tol: float = 1e-4,
    subsample: int = 8192,
    random_state: int = 0,
    dtype=np.float32,
    rows: np.ndarray | None = None,
) -> LogisticFit:
    """:func:`fit_logistic` without the BLAS thread policy: the three stages of its docstring
    (:mod:`clipica.probes._logistic_solver`)."""
    X, Y, observed, n_a, mask = _checked(X, Y, rows, C, feature_mask)
    n = Y.shape[0]
    p, A = X.shape[1], Y.shape[1]
    # memory: a narrow problem (codes, p <= 96: Newton) gets one standardised copy in `dtype`
    # (float32 by default; at most the size of the codes themselves); a wide one (raw embedding
    # dimensions) is standardised block by block on every pass (StreamedRows): its copy would be
    # the probe's largest array. float64 only for the subsample rows below.
    mean, scale = _blocked_stats(X, rows)
    if p > _NEWTON_MAX_FEATURES:
        Xc = StreamedRows(X, rows, mean, scale, dtype)
    else:
        Xc = _standardised(X, mean, scale, dtype, rows)
    Yf = Y.astype(dtype) if observed.all() else np.where(observed, Y, 0.0).astype(dtype)
    # 1 / n_a on observed rows, 0 on missing ones; one value per label when nothing is missing
    Wrow = (1.0 / n_a if observed.all() else observed / n_a).astype(dtype)
    lam = 1.0 / (C * n_a)

    # start from each label's log-odds so no iterations are spent on the bias
    prior = np.clip(Yf.sum(axis=0, dtype=np.float64) / n_a, 1e-6, 1 - 1e-6)
    W = np.zeros((p, A))
    b = np.log(prior / (1 - prior))
    n_iter = 0
    grad_norm = np.inf
    sub, sample_rows = _sample_rows(n, subsample, rows, random_state)
    Xs_sample = _standardised(X, mean, scale, np.float64, sample_rows)
    precond = _preconditioner(Xs_sample, mask) if p > 1 else None
    if sub is not None:  # Xs_sample holds the subsample's rows
        W, b, n_iter = _subsample_start(
            Xs_sample, Y, observed, sub, lam, mask, W, b,
            max_iter=max_iter, tol=tol, precond=precond,
        )
        width = int(mask.sum(axis=0).max()) if mask is not None else p
        if width <= _NEWTON_MAX_FEATURES:
            it, grad_norm = newton(
                Xc, Yf, Wrow, lam, mask, W, b, Xs_sample, observed[sub], dtype=dtype, tol=tol,
                random_state=random_state,
            )
            n_iter += it
    if grad_norm > tol:
        W, b, it, grad_norm = _finish(
            Xc, Yf, Wrow, lam, mask, W, b, dtype=dtype, max_iter=max_iter, tol=tol, precond=precond
        )
        n_iter += it
    return LogisticFit(
        coef=W,
        intercept=b,
        mean=mean,
        scale=scale,
        n_iter=n_iter,
        converged=grad_norm <= tol,
        grad_norm=grad_norm,
    )


def _label_objective(Z, y, lam, w, c) -> tuple[float, np.ndarray]:
    """One label's scaled objective ``mean logloss + lam |w|^2 / 2`` and its logits."""
    z = Z @ w + c
    return float(np.sum(np.logaddexp(0.0, z) - y * z)) / y.size + 0.5 * lam * float(w @ w), z


def fit_logistic_supports(
    X,
    Y,
    supports: np.ndarray,
    *,
    C: float = 1.0,
    tol: float = 1e-4,
    max_iter: int = 50,
    init: LogisticFit | None = None,
) -> LogisticFit:
    """Fit one L2 logistic regression per label on that label's own few features, by Newton.

    The sparse probes' solver: label ``a`` may use only the features ``supports[a]``, so
    its problem is a dense ``(n, k + 1)`` one and exact Newton steps solve it in a few
    passes of ``n k^2`` work, with no fixed per-fit cost beyond that. Same objective and
    stopping rule as :func:`fit_logistic` (scikit-learn's ``LogisticRegression(C=C)`` on
    features standardised with these rows' mean and standard deviation, each label's
    objective divided by ``C * n_a``; stop when the largest gradient entry is below
    ``tol``), solved past it: Newton converges quadratically, so the last step usually
    lands orders of magnitude below ``tol``.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_labels)
        0/1 labels; NaN marks a missing label.
    supports : int array of shape (n_labels, k)
        The feature indices each label may use (k the same for every label).
    init : LogisticFit, optional
        A fit on the same rows to start from (e.g. the previous, smaller k of a sparse
        curve whose supports are nested in these: its weights are already close).

    Returns
    -------
    LogisticFit
        ``coef`` (n_features, n_labels), zero outside each label's support.
    """
    from threadpoolctl import threadpool_limits

    # every product here is small (n x k, k <= ~64): a second BLAS thread costs more than it
    # saves, and on a shared CPU it spins -- 22x slower measured (20,000 rows, k = 32, 40 labels:
    # 40 s with two threads, 1.8 s with one, load average 4)
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_supports(X, Y, supports, C=C, tol=tol, max_iter=max_iter, init=init)


def _fit_supports(X, Y, supports, *, C, tol, max_iter, init) -> LogisticFit:
    """:func:`fit_logistic_supports` without the BLAS thread policy."""
    from scipy.linalg import LinAlgError, cho_factor, cho_solve
    from scipy.special import expit

    X = np.asarray(X)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    supports = np.asarray(supports, dtype=np.int64)
    n, p = X.shape
    A = Y.shape[1]
    if Y.shape[0] != n or supports.ndim != 2 or supports.shape[0] != A:
        raise InputError(
            f"X (n, p), Y (n, n_labels) and supports (n_labels, k) must agree; got {X.shape}, "
            f"{Y.shape} and {supports.shape}."
        )
    if supports.size and (supports.min() < 0 or supports.max() >= p):
        raise InputError(f"supports must index features in [0, {p}).")
    if not C > 0:
        raise InputError(f"C must be > 0; got {C}.")
    used = np.unique(supports)
    # statistics of the used columns only, 16 at a time in float64; each label then standardises
    # its own k columns: a standardised float64 copy of every used column (512 raw dimensions of
    # the curve rows) was the probe stage's largest fixed-size array
    mean = np.zeros(p)
    scale = np.ones(p)
    for c0 in range(0, used.size, 16):
        cols = used[c0 : c0 + 16]
        _, mean[cols], scale[cols] = _column_stats(np.asarray(X[:, cols], dtype=np.float64))
    if init is not None:
        # the previous fit was standardised on the same rows: its weights carry over
        W0, b0 = init.coef, init.intercept
    W = np.zeros((p, A))
    b = np.zeros(A)
    n_iter, worst, converged = 0, 0.0, True
    for a in range(A):
        obs = ~np.isnan(Y[:, a])
        y = Y[obs, a] if not obs.all() else Y[:, a]
        cols = supports[a]
        Z = np.array(X[:, cols] if obs.all() else X[np.ix_(obs, cols)], dtype=np.float64)
        Z -= mean[cols]
        Z /= scale[cols]
        m = y.size
        if m == 0 or y.min() == y.max():
            raise InputError(f"label column {a} needs both classes among its observed rows.")
        lam = 1.0 / (C * m)
        k = Z.shape[1]
        if init is not None:
            w = W0[supports[a], a].copy()
            c = float(b0[a])
        else:
            w = np.zeros(k)
            prior = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
            c = float(np.log(prior / (1 - prior)))

        f, z = _label_objective(Z, y, lam, w, c)
        g_norm = np.inf
        for _ in range(max_iter):
            P = expit(z)
            r = (P - y) / m
            gw = Z.T @ r + lam * w
            gc = float(r.sum())
            g_norm = max(float(np.abs(gw).max(initial=0.0)), abs(gc))
            if g_norm <= 1e-3 * tol:
                break
            s = P * (1.0 - P) / m
            H = np.empty((k + 1, k + 1))
            H[:k, :k] = (Z * s[:, None]).T @ Z
            H[:k, :k][np.diag_indices(k)] += lam
            H[:k, k] = H[k, :k] = Z.T @ s
            H[k, k] = s.sum()
            g = np.append(gw, gc)
            try:
                step = cho_solve(cho_factor(H), g)
            except LinAlgError:
                step = g / max(float(np.trace(H)), 1e-12)
            # backtracking (Armijo): a first step from far away can overshoot
            t, slope = 1.0, float(g @ step)
            while True:
                w_new, c_new = w - t * step[:k], c - t * step[k]
                f_new, z_new = _label_objective(Z, y, lam, w_new, c_new)
                if f_new <= f - 1e-4 * t * slope or t < 1e-8:
                    break
                t *= 0.5
            n_iter += 1
            if f - f_new <= 1e-15 * max(abs(f), 1.0) and t < 1e-8:
                break  # no progress possible at float64 precision
            w, c, f, z = w_new, c_new, f_new, z_new
        converged &= g_norm <= tol
        worst = max(worst, g_norm)
        W[supports[a], a] = w
        b[a] = c
    return LogisticFit(W, b, mean, scale, n_iter, bool(converged), float(worst))
