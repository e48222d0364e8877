"""Independent subspaces: group the components whose sources stay dependent into blocks.

ICA assumes one independent source per factor. A categorical factor with ``c`` values
(hair colour: four) spans a ``c - 1`` dimensional subspace of the embedding, and inside
it no rotation makes the coordinates independent. What ICA returns there is the most
non-Gaussian rotation: for four equiprobable colours at the vertices of a tetrahedron,
three *pairwise independent* contrasts (black+brown vs blond+gray, ...) whose product is
constant: ``s3 = s1 * s2``, the XOR pattern. That is block-identifiability
(Daunhawer et al. 2023) seen in practice: the subspace is identified, not its axes.

The rule (stated so that it can be checked):

1. Standardise each source column ``z_i`` (zero mean, unit variance) on at most
   ``max_rows`` rows.
2. Dependence of components ``i`` and ``j`` is the largest absolute correlation between
   one component and a nonlinear function of the others that independence would make 0:

   * ``corr(|z_i|, |z_j|)``: shared energy (spherical scale mixtures, 4th order);
   * ``corr(z_i, z_j^2)`` and ``corr(z_j, z_i^2)``: 3rd-order pair cumulants;
   * ``corr(z_k, z_i z_j)`` over every third component ``k`` (and ``corr(z_i, z_j z_k)``,
     ``corr(z_j, z_i z_k)``): 3rd-order triple cumulants. Pairwise statistics alone
     cannot see the XOR pattern above: its sources are pairwise independent.

   For independent sources every such sample correlation is ``N(0, 1/n)``
   asymptotically, whatever their distributions; a pair counts as dependent when its
   dependence exceeds ``max(min_dependence, z / sqrt(n))`` with ``z`` the Bonferroni
   quantile for ``alpha`` over all the correlations computed. ``min_dependence`` (0.5:
   half of a component's normal score explained by a function of the others) keeps
   significant but weaker dependencies from merging factors: a real embedding is not
   additive in its factors, and on the demo store (20 000 faces, ``tiny-faces``, K = 12)
   the interactions between binary attributes (bangs drawn in the hair's colour, say)
   reach 0.46 in the pair statistics, while the hair-colour triple sits at 0.67-0.68.
3. Blocks: average-linkage agglomeration on the dependence matrix, merging the two
   groups with the highest mean pairwise dependence while it exceeds the threshold
   (average linkage, not single, so one spurious edge cannot chain two factors).
4. Stability: the rule is re-run on ``n_bootstrap`` resamples of the rows (with
   replacement, same sources); a block's stability is the fraction of resamples that
   produce exactly that block; ``co_membership[i, j]`` is how often ``i`` and ``j`` shared
   a block. The ICA itself is not refitted (that is :mod:`clipica.stability`'s job).

numpy only; the cost is two ``(n, K) x (n, K(K+1)/2)`` products per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clipica.errors import InputError

FORMAT = "clipica.blocks/1"
#: rows below which the dependence between sources is not measured
MIN_ROWS = 20


@dataclass(frozen=True)
class BlockResult:
    """Blocks of dependent components and how stable they are.

    Attributes
    ----------
    blocks : list of list of int
        A partition of ``range(K)``: each block sorted, blocks ordered by their smallest
        component. Independent components are singletons.
    dependence : ndarray of shape (K, K)
        Symmetric dependence (see the module docstring), 0 on the diagonal.
    threshold : float
        The dependence above which two components were linked.
    stability : list of float
        Per block, the fraction of bootstrap resamples producing exactly that block
        (NaN with ``n_bootstrap == 0``).
    co_membership : ndarray of shape (K, K)
        Fraction of resamples in which components i and j shared a block.
    """

    blocks: list[list[int]]
    dependence: np.ndarray
    threshold: float
    stability: list[float]
    co_membership: np.ndarray
    n_rows: int
    n_bootstrap: int
    min_dependence: float
    alpha: float
    random_state: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_components(self) -> int:
        return int(self.dependence.shape[0])

    @property
    def labels(self) -> np.ndarray:
        """Block index of every component, shape (K,)."""
        lab = np.empty(self.n_components, dtype=np.int64)
        for b, members in enumerate(self.blocks):
            lab[members] = b
        return lab

    def multi(self) -> list[list[int]]:
        """The blocks with more than one component."""
        return [b for b in self.blocks if len(b) > 1]

    def to_dict(self, fingerprints: dict[str, str] | None = None) -> dict[str, Any]:
        """The ``blocks.json`` layout (format tag ``clipica.blocks/1``, input fingerprints)."""
        from clipica._atomic import _nan_to_none
        from clipica._format import tagged

        return _nan_to_none(tagged(
            FORMAT,
            {
                "blocks": [list(map(int, b)) for b in self.blocks],
                "stability": [float(s) for s in self.stability],
                "threshold": float(self.threshold),
                "min_dependence": float(self.min_dependence),
                "alpha": float(self.alpha),
                "n_rows": int(self.n_rows),
                "n_bootstrap": int(self.n_bootstrap),
                "random_state": self.random_state,
                "dependence": np.asarray(self.dependence).tolist(),
                "co_membership": np.asarray(self.co_membership).tolist(),
                "rule": "average linkage on max |corr| of |z_i||z_j|, z_i z_j^2, z_k z_i z_j",
                "params": dict(self.params),
            },
            fingerprints,
        ))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BlockResult:
        from clipica._format import untag

        d, _ = untag(d, FORMAT, source="blocks record")

        def arr(key):
            return np.array(
                [[np.nan if v is None else v for v in row] for row in d[key]], dtype=np.float64
            )

        return cls(
            blocks=[list(map(int, b)) for b in d["blocks"]],
            dependence=arr("dependence"),
            threshold=float(d["threshold"]),
            stability=[np.nan if s is None else float(s) for s in d["stability"]],
            co_membership=arr("co_membership"),
            n_rows=int(d["n_rows"]),
            n_bootstrap=int(d["n_bootstrap"]),
            min_dependence=float(d["min_dependence"]),
            alpha=float(d["alpha"]),
            random_state=d.get("random_state"),
            params=dict(d.get("params", {})),
        )


# ------------------------------------------------------------------ the statistics


def _standardise(S: np.ndarray) -> np.ndarray:
    Z = S - S.mean(axis=0)
    sd = Z.std(axis=0)
    return Z / np.where(sd > 0, sd, 1.0)


def _normal_scores(S: np.ndarray) -> np.ndarray:
    """Each column replaced by the standard normal quantiles of its ranks.

    A monotone map per column changes no (in)dependence, and it tames heavy tails: the
    sample correlations below then have their N(0, 1/n) null at every n, not only
    asymptotically (a Laplace or scale-mixture source otherwise makes a few rows decide).
    """
    from scipy.special import ndtri
    from scipy.stats import rankdata

    r = rankdata(S, axis=0, method="average")
    return _standardise(ndtri(r / (S.shape[0] + 1.0)))


def dependence_matrix(S) -> tuple[np.ndarray, int]:
    """Pairwise dependence of source columns, shape (K, K), and the number of correlations.

    ``D[i, j]`` is the largest of ``|corr(|z_i|, |z_j|)|``, ``|corr(z_i, z_j^2)|``,
    ``|corr(z_j, z_i^2)|`` and ``|corr(z_a, z_b z_c)|`` over every triple ``{a, b, c}``
    containing ``i`` and ``j``; 0 on the diagonal. Constant columns have dependence 0.
    """
    S = np.asarray(S, dtype=np.float64)
    n, K = S.shape
    Z = _normal_scores(S)
    A = _standardise(np.abs(Z))
    D = np.abs(A.T @ A / n)
    np.fill_diagonal(D, 0.0)
    ii, jj = np.triu_indices(K)  # pairs j <= k: products z_j z_k, squares included
    G = np.zeros((K, K, K))  # G[i, j, k] = |corr(z_i, z_j z_k)|, symmetric in (j, k)
    for start in range(0, ii.size, 64):  # chunks bound the (n, 64) product matrix
        a, b = ii[start : start + 64], jj[start : start + 64]
        T = np.abs(Z.T @ _standardise(Z[:, a] * Z[:, b]) / n)  # (K, chunk)
        G[:, a, b] = T
        G[:, b, a] = T
    # every correlation whose three indices cover {x, y} (and at most one more) speaks
    # for the pair: G[x, y, k], G[y, x, k], G[k, x, y] over all k
    D3 = np.maximum(G.max(axis=2), G.max(axis=0))
    D = np.maximum(D, np.maximum(D3, D3.T))
    np.fill_diagonal(D, 0.0)
    n_tests = K * (K - 1) // 2 + K * ii.size - K
    return D, n_tests


def _average_linkage(D: np.ndarray, threshold: float, max_block_size: int | None) -> list[list[int]]:
    groups = [[i] for i in range(D.shape[0])]
    while len(groups) > 1:
        best, pair = -np.inf, None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                if max_block_size and len(groups[a]) + len(groups[b]) > max_block_size:
                    continue
                v = float(D[np.ix_(groups[a], groups[b])].mean())
                if v > best:
                    best, pair = v, (a, b)
        if pair is None or best <= threshold:
            break
        a, b = pair
        groups[a] = sorted(groups[a] + groups[b])
        del groups[b]
    return sorted(groups, key=lambda g: g[0])


def _threshold(n: int, n_tests: int, alpha: float, min_dependence: float) -> float:
    from scipy.stats import norm

    z = float(norm.isf(alpha / (2.0 * max(n_tests, 1))))
    return max(float(min_dependence), z / np.sqrt(n))


def find_blocks(
    S,
    *,
    min_dependence: float = 0.5,
    alpha: float = 1e-3,
    max_block_size: int | None = None,
    n_bootstrap: int = 20,
    max_rows: int = 20000,
    random_state: int | None = 0,
) -> BlockResult:
    """Group dependent sources into blocks (independent subspaces), see the module docstring.

    Parameters
    ----------
    S : array of shape (n_samples, n_components)
        Sources, e.g. ``ica.transform(X)``.
    min_dependence : float
        Smallest dependence (a correlation, in [0, 1]) that links two components (see the
        module docstring for the default's reason).
    alpha : float
        Family-wise level of the independence test over all correlations.
    max_block_size : int or None
        Largest block allowed (None: no limit).
    n_bootstrap : int
        Row resamples for the stability of each block (0: skip).
    max_rows : int
        Rows used (a seeded subsample when there are more).

    Returns
    -------
    BlockResult
    """
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2:
        raise InputError(f"S must be (n_samples, n_components); got shape {S.shape}.")
    n, K = S.shape
    if n < MIN_ROWS:
        raise InputError(f"need at least {MIN_ROWS} rows to measure dependence; got {n}.")
    if not np.all(np.isfinite(S)):
        raise InputError("S contains NaN or inf.")
    if not 0.0 <= min_dependence <= 1.0:
        raise InputError(f"min_dependence must be in [0, 1]; got {min_dependence}.")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha must be in (0, 1); got {alpha}.")
    if max_block_size is not None and max_block_size < 1:
        raise InputError(f"max_block_size must be >= 1 or None; got {max_block_size}.")
    if n_bootstrap < 0:
        raise InputError(f"n_bootstrap must be >= 0; got {n_bootstrap}.")
    rng = np.random.default_rng(random_state)
    if n > max_rows:
        S = S[np.sort(rng.choice(n, max_rows, replace=False))]
        n = max_rows
    D, n_tests = dependence_matrix(S)
    thr = _threshold(n, n_tests, alpha, min_dependence)
    blocks = _average_linkage(D, thr, max_block_size)

    co = np.zeros((K, K))
    counts = np.zeros(len(blocks))
    keys = {tuple(b): i for i, b in enumerate(blocks)}
    for _ in range(n_bootstrap):
        idx = rng.integers(0, n, n)
        Db, _ = dependence_matrix(S[idx])
        for g in _average_linkage(Db, thr, max_block_size):
            co[np.ix_(g, g)] += 1
            if tuple(g) in keys:
                counts[keys[tuple(g)]] += 1
    if n_bootstrap:
        co /= n_bootstrap
        stability = (counts / n_bootstrap).tolist()
    else:
        co = np.full((K, K), np.nan)
        stability = [float("nan")] * len(blocks)
    return BlockResult(
        blocks=blocks,
        dependence=D,
        threshold=thr,
        stability=stability,
        co_membership=co,
        n_rows=n,
        n_bootstrap=n_bootstrap,
        min_dependence=float(min_dependence),
        alpha=float(alpha),
        random_state=random_state if isinstance(random_state, int) else None,
        params={"max_block_size": max_block_size, "max_rows": max_rows},
    )
