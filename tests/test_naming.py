"""Naming components with text: planted image/text data with a modality gap."""

from types import SimpleNamespace

import numpy as np
import pytest

from clipica.errors import InputError
from clipica.naming import (
    builtin_vocabulary,
    load_attribute_phrases,
    load_vocabulary,
    match_prompts,
    name_from_embeddings,
)

WORDS = {  # word -> (component, pole)
    "smiling": (2, +1),
    "frowning": (2, -1),
    "eyeglasses": (4, +1),
    "blond hair": (0, -1),
}


def planted(seed, D=16, K=6, N=600):
    """Image embeddings from sources S; captions share S but sit across a modality gap,
    with a different scale; vocabulary words are planted along single mixing columns."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(D, K))
    W = np.linalg.pinv(A)
    img_mean = rng.normal(size=D)
    gap = 8.0 * rng.normal(size=D)  # far bigger than the spread: would dominate uncentred scores
    S = rng.laplace(size=(N, K))
    X = img_mean + S @ A.T
    St = S + 0.3 * rng.normal(size=S.shape)
    T = img_mean + gap + 0.4 * (St @ A.T) + 0.05 * rng.normal(size=(N, D))
    ica = SimpleNamespace(mean_=X.mean(0), components_=W, mixing_=A)
    vocab, emb = [], []
    text_mean = T.mean(0)
    for word, (k, sign) in WORDS.items():
        vocab.append(word)
        emb.append(text_mean + sign * 0.4 * 2.5 * A[:, k] + 0.05 * rng.normal(size=D))
    for j in range(8):  # distractors: typical captions
        vocab.append(f"distractor {j}")
        emb.append(text_mean + 0.4 * 0.5 * (rng.laplace(size=K) @ A.T))
    return ica, T, vocab, np.asarray(emb)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_naming_finds_the_planted_words(seed):
    ica, T, vocab, emb = planted(seed)
    names = name_from_embeddings(vocab, emb, ica, reference_texts=T)
    assert names.scores.shape == (len(vocab), 6)
    assert names.top(2, "+", 1)[0][0] == "smiling"
    assert names.top(2, "-", 1)[0][0] == "frowning"
    assert names.top(4, "+", 1)[0][0] == "eyeglasses"
    assert names.top(0, "-", 1)[0][0] == "blond hair"
    # scores are in text-side standard deviations: the planted words sit ~2.5 sd out
    assert 1.5 < names.top(2, "+", 1)[0][1] < 4.0
    js = names.to_json(n=2)
    assert js["components"][2]["positive"][0]["text"] == "smiling"
    assert "own mean" in js["method"]["modality_gap"]
    table = names.table()
    block = table.splitlines()
    i = block.index("component 2")
    assert block[i + 1].startswith("  + smiling") and block[i + 2].startswith("  - frowning")


@pytest.mark.parametrize("seed", [0, 1])
def test_reverse_lookup(seed):
    ica, T, vocab, emb = planted(seed)
    names = name_from_embeddings(vocab, emb, ica, reference_texts=T)
    m = match_prompts(vocab[:4], ica, text_embeddings=emb[:4], projection=names.projection)
    got = [(r["component"], r["pole"]) for r in m]
    assert got == [(2, "+"), (2, "-"), (4, "+"), (0, "-")]


def test_gap_handling_matters():
    """Centring text by the *image* mean leaves the gap in every score: the reverse lookup breaks."""
    ica, T, vocab, emb = planted(0)
    wrong = SimpleNamespace(
        text_mean=ica.mean_,
        scale=np.ones(6),
        normalize=False,
        reference="captions",
        n_reference=len(T),
    )
    m = match_prompts(vocab[:4], ica, text_embeddings=emb[:4], projection=wrong)
    assert [(r["component"], r["pole"]) for r in m] != [(2, "+"), (2, "-"), (4, "+"), (0, "-")]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vocabulary_centring_removes_a_prompt_style_offset(seed):
    """Prompts share a template offset that captions lack; centring by the vocabulary mean removes it."""
    ica, T, vocab, emb = planted(seed)
    rng = np.random.default_rng(100 + seed)
    style = 0.4 * 3.0 * (rng.normal(size=6) @ ica.mixing_.T)  # a template offset of ~3 caption sd
    styled = emb + style
    names = name_from_embeddings(vocab, styled, ica, reference_texts=T)  # default: vocabulary mean
    assert names.projection.center == "vocabulary"
    assert names.top(2, "+", 1)[0][0] == "smiling" and names.top(2, "-", 1)[0][0] == "frowning"
    m = match_prompts(vocab[:4], ica, text_embeddings=styled[:4], projection=names.projection)
    assert [(r["component"], r["pole"]) for r in m] == [(2, "+"), (2, "-"), (4, "+"), (0, "-")]
    # caption centring keeps the offset: the reverse lookup no longer finds the planted components
    cap = name_from_embeddings(vocab, styled, ica, reference_texts=T, center="captions")
    m2 = match_prompts(vocab[:4], ica, text_embeddings=styled[:4], projection=cap.projection)
    assert [(r["component"], r["pole"]) for r in m2] != [(2, "+"), (2, "-"), (4, "+"), (0, "-")]


def test_vocabulary_loading(tmp_path):
    phrases = load_attribute_phrases()
    assert len(phrases) == 40
    assert (
        "Smiling",
        "a photo of a smiling person",
        "a photo of a person who is not smiling",
    ) in phrases
    assert len(builtin_vocabulary()) == len(set(builtin_vocabulary())) >= 70
    f = tmp_path / "words.txt"
    f.write_text("# my words\nred hair\n\nfreckles\nred hair\n")
    assert load_vocabulary(f) == ["red hair", "freckles"]
    assert load_vocabulary(f, template="a photo of a person with {}") == [
        "a photo of a person with red hair",
        "a photo of a person with freckles",
    ]
    with pytest.raises(InputError, match="does not exist"):
        load_vocabulary(tmp_path / "nope.txt")
    with pytest.raises(InputError, match="template"):
        load_vocabulary(f, template="no slot")


@pytest.mark.filterwarnings(
    "ignore:.*did not converge"
)  # 32 rows of a random model: the ICA is incidental
def test_cli_name_writes_json_and_table(tmp_path, capsys):
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import _fake_models as fm

    import clipica
    from clipica.cli import main

    name = fm.register_tiny_open_clip(tmp_path)
    store = clipica.extract(
        model=name,
        pretrained="none",
        data="synthetic-faces:32",
        out=tmp_path / "store",
        progress=False,
        num_workers=0,
    )
    clipica.ICA(n_components=4, random_state=0).fit(store.image).save(tmp_path / "ica")
    vocab = tmp_path / "words.txt"
    vocab.write_text("smiling\neyeglasses\na hat\nblond hair\n")
    code = main(
        [
            "name",
            str(tmp_path / "store"),
            "--ica",
            str(tmp_path / "ica"),
            "--vocab",
            str(vocab),
            "--template",
            "a photo of a person with {}",
            "--top",
            "2",
            "--prompt",
            "a smiling face",
            "--out",
            str(tmp_path / "names"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    js = json.loads((tmp_path / "names" / "naming.json").read_text())
    assert len(js["components"]) == 4 and len(js["components"][0]["positive"]) == 2
    assert js["vocabulary_size"] == 4 and js["method"]["text_mean_from"] == "vocabulary"
    assert js["method"]["scale_from"] == "captions"
    assert js["prompts"][0]["prompt"] == "a smiling face" and 0 <= js["prompts"][0]["component"] < 4
    assert "component 3" in (tmp_path / "names" / "naming.txt").read_text()
    code = main(
        [
            "name",
            str(tmp_path / "store"),
            "--ica",
            str(tmp_path / "ica"),
            "--vocab",
            str(tmp_path / "nope"),
        ]
    )
    assert code == 2 and "does not exist" in capsys.readouterr().err
