"""Held-out R^2 of predicting each true factor from the codes (linear, kernel ridge, MLP).

:func:`r2` approximates kernel ridge with Nystroem features (large n); the exact, CV-tuned RBF
kernel ridge for a few thousand rows is :func:`kernel_ridge_r2` (its one copy sits in the
ground helper ``clipica._linalg`` so that the tiny model's evaluation in ``models/``, a lower
layer, can call it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clipica._linalg import kernel_ridge_r2, sq_distances
from clipica.errors import InputError
from clipica.metrics._common import check_pair, split_indices

__all__ = ["R2Result", "kernel_ridge_r2", "r2"]

_MODELS = ("linear", "kernel_ridge", "mlp")
# gamma of the RBF kernel is this multiplier / n_codes on standardised codes: two random
# standardised points are ~2 * n_codes apart in squared distance, so gamma = 1 / n_codes
# puts a typical kernel value near exp(-2)
_GAMMA_MULTIPLIERS = (0.1, 0.3, 1.0, 3.0)
_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


@dataclass(frozen=True)
class R2Result:
    """Result of :func:`r2`.

    Attributes
    ----------
    score : float
        Mean of ``per_factor`` (NaN entries, constant test factors, skipped).
    per_factor : ndarray of shape (n_factors,)
        Test-set R^2 of each factor: ``1 - SS_res / SS_tot`` around the test mean.
        Can be negative (worse than predicting the test mean).
    model : str
    params : list of dict
        Hyperparameters used for each factor (chosen on a validation fold for kernel ridge).
    n_train, n_test : int
    """

    score: float
    per_factor: np.ndarray
    model: str
    params: list = field(default_factory=list)
    n_train: int = 0
    n_test: int = 0

    def to_dict(self) -> dict:
        return {
            "score": float(self.score),
            "per_factor": self.per_factor.tolist(),
            "model": self.model,
            "params": self.params,
            "n_train": self.n_train,
            "n_test": self.n_test,
        }


def _r2_columns(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    ss_res = np.sum((y - pred) ** 2, axis=0)
    ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - ss_res / ss_tot
    out[ss_tot <= 1e-12 * max(1.0, float(np.max(ss_tot, initial=0.0)))] = np.nan
    return out


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu = train.mean(axis=0)
    sd = train.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)  # a constant code stays 0 instead of dividing by 0
    return [(a - mu) / sd for a in (train, *others)]


def _nystroem_map(landmarks: np.ndarray, gamma: float):
    """Feature map phi(x) = k(x, L) K_LL^{-1/2}, so phi(x).phi(y) ~= k(x, y) (RBF)."""
    K = np.exp(-gamma * sq_distances(landmarks, landmarks))
    s, U = np.linalg.eigh(K)
    keep = s > 1e-10 * s.max()
    M = U[:, keep] / np.sqrt(s[keep])
    return lambda X: np.exp(-gamma * sq_distances(X, landmarks)) @ M


def _ridge_path(
    Phi: np.ndarray, y: np.ndarray, alphas
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Ridge with intercept for several alphas at once: min (1/n)|y - Phi b - c|^2 + alpha |b|^2.

    Returns a list of coefficient matrices (n_features, n_targets), one per alpha, and the
    feature and target means for the intercept. One eigendecomposition serves every alpha.
    """
    mu_x, mu_y = Phi.mean(axis=0), y.mean(axis=0)
    Pc = Phi - mu_x
    n = Phi.shape[0]
    s, V = np.linalg.eigh(Pc.T @ Pc / n)
    s = np.maximum(s, 0.0)
    proj = V.T @ (Pc.T @ (y - mu_y) / n)
    return [V @ (proj / (s + a)[:, None]) for a in alphas], mu_x, mu_y


def _fit_kernel_ridge(Xtr, Ytr, Xte, *, n_landmarks, val_fraction, rng):
    n, p = Xtr.shape
    n_val = max(1, int(round(val_fraction * n)))
    perm = rng.permutation(n)
    val, fit = perm[:n_val], perm[n_val:]
    gammas = [g / p for g in _GAMMA_MULTIPLIERS]
    n_f = Ytr.shape[1]
    best = np.full(n_f, -np.inf)
    best_g = np.zeros(n_f, dtype=int)
    best_a = np.zeros(n_f, dtype=int)
    lm_fit = Xtr[fit][rng.choice(fit.size, size=min(n_landmarks, fit.size), replace=False)]
    for gi, g in enumerate(gammas):
        phi = _nystroem_map(lm_fit, g)
        P_fit, P_val = phi(Xtr[fit]), phi(Xtr[val])
        coefs, mx, my = _ridge_path(P_fit, Ytr[fit], _ALPHAS)
        for ai, B in enumerate(coefs):
            score = _r2_columns(Ytr[val], (P_val - mx) @ B + my)
            score = np.where(np.isnan(score), -np.inf, score)
            better = score > best
            best[better], best_g[better], best_a[better] = score[better], gi, ai
    # refit on every training row with the chosen (gamma, alpha) of each factor
    landmarks = Xtr[rng.choice(n, size=min(n_landmarks, n), replace=False)]
    pred = np.zeros((Xte.shape[0], n_f))
    for gi in np.unique(best_g):
        phi = _nystroem_map(landmarks, gammas[gi])
        P_tr, P_te = phi(Xtr), phi(Xte)
        cols = np.flatnonzero(best_g == gi)
        alphas = [_ALPHAS[a] for a in best_a[cols]]
        coefs, mx, my = _ridge_path(P_tr, Ytr[:, cols], sorted(set(alphas)))
        lookup = dict(zip(sorted(set(alphas)), coefs, strict=True))
        for j, c in enumerate(cols):
            B = lookup[alphas[j]]
            pred[:, c] = (P_te - mx) @ B[:, j] + my[j]
    params = [
        {
            "gamma": gammas[best_g[j]],
            "alpha": _ALPHAS[best_a[j]],
            "n_landmarks": int(landmarks.shape[0]),
        }
        for j in range(n_f)
    ]
    return pred, params


def r2(
    codes,
    factors,
    *,
    model: str = "linear",
    train=None,
    test=None,
    test_size: float = 0.25,
    random_state: int = 0,
    n_landmarks: int = 500,
    val_fraction: float = 0.2,
) -> R2Result:
    """Held-out coefficient of determination of each factor predicted from all codes.

    The regressor is fitted on the training rows only and R^2 is computed on the test
    rows only: ``R^2_j = 1 - sum (y_j - yhat_j)^2 / sum (y_j - mean_test(y_j))^2``.
    Codes are standardised with the training rows' mean and standard deviation.

    Models
    ------
    ``"linear"``
        Ordinary least squares with intercept.
    ``"kernel_ridge"``
        RBF kernel ridge regression approximated with Nystroem features: ``n_landmarks``
        (default 500) random training rows as landmarks, then ridge regression on the
        features (exact kernel ridge is O(n^3); this is O(n m^2) and takes about a second
        at 10k samples). For each factor, ``gamma`` in ``{0.1, 0.3, 1, 3} / n_codes`` and
        ``alpha`` in ``{1e-4, ..., 1}`` (penalty on the mean squared error) are chosen by
        R^2 on a validation fold (``val_fraction`` of the training rows), then the model is
        refitted on all training rows.
    ``"mlp"``
        scikit-learn ``MLPRegressor`` (two hidden layers of 64 ReLU units, Adam, early
        stopping on 10 % of the training rows), all factors at once on standardised targets.

    Parameters
    ----------
    codes : array of shape (n_samples, n_codes)
    factors : array of shape (n_samples, n_factors)
    train, test : index arrays or boolean masks, optional
        Explicit split. If neither is given, a seeded split holds out ``test_size``.
    """
    if model not in _MODELS:
        raise InputError(f"model must be one of {_MODELS}; got {model!r}.")
    c, f = check_pair(codes, factors)
    tr, te = split_indices(
        c.shape[0], train=train, test=test, test_size=test_size, random_state=random_state
    )
    Xtr, Xte = _standardise(c[tr], c[te])
    Ytr, Yte = f[tr], f[te]
    rng = np.random.default_rng(random_state)
    if model == "linear":
        D = np.hstack([Xtr, np.ones((Xtr.shape[0], 1))])
        beta, *_ = np.linalg.lstsq(D, Ytr, rcond=None)
        pred = np.hstack([Xte, np.ones((Xte.shape[0], 1))]) @ beta
        params = [{} for _ in range(f.shape[1])]
    elif model == "kernel_ridge":
        if tr.size < 10:
            raise InputError(f"kernel_ridge needs at least 10 training rows; got {tr.size}.")
        from threadpoolctl import threadpool_limits

        # the m x m eigendecompositions are too small to gain from BLAS threads, and on a
        # shared CPU a spinning second thread makes them several times slower
        with threadpool_limits(limits=1, user_api="blas"):
            pred, params = _fit_kernel_ridge(
                Xtr, Ytr, Xte, n_landmarks=n_landmarks, val_fraction=val_fraction, rng=rng
            )
    else:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        ymu, ysd = Ytr.mean(axis=0), Ytr.std(axis=0)
        ysd = np.where(ysd > 1e-12, ysd, 1.0)
        net = MLPRegressor(
            hidden_layer_sizes=(64, 64),
            early_stopping=True,
            max_iter=300,
            random_state=random_state,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            target = (Ytr - ymu) / ysd
            net.fit(Xtr, target[:, 0] if target.shape[1] == 1 else target)
        pred = net.predict(Xte).reshape(Xte.shape[0], -1) * ysd + ymu
        params = [{"hidden_layer_sizes": [64, 64], "n_iter": int(net.n_iter_)}] * f.shape[1]
    per = _r2_columns(Yte, pred)
    score = float(np.nanmean(per)) if np.any(~np.isnan(per)) else float("nan")
    return R2Result(
        score=score,
        per_factor=per,
        model=model,
        params=params,
        n_train=int(tr.size),
        n_test=int(te.size),
    )
