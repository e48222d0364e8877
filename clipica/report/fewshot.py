"""The report's few-shot section: ``RUN/fewshot/fewshot.json`` as the claim per setting, a figure and tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clipica.report.html import _e, _img


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def section_fewshot(doc: Mapping[str, Any]) -> str:
    """HTML for a ``clipica.fewshot/2`` document: the claim per setting (penalty x where the
    basis was fitted), the summary over settings with the zero-shot line, the paired gains,
    accuracy vs shots, and each setting's mean ± std table per shot count x test set."""
    from clipica.fewshot import FewShotRuns
    from clipica.viz.fewshot import plot_fewshot

    runs = FewShotRuns.from_dict({k: v for k, v in doc.items() if not str(k).startswith("_")})
    first = runs.results[0]

    def pct(x):
        return "n/a" if x is None else f"{x:.1f}"

    claims = "".join(f"<li>{_e(r.claim())}</li>" for r in runs.results)
    summary = _table(["setting", "variant", "in-domain", "shift average"],
                     [[r["setting"], r["variant"], pct(r["in-domain"]), pct(r["shift average"])] for r in runs.summary()])
    gains = _table(["setting", "variant", "baseline", "test set", "gain (points)", "verdict"],
                   [[r.setting, g["variant"], g["baseline"], g["test_set"], f"{g['mean']:+.1f} ± {g['std']:.1f}",
                     g["verdict"]] for r in runs.results for g in r.gains()])
    per_setting = []
    for r in runs.results:
        df = r.table()
        sets = [c[: -len(" mean")] for c in df.columns if c.endswith(" mean")]
        rows = [[row["shots"], row["variant"], *(f"{row[f'{t} mean']:.1f} ± {row[f'{t} std']:.1f}" for t in sets)]
                for _, row in df.iterrows()]
        per_setting.append(f"<h4>{_e(r.setting)}</h4>" + _table(["shots", "variant", *sets], rows))
    info = ", ".join(f"{_e(t)} {v.get('rows')} rows / {v.get('classes_present')} classes"
                     for t, v in first.test_info.items())
    return (
        f"<ul>{claims}</ul>"
        f"<p>CoOp's linear-probe protocol with Liu et al.'s variants, the L1 probe and the top-m probe (which can "
        f"tell a disentangled basis from a rotated one: an L2 probe cannot), the zero-shot text classifier as the "
        f"reference line. C, m and every other choice are made on validation shots only. Label "
        f"<code>{_e(first.label)}</code>: {len(first.classes)} classes, shots {', '.join(map(str, first.shots))}, "
        f"{len(first.seeds)} seeds. Test sets: {info}; classes absent from a set are masked. "
        f"{_e(first.zeroshot_note)}</p>"
        + "<p>Accuracy in %, mean over shot counts and seeds:</p>" + summary
        + "<p>Paired gains per seed, averaged over shot counts:</p>" + gains
        + _img(plot_fewshot(runs), "Accuracy vs shots per class, mean ± std over seeds, one row per setting; "
               "the right panels average the shifted test sets per seed; dashed: zero-shot.")
        + "".join(per_setting) + "<p>Accuracy in %, mean ± std over seeds.</p>"
    )
