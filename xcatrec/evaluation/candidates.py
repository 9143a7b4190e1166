"""Candidate negatives of the sampled evaluation protocols (deterministic per user; the training
sampler is :mod:`xcatrec.training.sampling`).

The negatives of user ``u`` depend only on ``(seed, u)`` and the user's forbidden items, never on
which other users share the batch, so results are reproducible for any batch size. Each user owns a
counter-based random stream (SplitMix64 keyed by seed and user): draw ``a`` of user ``u`` is the word
``splitmix64(key_u + (a + 1) * golden)`` scaled to an item in ``[0, n_items)``. The negatives are the
first ``N`` draws that are neither forbidden nor repeated: the first ``N`` distinct values of an i.i.d.
uniform stream over the allowed items are a uniform random ``N``-subset, i.e. sampling without
replacement. This rejection sampling is vectorised over a batch of users. Users who may pick from
fewer than ``4 N`` items instead take the ``N`` allowed items with the smallest word
``splitmix64(key_u + (item + 1) * golden)``, which is also uniform and avoids long rejection runs.

With ``replace=True`` (the protocol of some papers, e.g. DisenCDR's 999 negatives) draw ``a`` of user ``u``
is instead scaled to ``k`` in ``[0, allowed_u)`` and mapped to the ``k``-th allowed item (in item order),
so the ``N`` draws are i.i.d. uniform over the allowed items, repeats included, with no rejection.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from xcatrec.errors import ConfigError

__all__ = ["sample_negatives"]

_MARGIN_SD = 3.0  # extra draws in the first round, in standard deviations (changes speed, never results)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrap-around arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _user_keys(users: np.ndarray, seed: int) -> np.ndarray:
    seed_key = _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64) + _GOLDEN)
    return _mix(seed_key + users.astype(np.uint64) * _GOLDEN)


def _stream(keys: np.ndarray, counters: np.ndarray) -> np.ndarray:
    """Word ``c`` of the SplitMix64 stream of each key, shape ``(len(keys), len(counters))``."""
    with np.errstate(over="ignore"):
        return _mix(keys[:, None] + (counters.astype(np.uint64) + np.uint64(1))[None, :] * _GOLDEN)


def _to_items(z: np.ndarray, n_items: int) -> np.ndarray:
    """Map uniform 64-bit words to ``[0, n_items)`` by multiply-shift (bias below ``n_items / 2**32``)."""
    return (((z >> np.uint64(32)) * np.uint64(n_items)) >> np.uint64(32)).astype(np.int64)


def _by_rejection(keys: np.ndarray, forbidden: sp.csr_matrix, n: int, allowed: np.ndarray) -> np.ndarray:
    """First ``n`` distinct allowed draws of each row's stream, shape ``(rows, n)``."""
    n_items = forbidden.shape[1]
    rows = len(keys)
    out = np.empty((rows, n), dtype=np.int64)
    is_forbidden = np.zeros((rows, n_items), dtype=bool)
    is_forbidden[np.repeat(np.arange(rows), np.diff(forbidden.indptr)), forbidden.indices] = True
    todo = np.arange(rows)
    # draws for n distinct allowed items: (n + expected repeats) / allowed fraction, plus a few standard
    # deviations; rows that still fall short go round again with twice the draws (same stream prefix)
    least = int(allowed.min())
    p = least / n_items
    needed = n + n * n / (2 * least)
    draws = max(int(np.ceil(needed / p + _MARGIN_SD * np.sqrt(needed * (1 - p)) / p)) + 16, n)
    while len(todo):
        items = _to_items(_stream(keys[todo], np.arange(draws)), n_items)
        bad = np.take(is_forbidden.ravel(), items + (todo * n_items)[:, None])  # flat take: fastest gather
        # repeats: sort (item, draw) pairs per row; a value equal to its left neighbour is a later draw
        pairs = np.sort(items * draws + np.arange(draws), axis=1)
        later = (pairs[:, 1:] // draws) == (pairs[:, :-1] // draws)
        row, col = np.nonzero(later)
        bad[row, pairs[:, 1:][row, col] % draws] = True
        valid = ~bad
        count = np.cumsum(valid, axis=1, dtype=np.int32)
        done = count[:, -1] >= n
        take = valid[done] & (count[done] <= n)
        out[todo[done]] = items[done][take].reshape(-1, n)
        todo, draws = todo[~done], draws * 2
    return out


def _by_hash_order(keys: np.ndarray, forbidden: sp.csr_matrix, n: int) -> np.ndarray:
    """The ``n`` allowed items with the smallest per-user hash, shape ``(rows, n)``."""
    n_items = forbidden.shape[1]
    h = _stream(keys, np.arange(n_items))  # keyed by item, so any order of items gives the same set
    rows = np.repeat(np.arange(len(keys)), np.diff(forbidden.indptr))
    h[rows, forbidden.indices] = np.uint64(0xFFFFFFFFFFFFFFFF)
    part = np.argpartition(h, n - 1, axis=1)[:, :n] if n < n_items else np.argsort(h, axis=1)[:, :n]
    return np.sort(part, axis=1)


def _with_replacement(keys: np.ndarray, forbidden: sp.csr_matrix, n: int, allowed: np.ndarray) -> np.ndarray:
    """``n`` i.i.d. uniform allowed items per row (repeats possible), shape ``(rows, n)``.

    Draw ``a`` of a row is scaled to ``k`` in ``[0, allowed)``; the ``k``-th allowed item is ``k + j``, where
    ``j`` counts the forbidden items ``f_i`` (sorted, ``i`` from 0) with ``f_i - i <= k`` (``f_i - i`` is the
    number of allowed items below ``f_i``). Rows are offset by ``n_items`` so one ``searchsorted`` serves all.
    """
    n_items = forbidden.shape[1]
    rows = len(keys)
    z = _stream(keys, np.arange(n))
    k = (((z >> np.uint64(32)) * allowed.astype(np.uint64)[:, None]) >> np.uint64(32)).astype(np.int64)
    counts = np.diff(forbidden.indptr)
    row_of = np.repeat(np.arange(rows, dtype=np.int64), counts)
    below = forbidden.indices.astype(np.int64) - (np.arange(len(row_of)) - forbidden.indptr[:-1][row_of])
    offset = np.arange(rows, dtype=np.int64)[:, None] * n_items
    j = np.searchsorted(below + row_of * n_items, k + offset, side="right") - forbidden.indptr[:-1][:, None]
    return k + j


def sample_negatives(users: np.ndarray, forbidden: sp.csr_matrix, n: int, seed: int = 0, *,
                     replace: bool = False) -> np.ndarray:
    """``n`` negative items per user, uniformly from the allowed items (distinct unless ``replace``).

    Args:
        users: User indices (they key the random streams), one per row of ``forbidden``.
        forbidden: CSR ``(len(users), n_items)``: items each user must not get (known items and positives).
        n: Negatives per user.
        seed: Seed of the streams; the same ``(seed, user, forbidden row)`` always gives the same items.
        replace: Draw with replacement: ``n`` i.i.d. uniform allowed items, repeats allowed (then a user
            needs only one allowed item). ``False`` (default): ``n`` distinct items.

    Returns:
        Item indices, shape ``(len(users), n)``, int64.

    Raises:
        ConfigError: A user has fewer than ``n`` allowed items (without replacement) or none (with).
    """
    if not isinstance(replace, (bool, np.bool_)):
        raise ConfigError(f"replace must be True or False, got {replace!r}.", "Pass replace=True or False.")
    forbidden = sp.csr_matrix(forbidden)
    forbidden.sum_duplicates()
    forbidden.sort_indices()
    n_items = forbidden.shape[1]
    users = np.asarray(users, dtype=np.int64)
    allowed = n_items - np.diff(forbidden.indptr)
    if len(users) and allowed.min() < (min(n, 1) if replace else n):
        worst = int(np.argmin(allowed))
        raise ConfigError(f"Sampling {n} negatives is impossible: user {int(users[worst])} has only "
                          f"{int(allowed[worst])} items they have not interacted with (of {n_items}).",
                          "Use protocol='full' or a data set with more items.")
    out = np.empty((len(users), n), dtype=np.int64)
    if n == 0 or len(users) == 0:
        return out
    keys = _user_keys(users, seed)
    if replace:
        return _with_replacement(keys, forbidden, n, allowed)
    small = allowed < 4 * n
    for pick, method in ((~small, "reject"), (small, "hash")):
        idx = np.flatnonzero(pick)
        if len(idx):
            sub = forbidden[idx]
            out[idx] = (_by_rejection(keys[idx], sub, n, allowed[idx]) if method == "reject"
                        else _by_hash_order(keys[idx], sub, n))
    return out
