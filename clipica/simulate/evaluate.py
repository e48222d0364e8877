"""Scores of a learned representation against the ground-truth latents.

Everything is fitted on a validation draw and scored on a separate test draw
(fresh samples from the generative model, never the training stream):

* :func:`block_r2` - held-out R^2 of each latent block predicted from the
  representation, linear (least squares) and nonlinear (RBF kernel ridge),
  via :func:`clipica.metrics.r2`; one number per block = mean over the
  block's dimensions.
* :func:`ica_mcc` - MCC (Pearson, Hungarian matching) of the representation
  against the coupled latents, directly and after :class:`clipica.ICA` fitted
  on the validation representation.
"""

from __future__ import annotations

import numpy as np

from clipica.errors import InputError

__all__ = ["block_r2", "ica_mcc"]

_MODEL_NAMES = {"linear": "linear", "nonlinear": "kernel_ridge"}


def block_r2(codes_val: np.ndarray, codes_test: np.ndarray, blocks_val: dict, blocks_test: dict,
             *, kinds: tuple[str, ...] = ("linear", "nonlinear"), n_landmarks: int = 500,
             random_state: int = 0) -> dict[str, float]:
    """Held-out R^2 per block.

    Parameters
    ----------
    codes_val, codes_test : ndarrays of shape (n_val, k) and (n_test, k): the
        representation of the validation and test draws.
    blocks_val, blocks_test : dicts block name -> ndarray (n_val, d_b) / (n_test, d_b).
    kinds : "linear" and/or "nonlinear" (kernel ridge, hyper-parameters chosen
        on a fold of the validation rows).
    n_landmarks : Nystroem landmarks of the kernel ridge.

    Returns
    -------
    dict with keys ``r2_{kind}_{block}`` (floats; mean over the block's dimensions).
    """
    from clipica.metrics import r2

    names = [b for b in blocks_val if blocks_val[b].shape[1] > 0]
    if not names:
        return {}
    n_val = codes_val.shape[0]
    if codes_test.shape[1] != codes_val.shape[1]:
        raise InputError(f"validation and test codes differ in width: {codes_val.shape[1]} vs "
                         f"{codes_test.shape[1]}.")
    codes = np.concatenate([codes_val, codes_test], axis=0)
    factors = np.concatenate([np.concatenate([blocks_val[b] for b in names], axis=1),
                              np.concatenate([blocks_test[b] for b in names], axis=1)], axis=0)
    train = np.arange(n_val)
    test = np.arange(n_val, codes.shape[0])
    edges = np.cumsum([0] + [blocks_val[b].shape[1] for b in names])
    out: dict[str, float] = {}
    for kind in kinds:
        if kind not in _MODEL_NAMES:
            raise InputError(f"kind must be 'linear' or 'nonlinear', got {kind!r}.")
        # one call for every block: the kernel features are computed once
        res = r2(codes, factors, model=_MODEL_NAMES[kind], train=train, test=test,
                 random_state=random_state, n_landmarks=n_landmarks)
        for i, b in enumerate(names):
            out[f"r2_{kind}_{b}"] = float(np.nanmean(res.per_factor[edges[i]:edges[i + 1]]))
    return out


def ica_mcc(codes_val: np.ndarray, codes_test: np.ndarray, latents_test: np.ndarray, *,
            random_state: int = 0) -> dict[str, float]:
    """MCC of the representation against the coupled latents, before and after linear ICA.

    ICA (``clipica.ICA``, K = number of latents) is fitted on the validation
    representation and applied to the test representation.

    Returns
    -------
    dict with ``mcc_before_ica``, ``mcc_after_ica`` and ``ica_converged`` (1.0 / 0.0).
    """
    import warnings

    from clipica.decompositions.ica import ICA
    from clipica.metrics import mcc

    k = latents_test.shape[1]
    before = mcc(codes_test, latents_test).score
    with warnings.catch_warnings():
        # non-convergence is recorded in the result (ica_converged), not printed per run
        warnings.simplefilter("ignore")
        ica = ICA(n_components=k, random_state=random_state, max_iter=1000).fit(codes_val)
    after = mcc(ica.transform(codes_test), latents_test).score
    return {"mcc_before_ica": float(before), "mcc_after_ica": float(after),
            "ica_converged": float(bool(ica.converged_))}
