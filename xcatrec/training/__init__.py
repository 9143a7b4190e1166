"""Training machinery shared by all methods: the Keras fit loop with early stopping, negative sampling.

Importing this package does not import TensorFlow (the functions do when called) nor
:mod:`xcatrec.models`. Method configs subclass :class:`xcatrec.models.train_config.TrainConfig`.
"""

from xcatrec.training.sampling import NegativeSampler
from xcatrec.training.trainer import (build_keras, combine_reports, current_strategy, epoch_dataset,
                                      fit_keras, fit_synced, replica_mean, valid_ndcg)

__all__ = ["NegativeSampler", "build_keras", "combine_reports", "current_strategy",
           "epoch_dataset", "fit_keras", "fit_synced", "replica_mean", "valid_ndcg"]
