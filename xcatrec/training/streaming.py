"""Training batches streamed from a shard folder, so that memory does not grow with the rows.

:func:`~xcatrec.training.rows.epoch_stream` builds each epoch's arrays in numpy: every column, the
negatives and a permutation of all rows are in memory at once. :class:`ShardRows` reads the rows of
one category's split from the TFRecord shards of :mod:`xcatrec.data.shards` instead, entirely inside
``tf.data``:

1. the shard files in a fresh order each epoch, read ``cycle_length`` at a time and interleaved
   record by record (a record is a block of rows);
2. the blocks cut into rows and shuffled in a buffer of ``shuffle_buffer`` rows (a bounded shuffle:
   rows far apart in the files stay apart within an epoch, so rows sorted by user should be written
   in a random order: :func:`~xcatrec.data.shards.write_shards` with ``order_seed``);
3. batches of ``batch_size`` rows (the last of an epoch smaller, as in ``epoch_stream``), ``epochs``
   times;
4. per batch, ``negatives`` items per row drawn uniformly over the category's items by
   ``tf.random.stateless_uniform`` seeded by ``(seed, batch number)``, and for the in-batch softmax the
   log-Q columns (``log_q`` from the part's item counts, ``log_q_neg`` of the uniform draws).

What stays in memory is the shuffle buffer, a few records per open shard and the item counts: flat in
the number of rows. The price is the negatives: ``epoch_stream`` draws only items the user has not
interacted with (:class:`~xcatrec.training.sampling.NegativeSampler`, whose table of seen pairs grows
with the rows); here a drawn item is one the user has seen with probability (their items) / (all
items), a fraction of a percent for catalogue-sized data. The batches have the columns of the
in-memory rows of a one-category ranking phase (``user``, ``pos``, ``neg`` and the loss's columns),
so the same network trains on either.

:class:`MixedShardRows` does the same for a phase on both categories (the shared-bottom model's
``L_s + lambda L_t``): the two parts are merged at random in proportion to their rows, each row tagged
``is_target`` and given negatives from its own category. :class:`JointShardRows` lays the same rows
out in the joint item space of a collective factorisation (CMF).

A method trains from shards with
:meth:`KerasRecommender.stream_from <xcatrec.training.KerasRecommender.stream_from>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from xcatrec.data.shards import Shards, parse_block
from xcatrec.errors import ConfigError
from xcatrec.training.losses import RANKING_LOSSES, uniform_log_q
from xcatrec.training.rows import Rows, first_rows

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf


@dataclass(frozen=True)
class ShardRows:
    """The training rows of a one-category ranking phase, read from shards.

    Args:
        shards: An opened shard folder (:func:`~xcatrec.data.shards.open_shards`).
        domain: The category trained on (``"source"`` or ``"target"``).
        split: The split whose rows are read.
        loss: The ranking loss (``"softmax"`` adds the ``log_q`` and ``log_q_neg`` columns).
        negatives: Uniform negatives drawn per row (column ``neg``, shape ``(batch, negatives)``).
        shuffle_buffer: Rows in the shuffle buffer (memory: about 16 bytes per row and column).
        cycle_length: Shard files read at once.
    """

    shards: Shards
    domain: str
    split: str = "train"
    loss: str = "bpr"
    negatives: int = 1
    shuffle_buffer: int = 65_536
    cycle_length: int = 4

    def __post_init__(self) -> None:
        if self.loss not in RANKING_LOSSES:
            raise ConfigError(f"Streaming from shards supports the ranking losses {RANKING_LOSSES}, not "
                              f"{self.loss!r}.", "Train with a ranking loss, or from rows in memory.")
        if self.negatives < 1 or self.shuffle_buffer < 1 or self.cycle_length < 1:
            raise ConfigError(f"negatives, shuffle_buffer and cycle_length must be positive, got {self.negatives}, "
                              f"{self.shuffle_buffer} and {self.cycle_length}.",
                              "Pass negatives=1, shuffle_buffer=65536, cycle_length=4, for example.")
        self.shards.part(self.domain, self.split)  # DataError if the folder lacks the part

    def __len__(self) -> int:
        return self.shards.part(self.domain, self.split).rows

    def _columns(self, seed: int):
        """A function ``(batch number, batch of shard rows) -> the network's columns``: negatives drawn
        (seeded by ``(seed, batch number)``), log-Q columns added."""
        import tensorflow as tf

        n_items = self.shards.n_items(self.domain)
        log_f = None
        if self.loss == "softmax":
            counts = self.shards.item_counts(self.domain, self.split)
            log_f = tf.constant(np.log(np.maximum(counts, 1) / max(len(self), 1)).astype(np.float32))
        log_q_neg = np.float32(uniform_log_q(self.negatives, n_items))

        def columns(step, batch: dict) -> dict:
            size = tf.shape(batch["item"], out_type=tf.int64)[0]
            neg = tf.random.stateless_uniform(tf.stack([size, self.negatives]),
                                              seed=tf.stack([tf.constant(seed, tf.int64), step]),
                                              minval=0, maxval=n_items, dtype=tf.int64)
            out = {"user": batch["user"], "pos": batch["item"], "neg": neg}
            if log_f is not None:
                out["log_q"] = tf.gather(log_f, batch["item"])
                out["log_q_neg"] = tf.fill(tf.reshape(size, [1]), log_q_neg)
            return out

        return columns

    def _read(self, domain: str, seed: int, shuffled: bool) -> "tf.data.Dataset":
        """The rows of ``domain``'s part, shard files in a fresh order each epoch when ``shuffled``
        (steps 1 of the module docstring), not yet shuffled row by row."""
        import tensorflow as tf

        part = self.shards.part(domain, self.split)
        files = tf.data.Dataset.from_tensor_slices([str(s.path) for s in part.shards])
        if shuffled:
            files = files.shuffle(len(part.shards), seed=seed, reshuffle_each_iteration=True)
        blocks = files.interleave(lambda f: tf.data.TFRecordDataset(f).map(lambda r: parse_block(r, ("user", "item"))),
                                  cycle_length=min(self.cycle_length, len(part.shards)), block_length=1)
        return blocks.unbatch()

    def _rows(self, seed: int, shuffled: bool) -> "tf.data.Dataset":
        rows = self._read(self.domain, seed, shuffled)
        return rows.shuffle(self.shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True) if shuffled else rows

    def stream(self, batch_size: int, seed: int, epochs: int) -> "tf.data.Dataset":
        """``epochs`` epochs of ``ceil(rows / batch_size)`` batches each (see the module docstring)."""
        import tensorflow as tf

        batches = self._rows(seed, shuffled=True).batch(batch_size).repeat(epochs).enumerate()
        options = tf.data.Options()
        options.autotune.enabled = False  # as in epoch_stream: a fixed prefetch
        options.deterministic = True
        # Under a tf.distribute strategy every worker reads the whole stream and keeps its share of the
        # batches, as with the rows in memory (file-based sharding would leave the workers unequal steps).
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return batches.map(self._columns(seed)).prefetch(2).with_options(options)

    def first(self, n: int = 4) -> dict[str, np.ndarray]:
        """The first ``n`` rows as written (negatives drawn), to create a network's variables."""
        import tensorflow as tf

        batch = next(iter(self._rows(0, shuffled=False).batch(n).take(1)))
        return {k: v.numpy() for k, v in self._columns(0)(tf.constant(0, tf.int64), batch).items()}


@dataclass(frozen=True)
class MixedShardRows(ShardRows):
    """The training rows of a phase on both categories (``data="both"``, e.g. the shared-bottom model's
    ``L_s + lambda L_t``), read from the shards of both: the rows of
    :func:`~xcatrec.models.shared_bottom.mixed_rows` (``user``, ``is_target``, ``pos``, ``neg`` and the
    loss's columns), streamed.

    Each epoch holds every row of both categories once: the two parts are read as in :class:`ShardRows`,
    merged at random in proportion to what is left of each (``sample_from_datasets`` weighted by the row
    counts), then shuffled in one buffer. A row's negatives are drawn uniformly over the items of its own
    category, and for the softmax its ``log_q`` comes from its own category's item counts.
    """

    domain: str = "both"
    #: The categories in the order the unshuffled rows are written (:meth:`first`), as in memory.
    written = ("source", "target")

    def __post_init__(self) -> None:
        if self.domain != "both":
            raise ConfigError(f"MixedShardRows reads both categories, got domain={self.domain!r}.",
                              "Use ShardRows for the rows of one category.")
        for domain in ("source", "target"):
            ShardRows(self.shards, domain, self.split, self.loss, self.negatives, self.shuffle_buffer,
                      self.cycle_length)  # the same checks, for each part

    def __len__(self) -> int:
        return sum(self.shards.part(d, self.split).rows for d in ("source", "target"))

    def _log_frequency(self) -> np.ndarray:
        """Per item of the concatenated catalogue ``[source | target]``: ``log`` of its share of its own
        category's rows (the ``log_q`` of the softmax)."""
        return np.concatenate([np.log(np.maximum(self.shards.item_counts(d, self.split), 1)
                                      / max(self.shards.part(d, self.split).rows, 1))
                               for d in ("source", "target")]).astype(np.float32)

    def _columns(self, seed: int):
        import tensorflow as tf

        n_src, n_tgt = self.shards.n_items("source"), self.shards.n_items("target")
        sizes = tf.constant([n_src, n_tgt], tf.int64)  # everything below is indexed by is_target
        log_q_neg = tf.constant([uniform_log_q(self.negatives, n_src), uniform_log_q(self.negatives, n_tgt)],
                                tf.float32)
        log_f = tf.constant(self._log_frequency()) if self.loss == "softmax" else None
        at = tf.constant([0, n_src], tf.int64)  # where each category starts in log_f
        emit = self._emit(n_src, n_tgt)

        def columns(step, batch: dict) -> dict:
            size = tf.shape(batch["item"], out_type=tf.int64)[0]
            target = batch["is_target"]  # int64, 0 or 1
            draw = tf.random.stateless_uniform(tf.stack([size, self.negatives]),
                                               seed=tf.stack([tf.constant(seed, tf.int64), step]), dtype=tf.float64)
            n = tf.gather(sizes, target)[:, None]
            neg = tf.minimum(tf.cast(tf.floor(draw * tf.cast(n, tf.float64)), tf.int64), n - 1)  # own category
            out = emit(batch["user"], target, batch["item"], neg)
            if log_f is not None:
                out["log_q"] = tf.gather(log_f, batch["item"] + tf.gather(at, target))
                out["log_q_neg"] = tf.gather(log_q_neg, target)
            return out

        return columns

    def _emit(self, n_src: int, n_tgt: int):
        """``(user, is_target, item, negatives) -> columns``, items and negatives in their own category."""
        import tensorflow as tf

        return lambda user, target, item, neg: {"user": user, "is_target": tf.cast(target, tf.float32),
                                                "pos": item, "neg": neg}

    def _rows(self, seed: int, shuffled: bool) -> "tf.data.Dataset":
        import tensorflow as tf

        def tagged(target: int):
            return lambda row: {**row, "is_target": tf.constant(target, tf.int64)}

        parts = {d: self._read(d, seed + 2 * i, shuffled).map(tagged(i)) for i, d in enumerate(("source", "target"))}
        if not shuffled:  # as written in memory
            return parts[self.written[0]].concatenate(parts[self.written[1]])
        counts = np.array([self.shards.part(d, self.split).rows for d in ("source", "target")], np.float64)
        mixed = tf.data.Dataset.sample_from_datasets([parts["source"], parts["target"]],
                                                     weights=list(counts / counts.sum()), seed=seed + 5,
                                                     stop_on_empty_dataset=False)
        return mixed.shuffle(self.shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)


@dataclass(frozen=True)
class JointShardRows(MixedShardRows):
    """The rows of a factorisation over the joint item space of both categories (CMF: target items
    first, then the source items shifted by the number of target items), read from the shards of both.

    The columns of :meth:`CMF.rows <xcatrec.models.cmf.CMF.rows>`: ``user``, ``pos`` and ``neg`` (joint
    item indices; a row's negatives drawn over its own category's items), ``weight`` (1 for target rows,
    ``source_weight`` for source rows) and, for the softmax, ``log_q`` (the item's share of the rows of
    both categories) and ``log_q_neg``. Rows are merged and shuffled as in :class:`MixedShardRows`.
    """

    source_weight: float = 1.0
    written = ("target", "source")

    def _log_frequency(self) -> np.ndarray:
        """As in :class:`MixedShardRows`, but each item's share of the rows of *both* categories."""
        counts = np.concatenate([self.shards.item_counts(d, self.split) for d in ("source", "target")])
        return np.log(np.maximum(counts, 1) / max(len(self), 1)).astype(np.float32)

    def _emit(self, n_src: int, n_tgt: int):
        import tensorflow as tf

        offset = tf.constant([n_tgt, 0], tf.int64)  # source items come after the target items
        weight = tf.constant([self.source_weight, 1.0], tf.float32)

        def emit(user, target, item, neg):
            shift = tf.gather(offset, target)
            return {"user": user, "pos": item + shift, "neg": neg + shift[:, None], "weight": tf.gather(weight, target)}

        return emit


def sample_rows(rows: Rows | ShardRows, n: int = 4) -> dict[str, np.ndarray]:
    """The first ``n`` rows of a phase, from memory (:func:`~xcatrec.training.rows.first_rows`) or shards."""
    return rows.first(n) if isinstance(rows, ShardRows) else first_rows(rows, n)


def phase_shard_rows(model: Any, phase: Any, shards: Shards) -> ShardRows:
    """The shard rows of ``model``'s ``phase`` for a method whose phases train one category on a ranking loss
    with columns ``user``, ``pos``, ``neg`` (BPR-MF, fine-tuning): the config's ``loss``, ``negatives``
    and optional ``shuffle_buffer``.

    Raises:
        ConfigError: The phase trains on more than one category, or the config has no ranking loss.
    """
    cfg = model.config
    if phase.data not in ("source", "target") or getattr(cfg, "loss", None) not in RANKING_LOSSES:
        raise ConfigError(f"{model.name}: phase {phase.name!r} (data {phase.data!r}, loss "
                          f"{getattr(cfg, 'loss', None)!r}) cannot stream from shards; only phases on one "
                          "category with a ranking loss (and the joint phases of shared-bottom and CMF) can.",
                          f"Train {model.name} from rows in memory, or override shard_rows for its phases.")
    return config_shard_rows(ShardRows, cfg, shards, phase.data)


def config_shard_rows(cls: type[ShardRows], cfg: Any, shards: Shards, domain: str, **extra: Any) -> ShardRows:
    """``cls`` over the training rows of ``domain`` with a method config's ``loss``, ``negatives`` and
    optional ``shuffle_buffer``; ``extra`` are further fields of ``cls``."""
    return cls(shards, domain, "train", cfg.loss, getattr(cfg, "negatives", 1),
               getattr(cfg, "shuffle_buffer", cls.shuffle_buffer), **extra)
