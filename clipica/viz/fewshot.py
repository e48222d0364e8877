"""Accuracy vs shots per variant, one panel per test set (in-domain, shift average)."""

from __future__ import annotations

from typing import Any

import numpy as np

from clipica.viz import literal

_STYLE = {"linear": ("#444444", "o"), "ica": ("#d62728", "s"), "pca+ica": ("#1f77b4", "^"), "pca": ("#2ca02c", "v")}


def plot_fewshot(result, *, panels: tuple[str, ...] | None = None, figsize=None) -> Any:
    """Figure: accuracy (%) vs shots per class, one line per variant, mean ± std over seeds.

    ``result``: a :class:`clipica.fewshot.FewShotResult`. ``panels``: test-set names
    (default: ``in-domain`` and, when there are shifted sets, ``shift average``).
    Returns the matplotlib Figure (never shown).
    """
    # a bare Figure (not pyplot's): nothing global to close, and Jupyter shows it once
    from matplotlib.figure import Figure

    if panels is None:
        panels = (result.test_sets[0],) + (("shift average",) if result.shift_sets else ())
    fig = Figure(figsize=figsize or (4.2 * len(panels), 3.4))
    axes = fig.subplots(1, len(panels), squeeze=False)
    shots = np.asarray(result.shots)
    for ax, panel in zip(axes[0], panels, strict=False):
        if panel == "shift average":
            acc = result.shift_average()
        else:
            acc = result.accuracy[..., result.test_sets.index(panel)]
        for v, name in enumerate(result.variants):
            colour, marker = _STYLE.get(name, (None, "o"))
            mean = 100 * np.nanmean(acc[:, :, v], axis=0)
            std = 100 * np.nanstd(acc[:, :, v], axis=0, ddof=1 if acc.shape[0] > 1 else 0)
            ax.errorbar(shots, mean, yerr=std, label=name, color=colour, marker=marker, capsize=3, lw=1.5, ms=5)
        ax.set_xscale("log", base=2)
        ax.set_xticks(shots)
        ax.set_xticklabels([str(s) for s in shots])
        ax.set_xlabel("shots per class")
        ax.set_title(literal(panel))  # a --shift NAME as written
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"accuracy (%), {len(result.classes)} classes")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"few-shot probes, mean ± std over {len(result.seeds)} seeds", fontsize=10)
    fig.tight_layout()
    return fig
