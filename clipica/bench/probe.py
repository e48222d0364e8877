"""``clipica bench probe``: clipica's joint logistic probes against a loop of scikit-learn fits.

Data: ``n`` rows of ``k`` synthetic codes (Laplace, unit variance, like ICA sources) and
``attributes`` binary labels. Each attribute depends on 1-3 randomly chosen codes
through a logistic model with weights of magnitude 0.5-2 and an intercept that sets its
prevalence between 5 % and 50 % (CelebA-like imbalance). Rows are split 70/30.

Both sides fit an L2 logistic regression with ``C = 1`` on standardised codes, per
attribute, and are scored by ROC AUC on the held-out 30 %:

- ``clipica``: :func:`clipica.probes.fit_logistic`, every attribute at once (subsample
  warm start, subsampled-Hessian Newton steps, float32 passes; stopping rule: largest
  gradient entry <= 1e-4, the same rule and tolerance as scikit-learn's lbfgs);
- ``sklearn``: ``StandardScaler`` once, then one ``LogisticRegression(C=1)`` (lbfgs,
  defaults) per attribute.

Reported: both wall-clock times, the speedup, the largest |delta AUC| over attributes.
Targets: speedup >= 5, |delta AUC| <= 0.005. Timings share the CPU with whatever else
runs; the ratio from the same run is the meaningful figure.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

import numpy as np

HELP = "time clipica's joint logistic probes against a loop of scikit-learn LogisticRegression fits"
TARGETS = {"speedup": 5.0, "max_abs_delta_auc": 0.005}


def make_data(n: int = 200_000, k: int = 64, attributes: int = 40, seed: int = 0):
    """Synthetic codes (n, k) float64 and 0/1 labels (n, attributes) float64 (see module doc)."""
    rng = np.random.default_rng(seed)
    codes = rng.laplace(size=(n, k)) / np.sqrt(2.0)
    W = np.zeros((k, attributes))
    for a in range(attributes):
        used = rng.choice(k, size=rng.integers(1, 4), replace=False)
        W[used, a] = rng.uniform(0.5, 2.0, size=used.size) * rng.choice([-1, 1], size=used.size)
    logits = codes @ W
    prevalence = rng.uniform(0.05, 0.5, size=attributes)
    # intercept so that roughly `prevalence` of the rows are positive
    bias = -np.array([np.quantile(logits[:, a], 1 - prevalence[a]) for a in range(attributes)])
    labels = (rng.random((n, attributes)) < 1.0 / (1.0 + np.exp(-(logits + bias)))).astype(float)
    return codes, labels


def run_benchmark(n=200_000, k=64, attributes=40, seed=0, progress=print) -> dict:
    # both sides start with their libraries imported: time the arithmetic, not imports
    import scipy.linalg  # noqa: F401
    import scipy.optimize  # noqa: F401
    import scipy.special  # noqa: F401
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    from clipica.probes import auc_columns, fit_logistic

    progress(f"data: n={n}, k={k}, attributes={attributes}, seed={seed}")
    codes, labels = make_data(n, k, attributes, seed)
    rng = np.random.default_rng(seed + 1)
    perm = rng.permutation(n)
    n_test = int(0.3 * n)
    te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    Xtr, Xte, Ytr, Yte = codes[tr], codes[te], labels[tr], labels[te]

    progress("clipica: joint fit of every attribute ...")
    t0 = time.perf_counter()
    fit = fit_logistic(Xtr, Ytr, C=1.0)
    auc_fast = auc_columns(fit.decision_function(Xte), Yte)
    t_fast = time.perf_counter() - t0
    progress(f"  {t_fast:.2f} s, {fit.n_iter} iterations, gradient {fit.grad_norm:.1e}")

    progress(f"sklearn: {attributes} LogisticRegression fits ...")
    auc_sk = np.zeros(attributes)
    iters = []
    n_warn = 0
    t0 = time.perf_counter()
    scaler = StandardScaler().fit(Xtr)
    Xtr_s, Xte_s = scaler.transform(Xtr), scaler.transform(Xte)
    for a in range(attributes):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model = LogisticRegression(C=1.0).fit(Xtr_s, Ytr[:, a])
        n_warn += sum(issubclass(c.category, ConvergenceWarning) for c in caught)
        iters.append(int(model.n_iter_[0]))
        auc_sk[a] = roc_auc_score(Yte[:, a], model.decision_function(Xte_s))
    t_sk = time.perf_counter() - t0
    progress(f"  {t_sk:.2f} s, mean {np.mean(iters):.1f} iterations per fit")

    delta = np.abs(auc_fast - auc_sk)
    speedup = t_sk / t_fast
    out = {
        "n": n,
        "k": k,
        "attributes": attributes,
        "seed": seed,
        "n_train": int(tr.size),
        "n_test": int(te.size),
        "clipica_seconds": t_fast,
        "sklearn_seconds": t_sk,
        "speedup": speedup,
        "max_abs_delta_auc": float(delta.max()),
        "mean_auc_clipica": float(auc_fast.mean()),
        "mean_auc_sklearn": float(auc_sk.mean()),
        "clipica_iterations": fit.n_iter,
        "clipica_converged": fit.converged,
        "clipica_grad_norm": fit.grad_norm,
        "sklearn_mean_iterations": float(np.mean(iters)),
        "sklearn_convergence_warnings": int(n_warn),
        "targets": TARGETS,
        "meets_targets": bool(
            speedup >= TARGETS["speedup"] and delta.max() <= TARGETS["max_abs_delta_auc"]
        ),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "note": "wall-clock on a shared CPU; the same-run ratio is the figure to read",
    }
    return out


def add_arguments(parser) -> None:
    parser.add_argument("--n", type=int, default=200_000, help="rows (default 200000)")
    parser.add_argument("--k", type=int, default=64, help="codes per row (default 64)")
    parser.add_argument("--attributes", type=int, default=40, help="binary attributes (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the JSON result to this file")


def run(args) -> int:
    from clipica.errors import InputError

    if args.n < 100 or args.k < 1 or args.attributes < 1:
        raise InputError(
            f"need --n >= 100, --k >= 1, --attributes >= 1; got {args.n}, {args.k}, {args.attributes}."
        )
    log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    out = run_benchmark(args.n, args.k, args.attributes, args.seed, progress=log)
    if args.out:
        from clipica._atomic import atomic_write_json

        atomic_write_json(args.out, out)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"speedup {out['speedup']:.1f}x ({out['sklearn_seconds']:.2f} s sklearn / "
            f"{out['clipica_seconds']:.2f} s clipica), max |dAUC| {out['max_abs_delta_auc']:.2e}"
        )
        print("meets targets:", out["meets_targets"])
    return 0
