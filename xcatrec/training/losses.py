"""The per-row losses of the trained methods, written once.

For one positive score ``s_pos`` (shape ``(B,)``) and ``n`` sampled negative scores ``s_neg``
(``(B, n)``), :func:`row_loss` gives

* ``"bpr"``: ``mean_j -log sigmoid(s_pos - s_neg_j)`` (Rendle et al., UAI 2009);
* ``"bce"``: ``[-log sigmoid(s_pos) - sum_j log(1 - sigmoid(s_neg_j))] / (1 + n)``;
* ``"squared"``: ``[1/2 (1 - sigmoid(s_pos))^2 + sum_j 1/2 sigmoid(s_neg_j)^2] / (1 + n)`` (the design's
  derivation);
* ``"sampled-softmax"``: the softmax cross-entropy of the positive against the row's negatives
  (:func:`sampled_softmax`; uniform negatives need no log-Q correction, it is the same for all).

Two more softmax losses need the whole batch, so a network computes them (:data:`BATCH_LOSSES`):

* ``"softmax"``: in-batch negatives (every other row's positive) plus the row's uniform negatives,
  i.e. mixed negative sampling (Yang et al., "Mixed Negative Sampling for Learning Two-tower Neural
  Networks in Recommendations", WWW 2020), log-Q corrected and with accidental hits masked
  (:func:`in_batch_softmax`; Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
  Recommendations", RecSys 2019);
* ``"full-softmax"``: the softmax over every item (:func:`full_softmax`), exact but ``O(B x items)``.

:func:`binary_cross_entropy` is the pointwise loss of one logit against a 0/1 label. A ``compute_loss``
returns its mean through :func:`replica_mean`, so that under a ``tf.distribute`` strategy the gradients
Keras sums over replicas equal the gradient of the global mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops

from xcatrec.errors import ConfigError

#: Losses of one row's positive against that row's sampled negatives (:func:`row_loss`).
ROW_LOSSES = ("bpr", "bce", "squared", "sampled-softmax")
#: Softmax losses whose candidates are shared by the batch (in-batch) or are all items (full).
BATCH_LOSSES = ("softmax", "full-softmax")
#: Ranking losses over sampled negatives (rating models use the squared error of the rating).
RANKING_LOSSES = ROW_LOSSES + BATCH_LOSSES
#: Logit given to masked candidates: ``exp`` of it is 0 in float32, and it stays finite (no NaN).
MASKED = -1e9


def replica_mean(values: Any) -> Any:
    """Mean of per-example values, divided by the number of replicas in sync."""
    import tensorflow as tf

    mean = ops.mean(values)
    n = tf.distribute.get_strategy().num_replicas_in_sync
    return mean / n if n > 1 else mean


def check_loss(kind: str, allowed: tuple[str, ...] = RANKING_LOSSES) -> str:
    """``kind`` if it is one of ``allowed``, else a :class:`ConfigError` naming them."""
    if kind not in allowed:
        raise ConfigError(f"Unknown loss {kind!r}.", f"Use one of {list(allowed)}.")
    return kind


def row_loss(s_pos, s_neg, kind: str, temperature: float = 1.0):
    """Per-row loss of one positive score ``(B,)`` against ``n`` negative scores ``(B, n)``.

    ``temperature`` divides the logits of ``"sampled-softmax"`` only.
    """
    if kind == "bpr":
        return ops.mean(-ops.log_sigmoid(s_pos[:, None] - s_neg), axis=-1)
    if kind == "sampled-softmax":
        return sampled_softmax(s_pos, s_neg, temperature=temperature)
    n = ops.cast(ops.shape(s_neg)[-1], s_pos.dtype)
    if kind == "bce":
        pos, neg = -ops.log_sigmoid(s_pos), -ops.sum(ops.log_sigmoid(-s_neg), axis=-1)
    elif kind == "squared":
        pos, neg = 0.5 * (1.0 - ops.sigmoid(s_pos)) ** 2, ops.sum(0.5 * ops.sigmoid(s_neg) ** 2, axis=-1)
    else:
        raise ConfigError(f"Unknown loss {kind!r}.", f"Use one of {list(ROW_LOSSES)}.")
    return (pos + neg) / (1.0 + n)


def sampled_softmax(s_pos, s_neg, log_q_pos=0.0, log_q_neg=0.0, mask=None, temperature: float = 1.0):
    """Softmax cross-entropy of each row's positive among its candidates, per row ``(B,)``.

    With corrected logits ``z_0 = (s_pos - log q_pos) / T`` and ``z_j = (s_neg_j - log q_j) / T``
    (``q``: how likely the candidate was to be sampled, ``T``: the temperature), the loss of a row is

    ``L = -log [exp(z_0) / (exp(z_0) + sum_j m_j exp(z_j))] = logsumexp(z_0, z_j | m_j = 1) - z_0``

    with ``m_j = 0`` for masked candidates. Its gradient is ``dL/ds_pos = (p_0 - 1) / T`` and
    ``dL/ds_neg_j = p_j / T``, ``p`` the softmax of the unmasked logits. Subtracting ``log q`` (the
    log-Q correction) removes most of the bias of sampling candidates with probability ``q``: the
    sampled gradient then approaches the full softmax's as the sample grows (it is consistent, not
    unbiased for a finite sample; Bengio & Senecal, IEEE Trans. Neural Networks 2008).

    Args:
        s_pos: Positive scores ``(B,)``.
        s_neg: Candidate (negative) scores ``(B, n)``.
        log_q_pos: ``log q`` of each positive, ``(B,)`` or a scalar.
        log_q_neg: ``log q`` of each candidate, broadcastable to ``(B, n)``.
        mask: Boolean ``(B, n)``; ``False`` drops a candidate (e.g. an accidental hit). ``None``: keep all.
        temperature: ``T > 0``.
    """
    z_pos = (s_pos - log_q_pos) / temperature
    z_neg = (s_neg - log_q_neg) / temperature
    if mask is not None:
        z_neg = ops.where(mask, z_neg, ops.cast(MASKED, z_neg.dtype))
    logits = ops.concatenate([z_pos[:, None], z_neg], axis=-1)
    return ops.logsumexp(logits, axis=-1) - z_pos


def in_batch_softmax(s_batch, pos, log_q=None, s_neg=None, log_q_neg: float = 0.0, temperature: float = 1.0):
    """In-batch softmax (plus optional extra negatives per row), per row ``(B,)``.

    ``s_batch[i, k]`` is the score of row ``i``'s user for row ``k``'s positive item: the diagonal holds
    the positives and every other positive of the batch is a negative of row ``i``, except *accidental
    hits* (``pos[k] == pos[i]``, the row's own item), which are masked. A batch of ``B`` rows drawn from
    the training rows holds item ``j`` about ``B f_j`` times, ``f_j`` its share of the rows
    (:func:`item_log_frequency`), so its log-Q correction (Yi et al., RecSys 2019) is
    ``log q_j = log B + log f_j`` (for the positive and the in-batch candidates alike). The extra
    negatives ``s_neg`` ``(B, n)`` (uniform over ``N`` items: pass ``log_q_neg = log(n / N)``) make it
    mixed negative sampling (Yang et al., WWW 2020). Then :func:`sampled_softmax`.

    Args:
        s_batch: ``(B, B)`` scores.
        pos: ``(B,)`` positive item of each row.
        log_q: ``(B,)`` ``log f`` of each row's positive; ``None``: no correction (of in-batch candidates).
        s_neg: Optional ``(B, n)`` extra negative scores.
        log_q_neg: ``log q`` of the extra negatives (used only with ``log_q``).
        temperature: ``T > 0``.
    """
    b = ops.shape(s_batch)[0]
    s_pos = ops.diagonal(s_batch)
    hit = ops.equal(pos[:, None], pos[None, :])  # includes the diagonal (the positive itself)
    mask = ops.logical_not(hit)
    if log_q is None:
        lq_pos, lq_batch, lq_neg = 0.0, 0.0, 0.0
    else:
        lq_pos = ops.cast(log_q, s_batch.dtype) + ops.log(ops.cast(b, s_batch.dtype))
        lq_batch, lq_neg = lq_pos[None, :], log_q_neg
    if s_neg is None:
        return sampled_softmax(s_pos, s_batch, lq_pos, lq_batch, mask, temperature)
    candidates = ops.concatenate([s_batch, s_neg], axis=-1)
    lq = (ops.concatenate([ops.broadcast_to(lq_batch, ops.shape(s_batch)),
                           ops.broadcast_to(ops.cast(lq_neg, s_neg.dtype), ops.shape(s_neg))], axis=-1)
          if log_q is not None else 0.0)
    mask = ops.concatenate([mask, ops.ones_like(s_neg, dtype="bool")], axis=-1)
    return sampled_softmax(s_pos, candidates, lq_pos, lq, mask, temperature)


def full_softmax(s_pos, s_all, temperature: float = 1.0):
    """Softmax over every item, per row: ``logsumexp_j(s_all[:, j] / T) - s_pos / T``.

    ``s_all`` ``(B, N)`` includes the positive's own column (so no candidate is added for it).
    """
    return ops.logsumexp(s_all / temperature, axis=-1) - s_pos / temperature


def item_log_frequency(items: np.ndarray) -> np.ndarray:
    """Per row, ``log f`` of the row's item, ``f`` its share of the rows (float32).

    The in-batch log-Q correction of :func:`in_batch_softmax` reads this as the column ``log_q`` of the
    rows (batches are uniform draws of rows, so a row weight does not change the sampling).
    """
    items = np.asarray(items, np.int64)
    if len(items) == 0:
        return np.zeros(0, np.float32)
    counts = np.bincount(items)
    return np.log(counts[items] / len(items)).astype(np.float32)


def uniform_log_q(negatives: int, n_items: int) -> float:
    """``log q`` of one of ``negatives`` uniform draws over ``n_items`` items: ``log(negatives / n_items)``."""
    return float(np.log(negatives / n_items)) if negatives > 0 else 0.0


def loss_columns(kind: str, items: np.ndarray, n_items: int, negatives: int) -> dict[str, np.ndarray]:
    """The extra row columns loss ``kind`` reads, for rows with positives ``items`` and ``negatives``
    uniform negatives per row over ``n_items`` items: for ``"softmax"``, ``log_q``
    (:func:`item_log_frequency`) and ``log_q_neg`` (:func:`uniform_log_q`, per row, so that rows of
    two domains in one joint item space can differ); nothing for the other losses."""
    if kind != "softmax":
        return {}
    return {"log_q": item_log_frequency(items),
            "log_q_neg": np.full(len(items), uniform_log_q(negatives, n_items), np.float32)}


def ranking_loss(kind: str, scores: dict, rows: dict, n_items: int, temperature: float = 1.0):
    """Per-row ranking loss ``kind`` from a network's scores and the batch's rows.

    Args:
        kind: One of :data:`RANKING_LOSSES`.
        scores: ``"pos"`` ``(B,)`` and ``"neg"`` ``(B, n)``, plus ``"batch"`` ``(B, B)`` for ``"softmax"``
            (:func:`in_batch_softmax`) or ``"all"`` ``(B, n_items)`` for ``"full-softmax"``.
        rows: The batch's columns: ``"pos"`` (for the accidental hits of ``"softmax"``) and, when
            present, ``"log_q"`` and ``"log_q_neg"`` (:func:`loss_columns`; without ``"log_q"``
            there is no log-Q correction, without ``"log_q_neg"`` the negatives are taken as uniform
            over ``n_items``).
        n_items: Items the uniform negatives were drawn from.
        temperature: Divides the logits of the softmax losses.
    """
    if kind == "softmax":
        s_neg = scores["neg"]
        log_q_neg = rows["log_q_neg"][:, None] if "log_q_neg" in rows else uniform_log_q(s_neg.shape[-1], n_items)
        return in_batch_softmax(scores["batch"], rows["pos"], rows.get("log_q"), s_neg, log_q_neg, temperature)
    if kind == "full-softmax":
        return full_softmax(scores["pos"], scores["all"], temperature)
    return row_loss(scores["pos"], scores["neg"], kind, temperature)


def binary_cross_entropy(logit, label):
    """``-[y log sigmoid(z) + (1 - y) log sigmoid(-z)]`` per row."""
    label = ops.cast(label, logit.dtype)
    return -(label * ops.log_sigmoid(logit) + (1.0 - label) * ops.log_sigmoid(-logit))
