"""Most-popular baseline: rank target items by how often they were interacted with in training.

Popularity is the non-personalised reference point of the recommender-systems literature (see e.g.
Cremonesi, Koren & Turrin, "Performance of Recommender Algorithms on Top-N Recommendation Tasks",
RecSys 2010), and the fair baseline for cold-start users who have no target history at all.
Taught in the chapter "Strong simple baselines".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.core.base import FitReport, ModelConfig, Phase, Recommender, saved_arrays


class ItemScores(Recommender):
    """Base of the non-personalised models: one float32 score per target item, the same for every user.

    ``_fit`` sets the vector as the attribute named :attr:`scores_name`, also its name in the state.
    """

    scores_name: ClassVar[str] = "counts"

    def _scores(self) -> np.ndarray:
        scores = getattr(self, self.scores_name, None)
        if scores is None:
            raise ConfigError(f"The {self.name} model has not been trained.",
                              "Call model.fit(dataset) or load a saved model first.")
        return scores

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        return np.repeat(self._scores()[None, :], len(users), axis=0)

    def _score_candidates(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._scores()[items]

    def get_state(self) -> dict[str, np.ndarray]:
        return {self.scores_name: self._scores()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        key = self.scores_name
        setattr(self, key, saved_arrays(self.name, state, [key], {key: self.sizes.n_target_items})[key])


@dataclass(frozen=True)
class PopularityConfig(ModelConfig):
    """Popularity has nothing to tune; ``seed`` is kept only for a uniform interface."""


class Popularity(ItemScores):
    """Score of item ``i`` = number of target training interactions with ``i``, the same for every user."""

    name = "popularity"
    config_class = PopularityConfig
    phases = (Phase("count", "target"),)
    counts: np.ndarray | None = None

    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport:
        tic = time.perf_counter()
        self.counts = np.bincount(dataset.target.train.items, minlength=self.sizes.n_target_items).astype(np.float32)
        seconds = time.perf_counter() - tic
        return FitReport(epochs=1, seconds=seconds, seconds_per_epoch=seconds, best_epoch=1)
