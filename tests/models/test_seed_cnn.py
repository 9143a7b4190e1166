"""The design article's CNN: architecture, weight transfer, labels, and the model contract (the
article's script end to end is tested in tests/book_extras/test_seed_script.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from xcatrec.core.base import Phase
from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError, DataError
from xcatrec.models.seed_cnn import (SeedCNN, SeedCNNConfig, build_seed_cnn, item_labels,
                                     predict_items, transfer_weights)
from xcatrec.testing import RecommenderConformance, make_tiny_dataset
from xcatrec.training import numpy_weights


def with_images(dataset: CrossDomainDataset, seed: int = 0) -> CrossDomainDataset:
    rng = np.random.default_rng(seed)
    src = replace(dataset.source, images=rng.random((dataset.source.n_items, 28, 28, 1), dtype=np.float32))
    tgt = replace(dataset.target, images=rng.random((dataset.target.n_items, 28, 28, 1), dtype=np.float32))
    return replace(dataset, source=src, target=tgt)


# ---------------------------------------------------------------- the article's network
def test_architecture_matches_the_article_layer_by_layer():
    import keras

    model = build_seed_cnn()
    layers = model.layers[1:]  # after the input
    assert [type(layer) for layer in layers] == [keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.Conv2D,
                                                keras.layers.MaxPooling2D, keras.layers.Flatten, keras.layers.Dense,
                                                keras.layers.Dense]
    conv1, pool1, conv2, pool2, _, dense, out = layers
    assert (conv1.filters, conv1.kernel_size, conv1.activation.__name__) == (32, (3, 3), "relu")
    assert (conv2.filters, conv2.kernel_size, conv2.activation.__name__) == (64, (3, 3), "relu")
    assert pool1.pool_size == pool2.pool_size == (2, 2)
    assert (dense.units, dense.activation.__name__) == (128, "relu")
    assert (out.units, out.activation.__name__) == (1, "sigmoid")
    # 28 -conv-> 26 -pool-> 13 -conv-> 11 -pool-> 5: 5*5*64 = 1600 inputs to the dense layer
    assert model.count_params() == (3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64) + (1600 * 128 + 128) + (128 + 1)
    assert model.count_params() == 223_873
    assert tuple(model.output.shape) == (None, 1)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.loss == "binary_crossentropy"


def test_transfer_copies_exactly_the_first_convolution_like_get_weights_0_and_1():
    import keras

    keras.utils.set_random_seed(1)
    source, target = build_seed_cnn(), build_seed_cnn()
    before = target.get_weights()
    copied = transfer_weights(source, target, n_layers=1)
    assert copied == ("conv1/kernel", "conv1/bias")
    after, src = target.get_weights(), source.get_weights()
    np.testing.assert_array_equal(after[0], src[0])  # the article's target_params[0] = source_params[0]
    np.testing.assert_array_equal(after[1], src[1])
    assert not np.array_equal(before[0], src[0])
    for b, a in zip(before[2:], after[2:]):
        np.testing.assert_array_equal(a, b)


def test_transfer_layers_two_and_invalid_counts():
    source, target = build_seed_cnn(), build_seed_cnn()
    assert transfer_weights(source, target, n_layers=2) == ("conv1/kernel", "conv1/bias", "conv2/kernel", "conv2/bias")
    np.testing.assert_array_equal(numpy_weights(target)["conv2/kernel"], numpy_weights(source)["conv2/kernel"])
    with pytest.raises(ConfigError, match="transfer_layers"):
        transfer_weights(source, target, n_layers=3)


def test_freeze_keeps_the_copied_convolution_equal_to_the_source_while_the_rest_trains():
    import keras

    keras.utils.set_random_seed(2)
    source, target = build_seed_cnn(), build_seed_cnn()
    y = np.tile(np.array([0.0, 1.0], np.float32), 24)
    transfer_weights(source, target, n_layers=1, freeze=True)
    before = numpy_weights(target)
    target.fit(np.random.default_rng(3).random((len(y), 28, 28, 1), dtype=np.float32), y, epochs=1,
               batch_size=16, verbose=0)
    after, src = numpy_weights(target), numpy_weights(source)
    assert not target.get_layer("conv1").trainable
    for name in ("conv1/kernel", "conv1/bias"):
        np.testing.assert_array_equal(after[name], src[name])
    assert not np.array_equal(after["conv2/kernel"], before["conv2/kernel"])
    assert not np.array_equal(after["dense/kernel"], before["dense/kernel"])

# ---------------------------------------------------------------- labels
def test_item_labels_rules_on_hand_counted_popularity():
    domain = make_tiny_dataset(n_users=4, n_src=6, n_tgt=6, per_user=3).target
    counts = np.bincount(domain.train.items, minlength=6)
    top = item_labels(domain, "top-half")
    assert top.sum() == 3 and top.dtype == np.float32
    assert counts[top == 1].min() >= counts[top == 0].max()
    np.testing.assert_array_equal(item_labels(domain, "above-median"), (counts > np.median(counts)).astype(np.float32))
    np.testing.assert_array_equal(item_labels(domain, "interacted"), (counts > 0).astype(np.float32))
    with pytest.raises(ConfigError, match="label rule"):
        item_labels(domain, "liked")


# ---------------------------------------------------------------- the recommender contract
class TestSeedCNNConformance(RecommenderConformance):
    model_class = SeedCNN

    def make_config(self):
        return SeedCNNConfig(epochs=1, batch_size=16)

    def make_dataset(self):
        return with_images(make_tiny_dataset())

    def test_scores_are_identical_for_every_user_and_are_the_item_probabilities(self, fitted):
        model, dataset = fitted
        scores = model.score(np.arange(dataset.n_users))
        np.testing.assert_array_equal(scores, np.broadcast_to(scores[0], scores.shape))
        np.testing.assert_allclose(scores[0], predict_items(model.model, dataset.target.images), rtol=1e-6)
        assert ((scores >= 0) & (scores <= 1)).all()

    def test_report_covers_three_training_stages_with_validation(self, fitted):
        model, _ = fitted
        assert model.report.epochs == 3
        assert {"source/loss", "target/loss", "transferred/loss", "transferred/val_loss"} <= set(model.report.history)
        assert all(len(v) == 1 for v in model.report.history.values())


def test_refuses_a_dataset_without_images_with_the_fix():
    dataset = make_tiny_dataset()
    model = SeedCNN(dataset.sizes, SeedCNNConfig(epochs=1))
    with pytest.raises(DataError, match="seed-cnn needs item images; only the synthetic marketplace") as err:
        model.fit(dataset)
    assert "--dataset synthetic" in err.value.fix


def test_phases_declare_the_moved_weights():
    assert SeedCNN.phases == (Phase("source-pretrain", "source", moves=("conv1/kernel", "conv1/bias")),
                              Phase("target-finetune", "target"))
    sizes = make_tiny_dataset().sizes
    two = SeedCNN(sizes, SeedCNNConfig(transfer_layers=2))
    assert two.phases[0].moves == ("conv1/kernel", "conv1/bias", "conv2/kernel", "conv2/bias")


@pytest.mark.parametrize("bad", [dict(transfer_layers=3), dict(label_rule="liked"), dict(epochs=0),
                                 dict(validation_split=1.0)])
def test_bad_config_is_refused(bad):
    with pytest.raises(ConfigError):
        SeedCNN(make_tiny_dataset().sizes, SeedCNNConfig(**bad))
