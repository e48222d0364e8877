"""``clipica demo``: the whole method, offline, on the built-in synthetic faces and tiny CLIP."""

from __future__ import annotations

import argparse

HELP = "run the whole method offline (synthetic faces + tiny CLIP): store, ICA, probes, names, traversals, report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (report.html, summary.json, store/, ica/, ...)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few thousand rows and a short decoder (about a minute once the model is cached)",
    )
    parser.add_argument("--rows", type=int, default=None, metavar="N", help="synthetic faces to embed (default 20000; 3000 with --quick)")
    parser.add_argument(
        "--k-grid", type=int, nargs="+", default=None, metavar="K",
        help="candidate numbers of components for the stability sweep",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace a store in DIR that was extracted with other settings (e.g. --rows)",
    )
    parser.add_argument("--quiet", action="store_true", help="no stage headers or progress bars")


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from clipica.errors import InputError
    from clipica.pipeline.demo import DemoConfig, run_demo

    overrides = {"seed": args.seed}
    if args.rows is not None:
        if args.rows < 200:
            raise InputError(f"--rows must be at least 200, got {args.rows}")
        overrides["n_rows"] = args.rows
        overrides["sweep_rows"] = max(args.rows, 3000)
    if args.k_grid:
        if min(args.k_grid) < 2:
            raise InputError(f"--k-grid values must be at least 2, got {args.k_grid}")
        overrides["k_grid"] = tuple(sorted(set(args.k_grid)))
    cfg = DemoConfig.quick(**overrides) if args.quick else DemoConfig(**overrides)
    summary = run_demo(args.out, config=cfg, progress=not args.quiet, overwrite=args.overwrite)
    print(format_summary(summary))
    print(f"\nwrote {args.out}/report.html and {args.out}/summary.json")
    return 0


def format_summary(summary: dict) -> str:
    """The per-attribute table of a demo summary, as plain text."""
    def f(v, d=3):
        return "   –  " if v is None else f"{v:.{d}f}"

    lines = [
        f"{summary['n_rows']} rows, model {summary['model']}, K = {summary['k']} ({summary['k_rule']})",
        "",
        f"{'attribute':<12} {'comp':>4} {'ICA':>6} {'PCA':>6} {'raw':>6} {'probe':>6} {'select':>6}  top words",
    ]
    for name, a in summary["attributes"].items():
        lines.append(
            f"{name:<12} {a['best_component']:>3}{a.get('pole', '+')} {f(a['ica_best_auc'])} "
            f"{f(a['pca_best_auc'])} {f(a['raw_best_auc'])} {f(a['linear_probe_auc'])} "
            f"{f(a['selectivity'], 2):>6}  {', '.join(a['top_words'][:3])}"
        )
    groups = summary.get("groups") or {"all": {"mean_best_auc": summary["mean_best_auc"]}}
    for name, g in groups.items():  # a categorical factor's columns are averaged apart
        m = g["mean_best_auc"]
        what = "" if len(groups) == 1 else f"  {name} ({len(g.get('attributes') or [])}" + (
            ", one categorical factor, column by column)" if g.get("categorical") else ")")
        lines.append(f"{'mean':<12} {'':>4} {f(m['ica'])} {f(m['pca'])} {f(m['raw'])}{what}")
        if g.get("block_auc"):
            b = g["block_auc"]
            lines.append(f"{name + ' block':<12} {'':>4} {f(b.get('ica'))} {f(b.get('pca'))} "
                         f"{f(b.get('raw'))}  best ICA block of <= {g.get('block_m')} components "
                         f"against the best {g.get('block_m')} PCA / raw codes (mean one-vs-rest AUC)")
    lines += ["", *claims(summary)]
    if summary.get("mcc"):
        lines.append("MCC vs ground-truth latents: " + ", ".join(f"{k} {f(v)}" for k, v in summary["mcc"].items()))
    t = summary.get("timings") or {}
    lines.append("stage wall time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()))
    return "\n".join(lines)


def claims(summary: dict) -> list[str]:
    """The demo's result in sentences: the binary attributes (mean best-single AUC) and each
    categorical factor (mean one-vs-rest AUC of the ICA block), each against PCA and raw; and
    any fit that did not converge."""
    def against(ica, rivals):
        rivals = [(n, v) for n, v in rivals if v is not None]
        shown = ", ".join(f"{n} {v:.3f}" for n, v in rivals)
        # compared as printed: a tie at the ceiling (1.000 = 1.000) is a tie, not a win
        tied = [n for n, v in rivals if f"{v:.3f}" == f"{ica:.3f}"]
        behind = [n for n, v in rivals if f"{v:.3f}" > f"{ica:.3f}"]
        if behind:
            verdict = "ICA behind " + " and ".join(behind)
        elif tied:
            verdict = "ICA ties " + " and ".join(tied) + (" and is ahead of the other" if len(tied) < len(rivals) else "")
        else:
            verdict = "ICA ahead of both"
        return f"{ica:.3f} against {shown}: {verdict}"

    out = []
    for name, g in (summary.get("groups") or {}).items():
        if g.get("categorical"):
            b = g.get("block_auc") or {}
            if b.get("ica") is None:
                continue
            m = g.get("block_m")
            out.append(f"{name} (categorical, {len(g.get('attributes') or [])} values, mean one-vs-rest "
                       f"AUC): best ICA block (found without labels) "
                       + against(b["ica"], [(f"best {m} PCA", b.get("pca")), (f"best {m} raw", b.get("raw"))])
                       + " (their codes chosen with the labels)")
        else:
            mb = g.get("mean_best_auc") or {}
            if mb.get("ica") is None:
                continue
            out.append(f"{name} ({len(g.get('attributes') or [])}, mean AUC): best single ICA component "
                       + against(mb["ica"], [("PCA", mb.get("pca")), ("raw", mb.get("raw"))]))
    conv = summary.get("convergence") or {}
    if conv.get("problems"):
        out.append("NOT CONVERGED: " + "; ".join(conv["problems"]))
    return out
