"""Building blocks shared by the neural transfer methods: MLP towers, their numpy twins, losses, configs.

A *tower* maps an embedding to a representation with a small multi-layer perceptron: ReLU on every
hidden layer, a linear last layer (a dot product of two tower outputs is then an unconstrained score).
An empty tuple of units is the identity, so a two-tower model without towers is plain matrix
factorisation. Every learned array is named ``"<prefix>/dense_<i>/kernel"`` / ``".../bias"``, the names
``get_state()`` uses and transfer declarations and diagnostics refer to.

Scoring never calls Keras: :func:`mlp_numpy` runs the same tower in numpy from those arrays, so a
loaded model scores exactly like the trained one and a user x item score matrix is one matrix product.

Per-row losses (:func:`row_loss`), for one positive ``s_pos`` and ``n`` sampled negatives ``s_neg``:

* ``"squared"``: ``[1/2 (1 - sigmoid(s_pos))^2 + sum_j 1/2 sigmoid(s_neg_j)^2] / (1 + n)``;
* ``"bce"``: ``[-log sigmoid(s_pos) - sum_j log(1 - sigmoid(s_neg_j))] / (1 + n)``;
* ``"bpr"``: ``mean_j -log sigmoid(s_pos - s_neg_j)`` (Rendle et al., UAI 2009).

Taught in the chapter "Transfer methods".
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from xcatrec.errors import ConfigError
from xcatrec.models.train_config import TrainConfig
from xcatrec.training.sampling import NegativeSampler

LOSSES = ("squared", "bce", "bpr")


@dataclass(frozen=True)
class TowerConfig(TrainConfig):
    """Hyper-parameters common to the tower-based methods (plus the loop settings of TrainConfig).

    Args:
        dim: Width of the user and item embeddings (and of the representations when a tower is empty).
        loss: Per-row loss, one of :data:`LOSSES`.
        negatives: Sampled negative items per positive row.
        reg: Weight of the L2 penalty on the embedding rows a batch uses.
        init_std: Standard deviation of the normal initialisation of the embeddings.
        item_bias: Learn a bias per item (captures popularity).
    """

    dim: int = 64
    loss: str = "bpr"
    negatives: int = 1
    reg: float = 1e-4
    init_std: float = 0.01
    item_bias: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in LOSSES:
            raise ConfigError(f"Unknown loss {self.loss!r}.", f"Use one of {list(LOSSES)}.")
        if self.dim < 1 or self.negatives < 1:
            raise ConfigError(f"dim and negatives must be at least 1, got {self.dim} and {self.negatives}.",
                              "Pass dim=64, negatives=1, for example.")
        if self.reg < 0 or not self.init_std > 0:
            raise ConfigError(f"reg must be >= 0 and init_std > 0, got {self.reg} and {self.init_std}.",
                              "Pass reg=1e-4, init_std=0.01, for example.")


def as_units(config: TrainConfig, field: str) -> tuple[int, ...]:
    """Normalise a units field (a list after a JSON round trip) to a tuple of positive ints, in place."""
    units = getattr(config, field)
    units = (units,) if isinstance(units, int) else tuple(units)
    if any(int(u) != u or u < 1 for u in units):
        raise ConfigError(f"{field} must be a tuple of positive layer widths, got {units!r}.",
                          f"Pass {field}=(64,), or () for no tower.")
    units = tuple(int(u) for u in units)
    object.__setattr__(config, field, units)
    return units


class MLP(keras.layers.Layer):
    """Dense layers ``dense_0 .. dense_{L-1}``: ReLU on hidden layers, linear output; ``()`` = identity.

    Args:
        units: Width of each layer, bottom first.
        seed: Seed of the Glorot-uniform kernel initialisers (layer ``i`` uses ``seed + i``).
        name: Layer name, also the prefix of its weight names.
    """

    def __init__(self, units: tuple[int, ...], seed: int = 0, name: str | None = None, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.units = tuple(units)
        self.dense = [keras.layers.Dense(u, activation="relu" if i < len(units) - 1 else None,
                                         kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i),
                                         name=f"dense_{i}") for i, u in enumerate(units)]

    def call(self, x):
        for layer in self.dense:
            x = layer(x)
        return x

    def weight_names(self, prefix: str) -> list[str]:
        """Names of the tower's arrays in the order of :meth:`arrays`."""
        return [f"{prefix}/dense_{i}/{v}" for i in range(len(self.dense)) for v in ("kernel", "bias")]

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The current kernels and biases as float32 numpy arrays, by name."""
        values = [np.array(v.numpy(), np.float32) for d in self.dense for v in (d.kernel, d.bias)]
        return dict(zip(self.weight_names(prefix), values))

    def assign(self, state: dict[str, np.ndarray], prefix: str) -> None:
        """Set the kernels and biases from ``state`` (names as in :meth:`arrays`)."""
        for d, i in zip(self.dense, range(len(self.dense))):
            d.kernel.assign(state[f"{prefix}/dense_{i}/kernel"])
            d.bias.assign(state[f"{prefix}/dense_{i}/bias"])

    def sublayer(self, path: str) -> keras.layers.Layer:
        """``""`` -> the tower itself, ``"dense_<i>"`` -> that layer."""
        if not path:
            return self
        names = [f"dense_{i}" for i in range(len(self.dense))]
        if path not in names:
            raise ConfigError(f"Tower {self.name!r} has no layer {path!r}.", f"Use one of {names}.")
        return self.dense[names.index(path)]


def mlp_numpy(x: np.ndarray, state: dict[str, np.ndarray], prefix: str, n_layers: int) -> np.ndarray:
    """The forward pass of :class:`MLP` in numpy (float32), from the arrays named under ``prefix``."""
    x = np.asarray(x, np.float32)
    for i in range(n_layers):
        x = x @ state[f"{prefix}/dense_{i}/kernel"] + state[f"{prefix}/dense_{i}/bias"]
        if i < n_layers - 1:
            x = np.maximum(x, 0.0)
    return x.astype(np.float32, copy=False)


def embedding(n: int, dim: int, std: float, seed: int, name: str, zeros: bool = False) -> keras.layers.Embedding:
    """An embedding table initialised from ``N(0, std^2)`` (or zeros)."""
    init = "zeros" if zeros else keras.initializers.RandomNormal(stddev=std, seed=seed)
    return keras.layers.Embedding(n, dim, embeddings_initializer=init, name=name)


def row_loss(s_pos, s_neg, kind: str):
    """Per-row loss of one positive score ``(B,)`` against ``n`` negative scores ``(B, n)``."""
    if kind == "bpr":
        return ops.mean(-ops.log_sigmoid(s_pos[:, None] - s_neg), axis=-1)
    n = ops.cast(ops.shape(s_neg)[-1], s_pos.dtype)
    if kind == "bce":
        pos, neg = -ops.log_sigmoid(s_pos), -ops.sum(ops.log_sigmoid(-s_neg), axis=-1)
    elif kind == "squared":
        pos, neg = 0.5 * (1.0 - ops.sigmoid(s_pos)) ** 2, ops.sum(0.5 * ops.sigmoid(s_neg) ** 2, axis=-1)
    else:
        raise ConfigError(f"Unknown loss {kind!r}.", f"Use one of {list(LOSSES)}.")
    return (pos + neg) / (1.0 + n)


def sample_negatives(sampler: NegativeSampler, users: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unobserved items per row of ``users``, shape ``(len(users), n)``."""
    return sampler.sample(np.repeat(users, n), rng).reshape(len(users), n)


def select_names(names: list[str], patterns: tuple[str, ...], allowed: tuple[str, ...]) -> tuple[str, ...]:
    """Weight names equal to, or below (``pattern + "/"``), any of ``patterns``, in ``names`` order.

    Raises:
        ConfigError: A pattern does not start with an ``allowed`` layer name, or names a layer inside a
            layer (``"user_tower/dense_3"``) that does not exist. An empty tower selects nothing.
    """
    picked = []
    for p in patterns:
        if p.split("/")[0] not in allowed:
            raise ConfigError(f"Cannot transfer {p!r}: only {list(allowed)} (or their layers, e.g. "
                              f"'{allowed[-1]}/dense_0') exist in both domains.",
                              f"Pass transfer as a tuple of names from {list(allowed)}.")
        hit = [n for n in names if n == p or n.startswith(p + "/")]
        if not hit and "/" in p:  # a whole tower may be empty (units ()), one of its layers may not
            raise ConfigError(f"Transfer name {p!r} matches no weight.", f"Use names among {names}.")
        picked += [n for n in hit if n not in picked]
    return tuple(n for n in names if n in picked)
