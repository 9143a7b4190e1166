"""Training, the one layer that knows Keras: the recommender base that runs a method's declared phases
(:class:`KerasRecommender`), its loop settings (:class:`TrainConfig`), rows and negative sampling,
losses, layers, the lazy Adam optimizer and model selection (:mod:`xcatrec.training.selection`).

Layering: this package imports :mod:`xcatrec.core`, :mod:`xcatrec.data` and :mod:`xcatrec.evaluation`,
never :mod:`xcatrec.models`. Importing it imports TensorFlow.
"""

from xcatrec.training.config import TrainConfig
from xcatrec.training.layers import MLP, FactorNet, assign_weights, embedding, mlp_numpy, numpy_weights
from xcatrec.training.losses import binary_cross_entropy, replica_mean, row_loss
from xcatrec.training.recommender import KerasRecommender, checkpoint_path, load_checkpoint
from xcatrec.training.rows import Negatives, Rows
from xcatrec.training.sampling import NegativeSampler
from xcatrec.training.selection import Validation, ndcg_validation, rating_validation, validation_users

__all__ = ["FactorNet", "KerasRecommender", "MLP", "NegativeSampler", "Negatives", "Rows", "TrainConfig",
           "Validation", "assign_weights", "binary_cross_entropy", "checkpoint_path", "embedding",
           "load_checkpoint", "mlp_numpy", "ndcg_validation", "numpy_weights", "rating_validation",
           "replica_mean", "row_loss", "validation_users"]
