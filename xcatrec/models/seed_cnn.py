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

What it gets wrong (the chapter Case study runs it and shows each): there is no user in the model,
so every user gets the same ranking (:class:`SeedCNN` keeps that on purpose); ``load_data`` and the
label are never defined, so we label items by a user-free property, their training popularity
(:func:`item_labels`); it prints source accuracy first and reads its two numbers as target accuracy
before and after transfer; and it reports no baseline, so :func:`train_seed_transfer` also trains the
same target model without the weight copy.

This module holds the network and its one training function; the registered method :class:`SeedCNN`
trains with it, and so does the book's reproduction of the article's script
(:mod:`xcatrec.book_extras.seed_cnn`, which adds the item split and the held-out metrics).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import keras
import numpy as np
from keras import layers

from xcatrec.data.types import CrossDomainDataset, Domain
from xcatrec.errors import ConfigError, DataError
from xcatrec.core.base import FitReport, ModelConfig, Phase, saved_arrays
from xcatrec.models.popularity import ItemScores
from xcatrec.training.layers import assign_weights, numpy_weights

IMAGE_SHAPE = (28, 28, 1)
CONV_LAYERS = ("conv1", "conv2")
LABEL_RULES = ("top-half", "above-median", "interacted")


def build_seed_cnn(input_shape: tuple[int, int, int] = IMAGE_SHAPE):
    """The article's CNN, compiled as in the article (Adam, binary cross-entropy, accuracy).

    Layers are named ``conv1, pool1, conv2, pool2, flatten, dense, output`` so that weights have stable
    names such as ``"conv1/kernel"``.
    """
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



def conv_weights(n_layers: int) -> tuple[str, ...]:
    """The names of the kernels and biases of the bottom ``n_layers`` convolutions."""
    if not 0 <= n_layers <= len(CONV_LAYERS):
        raise ConfigError(f"transfer_layers must be 0, 1 or 2 (the CNN has two convolutions), got {n_layers}.",
                          "Use transfer_layers=1 for the article's setting.")
    return tuple(f"{name}/{v}" for name in CONV_LAYERS[:n_layers] for v in ("kernel", "bias"))


def transfer_weights(source, target, n_layers: int = 1, freeze: bool = False) -> tuple[str, ...]:
    """Overwrite the bottom ``n_layers`` convolutions of ``target`` with those of ``source``.

    With ``n_layers=1`` this is the article's ``target_params[0:2] = source_params[0:2]``. With
    ``freeze=True`` the copied layers stop training; ``target`` is recompiled with its own optimizer so
    the Adam state it built while training on the target domain is kept, as in the article.

    Returns:
        The names of the copied arrays, e.g. ``("conv1/kernel", "conv1/bias")``.
    """
    copied = conv_weights(n_layers)
    assign_weights(target, numpy_weights(source), copied)
    if freeze and n_layers:
        for name in CONV_LAYERS[:n_layers]:
            target.get_layer(name).trainable = False
        target.compile(optimizer=target.optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    return copied


def _clone_trained(model):
    """An independent copy of a trained, compiled model, including its optimizer state."""
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
    def fit(model, x, y, stage_seed: int) -> dict[str, list[float]]:
        keras.utils.set_random_seed(stage_seed)
        hist = model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_split=validation_split,
                         verbose=verbose)
        return {k: [float(v) for v in vals] for k, vals in hist.history.items()}

    x_src, y_src = as_images(images_src), as_labels(labels_src)
    x_tgt, y_tgt = as_images(images_tgt), as_labels(labels_tgt)
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


def predict_items(model, images, batch_size: int = 1024) -> np.ndarray:
    """Liked-probability of each item picture, float32 of shape ``(n_items,)``.

    Calls the model directly in batches instead of ``model.predict``: one forward pass per batch needs no
    traced function, so scoring several freshly built models neither pays for tracing nor makes
    TensorFlow print retracing warnings into a chapter's output.
    """
    x = as_images(images)
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


def as_images(images) -> np.ndarray:
    """Item pictures as float32 ``(n_items, height, width, 1)``; anything else is refused."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != 1:
        raise DataError(f"Item images must have shape (n_items, height, width, 1), got {x.shape}.",
                        "Pass Domain.images of the synthetic marketplace, shape (n_items, 28, 28, 1).")
    return x


def as_labels(labels) -> np.ndarray:
    """0/1 item labels as a float32 vector."""
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

    def __post_init__(self) -> None:
        if self.label_rule not in LABEL_RULES:
            raise ConfigError(f"Unknown label_rule {self.label_rule!r}.", f"Use one of {list(LABEL_RULES)}.")
        conv_weights(self.transfer_layers)
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch_size must be at least 1, got {self.epochs} and {self.batch_size}.",
                              "Pass positive values, e.g. epochs=10, batch_size=64.")
        if not 0.0 <= self.validation_split < 1.0:
            raise ConfigError(f"validation_split must be in [0, 1), got {self.validation_split}.",
                              "Use 0.2 as the article does, or 0 for no validation history.")


class SeedCNN(ItemScores):
    """The article's image CNN with conv-layer transfer, on the recommender contract: every user gets the
    same row of item probabilities, a content-based popularity model (see the module docstring)."""

    name: ClassVar[str] = "seed-cnn"
    config_class: ClassVar[type[ModelConfig]] = SeedCNNConfig
    phases: ClassVar[tuple[Phase, ...]] = (Phase("source-pretrain", "source", moves=conv_weights(1)),
                                           Phase("target-finetune", "target"))
    scores_name = "item_scores"
    item_scores: np.ndarray | None = None
    model = None  # the trained (transferred) Keras CNN

    def __init__(self, sizes, config: SeedCNNConfig | None = None) -> None:
        super().__init__(sizes, config)
        self.phases = (Phase("source-pretrain", "source", moves=conv_weights(self.config.transfer_layers)),
                       Phase("target-finetune", "target"))

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
        source = numpy_weights(result.source_model)  # not trained after the copy: the arrays as moved
        self.transferred = {name: source[name] for name in result.copied}
        self.item_scores = predict_items(self.model, dataset.target.images)
        history = {f"{stage}/{k}": v for stage, h in result.histories.items() for k, v in h.items()}
        # no model selection: the final model is the one after the last fine-tuning epoch
        return FitReport(epochs=3 * cfg.epochs, seconds=seconds, seconds_per_epoch=seconds / (3 * cfg.epochs),
                         best_epoch=3 * cfg.epochs, history=history)

    def get_state(self) -> dict[str, np.ndarray]:
        """The transferred model's weights by ``"layer/variable"`` name, plus the cached item scores."""
        return {**super().get_state(), **numpy_weights(self.model)}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Rebuild the CNN and restore the arrays written by :meth:`get_state`."""
        model = build_seed_cnn(IMAGE_SHAPE)
        names = list(numpy_weights(model))
        model.set_weights(list(saved_arrays(self.name, state, names, {}).values()))
        super().set_state(state)
        self.model = model
