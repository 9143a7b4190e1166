"""What the tower-based methods (fine-tuning, shared bottom) share: their config fields, their state
and the names of the layers a transfer may select.

A *tower* is the package's one :class:`~xcatrec.training.layers.MLP` on an embedding: ReLU on every
hidden layer, a linear last layer (a dot product of two tower outputs is then an unconstrained score).
An empty tuple of units is the identity, so a two-tower model without towers is plain matrix
factorisation. Every learned array is named ``"<prefix>/dense_<i>/kernel"`` / ``".../bias"`` by
:func:`~xcatrec.training.layers.numpy_weights`, the names ``get_state()`` uses and transfer
declarations and diagnostics refer to. Taught in the chapter "Transfer methods".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xcatrec.core.base import Phase, saved_arrays
from xcatrec.core.factors import FactorModel
from xcatrec.errors import ConfigError
from xcatrec.training import KerasRecommender, numpy_weights
from xcatrec.training.config import TrainConfig
from xcatrec.training.losses import RANKING_LOSSES, check_loss


@dataclass(frozen=True)
class TowerConfig(TrainConfig):
    """Hyper-parameters common to the tower-based methods (plus the loop settings of TrainConfig).

    Args:
        dim: Width of the user and item embeddings (and of the representations when a tower is empty).
        loss: Per-row loss, one of :data:`~xcatrec.training.losses.RANKING_LOSSES` (``"softmax"``:
            in-batch plus ``negatives`` uniform negatives, log-Q corrected).
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
        check_loss(self.loss, RANKING_LOSSES)
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


class TowerModel(KerasRecommender, FactorModel):
    """Base of the tower-based methods: the state is the weights of the network of the last phase (a
    phase on the source domain only hands its weights on). A subclass lists their names in
    ``weight_names()`` and keeps them (and derives its numpy scoring factors) in ``_set_arrays(state)``."""

    _state: dict[str, np.ndarray] | None = None

    def export(self, phase: Phase, net) -> dict[str, np.ndarray]:
        state = numpy_weights(net)
        if phase.data != "source":
            self._set_arrays(state)
        return state

    def get_state(self) -> dict[str, np.ndarray]:
        if self._state is None:
            raise ConfigError(f"The {self.name} model has not been trained.", "Call model.fit(dataset) first.")
        return dict(self._state)

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        sizes, names = self.sizes, self.weight_names()
        rows = {n: sizes.n_source_items if n.startswith("source/") else sizes.n_target_items
                for n in names if n.endswith(("item_embedding", "item_bias"))}
        self._set_arrays(saved_arrays(self.name, state, names, {"user_embedding": sizes.n_users, **rows}))
