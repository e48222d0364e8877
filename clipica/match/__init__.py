"""Match components across runs: two decompositions of two encoders, seeds or layers, on the
same rows (:func:`match`, :func:`match_codes` -> :class:`MatchResult`, ``clipica.match/1``).

- :mod:`clipica.match.rows`: which rows two runs share (same order, or joined on ids);
- :mod:`clipica.match.correlate`: the cross-correlation matrix, the Hungarian matching,
  canonical correlations of blocks;
- :mod:`clipica.match.core`: :func:`match` (decompositions + embeddings, with the PCA control)
  and :func:`match_codes` (two code arrays);
- :mod:`clipica.match.result`: :class:`MatchResult`, :class:`CodeMatch`.

The package itself is callable: ``clipica.match(X_a, ica_a, X_b, ica_b, ...)`` is
:func:`clipica.match.core.match` (the top-level ``clipica.match`` is this package).
"""

from __future__ import annotations

import sys
import types

from clipica.match.core import match, match_codes
from clipica.match.correlate import canonical_correlations, cross_correlation, hungarian_pairs
from clipica.match.result import FORMAT, CodeMatch, MatchResult
from clipica.match.rows import SharedRows, shared_rows

__all__ = [
    "FORMAT", "CodeMatch", "MatchResult", "SharedRows", "canonical_correlations", "cross_correlation",
    "hungarian_pairs", "match", "match_codes", "shared_rows",
]


class _CallableModule(types.ModuleType):
    """``clipica.match(...)`` calls :func:`match`: the package and the function share a name, and
    importing the package rebinds ``clipica.match`` to it, so the package forwards the call."""

    def __call__(self, *args, **kwargs):
        return match(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
