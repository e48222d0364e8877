"""The typed result of a match (``match.json``, format tag ``clipica.match/1``).

A :class:`CodeMatch` is one matching of two code sets (the decomposition's, or the PCA
control's); a :class:`MatchResult` holds the decomposition's, the control's, the row join
and the fingerprints of both inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT = "clipica.match/1"


@dataclass
class CodeMatch:
    """One matching of codes A (k_a) to codes B (k_b) on the shared rows.

    Attributes
    ----------
    method : str
        The decomposition kind (``"ica"``, ``"pca"``, ...).
    corr : ndarray of shape (k_a, k_b)
        Pearson correlations on the shared rows.
    pairs : list of dict
        The one-to-one matching (Hungarian on ``|corr|``), strongest first:
        ``{"a", "b", "corr", "sign", "attribute_a", "auc_a", "attribute_b", "auc_b"}``;
        ``sign`` is +1 or -1 (flip B's code by it to align it with A's); ``attribute_*`` the
        binary attribute the code separates best (largest ``|AUC - 0.5|``; ``auc_*`` its AUC),
        None without labels or when even that one is within 0.15 of chance.
    attributes : list of dict
        Per binary attribute: ``{"attribute", "group", "a", "auc_a", "b", "auc_b", "corr",
        "paired"}``: the best single code on each side, the correlation of these two twins,
        and whether the matching paired them. ``group`` names the categorical factor the
        column belongs to (e.g. one-hot hair colours), else None.
    blocks : list of dict
        Multi-member blocks matched as subspaces (see :func:`~clipica.match.correlate.match_blocks`).
    summary : dict
        ``mean_abs_corr`` over all pairs, ``top`` and ``top_mean`` (mean |r| of the ``top``
        strongest pairs), and, with labels, ``attributes_min`` / ``attributes_mean``: |r| of
        the twins of the binary attributes outside any group.
    """

    method: str
    corr: np.ndarray
    pairs: list[dict]
    attributes: list[dict] = field(default_factory=list)
    blocks: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def k_a(self) -> int:
        return int(self.corr.shape[0])

    @property
    def k_b(self) -> int:
        return int(self.corr.shape[1])

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "k_a": self.k_a, "k_b": self.k_b,
                "corr": np.round(self.corr, 6).tolist(), "pairs": self.pairs,
                "attributes": self.attributes, "blocks": self.blocks, "summary": self.summary}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodeMatch:
        corr = np.asarray(d["corr"], dtype=np.float64).reshape(int(d["k_a"]), int(d["k_b"]))
        return cls(method=d["method"], corr=corr, pairs=list(d["pairs"]),
                   attributes=list(d.get("attributes") or []), blocks=list(d.get("blocks") or []),
                   summary=dict(d.get("summary") or {}))


@dataclass
class MatchResult:
    """Components of run A matched to components of run B on the same rows.

    ``pairs``, ``blocks`` and ``summary`` are the decomposition's (``codes``); ``control`` is
    the same matching of PCA with each side's K on the same rows (None when not computed):
    the agreement PCA already has is what the decomposition's rotation did not add.
    ``rows``: ``{"n_shared", "n_a", "n_b", "how"}``; ``inputs``: what each side was (run
    folder, model, layer...), as the caller recorded it; ``significance``: per side, the
    components indistinguishable from Gaussian when that was tested.
    """

    codes: CodeMatch
    control: CodeMatch | None
    rows: dict
    fingerprints: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    significance: dict = field(default_factory=dict)

    @property
    def pairs(self) -> list[dict]:
        return self.codes.pairs

    @property
    def blocks(self) -> list[dict]:
        return self.codes.blocks

    @property
    def summary(self) -> dict:
        return self.codes.summary

    def to_dict(self) -> dict[str, Any]:
        from clipica._atomic import nan_to_none
        from clipica._format import tagged

        d = self.codes.to_dict()
        body = {**d, "rows": self.rows, "control": None if self.control is None else self.control.to_dict(),
                "inputs": self.inputs, "significance": self.significance}
        return tagged(FORMAT, nan_to_none(body), self.fingerprints)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "match.json") -> MatchResult:
        from clipica._format import untag

        body, fps = untag(d, FORMAT, source=source)
        control = body.get("control")
        return cls(codes=CodeMatch.from_dict(body), control=None if control is None else CodeMatch.from_dict(control),
                   rows=dict(body.get("rows") or {}), fingerprints=fps, inputs=dict(body.get("inputs") or {}),
                   significance=dict(body.get("significance") or {}))

    def table(self):
        """The pairs as a DataFrame (one row per pair, strongest first)."""
        import pandas as pd

        return pd.DataFrame(self.pairs)

