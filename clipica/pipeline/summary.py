"""Pieces of a run's ``summary.json``: the categorical factors scored as blocks, and convergence.

:func:`factor_group` reads the probe stage's block scores of one categorical factor
(``probe.json``'s ``categorical`` entry, :func:`clipica.pipeline.tasks.factor_results`);
:func:`convergence` gathers whether every fit of the run converged: the ICA (judged on its
identifiable part), the stability sweep's fits at the chosen K, and the logistic probes.
:func:`clipica.pipeline.run.build_summary` puts both into the summary; the report's headline
and ``clipica demo``'s table read them from there.
"""

from __future__ import annotations

from typing import Any


def factor_block_scores(probe: dict, columns) -> dict | None:
    """The probe stage's block scores of the categorical factor with these ``columns``
    (``probe.json``'s ``categorical`` entry for it), or None when it has none."""
    key = frozenset(map(str, columns))
    for entry in (probe.get("categorical") or {}).values():
        if frozenset(map(str, entry.get("columns") or ())) == key:
            return entry
    return None


def factor_group(probe: dict, factor: dict, mean_best_auc: dict) -> dict:
    """``summary.json``'s ``groups.<factor>``: its columns, the column-by-column mean best-single
    AUCs (``mean_best_auc``, as for the binary attributes), and, when the probe stage scored it
    as a block, ``block_auc`` = ``{"ica", "pca", "raw"}``: the mean one-vs-rest AUC over the
    factor's columns on the held-out rows, from the ICA's best block of at most m components,
    the best m PCA components and the best m raw dimensions (m = columns - 1, ``block_m``);
    ``block_columns`` the codes each used, ``block_accuracy`` their multiclass accuracy."""
    out: dict[str, Any] = {"attributes": list(factor["columns"]), "categorical": True,
                           "source": factor.get("source"), "mean_best_auc": mean_best_auc}
    entry = factor_block_scores(probe, factor["columns"])
    if entry is None:
        return out
    scores = entry.get("scores") or {}
    out["block_auc"] = dict(entry.get("block_auc") or {})
    out["block_m"] = entry.get("m")
    out["block_columns"] = {n: s.get("columns") for n, s in scores.items() if "columns" in s}
    out["block_accuracy"] = {n: s.get("accuracy") for n, s in scores.items() if "accuracy" in s}
    skipped = {n: s["skipped"] for n, s in scores.items() if "skipped" in s}
    if skipped:
        out["block_skipped"] = skipped
    return out


def convergence(ica, stability: dict | None, k: int, probe: dict) -> dict:
    """Whether each fit of the run converged, and the sentences that say which did not.

    ``ica``: converged, iterations against ``max_iter``, the stationarity against ``tol`` and
    what it was judged on (the identifiable components of an ICA with a Gaussian block).
    ``stability_sweep`` (when K was chosen by the sweep): the share of converged fits at the
    chosen K, and the K whose fits did not all converge (the K rule never takes those).
    ``probes``: per code set, whether every logistic probe reached its gradient tolerance.
    ``all_converged`` is False when any of them did not; ``problems`` lists those in words."""
    ident = getattr(ica, "identifiable_", None)
    k_fit = int(ica.components_.shape[0])
    n_ident = k_fit if ident is None else int(sum(bool(v) for v in ident))
    fit = {"converged": bool(ica.converged_), "n_iter": int(ica.n_iter_),
           "max_iter": getattr(ica, "max_iter", None), "tol": getattr(ica, "tol", None),
           "stationarity": _float(getattr(ica, "stationarity_", None)),
           "judged_on": (f"the {n_ident} identifiable components of {k_fit}" if n_ident < k_fit
                         else f"all {k_fit} components")}
    problems = []
    if not fit["converged"]:
        fit["why_not"] = why_not_converged(ica)
        problems.append(f"the ICA stopped after {fit['n_iter']} fixed-point iterations in all "
                        f"(max_iter={fit['max_iter']}) with stationarity {_fmt(fit['stationarity'])} > "
                        f"tol {_fmt(fit['tol'])}, judged on "
                        f"{fit['judged_on']}" + "".join(f" ({w})" for w in fit["why_not"]))
    sweep = None
    if stability is not None and "converged_fraction" in stability:
        ks, frac = list(stability.get("k") or []), list(stability["converged_fraction"])
        at_k = frac[ks.index(k)] if k in ks else None
        sweep = {"chosen_k_converged_fraction": at_k,
                 "not_converged_k": [int(kk) for kk, f in zip(ks, frac, strict=True) if f < 1.0]}
        if at_k is not None and at_k < 1.0:
            problems.append(f"only {at_k:.0%} of the stability sweep's fits at the chosen K = {k} converged")
    probes = {name: bool(c.get("converged", True)) for name, c in (probe.get("codes") or {}).items()}
    bad = [n for n, ok in probes.items() if not ok]
    if bad:
        problems.append(f"the logistic probes on {', '.join(bad)} did not all reach their gradient tolerance")
    return {"all_converged": not problems, "ica": fit, "stability_sweep": sweep, "probes": probes,
            "problems": problems}


#: an identifiable component whose contrast (negentropy) is below this share of the strongest
#: one's is "nearly Gaussian" to the solver: the fixed point hardly moves along it
WEAK_NEGENTROPY = 0.01


def why_not_converged(ica) -> list[str]:
    """What the fit's own record says about a non-convergence, in words: how the stationarity
    behaved over the last quarter of the iterations (``fit_info_["stationarity_history"]``:
    still falling, so more iterations would help, or not), and which identifiable components
    the contrast hardly tells from a Gaussian (negentropy below :data:`WEAK_NEGENTROPY` of the
    strongest: FastICA converges slowly, or oscillates, along such directions)."""
    out = []
    hist = [float(h) for h in ((getattr(ica, "fit_info_", None) or {}).get("stationarity_history") or [])]
    if len(hist) >= 8:
        tail = hist[-max(8, len(hist) // 4):]
        falling = tail[-1] <= 0.5 * tail[0] and tail[-1] <= min(tail) * 1.5
        out.append(f"over its last {len(tail)} iterations the stationarity went {tail[0]:.3g} -> "
                   f"{tail[-1]:.3g} (range {min(tail):.3g}-{max(tail):.3g}): "
                   + ("still falling, more iterations may reach tol" if falling
                      else "not falling steadily, more iterations alone are unlikely to reach tol"))
    neg = getattr(ica, "negentropy_", None)
    ident = getattr(ica, "identifiable_", None)
    if neg is not None and len(neg):
        idx = [i for i in range(len(neg)) if ident is None or bool(ident[i])]
        top = max((float(neg[i]) for i in idx), default=0.0)
        weak = [i for i in idx if top > 0 and float(neg[i]) < WEAK_NEGENTROPY * top]
        if weak:
            out.append(f"identifiable component{'s' if len(weak) > 1 else ''} "
                       f"{', '.join(map(str, weak))} {'are' if len(weak) > 1 else 'is'} nearly Gaussian "
                       f"to the contrast (negentropy {', '.join(f'{float(neg[i]):.2g}' for i in weak)} "
                       f"against {top:.2g} for the strongest): FastICA settles slowly along such "
                       "directions")
    return out


def _float(v) -> float | None:
    return None if v is None else float(v)


def _fmt(v) -> str:
    return "?" if v is None else f"{v:.3g}"
