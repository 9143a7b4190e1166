"""The shared Keras training loop: early stopping, timing, determinism, distribution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_tiny_dataset

from xcatrec.data.types import Interactions
from xcatrec.errors import ConfigError, DataError
from xcatrec.models import BPRMF, BPRMFConfig
from xcatrec.models.base import FitReport
from xcatrec.models.train_config import TrainConfig
from xcatrec.training import build_keras, combine_reports, epoch_dataset, fit_keras, replica_mean, valid_ndcg
from xcatrec.training.trainer import checkpoint_path, load_checkpoint

TESTS = Path(__file__).resolve().parents[1]


class LinearNet(keras.Model):
    """y ~ w * x + b with a mean squared error through replica_mean."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = keras.layers.Dense(1, kernel_initializer="zeros")

    def call(self, inputs):
        return self.dense(inputs["x"])

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return replica_mean((y_pred[:, 0] - x["y"]) ** 2)


def _linear() -> keras.Model:
    def build():
        model = LinearNet()
        model({"x": np.zeros((1, 1), np.float32), "y": np.zeros(1, np.float32)})
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        return model

    return build_keras(build)


def _batches(epoch: int) -> tf.data.Dataset:
    rng = np.random.default_rng(epoch)
    x = rng.normal(size=(64, 1)).astype(np.float32)
    return epoch_dataset({"x": x, "y": 3 * x[:, 0] + 1}, 16, order=rng.permutation(64))


def _weights(model: keras.Model) -> np.ndarray:
    return np.concatenate([w.ravel() for w in model.get_weights()])


def test_early_stopping_restores_the_best_weights():
    model = _linear()
    script = iter([0.1, 0.5, 0.3, 0.2, 0.9, 1.0])
    seen: list[np.ndarray] = []

    def validate() -> float:
        seen.append(_weights(model))
        return next(script)

    report = fit_keras(model, batches=_batches, validate=validate, epochs=6, patience=2)
    assert report.epochs == 4  # 0.3 and 0.2 do not beat 0.5: two validations without improvement
    assert report.best_epoch == 2
    assert report.history["valid_ndcg@10"] == [0.1, 0.5, 0.3, 0.2]
    assert report.history["valid_epoch"] == [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_array_equal(_weights(model), seen[1])
    assert not np.array_equal(seen[1], seen[3])  # training did move the weights after epoch 2


def test_timing_and_loss_recorded_per_epoch_and_no_validation_keeps_last_weights():
    model = _linear()
    report = fit_keras(model, batches=_batches, epochs=3)
    assert isinstance(report, FitReport)
    assert report.epochs == 3 and report.best_epoch == 3
    assert len(report.history["seconds"]) == 3 and min(report.history["seconds"]) > 0
    assert len(report.history["cpu_seconds"]) == 3 and min(report.history["cpu_seconds"]) > 0
    assert report.seconds_per_epoch == pytest.approx(np.mean(report.history["seconds"]))
    assert report.seconds >= sum(report.history["seconds"])
    losses = report.history["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]  # a linear fit by SGD: the loss falls


def test_eval_every_and_patience_zero(capsys):
    model = _linear()
    values = iter([0.3, 0.2, 0.1])
    report = fit_keras(model, batches=_batches, validate=lambda: next(values), epochs=5, eval_every=2,
                       patience=0, verbose=True, log_prefix="lin ")
    assert report.epochs == 5  # patience 0: never stops early
    assert report.history["valid_epoch"] == [2.0, 4.0, 5.0]  # every 2 epochs and after the last one
    assert report.best_epoch == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and err[0].startswith("lin epoch   1  loss ")
    assert "valid_ndcg@10 0.3000  *" in err[1]


def test_model_built_under_another_strategy_is_refused():
    model = _linear()
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with pytest.raises(ConfigError, match="different tf.distribute strategy"):
        fit_keras(model, batches=_batches, epochs=1, strategy=strategy)


def test_epoch_dataset_covers_every_row_once_in_the_given_order():
    arrays = {"a": np.arange(10), "b": np.arange(10) * 2}
    order = np.random.default_rng(0).permutation(10)
    batches = list(epoch_dataset(arrays, 4, order=order).as_numpy_iterator())
    assert [len(b["a"]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b["a"] for b in batches]), order)
    np.testing.assert_array_equal(np.concatenate([b["b"] for b in batches]), 2 * order)


def test_replica_mean_is_the_mean_without_a_strategy():
    assert float(replica_mean(np.array([1.0, 2.0, 6.0]))) == pytest.approx(3.0)


def test_combine_reports_sums_phases_and_prefixes_history():
    a = FitReport(epochs=2, seconds=3.0, seconds_per_epoch=1.0, best_epoch=2, history={"loss": [2.0, 1.0]})
    b = FitReport(epochs=1, seconds=4.0, seconds_per_epoch=4.0, best_epoch=1, history={"loss": [0.5]})
    r = combine_reports({"source": a, "target": b})
    assert (r.epochs, r.seconds, r.best_epoch) == (3, 7.0, 1)
    assert r.seconds_per_epoch == pytest.approx(2.0)
    assert r.history == {"source/loss": [2.0, 1.0], "target/loss": [0.5]}


def test_train_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="epochs must be at least 1"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="patience"):
        TrainConfig(patience=-1)
    with pytest.raises(ConfigError, match="learning_rate"):
        BPRMFConfig(learning_rate=0.0)
    assert TrainConfig().loop_options() == {"epochs": 20, "patience": 3, "eval_every": 1, "checkpoint": None,
                                            "checkpoint_seed": 0}
    assert TrainConfig(checkpoint_dir="ck").loop_options()["checkpoint"] == "ck"


def test_valid_ndcg_uses_a_fixed_subset_of_validation_users():
    ds = make_tiny_dataset()

    class Oracle:  # scores each user's validation item highest
        def score(self, users, items=None):
            scores = np.zeros((len(users), ds.target.n_items), np.float32)
            valid = ds.matrix("target", "valid")[users].toarray()
            return scores + valid

    validate = valid_ndcg(Oracle(), ds, max_users=10, seed=0)
    assert validate() == pytest.approx(1.0)
    empty = replace(ds, target=replace(ds.target, valid=Interactions.empty()))
    assert valid_ndcg(Oracle(), empty) is None


SMALL = BPRMFConfig(epochs=3, batch_size=64, dim=8, learning_rate=0.05, patience=0, valid_users=0)


def test_same_seed_gives_the_same_model():
    ds = make_tiny_dataset()
    first, second = BPRMF(ds.sizes, SMALL), BPRMF(ds.sizes, SMALL)
    first.fit(ds)
    second.fit(ds)
    users = np.arange(ds.n_users)
    # Multi-threaded CPU reductions may differ in the last float bit between runs, so the
    # two fits agree to a tolerance many orders of magnitude below the gap a new seed makes.
    np.testing.assert_allclose(first.score(users), second.score(users), rtol=0, atol=1e-6)
    other = BPRMF(ds.sizes, replace(SMALL, seed=1))
    other.fit(ds)
    assert np.abs(other.score(users) - first.score(users)).max() > 1e-2


_MIRRORED = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    from conftest import make_tiny_dataset
    from xcatrec.models import BPRMF, BPRMFConfig
    ds = make_tiny_dataset()
    config = BPRMFConfig(epochs=3, batch_size=64, dim=8, learning_rate=0.05, reg=1e-3, patience=0,
                         valid_users=0)
    plain = BPRMF(ds.sizes, config)
    plain.fit(ds)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mirrored = BPRMF(ds.sizes, config)
        mirrored.fit(ds)
    diff = max(float(np.abs(plain.get_state()[k] - mirrored.get_state()[k]).max()) for k in plain.get_state())
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "max_weight_diff": diff,
                      "plain": plain.report.history, "mirrored": mirrored.report.history}))
""")


def test_mirrored_strategy_on_two_cpu_devices_matches_the_default_strategy():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0")
    done = subprocess.run([sys.executable, "-c", _MIRRORED, str(TESTS)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=TESTS.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["max_weight_diff"] < 1e-4
    plain, mirrored = result["plain"], result["mirrored"]
    np.testing.assert_allclose(mirrored["valid_ndcg@10"], plain["valid_ndcg@10"], atol=1e-3)
    np.testing.assert_allclose(mirrored["loss"], plain["loss"], rtol=1e-4)
    assert plain["loss"][-1] < plain["loss"][0] - 0.02  # both trained, not just sat at initialisation


def test_checkpoint_holds_the_weights_the_model_ends_with(tmp_path):
    ds = make_tiny_dataset()
    model = BPRMF(ds.sizes, replace(SMALL, epochs=4, checkpoint_dir=str(tmp_path / "ckpt")))
    report = model.fit(ds)
    path = checkpoint_path(tmp_path / "ckpt", "bpr-mf ", SMALL.seed)
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    with np.load(path) as saved:
        arrays = [saved[k] for k in saved.files]
    assert any(a.shape == model.user_factors.shape and np.array_equal(a, model.user_factors) for a in arrays)
    assert report.best_epoch >= 1


def test_load_checkpoint_restores_and_refuses_a_mismatch(tmp_path):
    def net(units):
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units)])
        m.compile(optimizer="sgd", loss="mse")
        return m

    source = build_keras(lambda: net(2))
    x, y = np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32)
    fit_keras(source, batches=lambda e: tf.data.Dataset.from_tensor_slices((x, y)).batch(4), epochs=2,
              checkpoint=tmp_path, log_prefix="tiny/phase ")
    path = checkpoint_path(tmp_path, "tiny/phase ")
    assert path.name == "tiny-phase.best.npz"
    fresh = build_keras(lambda: net(2))
    load_checkpoint(fresh, path)
    for a, b in zip(fresh.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="does not fit"):
        load_checkpoint(build_keras(lambda: net(5)), path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_checkpoint(fresh, tmp_path / "none.npz")


def test_checkpoints_of_different_seeds_do_not_overwrite_each_other(tmp_path):
    ds = make_tiny_dataset()
    for seed in (0, 1):
        BPRMF(ds.sizes, replace(SMALL, epochs=1, seed=seed, checkpoint_dir=str(tmp_path))).fit(ds)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["bpr-mf.seed-0.best.npz", "bpr-mf.seed-1.best.npz"]
    assert checkpoint_path(tmp_path, "bpr-mf ", 1).name == "bpr-mf.seed-1.best.npz"


@pytest.mark.parametrize("content", [b"", b"not a zip archive", b"PK\x03\x04 truncated zip", "npy"])
def test_a_corrupt_checkpoint_is_a_data_error_naming_the_file(tmp_path, content):
    model = build_keras(lambda: keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
    path = tmp_path / "broken.best.npz"
    if content == "npy":  # a single array, not an archive of weights
        with open(path, "wb") as handle:
            np.save(handle, np.ones(3))
    else:
        path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_checkpoint(model, path)
    assert str(path) in info.value.problem and "train again" in info.value.fix
