"""The typed results of the few-shot experiment (``clipica.fewshot/2``).

:class:`FewShotResult`: one setting (penalty x where the decompositions were fitted);
:class:`FewShotRuns`: the settings of one ``fewshot.json``, with the claim per setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT = "clipica.fewshot/2"
#: the comparisons each claim makes: (variant, baseline), paired per seed
COMPARISONS = (("ica", "pca"), ("ica", "linear"), ("pca+ica", "linear"), ("topm", "topm-pca"), ("topm", "linear"),
               ("zeroshot-init", "linear"))
IN_DOMAIN = "in-domain"


@dataclass(frozen=True)
class FewShotResult:
    """Every seed x shot count x variant x test set of one few-shot experiment.

    ``accuracy``: ndarray of shape (n_seeds, n_shots, n_variants, n_test_sets), in [0, 1];
    ``C``, ``val_accuracy`` and ``m``: (n_seeds, n_shots, n_variants), the chosen C, its
    validation accuracy and the chosen m (top-m variants; NaN for the others);
    ``penalty``/``fit_on``: the setting; ``zeroshot``: the text classifier's accuracy per
    test set (the reference line); ``dims``: per shot count, the component counts used
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
    penalty: str = "l2"
    fit_on: str = "fewshot"
    #: (n_seeds, n_shots, n_variants): the m chosen by the top-m variants (NaN for the others)
    m: np.ndarray | None = None
    #: zero-shot accuracy per test set (None: no text classifier; see ``zeroshot_note``)
    zeroshot: dict[str, float | None] | None = None
    zeroshot_note: str = ""

    @property
    def setting(self) -> str:
        """``"l2, fit on few-shot rows"`` and the like: the setting in words."""
        where = "few-shot rows" if self.fit_on == "fewshot" else "the store"
        return f"{self.penalty.upper()}, decompositions fitted on {where}"

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
        if self.zeroshot:
            zs = self.zeroshot_with_shift()
            lines.append("| 0 | zero-shot | " + " | ".join(
                "n/a" if zs.get(t) is None else f"{100 * zs[t]:.1f}" for t in sets) + " |")
        return "\n".join(lines)

    def zeroshot_with_shift(self) -> dict[str, float | None]:
        """Zero-shot accuracy per test set plus its ``shift average`` (empty without zero-shot)."""
        if not self.zeroshot:
            return {}
        out = dict(self.zeroshot)
        vals = [self.zeroshot[t] for t in self.shift_sets if self.zeroshot.get(t) is not None]
        if self.shift_sets:
            out["shift average"] = float(np.mean(vals)) if vals else None
        return out

    def paired_gain(self, variant: str, baseline: str = "linear", min_shots: int = 1) -> dict[str, np.ndarray]:
        """Per seed, ``variant`` minus ``baseline`` accuracy (points), averaged over shot counts >= ``min_shots``.

        Returns ``{"in-domain": (n_seeds,), "shift average": (n_seeds,)}`` (the second only
        when there are shifted sets). Paired: both variants are fitted on the same rows.
        """
        v, b = self.variants.index(variant), self.variants.index(baseline)
        cols = [i for i, s in enumerate(self.shots) if s >= min_shots]
        acc = self.accuracy[:, cols]
        out = {IN_DOMAIN: 100 * np.nanmean(acc[:, :, v, 0] - acc[:, :, b, 0], axis=1)}
        if self.shift_sets:
            sa = self.shift_average()[:, cols]
            out["shift average"] = 100 * np.nanmean(sa[:, :, v] - sa[:, :, b], axis=1)
        return out

    def gains(self, min_shots: int = 1) -> list[dict[str, Any]]:
        """Every comparison of :data:`COMPARISONS` present in this run: paired gain per test
        set (mean and std over seeds, points) and a verdict ("ahead" / "behind" when the mean
        is more than two standard errors from 0, else "no clear difference")."""
        rows = []
        for variant, base in COMPARISONS:
            if variant not in self.variants or base not in self.variants:
                continue
            for where, g in self.paired_gain(variant, base, min_shots).items():
                m = float(np.mean(g))
                sd = float(np.std(g, ddof=1)) if g.size > 1 else float("nan")
                se = sd / np.sqrt(g.size) if g.size > 1 else float("inf")
                verdict = "ahead" if m - 2 * se > 0 else "behind" if m + 2 * se < 0 else "no clear difference"
                rows.append({"variant": variant, "baseline": base, "test_set": where, "mean": m, "std": sd,
                             "verdict": verdict})
        return rows

    def claim(self) -> str:
        """What this setting shows, in one paragraph: the paired gains of :meth:`gains` and the zero-shot line."""
        shots = f"{self.shots[0]}-{self.shots[-1]}" if len(self.shots) > 1 else str(self.shots[0])
        parts = []
        for r in self.gains():
            where = "in-domain" if r["test_set"] == IN_DOMAIN else "under shift"
            word = {"ahead": "is ahead of", "behind": "is behind"}.get(r["verdict"], "makes no clear difference against")
            parts.append(f"{r['variant']} {word} {r['baseline']} {where} ({r['mean']:+.1f} ± {r['std']:.1f} points)")
        text = (f"{self.setting} (paired per seed, accuracy gain averaged over {shots} shots, mean ± std over "
                f"{len(self.seeds)} seeds): " + ("; ".join(parts) if parts else "no pair of variants to compare") + ".")
        return text + " " + self.zeroshot_claim()

    def zeroshot_claim(self) -> str:
        """Where the best few-shot variant first beats the zero-shot line, in-domain and under shift."""
        if not self.zeroshot:
            return self.zeroshot_note or "No zero-shot reference (no text classifier)."
        zs = self.zeroshot_with_shift()
        bits = []
        for where in [IN_DOMAIN] + (["shift average"] if self.shift_sets else []):
            ref = zs.get(where)
            if ref is None:
                continue
            acc = self.accuracy[..., 0] if where == IN_DOMAIN else self.shift_average()
            best = np.nanmax(np.nanmean(acc, axis=0), axis=1)  # (n_shots,): the best variant's mean
            beat = [s for s, b in zip(self.shots, best, strict=True) if b > ref]
            when = f"from {beat[0]} shots on" if beat else "at no shot count"
            bits.append(f"{where} zero-shot {100 * ref:.1f}%, beaten by the best few-shot variant {when}")
        return "Zero-shot: " + "; ".join(bits) + "."

    def records(self) -> list[dict[str, Any]]:
        """One dict per seed x shots x variant x test set (accuracy, C, validation accuracy, m)."""
        out = []
        m = self.m if self.m is not None else np.full(self.C.shape, np.nan)
        for a, seed in enumerate(self.seeds):
            for i, s in enumerate(self.shots):
                for v, name in enumerate(self.variants):
                    for j, t in enumerate(self.test_sets):
                        out.append({
                            "seed": seed, "shots": s, "variant": name, "test_set": t,
                            "accuracy": _num(self.accuracy[a, i, v, j]), "C": float(self.C[a, i, v]),
                            "val_accuracy": float(self.val_accuracy[a, i, v]), "m": _num(m[a, i, v]),
                        })
        return out

    # -- persistence ------------------------------------------------------------------------------
    def body(self) -> dict[str, Any]:
        """The JSON-ready body (no format tag): one setting of a ``fewshot.json``."""
        return {
            "label": self.label, "classes": list(self.classes), "variants": list(self.variants),
            "shots": list(self.shots), "val_shots": list(self.val_shots), "seeds": list(self.seeds),
            "test_sets": list(self.test_sets), "dims": [dict(d) for d in self.dims],
            "test_info": {k: dict(v) for k, v in self.test_info.items()}, "config": dict(self.config),
            "penalty": self.penalty, "fit_on": self.fit_on, "zeroshot": self.zeroshot,
            "zeroshot_note": self.zeroshot_note, "claim": self.claim(), "records": self.records(),
        }

    @classmethod
    def from_body(cls, body: dict[str, Any], fingerprints: dict[str, str] | None = None) -> FewShotResult:
        seeds, shots, variants, sets = body["seeds"], body["shots"], body["variants"], body["test_sets"]
        acc = np.full((len(seeds), len(shots), len(variants), len(sets)), np.nan)
        C, val, m = np.full(acc.shape[:3], np.nan), np.full(acc.shape[:3], np.nan), np.full(acc.shape[:3], np.nan)
        pos = {name: {v: i for i, v in enumerate(vals)} for name, vals in
               (("seed", seeds), ("shots", shots), ("variant", variants), ("test_set", sets))}
        for r in body["records"]:
            a, i, v, j = (pos[k][r[k]] for k in ("seed", "shots", "variant", "test_set"))
            acc[a, i, v, j] = np.nan if r["accuracy"] is None else r["accuracy"]
            C[a, i, v], val[a, i, v] = r["C"], r["val_accuracy"]
            m[a, i, v] = np.nan if r.get("m") is None else r["m"]
        return cls(
            label=body["label"], classes=body["classes"], variants=variants, shots=shots,
            val_shots=body["val_shots"], seeds=seeds, test_sets=sets, accuracy=acc, C=C,
            val_accuracy=val, dims=body["dims"], test_info=body["test_info"],
            config=body.get("config", {}), fingerprints=dict(fingerprints or {}), penalty=body.get("penalty", "l2"),
            fit_on=body.get("fit_on", "fewshot"), m=m, zeroshot=body.get("zeroshot"),
            zeroshot_note=body.get("zeroshot_note", ""),
        )

    def to_dict(self) -> dict[str, Any]:
        """A one-setting ``fewshot.json`` document (:class:`FewShotRuns` with this result)."""
        return FewShotRuns([self]).to_dict()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FewShotResult:
        """The first setting of a ``fewshot.json`` document."""
        return FewShotRuns.from_dict(d).results[0]

    def save(self, path) -> None:
        """Write ``to_dict()`` as JSON, atomically."""
        FewShotRuns([self]).save(path)

    @classmethod
    def load(cls, path) -> FewShotResult:
        return FewShotRuns.load(path).results[0]


@dataclass(frozen=True)
class FewShotRuns:
    """The settings of one few-shot experiment (``clipica.fewshot/2``): one :class:`FewShotResult` each.

    The default ``clipica fewshot`` runs four: L2 and L1, decompositions fitted on the
    few-shot rows and on the store; all share the draws, the test sets and the zero-shot line.
    """

    results: list[FewShotResult]

    @property
    def fingerprints(self) -> dict[str, str]:
        return dict(self.results[0].fingerprints) if self.results else {}

    def summary(self, min_shots: int = 1) -> list[dict[str, Any]]:
        """Per setting x variant: mean accuracy (%) over shots >= ``min_shots`` and seeds, in-domain
        and shift average, and the zero-shot line (``variant="zero-shot"``) once per setting."""
        rows = []
        for r in self.results:
            cols = [i for i, s in enumerate(r.shots) if s >= min_shots]
            sa = r.shift_average()[:, cols] if r.shift_sets else None
            for v, name in enumerate(r.variants):
                rows.append({"setting": r.setting, "variant": name,
                             IN_DOMAIN: 100 * float(np.nanmean(r.accuracy[:, cols, v, 0])),
                             "shift average": None if sa is None else 100 * float(np.nanmean(sa[:, :, v]))})
        zs = self.results[0].zeroshot_with_shift() if self.results else {}
        if zs:
            rows.append({"setting": "text encoder, no shots", "variant": "zero-shot",
                         IN_DOMAIN: None if zs.get(IN_DOMAIN) is None else 100 * zs[IN_DOMAIN],
                         "shift average": None if zs.get("shift average") is None else 100 * zs["shift average"]})
        return rows

    def markdown(self) -> str:
        """The claim per setting, the summary over settings, then each setting's per-shot table."""
        def cell(x):
            return "n/a" if x is None else f"{x:.1f}"

        out = ["## The claim, per setting", ""] + [f"- {r.claim()}" for r in self.results] + [""]
        out += ["## Summary (accuracy %, mean over shots and seeds)", "",
                "| setting | variant | in-domain | shift average |", "|---|---|---|---|"]
        out += [f"| {row['setting']} | {row['variant']} | {cell(row[IN_DOMAIN])} | {cell(row['shift average'])} |"
                for row in self.summary()]
        out += ["", "## Paired gains (points, mean ± std over seeds, all shot counts)", "",
                "| setting | variant | baseline | test set | gain | verdict |", "|---|---|---|---|---|---|"]
        for r in self.results:
            out += [f"| {r.setting} | {g['variant']} | {g['baseline']} | {g['test_set']} | "
                    f"{g['mean']:+.1f} ± {g['std']:.1f} | {g['verdict']} |" for g in r.gains()]
        for r in self.results:
            out += ["", f"## {r.setting}", "", r.markdown()]
        return "\n".join(out)

    def claim(self) -> str:
        return " ".join(r.claim() for r in self.results)

    def table(self):
        """pandas DataFrame: every setting's :meth:`FewShotResult.table` with ``penalty`` and ``fit_on`` columns."""
        import pandas as pd

        frames = [r.table().assign(penalty=r.penalty, fit_on=r.fit_on) for r in self.results]
        return pd.concat(frames, ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        from clipica._format import tagged

        return tagged(FORMAT, {"settings": [r.body() for r in self.results]}, self.fingerprints)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FewShotRuns:
        from clipica._format import untag

        body, fps = untag(d, FORMAT, source="fewshot result")
        return cls([FewShotResult.from_body(b, fps) for b in body["settings"]])

    def save(self, path) -> None:
        """Write ``to_dict()`` as JSON, atomically."""
        from clipica._atomic import atomic_write_json

        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> FewShotRuns:
        from clipica._format import read_json

        return cls.from_dict(read_json(path, FORMAT))


def _num(x) -> float | None:
    return None if not np.isfinite(x) else float(x)
