"""The training rows of a phase, and the stream of shuffled batches Keras ``fit`` reads.

A method describes a phase's rows once (:class:`Rows`): fixed columns, plus the blocks of rows whose
items are drawn afresh every epoch by a :class:`~xcatrec.training.sampling.NegativeSampler`
(:class:`Negatives`). :func:`epoch_stream` turns them into one ``tf.data.Dataset`` over all epochs:
epoch ``e`` draws its negatives and its row order from ``numpy.random.default_rng([seed, e])`` and is
cut into batches (one dataset element per batch, the last one smaller). Keras ``fit`` then runs
``epochs`` epochs of ``steps`` batches over that one stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from xcatrec.errors import ConfigError
from xcatrec.training.sampling import NegativeSampler

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf


@dataclass(frozen=True)
class Negatives:
    """Items drawn afresh each epoch for a block of consecutive rows.

    Args:
        sampler: Draws items each row's user has not interacted with.
        users: The user of each row of the block.
        start: Index of the block's first row.
        per_row: Items drawn per row.
        offset: Added to every drawn item index (a joint item space: source items after target items).
        column: The column filled. If :class:`Rows` has it already, the block's rows of it are
            overwritten (``per_row`` must be 1: negative rows of a pointwise loss); otherwise a
            ``(n_rows, per_row)`` column is created, and the blocks drawing into it must cover every row.
    """

    sampler: NegativeSampler
    users: np.ndarray
    start: int = 0
    per_row: int = 1
    offset: int = 0
    column: str = "neg"

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """``(len(users), per_row)`` item indices."""
        drawn = self.sampler.sample(np.repeat(self.users, self.per_row), rng) + self.offset
        return drawn.reshape(len(self.users), self.per_row)


@dataclass(frozen=True)
class Rows:
    """A phase's training rows: equal-length columns and the negatives drawn into them each epoch."""

    columns: dict[str, np.ndarray]
    negatives: tuple[Negatives, ...] = field(default=())

    def __post_init__(self) -> None:
        lengths = {k: len(v) for k, v in self.columns.items()}
        if not lengths or len(set(lengths.values())) != 1:
            raise ConfigError(f"Training columns must be non-empty and of equal length, got {lengths}.",
                              "Build Rows from columns of one row each.")

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def spec(self) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        """Dtype and per-row shape of every column of an epoch, negatives included, without drawing any."""
        out = {k: (v.dtype, v.shape[1:]) for k, v in self.columns.items()}
        for neg in self.negatives:
            out.setdefault(neg.column, (np.dtype(np.int64), (neg.per_row,)))
        return out

    def epoch(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The columns of one epoch with their negatives drawn, in row order (not yet shuffled)."""
        out = dict(self.columns)
        for neg in self.negatives:
            drawn = neg.draw(rng)
            if neg.column in self.columns:
                if neg.per_row != 1:
                    raise ConfigError(f"Negatives drawn into the existing column {neg.column!r} need "
                                      f"per_row=1, got {neg.per_row}.", "Draw into a new column instead.")
                if out[neg.column] is self.columns[neg.column]:
                    out[neg.column] = out[neg.column].copy()
                out[neg.column][neg.start:neg.start + len(neg.users)] = drawn[:, 0]
            else:
                if neg.column not in out:
                    out[neg.column] = np.full((len(self), neg.per_row), -1, np.int64)
                out[neg.column][neg.start:neg.start + len(neg.users)] = drawn
        for name in {n.column for n in self.negatives} - set(self.columns):
            if (out[name] < 0).any():
                raise ConfigError(f"The negatives drawn into {name!r} do not cover every row.",
                                  "Give one Negatives block per block of rows.")
        return out


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    """Batches per epoch (the last one may be smaller)."""
    return -(-n_rows // batch_size)


def epoch_arrays(rows: Rows, seed: int, epoch: int) -> dict[str, np.ndarray]:
    """The rows of epoch ``epoch``: negatives drawn, then the rows permuted (one generator for both)."""
    rng = np.random.default_rng([seed, epoch])
    arrays = rows.epoch(rng)
    order = rng.permutation(len(rows))
    return {k: v[order] for k, v in arrays.items()}


def epoch_stream(rows: Rows, batch_size: int, seed: int, epochs: int) -> "tf.data.Dataset":
    """One dataset of ``epochs * steps_per_epoch`` batches: epoch after epoch (see the module docstring).

    Each epoch's arrays are made in numpy (:func:`epoch_arrays`) and cut into batches by TensorFlow
    (reshaped, one dataset element per batch), about twice as fast as yielding numpy batches from a
    Python generator.
    """
    import tensorflow as tf

    spec, n = rows.spec(), len(rows)
    keys, full = list(spec), n // batch_size * batch_size

    def one_epoch(epoch):
        arrays = lambda e: tuple(epoch_arrays(rows, seed, int(e))[k] for k in keys)  # noqa: E731
        columns = tf.numpy_function(arrays, [epoch], [tf.as_dtype(spec[k][0]) for k in keys])
        columns = {k: tf.ensure_shape(c, (n, *spec[k][1])) for k, c in zip(keys, columns)}
        ds = tf.data.Dataset.from_tensor_slices(
            {k: tf.reshape(c[:full], (-1, batch_size, *spec[k][1])) for k, c in columns.items()})
        if full < n:
            ds = ds.concatenate(tf.data.Dataset.from_tensors({k: c[full:] for k, c in columns.items()}))
        return ds

    options = tf.data.Options()
    options.autotune.enabled = False  # fixed prefetch; the autotune thread could stall the end of fit by seconds
    return tf.data.Dataset.range(epochs).flat_map(one_epoch).prefetch(2).with_options(options)


def first_rows(rows: Rows, n: int = 4) -> dict[str, np.ndarray]:
    """The first ``n`` rows (with negatives drawn), to create a network's variables before training."""
    return {k: v[:n] for k, v in rows.epoch(np.random.default_rng(0)).items()}
