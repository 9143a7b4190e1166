"""Lazy Adam: equal to Adam when every row has a gradient; untouched rows stay put. Embeddings that read
only the rows they look up: same values, row-sparse gradients, unchanged checkpoints."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from xcatrec.training.optimizers import LazyAdam, read_rows_sparsely


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


def _lookup_net() -> keras.Model:
    inputs = keras.Input((3,), dtype="int32")
    table = keras.layers.Embedding(50, 4, name="table")
    return keras.Model(inputs, keras.ops.sum(table(inputs), axis=(1, 2)))


def test_sparse_row_reads_give_the_same_values_and_row_sparse_gradients():
    dense, sparse = _lookup_net(), _lookup_net()
    sparse.set_weights(dense.get_weights())
    assert read_rows_sparsely(sparse) == 1
    ids = np.array([[1, 2, 2], [7, 1, 49]], np.int32)
    np.testing.assert_array_equal(sparse(ids).numpy(), dense(ids).numpy())

    @tf.function
    def grad(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(sparse(x) ** 2)
        return tape.gradient(loss, sparse.trainable_weights[0].value)

    graph = grad.get_concrete_function(tf.constant(ids)).graph
    kinds = {op.type for op in graph.get_operations()}
    assert "ResourceGather" in kinds and "ReadVariableOp" not in kinds  # only the rows are read
    assert isinstance(grad(tf.constant(ids)), tf.IndexedSlices)


def test_sparse_row_reads_keep_the_checkpoint_layout(tmp_path):
    net = _lookup_net()
    read_rows_sparsely(net)
    net.save_weights(tmp_path / "w.weights.h5")
    fresh = _lookup_net()
    fresh.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(fresh.get_weights()[0], net.get_weights()[0])
