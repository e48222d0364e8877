"""Disentanglement metrics on arrays: codes (n_samples, n_codes) against factors (n_samples, n_factors).

Each function returns a small result object with the score and its parts; the
docstrings state the definition, estimator and binning used. Pure numpy / scipy /
scikit-learn; scikit-learn is imported inside the functions that need it.
"""

from clipica.metrics.amari import amari_distance
from clipica.metrics.mcc import MCCResult, mcc
from clipica.metrics.r2 import R2Result, r2

__all__ = ["MCCResult", "R2Result", "amari_distance", "mcc", "r2"]
