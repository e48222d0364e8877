"""Multinomial L2 logistic regression for many small problems at once, along a C path.

The few-shot protocol (:mod:`clipica.fewshot`) fits thousands of small multinomial
logistic regressions: every seed x shot count x variant x value of C. Fitting them one
by one with scikit-learn is dominated by per-call overhead; here a batch of problems
shares every pass over the data (two batched matrix products per objective evaluation
or Hessian-vector product) and each problem carries its own solver state.

Objective (scikit-learn's ``LogisticRegression(C=C)``, lbfgs, multinomial, full
``n_classes`` parametrisation, intercept not penalised), per problem::

    f(W, b) = mean_i [ logsumexp(z_i) - z_i[y_i] ] + ||W||^2 / (2 C n),   z_i = x_i W + b

It is strictly convex in ``W``, so any convergent method reaches scikit-learn's
minimiser. The stopping rule bounds the error of the weights, not the gradient:
``||grad f|| <= tol ||W|| / (C n)``, which by the penalty's strong convexity gives
``||W - W*|| <= tol ||W||`` at every C (scikit-learn's absolute gradient rule, and its
lbfgs's ``ftol`` on ``max(|f|, 1)``, stop far from ``W*`` where ``f`` is ~1e-7: large C on
separable few-shot draws).

Why it is cheap (the cost model):

- **Row-space reduction.** At the optimum ``W = -C X' (P - Y)``: the columns of ``W``
  lie in the span of the training rows. With ``X = U S V'`` (thin SVD, rank ``r <= min(n, D)``)
  the problem in ``V_reduced = V' W`` on ``Z = U S`` (n, r) has the same objective and
  the same minimiser mapped back (the L2 penalty is rotation invariant). Few-shot problems have ``n`` of 16-256 rows, so the cost per pass is
  ``O(n r k)`` instead of ``O(n D k)``.
- **Batching.** ``T`` tasks (different data) x ``m`` values of C: the logits of all of
  them are one ``(T, 1, n, r) @ (T, m, r, k)`` product.
- **Second order**: truncated Newton, the Newton system
  solved by conjugate gradients with exact Hessian-vector products
  (:mod:`clipica.probes.softmax`), preconditioned by the Hessian's diagonal, then Armijo
  backtracking from the unit step. From a warm start it needs a handful of iterations
  where the batched L-BFGS this module used before needed 30-150 (measured on the bench's
  stand-in, the 180 fits of the 16-shot search, both with an SVD per call: 885 Newton
  iterations against 10,392 L-BFGS iterations, 1.3 s against 14.4 s of CPU).
- **Groups by rank.** Tasks of one batch differ in rank (raw features and ICA/PCA with
  fewer components); each rank is solved without the others' zero padding.
- **Warm starts.** ``W0``/``b0`` start each problem from the solution at a nearby C
  (the C path); in the bisection of the protocol the nearest C already fitted is
  typically a factor 10^0.06-10^0.5 away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipica.errors import InputError
from clipica.probes.softmax import loss_grad, pcg


@dataclass(frozen=True)
class MultinomialPath:
    """Fitted problems of :func:`fit_multinomial_path`.

    ``coef``: ndarray of shape (T, m, D, k) (in the original feature coordinates);
    ``intercept``: (T, m, k); ``n_iter``: (T, m) Newton iterations; ``converged``:
    (T, m) bool (the stopping rule met within ``max_iter``).
    """

    coef: np.ndarray
    intercept: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray

    def decision_function(self, X: np.ndarray, task: int, c_index: int = 0) -> np.ndarray:
        """Logits (n_rows, k) of problem ``(task, c_index)`` on features ``X`` (n_rows, D)."""
        return np.asarray(X, dtype=np.float64) @ self.coef[task, c_index] + self.intercept[task, c_index]


def row_space(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(Z, V)`` with ``X = Z @ V.T``, ``V`` (D, r) orthonormal, ``r`` the numerical rank of ``X``.

    ``X``: (n, D). ``Z`` = ``X @ V`` (n, r). Singular values below ``1e-10`` times the
    largest are dropped (those directions carry no data).
    """
    X = np.asarray(X, dtype=np.float64)
    _, s, vt = np.linalg.svd(X, full_matrices=False)
    keep = s > (s[0] * 1e-10 if s.size and s[0] > 0 else np.inf)
    V = vt[keep].T
    return X @ V, V


def fit_multinomial_path(
    X,
    y,
    Cs,
    *,
    n_classes: int | None = None,
    coef0: np.ndarray | None = None,
    intercept0: np.ndarray | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    bases: list | None = None,
) -> MultinomialPath:
    """Fit ``T x m`` multinomial L2 logistic regressions at once.

    Parameters
    ----------
    X : array of shape (T, n, D)
        Training features of each task (``T`` tasks of ``n`` rows; float64 internally).
    y : int array of shape (T, n)
        Class index in ``[0, n_classes)`` of every row.
    Cs : array of shape (T, m) or (m,)
        Inverse regularisation strengths (scikit-learn's C) fitted for each task.
    n_classes : int, optional
        Number of classes ``k`` (``y.max() + 1`` by default). Classes absent from a task's
        rows get the intercept that the objective drives to minus infinity; this is the
        same as scikit-learn only when every class is present (the protocol ensures it).
    coef0, intercept0 : arrays of shape (T, m, D, k) and (T, m, k), optional
        Warm start (a solution at a nearby C); zeros by default.
    tol, max_iter :
        Relative accuracy of the weights (stop when ``||grad|| <= tol ||W|| / (C n)``, so
        ``||W - W*|| <= tol ||W||``) and the limit of Newton iterations (``n_iter`` counts
        them). Below ~1e-7 the rounding floor of float64 is reached at C >= 1e6 and a
        problem runs to ``max_iter``.
    bases : list of T pairs, optional
        ``row_space(X[t] - X[t].mean(axis=0))`` of every task, when the caller has them (the C
        search fits each task at ~15 values of C, one call each: measured, the SVDs were a
        tenth of its time).

    Returns
    -------
    MultinomialPath
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 3 or y.shape != X.shape[:2]:
        raise InputError(f"fit_multinomial_path: X must be (T, n, D) and y (T, n); got {X.shape} and {y.shape}")
    if not np.isfinite(X).all():
        raise InputError("fit_multinomial_path: X contains NaN or infinite values")
    T, n, D = X.shape
    Cs = np.asarray(Cs, dtype=np.float64)
    if Cs.ndim == 1:
        Cs = np.broadcast_to(Cs, (T, Cs.size))
    if Cs.shape[0] != T or not (Cs > 0).all():
        raise InputError(f"fit_multinomial_path: Cs must be positive, shape (T, m) or (m,); got {Cs.shape}")
    m = Cs.shape[1]
    k = int(n_classes if n_classes is not None else y.max() + 1)
    if y.min() < 0 or y.max() >= k:
        raise InputError(f"fit_multinomial_path: labels must lie in [0, {k}); got {y.min()}..{y.max()}")
    Y = np.zeros((T, n, 1, k))
    np.put_along_axis(Y, y.astype(np.intp)[:, :, None, None], 1.0, axis=-1)

    # Centre each task's rows: with the intercept unpenalised, x -> x - mu only moves the
    # optimum's intercept (b = b' - mu W), and it decouples the intercept from the mean
    # direction (uncentred CLIP-like features, |mean| >> std, otherwise take L-BFGS
    # thousands of iterations).
    mu = X.mean(axis=1, keepdims=True)  # (T, 1, D)
    Xc = X - mu
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        bases = [row_space(Xc[t]) for t in range(T)] if bases is None else bases
    r = max(1, max(V.shape[1] for _, V in bases))
    Z = np.zeros((T, n, r))
    Vs = np.zeros((T, D, r))
    for t, (Zt, Vt) in enumerate(bases):
        Z[t, :, : Zt.shape[1]] = Zt
        Vs[t, :, : Vt.shape[1]] = Vt
    W = np.zeros((T, m, r, k))
    b = np.zeros((T, m, k))
    if coef0 is not None:
        W = np.matmul(np.swapaxes(Vs, 1, 2)[:, None], np.asarray(coef0, dtype=np.float64))
    if intercept0 is not None:
        b = np.array(intercept0, dtype=np.float64, copy=True).reshape(T, m, k)
        b = b + np.matmul(mu[:, None], np.asarray(coef0, dtype=np.float64))[:, :, 0] if coef0 is not None else b
    inv_cn = 1.0 / (Cs * n)

    # one BLAS thread: the products are small, and on a shared CPU a spinning second
    # thread makes them many times slower (measured: 40x on a loaded 2-core box)
    with threadpool_limits(limits=1):
        W, b, n_iter, conv = _newton_by_rank(Z, Y, W, b, inv_cn, [V.shape[1] for _, V in bases], tol=tol,
                                             max_iter=max_iter)
    coef = np.matmul(Vs[:, None], W)  # (T, m, D, k)
    b = b - np.matmul(mu[:, None], coef)[:, :, 0]  # back to uncentred features
    return MultinomialPath(coef=coef, intercept=b, n_iter=n_iter, converged=conv)


def _newton_by_rank(Z, Y, W, b, inv_cn, ranks, *, tol, max_iter):
    """:func:`_newton` once per group of tasks of one row-space rank, without their zero padding.

    Tasks of a batch differ in rank (e.g. raw features, and ICA or PCA with fewer
    components); the products cost ``n r k`` per task, so padding every task to the largest
    ``r`` would multiply the work of the smaller ones (measured: 64 against 20-38 columns).
    """
    ranks = np.maximum(np.asarray(ranks), 1)
    n_iter = np.zeros(W.shape[:2], dtype=np.int64)
    conv = np.zeros(W.shape[:2], dtype=bool)
    W, b = W.copy(), b.copy()
    for rank in np.unique(ranks):
        g = np.flatnonzero(ranks == rank)
        W[g, :, :rank], b[g], n_iter[g], conv[g], _ = _newton(
            Z[g, :, :rank], Y[g], W[g, :, :rank], b[g], inv_cn[g], tol=tol, max_iter=max_iter)
    return W, b, n_iter, conv


def _newton(Z, Y, W, b, inv_cn, *, tol, max_iter, max_cg=250):
    """Batched truncated Newton (Newton-CG with Armijo backtracking) over problems (T, m).

    Each iteration solves the Newton system by :func:`~clipica.probes.softmax.pcg` to a relative residual
    ``eta = min(0.5, sqrt(||g|| / ||g_0||))``, never tighter than what the stopping rule
    needs in one step; then backtracks from the unit step. A task leaves the batch when all
    its problems have stopped. Returns W, b, n_iter (T, m) Newton iterations, converged
    (T, m), and the Hessian-vector products per task (T,).
    """
    T, m, r, k = W.shape

    def fg(x, Zs, Ys, inv):
        f, gW, gb, terms = loss_grad(Zs, Ys, x[..., : r * k].reshape(x.shape[0], m, r, k), x[..., r * k:], inv,
                                      curvature=True)
        return f, np.concatenate([gW.reshape(x.shape[0], m, r * k), gb], axis=-1), terms

    def gap(x, g, inv):  # ||g|| over the stopping rule's bound, tol ||W|| / (C n) (see fit_multinomial_path)
        gn = gnorm(g)
        wn = np.sqrt(np.einsum("tmp,tmp->tm", x[..., : r * k], x[..., : r * k]))
        return gn / np.maximum(tol * wn * inv, 1e-300), gn

    def gnorm(g):
        return np.sqrt(np.einsum("tmp,tmp->tm", g, g))

    x_out = np.concatenate([W.reshape(T, m, r * k), b], axis=-1)
    f, g, terms = fg(x_out, Z, Y, inv_cn)
    ratio, g0 = gap(x_out, g, inv_cn)
    conv_out = ratio <= 1.0
    n_out = np.zeros((T, m), dtype=np.int64)
    products = np.zeros(T, dtype=np.int64)
    live = np.flatnonzero(~conv_out.all(axis=1))
    x, f, g, g0, done = x_out[live], f[live], g[live], g0[live], conv_out[live].copy()
    terms = (terms[0][live], terms[1][live])
    Zl, Yl, invl = Z[live], Y[live], inv_cn[live]
    n_iter = np.zeros((live.size, m), dtype=np.int64)
    for _ in range(max_iter):
        if live.size == 0:
            break
        ratio, gn = gap(x, g, invl)
        eta = np.clip(np.sqrt(gn / np.maximum(g0, 1e-300)), 0.5 / np.maximum(ratio, 1.0), 0.5)
        d, prods = pcg(Zl, Yl, terms, invl, g, ~done, eta, max_cg)
        products[live] += prods
        gd = np.einsum("tmp,tmp->tm", g, d)
        step = np.where(done | (gd >= 0), 0.0, 1.0)
        accepted = step == 0.0
        stalled = ~done & (gd >= 0)
        for _ in range(40):  # backtracking (Armijo, c1 = 1e-4) per problem
            if accepted.all():
                break
            ft, gt, tt = fg(x + step[..., None] * d, Zl, Yl, invl)
            # Armijo; or, where f is flat to rounding (tiny C, tight tol), a smaller gradient
            flat = (np.abs(ft - f) <= 1e-14 * np.abs(f)) & (gnorm(gt) < gnorm(g))
            ok = ~accepted & ((ft <= f + 1e-4 * step * gd) | flat)
            x = np.where(ok[..., None], x + step[..., None] * d, x)
            f, g = np.where(ok, ft, f), np.where(ok[..., None], gt, g)
            terms = (np.where(ok[:, None, :, None], tt[0], terms[0]), np.where(ok[:, None], tt[1], terms[1]))
            accepted |= ok
            step = np.where(accepted, step, 0.5 * step)
        stalled |= ~accepted  # no decrease along a descent direction: the rounding floor
        n_iter[~done] += 1
        done = done | (gap(x, g, invl)[0] <= 1.0) | stalled
        finished = done.all(axis=1)
        if finished.any():  # write the finished tasks out and compact the batch
            out = live[finished]
            x_out[out], n_out[out] = x[finished], n_iter[finished]
            conv_out[out] = gap(x[finished], g[finished], invl[finished])[0] <= 1.0
            keep = ~finished
            live, x, f, g, g0, done, n_iter = live[keep], x[keep], f[keep], g[keep], g0[keep], done[keep], n_iter[keep]
            terms = (terms[0][keep], terms[1][keep])
            Zl, Yl, invl = Zl[keep], Yl[keep], invl[keep]
    if live.size:  # max_iter reached
        x_out[live], n_out[live] = x, n_iter
        conv_out[live] = gap(x, g, invl)[0] <= 1.0
    return x_out[..., : r * k].reshape(T, m, r, k), x_out[..., r * k:], n_out, conv_out, products
