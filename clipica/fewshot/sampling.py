"""Classes from label columns, few-shot draws, and accuracy with absent classes masked."""

from __future__ import annotations

import numpy as np

from clipica.errors import InputError


def class_codes(labels, label: str) -> tuple[np.ndarray, list[str]]:
    """Class index per row from a label column or a ``+``-joined combination of columns.

    ``labels``: a pandas DataFrame (one row per embedding). ``label``: ``"Male"`` or
    ``"Male+Smiling+Eyeglasses+Wearing_Hat"`` (every combination of values is a class).
    Returns ``(codes, classes)``: int64 array (n_rows,) with -1 for rows with a missing
    value, and the sorted class names (``"Male=1,Smiling=0"`` for combinations).
    Raises InputError naming the missing columns and the available ones.
    """
    cols = [c.strip() for c in str(label).split("+") if c.strip()]
    if not cols:
        raise InputError("fewshot: --label is empty; give a column name or COL+COL+... for combinations")
    missing = [c for c in cols if c not in labels.columns]
    if missing:
        avail = ", ".join(str(c) for c in labels.columns if c not in ("id", "source_index", "split")) or "none"
        raise InputError(f"fewshot: no label column {', '.join(missing)} in the store (its columns: {avail})")
    frame = labels[cols]
    valid = frame.notna().all(axis=1).to_numpy()

    def fmt(v) -> str:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return str(v)

    keys = [
        ",".join(f"{c}={fmt(v)}" for c, v in zip(cols, vals, strict=False)) if len(cols) > 1 else fmt(vals[0])
        for vals in frame.itertuples(index=False, name=None)
    ]
    classes = sorted({k for k, ok in zip(keys, valid, strict=False) if ok})
    index = {k: i for i, k in enumerate(classes)}
    codes = np.array([index[k] if ok else -1 for k, ok in zip(keys, valid, strict=False)], dtype=np.int64)
    return codes, classes


def sample_fewshot(
    codes: np.ndarray, n_classes: int, shots: int, val_shots: int, seed: int, classes=None
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, val)`` of one few-shot draw, class by class.

    ``codes``: (n_rows,) class index or -1 (not in the pool). For class ``c`` its rows
    are permuted by ``default_rng([seed, c])``; train takes the first ``shots``, val the
    next ``val_shots``. Returned sorted by class, then draw order: ``shots * n_classes``
    and ``val_shots * n_classes`` indices. InputError when a class has too few rows.
    """
    codes = np.asarray(codes)
    need = int(shots) + int(val_shots)
    train, val = [], []
    for c in range(n_classes):
        rows = np.flatnonzero(codes == c)
        if rows.size < need:
            name = classes[c] if classes is not None else c
            raise InputError(
                f"fewshot: class {name!r} has {rows.size} rows in the training pool; "
                f"{shots} shots + {val_shots} validation shots need {need}"
            )
        perm = np.random.default_rng([int(seed), c]).permutation(rows.size)
        train.append(rows[perm[:shots]])
        val.append(rows[perm[shots:need]])
    return np.concatenate(train), np.concatenate(val)


def masked_accuracy(logits: np.ndarray, y: np.ndarray, present: np.ndarray) -> float:
    """Accuracy with the classes not in ``present`` masked out of the argmax.

    ``logits`` (n, k); ``y`` (n,) in ``present``; ``present`` bool (k,). The ImageNet-A/-R
    convention: a 200-class test set is scored among its own 200 classes only.
    """
    if y.size == 0:
        return float("nan")
    z = np.where(present[None, :], logits, -np.inf)
    return float((z.argmax(axis=1) == y).mean())
