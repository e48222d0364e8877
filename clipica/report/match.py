"""The report's match section: ``RUN/match/match.json`` (``clipica match``) seen from this run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clipica.report.html import _e, _fmt, _img


def _other(doc: Mapping[str, Any], side: str) -> str:
    info = (doc.get("inputs") or {}).get("b" if side == "a" else "a") or {}
    parts = [info.get("run"), info.get("model"), info.get("pretrained") and f"weights {info['pretrained']}",
             info.get("layer") and f"layer {info['layer']}", info.get("k") and f"K = {info['k']}"]
    return ", ".join(_e(p) for p in parts if p) or "another run"


def _pairs_table(pairs, side: str) -> str:
    me, them = ("a", "b") if side == "a" else ("b", "a")
    rows = []
    for p in pairs:
        noise = p.get(f"significant_{me}") is False or p.get(f"significant_{them}") is False
        flag = ' <span class="missing">(Gaussian: noise)</span>' if noise else ""
        rows.append(f"<tr><td>{p[me]}</td><td>{p[them]}</td><td>{p['corr']:+.3f}</td>"
                    f"<td class=\"l\">{_e(p.get(f'attribute_{me}') or '')}</td>"
                    f"<td class=\"l\">{_e(p.get(f'attribute_{them}') or '')}{flag}</td></tr>")
    return ("<table><tr><th>this run</th><th>other run</th><th>r</th><th class=\"l\">attribute here</th>"
            "<th class=\"l\">attribute there</th></tr>" + "".join(rows) + "</table>")


def _blocks_table(blocks, side: str) -> str:
    if not blocks:
        return ""
    me, them = ("a", "b") if side == "a" else ("b", "a")
    rows = "".join(
        f"<tr><td>{_e(', '.join(map(str, b[me])))}</td><td>{_e(', '.join(map(str, b[them])))}</td>"
        f"<td>{_e(', '.join(f'{v:.2f}' for v in b['canonical']))}</td>"
        f"<td class=\"l\">{'Gaussian remainder' if b.get(f'gaussian_{me}') else _e(b.get('partner', ''))}</td></tr>"
        for b in blocks)
    return ("<h3>Blocks matched as subspaces</h3><table><tr><th>this run</th><th>other run</th>"
            "<th>canonical correlations</th><th class=\"l\">partner</th></tr>" + rows + "</table>")


def section_match(doc: Mapping[str, Any]) -> str:
    """HTML for a ``clipica.match/1`` result whose ``_side`` (``"a"`` or ``"b"``) is this run: the
    headline figures against the PCA control, the heatmap, the pairs and the blocks."""
    from clipica.match import MatchResult
    from clipica.viz.match import plot_match

    side = doc.get("_side", "a")
    res = MatchResult.from_dict({k: v for k, v in doc.items() if not str(k).startswith("_")})
    s, rows = res.summary, res.rows
    line = (f"Matched with {_other(doc, side)} on {rows.get('n_shared')} shared rows: the {s.get('top')} strongest "
            f"pairs have mean |r| {_fmt(s.get('top_mean'), 3)} (all {s.get('n_pairs')}: {_fmt(s.get('mean_abs_corr'), 3)})")
    if res.control is not None:
        c = res.control.summary
        line += f", against {_fmt(c.get('top_mean'), 3)} for PCA with the same K (the control)"
    line += "."
    if "attributes_min" in s:
        line += (f" Each binary attribute's best component and its twin: |r| min {_fmt(s['attributes_min'], 3)}, "
                 f"mean {_fmt(s['attributes_mean'], 3)}.")
    here = "rows" if side == "a" else "columns"
    caption = (f"|r| between run A's components (rows) and run B's (columns); this run is the {here}. "
               "Matched pairs on the diagonal; right: PCA with the same K.")
    return (f"<p><b>{line}</b></p>" + _img(plot_match(res), caption)
            + _pairs_table(res.pairs, side) + _blocks_table(res.blocks, side)
            + "<p class=\"note\">Pairs from a one-to-one matching on |r| (Hungarian); blocks of dependent "
            "components compared as subspaces (canonical correlations), since inside a block the axes are "
            "not identified. A pair with a component indistinguishable from Gaussian is noise.</p>")
