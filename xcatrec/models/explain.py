"""Why a neighbourhood model recommended an item: the score split into one term per history item.

Item-based kNN scores are sums (Sarwar et al., WWW 2001): the score of target item ``j`` for user
``u`` is ``sum_i h(u, i) * sim(i, j) + tiebreak(j)``, over the items ``i`` in the user's history, with
``h(u, i)`` the history weight (1 for a target item, ``source_weight`` for a source item in
``cross-itemknn``) and ``tiebreak(j)`` the tiny popularity term that orders otherwise equal scores.
Each term is therefore an exact, additive explanation: "you got this Clothing item because you bought
these Electronics and these Clothing items", with the share each one contributed. :func:`explain`
returns those terms for ``itemknn``, ``cross-itemknn`` and ``source-only``; :func:`score_by_domain`
sums them per domain for many (user, item) pairs at once.

Taught in the chapter "Trends and open problems" (interpretability).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.models.cross_itemknn import CrossItemKNN
from xcatrec.models.itemknn import SparseNeighbourhood

COLUMNS = ["domain", "item", "raw_item", "weight", "similarity", "contribution", "share"]


@dataclass(frozen=True)
class Explanation:
    """The additive explanation of one score.

    Attributes:
        user: User index.
        item: Target item index that was scored.
        score: ``model.score([user], [item])``.
        tiebreak: The popularity tie-break inside that score (0 when switched off).
        contributions: One row per history item with a non-zero term, largest first: ``domain``
            (``"source"`` / ``"target"``), ``item`` (index in its domain), ``raw_item`` (raw id when a
            data set was given, else ``None``), ``weight`` (history weight), ``similarity``,
            ``contribution`` (weight x similarity) and ``share`` (contribution / (score - tiebreak)).
            ``contributions.contribution.sum() + tiebreak == score`` up to float32 rounding.
    """

    user: int
    item: int
    score: float
    tiebreak: float
    contributions: pd.DataFrame

    def by_domain(self) -> pd.Series:
        """Total contribution of the source and of the target history (0 for a domain without terms)."""
        totals = self.contributions.groupby("domain")["contribution"].sum()
        return totals.reindex(["source", "target"], fill_value=0.0)


def _neighbour_domains(model: SparseNeighbourhood, caller: str) -> tuple[np.ndarray, np.ndarray]:
    """Domain label and in-domain item index of every row of a trained neighbourhood model's similarity
    matrix (source items first in a cross-domain model); ``caller`` names the function in the errors."""
    if not isinstance(model, SparseNeighbourhood):
        raise ConfigError(f"{caller}() needs an item-neighbourhood model, got {type(model).__name__}.",
                          "Use itemknn, cross-itemknn or source-only; factor models have no additive terms.")
    model._product(np.zeros(0, np.int64))  # raises a clear error when the model is not trained
    rows = np.arange(model._sim.shape[0])
    n_source = model.sizes.n_source_items if isinstance(model, CrossItemKNN) else 0
    return np.where(rows < n_source, "source", "target"), np.where(rows < n_source, rows, rows - n_source)


def explain(model: SparseNeighbourhood, user: int, item: int, *, dataset: CrossDomainDataset | None = None,
            top: int | None = None) -> Explanation:
    """Split ``model``'s score of target ``item`` for ``user`` into one term per history item.

    Args:
        model: A trained ``itemknn``, ``cross-itemknn`` or ``source-only`` model.
        user: User index.
        item: Target item index.
        dataset: The data set the model was trained on; when given, ``raw_item`` holds raw item ids.
        top: Keep only the ``top`` largest terms (the sum check then needs all terms: leave it ``None``).

    Raises:
        ConfigError: The model is not a neighbourhood model or is not trained.
        UnknownIdError: ``user`` or ``item`` is out of range.
    """
    domains, in_domain = _neighbour_domains(model, "explain")
    user = int(model._check_ids([user], model.sizes.n_users, "user")[0])
    item = int(model._check_ids([item], model.sizes.n_target_items, "item")[0])
    history = model._history[user]
    rows, weights = history.indices, history.data.astype(np.float64)
    similarity = np.asarray(model._sim[rows, item].toarray(), dtype=np.float64).ravel()
    contribution = weights * similarity
    keep = contribution != 0
    frame = pd.DataFrame({"domain": domains[rows[keep]], "item": in_domain[rows[keep]].astype(np.int64),
                          "weight": weights[keep], "similarity": similarity[keep],
                          "contribution": contribution[keep]})
    frame["raw_item"] = (None if dataset is None else
                         [str(dataset.domain(d).items.to_raw([i])[0]) for d, i in zip(frame.domain, frame.item)])
    tiebreak = float(model._tiebreak[item])
    score = float(model.score([user], [item])[0, 0])
    total = float(contribution.sum())
    frame["share"] = frame["contribution"] / total if total != 0 else np.nan
    frame = frame.sort_values(["contribution", "domain", "item"], ascending=[False, True, True],
                              kind="stable").reset_index(drop=True)[COLUMNS]
    return Explanation(user, item, score, tiebreak, frame if top is None else frame.head(top))


def score_by_domain(model: SparseNeighbourhood, users, items) -> pd.DataFrame:
    """The scores of many (user, item) pairs split into their source part, target part and tie-break.

    Args:
        model: A trained ``itemknn``, ``cross-itemknn`` or ``source-only`` model.
        users: 1-D array of user indices.
        items: 1-D array of target item indices, one per user (e.g. each user's top recommendation).

    Returns:
        One row per pair: ``user``, ``item``, ``source`` (sum of the terms of the user's source items),
        ``target`` (the same for target items), ``tiebreak`` and ``score`` (``model.score``), with
        ``source + target + tiebreak == score`` up to float32 rounding.
    """
    domains, _ = _neighbour_domains(model, "score_by_domain")
    users = model._check_ids(users, model.sizes.n_users, "user")
    items = model._check_ids(items, model.sizes.n_target_items, "item")
    if users.shape != items.shape:
        raise ConfigError(f"users and items must be paired, got {users.size} users and {items.size} items.",
                          "Pass one target item per user.")
    # per pair: history row of the user times the similarity column of the item, split by neighbour domain
    terms = model._history[users].multiply(model._sim[:, items].T.tocsr()).tocsr()
    rows = np.repeat(np.arange(len(users)), np.diff(terms.indptr))
    is_source = domains[terms.indices] == "source"
    source = np.bincount(rows[is_source], weights=terms.data[is_source], minlength=len(users))
    target = np.bincount(rows[~is_source], weights=terms.data[~is_source], minlength=len(users))
    scores = model.score(users, items[:, None])[:, 0] if len(users) else np.zeros(0, np.float32)
    return pd.DataFrame({"user": users, "item": items, "source": source, "target": target,
                         "tiebreak": model._tiebreak[items].astype(np.float64), "score": scores.astype(np.float64)})
