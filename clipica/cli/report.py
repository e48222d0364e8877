"""``clipica report``: one self-contained HTML report for a store and a fitted ICA."""

from __future__ import annotations

import argparse

HELP = "write report.html (heatmap, probe table vs baselines, names, traversals, provenance)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="embedding store directory (from `clipica extract`)")
    parser.add_argument("--ica", required=True, metavar="ICA_DIR", help="fitted ICA directory (from `clipica ica`)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder for report.html (and what it computes)")
    parser.add_argument(
        "--traversals", type=int, default=3, metavar="N",
        help="components to traverse when no intervene.json is found in DIR (0: none)",
    )
    parser.add_argument("--no-decoder", action="store_true", help="traversals without the decoded view")
    parser.add_argument(
        "--no-compute", action="store_true",
        help="only render what is already in DIR / ICA_DIR; compute nothing (a stale result is refused)",
    )
    parser.add_argument("--probe", default=None, metavar="FILE",
                        help="a probe.json to reuse (default: DIR/probe/probe.json)")
    parser.add_argument("--naming", default=None, metavar="FILE",
                        help="a naming.json to reuse (default: ICA_DIR/naming/naming.json)")
    parser.add_argument("--traversals-dir", default=None, metavar="DIR",
                        help="a folder of `clipica intervene` results to reuse (default: DIR/traversals)")
    parser.add_argument("--factor", action="append", default=[], metavar="NAME=COL1,COL2,...",
                        help="a categorical factor stored as one-hot label columns, read as one "
                             "factor in the headline (repeatable; mutually exclusive columns are "
                             "also detected)")
    parser.add_argument("--title", default=None, help="report title")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from clipica.errors import InputError
    from clipica.pipeline import report_stage

    if args.traversals < 0:
        raise InputError(f"--traversals must be 0 or more, got {args.traversals}")

    path = report_stage(
        args.store,
        args.ica,
        args.out,
        probe=args.probe,
        naming=args.naming,
        traversals=args.traversals_dir,
        compute_missing=not args.no_compute,
        n_traversals=args.traversals,
        decoder=not args.no_decoder,
        progress=not args.quiet,
        title=args.title,
        factors=args.factor,
    )
    print(f"wrote {path}")
    return 0
