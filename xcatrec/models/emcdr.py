"""EMCDR: learn factors in each domain, then learn a mapping from source to target user factors.

Man, Shen, Jin & Cheng, "Cross-Domain Recommendation: An Embedding and Mapping Approach", IJCAI 2017.
Phase ``source-mf`` factorises the source domain and phase ``target-mf`` the target domain, separately
(BPR for implicit feedback, squared error for ratings, see :mod:`xcatrec.models.mf_training`). Phase
``map`` fits a multi-layer perceptron ``f`` with ``f(source factor of u) ~ target factor of u`` on the
overlapping users who have target training rows, by squared error, early-stopped on a held-out
fraction of those users. A cold-start user (source history, no target training rows) is then scored
with ``f(source factor)`` against the target item factors; a warm user keeps their target factor, or a
blend of both (``warm_blend``). Moved weights: the source user factors (the mapping's inputs) and the
target user factors (its regression targets); both stay frozen in the map phase, so
``transferred[...]`` equals ``get_state()[...]``. Taught in the chapter "Transfer methods".
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError, DataError
from xcatrec.models.base import FitReport, Phase
from xcatrec.models.search import FACTOR_SPACE
from xcatrec.models.mf_training import FactorConfig, Factors, RatingFactorModel, fit_domain_mf, row_batches
from xcatrec.training.trainer import build_keras, combine_reports, fit_keras, replica_mean


@dataclass(frozen=True)
class EMCDRConfig(FactorConfig):
    """Hyper-parameters of EMCDR (plus those of :class:`FactorConfig` and the loop settings).

    Args:
        source_epochs: Epochs of the source factorisation (no validation split there: all run).
        map_hidden: Hidden units of the mapping MLP (``tanh``); 0 makes the mapping linear.
        map_epochs: Maximum epochs of the mapping.
        map_batch_size: Users per step of the mapping.
        map_learning_rate: Adam step size of the mapping.
        map_reg: L2 penalty on the mapping's weights.
        map_patience: Early-stopping patience of the mapping (held-out squared error).
        valid_fraction: Fraction of the mapping's users held out to early-stop it. (Their target rows
            still trained the target factors, so this is a stopping rule, not a cold-start estimate.)
        warm_blend: Warm users score with ``(1 - warm_blend) * target factor + warm_blend * f(source
            factor)``; 0 keeps the target factor, as in the paper.
    """

    source_epochs: int = 20
    map_hidden: int = 128
    map_epochs: int = 200
    map_batch_size: int = 256
    map_learning_rate: float = 1e-3
    map_reg: float = 1e-5
    map_patience: int = 10
    valid_fraction: float = 0.1
    warm_blend: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("source_epochs", "map_epochs", "map_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}.",
                                  f"Pass {name}=1 or more.")
        if min(self.map_hidden, self.map_patience, self.map_reg) < 0 or not self.map_learning_rate > 0:
            raise ConfigError("map_hidden, map_patience and map_reg must be >= 0 and map_learning_rate > 0.",
                              "Pass map_hidden=128, map_patience=10, map_reg=1e-5, map_learning_rate=1e-3.")
        if not 0 <= self.valid_fraction < 1 or not 0 <= self.warm_blend <= 1:
            raise ConfigError(f"valid_fraction must be in [0, 1) and warm_blend in [0, 1], got "
                              f"{self.valid_fraction} and {self.warm_blend}.",
                              "Pass 0.1 and 0.0, for example.")


class MappingNet(keras.Model):
    """``f(x) = W2 tanh(W1 x + b1) + b2`` (or ``W x + b`` without hidden units), fitted by squared error.

    Inputs are dicts ``{"x": source factors, "y": target factors}``; the loss per row is
    ``|f(x) - y|^2 + reg * (sum of squared kernel weights)``.
    """

    def __init__(self, dim_in: int, dim_out: int, hidden: int, reg: float, seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        init = lambda k: keras.initializers.GlorotUniform(seed=seed + k)  # noqa: E731
        self.layers_ = ([keras.layers.Dense(hidden, activation="tanh", kernel_initializer=init(0))]
                        if hidden else [])
        self.layers_.append(keras.layers.Dense(dim_out, kernel_initializer=init(1)))
        self.reg = reg
        self.dim_in = dim_in

    def call(self, inputs: dict):
        h = inputs["x"]
        for layer in self.layers_:
            h = layer(h)
        return h

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        per_row = ops.sum(ops.square(y_pred - x["y"]), axis=-1)
        penalty = sum(ops.sum(ops.square(layer.kernel)) for layer in self.layers_)
        return replica_mean(per_row) + self.reg * penalty

    def numpy_weights(self) -> list[np.ndarray]:
        """Kernels and biases, first layer first (what :func:`mlp_apply` takes)."""
        return [np.asarray(w.numpy(), np.float32) for layer in self.layers_ for w in layer.weights]


def mlp_apply(weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The mapping in numpy: ``(kernel, bias)`` pairs, ``tanh`` between layers, linear output."""
    h = np.asarray(x, np.float32)
    n_layers = len(weights) // 2
    for k in range(n_layers):
        h = h @ weights[2 * k] + weights[2 * k + 1]
        if k < n_layers - 1:
            h = np.tanh(h)
    return h.astype(np.float32)


def split_users(users: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, held_out)`` users: a random ``fraction`` held out (none when fewer than 10 users)."""
    n_held = int(round(fraction * len(users))) if len(users) >= 10 else 0
    order = np.random.default_rng([seed, 31]).permutation(users)
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def bridge_users(dataset: CrossDomainDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(has_source, has_target, overlap)`` boolean masks over users, from the *training* rows."""
    has_src = np.bincount(dataset.source.train.users, minlength=dataset.n_users) > 0
    has_tgt = np.bincount(dataset.target.train.users, minlength=dataset.n_users) > 0
    return has_src, has_tgt, has_src & has_tgt


def serve_factors(target: np.ndarray, users: np.ndarray, predicted: np.ndarray, warm: np.ndarray,
                  blend: float) -> np.ndarray:
    """Target user factors to score with: a copy of ``target`` whose rows ``users`` become
    ``predicted`` (cold users) or ``(1 - blend) * target + blend * predicted`` (where ``warm``)."""
    out = target.copy()
    out[users[~warm]] = predicted[~warm]
    blend = np.float32(blend)
    out[users[warm]] = (1 - blend) * target[users[warm]] + blend * predicted[warm]
    return out


class EMCDR(RatingFactorModel):
    """Source MF, target MF, and an MLP mapping source user factors to target user factors."""

    name = "emcdr"
    config_class = EMCDRConfig
    search_space = FACTOR_SPACE
    refit_epochs = {"epochs": ("target-mf", "patience")}
    phases = (Phase("source-mf", "source", moves=("source_user_factors",)),
              Phase("target-mf", "target", moves=("target_user_factors",)),
              Phase("map", "overlap"))

    def __init__(self, sizes, config: EMCDRConfig | None = None) -> None:
        super().__init__(sizes, config)
        self.source_user_factors: np.ndarray | None = None
        self.target_user_factors: np.ndarray | None = None
        self.mapping: dict[str, np.ndarray] = {}

    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport:
        cfg: EMCDRConfig = self.config
        keras.utils.set_random_seed(cfg.seed)
        self.fit_rating_range(dataset)
        source, src_report = fit_domain_mf(self, dataset, "source", cfg, epochs=cfg.source_epochs,
                                           validate=False, verbose=verbose, prefix=f"{self.name} source-mf ")
        self.source_user_factors = source.user_factors
        self.transferred["source_user_factors"] = source.user_factors.copy()
        target, tgt_report = fit_domain_mf(self, dataset, "target", cfg, epochs=cfg.epochs, validate=True,
                                           verbose=verbose, prefix=f"{self.name} target-mf ")
        self.target_user_factors = target.user_factors
        self.transferred["target_user_factors"] = target.user_factors.copy()
        map_report = self._fit_mapping(dataset, verbose)
        self._finish(dataset, target)
        return combine_reports({"source-mf": src_report, "target-mf": tgt_report, "map": map_report})

    def _fit_mapping(self, dataset: CrossDomainDataset, verbose: bool) -> FitReport:
        cfg: EMCDRConfig = self.config
        _, _, overlap = bridge_users(dataset)
        users = np.flatnonzero(overlap)
        if len(users) == 0:
            raise DataError("EMCDR needs users with source and target training rows to learn its mapping, "
                            "but there are none.", "Use a data set whose domains share users.")
        train, held = split_users(users, cfg.valid_fraction, cfg.seed)
        x, y = self.source_user_factors, self.target_user_factors
        dim_in, dim_out = x.shape[1], y.shape[1]

        def build() -> MappingNet:
            net = MappingNet(dim_in, dim_out, cfg.map_hidden, cfg.map_reg, cfg.seed)
            net({"x": np.zeros((1, dim_in), np.float32), "y": np.zeros((1, dim_out), np.float32)})
            net.compile(optimizer=keras.optimizers.Adam(cfg.map_learning_rate))
            return net

        net = build_keras(build)

        def held_out_error() -> float:
            error = mlp_apply(net.numpy_weights(), x[held]) - y[held]
            return -float(np.mean(np.sum(error ** 2, axis=1)))

        batches = row_batches({"x": x[train], "y": y[train]}, cfg.map_batch_size, cfg.seed)
        report = fit_keras(net, batches=batches, validate=held_out_error if len(held) else None,
                           epochs=cfg.map_epochs, patience=cfg.map_patience, verbose=verbose,
                           log_prefix=f"{self.name} map ", metric="valid_neg_mse")
        self.mapping = {f"map_{k}": w for k, w in enumerate(net.numpy_weights())}
        return report

    def map_users(self, users) -> np.ndarray:
        """``f(source factor)`` of ``users``: their predicted target factors."""
        users = self._check_ids(users, self.sizes.n_users, "user")
        weights = [self.mapping[f"map_{k}"] for k in range(len(self.mapping))]
        return mlp_apply(weights, self.source_user_factors[users])

    def _finish(self, dataset: CrossDomainDataset, target: Factors) -> None:
        """Final target user factors: mapped for cold users, target (or blended) for warm ones."""
        has_src, has_tgt, _ = bridge_users(dataset)
        mapped = np.flatnonzero(has_src)
        users = serve_factors(self.target_user_factors, mapped, self.map_users(mapped), has_tgt[mapped],
                              self.config.warm_blend)
        self.set_factors(Factors(users, target.item_factors, target.item_bias))

    def get_state(self) -> dict[str, np.ndarray]:
        state = super().get_state()
        state.update({"source_user_factors": self.source_user_factors,
                      "target_user_factors": self.target_user_factors, **self.mapping})
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for key in ("source_user_factors", "target_user_factors", "map_0", "map_1"):
            if key not in state:
                raise DataError(f"The saved EMCDR weights have no {key!r} array.",
                                "Load a folder written by EMCDR.save().")
        super().set_state(state)
        self.source_user_factors = np.asarray(state["source_user_factors"], np.float32)
        self.target_user_factors = np.asarray(state["target_user_factors"], np.float32)
        self.mapping = {k: np.asarray(v, np.float32) for k, v in state.items() if k.startswith("map_")}
