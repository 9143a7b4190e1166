"""Metrics for binary prediction from predicted probabilities (will a customer default? is an item
liked?): the credit-scoring application and the article's image classifier report them.

A prediction is positive when its probability is at least ``threshold``. Precision, recall and F1 are
those of the positive class; a ratio whose denominator is zero (no predicted or no true positives) is
reported as 0, following the usual convention (scikit-learn's ``zero_division=0``).
"""

from __future__ import annotations

import numpy as np

from xcatrec.errors import DataError

__all__ = ["classification_metrics"]


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


def classification_metrics(y_true, y_prob, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of thresholded probabilities.

    Args:
        y_true: True labels, 0/1 (or booleans).
        y_prob: Predicted probabilities (or any scores on the same scale as ``threshold``).
        threshold: Predict 1 when ``y_prob >= threshold``.

    Returns:
        ``{"accuracy", "precision", "recall", "f1"}``.

    Example:
        >>> classification_metrics([1, 0, 1, 0], [0.9, 0.6, 0.4, 0.1])["accuracy"]
        0.5
    """
    t = np.asarray(y_true).ravel()
    p = np.asarray(y_prob, dtype=np.float64).ravel()
    if t.shape != p.shape or t.size == 0:
        raise DataError(f"Need equally long, non-empty labels and probabilities (got {t.size} and {p.size}).",
                        "Pass one probability per label.")
    if not np.isin(t, (0, 1)).all():
        raise DataError("Labels must be 0 or 1.", "Binarise the labels first (e.g. rating >= 4).")
    if np.isnan(p).any():
        raise DataError("Predicted probabilities contain NaN.", "Check the model's training.")
    t = t.astype(bool)
    pred = p >= threshold
    tp = float(np.count_nonzero(pred & t))
    fp = float(np.count_nonzero(pred & ~t))
    fn = float(np.count_nonzero(~pred & t))
    prec, rec = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {"accuracy": float(np.mean(pred == t)), "precision": prec, "recall": rec,
            "f1": _ratio(2 * prec * rec, prec + rec)}
