"""``clipica ica STORE -k K --out ICA_DIR``: fit the canonical ICA on a store's embeddings."""

from __future__ import annotations

import argparse

HELP = "fit a linear ICA (canonical signs/order, unit-variance sources) on a store's embeddings"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", metavar="STORE",
                        help="embedding store directory (from `clipica extract`), or a .npy matrix (n_rows, dim)")
    parser.add_argument("-k", "--n-components", dest="k", type=int, required=True, metavar="K",
                        help="number of components")
    parser.add_argument("--out", required=True, metavar="ICA_DIR", help="output directory (ica.json + arrays)")
    parser.add_argument("--modality", choices=("image", "text"), default="image",
                        help="which embeddings of the store to decompose (default image)")
    parser.add_argument("--solver", default="auto", choices=("auto", "fastica", "sklearn", "picard"),
                        help="auto/fastica = clipica's solver; sklearn; picard (needs clipica[picard])")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--fun", default="logcosh", choices=("logcosh", "exp", "cube"),
                        help="FastICA nonlinearity (default logcosh)")
    parser.add_argument("--max-iter", type=int, default=200, help="most iterations per phase (default 200)")
    parser.add_argument("--tol", type=float, default=1e-4, help="stationarity tolerance (default 1e-4)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    parser.add_argument("--stability", type=int, default=0, metavar="R",
                        help="also run R bootstrap fits and record each component's stability index")
    parser.add_argument("--no-blocks", dest="blocks", action="store_false",
                        help="skip grouping dependent components into blocks (independent subspaces; "
                             "default: find them and save them as the ICA's blocks_ plus blocks.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing ICA_DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or header")


def _load_matrix(spec: str, modality: str):
    """(X, description) from a store directory or a .npy file."""
    from pathlib import Path

    import numpy as np

    from clipica.errors import InputError, StoreError

    path = Path(spec)
    if path.suffix == ".npy":
        if not path.is_file():
            raise InputError(f"{path} does not exist; pass an embedding store directory or a .npy file.")
        try:
            X = np.load(path, mmap_mode="r")
        except ValueError as exc:
            raise InputError(f"{path} is not a readable .npy array ({exc}).") from None
        if X.ndim != 2:
            raise InputError(f"{path} holds an array of shape {X.shape}; expected (n_rows, dim).")
        return X, {"npy": str(path), "modality": modality}
    from clipica.store import EmbeddingStore

    store = EmbeddingStore.open(path)
    X = store.image if modality == "image" else store.text
    if X is None:
        raise StoreError(f"{path} has no text embeddings (the data had no captions); use --modality image.")
    man = store.manifest
    return X, {
        "store": str(path),
        "modality": modality,
        "model": (man.get("model") or {}).get("spec") if isinstance(man.get("model"), dict) else man.get("model"),
        "data": (man.get("data") or {}).get("spec") if isinstance(man.get("data"), dict) else man.get("data"),
    }


def run(args) -> int:
    import sys
    import time
    from pathlib import Path

    from clipica._atomic import atomic_write_json
    from clipica.errors import ArtifactExistsError, InputError

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise ArtifactExistsError(f"--out {out} already exists; pass --overwrite to replace it or choose another path.")
    if args.k < 1:
        raise InputError(f"-k must be a positive integer; got -k {args.k}.")
    if args.stability == 1 or args.stability < 0:
        raise InputError(f"--stability R needs R >= 2 fits (or 0 to skip); got {args.stability}.")
    X, source = _load_matrix(args.store, args.modality)
    params = dict(solver=args.solver, fun=args.fun, max_iter=args.max_iter, tol=args.tol, device=args.device)
    t0 = time.perf_counter()
    if not args.quiet:
        print(f"clipica ica: {X.shape[0]} rows x {X.shape[1]} dims ({args.modality}), K={args.k}, "
              f"solver={args.solver}", file=sys.stderr)
    stab = None
    if args.stability:
        from clipica.decompositions.stability import stability

        stab = stability(X, args.k, n_runs=args.stability, bootstrap=True, random_state=args.seed,
                         progress=not args.quiet, **params)
        ica = stab.reference
        ica.stability_ = stab.stability
    else:
        from clipica.decompositions.ica import ICA

        ica = ICA(n_components=args.k, random_state=args.seed, **params).fit(X)
    blocks = None
    if args.blocks:
        from clipica.decompositions.blocks import find_blocks

        blocks = find_blocks(ica.transform(X), n_bootstrap=10, random_state=args.seed)
        ica.blocks_ = blocks.blocks
    seconds = time.perf_counter() - t0
    extra = {**source, "command_seconds": seconds}
    if stab is not None:
        extra["stability"] = {k: v for k, v in stab.to_dict().items() if k not in ("stability",)}
    ica.save(out, overwrite=args.overwrite, extra=extra)
    if stab is not None:
        atomic_write_json(out / "stability.json", stab.to_dict())
    if blocks is not None:
        atomic_write_json(out / "blocks.json", blocks.to_dict({"decomposition": ica.fingerprint()}))
    info = ica.fit_info_
    status = "converged" if ica.converged_ else "did NOT converge"
    print(f"K={ica.components_.shape[0]}: {status} after {ica.n_iter_} iterations "
          f"(stationarity {ica.stationarity_:.2g}), fit {info['seconds']['total']:.2f} s")
    if stab is not None:
        print(f"stability over {args.stability} bootstrap fits: mean {stab.stability_mean:.3f}, "
              f"min {stab.stability.min():.3f}")
    if blocks is not None and blocks.multi():
        print("blocks of dependent components: " + ", ".join(
            f"{b} (stability {s:.2f})" for b, s in zip(blocks.blocks, blocks.stability, strict=True)
            if len(b) > 1))
    print(f"wrote {out}/ica.json")
    return 0
