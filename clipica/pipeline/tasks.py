"""The probe stage's work as tasks on a thread pool (:func:`run_tasks`), and the
disentanglement metrics (:func:`metric_tasks_of`) and the categorical factors' block scores
(:func:`factor_tasks_of`) as such tasks.

The probes of each code set and every metric of each code set are independent and spend
their time in numpy, BLAS and scikit-learn's tree building, which release the GIL: on a
pool of one thread per core (each with one BLAS thread) they use every core, and the
results do not depend on the number of threads.
"""

from __future__ import annotations

import os

import numpy as np


def metric_tasks_of(sets: dict, labels, attributes: list, params: dict, seed: int):
    """``(tasks, info)``: DCI, MIG, SAP and modularity of every code set against the binary
    attributes as ``((metric, set name), callable)`` tasks, and per metric what probe.json
    states beside the scores (rows, subsample seed; DCI's trees). The raw baseline is left
    out when it has more than 128 dimensions."""
    from clipica.metrics import dci, mig, modularity, sap

    metrics_rows = params["metrics_rows"]
    if not attributes or metrics_rows <= 0:
        return [], {}
    Y = labels[attributes].to_numpy(dtype=np.float64)
    idx = np.flatnonzero(~np.isnan(Y).any(axis=1))
    if idx.size > metrics_rows:
        idx = np.sort(np.random.default_rng(seed).choice(idx, metrics_rows, replace=False))
    # DCI's trees cost rows x codes x trees: a smaller seeded subsample, stated in probe.json
    d_idx = idx
    if idx.size > params["dci_rows"]:
        d_idx = np.sort(np.random.default_rng(seed + 1).choice(idx, params["dci_rows"], replace=False))
    names = [n for n in sets if n != "raw" or sets[n].shape[1] <= 128]

    # only the subsample rows' labels are kept: the tasks wait in the queue behind the probes, and
    # the whole (n, labels) float64 matrix would sit in memory beside theirs (0.16x the image matrix)
    Y_idx, Y_d = Y[idx], Y[d_idx]
    del Y

    def dci_task(c):
        def run():
            res = dci(c[d_idx], Y_d, n_estimators=params["dci_trees"], random_state=seed)
            return {"disentanglement": res.disentanglement, "completeness": res.completeness,
                    "informativeness": res.informativeness}
        return run

    def score_task(fn, c):
        return lambda: {"score": fn(c[idx], Y_idx).score}

    tasks, info = [], {}
    for key, fn in (("dci", dci), ("mig", mig), ("sap", sap), ("modularity", modularity)):
        tasks += [((key, n), dci_task(sets[n]) if fn is dci else score_task(fn, sets[n]))
                  for n in names]
        info[key] = {"n_rows": int((d_idx if fn is dci else idx).size),
                     "subsample_seed": seed + 1 if fn is dci else seed}
    info["dci"].update(model="gradient_boosting", n_estimators=int(params["dci_trees"]),
                       max_depth=3, test_size=0.25)
    return tasks, info


#: the code sets a categorical factor is scored from: the ICA's best block against the best m
#: codes of the two baselines (``clipica compare`` scores the other decompositions)
FACTOR_SETS = ("ica", "pca", "raw")
#: training rows that rank the baselines' candidate codes for a factor (seeded subsample)
FACTOR_PREFILTER_ROWS = 20000


def factor_tasks_of(sets: dict, factors: list, labels, train, test, *, ica, C: float,
                    seed: int) -> list:
    """Each categorical factor scored from each code set of :data:`FACTOR_SETS` present in
    ``sets``, as ``(("factor", factor name, set name), callable)`` tasks.

    The score is :func:`clipica.probes.categorical.score_factor_codes` with
    ``m = len(columns) - 1`` (the factor's values span at most that many dimensions): for the
    ICA the best of its ``blocks_`` of at most m components, never its unidentifiable
    ``gaussian_block_``; for PCA and raw the best m codes (greedy, among the 32 most related to the
    factor on at most :data:`FACTOR_PREFILTER_ROWS` training rows). Fitted on ``train``,
    scored on ``test``: the probes' own rows. A task returns the
    :class:`~clipica.probes.categorical.FactorScore`, or ``{"skipped": reason}`` when the
    factor cannot be scored from that set (too few labelled rows, no block small enough)."""
    from clipica.errors import InputError
    from clipica.probes.categorical import score_factor_codes

    blocks = getattr(ica, "blocks_", None)
    gaussian = list(getattr(ica, "gaussian_block_", None) or [])
    train = np.asarray(train, dtype=np.int64)
    pre = train
    if train.size > FACTOR_PREFILTER_ROWS:
        pre = np.sort(np.random.default_rng([seed, 24]).choice(train, FACTOR_PREFILTER_ROWS,
                                                               replace=False))

    def task(f, name):
        def run():
            try:
                return score_factor_codes(
                    sets[name], f, labels, train, test, codes_name=name,
                    blocks=blocks if name == "ica" else None,
                    gaussian=gaussian if name == "ica" else (), C=C, random_state=seed,
                    prefilter_rows=pre)
            except InputError as exc:
                return {"skipped": str(exc)}
        return run

    return [(("factor", f.name, name), task(f, name)) for f in factors for name in FACTOR_SETS
            if name in sets]


def factor_results(factors: list, done: dict) -> dict:
    """probe.json's ``categorical`` entry from :func:`factor_tasks_of`'s results: per factor its
    columns, source, m, each set's score (``FactorScore.to_dict()`` or the reason it was
    skipped) and ``block_auc``: each set's mean one-vs-rest AUC over the factor's columns on
    the held-out rows (None where skipped)."""
    out = {}
    for f in factors:
        scores = {name: done[("factor", f.name, name)] for name in FACTOR_SETS
                  if ("factor", f.name, name) in done}
        out[f.name] = {
            "columns": list(f.columns), "source": f.source, "m": len(f.columns) - 1,
            "scores": {n: (s if isinstance(s, dict) else s.to_dict()) for n, s in scores.items()},
            "block_auc": {n: (None if isinstance(s, dict) else s.mean_ovr_auc)
                          for n, s in scores.items()},
        }
    return out


def probe_workers() -> int:
    """Worker threads of the probe stage: the CPUs this process may use, at most 4 (each
    concurrent code set holds its own working arrays)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def run_tasks(tasks: list, *, workers: int | None = None, progress: bool = True,
              desc: str = "tasks") -> dict:
    """Run ``(key, callable)`` tasks on ``workers`` threads (default :func:`probe_workers`),
    queued in the given order, each with one BLAS thread; ``{key: result}``.

    The first task to raise ends the run with its exception; the tasks still queued are
    cancelled (a failed stage, or Ctrl-C, does not wait for them).
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits
    from tqdm.auto import tqdm

    workers = probe_workers() if workers is None else max(1, int(workers))
    bar = tqdm(total=len(tasks), desc=desc, unit="task", disable=not progress, dynamic_ncols=True)
    done: dict = {}
    pool = ThreadPoolExecutor(workers)
    try:
        # a second BLAS thread per task would only contend with the other tasks
        with threadpool_limits(limits=1, user_api="blas"):
            futures = {key: pool.submit(fn) for key, fn in tasks}
            for key, fut in futures.items():
                done[key] = fut.result()
                bar.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return done
