"""Accuracy vs shots per variant: one row of panels per setting (in-domain, shift average), zero-shot as a flat line."""

from __future__ import annotations

from typing import Any

import numpy as np

from clipica.viz import literal

_STYLE = {"linear": ("#444444", "o"), "ica": ("#d62728", "s"), "pca+ica": ("#1f77b4", "^"), "pca": ("#2ca02c", "v"),
          "topm": ("#ff7f0e", "D"), "topm-pca": ("#8c564b", "d"), "zeroshot-init": ("#9467bd", "P")}


def plot_fewshot(result, *, panels: tuple[str, ...] | None = None, figsize=None) -> Any:
    """Figure: accuracy (%) vs shots per class, one line per variant, mean ± std over seeds.

    ``result``: a :class:`clipica.fewshot.FewShotResult` (one row of panels) or
    :class:`clipica.fewshot.FewShotRuns` (one row per setting). ``panels``: test-set names
    (default: ``in-domain`` and, when there are shifted sets, ``shift average``). The
    zero-shot accuracy, when known, is a dashed horizontal line. Returns the matplotlib
    Figure (never shown).
    """
    # a bare Figure (not pyplot's): nothing global to close, and Jupyter shows it once
    from matplotlib.figure import Figure

    results = list(getattr(result, "results", [result]))
    first = results[0]
    if panels is None:
        panels = (first.test_sets[0],) + (("shift average",) if first.shift_sets else ())
    fig = Figure(figsize=figsize or (4.2 * len(panels), 3.2 * len(results) + 0.4))
    axes = fig.subplots(len(results), len(panels), squeeze=False)
    for row, res in zip(axes, results, strict=True):
        for ax, panel in zip(row, panels, strict=False):
            _panel(ax, res, panel)
        row[0].set_ylabel(f"accuracy (%), {len(res.classes)} classes\n{res.penalty.upper()}, fit on {res.fit_on}",
                          fontsize=8)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"few-shot probes, mean ± std over {len(first.seeds)} seeds", fontsize=10)
    fig.tight_layout()
    return fig


def _panel(ax, res, panel: str) -> None:
    shots = np.asarray(res.shots)
    acc = res.shift_average() if panel == "shift average" else res.accuracy[..., res.test_sets.index(panel)]
    for v, name in enumerate(res.variants):
        colour, marker = _STYLE.get(name, (None, "o"))
        mean = 100 * np.nanmean(acc[:, :, v], axis=0)
        std = 100 * np.nanstd(acc[:, :, v], axis=0, ddof=1 if acc.shape[0] > 1 else 0)
        ax.errorbar(shots, mean, yerr=std, label=name, color=colour, marker=marker, capsize=3, lw=1.3, ms=4)
    zs = res.zeroshot_with_shift().get(panel)
    if zs is not None:
        ax.axhline(100 * zs, color="black", ls="--", lw=1, label="zero-shot")
    ax.set_xscale("log", base=2)
    ax.set_xticks(shots)
    ax.set_xticklabels([str(s) for s in shots])
    ax.set_xlabel("shots per class")
    ax.set_title(literal(panel))  # a --shift NAME as written
    ax.grid(alpha=0.3)
