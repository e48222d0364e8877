"""The identifiability simulations drawn: what each block's R² is, and what ICA adds.

Both take the frame :func:`clipica.simulate.run_experiment` returns (one row per setting and
seed, score columns ``r2_{linear,nonlinear}_{block}``, ``mcc_before_ica``, ``mcc_after_ica``)
and draw the mean over seeds per setting, with the seeds' spread (± std) when there are several.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clipica.viz import literal

#: latent blocks of the multimodal experiment, in the order drawn, with their colours
_BLOCKS = (("content", "#1f77b4"), ("style", "#ff7f0e"), ("style_tilde", "#ffbb78"), ("m1", "#2ca02c"),
           ("m2", "#98df8a"))


def _mean_std(df, column: str, settings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over seeds of ``column`` per setting (NaN where absent; std 0 for one seed)."""
    mean, std = np.full(len(settings), np.nan), np.zeros(len(settings))
    if column not in df.columns:
        return mean, std
    for i, s in enumerate(settings):
        v = np.asarray(df.loc[df["setting"] == s, column], dtype=float)
        v = v[np.isfinite(v)]
        if v.size:
            mean[i], std[i] = v.mean(), (v.std(ddof=1) if v.size > 1 else 0.0)
    return mean, std


def _bars(ax, settings: list[str], series: list[tuple[str, str, np.ndarray, np.ndarray]]) -> None:
    """Grouped bars: one group per setting, one bar per ``(label, colour, mean, std)``."""
    x = np.arange(len(settings))
    width = 0.8 / max(len(series), 1)
    for j, (label, colour, mean, std) in enumerate(series):
        ax.bar(x + (j - (len(series) - 1) / 2) * width, np.nan_to_num(mean), width, yerr=std,
               label=literal(label), color=colour, capsize=2)
    ax.set_xticks(x)
    ax.set_xticklabels([literal(s) for s in settings], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)


def plot_block_recovery(df, *, kind: str = "nonlinear", figsize=None) -> Any:
    """Figure: per setting of the ``multimodal`` experiment, the R² with which each latent block
    (content, style, the modality-specific m1, m2) is predicted from the learned representation.

    ``df``: ``run_experiment("multimodal", ...)``'s frame. ``kind``: ``"nonlinear"`` (kernel
    ridge, what block-identifiability is about) or ``"linear"``. The theory: content near 1,
    style and m1, m2 near 0. Returns the matplotlib Figure (never shown).
    """
    from matplotlib.figure import Figure

    settings = list(dict.fromkeys(df["setting"]))
    series = []
    for block, colour in _BLOCKS:
        mean, std = _mean_std(df, f"r2_{kind}_{block}", settings)
        if np.isfinite(mean).any():
            series.append((block, colour, mean, std))
    fig = Figure(figsize=figsize or (max(4.0, 1.3 * len(settings) + 2.5), 3.4))
    ax = fig.subplots()
    _bars(ax, settings, series)
    ax.set_ylabel(f"{kind} R² from the representation")
    n_seeds = df["seed"].nunique() if "seed" in df.columns else 1
    ax.set_title(f"multimodal: content kept, style and modality-specific latents discarded "
                 f"({n_seeds} seed{'s' if n_seeds != 1 else ''})", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def plot_ica_recovery(df, *, figsize=None) -> Any:
    """Figure: per setting of the ``partial-causal`` experiment, the MCC of the representation with
    the coupled latents before and after a linear ICA (and, when present, the linear R² of the
    coupled latents, which says a linear map suffices).

    ``df``: ``run_experiment("partial-causal", ...)``'s frame. The theory: on the sphere low
    before and high after; in a convex body high already before. Returns the Figure.
    """
    from matplotlib.figure import Figure

    settings = list(dict.fromkeys(df["setting"]))
    series = []
    for column, label, colour in (("mcc_before_ica", "MCC before ICA", "#bbbbbb"),
                                  ("mcc_after_ica", "MCC after ICA", "#d62728"),
                                  ("r2_linear_coupled", "linear R², coupled latents", "#1f77b4")):
        mean, std = _mean_std(df, column, settings)
        if np.isfinite(mean).any():
            series.append((label, colour, mean, std))
    fig = Figure(figsize=figsize or (max(4.0, 1.3 * len(settings) + 2.5), 3.4))
    ax = fig.subplots()
    _bars(ax, settings, series)
    ax.set_ylabel("score against the true latents")
    n_seeds = df["seed"].nunique() if "seed" in df.columns else 1
    ax.set_title(f"partial-causal: recovery before and after ICA "
                 f"({n_seeds} seed{'s' if n_seeds != 1 else ''})", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig
