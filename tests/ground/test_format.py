"""The format-tag envelope and content fingerprints shared by every result."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clipica._format import check_fingerprints, content_hash, read_json, tagged, untag
from clipica.errors import ArtifactError, ClipicaError, StaleArtifactError


def test_tagged_untag_round_trip_returns_body_and_fingerprints():
    d = tagged("clipica.probe/1", {"a": 1, "b": [1, 2]}, {"store": "abc", "decomposition": "def"})
    assert d["format"] == "clipica.probe/1"
    d = json.loads(json.dumps(d))
    body, fps = untag(d, "clipica.probe/1")
    assert body == {"a": 1, "b": [1, 2]}
    assert fps == {"store": "abc", "decomposition": "def"}


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ({"a": 1}, "no format tag"),
        ({"format": "clipica.names/1"}, "holds a clipica names"),
        ({"format": "clipica.probe/2"}, "newer format"),
        ({"format": "clipica.probe/0"}, "older format"),
        ({"format": "probe-v1"}, "unreadable format tag"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_untag_refuses_wrong_or_missing_tag_with_one_line(d, match):
    with pytest.raises(ArtifactError, match=match) as info:
        untag(d, "clipica.probe/1", source="probe.json")
    assert "\n" not in str(info.value)
    assert "probe.json" in str(info.value)
    assert isinstance(info.value, (ClipicaError, ValueError))


def test_tagged_rejects_reserved_keys_and_bad_tags():
    with pytest.raises(ValueError, match="reserved"):
        tagged("clipica.probe/1", {"format": 1})
    with pytest.raises(ValueError, match="clipica.<kind>/<version>"):
        tagged("probe/1", {})


def test_check_fingerprints_refuses_other_inputs_and_ignores_unknown():
    check_fingerprints({"store": "s1", "decomposition": "d1"}, {"store": "s1", "decomposition": None})
    with pytest.raises(StaleArtifactError, match="another decomposition"):
        check_fingerprints({"store": "s1", "decomposition": "d1"}, {"decomposition": "d2"})
    with pytest.raises(StaleArtifactError, match="no record"):
        check_fingerprints({}, {"store": "s1"})


def test_content_hash_sees_every_byte_dtype_shape_name_and_meta():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3))
    base = content_hash({"a": a, "b": np.arange(3)}, {"k": 3})
    assert len(base) == 64
    assert content_hash({"b": np.arange(3), "a": a.copy()}, {"k": 3}) == base  # order-free
    assert content_hash({"a": np.asfortranarray(a), "b": np.arange(3)}, {"k": 3}) == base  # layout-free
    a2 = a.copy()
    a2[2, 1] = np.nextafter(a2[2, 1], np.inf)
    variants = [
        content_hash({"a": a2, "b": np.arange(3)}, {"k": 3}),
        content_hash({"a": a.astype(np.float32), "b": np.arange(3)}, {"k": 3}),
        content_hash({"a": a.reshape(3, 4), "b": np.arange(3)}, {"k": 3}),
        content_hash({"c": a, "b": np.arange(3)}, {"k": 3}),
        content_hash({"a": a, "b": np.arange(3)}, {"k": 4}),
    ]
    assert base not in variants and len(set(variants)) == len(variants)
    # unusual dtypes and 0-d arrays hash too
    content_hash({"h": np.ones(3, np.float16), "z": np.array(1.0), "t": np.array([True]), "e": np.zeros((0, 2))})


def test_read_json_one_line_errors(tmp_path):
    p = tmp_path / "x.json"
    with pytest.raises(ArtifactError, match="does not exist"):
        read_json(p)
    p.write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON") as info:
        read_json(p)
    assert "\n" not in str(info.value)
    p.write_text("[1]")
    with pytest.raises(ArtifactError, match="JSON object"):
        read_json(p)
    p.write_text(json.dumps(tagged("clipica.names/1", {"x": 1})))
    assert read_json(p, "clipica.names/1")["x"] == 1
    with pytest.raises(ArtifactError, match="not a probe"):
        read_json(p, "clipica.probe/1")
