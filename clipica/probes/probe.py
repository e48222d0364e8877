"""Attribute probes: which component carries which attribute, how well, how exclusively.

:func:`probe` scores every component of a code matrix (ICA sources, say) against
every label column and compares with baselines computed on exactly the same rows:

- binary 0/1 attributes: single-component ROC AUC for every component x attribute
  (signed: AUC < 0.5 means the attribute sits at the component's negative pole),
  computed in closed form from ranks for all pairs at once; per attribute the best
  component, its AUC and the runner-up's (the gap says how exclusive it is);
- continuous factors (``latent_*`` or any non-binary numeric column): Spearman
  correlation of every component with every factor (the column rule is
  :mod:`clipica.data.labels`);
- a sparse-probe curve: held-out AUC of a logistic probe on the best 1, 2, 4, 8, ...
  components (chosen by training-row AUC), ending with the full linear probe
  (held-out AUC and balanced accuracy);
- baselines (raw embedding dimensions, PCA with the same K, a random rotation of the
  whitened data, all from :mod:`clipica.decompositions`: see :func:`baseline_codes`)
  get the same report.

The logistic probes are fitted for all attributes at once with the one solver,
:func:`clipica.probes.logistic.fit_logistic`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clipica.errors import InputError
from clipica.probes.labels import classify_columns, label_frame, resolve_split
from clipica.probes.logistic import fit_logistic, fit_logistic_supports
from clipica.probes.result import CodeReport, ProbeReport
from clipica.probes.scores import (
    auc_columns,
    auc_matrix,
    balanced_accuracy_columns,
    spearman_matrix,
)


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
        ``"raw"``: every embedding dimension as a code -- ``X`` itself, not copied and not
        centred (every statistic the probes compute on it is unchanged by a shift; a
        copy would be the largest array of the probe stage); ``"pca"``:
        :class:`~clipica.decompositions.PCA` codes (top-K principal axes, unit variance);
        ``"random_rotation"``: :class:`~clipica.decompositions.RandomRotation` codes -- the
        whitened top-K subspace times a seeded uniformly random K x K rotation: same
        subspace and variance as the ICA, no independence objective. PCA and rotation
        codes are (n_samples, K) in X's dtype (float32 stays float32, as ICA's codes).

    Cost: one pass over X for the covariance and one for the PCA codes; the rotation is
    applied to the PCA codes (``RandomRotation`` is exactly PCA's whitening followed by
    the rotation), so the whitening is computed once.
    """
    from clipica.decompositions import PCA, Identity
    from clipica.decompositions.baselines import random_rotation

    if not hasattr(X, "dtype") or X.dtype not in (np.float32, np.float64):
        X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    if not 1 <= n_components <= d:
        raise InputError(f"n_components must be in [1, {d}]; got n_components={n_components}.")
    pca = PCA(n_components).fit(X).transform(X)
    if whitening is not None:
        whitening = np.asarray(whitening, dtype=np.float64)
        if whitening.shape != (n_components, d):
            raise InputError(
                f"whitening must have shape ({n_components}, {d}); got {whitening.shape}."
            )
        m = Identity().fit(X).mean_ if mean is None else np.asarray(mean, dtype=np.float64)
        U = (whitening.T @ random_rotation(n_components, random_state)).astype(X.dtype)
        rotated = np.empty((X.shape[0], n_components), dtype=X.dtype)
        for a in range(0, X.shape[0], 65_536):
            rotated[a : a + 65_536] = (np.asarray(X[a : a + 65_536]) - m.astype(X.dtype)) @ U
    else:
        # = RandomRotation(n_components, random_state).fit(X).transform(X): the same
        # whitening (PCA's), then the same seeded rotation
        rotated = pca @ random_rotation(n_components, random_state).astype(pca.dtype)
    out = {"pca": pca, "random_rotation": rotated}
    if include_raw:
        out = {"raw": X, **out}
    return out


def _sparse_ks(p: int, max_k: int) -> list[int]:
    ks = []
    k = 1
    while k < p and k <= max_k:
        ks.append(k)
        k *= 2
    ks.append(p)
    return ks


# ------------------------------------------------------------------ the probe

#: training rows the sparse-probe curves (k < K) are fitted on by default (see probe's
#: curve_rows); the linear probe and all held-out AUCs use every row
CURVE_ROWS = 20_000


def _curve_rows(tr: np.ndarray, Y: np.ndarray, curve_rows: int | None, seed: int):
    """(rows the curves k < K are fitted on, or None for the joint solver on all training
    rows; the ``subsampling`` record for probe.json)."""
    if curve_rows is None:
        return None, {"curves": "every training row, joint solver", "curve_rows": int(tr.size)}
    what = {"curve_rows_requested": int(curve_rows), "seed": int(seed),
            "solver": "per-label exact Newton on each label's own k components",
            "full_rows": "single-component AUCs (all rows); component ranking for the curves and "
                         "the linear probe k = K (all training rows); held-out AUCs (all test rows)"}
    if tr.size <= curve_rows:
        return tr, {**what, "curves": "every training row", "curve_rows": int(tr.size)}
    idx = np.sort(np.random.default_rng([seed, 14]).choice(tr, curve_rows, replace=False))
    # a label with too few of one class in the subsample would make its curve meaningless:
    # then the curves use every training row (stated)
    Ytr, Ys = Y[tr], Y[idx]
    fitted = (np.nansum(Ytr, axis=0) > 0) & (np.nansum(1 - Ytr, axis=0) > 0)
    ok = ~fitted | ((np.nansum(Ys, axis=0) >= 10) & (np.nansum(1 - Ys, axis=0) >= 10))
    if not ok.all():
        return tr, {**what, "curves": "every training row (a label has < 10 rows of one class "
                    "in the subsample)", "curve_rows": int(tr.size)}
    return idx, {**what, "curves": f"seeded subsample of {curve_rows} of {tr.size} training rows",
                 "curve_rows": int(curve_rows)}



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


def _split_labels(Y: np.ndarray, tr: np.ndarray, te: np.ndarray):
    """``(ua, Y[tr][:, ua], Y[te][:, ua])``: the labels the logistic probes can fit (both
    classes among the training rows) and their training / held-out rows, made once for
    every code set (each copy is (rows, labels) float64)."""
    Ytr = Y[tr]
    usable = (np.nansum(Ytr, axis=0) > 0) & (np.nansum(1 - Ytr, axis=0) > 0)
    usable &= ~np.all(np.isnan(Ytr), axis=0)
    ua = np.flatnonzero(usable)
    if ua.size < Y.shape[1]:
        Ytr = Ytr[:, ua]
    return ua, Ytr, Y[np.ix_(te, ua)]


def _single_component(codes, Y: np.ndarray, tr: np.ndarray, Ytr: np.ndarray):
    """Single-component AUCs: ``(auc (K, A) on all rows, train_auc (K, A) on the training rows
    or None, best, second, best_auc, runner_auc, pole)`` (folded AUCs, per attribute)."""
    K, A = codes.shape[1], Y.shape[1]
    auc, train_auc = np.zeros((K, 0)), None
    if A:
        # all-row AUCs (the table) and training-row AUCs (the curves' ranking: held-out rows
        # stay unseen) from one sort of each column
        auc, train_auc = auc_matrix(codes, Y, subset=(tr, Ytr))
    strength = np.abs(auc - 0.5)
    best, second = _top_two(strength)
    cols = np.arange(A)

    def fold(idx):
        v = np.full(A, np.nan)
        ok = idx >= 0
        v[ok] = 0.5 + strength[idx[ok], cols[ok]]
        return v

    pole = np.where(auc[np.maximum(best, 0), cols] >= 0.5, 1, -1) if A else np.zeros(0)
    return auc, train_auc, best, second, fold(best), fold(second), pole


def _sparse_curve(codes, Y, tr, te, train_auc, ks, split_labels, *, C, max_iter, dtype, curve_idx):
    """Held-out AUC of the logistic probes on each label's best k components, k in ``ks`` (the
    last is K: the linear probe). Returns ``(sparse (len(ks), A), linear AUC (A,), linear
    balanced accuracy (A,), every fit converged)``."""
    K, A = codes.shape[1], Y.shape[1]
    ua, Ytr, Yte = split_labels
    sparse = np.full((len(ks), A), np.nan)
    lin_auc = np.full(A, np.nan)
    lin_bacc = np.full(A, np.nan)
    converged = True
    if not (A and ua.size):
        return sparse, lin_auc, lin_bacc, converged
    # rank components by training-row AUC only (all training rows, also when the
    # curves are fitted on a subsample: which k components a probe gets must not
    # depend on it), so the held-out rows stay unseen
    train_strength = np.abs(train_auc - 0.5)
    train_strength = np.where(np.isnan(train_strength), -np.inf, train_strength)
    order = np.argsort(-train_strength, axis=0, kind="stable")
    if curve_idx is not None:
        X_curve = np.asarray(codes[curve_idx])
        Y_curve = Y[np.ix_(curve_idx, ua)]
    previous = None
    for i, k in enumerate(ks):
        if k < K and curve_idx is not None:
            # each label's own k components, exact Newton per label, warm-started
            # from k/2 (supports are nested: the same ranking)
            fit = previous = fit_logistic_supports(
                X_curve, Y_curve, order[:k].T, C=C, init=previous
            )
        else:
            X_curve = Y_curve = previous = None  # the curves are done: free them first
            mask = None
            if k < K:
                mask = np.zeros((K, ua.size), dtype=bool)
                mask[order[:k], np.arange(ua.size)] = True
            fit = fit_logistic(
                codes, Ytr, C=C, feature_mask=mask, max_iter=max_iter,
                dtype=dtype, rows=tr,
            )
        converged &= fit.converged
        logits = fit.decision_function(codes, rows=te)
        sparse[i, ua] = auc_columns(logits, Yte)
        if k == K:
            lin_auc[ua] = sparse[i, ua]
            lin_bacc[ua] = balanced_accuracy_columns(logits, Yte)
    return sparse, lin_auc, lin_bacc, converged


def _factor_scores(codes, F: np.ndarray):
    """Spearman of every component with every continuous factor: ``(rho (K, n_f), best
    component, its signed rho, the runner-up's |rho|)`` per factor."""
    n_f = F.shape[1]
    if not n_f:
        return np.zeros((codes.shape[1], 0)), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    rho = spearman_matrix(codes, F)
    fb, fs = _top_two(np.abs(rho))
    fcols = np.arange(n_f)
    f_second = np.where(fs >= 0, np.abs(rho[np.maximum(fs, 0), fcols]), np.nan)
    return rho, fb, rho[fb, fcols], f_second


def _probe_codes(
    name: str,
    codes,
    Y: np.ndarray,
    F: np.ndarray,
    tr: np.ndarray,
    te: np.ndarray,
    *,
    C: float,
    max_sparse: int,
    max_iter: int,
    dtype,
    curve_idx: np.ndarray | None,
    split_labels: tuple,
) -> CodeReport:
    """One code set's report. ``codes`` may be float32 or a memmap (read in blocks, never
    copied whole); ``curve_idx``: rows the sparse probes k < K are fitted on (None: today's
    joint solver on all training rows). ``split_labels``: :func:`_split_labels` of Y, shared
    read-only by every code set."""
    K = codes.shape[1]
    auc, train_auc, best, second, best_auc, runner_auc, pole = _single_component(
        codes, Y, tr, split_labels[1]
    )
    ks = _sparse_ks(K, max_sparse)
    sparse, lin_auc, lin_bacc, converged = _sparse_curve(
        codes, Y, tr, te, train_auc, ks, split_labels,
        C=C, max_iter=max_iter, dtype=dtype, curve_idx=curve_idx,
    )
    rho, fb, f_best, f_second = _factor_scores(codes, F)
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


def plan_probe(
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
    curve_rows: int | None = CURVE_ROWS,
) -> ProbePlan:
    """:func:`probe`'s work (same parameters) as a :class:`ProbePlan`: the inputs checked,
    one task per code set. ``plan_probe(...).run()`` is ``probe(...)``; a caller with a
    pool of workers can queue other work beside the tasks (the pipeline's probe stage
    queues the disentanglement metrics)."""
    if not (hasattr(codes, "dtype") and codes.dtype in (np.float32, np.float64)):
        codes = np.asarray(codes, dtype=np.float64)  # float32 codes stay float32 (no copy)
    if codes.ndim != 2:
        raise InputError(f"codes must be (n_samples, n_components); got shape {codes.shape}.")
    if not np.all(np.isfinite(codes)):
        raise InputError("codes contain NaN or inf; drop those rows (and their labels) first.")
    n = codes.shape[0]
    df = label_frame(labels, n)
    attrs, facs = classify_columns(df, attributes, factors)
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
    tr, te, source, split_info = resolve_split(split, df, n, test_size, random_state)
    sets = {name: codes}
    for bname, b in (baselines or {}).items():
        if not (hasattr(b, "dtype") and b.dtype in (np.float32, np.float64)):
            b = np.asarray(b, dtype=np.float64)
        if b.ndim != 2 or b.shape[0] != n:
            raise InputError(
                f"baseline {bname!r} must have shape ({n}, n_components) like codes; got {b.shape}."
            )
        if bname == name:
            raise InputError(f"baseline name {bname!r} clashes with the main codes' name.")
        sets[bname] = b
    if curve_rows is not None and curve_rows < 2:
        raise InputError(f"curve_rows must be at least 2 (or None for all rows); got {curve_rows}.")
    curve_idx, subsampling = _curve_rows(tr, Y, curve_rows, random_state)
    n_pos = np.nansum(Y, axis=0).astype(np.int64) if attrs else np.zeros(0, dtype=np.int64)
    report = ProbeReport(
        attributes=[str(a) for a in attrs],
        factors=[str(f) for f in facs],
        codes={},
        n_positive=n_pos,
        n_rows=n,
        n_train=int(tr.size),
        n_test=int(te.size),
        split_source=source,
        C=C,
        main=name,
        split_info=split_info,
        subsampling=subsampling,
    )

    split_labels = _split_labels(Y, tr, te)

    def task(cname, c):
        return lambda: _probe_codes(
            cname, c, Y, F, tr, te, C=C, max_sparse=max_sparse, max_iter=max_iter, dtype=dtype,
            curve_idx=curve_idx, split_labels=split_labels,
        )

    return ProbePlan(report, [(cname, task(cname, c)) for cname, c in sets.items()],
                     [c.shape[1] for c in sets.values()], train=tr, test=te)


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
    curve_rows: int | None = CURVE_ROWS,
    executor=None,
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
        holding out ``test_size`` of the rows. A split column with fewer than 2 train or
        2 test/val rows (a store extracted with one split) also gets the seeded split;
        ``ProbeReport.split_info`` records the rule, seed, sizes and why.
    C : float
        Inverse L2 strength of the logistic probes (scikit-learn's convention) on
        standardised features.
    max_sparse : int
        Largest k of the sparse-probe curve before the full probe (k = 1, 2, 4, ...).
    curve_rows : int or None
        The sparse probes with k < K are fitted on a seeded subsample of this many
        training rows (all of them when there are fewer), each label on its own k
        components by exact Newton steps (:func:`~clipica.probes.logistic.fit_logistic_supports`).
        What stays on every row: the components' ranking (training-row AUC), the linear
        probe (k = K, all training rows: with many features a subsample's probe
        overfits and its held-out AUC drops, 0.01-0.02 for 512 raw dimensions on 20,000
        rows), and every held-out AUC (all test rows). None: every curve point on all
        training rows with the joint solver (the computation before curve_rows existed;
        ``clipica bench pipeline`` measures the two against each other).
        ``ProbeReport.subsampling`` records what was subsampled.

    executor : concurrent.futures.Executor, optional
        Probe the code sets as its tasks, the widest first (e.g. a thread pool: the work
        is numpy and BLAS, which release the GIL). The report is the same either way.
    progress : bool
        A tqdm bar over the code sets.

    Returns
    -------
    ProbeReport
        Single-component AUC / Spearman matrices are computed on all labelled rows (they
        fit nothing); the best-k selection uses training rows, the probes' AUC and balanced
        accuracy (threshold: logit 0) test rows.
    """
    plan = plan_probe(
        codes, labels, baselines=baselines, split=split, attributes=attributes, factors=factors,
        name=name, C=C, test_size=test_size, random_state=random_state, max_sparse=max_sparse,
        max_iter=max_iter, dtype=dtype, curve_rows=curve_rows)
    return plan.run(executor=executor, progress=progress)


class ProbePlan:
    """A probe split into one independent task per code set, and the report they fill.

    ``report``: the :class:`ProbeReport` being filled (labels, split and subsampling are
    set; ``codes`` is empty until :meth:`finish`). ``tasks``: ``(name, callable)`` pairs, each returning that set's
    :class:`~clipica.probes.result.CodeReport`; ``widths``: each set's number of codes
    (its cost grows with it). Run them in any order or concurrently (they share only
    read-only inputs), then :meth:`finish` with the results. :meth:`run` does all of it.
    ``train`` / ``test``: the row indices the probes fit on and score on (other scores of
    the same rows, such as the pipeline's categorical factors, use them too).
    """

    def __init__(self, report: ProbeReport, tasks: list, widths: list[int], *,
                 train: np.ndarray | None = None, test: np.ndarray | None = None):
        self.report = report
        self.tasks = tasks
        self.widths = widths
        self.train, self.test = train, test

    def ordered_tasks(self) -> list:
        """The tasks widest first (the longest first keeps a pool of workers busy)."""
        order = sorted(range(len(self.tasks)), key=lambda i: -self.widths[i])
        return [self.tasks[i] for i in order]

    def finish(self, reports: dict) -> ProbeReport:
        """The report, with ``reports`` (name -> CodeReport) in the plan's order of sets."""
        self.report.codes = {name: reports[name] for name, _ in self.tasks}
        return self.report

    def run(self, executor=None, progress: bool = False) -> ProbeReport:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(self.tasks), desc="probe", unit="code set", disable=not progress)
        reports = {}
        if executor is None:
            for cname, fn in self.tasks:
                reports[cname] = fn()
                bar.update(1)
        else:
            futures = {cname: executor.submit(fn) for cname, fn in self.ordered_tasks()}
            for cname, fut in futures.items():
                reports[cname] = fut.result()
                bar.update(1)
        bar.close()
        return self.finish(reports)
