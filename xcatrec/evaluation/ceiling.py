"""How much of a target category a source category can predict at all: evidence reachability.

A collaborative method can rank a held-out item ``i`` of user ``u`` above chance only if the training
data links ``u`` to ``i``: some other user bought ``i`` together with something ``u`` bought. This
module counts, for every held-out row ``(u, i)``, which kinds of link exist:

* ``item_known``: ``i`` has at least one buyer in the known target rows (else only chance ranks it);
* ``via_target``: another user bought ``i`` and one of ``u``'s known target items (what a target-only
  model can use);
* ``via_source``: another user bought ``i`` and one of ``u``'s source items (what transfer can use);
* ``source_only``: ``via_source`` and not ``via_target``: rows where only the source category holds
  evidence, the rows a transfer method can win that a target-only one cannot.

The counts bound what transfer can add: if few rows are ``source_only`` and the source links are weak
(``source_links`` counts them, as co-buyer paths), no model of the source category can lift the target
ranking much, however it is trained. The "Case study" chapter reads this for Electronics to Clothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError


def _links(history: sp.csr_matrix, target_t: sp.csr_matrix, users: np.ndarray, items: np.ndarray,
           chunk: int) -> np.ndarray:
    """For each row ``(users[r], items[r])``: the number of co-buyer paths ``u -> v -> i``,
    where ``u`` and ``v`` share an item of ``history`` and ``v`` bought ``i`` (``target_t`` is items x users)."""
    out = np.zeros(len(users), np.float64)
    co_buyers_of = history @ history.T  # users x users: shared items
    for start in range(0, len(users), chunk):
        u, i = users[start:start + chunk], items[start:start + chunk]
        # u's own path adds nothing: a held-out item is never among u's own rows of target_t
        out[start:start + chunk] = np.asarray(co_buyers_of[u].multiply(target_t[i]).sum(axis=1)).ravel()
    return out


def reachability(dataset: CrossDomainDataset, part: str = "test", *, chunk: int = 2000) -> pd.DataFrame:
    """One row per held-out target row of ``part`` with its evidence links (see the module docstring).

    Args:
        dataset: Any cross-domain data set with a split.
        part: ``"test"`` (links from the known rows: train + valid) or ``"valid"`` (from train).
        chunk: Held-out rows processed at once (memory grows with it).

    Returns:
        Columns ``user``, ``item``, ``target_links``, ``source_links`` (co-buyer path counts) and the
        booleans ``item_known``, ``via_target``, ``via_source``, ``source_only``.
    """
    if part not in ("test", "valid"):
        raise ConfigError(f"part must be 'test' or 'valid', got {part!r}.", "Use part='test' or part='valid'.")
    held = getattr(dataset.target, part)
    if len(held) == 0:
        raise ConfigError(f"The data set has no target {part} rows.", "Load it with a split that has them.")
    known = "known" if part == "test" else "train"
    target = dataset.matrix("target", known)
    source = dataset.matrix("source", "known" if part == "test" else "train")
    target_t = target.T.tocsr()
    users, items = np.asarray(held.users), np.asarray(held.items)
    table = pd.DataFrame({"user": users, "item": items,
                          "target_links": _links(target, target_t, users, items, chunk),
                          "source_links": _links(source, target_t, users, items, chunk)})
    table["item_known"] = np.diff(target.tocsc().indptr)[items] > 0
    table["via_target"] = table["target_links"] > 0
    table["via_source"] = table["source_links"] > 0
    table["source_only"] = table["via_source"] & ~table["via_target"]
    return table


def reachability_summary(table: pd.DataFrame) -> pd.Series:
    """The share of held-out rows of each kind (``item_known`` ... ``source_only``) and the row count."""
    shares = table[["item_known", "via_target", "via_source", "source_only"]].mean()
    return pd.concat([shares, pd.Series({"rows": float(len(table))})])


#: Evidence kinds of a held-out row, strongest first (a user with several rows takes the strongest).
EVIDENCE_KINDS = ("both", "target", "source", "none")


def evidence_kind(table: pd.DataFrame) -> pd.Series:
    """Per user of a :func:`reachability` table: ``"both"``, ``"target"``, ``"source"`` or ``"none"``,
    the strongest kind of link among the user's held-out rows."""
    kind = np.select([table["via_target"] & table["via_source"], table["via_target"], table["via_source"]],
                     [0, 1, 2], default=3)
    strongest = pd.Series(kind, index=table["user"].to_numpy()).groupby(level=0).min()
    return strongest.map(dict(enumerate(EVIDENCE_KINDS))).rename("evidence")


def by_evidence(per_user: pd.DataFrame, table: pd.DataFrame, metric: str = "ndcg@10") -> pd.DataFrame:
    """Mean per-user ``metric`` of each method, split by the users' evidence kind.

    Args:
        per_user: Columns ``method``, ``user`` and ``metric`` (e.g. :func:`~xcatrec.evaluation.per_user_frame`
            of one scenario; several seeds are averaged per user).
        table: The :func:`reachability` table of the same data set and split.

    Returns:
        One row per method, one column per evidence kind present, plus a last row ``"share"``: the
        fraction of users of each kind. ``sum(share * mean)`` over the kinds gives the method's mean.
    """
    missing = {"method", "user", metric} - set(per_user.columns)
    if missing:
        raise ConfigError(f"per_user lacks the columns {sorted(missing)}.",
                          "Pass per_user_frame(records) of one scenario (columns method, user, the metric).")
    kinds = evidence_kind(table)
    values = per_user.pivot_table(index="user", columns="method", values=metric, aggfunc="mean")
    values = values.loc[values.index.isin(kinds.index)]
    grouped = values.groupby(kinds.reindex(values.index).to_numpy())
    out = grouped.mean().T
    out.loc["share"] = grouped.size() / len(values)
    return out[[k for k in EVIDENCE_KINDS if k in out.columns]]
