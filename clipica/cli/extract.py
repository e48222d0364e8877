"""``clipica extract``: embed a dataset with a CLIP model into a resumable EmbeddingStore."""

from __future__ import annotations

HELP = "embed a dataset's images and captions with a CLIP model into a resumable store"


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, metavar="SPEC",
                        help="open_clip architecture (with --pretrained), hf-hub:ORG/NAME, a local folder "
                             "or checkpoint, or tiny-faces")
    parser.add_argument("--pretrained", metavar="TAG",
                        help="open_clip weights: a tag (e.g. openai), a checkpoint file, or 'none' for random weights; for tiny-faces: a shipped tag (default seed0; seed1), 'cache', or a train-tiny folder")
    parser.add_argument("--data", required=True, metavar="SPEC",
                        help="synthetic-faces[:N], celeba:DIR, hf:NAME_OR_PATH[:SPLIT], folder:DIR, csv:FILE, jsonl:FILE")
    parser.add_argument("--out", required=True, metavar="STORE", help="store folder (rerun the same command to resume)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="rows per forward pass (default 64)")
    parser.add_argument("--device", default="cpu", metavar="D", help="cpu, cuda, cuda:N or auto (default cpu)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                        help="autocast precision on GPU (default fp32; CPU computes in fp32)")
    parser.add_argument("--limit", type=int, metavar="N", help="embed only the first N rows (after --split)")
    parser.add_argument("--split", metavar="NAME", help="keep one split: train, val or test")
    parser.add_argument("--on-error", default="skip", choices=("skip", "fail"),
                        help="bad images: skip and record them (default) or stop with exit status 2")
    parser.add_argument("--shard", metavar="I/N", help="embed only the I-th of N contiguous slices (0-based); join with `clipica merge`")
    parser.add_argument("--overwrite", action="store_true", help="replace a store made with different settings")
    parser.add_argument("--normalize", action="store_true",
                        help="L2-normalise embeddings before storing (default: as the model returns them)")
    parser.add_argument("--num-workers", type=int, metavar="N",
                        help="DataLoader decoding workers (default: cores - 1, at most 4; 0 = in-process)")
    parser.add_argument("--data-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="source option, e.g. caption_column=text, label_columns=a,b, captions=FILE (repeatable)")
    add_engine_arguments(parser)
    parser.add_argument("--preprocess", default="original", choices=("original", "native"),
                        help="original (default): the model's original pipeline, so one CLIP gives the same "
                             "embeddings through open_clip and transformers; native: a transformers model's own "
                             "image processor and tokenizer as-is (recorded in the manifest)")
    parser.add_argument("--layer", default="final", metavar="LAYER",
                        help="final (default: the projected embedding), pre-projection (the pooled features "
                             "before the projection) or block:N (the class / end-of-text token after transformer "
                             "block N, 0-based); recorded in the manifest")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_engine_arguments(parser) -> None:
    """--engine and the Ray options (shared with `clipica run`)."""
    g = parser.add_argument_group("engine")
    g.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="local (this machine, default) or ray (Ray Data on a cluster; needs clipica[ray])")
    g.add_argument("--address", metavar="ADDR",
                   help="Ray: the cluster's HOST:PORT (from `ray start --head`), ray://HOST:PORT or auto "
                        "(default: start a local Ray)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="Ray: encoder actors (default: cluster GPUs / --gpus-per-worker, or 1 on CPU)")
    g.add_argument("--gpus-per-worker", type=float, metavar="G",
                   help="Ray: GPUs per encoder actor (default 1 with --device cuda/auto on a GPU cluster, else 0)")
    g.add_argument("--cpus-per-worker", type=float, metavar="C",
                   help="Ray: CPUs per encoder actor (default 1; the rest decode)")


def engine_options(args) -> dict:
    """The engine options from parsed args (see :func:`clipica.embeddings.ray_engine.engine_from_options`)."""
    return {"engine": args.engine, "address": args.address, "workers": args.workers,
            "gpus_per_worker": args.gpus_per_worker, "cpus_per_worker": args.cpus_per_worker}


def parse_data_opts(items: list[str]) -> dict:
    from clipica.errors import InputError

    opts = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--data-opt expects KEY=VALUE, got {item!r}")
        opts[key.strip()] = value
    return opts


def run(args) -> int:
    import sys

    from clipica.embeddings.extract import extract
    from clipica.embeddings.ray_engine import engine_from_options

    store = extract(
        model=args.model,
        pretrained=args.pretrained,
        data=args.data,
        out=args.out,
        batch_size=args.batch_size,
        device=args.device,
        precision=args.precision,
        limit=args.limit,
        split=args.split,
        shard=args.shard,
        on_error=args.on_error,
        overwrite=args.overwrite,
        normalize=args.normalize,
        num_workers=args.num_workers,
        data_options=parse_data_opts(args.data_opt),
        progress=not args.quiet,
        engine=engine_from_options(**engine_options(args), device=args.device),
        preprocess=args.preprocess,
        layer=args.layer,
    )
    counts = store.manifest["counts"]
    extra = []
    if counts.get("errors"):
        extra.append(f"{counts['errors']} skipped (see {store.path / 'errors.jsonl'})")
    if counts.get("truncated_captions"):
        extra.append(f"{counts['truncated_captions']} captions truncated to {store.manifest['model']['encoder'].get('context_length')} tokens")
    sys.stdout.write(
        f"{store.path}: {counts['rows']} rows x {store.embed_dim} dims"
        f"{', text too' if store.manifest.get('has_text') else ''}"
        f"{'; ' + '; '.join(extra) if extra else ''}\n"
    )
    return 0
