"""Figures the report needs that no other module draws. matplotlib is imported inside.

Each function returns a matplotlib Figure and never calls ``plt.show``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def sweep_table(sweep: Any) -> dict[str, list[float]]:
    """Columns ``k``, ``stability_mean`` and (when present) ``explained_variance``.

    Accepts a dict of lists (``{"k": [...], "stability_mean": [...]}``), a list of
    per-K records (``[{"k": 8, "stability_mean": 0.97, ...}, ...]``), an object with a
    ``records``/``per_k`` attribute or a pandas DataFrame with those columns.
    """
    if hasattr(sweep, "to_dict") and hasattr(sweep, "columns"):  # DataFrame
        sweep = sweep.to_dict(orient="list")
    for attr in ("per_k", "records", "results"):
        if not isinstance(sweep, Mapping | Sequence) and hasattr(sweep, attr):
            sweep = getattr(sweep, attr)
        elif isinstance(sweep, Mapping) and attr in sweep and "k" not in sweep:
            sweep = sweep[attr]
    if isinstance(sweep, Mapping):
        cols = {key: list(sweep[key]) for key in ("k", "stability_mean", "explained_variance") if key in sweep}
        if "stability_mean" not in cols and "stability" in sweep:
            cols["stability_mean"] = list(sweep["stability"])
    else:
        recs = [dict(r) if isinstance(r, Mapping) else vars(r) for r in sweep]
        cols = {"k": [r["k"] for r in recs]}
        cols["stability_mean"] = [r.get("stability_mean", r.get("stability")) for r in recs]
        if all("explained_variance" in r for r in recs):
            cols["explained_variance"] = [r["explained_variance"] for r in recs]
    if "k" not in cols or "stability_mean" not in cols:
        raise ValueError("a stability sweep needs 'k' and 'stability_mean' for each K")
    return cols


def plot_stability_sweep(sweep: Any, chosen_k: int | None = None):
    """Mean component stability (left axis) and explained variance (right axis) against K.

    Parameters
    ----------
    sweep : dict, list of records or DataFrame
        See :func:`sweep_table`. ``explained_variance`` is the fraction of the total
        variance the K-dimensional whitening subspace keeps, in [0, 1].
    chosen_k : int, optional
        Marked with a vertical line; defaults to ``sweep["chosen_k"]`` when present.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    cols = sweep_table(sweep)
    if chosen_k is None and isinstance(sweep, Mapping):
        chosen_k = sweep.get("chosen_k")
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.add_subplot(111)
    ax.plot(cols["k"], cols["stability_mean"], "o-", color="#1f5fbf", label="mean stability")
    ax.set_xlabel("number of components K")
    ax.set_ylabel("mean stability index", color="#1f5fbf")
    ax.set_ylim(0, 1.05)
    ax.set_xscale("log", base=2)
    ax.set_xticks(cols["k"])
    ax.set_xticklabels([str(k) for k in cols["k"]])
    ax.grid(alpha=0.3)
    if "explained_variance" in cols and all(v is not None for v in cols["explained_variance"]):
        ax2 = ax.twinx()
        ax2.plot(cols["k"], cols["explained_variance"], "s--", color="#c0612b", label="explained variance")
        ax2.set_ylabel("explained variance", color="#c0612b")
        ax2.set_ylim(0, 1.05)
    if chosen_k is not None:
        ax.axvline(chosen_k, color="#333", lw=1, ls=":")
        ax.annotate(f"K = {chosen_k}", (chosen_k, 0.05), xytext=(4, 0), textcoords="offset points")
    fig.tight_layout()
    return fig


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
        ax.bar(x + (j - (len(cols) - 1) / 2) * width, vals, width, label=c.replace("_", " "),
               color=colors.get(c))
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=40, ha="right", fontsize=8)
    ax.set_ylim(0.5, 1.0)
    ax.set_ylabel("best single-code ROC AUC")
    ax.legend(fontsize=8, ncol=len(cols), loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
