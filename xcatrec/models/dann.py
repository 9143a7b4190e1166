"""Domain-adversarial training (DANN) of a user encoder shared by the source and target domain.

Ganin, Ustinova, Ajakan, Germain, Larochelle, Laviolette, Marchand & Lempitsky, "Domain-Adversarial
Training of Neural Networks", Journal of Machine Learning Research 17(59), 2016. A feature extractor
shared by two domains is trained to serve a task predictor *and* to fool a domain classifier that
tries to tell from a feature which domain it came from; a gradient reversal layer (identity forward,
gradient times ``-adv_weight`` backward) between the two lets one optimiser do both.

Here the features are user representations computed from one domain's history:
``r_u^d = f(W [e_u; h_u^d] + b)`` with a user embedding ``e_u`` shared by both domains and ``h_u^d``
the mean embedding of the user's training items in domain ``d`` (FISM-style: the row's own positive
item is left out in training, and the mean is an input, with no gradient into the item embeddings).
Each domain scores items by ``<r_u^d, q_i> + b_i`` with its own item embeddings and biases, trained
with BPR; the domain classifier is a small MLP on ``r_u^d`` of every row of a user who has history in
both domains (so it must tell domains apart, not kinds of users), with class-balanced binary
cross-entropy. The loss is ``BPR_target + source_weight * BPR_source + BCE_domain``, and the encoder
receives the domain loss's gradient reversed and scaled by ``adv_weight``. The classifier has a real
signal to remove: the two histories live in different item spaces. A user with target history is
scored from ``r_u^t``; a user without (cold start) from the source representation ``r_u^s``.

What the adversary achieves is measured, not assumed: :func:`domain_classifier_accuracy` (the model's
own classifier) and :func:`domain_probe_accuracy` (a logistic regression fitted afresh). On the
synthetic marketplace the adversary pushes its own classifier to chance, but a fresh linear probe
still separates the domains about as well as (or better than) without it: gradient reversal fools the
current classifier and does not guarantee aligned distributions.

Phases: one, ``joint``, on both domains; the shared encoder (``encoder/kernel``, ``encoder/bias``)
carries knowledge across and is the phase's moves, so ``transfer_amount`` measures how far it moved.
Taught in the chapter "Transfer methods".
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from keras import ops

from xcatrec.core.base import Phase, saved_arrays
from xcatrec.core.factors import FactorModel
from xcatrec.core.search import Float
from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError, DataError
from xcatrec.training import (MLP, KerasRecommender, NegativeSampler, Negatives, Rows, embedding, mlp_numpy,
                              numpy_weights)
from xcatrec.training.config import TrainConfig
from xcatrec.training.losses import binary_cross_entropy, replica_mean, row_loss

CLASSIFIER_ACTIVATION = "tanh"  # hidden layer of the domain classifier
ACTIVATIONS = {"linear": lambda x: x, "tanh": np.tanh, "relu": lambda x: np.maximum(x, 0)}


@dataclass(frozen=True)
class DANNConfig(TrainConfig):
    """Hyper-parameters of the domain-adversarial model (plus the loop settings of TrainConfig).

    Args:
        dim: Width of the user embedding, the item embeddings and the user representation.
        activation: Activation of the shared encoder: ``"linear"``, ``"tanh"`` or ``"relu"``.
        adv_weight: Scale of the reversed gradient of the domain loss into the encoder (0: no
            adversary; the classifier still trains and measures how separable the domains are).
        source_weight: Weight of the source rows in the BPR loss.
        classifier_units: Width of the domain classifier's hidden layer (0: a linear classifier).
        reg: L2 penalty per row on the user and item embedding rows it uses.
        init_std: Standard deviation of the normal initialisation of the embeddings.
    """

    epochs: int = 30
    learning_rate: float = 5e-3
    patience: int = 4
    dim: int = 64
    activation: str = "linear"
    adv_weight: float = 0.1
    source_weight: float = 1.0
    classifier_units: int = 32
    reg: float = 1e-5
    init_std: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"Unknown activation {self.activation!r}.", f"Use one of {list(ACTIVATIONS)}.")
        if self.dim < 1 or self.classifier_units < 0:
            raise ConfigError(f"dim must be at least 1 and classifier_units at least 0, got {self.dim} and "
                              f"{self.classifier_units}.", "Pass dim=64, classifier_units=32, for example.")
        if not (self.adv_weight >= 0 and self.source_weight >= 0 and self.reg >= 0 and self.init_std > 0):
            raise ConfigError(f"Need adv_weight >= 0, source_weight >= 0, reg >= 0, init_std > 0; got "
                              f"{self.adv_weight}, {self.source_weight}, {self.reg}, {self.init_std}.",
                              "Pass adv_weight=0.1, source_weight=1.0, reg=1e-5, init_std=0.05.")


def gradient_reversal(x, scale: float):
    """Identity in the forward pass; multiplies the incoming gradient by ``-scale`` in the backward pass."""
    @tf.custom_gradient
    def reverse(y):
        def grad(upstream):
            return -scale * upstream

        return tf.identity(y), grad

    return reverse(x)


class GradientReversal(keras.layers.Layer):
    """Keras layer around :func:`gradient_reversal` (no weights)."""

    def __init__(self, scale: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, x):
        return gradient_reversal(x, self.scale)


def joint_histories(dataset: CrossDomainDataset) -> sp.csr_matrix:
    """Training histories as one CSR matrix over joint item ids (target ``0..T-1``, source ``T..``).

    Row ``u`` is user ``u``'s target history, row ``n_users + u`` their source history.
    """
    joint = sp.block_diag([dataset.matrix("target", "train"), dataset.matrix("source", "train")], format="csr",
                          dtype=np.float64)
    joint.sum_duplicates()
    joint.sort_indices()
    return joint


def adversary_weights(histories: sp.csr_matrix, users: np.ndarray, is_target: np.ndarray) -> np.ndarray:
    """Per-row weight of the domain loss: rows of users with history in *both* domains, class-balanced.

    Only such users' two representations differ by domain alone; a user with one domain only (e.g. a
    cold-start user) would let the classifier tell user groups apart instead of domains.
    """
    n_users = histories.shape[0] // 2
    counts = np.diff(histories.indptr)
    both = (counts[:n_users] > 0) & (counts[n_users:] > 0)
    keep = both[users]
    weight = np.zeros(len(users), np.float32)
    for flag in (False, True):
        rows = keep & (is_target == flag)
        weight[rows] = keep.sum() / (2.0 * max(rows.sum(), 1))
    return weight


def history_sum(indptr, indices, table, rows):
    """Sum of ``table`` rows over each history row in ``rows``, and the history lengths (TensorFlow)."""
    starts, ends = tf.gather(indptr, rows), tf.gather(indptr, rows + 1)
    positions = tf.ragged.range(starts, ends)
    vectors = tf.gather(table, tf.gather(indices, positions.flat_values))
    return tf.math.unsorted_segment_sum(vectors, positions.value_rowids(), tf.shape(rows)[0]), ends - starts


class DANNNet(keras.Model):
    """Encoder, per-domain BPR scorers and the adversarial domain classifier.

    Inputs are dicts ``{"user", "pos", "neg", "is_target", "domain_weight"}`` (``neg`` of shape
    ``(B, 1)``) with joint item ids (see :func:`joint_histories`); outputs the positive and negative
    scores, the domain logit and the L2 norm. Weights: ``user_embedding``, ``items``, ``item_bias``
    (joint item rows, target first), ``encoder/kernel``, ``encoder/bias`` and the classifier's
    ``classifier/dense_<i>/kernel`` and ``bias``.
    """

    def __init__(self, n_users: int, n_items: int, histories: sp.csr_matrix, config: DANNConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        cfg, seed = config, config.seed
        self.user_embedding = embedding(n_users, cfg.dim, cfg.init_std, seed, "user_embedding")
        self.items = embedding(n_items, cfg.dim, cfg.init_std, seed + 1, "items")
        self.item_bias = embedding(n_items, 1, 1.0, 0, "item_bias", zeros=True)
        self.encoder = keras.layers.Dense(cfg.dim, activation=cfg.activation, name="encoder",
                                          kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2))
        self.reverse = GradientReversal(cfg.adv_weight)
        units = ((cfg.classifier_units,) if cfg.classifier_units else ()) + (1,)
        self.classifier = MLP(units, seed + 3, name="classifier", activation=CLASSIFIER_ACTIVATION)
        self.indptr = histories.indptr.astype(np.int64)
        self.indices = histories.indices.astype(np.int64)
        self.n_users = n_users
        self.source_weight, self.reg = cfg.source_weight, cfg.reg

    def call(self, inputs: dict) -> dict:
        user, pos, neg = inputs["user"], inputs["pos"], inputs["neg"]
        is_target = ops.cast(inputs["is_target"], "bool")
        rows = ops.where(is_target, user, user + self.n_users)
        q_pos, q_neg = self.items(pos), self.items(neg)
        total, count = history_sum(self.indptr, self.indices, self.items.embeddings, rows)
        # r = f(W [e_u; mean of the history without the row's positive] + b); the history is an input
        # feature: no gradient flows through it into the item embeddings
        history = ops.stop_gradient(total - q_pos) / ops.cast(ops.maximum(count - 1, 1), total.dtype)[:, None]
        e = self.user_embedding(user)
        r = self.encoder(ops.concatenate([e, history], axis=-1))
        s_pos = ops.sum(r * q_pos, -1) + ops.squeeze(self.item_bias(pos), -1)
        s_neg = ops.sum(r[:, None, :] * q_neg, -1) + ops.squeeze(self.item_bias(neg), -1)
        norm = ops.sum(e * e + q_pos * q_pos, -1) + ops.mean(ops.sum(q_neg * q_neg, -1), -1)
        return {"pos": s_pos, "neg": s_neg, "domain": self.classifier(self.reverse(r))[:, 0], "norm": norm}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        is_target = ops.cast(x["is_target"], "bool")
        bpr = row_loss(y_pred["pos"], y_pred["neg"], "bpr") * ops.where(is_target, 1.0, self.source_weight)
        bce = binary_cross_entropy(y_pred["domain"], is_target) * ops.cast(x["domain_weight"], "float32")
        return replica_mean(bpr + bce + self.reg * y_pred["norm"])


class DANN(KerasRecommender, FactorModel):
    """Domain-adversarial user encoder; target scores ``<r_u, q_i> + b_i`` (see the module docstring)."""

    name = "dann"
    optimizer = keras.optimizers.Adam  # dense updates of every embedding row, as the method was tuned
    config_class = DANNConfig
    search_space = {"reg": Float(1e-6, 1e-2, log=True), "learning_rate": Float(1e-3, 2e-2, log=True),
                    "adv_weight": Float(0.01, 1.0, log=True)}
    phases = (Phase("joint", "both", moves=("encoder",)),)
    weights: dict[str, np.ndarray]  # the arrays of the state besides the target factors (set_state)

    def setup(self, dataset: CrossDomainDataset) -> None:
        self._histories = joint_histories(dataset)

    def build(self, phase: Phase, dataset: CrossDomainDataset) -> DANNNet:
        return DANNNet(self.sizes.n_users, self.sizes.n_target_items + self.sizes.n_source_items, self._histories,
                       self.config)

    def rows(self, phase: Phase, dataset: CrossDomainDataset) -> Rows:
        """Source rows, then target rows, in joint item ids, with one negative per row drawn each epoch
        and the weight of each row in the domain loss (:func:`adversary_weights`)."""
        n_t = self.sizes.n_target_items
        src, tgt = dataset.source.train, dataset.target.train
        users = np.concatenate([src.users, tgt.users])
        is_target = np.concatenate([np.zeros(len(src), bool), np.ones(len(tgt), bool)])
        sampler = lambda dom: NegativeSampler(dataset.matrix(dom, "train"))  # noqa: E731
        return Rows({"user": users, "pos": np.concatenate([src.items + n_t, tgt.items]), "is_target": is_target,
                     "domain_weight": adversary_weights(self._histories, users, is_target)},
                    (Negatives(sampler("source"), src.users, offset=n_t),
                     Negatives(sampler("target"), tgt.users, start=len(src))))

    def export(self, phase: Phase, net: DANNNet) -> dict[str, np.ndarray]:
        state = numpy_weights(net)
        n_t = self.sizes.n_target_items
        reps = self._represent(state, self._histories)
        has_target = np.diff(self._histories.indptr)[:self.sizes.n_users] > 0
        self.set_state({"user_factors": np.where(has_target[:, None], reps["target"], reps["source"]),
                        "item_factors": state["items"][:n_t], "item_bias": state["item_bias"][:n_t],
                        "source_item_factors": state["items"][n_t:], "source_item_bias": state["item_bias"][n_t:],
                        **{k: v for k, v in state.items() if k not in ("items", "item_bias")}})
        return state

    def _represent(self, state: dict[str, np.ndarray], histories: sp.csr_matrix) -> dict[str, np.ndarray]:
        """Representations ``r_u^t`` and ``r_u^s`` of every user from full training histories (numpy)."""
        n_users = self.sizes.n_users
        items = state["items"] if "items" in state else np.vstack([state["item_factors"], state["source_item_factors"]])
        counts = np.maximum(np.diff(histories.indptr), 1).astype(np.float32)
        means = np.asarray(sp.diags(1.0 / counts) @ histories @ items, np.float32)
        act = ACTIVATIONS[self.config.activation]
        enc = lambda h: act(np.hstack([state["user_embedding"], h]) @ state["encoder/kernel"]  # noqa: E731
                            + state["encoder/bias"]).astype(np.float32)
        return {"target": enc(means[:n_users]), "source": enc(means[n_users:])}

    def representations(self, dataset: CrossDomainDataset) -> dict[str, np.ndarray]:
        """``{"source": r^s, "target": r^t}``, each ``(n_users, dim)``, from ``dataset``'s training histories."""
        if dataset.sizes != self.sizes:
            raise DataError(f"The model was built for {self.sizes} but the data set has {dataset.sizes}.",
                            "Pass the data set the model was trained on.")
        return self._represent(self.get_state(), joint_histories(dataset))

    def get_state(self) -> dict[str, np.ndarray]:
        return {**super().get_state(), **self.weights}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        saved_arrays(self.name, state, ["user_embedding", "source_item_factors", "source_item_bias",
                                        "encoder/kernel", "encoder/bias"], {})
        super().set_state(state)
        base = ("user_factors", "item_factors", "item_bias")
        self.weights = {k: np.asarray(v, np.float32) for k, v in state.items() if k not in base}


def domain_examples(model: DANN, dataset: CrossDomainDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both representations of every user with training history in both domains, labels, users.

    Labels are 1 for ``r_u^t`` and 0 for ``r_u^s``; the two classes are equally large.
    """
    reps = model.representations(dataset)
    both = np.flatnonzero((np.diff(dataset.matrix("source", "train").indptr) > 0)
                          & (np.diff(dataset.matrix("target", "train").indptr) > 0))
    x = np.vstack([reps["source"][both], reps["target"][both]])
    y = np.concatenate([np.zeros(len(both), bool), np.ones(len(both), bool)])
    return x, y, np.concatenate([both, both])


def domain_classifier_accuracy(model: DANN, dataset: CrossDomainDataset) -> float:
    """Class-balanced accuracy of the model's own domain classifier on :func:`domain_examples`."""
    x, y, _ = domain_examples(model, dataset)
    n_layers = 2 if model.config.classifier_units else 1
    pred = mlp_numpy(x, model.weights, "classifier", n_layers, CLASSIFIER_ACTIVATION)[:, 0] > 0
    return float(0.5 * (np.mean(pred[y]) + np.mean(~pred[~y])))


def domain_probe_accuracy(model: DANN, dataset: CrossDomainDataset, *, seed: int = 0) -> float:
    """Held-out, class-balanced accuracy of a fresh logistic regression telling ``r_u^s`` from ``r_u^t``.

    Users are split in halves (fit / held out), so a user's two representations never straddle the
    split. About 0.5 means the domains are linearly indistinguishable; 1.0 means separable.
    """
    from sklearn.linear_model import LogisticRegression

    x, y, users = domain_examples(model, dataset)
    held = (np.random.default_rng(seed).random(dataset.n_users) < 0.5)[users]
    if len(np.unique(y[held])) < 2 or len(np.unique(y[~held])) < 2:
        raise DataError("The probe needs users with source history and users with target history.",
                        "Use a data set where both domains have training rows.")
    probe = LogisticRegression(max_iter=2000, class_weight="balanced").fit(x[~held], y[~held])
    pred = probe.predict(x[held])
    return float(0.5 * (np.mean(pred[y[held]]) + np.mean(~pred[~y[held]])))
