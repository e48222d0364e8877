"""Regenerate the result tables of README.md and docs/*.md from the JSON the commands write.

    python tools/docs_tables.py [--check]      (or: make docs-tables)

Each table sits between two markers in its page::

    <!-- table:demo (runs/demo/summary.json) -->
    ...generated...
    <!-- /table:demo -->

and is rewritten from the JSON named in the marker, relative to the repository root
(``runs/demo/summary.json`` is what ``make demo`` writes). A table
whose JSON is missing is left as it is and reported, so a page never shows half a table.
``--check`` rewrites nothing and exits 1 when a table differs from its JSON (for CI).

The commands that write each JSON are on the pages, next to the tables.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(
    r"(?P<open><!-- table:(?P<name>[\w-]+) \((?P<src>[^)]+)\) -->\n)(?P<body>.*?)(?P<close><!-- /table:(?P=name) -->)",
    re.S,
)


def _f(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _bold_max(values: dict[str, float | None], digits: int = 3) -> dict[str, str]:
    """Each value formatted, the largest (as shown) in bold."""
    shown = {k: _f(v, digits) for k, v in values.items()}
    nums = [float(s) for s in shown.values() if s != "–"]
    top = max(nums) if nums else None
    return {k: (f"**{s}**" if s != "–" and float(s) == top else s) for k, s in shown.items()}


def demo_table(s: dict) -> str:
    """The demo's table (``summary.json`` of ``clipica demo``): per attribute, then per group."""
    out = [
        "| attribute | component | ICA | PCA | raw | ICA runner-up | linear probe | selectivity | top words |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, a in s["attributes"].items():
        b = _bold_max({m: a.get(f"{m}_best_auc") for m in ("ica", "pca", "raw")})
        words = ", ".join(a.get("top_words") or []) or "–"
        comp = f"{a.get('best_component')}{a.get('pole') or ''}"
        out.append(f"| {name} | {comp} | {b['ica']} | {b['pca']} | {b['raw']} | {_f(a.get('runner_up_auc'))} "
                   f"| {_f(a.get('linear_probe_auc'))} | {_f(a.get('selectivity'), 2)} | {words} |")
    for gname, g in (s.get("groups") or {}).items():
        n = len(g.get("attributes") or [])
        label = (f"mean, {gname} ({n} columns of one categorical factor)" if g.get("categorical")
                 else f"mean, {n} {gname}")
        b = _bold_max({m: (g.get("mean_best_auc") or {}).get(m) for m in ("ica", "pca", "raw")})
        out.append(f"| {label} | | {b['ica']} | {b['pca']} | {b['raw']} | | | | |")
        block = g.get("block_auc")
        if isinstance(block, dict) and block.get("ica") is not None:
            b = _bold_max({m: block.get(m) for m in ("ica", "pca", "raw")})
            m = g.get("block_m")
            out.append(f"| {gname} as one factor: best ICA block of ≤ {m} components against the best {m} "
                       f"PCA / raw codes (mean one-vs-rest AUC) | | {b['ica']} | {b['pca']} | {b['raw']} | | | | |")
    from clipica.cli.demo import claims  # the sentences `clipica demo` prints: one copy

    lines = ["\n".join(out), "", *(f"- {c}" for c in claims(s)), ""]
    conv = "converged" if s.get("ica_converged") else "**did not converge**"
    n = s.get("n_rows")
    lines.append(f"{n:,} rows, model `{s.get('model')}`, K = {s.get('k')} ({s.get('k_rule')}; "
                 f"mean stability {_f(s.get('stability_mean'), 2)}); the ICA {conv} "
                 f"({s.get('ica_n_iter')} iterations).")
    mcc = s.get("mcc") or {}
    if mcc:
        lines.append("MCC with the image-only latents: "
                     + ", ".join(f"{m} {_f(v)}" for m, v in mcc.items()) + ".")
    t = s.get("timings") or {}
    if t:
        lines.append("Stage wall seconds (`summary.json` \"timings\"): "
                     + ", ".join(f"{k} {v:.1f}" for k, v in t.items() if k != "total")
                     + f"; total {t.get('total', 0):.1f}.")
    return "\n".join(lines) + "\n"


def compare_table(d: dict) -> str:
    """``clipica compare``'s ``compare.json``: one row per method."""
    methods = d["methods"]
    factors = sorted({f for m in methods.values() for f in (m.get("factors") or {})})
    head = ["method", "codes", f"mean score ({len(d['attributes'])} attributes)",
            *[f"{f} accuracy" for f in factors], "R²", "mean L0", "dead",
            f"stability ({len(d['seeds'])} seeds)", "fit s"]
    out = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for name, m in methods.items():
        cells = [name, str(m["n_components"]), _f(m.get("attribute_score_mean"), 4),
                 *[_f(((m.get("factors") or {}).get(f) or {}).get("accuracy")) for f in factors],
                 _f(m.get("r2")), _f(m.get("mean_l0"), 1), str(m.get("dead_codes")),
                 _f(m.get("stability")), _f(m.get("fit_seconds"), 1)]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append(f"{d['n_rows']} rows ({d['n_train']} train / {d['n_test']} held out), K = {d['k']}, "
               f"seeds {d['seeds']}{', --quick' if d.get('quick') else ''}; {d['seconds']:.0f} s in all.")
    return "\n".join(out) + "\n"


RENDER: dict[str, Callable] = {"demo": demo_table, "compare": compare_table}


def _pages(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def _table(m: re.Match, root: Path, page: Path, check: bool, say) -> tuple[str, bool]:
    """The marked region ``m`` rewritten from its JSON, and whether it changed."""
    name, src = m["name"], root / m["src"]
    render = RENDER.get(name)
    if render is None:
        say(f"{page.name}: table:{name}: no renderer; left as it is")
        return m[0], False
    if not src.is_file():
        say(f"{page.name}: table:{name}: {m['src']} not found; left as it is")
        return m[0], False
    body = render(json.loads(src.read_text(encoding="utf-8")))
    if body == m["body"]:
        return m[0], False
    say(f"{page.name}: table:{name}: {'differs from' if check else 'rewritten from'} {m['src']}")
    return m["open"] + body + m["close"], True


def regenerate(root: Path, *, check: bool = False, say=print) -> int:
    """Rewrite every marked table from its JSON; returns the number of tables that differed."""
    differ = 0
    for page in _pages(root):
        text = page.read_text(encoding="utf-8")
        parts, last = [], 0
        for m in MARKER.finditer(text):
            new, changed = _table(m, root, page, check, say)
            parts += [text[last:m.start()], new]
            last, differ = m.end(), differ + changed
        new_text = "".join(parts) + text[last:]
        if new_text != text and not check:
            page.write_text(new_text, encoding="utf-8")
    return differ


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this one)")
    p.add_argument("--check", action="store_true", help="rewrite nothing; exit 1 if a table is stale")
    args = p.parse_args(argv)
    n = regenerate(args.root, check=args.check)
    return 1 if (args.check and n) else 0


if __name__ == "__main__":
    sys.exit(main())
