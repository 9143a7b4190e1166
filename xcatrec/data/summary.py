"""Summary statistics of a cross-domain data set: one row per domain, and how concentrated its items are."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xcatrec.data.leaks import cross_listed_pairs
from xcatrec.errors import DataError
from xcatrec.data.splits import pooled
from xcatrec.data.types import CrossDomainDataset


def dataset_stats(ds: CrossDomainDataset) -> pd.DataFrame:
    """One row per domain (source, then target) describing its size and split.

    Columns: ``role``, ``domain``, ``users`` (users with any row in the domain), ``items`` (vocabulary
    size), ``train``, ``valid``, ``test`` (rows), ``density`` (distinct user-item pairs over
    ``users * items``), ``overlap_users`` (users with history in both domains, the same in both rows),
    ``cold_users`` (target users whose history is hidden by a cold-start split) and ``cross_listed``
    (item pairs bought by at least two of the same users whose known buyer sets have a Jaccard of at
    least 0.8, probably one product listed in both categories, see
    :func:`xcatrec.data.leaks.cross_listed_pairs`; the same in both rows). Pairs of items bought by one
    user alone are not counted: they coincide trivially and say nothing about the products.
    """
    cross_listed = len(cross_listed_pairs(ds, threshold=0.8, min_support=2))
    rows = []
    for role in ("source", "target"):
        dom = ds.domain(role)
        inter, _ = pooled(dom)
        users = np.unique(inter.users)
        pairs = np.unique(inter.users * np.int64(max(dom.n_items, 1)) + inter.items).size
        cells = len(users) * dom.n_items
        rows.append({"role": role, "domain": dom.name, "users": len(users), "items": dom.n_items,
                     "train": len(dom.train), "valid": len(dom.valid), "test": len(dom.test),
                     "density": pairs / cells if cells else 0.0, "overlap_users": int(ds.overlap.sum()),
                     "cold_users": len(ds.cold_users) if role == "target" else 0, "cross_listed": cross_listed})
    return pd.DataFrame(rows)


def gini(counts) -> float:
    """Gini coefficient of non-negative counts: 0 when all are equal, ``1 - 1/n`` when one holds all.

    With the counts sorted ascending, ``p_1 <= ... <= p_n``, and ``c_i = (p_1 + ... + p_i) / sum(p)``
    (the Lorenz curve), ``G = 1 + 1/n - (2/n) sum_i c_i``; this equals the mean absolute difference
    of all ordered pairs divided by twice the mean.

    Raises:
        DataError: No counts, a negative or non-finite count, or all counts zero.
    """
    p = np.sort(np.asarray(counts, dtype=float).ravel())
    if p.size == 0 or not np.all(np.isfinite(p)) or p[0] < 0 or p[-1] == 0:
        raise DataError("gini needs at least one positive count and no negative or non-finite ones.",
                        "Pass interaction counts per item, e.g. np.bincount(domain.train.items).")
    n = p.size
    return float(1 + 1 / n - 2 * np.sum(np.cumsum(p) / p.sum()) / n)
