"""``clipica demo``: the whole method, offline, on the built-in default.

synthetic faces → ``tiny-faces`` (trained and cached on first use) → extraction
→ stability sweep over K → ICA → probes with baselines and ground-truth metrics →
component naming → selectivity of every attribute's component → traversals of the
strongest components → ``report.html`` and ``summary.json``.

It is ``clipica run`` (:func:`clipica.pipeline.run`) with the built-in default's
arguments, so the folder is a run folder (:mod:`clipica.pipeline.artifacts`) a user can go on
from with any command or a notebook::

    DIR/store/            clipica extract --model tiny-faces --data synthetic-faces:N --out DIR/store
    DIR/stability/        clipica stability DIR/store --k-grid ... --out DIR/stability (the sweep and K)
    DIR/ica/              clipica ica DIR/store -k auto --out DIR/ica
    DIR/probe/            clipica probe DIR/store --ica DIR/ica --out DIR/probe
    DIR/ica/naming/       clipica name DIR/store --ica DIR/ica
    DIR/traversals/       clipica intervene DIR/store --ica DIR/ica --component I --out DIR/traversals/component_II.png
    DIR/report.html       clipica report DIR/store --ica DIR/ica --out DIR
    DIR/summary.json      the headline numbers and the wall time of each stage

The commands and the pipeline call the same stages, so the artifacts are what the
commands write; a rerun reuses every stage whose inputs did not change.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from clipica.errors import InputError

#: the attributes shown as traversals (one hair colour stands for the four)
TRAVERSAL_ATTRIBUTES = ("Smiling", "Eyeglasses", "Blond_Hair")


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and choices of one demo run; recorded in ``summary.json``.

    n_rows : synthetic faces embedded.  k_grid : candidate numbers of components.
    stability_threshold / restarts : the K rule, :func:`clipica.decompositions.stability.choose_k` (the
    largest K with at least 90% of its components at or above the threshold in stability
    over bootstrap refits).
    traversal_rows : source rows per traversal grid.  decoder_epochs : None = the
    decoder's default budget.  tiny_steps : training steps if the model is not cached.
    """

    n_rows: int = 20000
    k_grid: tuple[int, ...] = (4, 8, 12, 16, 24, 32)
    stability_threshold: float = 0.8
    restarts: int = 5
    sweep_rows: int = 20000
    seed: int = 0
    batch_size: int = 256
    traversal_attributes: tuple[str, ...] = TRAVERSAL_ATTRIBUTES
    traversal_rows: int = 5
    decoder_epochs: int | None = None
    tiny_steps: int | None = None
    model: str = "tiny-faces"

    @classmethod
    def quick(cls, **overrides: Any) -> DemoConfig:
        """A few thousand rows and a short decoder: about a minute with a cached model."""
        base = dict(n_rows=3000, k_grid=(4, 8, 12, 16), restarts=3, sweep_rows=3000,
                    traversal_rows=4, decoder_epochs=6)
        base.update(overrides)
        return cls(**base)


def run_config(cfg: DemoConfig) -> Any:
    """The :class:`clipica.pipeline.RunConfig` of a demo: ``clipica run`` on the built-in default."""
    from clipica.data.synthetic_faces import SHARED_COLUMNS
    from clipica.pipeline import RunConfig

    return RunConfig(
        model=cfg.model, data=f"synthetic-faces:{cfg.n_rows}", k="auto", k_grid=tuple(cfg.k_grid),
        restarts=cfg.restarts, sweep_rows=cfg.sweep_rows,
        stability_threshold=cfg.stability_threshold, seed=cfg.seed, batch_size=cfg.batch_size,
        attributes=tuple(SHARED_COLUMNS), traversal_attributes=tuple(cfg.traversal_attributes),
        traversal_rows=cfg.traversal_rows, decoder_epochs=cfg.decoder_epochs,
        tiny_steps=cfg.tiny_steps)


def run_demo(
    out: str | os.PathLike,
    *,
    quick: bool = False,
    config: DemoConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> dict:
    """Run the whole method into ``out`` and return the summary (also ``out/summary.json``).

    This is :func:`clipica.pipeline.run` with :func:`run_config`: rerunning on the same
    folder reuses every finished stage whose inputs did not change (the log says
    "reused"). A store extracted with other settings (e.g. another row count) is refused
    unless ``overwrite``.
    """
    from clipica.pipeline import run

    cfg = config or (DemoConfig.quick() if quick else DemoConfig())
    if cfg.n_rows < 200:
        raise InputError(f"the demo needs at least 200 rows to probe anything, got {cfg.n_rows}")
    summary = run(run_config(cfg), out, progress=progress, overwrite=overwrite, prefix="clipica demo")
    summary["demo_config"] = asdict(cfg)
    return summary


__all__ = ["DemoConfig", "TRAVERSAL_ATTRIBUTES", "run_config", "run_demo"]
