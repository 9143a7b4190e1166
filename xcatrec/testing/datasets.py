"""Small hand-made cross-domain data sets that need no files: what the conformance suite trains on."""

from __future__ import annotations

import numpy as np

from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab


def make_tiny_dataset(n_users: int = 60, n_src: int = 40, n_tgt: int = 30, seed: int = 0,
                      per_user: int = 6) -> CrossDomainDataset:
    """Random but structured data: users in two taste groups prefer one half of each domain's items.

    Every user has ``per_user`` source items and ``per_user`` target items; one target item per user
    goes to valid and one to test, so tests can check that models learn the group structure.
    """
    rng = np.random.default_rng(seed)
    group = np.arange(n_users) % 2

    def draw(n_items: int) -> tuple[np.ndarray, np.ndarray]:
        users, items = [], []
        half = n_items // 2
        for u in range(n_users):
            lo = 0 if group[u] == 0 else half
            chosen = rng.choice(np.arange(lo, lo + half), size=per_user, replace=False)
            users += [u] * per_user
            items += chosen.tolist()
        return np.array(users), np.array(items)

    su, si = draw(n_src)
    tu, ti = draw(n_tgt)
    # per user: last target row -> test, second last -> valid
    pos = np.tile(np.arange(per_user), n_users)
    test_m, valid_m = pos == per_user - 1, pos == per_user - 2
    train_m = ~(test_m | valid_m)
    tgt = Interactions(tu, ti)
    source = Domain("source", Vocab.range(n_src, "item"), Interactions(su, si), Interactions.empty(),
                    Interactions.empty())
    target = Domain("target", Vocab.range(n_tgt, "item"), tgt.subset(train_m), tgt.subset(valid_m),
                    tgt.subset(test_m))
    return CrossDomainDataset("tiny", Vocab.range(n_users, "user"), source, target, "loo",
                              info={"seed": seed})


def with_ratings(ds: CrossDomainDataset, seed: int = 0) -> CrossDomainDataset:
    """``ds`` with 1-5 ratings on every row: user ``u`` rates 2 + (u % 3), plus noise 0 or 1."""
    rng = np.random.default_rng(seed)

    def rate(rows: Interactions) -> Interactions:
        return Interactions(rows.users, rows.items, (2 + rows.users % 3 + rng.integers(0, 2, len(rows))))

    def domain(d: Domain) -> Domain:
        return Domain(d.name, d.items, rate(d.train), rate(d.valid), rate(d.test))

    return CrossDomainDataset(ds.name, ds.users, domain(ds.source), domain(ds.target), ds.split)


def with_cold_users(ds: CrossDomainDataset, n_cold: int = 10) -> CrossDomainDataset:
    """``ds`` with the whole target history of users ``0 .. n_cold - 1`` hidden (moved to test): the
    cold-start shape, where those users have source history only."""
    tgt = ds.target
    every = tgt.train.concat(tgt.valid).concat(tgt.test)
    cold = every.users < n_cold
    warm_test = tgt.test.subset(tgt.test.users >= n_cold)
    target = Domain("target", tgt.items, tgt.train.subset(tgt.train.users >= n_cold),
                    tgt.valid.subset(tgt.valid.users >= n_cold), every.subset(cold).concat(warm_test))
    return CrossDomainDataset(ds.name + "-cold", ds.users, ds.source, target, "cold-start",
                              cold_users=np.arange(n_cold))
