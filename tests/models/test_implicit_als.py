"""The external peer (implicit's iALS): the model contract, and that it learns the taste groups."""

from __future__ import annotations

import numpy as np
import pytest
from xcatrec.testing import RecommenderConformance

from conftest import make_tiny_dataset
from xcatrec.errors import ConfigError
from xcatrec.evaluation import evaluate
from xcatrec.names import PEERS, TARGET_ONLY
from xcatrec.models import make_model
from xcatrec.models.implicit_als import ImplicitALS, ImplicitALSConfig


class TestImplicitALSConformance(RecommenderConformance):
    model_class = ImplicitALS

    def make_config(self):
        return ImplicitALSConfig(factors=8, iterations=3)


def test_it_learns_the_taste_groups_better_than_popularity():
    ds = make_tiny_dataset(n_users=120)
    als = make_model("implicit-ials", ds.sizes, factors=8, iterations=10, regularization=0.1)
    als.fit(ds)
    pop = make_model("popularity", ds.sizes)
    pop.fit(ds)
    assert evaluate(als, ds, ks=(5,))["ndcg@5"] > evaluate(pop, ds, ks=(5,))["ndcg@5"]


def test_same_seed_same_factors_and_it_is_labelled_a_peer():
    ds = make_tiny_dataset()
    a, b = (make_model("implicit-ials", ds.sizes, factors=8, iterations=3, seed=3) for _ in range(2))
    a.fit(ds), b.fit(ds)
    np.testing.assert_allclose(a.score([0, 1]), b.score([0, 1]), atol=1e-5)
    assert "implicit-ials" in PEERS and "implicit-ials" not in TARGET_ONLY


@pytest.mark.parametrize("bad", [{"factors": 0}, {"iterations": 1.5}, {"alpha": 0}, {"regularization": float("nan")}])
def test_bad_settings_are_clear_errors(bad):
    with pytest.raises(ConfigError):
        ImplicitALSConfig(**bad)
