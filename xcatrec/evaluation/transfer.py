"""Transfer diagnostics: how much moved, how similar the domains' representations are, and when
transfer hurt.

* Transfer amount, as the design defines it: the distance between the weights a method handed over
  from the source phase (``model.transferred``) and the same weights after target training
  (``model.get_state()``), per layer, with the fraction of entries that moved.
* Representation similarity: linear CKA (Kornblith et al., ICML 2019) between two views of the same
  users, e.g. their source-side and target-side embeddings.
* Negative transfer: a transfer run whose validation metric is below the target-only run's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xcatrec.errors import ConfigError


def parameter_distance(before: dict[str, np.ndarray], after: dict[str, np.ndarray], *,
                       rtol: float = 1e-3) -> pd.DataFrame:
    """Per-layer distance between two sets of weights with the same names.

    Args:
        before: Weights at the moment of transfer (name -> array).
        after: Weights after target training; only names present in ``before`` are compared.
        rtol: An entry counts as moved when ``|after - before| > rtol * (|before| + rms(before))``.

    Returns:
        One row per layer: ``layer``, ``size``, ``l2`` (Frobenius norm of the change), ``relative``
        (``l2 / ||before||``), ``moved_fraction``.
    """
    rows = []
    for name, b in before.items():
        if name not in after:
            raise ConfigError(f"Weight {name!r} was transferred but is missing after training.",
                              "Store transferred weights under the names get_state() uses.")
        b = np.asarray(b, dtype=np.float64)
        a = np.asarray(after[name], dtype=np.float64)
        if a.shape != b.shape:
            raise ConfigError(f"Weight {name!r} changed shape from {b.shape} to {a.shape}.",
                              "Compare weights of the same layer.")
        diff = a - b
        norm_b = float(np.linalg.norm(b))
        scale = np.abs(b) + (np.sqrt(np.mean(b**2)) if b.size else 0.0)
        rows.append({"layer": name, "size": int(b.size), "l2": float(np.linalg.norm(diff)),
                     "relative": float(np.linalg.norm(diff) / norm_b) if norm_b > 0 else float("nan"),
                     "moved_fraction": float(np.mean(np.abs(diff) > rtol * scale)) if b.size else 0.0})
    return pd.DataFrame(rows, columns=["layer", "size", "l2", "relative", "moved_fraction"])


def transfer_amount(model) -> pd.DataFrame:
    """:func:`parameter_distance` between what ``model`` transferred and its final weights."""
    if not model.transferred:
        raise ConfigError(f"Method {model.name!r} transferred no weights (or was not trained).",
                          "Train a transfer method first; target-only methods move nothing.")
    return parameter_distance(model.transferred, model.get_state())


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centred kernel alignment between two representations of the same rows.

    ``CKA(X, Y) = ||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F)`` with column-centred
    ``X_c``, ``Y_c``; 1 for representations equal up to rotation and isotropic scaling, near 0 for
    unrelated ones. The widths of ``x`` and ``y`` may differ.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ConfigError(f"CKA needs two 2-D arrays with the same rows, got {x.shape} and {y.shape}.",
                          "Pass one row per user in both views.")
    if len(x) < 2:
        raise ConfigError("CKA needs at least two rows.", "Pass more users.")
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    cross = np.linalg.norm(y.T @ x) ** 2
    denom = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / denom) if denom > 0 else 0.0


def negative_transfer(summary: pd.DataFrame, *, baseline: str = "bpr-mf", metric: str = "ndcg",
                      k: int | None = 10) -> pd.DataFrame:
    """Flag methods whose mean metric is below the target-only baseline's.

    Args:
        summary: Rows with at least ``method``, ``metric``, ``k`` and ``mean`` (the output of
            :func:`xcatrec.evaluation.summarize`, best computed on the validation split).
        baseline: The target-only method to compare with.
    """
    rows = summary[(summary["metric"] == metric) & ((summary["k"] == k) if k is not None else summary["k"].isna())]
    base = rows.loc[rows["method"] == baseline, "mean"]
    if base.empty:
        raise ConfigError(f"Baseline {baseline!r} is not in the results.", "Run the target-only baseline too.")
    out = rows[["method", "mean"]].copy()
    out["baseline_mean"] = float(base.iloc[0])
    out["gain"] = out["mean"] - out["baseline_mean"]
    out["negative_transfer"] = out["gain"] < 0
    return out.reset_index(drop=True)
