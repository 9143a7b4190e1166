"""Fine-tuning: pre-train a two-tower network on the source category, copy its bottom layers, fine-tune.

Model transfer in the sense of Pan & Yang, "A Survey on Transfer Learning", IEEE Transactions on
Knowledge and Data Engineering 22(10), 2010 (parameter transfer), in the design article's recipe:
"copy the structure and weights of the bottom layers, optionally freeze them, fine-tune on the target".
The network of both phases is the package's one :class:`~xcatrec.training.layers.FactorNet` with
towers: a user embedding and an MLP (the user tower), an item embedding and an MLP (the item tower),
and the dot product of their outputs plus an item bias as the score, trained with BPR, binary
cross-entropy, the squared loss on sampled negatives or a softmax loss (``loss="softmax"``: in-batch
and sampled negatives, :mod:`xcatrec.training.losses`). By default the towers are empty (matrix
factorisation validated best on Amazon Electronics -> Clothing), so the copied bottom layer is the
user embedding.

Phases: ``source-pretrain`` trains on the source rows for ``source_epochs`` epochs (there is no source
validation split). ``target-finetune`` builds the network for the target items; :meth:`Finetune.prepare`
copies the layers named in ``config.transfer`` (default: the user side, because users are shared across
categories and items are not; the copied arrays are the source phase's declared ``moves``) and freezes
them when ``config.freeze``; then the network trains on the target rows, early-stopped on target
validation NDCG@10.

Cold-start users never appear in a target batch, so their user-embedding rows get no gradient
(:class:`~xcatrec.training.optimizers.LazyAdam` updates only the rows a batch touches) and keep their
source-trained values; their target scores go through the fine-tuned (or frozen) user tower and the new
item side. That needs ``"user_embedding"`` in ``transfer`` (with ``transfer=()`` only the item biases
rank them). Fine-tuning moves the warm users and the user tower away from the source space the cold
users stay in; ``freeze=True`` prevents that drift at the cost of a less adapted user side. Taught in
the chapter "Transfer methods", which measures both on related and real categories.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from xcatrec.core.base import Phase
from xcatrec.core.search import Choice, Float
from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.models.towers import TowerConfig, TowerModel, as_units, select_names
from xcatrec.training import FactorNet, NegativeSampler, Negatives, Rows, assign_weights, mlp_numpy
from xcatrec.training.losses import loss_columns

#: Layers that exist with the same shape in both domains' networks (item embeddings do not).
TRANSFERABLE = ("user_embedding", "user_tower", "item_tower")


@dataclass(frozen=True)
class FinetuneConfig(TowerConfig):
    """Hyper-parameters of fine-tuning (plus :class:`~xcatrec.models.towers.TowerConfig` and the loop settings).

    Args:
        epochs: Maximum target fine-tuning epochs (early-stopped on target validation).
        source_epochs: Source pre-training epochs.
        tower_units: Widths of the user and item towers' layers; ``()`` (the default, chosen on Amazon
            validation NDCG, where a tower over-fits the sparse target within two epochs) means no
            tower: the model is matrix factorisation and the bottom layer is the user embedding.
        transfer: Names of the layers copied from the source network: ``"user_embedding"``,
            ``"user_tower"``, ``"item_tower"`` or one layer of a tower, e.g. ``"user_tower/dense_0"``.
            ``()`` transfers nothing (a target-only two-tower model).
        freeze: Keep the copied layers fixed during fine-tuning.
    """

    epochs: int = 30
    learning_rate: float = 5e-3
    patience: int = 3
    source_epochs: int = 10
    tower_units: tuple[int, ...] = ()
    transfer: tuple[str, ...] = ("user_embedding", "user_tower")
    freeze: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        as_units(self, "tower_units")
        transfer = (self.transfer,) if isinstance(self.transfer, str) else tuple(self.transfer)
        object.__setattr__(self, "transfer", transfer)
        if self.source_epochs < 1:
            raise ConfigError(f"source_epochs must be at least 1, got {self.source_epochs}.",
                              "Pass source_epochs=10, for example; transfer=() gives a target-only model.")


def weight_names(units: tuple[int, ...], item_bias: bool) -> list[str]:
    """The ``get_state()`` names of a two-tower network, bottom first."""
    towers = [f"{t}/dense_{i}/{v}" for t in ("user_tower", "item_tower") for i in range(len(units))
              for v in ("kernel", "bias")]
    return ["user_embedding", "item_embedding", *towers] + (["item_bias"] if item_bias else [])


class Finetune(TowerModel):
    """Source pre-training, transfer of the bottom (user-side) layers, target fine-tuning."""

    name = "finetune"
    config_class = FinetuneConfig
    search_space = {"reg": Float(1e-6, 1e-2, log=True), "learning_rate": Float(1e-3, 2e-2, log=True),
                    "dim": Choice((32, 64, 128)), "freeze": Choice((False, True))}
    phases = (Phase("source-pretrain", "source", moves=("user_embedding",), validate="", prefix="source_"),
              Phase("target-finetune", "target"))

    def __init__(self, sizes, config: FinetuneConfig | None = None) -> None:
        super().__init__(sizes, config)
        self.moves = select_names(self.weight_names(), self.config.transfer, TRANSFERABLE)
        self.phases = (replace(self.phases[0], moves=self.moves), self.phases[1])

    def weight_names(self) -> list[str]:
        return weight_names(self.config.tower_units, self.config.item_bias)

    def build(self, phase: Phase, dataset: CrossDomainDataset) -> FactorNet:
        cfg: FinetuneConfig = self.config
        source = phase.data == "source"
        return FactorNet(self.sizes.n_users, self.sizes.n_source_items if source else self.sizes.n_target_items,
                         dim=cfg.dim, loss=cfg.loss, reg=cfg.reg, init_std=cfg.init_std,
                         seed=cfg.seed if source else cfg.seed + 100, tower_units=cfg.tower_units,
                         item_bias=cfg.item_bias)

    def rows(self, phase: Phase, dataset: CrossDomainDataset) -> Rows:
        train, cfg = dataset.domain(phase.data).train, self.config
        sampler = NegativeSampler(dataset.matrix(phase.data, "train"))
        extra = loss_columns(cfg.loss, train.items, dataset.domain(phase.data).n_items, cfg.negatives)
        return Rows({"user": train.users, "pos": train.items, **extra},
                    (Negatives(sampler, train.users, per_row=cfg.negatives),))

    def prepare(self, phase: Phase, net: FactorNet, dataset: CrossDomainDataset) -> None:
        """The transfer step: copy the source network's selected weights, freeze their layers if configured."""
        if phase.data != "target" or not self.transferred:
            return
        assign_weights(net, self.transferred, self.moves)
        if self.config.freeze:
            for name in self.config.transfer:
                head, _, layer = name.partition("/")  # "user_tower/dense_0": one layer of the user tower
                part = getattr(net, head)
                (part.sublayer(layer) if layer else part).trainable = False

    def _set_arrays(self, state: dict[str, np.ndarray]) -> None:
        """Keep the target network's arrays and derive the numpy scoring factors from them."""
        n = len(self.config.tower_units)
        self._state = state
        self.user_factors = mlp_numpy(state["user_embedding"], state, "user_tower", n)
        self.item_factors = mlp_numpy(state["item_embedding"], state, "item_tower", n)
        self.item_bias = state.get("item_bias")
