"""The conformance tests every recommender must pass (the model contract, checked once per method).

Check your own method by subclassing in a pytest module::

    from xcatrec.testing import RecommenderConformance

    class TestMyMethod(RecommenderConformance):
        model_class = MyMethod

        def make_config(self):
            return MyMethodConfig(epochs=1)

The model is fitted once per test class (a class-scoped fixture), so the mixin costs one short
training run per method. Importing this module needs pytest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import numpy as np
import pytest

from xcatrec.data.types import CrossDomainDataset, DatasetSizes
from xcatrec.errors import ConfigError, DataError, UnknownIdError
from xcatrec.core.base import FitReport, ModelConfig, Recommender
from xcatrec.testing.datasets import make_tiny_dataset


@dataclass(frozen=True)
class _ForeignConfig(ModelConfig):
    """A config class no method uses, to check that a wrong config type is refused."""


class RecommenderConformance:
    """Mixin of contract tests; subclasses set :attr:`model_class` and :meth:`make_config`."""

    model_class: type[Recommender]

    def make_config(self) -> ModelConfig:
        """A small, fast config (one or two epochs)."""
        raise NotImplementedError

    def make_dataset(self) -> CrossDomainDataset:
        return make_tiny_dataset()

    # ------------------------------------------------------------ fixtures
    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls) -> tuple[Recommender, CrossDomainDataset]:
        suite = cls()
        dataset = suite.make_dataset()
        model = cls.model_class(dataset.sizes, suite.make_config())
        model.fit(dataset)
        return model, dataset

    @staticmethod
    def _users(dataset: CrossDomainDataset) -> np.ndarray:
        return np.arange(0, dataset.n_users, 3)

    # ------------------------------------------------------------ training
    def test_fit_returns_report(self, fitted):
        model, _ = fitted
        assert isinstance(model.report, FitReport)
        assert model.report.epochs >= 1
        assert model.report.seconds >= 0

    def test_name_and_phases_declared(self):
        assert self.model_class.name not in ("", "base")
        assert len(self.model_class.phases) >= 1
        assert all(p.data in ("source", "target", "both", "overlap") for p in self.model_class.phases)

    # ------------------------------------------------------------ scoring
    def test_score_all_items_shape_and_finite(self, fitted):
        model, dataset = fitted
        users = self._users(dataset)
        scores = model.score(users)
        assert scores.shape == (len(users), dataset.target.n_items)
        assert np.isfinite(scores).all()

    def test_score_item_subset_matches_full_scores(self, fitted):
        model, dataset = fitted
        users = self._users(dataset)
        full = model.score(users)
        items = np.array([3, 0, dataset.target.n_items - 1, 7])
        np.testing.assert_allclose(model.score(users, items), full[:, items], rtol=1e-5, atol=1e-5)

    def test_score_candidates_match_full_scores(self, fitted):
        model, dataset = fitted
        users = self._users(dataset)
        full = model.score(users)
        cand = np.random.default_rng(0).integers(0, dataset.target.n_items, size=(len(users), 5))
        got = model.score(users, cand)
        assert got.shape == cand.shape
        np.testing.assert_allclose(got, np.take_along_axis(full, cand, axis=1), rtol=1e-5, atol=1e-5)

    def test_recommend_excludes_known_items_and_is_sorted(self, fitted):
        model, dataset = fitted
        users = self._users(dataset)
        k = 5
        recs = model.recommend(users, k)
        assert recs.shape == (len(users), k)
        known = dataset.matrix("target", "known")[users].toarray() > 0
        assert not np.take_along_axis(known, recs, axis=1).any()
        rec_scores = np.take_along_axis(model.score(users), recs, axis=1)
        assert (np.diff(rec_scores, axis=1) <= 1e-6).all()
        assert all(len(set(row)) == k for row in recs.tolist())

    def test_recommend_is_the_top_of_the_unseen_scores(self, fitted):
        model, dataset = fitted
        users = self._users(dataset)
        recs = model.recommend(users, 3)
        scores = model.score(users)
        scores[dataset.matrix("target", "known")[users].toarray() > 0] = -np.inf
        best = np.sort(scores, axis=1)[:, ::-1][:, :3]
        np.testing.assert_allclose(np.take_along_axis(scores, recs, axis=1), best, rtol=1e-6)

    # ------------------------------------------------------------ persistence
    def test_save_load_round_trip(self, fitted, tmp_path):
        model, dataset = fitted
        users = self._users(dataset)
        model.save(tmp_path / "model")
        loaded = self.model_class.load(tmp_path / "model")
        assert loaded.config == model.config
        np.testing.assert_array_equal(loaded.score(users), model.score(users))
        np.testing.assert_array_equal(loaded.recommend(users, 5), model.recommend(users, 5))
        state, back = model.get_state(), loaded.get_state()
        assert sorted(state) == sorted(back)
        for key in state:
            np.testing.assert_array_equal(state[key], back[key])

    # ------------------------------------------------------------ bad input
    def test_unknown_user_index_raises(self, fitted):
        model, dataset = fitted
        with pytest.raises(UnknownIdError, match=f"Unknown user index {dataset.n_users}"):
            model.score([0, dataset.n_users])
        with pytest.raises(UnknownIdError, match="Unknown user index -1"):
            model.recommend([-1], 3)

    def test_unknown_item_index_raises(self, fitted):
        model, dataset = fitted
        with pytest.raises(UnknownIdError, match=f"Unknown item index {dataset.target.n_items}"):
            model.score([0, 1], [0, dataset.target.n_items])

    def test_wrong_config_type_raises(self):
        dataset = self.make_dataset()
        with pytest.raises(ConfigError, match=self.model_class.config_class.__name__):
            self.model_class(dataset.sizes, _ForeignConfig())

    def test_sizes_that_do_not_match_the_data_raise_on_fit(self):
        dataset = self.make_dataset()
        sizes = dataset.sizes
        wrong = DatasetSizes(sizes.n_users + 1, sizes.n_source_items, sizes.n_target_items)
        model = self.model_class(wrong, self.make_config())
        with pytest.raises(DataError, match="built for"):
            model.fit(dataset)

    def test_config_round_trips_through_json(self):
        config = self.make_config()
        back = type(config)(**json.loads(json.dumps(asdict(config))))
        assert back == config

    def test_transferred_matches_the_declared_moves(self, fitted):
        model, _ = fitted
        moves = [m for phase in model.phases for m in phase.moves]
        matches = lambda name, m: name == m or name.startswith(m + "/")  # noqa: E731
        for m in moves:
            assert any(matches(name, m) for name in model.transferred), f"declared move {m!r} not recorded"
        for name, value in model.transferred.items():
            assert any(matches(name, m) for m in moves), f"{name!r} transferred but not declared"
        state = model.get_state()
        for name, value in model.transferred.items():
            if name in state:
                assert np.shape(state[name]) == np.shape(value)

    def test_config_is_frozen(self):
        config = self.make_config()
        with pytest.raises(Exception):
            config.seed = 123  # type: ignore[misc]
        assert replace(config, seed=5).seed == 5
