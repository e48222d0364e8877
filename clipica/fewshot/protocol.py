"""Few-shot probes with and without ICA: Liu et al.'s experiment (arXiv 2402.06223), and what it lacked.

Arrays in, a typed :class:`~clipica.fewshot.result.FewShotResult` out (``clipica.fewshot/2``);
reading stores is :mod:`clipica.fewshot.stores`, figures :mod:`clipica.viz.fewshot`.

Protocol (CoOp's linear probe, lpclip/linear_probe.py, with Liu et al.'s variants):

- **Shots** per class 1, 2, 4, 8, 16 with validation shots 1, 2, 4, 4, 4; 10 seeds.
  For seed ``s`` and class ``c`` the pool rows of ``c`` are permuted by
  ``numpy.random.default_rng([s, c])``; the first ``shots`` rows train, the next
  ``val_shots`` validate (draws reproducible, independent across classes, nested across
  shot counts; :func:`~clipica.fewshot.sampling.sample_fewshot`).
- **Probe**: multinomial logistic regression (scikit-learn's objective, full k-class
  parametrisation, intercept not penalised) on the features as given (no standardisation,
  as CoOp), with ``penalty="l2"`` (the paper's; rotation invariant, Ng 2004) or
  ``penalty="l1"`` (sparse: not rotation invariant, so the basis matters). L2 is solved until
  the weights are right to a relative 1e-4 (:func:`clipica.probes.multinomial.fit_multinomial_path`),
  L1 until the largest pseudo-gradient entry is at most 1e-6 / (C n) (:mod:`clipica.fewshot.solver`).
- **C search** on the validation shots (:mod:`clipica.fewshot.search`): CoOp's grid 1e6 ...
  1e-6, then 8 bisection steps in log10 C.
- **Variants** (:mod:`clipica.fewshot.variants`), on the same rows:

  - ``linear``: the raw features;
  - ``ica``: clipica's ICA with K1 components (unit-variance sources);
  - ``pca+ica``: PCA to P dimensions (projection, not whitened) then ICA with K2 components;
  - ``pca``: whitened PCA with K1 components: the ICA's subspace and scale without its
    rotation. Under the L2 penalty it equals ``ica`` (up to the ICA's convergence);
  - ``topm`` / ``topm-pca``: the m most label-relevant ICA / whitened-PCA components
    (ANOVA F on the training shots), then an L2 probe (whatever ``penalty``); m from
    1, 2, 4, ..., K1 and C are chosen together on the validation shots (ties: smaller m);
  - ``zeroshot-init``: on the L2-normalised features, a probe that starts at the text
    classifier (scale fitted on the training shots) and whose L2 penalty pulls it back
    there (LP++/CLAP style); needs ``text_classifier``.

  ``fit_on="fewshot"`` (Liu et al.): every decomposition is fitted on the draw's train+val
  rows, seeded with the draw's seed. ``fit_on="store"``: fitted once, without labels, on
  ``unlabelled`` (the train store's non-test rows), seed 0, shared by every draw.
- **Zero-shot** reference (with ``text_classifier``): argmax cosine with the class
  prompts' text embeddings, on every test set; the flat line every shot count must beat.
- **Dimensions** (:func:`~clipica.fewshot.variants.variant_dims`): the paper's P=500,
  K1=300, K2=160 scaled by ``f = min(1, D / 500, n_fit / (4 * 300))``.
- **Test sets**: accuracy of the kept model. Classes absent from a test set are masked
  (their logits set to -inf before the argmax); test rows of a class the probe never saw
  are dropped (counted). No choice (dimensions, m, C, scale) ever sees a test row.
"""

from __future__ import annotations

import time

import numpy as np

from clipica.errors import InputError
from clipica.fewshot.result import FewShotResult
from clipica.fewshot.sampling import masked_accuracy, sample_fewshot
from clipica.fewshot.search import BISECTION_STEPS, C_GRID, SOLVER_TOL, search_c
from clipica.fewshot.solver import PENALTIES
from clipica.fewshot.variants import (
    DECOMPOSED,
    DIMS_RULE,
    FIT_ON,
    PAPER_DIMS,
    STORE_SEED,
    VARIANTS,
    basis_of,
    fit_variant,
    relevance_order,
    topm_grid,
    variant_dims,
)

SHOTS = (1, 2, 4, 8, 16)
VAL_SHOTS = (1, 2, 4, 4, 4)
QUICK_SHOTS = (1, 4, 16)
QUICK_VAL_SHOTS = (1, 4, 4)
N_SEEDS = 10
QUICK_SEEDS = 3


class _Task:
    """One probe to fit: a seed x variant (x m) with its train/val features."""

    __slots__ = ("seed", "variant", "m", "Ftr", "Fva", "fmap", "cols", "group", "off_tr", "off_va", "scale")

    def __init__(self, seed, variant, fmap, F, n_tr, *, m=None, cols=None, group=("l2", False)):
        self.seed, self.variant, self.fmap, self.m, self.cols, self.group = seed, variant, fmap, m, cols, group
        F = F if cols is None else F[:, cols]
        self.Ftr, self.Fva = F[:n_tr], F[n_tr:]
        self.off_tr = self.off_va = self.scale = None


def _check(X, codes, classes, shots, val_shots, variants, penalty, fit_on, text_classifier):
    if len(shots) != len(val_shots):
        raise InputError(f"fewshot: {len(shots)} shot counts but {len(val_shots)} validation shot counts")
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise InputError(f"fewshot: unknown variant(s) {', '.join(bad)}; expected some of {', '.join(VARIANTS)}")
    if penalty not in PENALTIES:
        raise InputError(f"fewshot: --penalty must be one of {', '.join(PENALTIES)}, got {penalty!r}")
    if fit_on not in FIT_ON:
        raise InputError(f"fewshot: --fit-on must be one of {', '.join(FIT_ON)}, got {fit_on!r}")
    if X.ndim != 2 or X.shape[0] != codes.shape[0]:
        raise InputError(f"fewshot: X must be (n_rows, D) with one class code per row; got {X.shape}, {codes.shape}")
    if len(classes) < 2:
        raise InputError(f"fewshot: the label gives {len(classes)} class(es); a probe needs at least 2")
    if "zeroshot-init" in variants and text_classifier is None:
        raise InputError("fewshot: the zeroshot-init variant needs the text classifier (the store's model)")
    for s, v in zip(shots, val_shots, strict=False):  # fail on the largest draw before any work
        sample_fewshot(codes, len(classes), s, v, 0, classes)


def _prepare_tests(tests, k: int, D: int):
    """Test sets as ``[(X, codes, present)]`` with unseen-class rows dropped, and their counts."""
    data, info = [], {}
    for name, (Xt, ct) in tests.items():
        Xt, ct = np.asarray(Xt), np.asarray(ct, dtype=np.int64)
        if Xt.ndim != 2 or Xt.shape[1] != D or Xt.shape[0] != ct.shape[0]:
            raise InputError(f"fewshot: test set {name!r} has features {Xt.shape}; expected (n, {D}) with one code per row")
        keep = ct >= 0
        present = np.zeros(k, dtype=bool)
        present[ct[keep]] = True
        data.append((Xt[keep], ct[keep], present))
        info[name] = {"rows": int(keep.sum()), "classes_present": int(present.sum()), "rows_dropped": int((~keep).sum())}
    return data, info


def _draw_tasks(X, codes, k, s, v, seeds, variants, dims, penalty, text_classifier, store_maps):
    """Every task of one shot count: per seed, each variant's features (and top-m's m values).

    ``variants``: ``(index, name)`` pairs, the index into the result's variants."""
    tasks = []
    for a, seed in enumerate(seeds):
        tr, va = sample_fewshot(codes, k, s, v, seed)
        Xfit = np.asarray(X[np.concatenate([tr, va])], dtype=np.float64)
        ytr = np.repeat(np.arange(k), s)
        maps, feats = dict(store_maps), {}  # a draw shares each basis between its variants
        for vi, name in variants:
            basis = basis_of(name)
            if basis not in maps:
                maps[basis] = fit_variant(basis, Xfit, dims, seed)
            if basis not in feats:
                feats[basis] = maps[basis](Xfit)
            F = feats[basis]
            if name in ("topm", "topm-pca"):
                order = relevance_order(F[: tr.size], ytr, k)
                tasks += [_Task(a, vi, maps[basis], F, tr.size, m=m, cols=order[:m]) for m in topm_grid(F.shape[1])]
            elif name == "zeroshot-init":
                t = _Task(a, vi, maps[basis], F, tr.size, group=("l2", True))
                from clipica.fewshot.zeroshot import prior_scale

                t.scale = prior_scale(t.Ftr, ytr, text_classifier)
                t.off_tr, t.off_va = (t.scale * G @ text_classifier.T for G in (t.Ftr, t.Fva))
                tasks.append(t)
            else:
                tasks.append(_Task(a, vi, maps[basis], F, tr.size, group=(penalty, False)))
    return tasks


def _search_groups(tasks, k, s, v, search, tol, max_iter):
    """Run the C search once per group of tasks sharing a penalty and prior; results per task."""
    out = [None] * len(tasks)
    for group in sorted({t.group for t in tasks}):
        idx = [j for j, t in enumerate(tasks) if t.group == group]
        width = max(tasks[j].Ftr.shape[1] for j in idx)
        # pad to one width: zero columns get no gradient and stay unused
        pad = [np.pad(tasks[j].Ftr, ((0, 0), (0, width - tasks[j].Ftr.shape[1]))) for j in idx]
        padv = [np.pad(tasks[j].Fva, ((0, 0), (0, width - tasks[j].Fva.shape[1]))) for j in idx]
        ytr = np.repeat(np.arange(k), s)[None].repeat(len(idx), 0)
        yva = np.repeat(np.arange(k), v)[None].repeat(len(idx), 0)
        kw = {"penalty": group[0]}
        if group[1]:
            kw.update(offset_tr=np.stack([tasks[j].off_tr for j in idx]),
                      offset_va=np.stack([tasks[j].off_va for j in idx]))
        res = search(np.stack(pad), ytr, np.stack(padv), yva, k, tol=tol, max_iter=max_iter, **kw)
        for r, j in enumerate(idx):
            out[j] = {key: val[r] for key, val in res.items()}
    return out


def _keep_best(tasks, fits):
    """Per (seed, variant), the task with the best validation accuracy (ties: the first, the smaller m)."""
    best = {}
    for t, f in zip(tasks, fits, strict=True):
        key = (t.seed, t.variant)
        if key not in best or f["val_accuracy"] > best[key][1]["val_accuracy"]:
            best[key] = (t, f)
    return best


def _score(best, test_data, text_classifier, i, out):
    """Test accuracy of every kept probe into ``out`` arrays at shot index ``i``."""
    cache = {}
    for (a, vi), (t, f) in best.items():
        out["C"][a, i, vi], out["val"][a, i, vi] = f["C"], f["val_accuracy"]
        out["m"][a, i, vi] = np.nan if t.m is None else t.m
        d = t.Ftr.shape[1]
        for j, (Xt, ct, present) in enumerate(test_data):
            if not ct.size:  # an empty test set (no row of a trained class) stays NaN
                continue
            key = (id(t.fmap), j)
            if key not in cache:
                cache[key] = t.fmap(Xt)
            F = cache[key] if t.cols is None else cache[key][:, t.cols]
            logits = F @ f["coef"][:d] + f["intercept"]
            if t.scale is not None:
                logits = logits + t.scale * F @ text_classifier.T
            out["acc"][a, i, vi, j] = masked_accuracy(logits, ct, present)


def _share_key(name, penalty, fit_on, shots, val_shots, seeds, dims) -> tuple:
    """What a variant's result depends on besides the data: its effective penalty and fit_on."""
    eff_penalty = "l2" if name in ("topm", "topm-pca", "zeroshot-init") else penalty
    eff_fit_on = fit_on if name in DECOMPOSED else None
    return (name, eff_penalty, eff_fit_on, tuple(shots), tuple(val_shots), tuple(seeds), repr(dims))


def _store_maps(X_unlab, variants, dims, fit_on):
    """The decompositions fitted once on the unlabelled store rows (``fit_on="store"``)."""
    if fit_on != "store":
        return {}
    X_unlab = np.asarray(X_unlab, dtype=np.float64)
    return {b: fit_variant(b, X_unlab, dims, STORE_SEED) for b in {basis_of(v) for v in variants if v in DECOMPOSED}}


def _zeroshot(test_names, test_data, text_classifier):
    if text_classifier is None:
        return None
    from clipica.fewshot.zeroshot import zeroshot_logits

    return {name: (masked_accuracy(zeroshot_logits(Xt, text_classifier), ct, present) if ct.size else None)
            for name, (Xt, ct, present) in zip(test_names, test_data, strict=True)}


def run_fewshot(
    X: np.ndarray,
    codes: np.ndarray,
    classes: list[str],
    tests: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    label: str = "",
    shots=SHOTS,
    val_shots=VAL_SHOTS,
    seeds=range(N_SEEDS),
    variants=("linear", "ica", "pca+ica", "pca"),
    penalty: str = "l2",
    fit_on: str = "fewshot",
    unlabelled: np.ndarray | None = None,
    text_classifier: np.ndarray | None = None,
    zeroshot_note: str = "",
    tol: float = SOLVER_TOL,
    max_iter: int = 1000,
    fingerprints: dict[str, str] | None = None,
    progress: bool = False,
    search=None,
    dims: dict[str, int] | None = None,
    shared: dict | None = None,
) -> FewShotResult:
    """Run the protocol (module docstring) on a training pool and named test sets.

    ``X`` (n_rows, D): the training pool's features; ``codes`` (n_rows,): class index per
    row, -1 excludes a row from the draws; ``classes``: class names; ``tests``: name ->
    ``(X_t (n_t, D), codes_t (n_t,))`` (``-1``: a class the probe never saw; dropped and
    counted), ``"in-domain"`` first by convention. ``penalty``: ``"l2"`` or ``"l1"``;
    ``fit_on``: ``"fewshot"`` or ``"store"`` (then the decompositions are fitted on
    ``unlabelled`` (n_u, D), by default the rows with ``codes >= 0``). ``text_classifier``
    (k, D): unit class text vectors, for the zero-shot line and ``zeroshot-init``.
    ``dims``: component counts used at every shot count instead of :func:`variant_dims`
    (each capped at the fitting rows - 1). ``search``: replaces
    :func:`~clipica.fewshot.search.search_c` (the bench's scikit-learn loop). ``shared``: a
    dict kept across calls on the same data (every setting of one experiment): a variant whose
    result does not depend on the setting that changed (``linear`` on ``fit_on``; top-m and
    ``zeroshot-init``, always L2, on ``penalty``) is copied from it instead of refitted.
    """
    from tqdm.auto import tqdm

    search = search or search_c
    X, codes = np.asarray(X), np.asarray(codes, dtype=np.int64)
    shots, val_shots, seeds = [int(s) for s in shots], [int(v) for v in val_shots], [int(s) for s in seeds]
    variants = list(variants)
    tc = None if text_classifier is None else np.asarray(text_classifier, dtype=np.float64)
    _check(X, codes, classes, shots, val_shots, variants, penalty, fit_on, tc)
    k, D = len(classes), X.shape[1]
    test_data, test_info = _prepare_tests(tests, k, D)
    unlab = X[codes >= 0] if unlabelled is None else np.asarray(unlabelled)
    shape = (len(seeds), len(shots), len(variants))
    out = {"acc": np.full(shape + (len(tests),), np.nan), "C": np.full(shape, np.nan),
           "val": np.full(shape, np.nan), "m": np.full(shape, np.nan)}
    secs = {"decompositions": 0.0, "c_search": 0.0, "evaluation": 0.0}
    dims_all, stats = [], {"iterations": 0, "fits": 0}

    def fix_dims(n_fit):
        auto = variant_dims(n_fit, D)
        return auto if dims is None else {key: max(1, min(int(val), D, n_fit - 1)) for key, val in {**auto, **dims}.items()}

    shared = {} if shared is None else shared
    keys = [_share_key(name, penalty, fit_on, shots, val_shots, seeds, dims) for name in variants]
    todo = [(vi, name) for vi, name in enumerate(variants) if keys[vi] not in shared]
    t0 = time.perf_counter()
    store_maps = _store_maps(unlab, [name for _, name in todo], fix_dims(len(unlab)), fit_on)
    secs["decompositions"] += time.perf_counter() - t0
    for i, (s, v) in enumerate(tqdm(list(zip(shots, val_shots, strict=True)), desc="fewshot", disable=not progress)):
        dims_i = fix_dims(len(unlab) if fit_on == "store" else k * (s + v))
        dims_all.append(dims_i)
        t0 = time.perf_counter()
        tasks = _draw_tasks(X, codes, k, s, v, seeds, todo, dims_i, penalty, tc, store_maps)
        t1 = time.perf_counter()
        fits = _search_groups(tasks, k, s, v, search, tol, max_iter)
        t2 = time.perf_counter()
        stats["iterations"] += int(sum(f["n_iter"] for f in fits))
        stats["fits"] += int(sum(f["n_fits"] for f in fits))
        _score(_keep_best(tasks, fits), test_data, tc, i, out)
        secs["decompositions"] += t1 - t0
        secs["c_search"] += t2 - t1
        secs["evaluation"] += time.perf_counter() - t2
    for vi, _ in enumerate(variants):  # copy the shared variants in, keep the new ones for later calls
        if keys[vi] in shared and all(vi != j for j, _ in todo):
            for name in out:
                out[name][:, :, vi] = shared[keys[vi]][name]
        else:
            shared[keys[vi]] = {name: out[name][:, :, vi].copy() for name in out}
    config = _config(penalty, fit_on, tol, max_iter, dims, D, stats, secs)
    config["shared_from_an_earlier_setting"] = [name for vi, name in enumerate(variants) if all(vi != j for j, _ in todo)]
    return FewShotResult(
        label=label, classes=list(classes), variants=variants, shots=shots, val_shots=val_shots,
        seeds=seeds, test_sets=list(tests), accuracy=out["acc"], C=out["C"], val_accuracy=out["val"],
        dims=dims_all, test_info=test_info, config=config, fingerprints=dict(fingerprints or {}),
        penalty=penalty, fit_on=fit_on, m=out["m"], zeroshot=_zeroshot(list(tests), test_data, tc),
        zeroshot_note=zeroshot_note,
    )


def _config(penalty, fit_on, tol, max_iter, dims, D, stats, secs) -> dict:
    return {
        "penalty": penalty, "fit_on": fit_on,
        "multiclass": "multinomial (one softmax over all classes), for L2 and L1",
        "c_grid": list(C_GRID), "bisection_steps": BISECTION_STEPS, "tol": tol, "max_iter": max_iter,
        "tol_rule": ("L2: ||grad|| <= tol ||W|| / (C n), i.e. ||W - W*|| <= tol ||W||; "
                     "L1: largest pseudo-gradient entry <= 1e-6 / (C n), orthant-wise truncated Newton, warm-started; "
                     "L2 towards the text prior: ||grad|| <= tol (||V|| + 1) / (C n)"),
        "dims_rule": DIMS_RULE if dims is None else f"given: {dict(dims)}", "paper_dims": dict(PAPER_DIMS),
        "n_features": D,
        "fit_rows": ("each draw's train+val rows, seeded with the draw's seed" if fit_on == "fewshot" else
                     f"the train store's non-test rows, without labels, seed {STORE_SEED}, one basis for every draw"),
        "sampling": "per class c: default_rng([seed, c]).permutation(rows of c); first shots train, next val",
        "pca+ica": "PCA projection (not whitened) to P dims, then ICA(K2)",
        "pca": "whitened PCA(K1): the ICA's subspace and scale without its rotation",
        "topm": ("the m components of ICA(K1) (topm) or whitened PCA(K1) (topm-pca) with the largest ANOVA F "
                 "on the training shots, then an L2 probe; m in 1, 2, 4, ..., K1 and C chosen on validation "
                 "shots (ties: smaller m)"),
        "zeroshot-init": ("L2 probe on unit-norm features around the text classifier s * prompts (s fitted on "
                          "the training shots), penalty ||W - W_text||^2 / (2 C n)"),
        "masking": "classes absent from a test set are masked out of the argmax",
        "solver_iterations": stats["iterations"], "fits": stats["fits"],
        "seconds": {key: round(val, 3) for key, val in secs.items()},
    }
