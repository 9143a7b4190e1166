"""Splits: determinism from the seed and the invariants every protocol promises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xcatrec.data import (build_dataset, carve_validation, cold_start, leave_one_out, random_split,
                          temporal_split, unsplit, user_kfold)
from xcatrec.data.types import CrossDomainDataset, Interactions
from xcatrec.errors import ConfigError, DataError


def frame(rng, users, n_items, max_rows, timestamps):
    rows = []
    for u in users:
        for i in rng.choice(n_items, rng.integers(1, max_rows + 1), replace=False):
            rows.append((f"u{u}", f"i{i}", float(rng.integers(1, 6)), int(rng.integers(0, 1000))))
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    return df if timestamps else df.drop(columns="timestamp")


def make(seed: int = 0, timestamps: bool = True, n_users: int = 40) -> CrossDomainDataset:
    """Users 0-29 in the source, 10-39 in the target (20 overlap); all rows in train."""
    rng = np.random.default_rng(seed)
    src = frame(rng, range(0, 30), 25, 8, timestamps)
    tgt = frame(rng, range(10, n_users), 20, 6, timestamps)
    return build_dataset("t", ("s", {"train": src}), ("t", {"train": tgt}))


def rows(inter: Interactions) -> list[tuple[int, int]]:
    return sorted(zip(inter.users.tolist(), inter.items.tolist()))


def all_rows(dom) -> list[tuple[int, int]]:
    return sorted(rows(dom.train) + rows(dom.valid) + rows(dom.test))


def same(a: CrossDomainDataset, b: CrossDomainDataset) -> bool:
    return all(rows(getattr(a.domain(r), p)) == rows(getattr(b.domain(r), p))
               for r in ("source", "target") for p in ("train", "valid", "test"))


@pytest.mark.parametrize("split", [leave_one_out, random_split, temporal_split,
                                   lambda ds, seed: cold_start(ds, beta=0.5, seed=seed),
                                   lambda ds, seed: carve_validation(leave_one_out(ds, seed=seed), seed=seed)])
def test_deterministic_from_seed_and_rows_preserved(split):
    ds = make(timestamps=split is temporal_split)  # without timestamps every choice is random
    a, b, c = split(ds, seed=1), split(ds, seed=1), split(ds, seed=2)
    assert same(a, b)
    for role in ("source", "target"):
        assert all_rows(a.domain(role)) == all_rows(ds.domain(role))  # nothing lost or duplicated
    if split is not temporal_split:  # temporal only uses the seed to break ties
        assert not same(a, c)


def test_leave_one_out_holds_out_the_latest_row_of_users_with_two_or_more():
    ds = make()
    out = leave_one_out(ds, seed=0)
    assert out.split == "loo" and out.info["split_seed"] == 0
    for role in ("source", "target"):
        pool = ds.domain(role).train
        dom = out.domain(role)
        counts = np.bincount(pool.users, minlength=ds.n_users)
        test_counts = np.bincount(dom.test.users, minlength=ds.n_users)
        np.testing.assert_array_equal(test_counts, (counts >= 2).astype(int))
        train_counts = np.bincount(dom.train.users, minlength=ds.n_users)
        assert (train_counts[counts > 0] >= 1).all()  # no user loses all training data
        for u, t in zip(dom.test.users, dom.test.timestamps):
            assert t >= dom.train.timestamps[dom.train.users == u].max()


def test_leave_one_out_without_timestamps_is_random_but_seeded():
    ds = make(timestamps=False)
    a, b = leave_one_out(ds, seed=3), leave_one_out(ds, seed=3)
    assert same(a, b) and a.target.test.timestamps is None
    assert a.target.train.ratings is not None and a.target.valid.ratings is not None  # columns kept


def test_random_split_fraction_and_every_user_keeps_a_row():
    ds = make()
    out = random_split(ds, test_fraction=0.3, seed=0)
    for role in ("source", "target"):
        n = len(ds.domain(role).train)
        assert len(out.domain(role).test) == round(0.3 * n)
        users = np.unique(ds.domain(role).train.users)
        assert set(users) == set(np.unique(out.domain(role).train.users))
    with pytest.raises(ConfigError, match="test_fraction"):
        random_split(ds, test_fraction=1.5)


def test_temporal_split_global_cut_and_per_user():
    ds = make()
    out = temporal_split(ds, test_fraction=0.25)
    for role in ("source", "target"):
        dom = out.domain(role)
        assert dom.test.timestamps.min() >= dom.train.timestamps.max()
        assert len(dom.test) == round(0.25 * len(ds.domain(role).train))
    per_user = temporal_split(ds, test_fraction=0.25, per_user=True)
    dom = per_user.target
    for u in np.unique(dom.test.users):
        assert dom.test.timestamps[dom.test.users == u].min() >= dom.train.timestamps[dom.train.users == u].max()
    counts = np.bincount(ds.target.train.users, minlength=ds.n_users)
    assert set(np.unique(dom.test.users)) == set(np.flatnonzero(counts >= 2))
    with pytest.raises(DataError, match="no timestamps"):
        temporal_split(make(timestamps=False))


@pytest.mark.parametrize("beta", [0.2, 0.5, 0.8, 0.33])
def test_cold_start_hides_whole_target_history(beta):
    ds = carve_validation(leave_one_out(make(), seed=0), seed=0)
    overlap = np.flatnonzero(ds.overlap)
    assert len(overlap) == 20
    out = cold_start(ds, beta=beta, seed=0)
    cold = out.cold_users
    assert len(cold) == round(beta * 20) and set(cold) <= set(overlap)
    assert out.split == "cold-start" and out.info["beta"] == beta
    assert not np.isin(out.target.train.users, cold).any()
    assert not np.isin(out.target.valid.users, cold).any()
    assert set(np.unique(out.target.test.users)) == set(cold)  # test holds only the cold users
    for u in cold:  # ... and all of their target history
        assert rows(out.target.test.subset(out.target.test.users == u)) == \
            [r for r in all_rows(ds.target) if r[0] == u]
    assert all_rows(out.target) == all_rows(ds.target)
    assert same_domain(out.source, ds.source)
    np.testing.assert_array_equal(np.sort(out.target.valid.users),
                                  np.sort(ds.target.valid.users[~np.isin(ds.target.valid.users, cold)]))


def same_domain(a, b):
    return all(rows(getattr(a, p)) == rows(getattr(b, p)) for p in ("train", "valid", "test"))


def test_cold_start_bad_input():
    ds = make()
    for beta in (0, 1, 1.2, -0.1):
        with pytest.raises(ConfigError, match="beta"):
            cold_start(ds, beta=beta)
    rng = np.random.default_rng(0)
    disjoint = build_dataset("d", ("s", {"train": frame(rng, range(0, 5), 5, 3, False)}),
                             ("t", {"train": frame(rng, range(5, 10), 5, 3, False)}))
    with pytest.raises(DataError, match="no users with both"):
        cold_start(disjoint, beta=0.5)


def test_carve_validation_one_latest_train_row_per_target_user():
    ds = leave_one_out(make(), seed=0)
    out = carve_validation(ds, seed=0)
    assert len(out.source.valid) == 0 and same_domain(out.source, ds.source)
    counts = np.bincount(ds.target.train.users, minlength=ds.n_users)
    np.testing.assert_array_equal(np.bincount(out.target.valid.users, minlength=ds.n_users),
                                  (counts >= 2).astype(int))
    assert sorted(rows(out.target.train) + rows(out.target.valid)) == rows(ds.target.train)
    assert rows(out.target.test) == rows(ds.target.test)
    for u, t in zip(out.target.valid.users, out.target.valid.timestamps):
        assert t >= out.target.train.timestamps[out.target.train.users == u].max()
    again = carve_validation(out, seed=0)  # re-carving pools train + valid: same result
    assert same(again, out)
    both = carve_validation(ds, seed=0, domains=("source", "target"))
    assert len(both.source.valid) > 0 and both.info["valid_domains"] == ["source", "target"]
    with pytest.raises(ConfigError, match="domain"):
        carve_validation(ds, domains=("middle",))


def test_user_kfold_partitions_users():
    ds = carve_validation(leave_one_out(make(n_users=60), seed=0), seed=0)
    known = ds.target.known
    counts = np.bincount(known.users, minlength=ds.n_users)
    eligible = set(np.flatnonzero(counts >= 2))
    seen = []
    folds = list(user_kfold(ds, k=4, seed=0))
    assert [f for f, _ in folds] == [0, 1, 2, 3]
    for f, fold in folds:
        held = fold.target.valid.users
        assert len(held) == len(np.unique(held))  # one row per held-out user
        assert sorted(rows(fold.target.train) + rows(fold.target.valid)) == rows(known)
        assert rows(fold.target.test) == rows(ds.target.test) and same_domain(fold.source, ds.source)
        assert fold.info["fold"] == f and fold.info["k"] == 4
        seen.append(set(held))
    assert set().union(*seen) == eligible
    assert sum(len(s) for s in seen) == len(eligible)  # disjoint
    assert max(map(len, seen)) - min(map(len, seen)) <= 1
    again = [set(fold.target.valid.users) for _, fold in user_kfold(ds, k=4, seed=0)]
    assert again == seen
    with pytest.raises(ConfigError, match="k must"):
        next(user_kfold(ds, k=1))
    with pytest.raises(DataError, match="fewer than k"):
        next(user_kfold(ds, k=10_000))


def test_unsplit_and_resplit_of_a_cold_start_set():
    ds = cold_start(make(), beta=0.5, seed=0)
    back = unsplit(ds)
    assert back.split == "none" and len(back.cold_users) == 0
    assert all_rows(back.target) == all_rows(ds.target) and len(back.target.test) == 0
    resplit = leave_one_out(ds, seed=0)
    assert len(resplit.cold_users) == 0
