"""The design article's script end to end: item split, training with the target-only baseline, and
held-out metrics of every model on each domain."""

from __future__ import annotations

import numpy as np
import pytest

from xcatrec.book_extras.seed_cnn import evaluate_seed, split_items, train_seed_transfer
from xcatrec.training import numpy_weights


def brightness_images(labels: np.ndarray, seed: int) -> np.ndarray:
    """Noisy 28x28x1 pictures whose mean brightness is 0.3 for label 0 and 0.6 for label 1."""
    rng = np.random.default_rng(seed)
    base = 0.3 + 0.3 * np.asarray(labels, np.float32)[:, None, None, None]
    return np.clip(base + rng.normal(0, 0.15, (len(labels), 28, 28, 1)), 0, 1).astype(np.float32)


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
    src, moved, alone = (numpy_weights(m) for m in (result.source_model, result.transferred_model,
                                                    result.target_only_model))
    # fine-tuning moved the copied kernel away from the source's, but it stays far closer than an
    # independently initialised kernel would be
    assert not np.array_equal(moved["conv1/kernel"], src["conv1/kernel"])
    assert (np.abs(moved["conv1/kernel"] - src["conv1/kernel"]).mean()
            < 0.25 * np.abs(alone["conv1/kernel"] - src["conv1/kernel"]).mean())
    assert sorted(result.histories) == ["source", "target", "target-only", "transferred"]
    assert all(len(h["loss"]) == 4 for h in result.histories.values())


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
