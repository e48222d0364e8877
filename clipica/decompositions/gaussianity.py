"""Is a component distinguishable from Gaussian? A per-component test calibrated for ICA's search.

ICA picks the least Gaussian directions it can find, so even on Gaussian data its components
look non-Gaussian: a test that treats each component as a direction fixed in advance flags
noise. :func:`component_significance` calibrates against that search.

**Statistic** (per component, dimensionless): the column ``s`` standardised over its rows
(mean 0, variance 1, ddof=0), then two of Hyvärinen's robust contrasts (Hyvärinen 1998,
"New approximations of differential entropy"),

- even: ``a = E[log cosh s] − E[log cosh ν]`` (ν ~ N(0, 1); super- and sub-Gaussian shapes),
- odd: ``b = E[s · exp(−s²/2)]`` (asymmetry: a rare binary attribute),

combined as ``T = N · (a² / v_a + b² / v_b)``. ``v_a`` and ``v_b`` are the variances of the
two functions under N(0, 1) after removing what standardisation fixes (their projections on
1, ν, ν²), so for a direction chosen *before* seeing the data ``T`` is about χ²(2) (mean 2).
The contrasts grow at most linearly in ``|s|`` (the odd one is bounded), so a few outlying
rows weigh far less than in skewness and kurtosis (the standardisation still sees them).

**Null** (the search): ``replicates`` samples of Gaussian data of the same shape (N rows, D
features), each whitened to K directions exactly as ICA whitens and rotated by clipica's
symmetric FastICA (logcosh, ``iterations`` iterations: on Gaussian data it never converges,
so the budget is part of the procedure); the largest ``T`` of each fit is one draw of the
null's maximum. A Gumbel law (the limit law of such maxima) fitted to the draws by moments
gives a smooth tail: ``p_i = P(max_null ≥ T_i)``. Comparing every component with the null of
the *largest* statistic is a max-T test (Westfall and Young 1993): the chance that any
Gaussian component is flagged is at most ``alpha`` for the whole set of K, which is stronger
than the Bonferroni correction over components. When only ``K − m`` of the K directions are
Gaussian, their search is over a smaller space than the null's, so the test is conservative
there.

**Rows.** ``T`` is normalised by N, and its null distribution does not depend on N once N is
large (a Gaussian-field limit); the null is simulated at ``min(N, null_rows)`` rows (5 000 by
default) to keep it cheap. Measured with this module's null (mean of the largest ``T`` over
10 fits): K = 64: 55.1 at 5 000 rows, 56.0 at 20 000; K = 8: 9.6 at 2 000, 7.7 at 20 000 (the
smaller sample is the more conservative). The null maxima are cached in memory and, when
``cache=True``, on disk under ``clipica._cache.cache_dir()/gaussian-null/`` per (rows, D, K,
replicates, iterations, seed).

>>> test = component_significance(codes, n_features=512)     # codes: (N, K) from an ICA
>>> test.significant                                          # (K,) bool
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np

from clipica.errors import ArtifactError, InputError

FORMAT = "clipica.gaussianity/1"
#: rows of each simulated Gaussian sample (the null is N-free for large N; module docstring)
NULL_ROWS = 5_000
#: Gaussian samples fitted for the null
NULL_REPLICATES = 20
#: FastICA iterations of each null fit (and of the ICA's first, full-rank phase)
NULL_ITERATIONS = 100
_EULER = 0.5772156649015329


@functools.lru_cache(maxsize=1)
def _gauss_constants() -> tuple[float, float, float]:
    """(E[log cosh ν], v_a, v_b) for ν ~ N(0, 1) by 120-point Gauss–Hermite quadrature."""
    x, w = np.polynomial.hermite_e.hermegauss(120)
    w = w / np.sqrt(2 * np.pi)
    lc = np.abs(x) + np.log1p(np.exp(-2 * np.abs(x))) - np.log(2.0)
    g = float(np.sum(w * lc))
    # standardisation fixes the sample mean and variance: remove the projection on nu^2 - 1
    cov_x2 = float(np.sum(w * (lc - g) * (x**2 - 1)))
    v_a = float(np.sum(w * (lc - g) ** 2)) - cov_x2**2 / 2.0
    # s·exp(-s²/2) is odd: remove its projection on nu (E[nu² exp(-nu²/2)] = 2^-3/2)
    v_b = 3.0**-1.5 - (2.0**-1.5) ** 2
    return g, v_a, v_b


def nongaussianity(codes) -> np.ndarray:
    """The statistic ``T`` (module docstring) of each column of ``codes`` (N, K): (K,) float64.

    About χ²(2) per column for Gaussian data and a direction fixed in advance; large for
    non-Gaussian columns (it grows like N). A constant column gets 0.
    """
    S = np.asarray(codes, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] < 2:
        raise InputError(f"codes must be 2-D (n_samples >= 2, n_components); got shape {S.shape}.")
    g, v_a, v_b = _gauss_constants()
    n = S.shape[0]
    out = np.zeros(S.shape[1])
    for j in range(S.shape[1]):  # one column at a time: memory N, not N·K, float64
        s = S[:, j] - S[:, j].mean()
        sd = s.std()
        if not np.isfinite(sd) or sd <= 0:
            continue
        s /= sd
        a = np.abs(s)
        lc = a + np.log1p(np.exp(-2 * a)) - np.log(2.0)
        ea = lc.mean() - g
        eb = (s * np.exp(-0.5 * s * s)).mean()
        out[j] = n * (ea * ea / v_a + eb * eb / v_b)
    return out


@dataclass(frozen=True)
class GaussianityTest:
    """Per-component test of non-Gaussianity (module docstring for the method).

    ``statistic``, ``p_value``: (K,) float64; ``significant``: (K,) bool, ``p_value <= alpha``
    (family-wise over the K components); ``null``: how the null was made (rows, features,
    replicates, iterations, seed, the Gumbel fit and the simulated maxima).
    """

    statistic: np.ndarray
    p_value: np.ndarray
    significant: np.ndarray
    alpha: float
    method: str
    n_samples: int
    n_features: int | None
    null: dict

    @property
    def n_significant(self) -> int:
        return int(np.sum(self.significant))

    def to_dict(self) -> dict:
        """JSON-ready, tagged ``clipica.gaussianity/1``."""
        from clipica._format import tagged

        return tagged(FORMAT, {
            "statistic": [float(v) for v in self.statistic],
            "p_value": [float(v) for v in self.p_value],
            "significant": [bool(v) for v in self.significant],
            "alpha": float(self.alpha),
            "method": self.method,
            "n_samples": int(self.n_samples),
            "n_features": None if self.n_features is None else int(self.n_features),
            "null": dict(self.null),
        })

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "gaussianity test") -> GaussianityTest:
        """Inverse of :meth:`to_dict`; ArtifactError on a wrong tag or malformed fields."""
        from clipica._format import untag

        body, _ = untag(d, FORMAT, source=source)
        try:
            stat = np.asarray(body["statistic"], dtype=np.float64)
            p = np.asarray(body["p_value"], dtype=np.float64)
            sig = np.asarray(body["significant"], dtype=bool)
            if not (stat.shape == p.shape == sig.shape) or stat.ndim != 1:
                raise ValueError("statistic, p_value and significant differ in length")
            return cls(statistic=stat, p_value=p, significant=sig, alpha=float(body["alpha"]),
                       method=str(body["method"]), n_samples=int(body["n_samples"]),
                       n_features=None if body.get("n_features") is None else int(body["n_features"]),
                       null=dict(body.get("null") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{source} is missing or has malformed fields ({exc}); was it hand-edited?") from None


def gumbel_fit(maxima) -> tuple[float, float]:
    """(location, scale) of a Gumbel law fitted by moments to ``maxima`` (R,)."""
    m = np.asarray(maxima, dtype=np.float64)
    scale = max(float(m.std(ddof=1)) * np.sqrt(6.0) / np.pi, 1e-12)
    return float(m.mean()) - _EULER * scale, scale


def gumbel_sf(t, loc: float, scale: float) -> np.ndarray:
    """P(M >= t) for M ~ Gumbel(loc, scale)."""
    return -np.expm1(-np.exp(-(np.asarray(t, dtype=np.float64) - loc) / scale))


def _simulate_maxima(rows: int, d: int, k: int, replicates: int, iterations: int, seed: int) -> list[float]:
    from clipica.decompositions import _fastica_torch as F
    from clipica.decompositions import _whitening as W

    rng = np.random.default_rng([seed, rows, d, k])
    out = []
    for _ in range(replicates):
        X = rng.standard_normal((rows, d), dtype=np.float32)
        with W.Runner("cpu", workers=1) as runner:
            mean, cov = W.mean_and_covariance(X, runner)
            w = W.whiten(mean, cov, k)
            data = W.whitened_rows(X, w, runner)
            res = F.fastica(data, max_iter=iterations, tol=1e-4,
                            random_state=np.random.RandomState(rng.integers(2**31 - 1)))
            S = data.numpy() @ res.rotation.T.astype(np.float32)
        out.append(float(nongaussianity(S).max()))
    return out


@functools.lru_cache(maxsize=64)
def _null_maxima_cached(rows, d, k, replicates, iterations, seed, cache) -> tuple[float, ...]:
    path = None
    if cache:
        from clipica._cache import cache_dir

        path = cache_dir() / "gaussian-null" / f"n{rows}-d{d}-k{k}-r{replicates}-it{iterations}-s{seed}.json"
        try:
            doc = json.loads(path.read_text())
            vals = [float(v) for v in doc["maxima"]]
            if doc.get("format") == FORMAT and len(vals) == replicates:
                return tuple(vals)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    vals = _simulate_maxima(rows, d, k, replicates, iterations, seed)
    if path is not None:
        from clipica._atomic import atomic_write_json

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, {"format": FORMAT, "rows": rows, "n_features": d, "n_components": k,
                                     "replicates": replicates, "iterations": iterations, "seed": seed,
                                     "maxima": vals})
        except OSError:  # a read-only cache costs a recomputation next time, nothing else
            pass
    return tuple(vals)


def null_maxima(n_samples: int, n_features: int, n_components: int, *, replicates: int = NULL_REPLICATES,
                iterations: int = NULL_ITERATIONS, null_rows: int = NULL_ROWS, random_state: int = 0,
                cache: bool = True) -> tuple[int, list[float]]:
    """``(rows, maxima)``: the largest ``T`` of FastICA fitted to each of ``replicates`` Gaussian
    samples of ``rows = min(n_samples, null_rows)`` x ``n_features``, whitened to
    ``n_components`` (module docstring). Cached per arguments."""
    rows = int(min(n_samples, null_rows))
    d = int(max(n_features, n_components))
    return rows, list(_null_maxima_cached(rows, d, int(n_components), int(replicates), int(iterations),
                                          int(random_state), bool(cache)))


def statistic_from_moments(logcosh_mean, oddexp_mean, n_samples: int) -> np.ndarray:
    """``T`` from the moments of unit-variance, zero-mean sources: ``E[log cosh s]`` and
    ``E[s exp(-s²/2)]`` (K,) over ``n_samples`` rows (what the ICA solver measures in one pass)."""
    g, v_a, v_b = _gauss_constants()
    a = np.asarray(logcosh_mean, dtype=np.float64) - g
    b = np.asarray(oddexp_mean, dtype=np.float64)
    return n_samples * (a * a / v_a + b * b / v_b)


def significance_from_statistic(statistic, n_samples: int, *, n_features: int | None = None, alpha: float = 0.05,
                    random_state: int = 0, replicates: int = NULL_REPLICATES, iterations: int = NULL_ITERATIONS,
                    null_rows: int = NULL_ROWS, cache: bool = True) -> GaussianityTest:
    """:func:`component_significance` for statistics ``T`` (K,) already computed on
    ``n_samples`` rows (e.g. by :func:`statistic_from_moments`)."""
    stat = np.asarray(statistic, dtype=np.float64)
    if stat.ndim != 1 or stat.size < 1:
        raise InputError(f"statistic must be 1-D with at least one component; got shape {stat.shape}.")
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise InputError(f"alpha must be a number in (0, 1); got alpha={alpha!r}.")
    k = stat.size
    d = k if n_features is None else int(n_features)
    if d < k:
        raise InputError(f"n_features={d} is smaller than the number of components ({k}).")
    if replicates < 2 or iterations < 1:
        raise InputError(f"need replicates >= 2 and iterations >= 1; got {replicates}, {iterations}.")
    rows, maxima = null_maxima(n_samples, d, k, replicates=replicates, iterations=iterations,
                               null_rows=null_rows, random_state=random_state, cache=cache)
    loc, scale = gumbel_fit(maxima)
    p = np.clip(gumbel_sf(stat, loc, scale), 0.0, 1.0)
    method = (f"max-T: T = N (a^2/v_a + b^2/v_b) from E[log cosh s] and E[s exp(-s^2/2)] (Hyvarinen 1998); "
              f"null = largest T of symmetric FastICA (logcosh, {iterations} iterations) on {replicates} "
              f"Gaussian samples of {rows} x {d} whitened to K={k}; Gumbel fit by moments; family-wise "
              f"over the {k} components")
    return GaussianityTest(
        statistic=stat, p_value=p, significant=p <= alpha, alpha=float(alpha), method=method,
        n_samples=int(n_samples), n_features=None if n_features is None else int(n_features),
        null={"rows": rows, "n_features": d, "n_components": k, "replicates": int(replicates),
              "iterations": int(iterations), "seed": int(random_state), "gumbel_loc": loc,
              "gumbel_scale": scale, "maxima": [float(v) for v in maxima]},
    )


def component_significance(codes, *, n_features: int | None = None, alpha: float = 0.05,
                           random_state: int = 0, replicates: int = NULL_REPLICATES,
                           iterations: int = NULL_ITERATIONS, null_rows: int = NULL_ROWS,
                           cache: bool = True) -> GaussianityTest:
    """Test each column of ``codes`` (N, K), an ICA's sources, against a Gaussian null that
    accounts for ICA's search (module docstring).

    ``n_features``: D of the data the ICA was fitted on (None: K); the null whitens Gaussian
    data of that width to K. ``alpha``: family-wise level over the K components. Returns a
    :class:`GaussianityTest`. InputError for codes that are not 2-D with at least 3 rows,
    non-finite codes, an ``alpha`` outside (0, 1), or ``n_features`` below K.
    """
    S = np.asarray(codes)
    if S.ndim != 2 or S.shape[0] < 3 or S.shape[1] < 1:
        raise InputError(f"codes must be 2-D (n_samples >= 3, n_components >= 1); got shape {S.shape}.")
    if not np.all(np.isfinite(S)):
        raise InputError("codes contain NaN or infinity; the Gaussianity test needs finite values.")
    return significance_from_statistic(nongaussianity(S), S.shape[0], n_features=n_features, alpha=alpha,
                           random_state=random_state, replicates=replicates, iterations=iterations,
                           null_rows=null_rows, cache=cache)
