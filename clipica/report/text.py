"""The words of the report: its headline, its glossary, its warnings (rendering only).

Everything here turns numbers that other commands computed into sentences and HTML;
nothing is computed beyond means and counts of what is given. :mod:`clipica.report.build`
places these pieces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clipica.report.html import NEAR_CHANCE_AUC, _e, _mean, _num

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

#: table column keys of :func:`clipica.report.build.probe_attributes` -> glossary entry
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


def _against(rows: Mapping[str, Mapping[str, Any]], names: Sequence[str],
             baselines: Sequence[str]) -> tuple[float, list[str], dict[str, list[str]]]:
    """ICA's mean best-single AUC over ``names``, one "baseline mean (wins)" phrase per
    baseline, and per attribute where ICA does not win, the baselines that match or beat it."""
    ica = _mean([rows[n]["ica"] for n in names])
    parts: list[str] = []
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
                losses.setdefault(n, []).append((_LABELS.get(base, base), b, a))
    return ica, parts, losses


def _verdict(parts: list[str], losses: dict[str, list[tuple[str, float, float]]],
             what: str = "attribute", n: int | None = None) -> str:
    """Where ICA does not win: every rival that matches or beats it per attribute, or, when
    it wins on none of the ``n`` (a factor's columns), only the strongest rival per column."""
    if parts and not losses:
        return f" ICA wins on every {what} against every baseline."
    if not losses:
        return ""
    if n is not None and len(losses) == n:
        best = [(k, max(v, key=lambda t: t[1])) for k, v in losses.items()]
        return (f" ICA does not win on any of its {n} {what}s (strongest rival per {what}: "
                + "; ".join(f"{_e(k)} {lab} {b:.3f} ≥ {a:.3f}" for k, (lab, b, a) in best) + ").")
    shown = list(losses.items())[:8]
    return " ICA does not win on " + "; ".join(
        f"{_e(k)} ({', '.join(f'{lab} {b:.3f} ≥ {a:.3f}' for lab, b, a in v)})" for k, v in shown
    ) + (f" and {len(losses) - len(shown)} more" if len(losses) > len(shown) else "") + "."


def binary_headline(rows: Mapping[str, Mapping[str, Any]], baselines: Sequence[str],
                    exclude: Sequence[str] = ()) -> str:
    """Sentences: the mean best-single AUC of ICA against each baseline over the binary
    attributes (the columns of a categorical factor, ``exclude``, left out), and where it does
    not win. ``rows``: :func:`clipica.report.build.probe_attributes` output (folded AUCs)."""
    skip = set(exclude)
    names = [n for n, r in rows.items() if n not in skip and _num(r.get("ica")) is not None]
    if not names:
        return ""
    ica, parts, losses = _against(rows, names, baselines)
    text = (f"<b>Binary attributes ({len(names)}):</b> the best single ICA component separates "
            f"each attribute with a mean ROC AUC of <b>{ica:.3f}</b>")
    text += (", against " + "; ".join(parts) + ".") if parts else " (no baseline was scored)."
    # an attribute no representation separates says nothing about the rotation: named apart
    chance = [n for n in losses if max(
        [rows[n]["ica"], *(_num(rows[n].get(b)) or 0.0 for b in baselines)]) < NEAR_CHANCE_AUC]
    if chance:
        losses = {n: v for n, v in losses.items() if n not in chance}
        shown = ", ".join(map(_e, chance[:12])) + (f" and {len(chance) - 12} more" if len(chance) > 12 else "")
        text += (f" {len(chance)} of them no representation separates (every best AUC below "
                 f"{NEAR_CHANCE_AUC}: {shown}): the embeddings hardly hold these labels, whatever "
                 "the rotation.")
    verdict = _verdict(parts, losses)
    if chance:
        verdict = (" On every other attribute ICA wins against every baseline." if parts and not losses
                   else verdict.replace(" ICA does not win on ", " Elsewhere ICA does not win on ", 1))
    return text + verdict


def _factor_key(f: Mapping[str, Any]) -> frozenset:
    return frozenset(map(str, f.get("columns") or ()))


def report_factors(factors: Sequence[Mapping[str, Any]] = (),
                   compare: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The categorical factors the report groups: ``factors`` (declared or detected from the
    labels, :mod:`clipica.data.label_groups`) then those of ``compare.json`` not among them
    (same columns = same factor; the first name wins)."""
    out: list[dict[str, Any]] = []
    seen: set[frozenset] = set()
    for f in [*factors, *((compare or {}).get("factors") or [])]:
        key = _factor_key(f)
        if len(key) < 2 or key in seen:
            continue
        seen.add(key)
        out.append({"name": str(f.get("name") or "+".join(sorted(key))),
                    "columns": [str(c) for c in f.get("columns")],
                    "source": str(f.get("source") or "declared")})
    return out


def _block_scores(compare: Mapping[str, Any] | None, factor: Mapping[str, Any],
                  main: str = "ica") -> dict[str, float] | None:
    """``{method: held-out accuracy}`` of ``factor`` in ``compare.json`` (ICA first), or None
    when it holds no score of ``main`` for a factor with these columns."""
    if not compare:
        return None
    methods = compare.get("methods") or {}
    name = next((f.get("name") for f in compare.get("factors") or []
                 if _factor_key(f) == _factor_key(factor)), None)
    if name is None or main not in methods:
        return None

    def acc(method: str) -> float | None:
        return _num(((methods[method].get("factors") or {}).get(name) or {}).get("accuracy"))

    if acc(main) is None:
        return None
    out = {main: acc(main)}
    out.update({m: v for m in methods if m != main and (v := acc(m)) is not None})
    return out


_BLOCK_RIVALS = (("pca", "PCA components"), ("raw", "raw dimensions"))


def _probe_block_sentence(head: str, entry: Mapping[str, Any] | None) -> str | None:
    """The factor scored as a block by the probe stage (``probe.json``'s ``categorical`` entry
    for it): the ICA block's mean one-vs-rest AUC against the best m PCA components and m raw
    dimensions, and who wins; None when the ICA has no block score."""
    auc = (entry or {}).get("block_auc") or {}
    ica = _num(auc.get("ica"))
    if ica is None:
        return None
    m = entry.get("m")
    comps = ((entry.get("scores") or {}).get("ica") or {}).get("columns") or []
    what = f" (component{'s' if len(comps) > 1 else ''} {', '.join(map(str, comps))})" if comps else ""
    s = (f"{head}: the best ICA block of at most {m} components{what} gives a mean one-vs-rest "
         f"AUC of <b>{ica:.3f}</b> on the held-out rows")
    rivals = [(f"the best {m} {label}", v) for name, label in _BLOCK_RIVALS
              if (v := _num(auc.get(name))) is not None]
    if rivals:
        s += ", against " + "; ".join(f"{lab} {v:.3f}" for lab, v in rivals)
        # compared as shown: equal to three decimals (1.000 and 1.000 at the ceiling) is a tie
        tied = [f"{lab} {v:.3f}" for lab, v in rivals if f"{v:.3f}" == f"{ica:.3f}"]
        beaten = [f"{lab} {v:.3f} > {ica:.3f}" for lab, v in rivals if f"{v:.3f}" > f"{ica:.3f}"]
        s += (" — ICA does not win (" + "; ".join(beaten) + ")" if beaten
              else " — ICA ties " + "; ".join(tied) if tied else " — ICA wins")
    s += (". The ICA block is found without the labels (dependence between components); the "
          "baselines' codes are chosen with them (greedy, on the training rows)")
    return s + "."


def _factor_entry(categorical: Mapping[str, Any] | None, factor: Mapping[str, Any]):
    return next((e for e in (categorical or {}).values()
                 if _factor_key(e) == _factor_key(factor)), None)


def factor_headline(rows: Mapping[str, Mapping[str, Any]], baselines: Sequence[str],
                    factors: Sequence[Mapping[str, Any]], compare: Mapping[str, Any] | None = None,
                    main: str = "ica", categorical: Mapping[str, Any] | None = None) -> str:
    """Sentences for the categorical factors (:func:`report_factors`): scored as a block of
    components by the probe stage (``categorical``: ``probe.json``'s entry, ICA block against m
    PCA and m raw codes) or, failing that, against the other decompositions of ``compare.json``;
    else column by column (best single code per one-hot column) against the baselines, saying
    so; and where ICA does not win. Empty without factors."""
    sentences = []
    for f in factors:
        cols = [c for c in f["columns"] if _num((rows.get(c) or {}).get("ica")) is not None]
        origin = "detected from the labels" if f.get("source") == "detected" else "declared"
        head = f"{_e(f['name'])} ({', '.join(map(_e, f['columns']))}; {origin})"
        from_probe = _probe_block_sentence(head, _factor_entry(categorical, f))
        if from_probe is not None:
            sentences.append(from_probe)
            continue
        blocks = _block_scores(compare, f, main)
        if blocks is not None:
            a = blocks.pop(main)
            s = f"{head}: held-out accuracy from the best ICA block <b>{a:.3f}</b>"
            if blocks:
                beaten = [f"{_e(m)} {v:.3f}" for m, v in blocks.items() if v >= a]
                s += " against the same number of codes of " + ", ".join(
                    f"{_e(m)} {v:.3f}" for m, v in blocks.items())
                s += " — ICA wins" if not beaten else " — ICA does not win (" + ", ".join(beaten) + ")"
            sentences.append(s + ".")
            continue
        if not cols:
            continue
        ica, parts, losses = _against(rows, cols, baselines)
        s = (f"{head}: column by column, the best single ICA component reaches a mean AUC of "
             f"<b>{ica:.3f}</b>")
        s += (", against " + "; ".join(parts) + ".") if parts else "."
        s += _verdict(parts, losses, "column", len(cols))
        # why a single code is the wrong unit here, and what scores the factor as one
        s += (f" A factor with {len(f['columns'])} values spans up to {len(f['columns']) - 1} "
              "dimensions, so no single component need carry it; it was not scored as a block in "
              "this run (<code>clipica compare STORE --out RUN/compare</code> scores it from a "
              "block of components).")
        sentences.append(s)
    if not sentences:
        return ""
    return (f"<b>Categorical factors ({len(sentences)}), one-hot label columns read as one "
            "factor:</b> " + " ".join(sentences))


def convergence_headline(summary: Mapping[str, Any] | None) -> str:
    """A sentence when a fit of the run did not converge (``summary["convergence"]``, see
    :func:`clipica.pipeline.summary.convergence`; an older summary's ``ica_converged``), else ''."""
    summary = summary or {}
    conv = summary.get("convergence")
    if isinstance(conv, Mapping) and conv.get("problems"):
        problems = [str(p) for p in conv["problems"]]
    elif summary.get("ica_converged") is False:
        problems = [f"the ICA stopped at its iteration limit ({summary.get('ica_n_iter')} iterations)"]
    else:
        return ""
    return ("<b>Not converged:</b> " + "; ".join(map(_e, problems)) + ". The numbers below come "
            "from where the solver stopped and may change with the seed; refit with a larger "
            "<code>--max-iter</code> or a smaller K and compare.")


def headline(rows: Mapping[str, Mapping[str, Any]], baselines: Sequence[str],
             compare: Mapping[str, Any] | None = None,
             factors: Sequence[Mapping[str, Any]] = (),
             categorical: Mapping[str, Any] | None = None,
             summary: Mapping[str, Any] | None = None) -> str:
    """The report's opening paragraph (HTML), one paragraph per attribute group: the binary
    attributes, then the categorical factors (``factors`` and those of ``compare``; scored as
    blocks from ``categorical``, ``probe.json``'s entry), and first of all a fit that did not
    converge (``summary``); '' when empty."""
    facs = report_factors(factors, compare)
    grouped = [c for f in facs for c in f["columns"]]
    paras = [binary_headline(rows, baselines, exclude=grouped),
             factor_headline(rows, baselines, facs, compare, categorical=categorical)]
    conv = convergence_headline(summary)
    return (f'<p class="headline warn">{conv}</p>' if conv else "") + "".join(
        f'<p class="headline">{p}</p>' for p in paras if p)


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
