"""Negative sampling for the sampled protocols: valid, uniform, and reproducible for any batch."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats as sps

from xcatrec.errors import ConfigError
from xcatrec.evaluation import candidates, sample_negatives


def _forbidden(n_users: int, n_items: int, per_user: int, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n_users), per_user)
    cols = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))


@pytest.mark.parametrize("n", [20, 60])  # 20: rejection sampling; 60 (> allowed / 4): hash order
def test_negatives_are_distinct_allowed_and_uniform(n):
    n_users, n_items = 3000, 200
    forbidden = _forbidden(n_users, n_items, 10)
    neg = sample_negatives(np.arange(n_users), forbidden, n, seed=1)
    assert neg.shape == (n_users, n) and neg.dtype == np.int64
    assert all(len(np.unique(row)) == n for row in neg)
    assert forbidden[np.repeat(np.arange(n_users), n), neg.ravel()].sum() == 0
    # each allowed (user, item) pair is picked with probability n / 190: item counts are chi-square uniform
    counts = np.bincount(neg.ravel(), minlength=n_items)
    expected = n / 190 * (n_users - np.asarray(forbidden.sum(axis=0)).ravel())
    assert sps.chisquare(counts, expected).pvalue > 1e-3


def test_same_user_same_negatives_in_any_batch():
    forbidden = _forbidden(50, 500, 30)
    users = np.arange(100, 150)  # user indices key the streams, rows give the forbidden items
    whole = sample_negatives(users, forbidden, 99, seed=7)
    parts = np.vstack([sample_negatives(users[i:i + 3], forbidden[i:i + 3], 99, seed=7) for i in range(0, 50, 3)])
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_array_equal(sample_negatives(users[[9, 2]], forbidden[[9, 2]], 99, seed=7), whole[[9, 2]])
    assert not np.array_equal(whole, sample_negatives(users, forbidden, 99, seed=8))
    assert not np.array_equal(whole[0], whole[1])


def test_result_does_not_depend_on_the_number_of_draws(monkeypatch):
    # every user may only pick from 250 of 1000 items; with a first round far too short, most rows need
    # more rounds, which must give exactly the same negatives
    forbidden = _forbidden(200, 1000, 750, seed=3)
    users = np.arange(200)
    neg = sample_negatives(users, forbidden, 60, seed=0)
    assert forbidden[np.repeat(users, 60), neg.ravel()].sum() == 0
    assert all(len(np.unique(row)) == 60 for row in neg)
    monkeypatch.setattr(candidates, "_MARGIN_SD", -3.0)
    np.testing.assert_array_equal(sample_negatives(users, forbidden, 60, seed=0), neg)


def test_too_few_items_raises():
    with pytest.raises(ConfigError, match="only 5 items"):
        sample_negatives(np.array([0]), _forbidden(1, 15, 10), 6)


def test_with_replacement_repeats_never_forbidden_uniform_and_reproducible():
    n_users, n_items = 400, 60
    forbidden = _forbidden(n_users, n_items, 20, seed=5)
    users = np.arange(1000, 1000 + n_users)
    neg = sample_negatives(users, forbidden, 99, seed=3, replace=True)  # 99 draws from 40 allowed items
    assert neg.shape == (n_users, 99) and neg.dtype == np.int64
    assert neg.min() >= 0 and neg.max() < n_items
    assert forbidden[np.repeat(np.arange(n_users), 99), neg.ravel()].sum() == 0
    assert all(len(np.unique(row)) < 99 for row in neg)  # repeats are certain with 40 items
    # i.i.d. uniform over the 40 allowed items of each user: per-user counts are chi-square uniform
    allowed = ~forbidden.toarray().astype(bool)
    counts = np.zeros((n_users, n_items))
    np.add.at(counts, (np.repeat(np.arange(n_users), 99), neg.ravel()), 1)
    assert sps.chisquare(counts[allowed], np.full(allowed.sum(), 99 / 40)).pvalue > 1e-3
    np.testing.assert_array_equal(sample_negatives(users, forbidden, 99, seed=3, replace=True), neg)
    parts = np.vstack([sample_negatives(users[i:i + 7], forbidden[i:i + 7], 99, seed=3, replace=True)
                       for i in range(0, n_users, 7)])
    np.testing.assert_array_equal(parts, neg)
    assert not np.array_equal(sample_negatives(users, forbidden, 99, seed=4, replace=True), neg)


def test_with_replacement_edge_cases_and_unchanged_default():
    # one allowed item: every draw is that item; no allowed item: an error; replace=False is unchanged
    forbidden = sp.csr_matrix(np.array([[1, 1, 0, 1], [0, 1, 1, 1]]))
    np.testing.assert_array_equal(sample_negatives(np.array([0, 1]), forbidden, 5, replace=True),
                                  [[2] * 5, [0] * 5])
    with pytest.raises(ConfigError, match="only 0 items"):
        sample_negatives(np.array([0]), sp.csr_matrix(np.ones((1, 4))), 1, replace=True)
    big = _forbidden(30, 300, 40)
    np.testing.assert_array_equal(sample_negatives(np.arange(30), big, 50, seed=2),
                                  sample_negatives(np.arange(30), big, 50, seed=2, replace=False))
    with pytest.raises(ConfigError, match="replace"):
        sample_negatives(np.arange(30), big, 5, replace="yes")
