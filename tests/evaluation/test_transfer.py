"""Transfer diagnostics with hand-computed values."""

import numpy as np
import pandas as pd
import pytest

from xcatrec.errors import ConfigError
from xcatrec.evaluation.transfer import linear_cka, negative_transfer, parameter_distance


def test_parameter_distance_by_hand():
    before = {"w": np.array([[1.0, 0.0], [0.0, 1.0]]), "b": np.array([1.0, 2.0])}
    after = {"w": np.array([[1.0, 0.0], [0.0, 4.0]]), "b": np.array([1.0, 2.0]), "other": np.zeros(3)}
    table = parameter_distance(before, after).set_index("layer")
    assert table.loc["w", "l2"] == pytest.approx(3.0)
    assert table.loc["w", "relative"] == pytest.approx(3.0 / np.sqrt(2.0))
    assert table.loc["w", "moved_fraction"] == pytest.approx(0.25)
    assert table.loc["b", "l2"] == 0.0 and table.loc["b", "moved_fraction"] == 0.0
    assert "other" not in table.index


def test_parameter_distance_rejects_missing_and_reshaped():
    with pytest.raises(ConfigError, match="missing"):
        parameter_distance({"w": np.ones(2)}, {})
    with pytest.raises(ConfigError, match="shape"):
        parameter_distance({"w": np.ones(2)}, {"w": np.ones(3)})


def test_linear_cka_invariances():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0)
    assert linear_cka(x, rng.normal(size=(200, 5))) < 0.2
    # hand-computed: x = [0,1,2]^T, y = [0,1,4]^T centred -> cos^2 of the centred vectors
    xs, ys = np.array([[0.0], [1.0], [2.0]]), np.array([[0.0], [1.0], [4.0]])
    xc, yc = xs - xs.mean(), ys - ys.mean()
    expected = float(((xc.T @ yc) ** 2 / ((xc.T @ xc) * (yc.T @ yc))).item())
    assert linear_cka(xs, ys) == pytest.approx(expected)
    with pytest.raises(ConfigError):
        linear_cka(x, x[:10])


def test_negative_transfer_flags():
    summary = pd.DataFrame({"method": ["bpr-mf", "cmf", "emcdr"], "metric": "ndcg", "k": 10,
                            "mean": [0.010, 0.012, 0.008]})
    flags = negative_transfer(summary).set_index("method")
    assert not flags.loc["cmf", "negative_transfer"]
    assert flags.loc["emcdr", "negative_transfer"]
    assert flags.loc["emcdr", "gain"] == pytest.approx(-0.002)
    with pytest.raises(ConfigError, match="Baseline"):
        negative_transfer(summary, baseline="itemknn")
