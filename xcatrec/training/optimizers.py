"""Lazy Adam: Adam that updates only the embedding rows a batch touched, and embeddings that read only rows.

Keras 3's Adam turns the sparse gradient of an embedding table (a ``tf.IndexedSlices``) into a dense
tensor and updates every row's moments on every step. For recommendation tables (tens of thousands of
items, a few thousand rows per batch) that is most of the cost of a step. Lazy Adam (as in TensorFlow
Addons' ``LazyAdam`` and the sparse Adam of PyTorch) updates the moments and weights of the touched
rows only; rows without a gradient keep their moments unchanged until they are next seen. Dense
gradients get the ordinary Adam update.

A row update is a sparse write (``ResourceScatterUpdate``), and TensorFlow then keeps the table in
"copy on read" mode: every later *dense* read of the variable copies the whole table. Keras's
``Embedding`` reads its table densely and gathers the rows from the copy, so after the first step each
lookup copied the table (two copies of the 49k x 64 Clothing item table per BPR step, about half of the
step). :func:`read_rows_sparsely` makes a network's embeddings read only the rows they look up.
"""

from __future__ import annotations

import types

import keras
import tensorflow as tf
from keras import ops


class LazyAdam(keras.optimizers.Adam):
    """Adam with sparse (per-row) updates for ``tf.IndexedSlices`` gradients; same arguments as Adam.

    A touched row ``r`` with summed gradient ``g`` gets ``m_r <- b1 m_r + (1 - b1) g``,
    ``v_r <- b2 v_r + (1 - b2) g^2`` and ``w_r <- w_r - lr_t m_r / (sqrt(v_r) + eps)`` with Adam's
    bias-corrected step ``lr_t``; each of the three is one gather of the touched rows and one
    scatter of the new rows (a plain row copy, cheaper in TensorFlow than a scatter-subtract).
    """

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        rows, position = tf.unique(gradient.indices)
        grad = tf.math.unsorted_segment_sum(tf.cast(gradient.values, dtype), position, tf.shape(rows)[0])
        step = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        alpha = (ops.cast(learning_rate, dtype) * ops.sqrt(1 - ops.power(beta_2, step))
                 / (1 - ops.power(beta_1, step)))
        index = self._get_variable_index(variable)
        m, v = self._momentums[index].value, self._velocities[index].value  # the tf.Variables
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * grad
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(grad)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        delta = alpha * m_rows / (ops.sqrt(v_rows) + ops.cast(self.epsilon, dtype))
        variable.scatter_update(tf.IndexedSlices(tf.gather(variable, rows) - delta, rows))


def _gather_rows(layer: keras.layers.Embedding, inputs):
    """An embedding lookup that gathers the rows from the variable itself (``ResourceGather``) instead of
    from a dense read of the whole table; same values, same (row-sparse) gradients."""
    if inputs.dtype not in (tf.int32, tf.int64):
        inputs = tf.cast(inputs, tf.int32)
    return ops.cast(tf.gather(layer.embeddings.value, inputs), layer.compute_dtype)


def read_rows_sparsely(net: keras.Layer) -> int:
    """Make every plain ``keras.layers.Embedding`` inside ``net`` look its rows up with a sparse read.

    The layers keep their class, names and weights (checkpoints are unchanged); only their ``call`` is
    replaced. Embeddings with LoRA or quantisation, and subclasses of ``Embedding``, are left as they are.

    Returns:
        The number of embeddings changed.
    """
    changed = 0
    for layer in net._flatten_layers(include_self=False):
        if (type(layer) is keras.layers.Embedding and not getattr(layer, "lora_enabled", False)
                and getattr(layer, "quantization_mode", None) is None):
            layer.call = types.MethodType(_gather_rows, layer)
            changed += 1
    return changed
