"""Contrastive training of two MLP encoders on paired observations (torch).

Three InfoNCE variants, all symmetric over the two modalities with CLIP's
in-batch cross-modal negatives (row i of modality 1 is the positive of row i
of modality 2; every other row of the other modality is a negative):

* ``"clip"`` (Liu et al., sphere case): outputs L2-normalised, logits =
  cosine similarity / temperature.
* ``"l1"`` (Liu et al., convex case): outputs squashed into the box
  ``[-1, 1]^k`` with tanh, logits = -L1 distance / temperature.
* ``"sql2"`` (Daunhawer et al.): unconstrained outputs, logits = -squared L2
  distance / temperature (their default temperature is 1).

Training data are fresh draws at every step (an infinite data stream, as in
both papers), produced by a numpy ``sampler(n, rng) -> (x1, x2)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from clipica.errors import InputError

__all__ = ["TrainConfig", "TrainedEncoders", "train_contrastive", "symmetric_infonce", "LOSSES"]

LOSSES = ("clip", "l1", "sql2")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one contrastive training run.

    loss : "clip" | "l1" | "sql2" (see the module docstring).
    encoding_dim : output size of each encoder.
    hidden_dim, n_hidden : width and number of hidden layers of each MLP encoder.
    batch_size, steps, lr : Adam on fresh batches; the learning rate decays
        with a cosine schedule to 5 % of ``lr`` over ``steps``.
    temperature : logits are similarity / temperature.
    device : "auto" (CUDA when available, else CPU), "cpu" or "cuda".
    seed : seeds the encoders' initialisation and the training stream.
    cpu_threads : torch intra-op threads while training on a CPU (restored
        afterwards). These MLPs are far too small to gain from threads, and on a
        shared machine extra threads make every step several times slower;
        None leaves torch's setting alone.
    """

    loss: str = "sql2"
    encoding_dim: int = 5
    hidden_dim: int = 128
    n_hidden: int = 3
    batch_size: int = 512
    steps: int = 2000
    lr: float = 1e-3
    temperature: float = 1.0
    device: str = "auto"
    seed: int = 0
    cpu_threads: int | None = 1

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise InputError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}.")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}.")
        for name in ("encoding_dim", "hidden_dim", "batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.steps < 0 or self.n_hidden < 0:
            raise InputError("steps and n_hidden must be >= 0.")
        if self.temperature <= 0 or self.lr <= 0:
            raise InputError("temperature and lr must be > 0.")


def _resolve_device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device='cuda' was requested but CUDA is not available; use device='cpu'.")
    return torch.device(device)


def _init_ensemble(generators: list, dims: list[int]) -> tuple[list, list]:
    """Weights (E, d_in, d_out) and biases (E, 1, d_out), initialised like torch.nn.Linear.

    Member i draws from ``generators[i]`` only, so its initialisation depends
    on its own seed and not on which other runs share the ensemble.
    """
    import torch

    weights, biases = [], []
    for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
        bound = 1.0 / np.sqrt(d_in)
        w = torch.stack([(torch.rand(d_in, d_out, generator=g) * 2 - 1) * bound
                         for g in generators])
        b = torch.stack([(torch.rand(1, d_out, generator=g) * 2 - 1) * bound
                         for g in generators])
        weights.append(torch.nn.Parameter(w))
        biases.append(torch.nn.Parameter(b))
    return weights, biases


def _forward(x, weights, biases):
    """Ensemble MLP: x (E, B, d_in) -> (E, B, d_out); leaky-ReLU(0.2) between layers."""
    import torch
    import torch.nn.functional as F

    h = x
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        h = torch.baddbmm(b, h, w)
        if i < len(weights) - 1:
            h = F.leaky_relu(h, 0.2)
    return h


def _head(h, loss: str):
    import torch.nn.functional as F

    if loss == "clip":
        return F.normalize(h, dim=-1)
    if loss == "l1":
        return h.tanh()
    return h


def _logits(a, b, loss: str, temperature: float):
    """Similarity of every row of ``a`` with every row of ``b``: (E, B, k) x (E, B, k) -> (E, B, B)."""
    import torch

    if loss == "clip":
        sim = a @ b.transpose(1, 2)
    elif loss == "l1":
        sim = -torch.cdist(a, b, p=1.0)
    else:
        # |a|^2 + |b|^2 - 2 a.b: exact enough and far faster than cdist on CPU
        sim = -((a * a).sum(-1, keepdim=True) + (b * b).sum(-1)[:, None, :]
                - 2.0 * a @ b.transpose(1, 2))
    return sim / temperature


def symmetric_infonce(a, b, loss: str, temperature: float):
    """CLIP's symmetric in-batch InfoNCE, one value per ensemble member.

    ``a``, ``b``: encoded batches of shape (E, n, k) (or (n, k) for one member);
    row i of ``a`` and row i of ``b`` are a positive pair, every other row of
    the *other* modality is a negative. Returns a tensor of shape (E,) (or a scalar).
    """
    import torch
    import torch.nn.functional as F

    single = a.dim() == 2
    if single:
        a, b = a[None], b[None]
    e, n, _ = a.shape
    logits = _logits(a, b, loss, temperature)
    target = torch.arange(n, device=a.device).repeat(e)
    l12 = F.cross_entropy(logits.reshape(e * n, n), target, reduction="none").reshape(e, n)
    l21 = F.cross_entropy(logits.transpose(1, 2).reshape(e * n, n), target,
                          reduction="none").reshape(e, n)
    out = 0.5 * (l12.mean(1) + l21.mean(1))
    return out[0] if single else out


def _np_head(h: np.ndarray, loss: str) -> np.ndarray:
    if loss == "clip":
        return h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)
    if loss == "l1":
        return np.tanh(h)
    return h


@dataclass
class TrainedEncoders:
    """Two trained encoders as plain numpy weights (one ensemble member).

    ``layers[m]`` is a list of ``(W, b)`` with W of shape (d_in, d_out) for
    modality m in {1, 2}; :meth:`encode` maps numpy observations to numpy codes.
    """

    layers: dict
    config: TrainConfig
    in_mean: tuple
    in_std: tuple
    losses: list

    def encode(self, x: np.ndarray, modality: int = 1) -> np.ndarray:
        """Encode observations ``x`` of shape (n, dim_m) -> codes (n, encoding_dim), float64.

        The output goes through the same head as in training (L2-normalised for
        "clip", tanh box for "l1", unconstrained for "sql2").
        """
        if modality not in (1, 2):
            raise InputError(f"modality must be 1 or 2, got {modality!r}.")
        x = np.asarray(x, dtype=np.float64)
        layers = self.layers[modality]
        if x.ndim != 2 or x.shape[1] != layers[0][0].shape[0]:
            raise InputError(f"expected observations of shape (n, {layers[0][0].shape[0]}), "
                             f"got {x.shape}.")
        h = (x - self.in_mean[modality - 1]) / self.in_std[modality - 1]
        for i, (w, b) in enumerate(layers):
            h = h @ w + b
            if i < len(layers) - 1:
                h = np.where(h >= 0, h, 0.2 * h)
        return _np_head(h, self.config.loss)

    def describe(self) -> dict:
        tail = self.losses[-50:]
        return {"config": asdict(self.config),
                "final_loss": float(np.mean(tail)) if tail else None}


Sampler = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def train_contrastive(samplers: Sampler | Sequence[Sampler], in_dims: tuple[int, int],
                      cfg: TrainConfig, *, seeds: Sequence[int] | None = None,
                      progress: bool = False, desc: str = "train"):
    """Train pairs of encoders with symmetric InfoNCE on fresh batches.

    Several independent runs (one per sampler) are trained at once as an
    ensemble: every layer is a batched matrix product over the members, which
    costs little more than one run on a CPU where the per-step overhead
    dominates. The members share no parameters and the loss is the sum of the
    members' losses, so with Adam each member follows exactly its own run.

    Parameters
    ----------
    samplers : one ``sampler(n, rng) -> (x1, x2)`` or a sequence of them (one per
        member); x1 of shape (n, in_dims[0]) and x2 of shape (n, in_dims[1]),
        row i of x1 and row i of x2 a positive pair.
    in_dims : input dimensions of the two encoders.
    cfg : the training configuration (shared by the members).
    seeds : one seed per member (initialisation and training stream); default
        ``cfg.seed + i``.
    progress : show a tqdm bar.

    Returns
    -------
    TrainedEncoders (one sampler given) or a list of them (a sequence given),
    with the loss of every step recorded.
    """
    import torch

    single = callable(samplers)
    samplers = [samplers] if single else list(samplers)
    e = len(samplers)
    if e == 0:
        raise InputError("train_contrastive needs at least one sampler.")
    seeds = [cfg.seed + i for i in range(e)] if seeds is None else [int(s) for s in seeds]
    if len(seeds) != e:
        raise InputError(f"got {e} samplers but {len(seeds)} seeds.")
    device = _resolve_device(cfg.device)
    threads = torch.get_num_threads()
    if device.type == "cpu" and cfg.cpu_threads is not None:
        torch.set_num_threads(int(cfg.cpu_threads))
    try:
        return _train(torch, samplers, in_dims, cfg, seeds, device, progress, desc, single)
    finally:
        torch.set_num_threads(threads)


def _train(torch, samplers, in_dims, cfg, seeds, device, progress, desc, single):
    from tqdm.auto import tqdm

    e = len(samplers)
    gens = [torch.Generator().manual_seed(int(s) * 1_000_003 + 7005) for s in seeds]
    params = {}
    for m, d_in in ((1, in_dims[0]), (2, in_dims[1])):
        dims = [d_in] + [cfg.hidden_dim] * cfg.n_hidden + [cfg.encoding_dim]
        params[m] = _init_ensemble(gens, dims)
    rngs = [np.random.default_rng([s, 7004]) for s in seeds]
    # inputs are standardised with the statistics of one large draw: the
    # mixings' output scale is arbitrary and would otherwise set the step size
    stats = []
    for sampler, rng in zip(samplers, rngs, strict=True):
        x1, x2 = sampler(8192, rng)
        stats.append((x1.mean(0), x1.std(0) + 1e-8, x2.mean(0), x2.std(0) + 1e-8))
    mu1 = np.stack([s[0] for s in stats])[:, None, :]
    sd1 = np.stack([s[1] for s in stats])[:, None, :]
    mu2 = np.stack([s[2] for s in stats])[:, None, :]
    sd2 = np.stack([s[3] for s in stats])[:, None, :]
    for m in (1, 2):
        for p in params[m][0] + params[m][1]:
            p.data = p.data.to(device)
    all_params = [p for m in (1, 2) for p in params[m][0] + params[m][1]]
    opt = torch.optim.Adam(all_params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.steps, 1),
                                                       eta_min=0.05 * cfg.lr)
    losses = np.zeros((cfg.steps, e))
    # draw the stream in chunks of many steps: one large numpy call per member
    # is far cheaper than one small call per member and step
    chunk = max(1, min(cfg.steps, 65536 // cfg.batch_size))
    bar = tqdm(range(cfg.steps), desc=desc, disable=not progress, leave=False, mininterval=1.0)
    for step in bar:
        k = step % chunk
        if k == 0:
            n_draw = min(chunk, cfg.steps - step) * cfg.batch_size
            drawn = [sampler(n_draw, rng) for sampler, rng in zip(samplers, rngs, strict=True)]
            x1_all = torch.as_tensor((np.stack([d[0] for d in drawn]) - mu1) / sd1,
                                     dtype=torch.float32, device=device)
            x2_all = torch.as_tensor((np.stack([d[1] for d in drawn]) - mu2) / sd2,
                                     dtype=torch.float32, device=device)
            del drawn
        rows = slice(k * cfg.batch_size, (k + 1) * cfg.batch_size)
        za = _head(_forward(x1_all[:, rows], *params[1]), cfg.loss)
        zb = _head(_forward(x2_all[:, rows], *params[2]), cfg.loss)
        member_loss = symmetric_infonce(za, zb, cfg.loss, cfg.temperature)
        opt.zero_grad(set_to_none=True)
        member_loss.sum().backward()
        opt.step()
        sched.step()
        losses[step] = member_loss.detach().cpu().numpy()
    out = []
    for i in range(e):
        layers = {m: [(w.detach()[i].cpu().numpy().astype(np.float64),
                       b.detach()[i, 0].cpu().numpy().astype(np.float64))
                      for w, b in zip(*params[m], strict=True)] for m in (1, 2)}
        member_cfg = replace(cfg, seed=seeds[i])
        out.append(TrainedEncoders(layers, member_cfg, (stats[i][0], stats[i][2]),
                                   (stats[i][1], stats[i][3]), losses[:, i].tolist()))
    return out[0] if single else out
