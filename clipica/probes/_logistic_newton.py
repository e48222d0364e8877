"""Stage 2 of :func:`clipica.probes.logistic.fit_logistic`: Newton steps on all rows.

Two kinds, the cheap one first (:func:`newton`):

1. **Subsample-Hessian steps** (:func:`_newton_steps`): each label's Hessian is taken once, on
   the subsample at the stage-1 start, factored once, and reused for up to 10 steps with the exact
   full-data gradient: one pass over the rows per step. Where the start is close to the optimum
   (most attributes) this converges in a few passes (``clipica bench probe``: 17 passes on
   200,000 rows, 1.1 s).
2. **Per-label Newton** (:func:`newton_stage`), when those steps stop contracting (below).

Private to :mod:`clipica.probes`. Works on the stacked, per-label-scaled problem of
:mod:`clipica.probes._logistic_solver` (``W`` (p, A), ``b`` (A,) on standardised features
``Xc`` (n, p), each label's objective divided by ``C * n_a``).

Why the second kind, and not L-BFGS on all rows: on rare, nearly separable attributes (CelebA's 2-7 % ones, embedded
along clean directions) the C = 1 optimum lies far out, the loss is nearly flat along the growing
weights, so the subsample's curvature at the start is far from the curvature where the
optimum lies and the steps of kind 1 stall; the stacked L-BFGS that used to finish them (one
line search shared by every label) needed ~120 passes over the rows per code set (``clipica
bench pipeline``, realistic shape; issue 28). Newton's method with each label's own current
Hessian and its own line search needs a handful. It costs more per step than kind 1 (a Hessian
per label per step, a line-search pass), so it runs only where kind 1 stalled, and only on the
labels not yet converged.

Each step, for every label not yet converged:

- the exact full-data gradient (one pass over the rows, in row blocks);
- the label's Hessian ``[X 1]^T diag(s) [X 1]`` (``s = p (1 - p) / n_a``) at the current
  weights, estimated from :data:`HESSIAN_ROWS` rows: the half with the largest ``s`` (on a
  nearly separable label almost all of the curvature sits in the few rows near the boundary)
  exactly, plus a uniform sample of the others weighted to stand for all of them (unbiased).
  The estimate only preconditions the step: the fixed point is set by the exact gradient;
- a backtracking (Armijo) line search on the label's exact full-data objective, evaluated from
  the logits ``Z`` and the step's logits ``D = Xc step`` (one more pass), so no label's
  step can increase its objective;
- a label stops when its largest gradient entry is below ``tol`` (scikit-learn's rule) and
  costs nothing afterwards.

Memory: the logits ``Z`` and the step's logits ``D`` of the labels still running, (n, A) each
in ``Xc``'s dtype (the stage before kept two such buffers too); all else is per row block.
numpy/scipy only.
"""

from __future__ import annotations

import numpy as np

from clipica.probes._logistic_solver import _logistic_parts

#: rows each label's Hessian is estimated from (half its heaviest rows, half a uniform sample)
HESSIAN_ROWS = 8192
#: rows per block of the passes (Xc's block and the (rows, A) temporaries stay in cache)
_BLOCK_ROWS = 8192


def _blocks(n: int):
    for a in range(0, n, _BLOCK_ROWS):
        yield slice(a, min(a + _BLOCK_ROWS, n))


def _weights(Wrow, rows: slice, labels: np.ndarray):
    """Row weights 1 / n_a of ``labels`` on ``rows``: (rows, l) or (l,) when nothing is missing."""
    return Wrow[rows][:, labels] if Wrow.ndim == 2 else Wrow[labels]


def _gradient(Xc, Z, Yf, Wrow, lam, mask, W, act):
    """Exact gradient ``(gW (p, l), gb (l,))`` of the labels ``act`` from their logits ``Z``."""
    from scipy.special import expit

    gW = np.zeros((Xc.shape[1], act.size))
    gb = np.zeros(act.size)
    for r in _blocks(Xc.shape[0]):
        R = expit(Z[r])
        R -= Yf[r][:, act]
        R *= _weights(Wrow, r, act)
        gW += Xc[r].T @ R
        gb += R.sum(axis=0, dtype=np.float64)
    gW += lam[act] * W[:, act]
    if mask is not None:
        gW *= mask[:, act]
    return gW, gb


def _loss_change(Z, D, t, Yf, Wrow, act) -> np.ndarray:
    """Change of each label's data loss from logits ``Z`` to ``Z - t D`` (``t`` (l,)), (l,).

    Summed row by row as differences in float64 (``Z`` and ``D`` may be float32): near the
    optimum a step changes the objective by ~1e-9 of its value, below float32's resolution
    of the objective itself but far above the differences' rounding."""
    change = np.zeros(act.size)
    for r in _blocks(Z.shape[0]):
        # logloss(y, z) = log(1 + e^{u z}) with u = 1 - 2y, for y in {0, 1}
        u = 1.0 - 2.0 * Yf[r][:, act].astype(np.float64)
        uz = u * Z[r]
        L = np.logaddexp(0.0, uz - t * (u * D[r]))
        L -= np.logaddexp(0.0, uz)
        L *= _weights(Wrow, r, act)
        change += L.sum(axis=0)
    return change


def _hessian_rows(s: np.ndarray, m: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Rows and weights of an unbiased estimate of ``sum_i s_i x_i x_i^T`` from ``m`` rows: the
    ``m / 2`` rows of largest ``s`` exactly, a uniform sample of the rest scaled up."""
    n = s.size
    if n <= m:
        return np.arange(n), s
    half = m // 2
    top = np.argpartition(s, n - half)[n - half :]
    rest = np.ones(n, dtype=bool)
    rest[top] = False
    others = np.flatnonzero(rest)
    pick = rng.choice(others, size=m - half, replace=False)
    return np.concatenate([top, pick]), np.concatenate([s[top], s[pick] * (others.size / pick.size)])


def _steps(Xc, Z, Wrow, lam, mask, gW, gb, act, rng):
    """Each label's Newton step ``(dW (p, l), db (l,))`` with its sampled Hessian (module
    docstring); where a Hessian cannot be factorised the step is the gradient scaled by the
    Hessian's trace (still line-searched)."""
    from scipy.linalg import LinAlgError, cho_factor, cho_solve
    from scipy.special import expit

    p = Xc.shape[1]
    dW = np.zeros((p, act.size))
    db = np.zeros(act.size)
    for j, a in enumerate(act):
        P = expit(Z[:, j].astype(np.float64))
        s = P * (1.0 - P) * (Wrow[:, a] if Wrow.ndim == 2 else Wrow[a])
        rows, w = _hessian_rows(s, HESSIAN_ROWS, rng)
        cols = np.arange(p) if mask is None else np.flatnonzero(mask[:, a])
        X1 = np.ones((rows.size, cols.size + 1))
        X1[:, :-1] = Xc[rows][:, cols] if mask is not None else Xc[rows]
        H = (X1 * w[:, None]).T @ X1
        k = cols.size
        H[np.arange(k), np.arange(k)] += lam[a]
        # a tiny ridge keeps a (nearly) separable label factorisable
        H[np.diag_indices(k + 1)] += 1e-10 * max(float(np.trace(H)) / (k + 1), 1e-12)
        g = np.append(gW[cols, j], gb[j])
        try:
            step = cho_solve(cho_factor(H), g)
        except LinAlgError:
            step = g / max(float(np.trace(H)), 1e-12)
        dW[cols, j] = step[:-1]
        db[j] = step[-1]
    return dW, db


def _line_search(Z, D, slope, dW, W, lam, Yf, Wrow, act):
    """Per-label backtracking: the largest ``t`` in 1, 1/2, 1/4, ... with Armijo's decrease of
    the label's objective. Returns ``(t (l,), ok (l,) bool)``: ok False where no t >= 1e-8
    decreased it."""
    t = np.ones(act.size)
    ok = np.zeros(act.size, dtype=bool)
    todo = np.arange(act.size)
    while todo.size:
        cols, tt, dw = act[todo], t[todo], dW[:, todo]
        change = _loss_change(Z[:, todo], D[:, todo], tt, Yf, Wrow, cols)
        # the penalty's change, exactly: lam/2 (|W - t dW|^2 - |W|^2)
        change += 0.5 * lam[cols] * (tt * tt * (dw * dw).sum(axis=0) - 2 * tt * (W[:, cols] * dw).sum(axis=0))
        good = change <= -1e-4 * tt * slope[todo]
        ok[todo[good]] = True
        todo = todo[~good]
        t[todo] *= 0.5
        todo = todo[t[todo] >= 1e-8]
    return t, ok


def newton_stage(Xc, Yf, Wrow, lam, mask, W, b, *, tol, random_state=0, max_steps=50):
    """Newton steps on all rows (module docstring) from ``W``, ``b`` (updated in place).

    Returns ``(passes over the rows, largest gradient entry over all labels)``; a label whose
    line search fails stops there (its gradient counts in the figure returned; L-BFGS on all
    rows then finishes, :func:`clipica.probes._logistic_solver._finish`).
    """
    rng = np.random.default_rng([random_state, 28])
    dtype = Xc.dtype
    act = np.arange(W.shape[1])
    gnorm = np.full(W.shape[1], np.inf)
    Z = Xc @ W.astype(dtype)
    Z += b.astype(dtype)
    passes = 1
    for _ in range(max_steps):
        gW, gb = _gradient(Xc, Z, Yf, Wrow, lam, mask, W, act)
        passes += 1
        g = np.maximum(np.abs(gW).max(axis=0, initial=0.0), np.abs(gb))
        gnorm[act] = g
        run = g > tol
        if not run.any():
            break
        act, Z, gW, gb = act[run], Z[:, run], gW[:, run], gb[run]
        dW, db = _steps(Xc, Z, Wrow, lam, mask, gW, gb, act, rng)
        D = Xc @ dW.astype(dtype)
        D += db.astype(dtype)
        passes += 1
        t, ok = _line_search(Z, D, (gW * dW).sum(axis=0) + gb * db, dW, W, lam, Yf, Wrow, act)
        W[:, act[ok]] -= t[ok] * dW[:, ok]
        b[act[ok]] -= t[ok] * db[ok]
        Z[:, ok] -= t[ok].astype(dtype) * D[:, ok]
        del D
        if not ok.all():  # no decrease possible along the step: L-BFGS finishes these labels
            act, Z = act[ok], Z[:, ok]
            if not act.size:
                break
    return passes, float(gnorm.max())


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


def _newton_factors(Xsub, obs_s, W, b, lam, mask):
    """Cholesky factors of each label's (p + 1) x (p + 1) Hessian on the subsample rows (with a
    feature mask: of its own support, (k + 1) x (k + 1)), as ``(cols or None, factor)`` pairs;
    None when one cannot be factorised (then L-BFGS on all rows finishes)."""
    from scipy.linalg import cho_factor
    from scipy.special import expit

    p, A = W.shape
    m_a = np.maximum(obs_s.sum(axis=0), 1).astype(np.float64)
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
            return None
    return factors


def _newton_steps(Xc, Yf, Wrow, lam, mask, W, b, factors, *, dtype, tol) -> tuple[int, float]:
    """Stage 2: at most 10 Newton steps on all rows, each with the exact full-data gradient
    and the subsample Hessians ``factors`` (which only slow the rate, never move the fixed
    point). Updates ``W`` and ``b`` in place; returns ``(passes over the data, grad norm)``."""
    from scipy.linalg import cho_solve

    n_iter, grad_norm, last = 0, np.inf, np.inf
    for _ in range(10 if factors else 0):
        _, gW, gb = _logistic_parts(Xc, W, b, Yf, Wrow, lam, mask, dtype, want_loss=False)
        n_iter += 1
        grad_norm = max(float(np.abs(gW).max(initial=0.0)), float(np.abs(gb).max()))
        if grad_norm <= tol or grad_norm > 0.7 * last:
            break  # converged, or not contracting: L-BFGS on all rows finishes
        last = grad_norm
        for a, (cols, cf) in enumerate(factors):
            if cols is None:
                step = cho_solve(cf, np.append(gW[:, a], gb[a]))
                W[:, a] -= step[:-1]
            else:
                step = cho_solve(cf, np.append(gW[cols[:-1], a], gb[a]))
                W[cols[:-1], a] -= step[:-1]
            b[a] -= step[-1]
    return n_iter, grad_norm


def newton(Xc, Yf, Wrow, lam, mask, W, b, Xsub, obs_s, *, dtype, tol, random_state=0) -> tuple[int, float]:
    """Stage 2 (module docstring): the subsample-Hessian steps, then per-label Newton where they
    stalled. ``Xsub`` (m, p) float64 and ``obs_s`` (m, A) are the stage-1 subsample's standardised
    rows and observed mask. Updates ``W``, ``b`` in place; returns ``(passes, largest gradient entry)``."""
    factors = _newton_factors(Xsub, obs_s, W, b, lam, mask)
    passes, grad_norm = _newton_steps(Xc, Yf, Wrow, lam, mask, W, b, factors, dtype=dtype, tol=tol)
    if grad_norm > tol:
        more, grad_norm = newton_stage(Xc, Yf, Wrow, lam, mask, W, b, tol=tol, random_state=random_state)
        passes += more
    return passes, grad_norm
