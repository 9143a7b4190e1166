"""Lazy Adam: Adam that updates only the embedding rows a batch touched.

Keras 3's Adam turns the sparse gradient of an embedding table (a ``tf.IndexedSlices``) into a dense
tensor and updates every row's moments on every step. For recommendation tables (tens of thousands of
items, a few thousand rows per batch) that is most of the cost of a step. Lazy Adam (as in TensorFlow
Addons' ``LazyAdam`` and the sparse Adam of PyTorch) updates the moments and weights of the touched
rows only; rows without a gradient keep their moments unchanged until they are next seen. Dense
gradients get the ordinary Adam update.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


class LazyAdam(keras.optimizers.Adam):
    """Adam with sparse (per-row) updates for ``tf.IndexedSlices`` gradients; same arguments as Adam."""

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
        variable.scatter_sub(tf.IndexedSlices(delta, rows))
