"""Attribute probes (:func:`probe` -> :class:`ProbeReport`), their baselines, and the
logistic solvers (:func:`fit_logistic`, :func:`~clipica.probes.multinomial.fit_multinomial_path`).

- :mod:`clipica.probes.probe`: :func:`probe`, :func:`baseline_codes`;
- :mod:`clipica.probes.result`: :class:`ProbeReport`, :class:`CodeReport` (``to_dict`` /
  ``from_dict``, format tag ``clipica.probe/1``);
- :mod:`clipica.probes.labels`: which label columns are attributes and factors, which rows
  train and which are held out (shared with :mod:`clipica.probes.compare`);
- :mod:`clipica.probes.logistic`: :func:`fit_logistic`, :class:`LogisticFit` (binary, one
  problem per label column; the solver's stages in ``_logistic_solver``);
- :mod:`clipica.probes.multinomial`: :func:`fit_multinomial_path` (many small multinomial
  problems along a C path: the few-shot protocol's solver; imported from there, not here,
  so that ``clipica.probes`` stays light);
- :mod:`clipica.probes.softmax`: the softmax cross-entropy of many small problems (value,
  gradient, Hessian-vector products, conjugate gradients), shared by the few-shot L2 and L1
  solvers;
- :mod:`clipica.probes.scores`: closed-form AUC / Spearman / balanced accuracy.
"""

from clipica.data.labels import RESERVED_COLUMNS
from clipica.probes.logistic import LogisticFit, fit_logistic
from clipica.probes.probe import baseline_codes, probe
from clipica.probes.result import PROBE_FORMAT, CodeReport, ProbeReport
from clipica.probes.scores import (
    auc_columns,
    auc_matrix,
    balanced_accuracy_columns,
    spearman_matrix,
)

__all__ = [
    "PROBE_FORMAT",
    "RESERVED_COLUMNS",
    "CodeReport",
    "LogisticFit",
    "ProbeReport",
    "auc_columns",
    "auc_matrix",
    "balanced_accuracy_columns",
    "baseline_codes",
    "fit_logistic",
    "probe",
    "spearman_matrix",
]
