"""The training owner (KerasRecommender): early stopping, timing, rows, moves, determinism, distribution, checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_dataset

import scipy.sparse as sp

from xcatrec.core.base import FitReport, Phase, combine_reports
from xcatrec.data.types import Interactions
from xcatrec.errors import ConfigError, DataError
from xcatrec.models import BPRMF, BPRMFConfig
from xcatrec.training import (NegativeSampler, Negatives, Rows, TrainConfig, Validation, checkpoint_path,
                              load_checkpoint, ndcg_validation, replica_mean, validation_users)
from xcatrec.training.rows import epoch_stream

TESTS = Path(__file__).resolve().parents[1]


class Scripted(BPRMF):
    """BPR-MF whose validation metric is scripted, and which remembers the weights each validation saw."""

    def __init__(self, sizes, config, script) -> None:
        super().__init__(sizes, config)
        self.script, self.seen = iter(script), []

    def validation(self, phase, dataset):
        def score() -> float:
            self.seen.append(self.user_factors.copy())
            return next(self.script)

        return Validation("valid_ndcg@10", score)


TOY = BPRMFConfig(epochs=6, batch_size=64, dim=8, learning_rate=0.05, reg=1e-3, patience=2, valid_users=0)


def test_early_stopping_restores_the_best_weights():
    ds = make_tiny_dataset()
    model = Scripted(ds.sizes, TOY, [0.1, 0.5, 0.3, 0.2, 0.9, 1.0])
    report = model.fit(ds)
    assert report.epochs == 4  # 0.3 and 0.2 do not beat 0.5: two validations without improvement
    assert report.best_epoch == 2
    assert report.history["valid_ndcg@10"] == [0.1, 0.5, 0.3, 0.2]
    assert report.history["valid_epoch"] == [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_array_equal(model.user_factors, model.seen[1])
    assert not np.array_equal(model.seen[1], model.seen[3])  # training did move the weights after epoch 2
    assert model.refit_options() == {"epochs": 2, "patience": 0}


def test_timing_and_loss_recorded_per_epoch_and_no_validation_keeps_last_weights():
    ds = make_tiny_dataset()
    empty = replace(ds, target=replace(ds.target, valid=Interactions.empty()))
    model = BPRMF(ds.sizes, replace(TOY, epochs=3))
    report = model.fit(empty)
    assert isinstance(report, FitReport)
    assert report.epochs == 3 and report.best_epoch == 3
    assert len(report.history["seconds"]) == 3 and min(report.history["seconds"]) > 0
    assert len(report.history["cpu_seconds"]) == 3 and min(report.history["cpu_seconds"]) > 0
    assert report.seconds_per_epoch == pytest.approx(np.mean(report.history["seconds"]))
    assert report.seconds >= sum(report.history["seconds"])
    losses = report.history["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert model.refit_options() == {}  # nothing was validated, so nothing to freeze


def test_eval_every_and_patience_zero(capsys):
    ds = make_tiny_dataset()
    model = Scripted(ds.sizes, replace(TOY, epochs=5, eval_every=2, patience=0), [0.3, 0.2, 0.1])
    report = model.fit(ds, verbose=True)
    assert report.epochs == 5  # patience 0: never stops early
    assert report.history["valid_epoch"] == [2.0, 4.0, 5.0]  # every 2 epochs and after the last one
    assert report.best_epoch == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "epoch" in line]
    assert len(err) == 5 and err[0].startswith("bpr-mf/target-bpr epoch   1  loss ")
    assert "valid_ndcg@10 0.3000  *" in err[1]


def test_rows_cover_every_row_once_per_epoch_with_fresh_negatives():
    users = np.repeat(np.arange(6), 2)
    seen = sp.csr_matrix((np.ones(12), (users, np.tile([0, 1], 6))), shape=(6, 5))
    rows = Rows({"user": users, "pos": np.tile([0, 1], 6)}, (Negatives(NegativeSampler(seen), users, per_row=2),))
    batches = list(epoch_stream(rows, 5, seed=0, epochs=2).as_numpy_iterator())
    epochs = [batches[:3], batches[3:]]
    assert [len(b["user"]) for b in batches] == [5, 5, 2] * 2
    first = {k: np.concatenate([b[k] for b in epochs[0]]) for k in ("user", "pos", "neg")}
    assert sorted(zip(first["user"], first["pos"])) == sorted(zip(users, np.tile([0, 1], 6)))
    assert first["neg"].shape == (12, 2) and (first["neg"] >= 2).all()  # never an item the user has
    second = np.concatenate([b["neg"] for b in epochs[1]])
    assert not np.array_equal(first["neg"], second)


def test_negatives_drawn_into_an_existing_column_and_coverage_checked():
    users = np.arange(4)
    seen = sp.csr_matrix((np.ones(4), (users, users)), shape=(4, 6))
    sampler = NegativeSampler(seen)
    rows = Rows({"user": np.r_[users, users], "item": np.r_[users, np.zeros(4, np.int64)]},
                (Negatives(sampler, users, start=4, column="item", offset=10),))
    out = rows.epoch(np.random.default_rng(0))
    np.testing.assert_array_equal(out["item"][:4], users)
    assert (out["item"][4:] >= 10).all() and (out["item"][4:] - 10 != users).all()
    partial = Rows({"user": np.r_[users, users]}, (Negatives(sampler, users, start=0),))
    with pytest.raises(ConfigError, match="do not cover every row"):
        partial.epoch(np.random.default_rng(0))


def test_undeclared_export_of_a_declared_move_is_refused():
    ds = make_tiny_dataset()

    class Lying(BPRMF):
        phases = (Phase("target-bpr", "target", moves=("no_such_weight",)),)

    with pytest.raises(ConfigError, match="no_such_weight"):
        Lying(ds.sizes, replace(TOY, epochs=1)).fit(ds)


def test_replica_mean_is_the_mean_without_a_strategy():
    assert float(replica_mean(np.array([1.0, 2.0, 6.0]))) == pytest.approx(3.0)


def test_combine_reports_sums_phases_and_prefixes_history():
    a = FitReport(epochs=2, seconds=3.0, seconds_per_epoch=1.0, best_epoch=2, history={"loss": [2.0, 1.0]})
    b = FitReport(epochs=1, seconds=4.0, seconds_per_epoch=4.0, best_epoch=1, history={"loss": [0.5]})
    r = combine_reports({"source": a, "target": b})
    assert (r.epochs, r.seconds, r.best_epoch) == (3, 7.0, 1)
    assert r.seconds_per_epoch == pytest.approx(2.0)
    assert r.history == {"source/loss": [2.0, 1.0], "target/loss": [0.5]}
    assert combine_reports({"only": a}) is a


def test_train_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="epochs must be at least 1"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="patience"):
        TrainConfig(patience=-1)
    with pytest.raises(ConfigError, match="learning_rate"):
        BPRMFConfig(learning_rate=0.0)


def test_phase_settings_read_the_prefixed_fields_first():
    config = BPRMFConfig(epochs=7, batch_size=32)
    assert Phase("x", "target", prefix="map_").setting(config, "epochs") == 7  # no map_epochs: plain field
    assert Phase("x", "target").setting(config, "batch_size") == 32


def test_ndcg_validation_uses_a_fixed_subset_of_validation_users():
    ds = make_tiny_dataset()

    class Oracle:  # scores each user's validation item highest
        def score(self, users, items=None):
            scores = np.zeros((len(users), ds.target.n_items), np.float32)
            valid = ds.matrix("target", "valid")[users].toarray()
            return scores + valid

    validation = ndcg_validation(Oracle(), ds, max_users=10, seed=0)
    assert validation.metric == "valid_ndcg@10" and validation.score() == pytest.approx(1.0)
    assert len(validation_users(ds, max_users=10, seed=0)) == 10
    np.testing.assert_array_equal(validation_users(ds, max_users=10, seed=0), validation_users(ds, max_users=10, seed=0))
    empty = replace(ds, target=replace(ds.target, valid=Interactions.empty()))
    assert ndcg_validation(Oracle(), empty) is None


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
    # BPR: its loss is a mean over rows, the same however the batch is split; the in-batch softmax
    # is not (each replica ranks against the positives of its half of the batch)
    config = BPRMFConfig(epochs=3, batch_size=64, dim=8, learning_rate=0.05, reg=1e-3, patience=0,
                         valid_users=0, loss="bpr")
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


def _net(dataset, dim=8):
    net = BPRMF(dataset.sizes, replace(SMALL, dim=dim)).build(None, dataset)
    net({"user": np.zeros(1, np.int64), "pos": np.zeros(1, np.int64), "neg": np.zeros((1, 1), np.int64)})
    return net


def test_checkpoint_holds_the_weights_the_model_ends_with(tmp_path):
    ds = make_tiny_dataset()
    model = BPRMF(ds.sizes, replace(SMALL, epochs=4, checkpoint_dir=str(tmp_path / "ckpt")))
    report = model.fit(ds)
    path = checkpoint_path(tmp_path / "ckpt", "bpr-mf", "target-bpr", SMALL.seed)
    assert path.is_file() and not list(path.parent.glob("*.tmp.*"))
    fresh = _net(ds)
    load_checkpoint(fresh, path)
    np.testing.assert_array_equal(fresh.user_embedding.embeddings.numpy(), model.user_factors)
    assert report.best_epoch >= 1


def test_load_checkpoint_refuses_a_mismatch_or_a_missing_file(tmp_path):
    ds = make_tiny_dataset()
    BPRMF(ds.sizes, replace(SMALL, epochs=1, checkpoint_dir=str(tmp_path))).fit(ds)
    path = checkpoint_path(tmp_path, "bpr-mf", "target-bpr", SMALL.seed)
    assert path.name == "bpr-mf-target-bpr.seed-0.best.weights.h5"
    with pytest.raises(ConfigError, match="does not fit"):
        load_checkpoint(_net(ds, dim=5), path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_checkpoint(_net(ds), tmp_path / "none.weights.h5")


def test_checkpoints_of_different_seeds_do_not_overwrite_each_other(tmp_path):
    ds = make_tiny_dataset()
    for seed in (0, 1):
        BPRMF(ds.sizes, replace(SMALL, epochs=1, seed=seed, checkpoint_dir=str(tmp_path))).fit(ds)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["bpr-mf-target-bpr.seed-0.best.weights.h5", "bpr-mf-target-bpr.seed-1.best.weights.h5"]


@pytest.mark.parametrize("content", [b"", b"not an hdf5 file", b"\x89HDF\r\n\x1a\n truncated"])
def test_a_corrupt_checkpoint_is_a_data_error_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.best.weights.h5"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_checkpoint(_net(make_tiny_dataset()), path)
    assert str(path) in info.value.problem and "train again" in info.value.fix


class _StepwiseBPRMF(BPRMF):
    steps_per_execution = 1


def test_a_whole_epoch_per_execution_trains_like_one_step_per_execution():
    ds = make_tiny_dataset()
    whole, stepwise = BPRMF(ds.sizes, SMALL), _StepwiseBPRMF(ds.sizes, SMALL)
    assert whole.steps_per_execution == "epoch"
    whole.fit(ds)
    stepwise.fit(ds)
    np.testing.assert_allclose(whole.report.history["loss"], stepwise.report.history["loss"], rtol=1e-5)
    for name, value in whole.get_state().items():
        np.testing.assert_allclose(value, stepwise.get_state()[name], rtol=0, atol=1e-5)


def test_steps_per_execution_must_divide_an_epoch():
    model = _StepwiseBPRMF(make_tiny_dataset().sizes, SMALL)
    assert model._execution_steps(6) == 1
    model.steps_per_execution = 4
    with pytest.raises(ConfigError, match="does not divide"):
        model._execution_steps(6)
    model.steps_per_execution = 3
    assert model._execution_steps(6) == 3
