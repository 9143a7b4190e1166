"""EMCDR: learn factors in each domain, then learn a mapping from source to target user factors.

Man, Shen, Jin & Cheng, "Cross-Domain Recommendation: An Embedding and Mapping Approach", IJCAI 2017.
Phase ``source-mf`` factorises the source domain and phase ``target-mf`` the target domain, separately
(BPR for implicit feedback, squared error for ratings, see :mod:`xcatrec.models.mf_training`). Phase
``map`` fits a multi-layer perceptron ``f`` with ``f(source factor of u) ~ target factor of u`` on the
overlapping users who have target training rows, by squared error, early-stopped on a held-out
fraction of those users (a ``"held-out"`` phase: a refit keeps that rule and freezes only the epochs
of ``target-mf``). A cold-start user (source history, no target training rows) is then scored with
``f(source factor)`` against the target item factors; a warm user keeps their target factor, or a
blend of both (``warm_blend``). Moved weights: the source user factors (the mapping's inputs) and the
target user factors (its regression targets); both stay frozen in the map phase, so
``transferred[...]`` equals ``get_state()[...]``. Taught in the chapter "Transfer methods".
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from xcatrec.core.base import Phase, saved_arrays
from xcatrec.core.search import FACTOR_SPACE
from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.models.mf_training import BridgeConfig, BridgeModel
from xcatrec.training import MLP, Rows, Validation, mlp_numpy, numpy_weights, replica_mean


@dataclass(frozen=True)
class EMCDRConfig(BridgeConfig):
    """Hyper-parameters of EMCDR (plus those of :class:`~xcatrec.models.mf_training.BridgeConfig`).

    Args:
        map_hidden: Hidden units of the mapping MLP (``tanh``); 0 makes the mapping linear.
        map_epochs: Maximum epochs of the mapping.
        map_batch_size: Users per step of the mapping.
        map_learning_rate: Adam step size of the mapping.
        map_reg: L2 penalty on the mapping's weights.
        map_patience: Early-stopping patience of the mapping (held-out squared error).
    """

    map_hidden: int = 128
    map_epochs: int = 200
    map_batch_size: int = 256
    map_learning_rate: float = 1e-3
    map_reg: float = 1e-5
    map_patience: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.map_epochs, self.map_batch_size) < 1:
            raise ConfigError(f"map_epochs and map_batch_size must be at least 1, got {self.map_epochs} and "
                              f"{self.map_batch_size}.", "Pass map_epochs=200, map_batch_size=256, for example.")
        if min(self.map_hidden, self.map_patience, self.map_reg) < 0 or not self.map_learning_rate > 0:
            raise ConfigError("map_hidden, map_patience and map_reg must be >= 0 and map_learning_rate > 0.",
                              "Pass map_hidden=128, map_patience=10, map_reg=1e-5, map_learning_rate=1e-3.")


class MappingNet(keras.Model):
    """``f(x) = W2 tanh(W1 x + b1) + b2`` (or ``W x + b`` without hidden units), fitted by squared error.

    ``f`` is the :class:`~xcatrec.training.layers.MLP` named ``map`` (weights ``map/dense_0/kernel`` ...).
    Inputs are dicts ``{"x": source factors, "y": target factors}``; the loss per row is
    ``|f(x) - y|^2 + reg * (sum of squared kernel weights)``.
    """

    def __init__(self, units: tuple[int, ...], reg: float, seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mlp = MLP(units, seed, name="map", activation="tanh")
        self.reg = reg

    def call(self, inputs: dict):
        return self.mlp(inputs["x"])

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        penalty = sum(ops.sum(ops.square(layer.kernel)) for layer in self.mlp.dense)
        return replica_mean(ops.sum(ops.square(y_pred - ops.cast(x["y"], y_pred.dtype)), axis=-1)
                            + self.reg * penalty)


class EMCDR(BridgeModel):
    """Source MF, target MF, and an MLP mapping source user factors to target user factors."""

    name = "emcdr"
    config_class = EMCDRConfig
    search_space = FACTOR_SPACE
    phases = (Phase("source-mf", "source", moves=("source_user_factors",), validate="", prefix="source_"),
              Phase("target-mf", "target", moves=("target_user_factors",)),
              Phase("map", "overlap", validate="held-out", prefix="map_"))
    mapping: dict[str, np.ndarray]  # the weights of the mapping f, set by training or set_state

    def build(self, phase: Phase, dataset: CrossDomainDataset) -> keras.Model:
        if phase.name != "map":
            return super().build(phase, dataset)
        cfg: EMCDRConfig = self.config
        out = self.target_user_factors.shape[1]
        return MappingNet((cfg.map_hidden, out) if cfg.map_hidden else (out,), cfg.map_reg, cfg.seed)

    def rows(self, phase: Phase, dataset: CrossDomainDataset) -> Rows:
        if phase.name != "map":
            return super().rows(phase, dataset)
        users = self._bridge_train
        return Rows({"x": self.source_user_factors[users], "y": self.target_user_factors[users]})

    def export(self, phase: Phase, net: keras.Model) -> dict[str, np.ndarray]:
        if phase.name != "map":
            return super().export(phase, net)
        self.mapping = numpy_weights(net)
        self.serve(self.map_users(self._sourced))
        return self.mapping

    def validation(self, phase: Phase, dataset: CrossDomainDataset) -> Validation | None:
        """Target-mf: as the family validates; map: minus the squared error of the mapped factors of
        the held-out users (config field ``valid_fraction``)."""
        if phase.name != "map":
            return super().validation(phase, dataset)
        held = self._bridge_held
        if len(held) == 0:
            return None
        return Validation("valid_neg_mse", lambda: -float(np.mean(np.sum(
            (self.map_users(held) - self.target_user_factors[held]) ** 2, axis=1))))

    def map_users(self, users) -> np.ndarray:
        """``f(source factor)`` of ``users``: their predicted target factors."""
        users = self._check_ids(users, self.sizes.n_users, "user")
        n_layers = 2 if self.config.map_hidden else 1
        return mlp_numpy(self.source_user_factors[users], self.mapping, "map", n_layers, activation="tanh")

    def get_state(self) -> dict[str, np.ndarray]:
        return {**super().get_state(), **self.mapping}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        names = [f"map/dense_{i}/{v}" for i in range(2 if self.config.map_hidden else 1) for v in ("kernel", "bias")]
        mapping = saved_arrays(self.name, state, names, {})
        super().set_state(state)
        self.mapping = mapping
