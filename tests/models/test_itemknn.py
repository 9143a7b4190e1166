"""Item-based kNN: the contract, hand-computed similarities, pruning, weighting and ranking quality."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse as sp
from xcatrec.testing import RecommenderConformance
from conftest import make_tiny_dataset

from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab
from xcatrec.errors import ConfigError, DataError
from xcatrec.evaluation import evaluate
from xcatrec.models.itemknn import ItemKNN, ItemKNNConfig, item_similarity, weight_features
from xcatrec.models.popularity import Popularity


class TestItemKNNConformance(RecommenderConformance):
    model_class = ItemKNN

    def make_config(self):
        return ItemKNNConfig(k=20, shrink=10.0)


# 3 users x 3 items: u0 {0, 1}, u1 {0, 1, 2}, u2 {2}. Every item has 2 users (norm sqrt 2);
# co-occurrences: (0, 1) -> 2, (0, 2) -> 1, (1, 2) -> 1.
X3 = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=np.float32))


def _hand_dataset() -> CrossDomainDataset:
    coo = X3.tocoo()
    target = Domain("target", Vocab.range(3, "item"), Interactions(coo.row, coo.col),
                    Interactions.empty(), Interactions.empty())
    source = Domain("source", Vocab.range(1, "item"), Interactions([0], [0]), Interactions.empty(),
                    Interactions.empty())
    return CrossDomainDataset("hand", Vocab.range(3, "user"), source, target, "loo")


def test_hand_computed_cosine_without_and_with_shrinkage():
    np.testing.assert_allclose(item_similarity(X3, k=5, shrink=0).toarray(),
                               [[0, 1, 0.5], [1, 0, 0.5], [0.5, 0.5, 0]], rtol=1e-6)
    # shrink 1: 2 / (sqrt2 * sqrt2 + 1) = 2/3 and 1 / 3
    np.testing.assert_allclose(item_similarity(X3, k=5, shrink=1).toarray(),
                               [[0, 2 / 3, 1 / 3], [2 / 3, 0, 1 / 3], [1 / 3, 1 / 3, 0]], rtol=1e-6)
    # unnormalised: raw co-occurrence counts, diagonal dropped
    np.testing.assert_allclose(item_similarity(X3, k=5, normalize=False).toarray(),
                               [[0, 2, 1], [2, 0, 1], [1, 1, 0]])


def test_model_scores_are_history_times_similarity():
    ds = _hand_dataset()
    model = ItemKNN(ds.sizes, ItemKNNConfig(k=5, shrink=1.0, popularity_tiebreak=False))
    model.fit(ds)
    # u0 has items 0 and 1: item 0 gets sim(1, 0) = 2/3, item 2 gets 1/3 + 1/3
    np.testing.assert_allclose(model.score([0, 2]), [[2 / 3, 2 / 3, 2 / 3], [1 / 3, 1 / 3, 0]], rtol=1e-6)
    np.testing.assert_allclose(model.score([2], [[1, 2]]), [[1 / 3, 0]], rtol=1e-6)


def test_asymmetric_cosine_uses_alpha_on_the_neighbour_norm():
    x = sp.csr_matrix(np.array([[1, 1], [1, 0], [1, 0], [1, 0]], dtype=np.float32))  # |r0|^2 = 4, |r1|^2 = 1
    sim = item_similarity(x, k=5, shrink=0, alpha=1.0).toarray()
    # sim(i, j) = c / (|r_i|^2alpha |r_j|^2(1-alpha)): with alpha 1, c / |r_i|^2 = P(j | i)
    np.testing.assert_allclose(sim, [[0, 1 / 4], [1, 0]], rtol=1e-6)


def test_shrinkage_demotes_rare_co_occurrences():
    # items 0, 1: one shared user, each seen once (cosine 1); items 2, 3: 10 shared users out of 20 each
    rows = [0, 0] + list(range(1, 11)) * 2 + list(range(11, 21)) + list(range(21, 31))
    cols = [0, 1] + [2] * 10 + [3] * 10 + [2] * 10 + [3] * 10
    x = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(31, 4))
    plain = item_similarity(x, k=5, shrink=0).toarray()
    shrunk = item_similarity(x, k=5, shrink=10).toarray()
    assert plain[0, 1] == pytest.approx(1.0) and plain[2, 3] == pytest.approx(0.5)
    assert shrunk[0, 1] == pytest.approx(1 / 11) and shrunk[2, 3] == pytest.approx(10 / 30)
    assert shrunk[0, 1] < shrunk[2, 3]


def test_topk_keeps_the_largest_per_column_like_a_dense_reference():
    rng = np.random.default_rng(0)
    x = sp.random(200, 60, density=0.1, random_state=1, data_rvs=lambda n: rng.uniform(0.5, 2, n)).tocsr()
    k, shrink = 7, 3.0
    dense = x.toarray()
    norms = np.sqrt((dense ** 2).sum(axis=0))
    ref = dense.T @ dense / (norms[:, None] * norms[None, :] + shrink)
    np.fill_diagonal(ref, 0)
    ref[ref < np.sort(ref, axis=0)[-k][None, :]] = 0  # keep the k largest per column
    got = item_similarity(x, k=k, shrink=shrink)
    np.testing.assert_allclose(got.toarray(), ref, rtol=1e-5, atol=1e-7)
    assert np.diff(got.tocsc().indptr).max() == k
    chunked = item_similarity(x, k=k, shrink=shrink, block_entries=50)  # many column blocks
    np.testing.assert_array_equal(chunked.toarray(), got.toarray())


def test_topk_ties_keep_the_first_items():
    sim = item_similarity(X3, k=1, shrink=1).toarray()
    # column 2 has two neighbours with 1/3: the lower index (item 0) stays
    np.testing.assert_allclose(sim[:, 2], [1 / 3, 0, 0], rtol=1e-6)


def test_tfidf_and_bm25_weights():
    x = sp.csr_matrix(np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 1]], dtype=np.float32))
    idf = np.log(4 / (1 + np.array([1, 2, 3])))  # per user: log(n_items / (1 + degree))
    np.testing.assert_allclose(weight_features(x, "tfidf").toarray(),
                               x.toarray() * np.maximum(idf, 0)[:, None], rtol=1e-6)
    item_len = np.array([2, 2, 1, 1.0])
    norm = 0.25 + 0.75 * item_len / item_len.mean()
    want = x.toarray() * 2.2 / (1.2 * norm[None, :] + 1) * np.maximum(idf, 0)[:, None]
    np.testing.assert_allclose(weight_features(x, "bm25").toarray(), want, rtol=1e-6)
    np.testing.assert_array_equal(weight_features(x, "none").toarray(), x.toarray())


def test_popularity_breaks_ties_for_a_user_without_history():
    ds = make_tiny_dataset()
    keep = ds.target.train.users != 0
    target = Domain("target", ds.target.items, ds.target.train.subset(keep), ds.target.valid, ds.target.test)
    ds = CrossDomainDataset("tiny", ds.users, ds.source, target, "loo")
    model = ItemKNN(ds.sizes, ItemKNNConfig(k=20))
    model.fit(ds)
    counts = np.bincount(target.train.items, minlength=ds.target.n_items)
    scores = model.score([0])[0]
    assert 0 < scores.max() <= 1.1e-6
    assert np.all(np.diff(counts[np.argsort(-scores, kind="stable")]) <= 0)
    flat = ItemKNN(ds.sizes, ItemKNNConfig(k=20, popularity_tiebreak=False))
    flat.fit(ds)
    assert not flat.score([0]).any()


def test_itemknn_beats_popularity_on_the_tiny_taste_groups():
    ds = make_tiny_dataset()
    knn = ItemKNN(ds.sizes, ItemKNNConfig(k=20, shrink=10))
    knn.fit(ds)
    pop = Popularity(ds.sizes)
    pop.fit(ds)
    ndcg = {m.name: evaluate(m, ds, protocol="full", ks=(10,), part="test")["ndcg@10"] for m in (knn, pop)}
    assert ndcg["itemknn"] > ndcg["popularity"] + 0.15, ndcg


def test_bad_config_and_state_raise_clear_errors():
    with pytest.raises(ConfigError, match="k must be"):
        ItemKNNConfig(k=0)
    with pytest.raises(ConfigError, match="shrink"):
        ItemKNNConfig(shrink=-1)
    with pytest.raises(ConfigError, match="shrink must be a number"):
        ItemKNNConfig(shrink="10")
    with pytest.raises(ConfigError, match="alpha"):
        ItemKNNConfig(alpha=1.5)
    with pytest.raises(ConfigError, match="weighting 'idf'.*bm25"):
        ItemKNNConfig(weighting="idf")
    ds = _hand_dataset()
    model = ItemKNN(ds.sizes)
    with pytest.raises(ConfigError, match="not been trained"):
        model.score([0])
    with pytest.raises(DataError, match="lack the arrays"):
        model.set_state({"popularity": np.ones(3, np.float32)})
    model.fit(ds)
    state = model.get_state()
    with pytest.raises(DataError, match="popularity"):
        model.set_state({**state, "popularity": np.ones(5, np.float32)})
    with pytest.raises(DataError, match="3 x 3"):
        model.set_state({**state, "sim_indptr": state["sim_indptr"][:-1]})


@pytest.mark.slow
def test_real_electronics_to_clothing_fits_fast_and_beats_popularity(shared_data_dir):
    from xcatrec.data import load_dataset

    ds = load_dataset("amazon-elec-cloth", data_dir=shared_data_dir)
    start = time.process_time()  # CPU seconds: wall time on a shared machine also measures the neighbours
    model = ItemKNN(ds.sizes)
    model.fit(ds)
    assert time.process_time() - start < 10.0  # a guard against a quadratic fit, not a benchmark
    pop = Popularity(ds.sizes)
    pop.fit(ds)
    got = {m.name: evaluate(m, ds, ks=(10,), part="valid")["ndcg@10"] for m in (model, pop)}
    assert got["itemknn"] > 1.2 * got["popularity"], got  # measured: 0.0071 vs 0.0045
