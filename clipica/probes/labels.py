"""The probes' labels and rows: which label columns are attributes or factors, which rows train.

:func:`classify_columns` applies the one column rule of :mod:`clipica.data.labels` (or checks
named columns); :func:`resolve_split` turns a split column, a ``split=`` array or dict, or a
seed into training and held-out row indices. Shared by :func:`clipica.probes.probe` and
:func:`clipica.probes.compare.compare`, so both score on the same rows.
"""

from __future__ import annotations

import numpy as np

from clipica.data.labels import (
    RESERVED_COLUMNS,
    binary_columns,
    factor_columns,
    is_binary_column,
    is_numeric_column,
)
from clipica.errors import InputError

_TRAIN_NAMES = ("train",)
_TEST_NAMES = ("test",)
_VAL_NAMES = ("val", "valid", "validation")


def label_frame(labels, n: int):
    """``labels`` (a DataFrame or a dict of columns) as a DataFrame of ``n`` rows, index reset."""
    import pandas as pd

    if isinstance(labels, pd.DataFrame):
        df = labels.reset_index(drop=True)
    elif isinstance(labels, dict):
        df = pd.DataFrame(labels)
    else:
        raise InputError(
            f"labels must be a pandas DataFrame (or a dict of columns); got {type(labels).__name__}."
        )
    if len(df) != n:
        raise InputError(
            f"labels has {len(df)} rows but codes has {n}; they must be row-aligned "
            "(samples first, same order)."
        )
    return df


def classify_columns(df, attributes, factors) -> tuple[list[str], list[str]]:
    """Binary attributes and continuous factors by the one rule of :mod:`clipica.data.labels`,
    or the named ones (checked)."""
    if attributes is None and factors is None:
        attributes = binary_columns(df)
        factors = factor_columns(df)
    else:
        attributes = list(attributes or [])
        factors = list(factors or [])
    for col in [*attributes, *factors]:
        if col not in df.columns:
            raise InputError(
                f"label column {col!r} not found; available: {', '.join(map(str, df.columns))}."
            )
        if not is_numeric_column(df[col]):
            raise InputError(f"label column {col!r} is not numeric (dtype {df[col].dtype}).")
    for col in attributes:
        if not is_binary_column(df[col]):
            raise InputError(
                f"attribute {col!r} must hold 0/1 values (NaN for missing); pass it in factors= "
                "for a Spearman score instead."
            )
    if not attributes and not factors:
        raise InputError(
            "no label columns to probe: expected 0/1 attribute columns or numeric latent_* columns "
            f"besides {', '.join(RESERVED_COLUMNS)}; got columns {', '.join(map(str, df.columns))}."
        )
    return attributes, factors


def _seeded_split(n: int, test_size: float, random_state: int, reason: str | None):
    from clipica.metrics._common import split_indices

    tr, te = split_indices(n, test_size=test_size, random_state=random_state)
    source = f"seeded (test_size={test_size}, random_state={random_state})"
    info = {"rule": "seeded", "test_size": test_size, "random_state": random_state}
    if reason:
        source = f"seeded held-out rows (test_size={test_size}, random_state={random_state}): {reason}"
        info["reason"] = reason
    return tr, te, source, info


def resolve_split(split, df, n: int, test_size: float, random_state: int):
    """Return (train_idx, test_idx, source, info).

    A split column (or ``split=`` array) without at least 2 train and 2 test (or val)
    rows -- e.g. a store extracted with one split, all rows ``train`` -- is replaced by
    a seeded held-out split of all rows, and ``info["reason"]`` says so. An explicit
    ``split=`` dict is used as given.
    """
    if split is None and "split" in df.columns and df["split"].notna().any():
        split = df["split"].to_numpy()
        source = "column"
    elif split is None:
        return _seeded_split(n, test_size, random_state, None)
    else:
        source = "given"
    if isinstance(split, dict):
        tr = np.asarray(split.get("train"), dtype=np.int64)
        te = np.asarray(split.get("test"), dtype=np.int64)
        if tr.size < 2 or te.size < 2 or tr.min(initial=0) < 0 or max(tr.max(initial=0), te.max(initial=0)) >= n:
            raise InputError(
                f"split= needs at least 2 'train' and 2 'test' row indices in [0, {n}); got "
                f"{tr.size} train and {te.size} test."
            )
        return np.sort(tr), np.sort(te), source, {"rule": "given"}
    arr = np.asarray(split, dtype=object)
    if arr.shape != (n,):
        raise InputError(f"split must have one entry per row ({n}); got shape {arr.shape}.")
    names = np.array([str(v).strip().lower() if v is not None else "" for v in arr])
    tr = np.flatnonzero(np.isin(names, _TRAIN_NAMES))
    te = np.flatnonzero(np.isin(names, _TEST_NAMES))
    used = "test"
    if te.size == 0:  # no test partition: score on the validation rows
        te = np.flatnonzero(np.isin(names, _VAL_NAMES))
        used = "val"
    if tr.size < 2 or te.size < 2:
        seen = sorted(set(names.tolist()))[:8]
        what = "split column" if source == "column" else "split= values"
        reason = (f"the {what} has {tr.size} train and {te.size} test/val rows (values {seen}), "
                  "too few to hold rows out")
        return _seeded_split(n, test_size, random_state, reason)
    return tr, te, source, {"rule": source, "test_rows": used}
