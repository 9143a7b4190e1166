"""Immutable containers for interaction data of one domain and of a source/target pair.

All ids inside these types are contiguous integer indices. Raw ids (strings as they appear in the
files) live only in the :class:`Vocab` objects, which translate in both directions.

One user index space is shared by both domains of a :class:`CrossDomainDataset`: user ``u`` in the
source domain is the same person as user ``u`` in the target domain. Item indices are per domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from xcatrec.errors import DataError, UnknownIdError


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class Vocab:
    """Bidirectional map between raw ids (strings) and indices ``0..len-1``.

    Args:
        raw: Raw id of each index, in index order; must be unique.
        kind: What the ids are ("user", "item"), used in error messages.
    """

    raw: np.ndarray
    kind: str = "id"

    def __post_init__(self) -> None:
        raw = np.asarray(self.raw).astype(str)
        object.__setattr__(self, "raw", _readonly(raw))

    def __len__(self) -> int:
        return len(self.raw)

    @cached_property
    def _lookup(self) -> dict[str, int]:
        return {r: i for i, r in enumerate(self.raw.tolist())}

    def index(self, raw_ids) -> np.ndarray:
        """Translate raw ids to indices; raises :class:`UnknownIdError` naming the first unknown id."""
        raw_list = [str(r) for r in np.atleast_1d(np.asarray(raw_ids, dtype=object))]
        lookup = self._lookup
        out = np.empty(len(raw_list), dtype=np.int64)
        for j, r in enumerate(raw_list):
            i = lookup.get(r)
            if i is None:
                raise UnknownIdError(
                    f"Unknown {self.kind} id {r!r} (the vocabulary has {len(self)} {self.kind}s).",
                    f"Use a raw {self.kind} id that occurs in the data.",
                )
            out[j] = i
        return out

    def to_raw(self, indices) -> np.ndarray:
        """Translate indices back to raw ids."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise UnknownIdError(
                f"{self.kind} index out of range [0, {len(self)}).", "Pass indices from this vocabulary."
            )
        return self.raw[idx]

    @classmethod
    def range(cls, n: int, kind: str = "id") -> "Vocab":
        """A vocabulary whose raw ids are the strings ``"0".."n-1"``."""
        return cls(np.arange(n).astype(str), kind)


@dataclass(frozen=True)
class Interactions:
    """User-item interactions of one domain as parallel arrays.

    Args:
        users: User index per row (int64).
        items: Item index per row (int64).
        ratings: Optional explicit rating per row (float32); ``None`` for implicit feedback.
        timestamps: Optional time per row (int64, seconds); ``None`` when unknown.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None

    def __post_init__(self) -> None:
        users = np.asarray(self.users, dtype=np.int64)
        items = np.asarray(self.items, dtype=np.int64)
        if users.shape != items.shape or users.ndim != 1:
            raise DataError("users and items must be 1-D arrays of the same length.", "Check the loader.")
        object.__setattr__(self, "users", _readonly(users))
        object.__setattr__(self, "items", _readonly(items))
        for name, dtype in (("ratings", np.float32), ("timestamps", np.int64)):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=dtype)
                if value.shape != users.shape:
                    raise DataError(f"{name} has a different length from users.", "Check the loader.")
                object.__setattr__(self, name, _readonly(value))

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, mask_or_index: np.ndarray) -> "Interactions":
        """Rows selected by a boolean mask or an index array."""
        pick = lambda a: None if a is None else a[mask_or_index]  # noqa: E731
        return Interactions(self.users[mask_or_index], self.items[mask_or_index],
                            pick(self.ratings), pick(self.timestamps))

    def concat(self, other: "Interactions") -> "Interactions":
        """Rows of ``self`` followed by rows of ``other`` (optional columns kept only if both have them)."""
        join = lambda a, b: None if a is None or b is None else np.concatenate([a, b])  # noqa: E731
        return Interactions(np.concatenate([self.users, other.users]), np.concatenate([self.items, other.items]),
                            join(self.ratings, other.ratings), join(self.timestamps, other.timestamps))

    def matrix(self, n_users: int, n_items: int) -> sp.csr_matrix:
        """Binary user x item CSR matrix (duplicates collapse to 1)."""
        m = sp.csr_matrix((np.ones(len(self), dtype=np.float32), (self.users, self.items)),
                          shape=(n_users, n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    @classmethod
    def empty(cls, with_ratings: bool = False) -> "Interactions":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, np.zeros(0, np.float32) if with_ratings else None)


@dataclass(frozen=True)
class Domain:
    """One category of a cross-domain data set with its split.

    ``train`` is what models fit on; ``valid`` is carved out of the original training data for model
    selection and early stopping; ``test`` is the held-out evaluation data. ``known`` (train + valid)
    is what a model may exclude when it ranks items for the test split. ``images`` optionally holds one
    28x28x1 grayscale picture per item (float32 in [0, 1]); only the synthetic marketplace has them.
    """

    name: str
    items: Vocab
    train: Interactions
    valid: Interactions
    test: Interactions
    images: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return len(self.items)

    @cached_property
    def known(self) -> Interactions:
        return self.train.concat(self.valid)


@dataclass(frozen=True)
class DatasetSizes:
    """The sizes a model is built from (enough to rebuild it for loading saved weights)."""

    n_users: int
    n_source_items: int
    n_target_items: int


@dataclass(frozen=True)
class CrossDomainDataset:
    """A source and a target domain over one shared user index space, with a split.

    Args:
        name: Data set name (e.g. ``"amazon-elec-cloth"``).
        users: Shared user vocabulary.
        source: The data-rich domain knowledge is taken from.
        target: The domain recommendations are made for.
        split: Name of the split (``"published"``, ``"loo"``, ``"random"``, ``"temporal"``, ``"cold-start"``).
        cold_users: Users whose whole target history was hidden (cold-start split); empty otherwise.
        info: Free-form provenance (seed, beta, file names) carried into results.
    """

    name: str
    users: Vocab
    source: Domain
    target: Domain
    split: str
    cold_users: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cold_users", _readonly(np.asarray(self.cold_users, dtype=np.int64)))
        for dom in (self.source, self.target):
            if len(dom.train) == 0:
                raise DataError(f"Domain {dom.name!r} of {self.name!r} has no training interactions.",
                                "Check the input file and the cleaning thresholds.")

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def sizes(self) -> DatasetSizes:
        return DatasetSizes(self.n_users, self.source.n_items, self.target.n_items)

    @cached_property
    def overlap(self) -> np.ndarray:
        """Boolean mask over users: has source history and target history (train, valid, test or hidden)."""
        in_src = np.zeros(self.n_users, bool)
        in_src[self.source.known.users] = True
        in_src[self.source.test.users] = True
        in_tgt = np.zeros(self.n_users, bool)
        for part in (self.target.train, self.target.valid, self.target.test):
            in_tgt[part.users] = True
        return in_src & in_tgt

    def matrix(self, domain: str, part: str = "train") -> sp.csr_matrix:
        """CSR user x item matrix of ``domain`` ("source"/"target") and ``part`` ("train"/"valid"/"test"/"known")."""
        dom = self.domain(domain)
        return getattr(dom, part).matrix(self.n_users, dom.n_items)

    def domain(self, which: str) -> Domain:
        if which not in ("source", "target"):
            raise ValueError(f"domain must be 'source' or 'target', not {which!r}")
        return getattr(self, which)

    def swapped(self) -> "CrossDomainDataset":
        """The same data with source and target exchanged (the split's hidden users are dropped)."""
        return CrossDomainDataset(self.name, self.users, self.target, self.source, self.split,
                                  info=dict(self.info, swapped=True))
