"""One batch of the extraction loop, shared by the local and the Ray engines.

:class:`RowDataset` decodes and preprocesses rows (in DataLoader workers or Ray tasks),
:class:`Collate` stacks a window of them into a batch, :func:`embed_batch` runs the encoder
and returns what ``StoreWriter.commit`` takes. Both engines call the same three, so they
store the same thing; :func:`bad_row_error` is the ``--on-error fail`` error of either.
"""

from __future__ import annotations

import numpy as np

from clipica.errors import BadImageError, describe_exception
from clipica.models.base import to_device


class RowDataset:
    """Position -> decoded and preprocessed row, or the reason it failed (runs in workers)."""

    def __init__(self, source, encoder_view, with_text: bool):
        self.source = source
        self.encoder = encoder_view
        self.with_text = with_text

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, pos: int) -> dict:
        from clipica.data.images import check_resize_bound

        try:
            row = self.source[pos]
        except BadImageError as exc:
            rid = _safe_row_id(self.source, pos)
            return {"pos": pos, "ok": False, "id": rid, "reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one row that cannot be read must not end the run
            rid = _safe_row_id(self.source, pos)
            return {"pos": pos, "ok": False, "id": rid,
                    "reason": f"{rid}: reading the row failed ({describe_exception(exc)})"}
        if row.image is None:
            return {"pos": pos, "ok": False, "id": row.id, "reason": f"{row.id}: row has no image"}
        try:
            size = getattr(self.encoder, "image_size", None)
            if size:  # before preprocessing: the resize itself is what costs gigabytes
                check_resize_bound(row.image, int(size), name=str(row.id))
            pixels = self.encoder.preprocess(row.image)
        except BadImageError as exc:
            return {"pos": pos, "ok": False, "id": row.id, "reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a transform failing on one odd image is that row's problem
            return {"pos": pos, "ok": False, "id": row.id,
                    "reason": f"{row.id}: preprocessing failed ({describe_exception(exc)})"}
        return {"pos": pos, "ok": True, "id": row.id, "pixels": pixels, "caption": row.caption,
                "labels": row.labels, "split": row.split}


def _safe_row_id(source, pos):
    try:
        return str(source.row_id(pos))
    except Exception:  # noqa: BLE001
        return str(pos)


class Collate:
    """List of items -> one batch: stacked pixels and tokens of the good rows, plus the failures."""

    def __init__(self, encoder_view, with_text: bool):
        self.encoder = encoder_view
        self.with_text = with_text

    def __call__(self, items: list[dict]) -> dict:
        import torch

        good = [it for it in items if it["ok"]]
        bad = [{"id": it["id"], "source_index": int(it["pos"]), "reason": it["reason"]} for it in items if not it["ok"]]
        batch = {"positions": [int(it["pos"]) for it in items], "good": good, "bad": bad,
                 "pixels": None, "tokens": None, "truncated": None}
        for it in good:
            it.pop("ok")
        if good:
            batch["pixels"] = torch.stack([it.pop("pixels") for it in good])
            if self.with_text:
                captions = [it["caption"] if it["caption"] is not None else "" for it in good]
                batch["tokens"], batch["truncated"] = self.encoder.tokenize(captions)
        return batch




def jsonable_label(v):
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def bad_row_error(first: dict, n_committed: int) -> BadImageError:
    """The ``--on-error fail`` error for a batch's first bad row (earlier batches are committed)."""
    return BadImageError(
        f"{first['reason']} (row {first['source_index']}; --on-error fail stops here; "
        f"{n_committed} rows committed before it are kept, rerun with "
        "--on-error skip to record bad rows and go on)"
    )


def embed_batch(encoder, batch: dict, *, has_text: bool, normalize: bool, precision: str,
                label_columns) -> dict:
    """One collated batch (see :class:`Collate`) -> the keyword arguments of ``StoreWriter.commit``.

    ``image``/``text``: float32 arrays of shape (n_good, embed_dim) (``text`` None without
    captions); ``rows``: the good rows' table records; ``errors``: the bad rows. Shared by
    the local loop and the Ray encoder actors, so both engines store the same thing.
    """
    import torch

    dev = encoder.device
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    use_amp = dev.type == "cuda" and amp_dtype is not None
    good = batch["good"]
    n_trunc = 0
    if good:
        with torch.inference_mode():
            pixels = batch["pixels"].to(dev, non_blocking=True)
            txt = None
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp):
                img = encoder.encode_image(pixels)
                if has_text:
                    txt = encoder.encode_text(to_device(batch["tokens"], dev))
            img = _finish(img, normalize)
            txt = _finish(txt, normalize) if txt is not None else None
        n_trunc = int(np.sum(batch["truncated"])) if batch["truncated"] is not None else 0
    else:
        img = np.zeros((0, encoder.embed_dim), np.float32)
        txt = np.zeros((0, encoder.embed_dim), np.float32) if has_text else None
    rows = []
    for k, it in enumerate(good):
        rec = {"id": str(it["id"]), "source_index": int(it["pos"]), "caption": it["caption"],
               "split": it["split"]}
        for c in label_columns:
            rec[c] = jsonable_label(it["labels"].get(c))
        rec["caption_truncated"] = bool(batch["truncated"][k]) if batch["truncated"] is not None else False
        rows.append(rec)
    n_missing = sum(1 for it in good if it["caption"] is None) if has_text else 0
    return {"image": img, "text": txt, "rows": rows, "errors": batch["bad"],
            "next_position": batch["positions"][-1] + 1, "n_truncated": n_trunc,
            "n_missing_captions": n_missing}


def _finish(t, normalize: bool) -> np.ndarray:
    import torch

    t = t.float()
    if normalize:
        t = torch.nn.functional.normalize(t, dim=-1)
    return t.cpu().numpy().astype(np.float32, copy=False)
