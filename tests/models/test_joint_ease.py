"""Joint EASE: the conformance contract, its closed form against a direct solve over both categories'
features, the source weight's two ends, and cold-start users scored from their source history."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from xcatrec.testing import RecommenderConformance, with_cold_users

from conftest import make_tiny_dataset
from xcatrec.errors import ConfigError
from xcatrec.models import make_model
from xcatrec.models.ease import ease_weights
from xcatrec.models.joint_ease import JointEASE, JointEASEConfig


class TestJointEASEConformance(RecommenderConformance):
    model_class = JointEASE

    def make_config(self):
        return JointEASEConfig(lam=10.0)


def test_target_columns_match_a_direct_constrained_solve():
    rng = np.random.default_rng(1)
    z = (rng.random((60, 9)) < 0.3).astype(np.float64)
    z[:, 5:] *= 0.5  # a weighted source block
    lam, targets = 2.0, np.arange(5)
    b = ease_weights(sp.csr_matrix(z), lam, columns=targets)
    assert b.shape == (9, 5)
    g = z.T @ z
    for j in targets:
        others = [i for i in range(9) if i != j]
        direct = np.linalg.solve(g[np.ix_(others, others)] + lam * np.eye(8), g[others, j])
        np.testing.assert_allclose(b[others, j], direct, rtol=1e-4, atol=1e-5)
        assert b[j, j] == 0.0


def test_scores_are_joint_features_times_weights():
    ds = make_tiny_dataset()
    model = make_model("joint-ease", ds.sizes, lam=5.0, source_weight=0.5, max_items=0, max_source_items=0)
    model.fit(ds)
    z = sp.hstack([ds.matrix("target", "train"), 0.5 * ds.matrix("source", "train")]).tocsr()
    expected = z[[0, 3]] @ ease_weights(z, 5.0, columns=np.arange(ds.target.n_items))
    np.testing.assert_allclose(model.score([0, 3]), expected, rtol=1e-4, atol=1e-6)


def test_weight_zero_is_ease_and_the_source_changes_scores_otherwise():
    ds = make_tiny_dataset()
    ease = make_model("ease", ds.sizes, lam=5.0, max_items=0)
    zero = make_model("joint-ease", ds.sizes, lam=5.0, max_items=0, source_weight=0.0)
    one = make_model("joint-ease", ds.sizes, lam=5.0, max_items=0, source_weight=1.0)
    for m in (ease, zero, one):
        m.fit(ds)
    np.testing.assert_allclose(zero.score([0, 1, 2]), ease.score([0, 1, 2]), rtol=1e-5)
    assert not np.allclose(one.score([0, 1, 2]), ease.score([0, 1, 2]))


def test_a_user_without_target_history_is_scored_from_the_source_alone():
    ds = with_cold_users(make_tiny_dataset())
    model = make_model("joint-ease", ds.sizes, lam=5.0, max_items=0, max_source_items=0)
    model.fit(ds)
    cold = np.arange(3)
    assert len(cold)
    scores = model.score(cold)
    xs = ds.matrix("source", "train")[cold].toarray()
    np.testing.assert_allclose(scores, xs @ model.weights[ds.target.n_items:], rtol=1e-4, atol=1e-6)
    assert np.ptp(scores, axis=1).min() > 0  # the source history ranks the items


@pytest.mark.parametrize("bad", [{"source_weight": -1.0}, {"source_weight": float("nan")}, {"max_source_items": -2},
                                 {"max_source_items": 1.5}, {"lam": 0}])
def test_bad_settings_are_clear_errors(bad):
    with pytest.raises(ConfigError):
        JointEASEConfig(**bad)
