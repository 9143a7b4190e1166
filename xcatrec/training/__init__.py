"""Training, the one layer that knows Keras: the recommender base that runs a method's declared phases
(:class:`KerasRecommender`), its loop settings (:class:`TrainConfig`), rows and negative sampling,
losses, layers, the lazy Adam optimizer and model selection (:mod:`xcatrec.training.selection`).

Layering: this package imports :mod:`xcatrec.core`, :mod:`xcatrec.data` and :mod:`xcatrec.evaluation`,
never :mod:`xcatrec.models`. Its Keras parts (layers, losses, the recommender base) import TensorFlow
when first used; the loop settings and model selection do not.
"""

import importlib
from typing import Any

#: Each exported name and its module; a module is imported on first use (PEP 562), so code that only
#: needs model selection or the loop settings does not load TensorFlow.
_EXPORTS = {
    "TrainConfig": "config",
    **dict.fromkeys(("MLP", "FactorNet", "assign_weights", "embedding", "mlp_numpy", "numpy_weights"), "layers"),
    **dict.fromkeys(("binary_cross_entropy", "replica_mean", "row_loss"), "losses"),
    **dict.fromkeys(("KerasRecommender", "checkpoint_path", "load_checkpoint"), "recommender"),
    **dict.fromkeys(("Negatives", "Rows"), "rows"),
    "NegativeSampler": "sampling",
    **dict.fromkeys(("Validation", "ndcg_validation", "rating_validation", "validation_users"), "selection"),
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"xcatrec.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = sorted(_EXPORTS)
