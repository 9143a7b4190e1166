"""Fine-tuning: the contract, what the transfer step moves (and freezes), cold users, and that it learns."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import RandomScores
from xcatrec.data import load_dataset
from xcatrec.errors import ConfigError, DataError
from xcatrec.evaluation import evaluate
from xcatrec.models.finetune import Finetune, FinetuneConfig, weight_names
from xcatrec.testing import RecommenderConformance
from xcatrec.training import numpy_weights

SMALL = dict(dim=16, batch_size=64, epochs=1, source_epochs=1)  # default towers: none (MF)


class TestFinetuneConformance(RecommenderConformance):
    model_class = Finetune

    def make_config(self):
        return FinetuneConfig(**SMALL)

    def test_report_has_both_phases(self, fitted):
        model, _ = fitted
        assert model.report.epochs == 2
        assert {"source-pretrain/loss", "target-finetune/loss", "target-finetune/valid_ndcg@10"} <= set(
            model.report.history)


class Recording(Finetune):
    """Keeps every network it builds, so a test can read the source network after fit."""

    def build(self, phase, dataset):
        net = super().build(phase, dataset)
        self.__dict__.setdefault("nets", []).append(net)
        return net


def synthetic(split: str):
    return load_dataset("synthetic", rho=1.0, n_users=500, n_source_items=150, n_target_items=150, images=False,
                        split=split, beta=0.5, seed=0)


@pytest.fixture(scope="module")
def cold_run():
    """Default transfer (user embedding + user tower), not frozen, on a cold-start split."""
    ds = synthetic("cold-start")
    model = Recording(ds.sizes, FinetuneConfig(dim=32, tower_units=(32,), batch_size=256, epochs=8, source_epochs=8,
                                               patience=0))
    model.fit(ds)
    return model, ds


@pytest.fixture(scope="module")
def frozen_run():
    """Transfer of the user embedding and the whole user tower, frozen, on a leave-one-out split."""
    ds = synthetic("loo")
    model = Recording(ds.sizes, FinetuneConfig(dim=32, tower_units=(32,), batch_size=256, epochs=8, source_epochs=8,
                                               freeze=True, patience=0))
    model.fit(ds)
    return model, ds


# ---------------------------------------------------------------- configuration
def test_moves_follow_the_transfer_option():
    sizes = load_dataset("synthetic", n_users=20, n_source_items=10, n_target_items=10, images=False).sizes
    default = Finetune(sizes)  # no towers by default: the user embedding is the bottom layer
    assert default.phases[0].moves == ("user_embedding",) == Finetune.phases[0].moves
    assert default.phases[1].moves == ()
    tower = Finetune(sizes, FinetuneConfig(tower_units=(16,)))
    assert tower.phases[0].moves == ("user_embedding", "user_tower/dense_0/kernel", "user_tower/dense_0/bias")
    two = Finetune(sizes, FinetuneConfig(tower_units=(8, 4), transfer=("user_tower/dense_0", "item_tower")))
    assert two.phases[0].moves == ("user_tower/dense_0/kernel", "user_tower/dense_0/bias", "item_tower/dense_0/kernel",
                                   "item_tower/dense_0/bias", "item_tower/dense_1/kernel", "item_tower/dense_1/bias")
    assert Finetune(sizes, FinetuneConfig(transfer=())).phases[0].moves == ()
    # source pre-training has no validation split: all source_epochs run; only fine-tuning's epochs are refit
    source, target = default.phases
    assert (source.validate, source.prefix, target.validate) == ("", "source_", "valid")
    assert default.refit_epochs == {"epochs": ("target-finetune", "patience")}
    assert FinetuneConfig(transfer="user_embedding").transfer == ("user_embedding",)
    assert FinetuneConfig(tower_units=[8, 4]).tower_units == (8, 4)  # lists from JSON become tuples


@pytest.mark.parametrize("options, match", [
    (dict(transfer=("item_embedding",)), "only"),
    (dict(transfer=("user_tower/dense_3",)), "no layer|matches no weight"),
    (dict(loss="hinge"), "loss"),
    (dict(tower_units=(8, 0)), "tower_units"),
    (dict(source_epochs=0), "source_epochs"),
    (dict(negatives=0), "negatives"),
])
def test_bad_options_raise_config_errors(options, match):
    sizes = load_dataset("synthetic", n_users=20, n_source_items=10, n_target_items=10, images=False).sizes
    with pytest.raises(ConfigError, match=match):
        Finetune(sizes, FinetuneConfig(**options))


def test_unfitted_model_and_incomplete_state_say_so(tiny_dataset):
    model = Finetune(tiny_dataset.sizes, FinetuneConfig(**SMALL))
    with pytest.raises(ConfigError, match="not been trained"):
        model.score([0])
    with pytest.raises(DataError, match="lack"):
        model.set_state({"user_embedding": np.zeros((tiny_dataset.n_users, 16), np.float32)})


# ---------------------------------------------------------------- the transfer step
def test_transferred_is_the_source_network_at_the_moment_of_transfer(cold_run):
    model, ds = cold_run
    source_net, target_net = model.nets
    assert source_net.item_embedding.input_dim == ds.source.n_items
    assert target_net.item_embedding.input_dim == ds.target.n_items
    source = numpy_weights(source_net)  # the source network is not trained after phase 1
    assert tuple(model.transferred) == model.phases[0].moves
    assert len(model.report.history["source-pretrain/loss"]) == 8  # source_epochs, no early stopping
    for name, value in model.transferred.items():
        np.testing.assert_array_equal(value, source[name])
    # not moved: the target item tower is a fresh initialisation, unrelated to the source one
    final = model.get_state()
    assert sorted(final) == sorted(weight_names((32,), True)) == sorted(source)
    assert not np.allclose(final["item_tower/dense_0/kernel"], source["item_tower/dense_0/kernel"], atol=1e-2)


def test_fine_tuning_moves_the_copied_layers_but_not_the_cold_users(cold_run):
    model, ds = cold_run
    final, moved = model.get_state(), model.transferred
    assert not np.allclose(final["user_tower/dense_0/kernel"], moved["user_tower/dense_0/kernel"])
    cold = ds.cold_users
    warm = np.unique(ds.target.train.users)
    assert len(cold) > 0 and not np.isin(cold, warm).any()
    # cold users are in no target batch: their rows keep exactly their source-trained values
    np.testing.assert_array_equal(final["user_embedding"][cold], moved["user_embedding"][cold])
    changed = np.abs(final["user_embedding"][warm] - moved["user_embedding"][warm]).max(axis=1) > 0
    assert changed.mean() > 0.99


def test_freeze_keeps_every_copied_weight_equal_to_the_source(frozen_run):
    model, _ = frozen_run
    final = model.get_state()
    assert not model.nets[1].user_embedding.trainable and not model.nets[1].user_tower.trainable
    for name, value in model.transferred.items():
        np.testing.assert_array_equal(final[name], value)
    trainable = {id(v) for v in model.nets[1].trainable_variables}
    assert {id(v) for v in model.nets[1].item_embedding.weights + model.nets[1].item_tower.weights} <= trainable
    assert not {id(v) for v in model.nets[1].user_embedding.weights + model.nets[1].user_tower.weights} & trainable


# ---------------------------------------------------------------- learning
@pytest.mark.parametrize("run", ["cold_run", "frozen_run"])
def test_learns_and_serves_cold_users_from_their_source_history(run, request):
    """Both runs beat chance clearly; the cold-start test set holds only cold users (scored from the source)."""
    model, ds = request.getfixturevalue(run)
    ours = evaluate(model, ds)["ndcg@10"]
    chance = evaluate(RandomScores(ds.target.n_items), ds)["ndcg@10"]
    assert ours > 3 * chance and ours > chance + 0.05, (ours, chance)
