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

from xcatrec.errors import ConfigError, DataError
from xcatrec.models.base import Recommender


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
        expected = {"user_factors": self.sizes.n_users, "item_factors": self.sizes.n_target_items,
                    "item_bias": self.sizes.n_target_items}
        for key in ("user_factors", "item_factors"):
            if key not in state:
                raise DataError(f"The saved {self.name} weights have no {key!r} array.",
                                "Load a folder written by this method's save().")
        for key, rows in expected.items():
            if key in state and len(state[key]) != rows:
                raise DataError(f"The saved {key!r} has {len(state[key])} rows but the model needs {rows}.",
                                "Load weights saved from a model of the same data set.")
        if state["user_factors"].shape[1] != state["item_factors"].shape[1]:
            raise DataError("The saved user and item factors have different dimensions.",
                            "Load a folder written by this method's save().")
        self.user_factors = np.asarray(state["user_factors"], np.float32)
        self.item_factors = np.asarray(state["item_factors"], np.float32)
        bias = state.get("item_bias")
        self.item_bias = None if bias is None else np.asarray(bias, np.float32)
