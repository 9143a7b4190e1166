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
The network is the package's one :class:`~xcatrec.training.layers.FactorNet` (no towers, BPR loss, one
negative per row), trained by :class:`~xcatrec.training.KerasRecommender` with
:class:`~xcatrec.training.optimizers.LazyAdam`, which updates only the rows a batch touches. To train
on several devices, call ``fit`` inside ``strategy.scope()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from xcatrec.core.base import Phase
from xcatrec.core.factors import FactorModel
from xcatrec.core.search import FACTOR_SPACE
from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.training import FactorNet, KerasRecommender, NegativeSampler, Negatives, Rows, numpy_weights
from xcatrec.training.config import TrainConfig


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


class BPRMF(KerasRecommender, FactorModel):
    """BPR-MF on the target domain's training interactions (the source domain is ignored)."""

    name = "bpr-mf"
    config_class = BPRMFConfig
    search_space = FACTOR_SPACE
    phases = (Phase("target-bpr", "target"),)

    def build(self, phase: Phase, dataset: CrossDomainDataset) -> keras.Model:
        cfg: BPRMFConfig = self.config
        return FactorNet(self.sizes.n_users, self.sizes.n_target_items, dim=cfg.dim, loss="bpr", reg=cfg.reg,
                         init_std=cfg.init_std, seed=cfg.seed, item_bias=cfg.item_bias)

    def rows(self, phase: Phase, dataset: CrossDomainDataset) -> Rows:
        train = dataset.target.train
        sampler = NegativeSampler(dataset.matrix("target", "train"))
        return Rows({"user": train.users, "pos": train.items}, (Negatives(sampler, train.users),))

    def export(self, phase: Phase, net: keras.Model) -> dict[str, np.ndarray]:
        state = numpy_weights(net)
        self.user_factors, self.item_factors = state["user_embedding"], state["item_embedding"]
        self.item_bias = state.get("item_bias")
        return state
