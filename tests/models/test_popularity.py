"""Popularity baseline: the conformance contract plus hand-checked counts."""

from __future__ import annotations

import numpy as np
import pytest
from xcatrec.testing import RecommenderConformance

from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab
from xcatrec.errors import ConfigError, DataError
from xcatrec.models import METHODS, BPRMFConfig, make_model
from xcatrec.models.popularity import Popularity, PopularityConfig


class TestPopularityConformance(RecommenderConformance):
    model_class = Popularity

    def make_config(self):
        return PopularityConfig()


def _hand_dataset() -> CrossDomainDataset:
    """3 users, 4 target items: train counts are item0: 1, item1: 3, item2: 0, item3: 2."""
    target = Domain("target", Vocab.range(4, "item"),
                    Interactions([0, 1, 2, 0, 1, 2], [1, 1, 1, 3, 3, 0]),
                    Interactions([0], [2]), Interactions([1], [2]))
    source = Domain("source", Vocab.range(2, "item"), Interactions([0, 1], [0, 1]),
                    Interactions.empty(), Interactions.empty())
    return CrossDomainDataset("hand", Vocab.range(3, "user"), source, target, "loo")


def test_scores_are_training_counts_for_every_user():
    ds = _hand_dataset()
    model = Popularity(ds.sizes)
    model.fit(ds)
    np.testing.assert_array_equal(model.score([0, 2]), [[1, 3, 0, 2], [1, 3, 0, 2]])
    np.testing.assert_array_equal(model.score([0, 2], [[2, 1], [3, 0]]), [[0, 3], [2, 1]])


def test_recommend_skips_known_items_including_valid():
    ds = _hand_dataset()
    model = Popularity(ds.sizes)
    model.fit(ds)
    # user 0 knows items 1, 3 (train) and 2 (valid): only item 0 is left
    assert model.recommend([0], k=1).tolist() == [[0]]
    # user 1 knows 1 and 3: item 0 (count 1) ranks above item 2 (count 0)
    assert model.recommend([1], k=2).tolist() == [[0, 2]]


def test_recommend_returns_fewer_items_rather_than_known_ones():
    ds = _hand_dataset()
    model = Popularity(ds.sizes)
    model.fit(ds)
    # k larger than what is left: user 0 has one unseen item (0), users 1 and 2 two each; the width
    # is the most any user has left and shorter rows end in -1
    assert model.recommend([0], k=4).tolist() == [[0]]
    assert model.recommend([0, 1, 2], k=4).tolist() == [[0, -1], [0, 2], [3, 2]]
    assert model.recommend([0, 1], k=10, exclude_seen=False).tolist() == [[1, 3, 0, 2], [1, 3, 0, 2]]


def test_unfitted_model_says_so():
    model = Popularity(_hand_dataset().sizes)
    with pytest.raises(ConfigError, match="not been trained"):
        model.score([0])


def test_set_state_rejects_wrong_length():
    model = Popularity(_hand_dataset().sizes)
    with pytest.raises(DataError, match="counts"):
        model.set_state({"counts": np.ones(7, np.float32)})


def test_registry_and_make_model():
    ds = _hand_dataset()
    assert METHODS["popularity"] is Popularity
    model = make_model("popularity", ds.sizes, seed=3)
    assert isinstance(model, Popularity) and model.config.seed == 3
    model = make_model("bpr-mf", ds.sizes, dim=8, epochs=2)
    assert model.config == BPRMFConfig(dim=8, epochs=2)


def test_make_model_rejects_unknown_method_and_option():
    ds = _hand_dataset()
    with pytest.raises(ConfigError, match="Unknown method 'nope'.*popularity"):
        make_model("nope", ds.sizes)
    with pytest.raises(ConfigError, match=r"Unknown option\(s\) \['dim'\].*seed"):
        make_model("popularity", ds.sizes, dim=4)
