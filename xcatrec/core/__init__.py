"""The model contract, below every implementation: what a recommender is and how it declares itself.

:class:`Recommender` (fit / score / recommend / save / load), its frozen :class:`ModelConfig`, the
:class:`Phase` declarations of what a method trains and transfers, the :class:`FitReport` of a fit,
the search spaces model selection reads (:mod:`xcatrec.core.search`) and :class:`FactorModel`, the
numpy dot-product scorer most trained methods export to. Nothing here imports TensorFlow.
"""

from xcatrec.core.base import (FitReport, ModelConfig, Phase, Recommender, combine_reports,
                               validated_best_epoch)
from xcatrec.core.factors import FactorModel, Factors

__all__ = ["FactorModel", "Factors", "FitReport", "ModelConfig", "Phase", "Recommender", "combine_reports",
           "validated_best_epoch"]
