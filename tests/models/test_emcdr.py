"""EMCDR: the contract, learning, what moves into the mapping, cold and warm scoring, ratings."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import RandomScores, make_tiny_dataset, record_exports, with_ratings
from xcatrec.errors import ConfigError, DataError
from xcatrec.evaluation import evaluate, evaluate_ratings
from xcatrec.evaluation.transfer import transfer_amount
from xcatrec.models.emcdr import EMCDR, EMCDRConfig
from xcatrec.models.mf_training import split_users
from xcatrec.testing import RecommenderConformance
from xcatrec.training import checkpoint_path, mlp_numpy

TINY = dict(epochs=2, source_epochs=2, map_epochs=2, dim=4, batch_size=64, learning_rate=0.05)


class TestEMCDRConformance(RecommenderConformance):
    """The contract, on ratings with ``loss="mse"``, a linear mapping and ``warm_blend=0.25``."""

    model_class = EMCDR

    def make_config(self):
        return EMCDRConfig(**TINY, loss="mse", reg=1e-3, warm_blend=0.25, map_hidden=0)

    def make_dataset(self):
        return with_ratings(make_tiny_dataset())

    def test_warm_blend_mixes_mapped_and_target_factors(self, fitted):
        model, ds = fitted
        assert len(model.mapping) == 2  # linear mapping: one kernel, one bias
        expected = 0.75 * model.target_user_factors + 0.25 * model.map_users(np.arange(ds.n_users))
        np.testing.assert_allclose(model.user_factors, expected, rtol=1e-5, atol=1e-6)

    def test_ratings_with_mse_loss(self, fitted):
        model, ds = fitted
        assert model.user_factors.shape == (ds.n_users, TINY["dim"] + 1)  # factors + the user bias
        pred = model.predict_ratings(ds.target.test.users, ds.target.test.items)
        assert pred.shape == (len(ds.target.test),) and pred.min() >= 2 and pred.max() <= 5
        err = evaluate_ratings(model, ds)
        assert np.isfinite(err["rmse"]) and err["mae"] <= err["rmse"]
        np.testing.assert_array_equal(model.get_state()["rating_range"], [2, 5])
        assert "target-mf/valid_neg_rmse" in model.report.history


@pytest.fixture(scope="module")
def fitted(request):
    """EMCDR on a synthetic cold-start split (rho=1), with snapshots of what each MF phase returned."""
    from xcatrec.data import load_dataset

    ds = load_dataset("synthetic", rho=1.0, split="cold-start", beta=0.3, images=False, n_users=600,
                      n_source_items=150, n_target_items=150)
    snapshots = record_exports(request, EMCDR)  # phase name -> its last export (after training)
    model = EMCDR(ds.sizes, EMCDRConfig(epochs=4, source_epochs=4, map_epochs=10, dim=16, batch_size=512,
                                        learning_rate=0.01, map_learning_rate=0.01, reg=1e-4, valid_users=0))
    model.fit(ds)
    return ds, model, snapshots


def test_learns_to_serve_cold_users(fitted):
    ds, model, _ = fitted
    got = evaluate(model, ds, users=ds.cold_users)["ndcg@10"]
    floor = evaluate(RandomScores(ds.target.n_items), ds, users=ds.cold_users)["ndcg@10"]
    assert got > 4 * floor, (got, floor)  # measured: 0.30 vs 0.05 (popularity: 0.29)


def test_transferred_factors_are_the_mf_phase_outputs_and_stay_frozen(fitted):
    ds, model, snapshots = fitted
    source_snapshot = snapshots["source-mf"]["source_user_factors"]
    target_snapshot = snapshots["target-mf"]["target_user_factors"]
    assert [p.moves for p in model.phases] == [("source_user_factors",), ("target_user_factors",), ()]
    # the map phase early-stops on its own held-out users: a refit freezes only the target-mf epochs
    assert [p.validate for p in model.phases] == ["", "valid", "held-out"]
    assert model.refit_epochs == {"epochs": ("target-mf", "patience")}
    np.testing.assert_array_equal(model.transferred["source_user_factors"], source_snapshot)
    np.testing.assert_array_equal(model.transferred["target_user_factors"], target_snapshot)
    state = model.get_state()
    np.testing.assert_array_equal(state["source_user_factors"], source_snapshot)  # frozen while mapping
    amount = transfer_amount(model)
    assert (amount["l2"] == 0).all()
    assert set(amount["layer"]) == {"source_user_factors", "target_user_factors"}


def test_cold_users_are_mapped_and_warm_users_keep_their_target_factors(fitted):
    ds, model, snapshots = fitted
    cold = ds.cold_users
    warm = np.unique(ds.target.train.users)
    assert sorted(model.mapping) == sorted(snapshots["map"]) == [f"map/dense_{i}/{w}" for i in (0, 1)
                                                                  for w in ("bias", "kernel")]
    mapped = mlp_numpy(snapshots["source-mf"]["source_user_factors"][cold], model.mapping, "map", 2, "tanh")
    np.testing.assert_allclose(model.user_factors[cold], mapped, rtol=1e-5, atol=1e-6)
    target = snapshots["target-mf"]["target_user_factors"]
    np.testing.assert_array_equal(model.user_factors[warm], target[warm])
    # the mapping learned something: it predicts held-out target factors better than their mean does
    history = model.report.history["map/valid_neg_mse"]
    assert max(history) > history[0]
    phases = ("source-mf", "target-mf", "map")
    assert model.report.epochs == sum(len(model.report.history[f"{p}/loss"]) for p in phases)


def test_split_users_and_bad_configs():
    train, held = split_users(np.arange(100), 0.1, seed=0)
    assert len(held) == 10 and len(np.intersect1d(train, held)) == 0 and len(train) == 90
    train, held = split_users(np.arange(5), 0.5, seed=0)
    assert len(held) == 0 and len(train) == 5  # too few users to hold any out
    for bad in (dict(warm_blend=1.5), dict(valid_fraction=1.0), dict(map_hidden=-1), dict(source_epochs=0)):
        with pytest.raises(ConfigError):
            EMCDRConfig(**bad)
    ds = make_tiny_dataset()
    with pytest.raises(DataError, match="needs ratings"):
        EMCDR(ds.sizes, EMCDRConfig(**TINY, loss="mse")).fit(ds)
    model = EMCDR(ds.sizes, EMCDRConfig(**TINY))
    with pytest.raises(ConfigError, match="not been trained"):
        model.predict_ratings([0], [0])


def test_every_phase_writes_its_checkpoint(tmp_path):
    ds = make_tiny_dataset()
    model = EMCDR(ds.sizes, EMCDRConfig(**TINY, checkpoint_dir=str(tmp_path)))
    model.fit(ds)
    for phase in model.phases:  # the map phase too
        assert checkpoint_path(tmp_path, "emcdr", phase.name, 0).is_file(), phase.name
