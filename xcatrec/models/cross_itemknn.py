"""Cross-domain item-based kNN: neighbours of target items in the joined source + target item space.

Paper: the item-based kNN of Sarwar, Karypis, Konstan and Riedl (WWW 2001) applied to the merged
user-item matrix of two domains, the "collaborative filtering over the joined domains" reference of
Berkovsky, Kuflik and Ricci, "Cross-domain mediation in collaborative filtering", UMAP 2007 (see also
Cremonesi, Tripodi and Turrin, "Cross-domain recommender systems", ICDM Workshops 2011), with the
tuned shrunk cosine of Dacrema, Cremonesi and Jannach (RecSys 2019).
Taught in the chapter "Strong simple baselines".

Every user is one row ``[source history | target history]`` over the shared user index space. Users
who are active in both domains carry the bridge: a source item and a target item are similar when
the same people bought both. For each target item ``j`` we keep its ``k`` most similar source items
and, separately, its ``k`` most similar target items (so that source neighbours survive the pruning
even where target co-occurrences are stronger). A user's score for ``j`` is::

    source_weight * sum_{i in source history} sim(i, j) + sum_{i in target history} sim(i, j)

``"source-only"`` (:class:`SourceOnlyKNN`) drops the second sum: its target ranking is driven by
the source history alone, the zero-shot transfer that works for cold-start users.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.models.base import FitReport, ModelConfig, Phase
from xcatrec.models.itemknn import (ItemKNNConfig, SparseNeighbourhood, csr_from_state, csr_state,
                                    item_similarity, popularity_from_state, weight_features)


@dataclass(frozen=True)
class CrossItemKNNConfig(ItemKNNConfig):
    """Hyper-parameters of cross-domain item kNN: those of :class:`ItemKNNConfig` plus one.

    Args:
        source_weight: Weight of the source history relative to the target history when scoring
            (``0`` gives target-only scores from the joined similarity; ignored by ``source-only``).
    """

    source_weight: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.source_weight, (int, float, np.number)) or not self.source_weight >= 0:
            raise ConfigError(f"source_weight must be >= 0, got {self.source_weight!r}.",
                              "Use source_weight=0.5, for example.")


class CrossItemKNN(SparseNeighbourhood):
    """Item kNN over source and target items, scoring target items from both histories.

    Args:
        sizes: Users and items per domain.
        config: A :class:`CrossItemKNNConfig`; ``None`` uses the defaults.
    """

    name: ClassVar[str] = "cross-itemknn"
    config_class: ClassVar[type[ModelConfig]] = CrossItemKNNConfig
    phases: ClassVar[tuple[Phase, ...]] = (Phase("similarity", "both"),)
    uses_target_history: ClassVar[bool] = True

    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport:
        start = time.perf_counter()
        cfg = self.config
        x_source = dataset.matrix("source", "train")
        x_target = dataset.matrix("target", "train")
        joined = weight_features(sp.hstack([x_source, x_target], format="csr"), cfg.weighting)
        n_s = x_source.shape[1]
        w_source, w_target = joined[:, :n_s], joined[:, n_s:]
        options = dict(k=cfg.k, shrink=cfg.shrink, alpha=cfg.alpha, normalize=cfg.normalize)
        self._hist_source = x_source.astype(np.float32)
        self._sim_source = item_similarity(w_source, w_target, **options)
        if self.uses_target_history:
            self._hist_target = x_target.astype(np.float32)
            self._sim_target = item_similarity(w_target, **options)
        self._popularity = np.diff(x_target.tocsc().indptr).astype(np.float32)
        self._assemble()
        seconds = time.perf_counter() - start
        if verbose:
            print(f"{self.name}: {self._sim.nnz} similarities in {seconds:.2f} s")
        return FitReport(epochs=1, seconds=seconds, seconds_per_epoch=seconds)

    def _assemble(self) -> None:
        """Stack the histories and similarity blocks into the one product the scoring uses."""
        if self.uses_target_history:
            w = np.float32(self.config.source_weight)
            self._history = sp.hstack([self._hist_source * w, self._hist_target], format="csr")
            self._sim = sp.vstack([self._sim_source, self._sim_target], format="csr")
        else:
            self._history, self._sim = self._hist_source, self._sim_source
        self._set_tiebreak(self._popularity)

    def get_state(self) -> dict[str, np.ndarray]:
        self._product(np.zeros(0, np.int64))  # raises when not trained
        state = {**csr_state("sim_source", self._sim_source), **csr_state("hist_source", self._hist_source),
                 "popularity": self._popularity}
        if self.uses_target_history:
            state.update(csr_state("sim_target", self._sim_target))
            state.update(csr_state("hist_target", self._hist_target))
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        n_u, n_s, n_t = self.sizes.n_users, self.sizes.n_source_items, self.sizes.n_target_items
        self._sim_source = csr_from_state(state, "sim_source", (n_s, n_t))
        self._hist_source = csr_from_state(state, "hist_source", (n_u, n_s))
        if self.uses_target_history:
            self._sim_target = csr_from_state(state, "sim_target", (n_t, n_t))
            self._hist_target = csr_from_state(state, "hist_target", (n_u, n_t))
        self._popularity = popularity_from_state(state, n_t)
        self._assemble()


class SourceOnlyKNN(CrossItemKNN):
    """Zero-shot transfer: target items ranked from the user's source history alone.

    The source-to-target similarities are learned from the users active in both domains; at scoring
    time the user's own target history is ignored, so a cold-start user with no target history gets
    the same kind of ranking as everybody else.
    """

    name: ClassVar[str] = "source-only"
    uses_target_history: ClassVar[bool] = False
