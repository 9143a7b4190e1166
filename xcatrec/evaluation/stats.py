"""Tidy results, confidence intervals over seeds, paired tests, and Markdown tables.

One *record* is one number: a metric of one method on one data set, split, protocol and seed. Results
are collected as records (:func:`records`), summarised over seeds (:func:`summarize`: mean, 95%
t-interval, and a paired t-test against a baseline with seeds matched), and rendered with
:func:`to_markdown`. :func:`paired_user_test` compares two models of the *same* run user by user.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as sps

from xcatrec.errors import ConfigError, DataError

__all__ = ["LABELS", "BY", "records", "summarize", "paired_user_test", "to_markdown", "PairedTest", "best_versus"]

#: Labels every record carries (``None`` when not given).
LABELS = ("dataset", "source", "target", "split", "protocol", "method", "seed")
#: Default grouping of :func:`summarize`: everything except the method and the seed.
BY = ("dataset", "source", "target", "split", "protocol", "metric", "k")


def _split_metric(name: str) -> tuple[str, int | None]:
    metric, at, k = name.partition("@")
    if not at:
        return name, None
    if not k.isdigit():
        raise DataError(f"Metric name {name!r} has a non-integer cut-off.", "Name metrics like 'ndcg@10'.")
    return metric, int(k)


def records(metrics: dict[str, float], **labels) -> list[dict]:
    """One tidy record per metric, e.g. ``{"hr@10": 0.3}`` -> ``{..., "metric": "hr", "k": 10, "value": 0.3}``.

    Args:
        metrics: Metric name -> value, as returned by :func:`~xcatrec.evaluation.evaluate`.
        **labels: ``dataset``, ``source``, ``target``, ``split``, ``protocol``, ``method``, ``seed``
            (missing ones are ``None``) and any extra labels, copied into every record.
    """
    base = {name: labels.get(name) for name in LABELS}
    base.update(labels)
    out = []
    for name, value in metrics.items():
        metric, k = _split_metric(str(name))
        out.append({**base, "metric": metric, "k": k, "value": float(value)})
    return out


def _frame(records_or_df) -> pd.DataFrame:
    df = records_or_df.copy() if isinstance(records_or_df, pd.DataFrame) else pd.DataFrame(list(records_or_df))
    missing = [c for c in ("method", "seed", "value") if c not in df.columns]
    if missing:
        raise ConfigError(f"Results lack the column(s) {missing}.", "Build them with records(..., method=, seed=).")
    if "kind" in df.columns and set(df["kind"].dropna()) - {"test"}:
        kinds = sorted(set(df["kind"].dropna()) - {"test"})
        raise ConfigError(f"The results mix test records with {kinds} records (validation scores, costs, "
                          "searches or per-user values), which would be averaged together.",
                          "Pass only the test records: xcatrec.experiment.quality_records(records).")
    if "k" in df.columns:
        df["k"] = df["k"].astype("Int64")
    return df


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    mean = float(np.mean(values))
    n = len(values)
    if n < 2:
        return mean, math.nan, math.nan
    half = float(sps.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def summarize(records_or_df, baseline: str | None = None, by: Sequence[str] = BY) -> pd.DataFrame:
    """Mean and 95% t-interval over seeds per group and method, optionally against a baseline method.

    Args:
        records_or_df: Records from :func:`records` or a DataFrame with the same columns.
        baseline: Method to compare with; adds ``delta`` (mean - baseline mean), ``rel_delta``
            (delta / baseline mean) and ``p_value`` (paired t-test over the seeds both methods ran,
            :func:`scipy.stats.ttest_rel`; NaN with fewer than 2 common seeds).
        by: Columns that identify one comparison; methods are compared within each group.

    Returns:
        One row per group and method: the ``by`` columns, ``method``, ``mean``, ``ci_low``, ``ci_high``
        (NaN with one seed), ``n_seeds`` and, with a baseline, ``delta``, ``rel_delta``, ``p_value``.
    """
    df = _frame(records_or_df)
    by = list(by)
    missing = [c for c in by if c not in df.columns]
    if missing:
        raise ConfigError(f"Cannot group by missing column(s) {missing}.", f"Group by some of {list(df.columns)}.")
    dup = df.duplicated(by + ["method", "seed"], keep=False)
    if dup.any():
        row = df[dup].iloc[0]
        raise DataError(f"Two results for method {row['method']!r}, seed {row['seed']!r} in one group.",
                        "Give each run its own seed or label, or drop duplicate records.")
    if baseline is not None and baseline not in set(df["method"]):
        raise ConfigError(f"Baseline method {baseline!r} is not in the results.",
                          f"Use one of {sorted(map(str, df['method'].unique()))}.")
    rows = []
    for key, group in df.groupby(by, dropna=False, sort=False) if by else [((), df)]:
        key = key if isinstance(key, tuple) else (key,)
        base = group[group["method"] == baseline].set_index("seed")["value"] if baseline is not None else None
        for method, runs in group.groupby("method", dropna=False, sort=False):
            values = runs["value"].to_numpy(dtype=np.float64)
            mean, low, high = _interval(values)
            row = dict(zip(by, key)) | {"method": method, "mean": mean, "ci_low": low, "ci_high": high,
                                        "n_seeds": len(values)}
            if baseline is not None:
                row |= _versus(runs.set_index("seed")["value"], base, mean)
            rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["baseline"] = baseline
    return out


def _versus(values: pd.Series, base: pd.Series, mean: float) -> dict[str, float]:
    if base.empty:
        return {"delta": math.nan, "rel_delta": math.nan, "p_value": math.nan}
    base_mean = float(base.mean())
    delta = mean - base_mean
    common = values.index.intersection(base.index)
    p = math.nan
    if len(common) >= 2:
        a, b = values.loc[common].to_numpy(float), base.loc[common].to_numpy(float)
        if not np.allclose(a, b, rtol=0, atol=0):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                p = float(sps.ttest_rel(a, b).pvalue)
    return {"delta": delta, "rel_delta": delta / base_mean if base_mean != 0 else math.nan, "p_value": p}


def best_versus(records_or_df, challengers: Sequence[str], references: Sequence[str], *, metric: str = "ndcg",
                k: int | None = 10, protocol: str = "full", lower_is_better: bool = False,
                alpha: float = 0.05) -> dict[str, Any]:
    """The best of ``challengers`` against the best of ``references`` on one metric, over seeds.

    "Best" is the highest mean over seeds (lowest with ``lower_is_better``, e.g. RMSE). The p-value
    is the paired t-test over common seeds of :func:`summarize` (two-sided).

    Returns:
        ``challenger``, ``challenger_mean``, ``reference``, ``reference_mean``, ``rel_delta``
        (signed so that positive means the challenger is better), ``p_value``, ``n_seeds`` and
        ``wins`` (better with ``p_value < alpha``).
    """
    df = _frame(records_or_df)
    keep = (df["metric"] == metric) & (df["protocol"] == protocol)
    if k is not None and "k" in df.columns:
        keep &= df["k"] == k
    df = df[keep]
    means = df.groupby("method")["value"].mean()
    pick = pick_best(means, challengers, references, lower_is_better=lower_is_better,
                     missing=f"has {protocol} {metric} results")
    row = summarize(df, baseline=pick["reference"], by=[]).set_index("method").loc[pick["challenger"]]
    sign = -1.0 if lower_is_better else 1.0
    rel, p = sign * float(row["rel_delta"]), float(row["p_value"])
    return {"challenger": pick["challenger"], "challenger_mean": float(means[pick["challenger"]]),
            "reference": pick["reference"], "reference_mean": float(means[pick["reference"]]),
            "rel_delta": rel, "p_value": p, "n_seeds": int(row["n_seeds"]),
            "wins": bool(rel > 0 and p < alpha)}


def pick_best(means: pd.Series, challengers: Sequence[str], references: Sequence[str], *,
              lower_is_better: bool = False, missing: str = "has results") -> dict[str, str]:
    """The best challenger and the best reference by their mean (``means``: method -> mean).

    Raises:
        ConfigError: no method of a group is in ``means`` (the message ends with ``missing``).
    """
    pick = {}
    for role, names in (("challenger", challengers), ("reference", references)):
        present = means.reindex([n for n in names if n in means.index])
        if present.empty:
            raise ConfigError(f"None of the {role} methods {list(names)} {missing}.",
                              f"Use methods from {sorted(map(str, means.index))}.")
        pick[role] = str(present.idxmin() if lower_is_better else present.idxmax())
    return pick


class PairedTest(NamedTuple):
    """Result of :func:`paired_user_test`."""

    statistic: float
    p_value: float


def paired_user_test(a, b, metric: str | None = None) -> PairedTest:
    """Wilcoxon signed-rank test over users between two models' per-user values of one metric.

    Args:
        a, b: Per-user values of the two models: aligned arrays, Series (aligned on their index), or the
            per-user DataFrames of ``evaluate(..., per_user=True)`` (joined on ``user``; needs ``metric``).
        metric: Column to compare when ``a`` and ``b`` are DataFrames, e.g. ``"ndcg@10"``.

    Returns:
        ``PairedTest(statistic, p_value)`` of :func:`scipy.stats.wilcoxon`; users where either value is
        NaN are dropped, and identical values give ``(0.0, 1.0)``.
    """
    if isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame):
        if metric is None or metric not in getattr(a, "columns", ()) or metric not in getattr(b, "columns", ()):
            raise ConfigError(f"Metric {metric!r} is not a column of both per-user tables.",
                              "Pass metric='ndcg@10', for example.")
        a, b = a.set_index("user")[metric], b.set_index("user")[metric]
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        a, b = a.align(b, join="inner")
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise DataError(f"Per-user values differ in length ({x.size} vs {y.size}).",
                        "Evaluate both models on the same users.")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if x.size == 0:
        raise DataError("No user has values from both models.", "Evaluate both models on the same users.")
    if np.all(x == y):
        return PairedTest(0.0, 1.0)
    result = sps.wilcoxon(x, y)
    return PairedTest(float(result.statistic), float(result.pvalue))


def _fmt(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def _fmt_p(p: float) -> str:
    if p is None or math.isnan(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def to_markdown(summary: pd.DataFrame, digits: int = 4) -> str:
    """A Markdown table of a :func:`summarize` frame: labels, ``mean ± half-width``, seeds, and comparison.

    Label columns that are empty everywhere are left out; ``metric`` and ``k`` are shown as ``ndcg@10``;
    the baseline's own rows say ``(baseline)``. Written here so that ``tabulate`` is not needed.
    """
    need = {"method", "mean", "ci_low", "ci_high", "n_seeds"}
    if not need <= set(summary.columns):
        raise ConfigError(f"to_markdown needs a summarize() frame with columns {sorted(need)}.",
                          "Pass the result of summarize(...).")
    stat_cols = need | {"delta", "rel_delta", "p_value"}
    labels = [c for c in summary.columns if c not in stat_cols and summary[c].notna().any()]
    header = [c for c in labels if c != "k"] + ["method", "mean ± 95% CI", "seeds"]
    has_base = "delta" in summary.columns
    header += ["Δ vs baseline", "rel. Δ", "p"] if has_base else []
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for _, row in summary.iterrows():
        cells = []
        for c in labels:
            if c == "metric" and "k" in labels and not pd.isna(row["k"]):
                cells.append(f"{row['metric']}@{int(row['k'])}")
            elif c != "k":
                cells.append(_fmt(row[c], digits))
        half = (row["ci_high"] - row["ci_low"]) / 2
        mean = _fmt(float(row["mean"]), digits)
        cells += [_fmt(row["method"], digits), mean + (f" ± {half:.{digits}f}" if not math.isnan(half) else ""),
                  str(int(row["n_seeds"]))]
        if has_base and row["method"] == summary.attrs.get("baseline"):
            cells += ["(baseline)", "", ""]
        elif has_base:
            rel = row["rel_delta"]
            delta = float(row["delta"])
            cells += ["" if math.isnan(delta) else f"{delta:+.{digits}f}",
                      "" if math.isnan(rel) else f"{100 * rel:+.1f}%",
                      _fmt_p(float(row["p_value"]))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
