"""Uniform negative sampling against the interaction matrix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from xcatrec.errors import DataError
from xcatrec.training.sampling import NegativeSampler


def _matrix(rows, cols, shape) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)


def test_negatives_are_never_observed_items():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 50, 2000)
    items = rng.integers(0, 40, 2000)  # dense: about 63% of each user's items are observed
    seen = _matrix(users, items, (50, 40))
    neg = NegativeSampler(seen).sample(users, np.random.default_rng(1))
    assert neg.shape == users.shape and neg.dtype == np.int64
    assert (seen[users, neg].A1 == 0).all()


def test_uniform_over_the_unobserved_items():
    seen = _matrix([0, 0, 0], [0, 1, 2], (1, 6))  # user 0 has seen items 0-2: negatives are 3, 4, 5
    neg = NegativeSampler(seen).sample(np.zeros(30000, np.int64), np.random.default_rng(0))
    counts = np.bincount(neg, minlength=6)
    assert counts[:3].sum() == 0
    np.testing.assert_allclose(counts[3:] / 30000, 1 / 3, atol=0.015)


def test_deterministic_given_the_generator_and_resolves_nearly_full_users():
    seen = _matrix([0] * 98, np.arange(98), (2, 100))  # user 0 misses only items 98 and 99
    sampler = NegativeSampler(seen, max_rounds=1)
    users = np.array([0] * 50 + [1] * 50)
    a = sampler.sample(users, np.random.default_rng(7))
    b = sampler.sample(users, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert set(a[:50].tolist()) <= {98, 99}
    assert sampler.is_seen(np.array([0, 0, 1]), np.array([5, 99, 5])).tolist() == [True, False, False]


def test_a_user_who_has_seen_everything_is_an_error():
    with pytest.raises(DataError, match="User index 1 has interacted with all 3 items"):
        NegativeSampler(_matrix([1, 1, 1], [0, 1, 2], (2, 3)))
