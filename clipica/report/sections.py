"""Report sections for names, traversals, stability and the comparison (rendering only).

Split from :mod:`clipica.report.build`, which assembles the page; each function turns one typed
result (as its JSON dict) into HTML.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from clipica.report.html import (
    NEAR_CHANCE_AUC,
    _e,
    _fmt,
    _img,
    _missing,
    _num,
    carried_by,
    short_phrase,
)
from clipica.report.text import th


def naming_poles(naming: Mapping[str, Any] | Sequence[Any] | None) -> dict[int, dict[str, list]]:
    """``{component: {"positive": [(word, score)], "negative": [...]}}`` from naming JSON.

    Components of ``unidentifiable`` (the ICA's Gaussian block) get no words. When the JSON
    carries ``named`` (``clipica name`` with a chance level), only the names above chance are returned, and ``"unseparated"``: ``{"positive": [(phrase, negation)],
    "negative": [...]}`` lists the pairs the model does not separate at that pole.
    """
    if not naming:
        return {}
    comps = naming.get("components", naming) if isinstance(naming, Mapping) else naming
    # the ICA's unidentifiable Gaussian block: its words are noise, wherever names are shown
    gaussian = {int(c) for c in naming.get("unidentifiable") or ()} if isinstance(naming, Mapping) else set()
    out: dict[int, dict[str, list]] = {}
    items = comps.items() if isinstance(comps, Mapping) else enumerate(comps)
    for key, entry in items:
        if not isinstance(entry, Mapping):
            continue
        idx = int(entry.get("component", key))
        poles: dict[str, Any] = {}
        named = entry.get("named") if isinstance(entry.get("named"), Mapping) else None
        if named is not None:
            poles["unseparated"] = {
                pole: [tuple(p) for p in (named.get(sign) or {}).get("unseparated") or []]
                for pole, sign in (("positive", "+"), ("negative", "-"))
            }
        for pole in ("positive", "negative"):
            if named is not None:  # names above the chance level only
                words = (named.get("+" if pole == "positive" else "-") or {}).get("names") or []
            else:
                words = entry.get(pole) or entry.get(f"{pole}_words") or []
            pairs = []
            for w in words:
                if isinstance(w, Mapping):
                    pairs.append((w.get("word") or w.get("text"), _num(w.get("score"))))
                elif isinstance(w, (list, tuple)):
                    pairs.append((w[0], _num(w[1]) if len(w) > 1 else None))
                else:
                    pairs.append((w, None))
            poles[pole] = [] if idx in gaussian else pairs
        out[idx] = poles
    return out


def naming_threshold(naming: Any) -> float | None:
    """The chance level ``|z|`` of a naming JSON (``chance.threshold``), or None."""
    if isinstance(naming, Mapping) and isinstance(naming.get("chance"), Mapping):
        return _num(naming["chance"].get("threshold"))
    return None


def _section_naming(
    poles: Mapping[int, Mapping[str, list]], rows: Mapping[str, Mapping[str, Any]], n_words: int = 5,
    threshold: float | None = None, blocks: Sequence[Mapping[str, Any]] | None = None,
    gaussian: Sequence[int] = (),
) -> str:
    """The component names table; ``gaussian``: the components indistinguishable from Gaussian
    (the ICA's unidentifiable block), flagged instead of named: their names would be noise."""
    if not poles:
        return _missing(
            "component names", "Run <code>clipica name STORE --ica ICA_DIR</code> to name components."
        )
    def matched(comp: int) -> str:
        # the attributes this component separates, best first; near-chance ones only counted
        strong, weak = carried_by(rows, comp)
        out = ", ".join(f"{_e(a)}{_e(r.get('pole', ''))} ({_fmt(r.get('ica'), 2)})" for a, r in strong)
        if weak:
            out += (f"{'; ' if out else ''}<span class=\"missing\">{weak} more near chance "
                    f"(AUC &lt; {NEAR_CHANCE_AUC})</span>")
        return out

    body = []
    gaussian = {int(c) for c in gaussian}
    for comp in sorted(poles):
        p = poles[comp]
        if comp in gaussian:
            body.append(f"<tr><td>{comp}</td><td class=\"l\">{matched(comp)}</td><td class=\"l\" colspan=\"2\">"
                        "<span class=\"missing\">indistinguishable from Gaussian (the ICA's unidentifiable "
                        "block): no direction in it is singled out, so no name</span></td></tr>")
            continue

        def words(pole: str, p: Mapping[str, Any] = p) -> str:
            pairs = p.get(pole, [])
            out = "; ".join(
                _e(short_phrase(w)) + (f" <small>({s:+.2f})</small>" if s is not None else "")
                for w, s in pairs[:n_words]
            )
            if "unseparated" in p and not pairs:
                out = '<span class="missing">nothing above chance</span>'
            for a, b in (p.get("unseparated") or {}).get(pole, []):
                out += (f'<br><span class="note">“{_e(short_phrase(a))}” and “{_e(short_phrase(b))}”: '
                        "not separated by the model</span>")
            return out

        body.append(
            f"<tr><td>{comp}</td><td class=\"l\">{matched(comp)}</td>"
            f'<td class="l pos">{words("positive")}</td>'
            f'<td class="l neg">{words("negative")}</td></tr>'
        )
    return (
        '<table><tr><th>component</th><th class="l">best component for (ICA best AUC)</th>'
        '<th class="l">top words, positive pole</th><th class="l">top words, negative pole</th></tr>'
        + "".join(body)
        + "</table><p class=\"note\">Words are ranked by the projection of their text embedding "
        "onto the component after centring each modality by its own mean (the modality gap)"
        + (f"; only names whose |z| exceeds the chance level {threshold:.2f} (the largest |z| "
           "random directions reach) are shown" if threshold is not None else "")
        + ". A phrase and its negation at one pole means the model does not separate them.</p>"
        + _block_names(blocks or [], n_words)
    )


def _block_names(blocks: Sequence[Mapping[str, Any]], n_words: int) -> str:
    """Names of blocks of dependent components (``naming.json``'s ``blocks``): a block has no
    poles, so its entries are ranked by the norm of their scores over its components."""
    rows = [
        f"<tr><td>{_e(', '.join(str(k) for k in b.get('block', [])))}</td><td class=\"l\">"
        + "; ".join(f"{_e(short_phrase(t.get('text', '')))} <small>({_fmt(t.get('norm'), 2)})</small>"
                    for t in (b.get("top") or [])[:n_words])
        + "</td></tr>"
        for b in blocks if len(b.get("block", [])) > 1
    ]
    if not rows:
        return ""
    return ("<h3>Blocks of dependent components</h3><table><tr><th>components</th>"
            "<th class=\"l\">top entries (norm of z over the block)</th></tr>" + "".join(rows)
            + "</table><p class=\"note\">A block (e.g. a categorical factor such as hair colour) is "
            "one unit: its entries are ranked by the length of their score vector in the block's "
            "subspace, so both poles of every member count.</p>")


def _section_traversals(interventions: Sequence[Mapping[str, Any]]) -> str:
    if not interventions:
        return _missing(
            "traversals",
            "Run <code>clipica intervene STORE --ica ICA_DIR --component I --out FILE.png</code>.",
        )
    parts = []
    # strongest first: by selectivity, unmeasured last
    def strength(item: Mapping[str, Any]) -> float:
        sel = _num(item.get("selectivity"))
        return -math.inf if sel is None else sel

    order = sorted(interventions, key=strength, reverse=True)
    for item in order:
        comp = item.get("component")
        best_for = list(item.get("best_for") or [])
        selected = item.get("selected_attribute") or item.get("attribute")
        title = f"Component {comp}"
        if best_for:
            title += " — the best single component for " + ", ".join(best_for)
        elif selected:
            title += f" — moves {selected} most"
        sel = _num(item.get("selectivity"))
        weak = sel is not None and sel < 1.0
        alphas = item.get("alphas")
        desc = []
        if selected:
            desc.append(
                f"the sweep moves the {selected} probe most"
                + (f" (selectivity {sel:.2f}: its logit change over the others' summed)" if sel is not None else "")
            )
        if alphas:
            desc.append(
                "α from "
                + _fmt(min(alphas), 1)
                + " to "
                + _fmt(max(alphas), 1)
                + " standard deviations of the component"
            )
        figs = []
        for key, label in (
            ("decoded_png", "decoded: the edited components through the decoder"),
            ("retrieval_png", "retrieved: nearest dataset images to the edited embedding"),
            ("response_png", "attribute probabilities along α"),
            ("text_png", "zero-shot text scores along α"),
        ):
            if item.get(key) is not None:
                figs.append(_img(item[key], _e(label)))
        label = (' <span class="weak">weak: selectivity below 1, the other attributes move more '
                 "than the target</span>" if weak else "")
        parts.append(
            f"<h3>{_e(title)}{label}</h3><p class=\"sub\">{_e('; '.join(desc))}. Rows are source "
            "images, columns are α steps.</p>"
            f'<div class="grid2">{"".join(figs)}</div>'
        )
    return "".join(parts)


def sweep_columns(stability: Mapping[str, Any]) -> dict[str, list]:
    """The per-K columns of a stability sweep dict (``k``, ``stability_mean``, ...)."""
    keys = ("k", "stability_mean", "stability_min", "explained_variance")
    rows = stability.get("rows")
    if isinstance(rows, (list, tuple)) and rows and all(isinstance(r, Mapping) for r in rows):
        # the typed sweep (clipica.stability/1): one record per K
        return {k: [r.get(k) for r in rows] for k in keys if all(k in r for r in rows)}
    return {k: list(stability[k]) for k in keys if isinstance(stability.get(k), (list, tuple))}


def _section_stability(stability: Mapping[str, Any] | None, stability_png: Any) -> str:
    stability = stability or {}
    cols = sweep_columns(stability)
    if stability_png is None and "k" in cols and "stability_mean" in cols:
        from clipica.viz.stability import plot_stability_vs_k

        stability_png = plot_stability_vs_k(cols, chosen_k=stability.get("chosen_k"),
                                            threshold=stability.get("threshold", 0.8))
    if stability_png is None and isinstance(stability.get("stability"), (list, tuple)):
        return _section_component_stability(stability)
    if stability_png is None:
        return _missing(
            "stability sweep over K", "Run <code>clipica stability STORE --k-grid 8 16 32 64 --out DIR</code> to choose K."
        )
    rule = stability.get("rule")
    chosen = stability.get("chosen_k")
    cap = ("Mean (and minimum) component stability over bootstrap refits (Icasso-style index) "
           "and the explained variance of the K-dimensional subspace, per K.")
    if chosen is not None:
        cap += f" Chosen K = {_e(chosen)}" + (f": {_e(rule)}." if rule else ".")
    out = _img(stability_png, cap)
    if "k" in cols and "stability_mean" in cols:
        head = "".join(f"<th>{_e(c)}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{_e(v) if c == 'k' else _fmt(v)}</td>" for c, v in
                             zip(cols, vals, strict=True)) + "</tr>"
            for vals in zip(*cols.values(), strict=True)
        )
        out += f"<table><tr>{head}</tr>{body}</table>"
    return out


def _section_component_stability(stab: Mapping[str, Any]) -> str:
    """``clipica ica --stability R``: one stability index per component at one K."""
    from clipica.viz.stability import plot_component_stability

    values = [_num(v) for v in stab["stability"]]
    cap = (f"Stability index per component over {_e(stab.get('n_runs', '?'))} bootstrap refits "
           f"(K = {_e(stab.get('n_components', len(values)))}; red: below 0.8).")
    head = "".join(f"<th>{i}</th>" for i in range(len(values)))
    body = "".join(f"<td>{_fmt(v, 2)}</td>" for v in values)
    return (_img(plot_component_stability([v if v is not None else float("nan") for v in values]), cap)
            + f'<table><tr><th class="l">component</th>{head}</tr>'
            f'<tr>{th("stability", "stability", "l")}{body}</tr></table>')


def _section_compare(doc: Mapping[str, Any]) -> str:
    """One row per method of ``compare.json``; factors scored by block (ICA) or m codes."""
    methods = doc.get("methods") or {}
    if not methods:
        return ""
    factors = [f.get("name") for f in doc.get("factors") or []]
    head = ["method", "codes", "mean score"] + [f"{_e(f)} accuracy" for f in factors] + [
        "R²", "mean L0", "dead", f"stability ({len(doc.get('seeds') or [])} seeds)", "fit s"]
    body = []
    for name, m in methods.items():
        cells = [_e(name), _e(m.get("n_components")), _fmt(m.get("attribute_score_mean"))]
        cells += [_fmt((m.get("factors") or {}).get(f, {}).get("accuracy")) for f in factors]
        cells += [_fmt(m.get("r2")), _fmt(m.get("mean_l0"), 1), _e(m.get("dead_codes")),
                  _fmt(m.get("stability")), _fmt(m.get("fit_seconds"), 1)]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    blocks = [b for b in (methods.get("ica") or {}).get("blocks") or [] if len(b) > 1]
    note = (f"<p>ICA blocks of dependent components: {_e(blocks)}.</p>" if blocks else "")
    return (
        "<p>Mean score: per binary attribute the best single code's ROC AUC; per column of a "
        "categorical factor its one-vs-rest AUC from the factor's best block (ICA) or best m "
        "codes (the others, m = values − 1).</p>" + note
        + "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(body)
        + "</table>"
    )


