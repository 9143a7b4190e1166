"""EASE: a closed-form item-item model, one of the strongest target-only references for top-N ranking.

Paper: Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019. Reproducibility
studies (Dacrema et al. 2019; Anelli et al. 2022) find it hard to beat on sparse implicit data, so a
transfer method that does not beat it has not shown that the source category helps.

With ``X`` the binary users x items training matrix, EASE learns the item-item weights

    B = argmin ||X - X B||_F^2 + lam ||B||_F^2   subject to   diag(B) = 0,

whose solution is ``P = (X^T X + lam I)^-1`` and ``B_ij = -P_ij / P_jj`` (``B_jj = 0``). A user's
scores are ``x_u B``. The Gram matrix is dense: for the ~49,000 Clothing items it would take 9.5 GB
in float32, so ``max_items`` keeps the most popular items (by training count) in the model; the other
items are ranked after all of them, by popularity. Everything is float32 and the inverse overwrites
the Gram matrix, so memory peaks at about ``2 * 4 * max_items^2`` bytes: 3.2 GB for 20,000 items.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError, DataError
from xcatrec.core.base import FitReport, ModelConfig, Phase, Recommender, saved_arrays
from xcatrec.core.search import Float, Int

#: Items outside the model score below every modelled item: this offset, plus a popularity order in [0, 0.5].
OUTSIDE = -1e3


@dataclass(frozen=True)
class EASEConfig(ModelConfig):
    """Hyper-parameters of EASE.

    Args:
        lam: L2 penalty ``lambda`` on the item-item weights (added to the diagonal of the Gram matrix).
        max_items: Model only this many of the most popular target items (0 = all of them).
    """

    lam: float = 500.0
    max_items: int = 20000

    def __post_init__(self) -> None:
        if isinstance(self.lam, bool) or not isinstance(self.lam, (int, float)) or not 0 < self.lam < float("inf"):
            raise ConfigError(f"lam must be a positive finite number, got {self.lam!r}.", "Use lam=500, for example.")
        if isinstance(self.max_items, bool) or not isinstance(self.max_items, int) or self.max_items < 0:
            raise ConfigError(f"max_items must be a whole number >= 0, got {self.max_items!r}.",
                              "Use max_items=20000 (0 models every item).")


def ease_weights(x, lam: float, columns: np.ndarray | None = None) -> np.ndarray:
    """The EASE weight matrix ``B`` (float32) of a users x features matrix ``x``.

    Args:
        x: Binary (or weighted) users x features matrix, sparse or dense.
        lam: The L2 penalty added to the diagonal of the Gram matrix.
        columns: Features to predict (all by default). Column ``j`` of the result holds the weights of
            every feature for predicting feature ``columns[j]``, with ``B[columns[j], j] = 0``: the
            same closed form, ``B_ij = -P_ij / P_jj``, restricted to those columns.
    """
    gram = np.asarray((x.T @ x).todense() if hasattr(x, "todense") else x.T @ x, dtype=np.float32)
    gram[np.diag_indices_from(gram)] += np.float32(lam)
    inverse = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)  # float32: half the memory
    if columns is None:
        columns, weights = np.arange(len(inverse)), inverse
    else:
        columns = np.asarray(columns, np.int64)
        weights = inverse[:, columns]
        del inverse
    weights /= -weights[columns, np.arange(len(columns))][None, :]
    weights[columns, np.arange(len(columns))] = 0.0
    return weights


class EASE(Recommender):
    """EASE on the target domain alone (see the module docstring)."""

    name: ClassVar[str] = "ease"
    config_class: ClassVar[type[ModelConfig]] = EASEConfig
    phases: ClassVar[tuple[Phase, ...]] = (Phase("closed-form", "target"),)
    search_space = {"lam": Float(10.0, 5000.0, log=True), "max_items": Int(5000, 20000, log=True)}

    weights: np.ndarray | None = None  # the item-item weights B of the modelled items
    modelled: np.ndarray | None = None  # the modelled items, sorted
    outside: np.ndarray | None = None  # the score of every item, used for those outside the model
    _history = None

    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport:
        tic = time.perf_counter()
        x = dataset.matrix("target", "train")
        counts = np.diff(x.tocsc().indptr).astype(np.float64)
        n = len(counts) if not self.config.max_items else min(self.config.max_items, len(counts))
        self.modelled = np.sort(np.argsort(-counts, kind="stable")[:n])
        self.weights = ease_weights(x[:, self.modelled], float(self.config.lam))
        self.outside = (OUTSIDE + 0.5 * counts / max(counts.max(), 1.0)).astype(np.float32)
        self._history = x
        seconds = time.perf_counter() - tic
        if verbose:
            print(f"ease: {n} of {len(counts)} items modelled in {seconds:.1f} s")
        return FitReport(epochs=1, seconds=seconds, seconds_per_epoch=seconds, best_epoch=1)

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        self.get_state()  # raises when not trained
        scores = np.repeat(self.outside[None, :], len(users), axis=0)
        scores[:, self.modelled] = self._history[users][:, self.modelled] @ self.weights
        return scores

    def get_state(self) -> dict[str, np.ndarray]:
        if self.weights is None:
            raise ConfigError("The EASE model has not been trained.", "Call model.fit(dataset) first.")
        x = self._history.tocsr()
        return {"weights": self.weights, "modelled": self.modelled, "outside": self.outside,
                "history_indptr": x.indptr, "history_indices": x.indices}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        names = ["weights", "outside", "modelled", "history_indptr", "history_indices"]
        arrays = saved_arrays(self.name, state, names, {"outside": self.sizes.n_target_items})
        self.weights, self.outside = arrays["weights"], arrays["outside"]
        self.modelled = np.asarray(state["modelled"], np.int64)
        if self.weights.shape != (len(self.modelled),) * 2:
            raise DataError("The saved EASE arrays do not fit this model's sizes.",
                            "Load a folder written by EASE.save() for the same data set.")
        indices = np.asarray(state["history_indices"])
        self._history = sp.csr_matrix((np.ones(len(indices), np.float32), indices, state["history_indptr"]),
                                      shape=(self.sizes.n_users, self.sizes.n_target_items))
