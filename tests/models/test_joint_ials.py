"""Joint iALS: the conformance contract, the objective decreasing over sweeps, the source block's
weight, and cold-start users served from their source history."""

from __future__ import annotations

import numpy as np
import pytest
from implicit.cpu.als import AlternatingLeastSquares
from xcatrec.testing import RecommenderConformance, with_cold_users

from conftest import make_tiny_dataset
from xcatrec.errors import ConfigError
from xcatrec.evaluation import evaluate
from xcatrec.models import make_model
from xcatrec.models.joint_ials import JointALS, JointALSConfig, ials_loss


class TestJointALSConformance(RecommenderConformance):
    model_class = JointALS

    def make_config(self):
        return JointALSConfig(factors=8, iterations=3)


def test_the_ials_objective_decreases_over_sweeps():
    ds = make_tiny_dataset()
    model = make_model("joint-ials", ds.sizes, factors=8, iterations=1, source_weight=0.5, alpha=4.0,
                       regularization=0.1)
    z = model.training_matrix(ds)
    assert z.shape == (ds.n_users, ds.target.n_items + ds.source.n_items)
    als = AlternatingLeastSquares(factors=8, regularization=0.1, alpha=4.0, iterations=1, random_state=0,
                                  num_threads=1)
    losses = []
    for _ in range(6):
        als.fit(z, show_progress=False)  # continues from the current factors
        losses.append(ials_loss(z, als.user_factors, als.item_factors, alpha=4.0, regularization=0.1))
    assert losses[-1] < losses[0]
    assert all(b <= a * 1.001 for a, b in zip(losses, losses[1:])), losses


def test_the_source_block_is_weighted_and_dropped_at_weight_zero():
    ds = make_tiny_dataset()
    half = make_model("joint-ials", ds.sizes, source_weight=0.5).training_matrix(ds)
    n_t = ds.target.n_items
    np.testing.assert_allclose(half[:, n_t:].toarray(), 0.5 * ds.matrix("source", "train").toarray())
    np.testing.assert_allclose(half[:, :n_t].toarray(), ds.matrix("target", "train").toarray())
    zero = make_model("joint-ials", ds.sizes, source_weight=0.0).training_matrix(ds)
    assert zero.shape == (ds.n_users, n_t)


def test_cold_start_users_beat_popularity_from_their_source_history():
    ds = with_cold_users(make_tiny_dataset(n_users=120), n_cold=20)
    model = make_model("joint-ials", ds.sizes, factors=8, iterations=10, source_weight=1.0, alpha=5.0,
                       regularization=0.1)
    model.fit(ds)
    pop = make_model("popularity", ds.sizes)
    pop.fit(ds)
    cold = np.arange(20)
    assert model.item_factors.shape[0] == ds.target.n_items
    assert (evaluate(model, ds, ks=(5,), users=cold)["ndcg@5"]
            > evaluate(pop, ds, ks=(5,), users=cold)["ndcg@5"])


@pytest.mark.parametrize("bad", [{"source_weight": -0.1}, {"source_weight": float("inf")}, {"source_weight": True}])
def test_bad_settings_are_clear_errors(bad):
    with pytest.raises(ConfigError):
        JointALSConfig(**bad)
