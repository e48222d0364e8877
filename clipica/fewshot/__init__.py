"""Few-shot probes with and without ICA under domain shift (Liu et al. 2024), and the zero-shot line.

:func:`run_fewshot` runs the protocol on arrays (one setting); :func:`fewshot_from_stores`
on embedding stores (every setting); results are :class:`FewShotResult` and
:class:`FewShotRuns` (``clipica.fewshot/2``). The protocol is documented in
:mod:`clipica.fewshot.protocol`.
"""

from clipica.fewshot.protocol import (
    N_SEEDS,
    QUICK_SEEDS,
    QUICK_SHOTS,
    QUICK_VAL_SHOTS,
    SHOTS,
    VAL_SHOTS,
    run_fewshot,
)
from clipica.fewshot.result import FORMAT, IN_DOMAIN, FewShotResult, FewShotRuns
from clipica.fewshot.sampling import class_codes, masked_accuracy, sample_fewshot
from clipica.fewshot.search import BISECTION_STEPS, C_GRID, SOLVER_TOL, search_c
from clipica.fewshot.solver import PENALTIES, fit_logistic_batch
from clipica.fewshot.stores import (
    DEFAULT_LABEL,
    DEFAULT_SETTINGS,
    DEFAULT_VARIANTS,
    fewshot_from_stores,
)
from clipica.fewshot.variants import DIMS_RULE, FIT_ON, VARIANTS, fit_variant, variant_dims

__all__ = [
    "BISECTION_STEPS", "C_GRID", "DEFAULT_LABEL", "DEFAULT_SETTINGS", "DEFAULT_VARIANTS", "DIMS_RULE", "FIT_ON",
    "FORMAT", "IN_DOMAIN", "N_SEEDS", "PENALTIES", "QUICK_SEEDS", "QUICK_SHOTS", "QUICK_VAL_SHOTS", "SHOTS",
    "SOLVER_TOL", "VAL_SHOTS", "VARIANTS", "FewShotResult", "FewShotRuns", "class_codes", "fewshot_from_stores",
    "fit_logistic_batch", "fit_variant", "masked_accuracy", "run_fewshot", "sample_fewshot", "search_c",
    "variant_dims",
]
