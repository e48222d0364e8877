"""The probe stage's work as tasks on a thread pool (:func:`run_tasks`), and the
disentanglement metrics as such tasks (:func:`metric_tasks_of`).

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

    def dci_task(c):
        def run():
            res = dci(c[d_idx], Y[d_idx], n_estimators=params["dci_trees"], random_state=seed)
            return {"disentanglement": res.disentanglement, "completeness": res.completeness,
                    "informativeness": res.informativeness}
        return run

    def score_task(fn, c):
        return lambda: {"score": fn(c[idx], Y[idx]).score}

    tasks, info = [], {}
    for key, fn in (("dci", dci), ("mig", mig), ("sap", sap), ("modularity", modularity)):
        tasks += [((key, n), dci_task(sets[n]) if fn is dci else score_task(fn, sets[n]))
                  for n in names]
        info[key] = {"n_rows": int((d_idx if fn is dci else idx).size),
                     "subsample_seed": seed + 1 if fn is dci else seed}
    info["dci"].update(model="gradient_boosting", n_estimators=int(params["dci_trees"]),
                       max_depth=3, test_size=0.25)
    return tasks, info


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
