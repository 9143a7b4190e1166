"""Training-loop settings shared by every method that is trained by gradient descent.

A method's config subclasses :class:`TrainConfig` and adds its own hyper-parameters, e.g.::

    @dataclass(frozen=True)
    class BPRMFConfig(TrainConfig):
        dim: int = 64

:class:`xcatrec.training.recommender.KerasRecommender` reads these fields for each phase (a phase with a
``prefix`` reads ``<prefix>epochs`` etc. where the config has them, see :class:`xcatrec.core.Phase`).
"""

from __future__ import annotations

from dataclasses import dataclass
from xcatrec.errors import ConfigError
from xcatrec.core.base import ModelConfig


@dataclass(frozen=True)
class TrainConfig(ModelConfig):
    """Loop settings shared by every trained method; a method's config subclasses this.

    Args:
        seed: Seeds numpy, Python and TensorFlow (``keras.utils.set_random_seed``) and the batch order.
        epochs: Maximum number of passes over the training rows.
        batch_size: Rows per gradient step (global, split over replicas under a strategy).
        learning_rate: Step size of the optimizer (Adam unless a method says otherwise).
        patience: Stop after this many validations in a row without improvement; 0 never stops early.
        eval_every: Validate every this many epochs (and after the last one).
        valid_users: At most this many validation users (a fixed random subset) are scored per
            validation, to keep validation cheap; 0 means all of them.
        checkpoint_dir: If not empty, the best weights of each training phase are written there
            while training, one file per method, phase and seed (see
            :func:`xcatrec.training.recommender.checkpoint_path`).
    """

    epochs: int = 20
    batch_size: int = 4096
    learning_rate: float = 1e-3
    patience: int = 3
    eval_every: int = 1
    valid_users: int = 3000
    checkpoint_dir: str = ""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}.",
                                  f"Pass {name}=1 or more.")
        for name in ("patience", "valid_users"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}.",
                                  f"Pass {name}=0 or more.")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}.",
                              "Pass learning_rate=1e-3, for example.")
