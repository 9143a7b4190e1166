"""Item mean: predict each target item's mean training rating (the global mean for unseen items).

The non-personalised rating baseline of collaborative filtering (e.g. Koren, "Factor in the
Neighbors", TKDD 2010, uses baseline predictors ``mu + b_i``). The mean of item ``i`` is shrunk towards
the global mean by ``damping`` pseudo-ratings, ``(sum_i + damping * mu) / (n_i + damping)``, so an item
rated once does not get an extreme mean. It ignores the user and the source domain entirely, which
makes it the fair cold-start baseline for rating error (MAE / RMSE) on Douban Book -> Music: a
cold-start user has no target ratings, and any transfer method must beat what the item's own ratings
already say. As a ranker its score is the item mean (the same for every user). On implicit data every
interaction counts as a rating of 1, so all scores tie; use popularity there. Taught in the chapter
"Strong simple baselines".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.core.base import FitReport, ModelConfig, Phase
from xcatrec.core.search import Float
from xcatrec.models.popularity import ItemScores


@dataclass(frozen=True)
class ItemMeanConfig(ModelConfig):
    """Settings of the item-mean baseline.

    Args:
        damping: Pseudo-ratings at the global mean added to every item (0 = the plain item mean).
    """

    damping: float = 3.0

    def __post_init__(self) -> None:
        if not self.damping >= 0:
            raise ConfigError(f"damping must be >= 0, got {self.damping}.", "Pass damping=3.0, for example.")


class ItemMean(ItemScores):
    """Score and predicted rating of item ``i`` = its (damped) mean target training rating."""

    name = "item-mean"
    config_class = ItemMeanConfig
    search_space = {"damping": Float(0.0, 50.0)}
    phases = (Phase("average", "target"),)
    scores_name = "means"
    means: np.ndarray | None = None

    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport:
        tic = time.perf_counter()
        train = dataset.target.train
        ratings = train.ratings if train.ratings is not None else np.ones(len(train), np.float32)
        n_items, damping = self.sizes.n_target_items, self.config.damping
        total = np.bincount(train.items, weights=ratings, minlength=n_items)
        count = np.bincount(train.items, minlength=n_items)
        mean = float(ratings.mean())
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (total + damping * mean) / (count + damping)
        self.means = np.where(count > 0, means, mean).astype(np.float32)
        seconds = time.perf_counter() - tic
        return FitReport(epochs=1, seconds=seconds, seconds_per_epoch=seconds, best_epoch=1)

    def predict_ratings(self, users, items) -> np.ndarray:
        """Predicted rating of each ``(users[k], items[k])`` pair: the item's mean."""
        users = self._check_ids(users, self.sizes.n_users, "user")
        items = self._check_ids(items, self.sizes.n_target_items, "item")
        if users.shape != items.shape:
            raise ConfigError(f"predict_ratings needs one item per user, got {len(users)} users and "
                              f"{len(items)} items.", "Pass two arrays of the same length (pairs).")
        return self._scores()[items]
