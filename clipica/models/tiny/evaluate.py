"""Evaluate a ``tiny-faces``-style CLIP on held-out synthetic faces (``eval.json``).

:func:`evaluate` draws ``n`` faces with a seed the training never used
(``seed + EVAL_SEED_OFFSET``) and reports:

* ``retrieval_top1``: image -> caption top-1 accuracy among 256 candidates
  (mean over blocks of 256), with the tie-aware ceiling a perfect model can reach
  (captions carry no image-only information, so identical attribute sets tie);
* ``zero_shot_auc``: per shared attribute, ROC AUC of cos(img, prompts with the
  attribute) - cos(img, prompts without it), prompts averaged over the other
  shared words (sex, hair colour) so they do not leak in;
* ``content_accuracy``: per shared attribute, held-out accuracy of a logistic
  probe on the image embedding (train on one half, test on the other);
* ``style_r2``: per image-only latent, held-out R² of an RBF kernel ridge
  regressor (:func:`clipica.metrics.kernel_ridge_r2`, grid-searched by 3-fold CV on the
  training half) on the image embedding and on raw pixels (2x2 box-averaged); the circular
  background hue is scored as the mean R² of its cosine and sine.
"""

from __future__ import annotations

import numpy as np

from clipica.data.synthetic_faces import (
    BINARY_COLUMNS,
    HAIR_COLUMNS,
    LATENT_COLUMNS,
    PHRASES,
    SHARED_COLUMNS,
    SyntheticFaces,
)

#: training rows come from SyntheticFaces(seed=seed); evaluation rows from seed + EVAL_SEED_OFFSET
EVAL_SEED_OFFSET = 10_000_000
RETRIEVAL_CANDIDATES = 256


def normaliser():
    import torch
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    mean = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)

    def to_pixels(images: np.ndarray):
        """uint8 (B, H, W, 3) -> float (B, 3, H, W) normalised as open_clip's preprocess does."""
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
        return (x - mean) / std

    return to_pixels


def _prompts(attribute: str) -> tuple[list[str], list[str]]:
    """Prompts stating ``attribute`` and prompts stating its absence, over sex and hair colour."""
    nouns = ("man", "woman")
    hair_words = {
        "Black_Hair": "black",
        "Blond_Hair": "blond",
        "Brown_Hair": "brown",
        "Gray_Hair": "gray",
    }
    if attribute == "Male":
        return (
            [f"a photo of a man with {h} hair." for h in hair_words.values()],
            [f"a photo of a woman with {h} hair." for h in hair_words.values()],
        )
    if attribute in HAIR_COLUMNS:
        pos = [f"a photo of a {n} with {hair_words[attribute]} hair." for n in nouns]
        neg = [
            f"a photo of a {n} with {w} hair."
            for n in nouns
            for h, w in hair_words.items()
            if h != attribute
        ]
        return pos, neg
    present, absent = PHRASES[attribute]
    pos = [
        f"a photo of a {n} with {w} hair {p}."
        for n in nouns
        for w in hair_words.values()
        for p in present
    ]
    neg = [
        f"a photo of a {n} with {w} hair {p}."
        for n in nouns
        for w in hair_words.values()
        for p in absent
    ]
    return pos, neg


def _encode(model, tokenizer, images: np.ndarray, captions: list[str], batch: int = 256):
    import torch

    to_pixels = normaliser()
    ims, txs = [], []
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            ims.append(model.encode_image(to_pixels(images[s : s + batch])).float().numpy())
        for s in range(0, len(captions), batch):
            txs.append(model.encode_text(tokenizer(captions[s : s + batch])).float().numpy())
    dim = model.text_projection.shape[1]
    return (
        np.concatenate(ims) if ims else np.zeros((0, dim), np.float32),
        np.concatenate(txs) if txs else np.zeros((0, dim), np.float32),
    )


def _unit(x: np.ndarray) -> np.ndarray:
    from clipica._linalg import unit_rows

    return unit_rows(x)


def retrieval_scores(
    img: np.ndarray, txt: np.ndarray, attrs: np.ndarray, block: int = RETRIEVAL_CANDIDATES
) -> dict:
    """Image -> caption retrieval among ``block`` candidates (mean over consecutive blocks).

    ``img``, ``txt``: (n, D) embeddings of paired rows; ``attrs``: (n, k) shared labels.
    Returns top-1 (exact pair), top-1 up to captions with identical shared labels,
    and the exact-pair ceiling of a perfect model that breaks those ties at random.
    """
    img, txt = _unit(img), _unit(txt)
    exact, same_attrs, ceiling = [], [], []
    for s in range(0, len(img) - block + 1, block):
        sims = img[s : s + block] @ txt[s : s + block].T
        pick = sims.argmax(1)
        a = attrs[s : s + block]
        exact.append(np.mean(pick == np.arange(block)))
        same_attrs.append(np.mean(np.all(a[pick] == a, axis=1)))
        ties = (a[:, None, :] == a[None, :, :]).all(-1).sum(1)  # includes the row itself
        ceiling.append(np.mean(1.0 / ties))
    return {
        "retrieval_top1": float(np.mean(exact)),
        "retrieval_top1_same_attributes": float(np.mean(same_attrs)),
        "retrieval_top1_ceiling": float(np.mean(ceiling)),
        "retrieval_candidates": block,
        "retrieval_blocks": len(exact),
    }


def style_r2(
    features: np.ndarray, latents: dict[str, np.ndarray], n_train: int, seed: int = 0
) -> dict:
    """Held-out nonlinear (RBF kernel ridge) R² per image-only latent from ``features`` (n, d).

    Rows ``:n_train`` fit (hyper-parameters by CV), the rest score.
    ``latent_bg_hue`` (turns, circular) is scored as the mean R² of its cos and sin.
    """
    cols, names = [], []
    for name in LATENT_COLUMNS:
        y = latents[name].astype(np.float64)
        if name == "latent_bg_hue":
            cols += [np.cos(2 * np.pi * y), np.sin(2 * np.pi * y)]
            names += [name, name]
        else:
            cols.append(y)
            names.append(name)
    from clipica._linalg import kernel_ridge_r2

    r2 = kernel_ridge_r2(features, np.stack(cols, axis=1), n_train, seed=seed)
    return {
        name: float(np.mean([v for n_, v in zip(names, r2, strict=True) if n_ == name]))
        for name in LATENT_COLUMNS
    }


def evaluate(
    model, tokenizer, n: int = 2048, seed: int = EVAL_SEED_OFFSET, variant: str = "independent"
) -> dict:
    """The four headline metrics of a CLIP-style ``model`` on ``n`` held-out synthetic faces.

    ``model`` is an open_clip CLIP (``encode_image``/``encode_text``); ``tokenizer``
    maps strings to token tensors. ``n`` must be at least 2 x 256. Returns a
    JSON-able dict (see the module docstring).
    """
    from clipica.errors import InputError

    if n < 2 * RETRIEVAL_CANDIDATES:
        raise InputError(f"evaluate: n must be at least {2 * RETRIEVAL_CANDIDATES}, got {n}.")
    model.eval()
    source = SyntheticFaces(n=n, seed=seed, variant=variant)
    images, captions, labels = source.batch(0, n)
    img, txt = _encode(model, tokenizer, images, captions)
    prompts = {name: _prompts(name) for name in SHARED_COLUMNS}
    prompt_emb = {
        name: (
            _encode(model, tokenizer, images[:0], pos)[1],
            _encode(model, tokenizer, images[:0], neg)[1],
        )
        for name, (pos, neg) in prompts.items()
    }
    from threadpoolctl import threadpool_limits

    # The probes are small: one BLAS thread is as fast on an idle machine and avoids
    # OpenBLAS's spin-waiting collapse (15x slower) on a CPU shared with other jobs.
    with threadpool_limits(limits=1):
        return _score(images, img, txt, labels, prompt_emb, n, seed, variant)


def _score(images, img, txt, labels, prompt_emb, n, seed, variant) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    attrs = np.stack([labels[c] for c in SHARED_COLUMNS], axis=1)
    result = {"n_eval": n, "eval_seed": seed, "variant": variant}
    result.update(retrieval_scores(img, txt, attrs))

    # zero-shot: prompt ensembles with vs without each attribute
    img_u = _unit(img)
    auc = {}
    for name in SHARED_COLUMNS:
        tp, tn = prompt_emb[name]
        score = (
            img_u @ _unit(_unit(tp).mean(0, keepdims=True))[0]
            - img_u @ _unit(_unit(tn).mean(0, keepdims=True))[0]
        )
        y = labels[name]
        auc[name] = float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")
    result["zero_shot_auc"] = auc
    result["zero_shot_auc_mean"] = float(np.nanmean(list(auc.values())))

    # content: logistic probe, first half fits, second half scores
    half = n // 2
    scaler = StandardScaler().fit(img_u[:half])
    x = scaler.transform(img_u)
    acc, base = {}, {}
    for name in SHARED_COLUMNS:
        y = labels[name].astype(int)
        if len(np.unique(y[:half])) < 2:
            acc[name] = float("nan")
            continue
        clf = LogisticRegression(max_iter=2000, C=1.0).fit(x[:half], y[:half])
        acc[name] = float(clf.score(x[half:], y[half:]))
        base[name] = float(max(y[half:].mean(), 1 - y[half:].mean()))
    result["content_accuracy"] = acc
    result["content_accuracy_mean"] = float(np.nanmean(list(acc.values())))
    result["content_majority_baseline"] = base

    # style: nonlinear regression of the image-only latents, from embeddings and from raw pixels
    latents = {c: labels[c] for c in LATENT_COLUMNS}
    # raw pixels, 2x2 box-averaged (a 4x cheaper kernel, same information at this scale)
    h = images.shape[1] // 2 * 2
    pooled = images[:, :h, :h].astype(np.float32).reshape(n, h // 2, 2, h // 2, 2, 3).mean((2, 4))
    pixels = pooled.reshape(n, -1) / 255.0
    result["style_r2"] = {
        "image_embedding": style_r2(img, latents, half, seed=0),
        "raw_pixels_2x2_pooled": style_r2(pixels, latents, half, seed=0),
        "regressor": (
            "RBF kernel ridge on standardised features; alpha in (1e-3, 1e-2, 0.1, 1), "
            "gamma in (0.3, 1, 3) / median squared distance, chosen by 3-fold CV on the fitting half"
        ),
        "hue": "latent_bg_hue scored as mean R2 of cos(2 pi hue) and sin(2 pi hue)",
    }
    result["binary_attributes"] = list(BINARY_COLUMNS)
    return result
