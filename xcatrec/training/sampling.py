"""Negative sampling for pairwise (BPR-style) training, vectorised with numpy.

Implicit feedback only tells us what a user *did* interact with. Pairwise losses such as BPR compare
each observed (user, item) pair with an item the user did not interact with, drawn uniformly at random.
:class:`NegativeSampler` draws one such item per training row by rejection: draw uniformly, look the
drawn pairs up in the sorted keys of the interaction matrix, redraw only the rows that hit an observed
pair. Each round costs ``O(n log nnz)`` and the number of rows left shrinks geometrically, so an epoch
of a million rows takes milliseconds. No Python loop runs over rows.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from xcatrec.errors import DataError


class NegativeSampler:
    """Uniform sampler of items a user has not interacted with.

    Args:
        seen: User x item matrix (CSR) of the interactions that must never be drawn as negatives,
            usually the training matrix of the domain being trained.
        max_rounds: Rejection rounds before the few remaining rows are resolved exactly.

    Raises:
        DataError: A user who appears in ``seen`` has interacted with every item, so no negative exists.
    """

    def __init__(self, seen: sp.csr_matrix, max_rounds: int = 50) -> None:
        seen = sp.csr_matrix(seen, copy=True)
        seen.sum_duplicates()
        seen.sort_indices()
        self.n_users, self.n_items = seen.shape
        self.max_rounds = max_rounds
        counts = np.diff(seen.indptr)
        if self.n_items == 0 or (counts >= self.n_items).any():
            full = int(np.flatnonzero(counts >= self.n_items)[0]) if self.n_items else 0
            raise DataError(f"User index {full} has interacted with all {self.n_items} items, so no "
                            "negative item can be sampled for them.",
                            "Drop such users or use a data set with more items.")
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), counts)
        # Rows ascending, columns ascending within a row: the keys are sorted.
        self._keys = rows * self.n_items + seen.indices.astype(np.int64)
        self._seen = seen

    def is_seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean mask: was ``(users[i], items[i])`` observed?"""
        if len(self._keys) == 0:
            return np.zeros(len(users), dtype=bool)
        query = np.asarray(users, np.int64) * self.n_items + np.asarray(items, np.int64)
        pos = np.searchsorted(self._keys, query)
        pos = np.minimum(pos, len(self._keys) - 1)
        return self._keys[pos] == query

    def sample(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One unobserved item per entry of ``users``, uniform over that user's unobserved items.

        Args:
            users: User index per training row (1-D integer array).
            rng: Source of randomness; the same generator state gives the same draws.

        Returns:
            Item indices (int64), same length as ``users``.
        """
        users = np.asarray(users, dtype=np.int64)
        items = rng.integers(0, self.n_items, size=len(users), dtype=np.int64)
        todo = np.flatnonzero(self.is_seen(users, items))
        for _ in range(self.max_rounds):
            if len(todo) == 0:
                return items
            items[todo] = rng.integers(0, self.n_items, size=len(todo), dtype=np.int64)
            todo = todo[self.is_seen(users[todo], items[todo])]
        for row in todo:  # users who have seen almost every item: draw from the exact complement
            seen = self._seen.indices[self._seen.indptr[users[row]]:self._seen.indptr[users[row] + 1]]
            items[row] = rng.choice(np.setdiff1d(np.arange(self.n_items), seen))
        return items
