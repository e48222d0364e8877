"""``clipica run``: the whole chain for any model and dataset, as one resumable command.

model (tiny-faces only: trained once when missing) → extract → stability sweep and K
→ fit → probe (baselines, metrics) → names → selectivity → traversals → report + summary.

Every stage writes its typed result into the run folder (:class:`clipica.pipeline.artifacts.RunFolder`)
with the fingerprints of its inputs. Rerunning the same command after an interruption
(even ``kill -9``) resumes: a stage whose valid output exists is reused (the log says
"reused"), an interrupted extraction continues from its last commit, and a stage whose
inputs changed (another store, another K) recomputes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clipica.embeddings.manifest import data_spec, model_entry
from clipica.embeddings.ray_engine import engine_from_options
from clipica.errors import InputError
from clipica.pipeline import analyses, artifacts, blocks, fit
from clipica.pipeline import summary as summary_parts
from clipica.pipeline._log import ReuseCounter, StageLog
from clipica.pipeline.report import gather, prune_interventions, render, strongest_components

TINY = "tiny-faces"


@dataclass(frozen=True)
class RunConfig:
    """Everything ``clipica run`` needs; recorded in ``summary.json``.

    model, pretrained, data : the ``--model`` / ``--pretrained`` / ``--data`` specs.
    k : ``"auto"`` (the stability sweep over ``k_grid`` chooses, see
    :func:`clipica.decompositions.stability.choose_k`) or a number of components.
    restarts, sweep_rows, stability_threshold : the sweep's bootstrap fits per K, rows
    (seeded subsample above it) and the stability a component needs to count as stable.
    limit, split, batch_size, device, num_workers, preprocess, layer : extraction options
    (:func:`clipica.extract`; a ``layer`` other than "final" skips the naming stage: words and
    images meet only in the joint space). engine, address, workers, gpus_per_worker,
    cpus_per_worker : where extraction runs ("local" or "ray", see ``clipica extract``).
    attributes : attributes listed in the summary (None: every binary attribute probed).
    traversal_attributes : attributes whose best component is traversed (None: the
    ``n_traversals`` best-separated ones). traversal_rows : source rows per traversal.
    decoder, decoder_epochs : the decoded view of the traversals (None = its default budget).
    tiny_steps : training steps when ``tiny-faces`` must be trained first.
    compare, compare_quick : other decompositions fitted at the run's K and scored on the
    same rows (:mod:`clipica.probes.compare`), into ``RUN/compare``; None: no compare stage.
    """

    model: str
    data: str
    pretrained: str | None = None
    k: int | str = "auto"
    k_grid: tuple[int, ...] = (8, 16, 32, 64)
    restarts: int = 5
    sweep_rows: int = 20000
    stability_threshold: float = 0.8
    seed: int = 0
    batch_size: int = 64
    device: str = "cpu"
    limit: int | None = None
    split: str | None = None
    num_workers: int | None = None
    preprocess: str = "original"
    layer: str = "final"
    engine: str = "local"
    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float | None = None
    attributes: tuple[str, ...] | None = None
    traversal_attributes: tuple[str, ...] | None = None
    n_traversals: int = 3
    traversal_rows: int = 6
    decoder: bool = True
    decoder_epochs: int | None = None
    tiny_steps: int | None = None
    compare: tuple[str, ...] | None = None
    compare_quick: bool = False

    def validate(self) -> None:
        if self.k != "auto" and (not isinstance(self.k, int) or self.k < 1):
            raise InputError(f"k must be 'auto' or a positive integer, got {self.k!r}")
        if self.k == "auto" and (not self.k_grid or min(self.k_grid) < 2):
            raise InputError(f"k_grid values must be at least 2, got {list(self.k_grid)}")
        if self.restarts < 2:
            raise InputError(f"restarts must be at least 2 (the stability of one fit is undefined), got {self.restarts}")
        for name in ("batch_size", "traversal_rows", "sweep_rows"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit must be at least 1, got {self.limit}")


def _stage_names(cfg: RunConfig) -> list[str]:
    names = ["model"] if cfg.model == TINY else []
    names.append("extract")
    if cfg.k == "auto":
        names.append("stability")
    names += ["ica", "probe"] + (["naming"] if cfg.layer == "final" else []) + ["selectivity", "traversals"]
    return names + (["compare"] if cfg.compare else []) + ["report"]


def _source(store, store_dir: os.PathLike) -> dict:
    man = store.manifest
    return {"store": str(store_dir), "modality": "image", "model": model_entry(man)["spec"],
            "data": data_spec(man)}


def run(cfg: RunConfig, out: str | os.PathLike, *, progress: bool = True, overwrite: bool = False,
        prefix: str = "clipica run") -> dict:
    """Run every stage into the folder ``out`` and return the summary (also ``out/summary.json``).

    ``overwrite`` replaces a store in ``out/store`` that was extracted with other settings
    (otherwise refused, :class:`~clipica.errors.StoreMismatchError`).
    """
    cfg.validate()
    r = _Run(cfg, artifacts.RunFolder(out), progress=progress,
             log=StageLog(total=len(_stage_names(cfg)), quiet=not progress, prefix=prefix))
    r.rf.root.mkdir(parents=True, exist_ok=True)
    lock = run_lock(r.rf.root)
    try:
        return _run_stages(r, cfg, overwrite)
    finally:
        if lock is not None:
            lock.release()


#: the run folder's lock file: one ``clipica run`` writes a run folder at a time
RUN_LOCK = "run.lock"


def run_lock(root: os.PathLike):
    """The exclusive writer lock of the run folder ``root`` (``root/run.lock``), or None when
    the folder is read-only (no process can write it, so every stage must be reused).

    A second ``clipica run`` on the same folder is refused in one line naming the first
    (:class:`~clipica.errors.StoreLockedError`): without it, it would refit ``ica/`` under
    the first run's probe, which then fails on a "stale" result it did not cause.
    """
    import errno

    from clipica.embeddings import WriterLock

    try:
        return WriterLock(Path(root) / RUN_LOCK)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return None
        raise


def _run_stages(r: _Run, cfg: RunConfig, overwrite: bool) -> dict:
    model_eval = r.model() if cfg.model == TINY else None
    store, store_fp = r.extract(overwrite)
    k, rule, stability = r.choose_k(store, store_fp)
    ica = r.fit(store, store_fp, k, rule)
    probe, naming, selectivity, shared = r.analyses(store, ica, store_fp)
    traversed = r.traversals(store, ica, store_fp, probe)
    if cfg.compare:
        r.compare(store, store_fp, k)
    r.commands.append(f"clipica report {r.rf.store} --ica {r.rf.ica} --out {r.rf.root}")
    summary = build_summary(cfg, store, ica, r.rf, k=k, rule=rule, stability=stability, probe=probe,
                            naming=naming, selectivity=selectivity, attributes=shared,
                            model_eval=model_eval, store_fp=store_fp)
    summary["traversals"] = traversed
    summary["commands"] = r.commands
    return r.report(store, ica, store_fp, summary)


class _Run:
    """The stages of :func:`run`, in order, sharing the run folder, the log and the commands."""

    def __init__(self, cfg: RunConfig, rf: artifacts.RunFolder, *, progress: bool, log: StageLog):
        self.cfg, self.rf, self.progress, self.log = cfg, rf, progress, log
        self.commands: list[str] = []  # the equivalent commands, for the report

    def model(self) -> dict | None:
        cfg, log = self.cfg, self.log
        needs = fit.tiny_needs_training(cfg.pretrained)
        label = fit.tiny_weights_label(cfg.pretrained)
        what = (f"{TINY}: training it first ({fit.tiny_training_estimate(cfg.tiny_steps)})" if needs
                else f"{TINY} ({label})")
        with log.stage("model", what):
            if needs:
                fit.train_tiny_stage(cfg.tiny_steps, progress=self.progress)
                self.commands.append("clipica train-tiny")
            else:
                log.reuse(label)
            return fit.model_eval(cfg.pretrained)

    def extract(self, overwrite: bool):
        cfg, rf = self.cfg, self.rf
        pre = f" --pretrained {cfg.pretrained}" if cfg.pretrained else ""
        with self.log.stage("extract", f"{cfg.data} through {cfg.model} into {rf.store}"):
            cmd = (f"clipica extract --model {cfg.model}{pre} --data {cfg.data} --out {rf.store} "
                   f"--batch-size {cfg.batch_size}")
            cmd += (f" --limit {cfg.limit}" if cfg.limit else "") + (f" --split {cfg.split}" if cfg.split else "")
            cmd += f" --preprocess {cfg.preprocess}" if cfg.preprocess != "original" else ""
            cmd += f" --layer {cfg.layer}" if cfg.layer != "final" else ""
            cmd += f" --engine {cfg.engine}" if cfg.engine != "local" else ""
            self.commands.append(cmd)
            engine = engine_from_options(cfg.engine, address=cfg.address, workers=cfg.workers,
                                         gpus_per_worker=cfg.gpus_per_worker,
                                         cpus_per_worker=cfg.cpus_per_worker, device=cfg.device)
            store = fit.extract_stage(cfg.model, cfg.data, rf.store, log=self.log, pretrained=cfg.pretrained,
                                      batch_size=cfg.batch_size, device=cfg.device, limit=cfg.limit,
                                      split=cfg.split, num_workers=cfg.num_workers, overwrite=overwrite,
                                      progress=self.progress, preprocess=cfg.preprocess, layer=cfg.layer,
                                      engine=engine)
            return store, artifacts.store_fingerprint(store)

    def choose_k(self, store, store_fp: str) -> tuple[int, str, dict | None]:
        cfg, rf = self.cfg, self.rf
        if cfg.k != "auto":
            return int(cfg.k), "given (--k)", None
        params = fit.stability_params(cfg.k_grid, restarts=cfg.restarts, sweep_rows=cfg.sweep_rows,
                                      seed=cfg.seed, threshold=cfg.stability_threshold)
        with self.log.stage("stability", f"ICA restarts for K in {params['k_grid']}"):
            self.commands.append(
                f"clipica stability {rf.store} --k-grid {' '.join(map(str, params['k_grid']))} "
                f"--restarts {cfg.restarts} --rows {cfg.sweep_rows} --seed {cfg.seed} --out {rf.stability}")
            stability = fit.stability_stage(store, rf.stability, params, store_fp=store_fp, log=self.log,
                                            progress=self.progress)
        return int(stability["chosen_k"]), str(stability["rule"]), stability

    def fit(self, store, store_fp: str, k: int, rule: str):
        cfg, rf = self.cfg, self.rf
        params = fit.ica_params(k, seed=cfg.seed)
        with self.log.stage("ica", f"K = {k} ({rule})"):
            self.commands.append(f"clipica ica {rf.store} -k {'auto' if cfg.k == 'auto' else k} "
                                 f"--seed {cfg.seed} --out {rf.ica} --overwrite")
            return fit.fit_stage(store.image, rf.ica, params, store_fp=store_fp,
                                 source=_source(store, rf.store), log=self.log, progress=self.progress)

    def analyses(self, store, ica, store_fp: str):
        """The probe, naming and selectivity stages -> (probe, naming, selectivity, attributes)."""
        cfg, rf, log = self.cfg, self.rf, self.log
        inputs = {"store": str(rf.store), "ica": str(rf.ica)}
        with log.stage("probe", "every component against every attribute, next to PCA / raw / random rotation"):
            self.commands.append(f"clipica probe {rf.store} --ica {rf.ica} --out {rf.probe} "
                                 f"--seed {cfg.seed} --overwrite")
            probe = analyses.probe_stage(store, ica, rf.probe, analyses.probe_params(seed=cfg.seed),
                                         store_fp=store_fp, inputs={"ica": str(rf.ica)}, log=log,
                                         progress=self.progress)
        naming = None
        if cfg.layer == "final":
            with log.stage("naming", "top words at both poles of every component"):
                self.commands.append(f"clipica name {rf.store} --ica {rf.ica}")
                naming = analyses.name_stage(store, ica, rf.naming, analyses.naming_params(),
                                             store_fp=store_fp, inputs=inputs, log=log)
        else:
            log.note(f"naming skipped: the store is read at --layer {cfg.layer}, outside the joint "
                     "image-text space where the text encoder's words live")
        attrs = probe.get("attributes") or {}
        shared = [a for a in (cfg.attributes or attrs) if a in attrs]
        with log.stage("selectivity", "sweep each attribute's best component, watch every attribute probe"):
            best = {a: int(attrs[a]["best_component"]) for a in shared}
            selectivity = analyses.selectivity_stage(
                store, ica, rf.selectivity_json, best, store_fp=store_fp, seed=cfg.seed, log=log,
                probes_path=rf.ica / analyses.ATTRIBUTE_PROBES_JSON)
        return probe, naming, selectivity, shared

    def traversals(self, store, ica, store_fp: str, probe: dict) -> list[dict]:
        cfg, rf, log = self.cfg, self.rf, self.log
        inputs = {"store": str(rf.store), "ica": str(rf.ica)}
        targets = _traversal_targets(probe, cfg)
        # an older fit's traversals (a higher K, other data) would block the report on every rerun
        prune_interventions(rf.traversals, {"store": store_fp,
                                            "decomposition": artifacts.decomposition_fingerprint(ica)})
        with log.stage("traversals", f"decoded and retrieved traversals of components {[c for c, _ in targets]}"):
            traversed, n_reused = [], 0
            for i, (comp, attr) in enumerate(targets, 1):
                log.note(f"component {comp}" + (f" ({attr})" if attr else "") + f", {i}/{len(targets)}")
                png = rf.traversals / f"component_{comp:02d}.png"
                tparams = analyses.traversal_params(comp, rows=cfg.traversal_rows, seed=cfg.seed,
                                                    decoder=cfg.decoder, decoder_epochs=cfg.decoder_epochs)
                cmd = (f"clipica intervene {rf.store} --ica {rf.ica} --component {comp} --out {png} "
                       f"--rows {cfg.traversal_rows} --seed {cfg.seed}")
                cmd += "" if cfg.decoder_epochs is None else f" --decoder-epochs {cfg.decoder_epochs}"
                self.commands.append(cmd + ("" if cfg.decoder else " --no-decoder"))
                sub = ReuseCounter()
                analyses.traversal_stage(store, ica, png, tparams, store_fp=store_fp, decoder_dir=rf.decoder,
                                         probes_path=rf.ica / analyses.ATTRIBUTE_PROBES_JSON,
                                         inputs=inputs, log=sub, progress=self.progress)
                n_reused += sub.n
                traversed.append({"component": comp, "attribute": attr})
            if targets and n_reused == len(targets):
                log.reuse(f"{n_reused} traversals in {rf.traversals}")
        return traversed

    def compare(self, store, store_fp: str, k: int) -> None:
        cfg, rf = self.cfg, self.rf
        seeds = [cfg.seed + i for i in range(2 if cfg.compare_quick else 3)]
        cparams = blocks.compare_params(cfg.compare, k, seeds=seeds, quick=cfg.compare_quick)
        with self.log.stage("compare", f"{', '.join(cparams['methods'])} at K = {k} on the same rows"):
            self.commands.append(f"clipica compare {rf.store} --methods {','.join(cparams['methods'])} --k {k} "
                                 f"--seeds {','.join(map(str, seeds))} --out {rf.compare} --overwrite"
                                 + (" --quick" if cfg.compare_quick else ""))
            blocks.compare_stage(store, rf.compare, cparams, store_fp=store_fp, log=self.log,
                                 progress=self.progress)

    def report(self, store, ica, store_fp: str, summary: dict) -> dict:
        """Write summary.json and report.html; the summary's timings include the report's own."""
        rf, log = self.rf, self.log
        with log.stage("report", f"{rf.report}"):
            summary["timings"] = dict(log.timings)  # the report shows the stages before it
            summary["reused"] = list(log.reused)
            try:
                artifacts.save_result(rf.summary, summary, kind="summary", fingerprints=summary["fingerprints"])
            except OSError as exc:
                if not self._report_is_current(exc, summary):
                    raise
                log.reuse(f"{rf.report} (read-only folder: the report of these results is kept)")
                return summary
            results = gather(store, ica, rf.root, store_fp=store_fp, ica_dir=rf.ica, compute_missing=False)
            render(rf.root, results, store=store, ica_dir=rf.ica,
                   ica_meta=artifacts.read_json(rf.ica / "ica.json"), commands=self.commands)
        summary["timings"] = dict(log.timings)
        summary["timings"]["total"] = round(sum(log.timings.values()), 2)
        summary["reused"] = list(log.reused)
        artifacts.save_result(rf.summary, summary, kind="summary", fingerprints=summary["fingerprints"])
        return summary

    def _report_is_current(self, exc: OSError, summary: dict) -> bool:
        """True when ``exc`` says the run folder is read-only and it already holds the report
        and summary of these very results (every stage reused): a re-run only reads it."""
        import errno

        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM) or not self.rf.report.is_file():
            return False
        return artifacts.read_valid(self.rf.summary, "summary", summary["fingerprints"]) is not None \
            and set(self.log.reused) >= set(_stage_names(self.cfg)) - {"report"}


def _traversal_targets(probe: dict, cfg: RunConfig) -> list[tuple[int, str | None]]:
    """(component, attribute) pairs to traverse, without repeating a component."""
    attrs = probe.get("attributes") or {}
    if cfg.traversal_attributes is None:
        comps = strongest_components(probe, cfg.n_traversals)
        by_comp = {}
        for a in sorted(attrs, key=lambda a: -(attrs[a].get("best_auc") or 0.0)):
            by_comp.setdefault(int(attrs[a]["best_component"]), a)
        return [(c, by_comp.get(c)) for c in comps]
    out: list[tuple[int, str | None]] = []
    for a in cfg.traversal_attributes:
        entry = attrs.get(a)
        if entry is None or int(entry["best_component"]) in {c for c, _ in out}:
            continue
        out.append((int(entry["best_component"]), a))
    return out


def build_summary(cfg: RunConfig, store, ica, rf: artifacts.RunFolder, *, k: int, rule: str,
                  stability: dict | None, probe: dict, naming: dict | None, selectivity: dict,
                  attributes: Sequence[str], model_eval: dict | None, store_fp: str) -> dict:
    """The headline numbers of a run (``summary.json``): per attribute its best component,
    AUCs against the baselines, selectivity and top words; the means per group (a categorical
    factor with its ``block_auc``: ICA block against m PCA and m raw codes); MCC and DCI; and
    ``convergence`` (every fit of the run, :func:`clipica.pipeline.summary.convergence`)."""
    from clipica.report import naming_poles, short_phrase

    poles = naming_poles(naming)
    attrs = {}
    for a in attributes:
        e = probe["attributes"][a]
        comp = int(e["best_component"])
        pole = "negative" if e.get("pole") == "-" else "positive"
        attrs[a] = {
            "best_component": comp,
            "pole": e.get("pole", "+"),
            "ica_best_auc": e["best_auc"],
            "runner_up_auc": e.get("runner_up_auc"),
            "pca_best_auc": (e.get("pca") or {}).get("best_auc"),
            "raw_best_auc": (e.get("raw") or {}).get("best_auc"),
            "random_rotation_best_auc": (e.get("random_rotation") or {}).get("best_auc"),
            "linear_probe_auc": e.get("linear_probe_auc"),
            "selectivity": selectivity.get(a),
            "top_words": [short_phrase(w) for w, _ in poles.get(comp, {}).get(pole, [])][:5],
        }

    def mean(key, names=None):
        vals = [v[key] for a, v in attrs.items()
                if (names is None or a in names) and v.get(key) is not None]
        return float(sum(vals) / len(vals)) if vals else None

    def means(names=None):
        return {m: mean(f"{m}_best_auc", names) for m in ("ica", "pca", "raw", "random_rotation")}

    # a categorical factor's one-hot columns (detected from the labels) are one factor, not
    # several binary attributes: the means are given per group, as the report's headline does
    from clipica.pipeline.report import report_factors

    factors = [f for f in report_factors(store, probe) if set(f["columns"]) <= set(attrs)]
    grouped = {c for f in factors for c in f["columns"]}
    binary = [a for a in attrs if a not in grouped]
    groups = {"binary attributes": {"attributes": binary, "mean_best_auc": means(binary)}}
    # a factor scored as a block too (probe.json's "categorical"): groups.<factor>.block_auc
    groups.update({f["name"]: summary_parts.factor_group(probe, f, means(f["columns"]))
                   for f in factors})

    stab_mean = None
    if stability is not None and k in stability.get("k", []):
        stab_mean = float(stability["stability_mean"][stability["k"].index(k)])
    return {
        "n_rows": int(store.image.shape[0]),
        "model": model_entry(store)["spec"] or cfg.model,
        "data": cfg.data,
        "k": k,
        "k_rule": rule,
        "stability_mean": stab_mean,
        "ica_converged": bool(ica.converged_),
        "ica_n_iter": int(ica.n_iter_),
        "convergence": summary_parts.convergence(ica, stability, k, probe),
        "attributes": attrs,
        "mean_best_auc": means(),
        "groups": groups,
        "factors": factors,
        "ica_beats_baselines": [a for a, v in attrs.items()
                                if all(v[b] is None or v["ica_best_auc"] > v[b]
                                       for b in ("pca_best_auc", "raw_best_auc"))],
        "mcc": _mcc(probe.get("mcc")),
        "dci": probe.get("dci"),
        "split": probe.get("split"),
        "model_eval": model_eval,
        "config": asdict(cfg),
        "fingerprints": {"store": store_fp, "decomposition": artifacts.decomposition_fingerprint(ica)},
    }


def _mcc(mcc: Any) -> dict | None:
    if not isinstance(mcc, dict):
        return None
    return {name: (v.get("mcc", v.get("score")) if isinstance(v, dict) else v) for name, v in mcc.items()}

