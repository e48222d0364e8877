"""``FewShotResult``: the typed result of one few-shot experiment (``clipica.fewshot/1``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT = "clipica.fewshot/1"
IN_DOMAIN = "in-domain"


@dataclass(frozen=True)
class FewShotResult:
    """Every seed x shot count x variant x test set of one few-shot experiment.

    ``accuracy``: ndarray of shape (n_seeds, n_shots, n_variants, n_test_sets), in [0, 1];
    ``C`` and ``val_accuracy``: (n_seeds, n_shots, n_variants), the chosen C and its
    validation accuracy; ``dims``: per shot count, the component counts used
    (:func:`variant_dims`); ``test_sets``: names, ``in-domain`` first; ``test_info``: per
    test set its rows scored, classes present and rows dropped (class never trained).
    """

    label: str
    classes: list[str]
    variants: list[str]
    shots: list[int]
    val_shots: list[int]
    seeds: list[int]
    test_sets: list[str]
    accuracy: np.ndarray
    C: np.ndarray
    val_accuracy: np.ndarray
    dims: list[dict[str, int]]
    test_info: dict[str, dict[str, int]]
    config: dict[str, Any] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)

    # -- views ---------------------------------------------------------------------------
    @property
    def shift_sets(self) -> list[str]:
        return [t for t in self.test_sets if t != IN_DOMAIN]

    def shift_average(self) -> np.ndarray:
        """(n_seeds, n_shots, n_variants): per seed, the mean over the shifted test sets."""
        idx = [self.test_sets.index(t) for t in self.shift_sets]
        if not idx:
            return np.full(self.accuracy.shape[:3], np.nan)
        return np.nanmean(self.accuracy[..., idx], axis=-1)

    def table(self):
        """pandas DataFrame: one row per (shots, variant), columns ``<test set> mean/std``.

        Test sets in order, then ``shift average`` (mean over shifted sets per seed, then
        mean and standard deviation over seeds; ddof=1). Accuracies in percent.
        """
        import pandas as pd

        sets = list(self.test_sets) + (["shift average"] if self.shift_sets else [])
        acc = self.accuracy
        if self.shift_sets:
            acc = np.concatenate([acc, self.shift_average()[..., None]], axis=-1)
        rows = []
        ddof = 1 if acc.shape[0] > 1 else 0
        for i, s in enumerate(self.shots):
            for v, name in enumerate(self.variants):
                row = {"shots": s, "variant": name}
                for j, t in enumerate(sets):
                    row[f"{t} mean"] = 100 * float(np.mean(acc[:, i, v, j]))
                    row[f"{t} std"] = 100 * float(np.std(acc[:, i, v, j], ddof=ddof))
                rows.append(row)
        return pd.DataFrame(rows)

    def markdown(self) -> str:
        """The table as Markdown, ``mean ± std`` (percent) per test set; one row per shots x variant."""
        df = self.table()
        sets = [c[: -len(" mean")] for c in df.columns if c.endswith(" mean")]
        lines = ["| shots | variant | " + " | ".join(sets) + " |", "|---|---|" + "---|" * len(sets)]
        for _, r in df.iterrows():
            cells = [f"{r[f'{t} mean']:.1f} ± {r[f'{t} std']:.1f}" for t in sets]
            lines.append(f"| {r['shots']} | {r['variant']} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def paired_gain(self, variant: str, baseline: str = "linear") -> dict[str, np.ndarray]:
        """Per seed, ``variant`` minus ``baseline`` accuracy (points), averaged over shot counts.

        Returns ``{"in-domain": (n_seeds,), "shift average": (n_seeds,)}`` (the second only
        when there are shifted sets). Paired: both variants are fitted on the same rows.
        """
        v, b = self.variants.index(variant), self.variants.index(baseline)
        out = {IN_DOMAIN: 100 * np.nanmean(self.accuracy[:, :, v, 0] - self.accuracy[:, :, b, 0], axis=1)}
        if self.shift_sets:
            sa = self.shift_average()
            out["shift average"] = 100 * np.nanmean(sa[:, :, v] - sa[:, :, b], axis=1)
        return out

    def claim(self) -> str:
        """One sentence: do +ICA and +PCA+ICA help over the linear probe, in-domain and under shift?

        Per variant and test set the paired gain of :meth:`paired_gain` (mean over shot
        counts), mean ± std over seeds; "helps" / "hurts" when the mean is more than two
        standard errors above / below 0, else "no clear difference".
        """
        if "linear" not in self.variants:
            return "No linear probe in this run, so no claim about +ICA against it."
        parts, verdicts = [], []
        for variant in (v for v in ("ica", "pca+ica") if v in self.variants):
            gains = self.paired_gain(variant)
            cells, words = [], []
            for where, g in gains.items():
                m = float(np.mean(g))
                sd = float(np.std(g, ddof=1)) if g.size > 1 else float("nan")
                se = sd / np.sqrt(g.size) if g.size > 1 else float("inf")
                word = "helps" if m - 2 * se > 0 else "hurts" if m + 2 * se < 0 else "makes no clear difference"
                label = "in-domain" if where == IN_DOMAIN else "under shift"
                cells.append(f"{m:+.1f} ± {sd:.1f} points {label}")
                words.append(f"{word} {label}")
            parts.append(f"+{variant.upper()} {' and '.join(cells)}")
            verdicts.append(f"+{variant.upper()} {' and '.join(words)}")
        if not parts:
            return "Neither +ICA nor +PCA+ICA was run, so no claim."
        shots = f"{self.shots[0]}-{self.shots[-1]}" if len(self.shots) > 1 else str(self.shots[0])
        return (f"Against the linear probe (accuracy gain averaged over {shots} shots, paired per seed, "
                f"mean ± std over {len(self.seeds)} seeds): {'; '.join(parts)} — so "
                f"{', and '.join(verdicts)}.")

    def records(self) -> list[dict[str, Any]]:
        """One dict per seed x shots x variant x test set (accuracy, C, validation accuracy)."""
        out = []
        for a, seed in enumerate(self.seeds):
            for i, s in enumerate(self.shots):
                for v, name in enumerate(self.variants):
                    for j, t in enumerate(self.test_sets):
                        out.append({
                            "seed": seed, "shots": s, "variant": name, "test_set": t,
                            "accuracy": _num(self.accuracy[a, i, v, j]), "C": float(self.C[a, i, v]),
                            "val_accuracy": float(self.val_accuracy[a, i, v]),
                        })
        return out

    # -- persistence ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from clipica._format import tagged

        body = {
            "label": self.label, "classes": list(self.classes), "variants": list(self.variants),
            "shots": list(self.shots), "val_shots": list(self.val_shots), "seeds": list(self.seeds),
            "test_sets": list(self.test_sets), "dims": [dict(d) for d in self.dims],
            "test_info": {k: dict(v) for k, v in self.test_info.items()}, "config": dict(self.config),
            "records": self.records(),
        }
        return tagged(FORMAT, body, self.fingerprints)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FewShotResult:
        from clipica._format import untag

        body, fps = untag(d, FORMAT, source="fewshot result")
        seeds, shots, variants, sets = body["seeds"], body["shots"], body["variants"], body["test_sets"]
        acc = np.full((len(seeds), len(shots), len(variants), len(sets)), np.nan)
        C = np.full(acc.shape[:3], np.nan)
        val = np.full(acc.shape[:3], np.nan)
        pos = {name: {v: i for i, v in enumerate(vals)} for name, vals in
               (("seed", seeds), ("shots", shots), ("variant", variants), ("test_set", sets))}
        for r in body["records"]:
            a, i, v, j = (pos[k][r[k]] for k in ("seed", "shots", "variant", "test_set"))
            acc[a, i, v, j] = np.nan if r["accuracy"] is None else r["accuracy"]
            C[a, i, v], val[a, i, v] = r["C"], r["val_accuracy"]
        return cls(
            label=body["label"], classes=body["classes"], variants=variants, shots=shots,
            val_shots=body["val_shots"], seeds=seeds, test_sets=sets, accuracy=acc, C=C,
            val_accuracy=val, dims=body["dims"], test_info=body["test_info"],
            config=body.get("config", {}), fingerprints=fps,
        )

    def save(self, path) -> None:
        """Write ``to_dict()`` as JSON, atomically."""
        from clipica._atomic import atomic_write_json

        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> FewShotResult:
        from clipica._format import read_json

        return cls.from_dict(read_json(path, FORMAT))


def _num(x) -> float | None:
    return None if not np.isfinite(x) else float(x)
