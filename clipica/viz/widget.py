"""Notebook viewer: pick a component, move the slider, watch the images and probes respond.

>>> from clipica.viz import TraversalViewer
>>> viewer = TraversalViewer(store, ica, rows=4, decoder=decoder)
>>> viewer            # in Jupyter: component selector + alpha slider, live

ipywidgets is imported only when the widget is built (``viewer.widget`` or
display); :meth:`TraversalViewer.state` computes the same numbers without any
front-end, for scripts and tests.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from clipica.errors import DependencyError, InputError
from clipica.viz import literal


class TraversalViewer:
    """Live traversal of one ICA component at a time.

    Parameters
    ----------
    store : EmbeddingStore the ICA was fitted on (images are reloaded from its source).
    ica : fitted ICA.
    rows : int (that many random rows, drawn with ``seed``) or explicit store row indices.
    decoder : a :class:`clipica.intervene.decoder.ComponentDecoder`, the ICA directory it
        was saved in (by ``clipica intervene`` or :func:`clipica.intervene.decoder.load_or_train`),
        or None (no decoded row).
    probes : fitted :class:`clipica.intervene.AttributeProbes`; fitted on the store
        when None and the store has binary labels.
    alpha_range : (lo, hi) of the slider, in component standard deviations.
    image_size : pixels per thumbnail.
    """

    def __init__(
        self,
        store: Any,
        ica: Any,
        rows: Any = 4,
        *,
        decoder: Any = None,
        probes: Any = None,
        alpha_range: tuple[float, float] = (-3.0, 3.0),
        alpha_step: float = 0.25,
        seed: int = 0,
        image_size: int = 64,
    ) -> None:
        from clipica.intervene import binary_attributes, component_stats, fit_attribute_probes
        from clipica.intervene.run import sample_rows

        self.store = store
        self.ica = ica
        if decoder is not None and not hasattr(decoder, "decode"):
            from clipica.intervene.decoder import ComponentDecoder, ica_fingerprint

            decoder = ComponentDecoder.load(decoder)
            if decoder.ica_fingerprint_ not in (None, ica_fingerprint(ica)):
                raise InputError("the decoder in that directory was trained for a different ICA; retrain it")
        self.decoder = decoder
        self.image_size = int(image_size)
        self.alpha_range = (float(alpha_range[0]), float(alpha_range[1]))
        if not self.alpha_range[0] < self.alpha_range[1]:
            raise InputError(f"alpha_range must be (lo, hi) with lo < hi, got {alpha_range}")
        self.alpha_step = float(alpha_step)
        self.n_components = int(np.asarray(ica.components_).shape[0])
        X = store.image
        if np.isscalar(rows):
            self.rows = sample_rows(store, int(rows), seed)
        else:
            self.rows = np.asarray(rows, dtype=np.int64).reshape(-1)
            if self.rows.size == 0 or self.rows.min() < 0 or self.rows.max() >= len(X):
                raise InputError(f"row indices must lie in [0, {len(X)}), got {self.rows.tolist()}")
        self._X_rows = np.asarray(X[self.rows])
        self.source_mean_, self.source_std_ = component_stats(ica, X)
        if probes is None:
            usable = binary_attributes(store.rows, store.label_columns)
            probes = fit_attribute_probes(X, store.rows, usable, seed=seed) if usable else None
        self.probes = probes
        self._images: dict[int, np.ndarray] = {}
        self._widget = None

    # -- numbers -----------------------------------------------------------
    def state(self, component: int, alpha: float) -> dict:
        """Everything the viewer shows for ``component`` shifted by ``alpha`` std.

        Returns a dict: ``component``, ``alpha``, ``rows`` (N,), ``decoded``
        (N, H, W, 3) in [0, 1] or None, ``neighbours`` (N,) store rows nearest to
        each edited embedding (source row excluded), ``neighbour_images``
        (N, H, W, 3), ``source_images`` (N, H, W, 3) and ``probabilities``
        {attribute: mean probe probability} (empty without probes).
        """
        from clipica.intervene import edit_components, retrieve_neighbours

        tr = edit_components(
            self._X_rows,
            self.ica,
            component,
            [float(alpha)],
            sigma=float(self.source_std_[component]),
            center=float(self.source_mean_[component]),
            rows=self.rows,
        )
        idx, sim = retrieve_neighbours(tr.embeddings[0], self.store.image, k=1, exclude=self.rows)
        out = {
            "component": int(component),
            "alpha": float(alpha),
            "rows": self.rows,
            "decoded": self.decoder.decode(tr.sources[0]) if self.decoder is not None else None,
            "neighbours": idx[:, 0],
            "similarity": sim[:, 0],
            "neighbour_images": self._load(idx[:, 0]),
            "source_images": self._load(self.rows),
            "probabilities": {},
        }
        if self.probes is not None:
            p = self.probes.proba(tr.embeddings[0]).mean(0)
            out["probabilities"] = {
                a: float(v) for a, v in zip(self.probes.attributes, p, strict=True)
            }
        return out

    def _load(self, indices: Any) -> np.ndarray:
        from clipica.intervene.retrieval import load_images

        idx = [int(i) for i in np.asarray(indices).reshape(-1)]
        missing = sorted({i for i in idx if i not in self._images})
        if missing:
            arr = load_images(self.store, missing, self.image_size)
            self._images.update(zip(missing, arr, strict=True))
        return np.stack([self._images[i] for i in idx])

    # -- picture -----------------------------------------------------------
    def figure(self, component: int, alpha: float) -> Any:
        """A matplotlib Figure of :meth:`state`: source / decoded / nearest rows, probe bars."""
        from matplotlib.figure import Figure

        st = self.state(component, alpha)
        strips = [("source", st["source_images"])]
        if st["decoded"] is not None:
            strips.append(("decoded", st["decoded"]))
        strips.append(("nearest", st["neighbour_images"]))
        N = len(self.rows)
        has_bars = bool(st["probabilities"])
        fig = Figure(
            figsize=(1.1 * N + (3.6 if has_bars else 0) + 0.6, 1.1 * len(strips) + 0.5),
            layout="constrained",
        )
        gs = fig.add_gridspec(len(strips), N + (3 if has_bars else 0))
        for r, (label, imgs) in enumerate(strips):
            for c in range(N):
                ax = fig.add_subplot(gs[r, c])
                ax.imshow(imgs[c], vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel(literal(label), fontsize=8)
        if has_bars:
            ax = fig.add_subplot(gs[:, N:])
            names = list(st["probabilities"])
            vals = [st["probabilities"][n] for n in names]
            ax.barh(range(len(names)), vals, color="tab:blue")
            ax.set_yticks(range(len(names)), [literal(n) for n in names], fontsize=7)
            ax.set_xlim(0, 1)
            ax.invert_yaxis()
            ax.set_xlabel("probe probability", fontsize=8)
        fig.suptitle(f"component {component}, α = {alpha:+.2f} σ", fontsize=9)
        return fig

    def _png(self, component: int, alpha: float) -> bytes:
        buf = io.BytesIO()
        self.figure(component, alpha).savefig(buf, format="png", dpi=90)
        return buf.getvalue()

    # -- widget ------------------------------------------------------------
    @property
    def widget(self) -> Any:
        """The ipywidgets box (built on first access)."""
        if self._widget is None:
            self._widget = self._build()
        return self._widget

    def _build(self) -> Any:
        try:
            import ipywidgets as w
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise DependencyError(
                "the notebook viewer needs ipywidgets: pip install 'clipica[widgets]' (or ipywidgets>=8)"
            ) from exc
        comp = w.Dropdown(
            options=[(f"component {k}", k) for k in range(self.n_components)],
            value=0,
            description="component",
        )
        alpha = w.FloatSlider(
            value=0.0,
            min=self.alpha_range[0],
            max=self.alpha_range[1],
            step=self.alpha_step,
            description="α (σ)",
            continuous_update=False,
        )
        image = w.Image(format="png")

        def refresh(_: Any = None) -> None:
            image.value = self._png(comp.value, alpha.value)

        comp.observe(refresh, names="value")
        alpha.observe(refresh, names="value")
        refresh()
        self.component_widget, self.alpha_widget, self.image_widget = comp, alpha, image
        return w.VBox([w.HBox([comp, alpha]), image])

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a notebook front-end
        from IPython.display import display

        display(self.widget)
