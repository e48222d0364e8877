"""How a traversal changes what probes and prompts see: attribute probes (the one
logistic solver, :func:`clipica.probes.logistic.fit_logistic`) with a selectivity number,
and zero-shot prompt pairs through the model's text encoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from clipica._linalg import unit_rows
from clipica.errors import InputError
from clipica.intervene.edit import Traversal, _as_matrix

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


@dataclass
class AttributeProbes:
    """Per-attribute logistic-regression probes on embeddings, folded to one linear map.

    ``logit_j(x) = x @ coef_[j] + intercept_[j]`` (the feature standardisation
    used during fitting is folded into ``coef_``), so logits are exactly linear
    in the embedding and therefore in alpha for shift edits.

    Attributes
    ----------
    attributes : list of A names.
    coef_ : ndarray (n_attributes, D); intercept_ : ndarray (n_attributes,).
    train_accuracy : ndarray (n_attributes,), accuracy on the fitting rows.
    positive_rate : ndarray (n_attributes,), fraction of label 1 on the fitting rows.
    """

    attributes: list[str]
    coef_: np.ndarray
    intercept_: np.ndarray
    train_accuracy: np.ndarray
    positive_rate: np.ndarray

    def logits(self, X: Any) -> np.ndarray:
        """(N, D) embeddings -> (N, n_attributes) logits."""
        X = _as_matrix(X, self.coef_.shape[1])
        return np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_

    def proba(self, X: Any) -> np.ndarray:
        """(N, D) embeddings -> (N, n_attributes) probabilities of label 1."""
        return _sigmoid(self.logits(X))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def binary_attributes(labels: pd.DataFrame, columns: Any = None, min_count: int = 5) -> list[str]:
    """Label columns usable for a binary probe: the binary attribute rule of
    :mod:`clipica.data.labels` with at least ``min_count`` rows of each class."""
    from clipica.data.labels import binary_columns

    return binary_columns(labels, columns, min_count=min_count)


def fit_attribute_probes(
    X: Any,
    labels: pd.DataFrame,
    attributes: Any = None,
    *,
    C: float = 1.0,
    max_rows: int = 20000,
    seed: int = 0,
) -> AttributeProbes:
    """Fit one L2 logistic regression per binary attribute on unedited embeddings.

    Parameters
    ----------
    X : array (N, D) -- unedited embeddings (a memmap is fine; at most
        ``max_rows`` rows, drawn with ``seed``, are used).
    labels : DataFrame with N rows, one column per attribute (0/1).
    attributes : names to probe; default every usable binary column
        (:func:`binary_attributes`).
    C : inverse regularisation strength (features are standardised first), as in
        scikit-learn; fitted with :func:`clipica.probes.logistic.fit_logistic`.
    """
    from clipica.probes.logistic import fit_logistic

    X = np.asarray(X)
    if X.ndim != 2:
        raise InputError(f"X must have shape (n_samples, D), got {X.shape}")
    if len(labels) != len(X):
        raise InputError(f"labels has {len(labels)} rows but X has {len(X)}")
    names = binary_attributes(labels, attributes)
    if attributes is not None:
        missing = [a for a in attributes if a not in names]
        if missing:
            raise InputError(
                f"attributes {missing} are not binary 0/1 label columns with both classes present; "
                f"usable columns: {binary_attributes(labels)}"
            )
    if not names:
        raise InputError(
            "no binary 0/1 label column with both classes present: attribute probes need labels "
            f"(the store's label columns are {list(labels.columns)})"
        )
    rng = np.random.default_rng(seed)
    idx = (
        np.arange(len(X))
        if len(X) <= max_rows
        else np.sort(rng.choice(len(X), max_rows, replace=False))
    )
    Xs = np.asarray(X[idx], dtype=np.float64)
    if not np.all(np.isfinite(Xs)):
        raise InputError("X contains NaN or infinite values")
    import pandas as pd

    Y = labels[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)[idx]
    # the one logistic solver: scikit-learn's LogisticRegression(C=C) per attribute on
    # standardised features (missing labels are left out per attribute)
    fit = fit_logistic(Xs, Y, C=C, max_iter=2000, random_state=seed)
    W = fit.coef / fit.scale[:, None]  # (D, A) on raw embeddings
    coef = W.T
    icpt = fit.intercept - fit.mean @ W
    logits = Xs @ W + icpt
    obs = ~np.isnan(Y)
    correct = (logits > 0) == (Y == 1)
    accs = np.array([correct[obs[:, j], j].mean() for j in range(len(names))])
    rates = np.array([Y[obs[:, j], j].mean() for j in range(len(names))])
    return AttributeProbes(
        attributes=list(names),
        coef_=np.ascontiguousarray(coef),
        intercept_=np.asarray(icpt, dtype=np.float64),
        train_accuracy=accs,
        positive_rate=rates,
    )


def selectivity(delta_logits: Any, target: int | None = None) -> tuple[int, float]:
    """Selectivity of a sweep from each attribute's logit change over it.

    ``selectivity = |delta_target| / sum_{j != target} |delta_j|``, where the
    target is the attribute with the largest ``|delta|`` unless given. Returns
    ``(target index, selectivity)``; ``inf`` when no other attribute moves, and
    ``nan`` with fewer than two attributes.
    """
    d = np.abs(np.asarray(delta_logits, dtype=np.float64).reshape(-1))
    if d.size == 0:
        raise InputError("selectivity needs at least one attribute")
    t = int(np.argmax(d)) if target is None else int(target)
    if d.size < 2:
        return t, float("nan")
    rest = float(d.sum() - d[t])
    return t, (float(d[t]) / rest if rest > 0 else float("inf"))


@dataclass
class AttributeResponse:
    """Probe probabilities along a sweep.

    alphas : (A,); attributes : names; proba : (A, n_attr) mean probability over
    the edited rows; logit : (A, n_attr) mean logit; delta_logit : (n_attr,)
    mean logit at the last alpha minus at the first; target : selected
    attribute (largest |delta_logit| unless fixed); selectivity : float.
    """

    alphas: np.ndarray
    attributes: list[str]
    proba: np.ndarray
    logit: np.ndarray
    delta_logit: np.ndarray
    target: str
    selectivity: float


def attribute_response(
    traversal: Traversal, probes: AttributeProbes, *, target: str | None = None
) -> AttributeResponse:
    """Every attribute probe's probability along the sweep, and the component's selectivity.

    ``delta_logit_j`` is the change of attribute j's mean logit between the
    first and the last alpha (alphas sorted ascending);
    selectivity = ``|delta_target| / sum_{j != target} |delta_j|`` with the target
    the attribute of largest ``|delta|`` (or ``target`` when given).
    Returns an :class:`AttributeResponse` (drawn by :func:`clipica.viz.traversal.plot_views`).
    """
    order = np.argsort(traversal.alphas, kind="stable")
    alphas = traversal.alphas[order]
    E = traversal.embeddings[order]
    A_, N, D = E.shape
    logit = probes.logits(E.reshape(A_ * N, D)).reshape(A_, N, -1)
    proba = _sigmoid(logit).mean(1)
    mlogit = logit.mean(1)
    delta = mlogit[-1] - mlogit[0]
    t_idx = None
    if target is not None:
        if target not in probes.attributes:
            raise InputError(
                f"unknown target attribute {target!r}; probed attributes: {probes.attributes}"
            )
        t_idx = probes.attributes.index(target)
    t_idx, sel = selectivity(delta, t_idx)
    res = AttributeResponse(
        alphas=alphas,
        attributes=list(probes.attributes),
        proba=proba,
        logit=mlogit,
        delta_logit=delta,
        target=probes.attributes[t_idx],
        selectivity=sel,
    )
    return res


def default_prompt_pairs(attributes: Any = None) -> list[tuple[str, str, str]]:
    """Built-in (name, positive prompt, negative prompt) triples for CelebA attributes.

    Restricted to ``attributes`` when given (unknown names are skipped).
    """
    from clipica.naming.names import load_attribute_phrases

    pairs = load_attribute_phrases()
    if attributes is not None:
        wanted = list(attributes)
        pairs = [p for p in pairs if p[0] in wanted]
    return pairs


@dataclass
class TextResponse:
    """Zero-shot scores along a sweep.

    alphas : (A,); names : pair names; proba : (A, P) mean over rows of
    softmax(scale * [cos(x', t_pos), cos(x', t_neg)])[0]; margin : (A, P) mean
    ``cos(x', t_pos) - cos(x', t_neg)``.
    """

    alphas: np.ndarray
    names: list[str]
    prompts: list[tuple[str, str]]
    proba: np.ndarray
    margin: np.ndarray
    logit_scale: float


def text_response(
    traversal: Traversal,
    pos_embeddings: Any,
    neg_embeddings: Any,
    names: Any,
    *,
    prompts: Any = None,
    logit_scale: float = 100.0,
) -> TextResponse:
    """Zero-shot probability of each positive prompt against its negative along the sweep.

    Parameters
    ----------
    traversal : the edited image embeddings (A, N, D).
    pos_embeddings, neg_embeddings : arrays (P, D) -- text embeddings of the
        positive and negative prompts (e.g. ``encoder.encode_texts``).
    names : P labels for the pairs.
    logit_scale : CLIP's softmax temperature (100, the value CLIP's learned
        scale saturates at).
    """
    Tp = unit_rows(pos_embeddings, np.float32)
    Tn = unit_rows(neg_embeddings, np.float32)
    names = list(names)
    if Tp.shape != Tn.shape or Tp.shape[0] != len(names):
        raise InputError(
            f"need P positive and P negative embeddings and P names; got {Tp.shape}, {Tn.shape}, {len(names)}"
        )
    order = np.argsort(traversal.alphas, kind="stable")
    E = traversal.embeddings[order]
    A_, N, D = E.shape
    U = unit_rows(E.reshape(A_ * N, D), np.float32)
    cp = (U @ Tp.T).reshape(A_, N, -1).astype(np.float64)
    cn = (U @ Tn.T).reshape(A_, N, -1).astype(np.float64)
    proba = _sigmoid(logit_scale * (cp - cn)).mean(1)  # 2-way softmax == sigmoid of the difference
    res = TextResponse(
        alphas=traversal.alphas[order],
        names=names,
        prompts=[tuple(p) for p in prompts] if prompts is not None else [],
        proba=proba,
        margin=(cp - cn).mean(1),
        logit_scale=float(logit_scale),
    )
    return res
