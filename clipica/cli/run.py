"""``clipica run``: extract → K → fit → probe → names → traversals → report, resumable."""

from __future__ import annotations

import argparse

HELP = ("the whole method for any model and data, resumable: store, stability and K, ICA, probes, "
        "names, traversals, report.html + summary.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="SPEC",
                        help="open_clip architecture (with --pretrained), hf-hub:ORG/NAME, a local "
                             "directory or checkpoint, or tiny-faces")
    parser.add_argument("--pretrained", default=None, metavar="TAG",
                        help="open_clip weights tag or local file ('none': random initialisation); for tiny-faces: a shipped tag (default seed0; seed1), 'cache', or a train-tiny folder")
    parser.add_argument("--data", required=True, metavar="SPEC",
                        help="synthetic-faces[:N], celeba:DIR, hf:NAME[:SPLIT], folder:DIR, csv:FILE, jsonl:FILE")
    parser.add_argument("--out", required=True, metavar="DIR", help="the run folder (created; reused on rerun)")
    parser.add_argument("--k", default="auto", metavar="auto|K",
                        help="components: 'auto' (the stability sweep chooses, default) or a number")
    parser.add_argument("--k-grid", type=int, nargs="+", default=None, metavar="K",
                        help="candidate K for the sweep (default 8 16 32 64)")
    parser.add_argument("--restarts", type=int, default=5, metavar="R", help="bootstrap fits per K (default 5)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="rows per forward pass")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="embed only the first N rows")
    parser.add_argument("--split", default=None, metavar="NAME",
                        help="only this split of the data (e.g. train); probes then hold out a seeded part")
    parser.add_argument("--traversals", type=int, default=3, metavar="N",
                        help="components traversed (the best-separated attributes'; default 3)")
    parser.add_argument("--no-decoder", action="store_true", help="traversals without the decoded view")
    parser.add_argument("--decoder-epochs", type=int, default=None, metavar="E",
                        help="decoder training epochs (default: a budget of 12,000 image presentations)")
    parser.add_argument("--compare", default=None, metavar="METHODS",
                        help="also fit other decompositions at the run's K and score them on the same rows "
                             "(comma-separated, e.g. ica,pca,varimax,dict,sae; see `clipica compare`): "
                             "RUN/compare/compare.json, shown in the report")
    parser.add_argument("--compare-quick", action="store_true",
                        help="with --compare: fewer training passes and at most 5000 rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a store in DIR/store extracted with other settings")
    parser.add_argument("--quiet", action="store_true", help="no stage headers or progress bars")
    parser.add_argument("--preprocess", default="original", choices=("original", "native"),
                        help="image/text preprocessing: the original CLIP pipeline whichever backend "
                             "loads the model (default), or a Hugging Face model's own processor")
    parser.add_argument("--layer", default="final", metavar="LAYER",
                        help="where the towers are read, as clipica extract --layer: final (default), "
                             "pre-projection or block:N; outside the joint space the naming stage is skipped "
                             "and traversals have no text view")
    from clipica.cli.extract import add_engine_arguments

    add_engine_arguments(parser)


def parse_k(text: str):
    from clipica.errors import InputError

    if str(text).lower() == "auto":
        return "auto"
    try:
        k = int(text)
    except ValueError:
        raise InputError(f"--k must be 'auto' or a positive integer, got {text!r}") from None
    if k < 1:
        raise InputError(f"--k must be 'auto' or a positive integer, got {k}")
    return k


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from clipica.cli.demo import format_summary
    from clipica.cli.extract import engine_options
    from clipica.errors import InputError
    from clipica.pipeline import RunConfig, run

    if args.compare_quick and not args.compare:
        raise InputError("--compare-quick goes with --compare METHODS")
    if args.traversals < 0:
        raise InputError(f"--traversals must be 0 or more, got {args.traversals}")
    k_grid = tuple(sorted(set(args.k_grid))) if args.k_grid else RunConfig.k_grid
    if args.k_grid and min(args.k_grid) < 2:
        raise InputError(f"--k-grid values must be at least 2, got {args.k_grid}")
    if args.restarts < 2:
        raise InputError(f"--restarts must be at least 2, got {args.restarts}")
    cfg = RunConfig(model=args.model, pretrained=args.pretrained, data=args.data, k=parse_k(args.k),
                    k_grid=k_grid, restarts=args.restarts, seed=args.seed, batch_size=args.batch_size,
                    device=args.device, limit=args.limit, split=args.split,
                    n_traversals=args.traversals, decoder=not args.no_decoder,
                    decoder_epochs=args.decoder_epochs, preprocess=args.preprocess, layer=args.layer,
                    compare=_methods(args.compare), compare_quick=args.compare_quick,
                    **engine_options(args))
    summary = run(cfg, args.out, progress=not args.quiet, overwrite=args.overwrite)
    print(format_summary(summary))
    if summary.get("reused"):
        print(f"reused: {', '.join(summary['reused'])}")
    print(f"\nwrote {args.out}/report.html and {args.out}/summary.json")
    return 0


def _methods(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    from clipica.pipeline.blocks import compare_params

    return tuple(compare_params(text, 1)["methods"])  # checks the names before any work
