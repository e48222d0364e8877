"""Figures the report needs that no other module draws. matplotlib is imported inside.

Each function returns a matplotlib Figure and never calls ``plt.show``. (The stability
sweep figure is :func:`clipica.viz.stability.plot_stability_vs_k`, the heatmap
:func:`clipica.viz.probe.plot_probe_heatmap`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clipica.viz import literal


def plot_auc_comparison(rows: Mapping[str, Mapping[str, Any]], columns=("ica", "pca", "raw")):
    """Grouped bars: best single-code AUC per attribute for ICA and each baseline.

    ``rows`` is :func:`clipica.report.probe_attributes` output (folded AUCs).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import numpy as np
    from matplotlib.figure import Figure

    names = list(rows)
    cols = [c for c in columns if any(rows[n].get(c) is not None for n in names)]
    fig = Figure(figsize=(max(6.0, 0.55 * len(names) + 2), 3.4))
    ax = fig.add_subplot(111)
    width = 0.8 / max(len(cols), 1)
    x = np.arange(len(names))
    colors = {"ica": "#1f5fbf", "pca": "#c0612b", "raw": "#7a7f87", "random_rotation": "#b5a33a"}
    for j, c in enumerate(cols):
        vals = [rows[n].get(c) if rows[n].get(c) is not None else np.nan for n in names]
        ax.bar(x + (j - (len(cols) - 1) / 2) * width, vals, width, label=literal(c.replace("_", " ")),
               color=colors.get(c))
    ax.set_xticks(x)
    ax.set_xticklabels([literal(n) for n in names], rotation=40, ha="right", fontsize=8)  # names as written
    ax.set_ylim(0.5, 1.0)
    ax.set_ylabel("best single-code ROC AUC")
    ax.legend(fontsize=8, ncol=len(cols), loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
