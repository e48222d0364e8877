"""Latent causal models with ground truth, for the two identifiability papers.

Two families, each a frozen dataclass whose ``sample(n, rng)`` returns a dict
of numpy arrays, samples first ``(n, dim)``, float64:

* :class:`MultimodalLatents` (Daunhawer et al. 2023): content ``c`` shared by
  both modalities, style ``s`` seen by modality 1 and a perturbed copy
  ``s_tilde = s + b * eps`` seen by modality 2 (``b ~ Bernoulli(p_change)``
  per dimension and sample, ``eps ~ N(0, 1)``), modality-specific ``m1``, ``m2``.
* :class:`PartialCausalLatents` (Liu et al. 2024): coupled latents ``z_x``
  (image side) and ``z_t`` (text side) with ``z_t | z_x`` concentrated around
  ``z_x``, plus modality-specific ``m_x``, ``m_t``. ``geometry="sphere"``:
  ``z_x`` on the unit sphere, ``z_t | z_x ~ vMF(z_x, kappa)``;
  ``geometry="convex"``: ``z_x`` in the box ``[-1, 1]^d``, ``z_t | z_x``
  Laplace with scale ``laplace_scale`` brought back into the box.

The configuration flows as explicit frozen dataclasses so an experiment
record can store it (:func:`dataclasses.asdict`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipica.errors import InputError

__all__ = [
    "MultimodalLatents",
    "PartialCausalLatents",
    "sample_vmf",
    "vmf_mean_resultant_length",
    "wishart_covariance",
]


def _check_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def wishart_covariance(dim: int, rng: np.random.Generator, dof: int | None = None) -> np.ndarray:
    """One draw from a Wishart(I / dof, dof) distribution, rescaled to unit diagonal.

    Returns a correlation-like covariance matrix of shape ``(dim, dim)``.
    Each call consumes the generator, so two blocks drawn from the same
    generator get *different* covariances (the original code re-seeded per
    block and got identical ones).
    """
    dof = dim + 1 if dof is None else int(dof)
    g = rng.standard_normal((dof, dim))
    cov = g.T @ g / dof
    d = np.sqrt(np.diag(cov))
    # unit variances keep the blocks on the same scale as the independent case;
    # only the dependence structure changes
    return cov / np.outer(d, d)


@dataclass(frozen=True)
class MultimodalLatents:
    """Daunhawer et al.'s latent model: content, style and modality-specific blocks.

    Parameters
    ----------
    content_dim, style_dim, m1_dim, m2_dim : block sizes (>= 1 for content; others may be 0).
    p_change : probability that one style dimension changes between the two
        modalities (per sample and dimension), in [0, 1].
    dependent : if True, each block is Gaussian with its own covariance drawn
        from a Wishart distribution (independent draws per block; the
        covariances are fixed by ``structure_seed``).
    content_dependent_style : if True, ``s <- s + B c + a`` with ``B`` (style_dim,
        content_dim) and ``a`` (style_dim,) standard normal, fixed by ``structure_seed``.
    structure_seed : seed of the fixed parts (covariances, ``B``, ``a``), so a
        training stream and the evaluation draws share the same model.
    """

    content_dim: int = 5
    style_dim: int = 5
    m1_dim: int = 5
    m2_dim: int = 5
    p_change: float = 1.0
    dependent: bool = False
    content_dependent_style: bool = False
    structure_seed: int = 0

    def __post_init__(self) -> None:
        if self.content_dim < 1:
            raise InputError(f"content_dim must be >= 1, got {self.content_dim}.")
        for name in ("style_dim", "m1_dim", "m2_dim"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if not 0.0 <= self.p_change <= 1.0:
            raise InputError(f"p_change must be in [0, 1], got {self.p_change}.")

    @property
    def dims(self) -> dict[str, int]:
        return {"content": self.content_dim, "style": self.style_dim,
                "m1": self.m1_dim, "m2": self.m2_dim}

    @property
    def view_dims(self) -> tuple[int, int]:
        """Dimensions of the latent vectors fed to mixing 1 and mixing 2."""
        return (self.content_dim + self.style_dim + self.m1_dim,
                self.content_dim + self.style_dim + self.m2_dim)

    def structure(self) -> dict[str, np.ndarray]:
        """The fixed parts of the model: one covariance per block, ``B`` and ``a``."""
        rng = np.random.default_rng([self.structure_seed, 7001])
        out: dict[str, np.ndarray] = {}
        for name, dim in self.dims.items():
            out[f"cov_{name}"] = (wishart_covariance(dim, rng) if self.dependent and dim > 0
                                  else np.eye(dim))
        out["B"] = rng.standard_normal((self.style_dim, self.content_dim))
        out["a"] = rng.standard_normal(self.style_dim)
        return out

    def sample(self, n: int, rng=None, structure: dict | None = None) -> dict[str, np.ndarray]:
        """Draw ``n`` samples.

        Returns a dict with ``content`` (n, content_dim), ``style`` (n, style_dim),
        ``style_tilde`` (n, style_dim), ``change_mask`` (n, style_dim) bool (``b``),
        ``m1`` (n, m1_dim), ``m2`` (n, m2_dim), ``z1`` = [c, s, m1] and
        ``z2`` = [c, s_tilde, m2] (the inputs of the two mixings).
        """
        rng = _check_rng(rng)
        st = self.structure() if structure is None else structure
        blocks = {}
        for name, dim in self.dims.items():
            g = rng.standard_normal((n, dim))
            if self.dependent and dim > 0:
                g = g @ np.linalg.cholesky(st[f"cov_{name}"]).T
            blocks[name] = g
        c, s = blocks["content"], blocks["style"]
        if self.content_dependent_style:
            s = s + c @ st["B"].T + st["a"]
        b = rng.random((n, self.style_dim)) < self.p_change
        s_tilde = s + b * rng.standard_normal((n, self.style_dim))
        return {
            "content": c,
            "style": s,
            "style_tilde": s_tilde,
            "change_mask": b,
            "m1": blocks["m1"],
            "m2": blocks["m2"],
            "z1": np.concatenate([c, s, blocks["m1"]], axis=1),
            "z2": np.concatenate([c, s_tilde, blocks["m2"]], axis=1),
        }


# ---------------------------------------------------------------- von Mises-Fisher

def vmf_mean_resultant_length(dim: int, kappa: float) -> float:
    """``A_d(kappa) = I_{d/2}(kappa) / I_{d/2-1}(kappa)``: E[mu . x] for x ~ vMF(mu, kappa) in R^d."""
    from scipy.special import ive

    # exponentially scaled Bessel functions: the scale factors cancel in the ratio
    return float(ive(dim / 2.0, kappa) / ive(dim / 2.0 - 1.0, kappa))


def sample_vmf(mu: np.ndarray, kappa: float, rng=None) -> np.ndarray:
    """von Mises-Fisher samples around each row of ``mu`` (Wood 1994).

    Parameters
    ----------
    mu : ndarray of shape (n, d), unit-norm mean directions, d >= 2.
    kappa : concentration (> 0; 0 gives the uniform distribution).

    Returns
    -------
    ndarray of shape (n, d), unit-norm samples; sample i has mean direction mu[i].
    """
    rng = _check_rng(rng)
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[1] < 2:
        raise InputError(f"mu must have shape (n, d) with d >= 2, got {mu.shape}.")
    if kappa < 0:
        raise InputError(f"kappa must be >= 0, got {kappa}.")
    n, d = mu.shape
    if kappa == 0:
        return _uniform_sphere(n, d, rng)
    # Wood's rejection sampler for the cosine w = mu . x
    b = (d - 1) / (2.0 * kappa + np.sqrt(4.0 * kappa**2 + (d - 1) ** 2))  # stable form
    x0 = (1.0 - b) / (1.0 + b)
    c = kappa * x0 + (d - 1) * np.log(1.0 - x0**2)
    w = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        m = todo.size
        z = rng.beta((d - 1) / 2.0, (d - 1) / 2.0, size=m)
        cand = (1.0 - (1.0 + b) * z) / (1.0 - (1.0 - b) * z)
        u = rng.random(m)
        ok = kappa * cand + (d - 1) * np.log(1.0 - x0 * cand) - c >= np.log(u)
        w[todo[ok]] = cand[ok]
        todo = todo[~ok]
    v = _uniform_sphere(n, d - 1, rng)
    y = np.concatenate([w[:, None], np.sqrt(np.clip(1.0 - w**2, 0.0, None))[:, None] * v], axis=1)
    # Householder reflection taking e1 to mu (per row)
    e1 = np.zeros(d)
    e1[0] = 1.0
    u_vec = e1 - mu
    norm = np.linalg.norm(u_vec, axis=1, keepdims=True)
    safe = norm[:, 0] > 1e-12
    u_vec[safe] /= norm[safe]
    out = y.copy()
    out[safe] = y[safe] - 2.0 * u_vec[safe] * np.sum(u_vec[safe] * y[safe], axis=1, keepdims=True)
    return out


def _uniform_sphere(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


# ---------------------------------------------------------------- partial causal model

_PRIORS = {
    "sphere": ("uniform", "independent", "cap", "dependent"),
    "convex": ("uniform", "nonuniform", "dependent"),
}
_CONDITIONALS = {"sphere": ("vmf", "gaussian"), "convex": ("laplace", "gaussian")}


@dataclass(frozen=True)
class PartialCausalLatents:
    """Liu et al.'s latent partial causal model with coupled latents z_x, z_t.

    Parameters
    ----------
    geometry : "sphere" (z on the unit sphere S^{d-1}) or "convex" (z in [-1, 1]^d).
    coupled_dim : d, dimension of z_x and z_t.
    mx_dim, mt_dim : sizes of the modality-specific latents (standard normal).
    prior : distribution of z_x.
        sphere: "uniform" (the theorem's assumption); "independent": z = u / |u|
        with u uniform in the cube [-1, 1]^d, so the coordinates are close to
        independent and linear ICA has something to find (a non-uniform prior);
        "cap": vMF around a fixed direction with concentration ``prior_kappa``
        (strongly non-uniform, a violation); "dependent": z = L u / |L u| with
        u uniform in the cube and a fixed correlating L (dependent coordinates).
        convex: "uniform" (the theorem's assumption); "nonuniform": i.i.d.
        Beta(2, 5) rescaled to [-1, 1]; "dependent": Gaussian copula with
        correlation ``rho`` pushed through the normal CDF, so each marginal is
        still uniform but the coordinates are dependent.
    conditional : z_t | z_x. sphere: "vmf" (assumed) or "gaussian" (z_t = z_x +
        N(0, sigma^2) off the sphere, sigma = 1/sqrt(kappa)). convex: "laplace"
        (assumed, scale ``laplace_scale``) or "gaussian" (same standard deviation).
    kappa : vMF concentration.
    laplace_scale : Laplace scale per coordinate (convex case).
    box_mode : "clip" or "reflect": how a Laplace draw outside [-1, 1] is brought back.
    prior_kappa : concentration of the "cap" prior.
    rho : correlation between neighbouring coordinates for the "dependent" priors
        (Toeplitz rho^|i-j|).
    structure_seed : seed of the fixed parts (cap direction, L).
    """

    geometry: str = "sphere"
    coupled_dim: int = 5
    mx_dim: int = 2
    mt_dim: int = 2
    prior: str = "uniform"
    conditional: str | None = None
    kappa: float = 20.0
    laplace_scale: float = 0.1
    box_mode: str = "clip"
    prior_kappa: float = 5.0
    rho: float = 0.6
    structure_seed: int = 0

    def __post_init__(self) -> None:
        if self.geometry not in _PRIORS:
            raise InputError(f"geometry must be one of {sorted(_PRIORS)}, got {self.geometry!r}.")
        if self.prior not in _PRIORS[self.geometry]:
            raise InputError(f"prior for geometry={self.geometry!r} must be one of "
                             f"{list(_PRIORS[self.geometry])}, got {self.prior!r}.")
        cond = self.conditional_name
        if cond not in _CONDITIONALS[self.geometry]:
            raise InputError(f"conditional for geometry={self.geometry!r} must be one of "
                             f"{list(_CONDITIONALS[self.geometry])}, got {cond!r}.")
        if self.box_mode not in ("clip", "reflect"):
            raise InputError(f"box_mode must be 'clip' or 'reflect', got {self.box_mode!r}.")
        if self.coupled_dim < 2:
            raise InputError(f"coupled_dim must be >= 2, got {self.coupled_dim}.")
        if self.kappa <= 0 or self.laplace_scale <= 0:
            raise InputError("kappa and laplace_scale must be > 0.")
        if not -1.0 < self.rho < 1.0:
            raise InputError(f"rho must be in (-1, 1), got {self.rho}.")

    @property
    def conditional_name(self) -> str:
        if self.conditional is not None:
            return self.conditional
        return "vmf" if self.geometry == "sphere" else "laplace"

    @property
    def view_dims(self) -> tuple[int, int]:
        return (self.coupled_dim + self.mx_dim, self.coupled_dim + self.mt_dim)

    def structure(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.structure_seed, 7002])
        d = self.coupled_dim
        idx = np.arange(d)
        toeplitz = self.rho ** np.abs(idx[:, None] - idx[None, :])
        return {"cap_direction": _uniform_sphere(1, d, rng)[0],
                "L": np.linalg.cholesky(toeplitz)}

    def _prior(self, n: int, rng: np.random.Generator, st: dict) -> np.ndarray:
        d = self.coupled_dim
        if self.geometry == "sphere":
            if self.prior == "uniform":
                return _uniform_sphere(n, d, rng)
            if self.prior == "cap":
                return sample_vmf(np.tile(st["cap_direction"], (n, 1)), self.prior_kappa, rng)
            # uniform in the cube: sub-Gaussian, independent coordinates that
            # survive the projection well enough for linear ICA (Laplace ones
            # did not: ICA on an exact rotation of u/|u| reached MCC ~0.58)
            u = rng.uniform(-1.0, 1.0, size=(n, d))
            if self.prior == "dependent":
                u = u @ st["L"].T
            return u / np.linalg.norm(u, axis=1, keepdims=True)
        if self.prior == "uniform":
            return rng.uniform(-1.0, 1.0, size=(n, d))
        if self.prior == "nonuniform":
            return 2.0 * rng.beta(2.0, 5.0, size=(n, d)) - 1.0
        from scipy.special import ndtr

        g = rng.standard_normal((n, d)) @ st["L"].T
        return 2.0 * ndtr(g) - 1.0

    def _into_box(self, z: np.ndarray) -> np.ndarray:
        if self.box_mode == "clip":
            return np.clip(z, -1.0, 1.0)
        # reflect at the walls of [-1, 1] (period 4), exact for any overshoot
        y = np.mod(z + 1.0, 4.0)
        return np.where(y > 2.0, 4.0 - y, y) - 1.0

    def sample(self, n: int, rng=None, structure: dict | None = None) -> dict[str, np.ndarray]:
        """Draw ``n`` samples.

        Returns a dict with ``z_x`` (n, d), ``z_t`` (n, d), ``m_x`` (n, mx_dim),
        ``m_t`` (n, mt_dim), and the mixing inputs ``z1`` = [z_x, m_x],
        ``z2`` = [z_t, m_t].
        """
        rng = _check_rng(rng)
        st = self.structure() if structure is None else structure
        zx = self._prior(n, rng, st)
        cond = self.conditional_name
        if cond == "vmf":
            zt = sample_vmf(zx, self.kappa, rng)
        elif cond == "laplace":
            zt = self._into_box(zx + rng.laplace(scale=self.laplace_scale, size=zx.shape))
        elif self.geometry == "sphere":  # gaussian, deliberately left off the sphere
            zt = zx + rng.standard_normal(zx.shape) / np.sqrt(self.kappa)
        else:  # gaussian with the Laplace's standard deviation, into the box
            zt = self._into_box(zx + rng.standard_normal(zx.shape) * self.laplace_scale * np.sqrt(2.0))
        mx = rng.standard_normal((n, self.mx_dim))
        mt = rng.standard_normal((n, self.mt_dim))
        return {"z_x": zx, "z_t": zt, "m_x": mx, "m_t": mt,
                "z1": np.concatenate([zx, mx], axis=1),
                "z2": np.concatenate([zt, mt], axis=1)}
