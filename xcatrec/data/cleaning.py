"""Clean an interaction frame and report every row dropped, with the reason.

Steps, in order (each row counted under the first reason that drops it):

1. ``missing id``: user or item is missing or empty.
2. ``invalid id``: user or item holds control characters.
3. ``missing rating`` / ``missing timestamp``: NaN or non-numeric value in that column.
4. ``rating out of range``: outside ``rating_range`` (inclusive).
5. ``duplicate``: a repeated (user, item) pair; the latest row is kept (by timestamp when there is
   one, else the last in file order).
6. ``below implicit threshold``: with ``implicit_threshold``, rows rated below it are dropped and the
   rating column is removed (the rest are positive implicit feedback).
7. ``k-core``: with ``min_count=k``, users and items with fewer than ``k`` rows are removed
   repeatedly until every remaining user and item has at least ``k``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xcatrec.data.readers import validate_ids
from xcatrec.errors import ConfigError, DataError

REASONS = ("missing id", "invalid id", "missing rating", "missing timestamp", "rating out of range",
           "duplicate", "below implicit threshold", "k-core")


def to_implicit(frame: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Rows rated at least ``threshold``, without the rating column."""
    if "rating" not in frame.columns:
        raise DataError("Implicit conversion by rating threshold needs a rating column, and there is none.",
                        "Drop implicit_threshold, or give a file with a rating column.")
    keep = frame["rating"].to_numpy(np.float64) >= threshold
    return frame.loc[keep].drop(columns="rating")


def _k_core_mask(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k-core of the (user code, item code) bipartite graph (vectorised per round)."""
    keep = np.ones(len(users), bool)
    if len(users) == 0:
        return keep
    while True:
        uc = np.bincount(users[keep], minlength=users.max() + 1)
        ic = np.bincount(items[keep], minlength=items.max() + 1)
        new = keep & (uc[users] >= k) & (ic[items] >= k)
        if new.sum() == keep.sum():
            return keep
        keep = new


def k_core(frame: pd.DataFrame, k: int | None) -> pd.DataFrame:
    """Iteratively drop users and items with fewer than ``k`` rows until none is left."""
    if k is None or k <= 1:
        return frame
    users, _ = pd.factorize(frame["user"])
    items, _ = pd.factorize(frame["item"])
    return frame.loc[_k_core_mask(users, items, k)]


def _duplicate_mask(users: np.ndarray, items: np.ndarray, times: np.ndarray | None) -> np.ndarray:
    """Rows repeating a (user, item) pair, all but the latest (by time, then by order) of each pair."""
    key = users.astype(np.int64) * (int(items.max(initial=0)) + 1) + items
    order = np.argsort(times, kind="stable") if times is not None else np.arange(len(key))
    dup = np.zeros(len(key), bool)
    dup[order] = pd.Series(key[order]).duplicated(keep="last").to_numpy()
    return dup


def clean(frame: pd.DataFrame, *, rating_range: tuple[float, float] | None = None,
          implicit_threshold: float | None = None, min_count: int | None = None
          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop bad, duplicate and (optionally) rare rows.

    Args:
        frame: Columns ``user``, ``item`` and optionally ``rating``, ``timestamp`` (as returned by
            :func:`xcatrec.data.readers.read_interactions`, or built by hand).
        rating_range: Inclusive (low, high) of valid ratings; ``None`` keeps every finite rating.
        implicit_threshold: Keep rows rated at least this and drop the rating column.
        min_count: k of the iterative k-core filter on users and items; ``None`` or 1 skips it.

    Returns:
        ``(cleaned, report)``: the cleaned frame (ids as categorical strings, ratings float64,
        timestamps int64, index reset) and a frame with one row per reason (columns ``reason``,
        ``rows``) plus a final ``kept`` row.

    Raises:
        DataError: ``frame`` lacks the user or item column, or a threshold needs a missing column.
        ConfigError: ``min_count`` is negative, ``rating_range`` is reversed or ``implicit_threshold``
            is not finite.
    """
    for col in ("user", "item"):
        if col not in frame.columns:
            raise DataError(f"The interactions have no {col!r} column (columns: {list(frame.columns)}).",
                            "Name the columns user, item[, rating[, timestamp]].")
    if min_count is not None and min_count < 0:
        raise ConfigError(f"min_count must be >= 0, not {min_count}.", "Use e.g. min_count=5 for a 5-core.")
    if rating_range is not None and rating_range[0] > rating_range[1]:
        raise ConfigError(f"rating_range {rating_range} is reversed.", "Give (low, high) with low <= high.")
    if implicit_threshold is not None and not np.isfinite(implicit_threshold):
        raise ConfigError(f"implicit_threshold must be a finite number, not {implicit_threshold}.",
                          "Use e.g. implicit_threshold=4 (--threshold 4).")
    if implicit_threshold is not None and "rating" not in frame.columns:
        raise DataError("Implicit conversion by rating threshold needs a rating column, and there is none.",
                        "Drop implicit_threshold, or give a file with a rating column.")
    dropped = dict.fromkeys(REASONS, 0)
    keep = np.ones(len(frame), bool)

    def drop(mask: np.ndarray, reason: str) -> None:
        mask = mask & keep
        dropped[reason] += int(mask.sum())
        keep[mask] = False

    df = frame.copy()
    df["user"], missing_u, invalid_u = validate_ids(df["user"])
    df["item"], missing_i, invalid_i = validate_ids(df["item"])
    drop(missing_u | missing_i, "missing id")
    drop(invalid_u | invalid_i, "invalid id")
    for col in ("rating", "timestamp"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(np.float64)
            drop(~np.isfinite(df[col].to_numpy()), f"missing {col}")
    if rating_range is not None and "rating" in df.columns:
        r = df["rating"].to_numpy()
        drop((r < rating_range[0]) | (r > rating_range[1]), "rating out of range")
    df = df.loc[keep]
    users = df["user"].cat.codes.to_numpy()
    items = df["item"].cat.codes.to_numpy()
    times = df["timestamp"].to_numpy(np.int64) if "timestamp" in df.columns else None
    keep = np.ones(len(df), bool)
    drop(_duplicate_mask(users, items, times), "duplicate")
    if implicit_threshold is not None:
        drop(df["rating"].to_numpy() < implicit_threshold, "below implicit threshold")
    if min_count is not None and min_count > 1:
        rows = np.flatnonzero(keep)
        core = _k_core_mask(users[rows], items[rows], min_count)
        dropped["k-core"] = int((~core).sum())
        keep[rows[~core]] = False
    df = df.loc[keep]
    if "timestamp" in df.columns:
        df["timestamp"] = df["timestamp"].astype(np.int64)
    if implicit_threshold is not None:
        df = df.drop(columns="rating")
    report = pd.DataFrame({"reason": [*REASONS, "kept"], "rows": [*dropped.values(), len(df)]})
    return df.reset_index(drop=True), report
