"""``clipica compare STORE --methods ica,pca,... --k K --out DIR``: decompositions side by side."""

from __future__ import annotations

import argparse

HELP = "fit several decompositions (ICA+blocks, PCA, varimax, dictionary, SAE...) and score them on the same probes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from clipica.probes.compare import DEFAULT_METHODS, METHODS

    parser.add_argument("store", metavar="STORE", help="embedding store directory (from `clipica extract`)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help=f"comma-separated, from {', '.join(METHODS)} (default {','.join(DEFAULT_METHODS)})")
    parser.add_argument("--k", "-k", type=int, required=True, metavar="K",
                        help="number of codes (sae4x/batchtopk4x use 4 x the embedding size, raw all dims)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (compare.json, table, figures)")
    parser.add_argument("--factor", action="append", default=[], metavar="NAME=COL1,COL2,...",
                        help="declare a categorical factor (repeatable; default: detect mutually exclusive columns)")
    parser.add_argument("--seeds", default=None,
                        help="independent initialisations (default 0,1,2; with --quick 0,1)")
    parser.add_argument("--modality", choices=("image", "text"), default="image")
    parser.add_argument("--max-rows", type=int, default=None, metavar="N", help="use a seeded subsample of N rows")
    parser.add_argument("--quick", action="store_true",
                        help="fewer training passes, 2 seeds, at most 5000 rows (a smoke run in under a minute)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DIR/compare.json")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from clipica.embeddings.store import EmbeddingStore
    from clipica.errors import ArtifactExistsError, InputError
    from clipica.pipeline import artifacts
    from clipica.pipeline.blocks import compare_params, compare_stage
    from clipica.probes.compare import CompareResult

    out = Path(args.out)
    if (out / "compare.json").exists() and not args.overwrite:
        raise ArtifactExistsError(f"{out / 'compare.json'} exists; pass --overwrite to replace it")
    try:
        seeds = None if args.seeds is None else [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--seeds must be comma-separated integers, e.g. 0,1,2; got {args.seeds!r}") from None
    params = compare_params(args.methods, args.k, seeds=seeds, quick=args.quick, max_rows=args.max_rows,
                            factors=args.factor, modality=args.modality)
    store = EmbeddingStore.open(args.store)
    doc = compare_stage(store, out, params, store_fp=artifacts.store_fingerprint(store),
                        progress=not args.quiet, reuse=False)
    result = CompareResult.from_dict(doc)
    print(result.table().round(3).to_string())
    print(f"wrote {out / 'compare.json'} ({result.seconds:.0f} s)")
    return 0
