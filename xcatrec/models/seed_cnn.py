"""The reference model of the design article, reproduced once and measured honestly.

Paper: none. The source is the unattributed design article this project grew from (a Chinese article
on cross-category recommendation by transfer learning, no authors, venue or year), section 5, its
reference code. It is not a peer-reviewed method; we reproduce it once because readers arrive with it.

What the article does: one small Keras CNN (conv 32x3x3 relu -> max-pool 2 -> conv 64x3x3 relu ->
max-pool 2 -> flatten -> dense 128 relu -> dense 1 sigmoid) classifies 28x28x1 item pictures as
liked / not liked, trained with Adam and binary cross-entropy for 10 epochs, batch 64, with the last
20% of each training set as validation. It trains a source model on source items and a target model on
target items, overwrites the target model's first convolution (kernel and bias, ``get_weights()[0:2]``)
with the source model's, trains the target model 10 more epochs, then prints test accuracy on the
*source* test items first and on the target test items second.

What it gets wrong, and what this module does instead:

* There is no user in the model, so it cannot personalise: every user gets the same item ranking.
  :class:`SeedCNN` keeps that property on purpose and says so.
* Its ``load_data`` is never defined and no label is ever specified. The only user-free label such a
  model can learn is a property of the item itself; we use the item's training popularity
  (:func:`item_labels`, rule configurable).
* It evaluates the source test set first; its prose then reads the two printed numbers (0.925 on
  source, 0.875 on target) as target accuracy going "from 0.875 to 0.925". Those numbers were never
  measured on any data. :func:`evaluate_seed` labels every number with its model and domain.
* It reports no baseline. :func:`train_seed_transfer` also returns a target-only model that starts
  from the same target model and gets the same fine-tuning epochs without the weight copy, so the
  effect of the transfer is the difference between two otherwise identical runs.

Taught in the chapter Case study.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from xcatrec.data.types import CrossDomainDataset, Domain
from xcatrec.errors import ConfigError, DataError
from xcatrec.evaluation.classification import classification_metrics
from xcatrec.models.base import FitReport, ModelConfig, Phase, Recommender

IMAGE_SHAPE = (28, 28, 1)
CONV_LAYERS = ("conv1", "conv2")
LABEL_RULES = ("top-half", "above-median", "interacted")


def build_seed_cnn(input_shape: tuple[int, int, int] = IMAGE_SHAPE):
    """The article's CNN, compiled as in the article (Adam, binary cross-entropy, accuracy).

    Layers are named ``conv1, pool1, conv2, pool2, flatten, dense, output`` so that weights have stable
    names such as ``"conv1/kernel"``.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(32, (3, 3), activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D((2, 2), name="pool1")(x)
    x = layers.Conv2D(64, (3, 3), activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D((2, 2), name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="output")(x)
    model = keras.Model(inputs, outputs, name="seed_cnn")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def named_weights(model) -> dict[str, np.ndarray]:
    """All weights of ``model`` as ``{"layer/variable": array}`` in layer order."""
    return {f"{layer.name}/{v.name}": np.asarray(v.numpy()) for layer in model.layers for v in layer.weights}


def transfer_weights(source, target, n_layers: int = 1, freeze: bool = False) -> tuple[str, ...]:
    """Overwrite the bottom ``n_layers`` convolutions of ``target`` with those of ``source``.

    With ``n_layers=1`` this is the article's ``target_params[0:2] = source_params[0:2]``. With
    ``freeze=True`` the copied layers stop training; ``target`` is recompiled with its own optimizer so
    the Adam state it built while training on the target domain is kept, as in the article.

    Returns:
        The names of the copied arrays, e.g. ``("conv1/kernel", "conv1/bias")``.
    """
    if not 0 <= n_layers <= len(CONV_LAYERS):
        raise ConfigError(f"transfer_layers must be 0, 1 or 2 (the CNN has two convolutions), got {n_layers}.",
                          "Use transfer_layers=1 for the article's setting.")
    copied: list[str] = []
    for name in CONV_LAYERS[:n_layers]:
        src, tgt = source.get_layer(name), target.get_layer(name)
        for s, t in zip(src.weights, tgt.weights):
            t.assign(s)
            copied.append(f"{name}/{t.name}")
        if freeze:
            tgt.trainable = False
    if freeze and n_layers:
        target.compile(optimizer=target.optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    return tuple(copied)


def _clone_trained(model):
    """An independent copy of a trained, compiled model, including its optimizer state."""
    import keras

    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    twin.compile(optimizer=keras.optimizers.Adam.from_config(model.optimizer.get_config()),
                 loss="binary_crossentropy", metrics=["accuracy"])
    twin.optimizer.build(twin.trainable_variables)
    for mine, theirs in zip(twin.optimizer.variables, model.optimizer.variables):
        mine.assign(theirs)
    return twin


@dataclass
class SeedTransferResult:
    """Everything :func:`train_seed_transfer` trained.

    Attributes:
        source_model: Trained on source items only.
        target_only_model: The target model trained ``2 * epochs`` on target items, no weight copy
            (the baseline the article never reports).
        transferred_model: The same target model after ``epochs``, with the source convolution(s) copied
            in, then fine-tuned ``epochs`` more (the article's final model).
        histories: Keras histories by stage: ``"source"``, ``"target"`` (before the copy),
            ``"target-only"`` and ``"transferred"`` (the last ``epochs`` of each).
        copied: Names of the arrays copied from source to target.
    """

    source_model: Any
    target_only_model: Any
    transferred_model: Any
    histories: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    copied: tuple[str, ...] = ()


def train_seed_transfer(images_src, labels_src, images_tgt, labels_tgt, *, epochs: int = 10,
                        batch_size: int = 64, seed: int = 0, verbose: int = 0, transfer_layers: int = 1,
                        freeze: bool = False, validation_split: float = 0.2,
                        baseline: bool = True) -> SeedTransferResult:
    """The article's ``train_joint_model``, plus the target-only baseline it leaves out.

    Steps: train a source model; train a target model; copy it (baseline); overwrite the target model's
    bottom ``transfer_layers`` convolutions with the source model's; fine-tune both the transferred
    model and the baseline ``epochs`` more with the same seed, so the copy is the only difference.
    ``baseline=False`` skips the baseline (``target_only_model`` is then ``None``). Each stage seeds
    Python, NumPy's global generator and TensorFlow with ``keras.utils.set_random_seed``.
    """
    import keras

    def fit(model, x, y, stage_seed: int) -> dict[str, list[float]]:
        keras.utils.set_random_seed(stage_seed)
        hist = model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_split=validation_split,
                         verbose=verbose)
        return {k: [float(v) for v in vals] for k, vals in hist.history.items()}

    x_src, y_src = _as_images(images_src), _as_labels(labels_src)
    x_tgt, y_tgt = _as_images(images_tgt), _as_labels(labels_tgt)
    keras.utils.set_random_seed(seed)
    source = build_seed_cnn(x_src.shape[1:])
    histories = {"source": fit(source, x_src, y_src, seed)}
    keras.utils.set_random_seed(seed + 1)
    target = build_seed_cnn(x_tgt.shape[1:])
    histories["target"] = fit(target, x_tgt, y_tgt, seed + 1)
    target_only = _clone_trained(target) if baseline else None
    copied = transfer_weights(source, target, transfer_layers, freeze)
    if target_only is not None:
        histories["target-only"] = fit(target_only, x_tgt, y_tgt, seed + 2)
    histories["transferred"] = fit(target, x_tgt, y_tgt, seed + 2)
    return SeedTransferResult(source, target_only, target, histories, copied)


def evaluate_seed(result: SeedTransferResult, images_src, labels_src, images_tgt, labels_tgt,
                  threshold: float = 0.5):
    """Accuracy, precision, recall and F1 of every model on held-out items of each domain.

    Returns:
        A ``pandas.DataFrame`` with one row per (model, domain): columns ``model``, ``domain``, ``n``,
        ``accuracy``, ``precision``, ``recall``, ``f1``. The article's two printed numbers are the rows
        (transferred, source) and (transferred, target), in that order.
    """
    import pandas as pd

    models = {"source": result.source_model, "target-only": result.target_only_model,
              "transferred": result.transferred_model}
    test_sets = {"source": (_as_images(images_src), _as_labels(labels_src)),
                 "target": (_as_images(images_tgt), _as_labels(labels_tgt))}
    rows = [{"model": model_name, "domain": domain, "n": len(y),
             **classification_metrics(y, predict_items(model, x), threshold)}
            for model_name, model in models.items() if model is not None
            for domain, (x, y) in test_sets.items()]
    return pd.DataFrame(rows)


def predict_items(model, images, batch_size: int = 1024) -> np.ndarray:
    """Liked-probability of each item picture, float32 of shape ``(n_items,)``.

    Calls the model directly in batches instead of ``model.predict``: one forward pass per batch needs no
    traced function, so scoring several freshly built models neither pays for tracing nor makes
    TensorFlow print retracing warnings into a chapter's output.
    """
    x = _as_images(images)
    parts = [np.asarray(model(x[i:i + batch_size], training=False)).reshape(-1)
             for i in range(0, len(x), batch_size)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def item_labels(domain: Domain, rule: str = "top-half") -> np.ndarray:
    """The user-free item label the article's CNN learns, from the domain's *training* interactions.

    Rules:
        ``"top-half"``: 1 for the most popular half of the items (ties broken by item index), so the
        classes are balanced. ``"above-median"``: 1 where the item's training count exceeds the median
        count. ``"interacted"``: 1 for any item with a training interaction, the literal reading of
        "liked"; on real data nearly every item is positive, so the task is trivial.
    """
    if rule not in LABEL_RULES:
        raise ConfigError(f"Unknown label rule {rule!r}.", f"Use one of {list(LABEL_RULES)}.")
    counts = np.bincount(domain.train.items, minlength=domain.n_items)
    if rule == "interacted":
        labels = counts > 0
    elif rule == "above-median":
        labels = counts > np.median(counts)
    else:
        labels = np.zeros(domain.n_items, bool)
        labels[np.argsort(-counts, kind="stable")[: domain.n_items // 2]] = True
    return labels.astype(np.float32)


def split_items(images, labels, test_size: float = 0.2, seed: int = 0):
    """The article's random item split: ``(x_train, x_test, y_train, y_test)``, not stratified."""
    from sklearn.model_selection import train_test_split

    return train_test_split(_as_images(images), _as_labels(labels), test_size=test_size, random_state=seed)


def _as_images(images) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != 1:
        raise DataError(f"Item images must have shape (n_items, height, width, 1), got {x.shape}.",
                        "Pass Domain.images of the synthetic marketplace, shape (n_items, 28, 28, 1).")
    return x


def _as_labels(labels) -> np.ndarray:
    return np.asarray(labels, dtype=np.float32).reshape(-1)


@dataclass(frozen=True)
class SeedCNNConfig(ModelConfig):
    """Hyper-parameters of :class:`SeedCNN`; the defaults are the article's.

    Attributes:
        epochs: Epochs of each stage (source; target before the copy; target after it).
        batch_size: Mini-batch size.
        transfer_layers: Bottom convolutions copied from the source model (0, 1 or 2).
        freeze: Keep the copied convolutions fixed during fine-tuning.
        label_rule: How items are labelled, see :func:`item_labels`.
        validation_split: Fraction of items Keras holds out for its validation history.
    """

    epochs: int = 10
    batch_size: int = 64
    transfer_layers: int = 1
    freeze: bool = False
    label_rule: str = "top-half"
    validation_split: float = 0.2


class SeedCNN(Recommender):
    """The article's image CNN with conv-layer transfer, on the recommender contract.

    The model sees item pictures and nothing about users, so it cannot personalise: :meth:`score`
    returns the same row of item probabilities for every user. It ranks target items by how
    "popular-looking" their picture is, which makes it a content-based popularity model.
    """

    name: ClassVar[str] = "seed-cnn"
    config_class: ClassVar[type[ModelConfig]] = SeedCNNConfig
    phases: ClassVar[tuple[Phase, ...]] = (Phase("source-pretrain", "source", moves=("conv1/kernel", "conv1/bias")),
                                           Phase("target-finetune", "target"))

    def __init__(self, sizes, config: SeedCNNConfig | None = None) -> None:
        super().__init__(sizes, config)
        cfg = self.config
        if cfg.label_rule not in LABEL_RULES:
            raise ConfigError(f"Unknown label_rule {cfg.label_rule!r}.", f"Use one of {list(LABEL_RULES)}.")
        if not 0 <= cfg.transfer_layers <= len(CONV_LAYERS):
            raise ConfigError(f"transfer_layers must be 0, 1 or 2, got {cfg.transfer_layers}.",
                              "Use transfer_layers=1 for the article's setting.")
        if cfg.epochs < 1 or cfg.batch_size < 1:
            raise ConfigError(f"epochs and batch_size must be at least 1, got {cfg.epochs} and {cfg.batch_size}.",
                              "Pass positive values, e.g. epochs=10, batch_size=64.")
        if not 0.0 <= cfg.validation_split < 1.0:
            raise ConfigError(f"validation_split must be in [0, 1), got {cfg.validation_split}.",
                              "Use 0.2 as the article does, or 0 for no validation history.")
        moves = tuple(f"{n}/{v}" for n in CONV_LAYERS[: cfg.transfer_layers] for v in ("kernel", "bias"))
        self.phases = (Phase("source-pretrain", "source", moves=moves), Phase("target-finetune", "target"))
        self.model = None
        self._item_scores: np.ndarray | None = None

    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport:
        cfg = self.config
        for dom in (dataset.source, dataset.target):
            if dom.images is None:
                raise DataError(f"seed-cnn needs item images; only the synthetic marketplace has them "
                                f"(domain {dom.name!r} of {dataset.name!r} has none).",
                                "Use --dataset synthetic, or choose a method that learns from interactions.")
            if dom.images.shape[0] != dom.n_items:
                raise DataError(f"Domain {dom.name!r} has {dom.images.shape[0]} images for {dom.n_items} items.",
                                "Give every item exactly one image, in item index order.")
        rng = np.random.default_rng(cfg.seed)  # Keras validates on the last rows: shuffle item order first
        order_s, order_t = rng.permutation(dataset.source.n_items), rng.permutation(dataset.target.n_items)
        y_src, y_tgt = item_labels(dataset.source, cfg.label_rule), item_labels(dataset.target, cfg.label_rule)
        start = time.perf_counter()
        result = train_seed_transfer(dataset.source.images[order_s], y_src[order_s],
                                     dataset.target.images[order_t], y_tgt[order_t], epochs=cfg.epochs,
                                     batch_size=cfg.batch_size, seed=cfg.seed, verbose=2 if verbose else 0,
                                     transfer_layers=cfg.transfer_layers, freeze=cfg.freeze,
                                     validation_split=cfg.validation_split, baseline=False)
        seconds = time.perf_counter() - start
        self.model = result.transferred_model
        self._item_scores = predict_items(self.model, dataset.target.images)
        history = {f"{stage}/{k}": v for stage, h in result.histories.items() for k, v in h.items()}
        # no model selection: the final model is the one after the last fine-tuning epoch
        return FitReport(epochs=3 * cfg.epochs, seconds=seconds, seconds_per_epoch=seconds / (3 * cfg.epochs),
                         best_epoch=3 * cfg.epochs, history=history)

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        """The same item-probability row for every user: the model has no user input."""
        if self._item_scores is None:
            raise ConfigError("seed-cnn has not been trained.", "Call fit(dataset) or load a saved model.")
        return np.repeat(self._item_scores[None, :], len(users), axis=0)

    def get_state(self) -> dict[str, np.ndarray]:
        """The transferred model's weights by ``"layer/variable"`` name, plus the cached item scores."""
        if self.model is None or self._item_scores is None:
            raise ConfigError("seed-cnn has no state before fit.", "Call fit(dataset) first.")
        return {**named_weights(self.model), "item_scores": self._item_scores.copy()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Rebuild the CNN and restore the arrays written by :meth:`get_state`."""
        model = build_seed_cnn(IMAGE_SHAPE)
        expected = named_weights(model)
        missing = sorted(set(expected) - set(state))
        if missing or "item_scores" not in state:
            raise DataError(f"The saved seed-cnn state lacks {missing or ['item_scores']}.",
                            "Save the model again with SeedCNN.save after fit.")
        for layer in model.layers:
            for v in layer.weights:
                v.assign(np.asarray(state[f"{layer.name}/{v.name}"]))
        self.model = model
        self._item_scores = np.asarray(state["item_scores"], dtype=np.float32)
