"""The rows two runs share: the same ids in the same order, or joined on ids.

Two runs can only be compared on the same inputs: a code of run A and a code of run B
are correlated across the images both of them embedded. The row ids (the store's ``id``
column) say which images those are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipica.errors import InputError


@dataclass(frozen=True)
class SharedRows:
    """Row indices into A and B of the shared rows, in A's order.

    Attributes
    ----------
    a, b : int ndarray of shape (n_shared,)
        ``ids_a[a[i]] == ids_b[b[i]]`` for every i.
    n_a, n_b : int
        Rows of each side before the join.
    how : str
        ``"order"`` (same ids in the same order: every row, no join) or ``"ids"``.
    """

    a: np.ndarray
    b: np.ndarray
    n_a: int
    n_b: int
    how: str

    @property
    def n(self) -> int:
        return int(len(self.a))

    def to_dict(self) -> dict:
        return {"n_shared": self.n, "n_a": int(self.n_a), "n_b": int(self.n_b), "how": self.how}


def _as_ids(ids, side: str) -> np.ndarray:
    arr = np.asarray(ids).astype(str)
    if arr.ndim != 1:
        raise InputError(f"ids of {side} must be one id per row (a 1-d sequence), got shape {arr.shape}")
    return arr


def shared_rows(ids_a, ids_b, *, min_rows: int = 2) -> SharedRows:
    """Align two row tables on their ids.

    Parameters
    ----------
    ids_a, ids_b : sequences of shape (n_a,) and (n_b,)
        Row ids (compared as strings).
    min_rows : int
        Fewest shared rows accepted (a correlation needs at least 2).

    Raises
    ------
    InputError
        No id is shared, fewer than ``min_rows`` are, or an id repeats on a side that must
        be joined (a repeated id has no single partner).
    """
    a, b = _as_ids(ids_a, "A"), _as_ids(ids_b, "B")
    if len(a) == len(b) and np.array_equal(a, b):
        idx = np.arange(len(a))
        shared = SharedRows(idx, idx.copy(), len(a), len(b), "order")
    else:
        for side, arr in (("A", a), ("B", b)):
            uniq, counts = np.unique(arr, return_counts=True)
            if (counts > 1).any():
                raise InputError(f"row id {uniq[counts > 1][0]!r} repeats in {side}; rows are joined on "
                                 "ids, so each id must name one row")
        common, ia, ib = np.intersect1d(a, b, assume_unique=True, return_indices=True)
        if len(common) == 0:
            raise InputError(
                f"no row id is shared between A ({len(a)} rows, e.g. {_example(a)}) and B ({len(b)} rows, "
                f"e.g. {_example(b)}); match needs both runs extracted from the same images")
        order = np.argsort(ia, kind="stable")  # A's order
        shared = SharedRows(ia[order].astype(np.int64), ib[order].astype(np.int64), len(a), len(b), "ids")
    if shared.n < min_rows:
        raise InputError(f"only {shared.n} row(s) shared between A and B; at least {min_rows} are needed")
    return shared


def _example(ids: np.ndarray) -> str:
    return repr(str(ids[0])) if len(ids) else "none"
