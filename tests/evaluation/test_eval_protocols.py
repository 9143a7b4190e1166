"""Evaluation protocols on hand-made data where every rank can be worked out by hand.

Micro data set (3 users, 6 target items):

    train: u0 {0, 1}   u1 {2}   u2 {0}
    valid:             u1 {3}
    test:  u0 {2, 1}   u1 {4}           (u2 has no test item and is not evaluated)

Item 1 is both a training and a test item of u0: as a held-out positive it stays a candidate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import make_tiny_dataset
from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab
from xcatrec.errors import ConfigError, DataError, UnknownIdError
from xcatrec.evaluation import PROTOCOLS, UserRanks, evaluate, evaluate_ratings, ranking_metrics, tie_aware_ranks
from xcatrec.evaluation.protocols import _EXCLUDED
from xcatrec.evaluation.candidates import sample_negatives
from xcatrec.core.base import FitReport, Recommender

SCORES = np.array([[0.9, 0.1, 0.5, 0.5, 0.7, 0.2],
                   [0.3, 0.3, 0.9, 0.8, 0.3, 0.1],
                   [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], dtype=np.float32)


class FixedScores(Recommender):
    """A 'model' that returns rows of a fixed score matrix (users x target items)."""

    name = "fixed"

    def __init__(self, sizes, scores) -> None:
        super().__init__(sizes)
        self.matrix = np.asarray(scores, dtype=np.float32)
        self.calls = 0

    def _fit(self, dataset, *, verbose):
        return FitReport()

    def _score_users(self, users):
        self.calls += 1
        return self.matrix[users]

    def get_state(self):
        return {"matrix": self.matrix}

    def set_state(self, state):
        self.matrix = state["matrix"]


class RatingModel(FixedScores):
    def predict_ratings(self, users, items):
        return self.matrix[users, items]


def _inter(pairs, ratings=None) -> Interactions:
    if not pairs:
        return Interactions.empty(with_ratings=ratings is not None)
    u, i = zip(*pairs)
    return Interactions(np.array(u), np.array(i), ratings)


def micro_dataset(test_ratings=None) -> CrossDomainDataset:
    target = Domain("t", Vocab.range(6, "item"), _inter([(0, 0), (0, 1), (1, 2), (2, 0)]), _inter([(1, 3)]),
                    _inter([(0, 2), (0, 1), (1, 4)], test_ratings))
    source = Domain("s", Vocab.range(2, "item"), _inter([(0, 0), (1, 1), (2, 0)]), Interactions.empty(),
                    Interactions.empty())
    return CrossDomainDataset("micro", Vocab.range(3, "user"), source, target, "hand")


def test_full_ranking_by_hand():
    ds = micro_dataset()
    model = FixedScores(ds.sizes, SCORES)
    # u0: item 0 is excluded (known, not a positive); candidates 1..5 (5 items).
    #     item 2 (0.5): item 4 higher, item 3 tied -> rank 1.5; item 1 (0.1): four higher -> rank 4.
    # u1: items 2, 3 excluded; candidates {0, 1, 4, 5}; item 4 (0.3) ties items 0, 1 -> rank 1.0.
    out = evaluate(model, ds, ks=(1, 2))
    assert out["hr@1"] == 0.0
    assert out["hr@2"] == 1.0
    assert out["recall@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert out["precision@2"] == pytest.approx(0.5)
    assert out["f1@2"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert out["ndcg@2"] == pytest.approx((1 / math.log2(3.5) / (1 + 1 / math.log2(3)) + 1 / math.log2(3)) / 2)
    assert out["mrr"] == pytest.approx((1 / 2.5 + 1 / 2) / 2)
    # AUC u0: negatives 3, 4, 5: item 2 beats 5 and ties 3 -> 1.5/3; item 1 beats none -> 0; mean 0.25
    #     u1: negatives 0, 1, 5: beats 5, ties 0 and 1 -> 2/3
    assert out["auc"] == pytest.approx((0.25 + 2 / 3) / 2)
    assert set(out) == {f"{m}@{k}" for m in ("hr", "recall", "precision", "f1", "ndcg") for k in (1, 2)} | {
        "mrr", "auc"}


def test_valid_part_excludes_train_only():
    ds = micro_dataset()
    # u1's valid item 3 (0.8) against candidates {0, 1, 3, 4, 5}: item 2 (0.9) is train, excluded -> rank 0
    out = evaluate(FixedScores(ds.sizes, SCORES), ds, part="valid", ks=(1,))
    assert out == pytest.approx({"hr@1": 1.0, "recall@1": 1.0, "precision@1": 1.0, "f1@1": 1.0, "ndcg@1": 1.0,
                                 "mrr": 1.0, "auc": 1.0})


def test_per_user_and_user_restriction():
    ds = micro_dataset()
    model = FixedScores(ds.sizes, SCORES)
    means, table = evaluate(model, ds, ks=(2,), per_user=True)
    assert table["user"].tolist() == [0, 1]  # u2 has no test item
    assert table["mrr"].tolist() == pytest.approx([0.4, 0.5])
    assert means["mrr"] == pytest.approx(table["mrr"].mean())
    only_u1 = evaluate(model, ds, ks=(2,), users=[1, 2])  # u2 is dropped: no positive
    assert only_u1["mrr"] == pytest.approx(0.5)
    with pytest.raises(DataError, match="No user"):
        evaluate(model, ds, users=[2])
    with pytest.raises(UnknownIdError):
        evaluate(model, ds, users=[7])


def test_constant_scores_give_middle_ranks(tiny_dataset):
    ds = tiny_dataset
    model = FixedScores(ds.sizes, np.ones((ds.n_users, ds.target.n_items)))
    _, table = evaluate(model, ds, ks=(10,), per_user=True)
    # each user has 5 known items (4 train, 1 valid): 25 candidates, all tied -> rank 12 for everybody
    n_cand = ds.target.n_items - 5
    assert table["mrr"].to_numpy() == pytest.approx(1 / (0.5 * (n_cand - 1) + 1))
    assert table["auc"].to_numpy() == pytest.approx(0.5)
    assert table["hr@10"].sum() == 0


def _reference(scores, ds, part, ks):
    """Per-user metrics by the definition, one user at a time (slow, obviously correct)."""
    pos_m = ds.matrix("target", part)
    known = ds.matrix("target", _EXCLUDED[part])
    rank_lists, n_cand, users = [], [], []
    for u in range(ds.n_users):
        pos = pos_m[u].indices
        if len(pos) == 0:
            continue
        excluded = np.setdiff1d(known[u].indices, pos)
        cand = np.setdiff1d(np.arange(ds.target.n_items), excluded)
        rank_lists.append(tie_aware_ranks(scores[u, cand], np.searchsorted(cand, pos)))
        n_cand.append(len(cand))
        users.append(u)
    return users, ranking_metrics(UserRanks.from_lists(rank_lists, n_cand), ks)


def _split_dataset(seed=1) -> CrossDomainDataset:
    """Tiny data with several test and valid items per user and test items that repeat train items."""
    base = make_tiny_dataset(n_users=40, n_tgt=25, per_user=8, seed=seed)
    rows = base.target.train.concat(base.target.valid).concat(base.target.test)
    rng = np.random.default_rng(seed)
    part = rng.integers(0, 3, len(rows))  # 0 train, 1 valid, 2 test
    extra = rows.subset(rng.random(len(rows)) < 0.15)  # a few train items also held out as test items
    t = base.target
    target = Domain(t.name, t.items, rows.subset(part == 0), rows.subset(part == 1),
                    rows.subset(part == 2).concat(extra))
    return CrossDomainDataset("split", base.users, base.source, target, "random")


@pytest.mark.parametrize("part", ["test", "valid"])
def test_full_ranking_matches_reference_with_ties(part):
    ds = _split_dataset()
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((ds.n_users, ds.target.n_items)), 1).astype(np.float32)  # many ties
    users, expected = _reference(scores, ds, part, ks=(1, 5, 10))
    assert max(np.diff(ds.matrix("target", part).indptr)) >= 3  # several positives per user
    assert ds.matrix("target", "test").multiply(ds.matrix("target", "known")).nnz > 0  # positives also known
    model = FixedScores(ds.sizes, scores)
    for batch_size in (1, 7, 1024):
        _, table = evaluate(model, ds, part=part, ks=(1, 5, 10), batch_size=batch_size, per_user=True)
        assert table["user"].tolist() == users
        for name, values in expected.items():
            np.testing.assert_allclose(table[name].to_numpy(), values, err_msg=name)


def test_batches_call_the_model_once_per_batch(tiny_dataset):
    model = FixedScores(tiny_dataset.sizes, np.random.default_rng(0).random((60, 30)))
    evaluate(model, tiny_dataset, batch_size=25)
    assert model.calls == 3  # 60 test users in batches of 25


def test_unknown_protocol_and_part():
    ds = micro_dataset()
    model = FixedScores(ds.sizes, SCORES)
    with pytest.raises(ConfigError, match="sampled-999") as err:
        evaluate(model, ds, protocol="loo-100")
    assert "full" in str(err.value) and "loo-100" in str(err.value)
    with pytest.raises(ConfigError, match="part"):
        evaluate(model, ds, part="train")
    with pytest.raises(ConfigError, match="batch_size"):
        evaluate(model, ds, batch_size=0)
    assert list(PROTOCOLS) == ["full", "sampled-99", "sampled-999", "disencdr-replica"]


def test_nan_scores_raise():
    ds = micro_dataset()
    with pytest.raises(DataError, match="NaN"):
        evaluate(FixedScores(ds.sizes, np.full((3, 6), np.nan)), ds)


# ------------------------------------------------------------------------------------------ sampled
def _wide_dataset() -> CrossDomainDataset:
    """150 target items, so that 99 negatives can be sampled; user 0 gets three test items."""
    base = make_tiny_dataset(n_users=30, n_tgt=150, per_user=6, seed=2)
    t = base.target
    test = t.test.concat(Interactions(np.array([0, 0]), np.setdiff1d(np.arange(150), t.known.items)[:2]))
    target = Domain(t.name, t.items, t.train, t.valid, test)
    return CrossDomainDataset("wide", base.users, base.source, target, "loo")


def test_sampled_by_hand_with_extreme_positives():
    ds = _wide_dataset()
    pos = ds.matrix("target", "test")
    scores = np.zeros((ds.n_users, 150), np.float32)
    # user 0 (three positives): first positive scores highest, second lowest, third in the middle tie group
    p0 = pos[0].indices
    scores[0, p0] = [1.0, -1.0, 0.0]
    scores[1:, :] = np.arange(150)[None, :] / 150  # other users: score grows with the item index
    _, table = evaluate(FixedScores(ds.sizes, scores), ds, protocol="sampled-99", ks=(1,), per_user=True)
    row0 = table[table["user"] == 0].iloc[0]
    # ranks of user 0 among 99 negatives (all 0.0) + 3 positives: 0; 101; 1 + 0.5 * 99 = 50.5
    assert row0["mrr"] == 1.0 and row0["hr@1"] == 1.0 and row0["recall@1"] == pytest.approx(1 / 3)
    # AUC: (1 + 0 + 0.5) / 3
    assert row0["auc"] == pytest.approx(0.5)
    # other users: rank of the positive = number of sampled negatives with a larger item index
    known, users = ds.matrix("target", "known"), table["user"].to_numpy()[1:]
    neg = sample_negatives(users, (known + pos)[users], 99, seed=0)
    expected = (neg > pos[users].indices[:, None]).sum(axis=1)
    assert table["mrr"].to_numpy()[1:] == pytest.approx(1 / (expected + 1))
    assert table["auc"].to_numpy()[1:] == pytest.approx(1 - expected / 99)


def test_sampled_is_deterministic_and_batch_independent():
    ds = _wide_dataset()
    scores = np.round(np.random.default_rng(5).random((ds.n_users, 150)), 2)
    model = FixedScores(ds.sizes, scores)
    a = evaluate(model, ds, protocol="sampled-99", seed=3, batch_size=1)
    assert a == evaluate(model, ds, protocol="sampled-99", seed=3, batch_size=1000)
    assert a != evaluate(model, ds, protocol="sampled-99", seed=4)


def test_sampled_constant_scores():
    ds = _wide_dataset()
    _, table = evaluate(FixedScores(ds.sizes, np.ones((30, 150))), ds, protocol="sampled-99", per_user=True)
    single = table[table["user"] != 0]
    assert single["mrr"].to_numpy() == pytest.approx(1 / (0.5 * 99 + 1))  # 99 ties -> rank 49.5
    assert table["auc"].to_numpy() == pytest.approx(0.5)


def test_sampled_needs_enough_items(tiny_dataset):
    model = FixedScores(tiny_dataset.sizes, np.ones((60, 30)))
    with pytest.raises(ConfigError, match="99 negatives"):
        evaluate(model, tiny_dataset, protocol="sampled-99")


# ------------------------------------------------------------------------------------------ ratings
def test_evaluate_ratings_by_hand():
    ds = micro_dataset(test_ratings=np.array([4.0, 3.0, 5.0]))
    pred = np.zeros((3, 6))
    pred[0, 2], pred[0, 1], pred[1, 4] = 3.5, 3.0, 4.0  # errors 0.5, 0, 1
    out = evaluate_ratings(RatingModel(ds.sizes, pred), ds)
    assert out == pytest.approx({"mae": 0.5, "rmse": math.sqrt(1.25 / 3)})
    assert evaluate_ratings(RatingModel(ds.sizes, pred), ds, users=[1]) == pytest.approx({"mae": 1.0, "rmse": 1.0})


def test_evaluate_ratings_errors():
    ds = micro_dataset()
    with pytest.raises(ConfigError, match="predict_ratings"):
        evaluate_ratings(FixedScores(ds.sizes, SCORES), ds)
    with pytest.raises(DataError, match="no ratings"):
        evaluate_ratings(RatingModel(ds.sizes, SCORES), ds)


# ------------------------------------------------------------------------------------------ real data
def _read(path):
    rows = np.loadtxt(path, dtype=np.int64, delimiter="\t", usecols=(0, 1))
    return Interactions(rows[:, 0], rows[:, 1])


@pytest.mark.slow
def test_random_model_on_amazon_clothing(shared_data_dir):
    """A random model's metrics equal their chance values on the real split (checks the sampler too)."""
    root = shared_data_dir / "amazon-disencdr"
    train, test = _read(root / "cloth_electronic" / "train.txt"), _read(root / "cloth_electronic" / "test.txt")
    src = _read(root / "electronic_cloth" / "train.txt")
    n_users, n_items = int(train.users.max()) + 1, int(max(train.items.max(), test.items.max())) + 1
    empty = Interactions.empty()
    ds = CrossDomainDataset("amazon", Vocab.range(n_users), Domain("e", Vocab.range(int(src.items.max()) + 1), src,
                                                                   empty, empty),
                            Domain("c", Vocab.range(n_items), train, empty, test), "published")

    class RandomDot(FixedScores):
        def _score_users(self, users):
            return self.matrix[users] @ self.items.T

    model = RandomDot(ds.sizes, np.random.default_rng(0).standard_normal((n_users, 16)))
    model.items = np.random.default_rng(1).standard_normal((n_items, 16)).astype(np.float32)
    full = evaluate(model, ds, ks=(10,))
    sampled = evaluate(model, ds, protocol="sampled-999", ks=(10,))
    n = len(np.unique(test.users))
    assert abs(full["auc"] - 0.5) < 0.02
    assert abs(sampled["auc"] - 0.5) < 0.02
    # chance HR@10 among 1000 candidates is 0.01 (standard error ~0.0009 over ~12.5k users)
    assert n > 12000 and abs(sampled["hr@10"] - 0.01) < 0.004
    assert full["hr@10"] < 0.003


def test_the_replica_protocol_samples_999_negatives_with_replacement(tiny_dataset, monkeypatch):
    import xcatrec.evaluation.protocols as protocols

    seen = []
    real = protocols.sample_negatives

    def spy(users, forbidden, n, seed=0, *, replace=False):
        seen.append((n, replace))
        return real(users, forbidden, n, seed, replace=replace)

    monkeypatch.setattr(protocols, "sample_negatives", spy)
    from xcatrec.models import make_model

    model = make_model("popularity", tiny_dataset.sizes)
    model.fit(tiny_dataset)
    result = evaluate(model, tiny_dataset, protocol="disencdr-replica")  # 999 draws from 24-30 items: repeats
    assert seen and all(call == (999, True) for call in seen) and 0 <= result["ndcg@10"] <= 1
    with pytest.raises(ConfigError, match="impossible"):  # without replacement the catalogue is too small
        evaluate(model, tiny_dataset, protocol="sampled-999")
