"""The per-row losses of the trained methods, written once.

For one positive score ``s_pos`` (shape ``(B,)``) and ``n`` sampled negative scores ``s_neg``
(``(B, n)``), :func:`row_loss` gives

* ``"bpr"``: ``mean_j -log sigmoid(s_pos - s_neg_j)`` (Rendle et al., UAI 2009);
* ``"bce"``: ``[-log sigmoid(s_pos) - sum_j log(1 - sigmoid(s_neg_j))] / (1 + n)``;
* ``"squared"``: ``[1/2 (1 - sigmoid(s_pos))^2 + sum_j 1/2 sigmoid(s_neg_j)^2] / (1 + n)`` (the design's
  derivation);

and :func:`binary_cross_entropy` the pointwise loss of one logit against a 0/1 label. A ``compute_loss``
returns its mean through :func:`replica_mean`, so that under a ``tf.distribute`` strategy the gradients
Keras sums over replicas equal the gradient of the global mean.
"""

from __future__ import annotations

from typing import Any

from keras import ops

from xcatrec.errors import ConfigError

#: Ranking losses over sampled negatives (rating models use the squared error of the rating).
RANKING_LOSSES = ("bpr", "bce", "squared")


def replica_mean(values: Any) -> Any:
    """Mean of per-example values, divided by the number of replicas in sync."""
    import tensorflow as tf

    mean = ops.mean(values)
    n = tf.distribute.get_strategy().num_replicas_in_sync
    return mean / n if n > 1 else mean


def row_loss(s_pos, s_neg, kind: str):
    """Per-row loss of one positive score ``(B,)`` against ``n`` negative scores ``(B, n)``."""
    if kind == "bpr":
        return ops.mean(-ops.log_sigmoid(s_pos[:, None] - s_neg), axis=-1)
    n = ops.cast(ops.shape(s_neg)[-1], s_pos.dtype)
    if kind == "bce":
        pos, neg = -ops.log_sigmoid(s_pos), -ops.sum(ops.log_sigmoid(-s_neg), axis=-1)
    elif kind == "squared":
        pos, neg = 0.5 * (1.0 - ops.sigmoid(s_pos)) ** 2, ops.sum(0.5 * ops.sigmoid(s_neg) ** 2, axis=-1)
    else:
        raise ConfigError(f"Unknown loss {kind!r}.", f"Use one of {list(RANKING_LOSSES)}.")
    return (pos + neg) / (1.0 + n)


def binary_cross_entropy(logit, label):
    """``-[y log sigmoid(z) + (1 - y) log sigmoid(-z)]`` per row."""
    label = ops.cast(label, logit.dtype)
    return -(label * ops.log_sigmoid(logit) + (1.0 - label) * ops.log_sigmoid(-logit))
