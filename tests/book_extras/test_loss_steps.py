"""What lambda does to a step (SGD scales it, Adam does not), and the disjoint objective's two fits."""

from __future__ import annotations

import numpy as np
import pytest

from xcatrec.book_extras.loss_steps import TinyJoint, joint_least_squares, optimizer_updates
from xcatrec.errors import ConfigError

keras = pytest.importorskip("keras")


def _steps(lam: float, optimizer, **kwargs) -> dict[str, np.ndarray]:
    net = TinyJoint(seed=0)
    return optimizer_updates(net, net.domain_losses, lam, optimizer, **kwargs)


def test_same_seed_same_model_other_seed_other_model():
    a, b, c = TinyJoint(seed=3), TinyJoint(seed=3), TinyJoint(seed=4)
    np.testing.assert_array_equal(a.shared.numpy(), b.shared.numpy())
    np.testing.assert_array_equal(a.data["target"][0].numpy(), b.data["target"][0].numpy())
    assert not np.array_equal(a.shared.numpy(), c.shared.numpy())
    assert [float(x) for x in a.domain_losses()] == [float(x) for x in b.domain_losses()]


def test_sgd_scales_the_target_step_and_leaves_the_source_step():
    low = _steps(1.0, keras.optimizers.SGD(0.01))
    high = _steps(10.0, keras.optimizers.SGD(0.01))
    # weights after minus before, in float32: a difference is exact to about 1e-7
    np.testing.assert_allclose(high["target"], 10 * low["target"], rtol=1e-3, atol=1e-6)
    np.testing.assert_array_equal(high["source"], low["source"])
    assert not np.allclose(high["shared"], low["shared"])


def test_adam_leaves_the_target_step_up_to_epsilon():
    low = _steps(1.0, keras.optimizers.Adam(0.01))
    high = _steps(10.0, keras.optimizers.Adam(0.01), steps=1)
    assert np.abs(high["target"] - low["target"]).max() < 0.01 * np.abs(low["target"]).max()
    # exactly: lambda times the gradient is the same as epsilon divided by lambda
    eps = keras.optimizers.Adam().epsilon
    same = _steps(1.0, keras.optimizers.Adam(0.01, epsilon=eps / 10))
    np.testing.assert_allclose(same["target"], high["target"], atol=1e-6)
    np.testing.assert_array_equal(high["source"], low["source"])
    assert np.abs(high["shared"] - low["shared"]).max() > 1e-3  # the mix on the shared level


def test_untrained_levels_stay_put_and_unknown_levels_are_refused():
    moved = _steps(1.0, keras.optimizers.SGD(0.1), steps=2, train=("source", "target"))
    assert not moved["shared"].any() and moved["source"].any() and moved["target"].any()
    with pytest.raises(ConfigError, match="Unknown levels"):
        _steps(1.0, keras.optimizers.SGD(0.1), train=("bottom",))
    with pytest.raises(ConfigError, match="rows"):
        TinyJoint(rows=(0, 4))


def test_disjoint_least_squares_splits_and_shared_depends_on_lambda():
    rng = np.random.default_rng(0)
    x_s, x_t = rng.normal(size=(50, 3)), rng.normal(size=(6, 3))
    y_s, y_t = x_s @ [1.0, 2.0, 3.0] + rng.normal(size=50), x_t @ [1.0, -2.0, 0.0]
    alone_t = np.linalg.lstsq(x_t, y_t, rcond=None)[0]
    alone_s = np.linalg.lstsq(x_s, y_s, rcond=None)[0]
    shared = []
    for lam in (0.01, 1.0, 100.0):
        disjoint = joint_least_squares(x_s, y_s, x_t, y_t, lam, shared=False)
        np.testing.assert_allclose(disjoint["target"], alone_t, atol=1e-10)
        np.testing.assert_allclose(disjoint["source"], alone_s, atol=1e-10)
        fit = joint_least_squares(x_s, y_s, x_t, y_t, lam, shared=True)
        np.testing.assert_array_equal(fit["source"], fit["target"])
        shared.append(fit["target"])
    assert np.abs(shared[0] - shared[2]).max() > 0.5
    with pytest.raises(ConfigError, match="lam"):
        joint_least_squares(x_s, y_s, x_t, y_t, 0.0, shared=True)
