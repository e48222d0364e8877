"""When a word may name a component: a chance level from random directions, and negations.

Used by :mod:`clipica.naming.names` (``ComponentNames.names`` and ``name_from_embeddings``);
the unit of every score is the one of :func:`clipica.naming.names.name_from_embeddings`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clipica._linalg import unit_rows
from clipica.errors import InputError

#: rows of the reference texts used to estimate the null's covariance (seeded subsample)
NULL_MAX_ROWS = 20000


def chance_threshold(
    text_embeddings: Any,
    reference_texts: Any,
    projection: Any,
    *,
    n_directions: int = 500,
    quantile: float = 0.99,
    random_state: int = 0,
) -> tuple[float, dict]:
    """The ``|z|`` that the best vocabulary entry reaches on a random direction.

    A component's top word always has *some* large score: with V words, the largest
    of V standardised projections is far from 0 even when the direction means
    nothing (random weights gave ``|z|`` up to 3.1). The null: ``n_directions`` unit
    directions ``r`` drawn uniformly on the sphere of R^D; each word scores
    ``z(r) = r . (t - text_mean) / sd_r`` with ``sd_r`` the standard deviation of
    ``r . t`` over the reference texts (the unit of :func:`name_from_embeddings`),
    and the statistic is the largest ``|z|`` over the vocabulary. The threshold is
    its ``quantile`` over directions, so a meaningless component has a name above
    it with probability about ``1 - quantile`` (a family-wise level over the
    vocabulary, per component).

    text_embeddings : (V, D) the vocabulary; reference_texts : (N, D) the captions
    (or the vocabulary); at most :data:`NULL_MAX_ROWS` rows, seeded, enter the
    covariance. Returns ``(threshold, description)``.
    """
    if not 0.0 < quantile < 1.0:
        raise InputError(f"quantile must be in (0, 1), got {quantile!r}")
    if n_directions < 10:
        raise InputError(f"n_directions must be at least 10, got {n_directions!r}")
    T = np.asarray(text_embeddings, dtype=np.float64)
    rng = np.random.default_rng(random_state)
    n = len(reference_texts)
    rows = np.sort(rng.choice(n, NULL_MAX_ROWS, replace=False)) if n > NULL_MAX_ROWS else slice(None)
    R = np.asarray(reference_texts[rows], dtype=np.float64)
    if projection.normalize:
        T, R = unit_rows(T), unit_rows(R)
    C = np.cov(R, rowvar=False)
    dirs = rng.standard_normal((T.shape[1], int(n_directions)))
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    sd = np.sqrt(np.maximum(np.einsum("dr,de,er->r", dirs, C, dirs), 1e-300))
    Z = ((T - projection.text_mean) @ dirs) / sd
    stat = np.abs(Z).max(axis=0)
    thr = float(np.quantile(stat, quantile))
    return thr, {
        "null": "largest |z| over the vocabulary on random unit directions",
        "n_directions": int(n_directions),
        "quantile": float(quantile),
        "null_median": float(np.median(stat)),
        "n_reference_rows": int(len(R)),
        "random_state": int(random_state),
    }


def negation_pairs(vocabulary: list[str]) -> list[tuple[str, str]]:
    """``(phrase, negation)`` pairs present in ``vocabulary``.

    Known pairs are the built-in attribute phrases (``NAME | positive | negative``);
    a custom vocabulary gets a pair where one entry is the other with a negating
    word added ("not", "no", "without", "non-"). The check is lexical on purpose:
    whether the *model* separates the two is what the scores then show.
    """
    from clipica.naming.vocabulary import load_attribute_phrases

    present = set(vocabulary)
    pairs = [(p, q) for _, p, q in load_attribute_phrases() if p in present and q in present]
    known = {w for pair in pairs for w in pair}
    keyed: dict[str, list[str]] = {}
    for w in vocabulary:
        if w in known:
            continue
        keyed.setdefault(_without_negation(w), []).append(w)
    for group in keyed.values():
        plain = [w for w in group if _without_negation(w) == w.lower().strip()]
        negated = [w for w in group if w not in plain]
        pairs.extend((p, q) for p in plain for q in negated)
    return pairs


_NEGATORS = ("not ", "no ", "without ", "non-", "non ", "doesn't ", "does not ", "isn't ", "is not ")


def _without_negation(text: str) -> str:
    out = f" {text.lower().strip()} "
    for word in _NEGATORS:
        out = out.replace(f" {word}", " ")
    return " ".join(out.split())
