"""The words clipica names components with: the built-in CelebA attribute phrases
(``vocab/celeba_attributes.txt``: ``NAME | positive prompt | negative prompt`` per line) and
user vocabularies (a text file, a list, a template applied to every entry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clipica.errors import InputError

_VOCAB_DIR = Path(__file__).parent / "vocab"
BUILTIN_VOCABULARIES = ("celeba",)


def load_attribute_phrases() -> list[tuple[str, str, str]]:
    """Built-in ``(attribute, positive prompt, negative prompt)`` triples for the 40 CelebA attributes."""
    out = []
    for line in (_VOCAB_DIR / "celeba_attributes.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3:
            out.append((parts[0], parts[1], parts[2]))
    return out


def builtin_vocabulary(name: str = "celeba") -> list[str]:
    """The built-in prompt list: every positive and negative CelebA attribute phrase (80 prompts)."""
    if name != "celeba":
        raise InputError(
            f"unknown built-in vocabulary {name!r}; available: {list(BUILTIN_VOCABULARIES)}"
        )
    seen: dict[str, None] = {}
    for _, pos, neg in load_attribute_phrases():
        seen.setdefault(pos)
        seen.setdefault(neg)
    return list(seen)


def _check_template(template: str) -> None:
    """A template has exactly one ``{}`` (braces elsewhere doubled: ``{{``); else InputError."""
    import string

    problem = None
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:  # an unmatched "{" or "}"
        fields, problem = [], str(exc)
    if problem is None and fields != [""]:
        problem = (f"it has {len(fields)} fields" if len(fields) != 1
                   else f"its field is {{{fields[0]}}}")
    if problem is None:
        try:
            template.format("word")
        except (ValueError, IndexError, KeyError, AttributeError) as exc:  # e.g. a bad format spec "{:q}"
            problem = str(exc)
    if problem is not None:
        raise InputError(
            f"--template must contain exactly one '{{}}' where the word goes (write other braces as "
            f"'{{{{' and '}}}}'), got {template!r} ({problem})"
        )


def load_vocabulary(source: Any = None, *, template: str | None = None) -> list[str]:
    """A vocabulary as a list of prompts.

    Parameters
    ----------
    source : None or "celeba" (built-in phrases), a path to a text file (one
        word or prompt per line; blank lines and ``#`` comments skipped;
        lines of the form ``NAME | positive | negative`` contribute both
        prompts), or a list of strings.
    template : optional format string with ``{}`` applied to every entry, e.g.
        ``"a photo of a person with {}"`` to turn bare words into prompts.
    """
    if source is None or (isinstance(source, str) and source in BUILTIN_VOCABULARIES):
        words = builtin_vocabulary(source or "celeba")
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InputError(
                f"vocabulary file {str(path)!r} does not exist; pass a text file with one word or "
                f"prompt per line, or one of the built-in vocabularies {list(BUILTIN_VOCABULARIES)}"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"vocabulary file {str(path)!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                f"offset {exc.start}); save it as UTF-8"
            ) from None
        words = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.split("|")]
            words.extend(parts[1:] if len(parts) == 3 else [line])
    else:
        words = [str(w).strip() for w in source]
    words = [w for w in dict.fromkeys(words) if w]
    if template is not None:
        _check_template(template)
        words = [template.format(w) for w in words]
    if len(words) < 2:
        raise InputError(f"a vocabulary needs at least 2 entries, got {len(words)}")
    return words
