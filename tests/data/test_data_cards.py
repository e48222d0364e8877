"""Every data card parses (YAML front matter) and names the fields its dataset really has.

The "real" fields come from the code that produces the data (the CelebA reader run on a
fake CelebA in the official layout, ``SyntheticFaces(...).label_columns``, the simulation's
latent blocks and result fields), never from the card itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import REPO

yaml = pytest.importorskip("yaml")

CARDS_DIR = REPO / "data_cards"

# The header line of CelebA's list_attr_celeba.txt, in the file's order (Liu et al. 2015).
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips "
    "Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin "
    "Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open "
    "Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline "
    "Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()

# Columns every row table has that are not labels.
NON_LABEL_FEATURES = {"image", "caption", "split", "id", "source_index", "text"}


def parse_card(path: Path) -> tuple[dict, str]:
    """(YAML header as a dict, markdown body) of a Hugging Face style dataset card."""
    text = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, flags=re.S)
    assert match, f"{path.name}: no YAML front matter between two '---' lines at the top"
    header = yaml.safe_load(match.group(1))
    assert isinstance(header, dict), f"{path.name}: the YAML header is not a mapping"
    return header, match.group(2)


def feature_names(header: dict) -> list[str]:
    """Column names listed under ``dataset_info.features`` (HF card format)."""
    info = header.get("dataset_info") or {}
    if isinstance(info, list):  # HF allows one dataset_info per config
        feats = [f for part in info for f in (part.get("features") or [])]
    else:
        feats = info.get("features") or []
    return [str(f["name"]) for f in feats if isinstance(f, dict) and "name" in f]


def named_in_card(name: str, header: dict, body: str) -> bool:
    if name in feature_names(header):
        return True
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", body) is not None


def all_cards() -> list[Path]:
    return sorted(CARDS_DIR.glob("*.md"))


# ---------------------------------------------------------------- real fields per dataset


def _write_fake_celeba(root: Path, n: int = 3) -> None:
    """The official layout with n images: attribute file (-1/1) and partition file."""
    from PIL import Image

    (root / "img_align_celeba").mkdir(parents=True)
    lines = [str(n), " ".join(CELEBA_ATTRIBUTES)]
    part = []
    for i in range(1, n + 1):
        name = f"{i:06d}.jpg"
        Image.new("RGB", (178, 218), (40 * i, 90, 140)).save(root / "img_align_celeba" / name)
        values = ["1" if (i + j) % 2 else "-1" for j in range(len(CELEBA_ATTRIBUTES))]
        lines.append(name + "  " + " ".join(values))
        part.append(f"{name} {i % 3}")
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(part) + "\n")


def real_fields_celeba(tmp_path: Path) -> list[str]:
    """The label columns clipica's CelebA reader produces from the official files."""
    from clipica.data import open_source

    _write_fake_celeba(tmp_path / "celeba")
    source = open_source(f"celeba:{tmp_path / 'celeba'}")
    return list(source.label_columns)


def real_fields_synthetic_faces(tmp_path: Path) -> list[str]:
    from clipica.data.synthetic_faces import SyntheticFaces

    return list(SyntheticFaces(n=4, seed=0).label_columns)


def real_fields_multimodal_simulation(tmp_path: Path) -> list[str]:
    """The latent blocks the two simulators draw (Daunhawer's multimodal, Liu's partial-causal)."""
    from clipica.simulate import MultimodalLatents, PartialCausalLatents

    # derived arrays, not latents: the mixings' inputs (concatenations of the blocks),
    # the changed style s + b*eps and its mask b
    derived = {"z1", "z2", "style_tilde", "change_mask"}
    keys = [*MultimodalLatents().sample(4, rng=0), *PartialCausalLatents().sample(4, rng=0)]
    return [k for k in dict.fromkeys(keys) if k not in derived]


REAL_FIELDS = {
    "celeba": real_fields_celeba,
    "synthetic-faces": real_fields_synthetic_faces,
    "multimodal-simulation": real_fields_multimodal_simulation,
}


# ------------------------------------------------------------------------------ tests


def test_there_are_cards_for_every_dataset_clipica_names():
    stems = {p.stem for p in all_cards()}
    assert "TEMPLATE" in stems
    assert "celeba" in stems


@pytest.mark.parametrize("path", all_cards(), ids=lambda p: p.name)
def test_card_parses_with_required_keys(path):
    header, body = parse_card(path)
    for key in ("pretty_name", "license"):
        assert header.get(key), f"{path.name}: YAML header lacks {key!r}"
    assert len(body.strip().splitlines()) >= 10, f"{path.name}: the card has almost no body"
    if header["license"] == "other":  # a licence without an SPDX id must be explained
        assert re.search(r"^#+ .*licen[cs]e", body, flags=re.I | re.M), f"{path.name}: no licence section"
    # every other card is checked against the data it describes below
    if path.stem != "TEMPLATE":
        assert path.stem in REAL_FIELDS, (
            f"{path.name}: add a function to REAL_FIELDS that returns the dataset's real fields"
        )


def test_celeba_card_lists_exactly_the_40_attributes():
    header, body = parse_card(CARDS_DIR / "celeba.md")
    labels = [n for n in feature_names(header) if n not in NON_LABEL_FEATURES]
    assert labels == CELEBA_ATTRIBUTES
    assert len(labels) == 40
    splits = {s["name"]: s["num_examples"] for s in header["dataset_info"]["splits"]}
    assert splits == {"train": 162770, "validation": 19867, "test": 19962}
    assert sum(splits.values()) == 202599
    for layout_file in ("img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt"):
        assert layout_file in body
    assert "non-commercial" in body.lower()


@pytest.mark.parametrize(
    "path", [p for p in all_cards() if p.stem != "TEMPLATE"], ids=lambda p: p.name
)
def test_card_names_the_real_fields(path, tmp_path):
    header, body = parse_card(path)
    real = REAL_FIELDS[path.stem](tmp_path)
    assert real, f"{path.stem}: the dataset reports no fields"
    missing = [name for name in real if not named_in_card(name, header, body)]
    assert not missing, f"{path.name} does not name these real fields: {missing}"
    # and it does not invent label columns the data does not have
    listed = [n for n in feature_names(header) if n not in NON_LABEL_FEATURES]
    invented = sorted(set(listed) - set(real))
    assert not invented, f"{path.name} lists fields the dataset does not have: {invented}"
