"""The few-shot stage: ``RUN/fewshot/fewshot.json`` (+ table, figure), reused while its inputs hold.

``clipica fewshot --train STORE [--shift NAME=STORE ...] --out RUN/fewshot`` comes here; the
report of a run folder picks the result up when its ``store`` fingerprint is the report's
store. A ``fewshot.json`` whose fingerprints (train store, test/shift stores, protocol
settings) match the current inputs is reused; a stale one is recomputed and replaced.
"""

from __future__ import annotations

import os
from pathlib import Path

from clipica._atomic import atomic_write_text
from clipica.pipeline import artifacts
from clipica.pipeline._log import reuse_valid

FEWSHOT_JSON = "fewshot.json"
#: files the stage writes into its folder (fewshot.json last: it marks the set finished)
OUTPUTS = ("table.md", "table.csv", "fewshot.png", FEWSHOT_JSON)


def expected_fingerprints(train, *, shifts=None, test=None, settings: dict) -> dict:
    """The fingerprints a valid ``fewshot.json`` for these inputs carries."""
    from clipica.embeddings.store import EmbeddingStore

    def fp(path):
        return artifacts.store_fingerprint(EmbeddingStore.open(path)) if Path(path).exists() else None

    out = {"store": fp(train), "params": artifacts.params_fingerprint(settings)}
    if test is not None:
        out["test"] = fp(test)
    for name, path in (shifts or {}).items():
        out[f"shift:{name}"] = fp(path)
    return out


def fewshot_stage(train: str | os.PathLike, out_dir: str | os.PathLike, *, shifts: dict | None = None,
                  test=None, label: str | None = None, modality: str = "image", shots=None, val_shots=None,
                  seeds=None, variants=None, reuse: bool = True, progress: bool = True, log=None,
                  settings=None, zeroshot: bool = True, prompts=None):
    """Reuse or compute the few-shot experiment; return ``(FewShotRuns, reused)``.

    Arguments as :func:`clipica.fewshot.fewshot_from_stores` (its defaults when None).
    Writes ``out_dir/`` ``table.md``, ``table.csv``, ``fewshot.png`` and ``fewshot.json``
    (last). With ``reuse`` a ``fewshot.json`` whose fingerprints match is loaded instead.
    Bad input (missing store or column, too few rows) raises InputError before anything
    in ``out_dir`` is touched.
    """
    from clipica import fewshot as F
    from clipica.fewshot.stores import TEST_FRACTION, fewshot_settings

    out_dir = Path(out_dir)
    path = out_dir / FEWSHOT_JSON
    label = label or F.DEFAULT_LABEL
    shots = list(shots or F.SHOTS)
    val_shots = list(val_shots or F.VAL_SHOTS)
    seeds = [int(s) for s in (seeds if seeds is not None else range(F.N_SEEDS))]
    variants = list(variants or F.DEFAULT_VARIANTS)
    settings = [tuple(x) for x in (settings or F.DEFAULT_SETTINGS)]
    shifts = dict(shifts or {})
    if reuse and path.is_file():
        params = fewshot_settings(label=label, modality=modality,
                                    test_fraction=None if test is not None else TEST_FRACTION, shots=shots,
                                    val_shots=val_shots, seeds=seeds, variants=variants, shifts=list(shifts),
                                    settings=settings, zeroshot=zeroshot, prompts=prompts)
        expect = expected_fingerprints(train, shifts=shifts, test=test, settings=params)
        # a missing store is never "unchecked": the computation below says which one
        doc = reuse_valid(path, "fewshot", expect, log) if None not in expect.values() else None
        if doc is not None:
            return F.FewShotRuns.from_dict(doc), True
    result = F.fewshot_from_stores(train, label=label, shifts=shifts, test=test, modality=modality, shots=shots,
                                   val_shots=val_shots, seeds=seeds, variants=variants, settings=settings,
                                   zeroshot=zeroshot, prompts=prompts, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():  # the stale result goes first: a kill below leaves no stale fewshot.json
        path.unlink()
    atomic_write_text(out_dir / "table.md", result.markdown() + "\n")
    atomic_write_text(out_dir / "table.csv", result.table().to_csv(index=False, float_format="%.3f"))
    from clipica.pipeline.analyses import _png
    from clipica.viz.fewshot import plot_fewshot

    _png(plot_fewshot(result), out_dir / "fewshot.png", dpi=110)
    result.save(path)
    return result, False
