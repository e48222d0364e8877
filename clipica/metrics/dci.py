"""Disentanglement, completeness and informativeness (Eastwood & Williams 2018)."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from clipica.errors import InputError
from clipica.metrics._common import check_pair, split_indices
from clipica.metrics._discrete import is_binary

_MODELS = ("gradient_boosting", "linear")
# "auto" reads a factor as discrete (classes, not a number) when it holds integers with at
# most this many distinct values: binary attributes, category codes, dSprites-style levels
_MAX_AUTO_CLASSES = 20


@dataclass(frozen=True)
class DCIResult:
    """Result of :func:`dci`.

    Attributes
    ----------
    disentanglement, completeness, informativeness : float
    importance : ndarray of shape (n_codes, n_factors)
        Non-negative importance ``R[i, j]`` of code ``i`` for predicting factor ``j``.
    per_code_disentanglement : ndarray of shape (n_codes,)
    code_weight : ndarray of shape (n_codes,)
        ``rho_i``, the share of total importance carried by code ``i``.
    per_factor_completeness : ndarray of shape (n_factors,)
    factor_weight : ndarray of shape (n_factors,)
        The share of total importance carried by factor ``j`` (weights of ``completeness``).
    per_factor_informativeness : ndarray of shape (n_factors,)
        Test R^2 (continuous factors) or test balanced accuracy (discrete factors).
    discrete : ndarray of bool, shape (n_factors,)
        Factors modelled as classes (classifier, balanced accuracy).
    binary : ndarray of bool, shape (n_factors,)
        Factors holding only 0 and 1.
    model : str
    params : dict
        The importance model's settings (``n_estimators``/``max_depth`` or ``alpha``) and
        the number of training and test rows.
    """

    disentanglement: float
    completeness: float
    informativeness: float
    importance: np.ndarray
    per_code_disentanglement: np.ndarray
    code_weight: np.ndarray
    per_factor_completeness: np.ndarray
    factor_weight: np.ndarray
    per_factor_informativeness: np.ndarray
    discrete: np.ndarray
    binary: np.ndarray
    model: str
    params: dict

    def to_dict(self) -> dict:
        return {
            "disentanglement": float(self.disentanglement),
            "completeness": float(self.completeness),
            "informativeness": float(self.informativeness),
            "model": self.model,
            **self.params,
            "per_factor_completeness": self.per_factor_completeness.tolist(),
            "per_factor_informativeness": self.per_factor_informativeness.tolist(),
        }


def _one_minus_entropy(P: np.ndarray, base: int) -> np.ndarray:
    """1 - H(p) / log(base) for each row of the row-stochastic matrix P."""
    if base <= 1:
        return np.ones(P.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(P > 0, np.log(np.where(P > 0, P, 1.0)), 0.0)
    return 1.0 - (-(P * logs).sum(axis=1)) / np.log(base)


def dci_from_importance(R: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    """Disentanglement and completeness from an importance matrix (n_codes, n_factors).

    Returns ``(D, C, per_code_D, rho, per_factor_C)``. As in disentanglement_lib, D and C
    are importance-weighted means: ``D = sum_i rho_i D_i`` with ``rho_i`` code ``i``'s share
    of the total importance, ``C = sum_j w_j C_j`` with ``w_j`` factor ``j``'s share. Codes
    (factors) with zero total importance get ``D_i = 0`` (``C_j = 0``) and weight 0, so a
    factor that no code predicts does not lower C (informativeness shows it); an all-zero
    matrix gives D = C = 0.
    """
    R = np.abs(np.asarray(R, dtype=np.float64))
    n_codes, n_factors = R.shape
    row, col, total = R.sum(axis=1), R.sum(axis=0), R.sum()
    per_code = np.zeros(n_codes)
    ok = row > 0
    per_code[ok] = _one_minus_entropy(R[ok] / row[ok, None], n_factors)
    per_factor = np.zeros(n_factors)
    okf = col > 0
    per_factor[okf] = _one_minus_entropy((R[:, okf] / col[okf]).T, n_codes)
    if total <= 0:
        return 0.0, 0.0, per_code, np.zeros(n_codes), per_factor
    rho = row / total
    return float(rho @ per_code), float((col / total) @ per_factor), per_code, rho, per_factor


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _discrete_mask(discrete, f: np.ndarray) -> np.ndarray:
    n_factors = f.shape[1]
    if isinstance(discrete, str):
        if discrete != "auto":
            raise InputError(f"discrete must be 'auto', a bool or one bool per factor; got {discrete!r}.")
        return np.array(
            [
                bool(np.all(f[:, k] == np.round(f[:, k])))
                and np.unique(f[:, k]).size <= _MAX_AUTO_CLASSES
                for k in range(n_factors)
            ]
        )
    mask = np.asarray(discrete)
    if mask.dtype != bool or mask.ndim > 1 or (mask.ndim == 1 and mask.size != n_factors):
        raise InputError(
            f"discrete must be 'auto', a bool or {n_factors} bools (one per factor); got {discrete!r}."
        )
    return np.broadcast_to(mask, (n_factors,)).copy()


def _lasso_bic(X: np.ndarray, Y: np.ndarray, alpha) -> np.ndarray:
    """Lasso coefficients (n_codes, n_factors) of standardised ``Y`` on standardised ``X``.

    ``alpha="bic"``: along a path of 40 penalties from the one that zeroes every
    coefficient down to 1e-4 of it, the penalty minimising BIC
    ``n log(2 pi s^2) + RSS / s^2 + log(n) df`` (df = non-zero coefficients, Zou et al.
    2007; ``s^2`` from the least-squares residuals, as scikit-learn's ``LassoLarsIC``).
    """
    from sklearn.linear_model import lasso_path

    n, p = X.shape
    G = X.T @ X
    XY = X.T @ Y
    if alpha == "bic":
        ols = np.linalg.lstsq(X, Y, rcond=None)[0]
        sigma2 = np.sum((Y - X @ ols) ** 2, axis=0) / (n - p - 1)
        # an exact fit (identity codes) has no noise: a floor keeps BIC finite
        sigma2 = np.maximum(sigma2, 1e-12)
    W = np.zeros((p, Y.shape[1]))
    for k in range(Y.shape[1]):
        y, xy = Y[:, k], XY[:, k]
        amax = float(np.abs(xy).max()) / n
        if amax <= 0:
            continue
        if alpha != "bic":
            alphas = np.array([float(alpha)])
        else:
            alphas = amax * np.logspace(0, -4, 40)
        _, coefs, _ = lasso_path(X, y, alphas=alphas, precompute=G, Xy=xy, max_iter=10000)
        if alpha != "bic":
            W[:, k] = coefs[:, 0]
            continue
        # RSS through the Gram matrix: no (n, n_alphas) prediction matrix
        rss = y @ y - 2 * xy @ coefs + np.einsum("ia,ij,ja->a", coefs, G, coefs)
        df = np.count_nonzero(coefs, axis=0)
        bic = n * np.log(2 * np.pi * sigma2[k]) + rss / sigma2[k] + np.log(n) * df
        W[:, k] = coefs[:, int(np.argmin(bic))]
    return W


def dci(
    codes,
    factors,
    *,
    model: str = "gradient_boosting",
    discrete="auto",
    n_estimators: int = 100,
    max_depth: int = 3,
    alpha: float | str = "bic",
    train=None,
    test=None,
    test_size: float = 0.25,
    random_state: int = 0,
) -> DCIResult:
    """DCI: disentanglement, completeness, informativeness (Eastwood & Williams 2018).

    One model per factor predicts the factor from all codes (fitted on the training
    rows), giving an importance matrix ``R`` (n_codes, n_factors).

    - ``P_ij = R_ij / sum_j R_ij``; code disentanglement ``D_i = 1 - H_{n_factors}(P_i.)``
      (entropy with log base n_factors); ``D = sum_i rho_i D_i`` with
      ``rho_i = sum_j R_ij / sum_ij R_ij``.
    - Factor completeness ``C_j = 1 - H_{n_codes}(R_.j / sum_i R_ij)``;
      ``C = sum_j w_j C_j`` with ``w_j = sum_i R_ij / sum_ij R_ij``, as disentanglement_lib
      computes it (with tree importances every fitted factor's column sums to 1, so this
      is the plain mean over factors that some code predicts).
    - Informativeness: mean over factors of the test-row R^2 (continuous factors) or
      test-row balanced accuracy (discrete factors; balanced so that a rare attribute is
      not "predicted" by always saying no). Higher is better.

    Importance models
    -----------------
    ``"gradient_boosting"`` (default, the published definition as disentanglement_lib
    computes it): scikit-learn ``GradientBoostingClassifier`` for discrete factors and
    ``GradientBoostingRegressor`` for continuous ones (standardised), ``n_estimators``
    trees of depth ``max_depth`` (scikit-learn's and disentanglement_lib's defaults 100 and
    3); ``R`` = the impurity-based ``feature_importances_``. Cost grows with rows x codes x
    trees x classes: on large data pass a row subsample (``train``/``test``).

    ``"linear"`` (faster, a documented approximation): codes standardised on the training
    rows; every factor, standardised, is regressed on them by the lasso
    (``(1/2n)|y - Xw|^2 + alpha |w|_1``; binary factors as a linear probability model,
    discrete ones on their integer values), ``R_ij = |w_ij|``. ``alpha="bic"`` picks the
    penalty on the lasso path by BIC, so codes that carry nothing get exactly zero
    importance (random codes give D = C = 0) while weak effects spread over many codes
    are kept (the shuffled "bad representation" of disentanglement_lib scores near 0, as
    with trees); a number fixes the penalty. Informativeness: test R^2 of the lasso fit
    for non-binary factors; for binary ones, balanced accuracy of the rule "positive when
    the fitted score is above the midpoint of the two classes' mean training scores".
    Caveat: the lasso keeps one of several redundant codes, so duplicated codes do *not*
    lower completeness under the linear model (C stays 1 where trees give the published
    ``1 - log 2 / log n_codes``). Needs more training rows than codes plus one.

    ``discrete="auto"`` models a factor as classes when it holds integers with at most 20
    distinct values; pass a bool, or one bool per factor, to decide yourself.

    Codes or factors with zero total importance count as 0 and carry no weight (constant
    codes give D = C = 0). Invariant to permutation and sign of the codes.

    Caveat: D only measures how concentrated each code's importance is. With many more
    codes than factors (e.g. 64 raw embedding dimensions against 11 attributes) a model
    can pick a different handful of codes for each factor and D comes out high although
    every factor is spread over several codes (low C). Compare D between code sets of the
    same size, and read it with C.

    Parameters
    ----------
    codes : array of shape (n_samples, n_codes)
    factors : array of shape (n_samples, n_factors)
    """
    if model not in _MODELS:
        raise InputError(f"model must be one of {_MODELS}; got {model!r}.")
    c, f = check_pair(codes, factors)
    if model == "gradient_boosting":
        n_estimators = _check_positive_int(n_estimators, "n_estimators")
        max_depth = _check_positive_int(max_depth, "max_depth")
        params = {"n_estimators": n_estimators, "max_depth": max_depth}
    else:
        if isinstance(alpha, str):
            if alpha != "bic":
                raise InputError(f"alpha must be a positive number or 'bic'; got {alpha!r}.")
        elif isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not alpha > 0:
            raise InputError(f"alpha must be a positive number or 'bic'; got {alpha!r}.")
        params = {"alpha": alpha if isinstance(alpha, str) else float(alpha)}
    tr, te = split_indices(
        c.shape[0], train=train, test=test, test_size=test_size, random_state=random_state
    )
    params.update(n_train=int(tr.size), n_test=int(te.size))
    n_codes, n_factors = c.shape[1], f.shape[1]
    binary = np.array([is_binary(f[:, k]) for k in range(n_factors)])
    disc = _discrete_mask(discrete, f)
    if model == "linear":
        if tr.size <= n_codes + 1:
            raise InputError(
                f"the linear DCI needs more training rows than codes + 1; got {tr.size} rows "
                f"for {n_codes} codes (use more rows or model='gradient_boosting')."
            )
        R, info = _linear(c, f, tr, te, binary, alpha)
    else:
        R, info = _trees(c, f, tr, te, disc, n_estimators, max_depth, random_state)
    D, C, per_code, rho, per_factor = dci_from_importance(R)
    total = R.sum()
    informativeness = float(np.nanmean(info)) if np.any(~np.isnan(info)) else float("nan")
    return DCIResult(
        disentanglement=D,
        completeness=C,
        informativeness=informativeness,
        importance=R,
        per_code_disentanglement=per_code,
        code_weight=rho,
        per_factor_completeness=per_factor,
        factor_weight=R.sum(axis=0) / total if total > 0 else np.zeros(n_factors),
        per_factor_informativeness=info,
        discrete=disc if model == "gradient_boosting" else binary.copy(),
        binary=binary,
        model=model,
        params=params,
    )


def _trees(c, f, tr, te, disc, n_estimators, max_depth, random_state):
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.metrics import balanced_accuracy_score

    n_codes, n_factors = c.shape[1], f.shape[1]
    R = np.zeros((n_codes, n_factors))
    info = np.full(n_factors, np.nan)
    for k in range(n_factors):
        ytr, yte = f[tr, k], f[te, k]
        if disc[k]:
            if np.unique(ytr).size < 2:
                continue  # nothing to learn; importance stays 0
            est = GradientBoostingClassifier(
                n_estimators=n_estimators, max_depth=max_depth, random_state=random_state
            ).fit(c[tr], ytr)
            if np.unique(yte).size >= 2:
                with warnings.catch_warnings():
                    # classes predicted but absent from the test rows are not an error
                    warnings.simplefilter("ignore", UserWarning)
                    info[k] = balanced_accuracy_score(yte, est.predict(c[te]))
        else:
            ymu, ysd = ytr.mean(), ytr.std()
            if ysd <= 1e-12:
                continue
            est = GradientBoostingRegressor(
                n_estimators=n_estimators, max_depth=max_depth, random_state=random_state
            ).fit(c[tr], (ytr - ymu) / ysd)
            info[k] = _r2(yte, est.predict(c[te]) * ysd + ymu)
        R[:, k] = np.abs(est.feature_importances_)
    return R, info


def _linear(c, f, tr, te, binary, alpha):
    mu, sd = c[tr].mean(axis=0), c[tr].std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    Xtr, Xte = (c[tr] - mu) / sd, (c[te] - mu) / sd
    n_codes, n_factors = c.shape[1], f.shape[1]
    info = np.full(n_factors, np.nan)
    ymu, ysd = f[tr].mean(axis=0), f[tr].std(axis=0)
    live = ysd > 1e-12
    W = np.zeros((n_codes, n_factors))
    W[:, live] = _lasso_bic(Xtr, (f[tr][:, live] - ymu[live]) / ysd[live], alpha)
    for k in np.flatnonzero(live):
        yte = f[te, k]
        s_tr, s_te = Xtr @ W[:, k], Xte @ W[:, k]
        if binary[k]:
            if np.unique(yte).size < 2:
                continue
            pos = f[tr, k] == 1
            cut = 0.5 * (s_tr[pos].mean() + s_tr[~pos].mean())
            pred = s_te > cut
            info[k] = 0.5 * (pred[yte == 1].mean() + (~pred[yte == 0]).mean())
        else:
            info[k] = _r2(yte, s_te * ysd[k] + ymu[k])
    return np.abs(W), info


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / ss_tot if ss_tot > 0 else float("nan")
