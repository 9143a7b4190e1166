"""The external peer: implicit alternating least squares from the ``implicit`` library, wrapped as is.

Paper: Hu, Koren and Volinsky, "Collaborative Filtering for Implicit Feedback Datasets", ICDM 2008;
tuned as in Rendle, Krichene, Zhang and Koren, "Revisiting the Performance of iALS on Item
Recommendation Benchmarks", RecSys 2022. The ``implicit`` library (Frederickson) is what a
practitioner would reach for first, so the benchmark runs it next to xcatrec's own methods, labelled
``implicit-ials``: every table then shows where xcatrec stands against the library people already use.
Nothing of the library's training is changed here; xcatrec only feeds it the target training matrix
(binary, one confidence weight ``alpha`` per interaction) and scores with its factors. It runs on one
thread (``num_threads=1``), like every method in this book's benchmarks.
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
from xcatrec.core.factors import FactorModel
from xcatrec.core.search import Choice, Float, Int


@dataclass(frozen=True)
class ImplicitALSConfig(ModelConfig):
    """Hyper-parameters passed to ``implicit.cpu.als.AlternatingLeastSquares``.

    Args:
        factors: Dimension of the user and item factors.
        regularization: L2 penalty of the factors.
        alpha: Confidence weight of an observed interaction (the library's ``alpha``).
        iterations: Alternating sweeps.
    """

    factors: int = 64
    regularization: float = 0.01
    alpha: float = 1.0
    iterations: int = 15

    def __post_init__(self) -> None:
        for name in ("factors", "iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}.", f"Use {name}=15, for example.")
        for name in ("regularization", "alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ConfigError(f"{name} must be a positive finite number, got {value!r}.",
                                  f"Use {name}={getattr(type(self), name)}, for example.")


class ImplicitALS(FactorModel):
    """``implicit``'s iALS on the target domain alone, scored by its user and item factors."""

    name: ClassVar[str] = "implicit-ials"
    config_class: ClassVar[type[ModelConfig]] = ImplicitALSConfig
    phases: ClassVar[tuple[Phase, ...]] = (Phase("als", "target"),)
    search_space = {"factors": Choice((32, 64, 128)), "regularization": Float(1e-3, 10.0, log=True),
                    "alpha": Float(0.1, 50.0, log=True), "iterations": Int(5, 30)}

    def training_matrix(self, dataset: CrossDomainDataset) -> sp.csr_matrix:
        """The users x items matrix the library factorises (float32): here the target training matrix.

        Its first ``n_target_items`` columns must be the target items (a subclass may append more).
        """
        return dataset.matrix("target", "train").astype(np.float32)

    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        cfg: ImplicitALSConfig = self.config
        tic = time.perf_counter()
        with threadpool_limits(1, "blas"):  # the library's advice: its own threads, not BLAS's, do the work
            model = AlternatingLeastSquares(factors=cfg.factors, regularization=cfg.regularization, alpha=cfg.alpha,
                                            iterations=cfg.iterations, random_state=cfg.seed, num_threads=1,
                                            calculate_training_loss=False)
            model.fit(self.training_matrix(dataset), show_progress=verbose)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)[:self.sizes.n_target_items]
        seconds = time.perf_counter() - tic
        return FitReport(epochs=cfg.iterations, seconds=seconds, seconds_per_epoch=seconds / cfg.iterations,
                         best_epoch=cfg.iterations)
