"""The extraction loop: dataset -> CLIP forward -> :class:`~clipica.embeddings.store.EmbeddingStore`.

Batches are fixed windows of source positions (``[start + k*B, start + (k+1)*B)``),
so a resumed run recomputes exactly the batches an uninterrupted run would
have computed, and its store ends up identical. Decoding, preprocessing and
tokenisation run in DataLoader worker processes, overlapping the forward pass
in the main process. A row whose image is bad is recorded in ``errors.jsonl``
(``on_error="skip"``) or stops the run with a :class:`BadImageError`
naming the file (``on_error="fail"``), after every earlier batch was committed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from clipica._atomic import atomic_write_json, umask_mode
from clipica.embeddings._lock import WriterLock
from clipica.embeddings.batches import (
    Collate,
    RowDataset,
    bad_row_error,
    embed_batch,
)
from clipica.embeddings.store import (
    ERRORS,
    IMAGE,
    LOCK,
    MANIFEST,
    ROWS,
    SCHEMA_VERSION,
    TEXT,
    EmbeddingStore,
    StoreWriter,
    is_store_file,
    remove_store,
    rows_frame,
)
from clipica.errors import (
    ArtifactExistsError,
    InputError,
    StoreError,
    StoreMismatchError,
)

ON_ERROR = ("skip", "fail")
ENGINES = ("local", "ray")


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that shape the numbers (read from metadata, nothing imported)."""
    import platform
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("clipica", "numpy", "torch", "torchvision", "open_clip_torch", "transformers",
                 "datasets", "pillow", "pyarrow", "pandas"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def parse_shard(shard) -> tuple[int, int] | None:
    """'I/N' (0-based I) or (I, N) -> (I, N); None stays None."""
    if shard is None:
        return None
    if isinstance(shard, str):
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError:
            raise InputError(f"--shard must look like I/N (e.g. 0/4), got {shard!r}") from None
    else:
        i, n = (int(x) for x in shard)
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard {i}/{n}: need N >= 1 and 0 <= I < N")
    return i, n


def shard_range(n_rows: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """Contiguous slice of positions for shard I of N: shards concatenated in order = all rows."""
    if shard is None:
        return 0, n_rows
    i, n = shard
    return i * n_rows // n, (i + 1) * n_rows // n


def default_num_workers() -> int:
    """Leave one core to the forward pass; at most 4 decoders."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def extract(
    model: str,
    data: str,
    out: str | os.PathLike,
    *,
    pretrained: str | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    precision: str = "fp32",
    limit: int | None = None,
    split: str | None = None,
    shard=None,
    on_error: str = "skip",
    overwrite: bool = False,
    normalize: bool = False,
    num_workers: int | None = None,
    data_options: dict | None = None,
    progress: bool = True,
    engine: Any = "local",
    preprocess: str = "original",
    layer: str = "final",
) -> EmbeddingStore:
    """Embed every row of ``data`` with ``model`` into the store at ``out``; resumable.

    Parameters
    ----------
    model, pretrained : model spec and weights (see :func:`clipica.load_encoder`).
    data : a ``--data`` spec (see :func:`clipica.open_source`); ``split``, ``limit``
        and ``data_options`` (column names, captions file) are passed to it.
    out : store folder. Rerunning the same call resumes an interrupted run or
        returns the finished store; different settings raise StoreMismatchError
        unless ``overwrite=True``.
    batch_size : rows per forward pass (and per commit).
    device : "cpu", "cuda", "cuda:N" or "auto". precision : "fp32", "bf16" or
        "fp16" (autocast on GPU; CPU computes in fp32).
    shard : "I/N" to embed only the I-th of N contiguous slices (see :func:`merge`).
    on_error : "skip" (record bad rows in errors.jsonl) or "fail" (raise BadImageError).
    normalize : L2-normalise embeddings before storing (recorded in the manifest);
        by default they are stored as the model returns them.
    num_workers : DataLoader worker processes (default: cores - 1, at most 4; 0 = in-process).
    engine : "local" (this process + DataLoader workers), or a
        :class:`~clipica.embeddings.ray_engine.RayEngine` (Ray Data: decoding in read tasks,
        encoders in an actor pool; its arguments say which cluster, how many encoders and
        their GPUs/CPUs); "ray" is ``RayEngine(device=device)``. Both write the same store
        (ids, row order, errors; embeddings equal to float rounding) and either can resume
        the other's unfinished store.
    preprocess : "original" (the model's original pipeline: the same embeddings from
        open_clip and transformers for OpenAI/open_clip CLIPs) or "native" (a
        transformers model's own processor as-is); part of the resume key and
        recorded in the manifest (see :func:`clipica.load_encoder`).
    layer : "final" (the projected embedding), "pre-projection" (the pooled features
        before the projection) or "block:N" (the class / end-of-text token after block N);
        see :mod:`clipica.models.layers`. Part of the resume key and recorded in the
        manifest (``layer``). Outside final the text tower is stored only when it has the
        layer and the image tower's width there (else ``text_skipped`` says why).

    Returns
    -------
    EmbeddingStore with ``image`` (and ``text`` when the source has captions)
    of shape (n_rows, embed_dim), float32.
    """
    from clipica.data import open_source, resolve_spec

    _check_options(on_error=on_error, batch_size=batch_size, precision=precision,
                   num_workers=num_workers, preprocess=preprocess, layer=layer)
    ray_engine = _ray_engine(engine, device)  # checks its arguments and that ray imports
    shard_t = parse_shard(shard)
    # after the argument checks, so that bad input stays one line; before the slow part
    # (pandas/torch imports, reading a label table), so that it is not silent
    if progress:  # importing pandas/torch and reading a label table take seconds on a busy CPU
        sys.stderr.write(f"clipica extract: reading {data}\n")
        sys.stderr.flush()
    data_options = {k: v for k, v in (data_options or {}).items() if v is not None}
    # the manifest records absolute paths: the store's rows can be reopened from any directory
    data, data_options = resolve_spec(data, data_options)
    source = open_source(data, split=split, limit=limit, **data_options)
    run = _Run(model=model, pretrained=pretrained, data=data, out=out, split=split, limit=limit,
               data_options=data_options, source=source, shard=shard_t, batch_size=batch_size,
               precision=precision, normalize=normalize, preprocess=preprocess, on_error=on_error,
               num_workers=num_workers, progress=progress, layer=layer,
               # with Ray the encoders run on the workers' devices; the driver needs only metadata
               device="cpu" if ray_engine else device)
    done = None if overwrite else _finished_store(out, run.key)
    if done is None:
        writer = StoreWriter(out, run.key, overwrite=overwrite)  # holds the store's lock until closed
        if writer.state == "complete":  # finished by a writer that just let go
            writer.close()
            done = EmbeddingStore.open(out)
    if done is not None:
        if progress:
            sys.stderr.write(f"clipica extract: {out} is already complete ({done.n_rows} rows)\n")
        return done
    try:
        if ray_engine is not None:
            ray_engine.connect()  # a bad --address fails here, before any model is loaded
        return run.execute(writer, ray_engine)
    finally:
        writer.close()
        if ray_engine is not None:
            ray_engine.shutdown()


def _finished_store(out: str | os.PathLike, key: dict) -> EmbeddingStore | None:
    """The complete store at ``out`` made with ``key``, else None (the writer decides).

    Reusing a finished store only reads it, so it takes no writer lock: a finished store on
    read-only storage (or one a reader has open) is reused as is. A store being replaced
    (``--overwrite``) has an unfinished manifest until it is whole, so it is never mistaken
    for a finished one.
    """
    try:
        store = EmbeddingStore.open(out)
    except (StoreError, OSError):
        return None
    return store if store.manifest.get("key") == key else None


def _check_options(*, on_error, batch_size, precision, num_workers, preprocess, layer) -> None:
    from clipica.models import PRECISIONS
    from clipica.models.layers import parse_layer
    from clipica.models.preprocess import check_preprocess

    if on_error not in ON_ERROR:
        raise InputError(f"--on-error must be one of {', '.join(ON_ERROR)}; got {on_error!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"--batch-size must be a positive integer, got {batch_size!r}")
    if precision not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if num_workers is not None and num_workers < 0:
        raise InputError(f"--num-workers must be >= 0, got {num_workers}")
    check_preprocess(preprocess)
    parse_layer(layer)


def _ray_engine(engine: Any, device: str):
    """None for the local engine, else the :class:`RayEngine` to run on."""
    if isinstance(engine, str):
        if engine not in ENGINES:
            raise InputError(f"--engine must be one of {', '.join(ENGINES)}; got {engine!r}")
        if engine == "local":
            return None
        from clipica.embeddings.ray_engine import RayEngine

        return RayEngine(device=device)
    if not all(hasattr(engine, a) for a in ("connect", "run", "describe", "shutdown")):
        raise InputError(f"engine must be 'local', 'ray' or a RayEngine, got {type(engine).__name__}")
    return engine


class _Run:
    """One extraction's settings, its resume key and manifest, and the local loop."""

    def __init__(self, *, model, pretrained, data, out, split, limit, data_options, source, shard,
                 batch_size, precision, normalize, preprocess, on_error, num_workers, progress, device,
                 layer="final"):
        from clipica.models import resolve_device
        from clipica.models.layers import parse_layer

        self.model, self.pretrained, self.data, self.out = model, pretrained, data, out
        self.split, self.limit, self.data_options, self.source = split, limit, data_options, source
        self.batch_size, self.precision, self.normalize = batch_size, precision, normalize
        self.preprocess, self.on_error, self.progress = preprocess, on_error, progress
        self.num_workers = num_workers
        self.layer, self.text_skipped = str(parse_layer(layer)), None
        self.dev = resolve_device(device)
        self.start, self.stop = shard_range(len(source), shard)
        self.has_text = bool(getattr(source, "has_captions", True))
        self.key = {
            "model": model,
            "pretrained": pretrained,
            "data": data,
            "split": split,
            "limit": limit,
            "data_options": data_options,
            "fingerprint": source.fingerprint(),
            "shard": list(shard) if shard else None,
            "batch_size": batch_size,
            "precision": precision,
            "normalize": bool(normalize),
            "preprocess": preprocess,  # a resume never mixes two preprocessings
        }
        if self.layer != "final":  # absent means final, so stores written before --layer still resume
            self.key["layer"] = self.layer

    def manifest(self, encoder, ray_engine, engine_info: dict) -> dict:
        source, key, has_text = self.source, self.key, self.has_text
        return {
            "schema_version": SCHEMA_VERSION,
            "complete": False,
            "key": key,
            "model": {"spec": self.model, "pretrained": self.pretrained, "encoder_spec": encoder.spec,
                      "preprocess": self.preprocess, "encoder": encoder.describe()},
            "data": {"spec": self.data, "split": self.split, "limit": self.limit,
                     "options": self.data_options, "fingerprint": key["fingerprint"],
                     "n_source_rows": len(source), "source": source.describe()},
            "shard": key["shard"],
            "positions": [self.start, self.stop],
            "embed_dim": int(encoder.embed_dim),
            "layer": self.layer,
            "text_skipped": self.text_skipped,
            "has_text": has_text,
            "label_columns": list(source.label_columns),
            "normalize": bool(self.normalize),  # L2 per row before storing (naming reads this key)
            "normalization": "l2 per row" if self.normalize else "none (as returned by the model's projection)",
            "batch_size": self.batch_size,
            "precision": self.precision,
            "device": ray_engine.device if ray_engine is not None else str(self.dev),
            "engine": engine_info,  # the engine of the run that last wrote to the store
            "dtype": "float32",
            "layout": {"image": "image.f32", "text": "text.f32" if has_text else None,
                       "order": "C, row-major (n_rows, embed_dim)", "rows": "rows.parquet",
                       "errors": "errors.jsonl"},
            "versions": package_versions(),
        }

    def execute(self, writer, ray_engine) -> EmbeddingStore:
        from clipica.models import load_encoder

        if self.progress:  # importing torch/open_clip and building the model: tens of seconds on a busy CPU
            sys.stderr.write(f"clipica extract: loading {self.model}"
                             + (f" ({self.pretrained})" if self.pretrained else "")
                             + f" for {self.stop - self.start} rows\n")
            sys.stderr.flush()
        encoder = load_encoder(self.model, pretrained=self.pretrained, device=self.dev,
                               precision=self.precision, preprocess=self.preprocess, layer=self.layer)
        if self.has_text and self.layer != "final" and encoder.text_dim != encoder.embed_dim:
            # one store holds one width: a text tower without the layer, or of another width there, is left out
            self.has_text = False
            self.text_skipped = (encoder.text_missing or f"the text tower is {encoder.text_dim} wide at "
                                 f"{self.layer}, the image tower {encoder.embed_dim}")
            if self.progress:
                sys.stderr.write(f"clipica extract: image embeddings only at {self.layer} ({self.text_skipped})\n")
        engine_info = ray_engine.describe() if ray_engine is not None else {"name": "local"}
        pos = writer.begin(self.manifest(encoder, ray_engine, engine_info), self.start)
        writer.manifest["engine"] = engine_info
        if pos > self.stop or pos < self.start:
            raise StoreError(f"{self.out}: progress position {pos} outside this run's rows "
                             f"[{self.start}, {self.stop})")
        view = encoder.worker_view() if hasattr(encoder, "worker_view") else encoder
        if ray_engine is None:
            return self._local(writer, encoder, view, pos)
        del encoder  # the driver keeps only the preprocessing and tokenizer
        return ray_engine.run(writer, self.source, view, positions=(pos, self.stop),
                              batch_size=self.batch_size, has_text=self.has_text,
                              on_error=self.on_error, normalize=self.normalize,
                              progress=self.progress, label_columns=list(self.source.label_columns),
                              encoder_args={"spec": self.model, "pretrained": self.pretrained,
                                            "precision": self.precision, "preprocess": self.preprocess,
                                            "layer": self.layer})

    def _local(self, writer, encoder, view, pos: int) -> EmbeddingStore:
        """Decode in DataLoader workers, encode here, commit one batch at a time."""
        import torch
        from tqdm.auto import tqdm

        start, stop, source = self.start, self.stop, self.source
        windows = [list(range(a, min(a + self.batch_size, stop))) for a in range(pos, stop, self.batch_size)]
        workers = default_num_workers() if self.num_workers is None else int(self.num_workers)
        if not windows:  # resumed after the last commit: nothing left to decode
            workers = 0
        loader = torch.utils.data.DataLoader(
            RowDataset(source, view, self.has_text),
            batch_sampler=windows,
            num_workers=workers,
            collate_fn=Collate(view, self.has_text),
            pin_memory=self.dev.type == "cuda",
            prefetch_factor=4 if workers else None,
            persistent_workers=False,
        )
        pause = float(os.environ.get("CLIPICA_TEST_COMMIT_PAUSE", "0") or 0)  # test hook (resume tests)
        bar = tqdm(total=stop - start, initial=pos - start, unit="img", desc="extract",
                   disable=not self.progress, dynamic_ncols=True, smoothing=0.1)
        t0 = time.perf_counter()
        done = 0
        try:
            for batch in loader:
                if batch["bad"] and self.on_error == "fail":
                    raise bad_row_error(batch["bad"][0], writer.progress["n_rows"])
                writer.commit(**embed_batch(encoder, batch, has_text=self.has_text,
                                            normalize=self.normalize, precision=self.precision,
                                            label_columns=source.label_columns),
                              _pause=pause)
                done += len(batch["positions"])
                bar.update(len(batch["positions"]))
                if batch["bad"] and self.progress:
                    bar.set_postfix(errors=writer.progress["n_errors"])
        finally:
            bar.close()
            writer.close_files()  # the lock stays held through finalize
        seconds = time.perf_counter() - t0
        rate = done / seconds if seconds > 0 else 0.0
        if self.progress and done:
            sys.stderr.write(f"clipica extract: {done} rows this run, {rate:.1f} images/s\n")
        # throughput of the run that finished the store (decode + forward + writes), for benchmarks
        last_run = {"positions": done, "seconds": round(seconds, 4), "images_per_s": round(rate, 3),
                    "num_workers": workers, "device": str(self.dev)}
        return writer.finalize({"last_run": last_run})


def merge(shards, out: str | os.PathLike, *, overwrite: bool = False) -> EmbeddingStore:
    """Join the finished shard stores of one ``--shard I/N`` extraction into one store at ``out``.

    Shards must come from the same model, data and options, cover 0..N-1 once
    each, and be complete. Rows keep source order (shard slices are contiguous).

    The merged store is written into a hidden sibling folder (``.NAME.*.merge.tmp``)
    and renamed to ``out`` once complete, so ``out`` never holds half a store; a
    merge killed with ``kill -9`` leaves only that hidden folder, which the next merge into
    ``out`` removes. ``overwrite`` replaces a folder that holds store files only (a store,
    or an older clipica's unfinished leftovers) and refuses any other folder.
    """
    stores = [EmbeddingStore.open(p) for p in shards]
    if not stores:
        raise InputError("merge needs at least one shard store")
    keys = []
    for s in stores:
        k = dict(s.manifest["key"])
        if k.get("shard") is None:
            raise StoreMismatchError(f"{s.path} is not a shard (it was extracted without --shard)")
        keys.append(k)
    n = keys[0]["shard"][1]
    base = {k: v for k, v in keys[0].items() if k != "shard"}
    for s, k in zip(stores, keys, strict=True):
        other = {a: b for a, b in k.items() if a != "shard"}
        if other != base:
            diff = [a for a in base if base.get(a) != other.get(a)]
            raise StoreMismatchError(f"{s.path} was extracted with different settings ({', '.join(diff)}) than {stores[0].path}")
    indices = sorted(k["shard"][0] for k in keys)
    if indices != list(range(n)) or any(k["shard"][1] != n for k in keys):
        got = sorted(f"{k['shard'][0]}/{k['shard'][1]}" for k in keys)
        raise StoreMismatchError(f"merge needs shards 0/{n} .. {n - 1}/{n} exactly once each; got {got}")
    order = sorted(range(len(stores)), key=lambda j: keys[j]["shard"][0])
    stores = [stores[j] for j in order]

    out = Path(out)
    _check_merge_target(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    # one merge into `out` at a time; under that lock the hidden folders of a merge killed
    # with kill -9 (as large as the store) are removed before this one writes its own
    merging = WriterLock(out.parent / f".{out.name}.merge.lock")
    try:
        # mkdtemp's names: the prefix, 8 characters without a dot, the suffix (so that the
        # leftovers of a merge into `out.x` are not taken for this one's)
        ours = re.compile(rf"\.{re.escape(out.name)}\.[^.]+\.merge\.tmp")
        for leftover in out.parent.iterdir():
            if ours.fullmatch(leftover.name) and leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
        # written in a hidden sibling folder and renamed into place when whole: a merge killed
        # half-way never leaves a half store under the final name
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".merge.tmp", dir=out.parent))
        try:
            _write_merged(stores, tmp)
            if out.exists():
                lock = WriterLock(out / LOCK)  # refuses while an extraction writes there
                remove_store(out, keep=(LOCK,))
                lock.release()
                out.rmdir()
            os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        merging.release()
    return EmbeddingStore.open(out)


def _check_merge_target(out: Path, overwrite: bool) -> None:
    """``out`` may be new, empty, or (with ``overwrite``) a folder of store files only."""
    if out.exists() and not out.is_dir():
        raise ArtifactExistsError(f"--out {out} exists and is not a folder")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    foreign = [name for name in entries if not is_store_file(name)]
    if foreign:
        raise ArtifactExistsError(f"--out {out} holds files that are not an embedding store's ({foreign[0]!r}); "
                                  "choose another folder")
    if entries and not overwrite:
        what = "a store" if MANIFEST in entries else "the leftovers of an unfinished store"
        raise ArtifactExistsError(f"--out {out} already holds {what}; pass --overwrite to replace it")


def _write_merged(stores: list[EmbeddingStore], out: Path) -> None:
    """The merged store's files in ``out`` (an empty folder); the manifest last."""
    import pandas as pd

    os.chmod(out, umask_mode(0o777))  # mkdtemp makes 0700; a store folder gets the user's usual mode
    has_text = bool(stores[0].manifest.get("has_text"))
    for name, wanted in ((IMAGE, True), (TEXT, has_text)):
        if not wanted:
            continue
        with open(out / name, "wb") as dst:
            for s in stores:
                with open(s.path / name, "rb") as src:
                    nbytes = s.n_rows * s.embed_dim * 4
                    while nbytes > 0:  # copy exactly the committed bytes, in chunks
                        chunk = src.read(min(nbytes, 1 << 24))
                        if not chunk:
                            raise StoreError(f"{s.path / name} is shorter than its manifest says")
                        dst.write(chunk)
                        nbytes -= len(chunk)
            dst.flush()
            os.fsync(dst.fileno())
    labels = stores[0].label_columns
    frame = pd.concat([s.rows for s in stores], ignore_index=True)
    frame = rows_frame(frame.to_dict("records"), labels)
    frame.to_parquet(out / ROWS, index=False)
    with open(out / ERRORS, "w", encoding="utf-8") as f:
        for s in stores:
            for rec in s.errors.to_dict("records"):
                f.write(json.dumps({"id": rec["id"], "source_index": int(rec["source_index"]),
                                    "reason": rec["reason"]}) + "\n")
        f.flush()
        os.fsync(f.fileno())
    with open(out / ROWS, "rb") as f:
        os.fsync(f.fileno())
    m = json.loads(json.dumps(stores[0].manifest))
    m["key"]["shard"] = None
    m["shard"] = None
    m["positions"] = [stores[0].manifest["positions"][0], stores[-1].manifest["positions"][1]]
    m.pop("last_run", None)
    m["merged_from"] = [str(s.path) for s in stores]
    m["counts"] = {
        c: sum(int(s.manifest["counts"].get(c, 0)) for s in stores)
        for c in ("rows", "errors", "truncated_captions", "missing_captions")
    }
    m["complete"] = True
    atomic_write_json(out / MANIFEST, m)
