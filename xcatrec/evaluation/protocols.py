"""Evaluation protocols: full ranking and sampled ranking of held-out target items, and rating errors.

Every protocol ranks each held-out positive of a user among that user's *candidate* items and hands the
tie-aware ranks to :mod:`xcatrec.evaluation.metrics`:

- ``"full"`` (primary): the candidates are all target items except the items the user is known to have
  interacted with (``train + valid`` for ``part="test"``, ``train`` for ``part="valid"``). A held-out
  positive is never excluded, even when the same item also occurs in the user's known items.
- ``"sampled-99"`` / ``"sampled-999"`` (only to compare with papers; sampled metrics can reverse the
  order of two models, Krichene & Rendle, KDD 2020): the candidates are the user's positives plus ``N``
  negatives sampled uniformly without replacement from the items that are neither excluded (as in full
  ranking: the user's known items for the evaluated part) nor positive, fixed by
  ``seed`` and the user (:mod:`xcatrec.evaluation.candidates`), so results do not depend on the batch
  size. A user with several positives has every positive ranked against the *same* ``N`` negatives (and,
  as in full ranking, against the user's other positives).
- ``"disencdr-replica"``: sampled-999 with the negatives drawn *with* replacement, as published code on
  these splits does; :func:`xcatrec.experiment.run_one` also selects that model on test, so the number
  is a clearly labelled, optimistic replica of the published protocol.

Speed: scores are never copied nor modified in place. Items excluded from the candidates are still
scored by the model, and their contribution to the counts is subtracted afterwards from the few
(positive, excluded) pairs; the counts of higher and equal scores are taken a few rows at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError, DataError, UnknownIdError
from xcatrec.evaluation.metrics import UserRanks, mae, ranking_metrics, rmse
from xcatrec.evaluation.candidates import sample_negatives
from xcatrec.names import RANKING_PROTOCOLS, REPLICA_PROTOCOL

__all__ = ["PROTOCOLS", "evaluate", "evaluate_ratings"]

#: Protocol name -> number of sampled negatives (``None``: rank against all candidate items), as
#: :data:`xcatrec.names.RANKING_PROTOCOLS` declares them. ``"disencdr-replica"`` samples its 999
#: negatives *with* replacement, as the published code on the DisenCDR splits does; the experiment
#: layer pairs it with model selection on test, so its numbers are an optimistic replica of the
#: published protocol, never a result (see :mod:`xcatrec.experiment`).
PROTOCOLS = RANKING_PROTOCOLS
#: Sampled protocols whose negatives are drawn with replacement.
WITH_REPLACEMENT = frozenset({REPLICA_PROTOCOL})
_EXCLUDED = {"test": "known", "valid": "train"}


def _ragged_arange(counts: np.ndarray) -> np.ndarray:
    """``[0..c0-1, 0..c1-1, ...]`` for non-negative counts."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    return np.arange(counts.sum()) - np.repeat(starts, counts)


_CHUNK = 16  # rows compared at a time: their scores stay in cache for the second comparison


def _count_true(compare, block: np.ndarray, s: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """Row counts of ``compare(block, s)``, via a reused zero-padded bool buffer read as uint64 words."""
    out = buf[: len(block)]
    compare(block, s, out=out[:, : block.shape[1]])
    if hasattr(np, "bitwise_count"):  # numpy >= 2: one popcount per 8 bools
        return np.bitwise_count(out.view(np.uint64)).sum(axis=1, dtype=np.int64)
    return np.count_nonzero(out, axis=1)


def _count_above(scores: np.ndarray, counts: np.ndarray, pos_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per positive: how many entries of its row score ``>`` and ``>=`` it (itself included in ``>=``).

    Positives are processed slot by slot (the j-th positive of every row that has one), a few rows at a
    time, so a batch where each user has one positive never copies the score matrix.
    """
    indptr = np.concatenate([[0], np.cumsum(counts)])
    greater = np.empty(len(pos_scores), dtype=np.int64)
    greater_eq = np.empty(len(pos_scores), dtype=np.int64)
    buf = np.zeros((_CHUNK, -(-scores.shape[1] // 8) * 8), dtype=bool)
    for j in range(int(counts.max(initial=0))):
        rows = np.flatnonzero(counts > j)
        every_row = len(rows) == len(scores)
        for start in range(0, len(rows), _CHUNK):
            flat = indptr[rows[start:start + _CHUNK]] + j
            block = scores[start:start + _CHUNK] if every_row else scores[rows[start:start + _CHUNK]]
            s = pos_scores[flat][:, None]
            greater[flat] = _count_true(np.greater, block, s, buf)
            greater_eq[flat] = _count_true(np.greater_equal, block, s, buf)
    return greater, greater_eq


def _check_shape(scores, shape: tuple[int, int], model) -> None:
    if scores.shape != shape:
        raise DataError(f"{type(model).__name__}.score returned shape {scores.shape}, expected {shape}.",
                        "Return one row per user and one column per item asked for.")


def _check_nan(pos_scores: np.ndarray, model) -> None:
    if np.isnan(pos_scores).any():
        raise DataError(f"{type(model).__name__}.score returned NaN scores.",
                        "Check the model's training (a diverged loss gives NaN weights).")


def _full_ranks(model, users: np.ndarray, pos: sp.csr_matrix, excl: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of the positives (CSR order) and candidate counts for one batch, full ranking."""
    scores = np.asarray(model.score(users))
    _check_shape(scores, (len(users), excl.shape[1]), model)
    counts = np.diff(pos.indptr)
    pos_rows = np.repeat(np.arange(len(users)), counts)
    pos_scores = scores[pos_rows, pos.indices]
    _check_nan(pos_scores, model)
    greater, greater_eq = _count_above(scores, counts, pos_scores)
    # subtract excluded items: pairs (positive, excluded item of the same user)
    n_excl = np.diff(excl.indptr)
    per_pos = n_excl[pos_rows]
    pair_pos = np.repeat(np.arange(len(pos_rows)), per_pos)
    pair_row = pos_rows[pair_pos]
    excl_scores = scores[pair_row, excl.indices[excl.indptr[pair_row] + _ragged_arange(per_pos)]]
    s = pos_scores[pair_pos]
    n = len(pos_rows)
    greater -= np.bincount(pair_pos, weights=excl_scores > s, minlength=n).astype(np.int64)
    greater_eq -= np.bincount(pair_pos, weights=excl_scores >= s, minlength=n).astype(np.int64)
    ranks = greater + 0.5 * (greater_eq - greater - 1)
    return ranks, excl.shape[1] - n_excl


def _sampled_ranks(model, users: np.ndarray, pos: sp.csr_matrix, excl: sp.csr_matrix, n_neg: int,
                   seed: int, replace: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of the positives (CSR order) and candidate counts for one batch, sampled ranking."""
    negatives = sample_negatives(users, (excl + pos).tocsr(), n_neg, seed, replace=replace)
    counts = np.diff(pos.indptr)
    width = int(counts.max())
    pos_rows = np.repeat(np.arange(len(users)), counts)
    slot = _ragged_arange(counts)
    padded = np.repeat(pos.indices[pos.indptr[:-1]][:, None], width, axis=1)  # pad with the first positive
    padded[pos_rows, slot] = pos.indices
    scores = np.array(model.score(users, np.hstack([negatives, padded])), copy=True)
    _check_shape(scores, (len(users), n_neg + width), model)
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)
    pos_scores = scores[pos_rows, n_neg + slot]
    _check_nan(pos_scores, model)
    is_pad = np.ones((len(users), width), bool)
    is_pad[pos_rows, slot] = False
    scores[:, n_neg:][is_pad] = -np.inf
    greater, greater_eq = _count_above(scores, counts, pos_scores)
    greater_eq -= np.where(pos_scores == -np.inf, width - counts[pos_rows], 0)  # pads tie only with -inf
    ranks = greater + 0.5 * (greater_eq - greater - 1)
    return ranks, n_neg + counts


def _select_users(pos: sp.csr_matrix, users, n_users: int) -> np.ndarray:
    has_pos = np.diff(pos.indptr) > 0
    if users is None:
        return np.flatnonzero(has_pos)
    users = np.unique(np.atleast_1d(np.asarray(users)))
    if users.dtype.kind not in "iu" and users.size:
        raise UnknownIdError(f"users must be integer indices, got dtype {users.dtype}.",
                             "Translate raw ids with dataset.users.index(...) first.")
    users = users.astype(np.int64)
    if users.size and (users.min() < 0 or users.max() >= n_users):
        raise UnknownIdError(f"User index out of range: the data set has {n_users} users.",
                             f"Pass user indices in [0, {n_users}).")
    return users[has_pos[users]]


def evaluate(model, dataset: CrossDomainDataset, *, protocol: str = "full", ks: Sequence[int] = (10,),
             part: str = "test", users=None, seed: int = 0, batch_size: int = 1024, per_user: bool = False):
    """Ranking metrics of ``model`` on the held-out target items of ``dataset``.

    Args:
        model: A :class:`~xcatrec.core.base.Recommender` (only ``score`` is used).
        dataset: The data set the model was trained on.
        protocol: One of :data:`PROTOCOLS`: ``"full"``, ``"sampled-99"``, ``"sampled-999"``.
        ks: Cut-offs K for the @K metrics (one int or several).
        part: ``"test"`` (positives: target test; excluded: train + valid) or ``"valid"`` (positives:
            target valid; excluded: train).
        users: Restrict to these user indices (e.g. ``dataset.cold_users``); users without a positive in
            ``part`` are always skipped.
        seed: Seed of the sampled negatives (sampled protocols only).
        batch_size: Users scored per call to ``model.score``.
        per_user: Also return the per-user values, for paired tests between models.

    Returns:
        ``{"hr@K", "recall@K", "precision@K", "f1@K", "ndcg@K" for each K, "mrr", "auc"}`` averaged over
        the evaluated users (AUC over users with at least one negative candidate); ranks are tie-aware,
        see :mod:`xcatrec.evaluation.metrics`; with ``per_user=True`` a pair ``(that dict, DataFrame)`` whose frame has a
        ``user`` column and one column per metric.

    Raises:
        ConfigError: Unknown protocol or part, or a bad ``batch_size``.
        DataError: No user has a positive, or the model returned scores of the wrong shape or NaN.
    """
    ks = (ks,) if isinstance(ks, (int, np.integer)) else tuple(ks)
    if protocol not in PROTOCOLS:
        raise ConfigError(f"Unknown evaluation protocol {protocol!r}.", f"Use one of {list(PROTOCOLS)}.")
    if part not in _EXCLUDED:
        raise ConfigError(f"Unknown part {part!r} to evaluate on.", f"Use one of {list(_EXCLUDED)}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.", "Pass batch_size=1024.")
    pos = dataset.matrix("target", part)
    known = dataset.matrix("target", _EXCLUDED[part])
    excl = (known - known.multiply(pos)).tocsr()  # a held-out positive is never excluded
    excl.eliminate_zeros()
    excl.sort_indices()
    pos.sort_indices()
    eval_users = _select_users(pos, users, dataset.n_users)
    if len(eval_users) == 0:
        raise DataError(f"No user to evaluate: nobody has a target {part} item"
                        + (" among the given users." if users is not None else "."),
                        "Check the split, or pass users that have held-out items.")
    all_ranks, all_cand = [], []
    for start in range(0, len(eval_users), batch_size):
        batch = eval_users[start:start + batch_size]
        p, e = pos[batch], excl[batch]
        if PROTOCOLS[protocol] is None:
            ranks, n_cand = _full_ranks(model, batch, p, e)
        else:
            ranks, n_cand = _sampled_ranks(model, batch, p, e, PROTOCOLS[protocol], seed,
                                           replace=protocol in WITH_REPLACEMENT)
        all_ranks.append(ranks)
        all_cand.append(n_cand)
    counts = np.diff(pos.indptr)[eval_users]
    user_ranks = UserRanks(np.concatenate(all_ranks), np.concatenate([[0], np.cumsum(counts)]),
                           np.concatenate(all_cand))
    values = ranking_metrics(user_ranks, ks)
    with np.errstate(invalid="ignore"):
        means = {name: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
                 for name, v in values.items()}
    if not per_user:
        return means
    import pandas as pd

    return means, pd.DataFrame({"user": eval_users, **values})


def evaluate_ratings(model, dataset: CrossDomainDataset, part: str = "test", users=None) -> dict[str, float]:
    """MAE and RMSE of ``model.predict_ratings(users, items)`` on the target ratings of ``part``.

    Args:
        model: A model with ``predict_ratings(users, items) -> ratings`` (one prediction per pair).
        dataset: A data set with explicit target ratings (e.g. Douban).
        part: ``"test"`` or ``"valid"``.
        users: Restrict to these user indices.

    Returns:
        ``{"mae": ..., "rmse": ...}``.
    """
    if not callable(getattr(model, "predict_ratings", None)):
        raise ConfigError(f"{type(model).__name__} does not predict ratings (no predict_ratings method).",
                          "Use evaluate(...) for ranking metrics, or a rating model.")
    if part not in _EXCLUDED:
        raise ConfigError(f"Unknown part {part!r} to evaluate on.", f"Use one of {list(_EXCLUDED)}.")
    rows = getattr(dataset.target, part)
    if rows.ratings is None:
        raise DataError(f"The target {part} part of {dataset.name!r} has no ratings.",
                        "Use a data set with explicit ratings (e.g. Douban), or evaluate(...) instead.")
    if users is not None:
        rows = rows.subset(np.isin(rows.users, _select_users(dataset.matrix("target", part), users,
                                                             dataset.n_users)))
    if len(rows) == 0:
        raise DataError(f"No target {part} ratings to evaluate.", "Check the split and the users passed.")
    pred = np.asarray(model.predict_ratings(rows.users, rows.items), dtype=np.float64).ravel()
    if pred.shape != rows.ratings.shape:
        raise DataError(f"predict_ratings returned {pred.size} values for {len(rows)} pairs.",
                        "Return one rating per (user, item) pair.")
    return {"mae": mae(rows.ratings, pred), "rmse": rmse(rows.ratings, pred)}
