"""Scoring by dot products of user and item factors, shared by the embedding-based methods.

Many methods in this package end with the same scoring rule for the target domain,
``score(u, i) = <p_u, q_i> + b_i``: BPR-MF learns ``p`` and ``q`` directly, CMF shares ``p`` across
domains, EMCDR and PTUPCDR compute ``p`` for the target by mapping source factors. :class:`FactorModel`
implements scoring and the weight round trip once, in numpy, from three arrays a subclass sets after
training. Scoring a batch of users against every item is one matrix product, far faster than calling
a Keras model.
"""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass

from xcatrec.core.base import Recommender, saved_arrays
from xcatrec.errors import ConfigError, DataError


@dataclass(frozen=True)
class Factors:
    """Learned factors of one domain, ready for dot-product scoring: ``users @ items.T + item_bias``."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    item_bias: np.ndarray | None = None


class FactorModel(Recommender):
    """A recommender whose target scores are ``user_factors @ item_factors.T + item_bias``.

    Subclasses train in :meth:`_fit` and then set :attr:`user_factors` (``n_users x d``),
    :attr:`item_factors` (``n_target_items x d``) and optionally :attr:`item_bias`
    (``n_target_items``), all float32. A subclass with more learned arrays extends
    :meth:`get_state` / :meth:`set_state` and calls ``super()``.
    """

    def __init__(self, sizes, config=None) -> None:
        super().__init__(sizes, config)
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None
        self.item_bias: np.ndarray | None = None

    def set_factors(self, factors: Factors) -> None:
        """Score with ``factors`` (target domain) from now on."""
        self.user_factors, self.item_factors, self.item_bias = (factors.user_factors, factors.item_factors,
                                                                factors.item_bias)

    def _factors(self) -> tuple[np.ndarray, np.ndarray]:
        if self.user_factors is None or self.item_factors is None:
            raise ConfigError(f"The {self.name} model has not been trained.",
                              "Call model.fit(dataset) or load a saved model first.")
        return self.user_factors, self.item_factors

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        user_f, item_f = self._factors()
        scores = user_f[users] @ item_f.T
        if self.item_bias is not None:
            scores += self.item_bias[None, :]
        return scores.astype(np.float32, copy=False)

    def _score_candidates(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        user_f, item_f = self._factors()
        scores = np.einsum("nd,ncd->nc", user_f[users], item_f[items])
        if self.item_bias is not None:
            scores += self.item_bias[items]
        return scores.astype(np.float32, copy=False)

    def get_state(self) -> dict[str, np.ndarray]:
        user_f, item_f = self._factors()
        state = {"user_factors": user_f, "item_factors": item_f}
        if self.item_bias is not None:
            state["item_bias"] = self.item_bias
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        n_items = self.sizes.n_target_items
        names = ["user_factors", "item_factors"] + (["item_bias"] if "item_bias" in state else [])
        arrays = saved_arrays(self.name, state, names, {"user_factors": self.sizes.n_users,
                                                         "item_factors": n_items, "item_bias": n_items})
        if arrays["user_factors"].shape[1] != arrays["item_factors"].shape[1]:
            raise DataError("The saved user and item factors have different dimensions.",
                            "Load a folder written by this method's save().")
        self.user_factors, self.item_factors = arrays["user_factors"], arrays["item_factors"]
        self.item_bias = arrays.get("item_bias")
