"""PTUPCDR: the contract, learning, padded histories, what moves into the meta phase, cold/warm scoring."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import RandomScores, make_tiny_dataset, record_exports, with_ratings
from xcatrec.data.types import Interactions
from xcatrec.errors import ConfigError, DataError
from xcatrec.evaluation import evaluate, evaluate_ratings
from xcatrec.evaluation.transfer import transfer_amount
from xcatrec.models.ptupcdr import PTUPCDR, PTUPCDRConfig, padded_history
from xcatrec.testing import RecommenderConformance

TINY = dict(epochs=2, source_epochs=2, meta_epochs=2, dim=4, batch_size=64, meta_batch_size=64,
            learning_rate=0.05, history_len=4, meta_dim=8)


class TestPTUPCDRConformance(RecommenderConformance):
    """The contract, on ratings with ``loss="mse"`` and ``warm_blend=1`` (every user bridged)."""

    model_class = PTUPCDR

    def make_config(self):
        return PTUPCDRConfig(**TINY, loss="mse", reg=1e-3, warm_blend=1.0)

    def make_dataset(self):
        return with_ratings(make_tiny_dataset())

    def test_ratings_and_blend(self, fitted):
        model, ds = fitted
        assert model.user_factors.shape == (ds.n_users, TINY["dim"] + 1)  # factors + the user bias
        pred = model.predict_ratings(ds.target.test.users, ds.target.test.items)
        assert pred.shape == (len(ds.target.test),) and pred.min() >= 2 and pred.max() <= 5
        assert np.isfinite(evaluate_ratings(model, ds)["rmse"])
        # warm_blend=1: nobody keeps their target factor
        assert not np.isclose(model.user_factors, model.get_state()["target_user_factors"]).all(axis=1).any()
        assert "meta/valid_neg_rmse" in model.report.history


@pytest.fixture(scope="module")
def fitted(request):
    """PTUPCDR on a synthetic cold-start split (rho=1), with snapshots of what each MF phase returned."""
    from xcatrec.data import load_dataset

    ds = load_dataset("synthetic", rho=1.0, split="cold-start", beta=0.3, images=False, n_users=600,
                      n_source_items=150, n_target_items=150)
    snapshots = record_exports(request, PTUPCDR)  # phase name -> its last export (after training)
    model = PTUPCDR(ds.sizes, PTUPCDRConfig(epochs=4, source_epochs=4, meta_epochs=4, dim=16, batch_size=512,
                                            meta_batch_size=256, learning_rate=0.01, meta_learning_rate=0.01,
                                            reg=1e-4, valid_users=0))
    model.fit(ds)
    return ds, model, snapshots


def test_learns_to_serve_cold_users(fitted):
    ds, model, _ = fitted
    got = evaluate(model, ds, users=ds.cold_users)["ndcg@10"]
    floor = evaluate(RandomScores(ds.target.n_items), ds, users=ds.cold_users)["ndcg@10"]
    assert got > 4 * floor, (got, floor)  # measured: 0.35 vs 0.05 (popularity: 0.29)


def test_transferred_factors_are_the_mf_phase_outputs_and_stay_frozen(fitted):
    ds, model, snapshots = fitted
    source, target = snapshots["source-mf"], snapshots["target-mf"]
    assert model.phases[0].moves == ("source_user_factors", "source_item_factors")
    assert model.phases[1].moves == ("item_factors", "item_bias")
    assert [p.validate for p in model.phases] == ["", "valid", "valid"]
    assert model.refit_epochs == {"epochs": ("target-mf", "patience"),
                                  "meta_epochs": ("meta", "meta_patience")}
    expected = {"source_user_factors": source["source_user_factors"],
                "source_item_factors": source["source_item_factors"],
                "item_factors": target["item_factors"], "item_bias": target["item_bias"]}
    assert sorted(model.transferred) == sorted(expected)
    state = model.get_state()
    for name, snapshot in expected.items():
        np.testing.assert_array_equal(model.transferred[name], snapshot)
        np.testing.assert_array_equal(state[name], snapshot)  # frozen during the meta phase
    assert (transfer_amount(model)["l2"] == 0).all()
    network = sorted(k for k in state if k.startswith(("attention/", "meta/")))
    assert network == sorted(snapshots["meta"]) and "meta/dense_1/kernel" in network


def test_cold_users_are_bridged_personally_and_warm_users_keep_their_factors(fitted):
    ds, model, snapshots = fitted
    target = snapshots["target-mf"]["target_user_factors"]
    warm = np.unique(ds.target.train.users)
    np.testing.assert_array_equal(model.user_factors[warm], target[warm])
    cold = model.user_factors[ds.cold_users]
    assert np.isfinite(cold).all()
    assert not np.allclose(cold, target[ds.cold_users])
    # a personal bridge per user: the bridged factors are not one linear map of the source factors
    src = model.get_state()["source_user_factors"][ds.cold_users]
    shared, *_ = np.linalg.lstsq(src, cold, rcond=None)
    residual = np.linalg.norm(cold - src @ shared) / np.linalg.norm(cold)
    assert residual > 0.05, residual


def test_padded_history_most_recent_first_truncated_and_padded():
    rows = Interactions([0, 0, 0, 2, 0], [5, 6, 7, 8, 9], timestamps=[10, 30, 20, 5, 40])
    history = padded_history(rows, n_users=3, length=3, pad=99, seed=0)
    np.testing.assert_array_equal(history, [[9, 6, 7], [99, 99, 99], [8, 99, 99]])
    no_time = padded_history(Interactions([1, 1, 1], [0, 1, 2]), n_users=2, length=2, pad=9, seed=0)
    assert no_time[0].tolist() == [9, 9] and len(set(no_time[1])) == 2 and set(no_time[1]) <= {0, 1, 2}


def test_bad_configs_and_data():
    for bad in (dict(history_len=0), dict(meta_dim=0), dict(warm_blend=2.0), dict(valid_fraction=1.0),
                dict(meta_learning_rate=0.0), dict(meta_patience=-1), dict(loss="hinge")):
        with pytest.raises(ConfigError):
            PTUPCDRConfig(**bad)
    ds = make_tiny_dataset()
    with pytest.raises(DataError, match="needs ratings"):
        PTUPCDR(ds.sizes, PTUPCDRConfig(**TINY, loss="mse")).fit(ds)
