"""Shared bottom: one network for both categories, trained jointly with ``L = L_source + lambda L_target``.

The design's central three-level model, a shared-bottom multi-task network (Caruana, "Multitask
Learning", Machine Learning 28, 1997; the shared-bottom baseline of Ma et al., "Modeling Task
Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts", KDD 2018) with one task per
category. *Bottom*: a user embedding shared by both domains and shared dense layers, the "feature
extractor shared by both categories", give ``h_u``. *Middle*: per domain, a fusion layer combines
``h_u`` with a domain-specific user embedding ``p_u^d`` (initialised to zero): ``"concat"`` gives
``z = W [h; p] + b``, ``"gate"`` gives ``z = g * h + (1 - g) * p`` with ``g = sigmoid(W [h; p] + b)``,
``"add"`` gives ``z = h + p``.
*Top*: per domain, a head scores ``z_u^d`` against that domain's item embeddings (plus item bias).

Training draws mixed batches of source and target rows (each row carries a domain flag), computes the
per-row loss of each row in its own domain's head, averages per domain and minimises
``L = L_s + lambda L_t`` (:meth:`SharedBottomNet.domain_losses` returns ``L_s`` and ``L_t``). So
``dL/d theta_shared = dL_s/d theta_shared + lambda dL_t/d theta_shared`` and
``dL/d theta_target = lambda dL_t/d theta_target``: the shared bottom is where the knowledge moves.
Per-row losses (:func:`~xcatrec.training.losses.ranking_loss`): ``"squared"`` (the design's derivation),
``"bce"`` (the design's code) or ``"bpr"``, on each positive and ``negatives`` sampled negatives, or a
softmax loss (``"softmax"``: in-batch negatives of the row's domain plus the sampled ones, log-Q corrected).

Phases: one, ``joint`` on ``both`` domains, moving nothing (``transferred`` stays empty): transfer
happens inside it through the shared parameters and is measured with representation similarity
(:meth:`SharedBottom.user_representations` + linear CKA). Cold-start users have only source rows:
their shared embedding is learned from the source loss and their target-private embedding stays zero,
so their target scores come from ``h_u`` alone. Taught in the chapter "Transfer methods".
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from xcatrec.core.base import Phase
from xcatrec.core.search import Choice, Float
from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.models.towers import TowerConfig, TowerModel, as_units
from xcatrec.training import (MLP, NegativeSampler, Negatives, Rows, assign_weights, embedding, mlp_numpy,
                              replica_mean)
from xcatrec.data.shards import Shards
from xcatrec.training.layers import softmax_scores
from xcatrec.training.losses import loss_columns, ranking_loss
from xcatrec.training.streaming import MixedShardRows, config_shard_rows

DOMAINS = ("source", "target")
FUSIONS = ("concat", "gate", "add")


@dataclass(frozen=True)
class SharedBottomConfig(TowerConfig):
    """Hyper-parameters of the shared-bottom model (plus :class:`~xcatrec.models.towers.TowerConfig` and
    the loop settings).

    The defaults (no shared dense layer, ``"add"`` fusion, BPR with one negative) validated best on
    Amazon Electronics -> Clothing; dense layers (shared, ``"concat"``, ``"gate"``) over-fit that
    sparse target within two or three epochs; they remain available for denser data.

    Args:
        lam: Weight ``lambda`` of the target loss in ``L = L_source + lambda L_target`` (>= 0).
        shared_units: Widths of the shared dense layers on the user embedding (``()``: none).
        fusion: How the middle level combines shared and domain-specific user representations:
            ``"concat"`` (concatenation + dense), ``"gate"`` (a learned sigmoid gate) or ``"add"``
            (``z = h + p``, no weights).
        private: Learn the domain-specific user embeddings ``p_u^d``; ``False`` fixes them at zero, so
            the middle level only re-maps the shared representation per domain.
    """

    epochs: int = 30
    learning_rate: float = 5e-3
    patience: int = 3
    loss: str = "bpr"
    negatives: int = 1
    lam: float = 1.0
    shared_units: tuple[int, ...] = ()
    fusion: str = "add"
    private: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        as_units(self, "shared_units")
        if not self.lam >= 0:
            raise ConfigError(f"lam must be >= 0, got {self.lam}.", "Pass lam=1.0, for example.")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"Unknown fusion {self.fusion!r}.", f"Use one of {list(FUSIONS)}.")

    @property
    def width(self) -> int:
        """Width of ``h_u``, ``p_u^d``, ``z_u^d`` and the item embeddings."""
        return self.shared_units[-1] if self.shared_units else self.dim


class DomainHead(keras.layers.Layer):
    """Middle and top level of one domain: private user embedding, fusion, item embeddings and biases."""

    def __init__(self, n_users: int, n_items: int, cfg: SharedBottomConfig, seed: int, name: str) -> None:
        super().__init__(name=name)
        self.fusion_kind, self.loss_kind = cfg.fusion, cfg.loss
        self.private_embedding = (embedding(n_users, cfg.width, 1.0, 0, "private_embedding", zeros=True)
                                  if cfg.private else None)
        self.fusion = (None if cfg.fusion == "add" else
                       keras.layers.Dense(cfg.width, activation="sigmoid" if cfg.fusion == "gate" else None,
                                          kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
                                          name="fusion"))
        self.item_embedding = embedding(n_items, cfg.width, cfg.init_std, seed + 2, "item_embedding")
        self.item_bias = embedding(n_items, 1, 1.0, 0, "item_bias", zeros=True) if cfg.item_bias else None

    def represent(self, h, users):
        """``z_u``: the fused user representation of this domain, and the private rows used."""
        p = ops.zeros_like(h) if self.private_embedding is None else self.private_embedding(users)
        if self.fusion is None:
            return h + p, p
        out = self.fusion(ops.concatenate([h, p], axis=-1))
        return (out * h + (1.0 - out) * p if self.fusion_kind == "gate" else out), p

    def _bias(self, items):
        return 0.0 if self.item_bias is None else ops.squeeze(self.item_bias(items), -1)

    def call(self, h, users, pos, neg):
        """Scores of the rows (``"pos"``, ``"neg"`` and what a softmax loss needs) and the L2 norm."""
        z, p = self.represent(h, users)
        qp, qn = self.item_embedding(pos), self.item_embedding(neg)
        b_pos = self._bias(pos)
        s_pos, s_neg = ops.sum(z * qp, -1) + b_pos, ops.sum(z[:, None, :] * qn, -1) + self._bias(neg)
        norm = ops.sum(p * p, -1) + ops.sum(qp * qp, -1) + ops.mean(ops.sum(qn * qn, -1), -1)
        all_items = lambda: (self.item_embedding.embeddings,  # noqa: E731
                             0.0 if self.item_bias is None else ops.squeeze(self.item_bias.embeddings, -1))
        return {"pos": s_pos, "neg": s_neg, **softmax_scores(self.loss_kind, z, qp, b_pos, all_items)}, norm


def _domain_means(out: dict) -> tuple:
    """Mean of each domain's per-row loss over the rows of that domain (0 when a batch has none)."""
    return tuple(ops.sum(out[d]) / ops.maximum(ops.cast(ops.shape(out[d])[0], "float32"), 1.0) for d in DOMAINS)


class SharedBottomNet(keras.Model):
    """The three-level network; inputs are mixed batches of the rows :func:`mixed_rows` describes.

    Weights (as :func:`~xcatrec.training.layers.numpy_weights` names them): ``user_embedding``,
    ``shared_tower/dense_<i>/...`` and per domain ``<domain>/private_embedding``,
    ``<domain>/fusion/kernel`` and ``.../bias``, ``<domain>/item_embedding``, ``<domain>/item_bias``.
    """

    def __init__(self, n_users: int, n_source_items: int, n_target_items: int, cfg: SharedBottomConfig,
                 seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.user_embedding = embedding(n_users, cfg.dim, cfg.init_std, seed, "user_embedding")
        self.shared_tower = MLP(cfg.shared_units, seed + 10, name="shared_tower")
        self.source_head = DomainHead(n_users, n_source_items, cfg, seed + 20, "source")
        self.target_head = DomainHead(n_users, n_target_items, cfg, seed + 30, "target")
        self.loss_kind, self.reg, self.lam = cfg.loss, cfg.reg, cfg.lam
        self.n_items = {"source": n_source_items, "target": n_target_items}

    def call(self, inputs: dict) -> dict:
        """Per-row losses of the batch's source and of its target rows: every row passes through the
        shared bottom, then each domain's rows are gathered and pass through that domain's head only
        (so the in-batch negatives of ``loss="softmax"`` are the positives of the same domain)."""
        eu = self.user_embedding(inputs["user"])
        h, norm_u = self.shared_tower(eu), ops.sum(eu * eu, -1)
        is_target = inputs["is_target"] > 0.5
        out = {}
        for d, head, mask in (("source", self.source_head, ~is_target), ("target", self.target_head, is_target)):
            rows = tf.reshape(tf.where(mask), [-1])
            pick = lambda x: tf.gather(x, rows)  # noqa: E731
            scores, norm = head(pick(h), pick(inputs["user"]), pick(inputs["pos"]), pick(inputs["neg"]))
            columns = {k: pick(inputs[k]) for k in ("pos", "log_q", "log_q_neg") if k in inputs}
            loss = ranking_loss(self.loss_kind, scores, columns, self.n_items[d])
            out[d] = loss + self.reg * (pick(norm_u) + norm)
        return out

    def domain_losses(self, inputs: dict, training: bool = False) -> tuple:
        """``(L_source, L_target)``: each domain's mean per-row loss over its rows of the batch."""
        return _domain_means(self(inputs, training=training))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        l_s, l_t = _domain_means(y_pred)
        return replica_mean(l_s + self.lam * l_t)

    def variable_groups(self) -> dict[str, list]:
        """Trainable variables by level: ``"shared"`` (bottom), ``"source"`` and ``"target"`` (heads)."""
        return {"shared": self.user_embedding.trainable_variables + self.shared_tower.trainable_variables,
                "source": self.source_head.trainable_variables, "target": self.target_head.trainable_variables}


def mixed_rows(dataset: CrossDomainDataset, negatives: int, loss: str = "bpr") -> Rows:
    """All training rows of both domains, source rows first, with ``negatives`` drawn per row each epoch.

    Columns: ``user``, ``is_target`` (0 for source rows, 1 for target rows), ``pos`` (the row's item in
    its own domain), ``neg`` (``negatives`` unobserved items of that domain, shape ``(rows, negatives)``,
    drawn by :meth:`~xcatrec.training.rows.Rows.epoch`) and the columns of ``loss``
    (:func:`~xcatrec.training.losses.loss_columns`, per domain).
    """
    src, tgt = dataset.source.train, dataset.target.train
    extra = [loss_columns(loss, part.items, dataset.domain(d).n_items, negatives)
             for d, part in (("source", src), ("target", tgt))]
    return Rows({"user": np.concatenate([src.users, tgt.users]),
                 "is_target": np.repeat(np.array([0, 1], np.float32), [len(src), len(tgt)]),
                 "pos": np.concatenate([src.items, tgt.items]),
                 **{k: np.concatenate([extra[0][k], extra[1][k]]) for k in extra[0]}},
                tuple(Negatives(NegativeSampler(dataset.matrix(d, "train")), part.users, start=start, per_row=negatives)
                      for d, part, start in (("source", src, 0), ("target", tgt, len(src)))))


class SharedBottom(TowerModel):
    """Shared user bottom, per-domain fusion and heads, trained jointly on both categories."""

    name = "shared-bottom"
    config_class = SharedBottomConfig
    search_space = {"lam": Float(0.1, 10.0, log=True), "reg": Float(1e-6, 1e-2, log=True),
                    "learning_rate": Float(1e-3, 2e-2, log=True), "dim": Choice((32, 64, 128))}
    phases = (Phase("joint", "both"),)
    #: No XLA: gathering each domain's rows gives shapes that depend on the batch.
    jit_compile = False

    def build(self, phase: Phase, dataset: CrossDomainDataset | None) -> SharedBottomNet:
        cfg: SharedBottomConfig = self.config
        return SharedBottomNet(self.sizes.n_users, self.sizes.n_source_items, self.sizes.n_target_items, cfg,
                               cfg.seed)

    def rows(self, phase: Phase, dataset: CrossDomainDataset) -> Rows:
        return mixed_rows(dataset, self.config.negatives, self.config.loss)

    def shard_rows(self, phase: Phase, shards: Shards) -> MixedShardRows:
        """The rows of :func:`mixed_rows`, streamed from the shards of both categories."""
        return config_shard_rows(MixedShardRows, self.config, shards, "both")

    def network(self) -> SharedBottomNet:
        """A Keras network holding the current weights (freshly initialised before fit), e.g. to check
        the gradient of ``L = L_s + lambda L_t`` by hand with :meth:`SharedBottomNet.domain_losses`."""
        net = self.build(self.phases[0], None)
        zero, zeros = np.zeros(2, np.int64), np.zeros((2, self.config.negatives), np.int64)
        net({"user": zero, "is_target": np.array([0, 1], np.float32), "pos": zero, "neg": zeros})  # variables
        if self._state is not None:
            assign_weights(net, self._state)
        return net

    def user_representations(self, domain: str = "target") -> np.ndarray:
        """``z_u^d`` of every user for ``domain`` (``"source"`` or ``"target"``), shape ``(n_users, width)``."""
        if domain not in DOMAINS:
            raise ConfigError(f"Unknown domain {domain!r}.", f"Use one of {list(DOMAINS)}.")
        state, fusion = self.get_state(), self.config.fusion
        h = mlp_numpy(state["user_embedding"], state, "shared_tower", len(self.config.shared_units))
        p = state.get(f"{domain}/private_embedding", np.zeros_like(h))
        if fusion == "add":  # the middle level in numpy: the maths of DomainHead.represent
            return (h + p).astype(np.float32)
        out = np.concatenate([h, p], axis=1) @ state[f"{domain}/fusion/kernel"] + state[f"{domain}/fusion/bias"]
        if fusion == "gate":
            gate = 1.0 / (1.0 + np.exp(-out))
            out = gate * h + (1.0 - gate) * p
        return out.astype(np.float32)

    def _set_arrays(self, state: dict[str, np.ndarray]) -> None:
        self._state = state
        self.user_factors = self.user_representations("target")
        self.item_factors = state["target/item_embedding"]
        self.item_bias = state.get("target/item_bias")

    def weight_names(self) -> list[str]:
        """Shared bottom (``user_embedding``, ``shared_tower/...``) and both heads (``source/...``, ``target/...``)."""
        cfg: SharedBottomConfig = self.config
        heads = ["item_embedding"] + ([] if cfg.fusion == "add" else ["fusion/kernel", "fusion/bias"])
        heads += (["item_bias"] if cfg.item_bias else []) + (["private_embedding"] if cfg.private else [])
        return ["user_embedding", *[f"shared_tower/dense_{i}/{v}" for i in range(len(cfg.shared_units))
                                    for v in ("kernel", "bias")], *[f"{d}/{k}" for d in DOMAINS for k in heads]]
