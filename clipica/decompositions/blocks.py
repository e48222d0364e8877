"""Independent subspaces: group the components whose sources stay dependent into blocks.

ICA assumes one independent source per factor. A categorical factor with ``c`` values
(hair colour: four) spans a ``c - 1`` dimensional subspace of the embedding, and inside
it no rotation makes the coordinates independent. What ICA returns there is the most
non-Gaussian rotation: for four equiprobable colours at the vertices of a tetrahedron,
three *pairwise independent* contrasts (black+brown vs blond+gray, ...) whose product is
constant: ``s3 = s1 * s2``, the XOR pattern. That is block-identifiability
(Daunhawer et al. 2023) seen in practice: the subspace is identified, not its axes.

Which dependence makes a block
------------------------------
A real embedding is never additive in its factors: on the demo store (20 000 faces,
``tiny-faces``, K = 12) bangs are drawn in the hair's colour over a pale or dark
forehead, so the Bangs and Pale_Skin sources are *dependent* although the two attributes
are independent in the data. At n = 20 000 every pair of sources is significantly
dependent by moment statistics (correlations of ``|z_i|`` with ``|z_j|``, of ``z_i``
with ``z_j^2``, of ``z_k`` with ``z_i z_j``: 0.1-0.55 for pairs of distinct factors,
0.68 for the hair triple), so no null distribution separates one categorical factor from
two interacting ones, and a cutoff on those statistics is a tuned constant (0.5 was
right on 3 000 rows and wrong on 20 000). The two cases differ in *occupancy*, not in
moments: two independent factors whose embedding interacts still produce every
combination of their values, at the rates the marginals predict (the interaction only
moves where the combinations sit); a categorical factor leaves combinations empty (four
colours fill 4 of the 8 octants of their three contrasts; three values fill 3 of the 4
quadrants of their two). The rule measures that:

1. Binarise each source at its 2-means split (the threshold maximising the
   between-class variance, Otsu's rule): for a source with two modes, the gap between
   them; for a unimodal one, near its centre. On at most ``max_rows`` rows.
2. Occupancy deficit of a table of binarised sources: for each cell, ``1 - upper / e``
   where ``e`` is the cell's probability if the sources were independent (the product of
   the observed marginals) and ``upper`` the Wilson score upper confidence bound of its
   observed probability, at the Bonferroni level for ``alpha`` over all the cells
   examined. This is a lower confidence bound of ``1 - observed / expected``: it tends to
   1 for a combination that never occurs (``1 - z^2 / ((n + z^2) e)`` for an empty cell),
   and stays <= 0 (reported as 0) with probability >= ``1 - alpha`` when the sources are
   independent, whatever n. The largest over the cells is the table's deficit.
   Pairs ``(i, j)``: the 2x2 table against ``p(i) p(j)``. Triples ``(i, j, k)``: the
   2x2x2 table against ``p(i, j) p(k)``, ``p(i, k) p(j)`` and ``p(j, k) p(i)``; the
   triple's deficit is the smallest of the three (every member must depend on the other
   two jointly: a dependent pair plus an unrelated third component scores 0 here). Pairs
   alone cannot see the XOR pattern above: its sources are pairwise independent.
3. ``dependence[i, j]`` is the largest deficit of the pair and of any triple holding
   both. Two components are linked when it exceeds ``min_dependence`` (0.5: with
   confidence ``1 - alpha``, some combination occurs at most half as often as
   independence predicts). The statistic puts the two cases far apart, so the cutoff is
   not critical: on the demo store the hair triple scores 0.99 and every other pair at
   most 0.25; on the planted tests' categoricals 0.95 at 4 000 rows (0.71 at 600),
   against 0 for their independent sources.
4. Blocks: average-linkage agglomeration on the dependence matrix, merging the two
   groups with the highest mean pairwise dependence while it exceeds the threshold
   (average linkage, not single, so one spurious edge cannot chain two factors).
5. Stability: the rule is re-run on ``n_bootstrap`` resamples of the rows (with
   replacement, same sources); a block's stability is the fraction of resamples that
   produce exactly that block; ``co_membership[i, j]`` is how often ``i`` and ``j`` shared
   a block. The ICA itself is not refitted (that is :mod:`clipica.decompositions.stability`'s job).

What this does not see: dependence that leaves every combination occupied, such as the
shared scale of a spherical scale mixture (ISA's textbook block), or 4th- and
higher-order occupancy patterns (a categorical with 5+ values at the vertices of a
regular simplex). numpy only; the cost is one ``(K, n) x (n, K(K-1)/2)`` product and a few
``(K, K, K)`` arrays per run (K = 64: 2 MB each; K = 256: 130 MB each).
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
        Symmetric dependence (occupancy deficit, see the module docstring), 0 on the
        diagonal, in [0, 1].
    threshold : float
        The dependence above which two components were linked (``min_dependence``).
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
        from clipica._atomic import nan_to_none
        from clipica._format import tagged

        return nan_to_none(tagged(
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
                "rule": "average linkage on the occupancy deficit (lower bound) of 2-means-binarised pairs and triples",
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


def _binarise(S: np.ndarray) -> np.ndarray:
    """Each column as 0/1 on either side of its 2-means (Otsu) split, shape (n, K) float64.

    The split maximises ``k (n - k) (mean_low - mean_high)^2`` over the sorted values:
    for two modes it falls in the gap between them, for one mode near the centre.
    A constant column is all 0.
    """
    n, K = S.shape
    B = np.zeros((n, K))
    k = np.arange(1, n, dtype=np.float64)
    for c in range(K):
        s = np.sort(S[:, c])
        if s[0] == s[-1]:
            continue
        cs = np.cumsum(s)
        gap = cs[:-1] / k - (cs[-1] - cs[:-1]) / (n - k)
        i = int(np.argmax(k * (n - k) * gap * gap))
        B[:, c] = S[:, c] > 0.5 * (s[i] + s[i + 1])
    return B


def _pick(bit: int, p: np.ndarray) -> np.ndarray:
    """P(x = 1) = p for bit 1, P(x = 0) = 1 - p for bit 0."""
    return p if bit else 1.0 - p


def dependence_matrix(S, alpha: float = 1e-3) -> tuple[np.ndarray, int]:
    """Occupancy deficit of every pair of source columns, shape (K, K), and the cells examined.

    ``D[i, j]`` is the largest lower confidence bound (level ``alpha``, Bonferroni over all
    cells) of ``1 - observed / expected`` over the cells of the 2x2 table of the binarised
    ``(i, j)`` and of the 2x2x2 tables of every triple holding both (see the module
    docstring, steps 1-3); 0 on the diagonal, and 0 where independence explains the tables.
    """
    from scipy.stats import norm

    S = np.asarray(S, dtype=np.float64)
    n, K = S.shape
    n_cells = 4 * K * (K - 1) // 2 + 8 * K * (K - 1) * (K - 2) // 6
    if K < 2:
        return np.zeros((K, K)), n_cells
    z = float(norm.isf(alpha / (2.0 * max(n_cells, 1))))
    B = _binarise(S)
    p = B.mean(axis=0)  # (K,)  P(x_i = 1)
    P2 = B.T @ B / n  # (K, K)  P(x_i = 1, x_j = 1)

    def deficit(obs, exp):
        # 1 - (Wilson score upper bound of the cell's probability) / (its share under
        # independence); Wilson, not the normal interval, because the cells that matter
        # are the (near-)empty ones, where the normal interval is far too wide
        q = np.clip(obs, 0.0, 1.0)
        z2n = z * z / n
        upper = (q + z2n / 2 + z * np.sqrt(q * (1 - q) / n + z2n / (4 * n))) / (1 + z2n)
        return 1.0 - upper / np.clip(exp, 1e-12, None)

    # pairs: P(x_i = a, x_j = b) by inclusion-exclusion from p and P2
    D = np.full((K, K), -np.inf)
    for a in (0, 1):
        for b in (0, 1):
            expected = _pick(a, p)[:, None] * _pick(b, p)[None, :]
            D = np.maximum(D, deficit(_cell2(a, b, p, P2), expected))
    # triples: P3[i, j, k] = P(x_i = x_j = x_k = 1), in chunks of (j, k) pairs
    P3 = np.zeros((K, K, K))
    jj, kk = np.triu_indices(K, 1)
    for start in range(0, jj.size, 256):
        a, b = jj[start : start + 256], kk[start : start + 256]
        T = B.T @ (B[:, a] * B[:, b]) / n  # (K, chunk)
        P3[:, a, b] = T
        P3[:, b, a] = T
    per = np.full((3, K, K, K), -np.inf)  # per singled-out member: max over the cells
    for cell in np.ndindex(2, 2, 2):
        obs = _cell3(cell, p, P2, P3)
        # the singled-out member i against the pair (j, k), j against (i, k), k against (i, j)
        e_i = _pick(cell[0], p)[:, None, None] * _cell2(cell[1], cell[2], p, P2)[None, :, :]
        e_j = _pick(cell[1], p)[None, :, None] * _cell2(cell[0], cell[2], p, P2)[:, None, :]
        e_k = _pick(cell[2], p)[None, None, :] * _cell2(cell[0], cell[1], p, P2)[:, :, None]
        per = np.maximum(per, np.stack([deficit(obs, e_i), deficit(obs, e_j), deficit(obs, e_k)]))
    trip = per.min(axis=0)  # (K, K, K): the triple's deficit
    i, j, k = np.indices((K, K, K))
    trip[(i == j) | (i == k) | (j == k)] = -np.inf
    D = np.maximum(D, trip.max(axis=2))
    D = np.clip(D, 0.0, None)
    D = np.maximum(D, D.T)
    np.fill_diagonal(D, 0.0)
    return D, n_cells


def _cell2(a: int, b: int, p: np.ndarray, P2: np.ndarray) -> np.ndarray:
    """P(x_i = a, x_j = b) for all (i, j), shape (K, K)."""
    if a and b:
        return P2
    if a:
        return p[:, None] - P2
    if b:
        return p[None, :] - P2
    return 1.0 - p[:, None] - p[None, :] + P2


def _cell3(cell, p, P2, P3) -> np.ndarray:
    """P(x_i = a, x_j = b, x_k = c) for all (i, j, k), shape (K, K, K), by inclusion-exclusion."""
    a, b, c = cell
    # expand prod over members of (x if bit else 1 - x): sum over the subsets of the
    # 0-bit members, sign (-1)^|subset|, of the moment of (1-bit members + subset)
    out = 0.0
    for take_i in ((1,) if a else (0, 1)):
        for take_j in ((1,) if b else (0, 1)):
            for take_k in ((1,) if c else (0, 1)):
                sign = (-1) ** ((take_i and not a) + (take_j and not b) + (take_k and not c))
                out = out + sign * _moment(take_i, take_j, take_k, p, P2, P3)
    return out


def _moment(ti: int, tj: int, tk: int, p, P2, P3) -> np.ndarray:
    """E[prod of the taken x's] broadcast to (K, K, K)."""
    K = p.size
    if ti and tj and tk:
        return P3
    if ti and tj:
        return np.broadcast_to(P2[:, :, None], (K, K, K))
    if ti and tk:
        return np.broadcast_to(P2[:, None, :], (K, K, K))
    if tj and tk:
        return np.broadcast_to(P2[None, :, :], (K, K, K))
    if ti:
        return np.broadcast_to(p[:, None, None], (K, K, K))
    if tj:
        return np.broadcast_to(p[None, :, None], (K, K, K))
    if tk:
        return np.broadcast_to(p[None, None, :], (K, K, K))
    return np.ones((K, K, K))


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


def _check_arguments(S, min_dependence, alpha, max_block_size, n_bootstrap) -> None:
    """InputError (one line) for bad :func:`find_blocks` arguments."""
    if S.ndim != 2:
        raise InputError(f"S must be (n_samples, n_components); got shape {S.shape}.")
    if S.shape[0] < MIN_ROWS:
        raise InputError(f"need at least {MIN_ROWS} rows to measure dependence; got {S.shape[0]}.")
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


def find_blocks(
    S,
    *,
    min_dependence: float = 0.5,
    alpha: float = 1e-3,
    max_block_size: int | None = None,
    n_bootstrap: int = 20,
    max_rows: int = 20000,
    random_state: int | None = 0,
    fixed_block=None,
) -> BlockResult:
    """Group dependent sources into blocks (independent subspaces), see the module docstring.

    Parameters
    ----------
    S : array of shape (n_samples, n_components)
        Sources, e.g. ``ica.transform(X)``.
    min_dependence : float
        Smallest dependence (an occupancy deficit's lower confidence bound, in [0, 1]) that
        links two components (see the module docstring for the default's reason).
    alpha : float
        Family-wise level of the lower confidence bounds over all the cells examined
        (smaller: more rows needed before a block is claimed).
    max_block_size : int or None
        Largest block allowed (None: no limit).
    n_bootstrap : int
        Row resamples for the stability of each block (0: skip).
    max_rows : int
        Rows used (a seeded subsample when there are more).
    fixed_block : list of int or None
        A block known in advance, e.g. an ICA's unidentifiable Gaussian block
        (``ica.gaussian_block_``): its members are left out of the search and returned
        together as the last block (dependence NaN, stability NaN: not estimated).

    Returns
    -------
    BlockResult
    """
    S = np.asarray(S, dtype=np.float64)
    _check_arguments(S, min_dependence, alpha, max_block_size, n_bootstrap)
    n, K = S.shape
    rng = np.random.default_rng(random_state)
    if n > max_rows:
        S = S[np.sort(rng.choice(n, max_rows, replace=False))]
        n = max_rows
    fixed = sorted({int(i) for i in (fixed_block or [])})
    if any(i < 0 or i >= K for i in fixed):
        raise InputError(f"fixed_block must hold component indices in [0, {K}); got {fixed_block!r}.")
    free = np.array([i for i in range(K) if i not in set(fixed)], dtype=int)
    # the null (independent sources, n rows) is inside D: each entry is a lower
    # confidence bound, so the cutoff is an effect size, the same at every n
    thr = float(min_dependence)

    def search(rows):
        if free.size < 2:
            return np.zeros((free.size, free.size)), [[int(i)] for i in free]
        Df, _ = dependence_matrix(S[np.ix_(rows, free)] if rows is not None else S[:, free], alpha)
        return Df, [[int(free[j]) for j in g] for g in _average_linkage(Df, thr, max_block_size)]

    Df, blocks = search(None)
    D = np.full((K, K), np.nan)
    D[np.ix_(free, free)] = Df
    if fixed:
        blocks = blocks + [fixed]

    co = np.zeros((K, K))
    counts = np.zeros(len(blocks))
    keys = {tuple(b): i for i, b in enumerate(blocks)}
    for _ in range(n_bootstrap):
        idx = rng.integers(0, n, n)
        for g in search(idx)[1]:
            co[np.ix_(g, g)] += 1
            if tuple(g) in keys:
                counts[keys[tuple(g)]] += 1
    if n_bootstrap:
        co /= n_bootstrap
        co[np.ix_(fixed, fixed)] = 1.0
        stability = (counts / n_bootstrap).tolist()
        if fixed:
            stability[-1] = float("nan")
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
        params={"max_block_size": max_block_size, "max_rows": max_rows, "fixed_block": fixed},
    )
