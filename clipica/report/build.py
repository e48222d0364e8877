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

import datetime as _dt
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from clipica._atomic import atomic_write_text
from clipica.report.html import (  # noqa: F401 - re-exported: the report's public helpers
    _e,
    _fmt,
    _img,
    _mean,
    _missing,
    _num,
    _score,
    carried_by,
    embeddable,
    folded_auc,
    png_bytes,
    short_phrase,
)
from clipica.report.sections import (  # noqa: F401 - re-exported
    _section_compare,
    _section_component_stability,
    _section_naming,
    _section_stability,
    _section_traversals,
    naming_poles,
    naming_threshold,
    sweep_columns,
)
from clipica.report.text import glossary_section, headline, report_factors, split_warning, th

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
tr.group td{background:#eef1f5;font-style:italic}
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
p.headline.warn{border-left-color:#c0392b;background:#fdf2f0}
dl.glossary{background:#fff;border:1px solid #d9dde5;border-radius:6px;padding:8px 12px;font-size:13px}
dl.glossary dt{font-weight:600;float:left;clear:left;width:150px}dl.glossary dd{margin:0 0 4px 160px}
th[title]{cursor:help;text-decoration:underline dotted}
.weak{color:#a3261b;font-weight:600}
"""


# ------------------------------------------------------------------ small helpers


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


def _section_headline(
    rows: Mapping[str, Mapping[str, Any]], summary: Mapping[str, Any] | None,
    grouped: Sequence[str] = (),
) -> str:
    cards = []
    summary = summary or {}
    for key, label in (("n_rows", "rows"), ("model", "model"), ("k", "components K")):
        if summary.get(key) is not None:
            cards.append((label, summary[key]))
    # the cards average the binary attributes: a categorical factor's one-hot columns
    # (``grouped``) are one factor, read in the headline, not several attributes
    binary = [r for n, r in rows.items() if n not in set(grouped)]
    what = f"{len(binary)} binary attributes" if grouped else "attributes"
    if binary:
        for col, label in (("ica", "ICA"), ("pca", "PCA"), ("raw", "raw")):
            m = _mean(r[col] for r in binary)
            if m is not None:
                cards.append((f"mean best-single AUC over {what}, {label}", f"{m:.3f}"))
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
    factors: Sequence[Mapping[str, Any]] = (),
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
    n_cols = 6 + len(present) + int(has_sel)
    # binary attributes first, then each categorical factor's one-hot columns under its name
    grouped = {c: f for f in factors for c in f["columns"] if c in rows}
    order: list[tuple[str | None, Mapping[str, Any] | None]] = [
        (n, None) for n in rows if n not in grouped]
    for f in factors:
        cols = [c for c in f["columns"] if c in rows]
        if cols:
            order.append((None, f))
            order += [(c, None) for c in cols]
    body = []
    for name, group in order:
        if group is not None:
            origin = "detected from the labels" if group.get("source") == "detected" else "declared"
            body.append(f'<tr class="group"><td class="l" colspan="{n_cols}">{_e(group["name"])}: '
                        f"categorical factor ({origin}), one row per one-hot column</td></tr>")
            continue
        r = rows[name]
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
    def mean_row(label: str, names: Sequence[str]) -> str:
        sub = [rows[n] for n in names]
        cells = [f'<td class="l">{_e(label)}</td><td></td>']
        cells += [f"<td>{_fmt(_mean(r.get(c) for r in sub))}</td>"
                  for c in ("ica", "runner_up", *present, "linear_probe")]
        if has_sel:
            cells.append(f"<td>{_fmt(_mean(selectivity.get(n) for n in names), 2)}</td>")
        return '<tr class="mean">' + "".join(cells) + "<td></td></tr>"

    # one mean per group: a factor's one-hot columns are not averaged with the binary attributes
    binary = [n for n in rows if n not in grouped]
    if not grouped:
        body.append(mean_row("mean", list(rows)))
    else:
        if binary:
            body.append(mean_row(f"mean, {len(binary)} binary attributes", binary))
        for f in factors:
            cols = [c for c in f["columns"] if c in rows]
            if cols:
                body.append(mean_row(f"mean, {f['name']} columns", cols))
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
        + (f" — here: <b>{_e(', '.join(losers[:10]))}</b>"
           + (f" and {len(losers) - 10} more." if len(losers) > 10 else ".") if losers else ".")
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
            # scores only: the settings stored beside them (rows, seed, trees) go in the caption
            parts_ = [k for k in _SCORE_PARTS if _num(value.get(k)) is not None]
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
        parts.append(
            "<h3>Disentanglement scores against the binary attributes</h3>"
            f'<table><tr><th class="l">metric</th>{head}</tr>{body}</table>'
            + _metric_settings(other)
        )
    return "".join(parts)


#: the parts of a metric entry in probe.json that are scores (the rest are its settings)
_SCORE_PARTS = ("score", "disentanglement", "completeness", "informativeness")


def _metric_settings(metrics: Mapping[str, Any]) -> str:
    """One caption line per distinct setting: rows, subsample seed, DCI's trees."""
    said = []
    for name, v in metrics.items():
        if not isinstance(v, Mapping) or not v.get("n_rows"):
            continue
        bits = [f"{_e(v['n_rows'])} rows"]
        if v.get("subsample_seed") is not None:
            bits.append(f"subsample seed {_e(v['subsample_seed'])}")
        if v.get("n_estimators"):
            bits.append(f"{_e(v['n_estimators'])} trees of depth {_e(v.get('max_depth'))}, "
                        f"{_e(v.get('test_size'))} held out")
        said.append(f"{_e(name.upper() if len(name) <= 3 else name)}: " + ", ".join(bits))
    return f'<p class="sub">computed on {"; ".join(said)}.</p>' if said else ""


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
    factors: Sequence[Mapping[str, Any]] = (),
    fewshot: Mapping[str, Any] | None = None,
    match: Mapping[str, Any] | None = None,
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
    factors : list of dict, optional
        Categorical factors (``name``, ``columns``, ``source``: declared or detected from the
        labels, :mod:`clipica.data.label_groups`): the headline reads their one-hot columns
        as one factor, scored as a block where ``compare`` has block scores.
    fewshot : dict, optional
        The content of ``fewshot.json`` (``clipica fewshot``): Liu et al.'s few-shot probes.
    match : dict, optional
        ``match.json`` (``clipica match``) with ``_side`` (``"a"`` or ``"b"``: this run).
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
    poles = naming_poles(naming)
    if metrics is None and probe:
        metrics = {k: probe[k] for k in ("mcc", "dci", "mig", "sap", "modularity") if probe.get(k)}
    facs = report_factors(factors, compare)
    sections = _top_sections(title, summary, rows, probe, compare, facs, poles)
    sections += _figure_sections(rows, heatmap)
    metrics = dict(metrics or {})
    # "ground truth" only when there are ground-truth latents (MCC); the other scores are
    # against the labelled attributes and get their own heading
    gt = _section_ground_truth({"mcc": metrics.pop("mcc")} if metrics.get("mcc") else None)
    if gt:
        sections += ["<h2>Against the ground truth</h2>", gt]
    sections.append(_section_ground_truth(metrics))  # its own h3: scores against the attributes
    sections += _lower_sections(rows, poles, naming, interventions, stability, stability_png, compare,
                                fewshot, extra_figures, provenance, summary.get("timings"), match)
    doc = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        + "\n".join(s for s in sections if s)
        + "</main></body></html>\n"
    )
    path = out_dir / filename
    atomic_write_text(path, doc)
    return path


def _attribute_names(rows: Mapping[str, Mapping[str, Any]], summary: Mapping[str, Any],
                     poles: Mapping[int, Mapping[str, list]]) -> tuple[dict, dict]:
    """``(selectivity, top_words)`` per attribute for the probe table."""
    attr_summary = summary.get("attributes") or {}
    selectivity = {a: v.get("selectivity") for a, v in attr_summary.items() if isinstance(v, Mapping)}
    top_words = {a: v.get("top_words") or [] for a, v in attr_summary.items() if isinstance(v, Mapping)}
    for attr, r in rows.items():  # names from the naming JSON (above chance) win over the summary's
        comp = r.get("best_component")
        if comp is not None and int(comp) in poles:
            pole = "negative" if r.get("pole") == "-" else "positive"
            top_words[attr] = [w for w, _ in poles[int(comp)].get(pole, [])]
    # a component's names describe the attribute it separates best at that pole, not the
    # near-chance attributes whose best code it happens to be (Chubby on the Pale_Skin code)
    owner = {}
    for attr, r in rows.items():
        if r.get("best_component") is not None:
            strong, _ = carried_by({a: q for a, q in rows.items() if q.get("pole") == r.get("pole")},
                                   int(r["best_component"]))
            owner[attr] = bool(strong) and strong[0][0] == attr
    return selectivity, {a: (w if owner.get(a, True) else []) for a, w in top_words.items()}


def _top_sections(title: str, summary: Mapping[str, Any], rows: Mapping[str, Mapping[str, Any]],
                  probe: Any, compare: Any, facs: list, poles: Mapping[int, Mapping[str, list]]) -> list[str]:
    """Title, headline, warnings, the cards and the probe table."""
    subtitle = " · ".join(
        f"{k} {summary[k]}" for k in ("model", "data") if summary.get(k) is not None
    ) or "ICA components of CLIP embeddings"
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    # the convergence of the fits is said in the headline (text.convergence_headline)
    warn = ""
    block = summary.get("ica_gaussian_block") or []
    if block:
        warn += (
            f'<p class="note"><b>Components {block[0]}–{block[-1]} ({len(block)} of '
            f"{_e(summary.get('k'))}) are one unidentifiable Gaussian block</b>: the data have no "
            "preferred rotation there, so no single one of them means anything; they are not named, "
            "and the ICA's convergence is judged on the components before them.</p>"
        )
    split = probe.get("split") if isinstance(probe, Mapping) else None
    present = [b for b in BASELINES if any(r.get(b) is not None for r in rows.values())]
    selectivity, top_words = _attribute_names(rows, summary, poles)
    return [
        f"<h1>{_e(title)}</h1><p class=\"sub\">{_e(subtitle)} — generated {now}</p>",
        # a fit that did not converge is said first, in the headline
        headline(rows, present, compare, facs,
                 categorical=probe.get("categorical") if isinstance(probe, Mapping) else None,
                 summary=summary),
        warn,
        split_warning(split),
        _section_headline(rows, summary, [c for f in facs for c in f["columns"]]),
        "<h2>Which component carries which attribute</h2>",
        _section_probe_table(rows, selectivity, top_words, facs),
    ]


def _figure_sections(rows: Mapping[str, Mapping[str, Any]], heatmap: Any) -> list[str]:
    sections = []
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
    return sections


def _lower_sections(rows, poles, naming, interventions, stability, stability_png, compare, fewshot,
                    extra_figures, provenance, timings, match=None) -> list[str]:
    """Names, traversals, stability, the other decompositions, few-shot, glossary, provenance."""
    sections: list[str] = []
    sections += [
        "<h2>Component names from the text encoder</h2>",
        _section_naming(poles, rows, threshold=naming_threshold(naming),
                        blocks=naming.get("blocks") if isinstance(naming, Mapping) else None,
                        gaussian=(naming.get("unidentifiable") or ()) if isinstance(naming, Mapping) else ()),
        "<h2>Traversals, strongest first</h2>",
        _section_traversals(list(interventions)),
        "<h2>Stability of the components</h2>",
        _section_stability(stability, stability_png),
    ]
    if compare:
        sections += ["<h2>Other decompositions on the same rows</h2>", _section_compare(compare)]
    if fewshot:
        from clipica.report.fewshot import section_fewshot

        sections += ["<h2>Few-shot probes with ICA, in-domain and under shift</h2>", section_fewshot(fewshot)]
    if match:
        from clipica.report.match import section_match

        sections += ["<h2>The same components in another run</h2>", section_match(match)]
    for caption, fig in extra_figures:
        sections.append(_img(fig, _e(caption)))
    sections += ["<h2>Glossary</h2>", glossary_section()]
    sections += [
        "<h2>Provenance</h2>",
        _section_provenance(provenance, timings),
    ]
    return sections
