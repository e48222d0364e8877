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

    from clipica._atomic import atomic_write_json, atomic_write_text
    from clipica.errors import InputError
    from clipica.decompositions.ica import ICA
    from clipica.naming import format_matches, match_prompts, name_components
    from clipica.store import EmbeddingStore

    if args.top < 1:
        raise InputError(f"--top must be at least 1, got {args.top}")
    store = EmbeddingStore.open(args.store)
    ica = ICA.load(args.ica)
    if ica.components_.shape[1] != store.embed_dim:
        raise InputError(
            f"the ICA in {args.ica} was fitted on {ica.components_.shape[1]}-d data but the store "
            f"holds {store.embed_dim}-d embeddings"
        )
    encoder = store.load_encoder()
    names = name_components(store, ica, args.vocab, encoder=encoder, template=args.template)
    payload = names.to_json(n=args.top)
    payload["store"] = str(Path(args.store))
    payload["ica"] = str(Path(args.ica))
    payload["vocabulary"] = args.vocab or "built-in: celeba attribute phrases"
    text = names.table(n=min(args.top, 3))
    if args.prompt:
        matches = match_prompts(args.prompt, ica, encoder=encoder, projection=names.projection)
        payload["prompts"] = matches
        text += "\n\nreverse lookup\n" + format_matches(matches)
    out = Path(args.out) if args.out else Path(args.ica) / "naming"
    atomic_write_json(out / "naming.json", payload)
    atomic_write_text(out / "naming.txt", text + "\n")
    print(text)
    print(f"\nwrote {out / 'naming.json'}")
    return 0
