"""Validation data carved out of the training data, for model selection without touching test.

:func:`carve_validation` holds out one training row per user (leave-one-out) as ``valid``: models fit
on ``train`` and select hyper-parameters / stop early on ``valid``. By default only the target domain
gets a validation split: the source domain is knowledge to transfer, not something we select on, so
its training data stays whole and its ``valid`` stays empty. Pass ``domains=("source", "target")`` for
methods that early-stop a source pre-training phase.

:func:`merge_valid` undoes the carving for the refit on train + valid. :func:`user_kfold` is user-level k-fold cross-validation on the target training data.
"""

from __future__ import annotations

from dataclasses import replace

from collections.abc import Iterator, Sequence

import numpy as np

from xcatrec.data.splits import BOTH, rank_from_end, rebuild, check_domains
from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError, DataError


def carve_validation(ds: CrossDomainDataset, *, seed: int = 0,
                     domains: Sequence[str] = ("target",)) -> CrossDomainDataset:
    """Move each user's latest training row (random without timestamps) to ``valid``.

    The pool is the domain's current train + valid rows, so calling it again re-carves rather than
    carving twice. Only users with at least two such rows give a validation row; test is unchanged.

    Args:
        ds: The data set.
        seed: Seed for the random choice (and for ties between equal timestamps).
        domains: Roles to carve; the default is the target only (the source ``valid`` stays as it is).
    """
    new = {}
    for role in check_domains(domains):
        dom = ds.domain(role)
        known = dom.train.concat(dom.valid)
        from_end, count = rank_from_end(known, np.random.default_rng([seed, 100 + BOTH.index(role)]))
        valid = (from_end == 0) & (count >= 2)
        new[role] = replace(dom, train=known.subset(~valid), valid=known.subset(valid))
    return rebuild(ds, source=new.get("source"), target=new.get("target"), valid="loo", valid_seed=seed,
                   valid_domains=list(domains))


def merge_valid(ds: CrossDomainDataset) -> CrossDomainDataset:
    """Validation rows moved back into train (both domains), for the refit after model selection.

    Once hyper-parameters and epochs are chosen on ``valid``, the model that is tested is refit on
    train + valid with those choices fixed, and ranks test items with the user's full known history;
    test is unchanged. ``info["refit"]`` records it.
    """
    new = {}
    for role in BOTH:
        dom = ds.domain(role)
        new[role] = replace(dom, train=dom.known, valid=dom.valid.subset(np.zeros(len(dom.valid), bool)))
    return rebuild(ds, source=new["source"], target=new["target"], refit=True)


def user_kfold(ds: CrossDomainDataset, *, k: int = 5, seed: int = 0
               ) -> Iterator[tuple[int, CrossDomainDataset]]:
    """User-level k-fold cross-validation on the target training data.

    The pool is the target's train + valid rows (test and the source domain are never touched). The
    users with at least two pooled rows are shuffled and cut into ``k`` folds of near-equal size
    (``numpy.array_split``). Fold ``f`` yields a data set whose target ``valid`` holds exactly one row
    for each user of fold ``f``: that user's latest row (random without timestamps, chosen once, the
    same in every fold); every other pooled row is target ``train``. Across the ``k`` folds each
    eligible user is held out exactly once. ``info`` gets ``fold``, ``k`` and ``kfold_seed``.

    Args:
        ds: The data set.
        k: Number of folds (at least 2).
        seed: Seed of the user shuffle and of the held-out row choice.

    Yields:
        ``(fold, dataset)`` for ``fold`` in ``0..k-1``.

    Raises:
        ConfigError: ``k < 2``.
        DataError: Fewer eligible users than folds.
    """
    if int(k) != k or k < 2:
        raise ConfigError(f"k must be an integer >= 2, not {k}.", "Use e.g. k=5.")
    dom = ds.target
    known = dom.train.concat(dom.valid)
    rng = np.random.default_rng([seed, 200])
    from_end, count = rank_from_end(known, rng)
    eligible = np.unique(known.users[count >= 2])
    if len(eligible) < k:
        raise DataError(f"Only {len(eligible)} target users of {ds.name!r} have two or more training rows, "
                        f"fewer than k={k} folds.", "Use a smaller k or more data.")
    folds = np.array_split(rng.permutation(eligible), k)
    held = (from_end == 0) & (count >= 2)
    for f, fold_users in enumerate(folds):
        valid = held & np.isin(known.users, fold_users)
        target = replace(dom, train=known.subset(~valid), valid=known.subset(valid))
        yield f, rebuild(ds, target=target, fold=f, k=int(k), kfold_seed=seed, valid="user-kfold")
