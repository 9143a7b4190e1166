"""CoNet: collaborative cross networks, two MLP towers joined by cross-connection units.

Hu, Zhang & Yang, "CoNet: Collaborative Cross Networks for Cross-Domain Recommendation", CIKM 2018.
Each domain has an MLP tower (NCF style) that reads ``[user embedding; item embedding]`` and ends in
one logit; the user embedding is shared by both towers, the item embeddings are per domain. Between
consecutive hidden layers a cross unit adds the other tower's activations through a transfer matrix
``H_l`` that both directions share: ``a_s^{l+1} = relu(W_s^l a_s^l + H_l a_t^l)`` and
``a_t^{l+1} = relu(W_t^l a_t^l + H_l a_s^l)``. The loss is binary cross-entropy on each positive row
and ``negatives`` sampled negatives per positive, ``L = L_target + source_weight * L_source``.

Pairing. The paper feeds a source and a target example of the same shared user side by side. Here
every example is paired with the user's *profile* in the other domain, ``[u; mean embedding of the
user's training items there]`` (zero where the user has none): a target example runs the source tower
on the source profile, a source example runs the target tower on the target profile, and only the
example's own tower is in the loss. Scoring uses exactly the same input, so it needs no source item to
go with each target item, and a cold-start user's source history reaches the target tower through H.
The profiles are recomputed from the current item embeddings at the start of every epoch and enter as
inputs, without a gradient (a differentiable mean over every history made an epoch several times
slower): a Keras callback refreshes them before each epoch, and the best epoch's weights are restored
together with the profiles they were trained with (they are non-trainable weights of the network).

Phases: one, ``joint``, on both domains. Knowledge crosses through the cross units (and the shared
user embedding); the phase's moves name the cross matrices ``cross/layer_l``, so ``transfer_amount``
measures how far that channel moved during training.

Scoring is an MLP per (user, item) pair, run in numpy in cache-sized blocks (:meth:`CoNet._parts`
precomputes what does not depend on the pair): about 1.3k multiply-adds per pair with the default
widths, so full ranking costs minutes, not seconds, on a CPU (hence ``valid_users=1000``). Taught in
the chapter "Transfer methods".
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import scipy.sparse as sp
from keras import ops

from xcatrec.core.base import Phase, saved_arrays
from xcatrec.core.search import Float
from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.training import KerasRecommender, NegativeSampler, Negatives, Rows, embedding, numpy_weights
from xcatrec.training.config import TrainConfig
from xcatrec.training.losses import binary_cross_entropy, replica_mean

_PAIRS_PER_BLOCK = 16384  # (user, item) pairs per numpy block while scoring: stays in cache


@dataclass(frozen=True)
class CoNetConfig(TrainConfig):
    """Hyper-parameters of CoNet (plus the loop settings of :class:`TrainConfig`).

    Args:
        dim: Width of the user and item embeddings (the towers read ``2 * dim`` inputs).
        hidden: Widths of the hidden layers of each tower; a cross unit joins every two consecutive
            ones, so at least two are needed (the paper's ``64 -> 32 -> 16 -> 8`` is ``dim=32,
            hidden=(32, 16, 8)``).
        negatives: Sampled negative items per positive row, in each domain.
        source_weight: Weight of the source rows in the joint loss.
        reg: L2 penalty per row on the user and item embedding rows it uses.
        init_std: Standard deviation of the normal initialisation of the embeddings.
    """

    epochs: int = 20
    learning_rate: float = 2e-3
    patience: int = 3
    valid_users: int = 1000
    dim: int = 32
    hidden: tuple[int, ...] = (32, 16, 8)
    negatives: int = 2
    source_weight: float = 1.0
    reg: float = 1e-4
    init_std: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        hidden = (self.hidden,) if isinstance(self.hidden, int) else tuple(self.hidden)
        if len(hidden) < 2 or any(int(h) != h or h < 1 for h in hidden):
            raise ConfigError(f"hidden must hold at least two positive layer widths, got {self.hidden!r}.",
                              "Pass hidden=(32, 16, 8): cross units join consecutive hidden layers.")
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))  # a list after a JSON round trip
        if self.dim < 1 or self.negatives < 1:
            raise ConfigError(f"dim and negatives must be at least 1, got {self.dim} and {self.negatives}.",
                              "Pass dim=32, negatives=2, for example.")
        if not (self.source_weight >= 0 and self.reg >= 0 and self.init_std > 0):
            raise ConfigError(f"Need source_weight >= 0, reg >= 0, init_std > 0; got {self.source_weight}, "
                              f"{self.reg}, {self.init_std}.", "Pass source_weight=1.0, reg=1e-4, init_std=0.05.")


def history_mean_numpy(matrix: sp.csr_matrix, table: np.ndarray) -> np.ndarray:
    """Row-mean of ``table`` over each user's items in ``matrix`` (numpy; zero rows stay zero)."""
    m = sp.csr_matrix(matrix, copy=True)
    m.sum_duplicates()
    m.data[:] = 1.0
    counts = np.maximum(np.diff(m.indptr), 1).astype(np.float32)
    return np.asarray(sp.diags(1.0 / counts) @ m @ table, dtype=np.float32)


class CoNetNet(keras.Model):
    """The two towers with cross units; inputs ``{"user", "item", "label", "is_target"}`` per row.

    Its weights, as :func:`~xcatrec.training.layers.numpy_weights` names them: ``user_embedding``,
    ``source_item_embedding``, ``target_item_embedding``, ``source_tower/dense_<i>/kernel`` (and
    ``bias``, likewise for ``target_tower``), ``cross/layer_<l>``, ``source_output/kernel`` (``bias``;
    ``target_output``) and the non-trainable profile tables ``source_profile`` and ``target_profile``.
    """

    def __init__(self, sizes, config: CoNetConfig, source_train: sp.csr_matrix, target_train: sp.csr_matrix,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        cfg, seed = config, config.seed
        dense = lambda units, k, name: keras.layers.Dense(  # noqa: E731
            units, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + k), name=name)
        self.user_embedding = embedding(sizes.n_users, cfg.dim, cfg.init_std, seed, "user_embedding")
        self.source_items = embedding(sizes.n_source_items, cfg.dim, cfg.init_std, seed + 1, "source_item_embedding")
        self.target_items = embedding(sizes.n_target_items, cfg.dim, cfg.init_std, seed + 2, "target_item_embedding")
        self.source_tower = [dense(h, 10 + i, f"dense_{i}") for i, h in enumerate(cfg.hidden)]
        self.target_tower = [dense(h, 20 + i, f"dense_{i}") for i, h in enumerate(cfg.hidden)]
        self.source_output, self.target_output = dense(1, 40, "source_output"), dense(1, 41, "target_output")
        self.trains = (source_train, target_train)
        self.source_profile = self.add_weight(shape=(sizes.n_users, cfg.dim), initializer="zeros",
                                              trainable=False, name="source_profile")
        self.target_profile = self.add_weight(shape=(sizes.n_users, cfg.dim), initializer="zeros",
                                              trainable=False, name="target_profile")
        self.hidden, self.seed, self.source_weight, self.reg = cfg.hidden, seed, cfg.source_weight, cfg.reg

    def build(self, input_shape) -> None:
        """Create the towers' layers and the cross matrices under the names of the class docstring."""
        for name, tower in (("source_tower", self.source_tower), ("target_tower", self.target_tower)):
            with keras.name_scope(name):
                width = 2 * self.user_embedding.output_dim
                for layer in tower:
                    layer.build((None, width))
                    width = layer.units
        with keras.name_scope("cross"):
            self.cross = [keras.Variable(keras.initializers.GlorotUniform(seed=self.seed + 30 + i), shape=(a, b),
                                         name=f"layer_{i}")
                          for i, (a, b) in enumerate(zip(self.hidden[:-1], self.hidden[1:]), start=1)]

    def call(self, inputs: dict) -> dict:
        user, item = inputs["user"], inputs["item"]
        is_target = ops.cast(inputs["is_target"], "bool")
        e = self.user_embedding(user)
        q_s = self.source_items(ops.where(is_target, 0, item))
        q_t = self.target_items(ops.where(is_target, item, 0))
        profile_s = ops.take(self.source_profile, user, axis=0)
        profile_t = ops.take(self.target_profile, user, axis=0)
        mask = ops.expand_dims(ops.cast(is_target, e.dtype), -1)
        a_s = ops.relu(self.source_tower[0](ops.concatenate([e, mask * profile_s + (1 - mask) * q_s], -1)))
        a_t = ops.relu(self.target_tower[0](ops.concatenate([e, mask * q_t + (1 - mask) * profile_t], -1)))
        for w_s, w_t, h in zip(self.source_tower[1:], self.target_tower[1:], self.cross):
            a_s, a_t = ops.relu(w_s(a_s) + ops.matmul(a_t, h)), ops.relu(w_t(a_t) + ops.matmul(a_s, h))
        logit = ops.where(is_target, self.target_output(a_t)[:, 0], self.source_output(a_s)[:, 0])
        norm = ops.sum(e * e, -1) + ops.sum(ops.where(mask > 0, q_t, q_s) ** 2, -1)
        return {"logit": logit, "norm": norm}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        weight = ops.where(ops.cast(x["is_target"], "bool"), 1.0, self.source_weight)
        return replica_mean(weight * binary_cross_entropy(y_pred["logit"], x["label"]) + self.reg * y_pred["norm"])

    def refresh_profiles(self) -> None:
        """Recompute both profile tables from the current item embeddings (before every epoch)."""
        for table, items, train in ((self.source_profile, self.source_items, self.trains[0]),
                                    (self.target_profile, self.target_items, self.trains[1])):
            table.assign(history_mean_numpy(train, np.asarray(items.embeddings.numpy())))


class CoNet(KerasRecommender):
    """Collaborative cross networks trained jointly on both domains; scores are target-tower logits."""

    name = "conet"
    optimizer = keras.optimizers.Adam  # dense updates of every embedding row, as the method was tuned
    config_class = CoNetConfig
    search_space = {"reg": Float(1e-6, 1e-2, log=True), "learning_rate": Float(5e-4, 1e-2, log=True),
                    "source_weight": Float(0.1, 2.0, log=True)}
    phases = (Phase("joint", "both", moves=("cross",)),)
    weights: dict[str, np.ndarray] | None = None  # the trained arrays (get_state)
    _fused: dict | None = None  # scoring arrays derived from them (_parts)

    def build(self, phase: Phase, dataset: CrossDomainDataset) -> CoNetNet:
        return CoNetNet(self.sizes, self.config, dataset.matrix("source", "train"), dataset.matrix("target", "train"))

    def rows(self, phase: Phase, dataset: CrossDomainDataset) -> Rows:
        """Per domain (source first): the positive rows (label 1), then ``negatives`` rows per positive
        (label 0) whose items are drawn afresh every epoch."""
        k = self.config.negatives
        cols: dict[str, list] = {"user": [], "item": [], "label": [], "is_target": []}
        negatives, start = [], 0
        for flag, dom in ((False, "source"), (True, "target")):
            train = dataset.domain(dom).train
            neg_users = np.repeat(train.users, k)
            cols["user"] += [train.users, neg_users]
            cols["item"] += [train.items, np.zeros(len(neg_users), train.items.dtype)]
            cols["label"] += [np.ones(len(train), np.float32), np.zeros(len(neg_users), np.float32)]
            cols["is_target"].append(np.full(len(train) * (1 + k), flag))
            negatives.append(Negatives(NegativeSampler(dataset.matrix(dom, "train")), neg_users,
                                       start=start + len(train), column="item"))
            start += len(train) * (1 + k)
        return Rows({name: np.concatenate(parts) for name, parts in cols.items()}, tuple(negatives))

    def callbacks(self, phase: Phase, net: CoNetNet) -> list[keras.callbacks.Callback]:
        """Refresh the profiles before every epoch."""
        return [keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs=None: net.refresh_profiles())]

    def export(self, phase: Phase, net: CoNetNet) -> dict[str, np.ndarray]:
        state = numpy_weights(net)
        self.set_state(state)  # keeps what scoring reads (of the profiles, only the source one)
        return state

    def _parts(self) -> dict:
        """Scoring arrays derived from the weights: the first layer split as ``W [u; i] = W_u u + W_i i``
        with the item part precomputed for all items, and the two towers' matrices of each cross layer
        fused into one product (the source tower's first layer depends on the user only)."""
        if self._fused is None:
            w = self.get_state()  # raises when not trained
            d = w["user_embedding"].shape[1]
            k0 = w["target_tower/dense_0/kernel"]
            layers = []
            for i in range(1, len(self.config.hidden)):
                kt, ks, h = (w[f"target_tower/dense_{i}/kernel"], w[f"source_tower/dense_{i}/kernel"],
                             w[f"cross/layer_{i}"])
                bt, bs = w[f"target_tower/dense_{i}/bias"], w[f"source_tower/dense_{i}/bias"]
                layers.append({"kt": kt, "h": h, "ks": ks, "b": np.concatenate([bt, bs]), "bt": bt, "bs": bs,
                               "first": np.hstack([kt, h]),                   # a_t -> [target, source]
                               "both": np.block([[kt, h], [h, ks]]),          # [a_t, a_s] -> [target, source]
                               "last": np.vstack([kt, h])})                   # [a_t, a_s] -> target
            self._fused = {"item": w["target_item_embedding"] @ k0[d:], "layers": layers}
        return self._fused

    def _user_parts(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per user: the target layer-0 pre-activation without the item part, and source hidden layer 1."""
        w = self.weights
        e = w["user_embedding"][users]
        d = e.shape[1]
        z_t = e @ w["target_tower/dense_0/kernel"][:d] + w["target_tower/dense_0/bias"]
        x_s = np.hstack([e, w["source_profile"][users]])
        a_s = np.maximum(x_s @ w["source_tower/dense_0/kernel"] + w["source_tower/dense_0/bias"], 0)
        return z_t.astype(np.float32), a_s.astype(np.float32)

    def _forward(self, z_t: np.ndarray, a_s: np.ndarray, item_part: np.ndarray) -> np.ndarray:
        """Target logits ``(B, C)`` from user parts ``(B, h0)`` and an item part ``(1 or B, C, h0)``."""
        parts, w = self._parts(), self.weights
        n, c = len(z_t), item_part.shape[1]
        x = z_t[:, None, :] + item_part
        np.maximum(x, 0, out=x)
        x = x.reshape(n * c, -1)
        per_user = True  # a_s (source activations) depends on the user only until the first cross unit
        for i, layer in enumerate(parts["layers"]):
            last = i == len(parts["layers"]) - 1
            if per_user:
                y = x @ (layer["kt"] if last else layer["first"])
                user = a_s @ layer["h"] + layer["bt"]
                if not last:
                    user = np.hstack([user, a_s @ layer["ks"] + layer["bs"]])
                y = y.reshape(n, c, -1)
                y += user[:, None, :]
                per_user = False
            else:
                y = x @ (layer["last"] if last else layer["both"])
                y += layer["bt"] if last else layer["b"]
            np.maximum(y, 0, out=y)
            x = y.reshape(n * c, -1)  # [a_t, a_s] side by side (a_t alone after the last unit)
        logits = x @ w["target_output/kernel"][:, 0] + w["target_output/bias"][0]
        return logits.reshape(n, c).astype(np.float32, copy=False)

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        item = self._parts()["item"]
        n_items = len(item)
        z_t, a_s = self._user_parts(users)
        block = min(n_items, 4096, _PAIRS_PER_BLOCK)
        step = max(1, _PAIRS_PER_BLOCK // block)
        out = np.empty((len(users), n_items), np.float32)
        for lo in range(0, len(users), step):
            for jo in range(0, n_items, block):
                out[lo:lo + step, jo:jo + block] = self._forward(z_t[lo:lo + step], a_s[lo:lo + step],
                                                                 item[None, jo:jo + block])
        return out

    def _score_candidates(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        item = self._parts()["item"]
        z_t, a_s = self._user_parts(users)
        step = max(1, _PAIRS_PER_BLOCK // max(items.shape[1], 1))
        return np.vstack([self._forward(z_t[lo:lo + step], a_s[lo:lo + step], item[items[lo:lo + step]])
                          for lo in range(0, len(users), step)]) if len(users) else np.zeros(items.shape, np.float32)

    def get_state(self) -> dict[str, np.ndarray]:
        if self.weights is None:
            raise ConfigError(f"The {self.name} model has not been trained.",
                              "Call model.fit(dataset) or load a saved model first.")
        return dict(self.weights)

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        s, n_layers, towers, kb = self.sizes, len(self.config.hidden), ("source", "target"), ("kernel", "bias")
        rows = {"user_embedding": s.n_users, "source_profile": s.n_users,
                "source_item_embedding": s.n_source_items, "target_item_embedding": s.n_target_items}
        names = [*rows, *[f"{t}_tower/dense_{i}/{v}" for t in towers for i in range(n_layers) for v in kb],
                 *[f"cross/layer_{i}" for i in range(1, n_layers)], *[f"{t}_output/{v}" for t in towers for v in kb]]
        self.weights, self._fused = saved_arrays(self.name, state, names, rows), None
