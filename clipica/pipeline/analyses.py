"""Stages on a fitted decomposition: probes, names, selectivity, traversals.

Every stage writes a typed result (format tag + fingerprints of the store, the
decomposition and its own settings) and reuses one it finds with the same
fingerprints instead of recomputing it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clipica._atomic import atomic_write_bytes, atomic_write_text
from clipica.embeddings.manifest import model_entry
from clipica.errors import InputError, StoreMismatchError
from clipica.pipeline import artifacts
from clipica.pipeline._log import reuse_valid

#: files ``probe_stage`` writes into its folder (probe.json last: it marks the set finished)
PROBE_OUTPUTS = ("probe.json", "attributes.csv", "factors.csv", "auc_matrix.csv",
                 "sparse_curve.csv", "heatmap.png", artifacts.SELECTIVITY_JSON)


def fingerprints(store_fp: str | None, decomposition: Any, params: dict | None = None) -> dict:
    """The ``{store, decomposition, params}`` fingerprints a result of this stage carries."""
    out = {"store": store_fp, "decomposition": artifacts.decomposition_fingerprint(decomposition)}
    if params is not None:
        out["params"] = artifacts.params_fingerprint(params)
    return out


def _png(fig: Any, path: Path, dpi: int = 120) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


# ------------------------------------------------------------------ probes


# DCI's gradient-boosted trees on a seeded subsample: with these defaults the metrics stage
# stays within 2x of the lasso DCI it replaced on the demo store (20,000 x 64, K = 12,
# 11 attributes, four code sets); D and C differ from 4,000 rows x 100 trees by <= 0.08
# there (ica 0.257 vs 0.229, raw 0.591 vs 0.516; see clipica.metrics.dci)
DCI_ROWS = 1000
DCI_TREES = 20


def probe_params(*, modality: str = "image", C: float = 1.0, seed: int = 0,
                 metrics_rows: int = 20000, raw: bool = True, max_sparse: int = 64,
                 dci_rows: int = DCI_ROWS, dci_trees: int = DCI_TREES,
                 curve_rows: int | None = None, factors: Sequence[str] = ()) -> dict:
    """The probe stage's settings (its fingerprint). ``curve_rows``: training rows the
    sparse curves k < K are fitted on (default :data:`clipica.probes.probe.CURVE_ROWS`;
    0 = every training row with the joint solver, the computation before subsampling).
    ``factors``: declared categorical factors (``"NAME=COL1,COL2,..."``), scored as blocks
    beside the ones detected from the labels
    (:func:`clipica.data.label_groups.label_factors`)."""
    from clipica.data.label_groups import parse_factor_spec
    from clipica.probes.probe import CURVE_ROWS

    curve_rows = CURVE_ROWS if curve_rows is None else int(curve_rows)
    if curve_rows != 0 and curve_rows < 2:
        raise InputError(f"curve_rows must be 0 (every training row) or at least 2, got {curve_rows}")
    if C <= 0:
        raise InputError(f"C must be > 0, got {C}")
    if max_sparse < 1:
        raise InputError(f"max_sparse must be at least 1, got {max_sparse}")
    if dci_rows < 8:
        raise InputError(f"dci_rows must be at least 8, got {dci_rows}")
    if dci_trees < 1:
        raise InputError(f"dci_trees must be at least 1, got {dci_trees}")
    factors = [str(f) if isinstance(f, str) else f"{f.name}={','.join(f.columns)}" for f in factors]
    for f in factors:
        parse_factor_spec(f)  # a malformed spec fails here, before any work
    return {"modality": modality, "C": float(C), "seed": int(seed), "metrics_rows": int(metrics_rows),
            "raw": bool(raw), "max_sparse": int(max_sparse), "dci_rows": int(dci_rows),
            "dci_trees": int(dci_trees), "curve_rows": curve_rows,
            # categorical factors as blocks (format 1: ica/pca/raw, m = columns - 1)
            "factors": factors, "factor_blocks": 1}


def compute_probe(store, ica, params: dict, *, progress: bool = True,
                  workers: int | None = None):
    """The probe report with baselines and disentanglement metrics, for a store and an ICA.

    Returns the :class:`~clipica.probes.ProbeReport`; ``report.metrics`` holds ``categorical``
    (each categorical factor, declared in ``params["factors"]`` or detected, scored from the
    ICA's best block against the best m PCA codes and m raw dimensions on the probes' held-out
    rows: :func:`clipica.pipeline.tasks.factor_tasks_of`), ``mcc``
    (ICA, PCA, raw against ``latent_*`` columns, when present) and ``dci``, ``mig``, ``sap``,
    ``modularity`` of the ICA against the binary attributes, each with the same metric for
    the baselines under ``baselines`` (raw only when it has at most 128 dimensions).
    MIG, SAP and modularity use a seeded subsample of ``metrics_rows`` rows; DCI (trees,
    the published definition) a seeded subsample of ``dci_rows`` of those rows with
    ``dci_trees`` trees per factor; each entry states its rows, trees and seed.

    The code sets' probes and the metrics run as tasks on ``workers`` threads (default
    :func:`clipica.pipeline.tasks.probe_workers`: one per CPU, at most 4), each with one BLAS thread; the results
    do not depend on the number of workers.
    """
    from clipica.data.label_groups import label_factors
    from clipica.metrics import mcc
    from clipica.pipeline.tasks import factor_results, factor_tasks_of, metric_tasks_of, run_tasks
    from clipica.probes import baseline_codes
    from clipica.probes.probe import plan_probe

    modality, seed = params["modality"], params["seed"]
    X = store.image if modality == "image" else store.text
    if X is None:
        raise InputError(f"the store at {store.path} has no {modality} embeddings; use modality 'image'")
    if ica.components_.shape[1] != X.shape[1]:
        raise StoreMismatchError(
            f"the ICA was fitted on {ica.components_.shape[1]}-d data but the store's {modality} "
            f"embeddings are {X.shape[1]}-d; fit the ICA on this store (`clipica ica`)")
    X = np.asarray(X, dtype=np.float32)  # the store's float32 memmap: not copied
    # memory: ICA, PCA and rotation codes in float32 (n x K each); the raw baseline is X
    # itself, read in blocks (see clipica.probes.probe.baseline_codes)
    codes = ica.transform(X)
    k = codes.shape[1]
    bases = baseline_codes(X, k, random_state=seed, include_raw=params["raw"])
    rows = store.rows
    label_cols = [c for c in store.label_columns if c in rows.columns]
    if not label_cols:
        raise InputError(
            f"the store at {store.path} has no label columns to probe against; extract from a "
            "data source with labels (e.g. synthetic-faces, celeba)")
    from clipica.data.labels import binary_columns, factor_columns

    # the store's rows frame itself, its label columns named: a frame of just those columns
    # would be a copy (the size of the label matrix) for nothing
    labels = rows
    attrs, facs = binary_columns(rows, label_cols), factor_columns(rows, label_cols)
    curve_rows = params.get("curve_rows", 0) or None  # 0: every training row
    plan = plan_probe(codes, labels, baselines=bases, attributes=attrs, factors=facs,
                      C=params["C"], random_state=seed, max_sparse=params["max_sparse"],
                      curve_rows=curve_rows)
    sets = {"ica": codes, **bases}
    metric_tasks, metric_info = metric_tasks_of(sets, labels, plan.report.attributes, params, seed)
    factors = label_factors(rows, plan.report.attributes, params.get("factors") or ())
    factor_tasks = factor_tasks_of(sets, factors, labels, plan.train, plan.test, ica=ica,
                                   C=params["C"], seed=seed)

    # the widest code sets first and the metrics behind them, so no core idles at the end
    done = run_tasks(plan.ordered_tasks() + factor_tasks + metric_tasks, workers=workers,
                     progress=progress, desc="probes, factors and disentanglement metrics")
    report = plan.finish({name: done[name] for name, _ in plan.tasks})
    if factors:
        report.metrics["categorical"] = factor_results(factors, done)
    if report.factors:
        latent = [f for f in report.factors if f.startswith("latent_")] or report.factors
        Z = labels[latent].to_numpy(dtype=np.float64)
        report.metrics["mcc"] = {
            name: {**mcc(sets[name], Z).to_dict(), "factors": latent}
            for name in ("ica", "pca", "raw", "random_rotation") if name in sets}
    for key in ("dci", "mig", "sap", "modularity"):
        if (key, "ica") not in done:
            continue
        main = dict(done[(key, "ica")])
        main["baselines"] = {n: done[(key, n)] for n in sets if (key, n) in done and n != "ica"}
        main.update(metric_info[key])
        report.metrics[key] = main
    return report


def probe_stage(store, ica, out_dir: str | os.PathLike, params: dict, *, store_fp: str,
                inputs: dict | None = None, log=None, progress: bool = True,
                reuse: bool = True) -> dict:
    """Reuse ``out_dir/probe.json`` for this store, decomposition and settings, else probe and
    write ``probe.json`` with its tables and heatmap. Returns the ``probe.json`` payload.

    The report object is returned too, under the key ``"_report"``, when it was computed
    here (the command line prints from it); it is never written.
    """
    out_dir = Path(out_dir)
    path = out_dir / artifacts.PROBE_JSON
    expect = fingerprints(store_fp, ica, params)
    if reuse:
        doc = reuse_valid(path, "probe", expect, log)
        if doc is not None:
            return doc
    report = compute_probe(store, ica, params, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in PROBE_OUTPUTS:  # a stale table from an earlier run must not sit beside new ones
        if (out_dir / name).exists():
            (out_dir / name).unlink()
    if report.attributes:
        atomic_write_text(out_dir / "attributes.csv", report.table().to_csv())
        atomic_write_text(out_dir / "auc_matrix.csv", report.matrix().to_csv())
        atomic_write_text(out_dir / "sparse_curve.csv", report.sparse_curve().to_csv(index=False))
        from clipica.viz.probe import plot_probe_heatmap

        _png(plot_probe_heatmap(report), out_dir / "heatmap.png")
    if report.factors:
        atomic_write_text(out_dir / "factors.csv", report.factor_table().to_csv())
    doc = report.to_dict()
    doc["inputs"] = {"store": str(Path(store.path).resolve()), **(inputs or {}),
                     "modality": params["modality"], "model": store.manifest.get("model"),
                     "data": store.manifest.get("data"),
                     "n_components": int(ica.components_.shape[0])}
    artifacts.save_result(path, doc, kind="probe", fingerprints=expect)
    return {**doc, "format": artifacts.format_tag("probe"), "fingerprints": expect, "_report": report}


# ------------------------------------------------------------------ names


def naming_params(*, vocab: str | None = None, template: str | None = None, top: int = 5,
                  prompts: Sequence[str] = ()) -> dict:
    if top < 1:
        raise InputError(f"top must be at least 1, got {top}")
    vocab_id: Any = None
    if vocab is not None:  # a file: its content counts, not its name
        p = Path(vocab)
        vocab_id = {"path": str(p), "sha": artifacts.params_fingerprint({"t": p.read_bytes().hex()})
                    } if p.is_file() else str(vocab)
    return {"vocab": vocab_id, "template": template, "top": int(top), "prompts": list(prompts)}


def name_stage(store, ica, out_dir: str | os.PathLike, params: dict, *, store_fp: str,
               vocab: str | None = None, inputs: dict | None = None, log=None,
               reuse: bool = True) -> dict:
    """Reuse ``out_dir/naming.json`` for this store, decomposition and vocabulary, else name
    every component (and ``params["prompts"]`` by reverse lookup) and write it with
    ``naming.txt``. Returns the ``naming.json`` payload (``text``: the readable table)."""
    from clipica.naming.names import format_matches, match_prompts, name_components

    out_dir = Path(out_dir)
    path = out_dir / artifacts.NAMING_JSON
    expect = fingerprints(store_fp, ica, params)
    if reuse:
        doc = reuse_valid(path, "naming", expect, log)
        if doc is not None:
            return doc
    if ica.components_.shape[1] != store.embed_dim:
        raise InputError(
            f"the ICA was fitted on {ica.components_.shape[1]}-d data but the store holds "
            f"{store.embed_dim}-d embeddings")
    layer = store.manifest.get("layer", "final")
    if layer != "final":  # text and image meet only in the projected space: names elsewhere are noise
        raise InputError(f"this store was extracted at --layer {layer}; names come from the text encoder "
                         "in the joint image-text space, so extract at --layer final to name components")
    if log is not None and hasattr(log, "note"):  # loading a CLIP (imports included) takes a while
        log.note(f"loading the text encoder of {model_entry(store)['spec']}")
    encoder = store.load_encoder()
    if log is not None and hasattr(log, "note"):
        log.note(f"embedding the vocabulary and naming {ica.components_.shape[0]} components")
    names = name_components(store, ica, vocab, encoder=encoder, template=params["template"])
    doc = names.to_json(n=params["top"])
    doc.update(inputs or {})
    # "vocabulary" holds the scored words (ComponentNames.from_dict reads them back); where they came from
    doc["vocabulary_source"] = str(vocab) if vocab else "built-in: celeba attribute phrases"
    text = names.table(n=min(params["top"], 3))
    blocks = [b for b in (getattr(ica, "blocks_", None) or []) if len(b) > 1]
    if blocks:
        # a block (e.g. a categorical factor) has no poles: its entries are ranked by the
        # norm of their scores over the block's components
        doc["blocks"] = names.block_names(blocks, n=params["top"])
        text += "\n\nblocks of dependent components (entries by their norm in the block's subspace, z)\n"
        text += "\n".join(
            f"  block {b['block']}: " + ", ".join(f"{t['text']} ({t['norm']:.2f})" for t in b["top"][:3])
            for b in doc["blocks"])
    if params["prompts"]:
        matches = match_prompts(params["prompts"], ica, encoder=encoder, projection=names.projection)
        doc["prompts"] = matches
        text += "\n\nreverse lookup\n" + format_matches(matches)
    doc["text"] = text
    artifacts.save_result(path, doc, kind="naming", fingerprints=expect)
    atomic_write_text(out_dir / "naming.txt", text + "\n")
    return {**doc, "format": artifacts.format_tag("naming"), "fingerprints": expect}


# ------------------------------------------------------------------ selectivity


def attribute_selectivity(store, ica, best_components: dict[str, int], *, probes,
                          alphas: Sequence[float] = (-3.0, 3.0), n_rows: int = 500,
                          seed: int = 0) -> dict[str, float]:
    """Selectivity of each attribute's best component for that attribute.

    Shifts the component by ``alphas`` standard deviations on ``n_rows`` random rows and
    reads every attribute's linear probe in ``probes`` (the run folder's cached
    :class:`~clipica.intervene.AttributeProbes`, :func:`attribute_probes_stage`, the same
    probes the traversals read): ``|Δ logit of the attribute| / Σ_others |Δ logit|``.
    Larger is more selective. An attribute without a probe (too few rows of a class to fit
    one) gets no selectivity (absent), not an error.
    """
    from clipica.intervene import attribute_response, edit_components

    if probes is None:
        return {}
    attributes = [a for a in best_components if a in probes.attributes]
    if not attributes:
        return {}
    X = store.image
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(X), min(n_rows, len(X)), replace=False))
    out = {}
    for attr in attributes:
        tr = edit_components(np.asarray(X[idx]), ica, int(best_components[attr]), alphas, reference=X)
        out[attr] = float(attribute_response(tr, probes, target=attr).selectivity)
    return out


def selectivity_stage(store, ica, path: str | os.PathLike, best_components: dict[str, int], *,
                      store_fp: str, probes_path: str | os.PathLike, seed: int = 0,
                      log=None) -> dict[str, float]:
    """:func:`attribute_selectivity`, cached at ``path``; the attribute probes come from (or are
    fitted once into) ``probes_path`` (:func:`attribute_probes_stage`), shared with traversals."""
    params = {"best": {a: int(c) for a, c in best_components.items()}, "seed": int(seed)}
    expect = fingerprints(store_fp, ica, params)
    doc = reuse_valid(path, "selectivity", expect, log)
    if doc is not None:
        return dict(doc["selectivity"])
    sel = {}
    if best_components:
        probes = attribute_probes_stage(store, ica, probes_path, store_fp=store_fp, seed=seed)
        sel = attribute_selectivity(store, ica, best_components, probes=probes, seed=seed)
    artifacts.save_result(path, {"selectivity": sel, "best_component": params["best"]},
                          kind="selectivity", fingerprints=expect)
    return sel


# ------------------------------------------------------------------ traversals


def traversal_params(component: int, *, rows: int = 6, alphas: Sequence[float] | None = None,
                     mode: str = "shift", decoder: bool = True, decoder_epochs: int | None = None,
                     text: bool = True, neighbours: int = 1, seed: int = 0) -> dict:
    from clipica.intervene import DEFAULT_ALPHAS

    if rows < 1:
        raise InputError(f"rows must be at least 1, got {rows}")
    return {"component": int(component), "rows": int(rows),
            "alphas": [float(a) for a in (DEFAULT_ALPHAS if alphas is None else alphas)],
            "mode": mode, "decoder": bool(decoder), "decoder_epochs": decoder_epochs,
            "text": bool(text), "neighbours": int(neighbours), "seed": int(seed)}


#: the intervention probes' cache, in the decomposition's folder (see attribute_probes_stage)
ATTRIBUTE_PROBES_JSON = "attribute_probes.json"


def attribute_probes_stage(store, ica, path: str | os.PathLike, *, store_fp: str,
                           seed: int = 0, C: float = 1.0, max_rows: int = 20000, say=None):
    """The attribute probes interventions read, fitted once per store and decomposition.

    Reads ``path`` (``clipica.attribute_probes/1``: folded weights as JSON) when its
    store, decomposition and settings fingerprints match, else fits every usable binary
    label column (:func:`clipica.intervene.fit_attribute_probes`) and writes it. None when
    the store has no usable binary label. The decomposition's fingerprint is part of the
    key because the cache lives beside it and goes stale with it.
    """
    from clipica.intervene import AttributeProbes, binary_attributes, fit_attribute_probes

    attrs = binary_attributes(store.rows, store.label_columns)
    if not attrs:
        return None
    params = {"attributes": attrs, "seed": int(seed), "C": float(C), "max_rows": int(max_rows)}
    expect = fingerprints(store_fp, ica, params)
    doc = artifacts.read_valid(path, "attribute_probes", expect)
    if doc is not None:
        try:
            probes = AttributeProbes(
                attributes=[str(a) for a in doc["attributes"]],
                coef_=np.asarray(doc["coef"], dtype=np.float64),
                intercept_=np.asarray(doc["intercept"], dtype=np.float64),
                train_accuracy=np.asarray(doc["train_accuracy"], dtype=np.float64),
                positive_rate=np.asarray(doc["positive_rate"], dtype=np.float64),
            )
            if probes.attributes == attrs and probes.coef_.shape == (len(attrs), store.embed_dim):
                return probes
        except (KeyError, TypeError, ValueError):
            pass  # a damaged cache is refitted, never trusted
    if say is not None:
        say(f"fitting {len(attrs)} attribute probes on up to {max_rows:,} rows (once per store and "
            f"decomposition; cached in {path})")
    probes = fit_attribute_probes(store.image, store.rows, attrs, C=C, max_rows=max_rows, seed=seed)
    artifacts.save_result(path, {"attributes": probes.attributes, "coef": probes.coef_.tolist(),
                                 "intercept": probes.intercept_.tolist(),
                                 "train_accuracy": probes.train_accuracy.tolist(),
                                 "positive_rate": probes.positive_rate.tolist(),
                                 "settings": params},
                          kind="attribute_probes", fingerprints=expect)
    return probes


#: the text view's prompt embeddings, cached beside the probes (see prompt_encoder_stage)
PROMPT_EMBEDDINGS_JSON = "prompt_embeddings.json"
#: every component's mean and std on the store's rows (the traversal unit), beside the probes
COMPONENT_STATS_JSON = "component_stats.json"


def component_stats_stage(store, ica, path: str | os.PathLike, *, store_fp: str,
                          say=None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of every component on the store's rows (:func:`clipica.intervene.component_stats`),
    computed once per store and decomposition and cached at ``path``
    (``clipica.component_stats/1``; float64 values round-trip exactly through JSON). A pass over
    a 200k-row store is a few seconds that a second intervention need not pay."""
    from clipica.intervene import component_stats

    expect = fingerprints(store_fp, ica)
    K = int(np.asarray(ica.components_).shape[0])
    doc = artifacts.read_valid(path, "component_stats", expect)
    if doc is not None:
        try:
            mu = np.asarray(doc["mean"], dtype=np.float64)
            sd = np.asarray(doc["std"], dtype=np.float64)
            if mu.shape == sd.shape == (K,) and np.all(np.isfinite(mu)) and np.all(sd >= 0):
                return mu, sd
        except (KeyError, TypeError, ValueError):
            pass  # damaged: compute again
    if say is not None:
        say(f"measuring the {K} components' standard deviations on {len(store.image):,} rows "
            f"(once per store and decomposition; cached in {path})")
    mu, sd = component_stats(ica, store.image)
    artifacts.save_result(path, {"mean": mu.tolist(), "std": sd.tolist(), "rows": int(len(store.image))},
                          kind="component_stats", fingerprints=expect)
    return mu, sd


class _CachedTexts:
    """The ``encode_texts`` part of an Encoder, answered from saved embeddings."""

    def __init__(self, table: dict[str, np.ndarray]):
        self.table = table

    def encode_texts(self, texts) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])


def prompt_encoder_stage(store, path: str | os.PathLike, prompts: Sequence[str], *,
                         store_fp: str, say=None) -> _CachedTexts:
    """Text embeddings of ``prompts`` by the store's model, encoded once and cached at ``path``
    (``clipica.prompt_embeddings/1``, keyed by the store's fingerprint, which names the model,
    and by the prompts). Reusing them spares a second intervention loading the model (torch
    and open_clip imports alone took most of its time). float32 values round-trip exactly."""
    prompts = sorted(set(prompts))
    expect = {"store": store_fp, "params": artifacts.params_fingerprint({"prompts": prompts})}
    doc = artifacts.read_valid(path, "prompt_embeddings", expect)
    if doc is not None:
        try:
            emb = np.asarray(doc["embeddings"], dtype=np.float32)
            if list(doc["prompts"]) == prompts and emb.shape == (len(prompts), store.embed_dim):
                return _CachedTexts(dict(zip(prompts, emb, strict=True)))
        except (KeyError, TypeError, ValueError):
            pass  # damaged: encode again
    if say is not None:
        say(f"encoding {len(prompts)} prompts with the store's model (once per store; cached in {path})")
    emb = np.asarray(store.load_encoder().encode_texts(prompts), dtype=np.float32)
    artifacts.save_result(path, {"prompts": prompts, "embeddings": emb.tolist()},
                          kind="prompt_embeddings", fingerprints=expect)
    return _CachedTexts(dict(zip(prompts, emb, strict=True)))


_VIEWS = (("decoded_png", "decoded", "_decoded.png"), ("retrieval_png", "retrieval", "_retrieval.png"),
          ("response_png", "attributes", "_attributes.png"), ("text_png", "text", "_text.png"))


def traversal_paths(png, decomposition, store) -> tuple[Path, Path, Path]:
    """``(png, stem, json_path)`` of a traversal figure, after checking that ``png`` names a
    .png file and that the decomposition was fitted on the store's embedding size."""
    png = Path(png)
    if png.suffix.lower() != ".png":
        raise InputError(f"the traversal figure must be a .png file name, got {str(png)!r}")
    D = decomposition.components_.shape[1]
    if D != store.embed_dim:
        raise InputError(f"the decomposition was fitted on {D}-d data but the store holds "
                         f"{store.embed_dim}-d embeddings")
    stem = png.with_suffix("")
    return png, stem, Path(f"{stem}.json")


def traversal_stage(store, ica, png: str | os.PathLike, params: dict, *, store_fp: str,
                    decoder_dir: str | os.PathLike | None, inputs: dict | None = None,
                    log=None, progress: bool = True, reuse: bool = True,
                    retrain_decoder: bool = False,
                    probes_path: str | os.PathLike | None = None) -> dict:
    """Traverse one component: the summary figure ``png``, one PNG per view beside it, and
    ``<png stem>.json`` (the typed intervention result; PNG names relative to it).

    Reuses a result with the same fingerprints whose PNGs are all present. The decoder is
    loaded from (or trained into) ``decoder_dir`` when ``params["decoder"]``; the attribute
    probes from (or fitted into) ``probes_path`` when given (:func:`attribute_probes_stage`).
    """
    png, stem, json_path = traversal_paths(png, ica, store)
    K = ica.components_.shape[0]
    comp = params["component"]
    if not 0 <= comp < K:
        raise InputError(f"component {comp} is out of range: this decomposition has {K} components "
                         f"(0 to {K - 1})")
    expect = fingerprints(store_fp, ica, params)
    if reuse:
        doc = reuse_valid(json_path, "intervene", expect, log, check=lambda d: all(
            (png.parent / d[k]).is_file() for k, *_ in (("figure_png",), *_VIEWS) if d.get(k)))
        if doc is not None:
            return doc
    import matplotlib

    matplotlib.use("Agg")
    from clipica.intervene import run_intervention

    def say(text: str) -> None:  # a line before each step that can take more than a few seconds
        if progress:
            import sys

            sys.stderr.write(f"   intervene: {text}\n")
            sys.stderr.flush()

    decoder = None
    if params["decoder"]:
        from clipica.intervene.decoder import load_or_train

        decoder = load_or_train(store, ica, decoder_dir, epochs=params["decoder_epochs"],
                                retrain=retrain_decoder, seed=params["seed"], progress=progress)
    probes = encoder = None
    # the text view compares prompts with images: only in the joint space of a final-layer store
    pairs: Any = "auto" if params["text"] and store.manifest.get("layer", "final") == "final" else None
    if probes_path is not None:
        probes = attribute_probes_stage(store, ica, probes_path, store_fp=store_fp,
                                        seed=params["seed"], say=say)
        if pairs is not None:
            from clipica.intervene import default_prompt_pairs

            pairs = default_prompt_pairs(store.label_columns) or default_prompt_pairs()[:8]
            encoder = prompt_encoder_stage(
                store, Path(probes_path).with_name(PROMPT_EMBEDDINGS_JSON),
                [t for _, pos, neg in pairs for t in (pos, neg)], store_fp=store_fp, say=say)
    stats = None
    if probes_path is not None:
        stats = component_stats_stage(store, ica, Path(probes_path).with_name(COMPONENT_STATS_JSON),
                                      store_fp=store_fp, say=say)
    say(f"component {comp}: {len(params['alphas'])} steps on {params['rows']} rows, nearest "
        f"neighbours among {len(store.image):,} rows")
    result = run_intervention(store, ica, comp, alphas=params["alphas"], rows=params["rows"],
                              decoder=decoder, probes=probes, prompt_pairs=pairs, encoder=encoder,
                              k=params["neighbours"], seed=params["seed"], mode=params["mode"],
                              stats=stats)
    png.parent.mkdir(parents=True, exist_ok=True)
    say(f"drawing the figures into {png.parent}")
    from clipica.viz.traversal import plot_intervention, plot_views

    _png(plot_intervention(result), png, dpi=110)
    files = {"figure_png": png.name}
    view_figures = plot_views(result)
    for key, attr, suffix in _VIEWS:
        if attr in view_figures:
            path = Path(f"{stem}{suffix}")
            _png(view_figures[attr], path, dpi=110)
            files[key] = path.name
    doc = result.to_json()
    doc.update(files)  # file names, relative to this JSON
    doc.update(inputs or {})
    if decoder is not None:
        doc["decoder"] = {"directory": str(decoder_dir), **decoder.history_}
    artifacts.save_result(json_path, doc, kind="intervene", fingerprints=expect)
    return {**doc, "format": artifacts.format_tag("intervene"), "fingerprints": expect,
            "_result": result}


def strip_private(doc: dict) -> dict:
    """``doc`` without the in-memory objects a stage hands to its caller (keys starting ``_``)."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


__all__ = ["ATTRIBUTE_PROBES_JSON", "COMPONENT_STATS_JSON", "component_stats_stage", "PROBE_OUTPUTS", "PROMPT_EMBEDDINGS_JSON", "prompt_encoder_stage", "attribute_probes_stage", "attribute_selectivity", "compute_probe", "fingerprints", "name_stage",
           "naming_params", "probe_params", "probe_stage", "selectivity_stage", "strip_private",
           "traversal_params", "traversal_stage"]
