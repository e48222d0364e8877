"""Rows and sources: what every dataset reader yields.

A :class:`Source` is random-access (``len`` + ``__getitem__``) so that the
extraction loop can shard it, resume it at any row and decode images in
DataLoader worker processes. Row order is deterministic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image


@dataclass
class Row:
    """One sample.

    id : stable identifier (CelebA file name, dataset index, ...); captions and
        labels are matched by id, never by sort order.
    image : decoded RGB image, or None for text-only sources.
    caption : text paired with the image, or None.
    labels : attribute name -> value. Binary CelebA-style attributes are 0/1;
        ground-truth continuous latents are named ``latent_*``.
    split : "train" / "val" / "test" when the dataset defines one.
    """

    id: str
    image: Image.Image | None = None
    caption: str | None = None
    labels: dict[str, float] = field(default_factory=dict)
    split: str | None = None


class Source(ABC):
    """A dataset: a deterministic, random-access sequence of :class:`Row`."""

    #: the ``--data`` spec that recreates this source (recorded in the manifest)
    spec: str
    #: names of the label columns every row carries (stable order)
    label_columns: list[str]
    has_images: bool = True
    has_captions: bool = True

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> Row:
        """Row ``index`` with its image decoded (RGB).

        Raises :class:`clipica.errors.BadImageError` when this row's image is
        missing or unusable; the extraction loop records it and moves on.
        """

    def row_id(self, index: int) -> str:
        """The id of row ``index`` without decoding its image (override when cheap)."""
        return self[index].id

    def fingerprint(self) -> str:
        """Short hash of what defines the rows (spec, files list, sizes), for resume checks."""
        import hashlib

        return hashlib.sha256(f"{self.spec}|{len(self)}".encode()).hexdigest()[:16]

    def describe(self) -> dict:
        """JSON-able provenance for the manifest (e.g. where captions came from)."""
        return {"spec": self.spec, "n_rows": len(self), "label_columns": list(self.label_columns)}
