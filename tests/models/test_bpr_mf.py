"""BPR-MF: the conformance contract, learning on structured data, and its weight arrays."""

from __future__ import annotations

import numpy as np
import pytest
from xcatrec.testing import RecommenderConformance
from conftest import RandomScores, make_tiny_dataset

from xcatrec.errors import ConfigError, DataError
from xcatrec.evaluation import evaluate
from xcatrec.models import BPRMF, BPRMFConfig, Popularity


class TestBPRMFConformance(RecommenderConformance):
    model_class = BPRMF

    def make_config(self):
        return BPRMFConfig(epochs=2, batch_size=64, dim=8, learning_rate=0.05, valid_users=0)


class TestBPRMFWithBPRLossConformance(TestBPRMFConformance):
    """The paper's pairwise loss, kept as an option (the default is the in-batch softmax)."""

    def make_config(self):
        return BPRMFConfig(epochs=2, batch_size=64, dim=8, learning_rate=0.05, valid_users=0, loss="bpr")


def test_bpr_mf_learns_the_taste_groups():
    """Users prefer one half of the items; BPR-MF must find that, popularity cannot."""
    ds = make_tiny_dataset()
    model = BPRMF(ds.sizes, BPRMFConfig(epochs=15, batch_size=64, dim=8, learning_rate=0.05, patience=0))
    report = model.fit(ds)
    bpr = evaluate(model, ds)["ndcg@10"]
    pop_model = Popularity(ds.sizes)
    pop_model.fit(ds)
    pop = evaluate(pop_model, ds)["ndcg@10"]
    chance = np.mean([evaluate(RandomScores(ds.target.n_items, s), ds)["ndcg@10"] for s in range(10)])
    # measured with seed 0: bpr 0.50, popularity 0.20, random 0.16
    assert bpr > pop + 0.15
    assert bpr > 2 * chance
    assert report.history["loss"][-1] < report.history["loss"][0]
    assert 1 <= report.best_epoch <= report.epochs == 15


def test_state_holds_factors_and_bias_and_scores_are_dot_products():
    ds = make_tiny_dataset()
    model = BPRMF(ds.sizes, BPRMFConfig(epochs=1, batch_size=64, dim=4, valid_users=0))
    model.fit(ds)
    state = model.get_state()
    assert state["user_factors"].shape == (ds.n_users, 4)
    assert state["item_factors"].shape == (ds.target.n_items, 4)
    assert state["item_bias"].shape == (ds.target.n_items,)
    expected = state["user_factors"][[1, 2]] @ state["item_factors"].T + state["item_bias"]
    np.testing.assert_allclose(model.score([1, 2]), expected, rtol=1e-6)


def test_without_item_bias():
    ds = make_tiny_dataset()
    model = BPRMF(ds.sizes, BPRMFConfig(epochs=1, batch_size=64, dim=4, item_bias=False, valid_users=0))
    model.fit(ds)
    assert "item_bias" not in model.get_state()
    state = model.get_state()
    np.testing.assert_allclose(model.score([0]), state["user_factors"][[0]] @ state["item_factors"].T,
                               rtol=1e-6)


def test_unfitted_model_and_bad_state_are_refused():
    sizes = make_tiny_dataset().sizes
    model = BPRMF(sizes)
    with pytest.raises(ConfigError, match="not been trained"):
        model.score([0])
    with pytest.raises(DataError, match="rows"):
        model.set_state({"user_factors": np.zeros((3, 2), np.float32),
                         "item_factors": np.zeros((sizes.n_target_items, 2), np.float32)})
    with pytest.raises(DataError, match="item_factors"):
        model.set_state({"user_factors": np.zeros((sizes.n_users, 2), np.float32)})


def test_config_checks_its_values():
    with pytest.raises(ConfigError, match="dim"):
        BPRMFConfig(dim=0)
    with pytest.raises(ConfigError, match="reg"):
        BPRMFConfig(reg=-1.0)
