"""Binary prediction metrics against confusion matrices counted by hand."""

from __future__ import annotations

import pytest

from xcatrec.book_extras.classification import classification_metrics
from xcatrec.errors import DataError

Y_TRUE = [1, 0, 1, 1, 0, 0]
Y_PROB = [0.9, 0.6, 0.4, 0.8, 0.2, 0.5]


def test_default_threshold_by_hand():
    # predictions at 0.5: [1, 1, 0, 1, 0, 1] -> TP 2 (items 0, 3), FP 2 (1, 5), FN 1 (2), TN 1 (4)
    out = classification_metrics(Y_TRUE, Y_PROB)
    assert out["accuracy"] == pytest.approx(3 / 6)
    assert out["precision"] == pytest.approx(2 / 4)
    assert out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))  # 0.571429
    assert out["f1"] == pytest.approx(0.571429, abs=1e-6)


def test_other_threshold_by_hand():
    # predictions at 0.7: [1, 0, 0, 1, 0, 0] -> TP 2, FP 0, FN 1, TN 3
    out = classification_metrics(Y_TRUE, Y_PROB, threshold=0.7)
    assert out == pytest.approx({"accuracy": 5 / 6, "precision": 1.0, "recall": 2 / 3, "f1": 0.8})


def test_threshold_is_inclusive_and_zero_division_gives_zero():
    assert classification_metrics([1], [0.5])["recall"] == 1.0
    out = classification_metrics([0, 1], [0.1, 0.2])  # nothing predicted positive
    assert out == {"accuracy": 0.5, "precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_bad_input_raises():
    with pytest.raises(DataError, match="0 or 1"):
        classification_metrics([2, 0], [0.1, 0.2])
    with pytest.raises(DataError, match="equally long"):
        classification_metrics([1, 0], [0.1])
    with pytest.raises(DataError, match="NaN"):
        classification_metrics([1, 0], [float("nan"), 0.2])
