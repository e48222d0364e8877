"""``clipica train-tiny``: train the built-in tiny-faces CLIP on synthetic faces."""

from __future__ import annotations

HELP = "train the built-in tiny-faces CLIP on synthetic faces by the shipped recipe (writes eval.json)"


def add_arguments(parser) -> None:
    from clipica.models.tiny import DEFAULT_BATCH_SIZE, DEFAULT_STEPS

    parser.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help=f"optimiser steps (default {DEFAULT_STEPS}: the shipped recipe)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default: the cache, CLIPICA_CACHE/tiny-faces: --pretrained cache; "
        "--model tiny-faces without --pretrained loads the shipped weights)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the initialisation and the training faces"
    )
    parser.add_argument(
        "--variant",
        choices=("independent", "correlated"),
        default="independent",
        help="dependency structure of the synthetic faces (default independent)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"pairs per step (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--n-eval",
        type=int,
        default=2048,
        help="held-out faces for eval.json (default 2048, at least 512)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: 2 when three cores are idle, else 1; two threads on a "
        "busy 2-core machine ran 9x slower)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    import json
    import sys

    from clipica.models.tiny.train import train_tiny

    result = train_tiny(
        steps=args.steps,
        seed=args.seed,
        variant=args.variant,
        out=args.out,
        batch_size=args.batch_size,
        n_eval=args.n_eval,
        progress=not args.quiet,
        num_threads="auto" if args.threads is None else args.threads,
    )
    ev = result["eval"]
    summary = {
        "weights": str(result["weights"]),
        "steps": result["training"]["steps"],
        "train_seconds": result["training"]["train_seconds"],
        "retrieval_top1": ev["retrieval_top1"],
        "retrieval_top1_ceiling": ev["retrieval_top1_ceiling"],
        "zero_shot_auc_mean": ev["zero_shot_auc_mean"],
        "content_accuracy_mean": ev["content_accuracy_mean"],
        "eval_json": str(result["weights"].with_name("eval.json")),
        "recipe_hash": result["training"]["recipe_hash"],
        "use_with": f"--model tiny-faces --pretrained {result['weights'].parent}",
    }
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0
