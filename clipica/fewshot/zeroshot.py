"""The zero-shot text classifier: class prompts, their text embeddings, argmax cosine.

Class prompts come from the label's column names through the naming stage's phrase rules
(:func:`clipica.naming.load_attribute_phrases`, one positive and one negative phrase per
CelebA attribute):

- a column with a built-in phrase pair: value 1 (or true/yes) -> the positive phrase,
  0 (or -1/false/no) -> the negative one; any other value -> ``"a photo of a person with
  <value> <column words>"``;
- a column without one: ``"a photo of a person with <column words>"`` /
  ``"a photo of a person without <column words>"`` (``Wearing_Hat`` -> ``wearing hat``);
- a class that combines columns (``Male=1,Smiling=0``) is the normalised mean of its
  phrases' normalised text embeddings (one phrase per column).

``--prompts FILE`` replaces the rules: one ``CLASS | prompt`` per line (several lines per
class are averaged the same way; ``#`` starts a comment).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipica.errors import InputError

_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "-1", "false", "no", "n"}


def _words(column: str) -> str:
    return str(column).replace("_", " ").strip().lower()


def _class_parts(label: str, cls: str) -> list[tuple[str, str]]:
    """``(column, value)`` pairs of a class name (``"Male=1,Smiling=0"``, or ``"1"`` for one column)."""
    cols = [c.strip() for c in str(label).split("+") if c.strip()]
    if len(cols) == 1:
        return [(cols[0], str(cls))]
    return [tuple(part.split("=", 1)) for part in str(cls).split(",")]


def phrase(column: str, value: str, phrases: dict[str, tuple[str, str]]) -> str:
    """The prompt for one ``column=value`` (module docstring's rules)."""
    v = str(value).strip().lower()
    if column in phrases and v in _TRUE | _FALSE:
        return phrases[column][0 if v in _TRUE else 1]
    if v in _TRUE:
        return f"a photo of a person with {_words(column)}"
    if v in _FALSE:
        return f"a photo of a person without {_words(column)}"
    return f"a photo of a person with {value} {_words(column)}"


def class_prompts(label: str, classes: list[str], prompts_file=None) -> list[list[str]]:
    """The prompts of every class (a list per class, averaged after embedding).

    ``label``: the ``--label`` (``COL`` or ``COL+COL+...``); ``classes``: its class names
    (:func:`clipica.fewshot.class_codes`); ``prompts_file``: optional ``CLASS | prompt``
    lines. InputError when the file misses a class or names an unknown one.
    """
    if prompts_file is not None:
        return _read_prompts(prompts_file, classes)
    from clipica.naming import load_attribute_phrases

    phrases = {a: (p, n) for a, p, n in load_attribute_phrases()}
    return [[phrase(c, v, phrases) for c, v in _class_parts(label, cls)] for cls in classes]


def _read_prompts(path, classes: list[str]) -> list[list[str]]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"fewshot: --prompts file {p} does not exist")
    found: dict[str, list[str]] = {}
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        cls, sep, text = (s.strip() for s in line.partition("|"))
        if not sep or not cls or not text:
            raise InputError(f"fewshot: {p} line {n}: expected 'CLASS | prompt', got {line!r}")
        if cls not in classes:
            raise InputError(f"fewshot: {p} line {n}: unknown class {cls!r}; the classes are {', '.join(classes)}")
        found.setdefault(cls, []).append(text)
    missing = [c for c in classes if c not in found]
    if missing:
        raise InputError(f"fewshot: {p} has no prompt for class(es) {', '.join(missing)}")
    return [found[c] for c in classes]


def text_classifier(prompts: list[list[str]], encoder) -> np.ndarray:
    """Unit class vectors (k, D) float64: each class's normalised mean of normalised prompt embeddings."""
    flat = [t for group in prompts for t in group]
    E = np.asarray(encoder.encode_texts(flat), dtype=np.float64)
    E /= np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    out, i = [], 0
    for group in prompts:
        v = E[i: i + len(group)].mean(axis=0)
        out.append(v / max(np.linalg.norm(v), 1e-12))
        i += len(group)
    return np.stack(out)


def zeroshot_logits(X: np.ndarray, classifier: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``X`` (n, D) with each class vector (k, D): (n, k)."""
    X = np.asarray(X, dtype=np.float64)
    return (X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)) @ np.asarray(classifier).T


#: the logit scales tried for the zero-shot prior (temperature fitted on the training shots)
SCALES = tuple(np.round(np.logspace(0, 3, 31), 6))


def prior_scale(F_unit: np.ndarray, y: np.ndarray, classifier: np.ndarray) -> float:
    """The logit scale s (from :data:`SCALES`) that maximises the training shots' likelihood
    of ``s * cosine``: the zero-shot classifier's temperature, fitted on training shots only."""
    from scipy.special import log_softmax

    cos = F_unit @ classifier.T
    ll = [np.take_along_axis(log_softmax(s * cos, axis=1), y[:, None], 1).mean() for s in SCALES]
    return float(SCALES[int(np.argmax(ll))])
