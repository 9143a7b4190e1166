"""Most-popular baseline: rank target items by how often they were interacted with in training.

Popularity is the non-personalised reference point of the recommender-systems literature (see e.g.
Cremonesi, Koren & Turrin, "Performance of Recommender Algorithms on Top-N Recommendation Tasks",
RecSys 2010), and the fair baseline for cold-start users who have no target history at all.
Taught in the chapter "Strong simple baselines".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError, DataError
from xcatrec.models.base import FitReport, ModelConfig, Phase, Recommender


@dataclass(frozen=True)
class PopularityConfig(ModelConfig):
    """Popularity has nothing to tune; ``seed`` is kept only for a uniform interface."""


class Popularity(Recommender):
    """Score of item ``i`` = number of target training interactions with ``i``, the same for every user."""

    name = "popularity"
    config_class = PopularityConfig
    phases = (Phase("count", "target"),)

    def __init__(self, sizes, config: PopularityConfig | None = None) -> None:
        super().__init__(sizes, config)
        self.counts: np.ndarray | None = None

    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport:
        tic = time.perf_counter()
        items = dataset.target.train.items
        self.counts = np.bincount(items, minlength=self.sizes.n_target_items).astype(np.float32)
        seconds = time.perf_counter() - tic
        return FitReport(epochs=1, seconds=seconds, seconds_per_epoch=seconds, best_epoch=1)

    def _counts(self) -> np.ndarray:
        if self.counts is None:
            raise ConfigError("The popularity model has not been trained.",
                              "Call model.fit(dataset) or load a saved model first.")
        return self.counts

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        return np.repeat(self._counts()[None, :], len(users), axis=0)

    def _score_candidates(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._counts()[items]

    def get_state(self) -> dict[str, np.ndarray]:
        return {"counts": self._counts()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        counts = state.get("counts")
        if counts is None or counts.shape != (self.sizes.n_target_items,):
            raise DataError("The saved popularity weights have no 'counts' array of one count per item.",
                            "Load a folder written by Popularity.save() for the same data set.")
        self.counts = np.asarray(counts, np.float32)
