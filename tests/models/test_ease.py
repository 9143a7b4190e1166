"""EASE: the conformance contract, its closed form against a direct solve, and the item cap."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from xcatrec.testing import RecommenderConformance

from conftest import make_tiny_dataset
from xcatrec.errors import ConfigError
from xcatrec.models import make_model
from xcatrec.models.ease import EASE, OUTSIDE, EASEConfig, ease_weights


class TestEASEConformance(RecommenderConformance):
    model_class = EASE

    def make_config(self):
        return EASEConfig(lam=10.0)


def test_closed_form_matches_a_direct_constrained_solve():
    rng = np.random.default_rng(0)
    x = (rng.random((40, 7)) < 0.35).astype(np.float64)
    lam = 3.0
    b = ease_weights(sp.csr_matrix(x), lam)
    g = x.T @ x
    # direct: for each item j, ridge regression of column j on the other columns (diag(B) = 0)
    for j in range(7):
        others = [i for i in range(7) if i != j]
        a = g[np.ix_(others, others)] + lam * np.eye(6)
        direct = np.linalg.solve(a, g[others, j])
        np.testing.assert_allclose(b[others, j], direct, rtol=1e-4, atol=1e-5)
        assert b[j, j] == 0.0


def test_scores_are_history_times_weights_and_capped_items_rank_last():
    ds = make_tiny_dataset()
    model = make_model("ease", ds.sizes, lam=5.0, max_items=10)
    model.fit(ds)
    x = ds.matrix("target", "train")
    counts = np.diff(x.tocsc().indptr)
    assert len(model.modelled) == 10 and set(model.modelled) == set(np.argsort(-counts, kind="stable")[:10])
    scores = model.score([0, 1])
    expected = x[[0, 1]][:, model.modelled] @ ease_weights(x[:, model.modelled], 5.0)
    np.testing.assert_allclose(scores[:, model.modelled], expected, rtol=1e-5)
    outside = np.setdiff1d(np.arange(ds.target.n_items), model.modelled)
    assert scores[:, outside].max() < scores[:, model.modelled].min()
    assert np.all(scores[:, outside] >= OUTSIDE)


@pytest.mark.parametrize("bad", [{"lam": 0}, {"lam": -1.0}, {"lam": float("inf")}, {"max_items": -1},
                                 {"max_items": 2.5}])
def test_bad_settings_are_clear_errors(bad):
    with pytest.raises(ConfigError):
        EASEConfig(**bad)
