"""CMF: collective matrix factorisation, one user factor matrix shared by the source and target domain.

Singh & Gordon, "Relational Learning via Collective Matrix Factorization", KDD 2008. Several relations
that share an entity type are factorised together, and the shared entity gets one factor matrix. Here
the relations are user x source item and user x target item: each user ``u`` has one vector ``p_u``
and each item of either domain its own ``q_i`` and bias ``b_i``, and all of them are trained jointly on
the rows of both domains, with the loss ``L = L_target + source_weight * L_source``. The loss is a
ranking loss for implicit feedback (``loss="bpr"``, ``"softmax"``, ...; with ``"softmax"`` a row's
in-batch negatives are the batch's positives of both domains, one softmax over the joint item space)
or the squared error of ratings (``loss="mse"``, with a user bias that is shared as well). There is a
single phase, ``joint``, on both domains, and nothing is handed between phases: transfer happens
*inside* the shared user factors, so a user with no target history still gets target scores
``<p_u, q_i> + b_i`` from a ``p_u`` learned on their source rows.
Early stopping reads the target validation split only. Taught in the chapter "Transfer methods".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import keras
import numpy as np

from xcatrec.core.base import Phase, saved_arrays
from xcatrec.core.search import FACTOR_SPACE, Float
from xcatrec.data.shards import Shards
from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.models.mf_training import FactorConfig, RatingFactorModel, domain_factors, domain_rows
from xcatrec.training import Rows, numpy_weights
from xcatrec.training.losses import item_log_frequency
from xcatrec.training.streaming import JointShardRows, config_shard_rows


@dataclass(frozen=True)
class CMFConfig(FactorConfig):
    """Hyper-parameters of CMF (plus those of :class:`FactorConfig` and the loop settings).

    ``reg=None`` means 0.03 for BPR (CMF sees more rows per user than one-domain MF; 0.03 beat 0.1 and
    0.01 on the Amazon validation splits) and 0.3 for MSE.

    Args:
        source_weight: Weight of the source rows in the joint loss (0 = target-only matrix factorisation).
    """

    default_reg: ClassVar[dict[str, float]] = {"bpr": 0.03, "mse": 0.3}
    source_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.source_weight >= 0:
            raise ConfigError(f"source_weight must be >= 0, got {self.source_weight}.",
                              "Pass source_weight=1.0, for example.")


class CMF(RatingFactorModel):
    """Shared user factors, per-domain item factors and biases, trained on both domains at once.

    Item rows of the joint :class:`~xcatrec.training.layers.FactorNet` are the target items
    ``0..n_target-1`` followed by the source items.
    """

    name = "cmf"
    config_class = CMFConfig
    search_space = {**FACTOR_SPACE, "source_weight": Float(0.1, 2.0, log=True)}
    phases = (Phase("joint", "both"),)

    source_item_factors: np.ndarray | None = None
    source_item_bias: np.ndarray | None = None

    def build(self, phase: Phase, dataset: CrossDomainDataset) -> keras.Model:
        return self.factor_net(self.sizes.n_target_items + self.sizes.n_source_items)

    def rows(self, phase: Phase, dataset: CrossDomainDataset) -> Rows:
        """Target rows, then source rows (items shifted by ``n_target_items``), with a ``weight`` column."""
        cfg: CMFConfig = self.config
        tgt = domain_rows(dataset, "target", cfg.loss, negatives=cfg.negatives)
        src = domain_rows(dataset, "source", cfg.loss, offset=self.sizes.n_target_items, start=len(tgt),
                          negatives=cfg.negatives)
        columns = {k: np.concatenate([tgt.columns[k], src.columns[k]]) for k in tgt.columns}
        if "log_q" in columns:  # batches mix both domains: an item's share of the joint rows
            columns["log_q"] = item_log_frequency(columns["pos"])
        columns["weight"] = np.concatenate([np.ones(len(tgt), np.float32),
                                            np.full(len(src), cfg.source_weight, np.float32)])
        return Rows(columns, tgt.negatives + src.negatives)

    def shard_rows(self, phase: Phase, shards: Shards) -> JointShardRows:
        """The rows of :meth:`rows`, streamed from the shards of both categories (ranking losses)."""
        return config_shard_rows(JointShardRows, self.config, shards, "both", source_weight=self.config.source_weight)

    def export(self, phase: Phase, net: keras.Model) -> dict[str, np.ndarray]:
        state = numpy_weights(net)
        n_tgt = self.sizes.n_target_items
        self.set_factors(domain_factors(state, self.means["target"], slice(0, n_tgt)))
        source = domain_factors(state, self.means["source"], slice(n_tgt, None))
        self.source_item_factors, self.source_item_bias = source.item_factors, source.item_bias
        return state

    def source_scores(self, users) -> np.ndarray:
        """Scores of all *source* items for ``users`` (the other half of the joint factorisation)."""
        users = self._check_ids(users, self.sizes.n_users, "user")
        user_f, _ = self._factors()  # raises when untrained
        return (user_f[users] @ self.source_item_factors.T + self.source_item_bias).astype(np.float32)

    def get_state(self) -> dict[str, np.ndarray]:
        return {**super().get_state(), "source_item_factors": self.source_item_factors,
                "source_item_bias": self.source_item_bias}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        rows = dict.fromkeys(("source_item_factors", "source_item_bias"), self.sizes.n_source_items)
        arrays = saved_arrays(self.name, state, list(rows), rows)
        super().set_state(state)
        self.source_item_factors, self.source_item_bias = arrays["source_item_factors"], arrays["source_item_bias"]
