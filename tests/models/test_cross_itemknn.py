"""Cross-domain item kNN and its zero-shot variant "source-only": contract, hand values, cold start."""

from __future__ import annotations

import time

import numpy as np
import pytest
from xcatrec.testing import RecommenderConformance, with_cold_users
from conftest import make_tiny_dataset

from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab
from xcatrec.errors import ConfigError
from xcatrec.evaluation import evaluate
from xcatrec.models.cross_itemknn import CrossItemKNN, CrossItemKNNConfig, SourceOnlyKNN
from xcatrec.training.selection import ndcg_validation
from xcatrec.models.itemknn import ItemKNN, ItemKNNConfig
from xcatrec.models.popularity import Popularity


class TestCrossItemKNNConformance(RecommenderConformance):
    model_class = CrossItemKNN

    def make_config(self):
        return CrossItemKNNConfig(k=20, shrink=10.0)


class TestSourceOnlyConformance(RecommenderConformance):
    model_class = SourceOnlyKNN

    def make_config(self):
        return CrossItemKNNConfig(k=20, shrink=10.0)


def _hand_dataset() -> CrossDomainDataset:
    """u0: s0 t0 | u1: s0 s1 t0 t1 | u2: s1 t1 | u3: s0 only (cold in the target)."""
    source = Domain("source", Vocab.range(2, "item"), Interactions([0, 1, 1, 2, 3], [0, 0, 1, 1, 0]),
                    Interactions.empty(), Interactions.empty())
    target = Domain("target", Vocab.range(2, "item"), Interactions([0, 1, 1, 2], [0, 0, 1, 1]),
                    Interactions.empty(), Interactions.empty())
    return CrossDomainDataset("hand", Vocab.range(4, "user"), source, target, "loo")


def test_hand_computed_cross_scores():
    ds = _hand_dataset()
    cfg = CrossItemKNNConfig(k=5, shrink=0.0, source_weight=0.5, popularity_tiebreak=False)
    cross = CrossItemKNN(ds.sizes, cfg)
    cross.fit(ds)
    # |s0| = sqrt3 (u0, u1, u3), every other item sqrt2. sim(s0, t0) = 2/sqrt6, sim(s0, t1) = 1/sqrt6,
    # sim(s1, t0) = 1/2, sim(s1, t1) = 1, sim(t0, t1) = 1/2 (an item is not its own neighbour).
    r6 = np.sqrt(6)
    np.testing.assert_allclose(cross.score([0, 3]), [[0.5 * 2 / r6, 0.5 * 1 / r6 + 0.5],
                                                     [0.5 * 2 / r6, 0.5 * 1 / r6]], rtol=1e-6)
    only = SourceOnlyKNN(ds.sizes, cfg)
    only.fit(ds)
    np.testing.assert_allclose(only.score([0, 1]), [[2 / r6, 1 / r6], [2 / r6 + 0.5, 1 / r6 + 1]], rtol=1e-6)
    assert not any(key.startswith(("sim_target", "hist_target")) for key in only.get_state())


def test_source_weight_mixes_the_two_histories_and_zero_gives_itemknn():
    ds = make_tiny_dataset()
    users = np.arange(ds.n_users)
    opts = dict(k=15, shrink=5.0, popularity_tiebreak=False)
    scores = {}
    for w in (0.0, 2.0):
        model = CrossItemKNN(ds.sizes, CrossItemKNNConfig(source_weight=w, **opts))
        model.fit(ds)
        scores[w] = model.score(users)
    target_only = ItemKNN(ds.sizes, ItemKNNConfig(**opts))
    target_only.fit(ds)
    np.testing.assert_allclose(scores[0.0], target_only.score(users), rtol=1e-5, atol=1e-6)
    only = SourceOnlyKNN(ds.sizes, CrossItemKNNConfig(**opts))
    only.fit(ds)
    np.testing.assert_allclose(scores[2.0] - scores[0.0], 2 * only.score(users), rtol=1e-4, atol=1e-5)


def test_source_weight_is_chosen_on_validation_and_saved(tmp_path):
    ds = make_tiny_dataset()
    opts = dict(k=15, shrink=5.0)
    grid = (0.0, 0.5, 4.0)
    model = CrossItemKNN(ds.sizes, CrossItemKNNConfig(source_weights=list(grid), **opts))  # a JSON list works
    report = model.fit(ds)
    assert report.history["source_weight"] == list(grid)
    # each candidate's validation score is that of a model fixed at that weight
    expected = []
    for w in grid:
        fixed = CrossItemKNN(ds.sizes, CrossItemKNNConfig(source_weight=w, **opts))
        fixed.fit(ds)
        expected.append(ndcg_validation(fixed, ds, max_users=3000, seed=0).score())
    np.testing.assert_allclose(report.history["valid_ndcg@10"], expected, rtol=1e-6)
    assert model.source_weight == grid[int(np.argmax(expected))]
    fixed = CrossItemKNN(ds.sizes, CrossItemKNNConfig(source_weight=model.source_weight, **opts))
    fixed.fit(ds)
    users = np.arange(ds.n_users)
    np.testing.assert_allclose(model.score(users), fixed.score(users), rtol=1e-6)
    model.save(tmp_path / "m")
    loaded = CrossItemKNN.load(tmp_path / "m")
    assert loaded.source_weight == model.source_weight
    np.testing.assert_allclose(loaded.score(users), model.score(users), rtol=1e-6)


def test_the_tiny_taste_groups_choose_a_positive_source_weight():
    """On the taste-group data the source history carries the signal, so validation must not pick 0."""
    ds = make_tiny_dataset()
    model = CrossItemKNN(ds.sizes, CrossItemKNNConfig(source_weights=(0.0, 1.0, 4.0), k=15, shrink=5.0))
    report = model.fit(ds)
    assert max(report.history["valid_ndcg@10"][1:]) > report.history["valid_ndcg@10"][0]
    assert model.source_weight > 0


@pytest.mark.parametrize("bad", [dict(source_weights=(1.0, -1.0)), dict(source_weights=(float("nan"),)),
                                 dict(source_weight=float("inf")), dict(valid_users=-1), dict(valid_users=2.5)])
def test_bad_source_weight_options_are_clear_errors(bad):
    with pytest.raises(ConfigError, match="source weights|valid_users"):
        CrossItemKNNConfig(**bad)


def _with_cold_users(n_cold: int = 10) -> CrossDomainDataset:
    """The tiny data set with the whole target history of users 0..n_cold-1 hidden (moved to test)."""
    return with_cold_users(make_tiny_dataset(), n_cold)


@pytest.mark.parametrize("cls", [CrossItemKNN, SourceOnlyKNN])
def test_cold_start_users_get_their_taste_group_from_the_source_history(cls):
    ds = _with_cold_users()
    model = cls(ds.sizes, CrossItemKNNConfig(k=20, shrink=10.0))
    model.fit(ds)
    cold = ds.cold_users
    assert ds.matrix("target", "known")[cold].nnz == 0
    recs = model.recommend(cold, 5)
    half = ds.target.n_items // 2
    group = cold % 2  # the tiny data set's taste groups: group 0 likes the first half of the items
    assert np.all((recs >= half) == group[:, None].astype(bool)), recs
    knn = evaluate(model, ds, ks=(10,), users=cold)["ndcg@10"]
    pop = Popularity(ds.sizes)
    pop.fit(ds)
    assert knn > evaluate(pop, ds, ks=(10,), users=cold)["ndcg@10"] + 0.15


@pytest.mark.parametrize("cls", [CrossItemKNN, SourceOnlyKNN])
def test_beats_popularity_on_the_tiny_taste_groups(cls):
    ds = make_tiny_dataset()
    model = cls(ds.sizes, CrossItemKNNConfig(k=20, shrink=10.0))
    model.fit(ds)
    pop = Popularity(ds.sizes)
    pop.fit(ds)
    ndcg = {m.name: evaluate(m, ds, protocol="full", ks=(10,), part="test")["ndcg@10"] for m in (model, pop)}
    assert ndcg[cls.name] > ndcg["popularity"] + 0.15, ndcg


def test_names_phases_and_config_checks():
    assert (CrossItemKNN.name, SourceOnlyKNN.name) == ("cross-itemknn", "source-only")
    assert [p.data for p in CrossItemKNN.phases] == ["both"] == [p.data for p in SourceOnlyKNN.phases]
    with pytest.raises(ConfigError, match="source_weight"):
        CrossItemKNNConfig(source_weight=-1.0)
    with pytest.raises(ConfigError, match="k must be"):
        CrossItemKNNConfig(k=2.5)
    with pytest.raises(ConfigError, match="CrossItemKNNConfig"):
        CrossItemKNN(_hand_dataset().sizes, ItemKNNConfig())


@pytest.mark.slow
def test_real_electronics_to_clothing_fits_fast_and_beats_popularity(shared_data_dir):
    from xcatrec.data import load_dataset

    ds = load_dataset("amazon-elec-cloth", data_dir=shared_data_dir)
    for cls in (SourceOnlyKNN, CrossItemKNN):
        start = time.process_time()  # CPU seconds: wall time on a shared machine measures the neighbours
        cross = cls(ds.sizes)
        cross.fit(ds)
        assert time.process_time() - start < 20.0, cls.name  # a guard against a quadratic fit, not a benchmark
    pop = Popularity(ds.sizes)
    pop.fit(ds)
    got = {m.name: evaluate(m, ds, ks=(10,), part="valid")["ndcg@10"] for m in (cross, pop)}
    assert got["cross-itemknn"] > 1.2 * got["popularity"], got  # measured: 0.0090 vs 0.0045
