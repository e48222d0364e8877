"""Identifiability simulations with ground truth (Daunhawer et al. 2023, Liu et al. 2024).

>>> from clipica.simulate import run_experiment, summary_table
>>> df = run_experiment("partial-causal", preset="test", seeds=1, settings=["convex"])
>>> print(summary_table(df))

Pieces, usable on their own: latent models (:mod:`.latents`), frozen
invertible mixings (:mod:`.mixing`), contrastive training (:mod:`.train`,
torch), scores (:mod:`.evaluate`), experiment tables (:mod:`.experiments`).
This module imports numpy only; torch, sklearn and pandas load when used.
"""

from __future__ import annotations

from clipica.simulate.experiments import (
    EXPERIMENTS,
    PRESETS,
    SETTINGS,
    Preset,
    run_experiment,
    summary_table,
    write_results,
)
from clipica.simulate.latents import (
    MultimodalLatents,
    PartialCausalLatents,
    sample_vmf,
    vmf_mean_resultant_length,
    wishart_covariance,
)
from clipica.simulate.mixing import InvertibleMLP, make_mixing, make_mixings
from clipica.simulate.train import TrainConfig, TrainedEncoders, train_contrastive

__all__ = [
    "EXPERIMENTS",
    "PRESETS",
    "SETTINGS",
    "InvertibleMLP",
    "MultimodalLatents",
    "PartialCausalLatents",
    "Preset",
    "TrainConfig",
    "TrainedEncoders",
    "make_mixing",
    "make_mixings",
    "run_experiment",
    "sample_vmf",
    "summary_table",
    "train_contrastive",
    "vmf_mean_resultant_length",
    "wishart_covariance",
    "write_results",
]
