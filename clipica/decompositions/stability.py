"""How reproducible is each component? Restarts, bootstrap, and a sweep over K.

:func:`stability` fits a decomposition (ICA by default; any registered name or
:class:`~clipica.decompositions.LinearDecomposition` instance) ``n_runs`` times —
different seeds (restarts) and, with ``bootstrap=True``, rows resampled with
replacement — and measures how well each component of the reference run (run 0: all
rows, the given seed) reappears. Only the contract is used: ``components_`` (the
unmixing) and, when present, ``converged_`` and ``explained_variance_ratio_``.

**Matching.** The similarity of two components is the absolute correlation of their
sources over the full data, computed from the unmixing vectors and the data covariance
Σ: ``|u Σ v'| / sqrt(u Σ u' · v Σ v')``. Each run's components are matched one-to-one
to the reference's with the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``
on that similarity). Cluster ``k`` = reference component ``k`` plus its match in every
other run (one member per run).

**Stability index** (after Icasso, Himberg et al. 2004): for cluster ``k``,
``I_k = within_k − between_k``, clipped to [0, 1], where ``within_k`` is the mean
similarity over all pairs of members of cluster ``k`` and ``between_k`` the mean
similarity between members of ``k`` and members of every other cluster. A component that
every run finds again has ``within ≈ 1`` and ``between ≈ 0`` (independent sources are
uncorrelated), so ``I ≈ 1``; a component fitted to a Gaussian (noise) subspace is
rotated arbitrarily inside it from run to run, which lowers ``within`` and raises
``between``. The index is reported in the reference run's canonical order.

:func:`sweep_k` runs this for several K and reports, per K, the mean / min / median
stability, how many components are stable, and the fraction of variance the K principal
directions explain — the table for choosing K (:func:`choose_k` applies a stated rule).
:func:`sweep` returns the same as a :class:`StabilitySweep` result (``to_dict`` /
``from_dict``, format tag ``clipica.stability/1``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from clipica.errors import InputError


@dataclass
class StabilityResult:
    """Per-component stability of a K-component decomposition (arrays in the reference's order).

    ``stability``, ``within``, ``between``: (K,) in [0, 1], NaN for the members of the
    reference's unidentifiable Gaussian block (an ICA's ``gaussian_block_``: no single code
    there can be stable); ``matched_similarity``: (n_runs - 1, m) |correlation| of each other
    run's matched component with each of the reference's m identifiable components;
    ``reference``: the decomposition fitted on all rows with the first seed;
    ``identifiable``: (K,) bool, the reference's; ``n_identifiable``: per run;
    ``gaussian_block``: the block's size and, as a subspace, its mean canonical correlation
    with each other run's block.
    """

    n_components: int
    n_runs: int
    bootstrap: bool
    stability: np.ndarray
    within: np.ndarray
    between: np.ndarray
    matched_similarity: np.ndarray
    explained_variance: float
    converged: list = field(default_factory=list)
    seeds: list = field(default_factory=list)
    seconds: float = 0.0
    reference: object = None
    identifiable: np.ndarray | None = None
    n_identifiable: list = field(default_factory=list)
    gaussian_block: dict = field(default_factory=dict)

    @property
    def stability_mean(self) -> float:
        """Mean index over the identifiable components (NaN when there is none)."""
        vals = self.stability[~np.isnan(self.stability)]
        return float(np.mean(vals)) if vals.size else float("nan")

    def to_dict(self) -> dict:
        """JSON-ready summary (no arrays of the reference fit)."""
        return {
            "n_components": self.n_components,
            "n_runs": self.n_runs,
            "bootstrap": self.bootstrap,
            "index": "Icasso-style: mean within-cluster |corr| minus mean between-cluster |corr|, clipped to [0, 1]",
            "stability": [_num(v) for v in self.stability],
            "within": [_num(v) for v in self.within],
            "between": [_num(v) for v in self.between],
            "stability_mean": _num(self.stability_mean),
            "identifiable": None if self.identifiable is None else [bool(v) for v in self.identifiable],
            "n_identifiable": [int(v) for v in self.n_identifiable],
            "gaussian_block": dict(self.gaussian_block),
            "explained_variance": float(self.explained_variance),
            "converged": [bool(c) for c in self.converged],
            "seeds": [int(s) for s in self.seeds],
            "seconds": float(self.seconds),
        }


def _num(v) -> float | None:
    v = float(v)
    return None if np.isnan(v) else v


def _similarity(U1, U2, cov):
    """|correlation| (K1, K2) of the sources of unmixings U1 (K1, D), U2 (K2, D) under cov."""
    c12 = U1 @ cov @ U2.T
    v1 = np.einsum("id,de,ie->i", U1, cov, U1)
    v2 = np.einsum("id,de,ie->i", U2, cov, U2)
    return np.abs(c12) / np.sqrt(np.outer(v1, v2))


def stability(
    X,
    n_components: int,
    *,
    n_runs: int = 10,
    bootstrap: bool = True,
    random_state: int = 0,
    solver: str = "auto",
    progress: bool = False,
    decomposition="ica",
    _cov=None,
    **ica_params,
) -> StabilityResult:
    """Stability of each of ``n_components`` components of ``X`` (n_samples, n_features).

    Parameters
    ----------
    n_runs : int, default=10
        Fits in total, including the reference (at least 2).
    bootstrap : bool, default=True
        True: runs 1.. use a different seed *and* rows resampled with replacement, as in
        Icasso; this captures sampling variability, which is what separates real
        components from ones fitted to noise (restarts alone on the same rows tend to find
        the same sample-specific noise components again). False: restarts only.
    random_state : int, default=0
        Seeds the reference fit's seed and the other runs' seeds and resamples.
    decomposition : str or LinearDecomposition, default="ica"
        What to fit: a registered name (``"ica"``, ``"pca"``, ...) or an unfitted
        estimator (cloned for every run with ``n_components`` and, when it has one, the
        run's ``random_state``).
    solver, **ica_params
        Passed to the decomposition (``solver`` only when it has that parameter), e.g.
        ``fun``, ``max_iter``, ``tol``, ``device`` for ICA.

    Returns
    -------
    StabilityResult
        See the module docstring for the index.
    """
    build = _builder(decomposition, solver, ica_params)
    if not isinstance(n_runs, (int, np.integer)) or n_runs < 2:
        raise InputError(f"n_runs must be an integer >= 2 (the reference plus restarts); got n_runs={n_runs!r}.")
    t_start = time.perf_counter()
    X = np.asarray(X) if not hasattr(X, "shape") else X
    if getattr(X, "ndim", 0) != 2:
        raise InputError(f"X must be 2-D (n_samples, n_features); got shape {getattr(X, 'shape', None)}.")
    rng = np.random.default_rng(random_state)
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=n_runs)]
    seeds[0] = int(random_state) if isinstance(random_state, (int, np.integer)) else seeds[0]
    cov = _covariance(X) if _cov is None else _cov
    label = f"{_label(decomposition)} stability K={n_components}" if progress else None
    fits = _fit_runs(X, n_components, build, seeds, rng, bootstrap=bootstrap, label=label)
    reference = fits[0]
    k = reference.components_.shape[0]
    masks = [_identifiable(est) for est in fits]
    ident = masks[0]
    ref = reference.components_[ident]
    # each run's components (identifiable or not: a source that run put in its Gaussian block
    # matches poorly, as it should) matched one-to-one to the reference's identifiable ones
    aligned, matched = [ref], []
    for est in fits[1:]:
        U, sim = _matched(ref, est.components_, cov)
        aligned.append(U)
        matched.append(sim)
    within, between = _icasso(aligned, cov)
    full = [np.full(k, np.nan) for _ in range(3)]
    for arr, vals in zip(full, (np.clip(within - between, 0.0, 1.0), within, between), strict=True):
        arr[ident] = vals
    index, within_k, between_k = full
    block = _block_agreement([est.components_[~msk] for est, msk in zip(fits, masks, strict=True)], cov)
    return StabilityResult(
        n_components=k, n_runs=n_runs, bootstrap=bool(bootstrap), stability=index, within=within_k,
        between=between_k, matched_similarity=np.array(matched), explained_variance=_explained_variance(reference, cov),
        converged=[bool(getattr(est, "converged_", True)) for est in fits], seeds=seeds,
        seconds=time.perf_counter() - t_start, reference=reference, identifiable=ident,
        n_identifiable=[int(msk.sum()) for msk in masks], gaussian_block=block,
    )


def _covariance(X) -> np.ndarray:
    """The data covariance (D, D), float64, ddof=0, streamed."""
    from clipica.decompositions import _whitening as W

    W.check_finite(X)
    with W.Runner("cpu", n_entries=X.shape[0] * X.shape[1]) as runner:
        return W.mean_and_covariance(X, runner)[1]


def _fit_runs(X, k, build, seeds, rng, *, bootstrap: bool, label: str | None) -> list:
    """The ``len(seeds)`` fits: run 0 on all rows, the others (with ``bootstrap``) on rows
    resampled with replacement. Non-convergence is recorded per run (``converged_``), not warned."""
    import warnings

    n = X.shape[0]
    runs = range(len(seeds))
    if label:
        from tqdm.auto import tqdm

        runs = tqdm(runs, desc=label, unit="fit")
    fits = []
    for r in runs:
        Xr = np.asarray(X)[np.sort(rng.integers(0, n, size=n))] if bootstrap and r > 0 else X
        est = build(k, seeds[r])
        if r > 0 and est.get_params().get("identify", None) is True:
            # the refits keep the reference's number of identifiable components: a resample
            # deviates from the population about twice as much as a fresh sample, so its own
            # Gaussianity test would find spurious ones (measured: 5 instead of 4 in a third
            # of the refits on the planted tests' data)
            m = int(np.sum(_identifiable(fits[0])))
            if m > 0:
                est.set_params(identify=m)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(est.fit(Xr))
        del Xr
    return fits


def _identifiable(est) -> np.ndarray:
    """(K,) bool: the estimator's identifiable components (every one for estimators without
    an ``identifiable_`` attribute)."""
    k = est.components_.shape[0]
    mask = getattr(est, "identifiable_", None)
    return np.ones(k, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)


def _matched(ref, U, cov):
    """Rows of U (K, D) matched one-to-one (Hungarian on |corr|) to the m rows of ``ref``:
    returns (U_matched (m, D), similarity of each pair (m,))."""
    from scipy.optimize import linear_sum_assignment

    sim = _similarity(ref, U, cov)
    rows, cols = linear_sum_assignment(-sim)
    order = np.empty(ref.shape[0], dtype=int)
    order[rows] = cols
    return U[order], sim[np.arange(ref.shape[0]), order]


def _icasso(aligned, cov):
    """Icasso's mean within-cluster and between-cluster |corr| per cluster (module docstring);
    ``aligned``: one (m, D) unmixing per run, row i of each in cluster i."""
    m = aligned[0].shape[0]
    within_sum, between_sum = np.zeros(m), np.zeros(m)
    within_cnt = between_cnt = 0
    for a in range(len(aligned)):
        for b in range(len(aligned)):
            sim = _similarity(aligned[a], aligned[b], cov)
            # same run, different clusters: (nearly) uncorrelated by construction, but Icasso
            # counts these pairs as between-cluster pairs too
            between_sum += _offdiag_rowsum(sim)
            between_cnt += m - 1
            if a != b:
                within_sum += np.diag(sim)
                within_cnt += 1
    within = within_sum / max(within_cnt, 1)
    between = between_sum / between_cnt if between_cnt > 0 else np.zeros(m)
    return within, between


def _block_agreement(blocks, cov) -> dict:
    """The reference's Gaussian block (rows of ``blocks[0]``) against each other run's, as
    subspaces: the mean canonical correlation of their sources (1: the same subspace)."""
    size = int(blocks[0].shape[0])
    out = {"size": size, "sizes": [int(b.shape[0]) for b in blocks],
           "measure": "mean canonical correlation between the block's span and each run's block span"}
    if size == 0:
        return {**out, "mean_canonical_correlation": []}
    cc = []
    for B in blocks[1:]:
        if B.shape[0] == 0:
            cc.append(0.0)
            continue
        cc.append(float(np.mean(canonical_correlations(blocks[0], B, cov))))
    return {**out, "mean_canonical_correlation": cc}


def canonical_correlations(U1, U2, cov) -> np.ndarray:
    """Canonical correlations (min(a, b),) between the sources of unmixings U1 (a, D) and
    U2 (b, D) under the data covariance ``cov`` (D, D): the cosines of the principal angles
    between the two subspaces of sources, descending, in [0, 1]."""
    def inv_sqrt(C):
        s, u = np.linalg.eigh(0.5 * (C + C.T))
        return (u / np.sqrt(np.clip(s, np.finfo(np.float64).tiny, None))) @ u.T

    C12 = U1 @ cov @ U2.T
    M = inv_sqrt(U1 @ cov @ U1.T) @ C12 @ inv_sqrt(U2 @ cov @ U2.T)
    return np.clip(np.linalg.svd(M, compute_uv=False), 0.0, 1.0)


def _offdiag_rowsum(M):
    return M.sum(axis=1) - np.diag(M)


def _label(decomposition) -> str:
    if isinstance(decomposition, str):
        return {"ica": "ICA", "pca": "PCA"}.get(decomposition, decomposition)
    return type(decomposition).__name__


def _builder(decomposition, solver, params):
    """A function (k, seed) -> unfitted estimator for the stability runs."""
    from sklearn.base import clone

    from clipica.decompositions.registry import decomposition_class

    if isinstance(decomposition, str):
        cls = decomposition_class(decomposition)
        names = cls._get_param_names()
        kw = dict(params)
        if "solver" in names:
            kw["solver"] = solver
        bad = sorted(set(kw) - set(names))
        if bad:
            raise InputError(f"{cls.__name__} has no parameter(s) {', '.join(bad)}; its parameters are "
                             f"{', '.join(names)}")

        def build(k, seed):
            extra = {"random_state": seed} if "random_state" in names else {}
            return cls(n_components=k, **kw, **extra)

        return build
    if not hasattr(decomposition, "fit") or not hasattr(decomposition, "get_params"):
        raise InputError(
            "decomposition must be a registered name or an unfitted LinearDecomposition; "
            f"got {type(decomposition).__name__}."
        )

    def build_clone(k, seed):
        est = clone(decomposition)
        names = est.get_params()
        est.set_params(n_components=k, **({"random_state": seed} if "random_state" in names else {}))
        if params:
            est.set_params(**params)
        return est

    return build_clone


def _explained_variance(est, cov) -> float:
    """Fraction of the total variance (trace of ``cov``) in the subspace the codes span."""
    ratio = getattr(est, "explained_variance_ratio_", None)
    if ratio is not None:
        return float(np.sum(ratio))
    tv = float(np.trace(cov))
    if tv <= 0:
        return 0.0
    # X - inverse(transform(X)) = (I - A U)(x - mean): the residual covariance's trace
    resid = np.eye(cov.shape[0]) - est.mixing_ @ est.components_
    return float(1.0 - np.trace(resid @ cov @ resid.T) / tv)


def sweep_k(X, ks, *, n_runs: int = 5, bootstrap: bool = True, random_state: int = 0,
            solver: str = "auto", stable_threshold: float = 0.8, progress: bool = False,
            decomposition="ica", **ica_params):
    """Stability and explained variance for each K in ``ks``, to choose K.

    Returns a pandas DataFrame, one row per K (ascending), columns:

    - ``k``
    - ``n_identifiable``: identifiable components of the reference fit (an ICA's non-Gaussian
      ones; K for decompositions without a Gaussian block): what that K yields
    - ``stability_mean``, ``stability_min``, ``stability_median``: over the identifiable
      components (the Gaussian block is reported apart by :func:`stability`)
    - ``n_stable``: identifiable components with stability >= ``stable_threshold``
    - ``explained_variance``: fraction of the total variance in the K principal directions
    - ``converged_fraction``: share of the ``n_runs`` fits that converged
    - ``seconds``: wall time for that K

    ``df.attrs["per_component"]`` maps each K to its list of per-component stabilities
    (canonical order) and ``df.attrs["params"]`` records the arguments. Other keyword
    arguments go to the decomposition (ICA by default). The data covariance is computed
    once for all K. :func:`sweep` returns the same as a typed :class:`StabilitySweep`.
    """
    return sweep(X, ks, n_runs=n_runs, bootstrap=bootstrap, random_state=random_state, solver=solver,
                 stable_threshold=stable_threshold, progress=progress, decomposition=decomposition,
                 **ica_params).to_frame()


def sweep(X, ks, *, n_runs: int = 5, bootstrap: bool = True, random_state: int = 0,
          solver: str = "auto", stable_threshold: float = 0.8, progress: bool = False,
          decomposition="ica", **params) -> StabilitySweep:
    """:func:`sweep_k` as a :class:`StabilitySweep` (rows, per-component indices, parameters)."""
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise InputError(f"ks must be positive integers; got ks={ks!r}.")
    if getattr(X, "ndim", 0) != 2:
        X = np.asarray(X)
        if X.ndim != 2:
            raise InputError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}.")
    cov = _covariance(X)
    rows, per = [], {}
    for k in ks:
        res = stability(X, k, n_runs=n_runs, bootstrap=bootstrap, random_state=random_state,
                        solver=solver, progress=progress, decomposition=decomposition, _cov=cov, **params)
        per[k] = [float(v) for v in res.stability]
        vals = res.stability[~np.isnan(res.stability)]
        rows.append({
            "k": k,
            "n_identifiable": int(vals.size),
            "stability_mean": float(np.mean(vals)) if vals.size else float("nan"),
            "stability_min": float(np.min(vals)) if vals.size else float("nan"),
            "stability_median": float(np.median(vals)) if vals.size else float("nan"),
            "n_stable": int(np.sum(vals >= stable_threshold)),
            "explained_variance": res.explained_variance,
            "converged_fraction": float(np.mean(res.converged)),
            "seconds": res.seconds,
        })
    name = decomposition if isinstance(decomposition, str) else getattr(decomposition, "kind", "") or \
        type(decomposition).__name__
    run_params = {"n_runs": n_runs, "bootstrap": bootstrap, "random_state": random_state,
                  "solver": solver, "stable_threshold": stable_threshold, **params}
    return StabilitySweep(decomposition=str(name), rows=rows, per_component=per, params=run_params)


STABILITY_FORMAT = "clipica.stability/1"


@dataclass
class StabilitySweep:
    """A stability sweep over K: one row per K (see :func:`sweep_k` for the columns).

    ``per_component`` maps K to its per-component stability indices (reference order);
    ``params`` records the sweep's arguments; ``chosen_k`` / ``rule`` are set by
    :meth:`choose` (the K rule of :func:`choose_k`).
    """

    decomposition: str
    rows: list
    per_component: dict
    params: dict
    chosen_k: int | None = None
    rule: str | None = None

    def to_frame(self):
        """The pandas DataFrame of :func:`sweep_k` (``attrs``: per_component, params)."""
        import pandas as pd

        df = pd.DataFrame(self.rows)
        df.attrs["per_component"] = {int(k): list(v) for k, v in self.per_component.items()}
        df.attrs["params"] = dict(self.params)
        return df

    def choose(self, min_stability: float = 0.8, min_fraction: float = 0.9) -> int:
        """Apply :func:`choose_k`; records and returns the chosen K."""
        self.chosen_k, self.rule = choose_k(self.to_frame(), min_stability=min_stability,
                                            min_fraction=min_fraction)
        self.params = {**self.params, "min_stability": min_stability, "min_fraction": min_fraction}
        return self.chosen_k

    def to_dict(self, fingerprints: dict | None = None) -> dict:
        """JSON-ready, tagged ``clipica.stability/1`` with the inputs' ``fingerprints``
        (e.g. ``{"store": ...}``)."""
        from clipica._atomic import nan_to_none
        from clipica._format import tagged

        body = {
            "decomposition": self.decomposition,
            "index": "Icasso-style: mean within-cluster |corr| minus mean between-cluster |corr|, clipped to [0, 1]",
            "rows": self.rows,
            "per_component": {str(k): list(v) for k, v in self.per_component.items()},
            "params": self.params,
            "chosen_k": self.chosen_k,
            "rule": self.rule,
        }
        return tagged(STABILITY_FORMAT, nan_to_none(body), fingerprints)

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "stability sweep") -> StabilitySweep:
        """Inverse of :meth:`to_dict`; ArtifactError on a wrong tag or missing fields."""
        from clipica._format import untag
        from clipica.errors import ArtifactError

        body, _ = untag(d, STABILITY_FORMAT, source=source)
        try:
            return cls(
                decomposition=str(body["decomposition"]),
                rows=[dict(r) for r in body["rows"]],
                per_component={int(k): [float("nan") if x is None else float(x) for x in v]
                               for k, v in body["per_component"].items()},
                params=dict(body.get("params") or {}),
                chosen_k=None if body.get("chosen_k") is None else int(body["chosen_k"]),
                rule=body.get("rule"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArtifactError(f"{source} is missing or has malformed fields ({exc}); was it hand-edited?") from None


def choose_k(sweep, min_stability: float = 0.8, min_fraction: float = 0.9) -> tuple[int, str]:
    """The largest K whose components are nearly all stable (else the most stable K).

    A K qualifies when at least ``min_fraction`` of its components have a stability
    index >= ``min_stability`` (Icasso practice: keep the K whose clusters are
    compact). A rule on the *mean* alone lets a few components that bootstrap refits
    cannot reproduce hide behind many stable ones. The per-component indices come from
    ``sweep.attrs["per_component"]`` (what :func:`sweep_k` records); without them the
    rule falls back to ``stability_mean >= min_stability``.

    With an unidentifiable Gaussian block (an ICA; NaN indices in ``per_component``) only
    the identifiable components count, and a larger K that adds only Gaussian directions
    adds nothing: among the qualifying K the rule takes the smallest one that reaches the
    most stable identifiable components.

    A K whose fits did not all converge (``converged_fraction`` below 1, when the sweep records
    it) is never chosen: its stability measures where the solver stopped, not a solution. Only
    when no K's fits all converged does the rule run on the K with the largest converged
    fraction, and says so.

    ``sweep`` is the DataFrame from :func:`sweep_k` (or anything with ``k`` and
    ``stability_mean`` columns). Returns ``(k, rule)`` with the rule in words, for reports.
    """
    import pandas as pd

    per_component = getattr(sweep, "attrs", {}).get("per_component")
    df = pd.DataFrame(sweep)
    df, converged_rule = _converged_rows(df)
    k, rule = _choose_k_rule(df, per_component, min_stability, min_fraction)
    return k, rule + converged_rule


def _converged_rows(df):
    """``(rows of df the K rule may choose from, the words it adds to the rule)``: the K whose
    fits all converged; when there are none, those with the largest converged fraction."""
    if "converged_fraction" not in df or df.empty:
        return df, ""
    frac = df["converged_fraction"].astype(float)
    dropped = sorted(int(k) for k in df.loc[frac < 1.0, "k"])
    if (frac >= 1.0).any():
        kept = df[frac >= 1.0].reset_index(drop=True)
        return kept, (f"; among the K whose fits all converged (not {dropped})" if dropped else "")
    top = float(frac.max())
    kept = df[frac == top].reset_index(drop=True)
    return kept, (f"; NO K's fits all converged: among the K with the most converged fits "
                  f"({top:.0%}), which may change with the seed")


def _choose_k_rule(df, per_component, min_stability: float, min_fraction: float) -> tuple[int, str]:
    """:func:`choose_k` on the rows it may choose from."""
    if per_component:
        def fraction_stable(k):
            vals = np.asarray(per_component[int(k)], dtype=np.float64)
            vals = vals[~np.isnan(vals)]  # the Gaussian block's members: no index
            return float(np.mean(vals >= min_stability)) if vals.size else 0.0

        ok = df[df["k"].map(fraction_stable) >= min_fraction]
        rule = (
            f"largest K with at least {min_fraction:.0%} of its identifiable components at stability "
            f">= {min_stability:g}"
        )
        has_block = any(np.isnan(np.asarray(v, dtype=np.float64)).any() for v in per_component.values())
        if has_block and len(ok):
            n_stable = ok["k"].map(lambda k: int(np.sum(np.nan_to_num(
                np.asarray(per_component[int(k)], dtype=np.float64), nan=-1.0) >= min_stability)))
            best = n_stable.max()
            rule = (f"smallest K reaching the most identifiable components at stability >= {min_stability:g} "
                    f"({best}), among the K with at least {min_fraction:.0%} of theirs there")
            return int(ok["k"][n_stable == best].min()), rule
    else:
        ok = df[df["stability_mean"] >= min_stability]
        rule = f"largest K with mean component stability >= {min_stability:g}"
    if len(ok):
        return int(ok["k"].max()), rule
    k = int(df.loc[df["stability_mean"].idxmax(), "k"])
    return k, f"no K met the rule ({rule}); K with the highest mean stability"
