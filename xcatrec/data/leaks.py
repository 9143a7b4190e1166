"""Cross-listed products: one purchase recorded in both categories, which leaks held-out answers.

Amazon lists one product in several categories. The DisenCDR files (``amazon-elec-cloth``,
``amazon-elec-phone``) index items per category, so one purchase of such a product can appear once as
a source row (Electronics) and once as a target row (Clothing, Cell Phones) under two unrelated ids.
When the target row is held out for evaluation, its twin stays in the same user's source history: a
cross-domain model can "recommend" the held-out item by matching the two ids through their buyers,
which is memorising the answer, not transferring taste.

Definition. Known rows are the train + valid rows of the split being evaluated (on the published split:
the published training file); held-out rows never count. ``B_t(i)`` is the set of users with target
item ``i`` among their known target rows and ``B_s(e)`` the same for source item ``e``. A held-out
target row ``(u, i)`` is *leaked* when ``u``'s known source history holds an item ``e`` with::

    Jaccard(B_t(i) | {u}, B_s(e)) >= threshold        (default 0.8)

``u`` is added to ``B_t(i)`` because the held-out row itself is a purchase of ``i`` by ``u``; ``u`` is
in ``B_s(e)`` already. So an item bought by nobody else in the target and a source item bought by ``u``
alone are twins (Jaccard 1). ``e`` is then the *twin* of the held-out row. Item pairs ``(e, i)`` whose
known buyer sets have a Jaccard of at least the threshold are *cross-listed pairs*
(:func:`cross_listed_pairs`); they describe the data set as a whole.

Computation: with ``T`` and ``S`` the binary known user x item matrices, ``|B_t(i) & B_s(e)|`` is
``(T^T S)[i, e]``; only the entries for (held-out item, item in the user's source history) pairs are
formed, from the columns of the held-out items, so nothing items x items is ever dense.

:func:`find_leaks` reports the leaked rows of a split, :func:`remove_leaks` removes the leak (see its
docstring for why the source rows go), and :func:`xcatrec.data.load_dataset` removes it by default.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from xcatrec.data.splits import rebuild
from xcatrec.data.types import CrossDomainDataset, Interactions
from xcatrec.errors import ConfigError

DEFAULT_THRESHOLD = 0.8
HELD_OUT = ("test", "valid")


def check_threshold(threshold) -> float:
    """``threshold`` as a float; :class:`ConfigError` unless it is a finite number in (0, 1]."""
    ok = isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)
    value = float(threshold) if ok else float("nan")
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ConfigError(f"The cross-listing Jaccard threshold must be a finite number in (0, 1], "
                          f"not {threshold!r}.",
                          f"Use e.g. {DEFAULT_THRESHOLD} (1.0 finds only identical buyer sets).")
    return value


def _known(ds: CrossDomainDataset) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray, np.ndarray]:
    """Known target and source matrices (binary CSR, sorted indices) and the buyers per item."""
    target, source = ds.matrix("target", "known"), ds.matrix("source", "known")
    target.sort_indices()
    source.sort_indices()
    n_t = np.diff(target.tocsc().indptr).astype(np.int64)
    n_s = np.diff(source.tocsc().indptr).astype(np.int64)
    return target, source, n_t, n_s


def _lookup(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[k], cols[k]]`` for every k (0 where absent), vectorised; indices must be sorted."""
    n_cols = np.int64(matrix.shape[1])
    stored = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr)) * n_cols
    stored += matrix.indices
    wanted = rows.astype(np.int64) * n_cols + cols
    if len(stored) == 0:
        return np.zeros(len(wanted), matrix.dtype)
    pos = np.minimum(np.searchsorted(stored, wanted), len(stored) - 1)
    return np.where(stored[pos] == wanted, matrix.data[pos], 0)


def _held_out(ds: CrossDomainDataset, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, target item) pairs of the held-out ``part``, sorted by user then item."""
    if part not in HELD_OUT:
        raise ConfigError(f"Unknown held-out part {part!r}.", f"Use one of {list(HELD_OUT)}.")
    rows = getattr(ds.target, part)
    keys = np.unique(rows.users * np.int64(max(ds.target.n_items, 1)) + rows.items)
    return keys // max(ds.target.n_items, 1), keys % max(ds.target.n_items, 1)


def _twins(known, users: np.ndarray, items: np.ndarray, threshold: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (held-out row k, source item e in S[users[k]]) with Jaccard >= threshold.

    Returns ``(k, e, jaccard, identical)``, sorted by k and then by decreasing Jaccard.
    """
    target, source, n_t, n_s = known
    counts = np.diff(source.indptr)[users]
    row = np.repeat(np.arange(len(users)), counts)
    first = np.repeat(source.indptr[users] - (np.cumsum(counts) - counts), counts)
    e = source.indices[first + np.arange(counts.sum())].astype(np.int64)
    if len(row) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0), np.zeros(0, bool)
    i = items[row]
    # |B_t(i) & B_s(e)| only for the held-out items and the source items that occur with them
    t_items, t_pos = np.unique(i, return_inverse=True)
    s_items, s_pos = np.unique(e, return_inverse=True)
    shared = (target.tocsc()[:, t_items].T.tocsr() @ source.tocsc()[:, s_items]).tocsr()
    shared.sum_duplicates()
    shared.sort_indices()
    common = _lookup(shared, t_pos, s_pos).astype(np.int64)
    added = 1 - _lookup(target, users[row], i).astype(np.int64)  # u joins B_t(i) unless already in it
    inter = common + added
    union = n_t[i] + added + n_s[e] - inter
    jaccard = inter / union
    keep = jaccard >= threshold
    row, e, jaccard, identical = row[keep], e[keep], jaccard[keep], (inter == union)[keep]
    order = np.lexsort((-jaccard, row))
    return row[order], e[order], jaccard[order], identical[order]


def cross_listed_pairs(dataset: CrossDomainDataset, *, threshold: float = DEFAULT_THRESHOLD,
                       min_support: int = 1) -> pd.DataFrame:
    """Item pairs whose known buyer sets nearly coincide: probably one product listed twice.

    Args:
        dataset: The data set; only its known rows (train + valid of both domains) are used.
        threshold: Least Jaccard of the two buyer sets, in (0, 1].
        min_support: Least number of known target buyers of the target item.

    Returns:
        One row per pair, sorted by source then target item, with columns ``source_item``,
        ``target_item`` (indices), ``jaccard``, ``shared`` (buyers in both sets), ``source_support``
        (``|B_s(e)|``) and ``target_support`` (``|B_t(i)|``).
    """
    threshold = check_threshold(threshold)
    if isinstance(min_support, bool) or not isinstance(min_support, numbers.Integral) or min_support < 1:
        raise ConfigError(f"min_support must be an integer >= 1, not {min_support!r}.", "Use e.g. 1 or 2.")
    target, source, n_t, n_s = _known(dataset)
    shared = (target.T.tocsr() @ source).tocoo()
    t_item, s_item = shared.row.astype(np.int64), shared.col.astype(np.int64)
    inter = np.rint(shared.data).astype(np.int64)
    jaccard = inter / (n_t[t_item] + n_s[s_item] - inter)
    keep = (jaccard >= threshold) & (n_t[t_item] >= min_support)
    frame = pd.DataFrame({"source_item": s_item[keep], "target_item": t_item[keep], "jaccard": jaccard[keep],
                          "shared": inter[keep], "source_support": n_s[s_item[keep]],
                          "target_support": n_t[t_item[keep]]})
    return frame.sort_values(["source_item", "target_item"], ignore_index=True)


@dataclass(frozen=True)
class LeakReport:
    """Held-out target rows of one split whose purchase also sits in the user's source history.

    Attributes:
        dataset, source, target, split: What was examined.
        part: The held-out part (``"test"`` or ``"valid"``).
        threshold: The Jaccard threshold.
        rows: One row per leaked held-out (user, target item) pair: ``user``, ``item`` (target item),
            ``twin`` (the source item with the highest Jaccard), ``jaccard``, ``identical`` (the buyer
            sets coincide), all indices; ``twins`` counts the user's source items at or above the threshold.
        test_users: Users with a row in the held-out part.
        affected_test_users: Those with at least one leaked row.
        identical: Leaked rows whose buyer sets are identical (Jaccard 1).
        item_pairs: Cross-listed item pairs found from known rows (:func:`cross_listed_pairs` with
            ``min_support=2``: pairs of items bought by one user alone coincide trivially and are not counted).
        twin_rows: Distinct (user, source item) twins; what :func:`remove_leaks` drops for this part.
    """

    dataset: str
    source: str
    target: str
    split: str
    part: str
    threshold: float
    rows: pd.DataFrame
    test_users: int
    affected_test_users: int
    identical: int
    item_pairs: int
    twin_rows: int

    @property
    def affected_share(self) -> float:
        return self.affected_test_users / self.test_users if self.test_users else 0.0

    def to_dict(self, users=None, source_items=None, target_items=None) -> dict:
        """JSON-ready summary; the leaked rows are listed with raw ids when the vocabularies are given."""
        out = {"dataset": self.dataset, "source": self.source, "target": self.target, "split": self.split,
               "part": self.part, "threshold": self.threshold, "test_users": self.test_users,
               "affected_test_users": self.affected_test_users, "affected_share": self.affected_share,
               "identical": self.identical, "item_pairs": self.item_pairs, "twin_rows": self.twin_rows}
        raw = lambda vocab, col: (self.rows[col].tolist() if vocab is None  # noqa: E731
                                  else vocab.to_raw(self.rows[col].to_numpy()).tolist())
        out["leaked_rows"] = [{"user": u, "item": i, "twin": e, "jaccard": float(j)}
                              for u, i, e, j in zip(raw(users, "user"), raw(target_items, "item"),
                                                    raw(source_items, "twin"), self.rows["jaccard"])]
        return out


def find_leaks(dataset: CrossDomainDataset, *, threshold: float = DEFAULT_THRESHOLD,
               part: str = "test") -> LeakReport:
    """Find the held-out target rows of ``part`` whose twin sits in the user's known source history.

    See the module docstring for the definition. Works for every split, cold-start included (the hidden
    users' target rows are the test part; their source history is known).
    """
    threshold = check_threshold(threshold)
    users, items = _held_out(dataset, part)
    known = _known(dataset)
    k, e, jaccard, identical = _twins(known, users, items, threshold)
    first = np.r_[True, k[1:] != k[:-1]] if len(k) else np.zeros(0, bool)
    twins_per_row = np.bincount(k, minlength=len(users))[k[first]] if len(k) else np.zeros(0, np.int64)
    rows = pd.DataFrame({"user": users[k[first]], "item": items[k[first]], "twin": e[first],
                         "jaccard": jaccard[first], "identical": identical[first], "twins": twins_per_row})
    twin_rows = len(np.unique(users[k] * np.int64(max(dataset.source.n_items, 1)) + e))
    info = dataset.info
    return LeakReport(dataset=dataset.name, source=str(info.get("source", dataset.source.name)),
                      target=str(info.get("target", dataset.target.name)), split=dataset.split, part=part,
                      threshold=threshold, rows=rows, test_users=len(np.unique(users)),
                      affected_test_users=int(rows["user"].nunique()), identical=int(rows["identical"].sum()),
                      item_pairs=len(cross_listed_pairs(dataset, threshold=threshold, min_support=2)),
                      twin_rows=twin_rows)


def remove_leaks(dataset: CrossDomainDataset, *, threshold: float = DEFAULT_THRESHOLD,
                 min_other_buyers: int = 1) -> CrossDomainDataset:
    """A copy of ``dataset`` whose known source history holds no twin of a held-out target row.

    For each held-out target row ``(u, i)`` of the test part and of the validation part, every source
    row ``(u, e)`` (train or valid) whose item is a twin of ``i`` (see the module docstring) is dropped;
    nothing else changes. Twins are found once, on the data as given, for both parts together.

    Why the source rows go: they are a second record of the very purchase that is held out, so they are
    the leak itself. Dropping the held-out target row instead would remove test users (or their
    hardest-to-hide purchases) and change what is measured; dropping the source row keeps every test
    and validation row and every test user, and only the duplicated record disappears. Validation twins
    go too, since they would inflate the validation scores that model selection reads. The source
    ``test`` rows (row-level splits hold some out) are not history a model sees and stay as they are.

    Only twins whose target item has at least ``min_other_buyers`` known buyers besides ``u`` are
    dropped (detection, :func:`find_leaks`, keeps the definition's single-buyer twins). A held-out item
    that nobody else bought has no co-occurrence any model could learn from, so the "twin" of two items
    bought by ``u`` alone is a coincidence, not a leak: on the published splits no test row is of that
    kind, while about 4,500 validation rows per Amazon pair are, and dropping their source rows would
    remove real history for nothing. ``min_other_buyers=0`` drops every twin the definition finds.

    ``info`` records ``leaks="removed"``, ``leak_threshold`` and ``leak_rows_dropped`` (source rows,
    0 when there is nothing to drop) and ``leak_twins`` (distinct twin rows per held-out part).

    Raises:
        ConfigError: ``threshold`` is not a finite number in (0, 1].
    """
    threshold = check_threshold(threshold)
    if isinstance(min_other_buyers, bool) or not isinstance(min_other_buyers, numbers.Integral) \
            or min_other_buyers < 0:
        raise ConfigError(f"min_other_buyers must be an integer >= 0, not {min_other_buyers!r}.", "Use 1.")
    known = _known(dataset)
    target, n_t = known[0], known[2]
    n_src = np.int64(max(dataset.source.n_items, 1))
    drop, per_part = [], {}
    for part in HELD_OUT:
        users, items = _held_out(dataset, part)
        k, e, _, _ = _twins(known, users, items, threshold)
        others = n_t[items[k]] - _lookup(target, users[k], items[k]).astype(np.int64)
        k, e = k[others >= min_other_buyers], e[others >= min_other_buyers]
        keys = np.unique(users[k] * n_src + e)
        per_part[part] = len(keys)
        drop.append(keys)
    drop_keys = np.unique(np.concatenate(drop))
    source, dropped = dataset.source, 0
    if len(drop_keys):
        kept: dict[str, Interactions] = {}
        for name in ("train", "valid"):
            rows = getattr(source, name)
            gone = np.isin(rows.users * n_src + rows.items, drop_keys)
            dropped += int(gone.sum())
            kept[name] = rows.subset(~gone)
        source = replace(source, **kept)
    return rebuild(dataset, source=source, leaks="removed", leak_threshold=threshold,
                   leak_rows_dropped=dropped, leak_twins=per_part, leak_min_other_buyers=int(min_other_buyers))


__all__ = ["DEFAULT_THRESHOLD", "LeakReport", "check_threshold", "cross_listed_pairs", "find_leaks",
           "remove_leaks"]
