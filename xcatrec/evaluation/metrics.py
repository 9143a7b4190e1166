"""Ranking metrics computed from the ranks of held-out positives, and rating errors.

Every ranking metric here is a function of the **0-based rank** of each held-out positive among the
user's candidate items (rank 0 = ranked first). Ranks are tie-aware: with ``s`` the positive's score,

    rank = #{other candidates with score > s} + 0.5 * #{other candidates with score == s},

which is the expected 0-based position when ties are broken uniformly at random, so a model that gives
every item the same score is not rewarded (nor punished) by the order items happen to be stored in.
A positive's rank counts *all* other candidates, other held-out positives included: with two positives
the better-scored one pushes the other one down by one place, as in a real top-K list.

Per user with positives ``P`` and cut-off ``K``: ``hits = #{p in P: rank_p < K}``; HR = [hits > 0];
recall = hits / |P|; precision = hits / K; F1 = 2PR / (P + R) (0 when both are 0);
NDCG = sum_{p: rank_p < K} 1 / log2(rank_p + 2) / IDCG with IDCG = sum_{j < min(|P|, K)} 1 / log2(j + 2);
MRR = 1 / (min_p rank_p + 1); AUC = mean over p of (#negatives scored below p + 0.5 #tied negatives)
/ #negatives, where the negatives are the candidates that are not positives.

The functions return one value per user; protocols average them over users.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xcatrec.errors import ConfigError, DataError

__all__ = ["UserRanks", "tie_aware_ranks", "hit_rate", "recall", "precision", "f1", "ndcg", "mrr", "auc",
           "ranking_metrics", "mae", "rmse"]


@dataclass(frozen=True)
class UserRanks:
    """Ranks of the held-out positives of several users, stored flat and grouped by user.

    Args:
        ranks: 0-based tie-aware rank of every positive (float64), user after user.
        offsets: ``offsets[i]:offsets[i+1]`` are the positives of user ``i`` (length ``n_users + 1``);
            every user must have at least one positive.
        n_candidates: Number of candidate items per user (positives included); needed only for AUC.
    """

    ranks: np.ndarray
    offsets: np.ndarray
    n_candidates: np.ndarray | None = None

    def __post_init__(self) -> None:
        ranks = np.asarray(self.ranks, dtype=np.float64)
        offsets = np.asarray(self.offsets, dtype=np.int64)
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(ranks):
            raise DataError("offsets must start at 0 and end at len(ranks).", "Build UserRanks.from_lists(...).")
        if np.any(np.diff(offsets) < 1):
            raise DataError("Every user needs at least one held-out positive to be ranked.",
                            "Evaluate only users with positives in the evaluated part.")
        object.__setattr__(self, "ranks", ranks)
        object.__setattr__(self, "offsets", offsets)
        if self.n_candidates is not None:
            n_cand = np.asarray(self.n_candidates, dtype=np.int64)
            if n_cand.shape != (self.n_users,):
                raise DataError("n_candidates needs one entry per user.", "Pass one count per user.")
            object.__setattr__(self, "n_candidates", n_cand)

    @classmethod
    def from_lists(cls, ranks_per_user: Sequence[Sequence[float]],
                   n_candidates: Sequence[int] | None = None) -> "UserRanks":
        """Build from one list of positive ranks per user, e.g. ``[[0, 3.5], [12]]``."""
        lengths = [len(r) for r in ranks_per_user]
        flat = np.concatenate([np.asarray(r, dtype=np.float64) for r in ranks_per_user]) if lengths else []
        return cls(np.asarray(flat, np.float64), np.concatenate([[0], np.cumsum(lengths)]), n_candidates)

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_positives(self) -> np.ndarray:
        """Number of positives per user."""
        return np.diff(self.offsets)

    @property
    def owner(self) -> np.ndarray:
        """User position (0..n_users-1) of every flat rank."""
        return np.repeat(np.arange(self.n_users), self.n_positives)

    def per_user_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-positive array within each user."""
        return np.bincount(self.owner, weights=values, minlength=self.n_users)


def _as_ranks(ranks: UserRanks | Sequence[Sequence[float]]) -> UserRanks:
    return ranks if isinstance(ranks, UserRanks) else UserRanks.from_lists(ranks)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"The cut-off K must be a positive integer, got {k!r}.", "Pass k=10, for example.")
    return int(k)


def tie_aware_ranks(scores, positives) -> np.ndarray:
    """0-based tie-aware ranks of ``positives`` (indices into ``scores``) among all entries of ``scores``.

    This is the reference definition for one user; the protocols compute the same numbers batch-wise.

    Example:
        >>> tie_aware_ranks([0.9, 0.5, 0.5, 0.1], [2]).tolist()   # one better, one tie
        [1.5]
    """
    s = np.asarray(scores, dtype=np.float64)
    pos = np.atleast_1d(np.asarray(positives, dtype=np.int64))
    p = s[pos][:, None]
    greater = np.count_nonzero(s[None, :] > p, axis=1)
    equal_others = np.count_nonzero(s[None, :] == p, axis=1) - 1
    return greater + 0.5 * equal_others


def _hits(r: UserRanks, k: int) -> np.ndarray:
    return r.per_user_sum((r.ranks < k).astype(np.float64))


def hit_rate(ranks: UserRanks | Sequence[Sequence[float]], k: int) -> np.ndarray:
    """HR@K per user: 1 if at least one positive is ranked in the top K, else 0."""
    r, k = _as_ranks(ranks), _check_k(k)
    return (_hits(r, k) > 0).astype(np.float64)


def recall(ranks: UserRanks | Sequence[Sequence[float]], k: int) -> np.ndarray:
    """Recall@K per user: fraction of the user's positives ranked in the top K."""
    r, k = _as_ranks(ranks), _check_k(k)
    return _hits(r, k) / r.n_positives


def precision(ranks: UserRanks | Sequence[Sequence[float]], k: int) -> np.ndarray:
    """Precision@K per user: positives in the top K divided by K."""
    r, k = _as_ranks(ranks), _check_k(k)
    return _hits(r, k) / k


def f1(ranks: UserRanks | Sequence[Sequence[float]], k: int) -> np.ndarray:
    """F1@K per user: harmonic mean of the user's precision@K and recall@K (0 when both are 0)."""
    p, rc = precision(ranks, k), recall(ranks, k)
    total = p + rc
    return np.divide(2 * p * rc, total, out=np.zeros_like(total), where=total > 0)


def ndcg(ranks: UserRanks | Sequence[Sequence[float]], k: int) -> np.ndarray:
    """NDCG@K per user with binary relevance, normalised by the ideal DCG of min(|P|, K) positives."""
    r, k = _as_ranks(ranks), _check_k(k)
    gains = np.where(r.ranks < k, 1.0 / np.log2(r.ranks + 2.0), 0.0)
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))])
    return r.per_user_sum(gains) / ideal[np.minimum(r.n_positives, k)]


def mrr(ranks: UserRanks | Sequence[Sequence[float]]) -> np.ndarray:
    """Reciprocal rank of the user's best-ranked positive, ``1 / (min rank + 1)``."""
    r = _as_ranks(ranks)
    return 1.0 / (np.minimum.reduceat(r.ranks, r.offsets[:-1]) + 1.0)


def auc(ranks: UserRanks | Sequence[Sequence[float]], n_candidates: Sequence[int] | None = None) -> np.ndarray:
    """AUC per user: mean over positives of the fraction of negatives scored below it (ties count 1/2).

    Computed from ranks: a positive's rank among negatives only is its rank minus its rank among the
    other positives, and the latter sum to ``|P|(|P|-1)/2`` over a user's positives, so
    ``AUC = 1 - (sum_p rank_p - |P|(|P|-1)/2) / (|P| * #negatives)``. NaN for a user with no negatives.

    Args:
        ranks: Positive ranks per user.
        n_candidates: Candidates per user (positives included); defaults to ``ranks.n_candidates``.
    """
    r = _as_ranks(ranks)
    n_cand = r.n_candidates if n_candidates is None else np.asarray(n_candidates, dtype=np.int64)
    if n_cand is None:
        raise ConfigError("AUC needs the number of candidates per user.",
                          "Pass n_candidates=... or build UserRanks with n_candidates.")
    n_pos = r.n_positives.astype(np.float64)
    n_neg = n_cand - n_pos
    among_negatives = r.per_user_sum(r.ranks) - n_pos * (n_pos - 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_neg > 0, 1.0 - among_negatives / (n_pos * n_neg), np.nan)


def ranking_metrics(ranks: UserRanks, ks: Sequence[int] = (10,)) -> dict[str, np.ndarray]:
    """All ranking metrics per user: keys ``hr@K, recall@K, precision@K, f1@K, ndcg@K`` per K, ``mrr``,
    and ``auc`` (when ``ranks.n_candidates`` is known)."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        k = _check_k(k)
        out[f"hr@{k}"] = hit_rate(ranks, k)
        out[f"recall@{k}"] = recall(ranks, k)
        out[f"precision@{k}"] = precision(ranks, k)
        out[f"f1@{k}"] = f1(ranks, k)
        out[f"ndcg@{k}"] = ndcg(ranks, k)
    out["mrr"] = mrr(ranks)
    if ranks.n_candidates is not None:
        out["auc"] = auc(ranks)
    return out


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true, dtype=np.float64).ravel(), np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape or t.size == 0:
        raise DataError(f"Need equally long, non-empty true and predicted values (got {t.size} and {p.size}).",
                        "Pass one prediction per true value.")
    return t, p


def mae(y_true, y_pred) -> float:
    """Mean absolute error of predicted ratings."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error of predicted ratings."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))
