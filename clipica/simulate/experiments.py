"""The two papers' numerical experiments as tables: settings x seeds -> records.

``run_experiment("multimodal" | "partial-causal", preset=..., seeds=...)``
returns a pandas DataFrame with one row per (setting, seed): ``experiment``,
``setting``, ``seed``, the setting's parameters, and every score as a flat
numeric column (``r2_linear_content``, ``r2_nonlinear_content``, ...,
``r2_linear_coupled``, ``mcc_before_ica``, ``mcc_after_ica``).
Also per record: ``final_train_loss`` (mean InfoNCE of the last 50 steps),
``train_seconds`` (wall time of the ensemble the run was trained in, divided
by its members) and, for partial-causal, ``ica_converged`` (1.0 / 0.0).
Multimodal scores use the modality-1 encoder against c, s, s_tilde, m1, m2;
partial-causal scores use the image-side encoder against z_x ("coupled"),
z_t ("coupled_text"), m_x and m_t.
:func:`write_results` writes ``results.json``, ``results.csv``,
``results.md`` (mean +- std over seeds) and ``run.json``.

All runs of one experiment that share input and output sizes and the loss
are trained together as one ensemble (see :func:`clipica.simulate.train.train_contrastive`),
which is what makes the ``quick`` preset fit in minutes on two CPU cores.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from clipica.errors import InputError
from clipica.simulate.latents import MultimodalLatents, PartialCausalLatents
from clipica.simulate.mixing import make_mixings
from clipica.simulate.train import TrainConfig, train_contrastive

__all__ = ["EXPERIMENTS", "PRESETS", "Preset", "run_experiment", "summary_table",
           "write_results", "SETTINGS"]


@dataclass(frozen=True)
class Preset:
    """Sizes of one experiment run (shared by every setting).

    steps, batch_size, lr, hidden_dim, n_hidden : training (see TrainConfig).
    n_val, n_test : sizes of the fresh validation and test draws.
    n_landmarks : Nystroem landmarks of the kernel-ridge R^2.
    mixing_weights : "orthogonal" or "gaussian" (see clipica.simulate.mixing.make_mixing).
    mixing_layers : number of square layers in each mixing.
    temperature_sphere, temperature_convex : InfoNCE temperature of the
        partial-causal runs; None = the value matched to the generative model
        (1/kappa for the vMF, the Laplace scale for the box), where the
        critic equals the true log-density ratio.
    """

    steps: int
    batch_size: int
    lr: float
    hidden_dim: int
    n_hidden: int
    n_val: int
    n_test: int
    n_landmarks: int
    mixing_weights: str
    mixing_layers: int = 3
    temperature_sphere: float | None = None
    temperature_convex: float | None = None


_QUICK = Preset(steps=2500, batch_size=128, lr=2e-3, hidden_dim=64, n_hidden=3,
                n_val=1500, n_test=1500, n_landmarks=300, mixing_weights="orthogonal",
                temperature_sphere=0.2, temperature_convex=0.3)
_PAPER = Preset(steps=300_000, batch_size=6144, lr=1e-4, hidden_dim=256, n_hidden=6,
                n_val=10_000, n_test=10_000, n_landmarks=1000, mixing_weights="gaussian")
_TEST = Preset(steps=150, batch_size=64, lr=3e-3, hidden_dim=32, n_hidden=2,
               n_val=300, n_test=300, n_landmarks=100, mixing_weights="orthogonal",
               temperature_sphere=0.2, temperature_convex=0.3)

# preset name -> experiment -> sizes
PRESETS: dict[str, dict[str, Preset]] = {
    # seconds: for unit tests and notebooks; the numbers are not meaningful
    "test": {"multimodal": _TEST, "partial-causal": _TEST},
    # minutes on two CPU cores (docs/identifiability.md shows what it measures);
    # the squared-L2 loss tolerated, and needed, a larger step than the sphere
    "quick": {"multimodal": replace(_QUICK, lr=5e-3), "partial-causal": _QUICK},
    # the original sizes (batch 6144, 300k steps of Adam 1e-4, 7-layer encoders,
    # Gaussian well-conditioned mixings, matched temperatures): hours, for a GPU
    "paper": {"multimodal": _PAPER, "partial-causal": _PAPER},
}

# setting name -> (latent-model options, training options)
MULTIMODAL_SETTINGS: dict[str, tuple[dict, dict]] = {
    "independent": ({}, {}),
    "statistical-dependence": ({"dependent": True}, {}),
    "content-dependent-style": ({"content_dependent_style": True}, {}),
    "style-change-0.75": ({"p_change": 0.75}, {}),
    "encoding-larger": ({}, {"encoding_dim": "content+style"}),
}

PARTIAL_CAUSAL_SETTINGS: dict[str, tuple[dict, dict]] = {
    "sphere": ({"geometry": "sphere", "prior": "uniform"}, {}),
    "sphere-independent-prior": ({"geometry": "sphere", "prior": "independent"}, {}),
    "sphere-nonuniform-prior": ({"geometry": "sphere", "prior": "cap"}, {}),
    "sphere-gaussian-conditional": ({"geometry": "sphere", "prior": "independent",
                                     "conditional": "gaussian"}, {}),
    "sphere-dependent": ({"geometry": "sphere", "prior": "dependent"}, {}),
    "convex": ({"geometry": "convex", "prior": "uniform"}, {}),
    "convex-nonuniform-prior": ({"geometry": "convex", "prior": "nonuniform"}, {}),
    "convex-gaussian-conditional": ({"geometry": "convex", "prior": "uniform",
                                     "conditional": "gaussian"}, {}),
    "convex-dependent": ({"geometry": "convex", "prior": "dependent"}, {}),
}

SETTINGS = {"multimodal": MULTIMODAL_SETTINGS, "partial-causal": PARTIAL_CAUSAL_SETTINGS}
EXPERIMENTS = tuple(SETTINGS)


def _check_choice(kind: str, value, allowed) -> None:
    if value not in allowed:
        raise InputError(f"unknown {kind} {value!r}; choose one of: {', '.join(allowed)}.")


def _resolve_preset(experiment: str, preset, overrides: dict | None) -> Preset:
    if isinstance(preset, Preset):
        base = preset
    else:
        _check_choice("preset", preset, list(PRESETS))
        base = PRESETS[preset][experiment]
    if overrides:
        known = {f.name for f in fields(Preset)}
        bad = sorted(set(overrides) - known)
        if bad:
            raise InputError(f"unknown preset override(s) {bad}; allowed: {sorted(known)}.")
        base = replace(base, **overrides)
    return base


# ---------------------------------------------------------------- per-setting model

@dataclass
class _Run:
    setting: str
    seed: int
    latents: object
    structure: dict
    mixings: tuple
    train: TrainConfig

    def sampler(self, n: int, rng: np.random.Generator):
        d = self.latents.sample(n, rng, self.structure)
        return self.mixings[0](d["z1"]), self.mixings[1](d["z2"])


def _resolve_settings(experiment: str, settings) -> dict[str, tuple[dict, dict]]:
    """Names of built-in settings, or a mapping name -> latent-model options."""
    table = SETTINGS[experiment]
    if settings is None:
        return dict(table)
    if isinstance(settings, str):
        settings = [settings]
    if isinstance(settings, dict):
        model = MultimodalLatents if experiment == "multimodal" else PartialCausalLatents
        allowed = {f.name for f in fields(model)} - {"structure_seed"}
        out = {}
        for name, opts in settings.items():
            opts = dict(opts)
            enc = opts.pop("encoding_dim", None)
            bad = sorted(set(opts) - allowed)
            if bad:
                raise InputError(f"setting {name!r}: unknown option(s) {bad}; "
                                 f"allowed: {sorted(allowed)} and encoding_dim.")
            out[str(name)] = (opts, {} if enc is None else {"encoding_dim": enc})
        if not out:
            raise InputError("settings is empty.")
        return out
    names = list(settings)
    if not names:
        raise InputError("settings is empty.")
    for n in names:
        _check_choice(f"{experiment} setting", n, list(table))
    return {n: table[n] for n in names}


def _build_runs(experiment: str, specs: dict[str, tuple[dict, dict]], seeds: list[int],
                p: Preset, device: str) -> list[_Run]:
    runs = []
    for name, (lat_opts, train_opts) in specs.items():
        for seed in seeds:
            if experiment == "multimodal":
                lat = MultimodalLatents(structure_seed=seed, **lat_opts)
                enc = train_opts.get("encoding_dim", lat.content_dim)
                if enc == "content+style":
                    enc = lat.content_dim + lat.style_dim
                # Daunhawer et al.: squared-L2 InfoNCE, temperature 1, unconstrained output
                cfg = TrainConfig(loss="sql2", encoding_dim=enc, temperature=1.0)
            else:
                lat = PartialCausalLatents(structure_seed=seed, **lat_opts)
                # quick/test use softer temperatures than the matched ones: in a
                # short run the sharp matched temperature (0.05 on the sphere)
                # left about one run in three in a folded local minimum (R^2 ~ 0.64)
                enc = int(train_opts.get("encoding_dim", lat.coupled_dim))
                if lat.geometry == "sphere":
                    tau = p.temperature_sphere or 1.0 / lat.kappa
                    cfg = TrainConfig(loss="clip", encoding_dim=enc, temperature=tau)
                else:
                    tau = p.temperature_convex or lat.laplace_scale
                    cfg = TrainConfig(loss="l1", encoding_dim=enc, temperature=tau)
            cfg = replace(cfg, hidden_dim=p.hidden_dim, n_hidden=p.n_hidden,
                          batch_size=p.batch_size, steps=p.steps, lr=p.lr, device=device,
                          seed=seed)
            mix = make_mixings(lat.view_dims, n_layers=p.mixing_layers, seed=seed,
                               weights=p.mixing_weights)
            runs.append(_Run(name, seed, lat, lat.structure(), mix, cfg))
    return runs


def _group_key(run: _Run):
    c = run.train
    return (run.latents.view_dims, c.encoding_dim, c.loss, c.temperature)


def _evaluate(experiment: str, run: _Run, enc, p: Preset) -> dict:
    from clipica.simulate.evaluate import block_r2, ica_mcc

    # fresh draws from their own stream: independent of training and of each other
    rng = np.random.default_rng([run.seed, 9001])
    dv = run.latents.sample(p.n_val, rng, run.structure)
    dt = run.latents.sample(p.n_test, rng, run.structure)
    hv = enc.encode(run.mixings[0](dv["z1"]), modality=1)
    ht = enc.encode(run.mixings[0](dt["z1"]), modality=1)
    if experiment == "multimodal":
        names = ("content", "style", "style_tilde", "m1", "m2")
        return block_r2(hv, ht, {b: dv[b] for b in names}, {b: dt[b] for b in names},
                        n_landmarks=p.n_landmarks, random_state=run.seed)
    names = {"coupled": "z_x", "coupled_text": "z_t", "mx": "m_x", "mt": "m_t"}
    out = block_r2(hv, ht, {k: dv[v] for k, v in names.items()},
                   {k: dt[v] for k, v in names.items()}, n_landmarks=p.n_landmarks,
                   random_state=run.seed)
    out.update(ica_mcc(hv, ht, dt["z_x"], random_state=run.seed))
    return out


def _record(experiment: str, run: _Run, enc, scores: dict, seconds: float) -> dict:
    lat = asdict(run.latents)
    lat.pop("structure_seed", None)
    rec = {"experiment": experiment, "setting": run.setting, "seed": run.seed}
    for k, v in lat.items():
        rec[k] = v
    if experiment == "partial-causal":
        rec["conditional"] = run.latents.conditional_name
    rec.update({"encoding_dim": run.train.encoding_dim, "loss": run.train.loss,
                "temperature": run.train.temperature,
                "final_train_loss": float(np.mean(enc.losses[-50:]))})
    rec.update(scores)
    rec["train_seconds"] = seconds
    return rec


def run_experiment(experiment: str, preset="quick", seeds=3, *, settings=None,
                   overrides: dict | None = None, device: str = "auto",
                   progress: bool = False):
    """Run one of the papers' experiments and return its records as a DataFrame.

    Parameters
    ----------
    experiment : "multimodal" (Daunhawer et al.) or "partial-causal" (Liu et al.).
    preset : "test" (seconds), "quick" (minutes on a CPU), "paper" (original
        sizes, for a GPU), or a :class:`Preset`.
    seeds : number of seeds (0, 1, ..., seeds-1) or an explicit list.
    settings : subset of the experiment's setting names (default: all, see
        ``SETTINGS``), or a dict of custom settings, name -> options of the
        latent model (:class:`MultimodalLatents` / :class:`PartialCausalLatents`
        fields) plus an optional ``encoding_dim``, e.g.
        ``{"half-change": {"p_change": 0.5, "content_dim": 3}}``.
    overrides : replace fields of the preset, e.g. ``{"steps": 500}``.
    device : "auto", "cpu" or "cuda" for training.
    progress : tqdm bars.

    Returns
    -------
    pandas.DataFrame, one row per (setting, seed); score columns as in the module docstring.
    """

    _check_choice("experiment", experiment, list(EXPERIMENTS))
    p = _resolve_preset(experiment, preset, overrides)
    seed_list = list(range(int(seeds))) if np.isscalar(seeds) else [int(s) for s in seeds]
    if not seed_list:
        raise InputError("seeds must be >= 1 (or a non-empty list).")
    specs = _resolve_settings(experiment, settings)
    from threadpoolctl import threadpool_limits

    runs = _build_runs(experiment, specs, seed_list, p, device)
    # the arrays are small: one BLAS thread is fastest and does not fight
    # other work for a shared CPU
    with threadpool_limits(limits=1):
        df = _run_groups(experiment, runs, p, progress)
    df.attrs["preset"] = asdict(p)
    return df


def _run_groups(experiment: str, runs: list[_Run], p: Preset, progress: bool):
    import pandas as pd
    from tqdm.auto import tqdm

    groups: dict = {}
    for r in runs:
        groups.setdefault(_group_key(r), []).append(r)
    records: dict[int, dict] = {}
    for gi, group in enumerate(groups.values()):
        t0 = time.perf_counter()
        encs = train_contrastive([r.sampler for r in group], group[0].latents.view_dims,
                                 group[0].train, seeds=[r.seed for r in group],
                                 progress=progress,
                                 desc=f"{experiment} group {gi + 1}/{len(groups)}")
        seconds = (time.perf_counter() - t0) / len(group)
        for r, enc in tqdm(list(zip(group, encs, strict=True)), desc="evaluate",
                           disable=not progress, leave=False):
            scores = _evaluate(experiment, r, enc, p)
            records[id(r)] = _record(experiment, r, enc, scores, seconds)
    return pd.DataFrame([records[id(r)] for r in runs])


# ---------------------------------------------------------------- output

_SCORE_PREFIXES = ("r2_", "mcc_")


def score_columns(df) -> list[str]:
    return [c for c in df.columns if c.startswith(_SCORE_PREFIXES)]


def summary_table(df, columns: list[str] | None = None) -> str:
    """Markdown table: one row per setting, ``mean ± std`` over seeds for each score."""
    cols = score_columns(df) if columns is None else columns
    order = list(dict.fromkeys(df["setting"]))
    g = df.groupby("setting", sort=False)
    mean, std, n = g[cols].mean(), g[cols].std(ddof=1), g.size()
    head = ["setting", "seeds"] + cols
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in order:
        cells = [s, str(int(n[s]))]
        for c in cols:
            m, sd = mean.loc[s, c], std.loc[s, c]
            if np.isnan(m):
                cells.append("–")
            elif np.isnan(sd):
                cells.append(f"{m:.3f}")
            else:
                cells.append(f"{m:.3f} ± {sd:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(df, out_dir, *, meta: dict | None = None) -> dict:
    """Write ``results.json`` (list of flat records), ``results.csv``, ``results.md``
    and ``run.json`` (preset, timings, versions) into ``out_dir``. Returns the paths."""
    import json
    from pathlib import Path

    from clipica._atomic import atomic_write_json, atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = json.loads(df.to_json(orient="records"))  # numpy scalars -> plain JSON
    paths = {"json": out / "results.json", "csv": out / "results.csv",
             "md": out / "results.md", "run": out / "run.json"}
    atomic_write_json(paths["json"], records)
    atomic_write_text(paths["csv"], df.to_csv(index=False))
    experiment = str(df["experiment"].iloc[0]) if len(df) else ""
    title = f"# clipica simulate {experiment}\n\nmean ± std over seeds; R² on a fresh test draw.\n\n"
    atomic_write_text(paths["md"], title + summary_table(df))
    atomic_write_json(paths["run"], {"preset": df.attrs.get("preset"), **(meta or {})})
    return {k: str(v) for k, v in paths.items()}
