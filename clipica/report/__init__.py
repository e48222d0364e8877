"""The HTML report of a run folder, built from typed results only (never from live objects).

- :mod:`clipica.report.build`: :func:`build_report` (one self-contained ``report.html``; it
  embeds only files inside its run folder);
- :mod:`clipica.report.text`: the headline, the factor tables' sentences, the glossary;
- :mod:`clipica.report.sections`: naming, stability, traversals, compare sections;
- :mod:`clipica.report.fewshot`: the few-shot section;
- :mod:`clipica.report.html`: escaping, number formats, embedded images.
"""

from __future__ import annotations

from clipica._lazy import lazy_exports

_LAZY = {
    "build_report": "clipica.report.build",
    "probe_attributes": "clipica.report.build",
    "naming_poles": "clipica.report.sections",
    "naming_threshold": "clipica.report.sections",
    "sweep_columns": "clipica.report.sections",
    "short_phrase": "clipica.report.html",
    "carried_by": "clipica.report.html",
    "folded_auc": "clipica.report.html",
    "section_fewshot": "clipica.report.fewshot",
}
__all__ = list(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
