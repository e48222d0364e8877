"""Name ICA components in words through the model's text encoder.

The components were fitted on *image* embeddings. CLIP's two modalities share a
space but sit in two separate cones: every text embedding is offset from every
image embedding by roughly the same vector (the "modality gap"), and their
spreads differ. Projecting raw text embeddings with an image-fitted unmixing
would add the gap's projection to every word's score. clipica's choice,
explicit and recorded in every output:

1. **centre each modality by its own mean.** Image embeddings are centred by the
   ICA's ``mean_`` (that is what the ICA does). Text embeddings are centred by
   a *text* mean, by default the mean of the vocabulary being scored
   (``center="vocabulary"``), or the mean of the store's caption embeddings
   (``center="captions"``). The vocabulary mean is the default because prompts
   carry a second shared offset: their template style ("a photo of a person
   with ...") differs from the captions' style, and that offset also projects
   onto every component. Measured on ``synthetic-faces:2000`` with a 300-step
   ``tiny-faces`` (K = 8): the component each CelebA positive prompt scores
   highest on (by ``|z|``) is the component with the best single-component AUC
   for that attribute, with the matching sign, for 6 of 11 attributes with
   vocabulary centring (Smiling, Eyeglasses, Wearing_Hat, Pale_Skin,
   Blond_Hair, Gray_Hair), and for 1 of 11 with caption centring (where most
   prompts land on the component that carries the style offset). With the built-in
   vocabulary, which holds a positive and a negative phrase for every
   attribute, the vocabulary mean is a neutral point. With a one-sided word
   list, scores are relative to the list.
2. **project with the image-fitted unmixing**: ``u = components_ @ (t - text_mean)``.
3. **express each component in text-side standard deviations**: divide by the
   standard deviation of that projection over the store's captions (over the
   vocabulary without captions), so scores are comparable across components.

A word's score on component k is therefore ``z_k(t) = u_k / sd_k``: how many
caption standard deviations the word sits along the component, positive pole
(> 0) or negative pole (< 0). The reverse lookup ranks components by ``|z|``
for a prompt, with the text mean of the naming run (the vocabulary mean by
default), so a prompt is compared with prompts of its own style.

Embeddings are normalised like the store's (``manifest["normalize"]``) before
projection so text and image live on the same scale convention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clipica.embeddings.manifest import normalizes
from clipica.errors import InputError
from clipica.naming.chance import chance_threshold, negation_pairs
from clipica.naming.vocabulary import builtin_vocabulary, load_attribute_phrases, load_vocabulary

NAMES_FORMAT = "clipica.names/1"

__all__ = [
    "ComponentNames",
    "TextProjection",
    "builtin_vocabulary",
    "fit_text_projection",
    "load_attribute_phrases",
    "load_vocabulary",
    "match_prompts",
    "name_components",
    "name_from_embeddings",
]


@dataclass
class TextProjection:
    """How text embeddings enter the image-fitted component space.

    ``z = (components_ @ (t - text_mean)) / scale``

    text_mean : (D,) -- the text side's own mean.
    scale : (K,) -- std of each component's projection over ``reference``.
    reference : "captions" (store.text) or "vocabulary" (no captions available):
        the texts the scale comes from.
    n_reference : rows used for the scale.
    center : "vocabulary" or "captions": the texts ``text_mean`` comes from.
    """

    text_mean: np.ndarray
    scale: np.ndarray
    reference: str
    n_reference: int
    normalize: bool = False
    center: str = "captions"

    def describe(self) -> dict:
        return {
            "modality_gap": "each modality centred by its own mean (images by ica.mean_, texts by text_mean)",
            "text_mean_from": self.center,
            "scale_from": self.reference,
            "n_reference": self.n_reference,
            "projection": "components_ @ (t - text_mean)",
            "score_unit": f"standard deviations of the component over the {self.reference} text embeddings",
            "l2_normalized_before_projection": self.normalize,
        }


def _l2(X: np.ndarray) -> np.ndarray:
    from clipica._linalg import unit_rows

    return unit_rows(X)


def fit_text_projection(
    ica: Any,
    reference_texts: Any,
    *,
    reference: str = "captions",
    normalize: bool = False,
    chunk: int = 65536,
) -> TextProjection:
    """Text mean and per-component scale from reference text embeddings (N, D) (streamed in chunks)."""
    W = np.asarray(ica.components_, dtype=np.float64)
    K, D = W.shape
    n = len(reference_texts)
    if n < 3:
        raise InputError(
            f"need at least 3 reference text embeddings to estimate the text mean and scale, got {n}"
        )
    total = np.zeros(D)
    for s in range(0, n, chunk):
        B = np.asarray(reference_texts[s : s + chunk], dtype=np.float64)
        if B.ndim != 2 or B.shape[1] != D:
            raise InputError(f"text embeddings must have shape (n, {D}), got {B.shape}")
        total += (_l2(B) if normalize else B).sum(0)
    mean = total / n
    s2 = np.zeros(K)
    for s in range(0, n, chunk):
        B = np.asarray(reference_texts[s : s + chunk], dtype=np.float64)
        U = ((_l2(B) if normalize else B) - mean) @ W.T
        s2 += (U * U).sum(0)
    scale = np.sqrt(s2 / (n - 1))
    scale[scale <= 1e-12 * max(scale.max(), 1e-300)] = 1.0
    return TextProjection(
        text_mean=mean, scale=scale, reference=reference, n_reference=n, normalize=normalize
    )


@dataclass
class ComponentNames:
    """Scores of every vocabulary entry on every component.

    vocabulary : V prompts; scores : (V, K) array (see the module docstring for
    the unit); projection : the :class:`TextProjection` used.
    """

    vocabulary: list[str]
    scores: np.ndarray
    projection: TextProjection
    info: dict = field(default_factory=dict)
    #: |z| that random directions reach by chance (see :func:`chance_threshold`); None = unknown
    threshold: float | None = None

    @property
    def n_components(self) -> int:
        return self.scores.shape[1]

    def top(self, component: int, pole: str = "+", n: int = 5) -> list[tuple[str, float]]:
        """The ``n`` entries with the highest (pole "+") or lowest (pole "-") score on ``component``."""
        if not 0 <= int(component) < self.n_components:
            raise InputError(f"component {component} out of range [0, {self.n_components})")
        if pole not in ("+", "-"):
            raise InputError(f"pole must be '+' or '-', got {pole!r}")
        col = self.scores[:, int(component)]
        order = np.argsort(-col if pole == "+" else col, kind="stable")[:n]
        return [(self.vocabulary[j], float(col[j])) for j in order]

    def top_in_block(self, block, n: int = 5) -> list[tuple[str, float]]:
        """The ``n`` entries that sit farthest out in a block's subspace.

        A block (dependent components, e.g. a categorical factor) has no poles: its
        entries are ranked by the norm of their scores over the block's components,
        ``sqrt(sum_k z_k^2)`` for k in the block (text-side standard deviations).
        """
        cols = [int(k) for k in block]
        if not cols or min(cols) < 0 or max(cols) >= self.n_components:
            raise InputError(f"block {list(block)} out of range [0, {self.n_components})")
        norm = np.sqrt((self.scores[:, cols] ** 2).sum(axis=1))
        order = np.argsort(-norm, kind="stable")[:n]
        return [(self.vocabulary[j], float(norm[j])) for j in order]

    def block_names(self, blocks, n: int = 5) -> list[dict]:
        """Per block of more than one component, its :meth:`top_in_block` entries (not for the
        unidentifiable Gaussian block: its subspace is noise)."""
        return [
            {"block": [int(k) for k in b],
             "top": [{"text": w, "norm": v} for w, v in self.top_in_block(b, n)]}
            for b in blocks
            if len(b) > 1 and not set(map(int, b)) <= set(self.info.get("unidentifiable", ()))
        ]

    def names(self, component: int, pole: str = "+", n: int = 5) -> dict:
        """What may be shown as the name of one pole: entries above chance, negations flagged.

        Returns ``{"names": [(text, z), ...], "unseparated": [(phrase, negation), ...]}``:
        the top ``n`` entries of the pole whose ``|z|`` exceeds :attr:`threshold` (all of
        the top ``n`` when the threshold is unknown), and the pairs of a phrase and its
        negation (:func:`negation_pairs`) that both made the list. Such a pair means the
        model places "X" and "not X" together on this component, i.e. it does not separate
        them; a reader must say so rather than print both as one name. A component of the
        decomposition's unidentifiable Gaussian block (``info["unidentifiable"]``) gets no name.
        """
        items = self.top(component, pole, n)
        if int(component) in self.info.get("unidentifiable", ()):
            items = []  # a member of the decomposition's Gaussian block: its axis means nothing
        if self.threshold is not None:
            items = [(w, s) for w, s in items if abs(s) > self.threshold]
        shown = {w for w, _ in items}
        pairs = [(a, b) for a, b in negation_pairs(self.vocabulary) if a in shown and b in shown]
        return {"names": items, "unseparated": pairs}

    def to_dict(self, fingerprints: dict[str, str] | None = None, n: int = 5) -> dict:
        """The ``naming.json`` layout, tagged ``clipica.names/1`` with the inputs' ``fingerprints``
        (e.g. ``{"store": ..., "decomposition": ...}``).

        ``positive``/``negative``: the top ``n`` raw scores per pole (each with
        ``above_chance``); ``named``: what may be shown as a name (see :meth:`names`);
        ``vocabulary``, ``scores`` (V, K), ``projection`` and ``chance`` hold everything
        :meth:`from_dict` needs.
        """
        from clipica._atomic import nan_to_none
        from clipica._format import tagged

        thr = self.threshold

        def entries(k: int, pole: str) -> list[dict]:
            return [
                {"text": w, "score": s, "above_chance": None if thr is None else abs(s) > thr}
                for w, s in self.top(k, pole, n)
            ]

        def named(k: int, pole: str) -> dict:
            got = self.names(k, pole, n)
            return {
                "names": [{"text": w, "score": s} for w, s in got["names"]],
                "unseparated": [list(p) for p in got["unseparated"]],
            }

        p = self.projection
        body = {
            "method": p.describe(),
            "vocabulary_size": len(self.vocabulary),
            "chance": {"threshold": thr, **self.info.get("chance", {})},
            **{k: v for k, v in self.info.items() if k != "chance"},
            "info_keys": list(self.info),
            "components": [
                {
                    "component": k,
                    "positive": entries(k, "+"),
                    "negative": entries(k, "-"),
                    "named": {"+": named(k, "+"), "-": named(k, "-")},
                }
                for k in range(self.n_components)
            ],
            "vocabulary": list(self.vocabulary),
            "scores": np.asarray(self.scores, dtype=np.float64).tolist(),
            "projection": {
                "text_mean": np.asarray(p.text_mean, dtype=np.float64).tolist(),
                "scale": np.asarray(p.scale, dtype=np.float64).tolist(),
                "reference": p.reference,
                "n_reference": int(p.n_reference),
                "normalize": bool(p.normalize),
                "center": p.center,
            },
        }
        return tagged(NAMES_FORMAT, nan_to_none(body), fingerprints)

    def to_json(self, n: int = 5) -> dict:
        """:meth:`to_dict` without fingerprints (kept for older callers)."""
        return self.to_dict(n=n)

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "component names") -> ComponentNames:
        """Inverse of :meth:`to_dict`; ArtifactError (one line) on a wrong tag or malformed fields."""
        from clipica._format import untag
        from clipica.errors import ArtifactError

        body, _ = untag(d, NAMES_FORMAT, source=source)
        try:
            vocab = [str(v) for v in body["vocabulary"]]
            scores = np.asarray(body["scores"], dtype=np.float64).reshape(len(vocab), -1)
            p = body["projection"]
            projection = TextProjection(
                text_mean=np.asarray(p["text_mean"], dtype=np.float64),
                scale=np.asarray(p["scale"], dtype=np.float64).reshape(scores.shape[1]),
                reference=str(p["reference"]),
                n_reference=int(p["n_reference"]),
                normalize=bool(p["normalize"]),
                center=str(p["center"]),
            )
            chance = dict(body.get("chance") or {})
            threshold = chance.pop("threshold", None)
            info = {k: (chance if k == "chance" else body[k]) for k in body.get("info_keys") or []}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArtifactError(f"{source} is missing or has malformed fields ({exc!s:.120}); was it hand-edited?") from None
        return cls(vocabulary=vocab, scores=scores, projection=projection, info=info,
                   threshold=None if threshold is None else float(threshold))

    def table(self, n: int = 3) -> str:
        """Readable table: per component, the top ``n`` entries at each pole with their scores (z)."""
        lines = [f"top {n} entries per pole; score = z, in text-side standard deviations"]
        if self.threshold is not None:
            lines.append(f"[brackets]: below the chance level |z| = {self.threshold:.2f} "
                         "(random directions), not a name")
        for k in range(self.n_components):
            lines.append(f"component {k}")
            for pole in ("+", "-"):
                thr = self.threshold
                items = "; ".join(
                    f"{_short(w)} ({s:+.2f})" if thr is None or abs(s) > thr
                    else f"[{_short(w)} ({s:+.2f})]"
                    for w, s in self.top(k, pole, n)
                )
                flags = self.names(k, pole, n)["unseparated"]
                if flags:
                    items += "  -- not separated by the model: " + "; ".join(
                        f"{_short(a)!r} / {_short(b)!r}" for a, b in flags)
                lines.append(f"  {pole} {items}")
        return "\n".join(lines)


def _short(prompt: str) -> str:
    for prefix in ("a photo of a person ", "a photo of an ", "a photo of a ", "a photo of "):
        if prompt.startswith(prefix):
            return prompt[len(prefix) :]
    return prompt


def name_from_embeddings(
    vocabulary: list[str],
    text_embeddings: Any,
    ica: Any,
    *,
    reference_texts: Any = None,
    center: str = "vocabulary",
    normalize: bool = False,
    projection: TextProjection | None = None,
    chance: float | None = 0.95,
    random_state: int = 0,
) -> ComponentNames:
    """Score vocabulary text embeddings (V, D) on the ICA's components.

    ``reference_texts`` (N, D): caption embeddings giving each component's
    text-side scale (and the text mean with ``center="captions"``); when None
    the vocabulary itself is the reference. ``center``: "vocabulary" (default)
    or "captions", see the module docstring. ``chance``: the quantile of the
    random-direction null that sets :attr:`ComponentNames.threshold`
    (:func:`chance_threshold`); None skips it. 0.95 by default: a direction that means
    nothing gets a name with probability about 5%. Measured on stores from
    ``clipica extract --model tiny-faces [--pretrained none] --data synthetic-faces:3000``
    and ``clipica ica -k 12``: the random-weight model had 0 of 12 components named
    (threshold 3.06, largest |z| 2.75), the trained 700-step one (the previous, larger
    architecture) 8 of 12 (threshold 1.99).
    """
    if center not in ("vocabulary", "captions"):
        raise InputError(f"center must be 'vocabulary' or 'captions', got {center!r}")
    T = np.asarray(text_embeddings, dtype=np.float64)
    W = np.asarray(ica.components_, dtype=np.float64)
    if T.ndim != 2 or T.shape[1] != W.shape[1] or T.shape[0] != len(vocabulary):
        raise InputError(
            f"text embeddings must have shape ({len(vocabulary)}, {W.shape[1]}), got {T.shape}"
        )
    reference_texts, note = _usable_reference(reference_texts, center)
    if projection is None:
        if reference_texts is not None:
            projection = fit_text_projection(
                ica, reference_texts, reference="captions", normalize=normalize
            )
        else:
            if center == "captions":
                raise InputError(
                    "center='captions' needs the captions' embeddings (reference_texts)"
                )
            projection = fit_text_projection(ica, T, reference="vocabulary", normalize=normalize)
        if center == "vocabulary":
            projection.text_mean = (_l2(T) if normalize else T).mean(0)
            projection.center = "vocabulary"
    scores = _project(T, W, projection)
    names = ComponentNames(vocabulary=list(vocabulary), scores=scores, projection=projection)
    gaussian = [int(i) for i in (getattr(ica, "gaussian_block_", None) or [])]
    if gaussian:  # the ICA's unidentifiable block: scored, never named (ComponentNames.names)
        names.info["unidentifiable"] = gaussian
    if note:
        names.info["reference"] = note
    if chance is not None and chance > 0:
        ref = reference_texts if reference_texts is not None else T
        names.threshold, names.info["chance"] = chance_threshold(
            T, ref, projection, quantile=chance, random_state=random_state
        )
    return names


def _usable_reference(reference_texts: Any, center: str) -> tuple[Any, str | None]:
    """``(reference_texts, None)``, or ``(None, why)`` when the captions' embeddings have (next
    to) no variance (every caption the same): their spread would be the unit of every score and
    of the chance level (1e147 was printed), so the vocabulary is the reference instead."""
    if reference_texts is None or len(reference_texts) < 3:
        return reference_texts, None
    rows = np.linspace(0, len(reference_texts) - 1, min(len(reference_texts), 2000)).astype(int)
    R = np.asarray(reference_texts[rows], dtype=np.float64)
    spread = float(R.var(axis=0).sum())
    size = float(np.mean(np.sum(R * R, axis=1)))
    if spread > 1e-8 * max(size, 1e-300):
        return reference_texts, None
    if center == "captions":
        raise InputError("the captions' embeddings have no variance (every caption is the same), so they "
                         "give no text-side scale; use center='vocabulary'")
    return None, ("the vocabulary: the captions' embeddings have no variance (every caption is the "
                  "same), so they give no scale")


def _project(T: np.ndarray, W: np.ndarray, projection: TextProjection) -> np.ndarray:
    T = _l2(T) if projection.normalize else T
    return ((T - projection.text_mean) @ W.T) / projection.scale


def _text_reference(store: Any) -> Any:
    text = getattr(store, "text", None)
    if text is None or len(text) < 3:
        return None
    return text


def name_components(
    store: Any,
    ica: Any,
    vocabulary: Any = None,
    *,
    encoder: Any = None,
    template: str | None = None,
    center: str = "vocabulary",
) -> ComponentNames:
    """Name every component with a vocabulary embedded by the store's text encoder.

    Parameters
    ----------
    store : EmbeddingStore the ICA was fitted on (``store.text`` provides the
        text mean; ``store.load_encoder()`` the text encoder).
    ica : fitted ICA.
    vocabulary : see :func:`load_vocabulary` (default: built-in CelebA phrases).
    encoder : an Encoder to use instead of ``store.load_encoder()``.
    center : where the text mean comes from: "vocabulary" (default) or
        "captions" (the store's caption embeddings); see the module docstring.
    """
    words = load_vocabulary(vocabulary, template=template)
    if encoder is None:
        encoder = store.load_encoder()
    T = encoder.encode_texts(words)
    normalize = normalizes(store)
    ref = _text_reference(store)
    names = name_from_embeddings(
        words, T, ica, reference_texts=ref, center=center, normalize=normalize
    )
    names.info["model"] = getattr(encoder, "spec", None)
    return names


def match_prompts(
    prompts: Any,
    ica: Any,
    *,
    store: Any = None,
    encoder: Any = None,
    projection: TextProjection | None = None,
    text_embeddings: Any = None,
    top: int = 3,
) -> list[dict]:
    """Reverse lookup: which component best matches each prompt?

    The prompt is projected like a vocabulary entry (with ``projection``, e.g.
    ``name_components(...).projection``, or else with the built-in vocabulary's
    mean as the text mean); components are ranked by ``|z|``. Returns one dict per prompt: ``prompt``, ``component`` (best),
    ``pole`` ("+" or "-"), ``score`` (signed z) and ``ranking`` (top ``top``).
    Pass ``text_embeddings`` (P, D) and ``projection`` to skip the encoder.
    """
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts:
        raise InputError("match_prompts needs at least one prompt")
    W = np.asarray(ica.components_, dtype=np.float64)
    if text_embeddings is None:
        if encoder is None:
            if store is None:
                raise InputError("pass store (for its text encoder), encoder, or text_embeddings")
            encoder = store.load_encoder()
        text_embeddings = encoder.encode_texts(prompts)
    T = np.asarray(text_embeddings, dtype=np.float64)
    if projection is None:
        # the text mean of the built-in vocabulary: prompts compared with prompts of their style
        if encoder is None and store is None:
            raise InputError(
                "the reverse lookup needs a text mean: pass a store or an encoder (the built-in "
                "vocabulary is embedded), or a projection from name_components(...).projection"
            )
        if encoder is None:
            encoder = store.load_encoder()
        vocab = builtin_vocabulary()
        ref = _text_reference(store) if store is not None else None
        normalize = normalizes(store) if store is not None else False
        projection = name_from_embeddings(
            vocab, encoder.encode_texts(vocab), ica, reference_texts=ref, normalize=normalize,
            chance=None,
        ).projection
    Z = _project(T, W, projection)
    out = []
    for p, z in zip(prompts, Z, strict=True):
        order = np.argsort(-np.abs(z), kind="stable")[:top]
        best = int(order[0])
        out.append(
            {
                "prompt": p,
                "component": best,
                "pole": "+" if z[best] >= 0 else "-",
                "score": float(z[best]),
                "ranking": [{"component": int(k), "score": float(z[k])} for k in order],
            }
        )
    return out


def format_matches(matches: list[dict]) -> str:
    """Readable lines for :func:`match_prompts` output."""
    lines = []
    for m in matches:
        rest = ", ".join(f"{r['component']} ({r['score']:+.1f})" for r in m["ranking"][1:])
        lines.append(
            f"{m['prompt']!r}: component {m['component']} {m['pole']} pole (z = {m['score']:+.2f})"
            + (f"; next: {rest}" if rest else "")
        )
    return "\n".join(lines)
