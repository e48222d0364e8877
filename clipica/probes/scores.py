"""Closed-form rank statistics for probes: AUC of every score for every binary label,
paired AUCs, Spearman matrices, balanced accuracy. numpy/scipy only."""

from __future__ import annotations

import numpy as np


def _tied_ranks(sv: np.ndarray, new: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of the sorted vector ``sv``, in sorted order.

    ``new`` is a bool scratch buffer of len(sv); ``first`` is ``1..len(sv)`` as float64.
    """
    n = sv.shape[0]
    new[:1] = True
    np.not_equal(sv[1:], sv[:-1], out=new[1:])
    if new.all():
        return first
    # runs of equal values: every member gets the mean of the run's positions
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    return (0.5 * (starts + 1 + ends))[group]


def average_ranks(S: np.ndarray, rows: np.ndarray | None = None):
    """Average ranks (1-based, ties get their mean rank) of every column of ``S`` (n, c).

    ``scipy.stats.rankdata(S, axis=0, method="average")``, computed in S's own dtype
    (float32 codes are not widened: widening never breaks a tie) with numpy's default
    (unstable) argsort, which is several times faster than the stable sort rankdata uses;
    ties are resolved after sorting, so the result is the same. Returns float64.

    ``rows`` (distinct row indices): also return the ranks of ``S[rows]`` among
    themselves, ``(len(rows), c)``, from the same sort (the rows' order is the full order
    restricted to them), i.e. ``(average_ranks(S), average_ranks(S[rows]))`` for one sort.
    """
    n = S.shape[0]
    # one contiguous row per column: the sort, the tie scan and the scatter run along memory
    St = np.ascontiguousarray(S.T)
    order = np.argsort(St, axis=1)
    ranks = np.empty(St.shape, dtype=np.float64)
    first = np.arange(1, n + 1, dtype=np.float64)
    new = np.empty(n, dtype=bool)
    if rows is not None:
        m = len(rows)
        position = np.full(n, -1, dtype=np.int64)  # row index -> its position among `rows`
        position[rows] = np.arange(m)
        sub = np.empty((St.shape[0], m), dtype=np.float64)
        first_sub, new_sub = first[:m], np.empty(m, dtype=bool)
    for j in range(St.shape[0]):
        o = order[j]
        sv = St[j, o]
        ranks[j, o] = _tied_ranks(sv, new, first)
        if rows is not None:
            at = position[o]
            keep = at >= 0
            sub[j, at[keep]] = _tied_ranks(sv[keep], new_sub, first_sub)
    return ranks.T if rows is None else (ranks.T, sub.T)


def _auc_from_ranks(ranks: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(c, a) AUCs of ranked scores (m, c) against complete 0/1 labels (m, a); NaN for one class."""
    n1 = y.sum(axis=0)
    n0 = y.shape[0] - n1
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (ranks.T @ y - n1 * (n1 + 1) / 2.0) / (n1 * n0)
    auc[:, (n1 == 0) | (n0 == 0)] = np.nan
    return auc


def auc_matrix(scores, labels: np.ndarray, *, rows: np.ndarray | None = None,
               block: int = 8, subset: tuple[np.ndarray, np.ndarray] | None = None):
    """ROC AUC of every score column for every binary label column, from ranks.

    Parameters
    ----------
    scores : array of shape (n_samples, n_scores)
        Any dtype, a memmap included: read ``block`` columns at a time (float64 ranks of
        a block), so a wide float32 matrix is never copied whole to float64.
    labels : ndarray of shape (n_samples, n_labels), or (len(rows), n_labels) with ``rows``
        0/1 values; NaN marks a missing label (that row is left out for that label only).
    rows : int array, optional
        Score the rows ``scores[rows]`` against ``labels`` (row i of labels is row
        ``rows[i]`` of scores), without copying the whole matrix first.
    subset : (sorted int array, labels of shape (len(subset rows), n_subset_labels)), optional
        Also score ``scores[subset rows]`` against these labels -- ``auc_matrix(scores,
        subset_labels, rows=subset_rows)`` -- from the same sort of each column when both
        label sets are complete (the probes' all-row and training-row AUCs: one sort, not
        two). Then returns the pair.

    Returns
    -------
    ndarray of shape (n_scores, n_labels), or a pair with ``subset``
        ``AUC = (sum of positive ranks - n1 (n1 + 1) / 2) / (n1 n0)`` with average ranks
        for ties (the Mann-Whitney U statistic), identical to
        ``sklearn.metrics.roc_auc_score``. NaN where a label has only one class.
    """
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim == 1:
        labels = labels[:, None]
    shared = None
    if subset is not None:
        sub_rows = np.asarray(subset[0], dtype=np.int64)
        sub_labels = np.asarray(subset[1], dtype=np.float64)
        if rows is not None or np.isnan(labels).any() or np.isnan(sub_labels).any():
            # missing labels rank each label's own rows: two separate passes
            return (auc_matrix(scores, labels, rows=rows, block=block),
                    auc_matrix(scores, sub_labels, rows=sub_rows, block=block))
        shared = np.full((scores.shape[1], sub_labels.shape[1]), np.nan)
    n_scores = scores.shape[1]
    out = np.full((n_scores, labels.shape[1]), np.nan)
    missing = np.isnan(labels)
    complete = ~missing.any(axis=0)
    groups: list[tuple[np.ndarray, np.ndarray | None]] = []
    if complete.any() or shared is not None:
        groups.append((np.flatnonzero(complete), None))
    for a in np.flatnonzero(~complete):
        groups.append((np.array([a]), ~missing[:, a]))
    # each group's labels once, not per block of scores (and no copy when it is every column:
    # an (n, labels) float64 copy per concurrent code set was a probe-stage peak)
    ys = [labels if keep is None and cols.size == labels.shape[1]
          else (labels[:, cols] if keep is None else labels[np.ix_(keep, cols)]) for cols, keep in groups]
    for c0 in range(0, n_scores, block):
        S = np.asarray(scores[:, c0 : c0 + block])
        if S.dtype not in (np.float32, np.float64):
            S = S.astype(np.float64)
        if rows is not None:
            S = S[rows]
        for (cols, keep), y in zip(groups, ys, strict=True):
            if shared is not None:
                ranks, sub_ranks = average_ranks(S, sub_rows)
                shared[c0 : c0 + block] = _auc_from_ranks(sub_ranks, sub_labels)
            else:
                ranks = average_ranks(S if keep is None else S[keep])
            out[c0 : c0 + block, cols] = _auc_from_ranks(ranks, y)
    return out if shared is None else (out, shared)


def auc_columns(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC AUC of score column ``a`` for label column ``a`` (paired columns), shape (n_labels,)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    out = np.full(labels.shape[1], np.nan)
    missing = np.isnan(labels)
    complete = np.flatnonzero(~missing.any(axis=0))
    if complete.size:
        ranks = average_ranks(scores[:, complete])
        y = labels[:, complete]
        n1 = y.sum(axis=0)
        n0 = y.shape[0] - n1
        with np.errstate(divide="ignore", invalid="ignore"):
            out[complete] = ((ranks * y).sum(axis=0) - n1 * (n1 + 1) / 2.0) / (n1 * n0)
    for a in np.flatnonzero(missing.any(axis=0)):
        out[a] = auc_matrix(scores[:, [a]], labels[:, [a]])[0, 0]
    return out


def spearman_matrix(codes, factors: np.ndarray, *, block: int = 64) -> np.ndarray:
    """Spearman correlation (Pearson on average ranks) of every code with every factor.

    ``codes`` (n, K) and ``factors`` (n, F) without missing values; returns (K, F).
    ``codes`` is ranked ``block`` columns at a time (a wide matrix is never copied whole).
    """
    from scipy.stats import rankdata

    from clipica.metrics._common import column_correlation

    rf = rankdata(factors, axis=0, method="average")
    return np.vstack([
        column_correlation(rankdata(np.asarray(codes[:, c0 : c0 + block], dtype=np.float64),
                                    axis=0, method="average"), rf)
        for c0 in range(0, codes.shape[1], block)
    ])


def balanced_accuracy_columns(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Balanced accuracy of ``logits > 0`` per column (NaN labels skipped), shape (n_labels,)."""
    pred = logits > 0
    obs = ~np.isnan(labels)
    pos = obs & (labels == 1)
    neg = obs & (labels == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = (pred & pos).sum(axis=0) / pos.sum(axis=0)
        tnr = (~pred & neg).sum(axis=0) / neg.sum(axis=0)
    return 0.5 * (tpr + tnr)
