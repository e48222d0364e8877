"""Everything for one component: edit some store rows and run every view.

:class:`InterventionResult` is what ``intervene.json`` holds (``to_dict`` / ``from_dict``,
format tag ``clipica.intervene/1``); figures are drawn by :mod:`clipica.viz.traversal`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clipica.errors import InputError, StoreError
from clipica.intervene.edit import (
    DEFAULT_ALPHAS,
    Traversal,
    _check_component,
    component_stats,
    edit_components,
)
from clipica.intervene.responses import (
    AttributeProbes,
    AttributeResponse,
    TextResponse,
    attribute_response,
    binary_attributes,
    default_prompt_pairs,
    fit_attribute_probes,
    text_response,
)
from clipica.intervene.retrieval import (
    DecodedTraversal,
    RetrievalTraversal,
    decoded_traversal,
    load_images,
    retrieval_traversal,
)


@dataclass
class InterventionResult:
    """All viewers for one component; :meth:`to_dict` is what ``intervene.json`` holds."""

    traversal: Traversal
    retrieval: RetrievalTraversal
    attributes: AttributeResponse | None
    text: TextResponse | None
    decoded: DecodedTraversal | None
    info: dict = field(default_factory=dict)
    row_id_lookup: Any = field(default=None, repr=False)  # row index -> id, or None

    def to_dict(self, fingerprints: dict[str, str] | None = None) -> dict:
        """What ``intervene.json`` holds, tagged ``clipica.intervene/1`` with the inputs'
        ``fingerprints`` (e.g. ``{"store": ..., "decomposition": ...}``).

        Everything but the arrays of edited embeddings and images: the sweep (component,
        alphas, sigma, center, mode, rows), the retrieved rows and similarities, the
        attribute and text responses, and ``info``. :meth:`from_dict` reads it back.
        """
        from clipica._atomic import nan_to_none
        from clipica._format import tagged

        t = self.traversal
        out: dict[str, Any] = {
            "component": t.component,
            "alphas": [float(a) for a in t.alphas],
            "alpha_unit": "standard deviations of the component on the store's rows",
            "sigma": t.sigma,
            "center": t.center,
            "mode": t.mode,
            "rows": None if t.rows is None else [int(r) for r in t.rows],
        }
        clash = set(self.info) & (set(out) | set(_RESULT_KEYS))
        if clash:
            raise ValueError(f"info keys {sorted(clash)} clash with intervene.json fields")
        out.update(self.info)
        out["info_keys"] = list(self.info)
        if self.attributes is not None:
            ar = self.attributes
            out["attribute_probabilities"] = {
                name: [float(p) for p in ar.proba[:, j]] for j, name in enumerate(ar.attributes)
            }
            out["attribute_logits"] = {
                name: [float(p) for p in ar.logit[:, j]] for j, name in enumerate(ar.attributes)
            }
            out["delta_logit"] = {
                name: float(ar.delta_logit[j]) for j, name in enumerate(ar.attributes)
            }
            out["selected_attribute"] = ar.target
            out["selectivity"] = ar.selectivity
        else:
            out["attribute_probabilities"] = None
            out["selected_attribute"] = None
            out["selectivity"] = None
        r = self.retrieval
        # retrieved[i][j] = neighbour row ids of source row i at alpha j (best first)
        out["retrieved_rows"] = [
            [[int(x) for x in r.indices[j, i]] for j in range(len(t.alphas))]
            for i in range(r.indices.shape[1])
        ]
        out["retrieved_similarity"] = [
            [[float(x) for x in r.similarity[j, i]] for j in range(len(t.alphas))]
            for i in range(r.similarity.shape[1])
        ]
        if self.row_id_lookup is not None:
            ids = self.row_id_lookup
            out["retrieved_ids"] = [
                [[ids[x] for x in cell] for cell in row] for row in out["retrieved_rows"]
            ]
        if self.text is not None:
            out["text_response"] = {
                name: {
                    "positive": self.text.prompts[j][0] if self.text.prompts else None,
                    "negative": self.text.prompts[j][1] if self.text.prompts else None,
                    "probability": [float(p) for p in self.text.proba[:, j]],
                    "margin": [float(p) for p in self.text.margin[:, j]],
                }
                for j, name in enumerate(self.text.names)
            }
            out["text_logit_scale"] = self.text.logit_scale
        out["decoded"] = self.decoded is not None
        return tagged(INTERVENE_FORMAT, nan_to_none(out), fingerprints)

    def to_json(self) -> dict:
        """:meth:`to_dict` without fingerprints (kept for older callers)."""
        return self.to_dict()

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "intervention result") -> InterventionResult:
        """Inverse of :meth:`to_dict`. The traversal's embeddings/sources and the images are
        not in the JSON: they come back as None. ArtifactError (one line) on a wrong tag or
        malformed fields."""
        from clipica._format import untag
        from clipica.errors import ArtifactError

        body, _ = untag(d, INTERVENE_FORMAT, source=source)
        try:
            alphas = np.asarray(body["alphas"], dtype=np.float64)
            rows = None if body.get("rows") is None else np.asarray(body["rows"], dtype=np.int64)
            tr = Traversal(component=int(body["component"]), alphas=alphas, sigma=float(body["sigma"]),
                           center=float(body["center"]), mode=str(body["mode"]), original=None,
                           embeddings=None, sources=None, rows=rows)
            idx = np.asarray(body["retrieved_rows"], dtype=np.int64)  # (N, A, k)
            sim = np.asarray(body["retrieved_similarity"], dtype=np.float32)
            retrieval = RetrievalTraversal(alphas=alphas, rows=rows, indices=idx.transpose(1, 0, 2),
                                           similarity=sim.transpose(1, 0, 2))
            attrs = None
            if body.get("attribute_probabilities") is not None:
                names = list(body["attribute_probabilities"])
                attrs = AttributeResponse(
                    alphas=alphas,
                    attributes=names,
                    proba=np.asarray([body["attribute_probabilities"][n] for n in names], dtype=float).T,
                    logit=np.asarray([body["attribute_logits"][n] for n in names], dtype=float).T,
                    delta_logit=np.asarray([body["delta_logit"][n] for n in names], dtype=float),
                    target=str(body["selected_attribute"]),
                    selectivity=float("nan") if body["selectivity"] is None else float(body["selectivity"]),
                )
            text = None
            if body.get("text_response") is not None:
                tr_ = body["text_response"]
                names = list(tr_)
                prompts = [(tr_[n]["positive"], tr_[n]["negative"]) for n in names]
                text = TextResponse(
                    alphas=alphas, names=names,
                    prompts=[] if all(p == (None, None) for p in prompts) else prompts,
                    proba=np.asarray([tr_[n]["probability"] for n in names], dtype=float).T,
                    margin=np.asarray([tr_[n]["margin"] for n in names], dtype=float).T,
                    logit_scale=float(body["text_logit_scale"]),
                )
            decoded = DecodedTraversal(alphas=alphas, images=None) if body.get("decoded") else None
            info = {k: body[k] for k in body.get("info_keys") or []}
            ids = None
            if body.get("retrieved_ids") is not None:
                lookup: dict[int, str] = {}
                for row_i, row_ids in zip(body["retrieved_rows"], body["retrieved_ids"], strict=True):
                    for cell_i, cell_ids in zip(row_i, row_ids, strict=True):
                        lookup.update(zip(cell_i, cell_ids, strict=True))
                ids = _SparseIds(lookup)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ArtifactError(f"{source} is missing or has malformed fields ({exc!s:.120}); was it hand-edited?") from None
        return cls(traversal=tr, retrieval=retrieval, attributes=attrs, text=text, decoded=decoded,
                   info=info, row_id_lookup=ids)


INTERVENE_FORMAT = "clipica.intervene/1"
_RESULT_KEYS = (
    "info_keys", "attribute_probabilities", "attribute_logits", "delta_logit", "selected_attribute",
    "selectivity", "retrieved_rows", "retrieved_similarity", "retrieved_ids", "text_response",
    "text_logit_scale", "decoded",
)


class _SparseIds(dict):
    """Row id lookup rebuilt from a saved result: only the retrieved rows' ids are known."""

    def __getitem__(self, i):
        return dict.__getitem__(self, int(i))


class _RowIds:
    """Row index -> row id (str), converted on lookup: a 200k-row store's ids are not all
    turned into Python strings when a result names a few dozen of them."""

    def __init__(self, ids: np.ndarray) -> None:
        self._ids = ids

    def __getitem__(self, i):
        return str(self._ids[int(i)])

    def __len__(self) -> int:
        return len(self._ids)


def sample_rows(store: Any, n_rows: int, seed: int) -> np.ndarray:
    N = len(store.image)
    if N < 2:
        raise StoreError("the store has fewer than 2 rows; nothing to traverse")
    n = min(int(n_rows), N)
    if n < 1:
        raise InputError(f"rows must be at least 1, got {n_rows}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(N, n, replace=False))


def run_intervention(
    store: Any,
    ica: Any,
    component: int,
    *,
    alphas: Any = DEFAULT_ALPHAS,
    rows: Any = 6,
    decoder: Any = None,
    probes: AttributeProbes | None = None,
    prompt_pairs: Any = "auto",
    encoder: Any = None,
    k: int = 1,
    seed: int = 0,
    mode: str = "shift",
    image_size: int = 64,
    stats: Any = None,
) -> InterventionResult:
    """Edit ``component`` for some of the store's rows and run every viewer.

    Parameters
    ----------
    store : EmbeddingStore (``.image``, ``.rows``, ``.label_columns``,
        ``load_images``, ``load_encoder``).
    ica : fitted ICA on ``store.image``.
    rows : int (how many random rows, drawn with ``seed``) or explicit row indices.
    decoder : a ComponentDecoder, or None to skip the decoded view.
    probes : fitted :class:`AttributeProbes`; fitted on the store when None and
        the store has binary labels.
    prompt_pairs : "auto" (built-in CelebA pairs for the store's label columns),
        a list of (name, positive, negative), or None to skip the text view.
    encoder : the model's Encoder for the text view (``store.load_encoder()`` when None).
    stats : (mean (K,), std (K,)) of the components on the store's rows, as
        :func:`component_stats` returns them (e.g. from a cache); measured when None.
    """
    K = np.asarray(ica.components_).shape[0]
    component = _check_component(component, K)
    X = store.image
    idx = _row_indices(store, rows, seed)
    # sorted once here so every view (grids, curves, JSON) shares one alpha order
    alphas = np.sort(np.asarray(alphas, dtype=np.float64).reshape(-1))
    # fail early (exit status 2 from the CLI) when the images are not reachable
    load_images(store, idx[:1], image_size)
    mu, sd = component_stats(ica, X) if stats is None else (np.asarray(stats[0]), np.asarray(stats[1]))
    if mu.shape != (K,) or sd.shape != (K,):
        raise InputError(f"stats must be (mean, std) of shape ({K},) each, got {mu.shape} and {sd.shape}")
    tr = edit_components(
        np.asarray(X[idx]),
        ica,
        component,
        alphas,
        mode=mode,
        sigma=float(sd[component]),
        center=float(mu[component]),
        rows=idx,
    )
    retrieval = retrieval_traversal(tr, X, store=store, k=k, image_size=image_size)

    attr = None
    rows_df = store.rows
    if probes is None:
        usable = binary_attributes(rows_df, store.label_columns)
        if usable:
            probes = fit_attribute_probes(X, rows_df, usable, seed=seed)
    if probes is not None:
        attr = attribute_response(tr, probes)

    text = _text_view(tr, store, prompt_pairs, encoder)
    decoded = decoded_traversal(tr, decoder) if decoder is not None else None
    ids = _RowIds(store.rows["id"].to_numpy()) if "id" in store.rows.columns else None
    info: dict[str, Any] = {}
    if ids is not None:
        info["row_ids"] = [ids[i] for i in idx]
    if probes is not None:
        info["probe_train_accuracy"] = {
            a: float(v) for a, v in zip(probes.attributes, probes.train_accuracy, strict=True)
        }
    res = InterventionResult(
        traversal=tr,
        retrieval=retrieval,
        attributes=attr,
        text=text,
        decoded=decoded,
        info=info,
        row_id_lookup=ids,
    )
    return res


def _row_indices(store: Any, rows: Any, seed: int) -> np.ndarray:
    """``rows`` random rows drawn with ``seed`` (an int), or the given row indices checked."""
    if np.isscalar(rows):
        return sample_rows(store, int(rows), seed)
    n = len(store.image)
    idx = np.asarray(rows, dtype=np.int64).reshape(-1)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
        raise InputError(f"row indices must lie in [0, {n}), got {idx.tolist()}")
    return idx


def _text_view(tr: Traversal, store: Any, prompt_pairs: Any, encoder: Any) -> TextResponse | None:
    """The zero-shot prompt pairs' response along the traversal (None without prompt pairs)."""
    if isinstance(prompt_pairs, str) and prompt_pairs == "auto":
        prompt_pairs = default_prompt_pairs(store.label_columns) or default_prompt_pairs()[:8]
    if not prompt_pairs:
        return None
    if encoder is None:
        encoder = store.load_encoder()
    names = [p[0] for p in prompt_pairs]
    pos = encoder.encode_texts([p[1] for p in prompt_pairs])
    neg = encoder.encode_texts([p[2] for p in prompt_pairs])
    return text_response(tr, pos, neg, names, prompts=[(p[1], p[2]) for p in prompt_pairs])
