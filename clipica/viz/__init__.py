"""Figures (matplotlib, imported lazily) and the notebook widget.

Every plotting function returns a ``matplotlib.figure.Figure`` and never
calls ``show``. Names resolve on first access (PEP 562) so ``import
clipica.viz`` stays light; add a figure by adding a line to ``_LAZY``.
"""

from __future__ import annotations

from typing import Any

from clipica._lazy import lazy_exports

# public name -> module that defines it
_LAZY = {
    # interventions (clipica.viz.traversal)
    "plot_image_grid": "clipica.viz.traversal",
    "plot_attribute_response": "clipica.viz.traversal",
    "plot_text_response": "clipica.viz.traversal",
    "plot_intervention": "clipica.viz.traversal",
    # report (clipica.viz.report_figures)
    "plot_auc_comparison": "clipica.viz.report_figures",
    # probes (clipica.viz.probe)
    "plot_probe_heatmap": "clipica.viz.probe",
    # stability (clipica.viz.stability)
    "plot_stability_vs_k": "clipica.viz.stability",
    "plot_component_stability": "clipica.viz.stability",
    # few-shot probes (clipica.viz.fewshot)
    "plot_fewshot": "clipica.viz.fewshot",
    # components matched across runs (clipica.viz.match)
    "plot_match": "clipica.viz.match",
    # identifiability simulations (clipica.viz.simulate)
    "plot_block_recovery": "clipica.viz.simulate",
    "plot_ica_recovery": "clipica.viz.simulate",
    # notebook widget (ipywidgets imported when the viewer is built)
    "TraversalViewer": "clipica.viz.widget",
}

__all__ = sorted([*_LAZY, "literal"])


def literal(text: Any) -> str:
    """``text`` as matplotlib must draw it: dollar signs escaped, so a label such as
    ``$\\undefined$`` (a dataset's column name, a prompt) is shown as written instead of
    being parsed as mathtext, which fails on unknown commands."""
    return str(text).replace("$", r"\$")


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
