"""Match the components of two decompositions on the same rows (:func:`match`).

The identifiability claim behind clipica predicts agreement: if two encoders recover the
same latents up to a linear map, and ICA removes the rest up to permutation and sign, then
two ICAs of two such encoders give the same components on the same images. The check
(Yamagiwa et al., EMNLP 2023, match ICA axes across models the same way) is label-free:

1. correlate every code of A with every code of B across the shared rows;
2. pair them one to one (Hungarian on ``|r|``), recording each pair's sign;
3. compare blocks of dependent codes as subspaces (canonical correlations), since inside
   a block ICA's rotation is not identified;
4. do the same for PCA with the same K on each side: the control. PCA's subspace is the
   decomposition's (ICA whitens with it), so what the control lacks is what the rotation did.

Labels, where the rows have them, only annotate: each code's best attribute by AUC and
the correlation of each attribute's best code on either side (its "twin").
"""

from __future__ import annotations

import numpy as np

from clipica.errors import InputError
from clipica.match.correlate import cross_correlation, hungarian_pairs, match_blocks
from clipica.match.result import CodeMatch, MatchResult
from clipica.match.rows import SharedRows, shared_rows


def _label_table(labels, n: int):
    """``(names, Y (n, A) float with NaN, group of each column)`` of the binary columns."""
    if labels is None:
        return [], np.zeros((n, 0)), []
    from clipica.data.label_groups import detect_exclusive_groups
    from clipica.data.labels import binary_columns

    if len(labels) != n:
        raise InputError(f"labels must have one row per shared row ({n}), got {len(labels)}")
    names = binary_columns(labels, min_count=1)
    Y = labels[names].to_numpy(dtype=np.float64) if names else np.zeros((n, 0))
    group_of = {c: g.name for g in detect_exclusive_groups(labels, names) for c in g.columns}
    return names, Y, [group_of.get(c) for c in names]


def _aucs(S: np.ndarray, Y: np.ndarray) -> np.ndarray:
    if Y.shape[1] == 0:
        return np.zeros((S.shape[1], 0))
    from clipica.probes import auc_matrix

    return auc_matrix(S, Y)


#: a code "carries" an attribute when its AUC is at least this far from chance (0.65 or 0.35):
#: below it the best attribute of a code that carries none would be a name for noise
MIN_STRENGTH = 0.15


def _best(auc_row: np.ndarray, names: list[str]) -> tuple[str | None, float | None]:
    strength = np.abs(auc_row - 0.5)
    if len(names) == 0 or np.all(np.isnan(strength)):
        return None, None
    j = int(np.nanargmax(strength))
    return (names[j] if strength[j] >= MIN_STRENGTH else None), float(auc_row[j])


def match_codes(S_a: np.ndarray, S_b: np.ndarray, *, labels=None, blocks_a=None, blocks_b=None,
                method: str = "codes", top: int | None = None) -> CodeMatch:
    """Match codes A to codes B, row i of each being the same input.

    Parameters
    ----------
    S_a : ndarray of shape (n_samples, k_a)
    S_b : ndarray of shape (n_samples, k_b)
        Widths may differ; ``min(k_a, k_b)`` pairs are made.
    labels : pandas DataFrame with n_samples rows, optional
        Binary attribute columns (0/1, NaN missing) annotate each code with its best
        attribute and give the per-attribute twins; other columns are ignored.
    blocks_a, blocks_b : list of lists of int, optional
        Groups of dependent codes (a decomposition's ``blocks_``), matched as subspaces.
    top : int, optional
        How many of the strongest pairs ``summary["top_mean"]`` averages; default the
        number of binary attributes outside categorical groups (all pairs without labels).
    """
    S_a, S_b = np.asarray(S_a), np.asarray(S_b)
    if S_a.ndim != 2 or S_b.ndim != 2 or len(S_a) != len(S_b):
        raise InputError(f"codes must be (n_samples, k) arrays on the same rows; got {S_a.shape} and {S_b.shape}")
    R = cross_correlation(S_a, S_b)
    raw = hungarian_pairs(R)
    names, Y, groups = _label_table(labels, len(S_a))
    auc_a, auc_b = _aucs(S_a, Y), _aucs(S_b, Y)
    pairs = []
    for a, b, r in raw:
        att_a, au_a = _best(auc_a[a], names)
        att_b, au_b = _best(auc_b[b], names)
        pairs.append({"a": a, "b": b, "corr": r, "sign": 1 if r >= 0 else -1,
                      "attribute_a": att_a, "auc_a": au_a, "attribute_b": att_b, "auc_b": au_b})
    attributes = _twins(R, raw, names, groups, auc_a, auc_b)
    blocks = match_blocks(S_a, S_b, blocks_a, blocks_b, raw) if (blocks_a or blocks_b) else []
    return CodeMatch(method=method, corr=R, pairs=pairs, attributes=attributes, blocks=blocks,
                     summary=_summary(raw, attributes, top))


def _twins(R, raw, names, groups, auc_a, auc_b) -> list[dict]:
    paired = {(a, b) for a, b, _ in raw}
    out = []
    for j, name in enumerate(names):
        sa, sb = np.abs(auc_a[:, j] - 0.5), np.abs(auc_b[:, j] - 0.5)
        if np.all(np.isnan(sa)) or np.all(np.isnan(sb)):
            continue
        a, b = int(np.nanargmax(sa)), int(np.nanargmax(sb))
        out.append({"attribute": name, "group": groups[j], "a": a, "auc_a": float(auc_a[a, j]),
                    "b": b, "auc_b": float(auc_b[b, j]), "corr": float(R[a, b]), "paired": (a, b) in paired})
    return out


def _summary(raw, attributes, top) -> dict:
    r = np.array([abs(p[2]) for p in raw])
    single = [abs(t["corr"]) for t in attributes if t["group"] is None]
    n_top = int(top) if top is not None else (len(single) or len(r))
    n_top = max(1, min(n_top, len(r)))
    out = {"n_pairs": len(r), "mean_abs_corr": float(r.mean()) if len(r) else None,
           "top": n_top, "top_mean": float(r[:n_top].mean()) if len(r) else None,
           "abs_corr": [float(v) for v in r]}
    if single:
        out.update(attributes_min=float(min(single)), attributes_mean=float(np.mean(single)),
                   n_attributes=len(single))
    return out


def _rows_of(X_a, X_b, ids_a, ids_b) -> SharedRows:
    if ids_a is None and ids_b is None:
        if len(X_a) != len(X_b):
            raise InputError(f"A has {len(X_a)} rows and B {len(X_b)}; pass ids_a and ids_b to join them on ids")
        idx = np.arange(len(X_a))
        return SharedRows(idx, idx.copy(), len(X_a), len(X_b), "order")
    if ids_a is None or ids_b is None:
        raise InputError("pass both ids_a and ids_b (or neither, for rows in the same order)")
    for side, X, ids in (("A", X_a, ids_a), ("B", X_b, ids_b)):
        if len(ids) != len(X):
            raise InputError(f"ids_{side.lower()} has {len(ids)} entries for {len(X)} rows of {side}")
    return shared_rows(ids_a, ids_b)


def significance_of(decomposition, codes: np.ndarray, n_features: int, *, alpha: float = 0.05) -> dict:
    """Which components are distinguishable from Gaussian: the test stored with the fit
    (``gaussianity_``) when the decomposition has one, else
    :func:`~clipica.decompositions.gaussianity.component_significance` of ``codes`` (the
    shared rows) against the null of an ICA of the same D and K. A Gaussian component's
    partner, and its name, are noise: any rotation of a Gaussian subspace is as good.

    Returns ``{"significant": [bool] * K, "p_value": [...], "alpha", "source": "fit" | "codes"}``.
    """
    test = getattr(decomposition, "gaussianity_", None)
    source = "fit"
    if test is None:
        from clipica.decompositions.gaussianity import component_significance

        test = component_significance(codes, n_features=max(int(n_features), codes.shape[1]), alpha=alpha)
        source = "codes"
    # an ICA that split off its Gaussian remainder decided which components it identified: its word
    ident = getattr(decomposition, "identifiable_", None) if source == "fit" else None
    significant = test.significant if ident is None else np.asarray(ident, dtype=bool)
    return {"significant": [bool(v) for v in significant], "p_value": [float(v) for v in test.p_value],
            "alpha": float(test.alpha), "source": source}


def _mark_gaussian(cm: CodeMatch, sig: dict) -> None:
    """Each pair says whether each side's component is significant (non-Gaussian); the summary
    counts the pairs whose both sides are."""
    for p in cm.pairs:
        p["significant_a"] = sig["a"]["significant"][p["a"]]
        p["significant_b"] = sig["b"]["significant"][p["b"]]
    cm.summary["n_significant_pairs"] = sum(p["significant_a"] and p["significant_b"] for p in cm.pairs)


def match(X_a, decomposition_a, X_b, decomposition_b, *, ids_a=None, ids_b=None, labels=None,
          control: bool = True, top: int | None = None, significance: bool = False,
          fingerprints: dict | None = None, inputs: dict | None = None) -> MatchResult:
    """Match the components of two fitted decompositions on the rows both embedded.

    Parameters
    ----------
    X_a : ndarray of shape (n_a, d_a)
    X_b : ndarray of shape (n_b, d_b)
        Embeddings (widths may differ: two models, two layers).
    decomposition_a, decomposition_b : fitted LinearDecomposition
        Each fitted on its side's embeddings; codes are ``transform`` of the shared rows.
    ids_a, ids_b : sequences of row ids, optional
        Join the rows on ids (same ids in the same order: every row). Without ids both
        sides must have the same rows in the same order.
    labels : pandas DataFrame with n_a rows (A's rows), optional
        Binary attribute columns annotate the codes (see :func:`match_codes`).
    control : bool
        Also match PCA with each side's K, fitted on the shared rows.
    significance : bool
        Test each component against a Gaussian null (:func:`significance_of`) and mark the
        pairs (``significant_a``/``significant_b``); seconds per side the first time a (D, K)
        is seen, cached after.

    Raises
    ------
    InputError
        No shared id, too few shared rows, mismatched lengths.
    """
    rows = _rows_of(X_a, X_b, ids_a, ids_b)
    Xa = np.asarray(X_a)[rows.a] if rows.how == "ids" else np.asarray(X_a)
    Xb = np.asarray(X_b)[rows.b] if rows.how == "ids" else np.asarray(X_b)
    lab = None if labels is None else labels.iloc[rows.a].reset_index(drop=True)
    kind = str(getattr(decomposition_a, "kind", "codes"))
    Sa, Sb = decomposition_a.transform(Xa), decomposition_b.transform(Xb)
    codes = match_codes(Sa, Sb, labels=lab,
                        blocks_a=getattr(decomposition_a, "blocks_", None),
                        blocks_b=getattr(decomposition_b, "blocks_", None), method=kind, top=top)
    for blk in codes.blocks:  # the ICA's unidentifiable Gaussian block: a subspace, never axes
        blk["gaussian_a"] = set(blk["a"]) == set(getattr(decomposition_a, "gaussian_block_", None) or [-1])
        blk["gaussian_b"] = set(blk["b"]) == set(getattr(decomposition_b, "gaussian_block_", None) or [-1])
    ctrl = None
    if control:
        from clipica.decompositions.pca import PCA

        pa = PCA(n_components=codes.k_a).fit(Xa)
        pb = PCA(n_components=codes.k_b).fit(Xb)
        ctrl = match_codes(pa.transform(Xa), pb.transform(Xb), labels=lab, method="pca", top=codes.summary["top"])
    sig = {}
    if significance:
        sig = {"a": significance_of(decomposition_a, Sa, Xa.shape[1]),
               "b": significance_of(decomposition_b, Sb, Xb.shape[1])}
        _mark_gaussian(codes, sig)
    return MatchResult(codes=codes, control=ctrl, rows=rows.to_dict(), fingerprints=dict(fingerprints or {}),
                       inputs=dict(inputs or {}), significance=sig)
