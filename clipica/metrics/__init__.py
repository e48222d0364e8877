"""Disentanglement metrics on arrays: codes (n_samples, n_codes) against factors (n_samples, n_factors).

Each function returns a small result object with the score and its parts; the
docstrings state the definition, estimator and binning used. Pure numpy / scipy /
scikit-learn; scikit-learn is imported inside the functions that need it.

- :func:`mcc` mean correlation coefficient (Hungarian matching)
- :func:`r2` held-out R^2 of factors from codes (linear, kernel ridge, MLP);
  :func:`kernel_ridge_r2` the exact, CV-tuned RBF kernel ridge for a few thousand rows
- :func:`amari_distance` unmixing vs mixing, normalised to [0, 1]
- :func:`dci` disentanglement / completeness / informativeness (Eastwood & Williams;
  gradient-boosted trees as in disentanglement_lib, or a faster lasso)
- :func:`mig` mutual information gap (Chen et al.)
- :func:`sap` separated attribute predictability (Kumar et al.)
- :func:`modularity` (Ridgeway & Mozer)
"""

from clipica.metrics.amari import amari_distance
from clipica.metrics.dci import DCIResult, dci, dci_from_importance
from clipica.metrics.mcc import MCCResult, mcc
from clipica.metrics.mig import MIGResult, mig
from clipica.metrics.modularity import ModularityResult, modularity, modularity_from_mutual_info
from clipica.metrics.r2 import R2Result, kernel_ridge_r2, r2
from clipica.metrics.sap import SAPResult, sap

__all__ = [
    "DCIResult",
    "MCCResult",
    "MIGResult",
    "ModularityResult",
    "R2Result",
    "SAPResult",
    "amari_distance",
    "dci",
    "dci_from_importance",
    "kernel_ridge_r2",
    "mcc",
    "mig",
    "modularity",
    "modularity_from_mutual_info",
    "r2",
    "sap",
]
