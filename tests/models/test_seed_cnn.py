"""The design article's CNN reproduced: architecture, weight transfer, learning, and the model contract."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conformance import RecommenderConformance
from conftest import make_tiny_dataset
from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError, DataError
from xcatrec.models.base import Phase
from xcatrec.models.seed_cnn import (SeedCNN, SeedCNNConfig, build_seed_cnn, evaluate_seed, item_labels,
                                     named_weights, predict_items, split_items, train_seed_transfer,
                                     transfer_weights)


def brightness_images(labels: np.ndarray, seed: int) -> np.ndarray:
    """Noisy 28x28x1 pictures whose mean brightness is 0.3 for label 0 and 0.6 for label 1."""
    rng = np.random.default_rng(seed)
    base = 0.3 + 0.3 * np.asarray(labels, np.float32)[:, None, None, None]
    return np.clip(base + rng.normal(0, 0.15, (len(labels), 28, 28, 1)), 0, 1).astype(np.float32)


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
    np.testing.assert_array_equal(named_weights(target)["conv2/kernel"], named_weights(source)["conv2/kernel"])
    with pytest.raises(ConfigError, match="transfer_layers"):
        transfer_weights(source, target, n_layers=3)


# ---------------------------------------------------------------- the article's script, step by step
@pytest.fixture(scope="module")
def run():
    rng = np.random.default_rng(0)
    y_src, y_tgt = (rng.random(160) < 0.5).astype(np.float32), (rng.random(160) < 0.5).astype(np.float32)
    src = split_items(brightness_images(y_src, 1), y_src, seed=0)
    tgt = split_items(brightness_images(y_tgt, 2), y_tgt, seed=0)
    result = train_seed_transfer(src[0], src[2], tgt[0], tgt[2], epochs=4, batch_size=32, seed=0,
                                 validation_split=0.0)
    return result, src, tgt


def test_pipeline_copies_then_fine_tunes_the_first_convolution(run):
    result, _, _ = run
    assert result.copied == ("conv1/kernel", "conv1/bias")
    src, moved, alone = (named_weights(m) for m in (result.source_model, result.transferred_model,
                                                    result.target_only_model))
    # fine-tuning moved the copied kernel away from the source's, but it stays far closer than an
    # independently initialised kernel would be
    assert not np.array_equal(moved["conv1/kernel"], src["conv1/kernel"])
    assert (np.abs(moved["conv1/kernel"] - src["conv1/kernel"]).mean()
            < 0.25 * np.abs(alone["conv1/kernel"] - src["conv1/kernel"]).mean())
    assert sorted(result.histories) == ["source", "target", "target-only", "transferred"]
    assert all(len(h["loss"]) == 4 for h in result.histories.values())


def test_freeze_keeps_the_copied_convolution_equal_to_the_source_while_the_rest_trains():
    import keras

    keras.utils.set_random_seed(2)
    source, target = build_seed_cnn(), build_seed_cnn()
    y = np.tile(np.array([0.0, 1.0], np.float32), 24)
    transfer_weights(source, target, n_layers=1, freeze=True)
    before = named_weights(target)
    target.fit(brightness_images(y, 3), y, epochs=1, batch_size=16, verbose=0)
    after, src = named_weights(target), named_weights(source)
    assert not target.get_layer("conv1").trainable
    for name in ("conv1/kernel", "conv1/bias"):
        np.testing.assert_array_equal(after[name], src[name])
    assert not np.array_equal(after["conv2/kernel"], before["conv2/kernel"])
    assert not np.array_equal(after["dense/kernel"], before["dense/kernel"])


def test_learns_a_label_encoded_in_brightness_and_reports_every_model_and_domain(run):
    import keras

    result, src, tgt = run
    table = evaluate_seed(result, src[1], src[3], tgt[1], tgt[3])
    assert list(zip(table["model"], table["domain"])) == [
        ("source", "source"), ("source", "target"), ("target-only", "source"), ("target-only", "target"),
        ("transferred", "source"), ("transferred", "target")]
    assert (table["n"] == 32).all()
    assert (table["accuracy"] > 0.8).all(), table
    # Keras' own accuracy metric (the one the article's test_model prints) agrees with ours
    keras_acc = float(np.mean(keras.metrics.binary_accuracy(tgt[3][:, None], result.transferred_model(tgt[1]))))
    ours = table.query("model == 'transferred' and domain == 'target'")["accuracy"].item()
    assert ours == pytest.approx(keras_acc, abs=1e-6)


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
