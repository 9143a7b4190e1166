"""explain(): per-history-item terms of a neighbourhood score, checked by hand and against score()."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_tiny_dataset

from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab
from xcatrec.errors import ConfigError, UnknownIdError
from xcatrec.models.cross_itemknn import CrossItemKNN, CrossItemKNNConfig, SourceOnlyKNN
from xcatrec.models.explain import explain, score_by_domain
from xcatrec.models.itemknn import ItemKNN, ItemKNNConfig
from xcatrec.models.popularity import Popularity


def _hand_dataset() -> CrossDomainDataset:
    """u0: s0 t0 | u1: s0 s1 t0 t1 | u2: s1 t1 | u3: s0 only; raw ids are letters."""
    source = Domain("source", Vocab(np.array(["sA", "sB"]), "item"), Interactions([0, 1, 1, 2, 3], [0, 0, 1, 1, 0]),
                    Interactions.empty(), Interactions.empty())
    target = Domain("target", Vocab(np.array(["tA", "tB"]), "item"), Interactions([0, 1, 1, 2], [0, 0, 1, 1]),
                    Interactions.empty(), Interactions.empty())
    return CrossDomainDataset("hand", Vocab.range(4, "user"), source, target, "loo")


def test_hand_computed_terms_sum_to_the_score():
    ds = _hand_dataset()
    model = CrossItemKNN(ds.sizes, CrossItemKNNConfig(k=5, shrink=0.0, source_weight=0.5, popularity_tiebreak=False))
    model.fit(ds)
    # sim(s0, t1) = 1/sqrt6, sim(s1, t1) = 1, sim(t0, t1) = 1/2; t1 is not its own neighbour.
    ex = explain(model, 1, 1, dataset=ds)
    terms = ex.contributions
    assert list(zip(terms.domain, terms.item)) == [("source", 1), ("target", 0), ("source", 0)]
    assert list(terms.raw_item) == ["sB", "tA", "sA"]
    np.testing.assert_allclose(terms.weight, [0.5, 1.0, 0.5])
    np.testing.assert_allclose(terms.similarity, [1.0, 0.5, 1 / np.sqrt(6)], rtol=1e-6)
    np.testing.assert_allclose(terms.contribution, [0.5, 0.5, 0.5 / np.sqrt(6)], rtol=1e-6)
    assert ex.tiebreak == 0.0
    np.testing.assert_allclose(ex.score, 1 + 0.5 / np.sqrt(6), rtol=1e-6)
    np.testing.assert_allclose(terms.contribution.sum(), ex.score, rtol=1e-6)
    np.testing.assert_allclose(terms.share.sum(), 1.0)
    np.testing.assert_allclose(ex.by_domain().to_numpy(), [0.5 + 0.5 / np.sqrt(6), 0.5], rtol=1e-6)
    parts = score_by_domain(model, [1, 3], [1, 0])
    np.testing.assert_allclose(parts[["source", "target"]].to_numpy(),
                               [[0.5 + 0.5 / np.sqrt(6), 0.5], [0.5 * 2 / np.sqrt(6), 0.0]], rtol=1e-6)


@pytest.mark.parametrize("model_class, config, domains", [
    (CrossItemKNN, CrossItemKNNConfig(k=10, shrink=5.0, source_weight=0.7), {"source", "target"}),
    (SourceOnlyKNN, CrossItemKNNConfig(k=10, shrink=5.0), {"source"}),
    (ItemKNN, ItemKNNConfig(k=10, shrink=5.0), {"target"}),
])
def test_terms_plus_tiebreak_equal_score_for_every_neighbourhood_model(model_class, config, domains):
    ds = make_tiny_dataset()
    model = model_class(ds.sizes, config)
    model.fit(ds)
    for user in (0, 7, 31):
        scores = model.score([user])[0]
        for item in (int(np.argmax(scores)), 3):
            ex = explain(model, user, item)
            assert ex.tiebreak >= 0.0
            np.testing.assert_allclose(ex.contributions.contribution.sum() + ex.tiebreak, scores[item], rtol=1e-5)
            assert set(ex.contributions.domain) <= domains
            assert ex.contributions.contribution.is_monotonic_decreasing
            assert ex.contributions.raw_item.isna().all()
    top = explain(model, 0, int(np.argmax(model.score([0])[0])), top=2)
    assert len(top.contributions) <= 2


@pytest.mark.parametrize("model_class, config", [
    (CrossItemKNN, CrossItemKNNConfig(k=10, shrink=5.0, source_weight=0.7)),
    (SourceOnlyKNN, CrossItemKNNConfig(k=10, shrink=5.0)),
    (ItemKNN, ItemKNNConfig(k=10, shrink=5.0)),
])
def test_score_by_domain_matches_explain_and_score(model_class, config):
    ds = make_tiny_dataset()
    model = model_class(ds.sizes, config)
    model.fit(ds)
    users = np.arange(ds.n_users)
    items = model.recommend(users, k=1)[:, 0]
    parts = score_by_domain(model, users, items)
    np.testing.assert_allclose(parts.source + parts.target + parts.tiebreak, parts.score, rtol=1e-5)
    np.testing.assert_allclose(parts.score, model.score(users)[users, items], rtol=1e-6)
    for u in (0, 5, 17):
        np.testing.assert_allclose(parts.loc[u, ["source", "target"]].to_numpy(dtype=float),
                                   explain(model, u, items[u]).by_domain().to_numpy(), rtol=1e-5, atol=1e-9)
    if model_class is ItemKNN:
        assert (parts.source == 0).all()
    if model_class is SourceOnlyKNN:
        assert (parts.target == 0).all()
    with pytest.raises(ConfigError, match="paired"):
        score_by_domain(model, [0, 1], [0])


def test_source_terms_are_the_users_source_items():
    ds = make_tiny_dataset()
    model = CrossItemKNN(ds.sizes, CrossItemKNNConfig(k=10, shrink=5.0))
    model.fit(ds)
    ex = explain(model, 4, 2)
    bought = set(ds.source.train.items[ds.source.train.users == 4].tolist())
    assert set(ex.contributions.loc[ex.contributions.domain == "source", "item"]) <= bought


def test_clear_errors():
    ds = make_tiny_dataset()
    with pytest.raises(ConfigError, match="not been trained"):
        explain(CrossItemKNN(ds.sizes), 0, 0)
    pop = Popularity(ds.sizes)
    pop.fit(ds)
    with pytest.raises(ConfigError, match="neighbourhood"):
        explain(pop, 0, 0)
    model = ItemKNN(ds.sizes)
    model.fit(ds)
    with pytest.raises(UnknownIdError):
        explain(model, ds.n_users, 0)
    with pytest.raises(UnknownIdError):
        explain(model, 0, ds.target.n_items)
