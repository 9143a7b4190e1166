"""Train/test splits of a :class:`CrossDomainDataset`; every split is deterministic given its seed.

The row-level splits (:func:`leave_one_out`, :func:`random_split`, :func:`temporal_split`) pool all
rows of each chosen domain (train + valid + test) and split them again from scratch, so they can be
applied to any data set, including one that already has a split; the pooled domain's ``valid`` comes
back empty (carve it with :func:`xcatrec.data.carve_validation`) and ``cold_users`` is reset when the
target is re-split. :func:`cold_start` hides the whole target history of some overlapping users.

Every function returns a new data set and records its settings in ``info``.
"""

from __future__ import annotations

from dataclasses import replace

from collections.abc import Sequence

import numpy as np

from xcatrec.data.types import CrossDomainDataset, Domain, Interactions
from xcatrec.errors import ConfigError, DataError
from xcatrec.names import SPLITS

BOTH = ("source", "target")
TRAIN, VALID, TEST = 0, 1, 2


def rank_from_end(inter: Interactions, rng: np.random.Generator, use_time: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per row: its position counted from the user's latest row (0 = latest), and the user's row count.

    Rows are ordered by timestamp when ``use_time`` and timestamps exist; ties and data without
    timestamps are ordered randomly by ``rng``. Vectorised (one lexsort).
    """
    n = len(inter)
    keys = rng.random(n)
    if use_time and inter.timestamps is not None:
        order = np.lexsort((keys, inter.timestamps, inter.users))
    else:
        order = np.lexsort((keys, inter.users))
    su = inter.users[order]
    start = np.searchsorted(su, su, side="left")
    end = np.searchsorted(su, su, side="right")
    from_end = np.empty(n, np.int64)
    count = np.empty(n, np.int64)
    from_end[order] = end - 1 - np.arange(n)
    count[order] = end - start
    return from_end, count


def pooled(dom: Domain) -> tuple[Interactions, np.ndarray]:
    """All rows of ``dom`` (train, then valid, then test) and the part (TRAIN/VALID/TEST) of each."""
    rows = dom.train.concat(dom.valid).concat(dom.test)
    part = np.repeat([TRAIN, VALID, TEST], [len(dom.train), len(dom.valid), len(dom.test)])
    return rows, part


def rebuild(ds: CrossDomainDataset, *, source: Domain | None = None, target: Domain | None = None,
            split: str | None = None, cold_users: np.ndarray | None = None, **info) -> CrossDomainDataset:
    """A copy of ``ds`` with some parts replaced and ``info`` updated."""
    return CrossDomainDataset(ds.name, ds.users, source or ds.source, target or ds.target, split or ds.split,
                              ds.cold_users if cold_users is None else cold_users, {**ds.info, **info})


def check_domains(domains: Sequence[str]) -> tuple[str, ...]:
    domains = tuple(domains)
    bad = [d for d in domains if d not in BOTH]
    if bad or not domains:
        raise ConfigError(f"Unknown domain role(s) {bad or domains}.", f"Use a subset of {list(BOTH)}.")
    return domains


def unsplit(ds: CrossDomainDataset) -> CrossDomainDataset:
    """All rows of each domain in train (valid and test empty, no cold users); split ``"none"``."""
    parts = {}
    for role in BOTH:
        dom = ds.domain(role)
        rows, _ = pooled(dom)
        empty = rows.subset(np.zeros(len(rows), bool))
        parts[role] = replace(dom, train=rows, valid=empty, test=empty)
    return rebuild(ds, source=parts["source"], target=parts["target"], split="none",
                   cold_users=np.zeros(0, np.int64))


def _row_split(ds: CrossDomainDataset, domains: Sequence[str], name: str, pick, seed: int,
               **info) -> CrossDomainDataset:
    """Apply ``pick(rows, rng, role) -> test mask`` to the pooled rows of each domain in ``domains``."""
    new = {}
    for role in check_domains(domains):
        dom = ds.domain(role)
        rows, _ = pooled(dom)
        test = pick(rows, np.random.default_rng([seed, BOTH.index(role)]), dom)
        empty = rows.subset(np.zeros(len(rows), bool))
        new[role] = replace(dom, train=rows.subset(~test), valid=empty, test=rows.subset(test))
    cold = np.zeros(0, np.int64) if "target" in new else None
    return rebuild(ds, source=new.get("source"), target=new.get("target"), split=name, cold_users=cold,
                   split_seed=seed, split_domains=list(domains), **info)


def leave_one_out(ds: CrossDomainDataset, *, seed: int = 0, domains: Sequence[str] = BOTH) -> CrossDomainDataset:
    """Hold out each user's latest row (random row without timestamps) as test.

    Only users with at least two rows give a test row, so no user loses all training data.
    """
    def pick(rows, rng, dom):
        from_end, count = rank_from_end(rows, rng)
        return (from_end == 0) & (count >= 2)
    return _row_split(ds, domains, "loo", pick, seed)


def random_split(ds: CrossDomainDataset, *, test_fraction: float = 0.2, seed: int = 0,
                 domains: Sequence[str] = BOTH) -> CrossDomainDataset:
    """Hold out ``test_fraction`` of each domain's rows uniformly at random.

    One random row per user always stays in train, so the realised fraction can be slightly lower for
    data with many single-row users.
    """
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be in (0, 1), not {test_fraction}.", "Use e.g. 0.2.")

    def pick(rows, rng, dom):
        from_end, _ = rank_from_end(rows, rng, use_time=False)
        candidates = np.flatnonzero(from_end > 0)
        n_test = min(len(candidates), int(round(test_fraction * len(rows))))
        test = np.zeros(len(rows), bool)
        test[rng.choice(candidates, n_test, replace=False)] = True
        return test
    return _row_split(ds, domains, "random", pick, seed, test_fraction=test_fraction)


def temporal_split(ds: CrossDomainDataset, *, test_fraction: float = 0.2, per_user: bool = False,
                   seed: int = 0, domains: Sequence[str] = BOTH) -> CrossDomainDataset:
    """Hold out the latest rows by timestamp.

    Args:
        ds: Data set whose split domains have timestamps.
        test_fraction: Fraction of rows held out.
        per_user: ``False``: a global time cut, the latest ``test_fraction`` of all rows of the domain
            are test (users active only after the cut have no train rows). ``True``: each user with at
            least two rows holds out their latest ``round(test_fraction * n)`` rows (at least 1, at
            most ``n - 1``).
        seed: Breaks ties between equal timestamps.
        domains: Roles to split.

    Raises:
        DataError: A split domain has no timestamps.
    """
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be in (0, 1), not {test_fraction}.", "Use e.g. 0.2.")

    def pick(rows, rng, dom):
        if rows.timestamps is None:
            raise DataError(f"Domain {dom.name!r} of {ds.name!r} has no timestamps, so it cannot be split by time.",
                            "Use split='loo' or 'random', or give files with a timestamp column.")
        if per_user:
            from_end, count = rank_from_end(rows, rng)
            n_test = np.clip(np.rint(test_fraction * count), 1, count - 1)
            return (count >= 2) & (from_end < n_test)
        order = np.lexsort((rng.random(len(rows)), rows.timestamps))
        test = np.zeros(len(rows), bool)
        test[order[len(rows) - int(round(test_fraction * len(rows))):]] = True
        return test
    return _row_split(ds, domains, "temporal", pick, seed, test_fraction=test_fraction, per_user=per_user)


def cold_start(ds: CrossDomainDataset, *, beta: float = 0.2, seed: int = 0) -> CrossDomainDataset:
    """Hide the whole target history of a fraction ``beta`` of the overlapping users.

    Overlapping users have source rows and target rows (any part). ``round(beta * n_overlap)`` of them
    (at least one) are drawn at random; all their target rows (train, valid and test) become the target
    test set, which holds nothing else: the other users' target test rows join target train (the
    cold-start protocol trains on all warm target data) and their valid rows stay valid. The source
    domain is unchanged. ``cold_users`` lists the hidden users.

    Raises:
        ConfigError: ``beta`` not strictly between 0 and 1.
        DataError: No overlapping users.
    """
    if not 0 < beta < 1:
        raise ConfigError(f"beta must be strictly between 0 and 1, not {beta}.", "Use e.g. 0.2, 0.5 or 0.8.")
    overlap = np.flatnonzero(ds.overlap)
    if len(overlap) == 0:
        raise DataError(f"Data set {ds.name!r} has no users with both source and target history.",
                        "Cold-start needs overlapping users; check that user ids match across the two files.")
    n_cold = min(len(overlap), max(1, int(round(beta * len(overlap)))))
    cold = np.sort(np.random.default_rng([seed, 7]).choice(overlap, n_cold, replace=False))
    rows, part = pooled(ds.target)
    is_cold = np.isin(rows.users, cold)
    dom = ds.target
    target = replace(dom, train=rows.subset(~is_cold & (part != VALID)),
                     valid=rows.subset(~is_cold & (part == VALID)), test=rows.subset(is_cold))
    base = ds.info.get("base_split", ds.split) if ds.split == "cold-start" else ds.split
    return rebuild(ds, target=target, split="cold-start", cold_users=cold, beta=beta, cold_seed=seed,
                   n_overlap=len(overlap), base_split=base)
