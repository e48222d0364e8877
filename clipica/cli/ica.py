"""``clipica ica STORE -k K --out ICA_DIR``: fit the canonical ICA on a store's embeddings."""

from __future__ import annotations

import argparse

HELP = "fit a linear ICA (canonical signs/order, unit-variance sources) on a store's embeddings"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", metavar="STORE",
                        help="embedding store directory (from `clipica extract`), or a .npy matrix (n_rows, dim)")
    parser.add_argument("-k", "--n-components", dest="k", required=True, metavar="K|auto",
                        help="number of components, or 'auto': the K chosen by `clipica stability` "
                             "(read from --sweep)")
    parser.add_argument("--sweep", default=None, metavar="DIR",
                        help="with -k auto: the folder `clipica stability --out` wrote (default: "
                             "the stability/ folder beside STORE, as in a run folder)")
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
    from clipica.embeddings.store import EmbeddingStore

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


def _parse_k(text: str):
    from clipica.errors import InputError

    if str(text).lower() == "auto":
        return "auto"
    try:
        k = int(text)
    except ValueError:
        raise InputError(f"-k must be a positive integer or 'auto'; got -k {text}.") from None
    if k < 1:
        raise InputError(f"-k must be a positive integer or 'auto'; got -k {k}.")
    return k


def run(args) -> int:
    import sys
    from pathlib import Path

    from clipica.errors import ArtifactExistsError, InputError
    from clipica.pipeline import artifacts, chosen_k, fit_stage, ica_params

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise ArtifactExistsError(f"--out {out} already exists; pass --overwrite to replace it or choose another path.")
    k = _parse_k(args.k)
    if args.stability == 1 or args.stability < 0:
        raise InputError(f"--stability R needs R >= 2 fits (or 0 to skip); got {args.stability}.")
    X, source = _load_matrix(args.store, args.modality)
    store_fp = artifacts.store_fingerprint(args.store) if "store" in source else None
    rule = None
    if k == "auto":
        if store_fp is None:
            raise InputError("-k auto needs an embedding store (its K sweep), not a .npy matrix; pass -k K")
        sweep = Path(args.sweep) if args.sweep else Path(args.store).parent / artifacts.STABILITY
        k, rule = chosen_k(sweep, store_fp)
    params = ica_params(k, seed=args.seed, solver=args.solver, fun=args.fun, max_iter=args.max_iter,
                        tol=args.tol, device=args.device, modality=args.modality,
                        stability_runs=args.stability, blocks=args.blocks)
    if not args.quiet:
        print(f"clipica ica: {X.shape[0]} rows x {X.shape[1]} dims ({args.modality}), K={k}"
              + (f" ({rule})" if rule else "") + f", solver={args.solver}", file=sys.stderr)
    ica = fit_stage(X, out, params, store_fp=store_fp, source=source, reuse=False,
                    progress=not args.quiet)
    info = ica.fit_info_
    status = "converged" if ica.converged_ else "did NOT converge"
    import numpy as np

    block = list(getattr(ica, "gaussian_block_", None) or [])
    k = ica.components_.shape[0]
    part = (f" on its {k - len(block)} identifiable components; components {block[0]}-{block[-1]} are one "
            "unidentifiable Gaussian block") if block else ""
    print(f"K={k}: {status}{part} after {ica.n_iter_} iterations "
          f"(stationarity {ica.stationarity_:.2g}), fit {info['seconds']['total']:.2f} s")
    stab = getattr(ica, "stability_", None)
    if args.stability and stab is not None and not np.all(np.isnan(stab)):
        print(f"stability over {args.stability} bootstrap fits (identifiable components): mean "
              f"{float(np.nanmean(stab)):.3f}, min {float(np.nanmin(stab)):.3f}")
    print(f"wrote {out}/ica.json")
    return 0
