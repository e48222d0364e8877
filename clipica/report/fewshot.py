"""The report's few-shot section: ``RUN/fewshot/fewshot.json`` as a table, a figure and the claim."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clipica.report.html import _e, _img


def section_fewshot(doc: Mapping[str, Any]) -> str:
    """HTML for a ``clipica.fewshot/1`` result: the one-sentence claim, accuracy vs shots
    (in-domain and the shift average), and the mean ± std table per shot count x test set."""
    from clipica.fewshot import FewShotResult
    from clipica.viz.fewshot import plot_fewshot

    res = FewShotResult.from_dict({k: v for k, v in doc.items() if not str(k).startswith("_")})
    df = res.table()
    sets = [c[: -len(" mean")] for c in df.columns if c.endswith(" mean")]
    head = "".join(f"<th>{_e(h)}</th>" for h in ["shots", "variant", *sets])
    body = []
    for _, r in df.iterrows():
        cells = [_e(r["shots"]), _e(r["variant"])] + [
            f"{r[f'{t} mean']:.1f} ± {r[f'{t} std']:.1f}" for t in sets]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    info = ", ".join(f"{_e(t)} {v.get('rows')} rows / {v.get('classes_present')} classes"
                     for t, v in res.test_info.items())
    return (
        f"<p><b>{_e(res.claim())}</b></p>"
        f"<p>Liu et al.'s protocol (CoOp's linear probe; C searched on validation shots; ICA/PCA "
        f"fitted on the few-shot rows only) on <code>{_e(res.label)}</code>: {len(res.classes)} classes, "
        f"shots {', '.join(map(str, res.shots))}, {len(res.seeds)} seeds, variants "
        f"{', '.join(map(_e, res.variants))}. Test sets: {info}; classes absent from a set are masked.</p>"
        + _img(plot_fewshot(res), "Accuracy vs shots per class, mean ± std over seeds; the right panel "
               "averages the shifted test sets per seed.")
        + "<table><tr>" + head + "</tr>" + "".join(body) + "</table>"
        + "<p>Accuracy in %, mean ± std over seeds.</p>"
    )
