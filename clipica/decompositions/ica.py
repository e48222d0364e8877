"""``clipica.ICA``: a fast, reproducible linear ICA for embedding matrices.

A scikit-learn estimator (``fit`` / ``transform`` / ``fit_transform`` /
``inverse_transform``) with three solvers behind one canonical output:

- ``"fastica"`` (``"auto"`` picks it): clipica's own parallel FastICA in torch
  (:mod:`clipica.decompositions._fastica_torch`): covariance + eigendecomposition whitening, float32
  iterations with float64 sums, optional warm start on a row subsample, CPU or CUDA;
- ``"sklearn"``: :class:`sklearn.decomposition.FastICA` (``whiten=False``) for the
  rotation of clipica's whitened rows;
- ``"picard"``: python-picard's Picard-O (``pip install "clipica[picard]"``).

All three share clipica's whitening and are mapped into the same **canonical form**:

- **scale**: every source has unit variance over the fit rows (ddof=0);
  ``whiten="unit-variance"`` is the only convention, recorded in ``ica.json``;
- **sign**: each source's skewness is positive; when ``|skewness|`` is below
  ``3·sqrt(6/N)`` (three standard errors of the sample skewness of a symmetric
  variable: the sign is not identifiable from the data) the component's
  largest-magnitude loading in ``mixing_`` is made positive instead;
- **order**: by decreasing negentropy approximation
  ``J(s) = (E[log cosh s] − E[log cosh ν])²``, ν ~ N(0, 1) (Hyvärinen 1999), which
  unlike kurtosis is not dominated by a few outlying rows.

Same data + same seed gives bit-identical output; row order and solvers that converge
to the same solution give the same canonical output up to the solvers' tolerance.

>>> ica = ICA(n_components=16, random_state=0).fit(X)      # X: (n_samples, n_features)
>>> S = ica.transform(X)                                     # (n_samples, 16), unit variance
>>> ica.save("runs/ica16"); ica = ICA.load("runs/ica16")
"""

from __future__ import annotations

import numbers
import time
import warnings
from dataclasses import replace
from typing import ClassVar

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from clipica.decompositions.base import (  # noqa: F401  (ARRAYS_FILE re-exported)
    ARRAYS_FILE,
    LinearDecomposition,
    validate_params,
)
from clipica.errors import DependencyError, InputError

SOLVERS = ("auto", "fastica", "sklearn", "picard")
FUNS = ("logcosh", "exp", "cube")
WHITEN = ("unit-variance",)

META_FILE = "ica.json"
FORMAT = "clipica.ica/1"

WHITENING_DOC = (
    "PCA whitening from the covariance (ddof=0) of the fit rows: whitening_ (K, D) = "
    "diag(explained_variance_)^-1/2 @ V_K', V_K the top-K eigenvectors, so "
    "whitening_ @ (x - mean_) has identity covariance over the fit rows"
)
SCALE_DOC = (
    "unit variance: sources = (X - mean_) @ components_.T have variance 1 (ddof=0) "
    "over the fit rows; X ≈ sources @ mixing_.T + mean_ on the K-dimensional subspace"
)
SIGN_DOC = (
    "skewness positive; if |skewness| < 3*sqrt(6/N) the largest-magnitude loading in the "
    "component's mixing_ column is positive"
)
IDENTIFY_DOC = (
    "non-Gaussian sources apart from a Gaussian remainder (clipica.decompositions._identify): "
    "symmetric FastICA search, per-component Gaussianity test calibrated on the same search of "
    "Gaussian data (family-wise at alpha), FastICA polish of the significant ones, the rest one "
    "unidentifiable block (NGCA, Blanchard et al. 2006)"
)
ORDER_DOC = (
    "decreasing negentropy approximation J = (E[log cosh s] - E[log cosh nu])^2, "
    "nu ~ N(0, 1); ties keep the solver's order"
)


def _logcosh_gauss() -> float:
    """E[log cosh ν] for ν ~ N(0, 1) (≈ 0.3745672), by 100-point Gauss–Hermite quadrature."""
    x, w = np.polynomial.hermite_e.hermegauss(100)
    lc = np.abs(x) + np.log1p(np.exp(-2 * np.abs(x))) - np.log(2.0)
    return float(np.sum(w * lc) / np.sqrt(2 * np.pi))


def picard_available() -> bool:
    """True when python-picard (``solver="picard"``) is installed."""
    import importlib.util

    return importlib.util.find_spec("picard") is not None


def load_solver() -> None:
    """Import the solver modules now: sets OpenMP's passive wait policy (which only takes
    effect before torch loads; see :mod:`clipica.decompositions._whitening`), and keeps their
    import out of a timed or memory-traced block. Cheap after the first call."""
    import importlib

    importlib.import_module("clipica.decompositions._whitening")
    importlib.import_module("clipica.decompositions._fastica_torch")


class ICA(LinearDecomposition):
    """Linear ICA with canonical signs, order and scale (see the module docstring).

    Parameters
    ----------
    n_components : int or None, default=None
        Number of components K. None keeps every direction above the numerical rank of
        the covariance. Must satisfy K <= n_features, K <= n_samples and K <= rank.
    solver : {"auto", "fastica", "sklearn", "picard"}, default="auto"
        "auto" is "fastica", clipica's own solver.
    fun : {"logcosh", "exp", "cube"}, default="logcosh"
        The FastICA nonlinearity G (its derivative g is tanh, y·exp(-y²/2), y³). For
        "picard" it selects Picard's density (tanh, exp, cube).
    max_iter : int, default=200
        Most fixed-point iterations (per phase when warm-starting: on the subsample, then
        on all rows).
    tol : float, default=1e-4
        Stop when the stationarity criterion (largest entry of the Riemannian gradient of
        the contrast, dimensionless, see :mod:`clipica.decompositions._fastica_torch`) is below ``tol``.
        Passed to scikit-learn / Picard as their own tolerance for those solvers.
    random_state : int, RandomState or None, default=None
        Seeds the initial rotation and the warm-start subsample.
    device : {"cpu", "cuda", "cuda:N", "auto"}, default="cpu"
        Where the "fastica" solver computes (the other solvers run on CPU).
    whiten : {"unit-variance"}, default="unit-variance"
        The only convention: sources have unit variance (stated so that it never
        silently changes, unlike scikit-learn's default before 1.3).
    warm_start_samples : "auto", int or None, default="auto"
        Rows for the "fastica" warm start (iterate on a random subsample, then polish on
        all rows). "auto": max(20 000, 300·K) when that is at most half the rows, else no
        warm start; None or 0: never.
    identify : bool or int, default=True
        Tell the identifiable (non-Gaussian) components from a Gaussian remainder, reported
        as one unidentifiable block, and judge convergence on the identifiable part
        (:mod:`clipica.decompositions._identify`: a search, a Gaussianity test calibrated on
        the same search of Gaussian data, a polish of the significant components; after
        non-Gaussian component analysis, Blanchard et al., JMLR 2006). With "sklearn" or
        "picard" the test is applied to their rotation of all K. False: every component is
        estimated and counted, as before. An int m >= 1: take the m most non-Gaussian directions
        of the search, whatever the test says (bootstrap refits of a stability run use their
        reference's m; see :func:`clipica.decompositions.stability.stability`).
    alpha : float, default=0.05
        Family-wise level of that test over the K components
        (:func:`clipica.decompositions.gaussianity.component_significance`).

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    whitening_ : ndarray of shape (n_components, n_features)
    components_ : ndarray of shape (n_components, n_features)
        Unmixing from centred data to unit-variance sources.
    mixing_ : ndarray of shape (n_features, n_components)
        Pseudo-inverse of ``components_`` (``components_ @ mixing_ = I``).
    explained_variance_ : ndarray of shape (n_components,)
        Variances (data units²) of the K principal directions spanned by the components.
    explained_variance_ratio_ : ndarray of shape (n_components,)
    skewness_, kurtosis_ : ndarray of shape (n_components,)
        Per-component skewness (positive by construction unless tied) and excess kurtosis.
    negentropy_ : ndarray of shape (n_components,)
        The ordering criterion (decreasing).
    identifiable_ : ndarray of shape (n_components,), bool
        True for the identifiable components: the first ``m``, all of them with
        ``identify=False``.
    gaussian_block_ : list of int
        The unidentifiable Gaussian block (components m..K-1; empty when m = K). It is also
        the last entry of ``blocks_`` (the identifiable components are singletons there).
        Its codes are an orthonormal basis of the remainder: any rotation of it is as good,
        so no single code in it means anything.
    gaussianity_ : GaussianityTest or None
        The test of each final component (statistic, p_value, significant, alpha, method);
        None with ``identify=False``.
    n_iter_ : int
        Fixed-point iterations run (search + polish, or warm start + polish, for "fastica").
    converged_ : bool
        True when the identifiable part converged (every component with ``identify=False``;
        True when nothing is identifiable).
    stationarity_ : float
        The stationarity criterion of the final solution (of the identifiable part for
        "fastica" with ``identify=True``), evaluated the same way for every solver.
    fit_info_ : dict
        Solver, device, iteration breakdown, timings (seconds), data shape.

    Notes
    -----
    ``X`` may be a memory-mapped array larger than RAM: the covariance is accumulated
    chunk by chunk, and when the whitened rows (N·K·4 bytes) exceed
    ``clipica.decompositions._whitening.MAX_WHITENED_BYTES`` every full-data iteration re-reads ``X``
    (about D/(2K) times the in-memory arithmetic, plus the read). On CPU the work is split
    over ``torch.get_num_threads()`` worker threads (one for small problems).
    """

    kind = "ica"
    format_tag = FORMAT
    meta_file = META_FILE

    def __init__(
        self,
        n_components=None,
        *,
        solver="auto",
        fun="logcosh",
        max_iter=200,
        tol=1e-4,
        random_state=None,
        device="cpu",
        whiten="unit-variance",
        warm_start_samples="auto",
        identify=True,
        alpha=0.05,
    ):
        self.n_components = n_components
        self.solver = solver
        self.fun = fun
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.whiten = whiten
        self.warm_start_samples = warm_start_samples
        self.identify = identify
        self.alpha = alpha

    # ------------------------------------------------------------------ validation
    _parameter_constraints: ClassVar[dict] = {
        "n_components": ["positive_int", None], "solver": [SOLVERS], "fun": [FUNS], "whiten": [WHITEN],
        "max_iter": ["positive_int"], "tol": ["positive_real"],
        "warm_start_samples": [("auto",), None, "nonnegative_int"], "identify": [(True, False), "positive_int"],
        "alpha": ["positive_real"],
    }

    def _check_params(self) -> str:
        """Validate hyper-parameters; return the resolved solver name."""
        validate_params(self, self._parameter_constraints)
        if not self.alpha < 1:
            raise InputError(f"alpha must be in (0, 1); got alpha={self.alpha!r}.")
        if not isinstance(self.device, str):
            raise InputError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto'; got device={self.device!r}.")
        solver = "fastica" if self.solver == "auto" else self.solver
        if solver == "picard" and not picard_available():
            raise DependencyError(
                "solver='picard' needs python-picard, which is not installed; "
                'install it with: pip install "clipica[picard]" (or choose solver="fastica").'
            )
        return solver

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None):
        """Fit on ``X`` (n_samples, n_features); a memory-mapped array is streamed.

        Returns ``self``. Raises :class:`clipica.errors.InputError` for non-finite or 1-D
        input, K > n_features, K > n_samples, K > numerical rank, unknown options, and
        :class:`clipica.errors.DependencyError` for solver="picard" without python-picard.
        """
        t_start = time.perf_counter()
        solver = self._check_params()
        X = self._validate_X(X, reset=True)
        n, d = X.shape
        k = self.n_components
        if k is not None and k > d:
            raise InputError(
                f"n_components={k} is larger than n_features={d}; choose n_components <= {d}."
            )
        if k is not None and k > n:
            raise InputError(
                f"n_components={k} is larger than n_samples={n}; ICA needs at least as many rows "
                "as components (and many more for a stable estimate)."
            )
        from clipica.decompositions import _whitening as W

        W.check_finite(X)
        device = self.device if solver == "fastica" else "cpu"
        with W.Runner(device, n_entries=n * d) as runner:
            self._fit(X, solver, k, runner, t_start)
        return self

    def _fit(self, X, solver, k, runner, t_start) -> None:
        from clipica.decompositions import _fastica_torch as F
        from clipica.decompositions import _whitening as W

        n, d = X.shape
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        mean, cov = W.mean_and_covariance(X, runner)
        timings["covariance"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        w = W.whiten(mean, cov, k, dtype=X.dtype)
        timings["eigh"] = time.perf_counter() - t0
        k = w.matrix.shape[0]
        rs = check_random_state(self.random_state)
        info = {"solver": solver, "device": str(runner.device), "workers": runner.workers,
                "n_samples": int(n), "n_features": int(d), "dtype": str(X.dtype), "rank": int(w.rank)}

        # every solver rotates clipica's whitened rows (one whitening, one rank rule)
        t0 = time.perf_counter()
        data = W.whitened_rows(X, w, runner)
        timings["projection"] = time.perf_counter() - t0
        m = k
        test = None
        if solver == "fastica" and self.identify:
            from clipica.decompositions._identify import identify_and_rotate

            R, m, test, res, ident = identify_and_rotate(
                data, n_features=d, fun=self.fun, max_iter=self.max_iter, tol=self.tol, alpha=self.alpha,
                random_state=rs, warm_start_rows=self._warm_rows(n, k),
                n_identifiable=None if self.identify is True else int(self.identify))
            timings.update(ident.pop("seconds"))
            n_iter = ident["search_iterations"] + ident["polish_iterations"]
            info.update(n_iter_warm=ident["search_iterations_warm"],
                        n_iter_full=n_iter - ident["search_iterations_warm"],
                        warm_start_rows=ident["warm_start_rows"],
                        stationarity_history=ident.pop("stationarity_history", []), identify=ident)
            converged, grad = (True, 0.0) if res is None else (res.converged, res.stationarity)
        elif solver == "fastica":
            res = F.fastica(
                data, fun=self.fun, max_iter=self.max_iter, tol=self.tol, random_state=rs,
                warm_start_rows=self._warm_rows(n, k),
            )
            R, n_iter, converged, grad = res.rotation, res.n_iter, res.converged, res.stationarity
            timings.update(res.seconds)
            info.update(n_iter_warm=res.n_iter_warm, n_iter_full=res.n_iter_full,
                        warm_start_rows=res.warm_start_rows,
                        stationarity_history=[float(h) for h in res.history_full])
        else:
            t0 = time.perf_counter()
            with runner.blas_threads():
                rotate = self._rotation_sklearn if solver == "sklearn" else self._rotation_picard
                R, n_iter, converged = rotate(data, rs)
            timings["iterations"] = time.perf_counter() - t0
        if solver == "fastica" and not converged:
            part = f" on its {m} identifiable components" if m < k else ""
            warnings.warn(
                f"clipica FastICA did not converge{part} in max_iter={self.max_iter} iterations "
                f"(stationarity {grad:.3g} > tol={self.tol:g}); increase max_iter "
                "or tol, or reduce n_components (near-Gaussian directions converge slowly).",
                ConvergenceWarning,
                stacklevel=3,
            )
        t0 = time.perf_counter()
        # fastica's last pass already measured the stationarity of R on all rows
        stats = F.source_statistics(data, R, self.fun, stationarity=solver != "fastica")
        if solver == "fastica":
            stats["stationarity"] = grad
        timings["statistics"] = time.perf_counter() - t0
        ident = np.arange(k) < m
        if self.identify:
            ident, test = self._final_test(stats, n, d, ident, solver)
        del data

        t0 = time.perf_counter()
        order = self._set_canonical(R @ w.matrix, stats, w, ident)
        if test is not None:
            test = replace(test, statistic=test.statistic[order], p_value=test.p_value[order],
                           significant=test.significant[order])
        timings["canonical"] = time.perf_counter() - t0
        self.n_iter_ = int(n_iter)
        self.converged_ = bool(converged)
        self.stationarity_ = float(stats["stationarity"])
        self.gaussianity_ = test
        timings["total"] = time.perf_counter() - t_start
        info["seconds"] = timings
        self.fit_info_ = info

    def _final_test(self, stats, n, d, ident, solver):
        """The Gaussianity test of the final K sources (the one recorded) and the identifiable
        mask (K,): for "fastica" the one its search decided; for the solvers that rotate all K
        at once ("sklearn", "picard") the components this test finds significant."""
        from clipica.decompositions import gaussianity as G

        T = G.statistic_from_moments(stats["logcosh"], stats["oddexp"], n)
        test = G.significance_from_statistic(T, n, n_features=d, alpha=self.alpha)
        return (ident if solver == "fastica" else test.significant.copy()), test

    def _warm_rows(self, n: int, k: int) -> int:
        from clipica.decompositions._fastica_torch import auto_warm_start_rows

        ws = self.warm_start_samples
        if ws == "auto":
            return auto_warm_start_rows(n, k)
        if not ws or ws >= n:
            return 0
        return max(int(ws), k + 1)

    def _rotation_sklearn(self, data, rs):
        from sklearn.decomposition import FastICA

        # whiten=False: scikit-learn only rotates the rows clipica whitened, so none of its
        # whitening options (and none of its warnings about them) apply
        sk = FastICA(
            whiten=False, fun=self.fun, max_iter=self.max_iter, tol=self.tol, random_state=rs
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sk.fit(data.numpy())
        converged = not any(issubclass(c.category, ConvergenceWarning) for c in caught)
        for c in caught:
            if not issubclass(c.category, ConvergenceWarning):
                warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)
        if not converged:
            warnings.warn(
                f"scikit-learn FastICA did not converge in max_iter={self.max_iter} iterations.",
                ConvergenceWarning, stacklevel=3,
            )
        return np.asarray(sk.components_, dtype=np.float64), int(sk.n_iter_), converged

    def _rotation_picard(self, data, rs):
        from picard import picard

        Z = data.numpy().T.astype(np.float64)
        dens = {"logcosh": "tanh", "exp": "exp", "cube": "cube"}[self.fun]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, W, _, n_iter = picard(
                Z, fun=dens, ortho=True, extended=True, whiten=False, centering=False,
                max_iter=self.max_iter, tol=self.tol, random_state=rs, return_n_iter=True,
            )
        converged = not any("did not converge" in str(c.message) for c in caught)
        if not converged:
            warnings.warn(
                f"Picard did not converge in max_iter={self.max_iter} iterations.",
                ConvergenceWarning, stacklevel=3,
            )
        return np.asarray(W, dtype=np.float64), int(n_iter), converged

    def _set_canonical(self, U, stats, w, ident) -> np.ndarray:
        """Rescale, sign and order the raw unmixing ``U`` (K, D) into the canonical form;
        returns the order (K,) applied to the rows.

        The identifiable sources (``ident``, (K,) bool) come first, then the Gaussian block,
        each part by decreasing negentropy; ``blocks_`` holds the block when there is one."""
        m1, m2, m3, m4 = stats["m1"], stats["m2"], stats["m3"], stats["m4"]
        n = stats["n"]
        var = np.maximum(m2 - m1**2, np.finfo(np.float64).tiny)
        c3 = m3 - 3 * m1 * m2 + 2 * m1**3
        c4 = m4 - 4 * m1 * m3 + 6 * m1**2 * m2 - 3 * m1**4
        skew = c3 / var**1.5
        kurt = c4 / var**2 - 3.0
        negent = (stats["logcosh"] - _logcosh_gauss()) ** 2
        U = U / np.sqrt(var)[:, None]
        A = np.linalg.pinv(U)
        tie = 3.0 * np.sqrt(6.0 / n)
        k = U.shape[0]
        big = A[np.argmax(np.abs(A), axis=0), np.arange(k)]
        sign = np.where(np.abs(skew) >= tie, np.sign(skew), np.sign(big))
        sign[sign == 0] = 1.0
        U, A, skew = U * sign[:, None], A * sign[None, :], skew * sign
        ident = np.asarray(ident, dtype=bool)
        m = int(ident.sum())
        order = np.concatenate([np.flatnonzero(ident)[np.argsort(-negent[ident], kind="stable")],
                                np.flatnonzero(~ident)[np.argsort(-negent[~ident], kind="stable")]])
        self.identifiable_ = ident[order]
        self.gaussian_block_ = list(range(m, k))
        self.blocks_ = None if m == k else [[i] for i in range(m)] + [self.gaussian_block_]
        self.mean_ = w.mean.copy()
        self.whitening_ = w.matrix.copy()
        self.explained_variance_ = w.eigenvalues.copy()
        tv = w.total_variance
        self.explained_variance_ratio_ = w.eigenvalues / tv if tv > 0 else np.zeros_like(w.eigenvalues)
        self.components_ = np.ascontiguousarray(U[order])
        self.mixing_ = np.ascontiguousarray(A[:, order])
        self.skewness_ = skew[order]
        self.kurtosis_ = kurt[order]
        self.negentropy_ = negent[order]
        self.sign_tie_threshold_ = float(tie)
        return order

    # ------------------------------------------------------------------ persistence
    _array_names = (
        "mean_", "whitening_", "components_", "mixing_", "explained_variance_",
        "explained_variance_ratio_", "skewness_", "kurtosis_", "negentropy_",
    )

    def _arrays(self) -> dict:
        arrays = super()._arrays()
        stability = getattr(self, "stability_", None)
        if stability is not None:
            arrays["stability"] = np.ascontiguousarray(stability, dtype=np.float64)
        return arrays

    def _metadata(self, extra: dict | None) -> dict:
        import platform
        import sys
        from datetime import datetime, timezone

        import sklearn

        from clipica._version import __version__

        params = self.get_params()
        rs = params["random_state"]
        if rs is not None and not isinstance(rs, numbers.Integral):
            params["random_state"] = repr(rs)
        info = dict(self.fit_info_)
        versions = {"clipica": __version__, "numpy": np.__version__, "scikit-learn": sklearn.__version__,
                    "python": sys.version.split()[0]}
        try:
            import torch

            versions["torch"] = torch.__version__
        except ImportError:  # pragma: no cover
            pass
        if info.get("solver") == "picard":
            import picard

            versions["python-picard"] = picard.__version__
        k = self.components_.shape[0]
        comps = []
        stab = getattr(self, "stability_", None)
        for i in range(k):
            c = {"index": i, "skewness": float(self.skewness_[i]), "excess_kurtosis": float(self.kurtosis_[i]),
                 "negentropy": float(self.negentropy_[i])}
            if stab is not None:
                c["stability"] = float(stab[i])
            c["identifiable"] = bool(self.identifiable_[i])
            comps.append(c)
        meta = {
            "params": params,
            "n_iter": int(self.n_iter_),
            "converged": bool(self.converged_),
            "stationarity": float(self.stationarity_),
            "fit": {key: v for key, v in info.items() if key != "seconds"},
            "timings_seconds": info.get("seconds", {}),
            "whitening": WHITENING_DOC,
            "component_scale": SCALE_DOC,
            "canonical": {"sign": SIGN_DOC, "order": ORDER_DOC, "sign_tie_threshold": self.sign_tie_threshold_},
            "components": comps,
            "identifiability": {
                "method": IDENTIFY_DOC if self.identify else "off (identify=False): every component counted",
                "n_identifiable": int(np.sum(self.identifiable_)),
                "gaussian_block": [int(i) for i in self.gaussian_block_],
                "test": None if self.gaussianity_ is None else self.gaussianity_.to_dict(),
            },
            "provenance": {
                "versions": versions,
                "platform": platform.platform(),
                "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "data": {"shape": [info.get("n_samples"), info.get("n_features")], "dtype": info.get("dtype")},
            },
        }
        if extra:
            meta["extra"] = extra
        return meta

    @classmethod
    def _restore(cls, meta: dict, arrays: dict) -> ICA:
        """A fitted :class:`ICA` from a checked ``ica.json`` and its arrays (see ``load``)."""
        from clipica.errors import ArtifactError

        est = super()._restore(meta, arrays)
        if "stability" in arrays:
            est.stability_ = arrays["stability"]
        try:
            est.n_iter_ = int(meta["n_iter"])
            est.converged_ = bool(meta["converged"])
            est.stationarity_ = float(meta["stationarity"])
            est.sign_tie_threshold_ = float(meta["canonical"]["sign_tie_threshold"])
        except (KeyError, TypeError, ValueError):
            raise ArtifactError(
                "ica.json lacks n_iter/converged/stationarity/canonical fields; was it hand-edited?"
            ) from None
        est.fit_info_ = dict(meta.get("fit", {}), seconds=meta.get("timings_seconds", {}))
        est._restore_identifiability(meta.get("identifiability"), arrays["components"].shape[0])
        return est

    def _restore_identifiability(self, ident: dict | None, k: int) -> None:
        """``identifiable_``, ``gaussian_block_``, ``gaussianity_`` from ica.json (files written
        before the split count every component as identifiable)."""
        from clipica.decompositions.gaussianity import GaussianityTest
        from clipica.errors import ArtifactError

        if not ident:
            self.identifiable_, self.gaussian_block_, self.gaussianity_ = np.ones(k, dtype=bool), [], None
            return
        try:
            block = [int(i) for i in ident["gaussian_block"]]
            m = int(ident["n_identifiable"])
        except (KeyError, TypeError, ValueError):
            raise ArtifactError("ica.json has a malformed 'identifiability' record; was it hand-edited?") from None
        if block != list(range(m, k)):
            raise ArtifactError(f"ica.json: gaussian_block {block} does not follow the {m} identifiable "
                                f"components of {k}; was it hand-edited?")
        self.identifiable_ = np.arange(k) < m
        self.gaussian_block_ = block
        test = ident.get("test")
        self.gaussianity_ = None if test is None else GaussianityTest.from_dict(test, source="ica.json test")
