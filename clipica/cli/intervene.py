"""``clipica intervene``: sweep one ICA component and show/measure what changes."""

from __future__ import annotations

import argparse

HELP = "sweep one ICA component (in units of its std): decoded + retrieved images, probe and text responses"


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
        type=int,
        default=None,
        metavar="E",
        help="decoder training epochs (default: about 30k image presentations)",
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

    import matplotlib

    matplotlib.use("Agg")

    from clipica._atomic import atomic_write_json
    from clipica.errors import InputError
    from clipica.decompositions.ica import ICA
    from clipica.intervene import DEFAULT_ALPHAS, run_intervention
    from clipica.store import EmbeddingStore

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise InputError(f"--out must be a .png file name, got {str(out)!r}")
    if args.rows < 1:
        raise InputError(f"--rows must be at least 1, got {args.rows}")
    store = EmbeddingStore.open(args.store)
    ica = ICA.load(args.ica)
    K, D = ica.components_.shape
    if not 0 <= args.component < K:
        raise InputError(
            f"--component {args.component} is out of range: this ICA has {K} components (0 to {K - 1})"
        )
    if D != store.embed_dim:
        raise InputError(
            f"the ICA in {args.ica} was fitted on {D}-d data but the store holds {store.embed_dim}-d embeddings"
        )
    alphas = DEFAULT_ALPHAS if args.alphas is None else args.alphas

    decoder = None
    if not args.no_decoder:
        from clipica.decoder import load_or_train

        decoder = load_or_train(
            store,
            ica,
            args.ica,
            epochs=args.decoder_epochs,
            retrain=args.retrain_decoder,
            seed=args.seed,
            progress=not args.quiet,
        )
    result = run_intervention(
        store,
        ica,
        args.component,
        alphas=alphas,
        rows=args.rows,
        decoder=decoder,
        prompt_pairs=None if args.no_text else "auto",
        k=args.neighbours,
        seed=args.seed,
        mode=args.mode,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("")
    figures = {"figure_png": out}
    result.figure.savefig(out, dpi=110)
    views = (
        ("decoded_png", result.decoded, "_decoded.png"),
        ("retrieval_png", result.retrieval, "_retrieval.png"),
        ("response_png", result.attributes, "_attributes.png"),
        ("text_png", result.text, "_text.png"),
    )
    for key, view, suffix in views:
        if view is not None and getattr(view, "figure", None) is not None:
            path = Path(f"{stem}{suffix}")
            view.figure.savefig(path, dpi=110)
            figures[key] = path
    payload = result.to_json()
    payload.update({k: v.name for k, v in figures.items()})  # file names, relative to this JSON
    payload["store"] = str(Path(args.store))
    payload["ica"] = str(Path(args.ica))
    if decoder is not None:
        payload["decoder"] = {"directory": str(Path(args.ica)), **decoder.history_}
    atomic_write_json(out.parent / "intervene.json", payload)
    if stem.name != "intervene":  # keep one JSON per component when several share a folder
        atomic_write_json(Path(f"{stem}.json"), payload)

    a = result.attributes
    line = f"component {result.traversal.component}: wrote {out}"
    if a is not None:
        line += f"; selects {a.target} (selectivity {a.selectivity:.2f})"
    print(line)
    return 0
