"""Sparse autoencoders (TopK, BatchTopK from the ``overcomplete`` package) as LinearDecompositions.

Training uses overcomplete's ``TopKSAE`` / ``BatchTopKSAE`` with its default encoder
(one linear layer and a ReLU) and its ``train_sae`` loop (MSE loss, Adam, gradient
clipping), on the embeddings centred by their mean and scaled to unit RMS per dimension
(the usual SAE pre-processing; the mean is added back on decoding, unlike overcomplete's
own ICA/PCA wrappers). Optional extra: ``pip install 'clipica[sae]'``.

Once fitted the model is plain arrays, and ``transform`` runs in numpy:

- pre-activation ``h = (X - mean_) @ components_.T + encoder_bias_`` — ``components_``
  (K, D) is the encoder weight in data units, the *linear part* of a nonlinear encoder
  (what naming and interventions read);
- codes: ``relu(h)`` keeping the ``top_k`` largest per row (TopK), or the entries at or
  above the running threshold learned in training (BatchTopK: L0 varies per row, its
  mean is about ``top_k``);
- ``inverse_transform(codes) = codes @ mixing_.T + mean_``, ``mixing_`` (D, K) the
  dictionary (unit-norm atoms times the data scale).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from clipica.decompositions.base import LinearDecomposition
from clipica.errors import InputError


class _SAE(LinearDecomposition):
    linear_encoder = False
    exact_inverse = False
    _variant = ""
    _array_names = ("mean_", "components_", "mixing_", "encoder_bias_")
    _state_names = ("scale_", "top_k_", "threshold_")

    def __init__(self, n_components=None, *, top_k=None, n_steps=1500, batch_size=512, lr=1e-3,
                 random_state=0):
        self.n_components = n_components
        self.top_k = top_k
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state

    _parameter_constraints: ClassVar[dict] = {
        **LinearDecomposition._parameter_constraints,
        "n_steps": ["positive_int"], "batch_size": ["positive_int"], "top_k": ["positive_int", None],
        "lr": ["positive_real"],
    }

    def _check_n_components(self, n: int, d: int) -> int:
        k = self.n_components if self.n_components is not None else d
        if self.top_k is not None and self.top_k > k:
            raise InputError(f"top_k={self.top_k} exceeds n_components={k}.")
        return k  # K > D allowed: an overcomplete dictionary

    def _fit(self, X, k):
        from clipica.decompositions._overcomplete import import_overcomplete

        oc = import_overcomplete()
        import torch

        X = np.asarray(X, dtype=np.float64)
        mean = X.mean(axis=0)
        Xc = X - mean
        scale = float(np.sqrt(np.mean(Xc * Xc))) or 1.0
        top_k = self.top_k if self.top_k is not None else max(1, int(round(np.sqrt(k))))
        n, d = X.shape
        if self.random_state is not None:
            torch.manual_seed(int(self.random_state))
        cls = oc.sae.TopKSAE if self._variant == "topk" else oc.sae.BatchTopKSAE
        # BatchTopK keeps top_k * batch codes per batch: the same mean L0 as TopK's top_k
        batch = min(self.batch_size, n)
        model = cls(d, nb_concepts=k, top_k=top_k if self._variant == "topk" else top_k * batch)
        data = torch.as_tensor(Xc / scale, dtype=torch.float32)
        gen = torch.Generator().manual_seed(int(self.random_state or 0))
        steps_per_epoch = max(n // batch, 1)
        n_epochs = max(1, -(-self.n_steps // steps_per_epoch))
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(data), batch_size=batch, shuffle=True,
            drop_last=True, generator=gen,
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)

        def mse(x, x_hat, *_):
            return ((x - x_hat) ** 2).mean()

        oc.sae.train_sae(model, loader, mse, optimizer, nb_epochs=n_epochs, monitoring=0)
        model.eval()
        lin = model.encoder.final_block[0]  # the default encoder: Linear, Identity norm, ReLU
        W = lin.weight.detach().cpu().numpy().astype(np.float64)
        b = lin.bias.detach().cpu().numpy().astype(np.float64)
        atoms = model.get_dictionary().detach().cpu().numpy().astype(np.float64)
        self.mean_ = mean
        self.scale_ = scale
        self.components_ = np.ascontiguousarray(W / scale)
        self.encoder_bias_ = b
        self.mixing_ = np.ascontiguousarray(atoms.T * scale)
        self.top_k_ = int(top_k)
        thr = getattr(model, "running_threshold", None)
        self.threshold_ = None if thr is None else float(thr)
        self.n_epochs_ = n_epochs

    def transform(self, X):
        """Codes (n_samples, n_components), sparse and non-negative (see the module docstring)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        h = (np.asarray(X, dtype=np.float64) - self.mean_) @ self.components_.T + self.encoder_bias_
        z = np.maximum(h, 0.0)
        if self.threshold_ is not None:
            z = np.where(z >= self.threshold_, z, 0.0)
        else:
            k = self.top_k_
            if k < z.shape[1]:
                drop = np.argpartition(-z, k, axis=1)[:, k:]
                np.put_along_axis(z, drop, 0.0, axis=1)
        return z.astype(X.dtype, copy=False)


class TopKSAE(_SAE):
    """TopK sparse autoencoder (Gao et al. 2024) from ``overcomplete``.

    Parameters
    ----------
    n_components : int or None, default=None
        K codes (None: n_features; e.g. 4 * n_features for an overcomplete SAE).
    top_k : int or None, default=None
        Codes kept per row (None: round(sqrt(K))).
    n_steps, batch_size, lr : training budget (Adam steps, rows per step, learning rate).
    random_state : int or None, default=0
        Seeds the initialisation and the batch order (torch).
    """

    kind = "topk_sae"
    format_tag = "clipica.topk_sae/1"
    _variant = "topk"


class BatchTopKSAE(_SAE):
    """BatchTopK sparse autoencoder (Bussmann et al. 2024) from ``overcomplete``.

    The ``top_k * batch_size`` largest codes of a training batch are kept; encoding new
    rows uses the running threshold learned in training. Parameters as :class:`TopKSAE`.
    """

    kind = "batchtopk_sae"
    format_tag = "clipica.batchtopk_sae/1"
    _variant = "batchtopk"
