"""What the weight ``lambda`` of ``L = L_source + lambda L_target`` does to an optimizer's step, and why
the objective with disjoint parameters transfers nothing (chapter "The loss and its derivation").

* :class:`TinyJoint`: a two-level model in plain TensorFlow, a shared bottom ``W`` and one head ``v_d``
  per domain, ``y_hat = sigmoid((x W) . v_d)``, trained with the squared error of the design;
* :func:`optimizer_updates`: how far ``steps`` optimizer steps on ``L_s + lambda L_t`` move each level
  (``"shared"``, ``"source"``, ``"target"``) of such a model or of
  :class:`~xcatrec.models.shared_bottom.SharedBottomNet`;
* :func:`joint_least_squares`: the minimiser of the summed squared errors of two linear regressions
  ``sum_s (y - x w_s)^2 + lambda sum_t (y - x w_t)^2`` with disjoint weights, or with one shared ``w``.

Imports TensorFlow only inside the functions that need it.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from xcatrec.errors import ConfigError

GROUPS = ("shared", "source", "target")


class TinyJoint:
    """A shared bottom ``W`` (``features x width``) and heads ``v_source``, ``v_target`` (``width``).

    Each domain gets ``rows`` synthetic examples with Gaussian features and 0/1 labels; its loss is the
    mean over its rows of ``1/2 (y - sigmoid((x W) . v_d))^2``. The same ``seed`` gives the same data
    and the same initial weights, so two instances can be stepped with different settings and compared.

    Args:
        seed: Seed of the data and of the initial weights.
        features: Width of ``x``.
        width: Width of the shared representation ``x W``.
        rows: Examples per domain, ``(source, target)``.
    """

    def __init__(self, seed: int = 0, features: int = 4, width: int = 3,
                 rows: tuple[int, int] = (64, 16)) -> None:
        import tensorflow as tf

        if min(features, width, *rows) < 1:
            raise ConfigError(f"features, width and rows must be >= 1, got {features}, {width}, {rows}.",
                              "Pass features=4, width=3, rows=(64, 16), for example.")
        rng = np.random.default_rng(seed)
        self.data = {d: (tf.constant(rng.normal(size=(n, features)), tf.float32),
                         tf.constant(rng.integers(0, 2, size=n), tf.float32))
                     for d, n in zip(("source", "target"), rows)}
        self.shared = tf.Variable(rng.normal(size=(features, width)) / np.sqrt(features),
                                  dtype=tf.float32, name="shared")
        self.heads = {d: tf.Variable(rng.normal(size=width), dtype=tf.float32, name=d)
                      for d in ("source", "target")}

    def domain_losses(self) -> tuple[Any, Any]:
        """``(L_source, L_target)``: each domain's mean squared error on its own rows."""
        import tensorflow as tf

        def loss(d: str):
            x, y = self.data[d]
            y_hat = tf.sigmoid(tf.linalg.matvec(x @ self.shared, self.heads[d]))
            return tf.reduce_mean(0.5 * (y - y_hat) ** 2)

        return loss("source"), loss("target")

    def variable_groups(self) -> dict[str, list]:
        """The variables by level, as :meth:`SharedBottomNet.variable_groups` names them."""
        return {"shared": [self.shared], "source": [self.heads["source"]], "target": [self.heads["target"]]}


def optimizer_updates(net: Any, losses: Callable[[], tuple[Any, Any]], lam: float, optimizer: Any,
                      steps: int = 1, train: Sequence[str] = GROUPS) -> dict[str, np.ndarray]:
    """Take ``steps`` optimizer steps on ``L_s + lam L_t`` and return how far each level moved.

    Args:
        net: Has ``variable_groups()`` (``{"shared": [...], "source": [...], "target": [...]}``).
        losses: Returns ``(L_s, L_t)`` for the current weights of ``net``.
        lam: The weight of the target loss.
        optimizer: A fresh Keras optimizer (its moments start at zero).
        steps: Number of steps, each on the same ``losses``.
        train: The levels the optimizer updates; the others stay fixed (e.g. ``("source", "target")``
            holds the shared bottom still).

    Returns:
        Per level, all its variables' changes (after minus before) flattened into one array.
    """
    import tensorflow as tf

    if unknown := set(train) - set(GROUPS):
        raise ConfigError(f"Unknown levels {sorted(unknown)}.", f"Use some of {list(GROUPS)}.")
    groups = net.variable_groups()
    trained = [v for g in train for v in groups[g]]
    before = {g: [np.array(v.numpy()) for v in groups[g]] for g in GROUPS}
    for _ in range(steps):
        with tf.GradientTape() as tape:
            l_s, l_t = losses()
            total = l_s + lam * l_t
        optimizer.apply_gradients(zip(tape.gradient(total, trained), trained))
    return {g: np.concatenate([(np.array(v.numpy()) - b).ravel() for v, b in zip(groups[g], before[g])])
            for g in GROUPS}


def joint_least_squares(x_s: np.ndarray, y_s: np.ndarray, x_t: np.ndarray, y_t: np.ndarray, lam: float,
                        shared: bool) -> dict[str, np.ndarray]:
    """Minimise ``sum_s (y - x w_s)^2 + lam sum_t (y - x w_t)^2`` as ONE least-squares problem.

    Args:
        x_s: Source features, ``(n_s, p)``; ``y_s`` its targets ``(n_s,)``.
        x_t: Target features, ``(n_t, p)``; ``y_t`` its targets ``(n_t,)``.
        lam: Weight of the target sum (> 0).
        shared: ``False``: disjoint weights ``w_s`` and ``w_t`` (the article's ``theta_source`` and
            ``theta_target``); ``True``: one ``w`` for both domains.

    Returns:
        ``{"source": w_s, "target": w_t}`` (the same array twice when ``shared``).
    """
    if not lam > 0:
        raise ConfigError(f"lam must be > 0, got {lam}.", "Pass lam=1.0, for example.")
    p, root = x_s.shape[1], np.sqrt(lam)
    if shared:
        design = np.vstack([x_s, root * x_t])
    else:  # block-diagonal design: the source rows see w_s only, the target rows w_t only
        design = np.block([[x_s, np.zeros_like(x_s)], [np.zeros_like(x_t), root * x_t]])
    w = np.linalg.lstsq(design, np.concatenate([y_s, root * y_t]), rcond=None)[0]
    return {"source": w, "target": w} if shared else {"source": w[:p], "target": w[p:]}
