"""Attribute probes: which component carries which attribute, how well, how exclusively.

:func:`probe` scores every component of a code matrix (ICA sources, say) against
every label column and compares with baselines computed on exactly the same rows:

- binary 0/1 attributes: single-component ROC AUC for every component x attribute
  (signed: AUC < 0.5 means the attribute sits at the component's negative pole),
  computed in closed form from ranks for all pairs at once; per attribute the best
  component, its AUC and the runner-up's (the gap says how exclusive it is);
- continuous factors (``latent_*`` or any non-binary numeric column): Spearman
  correlation of every component with every factor;
- a sparse-probe curve: held-out AUC of a logistic probe on the best 1, 2, 4, 8, ...
  components (chosen by training-row AUC), ending with the full linear probe
  (held-out AUC and balanced accuracy);
- baselines (raw embedding dimensions, PCA with the same K, a random rotation of the
  whitened data: see :func:`baseline_codes`) get the same report.

The logistic probes are fitted for all attributes at once (:func:`fit_logistic`):
one L-BFGS run over the stacked weights of every attribute on standardised
features, so each pass over the data is a matrix-matrix product instead of one
matrix-vector product per attribute. The problems are separable, so the solution
is that of scikit-learn's ``LogisticRegression(C=C)`` fitted per attribute
(``tests/test_probes.py`` checks |delta AUC| <= 0.005; ``clipica bench probe``
measures speed and agreement). numpy/scipy only; no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clipica.errors import InputError

RESERVED_COLUMNS = ("id", "source_index", "caption", "split", "path", "image", "text")
_TRAIN_NAMES = ("train",)
_TEST_NAMES = ("test",)
_VAL_NAMES = ("val", "valid", "validation")


# ------------------------------------------------------------------ closed-form rank statistics


def auc_matrix(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC AUC of every score column for every binary label column, from ranks.

    Parameters
    ----------
    scores : ndarray of shape (n_samples, n_scores)
    labels : ndarray of shape (n_samples, n_labels)
        0/1 values; NaN marks a missing label (that row is left out for that label only).

    Returns
    -------
    ndarray of shape (n_scores, n_labels)
        ``AUC = (sum of positive ranks - n1 (n1 + 1) / 2) / (n1 n0)`` with average ranks
        for ties (the Mann-Whitney U statistic), identical to
        ``sklearn.metrics.roc_auc_score``. NaN where a label has only one class.
    """
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim == 1:
        labels = labels[:, None]
    out = np.full((scores.shape[1], labels.shape[1]), np.nan)
    missing = np.isnan(labels)
    complete = ~missing.any(axis=0)
    groups: list[tuple[np.ndarray, np.ndarray]] = []
    if complete.any():
        groups.append((np.flatnonzero(complete), np.ones(labels.shape[0], dtype=bool)))
    for a in np.flatnonzero(~complete):
        groups.append((np.array([a]), ~missing[:, a]))
    for cols, rows in groups:
        ranks = rankdata(scores[rows], axis=0, method="average")
        y = labels[np.ix_(rows, cols)]
        n1 = y.sum(axis=0)
        n0 = y.shape[0] - n1
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = (ranks.T @ y - n1 * (n1 + 1) / 2.0) / (n1 * n0)
        auc[:, (n1 == 0) | (n0 == 0)] = np.nan
        out[:, cols] = auc
    return out


def auc_columns(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC AUC of score column ``a`` for label column ``a`` (paired columns), shape (n_labels,)."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    out = np.full(labels.shape[1], np.nan)
    missing = np.isnan(labels)
    complete = np.flatnonzero(~missing.any(axis=0))
    if complete.size:
        ranks = rankdata(scores[:, complete], axis=0, method="average")
        y = labels[:, complete]
        n1 = y.sum(axis=0)
        n0 = y.shape[0] - n1
        with np.errstate(divide="ignore", invalid="ignore"):
            out[complete] = ((ranks * y).sum(axis=0) - n1 * (n1 + 1) / 2.0) / (n1 * n0)
    for a in np.flatnonzero(missing.any(axis=0)):
        out[a] = auc_matrix(scores[:, [a]], labels[:, [a]])[0, 0]
    return out


def spearman_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Spearman correlation (Pearson on average ranks) of every code with every factor.

    ``codes`` (n, K) and ``factors`` (n, F) without missing values; returns (K, F).
    """
    from scipy.stats import rankdata

    from clipica.metrics._common import column_correlation

    return column_correlation(
        rankdata(codes, axis=0, method="average"), rankdata(factors, axis=0, method="average")
    )


# ------------------------------------------------------------------ batched logistic regression


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

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Logits of shape (n_samples, n_labels) for raw (unstandardised) features X."""
        Xs = (np.asarray(X, dtype=np.float64) - self.mean) / self.scale
        return Xs @ self.coef + self.intercept


def _column_stats(X: np.ndarray) -> tuple[None, np.ndarray, np.ndarray]:
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    # a constant column stays 0 after centring instead of dividing by 0
    scale = np.where(scale > 1e-12 * max(1.0, float(np.abs(mean).max(initial=0.0))), scale, 1.0)
    return None, mean, scale


def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _, mean, scale = _column_stats(X)
    return (X - mean) / scale, mean, scale


def _logistic_parts(Xc, W, b, Y, Wrow, lam, mask, dtype, want_loss=True):
    """Objective, gradient and probabilities of the stacked, per-label-scaled problem."""
    from scipy.special import expit

    Z = Xc @ W.astype(dtype, copy=False) + b.astype(dtype, copy=False)
    P = expit(Z)
    f = float("nan")
    if want_loss:
        # logloss(y, z) = log(1 + e^z) - y z, accumulated in float64
        loss = np.logaddexp(0.0, Z) - Y * Z
        f = float(np.sum(loss * Wrow, dtype=np.float64)) + 0.5 * float(
            np.sum(lam * (W * W).sum(axis=0))
        )
    R = (P - Y) * Wrow
    gW = (Xc.T @ R).astype(np.float64) + lam * W
    if mask is not None:
        gW *= mask
    gb = R.sum(axis=0, dtype=np.float64)
    return f, gW, gb, P


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
        f, gW, gb, _ = _logistic_parts(Xc, W, theta[p * A :], Y, Wrow, lam, mask, dtype)
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
            X = np.asarray(X, dtype=np.float64)
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
    work = float(shape[0]) * (shape[1] if len(shape) > 1 else 1) * width
    kwargs = dict(
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
) -> LogisticFit:
    """:func:`fit_logistic` without the BLAS thread policy."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise InputError(
            f"X must be (n_samples, n_features) and Y (n_samples, n_labels); got {X.shape} and {Y.shape}."
        )
    if not C > 0:
        raise InputError(f"C must be > 0; got {C}.")
    n, p = X.shape
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
    Xs, mean, scale = _standardise(X)
    Xc = np.ascontiguousarray(Xs, dtype=dtype)
    Yf = np.where(observed, Y, 0.0).astype(dtype)
    Wrow = (observed / n_a).astype(dtype)  # 1 / n_a on observed rows, 0 on missing ones
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
    precond = _preconditioner(Xs if sample is None else Xs[sample], mask) if p > 1 else None
    if sub is not None:
        obs_s = observed[sub]
        m_a = np.maximum(obs_s.sum(axis=0), 1).astype(np.float64)
        Xsub = np.ascontiguousarray(Xs[sub])
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
                _, gW, gb, _ = _logistic_parts(
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
        _, gW, gb, _ = _logistic_parts(Xc, W, b, Yf, Wrow, lam, mask, dtype, want_loss=False)
        grad_norm = max(float(np.abs(gW).max(initial=0.0)), float(np.abs(gb).max()))
        if grad_norm > tol:  # the preconditioned stop rule was too loose: finish plainly
            W, b, it = _lbfgs(
                Xc, Yf, Wrow, lam, mask, W, b, dtype=dtype, max_iter=max_iter, tol=tol
            )
            n_iter += it
            _, gW, gb, _ = _logistic_parts(Xc, W, b, Yf, Wrow, lam, mask, dtype, want_loss=False)
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


def balanced_accuracy_columns(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Balanced accuracy of ``logits > 0`` per column (NaN labels skipped), shape (n_labels,)."""
    pred = logits > 0
    obs = ~np.isnan(labels)
    pos = obs & (labels == 1)
    neg = obs & (labels == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = (pred & pos).sum(axis=0) / pos.sum(axis=0)
        tnr = (~pred & neg).sum(axis=0) / neg.sum(axis=0)
    return 0.5 * (tpr + tnr)


# ------------------------------------------------------------------ baselines


def baseline_codes(
    X,
    n_components: int,
    *,
    whitening: np.ndarray | None = None,
    mean: np.ndarray | None = None,
    random_state: int = 0,
    include_raw: bool = True,
) -> dict[str, np.ndarray]:
    """Codes to compare a decomposition against, for the same rows, from :mod:`clipica.decompositions`.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        The data the decomposition was fitted on (e.g. the image embeddings), in the
        same dtype: the baselines are fitted on it exactly as ICA is.
    n_components : int
        K, the number of components of the decomposition being compared.
    whitening, mean : optional
        A whitening (K, n_features) and mean (n_features,) to rotate instead of fitting
        :class:`~clipica.decompositions.RandomRotation`'s own (kept for older callers;
        fitted on the same X it is the same whitening as ICA's).

    Returns
    -------
    dict
        ``"raw"``: :class:`~clipica.decompositions.Identity` codes (every embedding
        dimension, centred); ``"pca"``: :class:`~clipica.decompositions.PCA` codes (top-K
        principal axes, unit variance); ``"random_rotation"``:
        :class:`~clipica.decompositions.RandomRotation` codes -- the whitened top-K
        subspace times a seeded uniformly random K x K rotation: same subspace and
        variance as the ICA, no independence objective. All (n_samples, ·) float64.
    """
    from clipica.decompositions import PCA, Identity, RandomRotation
    from clipica.decompositions.baselines import random_rotation

    if not hasattr(X, "dtype") or X.dtype not in (np.float32, np.float64):
        X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    if not 1 <= n_components <= d:
        raise InputError(f"n_components must be in [1, {d}]; got n_components={n_components}.")
    X64 = np.asarray(X, dtype=np.float64)
    pca = PCA(n_components).fit(X64).transform(X64)
    if whitening is not None:
        whitening = np.asarray(whitening, dtype=np.float64)
        if whitening.shape != (n_components, d):
            raise InputError(
                f"whitening must have shape ({n_components}, {d}); got {whitening.shape}."
            )
        m = X64.mean(axis=0) if mean is None else np.asarray(mean, dtype=np.float64)
        rotated = (X64 - m) @ whitening.T @ random_rotation(n_components, random_state)
    else:
        rotated = RandomRotation(n_components, random_state=random_state).fit(X).transform(X64)
    out = {"pca": pca, "random_rotation": rotated}
    if include_raw:
        out = {"raw": Identity().fit(X64).transform(X64), **out}
    return out


# ------------------------------------------------------------------ the report


@dataclass
class CodeReport:
    """Probe results for one code matrix (ICA or a baseline).

    Arrays are indexed by component (K) and binary attribute (A) or continuous factor (F).
    AUCs called ``best``/``runner_up`` are folded, ``max(AUC, 1 - AUC)``; ``pole`` says
    which end of the component carries the attribute (+1: high values, -1: low values).
    """

    name: str
    n_components: int
    auc: np.ndarray  # (K, A) signed single-component AUC on all labelled rows
    best_component: np.ndarray  # (A,)
    best_auc: np.ndarray  # (A,) folded
    pole: np.ndarray  # (A,) +1 / -1
    runner_up_component: np.ndarray  # (A,)
    runner_up_auc: np.ndarray  # (A,) folded
    sparse_k: list[int]
    sparse_auc: np.ndarray  # (len(sparse_k), A) held-out
    linear_probe_auc: np.ndarray  # (A,) held-out, all components
    linear_probe_balanced_accuracy: np.ndarray  # (A,)
    spearman: np.ndarray  # (K, F)
    factor_best_component: np.ndarray  # (F,)
    factor_best_spearman: np.ndarray  # (F,) signed
    factor_runner_up_abs_spearman: np.ndarray  # (F,)
    converged: bool = True


@dataclass
class ProbeReport:
    """Everything :func:`probe` computed; ``codes["ica"]`` (or the first name) is the main one.

    Use :meth:`table` for a per-attribute DataFrame, :meth:`to_dict` / :meth:`to_json`
    for the ``probe.json`` layout and :meth:`plot_heatmap` for the figure.
    """

    attributes: list[str]
    factors: list[str]
    codes: dict[str, CodeReport]
    n_positive: np.ndarray  # (A,) positives among labelled rows
    n_rows: int
    n_train: int
    n_test: int
    split_source: str
    C: float
    main: str = "ica"
    metrics: dict[str, Any] = field(default_factory=dict)

    # -------------------------------------------------------------- tables

    def table(self, codes: str | None = None) -> Any:
        """One row per binary attribute: best component, AUCs, linear probe, baselines' best AUC.

        Returns a pandas DataFrame indexed by attribute name.
        """
        import pandas as pd

        name = codes or self.main
        r = self.codes[name]
        data = {
            "best_component": r.best_component,
            "pole": np.where(r.pole > 0, "+", "-"),
            "best_auc": r.best_auc,
            "runner_up_component": r.runner_up_component,
            "runner_up_auc": r.runner_up_auc,
            "gap": r.best_auc - r.runner_up_auc,
            "linear_probe_auc": r.linear_probe_auc,
            "linear_probe_balanced_accuracy": r.linear_probe_balanced_accuracy,
            "n_positive": self.n_positive,
        }
        for other, rep in self.codes.items():
            if other != name:
                data[f"{other}_best_auc"] = rep.best_auc
                data[f"{other}_linear_probe_auc"] = rep.linear_probe_auc
        return pd.DataFrame(data, index=pd.Index(self.attributes, name="attribute"))

    def factor_table(self, codes: str | None = None) -> Any:
        """One row per continuous factor: best component by |Spearman|, its rho, runner-up |rho|."""
        import pandas as pd

        name = codes or self.main
        r = self.codes[name]
        data = {
            "best_component": r.factor_best_component,
            "spearman": r.factor_best_spearman,
            "runner_up_abs_spearman": r.factor_runner_up_abs_spearman,
        }
        for other, rep in self.codes.items():
            if other != name:
                data[f"{other}_abs_spearman"] = np.abs(rep.factor_best_spearman)
        return pd.DataFrame(data, index=pd.Index(self.factors, name="factor"))

    def matrix(self, codes: str | None = None) -> Any:
        """Signed single-component AUC, DataFrame (components x attributes)."""
        import pandas as pd

        r = self.codes[codes or self.main]
        return pd.DataFrame(
            r.auc, index=pd.Index(range(r.n_components), name="component"), columns=self.attributes
        )

    def sparse_curve(self) -> Any:
        """Long DataFrame: codes, attribute, k, held-out AUC of the best-k-component probe."""
        import pandas as pd

        rows = []
        for name, r in self.codes.items():
            for i, k in enumerate(r.sparse_k):
                for j, a in enumerate(self.attributes):
                    rows.append((name, a, k, r.sparse_auc[i, j]))
        return pd.DataFrame(rows, columns=["codes", "attribute", "k", "auc"])

    def summary(self) -> dict[str, dict[str, float]]:
        """Means over attributes (and factors) for every code set."""
        out = {}
        for name, r in self.codes.items():
            s = {
                "n_components": int(r.n_components),
                "mean_best_auc": _nanmean(r.best_auc),
                "mean_runner_up_auc": _nanmean(r.runner_up_auc),
                "mean_gap": _nanmean(r.best_auc - r.runner_up_auc),
                "mean_linear_probe_auc": _nanmean(r.linear_probe_auc),
                "mean_linear_probe_balanced_accuracy": _nanmean(r.linear_probe_balanced_accuracy),
            }
            for i, k in enumerate(r.sparse_k):
                s[f"mean_sparse_auc_k{k}"] = _nanmean(r.sparse_auc[i])
            if self.factors:
                s["mean_factor_abs_spearman"] = _nanmean(np.abs(r.factor_best_spearman))
            out[name] = s
        return out

    # -------------------------------------------------------------- serialisation

    def to_dict(self) -> dict[str, Any]:
        """The ``probe.json`` layout.

        ``attributes[name]`` has ``best_component``, ``best_auc`` (folded, >= 0.5), ``pole``,
        ``best_auc_signed``, ``runner_up_component``, ``runner_up_auc``, ``linear_probe_auc``,
        ``linear_probe_balanced_accuracy``, ``sparse_auc`` ({k: auc}), ``n_positive`` and,
        for every other code set (``pca``, ``raw``, ``random_rotation``), a dict with its
        ``best_component``, ``best_auc``, ``runner_up_auc`` and ``linear_probe_auc``.
        ``factors[name]`` likewise with Spearman. ``summary`` has the means, ``codes`` the
        full signed AUC matrices, ``split`` the rows used, plus any ``metrics``
        (``mcc``, ``dci``, ...) that were attached.
        """
        main = self.codes[self.main]
        attrs: dict[str, Any] = {}
        for j, a in enumerate(self.attributes):
            entry = _attr_entry(main, j)
            entry["n_positive"] = int(self.n_positive[j])
            for name, r in self.codes.items():
                if name != self.main:
                    e = _attr_entry(r, j)
                    entry[name] = {
                        k: e[k]
                        for k in (
                            "best_component",
                            "best_auc",
                            "pole",
                            "runner_up_auc",
                            "linear_probe_auc",
                        )
                    }
            attrs[a] = entry
        facs: dict[str, Any] = {}
        for j, fname in enumerate(self.factors):
            entry = _factor_entry(main, j)
            for name, r in self.codes.items():
                if name != self.main:
                    entry[name] = _factor_entry(r, j)
            facs[fname] = entry
        out: dict[str, Any] = {
            "main": self.main,
            "attributes": attrs,
            "factors": facs,
            "summary": self.summary(),
            "split": {
                "source": self.split_source,
                "n_rows": self.n_rows,
                "n_train": self.n_train,
                "n_test": self.n_test,
            },
            "probe": {"model": "logistic regression, L2", "C": self.C, "features": "standardised"},
            "codes": {
                name: {
                    "n_components": r.n_components,
                    "converged": r.converged,
                    "sparse_k": r.sparse_k,
                    "auc_matrix": r.auc.tolist(),
                    "spearman_matrix": r.spearman.tolist(),
                }
                for name, r in self.codes.items()
            },
        }
        out.update(self.metrics)
        from clipica._atomic import _nan_to_none

        return _nan_to_none(out)

    def to_json(self, path=None) -> str:
        """JSON text of :meth:`to_dict` (NaN written as null); also written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            from clipica._atomic import atomic_write_text

            atomic_write_text(path, text)
        return text

    def plot_heatmap(self, codes: str | None = None, **kwargs) -> Any:
        """Attributes x components heatmap, see :func:`clipica.viz.probe.plot_probe_heatmap`."""
        from clipica.viz.probe import plot_probe_heatmap

        return plot_probe_heatmap(self, codes=codes, **kwargs)


def _nanmean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmean(x)) if x.size and np.any(~np.isnan(x)) else float("nan")


def _attr_entry(r: CodeReport, j: int) -> dict[str, Any]:
    signed = r.auc[r.best_component[j], j] if r.best_component[j] >= 0 else float("nan")
    return {
        "best_component": int(r.best_component[j]),
        "best_auc": float(r.best_auc[j]),
        "pole": "+" if r.pole[j] > 0 else "-",
        "best_auc_signed": float(signed),
        "runner_up_component": int(r.runner_up_component[j]),
        "runner_up_auc": float(r.runner_up_auc[j]),
        "linear_probe_auc": float(r.linear_probe_auc[j]),
        "linear_probe_balanced_accuracy": float(r.linear_probe_balanced_accuracy[j]),
        "sparse_auc": {str(k): float(r.sparse_auc[i, j]) for i, k in enumerate(r.sparse_k)},
    }


def _factor_entry(r: CodeReport, j: int) -> dict[str, Any]:
    return {
        "best_component": int(r.factor_best_component[j]),
        "spearman": float(r.factor_best_spearman[j]),
        "abs_spearman": float(abs(r.factor_best_spearman[j])),
        "runner_up_abs_spearman": float(r.factor_runner_up_abs_spearman[j]),
    }


# ------------------------------------------------------------------ label and split handling


def _label_frame(labels, n: int):
    import pandas as pd

    if isinstance(labels, pd.DataFrame):
        df = labels.reset_index(drop=True)
    elif isinstance(labels, dict):
        df = pd.DataFrame(labels)
    else:
        raise InputError(
            f"labels must be a pandas DataFrame (or a dict of columns); got {type(labels).__name__}."
        )
    if len(df) != n:
        raise InputError(
            f"labels has {len(df)} rows but codes has {n}; they must be row-aligned "
            "(samples first, same order)."
        )
    return df


def _classify_columns(df, attributes, factors) -> tuple[list[str], list[str]]:
    import pandas as pd

    def numeric(col: str) -> bool:
        return pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_bool_dtype(df[col])

    def binary(col: str) -> bool:
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        v = v[~np.isnan(v)]
        return v.size > 0 and bool(np.all((v == 0) | (v == 1)))

    if attributes is None and factors is None:
        cols = [c for c in df.columns if c not in RESERVED_COLUMNS and numeric(c)]
        attributes = [c for c in cols if binary(c) and not str(c).startswith("latent_")]
        factors = [c for c in cols if c not in attributes]
    else:
        attributes = list(attributes or [])
        factors = list(factors or [])
    for col in [*attributes, *factors]:
        if col not in df.columns:
            raise InputError(
                f"label column {col!r} not found; available: {', '.join(map(str, df.columns))}."
            )
        if not numeric(col):
            raise InputError(f"label column {col!r} is not numeric (dtype {df[col].dtype}).")
    for col in attributes:
        if not binary(col):
            raise InputError(
                f"attribute {col!r} must hold 0/1 values (NaN for missing); pass it as a factor "
                "for a Spearman score instead."
            )
    if not attributes and not factors:
        raise InputError(
            "no label columns to probe: expected 0/1 attribute columns or numeric latent_* columns "
            f"besides {', '.join(RESERVED_COLUMNS)}; got columns {', '.join(map(str, df.columns))}."
        )
    return attributes, factors


def _resolve_split(split, df, n: int, test_size: float, random_state: int):
    """Return (train_idx, test_idx, source)."""
    if split is None and "split" in df.columns and df["split"].notna().any():
        split = df["split"].to_numpy()
        source = "column"
    elif split is None:
        from clipica.metrics._common import split_indices

        tr, te = split_indices(n, test_size=test_size, random_state=random_state)
        return tr, te, f"seeded (test_size={test_size}, random_state={random_state})"
    else:
        source = "given"
    if isinstance(split, dict):
        tr = np.asarray(split.get("train"), dtype=np.int64)
        te = np.asarray(split.get("test"), dtype=np.int64)
        return np.sort(tr), np.sort(te), source
    arr = np.asarray(split, dtype=object)
    if arr.shape != (n,):
        raise InputError(f"split must have one entry per row ({n}); got shape {arr.shape}.")
    names = np.array([str(v).strip().lower() if v is not None else "" for v in arr])
    tr = np.flatnonzero(np.isin(names, _TRAIN_NAMES))
    te = np.flatnonzero(np.isin(names, _TEST_NAMES))
    if te.size == 0:  # no test partition: score on the validation rows
        te = np.flatnonzero(np.isin(names, _VAL_NAMES))
    if tr.size < 2 or te.size < 2:
        raise InputError(
            f"the split needs 'train' rows and 'test' (or 'val') rows; got {tr.size} train and "
            f"{te.size} test rows. Values seen: {sorted(set(names.tolist()))[:8]}."
        )
    return tr, te, source


def _sparse_ks(p: int, max_k: int) -> list[int]:
    ks = []
    k = 1
    while k < p and k <= max_k:
        ks.append(k)
        k *= 2
    ks.append(p)
    return ks


# ------------------------------------------------------------------ the probe


def _top_two(strength: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the best and second-best row of ``strength`` (K, A) per column; -1 if none."""
    s = np.where(np.isnan(strength), -np.inf, strength)
    if s.shape[0] == 0:
        z = -np.ones(s.shape[1], dtype=np.int64)
        return z, z
    order = np.argsort(-s, axis=0, kind="stable")
    best = order[0]
    second = order[1] if s.shape[0] > 1 else -np.ones(s.shape[1], dtype=np.int64)
    return best.astype(np.int64), np.asarray(second, dtype=np.int64)


def _probe_codes(
    name: str,
    codes: np.ndarray,
    Y: np.ndarray,
    F: np.ndarray,
    tr: np.ndarray,
    te: np.ndarray,
    *,
    C: float,
    max_sparse: int,
    max_iter: int,
    dtype,
) -> CodeReport:
    K = codes.shape[1]
    A = Y.shape[1]
    auc = auc_matrix(codes, Y) if A else np.zeros((K, 0))
    strength = np.abs(auc - 0.5)
    best, second = _top_two(strength)
    cols = np.arange(A)

    def fold(idx):
        v = np.full(A, np.nan)
        ok = idx >= 0
        v[ok] = 0.5 + strength[idx[ok], cols[ok]]
        return v

    best_auc, runner_auc = fold(best), fold(second)
    pole = np.where(auc[np.maximum(best, 0), cols] >= 0.5, 1, -1) if A else np.zeros(0)

    ks = _sparse_ks(K, max_sparse)
    sparse = np.full((len(ks), A), np.nan)
    lin_auc = np.full(A, np.nan)
    lin_bacc = np.full(A, np.nan)
    converged = True
    if A:
        Ytr, Yte = Y[tr], Y[te]
        usable = (np.nansum(Ytr, axis=0) > 0) & (np.nansum(1 - Ytr, axis=0) > 0)
        usable &= ~np.all(np.isnan(Ytr), axis=0)
        ua = np.flatnonzero(usable)
        if ua.size:
            # rank components by training-row AUC only: the held-out rows stay unseen
            train_strength = np.abs(auc_matrix(codes[tr], Ytr[:, ua]) - 0.5)
            train_strength = np.where(np.isnan(train_strength), -np.inf, train_strength)
            order = np.argsort(-train_strength, axis=0, kind="stable")
            for i, k in enumerate(ks):
                mask = None
                if k < K:
                    mask = np.zeros((K, ua.size), dtype=bool)
                    mask[order[:k], np.arange(ua.size)] = True
                fit = fit_logistic(
                    codes[tr], Ytr[:, ua], C=C, feature_mask=mask, max_iter=max_iter, dtype=dtype
                )
                converged &= fit.converged
                logits = fit.decision_function(codes[te])
                sparse[i, ua] = auc_columns(logits, Yte[:, ua])
                if k == K:
                    lin_auc[ua] = sparse[i, ua]
                    lin_bacc[ua] = balanced_accuracy_columns(logits, Yte[:, ua])

    n_f = F.shape[1]
    if n_f:
        rho = spearman_matrix(codes, F)
        fb, fs = _top_two(np.abs(rho))
        fcols = np.arange(n_f)
        f_best = rho[fb, fcols]
        f_second = np.where(fs >= 0, np.abs(rho[np.maximum(fs, 0), fcols]), np.nan)
    else:
        rho = np.zeros((K, 0))
        fb = np.zeros(0, dtype=np.int64)
        f_best = f_second = np.zeros(0)
    return CodeReport(
        name=name,
        n_components=K,
        auc=auc,
        best_component=best,
        best_auc=best_auc,
        pole=pole,
        runner_up_component=second,
        runner_up_auc=runner_auc,
        sparse_k=ks,
        sparse_auc=sparse,
        linear_probe_auc=lin_auc,
        linear_probe_balanced_accuracy=lin_bacc,
        spearman=rho,
        factor_best_component=fb,
        factor_best_spearman=f_best,
        factor_runner_up_abs_spearman=f_second,
        converged=converged,
    )


def probe(
    codes,
    labels,
    *,
    baselines: dict[str, Any] | None = None,
    split=None,
    attributes: list[str] | None = None,
    factors: list[str] | None = None,
    name: str = "ica",
    C: float = 1.0,
    test_size: float = 0.3,
    random_state: int = 0,
    max_sparse: int = 64,
    max_iter: int = 500,
    dtype=np.float32,
    progress: bool = False,
) -> ProbeReport:
    """Score every component against every label, next to baselines on the same rows.

    Parameters
    ----------
    codes : array of shape (n_samples, n_components)
        Component activations, e.g. ``ica.transform(X)``.
    labels : pandas DataFrame with n_samples rows
        Row-aligned with ``codes``. Binary attributes are the numeric columns holding only
        0/1 (NaN = missing); continuous factors are the other numeric columns (``latent_*``
        columns always count as factors). ``id``, ``source_index``, ``caption`` and ``split``
        are never labels. Override with ``attributes=`` / ``factors=``.
    baselines : dict of name -> array (n_samples, n_b), optional
        Other codes for the same rows, e.g. :func:`baseline_codes` (``raw``, ``pca``,
        ``random_rotation``); each gets the same report.
    split : optional
        Rows for fitting and scoring the logistic probes: a per-row array of
        ``"train"``/``"val"``/``"test"`` strings, or ``{"train": idx, "test": idx}``. Default:
        the ``split`` column of ``labels`` when present (probes fit on ``train`` and are
        scored on ``test``, or ``val`` if there is no test partition), else a seeded split
        holding out ``test_size`` of the rows.
    C : float
        Inverse L2 strength of the logistic probes (scikit-learn's convention) on
        standardised features.
    max_sparse : int
        Largest k of the sparse-probe curve before the full probe (k = 1, 2, 4, ...).

    Returns
    -------
    ProbeReport
        Single-component AUC / Spearman matrices are computed on all labelled rows (they
        fit nothing); the best-k selection uses training rows, the probes' AUC and balanced
        accuracy (threshold: logit 0) test rows.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2:
        raise InputError(f"codes must be (n_samples, n_components); got shape {codes.shape}.")
    if not np.all(np.isfinite(codes)):
        raise InputError("codes contain NaN or inf; drop those rows (and their labels) first.")
    n = codes.shape[0]
    df = _label_frame(labels, n)
    attrs, facs = _classify_columns(df, attributes, factors)
    import pandas as pd

    Y = (
        df[attrs].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        if attrs
        else np.zeros((n, 0))
    )
    F = (
        df[facs].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        if facs
        else np.zeros((n, 0))
    )
    if facs and not np.all(np.isfinite(F)):
        bad = [f for f, ok in zip(facs, np.all(np.isfinite(F), axis=0), strict=True) if not ok]
        raise InputError(f"continuous factors must be finite; missing values in {bad}.")
    tr, te, source = _resolve_split(split, df, n, test_size, random_state)
    sets = {name: codes}
    for bname, b in (baselines or {}).items():
        b = np.asarray(b, dtype=np.float64)
        if b.ndim != 2 or b.shape[0] != n:
            raise InputError(
                f"baseline {bname!r} must have shape ({n}, n_components) like codes; got {b.shape}."
            )
        if bname == name:
            raise InputError(f"baseline name {bname!r} clashes with the main codes' name.")
        sets[bname] = b
    reports = {}
    items = list(sets.items())
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="probe", unit="code set")
    for cname, c in items:
        reports[cname] = _probe_codes(
            cname, c, Y, F, tr, te, C=C, max_sparse=max_sparse, max_iter=max_iter, dtype=dtype
        )
    n_pos = np.nansum(Y, axis=0).astype(np.int64) if attrs else np.zeros(0, dtype=np.int64)
    return ProbeReport(
        attributes=[str(a) for a in attrs],
        factors=[str(f) for f in facs],
        codes=reports,
        n_positive=n_pos,
        n_rows=n,
        n_train=int(tr.size),
        n_test=int(te.size),
        split_source=source,
        C=C,
        main=name,
    )
