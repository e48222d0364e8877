"""``clipica stability STORE --k-grid K... --out DIR``: the K sweep and the chosen K."""

from __future__ import annotations

import argparse

HELP = "stability of ICA components over bootstrap refits for each K; writes the sweep and the chosen K"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="embedding store directory (from `clipica extract`)")
    parser.add_argument("--k-grid", type=int, nargs="+", required=True, metavar="K",
                        help="candidate numbers of components, e.g. 8 16 32 64")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (stability.json + stability.png); `clipica ica -k auto` reads it")
    parser.add_argument("--restarts", type=int, default=5, metavar="R",
                        help="bootstrap ICA fits per K (default 5)")
    parser.add_argument("--rows", type=int, default=20000, metavar="N",
                        help="rows used (a seeded subsample above N; default 20000)")
    parser.add_argument("--threshold", type=float, default=0.8,
                        help="stability a component needs to count as stable (default 0.8)")
    parser.add_argument("--modality", choices=("image", "text"), default="image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from clipica.embeddings.store import EmbeddingStore
    from clipica.errors import InputError
    from clipica.pipeline import artifacts, stability_params, stability_stage
    from clipica.pipeline._log import ReuseCounter

    if min(args.k_grid) < 2:
        raise InputError(f"--k-grid values must be at least 2, got {args.k_grid}")
    if args.restarts < 2:
        raise InputError(f"--restarts must be at least 2, got {args.restarts}")
    if args.rows < 2:
        raise InputError(f"--rows must be at least 2, got {args.rows}")
    if not 0.0 < args.threshold <= 1.0:
        raise InputError(f"--threshold must be in (0, 1], got {args.threshold}")
    store = EmbeddingStore.open(args.store)
    if args.modality == "text" and store.text is None:
        raise InputError(f"{args.store} has no text embeddings; use --modality image")
    params = stability_params(args.k_grid, restarts=args.restarts, sweep_rows=args.rows,
                              seed=args.seed, threshold=args.threshold, modality=args.modality)
    log = ReuseCounter()
    doc = stability_stage(store, args.out, params, store_fp=artifacts.store_fingerprint(store),
                          log=log, progress=not args.quiet)
    if doc.get("k_grid_dropped"):
        import sys

        from clipica.pipeline.fit import dropped_line

        print(f"clipica stability: {dropped_line(doc)}", file=sys.stderr)
    print(f"{'K':>4} {'mean':>6} {'min':>6} {'stable':>6}")
    for i, k in enumerate(doc["k"]):
        print(f"{k:>4} {doc['stability_mean'][i]:6.3f} {doc['stability_min'][i]:6.3f} "
              f"{doc['n_stable'][i]:>3}/{k}")
    print(f"chosen K = {doc['chosen_k']} ({doc['rule']})" + (" [reused: same store and settings]" if log.n else ""))
    print(f"wrote {args.out}/stability.json; next: clipica ica {args.store} -k auto --sweep {args.out} --out ICA_DIR")
    return 0
