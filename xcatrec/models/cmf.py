"""CMF: collective matrix factorisation, one user factor matrix shared by the source and target domain.

Singh & Gordon, "Relational Learning via Collective Matrix Factorization", KDD 2008. Several relations
that share an entity type are factorised together, and the shared entity gets one factor matrix. Here
the relations are user x source item and user x target item: each user ``u`` has one vector ``p_u``
and each item of either domain its own ``q_i`` and bias ``b_i``, and all of them are trained jointly on
the rows of both domains, with the loss ``L = L_target + source_weight * L_source``. The loss is BPR
for implicit feedback (``loss="bpr"``) or the squared error of ratings (``loss="mse"``, with a user
bias that is shared as well). There is a single phase, ``joint``, on both domains, and nothing is
handed between phases: transfer happens *inside* the shared user factors, so a user with no target
history still gets target scores ``<p_u, q_i> + b_i`` from a ``p_u`` learned on their source rows.
Early stopping reads the target validation split only. Taught in the chapter "Transfer methods".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import keras
import numpy as np

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError, DataError
from xcatrec.models.base import FitReport, Phase
from xcatrec.models.search import FACTOR_SPACE, Float
from xcatrec.models.mf_training import (FactorConfig, RatingFactorModel, build_net, domain_arrays,
                                        export_factors, metric_name, row_batches, valid_metric)
from xcatrec.training.sampling import NegativeSampler
from xcatrec.training.trainer import fit_keras


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

    Item rows of the joint network are the target items ``0..n_target-1`` followed by the source items.
    """

    name = "cmf"
    config_class = CMFConfig
    search_space = {**FACTOR_SPACE, "source_weight": Float(0.1, 2.0, log=True)}
    refit_epochs = {"epochs": ("", "patience")}
    phases = (Phase("joint", "both"),)

    def __init__(self, sizes, config: CMFConfig | None = None) -> None:
        super().__init__(sizes, config)
        self.source_item_factors: np.ndarray | None = None
        self.source_item_bias: np.ndarray | None = None

    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport:
        cfg: CMFConfig = self.config
        keras.utils.set_random_seed(cfg.seed)
        self.fit_rating_range(dataset)
        n_tgt = self.sizes.n_target_items
        tgt_rows, src_rows = dataset.target.train, dataset.source.train
        tgt, tgt_mean = domain_arrays(tgt_rows, cfg.loss, "target")
        src, src_mean = domain_arrays(src_rows, cfg.loss, "source")
        item_key = "pos" if cfg.loss == "bpr" else "item"
        src[item_key] = src[item_key] + n_tgt
        arrays = {k: np.concatenate([tgt[k], src[k]]) for k in tgt}
        arrays["weight"] = np.concatenate([np.ones(len(tgt_rows), np.float32),
                                           np.full(len(src_rows), cfg.source_weight, np.float32)])
        negatives = None
        if cfg.loss == "bpr":
            tgt_sampler = NegativeSampler(dataset.matrix("target", "train"))
            src_sampler = NegativeSampler(dataset.matrix("source", "train"))
            negatives = lambda rng: np.concatenate([  # noqa: E731
                tgt_sampler.sample(tgt_rows.users, rng), src_sampler.sample(src_rows.users, rng) + n_tgt])
        net = build_net(cfg, self.sizes.n_users, n_tgt + self.sizes.n_source_items)

        def copy() -> None:
            self.set_factors(export_factors(net, slice(0, n_tgt), tgt_mean))
            source = export_factors(net, slice(n_tgt, None), src_mean)
            self.source_item_factors, self.source_item_bias = source.item_factors, source.item_bias

        copy()
        report = fit_keras(net, batches=row_batches(arrays, cfg.batch_size, cfg.seed, negatives),
                           validate=valid_metric(self, dataset, cfg, copy), verbose=verbose,
                           log_prefix=f"{self.name} ", epochs=cfg.epochs, patience=cfg.patience,
                           eval_every=cfg.eval_every, metric=metric_name(cfg.loss),
                           checkpoint=cfg.checkpoint_dir or None, checkpoint_seed=cfg.seed)
        copy()
        return report

    def source_scores(self, users) -> np.ndarray:
        """Scores of all *source* items for ``users`` (the other half of the joint factorisation)."""
        users = self._check_ids(users, self.sizes.n_users, "user")
        user_f, _ = self._factors()  # raises when untrained
        return (user_f[users] @ self.source_item_factors.T + self.source_item_bias).astype(np.float32)

    def get_state(self) -> dict[str, np.ndarray]:
        state = super().get_state()
        state["source_item_factors"] = self.source_item_factors
        state["source_item_bias"] = self.source_item_bias
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for key in ("source_item_factors", "source_item_bias"):
            if key not in state or len(state[key]) != self.sizes.n_source_items:
                raise DataError(f"The saved CMF weights have no {key!r} with one row per source item.",
                                "Load a folder written by CMF.save() for the same data set.")
        super().set_state(state)
        self.source_item_factors = np.asarray(state["source_item_factors"], np.float32)
        self.source_item_bias = np.asarray(state["source_item_bias"], np.float32)
