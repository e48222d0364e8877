"""The stages of clipica, from a dataset to ``report.html``, each resumable and typed.

``run`` chains them (``clipica run``); every command of the command line is a thin call
to one stage here. Stages write typed results into a run folder
(:mod:`clipica.pipeline.artifacts`) and reuse the ones whose input fingerprints still match.
"""

from __future__ import annotations

from clipica.pipeline._log import StageLog
from clipica.pipeline.analyses import (
    attribute_selectivity,
    compute_probe,
    name_stage,
    naming_params,
    probe_params,
    probe_stage,
    selectivity_stage,
    traversal_params,
    traversal_stage,
)
from clipica.pipeline.fit import (
    chosen_k,
    compute_stability,
    extract_stage,
    fit_stage,
    ica_params,
    stability_params,
    stability_stage,
)
from clipica.pipeline.report import gather, render, report_stage
from clipica.pipeline.run import RunConfig, build_summary, run

__all__ = [
    "RunConfig", "StageLog", "attribute_selectivity", "build_summary", "chosen_k", "compute_probe",
    "compute_stability", "extract_stage", "fit_stage", "gather", "ica_params", "name_stage",
    "naming_params", "probe_params", "probe_stage", "render", "report_stage", "run",
    "selectivity_stage", "stability_params", "stability_stage", "traversal_params", "traversal_stage",
]
