"""``clipica simulate``: the identifiability experiments of the two papers, with ground truth."""

from __future__ import annotations

HELP = "run the papers' identifiability simulations (multimodal | partial-causal) and write tables"


def add_arguments(parser) -> None:
    parser.add_argument("experiment", metavar="NAME",
                        help="multimodal (Daunhawer et al. 2023) or partial-causal (Liu et al. 2024)")
    parser.add_argument("--preset", default="quick",
                        help="quick (minutes on a CPU, default), paper (original sizes, GPU) or test")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--settings", default=None,
                        help="comma-separated subset of settings (default: all)")
    parser.add_argument("--steps", type=int, default=None, help="override the preset's training steps")
    parser.add_argument("--mixing-weights", default=None, choices=("orthogonal", "gaussian"),
                        help="override the preset's mixing weights (quick: orthogonal; paper: "
                             "gaussian, resampled until well-conditioned)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="where to train (default: CUDA if available, else CPU)")
    parser.add_argument("--out", required=True, help="output folder (results.json, .csv, .md)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    import platform
    import sys
    import time

    from clipica._version import __version__
    from clipica.errors import InputError
    from clipica.simulate.experiments import (
        EXPERIMENTS,
        PRESETS,
        run_experiment,
        summary_table,
        write_results,
    )

    # validate names before any heavy work so a typo fails in milliseconds
    if args.experiment not in EXPERIMENTS:
        raise InputError(f"unknown experiment {args.experiment!r}; choose one of: "
                         f"{', '.join(EXPERIMENTS)}.")
    if args.preset not in PRESETS:
        raise InputError(f"unknown preset {args.preset!r}; choose one of: {', '.join(PRESETS)}.")
    if args.seeds < 1:
        raise InputError(f"--seeds must be >= 1, got {args.seeds}.")
    settings = None if args.settings is None else [s.strip() for s in args.settings.split(",") if s.strip()]
    overrides = {}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.mixing_weights is not None:
        overrides["mixing_weights"] = args.mixing_weights
    t0 = time.perf_counter()
    df = run_experiment(args.experiment, preset=args.preset, seeds=args.seeds, settings=settings,
                        overrides=overrides, device=args.device, progress=not args.quiet)
    wall = time.perf_counter() - t0
    meta = {"experiment": args.experiment, "preset_name": args.preset, "seeds": args.seeds,
            "settings": settings, "wall_seconds": wall, "clipica_version": __version__,
            "python": sys.version.split()[0], "platform": platform.platform(),
            "arguments": {k: v for k, v in vars(args).items() if not k.startswith("_")}}
    paths = write_results(df, args.out, meta=meta)
    print(summary_table(df), end="")
    print(f"wall time {wall:.0f} s; wrote {paths['json']}, {paths['csv']}, {paths['md']}")
    return 0
