"""The block-by-block synthetic marketplace: sizes, determinism, ground truth on demand, bad settings."""

from __future__ import annotations

import numpy as np
import pytest

from xcatrec.data.synthetic_large import LargeConfig, catalogue_sizes, make_large_synthetic
from xcatrec.errors import ConfigError


@pytest.fixture(scope="module")
def market():
    return make_large_synthetic(LargeConfig(*catalogue_sizes(40_000), block=500))


def all_rows(ds, role):
    dom = ds.domain(role)
    parts = [dom.train, dom.valid, dom.test]
    return np.concatenate([p.users for p in parts]), np.concatenate([p.items for p in parts])


def test_catalogue_grows_users_linearly_and_items_sub_linearly():
    u1, s1, t1 = catalogue_sizes(1_000_000)
    u10, s10, t10 = catalogue_sizes(10_000_000)
    assert u10 == pytest.approx(10 * u1, rel=1e-3)
    assert (s10 + t10) / (s1 + t1) == pytest.approx(10 ** 0.75, rel=1e-3)
    with pytest.raises(ConfigError, match="too small"):
        catalogue_sizes(10)


def test_rows_match_the_means_and_no_pair_repeats(market):
    cfg, ds = market.config, market.dataset
    total = 0
    for role, mean in (("source", cfg.source_per_user), ("target", cfg.target_per_user)):
        users, items = all_rows(ds, role)
        total += len(users)
        assert len(np.unique(users * 10**7 + items)) == len(users)
        # repeated picks are dropped, so a little below the mean, never above it
        assert 0.9 * mean <= len(users) / cfg.n_users <= mean * 1.02
    assert 0.85 * 40_000 < total < 1.02 * 40_000


def test_chosen_items_are_preferred_and_popular_items_chosen_more(market):
    ds = market.dataset
    users, items = all_rows(ds, "target")
    rng = np.random.default_rng(1)
    chosen = np.einsum("ud,ud->u", market.tastes["target"][users], market.attributes["target"][items])
    random_items = rng.integers(0, ds.sizes.n_target_items, len(users))
    other = np.einsum("ud,ud->u", market.tastes["target"][users], market.attributes["target"][random_items])
    assert chosen.mean() > other.mean() + 0.5  # taste drives the choice
    counts = np.bincount(items, minlength=ds.sizes.n_target_items)
    assert np.sort(counts)[-len(counts) // 100:].sum() > 0.05 * len(items)  # top 1% of items: >5% of rows
    pref = market.preference("target", users[:3])
    assert pref.shape == (3, ds.sizes.n_target_items)
    np.testing.assert_allclose(pref[0, items[0]] * np.sqrt(market.config.dim), chosen[0], rtol=1e-5)


def test_same_seed_same_data_other_seed_other_data(market):
    again = make_large_synthetic(LargeConfig(*catalogue_sizes(40_000), block=500))
    np.testing.assert_array_equal(again.dataset.target.train.items, market.dataset.target.train.items)
    other = make_large_synthetic(LargeConfig(*catalogue_sizes(40_000), block=500, seed=1))
    assert not np.array_equal(other.dataset.target.train.items[:100], market.dataset.target.train.items[:100])


def test_block_size_does_not_matter_for_the_shape_of_the_data():
    small = make_large_synthetic(LargeConfig(*catalogue_sizes(20_000), block=100))
    big = make_large_synthetic(LargeConfig(*catalogue_sizes(20_000), block=10_000))
    assert abs(len(small.dataset.source.train) - len(big.dataset.source.train)) < 0.03 * len(big.dataset.source.train)


@pytest.mark.parametrize("change", [{"rho": 1.5}, {"candidates": 8}, {"temperature": 0}, {"n_users": 1}])
def test_bad_settings_are_refused(change):
    base = dict(n_users=100, n_source_items=50, n_target_items=50)
    with pytest.raises(ConfigError, match="Invalid LargeConfig"):
        LargeConfig(**{**base, **change})
