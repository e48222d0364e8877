"""The words of the report: its headline, its glossary, its warnings (rendering only).

Everything here turns numbers that other commands computed into sentences and HTML;
nothing is computed beyond means and counts of what is given. :mod:`clipica.report`
places these pieces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clipica.report_html import _e, _mean, _num

#: one line per number the report shows; the table headers carry the same line on hover
GLOSSARY: dict[str, str] = {
    "best-single AUC": "ROC AUC of the one code that best separates the attribute, folded to "
    "max(AUC, 1 − AUC): 0.5 is chance, 1 a perfect split; the sign after the component says "
    "which pole carries the attribute.",
    "runner-up": "the folded AUC of the second-best single code; a large gap between best and "
    "runner-up means the attribute sits in one code rather than spread over several.",
    "linear probe AUC": "held-out ROC AUC of a logistic regression on all K codes together: how "
    "much of the attribute the codes hold at all, whatever the rotation.",
    "selectivity": "in a traversal of a component, the change of the target attribute's probe "
    "logit divided by the summed change of all other attributes' logits; above 1 the component "
    "moves its attribute more than everything else together.",
    "stability": "Icasso-style index in [0, 1]: how reliably a component comes back in bootstrap "
    "refits (mean within-cluster minus mean between-cluster |correlation|).",
    "MCC": "mean absolute correlation between codes and ground-truth latents after a one-to-one "
    "(Hungarian) matching; 1 means each latent sits in exactly one code.",
    "DCI": "disentanglement (each code predicts one factor), completeness (each factor is "
    "predicted by one code) and informativeness (how well the codes predict the factors), from "
    "the importances of a predictor (Eastwood & Williams 2018).",
    "MIG": "mutual information gap: per factor, the gap in mutual information between the two "
    "most informative codes, divided by the factor's entropy, averaged.",
    "SAP": "separated attribute predictability: per factor, the gap in predictability between the "
    "two codes that predict it best, averaged.",
    "modularity": "how much each code depends on a single factor only (1: every code carries one "
    "factor).",
}

#: table column keys of :func:`clipica.report.probe_attributes` -> glossary entry
COLUMN_TERMS = {
    "ica": "best-single AUC",
    "pca": "best-single AUC",
    "raw": "best-single AUC",
    "random_rotation": "best-single AUC",
    "runner_up": "runner-up",
    "linear_probe": "linear probe AUC",
    "selectivity": "selectivity",
    "stability": "stability",
}

#: below this many held-out rows the probe AUCs get a warning with the size
SMALL_SPLIT = 200

_LABELS = {"ica": "ICA", "pca": "PCA", "raw": "the raw embedding", "random_rotation": "a random rotation"}


def th(label: str, term: str | None = None, cls: str = "") -> str:
    """A table header cell whose hover title is the glossary line of ``term``."""
    title = GLOSSARY.get(term or "", "")
    attrs = (f' class="{cls}"' if cls else "") + (f' title="{_e(title)}"' if title else "")
    return f"<th{attrs}>{_e(label)}</th>"


def glossary_section(terms: Sequence[str] | None = None) -> str:
    """``<dl>`` with one line per term (all of :data:`GLOSSARY` by default)."""
    items = [t for t in (terms or GLOSSARY) if t in GLOSSARY]
    return "<dl class=\"glossary\">" + "".join(
        f"<dt>{_e(t)}</dt><dd>{_e(GLOSSARY[t])}</dd>" for t in items
    ) + "</dl>"


def binary_headline(rows: Mapping[str, Mapping[str, Any]], baselines: Sequence[str]) -> str:
    """Sentences: the mean best-single AUC of ICA against each baseline, and where it does not win.

    ``rows``: :func:`clipica.report.probe_attributes` output (folded AUCs).
    """
    names = [n for n, r in rows.items() if _num(r.get("ica")) is not None]
    if not names:
        return ""
    ica = _mean([rows[n]["ica"] for n in names])
    parts = []
    losses: dict[str, list[str]] = {}
    for base in baselines:
        pairs = [(n, rows[n]["ica"], _num(rows[n].get(base))) for n in names]
        pairs = [(n, a, b) for n, a, b in pairs if b is not None]
        if not pairs:
            continue
        m = _mean([b for _, _, b in pairs])
        wins = sum(a > b for _, a, b in pairs)
        parts.append(f"{_LABELS.get(base, base)} {m:.3f} (ICA higher on {wins} of {len(pairs)})")
        for n, a, b in pairs:
            if a <= b:
                losses.setdefault(n, []).append(f"{_LABELS.get(base, base)} {b:.3f} ≥ {a:.3f}")
    text = (f"<b>Binary attributes ({len(names)}):</b> the best single ICA component separates "
            f"each attribute with a mean ROC AUC of <b>{ica:.3f}</b>")
    text += (", against " + "; ".join(parts) + ".") if parts else " (no baseline was scored)."
    if parts and not losses:
        text += " ICA wins on every attribute against every baseline."
    elif losses:
        shown = list(losses.items())[:8]
        text += " ICA does not win on " + "; ".join(
            f"{_e(n)} ({', '.join(v)})" for n, v in shown
        ) + (f" and {len(losses) - len(shown)} more" if len(losses) > len(shown) else "") + "."
    return text


def factor_headline(compare: Mapping[str, Any] | None, main: str = "ica") -> str:
    """Sentences for the categorical factors of ``compare.json``: ICA's block score per factor
    against each other decomposition, and where it does not win. Empty without factors."""
    if not compare:
        return ""
    methods = compare.get("methods") or {}
    factors = [f.get("name") for f in compare.get("factors") or [] if f.get("name")]
    if not factors or main not in methods:
        return ""

    def acc(method: str, factor: str) -> float | None:
        return _num(((methods[method].get("factors") or {}).get(factor) or {}).get("accuracy"))

    others = [m for m in methods if m != main]
    sentences = []
    for f in factors:
        a = acc(main, f)
        if a is None:
            continue
        vals = {m: acc(m, f) for m in others}
        vals = {m: v for m, v in vals.items() if v is not None}
        beaten = [f"{_e(m)} {v:.3f}" for m, v in vals.items() if v >= a]
        s = f"{_e(f)}: ICA block {a:.3f}"
        if vals:
            s += " against " + ", ".join(f"{_e(m)} {v:.3f}" for m, v in vals.items())
            s += " — ICA wins" if not beaten else " — ICA does not win (" + ", ".join(beaten) + ")"
        sentences.append(s)
    if not sentences:
        return ""
    return (f"<b>Categorical factors ({len(sentences)}), each scored from a block of components "
            "(ICA) or the best m codes (the others):</b> " + "; ".join(sentences) + ".")


def headline(rows: Mapping[str, Mapping[str, Any]], baselines: Sequence[str],
             compare: Mapping[str, Any] | None = None) -> str:
    """The report's opening paragraph (HTML), one paragraph per attribute group; '' when empty."""
    paras = [p for p in (binary_headline(rows, baselines), factor_headline(compare)) if p]
    return "".join(f'<p class="headline">{p}</p>' for p in paras)


def split_warning(split: Mapping[str, Any] | None) -> str:
    """A warning with the size when fewer than :data:`SMALL_SPLIT` held-out rows were scored."""
    if not isinstance(split, Mapping):
        return ""
    n_test = split.get("n_test")
    if n_test is None or int(n_test) >= SMALL_SPLIT:
        return ""
    src = split.get("source")
    return (
        f'<p class="note"><b>Small held-out split: only {int(n_test)} rows</b> scored the linear '
        f"probes" + (f" (split from {_e(src)})" if src else "") + f", fewer than {SMALL_SPLIT}; their "
        "AUCs can move by several hundredths with another split. The single-component AUCs use "
        "every labelled row.</p>"
    )
