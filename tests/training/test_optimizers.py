"""Lazy Adam: equal to Adam when every row has a gradient; untouched rows stay put."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from xcatrec.training.optimizers import LazyAdam


def _run(optimizer, rows: np.ndarray, steps: int = 3, dense: bool = False) -> np.ndarray:
    table = keras.Variable(np.arange(12, dtype=np.float32).reshape(6, 2) / 10)
    for step in range(steps):
        with tf.GradientTape() as tape:
            picked = tf.gather(table.value, rows)
            loss = tf.reduce_sum(picked ** 2 * (step + 1))
        grad = tape.gradient(loss, table.value)  # an IndexedSlices, possibly with repeated rows
        if dense:
            grad = tf.convert_to_tensor(grad)  # sums the repeated rows
        optimizer.apply_gradients([(grad, table)])
    return table.numpy()


def test_equals_adam_on_the_dense_gradient_when_every_row_gets_a_gradient():
    rows = np.array([0, 1, 2, 3, 4, 5, 2])  # row 2 twice: its two gradients are summed first
    np.testing.assert_allclose(_run(LazyAdam(0.1), rows), _run(keras.optimizers.Adam(0.1), rows, dense=True),
                               rtol=1e-5, atol=1e-5)


def test_rows_without_gradient_keep_their_values():
    rows = np.array([1, 3, 3])
    before = np.arange(12, dtype=np.float32).reshape(6, 2) / 10
    after = _run(LazyAdam(0.1), rows)
    untouched = [0, 2, 4, 5]
    np.testing.assert_array_equal(after[untouched], before[untouched])
    assert (np.abs(after[[1, 3]]) < np.abs(before[[1, 3]])).all()
