"""Keras building blocks written once: embeddings, the MLP tower, the factorisation network, and the
one way weights leave Keras (:func:`numpy_weights`) and come back (:func:`assign_weights`).

Every learned array is named by its Keras variable path below the model, with an embedding table
named after its layer: ``"user_embedding"``, ``"user_tower/dense_0/kernel"``, ``"target/item_bias"``.
Those names are what ``get_state()`` returns, what :class:`~xcatrec.core.Phase` ``moves`` refer to
and what transfer diagnostics compare. Scoring never calls Keras: :func:`mlp_numpy` runs a tower in
numpy from those arrays, so a loaded model scores exactly like the trained one.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from xcatrec.errors import ConfigError
from xcatrec.training.losses import RANKING_LOSSES, check_loss, ranking_loss, replica_mean

#: Per-row losses of :class:`FactorNet`: the ranking losses, or ``"mse"`` on ratings.
FACTOR_LOSSES = (*RANKING_LOSSES, "mse")
_ACTIVATIONS = {"relu": lambda x: np.maximum(x, 0.0), "tanh": np.tanh}


def embedding(n: int, dim: int, std: float, seed: int, name: str, zeros: bool = False) -> keras.layers.Embedding:
    """An embedding table initialised from ``N(0, std^2)`` (or zeros)."""
    init = "zeros" if zeros else keras.initializers.RandomNormal(stddev=std, seed=seed)
    return keras.layers.Embedding(n, dim, embeddings_initializer=init, name=name)


class MLP(keras.layers.Layer):
    """Dense layers ``dense_0 .. dense_{L-1}``: ``activation`` on hidden layers, linear output; ``()`` = identity.

    Args:
        units: Width of each layer, bottom first.
        seed: Seed of the Glorot-uniform kernel initialisers (layer ``i`` uses ``seed + i``).
        name: Layer name, also the prefix of its weight names.
        activation: ``"relu"`` or ``"tanh"``.
    """

    def __init__(self, units: tuple[int, ...], seed: int = 0, name: str | None = None,
                 activation: str = "relu", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"Unknown activation {activation!r}.", f"Use one of {list(_ACTIVATIONS)}.")
        self.units, self.activation = tuple(units), activation
        self.dense = [keras.layers.Dense(u, activation=activation if i < len(units) - 1 else None,
                                         kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i),
                                         name=f"dense_{i}") for i, u in enumerate(units)]

    def call(self, x):
        for layer in self.dense:
            x = layer(x)
        return x

    def sublayer(self, path: str) -> keras.layers.Layer:
        """``""`` -> the tower itself, ``"dense_<i>"`` -> that layer."""
        if not path:
            return self
        names = [f"dense_{i}" for i in range(len(self.dense))]
        if path not in names:
            raise ConfigError(f"Tower {self.name!r} has no layer {path!r}.", f"Use one of {names}.")
        return self.dense[names.index(path)]


def mlp_numpy(x: np.ndarray, state: dict[str, np.ndarray], prefix: str, n_layers: int,
              activation: str = "relu") -> np.ndarray:
    """The forward pass of :class:`MLP` in numpy (float32), from the arrays named under ``prefix``."""
    x = np.asarray(x, np.float32)
    act = _ACTIVATIONS[activation]
    for i in range(n_layers):
        x = x @ state[f"{prefix}/dense_{i}/kernel"] + state[f"{prefix}/dense_{i}/bias"]
        if i < n_layers - 1:
            x = act(x)
    return x.astype(np.float32, copy=False)


def _name(variable, model: keras.Model) -> str:
    """The variable's path below ``model`` (a subclassed model prefixes its name, a functional one not)."""
    path = variable.path.removeprefix(model.name + "/")
    return path[:-len("/embeddings")] if path.endswith("/embeddings") else path


def numpy_weights(model: keras.Model, trainable_only: bool = False) -> dict[str, np.ndarray]:
    """Every weight of a built Keras model as a numpy copy, by name (see the module docstring).

    Float weights become float32; an embedding of width 1 (a bias per row) becomes a 1-D array.
    """
    out = {}
    for v in (model.trainable_weights if trainable_only else model.weights):
        value = np.array(v.numpy())
        if value.dtype.kind == "f":
            value = value.astype(np.float32, copy=False)
        name = _name(v, model)
        if name.endswith("_bias") and value.ndim == 2 and value.shape[1] == 1:
            value = value[:, 0]
        out[name] = value
    return out


def assign_weights(model: keras.Model, state: dict[str, np.ndarray], names=None) -> None:
    """Set a built model's weights from arrays named as :func:`numpy_weights` names them.

    Args:
        names: Only these names (all of the model's weights by default); every one must be in ``state``.
    """
    variables = {_name(v, model): v for v in model.weights}
    for name in (variables if names is None else names):
        if name not in variables:
            raise ConfigError(f"The network has no weight {name!r}.", f"Use names among {sorted(variables)}.")
        variable = variables[name]
        variable.assign(np.asarray(state[name]).reshape(variable.shape))


def softmax_scores(kind: str, u, q_pos, b_pos, all_items) -> dict:
    """The extra scores a batch softmax loss reads (:func:`~xcatrec.training.losses.ranking_loss`).

    ``"softmax"``: ``{"batch": u q_pos^T + b_pos}`` ``(B, B)``, each row's user against every row's
    positive; ``"full-softmax"``: ``{"all": u Q^T + b}`` ``(B, n_items)`` with ``(Q, b) = all_items()``;
    any other loss: ``{}``.

    Args:
        u: User representations ``(B, D)``.
        q_pos: Representations of the rows' positive items ``(B, D)``; ``b_pos`` their biases (or 0).
        all_items: Called only for ``"full-softmax"``: every item's representation and bias (or 0).
    """
    as_row = lambda b: b if isinstance(b, float) else b[None, :]  # noqa: E731  (a bias, or 0.0)
    if kind == "softmax":
        return {"batch": ops.matmul(u, ops.transpose(q_pos)) + as_row(b_pos)}
    if kind == "full-softmax":
        q_all, b_all = all_items()
        return {"all": ops.matmul(u, ops.transpose(q_all)) + as_row(b_all)}
    return {}


class FactorNet(keras.Model):
    """The one matrix-factorisation network: ``s(u, i) = <f(p_u), g(q_i)> + b_i`` (``+ b_u`` for ratings).

    ``f`` and ``g`` are :class:`MLP` towers (empty by default: plain matrix factorisation). Inputs are
    dicts: ``{"user", "pos", "neg"}`` (``neg`` of shape ``(B, n)``) for the ranking losses, or
    ``{"user", "item", "rating"}`` (ratings centred by the caller) for ``"mse"``; an optional
    ``"weight"`` column scales each row's loss. The L2 penalty per row is ``reg`` times the squared
    norm of the embedding rows it reads (the negatives' averaged, biases included for ratings).

    The softmax losses (:mod:`xcatrec.training.losses`): ``"sampled-softmax"`` over the row's
    negatives; ``"softmax"`` over the other rows' positives in the batch and the row's ``n`` uniform
    negatives (mixed negative sampling), log-Q corrected when the rows have a ``"log_q"`` column
    (:func:`~xcatrec.training.losses.item_log_frequency`; the uniform negatives get
    ``log(n / n_items)``); ``"full-softmax"`` over all items. ``temperature`` divides their logits.

    Weights: ``user_embedding``, ``item_embedding``, ``user_tower/...``, ``item_tower/...``,
    ``item_bias`` and, with ``loss="mse"``, ``user_bias``.
    """

    def __init__(self, n_users: int, n_items: int, *, dim: int, loss: str, reg: float, init_std: float,
                 seed: int, tower_units: tuple[int, ...] = (), item_bias: bool = True, temperature: float = 1.0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        check_loss(loss, FACTOR_LOSSES)
        if not temperature > 0:
            raise ConfigError(f"temperature must be positive, got {temperature}.", "Pass temperature=1.0.")
        self.n_items, self.temperature = n_items, float(temperature)
        self.user_embedding = embedding(n_users, dim, init_std, seed, "user_embedding")
        self.item_embedding = embedding(n_items, dim, init_std, seed + 1, "item_embedding")
        self.user_tower = MLP(tower_units, seed + 10, name="user_tower")
        self.item_tower = MLP(tower_units, seed + 20, name="item_tower")
        self.item_bias = embedding(n_items, 1, 1.0, 0, "item_bias", zeros=True) if item_bias or loss == "mse" else None
        self.user_bias = embedding(n_users, 1, 1.0, 0, "user_bias", zeros=True) if loss == "mse" else None
        self.loss_kind, self.reg = loss, reg

    def _bias(self, items):
        return 0.0 if self.item_bias is None else ops.squeeze(self.item_bias(items), -1)

    def call(self, inputs: dict) -> dict:
        """Per row: the positive and negative scores (or the rating error) and the L2 norm."""
        eu = self.user_embedding(inputs["user"])
        u = self.user_tower(eu)
        if self.loss_kind == "mse":
            eq = self.item_embedding(inputs["item"])
            bu = ops.squeeze(self.user_bias(inputs["user"]), -1)
            bi = self._bias(inputs["item"])
            pred = ops.sum(u * self.item_tower(eq), -1) + bu + bi
            norm = ops.sum(eu * eu + eq * eq, -1) + bu * bu + bi * bi
            return {"error": pred - ops.cast(inputs["rating"], pred.dtype), "norm": norm}
        ep, en = self.item_embedding(inputs["pos"]), self.item_embedding(inputs["neg"])
        q_pos, b_pos = self.item_tower(ep), self._bias(inputs["pos"])
        s_pos = ops.sum(u * q_pos, -1) + b_pos
        s_neg = ops.sum(u[:, None, :] * self.item_tower(en), -1) + self._bias(inputs["neg"])
        norm = ops.sum(eu * eu, -1) + ops.sum(ep * ep, -1) + ops.mean(ops.sum(en * en, -1), -1)
        out = {"pos": s_pos, "neg": s_neg, "norm": norm}
        all_items = lambda: (self.item_tower(self.item_embedding.embeddings),  # noqa: E731
                             0.0 if self.item_bias is None else ops.squeeze(self.item_bias.embeddings, -1))
        return {**out, **softmax_scores(self.loss_kind, u, q_pos, b_pos, all_items)}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean over the batch of ``weight * (row loss + reg * norm)`` (see the class docstring)."""
        if self.loss_kind == "mse":
            per_row = ops.square(y_pred["error"])
        else:
            per_row = ranking_loss(self.loss_kind, y_pred, x, self.n_items, self.temperature)
        per_row = per_row + self.reg * y_pred["norm"]
        if isinstance(x, dict) and "weight" in x:
            per_row = per_row * ops.cast(x["weight"], per_row.dtype)
        return replica_mean(per_row)
