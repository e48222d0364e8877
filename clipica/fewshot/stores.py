"""The few-shot experiment on embedding stores: classes from label columns, test sets from stores.

>>> res = fewshot_from_stores("runs/demo/store", label="Male+Smiling+Eyeglasses+Wearing_Hat",
...                           shifts={"brightness": "runs/shift-brightness/store"})
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipica.errors import InputError
from clipica.fewshot.protocol import N_SEEDS, SHOTS, VAL_SHOTS, VARIANTS, class_codes, run_fewshot
from clipica.fewshot.result import IN_DOMAIN, FewShotResult

#: the built-in default's classes: 16 combinations of four binary synthetic-faces attributes
DEFAULT_LABEL = "Male+Smiling+Eyeglasses+Wearing_Hat"
#: fraction of the train store held out as the in-domain test set (when no --test store)
TEST_FRACTION = 0.5
#: seed of that split (fixed: every seed of the protocol draws from the same pool)
SPLIT_SEED = 20240209



def parse_shift(text: str) -> tuple[str, str]:
    """A ``--shift`` value, ``NAME=STORE``, as ``(name, store path)`` (for argparse's ``type=``)."""
    import argparse

    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--shift takes NAME=STORE, got {text!r}")
    return name, path


def _features(store, modality: str) -> np.ndarray:
    if modality == "image":
        return np.asarray(store.image, dtype=np.float32)
    if modality == "text":
        if store.text is None:
            raise InputError(f"fewshot: {store.path} has no text embeddings; use --modality image")
        return np.asarray(store.text, dtype=np.float32)
    raise InputError(f"fewshot: --modality must be image or text, got {modality!r}")


def _open(path, what: str):
    from clipica.embeddings.store import EmbeddingStore

    if not Path(path).exists():
        raise InputError(f"fewshot: {what} store {path} does not exist")
    return EmbeddingStore.open(path)


def fewshot_from_stores(
    train,
    *,
    label: str = DEFAULT_LABEL,
    shifts: dict[str, str] | None = None,
    test=None,
    modality: str = "image",
    test_fraction: float = TEST_FRACTION,
    shots=SHOTS,
    val_shots=VAL_SHOTS,
    seeds=range(N_SEEDS),
    variants=VARIANTS,
    progress: bool = False,
    search=None,
) -> FewShotResult:
    """Run the few-shot protocol with a train store and shifted test stores.

    Parameters
    ----------
    train : path of an embedding store
        Few-shot rows are drawn from it. Without ``test``, a fixed ``test_fraction`` of
        its rows (permutation seeded with :data:`SPLIT_SEED`) is held out as the
        in-domain test set and never drawn.
    label : str
        A label column, or ``COL+COL+...`` for every combination of their values.
    shifts : dict name -> store path
        Shifted test sets; their rows are classed by the same label; classes the probe
        never saw are dropped (counted), classes absent from a set are masked.
    test : path of an embedding store, optional
        The in-domain test set (instead of the held-out split).
    modality : {"image", "text"}
        Which embeddings to probe.
    search : callable, optional
        Passed to :func:`~clipica.fewshot.protocol.run_fewshot` (the bench's reference loop).

    Raises InputError (one line) for a missing store, a missing label column, or a class
    with fewer rows than shots + validation shots.
    """
    from clipica._format import params_fingerprint, store_fingerprint

    store = _open(train, "train")
    X = _features(store, modality)
    codes, classes = class_codes(store.rows, label)
    # "store" is the train store, as in every result of a run folder (the report looks for
    # a fewshot.json of its own store); "params" the protocol's settings
    fps = {"store": store_fingerprint(store)}
    tests: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if test is None:
        if not 0 < test_fraction < 1:
            raise InputError(f"fewshot: test_fraction must be in (0, 1), got {test_fraction}")
        perm = np.random.default_rng(SPLIT_SEED).permutation(len(codes))
        held = perm[: int(round(test_fraction * len(codes)))]
        tests[IN_DOMAIN] = (X[np.sort(held)], codes[np.sort(held)])
        codes = codes.copy()
        codes[held] = -1  # never drawn
    else:
        tstore = _open(test, "test")
        tests[IN_DOMAIN] = (_features(tstore, modality), _map_codes(tstore, label, classes))
        fps["test"] = store_fingerprint(tstore)
    for name, path in (shifts or {}).items():
        if name in tests:
            raise InputError(f"fewshot: test set name {name!r} used twice")
        sstore = _open(path, f"shift {name!r}")
        if sstore.embed_dim != store.embed_dim:
            raise InputError(
                f"fewshot: shift {name!r} has {sstore.embed_dim}-d embeddings but the train store "
                f"{store.embed_dim}-d; extract both with the same model"
            )
        _check_same_encoder(store, sstore, f"shift {name!r}")
        tests[name] = (_features(sstore, modality), _map_codes(sstore, label, classes))
        fps[f"shift:{name}"] = store_fingerprint(sstore)
    seeds, variants = [int(s) for s in seeds], list(variants)
    fps["params"] = params_fingerprint(fewshot_settings(
        label=label, modality=modality, test_fraction=None if test is not None else test_fraction,
        shots=shots, val_shots=val_shots, seeds=seeds, variants=variants, shifts=list(shifts or {})))
    return run_fewshot(
        X, codes, classes, tests, label=label, shots=shots, val_shots=val_shots, seeds=seeds,
        variants=variants, fingerprints=fps, progress=progress, search=search,
    )


def fewshot_settings(*, label, modality, test_fraction, shots, val_shots, seeds, variants, shifts) -> dict:
    """The settings a ``fewshot.json`` depends on besides its stores (hashed as ``params``)."""
    from clipica.fewshot.protocol import BISECTION_STEPS, C_GRID, DIMS_RULE, SOLVER_TOL

    return {"label": label, "modality": modality, "test_fraction": test_fraction, "split_seed": SPLIT_SEED,
            "shots": [int(s) for s in shots], "val_shots": [int(v) for v in val_shots],
            "seeds": [int(s) for s in seeds], "variants": list(variants), "shifts": list(shifts),
            "c_grid": list(C_GRID), "bisection_steps": BISECTION_STEPS, "dims_rule": DIMS_RULE,
            "tol": SOLVER_TOL}


def _encoder_settings(store) -> dict:
    """What makes two stores' embeddings comparable: the encoder's backend, architecture and
    weights, its preprocessing, the normalisation and the layer (None: not recorded)."""
    from clipica.embeddings.manifest import model_entry, normalizes

    model = model_entry(store)
    enc = model.get("encoder") if isinstance(model.get("encoder"), dict) else {}
    key = store.manifest.get("key") if isinstance(store.manifest.get("key"), dict) else {}
    return {"backend": enc.get("backend"), "architecture": enc.get("architecture") or model.get("spec"),
            "weights": enc.get("weights") or enc.get("pretrained") or model.get("pretrained"),
            "preprocessing": enc.get("preprocess") or model.get("preprocess"),
            "normalisation": normalizes(store),
            # absent means final (stores written before --layer)
            "layer": store.manifest.get("layer") or key.get("layer") or "final"}


def _check_same_encoder(train, other, what: str) -> None:
    """Refuse (one line) a test store embedded by another encoder or with other settings than
    the train store: a probe fitted on one embedding space scores nothing in another, even of
    the same width (trained and random-weight tiny-faces gave rc 0 and meaningless accuracies)."""
    a, b = _encoder_settings(train), _encoder_settings(other)
    for field in a:
        if a[field] != b[field] and not (a[field] is None or b[field] is None):
            def short(v):
                return repr(v) if len(repr(v)) <= 80 else repr(v)[:77] + "..."

            raise InputError(
                f"fewshot: {what} store {other.path} was embedded with other {field} than the train "
                f"store ({short(b[field])}, train {short(a[field])}); extract it with the same model, "
                "weights and settings")


def _map_codes(store, label: str, classes: list[str]) -> np.ndarray:
    """Class index (into the train store's ``classes``) per row of ``store``; -1 if unseen."""
    codes, names = class_codes(store.rows, label)
    index = {c: i for i, c in enumerate(classes)}
    lut = np.array([index.get(c, -1) for c in names] + [-1], dtype=np.int64)
    return lut[codes]  # -1 (missing label) indexes the trailing -1
