"""``clipica compare STORE --methods ica,pca,... --k K --out DIR``: decompositions side by side."""

from __future__ import annotations

import argparse

HELP = "fit several decompositions (ICA+blocks, PCA, varimax, dictionary, SAE...) and score them on the same probes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from clipica.compare import DEFAULT_METHODS, METHODS

    parser.add_argument("store", metavar="STORE", help="embedding store directory (from `clipica extract`)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help=f"comma-separated, from {', '.join(METHODS)} (default {','.join(DEFAULT_METHODS)})")
    parser.add_argument("--k", "-k", type=int, required=True, metavar="K",
                        help="number of codes (sae4x/batchtopk4x use 4 x the embedding size, raw all dims)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (compare.json, table, figures)")
    parser.add_argument("--factor", action="append", default=[], metavar="NAME=COL1,COL2,...",
                        help="declare a categorical factor (repeatable; default: detect mutually exclusive columns)")
    parser.add_argument("--seeds", default="0,1,2", help="independent initialisations (default 0,1,2)")
    parser.add_argument("--modality", choices=("image", "text"), default="image")
    parser.add_argument("--max-rows", type=int, default=None, metavar="N", help="use a seeded subsample of N rows")
    parser.add_argument("--quick", action="store_true",
                        help="fewer training passes and at most 5000 rows (a smoke run in about a minute)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DIR/compare.json")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from clipica._atomic import atomic_write_json, atomic_write_text
    from clipica.compare import compare
    from clipica.errors import ArtifactExistsError, InputError, StoreError
    from clipica.store import EmbeddingStore

    out = Path(args.out)
    if (out / "compare.json").exists() and not args.overwrite:
        raise ArtifactExistsError(f"{out / 'compare.json'} exists; pass --overwrite to replace it")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--seeds must be comma-separated integers, e.g. 0,1,2; got {args.seeds!r}") from None
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    store = EmbeddingStore.open(args.store)
    X = store.image if args.modality == "image" else store.text
    if X is None:
        raise StoreError(f"{args.store} has no text embeddings; use --modality image")
    rows = store.rows
    cols = [c for c in store.label_columns if c in rows.columns]
    if not cols:
        raise InputError(f"the store at {args.store} has no label columns to score against")
    labels = rows[cols + (["split"] if "split" in rows.columns else [])]
    max_rows = args.max_rows if args.max_rows is not None else (5000 if args.quick else None)
    result = compare(
        np.asarray(X, dtype=np.float32), labels, k=args.k, methods=methods, factors=args.factor or None,
        seeds=seeds, quick=args.quick, max_rows=max_rows,
        fingerprints={"store": _store_fingerprint(store)}, progress=not args.quiet,
    )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "compare.json", result.to_dict())
    table = result.table()
    atomic_write_text(out / "compare.csv", table.to_csv())
    _figures(result, out)
    print(table.round(3).to_string())
    print(f"wrote {out / 'compare.json'} ({result.seconds:.0f} s)")
    return 0


def _store_fingerprint(store) -> str:
    from clipica.artifacts import store_fingerprint

    return store_fingerprint(store)


def _figures(result, out) -> None:
    from clipica.viz.compare import plot_compare_methods, plot_compare_scores

    for name, fn in (("compare_scores.png", plot_compare_scores), ("compare_methods.png", plot_compare_methods)):
        fig = fn(result)
        fig.savefig(out / name, dpi=120)
        import matplotlib.pyplot as plt

        plt.close(fig)
