"""``clipica intervene``: sweep one ICA component (or a block of them, as a 2-D grid) and show/measure what changes."""

from __future__ import annotations

import argparse

HELP = ("sweep one ICA component (in units of its std): decoded + retrieved images, probe and text responses; "
        "or a block of dependent components as a 2-D grid of nearest images")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from clipica.intervene.decoder import DEFAULT_PRESENTATIONS, DEFAULT_ROWS

    parser.add_argument("store", help="embedding store directory (from `clipica extract`)")
    parser.add_argument(
        "--ica", required=True, metavar="ICA_DIR", help="fitted ICA directory (from `clipica ica`)"
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--component", type=int, metavar="I", help="component index, 0 to K-1")
    which.add_argument(
        "--block", type=int, metavar="B",
        help="block index into the ICA's blocks_ (2+ dependent components, e.g. a categorical "
             "factor): a 2-D grid over two of its components, each cell the nearest store image",
    )
    parser.add_argument(
        "--axes", type=int, nargs=2, default=None, metavar=("I", "J"),
        help="with --block: the two components of the block to sweep (default its first two)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="FILE.png",
        help="summary figure; per-view PNGs and intervene.json are written beside it",
    )
    parser.add_argument(
        "--rows", type=int, default=None, metavar="N",
        help="source rows to edit (random, --seed; default 6, with --block 2: one grid each)"
    )
    parser.add_argument(
        "--alphas",
        type=float,
        nargs="+",
        default=None,
        metavar="A",
        help="steps in units of the component's standard deviation (default: -3 -2 -1 0 1 2 3; "
             "with --block, per axis: -2 -1 0 1 2)",
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

    # the contract arrays only: the estimator classes would import scikit-learn for nothing
    from clipica.decompositions import load_contract
    from clipica.embeddings.store import EmbeddingStore
    from clipica.pipeline import artifacts, traversal_params, traversal_stage
    from clipica.pipeline.analyses import ATTRIBUTE_PROBES_JSON

    if args.block is not None:
        return _run_block(args)
    if args.axes is not None:
        from clipica.errors import InputError

        raise InputError("--axes goes with --block (a component traversal has one axis)")
    params = traversal_params(args.component, rows=6 if args.rows is None else args.rows,
                              alphas=args.alphas, mode=args.mode,
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


def _run_block(args: argparse.Namespace) -> int:
    from pathlib import Path

    from clipica.decompositions import load_decomposition
    from clipica.embeddings.store import EmbeddingStore
    from clipica.pipeline import artifacts
    from clipica.pipeline.blocks import BLOCK_ROWS, block_traversal_params, block_traversal_stage

    params = block_traversal_params(args.block, rows=BLOCK_ROWS if args.rows is None else args.rows,
                                    alphas=args.alphas, axes=args.axes, seed=args.seed)
    store = EmbeddingStore.open(args.store)
    ica = load_decomposition(args.ica)
    out = Path(args.out)
    doc = block_traversal_stage(store, ica, out, params, store_fp=artifacts.store_fingerprint(store),
                                inputs={"store": str(Path(args.store)), "ica": str(Path(args.ica))},
                                reuse=False)
    print(f"block {args.block} {doc['block']}: grid over c{doc['axes'][0]} x c{doc['axes'][1]}; "
          f"wrote {out} ({len(doc['figures'])} figure(s)) and {out.with_suffix('.json')}")
    return 0
