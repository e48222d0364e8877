"""``clipica intervene``: sweep one ICA component and show/measure what changes."""

from __future__ import annotations

import argparse

HELP = "sweep one ICA component (in units of its std): decoded + retrieved images, probe and text responses"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from clipica.decoder import DEFAULT_PRESENTATIONS, DEFAULT_ROWS

    parser.add_argument("store", help="embedding store directory (from `clipica extract`)")
    parser.add_argument(
        "--ica", required=True, metavar="ICA_DIR", help="fitted ICA directory (from `clipica ica`)"
    )
    parser.add_argument(
        "--component", required=True, type=int, metavar="I", help="component index, 0 to K-1"
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="FILE.png",
        help="summary figure; per-view PNGs and intervene.json are written beside it",
    )
    parser.add_argument(
        "--rows", type=int, default=6, metavar="N", help="source rows to edit (random, --seed)"
    )
    parser.add_argument(
        "--alphas",
        type=float,
        nargs="+",
        default=None,
        metavar="A",
        help="steps in units of the component's standard deviation (default: -3 -2 -1 0 1 2 3)",
    )
    parser.add_argument(
        "--mode",
        choices=("shift", "set"),
        default="shift",
        help="shift the component by alpha sd (default) or set it to mean + alpha sd",
    )
    parser.add_argument(
        "--no-decoder", action="store_true", help="skip the decoded view (no decoder training)"
    )
    parser.add_argument(
        "--retrain-decoder", action="store_true", help="train a new decoder even if one is saved"
    )
    parser.add_argument(
        "--decoder-epochs",
        type=float,
        default=None,
        metavar="E",
        help=f"decoder training passes over its rows (default: a fixed budget of "
        f"{DEFAULT_PRESENTATIONS:,} images on a seeded subsample of at most {DEFAULT_ROWS:,} rows, "
        "whatever the store's size)",
    )
    parser.add_argument(
        "--no-text", action="store_true", help="skip the zero-shot prompt-pair view"
    )
    parser.add_argument(
        "--neighbours", type=int, default=1, metavar="K", help="neighbours retrieved per edit"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from clipica import artifacts

    # the contract arrays only: the estimator classes would import scikit-learn for nothing
    from clipica.decompositions.saved import load_contract
    from clipica.pipeline import traversal_params, traversal_stage
    from clipica.pipeline.analyses import ATTRIBUTE_PROBES_JSON
    from clipica.store import EmbeddingStore

    params = traversal_params(args.component, rows=args.rows, alphas=args.alphas, mode=args.mode,
                              decoder=not args.no_decoder, decoder_epochs=args.decoder_epochs,
                              text=not args.no_text, neighbours=args.neighbours, seed=args.seed)
    out = Path(args.out)
    store = EmbeddingStore.open(args.store)
    ica = load_contract(args.ica)
    doc = traversal_stage(store, ica, out, params, store_fp=artifacts.store_fingerprint(store),
                          decoder_dir=Path(args.ica) / "decoder",
                          inputs={"store": str(Path(args.store)), "ica": str(Path(args.ica))},
                          progress=not args.quiet, reuse=False, retrain_decoder=args.retrain_decoder,
                          probes_path=Path(args.ica) / ATTRIBUTE_PROBES_JSON)
    line = f"component {doc['component']}: wrote {out}"
    if doc.get("selected_attribute") is not None:
        line += f"; selects {doc['selected_attribute']} (selectivity {doc['selectivity']:.2f})"
    print(line)
    return 0
