"""Fine-tuning: pre-train a two-tower network on the source category, copy its bottom layers, fine-tune.

Model transfer in the sense of Pan & Yang, "A Survey on Transfer Learning", IEEE Transactions on
Knowledge and Data Engineering 22(10), 2010 (parameter transfer), in the design article's recipe:
"copy the structure and weights of the bottom layers, optionally freeze them, fine-tune on the target".
The network has two towers: a user embedding followed by an MLP (the user tower) and an item embedding
followed by an MLP (the item tower); the score is the dot product of the tower outputs (plus an item
bias), trained with BPR, binary cross-entropy or the squared loss on sampled negatives. The towers'
widths are configurable; by default they are empty (matrix factorisation), which validated best on
Amazon Electronics -> Clothing, so the copied bottom layer is the user embedding.

Phases: ``source-pretrain`` trains the network on the source training rows for ``source_epochs``
epochs (no model selection: the source has no validation split). ``target-finetune`` builds the same
network for the target items, copies the layers named in ``config.transfer`` (default: the user
embedding and the user tower, because users are shared across categories and items are not), makes
them non-trainable when ``config.freeze``, draws new target item embeddings and tower, and trains on the
target training rows with early stopping on target validation NDCG@10. The copied arrays are recorded
in ``model.transferred`` under their ``get_state()`` names.

Cold-start users (no target training rows) never appear in a target batch, so their user-embedding
rows get no gradient in fine-tuning (:class:`~xcatrec.training.optimizers.LazyAdam` updates only the
rows a batch touches) and keep their source-trained values exactly; their target scores go through
the fine-tuned (or frozen) user tower and the new target item side. This works only when
``"user_embedding"`` is transferred; with ``transfer=()`` their rows are the random initialisation and
only the item biases rank for them. It does work where the categories are related: on the synthetic
marketplace cold users are ranked far better than by popularity, on Amazon Electronics -> Clothing a
little better (the chapter measures both). Fine-tuning moves the warm users' embeddings and the shared
tower away from the source space the cold users stay in; ``freeze=True`` prevents that drift at the
cost of a less adapted user side.

Taught in the chapter "Transfer methods".
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from xcatrec.data.types import CrossDomainDataset, Interactions
from xcatrec.errors import ConfigError, DataError
from xcatrec.models.base import FitReport, Phase
from xcatrec.models.search import Choice, Float
from xcatrec.models.embeddings import FactorModel
from xcatrec.models.towers import (MLP, TowerConfig, as_units, embedding, mlp_numpy, row_loss, sample_negatives,
                                   select_names)
from xcatrec.training.optimizers import LazyAdam
from xcatrec.training.sampling import NegativeSampler
from xcatrec.training.trainer import (build_keras, combine_reports, epoch_dataset, fit_keras, fit_synced,
                                      replica_mean)

#: Layers that exist with the same shape in both domains' networks (item embeddings do not).
TRANSFERABLE = ("user_embedding", "user_tower", "item_tower")


@dataclass(frozen=True)
class FinetuneConfig(TowerConfig):
    """Hyper-parameters of fine-tuning (plus :class:`TowerConfig` and the loop settings).

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


class TwoTowerNet(keras.Model):
    """User embedding -> user tower, item embedding -> item tower, score = dot product + item bias.

    Inputs are dicts ``{"user": (B,), "pos": (B,), "neg": (B, n)}`` of indices; the output holds the
    positive scores, the negative scores and the squared norm of the embedding rows used (for L2).
    """

    def __init__(self, n_users: int, n_items: int, cfg: FinetuneConfig, seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.user_embedding = embedding(n_users, cfg.dim, cfg.init_std, seed, "user_embedding")
        self.user_tower = MLP(cfg.tower_units, seed + 10, name="user_tower")
        self.item_embedding = embedding(n_items, cfg.dim, cfg.init_std, seed + 1, "item_embedding")
        self.item_tower = MLP(cfg.tower_units, seed + 20, name="item_tower")
        self.item_bias = embedding(n_items, 1, 1.0, 0, "item_bias", zeros=True) if cfg.item_bias else None
        self.loss_kind, self.reg = cfg.loss, cfg.reg

    def call(self, inputs: dict) -> dict:
        eu, ep, en = (self.user_embedding(inputs["user"]), self.item_embedding(inputs["pos"]),
                      self.item_embedding(inputs["neg"]))
        u, p, n = self.user_tower(eu), self.item_tower(ep), self.item_tower(en)
        s_pos, s_neg = ops.sum(u * p, axis=-1), ops.sum(u[:, None, :] * n, axis=-1)
        if self.item_bias is not None:
            s_pos = s_pos + ops.squeeze(self.item_bias(inputs["pos"]), -1)
            s_neg = s_neg + ops.squeeze(self.item_bias(inputs["neg"]), -1)
        norm = ops.sum(eu * eu, -1) + ops.sum(ep * ep, -1) + ops.mean(ops.sum(en * en, -1), -1)
        return {"pos": s_pos, "neg": s_neg, "norm": norm}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return replica_mean(row_loss(y_pred["pos"], y_pred["neg"], self.loss_kind) + self.reg * y_pred["norm"])

    def arrays(self) -> dict[str, np.ndarray]:
        """All weights as float32 numpy arrays under their ``get_state()`` names."""
        state = {"user_embedding": np.array(self.user_embedding.embeddings.numpy(), np.float32),
                 "item_embedding": np.array(self.item_embedding.embeddings.numpy(), np.float32),
                 **self.user_tower.arrays("user_tower"), **self.item_tower.arrays("item_tower")}
        if self.item_bias is not None:
            state["item_bias"] = np.array(self.item_bias.embeddings.numpy()[:, 0], np.float32)
        return state

    def assign(self, state: dict[str, np.ndarray], names: tuple[str, ...]) -> None:
        """Set the weights named in ``names`` (any ``get_state()`` names) from ``state``."""
        for name in names:
            if name in ("user_embedding", "item_embedding"):
                getattr(self, name).embeddings.assign(state[name])
            elif name == "item_bias":
                self.item_bias.embeddings.assign(np.asarray(state[name])[:, None])
            else:
                tower, layer, var = name.split("/")
                getattr(getattr(self, tower).sublayer(layer), var).assign(state[name])

    def layer(self, name: str) -> keras.layers.Layer:
        """The layer a transfer name refers to (``"user_tower/dense_0"`` -> that Dense layer)."""
        head, _, rest = name.partition("/")
        return getattr(self, head).sublayer(rest) if head.endswith("_tower") else getattr(self, head)


def weight_names(units: tuple[int, ...], item_bias: bool) -> list[str]:
    """The ``get_state()`` names of a two-tower network, bottom first."""
    towers = [f"{t}/dense_{i}/{v}" for t in ("user_tower", "item_tower") for i in range(len(units))
              for v in ("kernel", "bias")]
    return ["user_embedding", "item_embedding", *towers] + (["item_bias"] if item_bias else [])


class Finetune(FactorModel):
    """Source pre-training, transfer of the bottom (user-side) layers, target fine-tuning."""

    name = "finetune"
    config_class = FinetuneConfig
    search_space = {"reg": Float(1e-6, 1e-2, log=True), "learning_rate": Float(1e-3, 2e-2, log=True),
                    "dim": Choice((32, 64, 128)), "freeze": Choice((False, True))}
    refit_epochs = {"epochs": ("target-finetune", "patience")}
    phases = (Phase("source-pretrain", "source", moves=("user_embedding",)), Phase("target-finetune", "target"))

    def __init__(self, sizes, config: FinetuneConfig | None = None) -> None:
        super().__init__(sizes, config)
        cfg: FinetuneConfig = self.config
        self.moves = select_names(weight_names(cfg.tower_units, cfg.item_bias), cfg.transfer, TRANSFERABLE)
        self.phases = (Phase("source-pretrain", "source", moves=self.moves), Phase("target-finetune", "target"))
        self._state: dict[str, np.ndarray] | None = None

    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport:
        cfg: FinetuneConfig = self.config
        keras.utils.set_random_seed(cfg.seed)
        # phase 1: source pre-training (fixed epochs; the source has no validation split)
        src = self._build(self.sizes.n_source_items, cfg.seed)
        r_src = fit_keras(src, batches=self._batches(dataset, "source", cfg.seed), epochs=cfg.source_epochs,
                          verbose=verbose, log_prefix=f"{self.name}/source-pretrain ",
                          checkpoint=cfg.checkpoint_dir or None, checkpoint_seed=cfg.seed)
        source_state = src.arrays()
        self.transferred = {n: source_state[n].copy() for n in self.moves}
        # phase 2: same structure for the target items, copy the bottom layers, fine-tune
        tgt = self._build(self.sizes.n_target_items, cfg.seed + 100, self.transferred)
        self._set_arrays(tgt.arrays())
        r_tgt = fit_synced(self, tgt, dataset, cfg, batches=self._batches(dataset, "target", cfg.seed + 1),
                           sync=lambda: self._set_arrays(tgt.arrays()), verbose=verbose,
                           log_prefix=f"{self.name}/target-finetune ")
        return combine_reports({"source-pretrain": r_src, "target-finetune": r_tgt})

    def _build(self, n_items: int, seed: int, copied: dict[str, np.ndarray] | None = None) -> TwoTowerNet:
        """A compiled two-tower network; ``copied`` weights are assigned (and frozen if configured)."""
        cfg: FinetuneConfig = self.config

        def build() -> TwoTowerNet:
            net = TwoTowerNet(self.sizes.n_users, n_items, cfg, seed)
            zero = np.zeros(1, np.int64)
            net({"user": zero, "pos": zero, "neg": np.zeros((1, 1), np.int64)})  # create the variables
            if copied:
                net.assign(copied, tuple(copied))
                if cfg.freeze:
                    for name in cfg.transfer:
                        net.layer(name).trainable = False
            net.compile(optimizer=LazyAdam(cfg.learning_rate))
            return net

        return build_keras(build)

    def _batches(self, dataset: CrossDomainDataset, role: str, seed: int):
        """``epoch -> tf.data.Dataset`` of the domain's training rows with sampled negatives."""
        cfg: FinetuneConfig = self.config
        rows: Interactions = dataset.domain(role).train
        sampler = NegativeSampler(dataset.matrix(role, "train"))

        def batches(epoch: int):
            rng = np.random.default_rng([seed, epoch])
            order = rng.permutation(len(rows))
            users = rows.users[order]
            return epoch_dataset({"user": users, "pos": rows.items[order],
                                  "neg": sample_negatives(sampler, users, cfg.negatives, rng)}, cfg.batch_size)

        return batches

    def _set_arrays(self, state: dict[str, np.ndarray]) -> None:
        """Keep the target network's arrays and derive the numpy scoring factors from them."""
        n = len(self.config.tower_units)
        self._state = state
        self.user_factors = mlp_numpy(state["user_embedding"], state, "user_tower", n)
        self.item_factors = mlp_numpy(state["item_embedding"], state, "item_tower", n)
        self.item_bias = state.get("item_bias")

    def get_state(self) -> dict[str, np.ndarray]:
        """The target network's weights: embeddings, tower kernels and biases, item biases."""
        if self._state is None:
            raise ConfigError("The finetune model has not been trained.", "Call model.fit(dataset) first.")
        return dict(self._state)

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        cfg: FinetuneConfig = self.config
        names = weight_names(cfg.tower_units, cfg.item_bias)
        missing = [n for n in names if n not in state]
        if missing:
            raise DataError(f"The saved finetune weights lack {missing}.",
                            "Load a folder written by Finetune.save with the same config.")
        rows = {"user_embedding": self.sizes.n_users, "item_embedding": self.sizes.n_target_items,
                "item_bias": self.sizes.n_target_items}
        for name, n in rows.items():
            if name in state and len(state[name]) != n:
                raise DataError(f"The saved {name!r} has {len(state[name])} rows but the model needs {n}.",
                                "Load weights saved from a model of the same data set.")
        self._set_arrays({n: np.asarray(state[n], np.float32) for n in names})
