"""``clipica fewshot``: few-shot probes (linear, +ICA, +PCA+ICA, +PCA, top-m, zero-shot-initialised) under domain shift,
L2 and L1, with the decompositions fitted on the few-shot rows or on the store, against the zero-shot line."""

from __future__ import annotations

import argparse

HELP = ("few-shot probes with and without ICA (L2/L1; basis fitted on the few-shot rows or the store) against the "
        "zero-shot text classifier, in-domain and on shifted test stores")
OUTPUTS = ("fewshot.json", "table.md", "table.csv", "fewshot.png")


def _ints(text: str) -> list[int]:
    try:
        out = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return out


def _choices(allowed: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        out = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in out if t not in allowed]
        if not out or bad:
            raise argparse.ArgumentTypeError(f"expected some of {','.join(allowed)} (comma-separated), got {text!r}")
        return list(dict.fromkeys(out))
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from clipica.fewshot.solver import PENALTIES
    from clipica.fewshot.stores import DEFAULT_LABEL, DEFAULT_VARIANTS, parse_shift
    from clipica.fewshot.variants import FIT_ON, VARIANTS

    parser.add_argument("--train", required=True, metavar="STORE", help="embedding store the few-shot rows are drawn from")
    parser.add_argument(
        "--label", default=DEFAULT_LABEL, metavar="COLUMN",
        help=f"class column, or COL+COL+... for every combination of values (default {DEFAULT_LABEL}: 16 classes)",
    )
    parser.add_argument(
        "--shift", action="append", type=parse_shift, default=[], metavar="NAME=STORE",
        help="a shifted test store (repeatable); classes it lacks are masked",
    )
    parser.add_argument(
        "--test", metavar="STORE", default=None,
        help="in-domain test store (default: half of --train held out, never drawn)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--quick", action="store_true", help="3 seeds, shots 1,4,16 (validation 1,4,4)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N", help="number of seeds (default 10; --quick 3)")
    parser.add_argument("--shots", type=_ints, default=None, metavar="S,S,...", help="shots per class (default 1,2,4,8,16)")
    parser.add_argument("--val-shots", type=_ints, default=None, metavar="V,V,...",
                        help="validation shots per class, one per shot count (default 1,2,4,4,4)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), metavar="V,V,...",
                        help=f"some of {','.join(VARIANTS)} (default all; zeroshot-init needs the store's model)")
    parser.add_argument("--penalty", type=_choices(PENALTIES), default=list(PENALTIES), metavar="l2|l1",
                        help="the probe's penalty, l2 (Liu et al.; rotation invariant) or l1 (sparse); "
                             "default both (l2,l1)")
    parser.add_argument("--fit-on", type=_choices(FIT_ON), default=list(FIT_ON), metavar="fewshot|store",
                        help="fit PCA/ICA on the few-shot train+val rows (Liu et al.) or, without labels, on the "
                             "train store's non-test rows; default both (fewshot,store)")
    parser.add_argument("--no-zeroshot", action="store_true",
                        help="skip the zero-shot line and zeroshot-init (default: on when the store's model loads)")
    parser.add_argument("--prompts", metavar="FILE", default=None,
                        help="class prompts, one 'CLASS | prompt' per line (default: from the label's column names "
                             "through the naming phrases)")
    parser.add_argument("--modality", choices=("image", "text"), default="image", help="embeddings to probe")
    parser.add_argument("--overwrite", action="store_true",
                        help="recompute even when DIR/fewshot.json is valid for these stores and settings "
                             "(a stale one is always recomputed)")
    parser.add_argument("--json", action="store_true", help="print the result JSON on stdout instead of the table")


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from clipica import fewshot as F
    from clipica.errors import InputError
    from clipica.pipeline.fewshot import fewshot_stage

    out = Path(args.out)
    shots = args.shots or (list(F.QUICK_SHOTS) if args.quick else list(F.SHOTS))
    if args.val_shots:
        val = args.val_shots
    elif args.shots:  # CoOp's rule: validation shots = min(shots, 4)
        val = [min(s, 4) for s in shots]
    else:
        val = list(F.QUICK_VAL_SHOTS) if args.quick else list(F.VAL_SHOTS)
    if len(val) != len(shots):
        raise InputError(f"--val-shots has {len(val)} values for {len(shots)} shot counts")
    n_seeds = args.seeds or (F.QUICK_SEEDS if args.quick else F.N_SEEDS)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    shifts = dict(args.shift)
    if len(shifts) != len(args.shift):
        raise InputError("--shift names must be distinct")
    result, reused = fewshot_stage(
        args.train, out, shifts=shifts, test=args.test, label=args.label, modality=args.modality,
        shots=shots, val_shots=val, seeds=range(n_seeds), variants=variants, reuse=not args.overwrite,
        progress=not args.json, settings=[(p, f) for p in args.penalty for f in args.fit_on],
        zeroshot=not args.no_zeroshot, prompts=args.prompts,
    )
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict()) + "\n")
    else:
        print(result.markdown())
        if not result.results[0].zeroshot:
            print(result.results[0].zeroshot_note or "No zero-shot line.")
        verb = "reused (same stores and settings; --overwrite recomputes)" if reused else "wrote"
        print(f"{verb} {', '.join(str(out / o) for o in OUTPUTS)}")
    return 0
