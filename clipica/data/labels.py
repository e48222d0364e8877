"""Which label columns are what: the one rule for binary attributes and continuous factors.

A row table (the store's ``rows.parquet``, a DataFrame of labels) mixes bookkeeping
columns, binary attributes and continuous factors. The rule, used by the probes, the
intervention probes and label-group detection alike:

- **reserved** columns (:data:`RESERVED_COLUMNS`: ``id``, ``source_index``, ``caption``,
  ``split``, ``path``, ``image``, ``text``) are never labels;
- a **binary attribute** is a numeric (or boolean) column whose observed values are all
  0 or 1 (NaN marks a missing label), with at least one observed value, not named
  ``latent_*``; ``min_count`` additionally asks for that many rows of *each* class;
- a **continuous factor** is any other numeric column (``latent_*`` columns always are).
"""

from __future__ import annotations

from typing import Any

import numpy as np

RESERVED_COLUMNS = ("id", "source_index", "caption", "split", "path", "image", "text")
#: prefix of ground-truth continuous latents (always factors, never binary attributes)
LATENT_PREFIX = "latent_"


def is_numeric_column(series) -> bool:
    """True for numeric or boolean pandas columns."""
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def label_values(series) -> np.ndarray:
    """A column as float64 values, non-numeric entries as NaN (shape (n_rows,))."""
    import pandas as pd

    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)


def is_binary_column(series, *, min_count: int = 0) -> bool:
    """True when ``series`` is numeric with observed values all in {0, 1} (at least one
    observed), and each class has at least ``min_count`` rows."""
    if not is_numeric_column(series):
        return False
    v = label_values(series)
    v = v[~np.isnan(v)]
    if v.size == 0 or not bool(np.all((v == 0) | (v == 1))):
        return False
    pos = int(v.sum())
    return pos >= min_count and v.size - pos >= min_count


def binary_columns(df, columns: Any = None, *, min_count: int = 0) -> list[str]:
    """The binary attribute columns of ``df`` (among ``columns`` when given), in order.

    Reserved, missing, non-numeric and ``latent_*`` columns are skipped.
    """
    cols = list(df.columns) if columns is None else list(columns)
    return [
        c for c in cols
        if c in df.columns and c not in RESERVED_COLUMNS and not str(c).startswith(LATENT_PREFIX)
        and is_binary_column(df[c], min_count=min_count)
    ]


def factor_columns(df, columns: Any = None) -> list[str]:
    """The continuous factor columns: numeric, not reserved, not binary (``latent_*`` always)."""
    cols = list(df.columns) if columns is None else list(columns)
    binary = set(binary_columns(df, cols))
    return [
        c for c in cols
        if c in df.columns and c not in RESERVED_COLUMNS and is_numeric_column(df[c]) and c not in binary
    ]
