"""Categorical factors stored as groups of one-hot label columns.

Datasets often store one categorical factor as several 0/1 columns: CelebA's hair colour
is ``Black_Hair, Blond_Hair, Brown_Hair, Gray_Hair`` (at most one is 1 per row).
Scoring each column on its own misses that they are one factor living in a subspace
(see :mod:`clipica.decompositions.blocks`). A :class:`CategoricalFactor` names such a
group; it is either declared (``--factor hair=Black_Hair,Blond_Hair,Brown_Hair,Gray_Hair``,
:func:`parse_factor_spec`) or detected (:func:`detect_exclusive_groups`).

Detection rule (stated so that it can be checked): two binary columns are *exclusive*
when the rows where both are 1 are at most ``max_overlap`` of the smaller column's
positives; a group is a maximal set of at least ``min_columns`` pairwise exclusive
columns (a clique of that graph) whose union covers at least ``min_coverage`` of the
labelled rows. Overlapping candidate groups are resolved greedily by coverage. Two
columns alone are never a group: a pair of rarely co-occurring attributes (``Male`` and
``Wearing_Lipstick`` in CelebA) is common, a triple of exclusive ones covering half the
data is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from clipica.errors import InputError

#: the share of labelled rows that may have two columns of one categorical factor set (label
#: noise); more and the columns are not one factor (detected groups and declared ones alike)
MAX_OVERLAP = 0.02


@dataclass(frozen=True)
class CategoricalFactor:
    """One categorical factor: a name and the one-hot label columns of its values."""

    name: str
    columns: tuple[str, ...]
    source: str = "declared"  # "declared" or "detected"

    def codes(self, df) -> np.ndarray:
        """Class index per row, shape (n_rows,): the column that is 1, -1 when none or several.

        Rows with a missing (NaN) value in any of the columns get -1.
        """
        Y = _values(df, self.columns)
        ok = ~np.isnan(Y).any(axis=1) & (np.nansum(Y, axis=1) == 1)
        out = np.full(Y.shape[0], -1, dtype=np.int64)
        out[ok] = np.argmax(Y[ok], axis=1)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "columns": list(self.columns), "source": self.source}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalFactor:
        return cls(str(d["name"]), tuple(map(str, d["columns"])), str(d.get("source", "declared")))


def _values(df, columns) -> np.ndarray:
    import pandas as pd

    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            f"label column(s) {', '.join(missing)} not found; available: "
            f"{', '.join(map(str, df.columns))}."
        )
    return df[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)


def parse_factor_spec(spec: str) -> CategoricalFactor:
    """``"hair=Black_Hair,Blond_Hair,Brown_Hair"`` -> a declared :class:`CategoricalFactor`."""
    name, sep, cols = str(spec).partition("=")
    name = name.strip()
    columns = tuple(c.strip() for c in cols.split(",") if c.strip())
    if not sep or not name or len(columns) < 2 or len(set(columns)) != len(columns):
        raise InputError(
            f"--factor must look like NAME=COL1,COL2[,...] with at least two distinct columns "
            f"(e.g. hair=Black_Hair,Blond_Hair,Brown_Hair,Gray_Hair); got {spec!r}."
        )
    return CategoricalFactor(name, columns, "declared")


def check_factors(factors, df) -> list[CategoricalFactor]:
    """Validate declared factors against a label table: columns exist, hold 0/1, are mutually
    exclusive (:func:`_check_exclusive`), belong to one
    factor each; distinct names."""
    out = []
    seen: set[str] = set()
    taken: dict[str, str] = {}  # column -> the factor that has it
    for f in factors:
        if not isinstance(f, CategoricalFactor):
            f = parse_factor_spec(f)
        if f.name in seen:
            raise InputError(f"factor name {f.name!r} given twice.")
        seen.add(f.name)
        Y = _values(df, f.columns)
        v = Y[~np.isnan(Y)]
        if not np.all((v == 0) | (v == 1)):
            raise InputError(f"factor {f.name!r}: its columns must hold 0/1 values (NaN missing).")
        if (f.codes(df) >= 0).sum() == 0:
            raise InputError(
                f"factor {f.name!r}: no row has exactly one of {', '.join(f.columns)} set."
            )
        _check_exclusive(f, Y)
        shared = [c for c in f.columns if c in taken]
        if shared:
            raise InputError(f"factor {f.name!r}: column {shared[0]!r} is already in factor "
                             f"{taken[shared[0]]!r}; a column belongs to one factor")
        taken.update({c: f.name for c in f.columns})
        out.append(f)
    return out


def _check_exclusive(f: CategoricalFactor, Y: np.ndarray) -> None:
    """Refuse a factor two of whose columns are set together on more than :data:`MAX_OVERLAP`
    of the smaller one's positives (the rule of :func:`detect_exclusive_groups`): scoring only
    the rows with exactly one column set would report an accuracy on rows nobody chose."""
    ones = np.nan_to_num(Y, nan=0.0) == 1
    pos = ones.sum(axis=0)
    for i in range(len(f.columns)):
        for j in range(i + 1, len(f.columns)):
            both = int((ones[:, i] & ones[:, j]).sum())
            if both > MAX_OVERLAP * min(pos[i], pos[j]):
                raise InputError(
                    f"factor {f.name!r}: its columns are not mutually exclusive ({f.columns[i]} and "
                    f"{f.columns[j]} are both 1 on {both} of {len(Y)} rows); a categorical factor "
                    "takes columns of which each row has at most one set")


def _name_for(columns: tuple[str, ...]) -> str:
    """A readable name: the columns' common suffix or prefix (``_Hair`` -> ``hair``)."""
    parts = [c.replace("-", "_").split("_") for c in columns]
    for take in (lambda p: p[-1], lambda p: p[0]):
        words = {take(p).lower() for p in parts if len(p) > 1}
        if len(words) == 1 and all(len(p) > 1 for p in parts):
            return words.pop()
    return "+".join(columns)


def detect_exclusive_groups(
    df,
    columns=None,
    *,
    max_overlap: float = MAX_OVERLAP,
    min_columns: int = 3,
    min_coverage: float = 0.5,
    max_columns: int = 64,
) -> list[CategoricalFactor]:
    """Groups of mutually exclusive 0/1 columns that look like one categorical factor.

    Parameters
    ----------
    df : pandas DataFrame of labels.
    columns : candidate binary columns (default: every numeric column holding only 0/1/NaN).
    max_overlap : largest co-occurrence of two columns, as a fraction of the smaller one's
        positives, that still counts as exclusive (CelebA's labels are noisy).
    min_columns, min_coverage : see the module docstring.
    max_columns : the clique search is exponential; above this many candidates, only
        columns exclusive with at least ``min_columns - 1`` others are searched.

    Returns
    -------
    list of CategoricalFactor, ``source="detected"``, columns in the table's order.
    """

    if columns is None:
        from clipica.data.labels import is_binary_column

        # every 0/1 column with both classes present (the one rule, clipica.data.labels)
        columns = [c for c in df.columns if is_binary_column(df[c], min_count=1)]
    columns = list(columns)
    if len(columns) < min_columns:
        return []
    Y = _values(df, columns)
    obs = ~np.isnan(Y)
    P = np.where(obs, Y, 0.0)
    both = P.T @ P
    pos = P.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = both / np.minimum.outer(pos, pos)
    excl = (frac <= max_overlap) & (pos[:, None] > 0) & (pos[None, :] > 0)
    np.fill_diagonal(excl, False)
    keep = np.flatnonzero(excl.sum(axis=1) >= min_columns - 1)
    if keep.size > max_columns:
        keep = keep[np.argsort(-excl[keep].sum(axis=1), kind="stable")[:max_columns]]
    cliques = _maximal_cliques(excl, keep.tolist())
    labelled = obs.all(axis=1)
    cands = []
    for q in cliques:
        if len(q) < min_columns:
            continue
        cover = float((P[labelled][:, q].sum(axis=1) >= 1).mean()) if labelled.any() else 0.0
        if cover >= min_coverage:
            cands.append((cover, len(q), sorted(q)))
    cands.sort(key=lambda t: (-t[0], -t[1], t[2]))
    used: set[int] = set()
    out = []
    for _, _, q in cands:
        if used & set(q):
            continue
        used |= set(q)
        cols = tuple(str(columns[i]) for i in q)
        out.append(CategoricalFactor(_name_for(cols), cols, "detected"))
    names = [f.name for f in out]
    # distinct names even when two groups share a suffix
    return [
        CategoricalFactor(f.name if names.count(f.name) == 1 else "+".join(f.columns), f.columns,
                          f.source)
        for f in out
    ]


def _maximal_cliques(adj: np.ndarray, nodes: list[int]) -> list[list[int]]:
    """Bron-Kerbosch with pivoting on the sub-graph ``nodes`` of the boolean matrix ``adj``."""
    out: list[list[int]] = []
    nbr = {v: {u for u in nodes if adj[v, u]} for v in nodes}

    def bk(r: set[int], p: set[int], x: set[int]) -> None:
        if not p and not x:
            out.append(sorted(r))
            return
        pivot = max(p | x, key=lambda u: len(nbr[u] & p))
        for v in list(p - nbr[pivot]):
            bk(r | {v}, p & nbr[v], x & nbr[v])
            p = p - {v}
            x = x | {v}

    bk(set(), set(nodes), set())
    return out


def factor_columns(factors) -> list[str]:
    """Every label column that belongs to one of ``factors``."""
    return [c for f in factors for c in f.columns]


def label_factors(rows, attributes, declared=()) -> list[CategoricalFactor]:
    """The categorical factors of a label table: ``declared`` ones (``CategoricalFactor`` or
    ``"NAME=COL,..."``, checked against ``rows``), then the groups of mutually exclusive
    columns detected among the binary ``attributes`` (:func:`detect_exclusive_groups`) that
    share no column with a declared one. The probe stage scores them as blocks and the report
    reads them as one factor each: the same factors in both."""
    out = check_factors(list(declared), rows) if declared else []
    attrs = [a for a in attributes if a in rows.columns]
    taken = {c for f in out for c in f.columns}
    if attrs:
        out += [f for f in detect_exclusive_groups(rows[attrs]) if not taken & set(f.columns)]
    return out


__all__ = [
    "CategoricalFactor",
    "parse_factor_spec",
    "check_factors",
    "detect_exclusive_groups",
    "factor_columns",
    "label_factors",
]
