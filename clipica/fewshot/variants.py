"""The probes' feature maps: raw, ICA, PCA+ICA, whitened PCA, top-m components, zero-shot prior.

Every map takes (n, D) features to (n, d) float64 and is fitted either on the few-shot
train+val rows of one draw (``fit_on="fewshot"``, Liu et al.'s protocol) or once, without
labels, on the train store's non-test rows (``fit_on="store"``: a pretrained basis).
"""

from __future__ import annotations

import warnings

import numpy as np

from clipica.errors import InputError

#: every variant; ``topm``/``topm-pca``: the m most label-relevant ICA/PCA components;
#: ``zeroshot-init``: a probe on the normalised features regularised towards the text classifier
VARIANTS = ("linear", "ica", "pca+ica", "pca", "topm", "topm-pca", "zeroshot-init")
#: the variants whose map is a decomposition (the ones ``fit_on`` applies to)
DECOMPOSED = ("ica", "pca+ica", "pca", "topm", "topm-pca")
#: the values of m searched for the top-m variants (capped at the basis's K, K itself added)
TOPM_GRID = (1, 2, 4, 8, 16, 32, 64, 128)
FIT_ON = ("fewshot", "store")
#: Liu et al.'s dimensions for 512-d CLIP features: PCA 500, ICA 300, PCA -> ICA 160
PAPER_DIMS = {"pca_dims": 500, "ica": 300, "pca+ica": 160}
ROWS_PER_COMPONENT = 4
DIMS_RULE = (
    "f = min(1, D/500, n_fit/(4*300)); P = round(500 f), K1 = round(300 f), K2 = round(160 f), "
    "each at least 1 (D: feature count, n_fit: rows the decompositions are fitted on)"
)
#: seed of the decompositions fitted on the store (one basis for every draw)
STORE_SEED = 0


def variant_dims(n_fit: int, n_features: int) -> dict[str, int]:
    """Component counts for ``n_fit`` fitting rows of ``n_features``-d features.

    Returns ``{"pca_dims": P, "ica": K1, "pca+ica": K2, "pca": K1}`` (see :data:`DIMS_RULE`);
    the top-m variants use K1 (``topm``: ICA, ``topm-pca``: whitened PCA).
    """
    f = min(1.0, n_features / PAPER_DIMS["pca_dims"], n_fit / (ROWS_PER_COMPONENT * PAPER_DIMS["ica"]))
    P = max(1, min(n_features, round(PAPER_DIMS["pca_dims"] * f)))
    K1 = max(1, min(P, round(PAPER_DIMS["ica"] * f)))
    K2 = max(1, min(P, round(PAPER_DIMS["pca+ica"] * f)))
    return {"pca_dims": P, "ica": K1, "pca+ica": K2, "pca": K1}


def _decomposition(name: str, k: int, seed: int):
    from clipica.decompositions import make_decomposition

    if name == "ica":
        # plain symmetric FastICA, as Liu et al. (and this protocol until the ICA learned to set a
        # Gaussian remainder apart): on a few dozen rows the Gaussianity test leaves most
        # components in the unpolished block (measured: the planted class source's correlation
        # fell from > 0.9 to 0.66-0.82 on 144 rows)
        return make_decomposition(name, int(k), random_state=int(seed), identify=False)
    return make_decomposition(name, int(k), random_state=int(seed))


def basis_of(variant: str) -> str:
    """The decomposition behind a variant: ``topm`` -> ``ica``, ``topm-pca`` -> ``pca``."""
    return {"topm": "ica", "topm-pca": "pca"}.get(variant, variant)


def fit_variant(variant: str, X_fit: np.ndarray, dims: dict[str, int], seed: int):
    """Fit ``variant``'s feature map on ``X_fit`` (n_fit, D); return it.

    The map takes (n, D) features to (n, d_variant) float64. ICA and PCA are clipica's own
    (:mod:`clipica.decompositions`), seeded with ``seed``. ``topm``/``topm-pca`` return the
    full ICA/PCA map (the columns are chosen per draw, :func:`relevance_order`);
    ``zeroshot-init`` the L2-normalised features.
    """
    variant = basis_of(variant)
    if variant == "linear":
        return lambda X: np.asarray(X, dtype=np.float64)
    if variant == "zeroshot-init":
        return unit_rows
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


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (n, D) float64 (cosine geometry of the text classifier)."""
    X = np.asarray(X, dtype=np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def relevance_order(F: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Columns of ``F`` (n, d) from most to least label-relevant on the rows ``(F, y)``.

    Relevance: the one-way ANOVA F ratio of the column, between-class variance over
    pooled within-class variance (a column constant within classes ranks first; ties keep
    column order). Computed on the training shots only.
    """
    F = np.asarray(F, dtype=np.float64)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    sums = np.zeros((n_classes, F.shape[1]))
    np.add.at(sums, y, F)
    means = sums / np.maximum(counts, 1)[:, None]
    grand = F.mean(axis=0)
    between = (counts[:, None] * (means - grand) ** 2).sum(axis=0)
    within = ((F - means[y]) ** 2).sum(axis=0)
    score = between / np.maximum(within, 1e-12 * np.maximum(between, 1e-300))
    return np.argsort(-score, kind="stable")


def topm_grid(K: int) -> list[int]:
    """The values of m searched for a basis of K components: :data:`TOPM_GRID` below K, and K."""
    return sorted({m for m in TOPM_GRID if m < K} | {int(K)})
