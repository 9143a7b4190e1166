"""Item-mean rating baseline: the contract, hand-computed means, and Douban (slow)."""

from __future__ import annotations

import numpy as np
import pytest
from xcatrec.testing import RecommenderConformance

from conftest import make_tiny_dataset
from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab
from xcatrec.errors import ConfigError, DataError, UnknownIdError
from xcatrec.evaluation import evaluate_ratings
from xcatrec.models.item_mean import ItemMean, ItemMeanConfig


def with_ratings(ds: CrossDomainDataset, seed: int = 0) -> CrossDomainDataset:
    """``ds`` with random 1-5 ratings on every row of both domains."""
    rng = np.random.default_rng(seed)

    def rate(rows: Interactions) -> Interactions:
        return Interactions(rows.users, rows.items, rng.integers(1, 6, len(rows)).astype(np.float32))

    def domain(d: Domain) -> Domain:
        return Domain(d.name, d.items, rate(d.train), rate(d.valid), rate(d.test))

    return CrossDomainDataset(ds.name, ds.users, domain(ds.source), domain(ds.target), ds.split)


class TestItemMeanConformance(RecommenderConformance):
    model_class = ItemMean

    def make_config(self):
        return ItemMeanConfig()

    def make_dataset(self):
        return with_ratings(make_tiny_dataset())


def _hand_dataset() -> CrossDomainDataset:
    """3 users, 4 target items. Train ratings: item0 [5], item1 [4, 2, 3], item2 none, item3 [1, 5].

    Global mean = (5 + 4 + 2 + 3 + 1 + 5) / 6 = 20 / 6.
    """
    target = Domain("target", Vocab.range(4, "item"),
                    Interactions([0, 0, 1, 2, 1, 2], [0, 1, 1, 1, 3, 3], [5, 4, 2, 3, 1, 5]),
                    Interactions([0], [2], [4]), Interactions([1, 2], [2, 0], [2, 4]))
    source = Domain("source", Vocab.range(2, "item"), Interactions([0, 1], [0, 1], [3, 3]),
                    Interactions.empty(True), Interactions.empty(True))
    return CrossDomainDataset("hand", Vocab.range(3, "user"), source, target, "loo")


def test_plain_means_and_global_mean_for_unseen_items():
    ds = _hand_dataset()
    model = ItemMean(ds.sizes, ItemMeanConfig(damping=0))
    model.fit(ds)
    mu = 20 / 6
    np.testing.assert_allclose(model.predict_ratings([0, 1, 2, 0], [0, 1, 2, 3]), [5, 3, mu, 3], rtol=1e-6)
    np.testing.assert_allclose(model.score([1, 2]), [[5, 3, mu, 3]] * 2, rtol=1e-6)
    # test rows: (user 1, item 2) -> mu vs 2; (user 2, item 0) -> 5 vs 4
    errors = np.array([mu - 2, 5 - 4])
    got = evaluate_ratings(model, ds)
    assert got["mae"] == pytest.approx(np.abs(errors).mean())
    assert got["rmse"] == pytest.approx(np.sqrt((errors ** 2).mean()))


def test_damping_shrinks_towards_the_global_mean():
    ds = _hand_dataset()
    model = ItemMean(ds.sizes, ItemMeanConfig(damping=2))
    model.fit(ds)
    mu = 20 / 6
    expected = [(5 + 2 * mu) / 3, (9 + 2 * mu) / 5, mu, (6 + 2 * mu) / 4]
    np.testing.assert_allclose(model.predict_ratings([0] * 4, [0, 1, 2, 3]), expected, rtol=1e-6)


def test_implicit_data_gives_tied_scores():
    ds = make_tiny_dataset()
    model = ItemMean(ds.sizes)
    model.fit(ds)
    assert np.all(model.score(np.arange(5)) == 1.0)


def test_bad_input_raises_clear_errors():
    ds = _hand_dataset()
    with pytest.raises(ConfigError, match="damping"):
        ItemMeanConfig(damping=-1)
    model = ItemMean(ds.sizes)
    with pytest.raises(ConfigError, match="not been trained"):
        model.predict_ratings([0], [0])
    model.fit(ds)
    with pytest.raises(ConfigError, match="same length"):
        model.predict_ratings([0, 1], [0])
    with pytest.raises(UnknownIdError, match="Unknown item index 4"):
        model.predict_ratings([0], [4])
    with pytest.raises(DataError, match="means"):
        model.set_state({"means": np.ones(2, np.float32)})


@pytest.mark.slow
def test_douban_cold_start_item_mean_beats_the_global_mean(shared_data_dir):
    from xcatrec.data import load_dataset

    ds = load_dataset("douban-book-music", split="cold-start", beta=0.2, data_dir=shared_data_dir)
    model = ItemMean(ds.sizes)
    model.fit(ds)
    got = evaluate_ratings(model, ds)
    truth = ds.target.test.ratings
    global_rmse = float(np.sqrt(np.mean((truth - ds.target.train.ratings.mean()) ** 2)))
    assert got["rmse"] < global_rmse - 0.05, (got, global_rmse)  # measured: 0.829 vs 0.969
