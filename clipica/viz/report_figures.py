"""Figures the report needs that no other module draws. matplotlib is imported inside.

Each function returns a matplotlib Figure and never calls ``plt.show``. (The stability
sweep figure is :func:`clipica.viz.stability.plot_stability_vs_k`, the heatmap
:func:`clipica.viz.probe.plot_probe_heatmap`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clipica.viz import literal

#: above this many attributes grouped bars are unreadable: a sorted dot plot instead
MANY_ATTRIBUTES = 15


def plot_auc_comparison(rows: Mapping[str, Mapping[str, Any]], columns=("ica", "pca", "raw")):
    """Best single-code AUC per attribute for ICA and each baseline.

    ``rows`` is :func:`clipica.report.build.probe_attributes` output (folded AUCs). Up to
    :data:`MANY_ATTRIBUTES` attributes: grouped bars; more: a dot plot, one line per
    attribute sorted by the ICA AUC (best at the top). The legend sits outside the axes.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import numpy as np
    from matplotlib.figure import Figure

    names = list(rows)
    cols = [c for c in columns if any(rows[n].get(c) is not None for n in names)]
    colors = {"ica": "#1f5fbf", "pca": "#c0612b", "raw": "#7a7f87", "random_rotation": "#b5a33a"}

    def values(c, order):
        return np.array([np.nan if rows[n].get(c) is None else rows[n][c] for n in order], dtype=float)

    if len(names) > MANY_ATTRIBUTES:
        lead = cols[0] if cols else None
        key = values(lead, names) if lead else np.zeros(len(names))
        order = [names[i] for i in np.argsort(np.nan_to_num(key, nan=-1.0))]  # ascending: best on top
        fig = Figure(figsize=(7.0, 0.9 + 0.22 * len(order)), layout="constrained")
        ax = fig.add_subplot(111)
        y = np.arange(len(order))
        markers = {"ica": "o", "pca": "s", "raw": "^", "random_rotation": "D"}
        for c in cols:
            ax.scatter(values(c, order), y, s=22 if c == "ica" else 14, marker=markers.get(c, "o"),
                       color=colors.get(c), label=literal(c.replace("_", " ")), zorder=3 if c == "ica" else 2)
        ax.set_yticks(y, [literal(n) for n in order], fontsize=7)  # names as written
        ax.set_ylim(-0.7, len(order) - 0.3)
        ax.set_xlim(0.49, 1.01)  # markers at 0.5 or 1.0 drawn whole, not cut by the frame
        ax.set_xlabel("best single-code ROC AUC (folded)")
        ax.grid(axis="x", alpha=0.3)
        ax.grid(axis="y", alpha=0.15)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return fig
    fig = Figure(figsize=(max(6.0, 0.55 * len(names) + 2) + 1.4, 3.4), layout="constrained")
    ax = fig.add_subplot(111)
    width = 0.8 / max(len(cols), 1)
    x = np.arange(len(names))
    for j, c in enumerate(cols):
        ax.bar(x + (j - (len(cols) - 1) / 2) * width, values(c, names), width,
               label=literal(c.replace("_", " ")), color=colors.get(c))
    ax.set_xticks(x)
    ax.set_xticklabels([literal(n) for n in names], rotation=40, ha="right", fontsize=8)  # names as written
    ax.set_ylim(0.5, 1.0)
    ax.set_ylabel("best single-code ROC AUC")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # off the bars
    ax.grid(axis="y", alpha=0.3)
    return fig
