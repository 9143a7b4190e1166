"""BPR-MF: matrix factorisation trained with Bayesian Personalized Ranking, on the target domain only.

Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian Personalized Ranking from Implicit
Feedback", UAI 2009. For each observed pair ``(u, i)`` and an item ``j`` drawn uniformly from the items
``u`` has not interacted with, BPR maximises ``log sigmoid(s(u, i) - s(u, j))`` with
``s(u, i) = <p_u, q_i> + b_i``, plus L2 regularisation of the factors in the batch. It is the
target-only baseline every transfer method must beat. Taught in the chapter "Strong simple baselines".

Defaults were chosen on a validation split (one training row per user) of Amazon Clothing (15.8k
users, 51.9k items, 121k training rows), measured with ``benchmarks/bpr_epoch.py``: with ``reg=0.1``
BPR-MF beat popularity on validation and test; with ``reg=1e-4`` it overfit within a few epochs and
fell below popularity.
The embeddings are trained with :class:`~xcatrec.training.optimizers.LazyAdam`, which updates only
the rows a batch touches. To train on several devices, call ``fit`` inside ``strategy.scope()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.models.base import FitReport, Phase
from xcatrec.models.search import FACTOR_SPACE
from xcatrec.models.embeddings import FactorModel
from xcatrec.models.train_config import TrainConfig
from xcatrec.training.optimizers import LazyAdam
from xcatrec.training.sampling import NegativeSampler
from xcatrec.training.trainer import build_keras, epoch_dataset, fit_synced, replica_mean


@dataclass(frozen=True)
class BPRMFConfig(TrainConfig):
    """Hyper-parameters of BPR-MF (plus the loop settings of :class:`TrainConfig`).

    Args:
        dim: Number of latent factors per user and item.
        item_bias: Learn a bias per item (captures popularity).
        reg: Weight of the L2 penalty ``||p_u||^2 + ||q_i||^2 + ||q_j||^2``, averaged over the rows of
            a batch like the BPR term.
        init_std: Standard deviation of the normal initialisation of the factors.
    """

    epochs: int = 40
    batch_size: int = 4096
    learning_rate: float = 5e-3
    patience: int = 4
    dim: int = 64
    item_bias: bool = True
    reg: float = 0.1
    init_std: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dim < 1:
            raise ConfigError(f"dim must be at least 1, got {self.dim}.", "Pass dim=64, for example.")
        if self.reg < 0 or self.init_std <= 0:
            raise ConfigError(f"reg must be >= 0 and init_std > 0, got {self.reg} and {self.init_std}.",
                              "Pass reg=0.1, init_std=0.01, for example.")


class BPRNet(keras.Model):
    """User and item embeddings (and item biases) scored by the BPR pairwise loss.

    Inputs are dicts of index tensors ``{"user", "pos", "neg"}``; the output is the score difference
    ``s(u, pos) - s(u, neg)`` and the squared norm of the three factor vectors, from which
    :meth:`compute_loss` forms ``-log sigmoid(diff) + reg * norm``.
    """

    def __init__(self, n_users: int, n_items: int, dim: int, item_bias: bool, reg: float,
                 init_std: float, seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        init = lambda offset: keras.initializers.RandomNormal(stddev=init_std, seed=seed + offset)  # noqa: E731
        self.user_embedding = keras.layers.Embedding(n_users, dim, embeddings_initializer=init(0),
                                                     name="user_embedding")
        self.item_embedding = keras.layers.Embedding(n_items, dim, embeddings_initializer=init(1),
                                                     name="item_embedding")
        self.item_bias = (keras.layers.Embedding(n_items, 1, embeddings_initializer="zeros",
                                                 name="item_bias") if item_bias else None)
        self.reg = reg

    def call(self, inputs: dict) -> dict:
        u = self.user_embedding(inputs["user"])
        p = self.item_embedding(inputs["pos"])
        n = self.item_embedding(inputs["neg"])
        diff = ops.sum(u * (p - n), axis=-1)
        if self.item_bias is not None:
            diff = diff + ops.squeeze(self.item_bias(inputs["pos"]) - self.item_bias(inputs["neg"]), -1)
        norm = ops.sum(u * u + p * p + n * n, axis=-1)
        return {"diff": diff, "norm": norm}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        per_row = -ops.log_sigmoid(y_pred["diff"]) + self.reg * y_pred["norm"]
        return replica_mean(per_row)


class BPRMF(FactorModel):
    """BPR-MF on the target domain's training interactions (the source domain is ignored)."""

    name = "bpr-mf"
    config_class = BPRMFConfig
    search_space = FACTOR_SPACE
    refit_epochs = {"epochs": ("", "patience")}
    phases = (Phase("target-bpr", "target"),)

    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport:
        cfg: BPRMFConfig = self.config
        keras.utils.set_random_seed(cfg.seed)
        train = dataset.target.train
        sampler = NegativeSampler(dataset.matrix("target", "train"))

        def batches(epoch: int):
            rng = np.random.default_rng([cfg.seed, epoch])
            order = rng.permutation(len(train))
            users = train.users[order]
            return epoch_dataset({"user": users, "pos": train.items[order],
                                  "neg": sampler.sample(users, rng)}, cfg.batch_size)

        def build() -> BPRNet:
            net = BPRNet(self.sizes.n_users, self.sizes.n_target_items, cfg.dim, cfg.item_bias,
                         cfg.reg, cfg.init_std, cfg.seed)
            zero = np.zeros(1, np.int64)
            net({"user": zero, "pos": zero, "neg": zero})  # create the variables under the scope
            net.compile(optimizer=LazyAdam(cfg.learning_rate))
            return net

        net = build_keras(build)
        self._copy_weights(net)
        return fit_synced(self, net, dataset, cfg, batches=batches, sync=lambda: self._copy_weights(net),
                          verbose=verbose)

    def _copy_weights(self, net: BPRNet) -> None:
        """Copy the Keras weights into the numpy arrays that :class:`FactorModel` scores with."""
        self.user_factors = np.array(net.user_embedding.embeddings.numpy(), np.float32)
        self.item_factors = np.array(net.item_embedding.embeddings.numpy(), np.float32)
        self.item_bias = (None if net.item_bias is None
                          else np.array(net.item_bias.embeddings.numpy()[:, 0], np.float32))
