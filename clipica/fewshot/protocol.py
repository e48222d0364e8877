"""Few-shot linear probes with and without ICA: Liu et al.'s experiment (arXiv 2402.06223).

Arrays in, a typed :class:`~clipica.fewshot.result.FewShotResult` out (``clipica.fewshot/1``);
reading stores is :mod:`clipica.fewshot.stores`, figures :mod:`clipica.viz.fewshot`.

Protocol (CoOp's linear probe, lpclip/linear_probe.py, with Liu et al.'s variants):

- **Shots** per class 1, 2, 4, 8, 16 with validation shots 1, 2, 4, 4, 4; 10 seeds.
  For seed ``s`` and class ``c`` the pool rows of ``c`` are permuted by
  ``numpy.random.default_rng([s, c])``; the first ``shots`` rows train, the next
  ``val_shots`` validate (so draws are reproducible, independent across classes, and
  nested across shot counts).
- **Probe**: multinomial L2 logistic regression, scikit-learn's objective and lbfgs
  semantics (:func:`clipica.probes.multinomial.fit_multinomial_path`), on the features as given
  (no standardisation, as CoOp), solved until the weights are right to a relative 1e-4
  (``||W - W*|| <= 1e-4 ||W||``, :data:`SOLVER_TOL`, from the penalty's strong convexity):
  at C >= 1e5 on separable draws the loss is ~1e-7, and a gradient rule relative to the
  gradient at zero (or scikit-learn's absolute one) stops short of the minimiser by enough
  to change predictions.
- **C search** on the validation shots: the grid 1e6, 1e4, ..., 1e-6 (the first best
  wins, i.e. the largest C on ties), then 8 bisection steps in log10 C starting from
  [peak/10, peak*10]: fit both ends, keep the better one (the left, smaller C, on ties)
  and halve the interval towards it. The final model is the one kept at the last step.
  Each value of the grid (smallest C first) and each bisection step (both ends, only
  those not fitted yet) is one batched fit over seeds x variants, warm-started from the
  nearest C already fitted for the task.
- **Variants**, on the same rows, every decomposition fitted on the few-shot train+val
  rows only:

  - ``linear``: the raw features;
  - ``ica``: clipica's ICA with K1 components (unit-variance sources);
  - ``pca+ica``: PCA to P dimensions (projection, not whitened, as scikit-learn's PCA in
    Liu et al.'s code) then ICA with K2 components;
  - ``pca``: clipica's PCA with K1 components, whitened: the ICA's own subspace and
    scale without its rotation. The control the paper lacks. Because the L2 penalty is
    rotation invariant, it equals ``ica`` in exact arithmetic (up to the ICA's
    convergence): a difference between ``ica`` and ``pca`` measures the solvers, not
    independence.

- **Dimensions** (:func:`variant_dims`): the paper's P=500, K1=300, K2=160 (for 512-d
  CLIP features and >= 2000 few-shot rows) scaled by one factor
  ``f = min(1, D / 500, n_fit / (4 * 300))`` (D features, ``n_fit`` train+val rows): PCA
  never exceeds the feature count and ICA keeps at least 4 rows per component.
  With 512-d features and ImageNet's 1000 classes f = 1 at every shot count.
- **Test sets**: accuracy of the kept model. Classes absent from a test set are masked
  (their logits set to -inf before the argmax), as ImageNet-A/-R are evaluated on their
  200-class subsets; test rows of a class the probe never saw are dropped (counted).
"""

from __future__ import annotations

import warnings

import numpy as np

from clipica.errors import InputError
from clipica.fewshot.result import FewShotResult

SHOTS = (1, 2, 4, 8, 16)
VAL_SHOTS = (1, 2, 4, 4, 4)
QUICK_SHOTS = (1, 4, 16)
QUICK_VAL_SHOTS = (1, 4, 4)
N_SEEDS = 10
QUICK_SEEDS = 3
C_GRID = (1e6, 1e4, 1e2, 1.0, 1e-2, 1e-4, 1e-6)
BISECTION_STEPS = 8
#: relative accuracy of the probe weights (:func:`clipica.probes.multinomial.fit_multinomial_path`)
SOLVER_TOL = 1e-4
VARIANTS = ("linear", "ica", "pca+ica", "pca")
#: Liu et al.'s dimensions for 512-d features: PCA 500, ICA 300, PCA -> ICA 160
PAPER_DIMS = {"pca_dims": 500, "ica": 300, "pca+ica": 160}
ROWS_PER_COMPONENT = 4
DIMS_RULE = (
    "f = min(1, D/500, n_fit/(4*300)); P = round(500 f), K1 = round(300 f), K2 = round(160 f), "
    "each at least 1 (D: feature count, n_fit: few-shot train+val rows)"
)


# -- classes and sampling --------------------------------------------------------------


def class_codes(labels, label: str) -> tuple[np.ndarray, list[str]]:
    """Class index per row from a label column or a ``+``-joined combination of columns.

    ``labels``: a pandas DataFrame (one row per embedding). ``label``: ``"Male"`` or
    ``"Male+Smiling+Eyeglasses+Wearing_Hat"`` (every combination of values is a class).
    Returns ``(codes, classes)``: int64 array (n_rows,) with -1 for rows with a missing
    value, and the sorted class names (``"Male=1,Smiling=0"`` for combinations).
    Raises InputError naming the missing columns and the available ones.
    """
    cols = [c.strip() for c in str(label).split("+") if c.strip()]
    if not cols:
        raise InputError("fewshot: --label is empty; give a column name or COL+COL+... for combinations")
    missing = [c for c in cols if c not in labels.columns]
    if missing:
        avail = ", ".join(str(c) for c in labels.columns if c not in ("id", "source_index", "split")) or "none"
        raise InputError(f"fewshot: no label column {', '.join(missing)} in the store (its columns: {avail})")
    frame = labels[cols]
    valid = frame.notna().all(axis=1).to_numpy()

    def fmt(v) -> str:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return str(v)

    keys = [
        ",".join(f"{c}={fmt(v)}" for c, v in zip(cols, vals, strict=False)) if len(cols) > 1 else fmt(vals[0])
        for vals in frame.itertuples(index=False, name=None)
    ]
    classes = sorted({k for k, ok in zip(keys, valid, strict=False) if ok})
    index = {k: i for i, k in enumerate(classes)}
    codes = np.array([index[k] if ok else -1 for k, ok in zip(keys, valid, strict=False)], dtype=np.int64)
    return codes, classes


def sample_fewshot(
    codes: np.ndarray, n_classes: int, shots: int, val_shots: int, seed: int, classes=None
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, val)`` of one few-shot draw, class by class.

    ``codes``: (n_rows,) class index or -1 (not in the pool). For class ``c`` its rows
    are permuted by ``default_rng([seed, c])``; train takes the first ``shots``, val the
    next ``val_shots``. Returned sorted by class, then draw order: ``shots * n_classes``
    and ``val_shots * n_classes`` indices. InputError when a class has too few rows.
    """
    codes = np.asarray(codes)
    need = int(shots) + int(val_shots)
    train, val = [], []
    for c in range(n_classes):
        rows = np.flatnonzero(codes == c)
        if rows.size < need:
            name = classes[c] if classes is not None else c
            raise InputError(
                f"fewshot: class {name!r} has {rows.size} rows in the training pool; "
                f"{shots} shots + {val_shots} validation shots need {need}"
            )
        perm = np.random.default_rng([int(seed), c]).permutation(rows.size)
        train.append(rows[perm[:shots]])
        val.append(rows[perm[shots:need]])
    return np.concatenate(train), np.concatenate(val)


def variant_dims(n_fit: int, n_features: int) -> dict[str, int]:
    """Component counts for ``n_fit`` few-shot train+val rows of ``n_features``-d features.

    Returns ``{"pca_dims": P, "ica": K1, "pca+ica": K2, "pca": K1}`` (see :data:`DIMS_RULE`).
    """
    f = min(1.0, n_features / PAPER_DIMS["pca_dims"], n_fit / (ROWS_PER_COMPONENT * PAPER_DIMS["ica"]))
    P = max(1, min(n_features, round(PAPER_DIMS["pca_dims"] * f)))
    K1 = max(1, min(P, round(PAPER_DIMS["ica"] * f)))
    K2 = max(1, min(P, round(PAPER_DIMS["pca+ica"] * f)))
    return {"pca_dims": P, "ica": K1, "pca+ica": K2, "pca": K1}


# -- the C search ----------------------------------------------------------------------------


def _accuracy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Accuracy per task: logits (T, n, k), y (T, n) -> (T,)."""
    return (logits.argmax(axis=-1) == y).mean(axis=-1)


class _PathCache:
    """Fits of each task keyed by log10 C; warm starts come from the nearest one."""

    def __init__(self, T: int):
        self.logc: list[list[float]] = [[] for _ in range(T)]
        self.fits: list[list[tuple[np.ndarray, np.ndarray, float]]] = [[] for _ in range(T)]

    def get(self, t: int, logc: float):
        for lc, fit in zip(self.logc[t], self.fits[t], strict=False):
            if abs(lc - logc) < 1e-12:
                return fit
        return None

    def nearest(self, t: int, logc: float):
        if not self.logc[t]:
            return None
        j = int(np.argmin(np.abs(np.asarray(self.logc[t]) - logc)))
        return self.fits[t][j]

    def put(self, t: int, logc: float, fit) -> None:
        self.logc[t].append(logc)
        self.fits[t].append(fit)


def search_c(
    Xtr: np.ndarray,
    ytr: np.ndarray,
    Xva: np.ndarray,
    yva: np.ndarray,
    n_classes: int,
    *,
    grid=C_GRID,
    steps: int = BISECTION_STEPS,
    tol: float = SOLVER_TOL,
    max_iter: int = 1000,
) -> dict[str, np.ndarray]:
    """CoOp's C search for ``T`` tasks at once (see the module docstring).

    ``Xtr`` (T, n, D), ``ytr`` (T, n), ``Xva`` (T, nv, D), ``yva`` (T, nv).
    Returns ``coef`` (T, D, k), ``intercept`` (T, k), ``C`` (T,), ``val_accuracy`` (T,),
    ``n_fits`` (T,) and ``n_iter`` (total L-BFGS iterations per task).
    """
    from clipica.probes.multinomial import fit_multinomial_path

    T = Xtr.shape[0]
    cache = _PathCache(T)
    iters = np.zeros(T, dtype=np.int64)

    def val_acc(coef, b, sel=slice(None)):
        return _accuracy(np.matmul(Xva[sel], coef) + b[:, None, :], yva[sel])

    def fit(*logcs: np.ndarray) -> None:
        """Fit every task at each of its log10 C values in ``logcs`` (arrays (T,)), warm-started,
        into the cache: all (task, C) pairs not cached yet in one batched call."""
        todo = []
        for lc in logcs:
            for t in range(T):
                if cache.get(t, lc[t]) is None and (t, lc[t]) not in todo:
                    todo.append((t, float(lc[t])))
        if not todo:
            return
        D, k = Xtr.shape[2], n_classes
        W0 = np.zeros((len(todo), 1, D, k))
        b0 = np.zeros((len(todo), 1, k))
        for j, (t, lc) in enumerate(todo):
            near = cache.nearest(t, lc)
            if near is not None:
                W0[j, 0], b0[j, 0] = near[0], near[1]
        sel = np.asarray([t for t, _ in todo])
        path = fit_multinomial_path(
            Xtr[sel], ytr[sel], (10.0 ** np.asarray([lc for _, lc in todo]))[:, None], n_classes=k,
            coef0=W0, intercept0=b0, tol=tol, max_iter=max_iter,
        )
        accs = val_acc(path.coef[:, 0], path.intercept[:, 0], sel)
        for j, (t, lc) in enumerate(todo):
            cache.put(t, lc, (path.coef[j, 0], path.intercept[j, 0], float(accs[j])))
            iters[t] += path.n_iter[j, 0]

    # the grid along the C path, smallest C first, each value warm-started from the
    # previous one (measured: half the time of one batch of all values, which keeps a
    # task's easy small-C problems in every pass until its slowest one stops)
    logs = np.log10(np.asarray(grid, dtype=np.float64))
    for lc in np.sort(logs):
        fit(np.full(T, lc))
    grid_acc = np.array([[cache.get(t, lc)[2] for lc in logs] for t in range(T)])  # (T, m), grid order
    peak = logs[np.argmax(grid_acc, axis=1)]  # first maximum: grid order
    left, right = peak - 1.0, peak + 1.0
    chosen = peak.copy()
    for _ in range(steps):
        fit(left, right)  # one batched call: a task's new end (or both) with every other task's
        acc_l = np.array([cache.get(t, left[t])[2] for t in range(T)])
        acc_r = np.array([cache.get(t, right[t])[2] for t in range(T)])
        go_right = acc_l < acc_r
        mid = 0.5 * (left + right)
        chosen = np.where(go_right, right, left)
        left, right = np.where(go_right, mid, left), np.where(go_right, right, mid)
    final = [cache.get(t, chosen[t]) for t in range(T)]
    return {
        "coef": np.stack([f[0] for f in final]),
        "intercept": np.stack([f[1] for f in final]),
        "C": 10.0**chosen,
        "val_accuracy": np.array([f[2] for f in final]),
        "n_fits": np.array([len(cache.logc[t]) for t in range(T)]),
        "n_iter": iters,
    }


def masked_accuracy(logits: np.ndarray, y: np.ndarray, present: np.ndarray) -> float:
    """Accuracy with the classes not in ``present`` masked out of the argmax.

    ``logits`` (n, k); ``y`` (n,) in ``present``; ``present`` bool (k,). The ImageNet-A/-R
    convention: a 200-class test set is scored among its own 200 classes only.
    """
    if y.size == 0:
        return float("nan")
    z = np.where(present[None, :], logits, -np.inf)
    return float((z.argmax(axis=1) == y).mean())


# -- variants -------------------------------------------------------------------------------


def _decomposition(name: str, k: int, seed: int):
    from clipica.decompositions import make_decomposition

    return make_decomposition(name, int(k), random_state=int(seed))


def fit_variant(variant: str, X_fit: np.ndarray, dims: dict[str, int], seed: int):
    """Fit ``variant``'s feature map on the few-shot rows ``X_fit`` (n_fit, D); return it.

    The map takes (n, D) features to (n, d_variant) float64. ICA and PCA are clipica's own
    (:mod:`clipica.decompositions`), seeded with the draw's seed.
    """
    if variant == "linear":
        return lambda X: np.asarray(X, dtype=np.float64)
    with warnings.catch_warnings():
        # FastICA on a few dozen rows often stops at max_iter: the fit is still the
        # protocol's (Liu et al.'s scikit-learn FastICA behaves the same), so do not flood
        warnings.simplefilter("ignore")
        if variant in ("ica", "pca"):
            dec = _decomposition(variant, dims[variant], seed).fit(X_fit)
            return lambda X: np.asarray(dec.transform(X), dtype=np.float64)
        if variant == "pca+ica":
            pca = _decomposition("pca", dims["pca_dims"], seed).fit(X_fit)
            # scikit-learn's PCA (Liu et al.) projects without whitening: undo clipica's
            # unit-variance scaling so that the ICA's own whitening sees the PCA variances
            scale = np.sqrt(np.asarray(pca.explained_variance_, dtype=np.float64))

            def project(X):
                return np.asarray(pca.transform(X), dtype=np.float64) * scale

            ica = _decomposition("ica", dims["pca+ica"], seed).fit(project(X_fit))
            return lambda X: np.asarray(ica.transform(project(X)), dtype=np.float64)
    raise InputError(f"fewshot: unknown variant {variant!r}; expected some of {', '.join(VARIANTS)}")


# -- the experiment --------------------------------------------------------------------------


def run_fewshot(
    X: np.ndarray,
    codes: np.ndarray,
    classes: list[str],
    tests: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    label: str = "",
    shots=SHOTS,
    val_shots=VAL_SHOTS,
    seeds=range(N_SEEDS),
    variants=VARIANTS,
    tol: float = SOLVER_TOL,
    max_iter: int = 1000,
    fingerprints: dict[str, str] | None = None,
    progress: bool = False,
    search=None,
    dims: dict[str, int] | None = None,
) -> FewShotResult:
    """Run the protocol (module docstring) on a training pool and named test sets.

    Parameters
    ----------
    X : array of shape (n_rows, D)
        Features of the training pool (few-shot rows are drawn from it).
    codes : int array of shape (n_rows,)
        Class index per pool row in ``[0, len(classes))``; -1 excludes a row.
    classes : list of str
        Class names.
    tests : dict name -> (X_test (n_t, D), codes_t (n_t,))
        Test sets; ``codes_t`` index ``classes``, -1 for a class the probe never saw
        (dropped and counted). ``"in-domain"`` first by convention.
    shots, val_shots, seeds, variants :
        The protocol's grid (defaults: the paper's).
    dims : dict, optional
        Component counts ``{"pca_dims": P, "ica": K1, "pca+ica": K2, "pca": K1}`` for every
        shot count instead of :func:`variant_dims` (each capped at the few-shot rows - 1).
    search : callable, optional
        Replaces :func:`search_c` (same signature and return keys); ``clipica bench
        fewshot`` passes a loop of scikit-learn fits here to compare on the same features.
    """
    import time

    from tqdm.auto import tqdm

    search = search or search_c
    t_dec = t_search = t_eval = 0.0

    X = np.asarray(X)
    codes = np.asarray(codes, dtype=np.int64)
    shots, val_shots, seeds = [int(s) for s in shots], [int(v) for v in val_shots], [int(s) for s in seeds]
    variants = list(variants)
    if len(shots) != len(val_shots):
        raise InputError(f"fewshot: {len(shots)} shot counts but {len(val_shots)} validation shot counts")
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise InputError(f"fewshot: unknown variant(s) {', '.join(bad)}; expected some of {', '.join(VARIANTS)}")
    if X.ndim != 2 or X.shape[0] != codes.shape[0]:
        raise InputError(f"fewshot: X must be (n_rows, D) with one class code per row; got {X.shape}, {codes.shape}")
    k, D = len(classes), X.shape[1]
    if k < 2:
        raise InputError(f"fewshot: the label gives {k} class(es); a probe needs at least 2")
    for s, v in zip(shots, val_shots, strict=False):  # fail on the largest draw before any work
        sample_fewshot(codes, k, s, v, 0, classes)
    test_names = list(tests)
    test_data, test_info = [], {}
    for name in test_names:
        Xt, ct = tests[name]
        Xt, ct = np.asarray(Xt), np.asarray(ct, dtype=np.int64)
        if Xt.ndim != 2 or Xt.shape[1] != D or Xt.shape[0] != ct.shape[0]:
            raise InputError(f"fewshot: test set {name!r} has features {Xt.shape}; expected (n, {D}) with one code per row")
        keep = ct >= 0
        present = np.zeros(k, dtype=bool)
        present[ct[keep]] = True
        test_data.append((Xt[keep], ct[keep], present))
        test_info[name] = {"rows": int(keep.sum()), "classes_present": int(present.sum()),
                           "rows_dropped": int((~keep).sum())}

    nS, nI, nV, nT = len(seeds), len(shots), len(variants), len(test_names)
    acc = np.full((nS, nI, nV, nT), np.nan)
    Cs = np.full((nS, nI, nV), np.nan)
    vacc = np.full((nS, nI, nV), np.nan)
    dims_all, n_iter, n_fits = [], 0, 0
    bar = tqdm(total=nI * nS, desc="fewshot", unit="draw", disable=not progress)
    for i, (s, v) in enumerate(zip(shots, val_shots, strict=False)):
        n_fit = k * (s + v)
        dims_i = variant_dims(n_fit, D) if dims is None else {
            key: max(1, min(int(val), D, n_fit - 1)) for key, val in {**variant_dims(n_fit, D), **dims}.items()}
        dims_all.append(dims_i)
        maps, Ftr, Fva = [], [], []
        for seed in seeds:
            tr, va = sample_fewshot(codes, k, s, v, seed, classes)
            fit_rows = np.concatenate([tr, va])
            Xfit = np.asarray(X[fit_rows], dtype=np.float64)
            t0 = time.perf_counter()
            for name in variants:
                f = fit_variant(name, Xfit, dims_i, seed)
                maps.append(f)
                F = f(Xfit)
                Ftr.append(F[: tr.size])
                Fva.append(F[tr.size:])
            t_dec += time.perf_counter() - t0
            bar.update(1)
        ytr = np.repeat(np.arange(k), s)[None].repeat(len(maps), 0)
        yva = np.repeat(np.arange(k), v)[None].repeat(len(maps), 0)
        # pad every variant to one width: zero columns get no gradient and stay unused
        width = max(F.shape[1] for F in Ftr)
        Xtr_all = np.stack([np.pad(F, ((0, 0), (0, width - F.shape[1]))) for F in Ftr])
        Xva_all = np.stack([np.pad(F, ((0, 0), (0, width - F.shape[1]))) for F in Fva])
        t0 = time.perf_counter()
        res = search(Xtr_all, ytr, Xva_all, yva, k,
                       tol=tol, max_iter=max_iter)
        t_search += time.perf_counter() - t0
        t0 = time.perf_counter()
        n_iter += int(res["n_iter"].sum())
        n_fits += int(res["n_fits"].sum())
        for t, f in enumerate(maps):
            a, vi = divmod(t, nV)
            Cs[a, i, vi], vacc[a, i, vi] = res["C"][t], res["val_accuracy"][t]
            d = Ftr[t].shape[1]
            coef, b = res["coef"][t][:d], res["intercept"][t]
            for j, (Xt, ct, present) in enumerate(test_data):
                if ct.size:  # an empty test set (no row of a trained class) stays NaN
                    acc[a, i, vi, j] = masked_accuracy(f(Xt) @ coef + b, ct, present)
        t_eval += time.perf_counter() - t0
    bar.close()
    config = {
        "c_grid": list(C_GRID), "bisection_steps": BISECTION_STEPS, "tol": tol, "max_iter": max_iter,
        "tol_rule": "||grad|| <= tol ||W|| / (C n) per problem, i.e. ||W - W*|| <= tol ||W||",
        "dims_rule": DIMS_RULE if dims is None else f"given: {dict(dims)}", "paper_dims": dict(PAPER_DIMS), "n_features": D,
        "sampling": "per class c: default_rng([seed, c]).permutation(rows of c); first shots train, next val",
        "pca+ica": "PCA projection (not whitened) to P dims, then ICA(K2)",
        "pca": "whitened PCA(K1): the ICA's subspace and scale without its rotation",
        "masking": "classes absent from a test set are masked out of the argmax",
        "lbfgs_iterations": n_iter, "fits": n_fits,
        "seconds": {"decompositions": round(t_dec, 3), "c_search": round(t_search, 3), "evaluation": round(t_eval, 3)},
    }
    return FewShotResult(
        label=label, classes=list(classes), variants=variants, shots=shots, val_shots=val_shots,
        seeds=seeds, test_sets=test_names, accuracy=acc, C=Cs, val_accuracy=vacc, dims=dims_all,
        test_info=test_info, config=config, fingerprints=dict(fingerprints or {}),
    )
