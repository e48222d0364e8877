"""HTML pieces shared by the report modules: escaping, number formatting, embedded figures.

One copy of each, used by :mod:`clipica.report.build`, :mod:`clipica.report.text` and
:mod:`clipica.report.sections` (rendering only; nothing here computes results).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _fmt(value: Any, digits: int = 3) -> str:
    v = _num(value)
    return "–" if v is None else f"{v:.{digits}f}"


def png_bytes(image: Any, dpi: int = 110) -> bytes:
    """PNG bytes of a matplotlib Figure, a PNG path, or bytes (returned as is)."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        return Path(image).read_bytes()
    if hasattr(image, "savefig"):
        buf = io.BytesIO()
        image.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(image)
        return buf.getvalue()
    raise TypeError(f"cannot turn {type(image).__name__} into a PNG")


def embeddable(image: Any, root: str | os.PathLike) -> Any:
    """``image`` if it is a Figure or bytes; a path's bytes if the file lies inside ``root``
    (resolved, so ``..`` and symlinks that leave it are refused); else None (not embedded)."""
    if image is None or not isinstance(image, (str, os.PathLike)):
        return image
    base = Path(root).resolve()
    target = Path(image).resolve()
    if base not in target.parents or not target.is_file():
        return None
    return target.read_bytes()


def _img(image: Any, caption: str = "", alt: str = "") -> str:
    data = base64.b64encode(png_bytes(image)).decode("ascii")
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return (
        f'<figure><img alt="{_e(alt or caption)}" src="data:image/png;base64,{data}">{cap}</figure>'
    )


def _missing(what: str, how: str) -> str:
    return f'<p class="missing">Not computed: {_e(what)}. {how}</p>'


_PROMPT_PREFIXES = ("a photo of a person ", "a photo of an ", "a photo of a ", "a photo of ")


def short_phrase(text: Any) -> str:
    """'a photo of a person wearing a hat' -> 'wearing a hat' (display only)."""
    text = str(text)
    for prefix in _PROMPT_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def folded_auc(value: Any) -> float | None:
    """max(AUC, 1 - AUC): a single code separates an attribute equally well from either pole."""
    v = _num(value)
    return None if v is None else max(v, 1.0 - v)


# ------------------------------------------------------------------ probe.json reading


def _mean(values: Iterable[Any]) -> float | None:
    vals = [v for v in (_num(x) for x in values) if v is not None]
    return sum(vals) / len(vals) if vals else None


# ------------------------------------------------------------------ sections


def _score(value: Any) -> Any:
    if isinstance(value, Mapping):
        for key in ("score", "mcc", "value", "mean"):
            if key in value:
                return value[key]
    return value


#: a folded AUC below this separates an attribute hardly better than chance: such an attribute
#: is not said to be "carried" by its best component, and gets none of its names
NEAR_CHANCE_AUC = 0.6


def carried_by(rows: Mapping[str, Mapping[str, Any]], component: int) -> tuple[list[tuple[str, Any]], int]:
    """The attributes whose best single component is ``component`` and that it separates
    (folded ICA AUC >= :data:`NEAR_CHANCE_AUC`), best first, as ``(name, row)``; and how
    many others have it as their best component only near chance.

    ``rows``: :func:`clipica.report.build.probe_attributes` output.
    """
    mine = [(n, r) for n, r in rows.items()
            if r.get("best_component") is not None and int(r["best_component"]) == int(component)]
    strong = [(n, r) for n, r in mine if (_num(r.get("ica")) or 0.0) >= NEAR_CHANCE_AUC]
    strong.sort(key=lambda t: -(_num(t[1].get("ica")) or 0.0))
    return strong, len(mine) - len(strong)
