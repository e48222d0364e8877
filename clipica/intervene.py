"""Interventions: move one ICA component of an embedding and measure what changes.

The math (shift mode, the default). With a fitted ICA, ``W = components_`` of
shape (K, D) maps centred embeddings to unit-variance sources,
``s = W (x - mean_)``, and ``A = mixing_`` of shape (D, K) satisfies ``W A = I_K``
(``A`` is the pseudo-inverse of ``W``). An embedding splits into its part inside
the K-dimensional component subspace and a residual outside it::

    x = mean_ + A s + r,        r = (I - A W)(x - mean_)

Shifting component i by ``alpha`` standard deviations is::

    x' = x + alpha * sigma_i * A[:, i]

so that ``W (x' - mean_) = s + alpha * sigma_i * e_i`` (only source i moves, by
exactly ``alpha * sigma_i``) and ``(I - A W)(x' - mean_) = r`` (the residual is
untouched, because ``(I - A W) A = 0``). ``alpha = 0`` returns ``x`` bit for bit.

``sigma_i`` is the standard deviation of source i measured on reference rows (the
store's embeddings), never assumed from a whitening convention: scikit-learn's
``whiten`` default changed in 1.3 and silently rescaled every component by
``sqrt(N)``, which made the original papers' traversal ranges meaningless. With
clipica's unit-variance ICA ``sigma_i`` is about 1, and recording it keeps the
units honest.

Set mode replaces source i by ``c_i + alpha * sigma_i`` (``c_i`` its mean on the
reference rows): ``x' = x + (c_i + alpha * sigma_i - s_i) A[:, i]``; the other
sources and the residual are again unchanged.

Viewers built on the edited embeddings (each returns data and a Figure):
:func:`retrieval_traversal` (nearest dataset images), :func:`decoded_traversal`
(the component decoder of :mod:`clipica.decoder`), :func:`attribute_response`
(linear attribute probes fitted on unedited embeddings, with a selectivity
number) and :func:`text_response` (zero-shot prompt pairs through the model's
text encoder). :func:`run_intervention` runs them all for one component.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from clipica.errors import InputError, StoreError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

DEFAULT_ALPHAS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)

__all__ = [
    "DEFAULT_ALPHAS",
    "AttributeProbes",
    "AttributeResponse",
    "InterventionResult",
    "TextResponse",
    "Traversal",
    "attribute_response",
    "component_stats",
    "decoded_traversal",
    "default_prompt_pairs",
    "edit_components",
    "fit_attribute_probes",
    "retrieval_traversal",
    "retrieve_neighbours",
    "run_intervention",
    "selectivity",
    "text_response",
]


# ---------------------------------------------------------------------------
# the edit itself
# ---------------------------------------------------------------------------
def _ica_arrays(ica: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean_ (D,), components_ (K, D), mixing_ (D, K)) as float64, validated."""
    for name in ("mean_", "components_", "mixing_"):
        if not hasattr(ica, name):
            raise InputError(
                f"the ICA object has no {name!r}: pass a fitted clipica.ICA "
                "(or an object with mean_, components_ and mixing_)"
            )
    mean = np.asarray(ica.mean_, dtype=np.float64)
    W = np.asarray(ica.components_, dtype=np.float64)
    A = np.asarray(ica.mixing_, dtype=np.float64)
    K, D = W.shape
    if mean.shape != (D,) or A.shape != (D, K):
        raise InputError(
            f"inconsistent ICA shapes: mean_ {mean.shape}, components_ {W.shape}, "
            f"mixing_ {A.shape}; expected (D,), (K, D), (D, K)"
        )
    return mean, W, A


def _check_component(component: int, K: int) -> int:
    if isinstance(component, bool) or not isinstance(component, (int, np.integer)):
        raise InputError(f"component must be an integer index, got {component!r}")
    if not 0 <= int(component) < K:
        raise InputError(
            f"component {component} is out of range: this ICA has K={K} components, "
            f"so pass an index from 0 to {K - 1}"
        )
    return int(component)


def _as_matrix(X: Any, D: int, what: str = "X") -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != D:
        raise InputError(f"{what} must have shape (n_samples, {D}), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise InputError(f"{what} contains NaN or infinite values")
    return X


def component_stats(
    ica: Any, reference: Any, *, chunk: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of every source on ``reference`` rows.

    Parameters
    ----------
    ica : fitted ICA (``mean_``, ``components_``).
    reference : array of shape (n_samples, D), e.g. the store's embeddings
        (streamed in chunks, so a memmap is fine).

    Returns
    -------
    mean, std : ndarrays of shape (K,), in source units.
    """
    mean, W, _ = _ica_arrays(ica)
    K, D = W.shape
    n = len(reference)
    if n < 2:
        raise InputError(
            "need at least 2 reference rows to measure a component's standard deviation"
        )
    s1 = np.zeros(K)
    s2 = np.zeros(K)
    for start in range(0, n, chunk):
        block = _as_matrix(reference[start : start + chunk], D, "reference")
        S = (np.asarray(block, dtype=np.float64) - mean) @ W.T
        s1 += S.sum(0)
        s2 += (S * S).sum(0)
    mu = s1 / n
    var = np.maximum(s2 / n - mu * mu, 0.0) * n / (n - 1)
    return mu, np.sqrt(var)


@dataclass
class Traversal:
    """Edited embeddings for one component swept over ``alphas``.

    Attributes
    ----------
    component : int
    alphas : ndarray (A,) -- steps in units of the component's standard deviation.
    sigma : float -- standard deviation of the component (source units) used as the unit.
    center : float -- mean of the component on the reference rows (used by set mode).
    mode : "shift" or "set".
    original : ndarray (N, D) -- the unedited embeddings.
    embeddings : ndarray (A, N, D) -- edited embeddings, float32 (or the input dtype).
    sources : ndarray (A, N, K) -- their ICA sources (float64).
    rows : ndarray (N,) of int or None -- store row indices of the originals.
    """

    component: int
    alphas: np.ndarray
    sigma: float
    center: float
    mode: str
    original: np.ndarray
    embeddings: np.ndarray
    sources: np.ndarray
    rows: np.ndarray | None = None


def edit_components(
    X: Any,
    ica: Any,
    component: int,
    alphas: Any = DEFAULT_ALPHAS,
    *,
    mode: str = "shift",
    sigma: float | None = None,
    center: float | None = None,
    reference: Any = None,
    rows: Any = None,
) -> Traversal:
    """Shift (or set) ICA component ``component`` of rows ``X`` by ``alpha`` std units.

    Shift: ``x' = x + alpha * sigma_i * A[:, i]``; set:
    ``x' = x + (c_i + alpha * sigma_i - s_i(x)) * A[:, i]`` (see the module
    docstring for why only source i moves and the residual outside the
    component subspace is unchanged).

    Parameters
    ----------
    X : array of shape (N, D) -- embeddings to edit (same space the ICA was fitted in).
    ica : fitted ICA with ``mean_`` (D,), ``components_`` (K, D), ``mixing_`` (D, K).
    component : index i in [0, K).
    alphas : sequence of A floats -- steps in units of the component's std.
    mode : "shift" (default) or "set".
    sigma, center : the unit and the set-mode origin, in source units. When None
        they are measured on ``reference`` (or on ``X`` when no reference is
        given and N >= 2; with a single row and no reference sigma defaults to
        1.0 and center to 0.0, the unit-variance convention).
    reference : array (M, D), optional -- rows defining the component's scale.
    rows : array (N,) of int, optional -- store indices of ``X``, kept for retrieval.

    Returns
    -------
    Traversal with ``embeddings`` of shape (A, N, D) in X's float dtype.
    """
    mean, W, A = _ica_arrays(ica)
    K, D = W.shape
    i = _check_component(component, K)
    if mode not in ("shift", "set"):
        raise InputError(f"mode must be 'shift' or 'set', got {mode!r}")
    X = _as_matrix(X, D)
    alphas_arr = np.asarray(alphas, dtype=np.float64).reshape(-1)
    if alphas_arr.size == 0 or not np.all(np.isfinite(alphas_arr)):
        raise InputError(f"alphas must be a non-empty list of finite numbers, got {alphas!r}")

    if sigma is None or (center is None and mode == "set"):
        ref = reference if reference is not None else (X if len(X) >= 2 else None)
        if ref is not None:
            mu_all, sd_all = component_stats(ica, ref)
            mu_i, sd_i = float(mu_all[i]), float(sd_all[i])
        else:
            mu_i, sd_i = 0.0, 1.0
        sigma = sd_i if sigma is None else sigma
        center = mu_i if center is None else center
    center = 0.0 if center is None else float(center)
    sigma = float(sigma)
    if not sigma > 0 or not math.isfinite(sigma):
        raise InputError(
            f"component {i} has standard deviation {sigma} on the reference rows; cannot use it as a unit"
        )

    dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float32
    X64 = np.asarray(X, dtype=np.float64)
    S = (X64 - mean) @ W.T  # (N, K)
    a_i = A[:, i]
    out = np.empty((alphas_arr.size, *X.shape), dtype=dtype)
    src = np.empty((alphas_arr.size, X.shape[0], K))
    for j, alpha in enumerate(alphas_arr):
        if mode == "shift":
            step = np.full(len(X), alpha * sigma)  # (N,)
        else:
            step = center + alpha * sigma - S[:, i]
        out[j] = (X64 + step[:, None] * a_i[None, :]).astype(dtype, copy=False)
        Sj = S.copy()
        Sj[:, i] += step
        src[j] = Sj
    row_arr = None if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if row_arr is not None and row_arr.shape[0] != X.shape[0]:
        raise InputError(f"rows has {row_arr.shape[0]} entries but X has {X.shape[0]} rows")
    return Traversal(
        component=i,
        alphas=alphas_arr,
        sigma=sigma,
        center=center,
        mode=mode,
        original=np.asarray(X),
        embeddings=out,
        sources=src,
        rows=row_arr,
    )


# ---------------------------------------------------------------------------
# retrieval
# ---------------------------------------------------------------------------
def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(n, 1e-12)


def retrieve_neighbours(
    queries: Any, bank: Any, *, k: int = 1, exclude: Any = None, chunk: int = 16384
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ``bank`` rows to each query by cosine similarity.

    Parameters
    ----------
    queries : array (M, D).
    bank : array (P, D) -- e.g. the store's embeddings (memmap is streamed in chunks).
    k : neighbours per query.
    exclude : array (M,) of int, optional -- one bank index per query never to
        return (the query's own source row); -1 means none.

    Returns
    -------
    indices : int64 array (M, k), best first; similarities : float32 array (M, k).
    """
    Q = _unit(queries)
    M, D = Q.shape
    P = len(bank)
    if k < 1 or k > P - (1 if exclude is not None else 0):
        raise InputError(
            f"k must be between 1 and the number of candidate rows, got k={k} with {P} rows"
        )
    excl = None if exclude is None else np.asarray(exclude, dtype=np.int64).reshape(-1)
    if excl is not None and excl.shape[0] != M:
        raise InputError(f"exclude has {excl.shape[0]} entries for {M} queries")
    best_s = np.full((M, 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((M, 0), dtype=np.int64)
    for start in range(0, P, chunk):
        B = _unit(_as_matrix(bank[start : start + chunk], D, "bank"))
        sims = Q @ B.T  # (M, b)
        if excl is not None:
            hit = (excl >= start) & (excl < start + len(B))
            sims[np.nonzero(hit)[0], excl[hit] - start] = -np.inf
        idx = np.broadcast_to(np.arange(start, start + len(B)), sims.shape)
        all_s = np.concatenate([best_s, sims], axis=1)
        all_i = np.concatenate([best_i, idx], axis=1)
        take = np.argsort(-all_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(all_s, take, 1)
        best_i = np.take_along_axis(all_i, take, 1)
    return best_i, best_s


# ---------------------------------------------------------------------------
# attribute probes and selectivity
# ---------------------------------------------------------------------------
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
    """Label columns usable for a binary probe: values in {0, 1}, each class >= ``min_count`` rows.

    Columns named ``latent_*`` (continuous ground truth) are skipped.
    """
    cols = list(labels.columns) if columns is None else list(columns)
    keep = []
    for c in cols:
        if str(c).startswith("latent_") or c not in labels.columns:
            continue
        v = labels[c]
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        arr = arr[np.isfinite(arr)]
        if arr.size == 0 or not np.all((arr == 0) | (arr == 1)):
            continue
        pos = int(arr.sum())
        if pos >= min_count and arr.size - pos >= min_count:
            keep.append(c)
    return keep


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
    C : inverse regularisation strength (features are standardised first).
    """
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
    from clipica.probes import fit_logistic

    rng = np.random.default_rng(seed)
    idx = (
        np.arange(len(X))
        if len(X) <= max_rows
        else np.sort(rng.choice(len(X), max_rows, replace=False))
    )
    Xs = np.asarray(X[idx], dtype=np.float64)
    if not np.all(np.isfinite(Xs)):
        raise InputError("X contains NaN or infinite values")
    Y = np.stack([np.asarray(labels[n].to_numpy()[idx], dtype=np.float64) for n in names], axis=1)
    # every attribute in one joint solve (the project's logistic solver; scikit-learn's
    # objective on standardised features), instead of one scikit-learn fit per attribute
    fit = fit_logistic(Xs, Y, C=C, random_state=seed)
    W = fit.coef / fit.scale[:, None]  # fold the standardisation into the weights: (D, A)
    b = fit.intercept - fit.mean @ W
    logits = Xs @ W + b
    ok = np.isfinite(Y)
    hit = ((logits > 0) == (Y > 0.5)) & ok
    coefs, icpts = W.T, b
    accs = hit.sum(0) / ok.sum(0)
    rates = np.where(ok, Y, 0.0).sum(0) / ok.sum(0)
    return AttributeProbes(
        attributes=list(names),
        coef_=np.asarray(coefs),
        intercept_=np.asarray(icpts),
        train_accuracy=np.asarray(accs),
        positive_rate=np.asarray(rates),
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
    figure: Any = field(default=None, repr=False)


def attribute_response(
    traversal: Traversal, probes: AttributeProbes, *, target: str | None = None, plot: bool = True
) -> AttributeResponse:
    """Every attribute probe's probability along the sweep, and the component's selectivity.

    ``delta_logit_j`` is the change of attribute j's mean logit between the
    first and the last alpha (alphas sorted ascending);
    selectivity = ``|delta_target| / sum_{j != target} |delta_j|`` with the target
    the attribute of largest ``|delta|`` (or ``target`` when given).
    Returns an :class:`AttributeResponse`; ``.figure`` is the line plot when ``plot``.
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
    if plot:
        from clipica.viz.traversal import plot_attribute_response

        res.figure = plot_attribute_response(
            alphas,
            proba,
            probes.attributes,
            target=res.target,
            title=f"component {traversal.component}: attribute probes",
        )
    return res


# ---------------------------------------------------------------------------
# text response (zero-shot prompt pairs)
# ---------------------------------------------------------------------------
def default_prompt_pairs(attributes: Any = None) -> list[tuple[str, str, str]]:
    """Built-in (name, positive prompt, negative prompt) triples for CelebA attributes.

    Restricted to ``attributes`` when given (unknown names are skipped).
    """
    from clipica.naming import load_attribute_phrases

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
    figure: Any = field(default=None, repr=False)


def text_response(
    traversal: Traversal,
    pos_embeddings: Any,
    neg_embeddings: Any,
    names: Any,
    *,
    prompts: Any = None,
    logit_scale: float = 100.0,
    plot: bool = True,
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
    Tp = _unit(pos_embeddings)
    Tn = _unit(neg_embeddings)
    names = list(names)
    if Tp.shape != Tn.shape or Tp.shape[0] != len(names):
        raise InputError(
            f"need P positive and P negative embeddings and P names; got {Tp.shape}, {Tn.shape}, {len(names)}"
        )
    order = np.argsort(traversal.alphas, kind="stable")
    E = traversal.embeddings[order]
    A_, N, D = E.shape
    U = _unit(E.reshape(A_ * N, D))
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
    if plot:
        from clipica.viz.traversal import plot_text_response

        res.figure = plot_text_response(
            res.alphas,
            proba,
            names,
            title=f"component {traversal.component}: zero-shot prompt pairs",
        )
    return res


# ---------------------------------------------------------------------------
# image viewers
# ---------------------------------------------------------------------------
def _images_to_array(images: list, size: int) -> np.ndarray:
    """PIL images -> float32 (n, size, size, 3) in [0, 1]."""
    from PIL import Image

    out = np.empty((len(images), size, size, 3), dtype=np.float32)
    for j, im in enumerate(images):
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        out[j] = np.asarray(im, dtype=np.float32) / 255.0
    return out


def _load_images(store: Any, indices: Any, size: int) -> np.ndarray:
    from clipica.errors import ClipicaError

    idx = [int(i) for i in np.asarray(indices).reshape(-1)]
    try:
        images = store.load_images(idx)
    except ClipicaError as exc:
        raise StoreError(
            f"this store's images cannot be loaded ({exc}); interventions need the images: "
            "check that the data source recorded in the manifest is still readable"
        ) from exc
    if any(im is None for im in images):
        raise StoreError(
            "this store has no images for some rows (a text-only source?); retrieval and decoded "
            "traversals need the dataset images"
        )
    return _images_to_array(images, size)


@dataclass
class RetrievalTraversal:
    """Nearest dataset rows to each edited embedding.

    indices : int (A, N, k) store row indices (source row excluded);
    similarity : (A, N, k) cosine similarities; images : float32
    (N, A, size, size, 3) in [0, 1] of the first neighbour (grid layout:
    rows = source samples, columns = alphas), or None when not loaded.
    """

    alphas: np.ndarray
    rows: np.ndarray | None
    indices: np.ndarray
    similarity: np.ndarray
    images: np.ndarray | None = None
    sources: np.ndarray | None = None
    figure: Any = field(default=None, repr=False)


def retrieval_traversal(
    traversal: Traversal,
    bank: Any,
    *,
    store: Any = None,
    k: int = 1,
    image_size: int = 64,
    plot: bool = True,
) -> RetrievalTraversal:
    """For each edited embedding, the nearest ``bank`` rows by cosine similarity.

    ``bank`` is the (P, D) matrix of dataset embeddings (``store.image``);
    each edited row's own source row (``traversal.rows``) is excluded. With a
    ``store`` the first neighbour's images are loaded and drawn as a grid
    (rows = source samples, columns = alphas).
    """
    A_, N, D = traversal.embeddings.shape
    excl = None
    if traversal.rows is not None:
        excl = np.tile(traversal.rows, A_)
    idx, sim = retrieve_neighbours(traversal.embeddings.reshape(A_ * N, D), bank, k=k, exclude=excl)
    idx = idx.reshape(A_, N, k)
    sim = sim.reshape(A_, N, k)
    res = RetrievalTraversal(
        alphas=traversal.alphas, rows=traversal.rows, indices=idx, similarity=sim
    )
    if store is not None:
        flat = idx[:, :, 0].T.reshape(-1)  # (N*A,) row-major in the (N, A) grid
        res.images = _load_images(store, flat, image_size).reshape(N, A_, image_size, image_size, 3)
        if traversal.rows is not None:
            res.sources = _load_images(store, traversal.rows, image_size)
        if plot:
            from clipica.viz.traversal import plot_image_grid

            res.figure = plot_image_grid(
                res.images,
                traversal.alphas,
                sources=res.sources,
                title=f"component {traversal.component}: nearest dataset images",
            )
    return res


@dataclass
class DecodedTraversal:
    """Edited components decoded to pixels: images (N, A, H, W, 3) float32 in [0, 1]."""

    alphas: np.ndarray
    images: np.ndarray
    figure: Any = field(default=None, repr=False)


def decoded_traversal(traversal: Traversal, decoder: Any, *, plot: bool = True) -> DecodedTraversal:
    """Decode the edited sources with a :class:`clipica.decoder.ComponentDecoder`.

    Grid layout as in :func:`retrieval_traversal`: rows = source samples,
    columns = alphas. Pixels are real values in [0, 1] (sigmoid output), never clipped.
    """
    A_, N, K = traversal.sources.shape
    imgs = decoder.decode(traversal.sources.transpose(1, 0, 2).reshape(N * A_, K))
    imgs = imgs.reshape(N, A_, *imgs.shape[1:])
    res = DecodedTraversal(alphas=traversal.alphas, images=imgs)
    if plot:
        from clipica.viz.traversal import plot_image_grid

        res.figure = plot_image_grid(
            imgs,
            traversal.alphas,
            title=f"component {traversal.component}: decoded from the components",
        )
    return res


# ---------------------------------------------------------------------------
# everything for one component
# ---------------------------------------------------------------------------
@dataclass
class InterventionResult:
    """All viewers for one component; :meth:`to_json` is what ``intervene.json`` holds."""

    traversal: Traversal
    retrieval: RetrievalTraversal
    attributes: AttributeResponse | None
    text: TextResponse | None
    decoded: DecodedTraversal | None
    figure: Any = field(default=None, repr=False)
    info: dict = field(default_factory=dict)
    row_id_lookup: list | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        t = self.traversal
        out: dict[str, Any] = {
            "component": t.component,
            "alphas": [float(a) for a in t.alphas],
            "alpha_unit": "standard deviations of the component on the store's rows",
            "sigma": t.sigma,
            "mode": t.mode,
            "rows": None if t.rows is None else [int(r) for r in t.rows],
        }
        out.update(self.info)
        if self.attributes is not None:
            ar = self.attributes
            out["attribute_probabilities"] = {
                name: [float(p) for p in ar.proba[:, j]] for j, name in enumerate(ar.attributes)
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
                }
                for j, name in enumerate(self.text.names)
            }
        out["decoded"] = self.decoded is not None
        return out


def _pick_rows(store: Any, n_rows: int, seed: int) -> np.ndarray:
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
    plot: bool = True,
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
    """
    K = np.asarray(ica.components_).shape[0]
    component = _check_component(component, K)
    X = store.image
    if np.isscalar(rows):
        idx = _pick_rows(store, int(rows), seed)
    else:
        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= len(X):
            raise InputError(f"row indices must lie in [0, {len(X)}), got {idx.tolist()}")
    # sorted once here so every view (grids, curves, JSON) shares one alpha order
    alphas = np.sort(np.asarray(alphas, dtype=np.float64).reshape(-1))
    # fail early (exit status 2 from the CLI) when the images are not reachable
    _load_images(store, idx[:1], image_size)
    mu, sd = component_stats(ica, X)
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
    retrieval = retrieval_traversal(tr, X, store=store, k=k, image_size=image_size, plot=plot)

    attr = None
    rows_df = store.rows
    if probes is None:
        usable = binary_attributes(rows_df, store.label_columns)
        if usable:
            probes = fit_attribute_probes(X, rows_df, usable, seed=seed)
    if probes is not None:
        attr = attribute_response(tr, probes, plot=plot)

    text = None
    if isinstance(prompt_pairs, str) and prompt_pairs == "auto":
        prompt_pairs = default_prompt_pairs(store.label_columns) or default_prompt_pairs()[:8]
    if prompt_pairs:
        if encoder is None:
            encoder = store.load_encoder()
        names = [p[0] for p in prompt_pairs]
        pos = encoder.encode_texts([p[1] for p in prompt_pairs])
        neg = encoder.encode_texts([p[2] for p in prompt_pairs])
        text = text_response(
            tr, pos, neg, names, prompts=[(p[1], p[2]) for p in prompt_pairs], plot=plot
        )

    decoded = decoded_traversal(tr, decoder, plot=plot) if decoder is not None else None
    ids = store.rows["id"].astype(str).tolist() if "id" in store.rows.columns else None
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
    if plot:
        from clipica.viz.traversal import plot_intervention

        res.figure = plot_intervention(res)
    return res
