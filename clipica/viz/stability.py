"""Figures for :mod:`clipica.decompositions.stability`: stability against K, and per-component stability.

matplotlib is imported inside the functions (Agg-safe); each returns the Figure and
never calls ``show``.
"""

from __future__ import annotations

from typing import Any


def _sweep_columns(sweep: Any) -> dict:
    import pandas as pd

    df = pd.DataFrame(sweep)
    if "k" not in df or "stability_mean" not in df:
        from clipica.errors import InputError

        raise InputError("a stability sweep needs columns 'k' and 'stability_mean' (see clipica.decompositions.stability.sweep_k).")
    return df.sort_values("k")


def plot_stability_vs_k(sweep: Any, chosen_k: int | None = None, threshold: float | None = 0.8, ax=None):
    """Stability index against K (mean, and min when present) with explained variance.

    Parameters
    ----------
    sweep : DataFrame from :func:`clipica.decompositions.stability.sweep_k`, or a dict of lists / list of
        records with ``k``, ``stability_mean`` and optionally ``stability_min``,
        ``explained_variance``.
    chosen_k : int, optional
        Marked with a vertical line.
    threshold : float or None
        A horizontal reference line (e.g. the ``stable_threshold`` of the sweep).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5.5, 3.6), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    df = _sweep_columns(sweep)
    blue, grey = "#1f5fbf", "#8a8a8a"
    ax.plot(df["k"], df["stability_mean"], "o-", color=blue, label="mean stability")
    if "stability_min" in df:
        ax.plot(df["k"], df["stability_min"], "v--", color=blue, alpha=0.6, label="min stability")
    if threshold is not None:
        ax.axhline(threshold, color=grey, lw=0.8, ls=":")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("number of components K")
    ax.set_ylabel("stability index (Icasso-style)", color=blue)
    if "explained_variance" in df:
        ax2 = ax.twinx()
        ax2.plot(df["k"], df["explained_variance"], "s-", color="#c0392b", alpha=0.8, label="explained variance")
        ax2.set_ylim(0, 1.05)
        ax2.set_ylabel("explained variance (fraction)", color="#c0392b")
    if chosen_k is not None:
        ax.axvline(chosen_k, color="k", lw=1, alpha=0.6)
        ax.annotate(f"K={chosen_k}", (chosen_k, 0.03), xytext=(3, 0), textcoords="offset points", fontsize=8)
    # one legend for both y-axes, below the axes: inside it covered the K line and low points
    handles = [h for a in fig.axes for h in a.get_lines() if not h.get_label().startswith("_")]
    fig.legend(handles, [h.get_label() for h in handles], loc="outside lower center", ncol=3,
               fontsize=8, frameon=False)
    ax.set_title("ICA stability across bootstrap runs")
    return fig


def plot_component_stability(result: Any, threshold: float | None = 0.8, ax=None):
    """Bar chart of each component's stability index (canonical order).

    ``result`` is a :class:`clipica.decompositions.stability.StabilityResult` or an array of indices.
    Returns the matplotlib Figure.
    """
    import numpy as np

    values = np.asarray(getattr(result, "stability", result), dtype=float)
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(max(4.0, 0.18 * len(values) + 1.5), 3.0), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    colors = ["#1f5fbf" if threshold is None or v >= threshold else "#c0392b" for v in values]
    ax.bar(np.arange(len(values)), values, color=colors)
    if threshold is not None:
        ax.axhline(threshold, color="#8a8a8a", lw=0.8, ls=":")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("component (canonical order)")
    ax.set_ylabel("stability index")
    return fig
