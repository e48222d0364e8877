"""Compare decompositions on the same rows, split and probes: who carries which factor best.

:func:`compare` fits every requested method (behind the
:class:`~clipica.decompositions.base.LinearDecomposition` contract) on the same
embeddings, with ``len(seeds)`` independent initialisations, and scores them with the
same probes and split:

per method
    reconstruction R² (fraction of variance explained by ``inverse_transform(transform(X))``),
    mean L0 of the codes (non-zero codes per row), dead codes (zero on every row),
    stability (Hungarian-matched absolute cosine between the dictionaries, ``mixing_``
    columns, of the first seed and each other seed, averaged), fit time (first seed,
    seconds), MCC against the dataset's ground-truth ``latent_*`` columns and against
    its binary attributes, and the mean per-attribute score below;
per binary attribute
    best single-code AUC (folded, all labelled rows) and runner-up; selectivity of the
    best code: its strength ``2|AUC - 0.5|`` on this attribute minus its largest strength
    on any other attribute (1: responds to this attribute only; <= 0: responds as much to
    another); codes needed to reach a held-out AUC of 0.95 (the smallest k of the sparse
    probe's 1, 2, 4, ... curve; None if never);
per categorical factor (:mod:`clipica.data.label_groups`)
    :func:`clipica.probes.categorical.score_factor` with ``m = n_values - 1`` codes: the best
    block of size <= m for a method with blocks (ICA + :mod:`~clipica.decompositions.blocks`),
    the best m codes (greedy, among the 32 most relevant) otherwise;
the per-attribute score
    for each binary attribute outside a factor its best single-code AUC; for each column
    of a factor its one-vs-rest AUC from the factor's block or m codes; averaged over all
    attributes (``attribute_score_mean``). This is the score the README's table reports.

Compute only: no figures (``clipica.viz.compare`` draws a :class:`CompareResult`).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clipica.errors import InputError

FORMAT = "clipica.compare/1"

#: method name -> (registry kind, n_components rule, extra params); rule "k": K,
#: "4d": 4 x n_features (overcomplete), "d": n_features (raw dimensions)
METHODS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "ica": ("ica", "k", {}),
    "pca": ("pca", "k", {}),
    "raw": ("identity", "d", {}),
    "random_rotation": ("random_rotation", "k", {}),
    "varimax": ("varimax", "k", {}),
    "dict": ("dict", "k", {}),
    "semi_nmf": ("semi_nmf", "k", {}),
    "sae": ("topk_sae", "k", {}),
    "sae4x": ("topk_sae", "4d", {}),
    "batchtopk": ("batchtopk_sae", "k", {}),
    "batchtopk4x": ("batchtopk_sae", "4d", {}),
}
DEFAULT_METHODS = ("ica", "pca", "raw", "varimax", "dict", "semi_nmf", "sae", "sae4x")
#: fewer training passes for ``quick``
QUICK_SEEDS = (0, 1)  # two initialisations: one seed-to-seed stability pair
QUICK_PARAMS = {"dict": {"max_iter": 2}, "semi_nmf": {"max_iter": 100},
                "topk_sae": {"n_steps": 200}, "batchtopk_sae": {"n_steps": 200}}
TARGET_AUC = 0.95
#: kinds whose fit does not depend on the seed (varimax: LAPACK SVD inside EM)
DETERMINISTIC = ("pca", "identity", "varimax")


@dataclass
class MethodResult:
    """One method's numbers (see the module docstring for the definitions)."""

    name: str
    kind: str
    n_components: int
    fit_seconds: float
    r2: float
    mean_l0: float
    dead_codes: int
    stability: float
    stability_per_seed: list[float]
    mcc_latents: float | None
    mcc_attributes: float | None
    attributes: dict[str, dict[str, Any]]
    factors: dict[str, dict[str, Any]]
    attribute_score: dict[str, float]
    blocks: list[list[int]] | None = None
    block_stability: list[float] | None = None

    @property
    def attribute_score_mean(self) -> float:
        v = [x for x in self.attribute_score.values() if x is not None and np.isfinite(x)]
        return float(np.mean(v)) if v else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["attribute_score_mean"] = self.attribute_score_mean
        return d


@dataclass
class CompareResult:
    """All methods on the same rows; ``to_dict`` is the ``compare.json`` layout."""

    methods: dict[str, MethodResult]
    attributes: list[str]
    factors: list[dict[str, Any]]
    k: int
    seeds: list[int]
    n_rows: int
    n_features: int
    n_train: int
    n_test: int
    quick: bool
    seconds: float
    versions: dict[str, str | None] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)

    def table(self):
        """One row per method: the per-method numbers and the mean per-attribute score."""
        import pandas as pd

        rows = {}
        for name, m in self.methods.items():
            rows[name] = {
                "n_components": m.n_components, "attribute_score_mean": m.attribute_score_mean,
                "r2": m.r2, "mean_l0": m.mean_l0, "dead_codes": m.dead_codes,
                "stability": m.stability, "fit_seconds": m.fit_seconds,
                "mcc_latents": m.mcc_latents, "mcc_attributes": m.mcc_attributes,
            }
            for f, v in m.factors.items():
                rows[name][f"{f}_accuracy"] = v["accuracy"]
        return pd.DataFrame.from_dict(rows, orient="index")

    def to_dict(self) -> dict[str, Any]:
        from clipica._atomic import nan_to_none
        from clipica._format import tagged

        body = {
            "k": self.k, "seeds": self.seeds, "n_rows": self.n_rows,
            "n_features": self.n_features, "n_train": self.n_train, "n_test": self.n_test,
            "quick": self.quick, "seconds": self.seconds, "versions": self.versions,
            "attributes": self.attributes, "factors": self.factors,
            "target_auc": TARGET_AUC,
            "methods": {n: m.to_dict() for n, m in self.methods.items()},
        }
        return nan_to_none(tagged(FORMAT, body, self.fingerprints))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CompareResult:
        from clipica._format import untag

        body, fps = untag(d, FORMAT, source="compare.json")
        methods = {}
        for n, m in body["methods"].items():
            m = {k: v for k, v in m.items() if k != "attribute_score_mean"}
            methods[n] = MethodResult(**m)
        return cls(
            methods=methods, attributes=body["attributes"], factors=body["factors"],
            k=body["k"], seeds=body["seeds"], n_rows=body["n_rows"],
            n_features=body["n_features"], n_train=body["n_train"], n_test=body["n_test"],
            quick=body["quick"], seconds=body["seconds"], versions=body.get("versions", {}),
            fingerprints=fps,
        )


# ------------------------------------------------------------------ per-method numbers


def dictionary_stability(A: np.ndarray, B: np.ndarray) -> float:
    """Mean |cosine| of Hungarian-matched columns of two dictionaries (D, K) and (D, K')."""
    from scipy.optimize import linear_sum_assignment

    def unit(M):
        n = np.linalg.norm(M, axis=0, keepdims=True)
        return M / np.where(n > 0, n, 1.0)

    C = np.abs(unit(np.asarray(A, float)).T @ unit(np.asarray(B, float)))
    r, c = linear_sum_assignment(C, maximize=True)
    return float(C[r, c].mean())


def _r2(X: np.ndarray, R: np.ndarray) -> float:
    sst = float(((X - X.mean(axis=0)) ** 2).sum())
    return 1.0 - float(((X - R) ** 2).sum()) / sst if sst > 0 else float("nan")


def _selectivity(auc: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Strength of the best code on its attribute minus its strongest other attribute."""
    s = 2.0 * np.abs(np.nan_to_num(auc, nan=0.5) - 0.5)
    out = np.full(auc.shape[1], np.nan)
    for a, j in enumerate(best):
        if j < 0:
            continue
        others = np.delete(s[j], a)
        out[a] = s[j, a] - (others.max() if others.size else 0.0)
    return out


def _codes_needed(sparse_k: list[int], sparse_auc: np.ndarray, a: int) -> int | None:
    for i, k in enumerate(sparse_k):
        if np.isfinite(sparse_auc[i, a]) and sparse_auc[i, a] >= TARGET_AUC:
            return int(k)
    return None


def _score_method(name, codes, df, attrs, factor_defs, tr, te, *, blocks, C, random_state,
                  gaussian=()):
    """Per-attribute and per-factor numbers for one code matrix."""
    from clipica.probes import probe
    from clipica.probes.categorical import score_factor_codes

    rep = probe(codes, df[attrs], attributes=attrs, factors=[], split={"train": tr, "test": te},
                name=name, C=C, random_state=random_state)
    r = rep.codes[name]
    sel = _selectivity(r.auc, r.best_component)
    attributes = {}
    score = {}
    for a, col in enumerate(attrs):
        attributes[col] = {
            "best_code": int(r.best_component[a]), "best_auc": float(r.best_auc[a]),
            "runner_up_code": int(r.runner_up_component[a]),
            "runner_up_auc": float(r.runner_up_auc[a]), "selectivity": float(sel[a]),
            "codes_to_auc_0.95": _codes_needed(r.sparse_k, r.sparse_auc, a),
            "linear_probe_auc": float(r.linear_probe_auc[a]),
        }
        if blocks is not None:
            j = int(r.best_component[a])
            attributes[col]["best_code_block"] = next((b for b in blocks if j in b), [j])
        score[col] = float(r.best_auc[a])
    factors = {}
    for f in factor_defs:
        s = score_factor_codes(codes, f, df, tr, te, codes_name=name, blocks=blocks,
                               gaussian=gaussian, C=C, random_state=random_state)
        factors[f.name] = s.to_dict()
        for col, auc in zip(f.columns, s.ovr_auc, strict=True):
            score[col] = float(auc)
    return attributes, factors, score


def _mcc_or_none(codes, Z) -> float | None:
    from clipica.metrics.mcc import mcc

    if Z is None or Z.shape[1] == 0:
        return None
    # a missing label (NaN) is no value: the rows with every label known, as the probes skip
    # each missing cell (the matching needs one set of rows for all columns)
    known = np.isfinite(Z).all(axis=1)
    if known.sum() < 2:
        return None
    return float(mcc(codes[known], Z[known]).score)


def make_method(name: str, k: int, d: int, seed: int, quick: bool = False):
    """The unfitted decomposition behind compare's method ``name`` (see :data:`METHODS`)."""
    from clipica.decompositions.registry import make_decomposition

    if name not in METHODS:
        raise InputError(f"unknown method {name!r}; choose from {', '.join(METHODS)}.")
    kind, rule, params = METHODS[name]
    n = {"k": k, "4d": 4 * d, "d": None}[rule]
    params = {**params, **(QUICK_PARAMS.get(kind, {}) if quick else {})}
    return make_decomposition(kind, n, random_state=seed, **params)


def compare(
    X,
    labels,
    *,
    k: int,
    methods=DEFAULT_METHODS,
    factors=None,
    seeds=(0, 1, 2),
    test_size: float = 0.3,
    C: float = 1.0,
    quick: bool = False,
    max_rows: int | None = None,
    fingerprints: dict[str, str] | None = None,
    progress: bool = False,
) -> CompareResult:
    """Fit and score every method on the same rows (see the module docstring).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Embeddings (e.g. a store's image embeddings).
    labels : pandas DataFrame, row-aligned with X
        0/1 attribute columns; ``latent_*`` columns are ground-truth latents for MCC;
        a ``split`` column, when present, gives the probes' train/test rows.
    k : int
        K for every method whose size is K (``sae4x`` uses 4 x n_features, ``raw`` all).
    factors : list of CategoricalFactor or "NAME=COL,..." specs, optional
        Default: detected (:func:`clipica.data.label_groups.detect_exclusive_groups`).
    seeds : the independent initialisations (>= 2 for stability).
    quick : fewer training passes for the iterative methods (``QUICK_PARAMS``) and 5
        bootstrap resamples (not 10) for the stability of ICA's blocks.
    max_rows : use a seeded subsample of at most this many rows.
    """
    from clipica.data.label_groups import check_factors, detect_exclusive_groups
    from clipica.probes.labels import classify_columns, resolve_split

    t_all = time.perf_counter()
    X, df, methods, seeds = _check_inputs(X, labels, k=k, methods=methods, seeds=seeds, max_rows=max_rows)
    n, d = X.shape
    attrs, latents = classify_columns(df, None, None)
    # a constant column (no positives, or no negatives) scores nothing
    attrs = [a for a in attrs if 0 < np.nansum(df[a].to_numpy(dtype=np.float64)) < df[a].notna().sum()]
    latents = [c for c in latents if str(c).startswith("latent_")]
    facs = check_factors(factors, df) if factors else detect_exclusive_groups(df[attrs])
    tr, te, _, _ = resolve_split(None, df, n, test_size, seeds[0])
    targets = {"df": df, "attrs": attrs, "facs": facs, "tr": tr, "te": te,
               "Z": df[latents].to_numpy(dtype=np.float64) if latents else None,
               "Yb": df[list(attrs)].to_numpy(dtype=np.float64)}
    items = methods
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(methods, desc="compare", unit="method")
    results = {name: _fit_and_score(name, X, k=k, seeds=seeds, quick=quick, C=C, **targets)
               for name in items}
    return CompareResult(
        methods=results, attributes=list(map(str, attrs)), factors=[f.to_dict() for f in facs],
        k=int(k), seeds=seeds, n_rows=int(n), n_features=int(d), n_train=int(tr.size),
        n_test=int(te.size), quick=bool(quick), seconds=float(time.perf_counter() - t_all),
        versions=_versions(), fingerprints=dict(fingerprints or {}),
    )


def _check_inputs(X, labels, *, k, methods, seeds, max_rows):
    """-> (X float32 (n, d), labels frame row-aligned with X, methods, seeds), subsampled to
    ``max_rows``; InputError on anything else."""
    import pandas as pd

    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise InputError(f"X must be (n_samples, n_features); got shape {X.shape}.")
    methods = list(dict.fromkeys(methods))
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise InputError(
            f"unknown method(s) {', '.join(bad) or '(none given)'}; choose from {', '.join(METHODS)}."
        )
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be >= 2 distinct integers (stability); got {seeds}.")
    n, d = X.shape
    if not 1 <= k <= d:
        raise InputError(f"k must be in [1, {d}] (the embedding size); got {k}.")
    df = labels.reset_index(drop=True) if isinstance(labels, pd.DataFrame) else pd.DataFrame(labels)
    if len(df) != n:
        raise InputError(f"labels has {len(df)} rows but X has {n}; they must be row-aligned.")
    if max_rows is not None and n > max_rows:
        keep = np.sort(np.random.default_rng(seeds[0]).choice(n, max_rows, replace=False))
        X, df = X[keep], df.iloc[keep].reset_index(drop=True)
    return X, df, methods, seeds


def _fit_and_score(name: str, X, *, k, seeds, quick, C, df, attrs, facs, tr, te, Z, Yb) -> MethodResult:
    """Fit one method for every seed (once if deterministic) and score the first fit."""
    from clipica.decompositions.blocks import find_blocks

    d = X.shape[1]
    fits = []
    t0 = time.perf_counter()
    for i, s in enumerate(seeds):
        dec = make_method(name, k, d, s, quick).fit(X)
        if i == 0:
            fit_seconds = time.perf_counter() - t0
        fits.append(dec)
        if METHODS[name][0] in DETERMINISTIC:
            break  # every seed gives the same fit: stability 1 by construction
    dec = fits[0]
    codes = np.asarray(dec.transform(X), dtype=np.float64)
    per_seed = [dictionary_stability(dec.mixing_, f.mixing_) for f in fits[1:]] or [1.0]
    blocks = block_stab = None
    if name == "ica":
        # the ICA's unidentifiable Gaussian block stays one block (as the pipeline's fit
        # stage finds them), never a factor's block
        gaussian = list(getattr(dec, "gaussian_block_", None) or [])
        br = find_blocks(codes, n_bootstrap=5 if quick else 10, random_state=seeds[0],
                         fixed_block=gaussian or None)
        blocks, block_stab = br.blocks, br.stability
        dec.blocks_ = blocks
    attributes, factors_out, score = _score_method(
        name, codes, df, attrs, facs, tr, te, blocks=blocks, C=C, random_state=seeds[0],
        gaussian=getattr(dec, "gaussian_block_", None) or ()
    )
    recon = np.asarray(dec.inverse_transform(codes.astype(X.dtype)), dtype=np.float64)
    nz = codes != 0
    return MethodResult(
        name=name, kind=METHODS[name][0], n_components=int(codes.shape[1]),
        fit_seconds=float(fit_seconds), r2=_r2(X.astype(np.float64), recon),
        mean_l0=float(nz.sum(axis=1).mean()), dead_codes=int((~nz.any(axis=0)).sum()),
        stability=float(np.mean(per_seed)), stability_per_seed=[float(v) for v in per_seed],
        mcc_latents=_mcc_or_none(codes, Z), mcc_attributes=_mcc_or_none(codes, Yb),
        attributes=attributes, factors=factors_out, attribute_score=score,
        blocks=blocks, block_stability=block_stab,
    )


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("clipica", "numpy", "scikit-learn", "torch", "overcomplete"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out
