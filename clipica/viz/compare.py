"""Figures of a :class:`clipica.probes.compare.CompareResult`: scores per attribute, numbers per method."""

from __future__ import annotations

from typing import Any

import numpy as np

from clipica.viz import literal


def plot_compare_scores(result: Any, *, title: str | None = None):
    """Heatmap: methods (rows) x attributes (columns) of the per-attribute score.

    The score is the best single-code AUC for a binary attribute and the one-vs-rest AUC
    from the factor's block (or best m codes) for a categorical factor's columns; the
    last column is the mean. Returns the matplotlib Figure.
    """
    # a bare Figure (not pyplot's): nothing global to close, and Jupyter shows it once
    from matplotlib.figure import Figure

    names = list(result.methods)
    cols = list(result.attributes)
    M = np.array([[result.methods[n].attribute_score.get(c, np.nan) for c in cols] for n in names],
                 dtype=float)
    M = np.column_stack([M, [result.methods[n].attribute_score_mean for n in names]])
    labels = cols + ["mean"]
    fig = Figure(figsize=(1.0 + 0.62 * len(labels), 0.9 + 0.42 * len(names)))
    ax = fig.subplots()
    im = ax.imshow(M, cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(labels)), [literal(c) for c in labels], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=9)
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            if np.isfinite(M[i, j]):
                ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=6.5,
                        color="white" if M[i, j] < 0.8 else "black")
    ax.axvline(len(cols) - 0.5, color="white", lw=2)
    fig.colorbar(im, ax=ax, fraction=0.03, label="AUC")
    ax.set_title(literal(title) if title else f"per-attribute score (K = {result.k}; factors scored by block / m codes)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_compare_methods(result: Any, *, title: str | None = None):
    """Bars per method: mean score, reconstruction R², stability, fit time (log scale)."""
    # a bare Figure (not pyplot's): nothing global to close, and Jupyter shows it once
    from matplotlib.figure import Figure

    names = list(result.methods)
    panels = [
        ("mean per-attribute score", [result.methods[n].attribute_score_mean for n in names], None),
        ("reconstruction R²", [result.methods[n].r2 for n in names], (0, 1)),
        (f"stability ({len(result.seeds)} seeds)", [result.methods[n].stability for n in names], (0, 1)),
        ("fit time (s, first seed)", [result.methods[n].fit_seconds for n in names], "log"),
    ]
    fig = Figure(figsize=(3.2 * len(panels), 0.8 + 0.32 * len(names)))
    axes = fig.subplots(1, len(panels), sharey=True)
    for ax, (label, vals, lim) in zip(axes, panels, strict=True):
        v = np.array([np.nan if x is None else x for x in vals], dtype=float)
        ax.barh(range(len(names)), np.nan_to_num(v), color="tab:blue")
        ax.set_title(label, fontsize=9)
        if lim == "log":
            ax.set_xscale("log")
        elif lim is not None:
            ax.set_xlim(*lim)
        else:
            lo = np.nanmin(v) if np.isfinite(v).any() else 0.5
            ax.set_xlim(max(0.0, lo - 0.05), 1.0)
        for i, x in enumerate(v):
            if np.isfinite(x):
                ax.text(x, i, f" {x:.3g}", va="center", fontsize=7)
    axes[0].set_yticks(range(len(names)), names, fontsize=9)
    axes[0].invert_yaxis()
    fig.suptitle(literal(title or "decompositions on the same rows"), fontsize=10)
    fig.tight_layout()
    return fig
