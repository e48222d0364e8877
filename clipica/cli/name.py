"""``clipica name``: name ICA components with words through the model's text encoder."""

from __future__ import annotations

import argparse

HELP = "name ICA components with a vocabulary embedded by the model's text encoder (and reverse lookup)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="embedding store directory (from `clipica extract`)")
    parser.add_argument(
        "--ica", required=True, metavar="ICA_DIR", help="fitted ICA directory (from `clipica ica`)"
    )
    parser.add_argument(
        "--vocab",
        default=None,
        metavar="FILE",
        help="word/prompt list, one per line (default: built-in CelebA attribute phrases)",
    )
    parser.add_argument(
        "--template",
        default=None,
        metavar="T",
        help="format applied to every entry, e.g. 'a photo of a person with {}'",
    )
    parser.add_argument("--top", type=int, default=5, metavar="N", help="entries reported per pole")
    parser.add_argument(
        "--prompt",
        action="append",
        default=[],
        metavar="TEXT",
        help="reverse lookup: which component best matches TEXT (repeatable)",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output folder for naming.json and naming.txt (default: ICA_DIR/naming)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from clipica.decompositions import load_decomposition
    from clipica.embeddings.store import EmbeddingStore
    from clipica.pipeline import artifacts, name_stage, naming_params

    params = naming_params(vocab=args.vocab, template=args.template, top=args.top, prompts=args.prompt)
    store = EmbeddingStore.open(args.store)
    ica = load_decomposition(args.ica)
    out = Path(args.out) if args.out else Path(args.ica) / "naming"
    doc = name_stage(store, ica, out, params, store_fp=artifacts.store_fingerprint(store),
                     vocab=args.vocab, inputs={"store": str(Path(args.store)), "ica": str(Path(args.ica))},
                     reuse=False)
    print(doc["text"])
    gaussian = doc.get("unidentifiable") or []
    if gaussian:
        print(f"\ncomponents {', '.join(f'c{i}' for i in gaussian)}: indistinguishable from Gaussian (the ICA's "
              "unidentifiable block); no name given, since any rotation of that block is as good and its names "
              "would be noise")
    print(f"\nwrote {out / 'naming.json'}")
    return 0
