"""Probe heatmap: attributes x components, reordered so matched pairs form a diagonal."""

from __future__ import annotations

from typing import Any

import numpy as np

from clipica.viz import literal


def diagonal_order(strength: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column orders that put a one-to-one best matching on the diagonal.

    Parameters
    ----------
    strength : ndarray of shape (n_rows, n_cols)
        Non-negative association (e.g. ``|AUC - 0.5|``), rows = attributes, cols = components.

    Returns
    -------
    rows, cols : integer arrays (permutations of range(n_rows) and range(n_cols))
        The Hungarian matching (maximum total strength) is sorted by matched strength,
        strongest first, and placed on the diagonal; unmatched rows follow (by their
        best strength), then unmatched columns (by their best strength).
    """
    from scipy.optimize import linear_sum_assignment

    s = np.nan_to_num(np.asarray(strength, dtype=np.float64), nan=0.0)
    r, c = linear_sum_assignment(s, maximize=True)
    order = np.argsort(-s[r, c], kind="stable")
    r, c = r[order], c[order]
    rest_r = np.setdiff1d(np.arange(s.shape[0]), r)
    rest_c = np.setdiff1d(np.arange(s.shape[1]), c)
    rest_r = rest_r[np.argsort(-s[rest_r].max(axis=1, initial=0.0), kind="stable")]
    rest_c = rest_c[np.argsort(-s[:, rest_c].max(axis=0, initial=0.0), kind="stable")]
    return np.concatenate([r, rest_r]).astype(int), np.concatenate([c, rest_c]).astype(int)


def plot_probe_heatmap(
    report: Any,
    codes: str | None = None,
    *,
    max_components: int | None = None,
    annotate: bool | None = None,
    title: str | None = None,
    cmap: str = "RdBu_r",
    blocks: list[list[int]] | None = None,
):
    """Heatmap of signed single-component AUC, attributes (rows) x components (columns).

    Cell colour is ``2 * (AUC - 0.5)`` in [-1, 1]: red = attribute at the component's
    positive pole, blue = negative pole, white = no separation. Rows and columns are
    reordered with :func:`diagonal_order` so each attribute's matched component sits on
    the diagonal. Columns are labelled with the original component index.

    Parameters
    ----------
    report : clipica.probes.ProbeReport
    codes : str, optional
        Which code set to draw (default: the report's main one, usually ``"ica"``).
    max_components : int, optional
        Keep only the first this many columns after reordering (matched ones first).
    annotate : bool, optional
        Print AUC values in the cells (default: when there are at most 400 cells).
    blocks : list of list of int, optional
        The decomposition's ``blocks_``: the members of each block of more than one
        component are drawn side by side inside a black frame (a block is one unit: its
        components carry one factor together).

    Returns
    -------
    matplotlib.figure.Figure
    """
    # a bare Figure (no pyplot): works headless and never opens a window
    from matplotlib.figure import Figure

    name = codes or report.main
    r = report.codes[name]
    if not report.attributes:
        raise ValueError("the report has no binary attributes to draw")
    signed = 2.0 * (np.asarray(r.auc, dtype=np.float64).T - 0.5)  # (A, K)
    rows, cols = diagonal_order(np.abs(signed))
    multi = [sorted(int(k) for k in b) for b in (blocks or []) if len(b) > 1]
    if multi:
        cols = _group_blocks(cols, multi)
    if max_components is not None:
        cols = cols[:max_components]
    M = signed[np.ix_(rows, cols)]
    n_a, n_k = M.shape
    if annotate is None:
        annotate = n_a * n_k <= 400
    fig = Figure(
        figsize=(min(2.5 + 0.38 * n_k, 30), min(1.2 + 0.3 * n_a, 24)), layout="constrained"
    )
    ax = fig.add_subplot()
    im = ax.imshow(
        np.nan_to_num(M), cmap=cmap, vmin=-1, vmax=1, aspect="auto", interpolation="nearest"
    )
    ax.set_yticks(range(n_a), [literal(report.attributes[i]) for i in rows], fontsize=8)  # names as written
    ax.set_xticks(range(n_k), [str(c) for c in cols], fontsize=7, rotation=90)
    ax.set_xlabel(literal(f"{name} component (reordered; label = component index)"))
    ax.set_ylabel("attribute")
    if annotate:
        # the folded AUC, max(AUC, 1 - AUC), as the probe table prints it; the colour keeps the pole
        auc = 0.5 + np.abs(M) / 2
        for i in range(n_a):
            for j in range(n_k):
                if abs(M[i, j]) >= 0.2:
                    ax.text(
                        j,
                        i,
                        f"{auc[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if abs(M[i, j]) > 0.6 else "black",
                    )
    for b in multi:
        pos = [j for j, c in enumerate(cols) if c in b]
        if pos:
            from matplotlib.patches import Rectangle

            ax.add_patch(Rectangle((min(pos) - 0.5, -0.5), len(pos), n_a, fill=False, lw=2.0,
                                   edgecolor="black"))
            ax.text((min(pos) + max(pos)) / 2, -0.7, "block", ha="center", va="bottom", fontsize=7)
    cb = fig.colorbar(im, ax=ax, shrink=0.8)
    cb.set_label("2 (AUC - 0.5): + pole red, - pole blue")
    ax.set_title(literal(title or f"single-component AUC, {name} (K={r.n_components})"), fontsize=10)
    return fig


def _group_blocks(cols: np.ndarray, blocks: list[list[int]]) -> np.ndarray:
    """``cols`` reordered so each block's members sit together where its first member was."""
    out: list[int] = []
    seen: set[int] = set()
    for c in cols:
        c = int(c)
        if c in seen:
            continue
        block = next((b for b in blocks if c in b), [c])
        members = [m for m in cols if int(m) in block]  # in their diagonal order
        out.extend(int(m) for m in members)
        seen.update(int(m) for m in members)
    return np.asarray(out, dtype=int)
