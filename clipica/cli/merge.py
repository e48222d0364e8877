"""``clipica merge``: join the shard stores of one ``--shard I/N`` extraction."""

from __future__ import annotations

HELP = "join the stores of a sharded extraction (--shard I/N) into one store"


def add_arguments(parser) -> None:
    parser.add_argument("shards", nargs="+", metavar="SHARD_DIR", help="finished shard stores, any order")
    parser.add_argument("--out", required=True, metavar="STORE", help="merged store folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")


def run(args) -> int:
    import sys

    from clipica.embeddings.extract import merge

    store = merge(args.shards, args.out, overwrite=args.overwrite)
    c = store.manifest["counts"]
    sys.stdout.write(f"{store.path}: {c['rows']} rows from {len(args.shards)} shards ({c['errors']} errors recorded)\n")
    return 0
