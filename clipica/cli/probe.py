"""``clipica probe``: which ICA component carries which attribute, next to PCA, raw and a random rotation."""

from __future__ import annotations

import argparse

from clipica.pipeline.analyses import DCI_ROWS, DCI_TREES  # the defaults live with the stage

HELP = (
    "score every ICA component against every label (AUC, sparse and linear probes) with baselines"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="embedding store directory (from `clipica extract`)")
    parser.add_argument(
        "--ica", required=True, metavar="ICA_DIR", help="fitted ICA directory (from `clipica ica`)"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--modality",
        choices=("image", "text"),
        default=None,
        help="embeddings to probe (default: the modality recorded with the ICA, else image)",
    )
    parser.add_argument(
        "--C", type=float, default=1.0, help="inverse L2 strength of the probes (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random rotation and split")
    parser.add_argument(
        "--metrics-rows",
        type=int,
        default=20000,
        metavar="N",
        help="rows (seeded subsample) for DCI/MIG/SAP/modularity (default 20000; 0 skips them)",
    )
    parser.add_argument(
        "--dci-rows",
        type=int,
        default=DCI_ROWS,
        metavar="N",
        help=f"rows of that subsample for DCI's gradient-boosted trees, 3/4 train and 1/4 test "
        f"(default {DCI_ROWS}; its cost grows with rows x codes x trees)",
    )
    parser.add_argument(
        "--dci-trees",
        type=int,
        default=DCI_TREES,
        metavar="T",
        help=f"trees per factor for DCI (default {DCI_TREES}; disentanglement_lib uses 100)",
    )
    parser.add_argument(
        "--max-sparse",
        type=int,
        default=64,
        metavar="K",
        help="largest k of the sparse-probe curve before the full probe (default 64)",
    )
    parser.add_argument(
        "--curve-rows",
        type=int,
        default=None,
        metavar="N",
        help="training rows (seeded subsample) the sparse curves k < K are fitted on (default "
        "20000; 0 = every training row). The linear probe and held-out AUCs always use every row",
    )
    parser.add_argument("--factor", action="append", default=[], metavar="NAME=COL1,COL2,...",
                        help="a categorical factor stored as one-hot label columns, scored as a block "
                             "(the ICA's best block of at most columns - 1 components against as "
                             "many PCA and raw codes; repeatable; mutually exclusive columns are "
                             "also detected)")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw-dimension baseline")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing probe.json")


def _ica_modality(ica_dir) -> str | None:
    import json
    from pathlib import Path

    try:
        meta = json.loads((Path(ica_dir) / "ica.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):  # a damaged ica.json: loading the ICA says so in one line
        return None
    extra = meta.get("extra") if isinstance(meta.get("extra"), dict) else {}
    mod = extra.get("modality") or meta.get("modality")
    return mod if mod in ("image", "text") else None


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from clipica.decompositions import load_decomposition
    from clipica.embeddings.store import EmbeddingStore
    from clipica.errors import ArtifactExistsError, InputError
    from clipica.pipeline import artifacts, probe_params, probe_stage

    # the flags' own names in the messages (the stage's checks speak in API terms)
    for flag, value, low in (("--C", args.C, None), ("--dci-rows", args.dci_rows, 8),
                             ("--dci-trees", args.dci_trees, 1), ("--max-sparse", args.max_sparse, 1)):
        if (low is None and value <= 0) or (low is not None and value < low):
            raise InputError(f"{flag} must be {'> 0' if low is None else f'at least {low}'}, got {value}")
    modality = args.modality or _ica_modality(args.ica) or "image"
    params = probe_params(modality=modality, C=args.C, seed=args.seed, metrics_rows=args.metrics_rows,
                          raw=not args.no_raw, max_sparse=args.max_sparse, dci_rows=args.dci_rows,
                          dci_trees=args.dci_trees, curve_rows=args.curve_rows, factors=args.factor)
    out = Path(args.out)
    if (out / "probe.json").exists() and not args.overwrite:
        raise ArtifactExistsError(f"{out / 'probe.json'} exists; pass --overwrite to replace it")
    store = EmbeddingStore.open(args.store)
    ica = load_decomposition(args.ica)
    doc = probe_stage(store, ica, out, params, store_fp=artifacts.store_fingerprint(store),
                      inputs={"ica": str(Path(args.ica).resolve())}, reuse=False)
    report = doc["_report"]
    summary = report.summary()
    print(
        f"probed {report.n_rows} rows ({report.n_train} train / {report.n_test} test, "
        f"split: {report.split_source}); {len(report.attributes)} attributes, "
        f"{len(report.factors)} continuous factors"
    )
    if report.attributes:
        print(
            report.table()[
                ["best_component", "pole", "best_auc", "runner_up_auc", "linear_probe_auc"]
            ]
            .round(3)
            .to_string()
        )
        print(
            "mean best single-component AUC: "
            + ", ".join(f"{n} {s['mean_best_auc']:.3f}" for n, s in summary.items())
        )
    if "mcc" in report.metrics:
        print(
            "MCC vs latents: "
            + ", ".join(f"{n} {v['score']:.3f}" for n, v in report.metrics["mcc"].items())
        )
    for name, f in (report.metrics.get("categorical") or {}).items():
        auc = {k: ("–" if v is None else f"{v:.3f}") for k, v in f["block_auc"].items()}
        print(f"{name} ({len(f['columns'])} values) as a block of <= {f['m']} codes, mean one-vs-rest "
              f"AUC: " + ", ".join(f"{k} {v}" for k, v in auc.items()))
    print(f"wrote {out / 'probe.json'}")
    return 0
