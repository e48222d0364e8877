"""Scoring a categorical factor (hair colour) from a small set of codes: a block, or m codes.

A categorical factor with ``c`` values spans up to ``c - 1`` dimensions, so one code
cannot carry it (:mod:`clipica.decompositions.blocks`). :func:`score_factor` scores it
from the best *set* of at most ``m`` codes:

- for a decomposition with blocks (ICA + :func:`~clipica.decompositions.blocks.find_blocks`)
  the candidates are its blocks of size <= m (singletons included): the block is the unit;
- for codes without blocks (PCA, raw embedding dimensions) the best m codes, chosen by
  greedy forward selection: the same number of codes, and a search the block does not get.

Either way the set is chosen on training rows only: one-vs-rest logistic probes (the
project's one solver, :func:`clipica.probes.fit_logistic`) are fitted on the candidate
codes, and the candidate with the highest training accuracy (argmax of the one-vs-rest
logits; ties by mean one-vs-rest AUC) wins. The held-out rows then give the factor's
multiclass accuracy, balanced accuracy and one-vs-rest AUC per value. Rows whose factor
is undefined (no value or several values set) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from clipica.errors import InputError

#: training rows used to rank candidate sets (the chosen set is refitted on all of them)
SELECTION_ROWS = 4000


@dataclass(frozen=True)
class FactorScore:
    """How well one set of codes carries one categorical factor (held-out rows).

    ``columns`` are the chosen code indices; ``ovr_auc`` (n_values,) the one-vs-rest AUC of
    each value's logit among rows where the factor is defined; ``accuracy`` the multiclass
    accuracy of the argmax, ``balanced_accuracy`` its mean per-class recall.
    """

    factor: str
    values: list[str]
    codes: str
    columns: list[int]
    from_block: bool
    accuracy: float
    balanced_accuracy: float
    ovr_auc: np.ndarray
    train_accuracy: float
    n_train: int
    n_test: int
    m: int

    @property
    def mean_ovr_auc(self) -> float:
        return float(np.nanmean(self.ovr_auc)) if self.ovr_auc.size else float("nan")

    def to_dict(self) -> dict[str, Any]:
        from clipica._atomic import nan_to_none

        return nan_to_none(
            {
                "factor": self.factor,
                "codes": self.codes,
                "columns": [int(c) for c in self.columns],
                "size": len(self.columns),
                "from_block": bool(self.from_block),
                "m": int(self.m),
                "accuracy": float(self.accuracy),
                "balanced_accuracy": float(self.balanced_accuracy),
                "ovr_auc": {v: float(a) for v, a in zip(self.values, self.ovr_auc, strict=True)},
                "mean_ovr_auc": self.mean_ovr_auc,
                "train_accuracy": float(self.train_accuracy),
                "n_train": int(self.n_train),
                "n_test": int(self.n_test),
            }
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FactorScore:
        values = list(d["ovr_auc"])
        return cls(
            factor=d["factor"], values=values, codes=d["codes"],
            columns=[int(c) for c in d["columns"]], from_block=bool(d["from_block"]),
            accuracy=_f(d["accuracy"]), balanced_accuracy=_f(d["balanced_accuracy"]),
            ovr_auc=np.array([_f(d["ovr_auc"][v]) for v in values]),
            train_accuracy=_f(d["train_accuracy"]), n_train=int(d["n_train"]),
            n_test=int(d["n_test"]), m=int(d["m"]),
        )


def _f(v) -> float:
    return float("nan") if v is None else float(v)


def _onehot(y: np.ndarray, c: int) -> np.ndarray:
    out = np.zeros((y.size, c))
    out[np.arange(y.size), y] = 1.0
    return out


def _fit_eval(codes, y, c, cols, tr, ev, C):
    """OvR probes on ``codes[tr][:, cols]``; (accuracy, mean OvR AUC, logits) on rows ``ev``."""
    from clipica.probes import auc_columns, fit_logistic

    fit = fit_logistic(codes[np.ix_(tr, cols)], _onehot(y[tr], c), C=C)
    logits = fit.decision_function(codes[np.ix_(ev, cols)])
    acc = float(np.mean(np.argmax(logits, axis=1) == y[ev]))
    auc = auc_columns(logits, _onehot(y[ev], c))
    return acc, auc, logits


def score_factor(
    codes,
    classes,
    *,
    train,
    test,
    m: int = 3,
    blocks: list[list[int]] | None = None,
    factor: str = "factor",
    values: list[str] | None = None,
    codes_name: str = "codes",
    C: float = 1.0,
    random_state: int = 0,
) -> FactorScore:
    """Score a categorical factor from the best block of size <= m, or the best m codes.

    Parameters
    ----------
    codes : array of shape (n_samples, n_codes)
    classes : int array of shape (n_samples,)
        The factor's value per row (0 .. n_values - 1), -1 where undefined
        (:meth:`clipica.data.label_groups.CategoricalFactor.codes`).
    train, test : int arrays of row indices
    m : int
        Most codes the score may use.
    blocks : list of list of int, optional
        Candidate sets (the decomposition's ``blocks_``). Without them: greedy forward
        selection of exactly ``min(m, n_codes)`` codes.
    """
    codes = np.asarray(codes, dtype=np.float64)
    y = np.asarray(classes, dtype=np.int64)
    if codes.ndim != 2 or y.shape != (codes.shape[0],):
        raise InputError(
            f"codes must be (n_samples, n_codes) and classes (n_samples,); got {codes.shape} "
            f"and {y.shape}."
        )
    if m < 1:
        raise InputError(f"m must be >= 1; got {m}.")
    c = int(y.max()) + 1 if y.size else 0
    values = list(values) if values is not None else [str(i) for i in range(c)]
    c = max(c, len(values))
    tr = np.asarray(train, dtype=np.int64)
    te = np.asarray(test, dtype=np.int64)
    tr, te = tr[y[tr] >= 0], te[y[te] >= 0]
    if c < 2 or tr.size < 2 * c or te.size < c:
        raise InputError(
            f"factor {factor!r} needs >= 2 values and labelled train/test rows; got {c} values, "
            f"{tr.size} train and {te.size} test rows."
        )
    rng = np.random.default_rng(random_state)
    sel = tr if tr.size <= SELECTION_ROWS else np.sort(rng.choice(tr, SELECTION_ROWS, replace=False))
    K = codes.shape[1]

    def train_score(cols):
        acc, auc, _ = _fit_eval(codes, y, c, cols, sel, sel, C)
        return (acc, float(np.nanmean(auc)))

    if blocks is not None:
        cands = [sorted(map(int, b)) for b in blocks if 1 <= len(b) <= m]
        if not cands:
            raise InputError(f"no block of size <= {m} to score factor {factor!r} with.")
        scores = [train_score(b) for b in cands]
        best = cands[max(range(len(cands)), key=lambda i: scores[i])]
    else:
        best: list[int] = []
        for _ in range(min(m, K)):
            rest = [j for j in range(K) if j not in best]
            scores = [train_score(best + [j]) for j in rest]
            best = best + [rest[max(range(len(rest)), key=lambda i: scores[i])]]
    train_acc, _, _ = _fit_eval(codes, y, c, best, tr, tr, C)
    acc, auc, logits = _fit_eval(codes, y, c, best, tr, te, C)
    pred = np.argmax(logits, axis=1)
    recall = [np.mean(pred[y[te] == k] == k) for k in range(c) if np.any(y[te] == k)]
    return FactorScore(
        factor=factor,
        values=values,
        codes=codes_name,
        columns=[int(j) for j in best],
        from_block=blocks is not None,
        accuracy=acc,
        balanced_accuracy=float(np.mean(recall)),
        ovr_auc=np.asarray(auc, dtype=np.float64),
        train_accuracy=train_acc,
        n_train=int(tr.size),
        n_test=int(te.size),
        m=int(m),
    )


#: candidate codes of a decomposition without blocks: the greedy search for the best m runs
#: among this many codes most related to the factor (training rows)
PREFILTER = 32


def factor_blocks(blocks, gaussian=()) -> list[list[int]] | None:
    """The blocks a factor may be scored from: ``blocks`` without any block that holds a
    component of the unidentifiable Gaussian block ``gaussian`` (its codes are an arbitrary
    basis of a Gaussian remainder: no rotation of it means more than another). None stays None."""
    if blocks is None:
        return None
    g = {int(i) for i in gaussian or ()}
    return [sorted(map(int, b)) for b in blocks if not g & {int(i) for i in b}]


def prefilter_codes(codes, y: np.ndarray, rows: np.ndarray, keep: int = PREFILTER) -> np.ndarray:
    """The ``keep`` codes most related to the factor on ``rows`` (max one-vs-rest |AUC - .5|),
    sorted; all of them when there are at most ``keep``."""
    from clipica.probes import auc_matrix

    if codes.shape[1] <= keep:
        return np.arange(codes.shape[1])
    c = int(y.max()) + 1
    ok = rows[y[rows] >= 0]
    Y = np.eye(c)[y[ok]]
    s = np.nanmax(np.abs(auc_matrix(np.asarray(codes[ok]), Y) - 0.5), axis=1)
    return np.sort(np.argsort(-np.nan_to_num(s, nan=0.0), kind="stable")[:keep])


def score_factor_codes(codes, factor, df, train, test, *, codes_name: str, blocks=None,
                       gaussian=(), m: int | None = None, C: float = 1.0, random_state: int = 0,
                       prefilter_rows: np.ndarray | None = None) -> FactorScore:
    """One categorical ``factor`` (:class:`~clipica.data.label_groups.CategoricalFactor`) from
    one code matrix, the way ``clipica compare`` and the probe stage score it.

    ``m`` (default ``len(factor.columns) - 1``: a factor with c values spans at most c - 1
    dimensions) is the most codes the score may use. With ``blocks`` (a decomposition's
    ``blocks_``): the best block of size <= m, the Gaussian block (``gaussian``) never a
    candidate. Without: the best m codes by greedy forward selection among the
    :data:`PREFILTER` codes most related to the factor on the training rows
    (``prefilter_rows``, default all of ``train``). ``codes`` may be a float32 memmap: only
    the candidate columns are copied to float64.
    """
    y = factor.codes(df)
    m = len(factor.columns) - 1 if m is None else int(m)
    kw = dict(train=train, test=test, m=m, factor=factor.name, values=list(factor.columns),
              codes_name=codes_name, C=C, random_state=random_state)
    usable = factor_blocks(blocks, gaussian)
    if usable is not None:
        return score_factor(codes, y, blocks=usable, **kw)
    rows = np.asarray(train if prefilter_rows is None else prefilter_rows, dtype=np.int64)
    cand = prefilter_codes(codes, y, rows)
    s = score_factor(np.asarray(codes[:, cand]), y, **kw)
    return type(s)(**{**s.__dict__, "columns": [int(cand[j]) for j in s.columns]})


# ------------------------------------------------------------------ block-level probes


@dataclass(frozen=True)
class BlockProbe:
    """Held-out AUC of a logistic probe restricted to each block, for every attribute.

    ``auc[b, a]``: probe on the codes of ``blocks[b]`` only, fitted on the training rows,
    scored on the test rows (the probe picks the sign, so values are >= 0.5 up to noise).
    """

    blocks: list[list[int]]
    attributes: list[str]
    auc: np.ndarray  # (n_blocks, n_attributes)
    n_train: int
    n_test: int

    def best_block(self) -> dict[str, tuple[int, float]]:
        """Per attribute: (block index, AUC) of the best block."""
        out = {}
        for a, name in enumerate(self.attributes):
            col = np.where(np.isnan(self.auc[:, a]), -np.inf, self.auc[:, a])
            b = int(np.argmax(col))
            out[name] = (b, float(self.auc[b, a]))
        return out

    def to_dict(self) -> dict[str, Any]:
        from clipica._atomic import nan_to_none

        return nan_to_none({
            "blocks": [[int(i) for i in b] for b in self.blocks],
            "attributes": list(self.attributes),
            "auc": self.auc.tolist(),
            "best_block": {k: {"block": b, "auc": v} for k, (b, v) in self.best_block().items()},
            "n_train": self.n_train, "n_test": self.n_test,
        })


def probe_blocks(codes, labels, blocks, *, train, test, C: float = 1.0) -> BlockProbe:
    """Logistic probes restricted to each block: AUC per attribute per block.

    Parameters
    ----------
    codes : array (n_samples, K); labels : DataFrame of 0/1 columns (NaN missing), row-aligned;
    blocks : the decomposition's ``blocks_``; train, test : row indices.
    """
    from clipica.probes import auc_columns, fit_logistic

    codes = np.asarray(codes, dtype=np.float64)
    attrs = [str(c) for c in labels.columns]
    Y = labels.to_numpy(dtype=np.float64)
    tr = np.asarray(train, dtype=np.int64)
    te = np.asarray(test, dtype=np.int64)
    usable = (np.nansum(Y[tr], axis=0) > 0) & (np.nansum(1 - Y[tr], axis=0) > 0)
    ua = np.flatnonzero(usable)
    auc = np.full((len(blocks), len(attrs)), np.nan)
    for b, members in enumerate(blocks):
        cols = sorted(int(i) for i in members)
        if not cols or max(cols) >= codes.shape[1]:
            raise InputError(f"block {members} does not index the {codes.shape[1]} codes.")
        if ua.size:
            fit = fit_logistic(codes[np.ix_(tr, cols)], Y[np.ix_(tr, ua)], C=C)
            auc[b, ua] = auc_columns(fit.decision_function(codes[np.ix_(te, cols)]), Y[np.ix_(te, ua)])
    return BlockProbe([sorted(map(int, b)) for b in blocks], attrs, auc, int(tr.size), int(te.size))
