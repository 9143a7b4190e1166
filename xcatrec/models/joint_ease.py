"""Joint EASE: EASE whose item-item regression also reads the user's source-category history.

Paper: Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019, applied to the joined
user x (target items + source items) matrix, the closed-form counterpart of the "collaborative
filtering over the joined domains" reference (Berkovsky, Kuflik and Ricci, UMAP 2007). Taught in the
chapter "Strong simple baselines" next to :mod:`xcatrec.models.ease`.

Every user is one row ``z_u = [x_u^target | w * x_u^source]``. For each modelled target item ``j``
the model regresses its column on every other feature, target and source alike::

    B = argmin ||X_target - Z B||_F^2 + lam ||B||_F^2   subject to   B_jj = 0 for the target items,

with the same closed form as EASE, ``P = (Z^T Z + lam I)^-1``, ``B_ij = -P_ij / P_jj``, kept for the
target columns only. A user's scores are ``z_u B``. The weight ``w`` of the source block is a
per-block penalty in disguise: scaling a feature by ``w`` divides its effective L2 penalty by
``w^2``, so ``w`` says how much the regression may lean on the source history (``w = 0`` is EASE).
A cold-start user (no target history) is scored from ``w * x_u^source`` alone.

Memory: the Gram matrix covers ``max_items + max_source_items`` features, dense float32, so it
peaks near ``2 * 4 * n^2`` bytes (1.2 GB for the default 10,000 + 2,000); the fit's time grows
with ``n^3`` (about half a minute for 12,000 features on one core here).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from xcatrec.core.base import FitReport, ModelConfig, Phase, check_source_weight, saved_arrays
from xcatrec.core.search import Float, Int
from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError, DataError
from xcatrec.models.ease import EASE, EASEConfig, OUTSIDE, ease_weights


def most_popular(x: sp.spmatrix, n: int) -> np.ndarray:
    """The ``n`` columns of ``x`` with the most non-zeros (all when ``n == 0``), sorted by index."""
    counts = np.diff(sp.csc_matrix(x).indptr)
    n = len(counts) if not n else min(n, len(counts))
    return np.sort(np.argsort(-counts, kind="stable")[:n])


@dataclass(frozen=True)
class JointEASEConfig(EASEConfig):
    """Hyper-parameters of joint EASE: those of :class:`EASEConfig` plus the source block.

    Args:
        source_weight: Weight ``w`` of the source history in each user's row (0 gives EASE).
        max_source_items: Model only this many of the most popular source items as features (0 = all).
    """

    lam: float = 500.0
    max_items: int = 10000
    source_weight: float = 1.0
    max_source_items: int = 2000

    def __post_init__(self) -> None:
        super().__post_init__()
        check_source_weight(self.source_weight, 1.0)
        n = self.max_source_items
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"max_source_items must be a whole number >= 0, got {n!r}.",
                              "Use max_source_items=2000 (0 uses every source item).")


class JointEASE(EASE):
    """EASE over target and source features, predicting target items (see the module docstring)."""

    name: ClassVar[str] = "joint-ease"
    config_class: ClassVar[type[ModelConfig]] = JointEASEConfig
    phases: ClassVar[tuple[Phase, ...]] = (Phase("closed-form", "both"),)
    search_space = {"lam": Float(10.0, 5000.0, log=True), "source_weight": Float(0.05, 4.0, log=True),
                    "max_source_items": Int(500, 5000, log=True)}

    source_features: np.ndarray | None = None  # the source items used as features, sorted
    _source_history = None

    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport:
        cfg: JointEASEConfig = self.config
        tic = time.perf_counter()
        x = dataset.matrix("target", "train")
        counts = np.diff(x.tocsc().indptr).astype(np.float64)
        self.modelled = most_popular(x, cfg.max_items)
        xs = dataset.matrix("source", "train")
        self.source_features = (most_popular(xs, cfg.max_source_items) if cfg.source_weight > 0
                                else np.zeros(0, np.int64))
        self._history, self._source_history = x, xs
        z = self._features(np.arange(self.sizes.n_users))
        self.weights = ease_weights(z, float(cfg.lam), columns=np.arange(len(self.modelled)))
        self.outside = (OUTSIDE + 0.5 * counts / max(counts.max(), 1.0)).astype(np.float32)
        seconds = time.perf_counter() - tic
        if verbose:
            print(f"joint-ease: {len(self.modelled)} target + {len(self.source_features)} source features, "
                  f"{seconds:.1f} s")
        return FitReport(epochs=1, seconds=seconds, seconds_per_epoch=seconds, best_epoch=1)

    def _features(self, users: np.ndarray) -> sp.csr_matrix:
        """``[x_u^target | w * x_u^source]`` over the modelled features, one row per user."""
        target = self._history[users][:, self.modelled]
        if not len(self.source_features):
            return sp.csr_matrix(target)
        source = self._source_history[users][:, self.source_features] * np.float32(self.config.source_weight)
        return sp.hstack([target, source], format="csr", dtype=np.float32)

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        self.get_state()  # raises when not trained
        scores = np.repeat(self.outside[None, :], len(users), axis=0)
        scores[:, self.modelled] = self._features(users) @ self.weights
        return scores

    def get_state(self) -> dict[str, np.ndarray]:
        state = super().get_state()
        xs = self._source_history.tocsr()
        return {**state, "source_features": self.source_features, "source_indptr": xs.indptr,
                "source_indices": xs.indices}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        saved_arrays(self.name, state, ["source_features", "source_indptr", "source_indices"], {})
        features = np.asarray(state["source_features"], np.int64)
        weights = np.asarray(state["weights"])
        n_modelled = len(np.asarray(state["modelled"]))
        if weights.shape != (n_modelled + len(features), n_modelled):
            raise DataError("The saved joint-EASE arrays do not fit together.",
                            "Load a folder written by JointEASE.save() for the same data set.")
        square = dict(state, weights=weights[:n_modelled])  # EASE's checks on the target block
        super().set_state(square)
        self.weights, self.source_features = weights.astype(np.float32, copy=False), features
        indices = np.asarray(state["source_indices"])
        self._source_history = sp.csr_matrix(
            (np.ones(len(indices), np.float32), indices, state["source_indptr"]),
            shape=(self.sizes.n_users, self.sizes.n_source_items))
