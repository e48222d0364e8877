"""Probe results: :class:`CodeReport` (one code matrix) and :class:`ProbeReport` (all of them).

Tables (pandas), the ``probe.json`` layout (``to_dict``, format tag ``clipica.probe/1`` with
the fingerprints of the store and decomposition) and its inverse (``from_dict``). Figures
are drawn by :mod:`clipica.viz.probe` from these objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PROBE_FORMAT = "clipica.probe/1"


@dataclass
class CodeReport:
    """Probe results for one code matrix (ICA or a baseline).

    Arrays are indexed by component (K) and binary attribute (A) or continuous factor (F).
    AUCs called ``best``/``runner_up`` are folded, ``max(AUC, 1 - AUC)``; ``pole`` says
    which end of the component carries the attribute (+1: high values, -1: low values).
    """

    name: str
    n_components: int
    auc: np.ndarray  # (K, A) signed single-component AUC on all labelled rows
    best_component: np.ndarray  # (A,)
    best_auc: np.ndarray  # (A,) folded
    pole: np.ndarray  # (A,) +1 / -1
    runner_up_component: np.ndarray  # (A,)
    runner_up_auc: np.ndarray  # (A,) folded
    sparse_k: list[int]
    sparse_auc: np.ndarray  # (len(sparse_k), A) held-out
    linear_probe_auc: np.ndarray  # (A,) held-out, all components
    linear_probe_balanced_accuracy: np.ndarray  # (A,)
    spearman: np.ndarray  # (K, F)
    factor_best_component: np.ndarray  # (F,)
    factor_best_spearman: np.ndarray  # (F,) signed
    factor_runner_up_abs_spearman: np.ndarray  # (F,)
    converged: bool = True


@dataclass
class ProbeReport:
    """Everything :func:`probe` computed; ``codes["ica"]`` (or the first name) is the main one.

    Use :meth:`table` for a per-attribute DataFrame, :meth:`to_dict` / :meth:`to_json`
    for the ``probe.json`` layout (format tag ``clipica.probe/1``), :meth:`from_dict` to
    read it back, and :func:`clipica.viz.probe.plot_probe_heatmap` for the figure.
    ``split_info`` states how rows were split for the held-out probes (rule, seed,
    sizes, and why when a seeded split replaced the store's); ``subsampling`` which
    numbers were computed on a row subsample (``probe.json`` ``"subsampling"``).
    """

    attributes: list[str]
    factors: list[str]
    codes: dict[str, CodeReport]
    n_positive: np.ndarray  # (A,) positives among labelled rows
    n_rows: int
    n_train: int
    n_test: int
    split_source: str
    C: float
    main: str = "ica"
    metrics: dict[str, Any] = field(default_factory=dict)
    split_info: dict[str, Any] = field(default_factory=dict)
    subsampling: dict[str, Any] = field(default_factory=dict)

    # -------------------------------------------------------------- tables

    def table(self, codes: str | None = None) -> Any:
        """One row per binary attribute: best component, AUCs, linear probe, baselines' best AUC.

        Returns a pandas DataFrame indexed by attribute name.
        """
        import pandas as pd

        name = codes or self.main
        r = self.codes[name]
        data = {
            "best_component": r.best_component,
            "pole": np.where(r.pole > 0, "+", "-"),
            "best_auc": r.best_auc,
            "runner_up_component": r.runner_up_component,
            "runner_up_auc": r.runner_up_auc,
            "gap": r.best_auc - r.runner_up_auc,
            "linear_probe_auc": r.linear_probe_auc,
            "linear_probe_balanced_accuracy": r.linear_probe_balanced_accuracy,
            "n_positive": self.n_positive,
        }
        for other, rep in self.codes.items():
            if other != name:
                data[f"{other}_best_auc"] = rep.best_auc
                data[f"{other}_linear_probe_auc"] = rep.linear_probe_auc
        return pd.DataFrame(data, index=pd.Index(self.attributes, name="attribute"))

    def factor_table(self, codes: str | None = None) -> Any:
        """One row per continuous factor: best component by |Spearman|, its rho, runner-up |rho|."""
        import pandas as pd

        name = codes or self.main
        r = self.codes[name]
        data = {
            "best_component": r.factor_best_component,
            "spearman": r.factor_best_spearman,
            "runner_up_abs_spearman": r.factor_runner_up_abs_spearman,
        }
        for other, rep in self.codes.items():
            if other != name:
                data[f"{other}_abs_spearman"] = np.abs(rep.factor_best_spearman)
        return pd.DataFrame(data, index=pd.Index(self.factors, name="factor"))

    def matrix(self, codes: str | None = None) -> Any:
        """Signed single-component AUC, DataFrame (components x attributes)."""
        import pandas as pd

        r = self.codes[codes or self.main]
        return pd.DataFrame(
            r.auc, index=pd.Index(range(r.n_components), name="component"), columns=self.attributes
        )

    def sparse_curve(self) -> Any:
        """Long DataFrame: codes, attribute, k, held-out AUC of the best-k-component probe."""
        import pandas as pd

        rows = []
        for name, r in self.codes.items():
            for i, k in enumerate(r.sparse_k):
                for j, a in enumerate(self.attributes):
                    rows.append((name, a, k, r.sparse_auc[i, j]))
        return pd.DataFrame(rows, columns=["codes", "attribute", "k", "auc"])

    def summary(self) -> dict[str, dict[str, float]]:
        """Means over attributes (and factors) for every code set."""
        out = {}
        for name, r in self.codes.items():
            s = {
                "n_components": int(r.n_components),
                "mean_best_auc": _nanmean(r.best_auc),
                "mean_runner_up_auc": _nanmean(r.runner_up_auc),
                "mean_gap": _nanmean(r.best_auc - r.runner_up_auc),
                "mean_linear_probe_auc": _nanmean(r.linear_probe_auc),
                "mean_linear_probe_balanced_accuracy": _nanmean(r.linear_probe_balanced_accuracy),
            }
            for i, k in enumerate(r.sparse_k):
                s[f"mean_sparse_auc_k{k}"] = _nanmean(r.sparse_auc[i])
            if self.factors:
                s["mean_factor_abs_spearman"] = _nanmean(np.abs(r.factor_best_spearman))
            out[name] = s
        return out

    # -------------------------------------------------------------- serialisation

    def to_dict(self, fingerprints: dict[str, str] | None = None) -> dict[str, Any]:
        """The ``probe.json`` layout, tagged ``clipica.probe/1`` with the inputs' ``fingerprints``
        (e.g. ``{"store": ..., "decomposition": ...}``).

        ``attributes[name]`` has ``best_component``, ``best_auc`` (folded, >= 0.5), ``pole``,
        ``best_auc_signed``, ``runner_up_component``, ``runner_up_auc``, ``linear_probe_auc``,
        ``linear_probe_balanced_accuracy``, ``sparse_auc`` ({k: auc}), ``n_positive`` and,
        for every other code set (``pca``, ``raw``, ``random_rotation``), a dict with its
        ``best_component``, ``best_auc``, ``runner_up_auc`` and ``linear_probe_auc``.
        ``factors[name]`` likewise with Spearman. ``summary`` has the means, ``codes`` the
        full signed AUC matrices and every per-code vector (what :meth:`from_dict` reads),
        ``split`` the rows used, ``subsampling`` which numbers used a row subsample, plus any ``metrics`` (``mcc``, ``dci``, ...) that were
        attached (their names in ``metric_names``).
        """
        main = self.codes[self.main]
        attrs: dict[str, Any] = {}
        for j, a in enumerate(self.attributes):
            entry = _attr_entry(main, j)
            entry["n_positive"] = int(self.n_positive[j])
            for name, r in self.codes.items():
                if name != self.main:
                    e = _attr_entry(r, j)
                    entry[name] = {
                        k: e[k]
                        for k in (
                            "best_component",
                            "best_auc",
                            "pole",
                            "runner_up_auc",
                            "linear_probe_auc",
                        )
                    }
            attrs[a] = entry
        facs: dict[str, Any] = {}
        for j, fname in enumerate(self.factors):
            entry = _factor_entry(main, j)
            for name, r in self.codes.items():
                if name != self.main:
                    entry[name] = _factor_entry(r, j)
            facs[fname] = entry
        out: dict[str, Any] = {
            "main": self.main,
            "attributes": attrs,
            "factors": facs,
            "summary": self.summary(),
            "split": {
                **self.split_info,
                "source": self.split_source,
                "n_rows": self.n_rows,
                "n_train": self.n_train,
                "n_test": self.n_test,
            },
            "probe": {"model": "logistic regression, L2", "C": self.C, "features": "standardised"},
            "subsampling": self.subsampling,
            "codes": {
                name: {
                    "n_components": r.n_components,
                    "converged": r.converged,
                    "sparse_k": r.sparse_k,
                    "auc_matrix": r.auc.tolist(),
                    "spearman_matrix": r.spearman.tolist(),
                    **{key: np.asarray(getattr(r, key)).tolist() for key in _CODE_VECTORS},
                }
                for name, r in self.codes.items()
            },
            "n_positive": self.n_positive.tolist(),
            "metric_names": list(self.metrics),
        }
        clash = set(self.metrics) & set(out)
        if clash:
            raise ValueError(f"metric names {sorted(clash)} clash with probe.json fields")
        out.update(self.metrics)
        from clipica._atomic import nan_to_none
        from clipica._format import tagged

        return tagged(PROBE_FORMAT, nan_to_none(out), fingerprints)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "probe report") -> ProbeReport:
        """Inverse of :meth:`to_dict` (NaN comes back for null). ArtifactError (one line) on a
        wrong format tag or malformed fields."""
        from clipica._format import untag
        from clipica.errors import ArtifactError

        body, _ = untag(d, PROBE_FORMAT, source=source)
        try:
            attributes = [str(a) for a in body["attributes"]]
            factors = [str(f) for f in body["factors"]]
            codes = {}
            for name, c in body["codes"].items():
                A, F = len(attributes), len(factors)
                K = int(c["n_components"])
                codes[name] = CodeReport(
                    name=name,
                    n_components=K,
                    auc=_floats(c["auc_matrix"], (K, A)),
                    spearman=_floats(c["spearman_matrix"], (K, F)),
                    sparse_k=[int(k) for k in c["sparse_k"]],
                    converged=bool(c["converged"]),
                    **{key: _vector(key, c[key], A, F, len(c["sparse_k"])) for key in _CODE_VECTORS},
                )
            split = dict(body["split"])
            metric_names = body.get("metric_names") or []
            return cls(
                attributes=attributes,
                factors=factors,
                codes=codes,
                n_positive=np.asarray(body["n_positive"], dtype=np.int64).reshape(len(attributes)),
                n_rows=int(split.pop("n_rows")),
                n_train=int(split.pop("n_train")),
                n_test=int(split.pop("n_test")),
                split_source=str(split.pop("source")),
                C=float(body["probe"]["C"]),
                main=str(body["main"]),
                metrics={k: body[k] for k in metric_names},
                split_info=split,
                subsampling=dict(body.get("subsampling") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArtifactError(f"{source} is missing or has malformed fields ({exc!s:.120}); was it hand-edited?") from None

    def to_json(self, path=None) -> str:
        """JSON text of :meth:`to_dict` (NaN written as null); also written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            from clipica._atomic import atomic_write_text

            atomic_write_text(path, text)
        return text


def _nanmean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmean(x)) if x.size and np.any(~np.isnan(x)) else float("nan")


def _attr_entry(r: CodeReport, j: int) -> dict[str, Any]:
    signed = r.auc[r.best_component[j], j] if r.best_component[j] >= 0 else float("nan")
    return {
        "best_component": int(r.best_component[j]),
        "best_auc": float(r.best_auc[j]),
        "pole": "+" if r.pole[j] > 0 else "-",
        "best_auc_signed": float(signed),
        "runner_up_component": int(r.runner_up_component[j]),
        "runner_up_auc": float(r.runner_up_auc[j]),
        "linear_probe_auc": float(r.linear_probe_auc[j]),
        "linear_probe_balanced_accuracy": float(r.linear_probe_balanced_accuracy[j]),
        "sparse_auc": {str(k): float(r.sparse_auc[i, j]) for i, k in enumerate(r.sparse_k)},
    }


def _factor_entry(r: CodeReport, j: int) -> dict[str, Any]:
    return {
        "best_component": int(r.factor_best_component[j]),
        "spearman": float(r.factor_best_spearman[j]),
        "abs_spearman": float(abs(r.factor_best_spearman[j])),
        "runner_up_abs_spearman": float(r.factor_runner_up_abs_spearman[j]),
    }



#: per-code vectors written to and read from ``probe.json`` ``codes[name]``
_CODE_VECTORS = (
    "best_component", "best_auc", "pole", "runner_up_component", "runner_up_auc", "sparse_auc",
    "linear_probe_auc", "linear_probe_balanced_accuracy", "factor_best_component",
    "factor_best_spearman", "factor_runner_up_abs_spearman",
)
_INT_VECTORS = ("best_component", "runner_up_component", "factor_best_component", "pole")


def _floats(x, shape) -> np.ndarray:
    return np.asarray(x if x != [] else np.zeros(shape), dtype=np.float64).reshape(shape)


def _vector(key: str, x, A: int, F: int, n_sparse: int) -> np.ndarray:
    if key == "sparse_auc":
        return _floats(x, (n_sparse, A))
    n = F if key.startswith("factor_") else A
    if key in _INT_VECTORS:
        return np.asarray(x, dtype=np.int64).reshape(n)
    return _floats(x, (n,))
