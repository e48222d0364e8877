"""The HTML report: one self-contained file a person can open in any browser.

:func:`build_report` renders typed results — ``probe.json`` (``clipica probe``),
``ica.json`` (``clipica ica``), the naming result (``clipica name``), the
intervention results + PNGs (``clipica intervene``), a stability sweep
(``clipica stability``) — into ``report.html``. It computes nothing: gathering the
valid results of a run folder (and computing missing ones) is
:func:`clipica.pipeline.report_stage`. Every image is embedded as a base64 PNG and
the CSS is inline, so the file can be mailed or archived alone. An image given as a
path is embedded only when it lies inside the report's folder (symlinks resolved), so
a hand-edited result cannot pull another file of the machine into the report.
Sections whose inputs are absent say so instead of disappearing, so a reader knows
what was not computed.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from clipica._atomic import atomic_write_text
from clipica.report_text import glossary_section, headline, split_warning, th

BASELINES = ("pca", "raw", "random_rotation")
_BASELINE_LABELS = {"pca": "PCA", "raw": "raw", "random_rotation": "random rot."}

_CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;
     color:#1d2330;background:#f6f7f9;line-height:1.45}
main{max-width:1280px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:20px;margin:32px 0 8px;
   border-bottom:2px solid #d9dde5;padding-bottom:4px}h3{font-size:16px;margin:18px 0 6px}
.sub{color:#5a6475;margin:0 0 12px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{background:#fff;border:1px solid #d9dde5;border-radius:8px;padding:10px 14px;min-width:130px}
.card .v{font-size:22px;font-weight:600}.card .k{color:#5a6475;font-size:12px}
table{border-collapse:collapse;background:#fff;font-size:13px;margin:8px 0}
th,td{border:1px solid #d9dde5;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#eef1f5}td.l,th.l{text-align:left}
td.win{background:#dff3e3;font-weight:600}td.lose{background:#fbe3e1}
tr.mean td{font-weight:600;border-top:2px solid #9aa3b2}
figure{margin:10px 0;background:#fff;border:1px solid #d9dde5;border-radius:8px;padding:8px;
       display:inline-block;max-width:100%}
figure img{max-width:100%;height:auto;display:block}
figcaption{color:#5a6475;font-size:12px;margin-top:4px;max-width:1180px}
.grid2{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.note{background:#fff8e1;border:1px solid #f0d98a;border-radius:6px;padding:8px 12px;font-size:13px}
.missing{color:#8a6d00;font-style:italic}
code,pre{font-family:SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
pre{background:#fff;border:1px solid #d9dde5;border-radius:6px;padding:8px;overflow-x:auto;
    white-space:pre-wrap}
.pos{color:#0b6b2e}.neg{color:#a3261b}
p.headline{font-size:15px;background:#fff;border-left:4px solid #1f5fbf;padding:8px 12px;margin:8px 0}
dl.glossary{background:#fff;border:1px solid #d9dde5;border-radius:6px;padding:8px 12px;font-size:13px}
dl.glossary dt{font-weight:600;float:left;clear:left;width:150px}dl.glossary dd{margin:0 0 4px 160px}
th[title]{cursor:help;text-decoration:underline dotted}
.weak{color:#a3261b;font-weight:600}
"""


# ------------------------------------------------------------------ small helpers


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _fmt(value: Any, digits: int = 3) -> str:
    v = _num(value)
    return "–" if v is None else f"{v:.{digits}f}"


def png_bytes(image: Any, dpi: int = 110) -> bytes:
    """PNG bytes of a matplotlib Figure, a PNG path, or bytes (returned as is)."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        return Path(image).read_bytes()
    if hasattr(image, "savefig"):
        buf = io.BytesIO()
        image.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(image)
        return buf.getvalue()
    raise TypeError(f"cannot turn {type(image).__name__} into a PNG")


def embeddable(image: Any, root: str | os.PathLike) -> Any:
    """``image`` if it is a Figure or bytes; a path's bytes if the file lies inside ``root``
    (resolved, so ``..`` and symlinks that leave it are refused); else None (not embedded)."""
    if image is None or not isinstance(image, (str, os.PathLike)):
        return image
    base = Path(root).resolve()
    target = Path(image).resolve()
    if base not in target.parents or not target.is_file():
        return None
    return target.read_bytes()


def _img(image: Any, caption: str = "", alt: str = "") -> str:
    data = base64.b64encode(png_bytes(image)).decode("ascii")
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return (
        f'<figure><img alt="{_e(alt or caption)}" src="data:image/png;base64,{data}">{cap}</figure>'
    )


def _missing(what: str, how: str) -> str:
    return f'<p class="missing">Not computed: {_e(what)}. {how}</p>'


_PROMPT_PREFIXES = ("a photo of a person ", "a photo of an ", "a photo of a ", "a photo of ")


def short_phrase(text: Any) -> str:
    """'a photo of a person wearing a hat' -> 'wearing a hat' (display only)."""
    text = str(text)
    for prefix in _PROMPT_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def folded_auc(value: Any) -> float | None:
    """max(AUC, 1 - AUC): a single code separates an attribute equally well from either pole."""
    v = _num(value)
    return None if v is None else max(v, 1.0 - v)


# ------------------------------------------------------------------ probe.json reading


def probe_attributes(probe: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-attribute rows from a ``probe.json`` dict, normalised for the tables.

    Returns ``{attribute: {"best_component", "ica", "runner_up", "linear_probe",
    "pca", "raw", "random_rotation"}}`` where the AUCs are folded (>= 0.5, see
    :func:`folded_auc`) and ``pole`` is ``+`` or ``-`` (the sign of the best component).
    """
    attrs = probe.get("attributes", probe)
    out: dict[str, dict[str, Any]] = {}
    for name, entry in attrs.items():
        if not isinstance(entry, Mapping) or "best_auc" not in entry:
            continue
        raw_auc = _num(entry.get("best_auc"))
        row = {
            "best_component": entry.get("best_component"),
            "pole": entry.get("pole") or ("-" if raw_auc is not None and raw_auc < 0.5 else "+"),
            "ica": folded_auc(raw_auc),
            "runner_up": folded_auc(entry.get("runner_up_auc")),
            "linear_probe": _num(entry.get("linear_probe_auc")),
            "n_pos": entry.get("n_positive"),
        }
        for base in BASELINES:
            row[base] = folded_auc(_baseline_value(entry, base, "best_auc"))
            row[f"{base}_linear_probe"] = _num(_baseline_value(entry, base, "linear_probe_auc"))
        out[str(name)] = row
    return out


def _baseline_value(entry: Mapping[str, Any], base: str, key: str) -> Any:
    """``entry[base][key]``, ``entry[f"{base}_{key}"]`` or ``entry["baselines"][base][key]``."""
    nested = entry.get(base)
    if isinstance(nested, Mapping) and key in nested:
        return nested[key]
    if f"{base}_{key}" in entry:
        return entry[f"{base}_{key}"]
    group = entry.get("baselines")
    if isinstance(group, Mapping) and isinstance(group.get(base), Mapping):
        return group[base].get(key)
    return None


def _mean(values: Iterable[Any]) -> float | None:
    vals = [v for v in (_num(x) for x in values) if v is not None]
    return sum(vals) / len(vals) if vals else None


# ------------------------------------------------------------------ sections


def _section_headline(
    rows: Mapping[str, Mapping[str, Any]], summary: Mapping[str, Any] | None
) -> str:
    cards = []
    summary = summary or {}
    for key, label in (("n_rows", "rows"), ("model", "model"), ("k", "components K")):
        if summary.get(key) is not None:
            cards.append((label, summary[key]))
    if rows:
        for col, label in (("ica", "ICA"), ("pca", "PCA"), ("raw", "raw")):
            m = _mean(r[col] for r in rows.values())
            if m is not None:
                cards.append((f"mean best-single AUC, {label}", f"{m:.3f}"))
    stab = summary.get("stability_mean")
    if _num(stab) is not None:
        cards.append(("mean component stability", f"{float(stab):.3f}"))
    if not cards:
        return ""
    inner = "".join(
        f'<div class="card"><div class="v">{_e(v)}</div><div class="k">{_e(k)}</div></div>'
        for k, v in cards
    )
    return f'<div class="cards">{inner}</div>'


def _section_probe_table(
    rows: Mapping[str, Mapping[str, Any]],
    selectivity: Mapping[str, Any],
    top_words: Mapping[str, Sequence[str]],
) -> str:
    if not rows:
        return _missing("attribute probes", "Run <code>clipica probe STORE --ica ICA_DIR --out DIR</code>.")
    present = [b for b in BASELINES if any(r.get(b) is not None for r in rows.values())]
    # a column of dashes says nothing: selectivity only when some traversal measured it
    has_sel = any(_num(selectivity.get(n)) is not None for n in rows)
    head = (
        '<tr><th class="l">attribute</th><th>best comp.</th>' + th("ICA best AUC", "best-single AUC")
        + th("runner-up", "runner-up")
        + "".join(th(f"{_BASELINE_LABELS[b]} best AUC", "best-single AUC") for b in present)
        + th("linear probe AUC", "linear probe AUC")
        + (th("selectivity", "selectivity") if has_sel else "")
        + "<th class=\"l\">names at the attribute's pole (above chance)</th></tr>"
    )
    body = []
    for name, r in rows.items():
        ica = r.get("ica")
        cells = [f'<td class="l">{_e(name)}</td>']
        comp = r.get("best_component")
        cells.append(f"<td>{_e(comp) if comp is not None else '–'}{_e(r.get('pole', ''))}</td>")
        base_vals = [r.get(b) for b in present]
        beats = ica is not None and all(v is None or ica > v for v in base_vals)
        cls = "win" if beats else "lose"
        cells.append(f'<td class="{cls}">{_fmt(ica)}</td><td>{_fmt(r.get("runner_up"))}</td>')
        cells += [f"<td>{_fmt(v)}</td>" for v in base_vals]
        cells.append(f"<td>{_fmt(r.get('linear_probe'))}</td>")
        if has_sel:
            cells.append(f"<td>{_fmt(selectivity.get(name), 2)}</td>")
        words = top_words.get(name) or []
        cells.append(f'<td class="l">{_e("; ".join(short_phrase(w) for w in words[:3]))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    means = [
        '<td class="l">mean</td><td></td>',
        f"<td>{_fmt(_mean(r.get('ica') for r in rows.values()))}</td>",
        f"<td>{_fmt(_mean(r.get('runner_up') for r in rows.values()))}</td>",
    ]
    means += [f"<td>{_fmt(_mean(r.get(b) for r in rows.values()))}</td>" for b in present]
    means.append(f"<td>{_fmt(_mean(r.get('linear_probe') for r in rows.values()))}</td>")
    means.append((f"<td>{_fmt(_mean(selectivity.get(n) for n in rows), 2)}</td>" if has_sel else "")
                 + "<td></td>")
    body.append('<tr class="mean">' + "".join(means) + "</tr>")
    losers = [
        n
        for n, r in rows.items()
        if r.get("ica") is not None
        and any(r.get(b) is not None and r["ica"] <= r[b] for b in present)
    ]
    note = (
        "<p class=\"note\">ROC AUC of the single best code for each attribute, folded to "
        "max(AUC, 1 − AUC) (a component separates an attribute from either pole; the sign after "
        "the component index says which). Baselines use the same rows and the same K: PCA "
        "components, raw embedding dimensions, and a random rotation of the whitened data. "
        "Green: ICA beats every baseline; red: it does not"
        + (f" — here: <b>{_e(', '.join(losers))}</b>." if losers else ".")
        + " The linear probe uses all ICA components and is scored on held-out rows.</p>"
    )
    return f"<table>{head}{''.join(body)}</table>{note}"


def _section_ground_truth(metrics: Mapping[str, Any] | None) -> str:
    if not metrics:
        return ""
    parts = []
    mcc = metrics.get("mcc")
    if isinstance(mcc, Mapping) and mcc:
        head = "".join(f"<th>{_e(k)}</th>" for k in mcc)
        vals = "".join(f"<td>{_fmt(_score(v))}</td>" for v in mcc.values())
        parts.append(
            "<h3>MCC against the ground-truth latents</h3>"
            f'<table><tr><th class="l">representation</th>{head}</tr>'
            f'<tr><td class="l">MCC</td>{vals}</tr></table>'
        )
    other = {k: v for k, v in metrics.items() if k != "mcc" and v is not None}
    if other:
        # one row per (metric, part), one column per representation: ICA, then its baselines
        reps = ["ica"]
        for value in other.values():
            if isinstance(value, Mapping):
                reps += [r for r in (value.get("baselines") or {}) if r not in reps]
        rows = []
        for name, value in other.items():
            if not isinstance(value, Mapping):
                rows.append((name, {"ica": value}))
                continue
            base = value.get("baselines") or {}
            parts_ = [k for k, v in value.items() if k not in ("baselines", "n_rows")
                      and _num(v) is not None]
            for part in parts_:
                label = name if part == "score" else f"{name} {part}"
                vals = {"ica": value[part]}
                vals.update({r: (base.get(r) or {}).get(part) for r in base})
                rows.append((label, vals))
        head = "".join(f"<th>{_e(r)}</th>" for r in reps)
        body = "".join(
            f'<tr><td class="l">{_e(label)}</td>'
            + "".join(f"<td>{_fmt(vals.get(r))}</td>" for r in reps)
            + "</tr>"
            for label, vals in rows
        )
        n_rows = next((v.get("n_rows") for v in other.values()
                       if isinstance(v, Mapping) and v.get("n_rows")), None)
        parts.append(
            "<h3>Disentanglement scores against the binary attributes</h3>"
            f'<table><tr><th class="l">metric</th>{head}</tr>{body}</table>'
            + (f'<p class="sub">computed on {_e(n_rows)} rows.</p>' if n_rows else "")
        )
    return "".join(parts)


def _score(value: Any) -> Any:
    if isinstance(value, Mapping):
        for key in ("score", "mcc", "value", "mean"):
            if key in value:
                return value[key]
    return value


def naming_poles(naming: Mapping[str, Any] | Sequence[Any] | None) -> dict[int, dict[str, list]]:
    """``{component: {"positive": [(word, score)], "negative": [...]}}`` from naming JSON.

    When the JSON carries ``named`` (``clipica name`` with a chance level), only the names
    above chance are returned, and ``"unseparated"``: ``{"positive": [(phrase, negation)],
    "negative": [...]}`` lists the pairs the model does not separate at that pole.
    """
    if not naming:
        return {}
    comps = naming.get("components", naming) if isinstance(naming, Mapping) else naming
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
            poles[pole] = pairs
        out[idx] = poles
    return out


def naming_threshold(naming: Any) -> float | None:
    """The chance level ``|z|`` of a naming JSON (``chance.threshold``), or None."""
    if isinstance(naming, Mapping) and isinstance(naming.get("chance"), Mapping):
        return _num(naming["chance"].get("threshold"))
    return None


def _section_naming(
    poles: Mapping[int, Mapping[str, list]], rows: Mapping[str, Mapping[str, Any]], n_words: int = 5,
    threshold: float | None = None,
) -> str:
    if not poles:
        return _missing(
            "component names", "Run <code>clipica name STORE --ica ICA_DIR</code> to name components."
        )
    matched: dict[int, list[str]] = {}
    for attr, r in rows.items():
        if r.get("best_component") is not None:
            matched.setdefault(int(r["best_component"]), []).append(f"{attr}{r.get('pole', '')}")
    body = []
    for comp in sorted(poles):
        p = poles[comp]

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
            f"<tr><td>{comp}</td><td class=\"l\">{_e(', '.join(matched.get(comp, [])))}</td>"
            f'<td class="l pos">{words("positive")}</td>'
            f'<td class="l neg">{words("negative")}</td></tr>'
        )
    return (
        '<table><tr><th>component</th><th class="l">best component for (probe)</th>'
        '<th class="l">top words, positive pole</th><th class="l">top words, negative pole</th></tr>'
        + "".join(body)
        + "</table><p class=\"note\">Words are ranked by the projection of their text embedding "
        "onto the component after centring each modality by its own mean (the modality gap)"
        + (f"; only names whose |z| exceeds the chance level {threshold:.2f} (the largest |z| "
           "random directions reach) are shown" if threshold is not None else "")
        + ". A phrase and its negation at one pole means the model does not separate them.</p>"
    )


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


def _section_provenance(provenance: Mapping[str, Any] | None, timings: Mapping[str, Any] | None) -> str:
    import platform

    from clipica._version import __version__

    prov = dict(provenance or {})
    versions = prov.pop("versions", None) or _versions()
    commands = prov.pop("commands", None)
    rows = [("clipica", __version__), ("python", platform.python_version())]
    rows += [(k, v) for k, v in versions.items() if k != "clipica"]
    rows += [
        (k, json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
        for k, v in prov.items()
    ]
    table = "".join(f'<tr><td class="l">{_e(k)}</td><td class="l">{_e(v)}</td></tr>' for k, v in rows)
    out = f'<table><tr><th class="l">what</th><th class="l">value</th></tr>{table}</table>'
    if timings:
        trow = "".join(
            f'<tr><td class="l">{_e(k)}</td><td>{_fmt(v, 1)}</td></tr>' for k, v in timings.items()
        )
        out += (
            "<h3>Wall time per stage (seconds)</h3>"
            f'<table><tr><th class="l">stage</th><th>s</th></tr>{trow}</table>'
        )
    if commands:
        out += "<h3>Commands</h3><pre>" + _e("\n".join(commands)) + "</pre>"
    return out


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("numpy", "scikit-learn", "torch", "open_clip_torch", "matplotlib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


# ------------------------------------------------------------------ entry point


def build_report(
    out_dir: str | os.PathLike,
    *,
    probe: Mapping[str, Any] | None = None,
    heatmap: Any = None,
    naming: Mapping[str, Any] | Sequence[Any] | None = None,
    interventions: Sequence[Mapping[str, Any]] = (),
    stability: Mapping[str, Any] | None = None,
    stability_png: Any = None,
    summary: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    extra_figures: Sequence[tuple[str, Any]] = (),
    compare: Mapping[str, Any] | None = None,
    title: str = "clipica report",
    filename: str = "report.html",
) -> Path:
    """Render the report and write ``out_dir/report.html`` atomically; return its path.

    Parameters
    ----------
    probe : dict, optional
        The content of ``probe.json`` (per attribute ``best_component``, ``best_auc``,
        ``runner_up_auc``, ``linear_probe_auc`` and the baselines' ``best_auc``).
    heatmap : Figure, PNG path or bytes, optional
        The attribute × component score heatmap. Every PNG path (here and below) is
        embedded only when it lies inside ``out_dir`` (see :func:`embeddable`).
    naming : dict or list, optional
        Naming JSON: per component the top words at the positive and negative pole.
    interventions : list of dict
        One per traversed component: ``component``, ``attribute``, ``selectivity``,
        ``alphas`` and any of ``decoded_png``, ``retrieval_png``, ``response_png``,
        ``text_png`` (Figure, path or bytes).
    stability : dict, optional
        A K sweep: ``k`` (list), ``stability_mean`` (list), optionally
        ``explained_variance``, ``chosen_k``, ``rule``. Drawn unless ``stability_png``.
    summary : dict, optional
        Headline figures (``n_rows``, ``model``, ``k``, ``stability_mean``, ``timings``).
        ``summary["attributes"][name]["selectivity" | "top_words"]`` fill those columns.
    metrics : dict, optional
        ``mcc`` ({ica, pca, raw}) against ground-truth latents and scores such as ``dci``.
    provenance : dict, optional
        Model, data, store path...; ``versions`` (dict) and ``commands`` (list of str)
        get their own rendering.
    compare : dict, optional
        The content of ``compare.json`` (``clipica compare``): one row per decomposition.
    """
    out_dir = Path(out_dir)
    heatmap, stability_png = embeddable(heatmap, out_dir), embeddable(stability_png, out_dir)
    interventions = [
        {k: (embeddable(v, out_dir) if k.endswith("_png") else v) for k, v in item.items()}
        for item in interventions
    ]
    extra_figures = [(c, f) for c, f in ((c, embeddable(f, out_dir)) for c, f in extra_figures)
                     if f is not None]
    rows = probe_attributes(probe) if probe else {}
    summary = dict(summary or {})
    attr_summary = summary.get("attributes") or {}
    selectivity = {a: v.get("selectivity") for a, v in attr_summary.items() if isinstance(v, Mapping)}
    top_words = {a: v.get("top_words") or [] for a, v in attr_summary.items() if isinstance(v, Mapping)}
    poles = naming_poles(naming)
    for attr, r in rows.items():  # names from the naming JSON (above chance) win over the summary's
        comp = r.get("best_component")
        if comp is not None and int(comp) in poles:
            pole = "negative" if r.get("pole") == "-" else "positive"
            top_words[attr] = [w for w, _ in poles[int(comp)].get(pole, [])]
    if metrics is None and probe:
        metrics = {k: probe[k] for k in ("mcc", "dci", "mig", "sap", "modularity") if probe.get(k)}

    subtitle = " · ".join(
        f"{k} {summary[k]}" for k in ("model", "data") if summary.get(k) is not None
    ) or "ICA components of CLIP embeddings"
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    warn = ""
    if summary.get("ica_converged") is False:
        warn = (
            '<p class="note"><b>The ICA did not converge</b> within its iteration limit '
            f"({_e(summary.get('ica_n_iter'))} iterations): components may change with the seed. "
            "Refit with a larger <code>--max-iter</code>, or a smaller K, and compare.</p>"
        )
    split = probe.get("split") if isinstance(probe, Mapping) else None
    present = [b for b in BASELINES if any(r.get(b) is not None for r in rows.values())]
    sections = [
        f"<h1>{_e(title)}</h1><p class=\"sub\">{_e(subtitle)} — generated {now}</p>",
        headline(rows, present, compare),
        warn,
        split_warning(split),
        _section_headline(rows, summary),
        "<h2>Which component carries which attribute</h2>",
        _section_probe_table(rows, selectivity, top_words),
    ]
    if rows:
        from clipica.viz.report_figures import plot_auc_comparison

        sections.append(
            _img(
                plot_auc_comparison(rows, columns=("ica", "pca", "raw", "random_rotation")),
                "Best single-code ROC AUC per attribute: ICA components against PCA components "
                "(same K), raw embedding dimensions and a random rotation of the whitened data.",
            )
        )
    if heatmap is not None:
        sections.append(
            _img(
                heatmap,
                "Attribute × component scores: colour is 2 (AUC − 0.5), red for the + pole and "
                "blue for the − pole; the numbers are the folded AUC, max(AUC, 1 − AUC), as in "
                "the table. Components reordered so each attribute's best match lies on the diagonal.",
            )
        )
    metrics = dict(metrics or {})
    # "ground truth" only when there are ground-truth latents (MCC); the other scores are
    # against the labelled attributes and get their own heading
    gt = _section_ground_truth({"mcc": metrics.pop("mcc")} if metrics.get("mcc") else None)
    if gt:
        sections += ["<h2>Against the ground truth</h2>", gt]
    sections.append(_section_ground_truth(metrics))  # its own h3: scores against the attributes
    sections += [
        "<h2>Component names from the text encoder</h2>",
        _section_naming(poles, rows, threshold=naming_threshold(naming)),
        "<h2>Traversals, strongest first</h2>",
        _section_traversals(list(interventions)),
        "<h2>Stability of the components</h2>",
        _section_stability(stability, stability_png),
    ]
    if compare:
        sections += ["<h2>Other decompositions on the same rows</h2>", _section_compare(compare)]
    for caption, fig in extra_figures:
        sections.append(_img(fig, _e(caption)))
    sections += ["<h2>Glossary</h2>", glossary_section()]
    sections += [
        "<h2>Provenance</h2>",
        _section_provenance(provenance, summary.get("timings")),
    ]
    doc = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        + "\n".join(s for s in sections if s)
        + "</main></body></html>\n"
    )
    path = out_dir / filename
    atomic_write_text(path, doc)
    return path
