"""Few-shot linear probes with and without ICA under domain shift (Liu et al. 2024).

:func:`run_fewshot` runs the protocol on arrays; :func:`fewshot_from_stores` on
embedding stores; both return a :class:`FewShotResult` (``clipica.fewshot/1``).
The protocol is documented in :mod:`clipica.fewshot.protocol`.
"""

from clipica.fewshot.protocol import (
    BISECTION_STEPS,
    C_GRID,
    DIMS_RULE,
    N_SEEDS,
    QUICK_SEEDS,
    QUICK_SHOTS,
    QUICK_VAL_SHOTS,
    SHOTS,
    VAL_SHOTS,
    VARIANTS,
    class_codes,
    fit_variant,
    masked_accuracy,
    run_fewshot,
    sample_fewshot,
    search_c,
    variant_dims,
)
from clipica.fewshot.result import FORMAT, IN_DOMAIN, FewShotResult
from clipica.fewshot.stores import DEFAULT_LABEL, fewshot_from_stores

__all__ = [
    "BISECTION_STEPS", "C_GRID", "DEFAULT_LABEL", "DIMS_RULE", "FORMAT", "IN_DOMAIN", "N_SEEDS",
    "QUICK_SEEDS", "QUICK_SHOTS", "QUICK_VAL_SHOTS", "SHOTS", "VAL_SHOTS", "VARIANTS",
    "FewShotResult", "class_codes", "fewshot_from_stores", "fit_variant", "masked_accuracy",
    "run_fewshot", "sample_fewshot", "search_c", "variant_dims",
]
