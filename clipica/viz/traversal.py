"""Figures for interventions: image grids along a sweep and response curves.

matplotlib is imported inside each function (``import clipica`` stays light);
every function returns the Figure and never calls ``show``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clipica.viz import literal


def _fmt_alpha(a: float) -> str:
    return f"{a:+g}σ" if a != 0 else "0"


def mosaic(images: Any, sources: Any = None, gap: int = 2) -> np.ndarray:
    """(N, A, H, W, 3) images [+ (N, H, W, 3) sources as a first column] -> one RGB array
    (N*H + (N-1)*gap, C*W + (C-1)*gap, 3) with white gaps, C = A [+ 1].

    One image in one axes draws in a fraction of the time of N x C axes (an intervention's
    grids were most of its rendering time)."""
    images = np.asarray(images, dtype=np.float32)
    if sources is not None:
        images = np.concatenate([np.asarray(sources, dtype=np.float32)[:, None], images], axis=1)
    N, C, H, W = images.shape[:4]
    out = np.ones((N * H + (N - 1) * gap, C * W + (C - 1) * gap, 3), dtype=np.float32)
    for r in range(N):
        for c in range(C):
            out[r * (H + gap): r * (H + gap) + H, c * (W + gap): c * (W + gap) + W] = images[r, c]
    return np.clip(out, 0.0, 1.0)  # sigmoid/decoded pixels already lie in [0, 1]; float noise only


def _draw_grid(ax: Any, images: np.ndarray, alphas: Any, sources: Any, *, fontsize: int) -> None:
    """Draw the (N, A [+1]) grid into one axes: the mosaic, column labels on top."""
    gap = 2
    W = images.shape[3]
    labels = (["source"] if sources is not None else []) + [_fmt_alpha(float(a)) for a in alphas]
    ax.imshow(mosaic(images, sources, gap), interpolation="nearest")
    ax.set_xticks([c * (W + gap) + W / 2 - 0.5 for c in range(len(labels))], labels,
                  fontsize=fontsize)
    ax.xaxis.tick_top()
    ax.tick_params(length=0, pad=2)
    ax.set_yticks([])
    for sp in ax.spines.values():
        sp.set_visible(False)


def plot_image_grid(
    images: Any,
    alphas: Any,
    *,
    sources: Any = None,
    title: str | None = None,
    cell: float = 1.1,
) -> Any:
    """Grid of images: rows = source samples, columns = alpha steps.

    Parameters
    ----------
    images : array (N, A, H, W, 3) float in [0, 1].
    alphas : (A,) sweep values in units of the component's std (column titles).
    sources : optional array (N, H, W, 3) -- the unedited source images, drawn
        as an extra first column.
    """
    from matplotlib.figure import Figure

    images = np.asarray(images)
    if images.ndim != 5:
        raise ValueError(f"images must have shape (N, A, H, W, 3), got {images.shape}")
    N, A_ = images.shape[:2]
    extra = 1 if sources is not None else 0
    H, W = images.shape[2:4]
    width = cell * (A_ + extra) + 0.4
    # the height follows the mosaic's aspect, so the image fills the axes without bands
    img_h = (width - 0.2) * (N * H + (N - 1) * 2) / ((A_ + extra) * W + (A_ + extra - 1) * 2)
    top = 0.55 if title else 0.3  # inches above the mosaic: column labels (+ title)
    fig = Figure(figsize=(width, img_h + top + 0.05))
    ax = fig.add_axes((0.1 / width, 0.05 / (img_h + top + 0.05), (width - 0.2) / width,
                       img_h / (img_h + top + 0.05)))
    _draw_grid(ax, images, alphas, sources, fontsize=8)
    if title:
        fig.suptitle(literal(title), fontsize=9, y=1 - 0.05 / (img_h + top + 0.05), va="top")
    return fig


def plot_attribute_response(
    alphas: Any,
    proba: Any,
    attributes: list[str],
    *,
    target: str | None = None,
    top: int | None = 8,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Line plot of each attribute probe's mean probability along the sweep.

    proba : (A, n_attributes). With ``top``, only the ``top`` attributes whose
    probability moves most are drawn (the target always), the rest as faint lines.
    """
    fig, ax = _fig_ax(ax)
    proba = np.asarray(proba)
    alphas = np.asarray(alphas)
    span = np.abs(proba[-1] - proba[0])
    order = np.argsort(-span)
    named = set(order[: top if top else len(order)].tolist())
    if target in attributes:
        named.add(attributes.index(target))
    for j, name in enumerate(attributes):
        if j in named:
            lw = 2.5 if name == target else 1.3
            ax.plot(
                alphas,
                proba[:, j],
                marker="o",
                ms=3,
                lw=lw,
                label=literal(name + (" (target)" if name == target else "")),
            )
        else:
            ax.plot(alphas, proba[:, j], color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel("α (component standard deviations)")
    ax.set_ylabel("probe probability")
    ax.set_ylim(-0.02, 1.02)
    # outside the axes: a legend never covers the curves
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              ncol=2 if len(named) > 12 else 1)
    if title:
        ax.set_title(literal(title), fontsize=9)
    return fig


def plot_text_response(
    alphas: Any, proba: Any, names: list[str], *, title: str | None = None, ax: Any = None,
    target: str | None = None, n_controls: int = 3,
) -> Any:
    """Zero-shot P(positive prompt) along the sweep as a change from α = 0 (as selectivity
    reads a traversal): the ``target`` attribute's prompt pair(s) in bold, plus the
    ``n_controls`` other pairs that change most (so nothing that moves is hidden);
    the rest in grey. ``proba``: (A, P). The legend sits outside the axes."""
    fig, ax = _fig_ax(ax)
    alphas = np.asarray(alphas, dtype=float)
    proba = np.asarray(proba, dtype=float)
    delta = proba - proba[int(np.argmin(np.abs(alphas)))]  # change from the unedited embedding
    span = np.abs(delta).max(axis=0)
    targets = [j for j, n in enumerate(names) if target is not None and n == target]
    others = [int(j) for j in np.argsort(-span) if int(j) not in targets]
    shown = others[: n_controls if targets else n_controls + 1]
    for j in range(len(names)):
        if j not in targets and j not in shown:
            ax.plot(alphas, delta[:, j], color="0.82", lw=0.8, zorder=0)
    for j in targets:
        ax.plot(alphas, delta[:, j], marker="o", ms=3, lw=2.5, color="black",
                label=literal(f"{names[j]} (traversed)"))
    for j in shown:
        ax.plot(alphas, delta[:, j], marker="o", ms=3, lw=1.2,
                label=literal(f"{names[j]} (control)" if targets else names[j]))
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xlabel("α (component standard deviations)")
    ax.set_ylabel("change in P(positive prompt) from α = 0")
    ax.set_ylim(-1.02, 1.02)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        ax.set_title(literal(title), fontsize=9)
    return fig


def _fig_ax(ax: Any) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    return fig, fig.add_subplot()


def _grid_into(
    subfig: Any, images: np.ndarray, alphas: Any, title: str, sources: Any = None
) -> None:
    _draw_grid(subfig.add_subplot(), images, alphas, sources, fontsize=7)
    subfig.suptitle(literal(title), fontsize=9)


def plot_intervention(result: Any) -> Any:
    """One summary figure for a :class:`clipica.intervene.InterventionResult`:
    decoded grid (when present), retrieval grid, attribute and text responses."""
    from matplotlib.figure import Figure

    t = result.traversal
    grids = []
    if result.decoded is not None:
        grids.append((result.decoded.images, "decoded from the components"))
    if result.retrieval.images is not None:
        grids.append((result.retrieval.images, "nearest dataset image (source row excluded)"))
    curves = [c for c in (result.attributes, result.text) if c is not None]
    N = t.embeddings.shape[1]
    A_ = len(t.alphas)
    grid_h = 0.95 * N + 0.5
    height = grid_h * len(grids) + (3.4 if curves else 0) + 0.6
    width = max(0.95 * (A_ + 1) + 0.5, 5.0 * max(len(curves), 1))
    fig = Figure(figsize=(width, height), layout="constrained")
    ratios = [grid_h] * len(grids) + ([3.4] if curves else [])
    subs = fig.subfigures(len(ratios), 1, height_ratios=ratios, squeeze=False)[:, 0]
    for sf, (imgs, name) in zip(subs[: len(grids)], grids, strict=True):
        src = result.retrieval.sources if result.retrieval.sources is not None else None
        _grid_into(sf, imgs, t.alphas, name, sources=src)
    if curves:
        axes = subs[-1].subplots(1, len(curves), squeeze=False)[0]
        ci = 0
        if result.attributes is not None:
            a = result.attributes
            plot_attribute_response(
                a.alphas,
                a.proba,
                a.attributes,
                target=a.target,
                ax=axes[ci],
                title=f"probes: target {a.target}, selectivity {a.selectivity:.2f}",
            )
            ci += 1
        if result.text is not None:
            plot_text_response(
                result.text.alphas,
                result.text.proba,
                result.text.names,
                ax=axes[ci],
                title="zero-shot prompt pairs",
                target=result.attributes.target if result.attributes is not None else None,
            )
    fig.suptitle(
        f"component {t.component} swept in units of its std (σ = {t.sigma:.3g} source units)",
        fontsize=10,
    )
    return fig


def plot_block_grid(images: Any, alphas: Any, axes: Any, *, title: str | None = None,
                    cell: float = 1.0) -> Any:
    """A block traversal as a 2-D image grid: rows sweep component ``axes[0]``, columns ``axes[1]``.

    images : array (A, A, H, W, 3) in [0, 1] (e.g. the nearest store image of each cell of
    :class:`clipica.intervene.block_traversal.BlockTraversal` for one source row).
    """
    from matplotlib.figure import Figure

    images = np.asarray(images)
    if images.ndim != 5 or images.shape[0] != images.shape[1]:
        raise ValueError(f"images must have shape (A, A, H, W, 3), got {images.shape}")
    n = images.shape[0]
    fig = Figure(figsize=(cell * n + 0.8, cell * n + (0.7 if title else 0.45)))
    ax = fig.subplots(n, n, squeeze=False)
    for r in range(n):
        for c in range(n):
            a = ax[r, c]
            a.imshow(images[r, c], vmin=0, vmax=1, interpolation="nearest")
            a.set_xticks([])
            a.set_yticks([])
            if r == 0:
                a.set_title(f"c{axes[1]} {_fmt_alpha(float(alphas[c]))}", fontsize=7)
            if c == 0:
                a.set_ylabel(f"c{axes[0]} {_fmt_alpha(float(alphas[r]))}", fontsize=7)
    if title:
        fig.suptitle(literal(title), fontsize=9)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.02, top=(0.88 if title else 0.93),
                        wspace=0.05, hspace=0.05)
    return fig


def plot_views(result: Any) -> dict[str, Any]:
    """One figure per view of a :class:`clipica.intervene.InterventionResult` that has data:
    ``{"decoded", "retrieval", "attributes", "text"}`` -> Figure (the views it lacks are left out;
    the retrieval grid needs the loaded images)."""
    t = result.traversal
    c = t.component
    out: dict[str, Any] = {}
    if result.decoded is not None and result.decoded.images is not None:
        out["decoded"] = plot_image_grid(
            result.decoded.images, t.alphas, title=f"component {c}: decoded from the components"
        )
    r = result.retrieval
    if r is not None and r.images is not None:
        out["retrieval"] = plot_image_grid(
            r.images, t.alphas, sources=r.sources, title=f"component {c}: nearest dataset images"
        )
    if result.attributes is not None:
        a = result.attributes
        out["attributes"] = plot_attribute_response(
            a.alphas, a.proba, a.attributes, target=a.target, title=f"component {c}: attribute probes"
        )
    if result.text is not None:
        out["text"] = plot_text_response(
            result.text.alphas, result.text.proba, result.text.names,
            title=f"component {c}: zero-shot prompt pairs",
            target=result.attributes.target if result.attributes is not None else None,
        )
    return out
