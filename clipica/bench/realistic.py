"""A planted store shaped like CLIP image embeddings of CelebA (``clipica bench pipeline``'s default).

``n`` rows of ``d`` float32 dimensions, the sum of:

- **36 binary attributes** with CelebA's prevalences (:data:`BINARY`: CelebA's 40 minus the
  four hair colours), correlated through one latent "male" factor as in CelebA: each attribute
  is ``1[rho * z + sqrt(1 - rho^2) * e > Phi^-1(1 - p)]`` with ``z, e ~ N(0, 1)``, so its
  prevalence is exactly ``p``; ``rho = 1`` for Male, +0.7 for the beard group (5 o'clock
  shadow, goatee, mustache, sideburns; No_Beard at -0.7), -0.7 for the make-up group (heavy
  make-up, lipstick, earrings, arched eyebrows, rosy cheeks, necklace), 0 otherwise. Each
  attribute, centred and scaled to unit variance, is embedded along its own random direction
  with a standard deviation drawn from [1.2, 2.0];
- **one 4-value categorical** (hair: black, blond, brown, gray at CelebA's relative rates
  0.38 / 0.24 / 0.32 / 0.06), its one-hot code centred and embedded by a random (4, d)
  matrix: a 3-dimensional subspace (s.d. 1.5 per value direction);
- **150 Gaussian nuisance directions**, N(0, 1) each along a random direction with standard
  deviations falling linearly from 1.1 to 0.2 (the top ones sit among the attributes in the
  principal subspace, as near-Gaussian directions do in real embeddings);
- **isotropic noise**, s.d. 0.15 per dimension.

So about 39 directions are non-Gaussian (36 + 3) and a K = 64 ICA must also take 25 Gaussian
ones. The labels are the 36 binary attributes plus the hair colours as four exclusive binary
columns: 40 columns, CelebA's names. Rows are generated in seeded chunks (memory: one chunk).
"""

from __future__ import annotations

import numpy as np

#: CelebA's binary attributes other than the hair colours, with their prevalence in CelebA
BINARY = {
    "5_o_Clock_Shadow": 0.11, "Arched_Eyebrows": 0.27, "Attractive": 0.51, "Bags_Under_Eyes": 0.20,
    "Bald": 0.02, "Bangs": 0.15, "Big_Lips": 0.24, "Big_Nose": 0.23, "Blurry": 0.05,
    "Bushy_Eyebrows": 0.14, "Chubby": 0.06, "Double_Chin": 0.05, "Eyeglasses": 0.07, "Goatee": 0.06,
    "Heavy_Makeup": 0.39, "High_Cheekbones": 0.45, "Male": 0.42, "Mouth_Slightly_Open": 0.48,
    "Mustache": 0.04, "Narrow_Eyes": 0.12, "No_Beard": 0.83, "Oval_Face": 0.28, "Pale_Skin": 0.04,
    "Pointy_Nose": 0.28, "Receding_Hairline": 0.08, "Rosy_Cheeks": 0.07, "Sideburns": 0.06,
    "Smiling": 0.48, "Straight_Hair": 0.21, "Wavy_Hair": 0.32, "Wearing_Earrings": 0.19,
    "Wearing_Hat": 0.05, "Wearing_Lipstick": 0.47, "Wearing_Necklace": 0.12, "Wearing_Necktie": 0.07,
    "Young": 0.77,
}
#: correlation of each attribute's latent with the male factor
RHO = {"Male": 1.0, "5_o_Clock_Shadow": 0.7, "Goatee": 0.7, "Mustache": 0.7, "Sideburns": 0.7,
       "No_Beard": -0.7, "Heavy_Makeup": -0.7, "Wearing_Lipstick": -0.7, "Wearing_Earrings": -0.7,
       "Arched_Eyebrows": -0.7, "Rosy_Cheeks": -0.7, "Wearing_Necklace": -0.7}
HAIR = {"Black_Hair": 0.38, "Blond_Hair": 0.24, "Brown_Hair": 0.32, "Gray_Hair": 0.06}
#: the manifest key of every store ``clipica bench pipeline`` plants (either shape)
STORE_KEY = {"model": "planted", "data": "clipica bench pipeline"}
NUISANCE = 150
NOISE_SD = 0.15
#: non-Gaussian directions planted: the binary attributes and the hair subspace
N_NONGAUSSIAN = len(BINARY) + len(HAIR) - 1


def label_names() -> list[str]:
    return [*BINARY, *HAIR]


class Mixing:
    """The seeded directions: ``binary`` (36, d), ``hair`` (4, d), ``nuisance`` (150, d), rows
    of unit norm times their standard deviation."""

    def __init__(self, d: int, seed: int, nuisance: int = NUISANCE):
        rng = np.random.default_rng([seed, 1])

        def directions(m):
            V = rng.standard_normal((m, d))
            return V / np.linalg.norm(V, axis=1, keepdims=True)

        self.binary = directions(len(BINARY)) * rng.uniform(1.2, 2.0, size=(len(BINARY), 1))
        self.hair = directions(len(HAIR)) * 1.5
        self.nuisance = directions(nuisance) * np.linspace(1.1, 0.2, nuisance)[:, None]


def sample_chunk(rows: int, mixing: Mixing, seed: int, chunk_index: int):
    """Rows (rows, d) float32 and labels (rows, 40) float64 of one seeded chunk."""
    from scipy.stats import norm

    rng = np.random.default_rng([seed, 2, chunk_index])
    names = list(BINARY)
    p = np.array([BINARY[a] for a in names])
    rho = np.array([RHO.get(a, 0.0) for a in names])
    z = rng.standard_normal((rows, 1))
    latent = rho * z + np.sqrt(1 - rho**2) * rng.standard_normal((rows, len(names)))
    binary = (latent > norm.ppf(1 - p)).astype(np.float64)
    hair_p = np.array(list(HAIR.values()))
    hair = rng.choice(len(HAIR), size=rows, p=hair_p / hair_p.sum())
    onehot = np.eye(len(HAIR))[hair]
    gauss = rng.standard_normal((rows, mixing.nuisance.shape[0]))
    X = ((binary - p) / np.sqrt(p * (1 - p))) @ mixing.binary
    X += (onehot - hair_p / hair_p.sum()) @ mixing.hair
    X += gauss @ mixing.nuisance
    X += NOISE_SD * rng.standard_normal(X.shape)
    return X.astype(np.float32), np.hstack([binary, onehot])


def write_realistic_store(path, n: int = 202_599, d: int = 512, seed: int = 0, chunk: int = 50_000,
                          text_model: dict | None = None, nuisance: int = NUISANCE):
    """Write the store (module docstring) to ``path``; returns the open EmbeddingStore.

    ``text_model``: the manifest's model (e.g. ``{"spec": "ViT-B-32", "pretrained": "none"}`` so
    that ``clipica name`` can embed its vocabulary; d must be that model's width); by default
    ``{"spec": "planted"}``, which names nothing.
    """
    mixing = Mixing(d, seed, nuisance)

    def chunks():
        for i, a in enumerate(range(0, n, chunk)):
            yield (a, *sample_chunk(min(a + chunk, n) - a, mixing, seed, i))

    return write_planted(path, chunks(), names=label_names(), d=d, text_model=text_model,
                         data_spec=f"planted-realistic:{n}x{d}?nuisance={nuisance}&seed={seed}")


def write_planted(path, chunks, *, names: list[str], d: int, data_spec: str,
                  text_model: dict | None = None):
    """Write a planted store to ``path`` from ``chunks`` of ``(first_row, X (m, d) float32,
    labels (m, len(names)))``, in row order; returns the open EmbeddingStore. One writer for both
    of the bench's planted shapes."""
    from clipica.embeddings.store import SCHEMA_VERSION, EmbeddingStore, StoreWriter

    w = StoreWriter(path, STORE_KEY, overwrite=True)
    try:
        w.begin(
            {
                "schema_version": SCHEMA_VERSION,
                "key": STORE_KEY,
                "embed_dim": d,
                "has_text": False,
                "label_columns": names,
                "model": dict(text_model) if text_model else {"spec": "planted"},
                "data": {"spec": data_spec},
            },
            0,
        )
        for a, X, labels in chunks:
            b = a + len(X)
            # plain Python floats once per chunk: a dict per row is the slow part at 200k rows
            rows = [
                {"id": f"p{j}", "source_index": j, "caption": None, "split": None,
                 "caption_truncated": False, **dict(zip(names, values, strict=True))}
                for j, values in zip(range(a, b), np.asarray(labels).tolist(), strict=True)
            ]
            w.commit(X, None, rows, errors=[], next_position=b)
        w.finalize()
    finally:
        w.close()
    return EmbeddingStore.open(path)
