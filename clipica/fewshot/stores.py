"""The few-shot experiment on embedding stores: classes from label columns, test sets from stores.

>>> res = fewshot_from_stores("runs/demo/store", label="Male+Smiling+Eyeglasses+Wearing_Hat",
...                           shifts={"brightness": "runs/shift-brightness/store"})
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipica.errors import InputError
from clipica.fewshot.protocol import N_SEEDS, SHOTS, VAL_SHOTS, run_fewshot
from clipica.fewshot.result import IN_DOMAIN, FewShotRuns
from clipica.fewshot.sampling import class_codes

#: the built-in default's classes: 16 combinations of four binary synthetic-faces attributes
DEFAULT_LABEL = "Male+Smiling+Eyeglasses+Wearing_Hat"
#: fraction of the train store held out as the in-domain test set (when no --test store)
TEST_FRACTION = 0.5
#: seed of that split (fixed: every seed of the protocol draws from the same pool)
SPLIT_SEED = 20240209
#: the default's variants (zeroshot-init is dropped, with one line, when the model cannot be loaded)
DEFAULT_VARIANTS = ("linear", "ica", "pca+ica", "pca", "topm", "topm-pca", "zeroshot-init")
#: the default's settings: (penalty, fit_on)
DEFAULT_SETTINGS = (("l2", "fewshot"), ("l1", "fewshot"), ("l2", "store"), ("l1", "store"))



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
    variants=DEFAULT_VARIANTS,
    settings=DEFAULT_SETTINGS,
    zeroshot: bool = True,
    prompts=None,
    progress: bool = False,
    search=None,
) -> FewShotRuns:
    """Run the few-shot protocol with a train store and shifted test stores, once per setting.

    Parameters
    ----------
    train : path of an embedding store
        Few-shot rows are drawn from it. Without ``test``, a fixed ``test_fraction`` of
        its rows (permutation seeded with :data:`SPLIT_SEED`) is held out as the
        in-domain test set and never drawn (nor used to fit a basis).
    label : str
        A label column, or ``COL+COL+...`` for every combination of their values.
    shifts : dict name -> store path
        Shifted test sets; their rows are classed by the same label; classes the probe
        never saw are dropped (counted), classes absent from a set are masked.
    test : path of an embedding store, optional
        The in-domain test set (instead of the held-out split).
    modality : {"image", "text"}
        Which embeddings to probe.
    settings : sequence of (penalty, fit_on)
        ``penalty`` ``"l2"``/``"l1"``; ``fit_on`` ``"fewshot"`` (Liu et al.) or ``"store"``
        (decompositions fitted without labels on the train store's non-test rows).
    zeroshot, prompts :
        The zero-shot line and ``zeroshot-init`` from the store's model (class prompts by
        :mod:`clipica.fewshot.zeroshot`, or ``prompts``, a ``CLASS | prompt`` file). When the
        model cannot be loaded both are left out and the results say why in one line.
    search : callable, optional
        Passed to :func:`~clipica.fewshot.protocol.run_fewshot` (the bench's reference loop).

    Raises InputError (one line) for a missing store, a missing label column, or a class
    with fewer rows than shots + validation shots.
    """
    store = _open(train, "train")
    X = _features(store, modality)
    codes, classes = class_codes(store.rows, label)
    tests, fps, unlabelled, codes = _test_sets(store, X, codes, label, classes, test, shifts, modality, test_fraction)
    variants = requested = list(variants)
    tc, note = (None, "Zero-shot not requested.") if not zeroshot else _text_classifier(store, label, classes, prompts)
    if tc is None and "zeroshot-init" in variants:
        variants = [v for v in variants if v != "zeroshot-init"]
    seeds = [int(s) for s in seeds]
    fps["params"] = _params_fp(fewshot_settings(
        label=label, modality=modality, test_fraction=None if test is not None else test_fraction,
        shots=shots, val_shots=val_shots, seeds=seeds, variants=requested, shifts=list(shifts or {}),
        settings=settings, zeroshot=zeroshot, prompts=prompts))
    results, shared = [], {}
    for penalty, fit_on in settings:
        results.append(run_fewshot(
            X, codes, classes, tests, label=label, shots=shots, val_shots=val_shots, seeds=seeds,
            variants=variants, penalty=penalty, fit_on=fit_on, unlabelled=unlabelled, text_classifier=tc,
            zeroshot_note=note, fingerprints=fps, progress=progress, search=search, shared=shared))
    return FewShotRuns(results)


def _test_sets(store, X, codes, label, classes, test, shifts, modality, test_fraction):
    """``(tests, fingerprints, unlabelled rows (n_u, D), codes)``: the held-out rows' codes set
    to -1 (never drawn), and the unlabelled rows (every non-test row) for ``fit_on="store"``."""
    # "store" is the train store, as in every result of a run folder (the report looks for
    # a fewshot.json of its own store); "params" the protocol's settings
    fps = {"store": _store_fp(store)}
    tests: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    keep = np.ones(len(codes), dtype=bool)
    if test is None:
        if not 0 < test_fraction < 1:
            raise InputError(f"fewshot: test_fraction must be in (0, 1), got {test_fraction}")
        perm = np.random.default_rng(SPLIT_SEED).permutation(len(codes))
        held = np.sort(perm[: int(round(test_fraction * len(codes)))])
        tests[IN_DOMAIN] = (X[held], codes[held])
        codes = codes.copy()
        codes[held] = -1  # never drawn
        keep[held] = False
    else:
        tstore = _open(test, "test")
        tests[IN_DOMAIN] = (_features(tstore, modality), _map_codes(tstore, label, classes))
        fps["test"] = _store_fp(tstore)
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
        fps[f"shift:{name}"] = _store_fp(sstore)
    return tests, fps, X[keep], codes


def _text_classifier(store, label, classes, prompts):
    """``(class vectors (k, D) or None, one line saying what happened)``."""
    from clipica.fewshot.zeroshot import class_prompts, text_classifier

    texts = class_prompts(label, classes, prompts)  # a bad --prompts file is the user's error: raise
    from clipica.embeddings.manifest import model_entry

    spec = model_entry(store).get("spec")
    try:
        encoder = store.load_encoder()
        tc = text_classifier(texts, encoder)
    except Exception as exc:  # noqa: BLE001 - any failure to build the model leaves the rest of the table
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"Zero-shot skipped: the store's model {spec!r} could not be loaded ({reason})."
    if tc.shape[1] != store.embed_dim:
        return None, f"Zero-shot skipped: the model's text embeddings are {tc.shape[1]}-d, the store's {store.embed_dim}-d."
    source = "--prompts file" if prompts is not None else "the label's column names through the naming phrases"
    return tc, f"Zero-shot: text encoder of {spec!r}, class prompts from {source}."


def _store_fp(store) -> str:
    from clipica._format import store_fingerprint

    return store_fingerprint(store)


def _params_fp(settings: dict) -> str:
    from clipica._format import params_fingerprint

    return params_fingerprint(settings)


def fewshot_settings(*, label, modality, test_fraction, shots, val_shots, seeds, variants, shifts,
                     settings=DEFAULT_SETTINGS, zeroshot=True, prompts=None) -> dict:
    """The settings a ``fewshot.json`` depends on besides its stores (hashed as ``params``)."""
    from clipica.fewshot.search import BISECTION_STEPS, C_GRID, SOLVER_TOL
    from clipica.fewshot.variants import DIMS_RULE

    prompt_text = Path(prompts).read_text(encoding="utf-8") if prompts is not None and Path(prompts).is_file() else None

    return {"label": label, "modality": modality, "test_fraction": test_fraction, "split_seed": SPLIT_SEED,
            "shots": [int(s) for s in shots], "val_shots": [int(v) for v in val_shots],
            "seeds": [int(s) for s in seeds], "variants": list(variants), "shifts": list(shifts),
            "c_grid": list(C_GRID), "bisection_steps": BISECTION_STEPS, "dims_rule": DIMS_RULE,
            "tol": SOLVER_TOL, "settings": [list(x) for x in settings], "zeroshot": bool(zeroshot),
            "prompts": prompt_text, "format": "clipica.fewshot/2"}


def _map_codes(store, label: str, classes: list[str]) -> np.ndarray:
    """Class index (into the train store's ``classes``) per row of ``store``; -1 if unseen."""
    codes, names = class_codes(store.rows, label)
    index = {c: i for i, c in enumerate(classes)}
    lut = np.array([index.get(c, -1) for c in names] + [-1], dtype=np.int64)
    return lut[codes]  # -1 (missing label) indexes the trailing -1


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
