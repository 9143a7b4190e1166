"""BPR-MF: matrix factorisation trained with Bayesian Personalized Ranking, on the target domain only.

Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian Personalized Ranking from Implicit
Feedback", UAI 2009. For each observed pair ``(u, i)`` and an item ``j`` drawn uniformly from the items
``u`` has not interacted with, BPR maximises ``log sigmoid(s(u, i) - s(u, j))`` with
``s(u, i) = <p_u, q_i> + b_i``, plus L2 regularisation of the factors in the batch. It is the
target-only baseline every transfer method must beat. Taught in the chapter "Strong simple baselines".

The method keeps its name, but its default training loss is now the in-batch softmax
(``loss="softmax"``; ``loss="bpr", batch_size=4096`` is the paper's method as it was trained here
before). Measured on validation NDCG@10 (3,000 users, full ranking) with the other defaults:
Electronics -> Phones 0.0157 (BPR) vs 0.0305 (softmax, batch 1024, 3 s/epoch); Electronics ->
Clothing 0.0037 vs 0.0079 (39 s vs 76 s to fit). Without the log-Q correction the softmax scored
0.0183 on Phones, and with a temperature of 0.5 (logits doubled) 0.0259, so the logits are not
rescaled (the factors learn their own scale). A single sampled negative gives full-ranking top-N a
weak signal; a softmax over a thousand in-batch negatives is much stronger (Yi et al., RecSys 2019;
Yang et al., WWW 2020).

The remaining defaults were chosen on a validation split (one training row per user) of Amazon
Clothing (15.8k users, 51.9k items, 121k training rows), measured with ``benchmarks/bpr_epoch.py``:
with ``reg=0.1`` BPR-MF beat popularity on validation and test; with ``reg=1e-4`` it overfit within
a few epochs and fell below popularity (the softmax kept ``reg=0.1``: 0.01 scored 0.0262 on Phones).
The network is the package's one :class:`~xcatrec.training.layers.FactorNet` (no towers, one uniform
negative per row), trained by :class:`~xcatrec.training.KerasRecommender` with
:class:`~xcatrec.training.optimizers.LazyAdam`, which updates only the rows a batch touches. To train
on several devices, call ``fit`` inside ``strategy.scope()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import keras
import numpy as np

from xcatrec.core.base import Phase
from xcatrec.core.factors import FactorModel
from xcatrec.core.search import FACTOR_SPACE
from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.training import FactorNet, KerasRecommender, NegativeSampler, Negatives, Rows, numpy_weights
from xcatrec.training.config import TrainConfig
from xcatrec.training.losses import check_loss, loss_columns


@dataclass(frozen=True)
class BPRMFConfig(TrainConfig):
    """Hyper-parameters of BPR-MF (plus the loop settings of :class:`TrainConfig`).

    Args:
        dim: Number of latent factors per user and item.
        item_bias: Learn a bias per item (captures popularity).
        reg: Weight of the L2 penalty ``||p_u||^2 + ||q_i||^2 + ||q_j||^2``, averaged over the rows of
            a batch like the BPR term.
        init_std: Standard deviation of the normal initialisation of the factors.
        loss: Training loss, one of :data:`~xcatrec.training.losses.RANKING_LOSSES`: ``"softmax"``
            (the default: in-batch plus ``negatives`` uniform negatives, log-Q corrected, accidental
            hits masked), ``"bpr"`` (the paper's), ``"sampled-softmax"``, ``"full-softmax"``, ...
        batch_size: Rows per step; with ``"softmax"`` also the in-batch negatives per row (the cost
            of a step grows with its square).
        negatives: Uniform negatives drawn per row (the extra negatives of ``"softmax"``).
    """

    epochs: int = 40
    batch_size: int = 1024
    learning_rate: float = 5e-3
    patience: int = 4
    dim: int = 64
    item_bias: bool = True
    reg: float = 0.1
    init_std: float = 0.01
    loss: str = "softmax"
    #: ``loss`` and ``negatives`` came with the softmax losses; earlier runs trained BPR on one negative.
    added_fields: ClassVar[dict[str, Any]] = {"loss": "bpr", "negatives": 1}
    negatives: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_loss(self.loss)
        if self.negatives < 1:
            raise ConfigError(f"negatives must be at least 1, got {self.negatives}.", "Pass negatives=1, for example.")
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
        return FactorNet(self.sizes.n_users, self.sizes.n_target_items, dim=cfg.dim, loss=cfg.loss, reg=cfg.reg,
                         init_std=cfg.init_std, seed=cfg.seed, item_bias=cfg.item_bias)

    def rows(self, phase: Phase, dataset: CrossDomainDataset) -> Rows:
        train = dataset.target.train
        sampler = NegativeSampler(dataset.matrix("target", "train"))
        return Rows({"user": train.users, "pos": train.items,
                     **loss_columns(self.config.loss, train.items, dataset.target.n_items, self.config.negatives)},
                    (Negatives(sampler, train.users, per_row=self.config.negatives),))

    def export(self, phase: Phase, net: keras.Model) -> dict[str, np.ndarray]:
        state = numpy_weights(net)
        self.user_factors, self.item_factors = state["user_embedding"], state["item_embedding"]
        self.item_bias = state.get("item_bias")
        return state
