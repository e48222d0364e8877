"""The report stage: gather the valid results of a run folder, compute what is missing, render.

``clipica report STORE --ica ICA_DIR --out DIR`` and the last stage of ``clipica run``
both come here. A result is used only when its fingerprints match the store and the
decomposition being reported; a stale one is recomputed (or, with ``compute_missing=False``,
refused with one line), so a report never shows one fit's names beside another's tables.
Files a result points to (PNGs) are read only from inside the folder that holds it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from clipica.embeddings.manifest import data_spec, model_entry
from clipica.errors import ArtifactError, InputError, UnsafePathError
from clipica.pipeline import analyses, artifacts

_PNG_KEYS = ("figure_png", "decoded_png", "retrieval_png", "response_png", "text_png")


def _find(kind: str, candidates: Sequence[Path | None], expect: dict, *, strict: bool) -> dict | None:
    """The first candidate that is a valid ``kind`` result for ``expect``.

    A candidate that exists but is stale is skipped; with ``strict`` (nothing may be
    recomputed) it is refused instead, so the caller never renders a stale result.
    """
    stale: Exception | None = None
    for path in candidates:
        if path is None or not Path(path).is_file():
            continue
        try:
            doc = artifacts.load_result(path, kind, expect)
        except ArtifactError as exc:
            stale = stale or exc
            continue
        doc["_path"] = Path(path)
        return doc
    if stale is not None and strict:
        raise stale
    return None


def load_interventions(folder: Path, expect: dict, *, strict: bool = False) -> list[dict]:
    """Valid ``intervene`` results in ``folder`` (one per component), PNGs resolved inside it.

    A PNG name that is absolute, contains ``..`` or resolves outside ``folder`` is dropped
    (never read); a result for another store or decomposition is skipped (or, ``strict``,
    refused).
    """
    found: dict[int, dict] = {}
    if not folder.is_dir():
        return []
    for path in sorted(folder.glob("*.json")):
        try:
            doc = artifacts.read_json(path)
        except ArtifactError:
            continue
        if "component" not in doc or "alphas" not in doc:
            continue
        try:
            artifacts.check_result(doc, path, "intervene", expect)
        except ArtifactError:
            if strict:
                raise
            continue
        comp = int(doc["component"])
        if comp in found:
            continue
        for key in _PNG_KEYS:
            name = doc.get(key)
            if not name:
                continue
            try:
                p = artifacts.resolve_inside(path.parent, name)
            except UnsafePathError:
                p = None
            doc[key] = p.read_bytes() if p is not None and p.is_file() else None
        doc.setdefault("attribute", doc.get("selected_attribute"))
        found[comp] = doc
    return [found[c] for c in sorted(found)]


def prune_interventions(folder: Path, expect: dict) -> list[Path]:
    """Remove from ``folder`` the ``intervene`` results of another store or decomposition (an
    older fit, another K) with the PNGs they name; returns the removed files.

    The traversals folder belongs to its stage: a result no current traversal replaces must not
    be left to block the report (which refuses stale results) on every later run.
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.glob("*.json")):
        try:
            doc = artifacts.read_json(path)
        except ArtifactError:
            continue  # not a result (the report skips it too)
        if not isinstance(doc, dict) or "component" not in doc or "alphas" not in doc:
            continue
        try:
            artifacts.check_result(doc, path, "intervene", expect)
            continue
        except ArtifactError:
            pass  # another fit's (or an older format's): the stage owns the folder, remove it
        for key in _PNG_KEYS:
            name = doc.get(key)
            try:
                p = artifacts.resolve_inside(folder, name) if name else None
            except UnsafePathError:
                p = None  # a crafted name: never follow it, not even to delete
            if p is not None and p.parent == folder.resolve() and p.is_file():
                p.unlink()
                removed.append(p)
        path.unlink()
        removed.append(path)
    return removed


@contextmanager
def _stage(log, name: str, what: str) -> Iterator[None]:
    """``log.stage`` when ``log`` is a :class:`~clipica.pipeline._log.StageLog` (``clipica
    report`` prints a header per step, so no step over a few seconds is silent); else nothing."""
    if log is None or not hasattr(log, "stage"):
        yield
        return
    with log.stage(name, what):
        yield


def _note(log, text: str) -> None:
    if log is not None and hasattr(log, "note"):
        log.note(text)


def _reused(log, doc: dict | None) -> None:
    if doc is not None and log is not None and "_path" in doc:
        log.reuse(str(doc["_path"]))


def _heatmap(probe_doc: dict | None) -> bytes | None:
    if not probe_doc or "_path" not in probe_doc:
        return None
    try:
        p = artifacts.resolve_inside(probe_doc["_path"].parent, "heatmap.png")
    except UnsafePathError:
        return None
    return p.read_bytes() if p.is_file() else None


class _Fitted:
    """The fitted estimator, loaded from ``ica_dir`` the first time a missing result must be
    computed. ``clipica report`` reads only the saved contract (:func:`load_contract`: no
    estimator class, so no scikit-learn import) to check fingerprints; with every result
    present it never loads the estimator."""

    def __init__(self, ica, ica_dir: Path) -> None:
        self._ica, self._dir = ica, ica_dir

    def __call__(self):
        if not hasattr(self._ica, "transform"):  # a SavedDecomposition: the contract only
            from clipica.decompositions import load_decomposition

            self._ica = load_decomposition(self._dir)
        return self._ica


def gather(store, ica, out: Path, *, store_fp: str, ica_dir: Path, probe: Path | None = None,
           naming: Path | None = None, traversals: Path | None = None,
           compute_missing: bool = True, n_traversals: int = 3, decoder: bool = True,
           log=None, progress: bool = True, factors: Sequence = ()) -> dict:
    """Every valid result for (store, decomposition), computing the missing ones when asked.

    ``ica``: the fitted decomposition, or its saved contract (``load_contract(ica_dir)``), in
    which case the fitted one is loaded from ``ica_dir`` only to compute a missing result.

    Returns ``{"probe", "naming", "interventions", "stability", "summary", "compare",
    "factors", "fewshot", "match"}`` (None or [] for what is absent). Results computed here go to ``out/probe``,
    ``ICA_DIR/naming`` and ``out/traversals``. ``factors`` (declared categorical factors,
    ``CategoricalFactor`` or ``"NAME=COL,..."``) come first in ``"factors"``, then the groups of
    mutually exclusive label columns detected among the probed attributes
    (:func:`report_factors`).
    """
    run = artifacts.RunFolder(out)
    both = {"store": store_fp, "decomposition": artifacts.decomposition_fingerprint(ica)}
    strict = not compute_missing
    fitted = _Fitted(ica, ica_dir)
    with _stage(log, "probe", "every component against every attribute, next to the baselines"):
        probe_doc = _find("probe", [probe, run.probe_json], both, strict=strict)
        _reused(log, probe_doc)
        if probe_doc is None and compute_missing:
            analyses.probe_stage(store, fitted(), run.probe, analyses.probe_params(), store_fp=store_fp,
                                 inputs={"ica": str(ica_dir)}, log=log, progress=progress)
            probe_doc = _find("probe", [run.probe_json], both, strict=True)
    with _stage(log, "naming", "top words at both poles of every component"):
        naming_doc = _find("naming", [naming, ica_dir / "naming" / artifacts.NAMING_JSON,
                                      out / "naming" / artifacts.NAMING_JSON], both, strict=strict)
        _reused(log, naming_doc)
        if naming_doc is None and compute_missing:
            analyses.name_stage(store, fitted(), ica_dir / "naming", analyses.naming_params(),
                                store_fp=store_fp,
                                inputs={"store": str(store.path), "ica": str(ica_dir)}, log=log)
            naming_doc = _find("naming", [ica_dir / "naming" / artifacts.NAMING_JSON], both,
                               strict=True)
    trav_dir = traversals or run.traversals
    with _stage(log, "traversals", "the strongest components, decoded and retrieved"):
        interventions = load_interventions(trav_dir, both, strict=strict)
        if interventions and log is not None:
            log.reuse(f"{len(interventions)} traversals in {trav_dir}")
        if not interventions and compute_missing and probe_doc and n_traversals > 0:
            comps = strongest_components(probe_doc, n_traversals)
            for i, comp in enumerate(comps, 1):
                _note(log, f"component {comp} ({i}/{len(comps)})")
                params = analyses.traversal_params(comp, decoder=decoder)
                analyses.traversal_stage(store, fitted(), run.traversals / f"component_{comp:02d}.png",
                                         params, store_fp=store_fp, decoder_dir=ica_dir / "decoder",
                                         probes_path=ica_dir / analyses.ATTRIBUTE_PROBES_JSON,
                                         inputs={"store": str(store.path), "ica": str(ica_dir)},
                                         log=None, progress=progress)
            interventions = load_interventions(run.traversals, both, strict=True)
    stability = _find("stability", [run.stability_json], {"store": store_fp}, strict=False)
    summary = _find("summary", [run.summary], both, strict=False)
    # `clipica compare STORE --out RUN/compare` on the same store feeds the report's comparison
    # section and the categorical-factor headline; one for another store is skipped
    compare = _find("compare", [run.compare / "compare.json"], {"store": store_fp}, strict=False)
    # `clipica fewshot --train STORE --out RUN/fewshot` with this store as the train store
    fewshot = _find("fewshot", [run.fewshot / "fewshot.json"], {"store": store_fp}, strict=False)
    return {"probe": probe_doc, "naming": naming_doc, "interventions": interventions,
            "stability": stability, "summary": summary, "compare": compare,
            "factors": report_factors(store, probe_doc, factors), "fewshot": fewshot,
            "match": find_match(run.root / "match" / "match.json", both)}


def find_match(path: Path, both: dict) -> dict | None:
    """``RUN/match/match.json`` (``clipica match ... --out RUN/match``) when this run's store
    and decomposition are one of its two sides, with ``_side`` set to that side; else None
    (a match of another fit is not this run's)."""
    if not Path(path).is_file():
        return None
    try:
        doc = artifacts.load_result(path, "match")
    except ArtifactError:
        return None
    fps = doc.get("fingerprints") or {}
    for side in ("a", "b"):
        if fps.get(f"store_{side}") == both["store"] and fps.get(f"decomposition_{side}") == both["decomposition"]:
            return {**doc, "_side": side}
    return None


def report_factors(store, probe_doc: dict | None, declared: Sequence = ()) -> list[dict]:
    """The categorical factors the report reads as one factor each: ``declared`` (checked
    against the store's labels), then the groups of mutually exclusive columns detected among
    the probed binary attributes (:func:`clipica.data.label_groups.detect_exclusive_groups`)
    that share no column with a declared one. Each as ``CategoricalFactor.to_dict()``."""
    from clipica.data.label_groups import label_factors

    attrs = list((probe_doc or {}).get("attributes") or {})
    if not attrs and not declared:  # nothing probed, nothing declared: no label table to read
        return []
    return [f.to_dict() for f in label_factors(store.rows, attrs, declared)]


def strongest_components(probe_doc: dict, n: int, attributes: Sequence[str] | None = None) -> list[int]:
    """The best components of the best-separated attributes (or of ``attributes``, in order),
    without repeats, at most ``n``."""
    attrs = probe_doc.get("attributes") or {}
    names = list(attributes) if attributes is not None else sorted(
        attrs, key=lambda a: -(attrs[a].get("best_auc") or 0.0))
    out: list[int] = []
    for a in names:
        comp = (attrs.get(a) or {}).get("best_component")
        if comp is None or int(comp) < 0 or int(comp) in out:
            continue
        out.append(int(comp))
        if len(out) >= n:
            break
    return out


def render(out: Path, results: dict, *, store, ica_dir: Path, ica_meta: dict,
           commands: Sequence[str] = (), title: str | None = None) -> Path:
    """``out/report.html`` from gathered results (:func:`gather`); computes nothing."""
    from clipica.report import build_report, carried_by, probe_attributes

    probe = results.get("probe")
    summary = dict(results.get("summary") or {})
    interventions = list(results.get("interventions") or [])
    if probe:
        rows = probe_attributes(probe)
        for item in interventions:
            # the attributes it separates (not those near chance whose best it merely is)
            item["best_for"] = [a for a, _ in carried_by(rows, item["component"])[0]]
    model, data = model_entry(store), data_spec(store)
    summary.setdefault("model", model["spec"])
    summary.setdefault("data", data)
    summary.setdefault("n_rows", int(store.image.shape[0]))
    summary.setdefault("k", (ica_meta.get("params") or {}).get("n_components") or ica_meta.get("n_components"))
    if "converged" in ica_meta:
        summary.setdefault("ica_converged", bool(ica_meta["converged"]))
        summary.setdefault("ica_n_iter", ica_meta.get("n_iter"))
    ident = ica_meta.get("identifiability") or {}
    if ident.get("gaussian_block"):
        summary.setdefault("ica_gaussian_block", list(ident["gaussian_block"]))
    provenance = {
        "store": str(store.path), "model": model.get("spec"), "pretrained": model.get("pretrained"),
        "encoder": model.get("encoder_spec"), "data": data,
        "rows embedded": int(store.image.shape[0]),
        "embedding normalisation": store.manifest.get("normalization"), "ICA": str(ica_dir),
        "ICA parameters": ica_meta.get("params"),
        "ICA convergence": {k: ica_meta.get(k) for k in ("n_iter", "converged") if k in ica_meta} or None,
        "ICA identifiable components": ident.get("n_identifiable"),
    }
    provenance = {k: v for k, v in provenance.items() if v is not None}
    provenance["commands"] = list(summary.get("commands") or commands)
    clean = {k: v for k, v in (probe or {}).items() if not str(k).startswith("_")} if probe else None
    stability = results.get("stability")
    return build_report(out, probe=clean, heatmap=_heatmap(probe),
                        naming=results.get("naming"), interventions=interventions,
                        stability=stability, summary=summary, provenance=provenance,
                        compare=results.get("compare"), factors=results.get("factors") or (),
                        fewshot=results.get("fewshot"), match=results.get("match"),
                        title=title or "clipica report")


def report_stage(store_dir: str | os.PathLike, ica_dir: str | os.PathLike, out: str | os.PathLike, *,
                 probe: str | os.PathLike | None = None, naming: str | os.PathLike | None = None,
                 traversals: str | os.PathLike | None = None, compute_missing: bool = True,
                 n_traversals: int = 3, decoder: bool = True, progress: bool = True,
                 title: str | None = None, log=None, factors: Sequence = ()) -> Path:
    """``clipica report``: reuse the valid results for (store, ICA), compute the missing ones
    (unless ``compute_missing=False``, which refuses stale ones), write ``out/report.html``.
    ``factors``: declared categorical factors (``"NAME=COL1,COL2,..."``), see :func:`gather`."""
    from clipica.decompositions.registry import load_contract
    from clipica.decompositions.saved import find_meta_file
    from clipica.embeddings.store import EmbeddingStore

    if n_traversals < 0:
        raise InputError(f"traversals must be 0 or more, got {n_traversals}")
    from clipica.pipeline._log import StageLog

    store_dir, ica_dir, out = Path(store_dir), Path(ica_dir), Path(out)
    store = EmbeddingStore.open(store_dir)
    ica = load_contract(ica_dir)  # the fitted class only if something must be computed (gather)
    out.mkdir(parents=True, exist_ok=True)
    store_fp = artifacts.store_fingerprint(store)
    if log is None:  # one header per step: a fresh folder computes for minutes, never silently
        log = StageLog(4, quiet=not progress, prefix="clipica report")
    results = gather(store, ica, out, store_fp=store_fp, ica_dir=ica_dir,
                     probe=Path(probe) if probe else None, naming=Path(naming) if naming else None,
                     traversals=Path(traversals) if traversals else None,
                     compute_missing=compute_missing, n_traversals=n_traversals, decoder=decoder,
                     log=log, progress=progress, factors=factors)
    ica_meta = artifacts.read_json(find_meta_file(ica_dir))
    with _stage(log, "report", str(out / "report.html")):
        return render(out, results, store=store, ica_dir=ica_dir, ica_meta=ica_meta,
                      commands=[f"clipica report {store_dir} --ica {ica_dir} --out {out}"],
                      title=title)
