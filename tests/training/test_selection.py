"""Choosing lambda by user-level k-fold cross-validation: table shape, argmax of the mean, no test data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from conftest import make_tiny_dataset
from xcatrec.errors import ConfigError
from xcatrec.core.base import FitReport, ModelConfig, Phase, Recommender
from xcatrec.training.selection import COLUMNS, best_lambda, lambda_summary, tune_lambda


@dataclass(frozen=True)
class MixConfig(ModelConfig):
    lam: float = 1.0


class TasteMix(Recommender):
    """A fast stand-in with a lambda (no TensorFlow): ``score = lam * taste + (1 - lam) * noise``.

    ``taste`` is 1 on the half of the items the user's group prefers in :func:`make_tiny_dataset` (even
    users the first half, odd users the second), so larger ``lam`` ranks better. Every fit is logged
    so the test can see which data each fold trained on.
    """

    name = "taste-mix"
    config_class = MixConfig
    phases = (Phase("count", "target"),)
    fits: list = []

    def _fit(self, dataset, *, verbose):
        n_users, n_items = self.sizes.n_users, self.sizes.n_target_items
        taste = (np.arange(n_items)[None, :] >= n_items // 2) == (np.arange(n_users)[:, None] % 2 == 1)
        noise = np.random.default_rng(self.config.seed).random((n_users, n_items))
        self.scores = (self.config.lam * taste + (1 - self.config.lam) * noise).astype(np.float32)
        TasteMix.fits.append(dataset)
        return FitReport(epochs=1, best_epoch=1)

    def _score_users(self, users):
        return self.scores[users]

    def get_state(self):
        return {"scores": self.scores}

    def set_state(self, state):
        self.scores = state["scores"]


def test_table_has_one_row_per_lambda_and_fold_and_best_is_the_argmax_of_the_mean():
    ds = make_tiny_dataset(n_users=90)
    TasteMix.fits.clear()
    table = tune_lambda(ds, [0.0, 0.3, 1.0], folds=3, seed=1, method=TasteMix)
    assert list(table.columns) == COLUMNS
    assert len(table) == 9
    assert sorted(zip(table["lam"], table["fold"])) == [(lam, f) for lam in (0.0, 0.3, 1.0) for f in range(3)]
    assert table["ndcg@10"].between(0, 1).all() and table["hr@10"].between(0, 1).all()
    means = table.groupby("lam")["ndcg@10"].mean()
    assert best_lambda(table) == means.idxmax()
    summary = lambda_summary(table)
    assert summary["lam"].tolist() == [0.0, 0.3, 1.0] and (summary["folds"] == 3).all()
    np.testing.assert_allclose(summary["mean"], means.to_numpy())
    # the taste signal beats noise, so the pure-taste end is chosen, clearly
    assert best_lambda(table) == 1.0 and means[1.0] > means[0.0] + 0.1


def test_folds_hold_out_training_users_and_never_touch_test():
    ds = make_tiny_dataset(n_users=90)
    TasteMix.fits.clear()
    tune_lambda(ds, [1.0], folds=3, seed=0, method=TasteMix)
    fits = TasteMix.fits
    assert len(fits) == 3
    pool = ds.target.train.concat(ds.target.valid)
    held = [set(f.target.valid.users.tolist()) for f in fits]
    assert set().union(*held) == set(pool.users.tolist()) and sum(map(len, held)) == len(set(pool.users.tolist()))
    for f in fits:
        assert len(f.target.train) + len(f.target.valid) == len(pool)
        np.testing.assert_array_equal(f.target.test.users, ds.target.test.users)  # test stays where it was
        np.testing.assert_array_equal(f.target.test.items, ds.target.test.items)
        test_pairs = set(zip(ds.target.test.users.tolist(), ds.target.test.items.tolist()))
        assert not test_pairs & set(zip(f.target.valid.users.tolist(), f.target.valid.items.tolist()))


def test_best_lambda_on_a_hand_table():
    table = pd.DataFrame({"lam": [0.1, 0.1, 1.0, 1.0, 3.0, 3.0], "fold": [0, 1] * 3,
                          "ndcg@10": [0.20, 0.30, 0.40, 0.10, 0.26, 0.25]})
    # means: 0.25, 0.25, 0.255 -> 3.0 wins although 1.0 has the single best fold
    assert best_lambda(table) == 3.0
    tie = table.assign(**{"ndcg@10": [0.2, 0.2, 0.2, 0.2, 0.1, 0.1]})
    assert best_lambda(tie) == 0.1  # ties go to the smallest lambda
    with pytest.raises(ConfigError, match="hr@5"):
        best_lambda(table, metric="hr@5")


@pytest.mark.parametrize("kwargs, match", [
    (dict(lambdas=[]), "non-empty"),
    (dict(lambdas=[1.0, 1.0]), "distinct"),
    (dict(lambdas=[1.0], options={"lam": 2.0}), "lam"),
    (dict(lambdas=[-1.0]), "lam must be"),
    (dict(lambdas=[1.0], folds=1), "k must be"),
    (dict(lambdas=[1.0], method="shared-bottom"), "Recommender class"),
    (dict(lambdas=[1.0], method="popularity"), "no lambda"),
])
def test_bad_arguments_raise_config_errors(kwargs, match):
    from xcatrec.models import Popularity
    from xcatrec.models.shared_bottom import SharedBottom

    if kwargs.get("method") == "popularity":
        kwargs["method"] = Popularity
    kwargs.setdefault("method", SharedBottom)
    with pytest.raises(ConfigError, match=match):
        tune_lambda(make_tiny_dataset(), **kwargs)


def test_shared_bottom_end_to_end_on_tiny_data():
    from xcatrec.models.shared_bottom import SharedBottom

    table = tune_lambda(make_tiny_dataset(), [0.5, 2.0], folds=2, seed=0, method=SharedBottom,
                        options={"epochs": 1, "dim": 8, "shared_units": (8,), "batch_size": 128})
    assert table.shape == (4, len(COLUMNS))
    assert sorted(table["lam"].unique()) == [0.5, 2.0] and sorted(table["fold"].unique()) == [0, 1]
    assert (table["epochs"] == 1).all() and np.isfinite(table["ndcg@10"]).all()
    assert best_lambda(table) == table.groupby("lam")["ndcg@10"].mean().idxmax()
