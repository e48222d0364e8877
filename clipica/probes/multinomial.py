"""Multinomial L2 logistic regression for many small problems at once, along a C path.

The few-shot protocol (:mod:`clipica.fewshot`) fits thousands of small multinomial
logistic regressions: every seed x shot count x variant x value of C. Fitting them one
by one with scikit-learn is dominated by per-call overhead; here a batch of problems
shares every pass over the data (two batched matrix products per objective
evaluation) and each problem carries its own L-BFGS state.

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
  the problem in ``V_reduced = V' W`` on ``Z = U S`` (n, r) has the same objective, and
  L-BFGS from zero takes the same steps in either coordinates (it is rotation
  invariant). Few-shot problems have ``n`` of 16-256 rows, so the cost per pass is
  ``O(n r k)`` instead of ``O(n D k)``. Problems of one batch are padded to the same
  ``r`` with zero columns (their weights get no data gradient and stay exactly 0).
- **Batching.** ``T`` tasks (different data) x ``m`` values of C: the logits of all of
  them are one ``(T, 1, n, r) @ (T, m, r, k)`` product.
- **Warm starts.** ``W0``/``b0`` start each problem from the solution at a nearby C
  (the C path); in the bisection of the protocol the nearest C already fitted is
  typically a factor 10^0.06-10^0.5 away and L-BFGS needs a few iterations.

Line search: backtracking (Armijo, c1 = 1e-4) from the unit step, per problem; a pair
``(s, y)`` with ``s'y <= 1e-12 s's`` is not stored (never happens for a strictly convex
objective, but guards rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipica.errors import InputError


@dataclass(frozen=True)
class MultinomialPath:
    """Fitted problems of :func:`fit_multinomial_path`.

    ``coef``: ndarray of shape (T, m, D, k) (in the original feature coordinates);
    ``intercept``: (T, m, k); ``n_iter``: (T, m) L-BFGS iterations; ``converged``:
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


def _loss_grad(Z, Y, W, b, inv_cn):
    """Objective and gradient of every problem.

    Z (T, n, r); Y (T, n, 1, k) one-hot classes (float); W (T, m, r, k); b (T, m, k);
    inv_cn (T, m) = 1/(C n). Returns f (T, m), gW (T, m, r, k), gb (T, m, k).
    The ``m`` problems of a task share one (n, r) @ (r, m k) product (one BLAS call).

    Written without cancellation for well-fitted rows: the row loss is
    ``log1p(s / e_y)`` and the true class's residual ``-s / sum(e)``, with ``s`` the sum
    of the other classes' ``e``. The naive ``log(sum e) - z_y`` and ``p_y - 1`` lose
    every digit below 1e-16 absolute; at C >= 1e5 on separable few-shot draws the
    objective is ~1e-7, so they would leave only ~9 digits of it and of its gradient,
    and L-BFGS stops at that floor, far from the minimiser. The one-hot products stand
    in for take/put_along_axis (measured: a third of the protocol's time was their
    index building on these small arrays).
    """
    T, m, r, k = W.shape
    n = Z.shape[1]
    Wcat = W.transpose(0, 2, 1, 3).reshape(T, r, m * k)
    logits = np.matmul(Z, Wcat).reshape(T, n, m, k) + b[:, None]  # (T, n, m, k)
    logits -= logits.max(axis=-1, keepdims=True)
    dy = (logits * Y).sum(axis=-1)  # (T, n, m): z_y - max z <= 0
    e = np.exp(logits, out=logits)
    ey = np.exp(dy)
    e -= e * Y  # the y entry 0
    others = e.sum(axis=-1)  # (T, n, m), sum over c != y; >= 1 where y is not the top class
    # log1p(s / e_y) while e_y is representable; a row misclassified by a margin beyond
    # ~700 would underflow e_y to 0, and there log(s + e_y) - dy has nothing to cancel
    row = np.where(dy > -30.0, np.log1p(others / np.maximum(ey, 1e-300)), np.log(others + ey) - dy)
    f = row.sum(axis=1) / n + 0.5 * inv_cn * (W * W).sum(axis=(2, 3))
    inv_se = 1.0 / (others + ey)
    e *= inv_se[..., None]  # P with its y entry 0
    e -= Y * (others * inv_se)[..., None]  # P - Y
    gW = np.matmul(np.swapaxes(Z, 1, 2), e.reshape(T, n, m * k)).reshape(T, r, m, k).transpose(0, 2, 1, 3)
    gW = gW / n + inv_cn[..., None, None] * W
    gb = e.sum(axis=1) / n
    return f, gW, gb


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
    history: int = 10,
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
    tol, max_iter, history :
        Relative accuracy of the weights (stop when ``||grad|| <= tol ||W|| / (C n)``, so
        ``||W - W*|| <= tol ||W||``), iteration limit, L-BFGS memory. Below ~1e-7 the
        rounding floor of float64 is reached at C >= 1e6 and a problem runs to ``max_iter``.

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
        bases = [row_space(Xc[t]) for t in range(T)]
    r = max(1, max(V.shape[1] for _, V in bases))
    Z = np.zeros((T, n, r))
    Vs = np.zeros((T, D, r))
    for t, (Zt, Vt) in enumerate(bases):
        Z[t, :, : Zt.shape[1]] = Zt
        Vs[t, :, : Vt.shape[1]] = Vt
    # L-BFGS's initial inverse Hessian: the inverse of a diagonal bound on the Hessian in
    # the SVD basis (softmax curvature <= 1/4 times the column's mean square, plus the
    # penalty). It changes the path, not the minimiser; without it the spread of the
    # singular values sets the iteration count.
    W = np.zeros((T, m, r, k))
    b = np.zeros((T, m, k))
    if coef0 is not None:
        W = np.matmul(np.swapaxes(Vs, 1, 2)[:, None], np.asarray(coef0, dtype=np.float64))
    if intercept0 is not None:
        b = np.array(intercept0, dtype=np.float64, copy=True).reshape(T, m, k)
        b = b + np.matmul(mu[:, None], np.asarray(coef0, dtype=np.float64))[:, :, 0] if coef0 is not None else b
    inv_cn = 1.0 / (Cs * n)
    col = 0.25 * (Z * Z).mean(axis=1)  # (T, r)
    # floor at 1e-3 of the largest: directions with almost no variance would otherwise get
    # steps of size C n, which the line search cannot shrink back at large C
    col = np.maximum(col, 1e-3 * col.max(axis=1, keepdims=True))
    hW = col[:, None, :, None] + inv_cn[:, :, None, None]  # (T, m, r, 1)
    precond = np.concatenate(
        [np.broadcast_to(1.0 / hW, (T, m, r, k)).reshape(T, m, r * k), np.full((T, m, k), 4.0)], axis=-1
    )

    from threadpoolctl import threadpool_limits

    # one BLAS thread: the products are small, and on a shared CPU a spinning second
    # thread makes them many times slower (measured: 40x on a loaded 2-core box)
    with threadpool_limits(limits=1):
        W, b, n_iter, conv = _lbfgs(Z, Y, W, b, inv_cn, precond, tol=tol, max_iter=max_iter, history=history)
    coef = np.matmul(Vs[:, None], W)  # (T, m, D, k)
    b = b - np.matmul(mu[:, None], coef)[:, :, 0]  # back to uncentred features
    return MultinomialPath(coef=coef, intercept=b, n_iter=n_iter, converged=conv)


def _lbfgs(Z, y, W, b, inv_cn, precond, *, tol, max_iter, history):
    """Batched, preconditioned L-BFGS over problems (T, m); parameters flattened to (T, m, P).

    A task leaves the batch as soon as all its ``m`` problems have stopped (the state is
    compacted then), so a few slow problems do not make every pass pay for all of them.
    Returns W, b, n_iter (T, m), converged (T, m).
    """
    T, m, r, k = W.shape
    P = r * k + k

    def fg(theta, Zs, ys, inv):
        t = theta.shape[0]
        Wt, bt = theta[..., : r * k].reshape(t, m, r, k), theta[..., r * k:]
        f, gW, gb = _loss_grad(Zs, ys, Wt, bt, inv)
        return f, np.concatenate([gW.reshape(t, m, r * k), gb], axis=-1)

    # stopping rule: the gradient's norm at most tol x the penalty's gradient norm,
    # ||W|| / (C n). The penalty makes f (1/(C n))-strongly convex in W, so then
    # ||W - W*|| <= C n ||g|| <= tol ||W||: the weights are right to a relative tol at
    # every C. (A rule relative to the gradient at zero, or scikit-learn's absolute one,
    # stops at C >= 1e5 on separable draws with f ~ 1e-7 some 30 % above the minimum and
    # different predictions; at small C both rules agree, as W ~ C X'(P - Y) there.)
    def reached(theta, grad, inv):
        gn = np.sqrt(np.einsum("tmp,tmp->tm", grad, grad))
        wn = np.sqrt(np.einsum("tmp,tmp->tm", theta[..., : r * k], theta[..., : r * k]))
        return gn <= tol * wn * inv

    x_out = np.concatenate([W.reshape(T, m, r * k), b], axis=-1)
    f, g = fg(x_out, Z, y, inv_cn)
    n_out = np.zeros((T, m), dtype=np.int64)
    conv_out = reached(x_out, g, inv_cn)
    # the live batch: tasks with a problem still running
    live = np.flatnonzero(~conv_out.all(axis=1))
    x, f, g = x_out[live], f[live], g[live]
    Zl, yl, invl, pre = Z[live], y[live], inv_cn[live], precond[live]
    done = conv_out[live].copy()
    S = np.zeros((history, live.size, m, P))
    Yk = np.zeros_like(S)
    rho = np.zeros((history, live.size, m))
    gamma = np.ones((live.size, m))
    n_iter = np.zeros((live.size, m), dtype=np.int64)
    slot = 0
    failed_before = np.zeros((live.size, m), dtype=bool)
    for it in range(max_iter):
        if live.size == 0:
            break
        # two-loop recursion, newest pair first; H0 = gamma * diag(precond)
        q = g.copy()
        alphas = []
        for j in range(history):
            i = (slot - 1 - j) % history
            a = rho[i] * np.einsum("tmp,tmp->tm", S[i], q)
            q -= a[..., None] * Yk[i]
            alphas.append((i, a))
        d = gamma[..., None] * pre * q
        for i, a in reversed(alphas):
            beta = rho[i] * np.einsum("tmp,tmp->tm", Yk[i], d)
            d += (a - beta)[..., None] * S[i]
        d = -d
        gd = np.einsum("tmp,tmp->tm", g, d)
        bad = gd >= 0  # not a descent direction (rounding): restart from steepest descent
        if bad.any():
            d[bad] = -g[bad]
            gd[bad] = -np.einsum("ip,ip->i", g[bad], g[bad])
        d[done] = 0.0
        step = np.where(done, 0.0, 1.0)
        if it == 0:  # the first step: at most unit length in the largest coordinate
            step = np.where(done, 0.0, np.minimum(1.0, 1.0 / np.maximum(np.abs(d).max(axis=-1), 1e-300)))
        # backtracking (Armijo) per problem; value and gradient at every trial point
        accepted = done.copy()
        x_new, f_new, g_new = x.copy(), f.copy(), g.copy()
        for _ in range(60):
            trial = x + step[..., None] * d
            ft, gt = fg(trial, Zl, yl, invl)
            ok = ~accepted & (ft <= f + 1e-4 * step * gd)
            x_new[ok], f_new[ok], g_new[ok] = trial[ok], ft[ok], gt[ok]
            accepted |= ok
            if accepted.all():
                break
            step = np.where(accepted, step, 0.5 * step)
        # no decrease found: forget the curvature pairs and retry from a scaled gradient
        # step; a second failure in a row is the rounding floor, stop that problem
        failed = ~accepted
        stalled = failed & failed_before
        failed_before = failed
        if failed.any():
            S[:, failed], Yk[:, failed], rho[:, failed] = 0.0, 0.0, 0.0
            gamma[failed] = 1.0
        s = x_new - x
        yv = g_new - g
        sy = np.einsum("tmp,tmp->tm", s, yv)
        ss = np.einsum("tmp,tmp->tm", s, s)
        keep = (sy > 1e-12 * ss) & ~done & ~failed
        S[slot] = np.where(keep[..., None], s, 0.0)
        Yk[slot] = np.where(keep[..., None], yv, 0.0)
        rho[slot] = np.where(keep, 1.0 / np.where(keep, sy, 1.0), 0.0)
        yy = np.einsum("tmp,tmp->tm", yv, pre * yv)
        gamma = np.where(keep, sy / np.where(keep, yy, 1.0), gamma)
        slot = (slot + 1) % history
        n_iter[~done] += 1
        x, f, g = x_new, f_new, g_new
        done = done | reached(x, g, invl) | stalled
        finished = done.all(axis=1)
        if finished.any():  # write the finished tasks out and compact the batch
            out = live[finished]
            x_out[out], n_out[out] = x[finished], n_iter[finished]
            conv_out[out] = reached(x[finished], g[finished], invl[finished])
            keep_t = ~finished
            live = live[keep_t]
            x, f, g, done, n_iter, gamma = x[keep_t], f[keep_t], g[keep_t], done[keep_t], n_iter[keep_t], gamma[keep_t]
            failed_before = failed_before[keep_t]
            Zl, yl, invl, pre = Zl[keep_t], yl[keep_t], invl[keep_t], pre[keep_t]
            S, Yk, rho = S[:, keep_t], Yk[:, keep_t], rho[:, keep_t]
    if live.size:  # max_iter reached
        x_out[live], n_out[live] = x, n_iter
        conv_out[live] = reached(x, g, invl)
    W = x_out[..., : r * k].reshape(T, m, r, k)
    return W, x_out[..., r * k:], n_out, conv_out
