"""The binary logistic-regression solver of clipica: many L2 logistic regressions at once.

:func:`fit_logistic` fits one L2-penalised logistic regression per label column on
standardised features, all labels in one L-BFGS/Newton run (the problems are separable,
so the solution is scikit-learn's ``LogisticRegression(C=C)`` per label;
``tests/probes/test_probes.py`` checks it). Used by the attribute probes (:mod:`clipica.probes`),
the intervention attribute probes (:mod:`clipica.intervene`) and tiny-faces' evaluation;
the few-shot protocol's multinomial problems use :mod:`clipica.probes.multinomial`.
numpy/scipy only; no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipica.errors import InputError

#: float64 values per row block of the blockwise passes (4 MiB): a wide matrix's blocks and
#: their temporaries stay small beside the arrays the probe keeps
_BLOCK_VALUES = 1 << 19


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


def _stacked_hessians(X: np.ndarray, S: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """``H[a] = [X 1]^T diag(S[:, a]) [X 1]`` for every label a, as one matrix product.

    X (m, p), S (m, A) -> (A, p + 1, p + 1). The row-wise outer products of ``[X 1]`` are
    formed in chunks of rows so memory stays at ``chunk * (p + 1)^2`` floats.
    """
    m, p = X.shape
    q = p + 1
    # float32 products: the Hessian only preconditions Newton steps (the fixed point is
    # set by the exact gradient), and float32 halves the cost of this one big product
    X1 = np.hstack([X, np.ones((m, 1))]).astype(np.float32)
    S32 = S.astype(np.float32)
    H = np.zeros((S.shape[1], q * q))
    for start in range(0, m, chunk):
        blk = X1[start : start + chunk]
        outer = (blk[:, :, None] * blk[:, None, :]).reshape(blk.shape[0], q * q)
        H += S32[start : start + chunk].T @ outer
    H = H.reshape(S.shape[1], q, q)
    return 0.5 * (H + H.transpose(0, 2, 1))


# Newton steps need one (p+1) x (p+1) Hessian per label; above this many features that
# costs more than the L-BFGS iterations it saves
_NEWTON_MAX_FEATURES = 96


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
    optimum; (2) Newton steps on all rows, each using the exact full-data gradient and
    the per-label Hessian evaluated on the subsample rows, converge in a few passes
    over the data (the subsampled Hessian only slows the rate, never moves the fixed
    point); (3) if the largest gradient entry is not below ``tol`` after a few steps, or
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
            # features no label may use cost a full column of every matrix product:
            # fit on the union of the used ones and put zeros back
            X = np.asarray(X if rows is None else X[rows], dtype=np.float64)
            fit = fit_logistic(
                X[:, keep],
                Y,
                C=C,
                feature_mask=mask[keep],
                max_iter=max_iter,
                tol=tol,
                subsample=subsample,
                random_state=random_state,
                dtype=dtype,
            )
            _, mean, scale = _column_stats(X)
            coef = np.zeros((X.shape[1], fit.coef.shape[1]))
            coef[keep] = fit.coef
            return LogisticFit(
                coef, fit.intercept, mean, scale, fit.n_iter, fit.converged, fit.grad_norm
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
    """:func:`fit_logistic` without the BLAS thread policy."""
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
    p = X.shape[1]
    A = Y.shape[1]
    observed = ~np.isnan(Y)
    n_a = observed.sum(axis=0).astype(np.float64)
    if np.any(n_a == 0):
        raise InputError("every label column needs at least one observed row.")
    mask = None
    if feature_mask is not None:
        mask = np.asarray(feature_mask, dtype=bool)
        if mask.shape != (p, A):
            raise InputError(f"feature_mask must have shape {(p, A)}; got {mask.shape}.")
    # memory: one standardised copy in `dtype` (float32 by default), float64 only for the
    # subsample rows below -- a 512-wide float32 input is never copied whole to float64
    mean, scale = _blocked_stats(X, rows)
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
    rng = np.random.default_rng(random_state)
    sub = np.sort(rng.choice(n, size=subsample, replace=False)) if n > 2 * subsample else None

    grad_norm = np.inf
    sample = (
        sub
        if sub is not None
        else (np.sort(rng.choice(n, size=subsample, replace=False)) if n > subsample else None)
    )
    if sample is not None and rows is not None:
        sample_rows = rows[sample]
    else:
        sample_rows = rows if sample is None else sample
    Xs_sample = _standardised(X, mean, scale, np.float64, sample_rows)
    precond = _preconditioner(Xs_sample, mask) if p > 1 else None
    if sub is not None:
        obs_s = observed[sub]
        m_a = np.maximum(obs_s.sum(axis=0), 1).astype(np.float64)
        Xsub = Xs_sample  # sample is sub here
        Ysub = np.where(obs_s, Y[sub], 0.0)
        # the subsample optimum is only O(1/sqrt(subsample)) from the full one, so a
        # loose tolerance here loses nothing
        W, b, it = _lbfgs(
            Xsub,
            Ysub,
            obs_s / m_a,
            lam,
            mask,
            W,
            b,
            dtype=np.float64,
            max_iter=max_iter,
            tol=max(tol, 1e-3),
            precond=precond,
        )
        n_iter += it
        width = int(mask.sum(axis=0).max()) if mask is not None else p
        if width <= _NEWTON_MAX_FEATURES:
            from scipy.linalg import cho_factor, cho_solve
            from scipy.special import expit

            Ps = expit(Xsub @ W + b)
            S = Ps * (1.0 - Ps) * obs_s / m_a
            if mask is None:
                H = _stacked_hessians(Xsub, S)  # (A, p + 1, p + 1), last row/col: intercept
            factors = []
            for a in range(A):
                if mask is None:
                    cols, Ha = None, H[a]
                else:  # only this label's support: (k + 1) x (k + 1)
                    cols = np.append(np.flatnonzero(mask[:, a]), p)
                    Xa = np.hstack([Xsub[:, cols[:-1]], np.ones((Xsub.shape[0], 1))])
                    Ha = (Xa * S[:, a : a + 1]).T @ Xa
                Ha[np.arange(Ha.shape[0] - 1), np.arange(Ha.shape[0] - 1)] += lam[a]
                # a tiny ridge keeps a (nearly) separable subsample label factorisable
                Ha += 1e-8 * max(float(np.trace(Ha)) / Ha.shape[0], 1e-12) * np.eye(Ha.shape[0])
                try:
                    factors.append((cols, cho_factor(Ha)))
                except np.linalg.LinAlgError:
                    factors = None  # fall back to L-BFGS on all rows
                    break
            last = np.inf
            for _ in range(10 if factors else 0):
                _, gW, gb = _logistic_parts(
                    Xc, W, b, Yf, Wrow, lam, mask, dtype, want_loss=False
                )
                n_iter += 1
                grad_norm = max(float(np.abs(gW).max(initial=0.0)), float(np.abs(gb).max()))
                if grad_norm <= tol or grad_norm > 0.7 * last:
                    break  # converged, or not contracting: L-BFGS below finishes
                last = grad_norm
                for a, (cols, cf) in enumerate(factors):
                    if cols is None:
                        step = cho_solve(cf, np.append(gW[:, a], gb[a]))
                        W[:, a] -= step[:-1]
                    else:
                        step = cho_solve(cf, np.append(gW[cols[:-1], a], gb[a]))
                        W[cols[:-1], a] -= step[:-1]
                    b[a] -= step[-1]
    if grad_norm > tol:
        W, b, it = _lbfgs(
            Xc, Yf, Wrow, lam, mask, W, b, dtype=dtype, max_iter=max_iter, tol=tol, precond=precond
        )
        n_iter += it
        _, gW, gb = _logistic_parts(Xc, W, b, Yf, Wrow, lam, mask, dtype, want_loss=False)
        grad_norm = max(float(np.abs(gW).max(initial=0.0)), float(np.abs(gb).max()))
        if grad_norm > tol:  # the preconditioned stop rule was too loose: finish plainly
            W, b, it = _lbfgs(
                Xc, Yf, Wrow, lam, mask, W, b, dtype=dtype, max_iter=max_iter, tol=tol
            )
            n_iter += it
            _, gW, gb = _logistic_parts(Xc, W, b, Yf, Wrow, lam, mask, dtype, want_loss=False)
            grad_norm = max(float(np.abs(gW).max(initial=0.0)), float(np.abs(gb).max()))
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
    # statistics of the used columns only (a wide raw matrix is read once, in float64)
    Xu = np.asarray(X[:, used], dtype=np.float64)
    _, mean_u, scale_u = _column_stats(Xu)
    Xu = (Xu - mean_u) / scale_u
    col = np.full(p, -1, dtype=np.int64)
    col[used] = np.arange(used.size)
    mean = np.zeros(p)
    scale = np.ones(p)
    mean[used], scale[used] = mean_u, scale_u
    if init is not None:
        # the previous fit was standardised on the same rows: its weights carry over
        W0, b0 = init.coef, init.intercept
    W = np.zeros((p, A))
    b = np.zeros(A)
    n_iter, worst, converged = 0, 0.0, True
    for a in range(A):
        obs = ~np.isnan(Y[:, a])
        y = Y[obs, a] if not obs.all() else Y[:, a]
        Z = Xu[np.ix_(obs, col[supports[a]])] if not obs.all() else Xu[:, col[supports[a]]]
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
