"""The softmax cross-entropy of many small multinomial problems at once: value, gradient, Hessian products.

Shared by the few-shot probes' solvers: the L2 path (:mod:`clipica.probes.multinomial`, in
the row-space coordinates ``Z``) and the L1 probe (:mod:`clipica.fewshot.solver`, in the
features' own coordinates). Shapes: ``T`` tasks (each its own rows ``Z`` (T, n, r) and one-hot
classes ``Y`` (T, n, 1, k)), ``m`` problems per task (values of C) sharing the task's rows;
weights ``W`` (T, m, r, k), intercepts ``b`` (T, m, k); ``inv_cn`` (T, m) the L2 penalty's
weight ``1/(C n)`` (0 for none). Objective per problem::

    f(W, b) = mean_i [ logsumexp(z_i) - z_i[y_i] ] + inv_cn ||W||^2 / 2,   z_i = Z_i W + b

Every quantity is written around the true class, without cancellation where a row is
fitted to ``1 - p_y ~ 1e-16`` (large C on separable few-shot draws).
"""

from __future__ import annotations

import numpy as np


def loss_grad(Z, Y, W, b, inv_cn, curvature=False):
    """Objective, gradient and (with ``curvature``) the softmax terms of the Hessian.

    Z (T, n, r); Y (T, n, 1, k) one-hot classes (float); W (T, m, r, k); b (T, m, k);
    inv_cn (T, m) = 1/(C n). Returns f (T, m), gW (T, m, r, k), gb (T, m, k), and with
    ``curvature`` also ``(Pn, py)``: the probabilities with the true class's entry set to 0
    (T, n, m, k) and the true class's probability (T, n, m), which is all that
    :func:`hess_vec` needs. The ``m`` problems of a task share one (n, r) @ (r, m k)
    product (one BLAS call).

    Written without cancellation for well-fitted rows: the row loss is
    ``log1p(s / e_y)`` and the true class's residual ``-s / sum(e)``, with ``s`` the sum
    of the other classes' ``e``. The naive ``log(sum e) - z_y`` and ``p_y - 1`` lose
    every digit below 1e-16 absolute; at C >= 1e5 on separable few-shot draws the
    objective is ~1e-7, so they would leave only ~9 digits of it and of its gradient,
    and the solver stops at that floor, far from the minimiser. The one-hot products stand
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
    terms = (e.copy(), ey * inv_se) if curvature else None
    e -= Y * (others * inv_se)[..., None]  # P - Y
    gW = np.matmul(np.swapaxes(Z, 1, 2), e.reshape(T, n, m * k)).reshape(T, r, m, k).transpose(0, 2, 1, 3)
    gW = gW / n + inv_cn[..., None, None] * W
    gb = e.sum(axis=1) / n
    return (f, gW, gb, terms) if curvature else (f, gW, gb)


def hess_vec(Z, Y, terms, inv_cn, V, v):
    """Hessian-vector products ``H (V, v)`` of every problem.

    Z (T, n, r); Y (T, n, 1, k); ``terms`` from :func:`loss_grad`; inv_cn (T, m);
    directions V (T, m, r, k), v (T, m, k). With ``U = Z V + v`` (the logits' change) the
    softmax's Jacobian gives ``R_c = p_c ((u_c - u_y) - s)``, ``s = sum_c p_c (u_c - u_y)``:
    written around the true class ``y``, so rows fitted to ``1 - p_y ~ 1e-16`` keep their
    digits (``p_c (u_c - p.u)`` would cancel there). Returns HV (T, m, r, k), Hv (T, m, k).
    """
    Pn, py = terms
    T, m, r, k = V.shape
    n = Z.shape[1]
    U = np.matmul(Z, V.transpose(0, 2, 1, 3).reshape(T, r, m * k)).reshape(T, n, m, k) + v[:, None]
    U -= (U * Y).sum(axis=-1, keepdims=True)  # u_c - u_y
    s = (Pn * U).sum(axis=-1, keepdims=True)
    U -= s
    U *= Pn  # the y entry 0: Pn has none
    U -= Y * (py[..., None] * s)
    HV = np.matmul(np.swapaxes(Z, 1, 2), U.reshape(T, n, m * k)).reshape(T, r, m, k).transpose(0, 2, 1, 3)
    return HV / n + inv_cn[..., None, None] * V, U.sum(axis=1) / n


def hess_diag(Z, Y, terms, inv_cn):
    """The Hessian's diagonal (T, m, r k + k), the conjugate gradients' preconditioner.

    The intercepts get one value per problem (their diagonal's mean): the Hessian has the
    null direction ``b + c 1``, and a uniform scaling keeps every iterate orthogonal to it.
    """
    Pn, py = terms
    T, n, m, k = Pn.shape
    r = Z.shape[2]
    Dg = Pn * (1.0 - Pn) + Y * (py * (1.0 - py))[..., None]  # p_c (1 - p_c), (T, n, m, k)
    dW = np.matmul(np.swapaxes(Z * Z, 1, 2), Dg.reshape(T, n, m * k)).reshape(T, r, m, k).transpose(0, 2, 1, 3)
    dW = dW / n + inv_cn[..., None, None]
    db = np.broadcast_to(Dg.sum(axis=1).mean(axis=-1, keepdims=True) / n, (T, m, k))
    return np.concatenate([dW.reshape(T, m, r * k), db], axis=-1)


def pcg(Z, Y, terms, inv_cn, g, act, eta, max_cg, *, mask=None, ridge=None):
    """Newton directions: solve ``(H + ridge I) d = -g`` per problem by preconditioned conjugate gradients.

    g (T, m, P); act (T, m) the problems to solve (others get 0); eta (T, m): stop a problem
    when its residual is ``<= eta ||g||``; ``mask`` (T, m, P) of 0/1, optional: solve on the
    free coordinates only (the others stay 0: the L1 probe's orthant); ``ridge`` (T, m),
    optional. A task whose problems have all stopped leaves the products. Returns d
    (T, m, P) and the products computed (per task, summed over m).
    """
    T, m, P = g.shape
    r, k = Z.shape[2], Y.shape[-1]
    ridge = np.zeros((T, m)) if ridge is None else ridge
    mask = np.ones((T, m, 1)) if mask is None else mask
    Minv = 1.0 / np.maximum(hess_diag(Z, Y, terms, inv_cn) + ridge[..., None], 1e-300)
    out = np.zeros_like(g)
    products = np.zeros(T, dtype=np.int64)
    # the batch of tasks still running, compacted whenever one finishes (gathering the rows at
    # every step instead cost as much as the products: measured)
    live = np.flatnonzero(act.any(axis=1))
    Z, Y, Pn, py, inv_cn = Z[live], Y[live], terms[0][live], terms[1][live], inv_cn[live]
    Minv, mask, ridge, act = Minv[live], mask[live], ridge[live][..., None], act[live]
    res = -g[live] * mask
    z = Minv * res
    p = z.copy()
    d = np.zeros_like(res)
    rz = np.einsum("tmp,tmp->tm", res, z)
    goal = eta[live] * np.sqrt(np.einsum("tmp,tmp->tm", res, res))
    for _ in range(max_cg):
        if live.size == 0:
            break
        HV, Hv = hess_vec(Z, Y, (Pn, py), inv_cn, p[..., : r * k].reshape(live.size, m, r, k), p[..., r * k:])
        Hp = np.concatenate([HV.reshape(live.size, m, r * k), Hv], axis=-1) * mask + ridge * p
        products[live] += 1
        pHp = np.einsum("tmp,tmp->tm", p, Hp)
        # no curvature left along p (rounding): stop there
        alpha = np.where(act & (pHp > 0), rz / np.where(pHp > 0, pHp, 1.0), 0.0)
        d += alpha[..., None] * p
        res -= alpha[..., None] * Hp
        act = act & (pHp > 0) & (np.sqrt(np.einsum("tmp,tmp->tm", res, res)) > goal)
        z = Minv * res
        rz_new = np.einsum("tmp,tmp->tm", res, z)
        beta = np.where(act, rz_new / np.where(rz > 0, rz, 1.0), 0.0)
        p = z + beta[..., None] * p
        rz = rz_new
        keep = act.any(axis=1)
        if not keep.all():
            out[live[~keep]] = d[~keep]
            live, Z, Y, Pn, py, inv_cn = live[keep], Z[keep], Y[keep], Pn[keep], py[keep], inv_cn[keep]
            Minv, mask, ridge, act, res, p, d = Minv[keep], mask[keep], ridge[keep], act[keep], res[keep], p[keep], d[keep]
            rz, goal = rz[keep], goal[keep]
    out[live] = d
    return out, products
