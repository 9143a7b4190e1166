"""CMF: the contract, learning, cold users served through the shared user factors, and ratings."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import RandomScores, make_tiny_dataset, with_ratings
from xcatrec.errors import ConfigError, DataError
from xcatrec.evaluation import evaluate, evaluate_ratings
from xcatrec.models.cmf import CMF, CMFConfig
from xcatrec.models.emcdr import EMCDRConfig
from xcatrec.models.popularity import Popularity
from xcatrec.testing import RecommenderConformance

FAST = dict(dim=16, batch_size=512, learning_rate=0.01, reg=1e-4, valid_users=0)


class TestCMFConformance(RecommenderConformance):
    """The contract, on ratings with ``loss="mse"`` (BPR is checked on the synthetic data below)."""

    model_class = CMF

    def make_config(self):
        return CMFConfig(epochs=8, dim=4, batch_size=64, loss="mse", reg=1e-3, learning_rate=0.05)

    def make_dataset(self):
        return with_ratings(make_tiny_dataset())

    def test_ratings_with_mse_loss(self, fitted):
        model, ds = fitted
        pred = model.predict_ratings(ds.target.test.users, ds.target.test.items)
        assert pred.shape == (len(ds.target.test),) and pred.min() >= 2 and pred.max() <= 5
        err = evaluate_ratings(model, ds)
        global_mean = ds.target.train.ratings.mean()
        baseline = np.sqrt(np.mean((ds.target.test.ratings - global_mean) ** 2))
        assert err["rmse"] < baseline, (err, baseline)  # user levels are learnable from both domains
        scores = model.score(ds.target.test.users, ds.target.test.items[:, None])[:, 0]
        np.testing.assert_allclose(np.clip(scores, 2, 5), pred, rtol=1e-5)  # score = unclipped rating
        assert "valid_neg_rmse" in model.report.history


@pytest.fixture(scope="module")
def cold_start():
    """Synthetic marketplace with identical tastes across domains (rho=1) and 30% cold users."""
    from xcatrec.data import load_dataset

    ds = load_dataset("synthetic", rho=1.0, split="cold-start", beta=0.3, images=False, n_users=600,
                      n_source_items=150, n_target_items=150)
    model = CMF(ds.sizes, CMFConfig(epochs=4, **FAST))
    model.fit(ds)
    return ds, model


def test_cold_users_learn_from_their_source_rows(cold_start):
    ds, model = cold_start
    assert len(ds.cold_users) and not np.isin(ds.cold_users, ds.target.train.users).any()
    pop = Popularity(ds.sizes)
    pop.fit(ds)
    got = {name: evaluate(m, ds, users=ds.cold_users)["ndcg@10"]
           for name, m in (("cmf", model), ("pop", pop), ("random", RandomScores(ds.target.n_items)))}
    # measured: cmf 0.38, popularity 0.29, random 0.05
    assert got["cmf"] > 4 * got["random"] and got["cmf"] > got["pop"] + 0.03, got
    scores = model.score(ds.cold_users)
    assert np.isfinite(scores).all()
    assert scores.std(axis=0).mean() > 0.1 * scores.std()  # personal: the rows differ between users


def test_without_source_rows_cold_users_get_nothing_personal(cold_start):
    ds, model = cold_start
    plain = CMF(ds.sizes, CMFConfig(epochs=4, source_weight=0.0, **FAST))
    plain.fit(ds)
    with_source = evaluate(model, ds, users=ds.cold_users)["ndcg@10"]
    without = evaluate(plain, ds, users=ds.cold_users)["ndcg@10"]
    # the cold users' factors never get a gradient: they stay at their tiny random initialisation
    assert np.abs(plain.user_factors[ds.cold_users]).max() < 0.1
    assert with_source > without + 0.05, (with_source, without)


def test_report_and_source_side_scores(cold_start):
    ds, model = cold_start
    assert model.phases[0].data == "both" and model.transferred == {}
    assert model.refit_epochs == {"epochs": ("", "patience")}
    assert model.report.history["valid_ndcg@10"] and model.report.seconds_per_epoch > 0
    src = model.source_scores([0, 1])
    assert src.shape == (2, ds.source.n_items) and np.isfinite(src).all()


def test_joint_rows_target_then_source_with_weights_and_negatives_per_domain():
    ds = make_tiny_dataset()
    model = CMF(ds.sizes, CMFConfig(source_weight=0.5))
    rows = model.rows(model.phases[0], ds)
    n_tgt, n_rows = len(ds.target.train), len(rows)
    assert n_rows == n_tgt + len(ds.source.train)
    np.testing.assert_array_equal(rows.columns["pos"][:n_tgt], ds.target.train.items)
    np.testing.assert_array_equal(rows.columns["pos"][n_tgt:], ds.source.train.items + ds.target.n_items)
    np.testing.assert_array_equal(rows.columns["weight"], [1.0] * n_tgt + [0.5] * (n_rows - n_tgt))
    neg = rows.epoch(np.random.default_rng(0))["neg"][:, 0]
    users, tgt_neg, src_neg = rows.columns["user"], neg[:n_tgt], neg[n_tgt:] - ds.target.n_items
    assert neg.shape == (n_rows,) and (tgt_neg < ds.target.n_items).all()
    assert (src_neg >= 0).all() and (src_neg < ds.source.n_items).all()
    # negatives are items the row's user has no training row with, in the row's own domain
    assert not (ds.matrix("target", "train")[users[:n_tgt], tgt_neg] > 0).any()
    assert not (ds.matrix("source", "train")[users[n_tgt:], src_neg] > 0).any()


def test_bad_configs_and_losses():
    ds = make_tiny_dataset()
    with pytest.raises(ConfigError, match="source_weight"):
        CMFConfig(source_weight=-1)
    with pytest.raises(ConfigError, match="Unknown loss"):
        CMFConfig(loss="hinge")
    assert (CMFConfig().l2, CMFConfig(loss="mse").l2, CMFConfig(reg=0.5).l2) == (0.03, 0.3, 0.5)
    assert (EMCDRConfig().l2, EMCDRConfig(loss="mse").l2) == (0.1, 0.3)
    with pytest.raises(DataError, match="needs ratings"):
        CMF(ds.sizes, CMFConfig(epochs=1, loss="mse")).fit(ds)
    model = CMF(ds.sizes, CMFConfig(epochs=1, dim=4))
    with pytest.raises(ConfigError, match="not been trained"):
        model.predict_ratings([0], [0])


@pytest.mark.slow
def test_douban_cold_start_ratings(shared_data_dir):
    from xcatrec.data import load_dataset

    ds = load_dataset("douban-book-music", split="cold-start", beta=0.2, data_dir=shared_data_dir)
    model = CMF(ds.sizes, CMFConfig(loss="mse"))
    model.fit(ds)
    got = evaluate_ratings(model, ds)  # the cold users only: their whole target history is the test set
    global_rmse = float(np.sqrt(np.mean((ds.target.test.ratings - ds.target.train.ratings.mean()) ** 2)))
    assert got["rmse"] < global_rmse - 0.05, (got, global_rmse)  # measured: 0.83 vs 0.97
