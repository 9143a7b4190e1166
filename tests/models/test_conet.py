"""CoNet: the model contract, numpy scoring equal to the Keras towers, learning, and the cross units."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from conftest import RandomScores
from xcatrec.data import load_dataset
from xcatrec.errors import ConfigError
from xcatrec.evaluation import evaluate
from xcatrec.evaluation.transfer import transfer_amount
from xcatrec.models.conet import CoNet, CoNetConfig, history_mean_numpy
from xcatrec.testing import RecommenderConformance
from xcatrec.training import assign_weights, numpy_weights
from xcatrec.training.rows import first_rows


def small_market():
    """A related marketplace (rho = 1) whose cold-start users have only source history."""
    return load_dataset("synthetic", split="cold-start", beta=0.5, seed=0, rho=1.0, n_users=400,
                        n_source_items=120, n_target_items=120, images=False)


class TestCoNet(RecommenderConformance):
    model_class = CoNet

    def make_config(self):
        return CoNetConfig(epochs=2, batch_size=1024, negatives=2, valid_users=200, seed=0)

    def make_dataset(self):
        return small_market()

    @pytest.fixture(scope="class")
    @classmethod
    def keras_net(cls, fitted):
        """A fresh network built like the model's: its initial arrays, then the network itself."""
        model, dataset = fitted
        phase = CoNet.phases[0]
        net = model.build(phase, dataset)
        net(first_rows(model.rows(phase, dataset)))  # creates the variables, as training does
        return numpy_weights(net), net

    def test_rows_are_positives_then_sampled_negatives_per_domain(self, fitted):
        model, dataset = fitted
        rows = model.rows(CoNet.phases[0], dataset)
        k = model.config.negatives
        epoch = rows.epoch(np.random.default_rng(0))
        for flag, dom in ((False, "source"), (True, "target")):
            train, seen = dataset.domain(dom).train, dataset.matrix(dom, "train")
            mine = epoch["is_target"] == flag
            assert mine.sum() == len(train) * (1 + k) and (epoch["label"][mine] == 1).sum() == len(train)
            neg = mine & (epoch["label"] == 0)
            assert np.asarray(seen[epoch["user"][neg], epoch["item"][neg]]).max() == 0  # never a known item

    def test_learns_for_cold_start_users(self, fitted):
        model, dataset = fitted
        assert len(dataset.cold_users) > 0
        assert not np.isin(dataset.target.train.users, dataset.cold_users).any()
        got = evaluate(model, dataset)["ndcg@10"]  # test users of this split are the cold users
        floor = evaluate(RandomScores(dataset.target.n_items), dataset)["ndcg@10"]
        assert got > 2 * floor and got > floor + 0.05, (got, floor)

    def test_numpy_scores_equal_the_keras_towers(self, fitted, keras_net):
        model, dataset = fitted
        users = np.array([0, 3, 7, 11, 200, 399])
        items = np.array([0, 5, 17, 60, 99, 119])
        net = keras_net[1]
        assign_weights(net, model.get_state(), names=list(model.get_state()))
        out = net({"user": users, "item": items, "label": np.zeros(6, np.float32),
                                       "is_target": np.ones(6, bool)})
        np.testing.assert_allclose(model.score(users)[np.arange(6), items], out["logit"].numpy(), rtol=1e-4, atol=1e-5)

    def test_refresh_sets_profiles_to_history_means(self, fitted, keras_net):
        model, dataset = fitted
        net = keras_net[1]
        assign_weights(net, model.get_state(), names=list(model.get_state()))
        for callback in model.callbacks(CoNet.phases[0], net):
            callback.on_epoch_begin(0)  # what the training loop does at the start of every epoch
        source = dataset.matrix("source", "train")
        expected = history_mean_numpy(source, model.get_state()["source_item_embedding"])
        np.testing.assert_allclose(numpy_weights(net)["source_profile"], expected, rtol=1e-5, atol=1e-7)
        target = history_mean_numpy(dataset.matrix("target", "train"), model.get_state()["target_item_embedding"])
        np.testing.assert_allclose(numpy_weights(net)["target_profile"], target, rtol=1e-5, atol=1e-7)
        counts = np.diff(source.indptr)
        user = int(np.flatnonzero(counts > 1)[0])
        items = source.indices[source.indptr[user]:source.indptr[user + 1]]
        np.testing.assert_allclose(expected[user], model.get_state()["source_item_embedding"][items].mean(0),
                                   rtol=1e-5, atol=1e-7)

    def test_transferred_holds_the_cross_units_at_initialisation(self, fitted, keras_net):
        model, dataset = fitted
        assert self.model_class.phases[0].moves == ("cross",)
        assert sorted(model.transferred) == ["cross/layer_1", "cross/layer_2"]
        fresh = keras_net[0]
        final = model.get_state()
        for name, before in model.transferred.items():
            np.testing.assert_array_equal(before, fresh[name])  # same seed -> the very initial H
            assert not np.allclose(before, final[name])  # joint training moved the cross units
        table = transfer_amount(model)
        assert list(table["layer"]) == ["cross/layer_1", "cross/layer_2"]
        assert (table["l2"] > 0).all()

    def test_source_history_reaches_target_scores_only_through_the_cross_units(self, fitted):
        model, _ = fitted
        users = np.arange(0, 400, 40)
        state = model.get_state()
        other = dict(state, source_profile=np.zeros_like(state["source_profile"]))

        def scores(weights):
            probe = CoNet(model.sizes, model.config)
            probe.set_state(weights)
            return probe.score(users)

        assert not np.allclose(scores(state), scores(other))
        no_cross = {k: np.zeros_like(v) if k.startswith("cross/") else v for k, v in state.items()}
        no_cross_other = dict(no_cross, source_profile=other["source_profile"])
        np.testing.assert_array_equal(scores(no_cross), scores(no_cross_other))

    def test_scores_do_not_depend_on_the_block_size(self, fitted, monkeypatch):
        import xcatrec.models.conet as conet

        model, dataset = fitted
        users = np.arange(50)
        full = model.score(users)
        cand = np.random.default_rng(1).integers(0, dataset.target.n_items, size=(50, 33))
        monkeypatch.setattr(conet, "_PAIRS_PER_BLOCK", 100)  # many small, ragged blocks
        np.testing.assert_allclose(model.score(users), full, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.score(users, cand), np.take_along_axis(full, cand, 1), rtol=1e-5, atol=1e-6)


def test_config_validation_and_json_round_trip():
    with pytest.raises(ConfigError, match="hidden"):
        CoNetConfig(hidden=(16,))
    with pytest.raises(ConfigError, match="hidden"):
        CoNetConfig(hidden=(16, 0))
    with pytest.raises(ConfigError, match="negatives"):
        CoNetConfig(negatives=0)
    with pytest.raises(ConfigError, match="source_weight"):
        CoNetConfig(source_weight=-1.0)
    config = CoNetConfig(hidden=(16, 8, 4))
    back = CoNetConfig(**json.loads(json.dumps(asdict(config))))  # tuples come back as lists
    assert back == config and back.hidden == (16, 8, 4)


def test_history_mean_by_hand():
    import scipy.sparse as sp

    table = np.array([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]], np.float32)
    # user 0: items 0 and 2 (item 2 twice: duplicates count once); user 1: nothing; user 2: item 1
    matrix = sp.csr_matrix((np.ones(4), ([0, 0, 0, 2], [0, 2, 2, 1])), shape=(3, 3))
    np.testing.assert_allclose(history_mean_numpy(matrix, table), [[2.5, 2.0], [0.0, 0.0], [0.0, 2.0]])


def test_unfitted_model_refuses_to_score():
    dataset = small_market()
    with pytest.raises(ConfigError, match="not been trained"):
        CoNet(dataset.sizes).score([0])
