"""Figure of a :class:`clipica.match.MatchResult`: |r| between the two runs' components."""

from __future__ import annotations

from typing import Any

import numpy as np

from clipica.viz import literal


def _ordered(cm) -> tuple[np.ndarray, list[int], list[int]]:
    """|corr| with A's rows and B's columns reordered so the matched pairs lie on the
    diagonal, strongest first; the unpaired codes of the wider side follow."""
    ra = [p["a"] for p in cm.pairs]
    rb = [p["b"] for p in cm.pairs]
    ra += [i for i in range(cm.k_a) if i not in ra]
    rb += [j for j in range(cm.k_b) if j not in rb]
    return np.abs(cm.corr)[np.ix_(ra, rb)], ra, rb


def _tick(i: int, pairs: list[dict], key: str, side: str) -> str:
    """``c3 Smiling``; ``(Gaussian)`` for a component indistinguishable from Gaussian."""
    for p in pairs:
        if p[side] == i:
            noise = " (Gaussian)" if p.get(f"significant_{side}") is False else ""
            return f"c{i} {p[key] or ''}{noise}".replace("  ", " ").strip()
    return f"c{i}"


def plot_match(result: Any, *, title: str | None = None):
    """Heatmaps of |r| (A's components as rows, B's as columns, matched pairs on the
    diagonal, strongest first), for the decomposition and, beside it, the PCA control.
    Ticks name each component's best attribute where the rows had labels. Returns the
    matplotlib Figure."""
    # a bare Figure (not pyplot's): nothing global to close, and Jupyter shows it once
    from matplotlib.figure import Figure

    panels = [result.codes] + ([result.control] if result.control is not None else [])
    ka, kb = result.codes.k_a, result.codes.k_b
    side = 0.9 + 0.32 * max(ka, kb)
    fig = Figure(figsize=((side + 1.4) * len(panels) + 1.0, side + 1.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    im = None
    for ax, cm in zip(axes, panels, strict=True):
        M, ra, rb = _ordered(cm)
        im = ax.imshow(M, cmap="magma", vmin=0.0, vmax=1.0)
        ax.set_yticks(range(len(ra)), [literal(_tick(i, cm.pairs, "attribute_a", "a")) for i in ra], fontsize=7)
        ax.set_xticks(range(len(rb)), [literal(_tick(j, cm.pairs, "attribute_b", "b")) for j in rb],
                      rotation=60, ha="right", fontsize=7)
        for d in range(min(M.shape)):
            ax.text(d, d, f"{M[d, d]:.2f}", ha="center", va="center", fontsize=6,
                    color="black" if M[d, d] > 0.6 else "white")
        s = cm.summary
        ax.set_title(f"{cm.method}: top-{s.get('top')} mean |r| {s.get('top_mean', float('nan')):.2f}", fontsize=9)
        ax.set_ylabel("run A", fontsize=8)
        ax.set_xlabel("run B", fontsize=8)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="|r| on the shared rows")
    n = result.rows.get("n_shared")
    fig.suptitle(literal(title) if title else f"components matched across runs ({n} shared rows)", fontsize=10)
    return fig
