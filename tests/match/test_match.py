"""clipica match: components of two runs matched on the same rows (issue 27).

Known answers from planted sources: two random mixings of the same non-Gaussian sources
give the same ICA components (|r| ~ 1, up to permutation and sign); independent sources
give nothing to match; a rotated block is the same subspace (canonical correlations 1).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import clipica
from clipica.decompositions.ica import ICA
from clipica.errors import InputError
from clipica.match import canonical_correlations, match_codes, shared_rows

KINDS = ("laplace", "uniform", "exponential", "laplace", "uniform", "exponential")


def _sources(n: int, seed: int, k: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    draw = {"laplace": lambda: rng.laplace(size=n), "uniform": lambda: rng.uniform(-1, 1, n),
            "exponential": lambda: rng.exponential(size=n)}
    return np.column_stack([draw[KINDS[i % len(KINDS)]]() for i in range(k)])


def _mix(S: np.ndarray, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return S @ rng.normal(size=(d, S.shape[1])).T + 1e-3 * rng.normal(size=(len(S), d))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_mixings_of_the_same_sources_match_perfectly(seed):
    S = _sources(3000, seed)
    Xa, Xb = _mix(S, 10, 100 + seed), _mix(S, 7, 200 + seed)  # different widths
    ia = ICA(n_components=6, random_state=seed).fit(Xa)
    ib = ICA(n_components=6, random_state=seed + 1).fit(Xb)
    res = clipica.match(Xa, ia, Xb, ib)
    assert len(res.pairs) == 6
    assert min(abs(p["corr"]) for p in res.pairs) > 0.99
    assert {p["a"] for p in res.pairs} == set(range(6)) == {p["b"] for p in res.pairs}
    for p in res.pairs:  # the sign makes B's code agree with A's
        assert p["sign"] == np.sign(res.codes.corr[p["a"], p["b"]])
    # the control: PCA's axes are a rotation of the sources, not the sources
    assert res.control is not None and res.control.summary["mean_abs_corr"] < 0.95
    assert res.summary["mean_abs_corr"] > res.control.summary["mean_abs_corr"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_independent_sources_do_not_match(seed):
    Sa, Sb = _sources(3000, seed), _sources(3000, seed + 50)
    cm = match_codes(Sa, Sb)
    # |r| of independent columns is ~ N(0, 1/n): 36 of them stay far below 0.1 at n = 3000
    assert max(abs(p["corr"]) for p in cm.pairs) < 0.1
    assert cm.summary["mean_abs_corr"] < 0.05


def test_gaussian_components_are_flagged_and_the_others_match():
    rng = np.random.default_rng(11)
    S = np.column_stack([_sources(4000, 11, k=4), rng.normal(size=(4000, 2))])  # 2 Gaussian sources
    Xa, Xb = _mix(S, 9, 1), _mix(S, 8, 2)
    res = clipica.match(Xa, ICA(n_components=6, random_state=0).fit(Xa), Xb,
                        ICA(n_components=6, random_state=1).fit(Xb), significance=True, control=False)
    for side in ("a", "b"):
        assert sum(res.significance[side]["significant"]) == 4, res.significance[side]
    both = [p for p in res.pairs if p["significant_a"] and p["significant_b"]]
    assert len(both) == 4 == res.summary["n_significant_pairs"]
    assert min(abs(p["corr"]) for p in both) > 0.99
    assert {p["a"] for p in res.pairs if not p["significant_a"]} == \
        {i for i, s in enumerate(res.significance["a"]["significant"]) if not s}
    # the Gaussian remainders have no axes to match, but they are the same subspace
    (blk,) = [b for b in res.blocks if b["gaussian_a"]]
    assert blk["gaussian_b"] and len(blk["a"]) == len(blk["b"]) == 2
    assert min(blk["canonical"]) > 0.99


def test_different_numbers_of_components_leave_the_surplus_unpaired():
    S = _sources(3000, 3, k=7)
    Xa, Xb = _mix(S[:, :5], 9, 1), _mix(S, 12, 2)  # A sees 5 of B's 7 sources
    res = clipica.match(Xa, ICA(n_components=5, random_state=0).fit(Xa),
                        Xb, ICA(n_components=7, random_state=0).fit(Xb))
    assert res.codes.corr.shape == (5, 7) and len(res.pairs) == 5
    assert min(abs(p["corr"]) for p in res.pairs) > 0.98
    assert res.control.corr.shape == (5, 7)


def test_a_rotated_block_is_the_same_subspace():
    rng = np.random.default_rng(0)
    S = _sources(2000, 4, k=4)
    theta = 0.6
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    Sb = S.copy()
    Sb[:, 2:] = S[:, 2:] @ rot  # inside the block the axes differ, the span does not
    Sb = Sb[:, [1, 0, 3, 2]]
    cm = match_codes(S, Sb + 1e-6 * rng.normal(size=Sb.shape), blocks_a=[[2, 3]], blocks_b=[[2, 3]])
    (blk,) = cm.blocks
    assert blk["a"] == [2, 3] and blk["b"] == [2, 3] and blk["partner"] == "block"
    np.testing.assert_allclose(blk["canonical"], [1.0, 1.0], atol=1e-6)
    assert max(abs(cm.corr[2, 2]), abs(cm.corr[2, 3])) < 0.9  # the single axes do not match
    # against an independent pair the canonical correlations are ~0
    cc = canonical_correlations(S[:, 2:], _sources(2000, 9, k=2))
    assert cc.max() < 0.1


def test_rows_are_joined_on_ids_and_give_the_aligned_answer():
    S = _sources(2000, 5)
    Xa, Xb = _mix(S, 8, 1), _mix(S, 8, 2)
    ids = np.array([f"img{i}" for i in range(2000)])
    ia, ib = ICA(n_components=6, random_state=0).fit(Xa), ICA(n_components=6, random_state=0).fit(Xb)
    ref = clipica.match(Xa, ia, Xb, ib, ids_a=ids, ids_b=ids)
    assert ref.rows["how"] == "order" and ref.rows["n_shared"] == 2000
    perm = np.random.default_rng(0).permutation(2000)[:1500]  # B holds 1500 of the rows, shuffled
    got = clipica.match(Xa, ia, Xb[perm], ib, ids_a=ids, ids_b=ids[perm], control=False)
    assert got.rows == {"n_shared": 1500, "n_a": 2000, "n_b": 1500, "how": "ids"}
    assert got.control is None
    assert {(p["a"], p["b"]) for p in got.pairs} == {(p["a"], p["b"]) for p in ref.pairs}
    assert min(abs(p["corr"]) for p in got.pairs) > 0.99


def test_no_shared_id_is_refused_in_one_line():
    with pytest.raises(InputError, match="no row id is shared") as err:
        shared_rows(["a", "b"], ["c", "d"])
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="repeats"):
        shared_rows(["a", "a", "b"], ["b", "a"])
    with pytest.raises(InputError, match="pass ids_a and ids_b"):
        S = _sources(100, 0)
        clipica.match(S, ICA(n_components=2).fit(S), S[:50], ICA(n_components=2).fit(S))


def test_attributes_name_each_code_and_its_twin():
    S = _sources(3000, 6)
    labels = pd.DataFrame({"id": [str(i) for i in range(3000)],
                           "big": (S[:, 0] > np.median(S[:, 0])).astype(int),
                           "odd": (S[:, 1] > 0.3).astype(float)})
    Sb = -S[:, [1, 0, 2, 3, 4, 5]]  # permuted and sign-flipped: the same codes
    cm = match_codes(S, Sb, labels=labels)
    by_a = {p["a"]: p for p in cm.pairs}
    assert by_a[0]["b"] == 1 and by_a[0]["sign"] == -1 and by_a[0]["attribute_a"] == "big"
    assert by_a[0]["attribute_b"] == "big" and by_a[0]["auc_a"] > 0.99 and by_a[0]["auc_b"] < 0.01
    twins = {t["attribute"]: t for t in cm.attributes}
    assert twins["odd"]["a"] == 1 and twins["odd"]["b"] == 0 and twins["odd"]["paired"]
    assert cm.summary["attributes_min"] == pytest.approx(1.0) and cm.summary["n_attributes"] == 2
    assert cm.summary["top"] == 2  # defaults to the number of binary attributes


def test_result_round_trips_with_its_format_tag():
    from clipica.match import MatchResult

    S = _sources(500, 7)
    Xa, Xb = _mix(S, 8, 1), _mix(S, 8, 2)
    res = clipica.match(Xa, ICA(n_components=6, random_state=0).fit(Xa), Xb,
                        ICA(n_components=6, random_state=0).fit(Xb), fingerprints={"store_a": "x"})
    d = json.loads(json.dumps(res.to_dict()))
    assert d["format"] == "clipica.match/1" and d["fingerprints"] == {"store_a": "x"}
    assert set(d["pairs"][0]) >= {"a", "b", "corr", "sign", "attribute_a", "attribute_b"}
    back = MatchResult.from_dict(d)
    np.testing.assert_allclose(back.codes.corr, res.codes.corr, atol=1e-6)
    assert back.pairs == d["pairs"] and back.control.summary == d["control"]["summary"]
    with pytest.raises(clipica.ArtifactError):
        MatchResult.from_dict({**d, "format": "clipica.compare/1"})


# ---------------------------------------------------------------------------- run folders and CLI


def _run(path, X, ids, labels: dict | None = None, k: int = 6):
    """A run folder: store/ (from arrays) and ica/ fitted by the CLI."""
    from clipica.cli import main
    from clipica.embeddings.store import StoreWriter

    labels = labels or {}
    w = StoreWriter(path / "store", {"model": "m", "data": "d"})
    w.begin({"schema_version": 1, "key": {"model": "m", "data": "d"}, "embed_dim": X.shape[1], "has_text": False,
             "label_columns": list(labels), "model": {"spec": "m"}, "data": {"spec": "d"}}, 0)
    rows = [{"id": str(ids[i]), "source_index": i, "caption": "c", "split": None, "caption_truncated": False,
             **{c: int(v[i]) for c, v in labels.items()}} for i in range(len(X))]
    w.commit(X.astype(np.float32), None, rows, errors=[], next_position=len(X))
    w.finalize()
    assert main(["ica", str(path / "store"), "-k", str(k), "--out", str(path / "ica")]) == 0
    return path


def test_cli_matches_two_runs_and_writes_match_json(tmp_path, capsys):
    from clipica.cli import main

    S = _sources(1500, 8)
    ids = np.array([f"f{i}" for i in range(1500)])
    lab = {"big": (S[:, 0] > 0).astype(int)}
    a = _run(tmp_path / "a", _mix(S, 8, 1), ids, lab)
    b = _run(tmp_path / "b", _mix(S, 9, 2)[::-1], ids[::-1], lab and {"big": lab["big"][::-1]})
    capsys.readouterr()
    assert main(["match", str(a), str(b), "--out", str(a / "match")]) == 0
    out = capsys.readouterr().out
    assert "1500 shared rows" in out and "PCA control" in out
    doc = json.loads((a / "match" / "match.json").read_text())
    assert doc["format"] == "clipica.match/1"
    assert set(doc["fingerprints"]) == {"store_a", "decomposition_a", "store_b", "decomposition_b", "params"}
    assert doc["rows"]["how"] == "ids" and min(abs(p["corr"]) for p in doc["pairs"]) > 0.98
    assert doc["inputs"]["a"]["k"] == 6 and doc["inputs"]["b"]["run"] == str(b)
    assert (a / "match" / "match.png").is_file() and (a / "match" / "pairs.csv").is_file()
    _report_section_of(a, b, doc, tmp_path)
    # a second run refuses to overwrite silently
    assert main(["match", str(a), str(b), "--out", str(a / "match")]) == 2


def test_cli_refuses_runs_without_a_shared_id_in_one_line(tmp_path, capsys):
    from clipica.cli import main

    S = _sources(400, 9)
    a = _run(tmp_path / "a", _mix(S, 6, 1), [f"a{i}" for i in range(400)], k=3)
    b = _run(tmp_path / "b", _mix(S, 6, 2), [f"b{i}" for i in range(400)], k=3)
    capsys.readouterr()
    assert main(["match", str(a), str(b), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "no row id is shared" in err and err.count("\n") == 1
    assert main(["match", str(a), str(tmp_path / "nope"), "--out", str(tmp_path / "m")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["match", str(a), str(b), "--decomposition", "pca", "--out", str(tmp_path / "m")]) == 2
    assert "no pca/ decomposition" in capsys.readouterr().err


def _report_section_of(a, b, doc, tmp_path):
    """RUN/match/match.json is found for either of its two runs (with its side), not for a third."""
    from clipica.decompositions import load_decomposition
    from clipica.embeddings.store import EmbeddingStore
    from clipica.pipeline import artifacts
    from clipica.pipeline.report import find_match
    from clipica.report import build_report

    def both(run):
        return {"store": artifacts.store_fingerprint(EmbeddingStore.open(run / "store")),
                "decomposition": artifacts.decomposition_fingerprint(load_decomposition(run / "ica"))}

    path = a / "match" / "match.json"
    assert find_match(path, both(a))["_side"] == "a" and find_match(path, both(b))["_side"] == "b"
    assert find_match(path, {"store": "other", "decomposition": "other"}) is None
    html = build_report(tmp_path / "ra", match=find_match(path, both(a))).read_text()
    assert "The same components in another run" in html and f"Matched with {b}" in html
    assert "for PCA with the same K" in html and "1500 shared rows" in html
    html_b = build_report(tmp_path / "rb", match=find_match(path, both(b))).read_text()
    assert f"Matched with {a}" in html_b and "this run is the columns" in html_b
