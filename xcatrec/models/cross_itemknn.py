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

How much the source history should count depends on how related the two categories are. Given
candidate ``source_weights``, the fit scores each on the target validation split (full-ranking
NDCG@10 on the model-selection users) and keeps the best; the similarities are computed once, so the
search costs one validation per candidate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.core.base import FitReport, ModelConfig, Phase
from xcatrec.core.search import Float, KNN_SPACE
from xcatrec.training.selection import ndcg_validation
from xcatrec.models.itemknn import (ItemKNNConfig, SparseNeighbourhood, csr_from_state, csr_state,
                                    item_similarity, weight_features)


@dataclass(frozen=True)
class CrossItemKNNConfig(ItemKNNConfig):
    """Hyper-parameters of cross-domain item kNN: those of :class:`ItemKNNConfig` plus one.

    Args:
        source_weight: Weight of the source history relative to the target history when scoring
            (``0`` gives target-only scores from the joined similarity; ignored by ``source-only``).
        source_weights: Candidate source weights to choose from on the validation split; when given
            (and the data set has validation rows), the best replaces ``source_weight``.
        valid_users: Validation users scored per candidate (a fixed random subset; 0 = all).
    """

    source_weight: float = 0.5
    source_weights: tuple[float, ...] = ()
    valid_users: int = 3000

    def __post_init__(self) -> None:
        super().__post_init__()
        weights = (self.source_weights,) if isinstance(self.source_weights, (int, float)) else self.source_weights
        for value in (self.source_weight, *weights):
            if (isinstance(value, bool) or not isinstance(value, (int, float, np.number))
                    or not 0 <= value < float("inf")):
                raise ConfigError(f"source weights must be finite numbers >= 0, got {value!r}.",
                                  "Use source_weight=0.5 or source_weights=(0.25, 0.5, 1, 2, 4), for example.")
        object.__setattr__(self, "source_weights", tuple(float(w) for w in weights))  # a list from JSON
        if isinstance(self.valid_users, bool) or not isinstance(self.valid_users, int) or self.valid_users < 0:
            raise ConfigError(f"valid_users must be a whole number >= 0, got {self.valid_users!r}.",
                              "Use valid_users=3000 (0 scores every validation user).")


class CrossItemKNN(SparseNeighbourhood):
    """Item kNN over source and target items, scoring target items from both histories."""

    name: ClassVar[str] = "cross-itemknn"
    config_class: ClassVar[type[ModelConfig]] = CrossItemKNNConfig
    search_space = {**KNN_SPACE, "source_weight": Float(0.0, 4.0)}
    phases: ClassVar[tuple[Phase, ...]] = (Phase("similarity", "both"),)
    uses_target_history: ClassVar[bool] = True

    def __init__(self, sizes, config: ModelConfig | None = None) -> None:
        super().__init__(sizes, config)
        #: The source weight in use: ``config.source_weight``, or the one validation chose.
        self.source_weight = float(self.config.source_weight)

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
        self._set_popularity(np.diff(x_target.tocsc().indptr))
        self.source_weight = float(cfg.source_weight)
        self._assemble()
        history = self._choose_source_weight(dataset, verbose=verbose)
        seconds = time.perf_counter() - start
        if verbose:
            print(f"{self.name}: {self._sim.nnz} similarities in {seconds:.2f} s")
        return FitReport(epochs=1, seconds=seconds, seconds_per_epoch=seconds, history=history)

    def refit_options(self) -> dict[str, float | tuple]:
        """The source weight validation chose (if it chose one), fixed for a refit."""
        super().refit_options()
        if self.uses_target_history and self.config.source_weights:
            return {"source_weight": self.source_weight, "source_weights": ()}
        return {}

    def _choose_source_weight(self, dataset: CrossDomainDataset, *, verbose: bool) -> dict[str, list[float]]:
        """Keep the candidate source weight with the best validation NDCG@10 (the first on ties)."""
        cfg = self.config
        if not (self.uses_target_history and cfg.source_weights):
            return {}
        validation = ndcg_validation(self, dataset, max_users=cfg.valid_users, seed=cfg.seed)
        if validation is None:
            if verbose:
                print(f"{self.name}: no validation rows; keeping source_weight={self.source_weight:g}")
            return {}
        scores = []
        for weight in cfg.source_weights:
            self.source_weight = weight
            self._weigh_history()
            scores.append(validation.score())
        self.source_weight = cfg.source_weights[int(np.argmax(scores))]
        self._weigh_history()
        if verbose:
            print(f"{self.name}: source_weight={self.source_weight:g} chosen on validation ("
                  + ", ".join(f"{w:g}: {v:.4f}" for w, v in zip(cfg.source_weights, scores)) + ")")
        return {"source_weight": list(cfg.source_weights), "valid_ndcg@10": scores}

    def _assemble(self) -> None:
        """Stack the histories and similarity blocks into the one product the scoring uses."""
        if self.uses_target_history:
            self._sim = sp.vstack([self._sim_source, self._sim_target], format="csr")
            self._weigh_history()
        else:
            self._history, self._sim = self._hist_source, self._sim_source

    def _weigh_history(self) -> None:
        """Stack both histories with the source rows scaled by the current ``source_weight``."""
        w = np.float32(self.source_weight)
        self._history = sp.hstack([self._hist_source * w, self._hist_target], format="csr")

    def get_state(self) -> dict[str, np.ndarray]:
        state = {**super().get_state(), **csr_state("sim_source", self._sim_source),
                 **csr_state("hist_source", self._hist_source),
                 "source_weight": np.array([self.source_weight], np.float64)}
        if self.uses_target_history:
            state.update(csr_state("sim_target", self._sim_target))
            state.update(csr_state("hist_target", self._hist_target))
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        super().set_state(state)
        n_u, n_s, n_t = self.sizes.n_users, self.sizes.n_source_items, self.sizes.n_target_items
        self._sim_source = csr_from_state(state, "sim_source", (n_s, n_t))
        self._hist_source = csr_from_state(state, "hist_source", (n_u, n_s))
        if self.uses_target_history:
            self._sim_target = csr_from_state(state, "sim_target", (n_t, n_t))
            self._hist_target = csr_from_state(state, "hist_target", (n_u, n_t))
        if "source_weight" in state:  # the weight the fit chose (older saves used the config's)
            self.source_weight = float(np.asarray(state["source_weight"]).ravel()[0])
        self._assemble()


class SourceOnlyKNN(CrossItemKNN):
    """Zero-shot transfer: target items ranked from the user's source history alone (the similarities
    are learned from the users active in both domains), so cold-start users are ranked like everybody."""

    name: ClassVar[str] = "source-only"
    search_space = KNN_SPACE  # the source weight does not enter its scores
    uses_target_history: ClassVar[bool] = False
