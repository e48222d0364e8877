"""``clipica probe``: which ICA component carries which attribute, next to PCA, raw and a random rotation."""

from __future__ import annotations

import argparse

HELP = (
    "score every ICA component against every label (AUC, sparse and linear probes) with baselines"
)

# DCI's gradient-boosted trees on a seeded subsample: with these defaults the metrics stage
# stays within 2x of the lasso DCI it replaced on the demo store (20,000 x 64, K = 12,
# 11 attributes, four code sets); D and C differ from 4,000 rows x 100 trees by <= 0.08
# there (ica 0.257 vs 0.229, raw 0.591 vs 0.516; see clipica.metrics.dci)
DCI_ROWS = 1000
DCI_TREES = 20

OUTPUTS = (
    "probe.json",
    "attributes.csv",
    "factors.csv",
    "auc_matrix.csv",
    "sparse_curve.csv",
    "heatmap.png",
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
    parser.add_argument("--no-raw", action="store_true", help="skip the raw-dimension baseline")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing probe.json")


def _ica_modality(ica_dir) -> str | None:
    import json
    from pathlib import Path

    try:
        meta = json.loads((Path(ica_dir) / "ica.json").read_text())
    except (OSError, ValueError):
        return None
    extra = meta.get("extra") or {}
    mod = extra.get("modality") or meta.get("modality")
    return mod if mod in ("image", "text") else None


def compute(
    store,
    ica,
    *,
    modality="image",
    C=1.0,
    seed=0,
    metrics_rows=20000,
    raw=True,
    max_sparse=64,
    progress=True,
    dci_rows=DCI_ROWS,
    dci_trees=DCI_TREES,
):
    """The probe report with baselines and disentanglement metrics, for a store and an ICA.

    Returns the :class:`~clipica.probes.ProbeReport`; ``report.metrics`` holds ``mcc``
    (ICA, PCA, raw against ``latent_*`` columns, when present) and ``dci``, ``mig``, ``sap``,
    ``modularity`` of the ICA against the binary attributes, each with the same metric for
    the baselines under ``baselines`` (raw only when it has at most 128 dimensions).
    MIG, SAP and modularity use a seeded subsample of ``metrics_rows`` rows; DCI (trees,
    the published definition) a seeded subsample of ``dci_rows`` of those rows with
    ``dci_trees`` trees per factor; each entry states its rows, trees and seed.
    """
    import numpy as np

    from clipica.errors import InputError, StoreMismatchError
    from clipica.metrics import dci, mcc, mig, modularity, sap
    from clipica.probes import baseline_codes, probe

    X = store.image if modality == "image" else store.text
    if X is None:
        raise InputError(
            f"the store at {store.path} has no {modality} embeddings; use --modality image"
        )
    if ica.components_.shape[1] != X.shape[1]:
        raise StoreMismatchError(
            f"the ICA was fitted on {ica.components_.shape[1]}-d data but the store's {modality} "
            f"embeddings are {X.shape[1]}-d; fit the ICA on this store (`clipica ica`)"
        )
    X = np.asarray(X, dtype=np.float32)
    codes = ica.transform(X)
    k = codes.shape[1]
    bases = baseline_codes(X, k, random_state=seed, include_raw=raw)
    rows = store.rows
    label_cols = [c for c in store.label_columns if c in rows.columns]
    if not label_cols:
        raise InputError(
            f"the store at {store.path} has no label columns to probe against; extract from a "
            "data source with labels (e.g. synthetic-faces, celeba)"
        )
    labels = rows[label_cols + (["split"] if "split" in rows.columns else [])]
    report = probe(
        codes,
        labels,
        baselines=bases,
        C=C,
        random_state=seed,
        max_sparse=max_sparse,
        progress=progress,
    )
    sets = {"ica": codes, **bases}

    if report.factors:
        latent = [f for f in report.factors if f.startswith("latent_")] or report.factors
        Z = labels[latent].to_numpy(dtype=np.float64)
        report.metrics["mcc"] = {
            name: {**mcc(sets[name], Z).to_dict(), "factors": latent}
            for name in ("ica", "pca", "raw", "random_rotation")
            if name in sets
        }
    if report.attributes and metrics_rows > 0:
        Y = labels[report.attributes].to_numpy(dtype=np.float64)
        ok = ~np.isnan(Y).any(axis=1)
        idx = np.flatnonzero(ok)
        if idx.size > metrics_rows:
            idx = np.sort(np.random.default_rng(seed).choice(idx, metrics_rows, replace=False))
        names = [n for n in sets if n != "raw" or sets[n].shape[1] <= 128]

        # DCI's trees cost rows x codes x trees: a smaller seeded subsample, stated in probe.json
        d_idx = idx
        if idx.size > dci_rows:
            d_idx = np.sort(np.random.default_rng(seed + 1).choice(idx, dci_rows, replace=False))

        def one(fn, c):
            if fn is dci:
                res = dci(c[d_idx], Y[d_idx], n_estimators=dci_trees, random_state=seed)
                return {
                    "disentanglement": res.disentanglement,
                    "completeness": res.completeness,
                    "informativeness": res.informativeness,
                }
            return {"score": fn(c[idx], Y[idx]).score}

        for key, fn in (("dci", dci), ("mig", mig), ("sap", sap), ("modularity", modularity)):
            main = one(fn, codes)
            main["baselines"] = {n: one(fn, sets[n]) for n in names if n != "ica"}
            main["n_rows"] = int((d_idx if fn is dci else idx).size)
            main["subsample_seed"] = seed + 1 if fn is dci else seed
            if fn is dci:
                main.update(model="gradient_boosting", n_estimators=int(dci_trees), max_depth=3,
                            test_size=0.25)
            report.metrics[key] = main
    return report


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from clipica._atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
    from clipica.decompositions.ica import ICA
    from clipica.errors import ArtifactExistsError, InputError
    from clipica.store import EmbeddingStore

    if args.C <= 0:
        raise InputError(f"--C must be > 0, got {args.C}")
    if args.dci_rows < 8:
        raise InputError(f"--dci-rows must be at least 8, got {args.dci_rows}")
    if args.dci_trees < 1:
        raise InputError(f"--dci-trees must be at least 1, got {args.dci_trees}")
    if args.max_sparse < 1:
        raise InputError(f"--max-sparse must be at least 1, got {args.max_sparse}")
    out = Path(args.out)
    if (out / "probe.json").exists() and not args.overwrite:
        raise ArtifactExistsError(f"{out / 'probe.json'} exists; pass --overwrite to replace it")
    store = EmbeddingStore.open(args.store)
    ica = ICA.load(args.ica)
    modality = args.modality or _ica_modality(args.ica) or "image"
    report = compute(
        store,
        ica,
        modality=modality,
        C=args.C,
        seed=args.seed,
        metrics_rows=args.metrics_rows,
        raw=not args.no_raw,
        max_sparse=args.max_sparse,
        dci_rows=args.dci_rows,
        dci_trees=args.dci_trees,
    )

    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:  # a stale table from an earlier run must not sit beside new ones
        if name != "probe.json" and (out / name).exists():
            (out / name).unlink()
    atomic_write_text(
        out / "attributes.csv", report.table().to_csv()
    ) if report.attributes else None
    if report.factors:
        atomic_write_text(out / "factors.csv", report.factor_table().to_csv())
    if report.attributes:
        atomic_write_text(out / "auc_matrix.csv", report.matrix().to_csv())
        atomic_write_text(out / "sparse_curve.csv", report.sparse_curve().to_csv(index=False))
        import io

        fig = report.plot_heatmap(blocks=getattr(ica, "blocks_", None))
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120)
        atomic_write_bytes(out / "heatmap.png", buf.getvalue())
    doc = report.to_dict()
    doc["inputs"] = {
        "store": str(Path(args.store).resolve()),
        "ica": str(Path(args.ica).resolve()),
        "modality": modality,
        "model": store.manifest.get("model"),
        "data": store.manifest.get("data"),
        "n_components": int(ica.components_.shape[0]),
    }
    atomic_write_json(out / "probe.json", doc)

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
    print(f"wrote {out / 'probe.json'}")
    return 0
