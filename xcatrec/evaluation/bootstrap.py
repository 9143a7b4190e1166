"""Uncertainty over users *and* seeds, and the words the book uses for a comparison.

A t-interval over three training seeds on one fixed test set ignores that the test users are a sample
too; it is several times narrower than the variation over users. Here a comparison of two methods on
one metric is bootstrapped at two levels (:func:`paired_bootstrap`): each replicate resamples the seeds
with replacement and, within each chosen seed, that seed's users with replacement, the same users for
both methods (paired). :func:`verdict` turns the result into one of four phrases and :func:`describe`
into a sentence; they are the single place the book's verdict words come from.

Per-user values are stored compactly (:func:`per_user_records`, :func:`per_user_frame`): with one
held-out item per user most NDCG values are 0, so a record keeps the evaluated users and only the
nonzero values. :func:`compare_runs` compares two methods straight from such a frame.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xcatrec.errors import ConfigError, DataError
from xcatrec.evaluation.stats import LABELS, _split_metric

__all__ = ["BootstrapResult", "paired_bootstrap", "verdict", "describe", "compare_runs", "compare_users", "per_user_records",
           "per_user_frame", "VERDICTS", "VERDICTS_ZH", "verdict_zh"]

#: The four verdict phrases, as they read between two method names.
VERDICTS = ("beats", "is level with", "falls below", "cannot be told apart from")
#: The same four verdicts as Chinese sentences; ``{a}`` is the challenger and ``{b}`` the reference.
VERDICTS_ZH = dict(zip(VERDICTS, ("{a}优于{b}", "{a}与{b}持平", "{a}不如{b}", "{a}与{b}无法区分")))
_CHUNK_CELLS = 2_500_000  # user indices drawn at a time (about 200 replicates of 12,500 users; 20 MB)
_RECORD_KEYS = ("metric", "k", "kind", "n_users", "users", "nonzero", "value")


@dataclass(frozen=True)
class BootstrapResult:
    """Result of :func:`paired_bootstrap`.

    Attributes:
        estimate: Challenger versus reference on the data as observed: ``C / R - 1`` if ``relative``
            else ``C - R``, where ``C`` and ``R`` are the means over seeds of the means over users.
            NaN when ``relative`` and ``R == 0``.
        ci_low, ci_high: Percentile interval of the replicates at ``level`` (NaN with the estimate).
        p_value: Two-sided bootstrap p-value (see :func:`paired_bootstrap`), NaN with the estimate.
        n_seeds: Seeds compared.
        n_users: Users compared, summed over the seeds.
        n_boot: Bootstrap replicates.
        level: Coverage of the interval, e.g. 0.95.
        relative: Whether the statistic is the relative difference (ratio of means minus 1).
        challenger_mean, reference_mean: ``C`` and ``R``.
    """

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    n_seeds: int
    n_users: int
    n_boot: int
    level: float = 0.95
    relative: bool = True
    challenger_mean: float = math.nan
    reference_mean: float = math.nan


def _per_seed(values, role: str) -> tuple[list, list[np.ndarray]]:
    """Seed keys and 1-D float arrays of one method's per-user values."""
    if isinstance(values, Mapping):
        keys, arrays = list(values.keys()), list(values.values())
    elif isinstance(values, np.ndarray) and values.ndim == 1:
        keys, arrays = [0], [values]
    elif isinstance(values, (Sequence, np.ndarray)) and not isinstance(values, (str, bytes)):
        keys, arrays = list(range(len(values))), list(values)
    else:
        raise ConfigError(f"The {role} values must be a list of per-user arrays (one per seed), a dict "
                          f"seed -> array, or one array; got {type(values).__name__}.",
                          "Pass e.g. [ndcg_seed0, ndcg_seed1, ndcg_seed2].")
    if not arrays:
        raise ConfigError(f"The {role} values hold no seed.", "Pass at least one per-user array.")
    out = []
    for key, a in zip(keys, arrays):
        a = np.asarray(a, dtype=np.float64) if not isinstance(a, pd.Series) else a.to_numpy(np.float64)
        if a.ndim != 1 or a.size == 0:
            raise ConfigError(f"The {role} values of seed {key!r} must be a non-empty 1-D array of per-user "
                              f"values, got shape {a.shape}.",
                              "Pass one array per seed with one value per user.")
        out.append(a)
    return keys, out


def _aligned(challenger, reference) -> list[tuple[np.ndarray, np.ndarray]]:
    c_keys, c_arrays = _per_seed(challenger, "challenger")
    r_keys, r_arrays = _per_seed(reference, "reference")
    if isinstance(challenger, Mapping) != isinstance(reference, Mapping):
        raise ConfigError("Pass the challenger and the reference values in the same form.",
                          "Use two dicts seed -> array, or two lists of arrays in the same seed order.")
    if isinstance(challenger, Mapping):
        if set(c_keys) != set(r_keys):
            raise ConfigError(f"The methods ran different seeds: {sorted(map(str, c_keys))} versus "
                              f"{sorted(map(str, r_keys))}.", "Compare on the seeds both methods ran.")
        by_key = dict(zip(r_keys, r_arrays))
        r_arrays = [by_key[k] for k in c_keys]
    elif len(c_arrays) != len(r_arrays):
        raise ConfigError(f"The challenger has {len(c_arrays)} seeds and the reference {len(r_arrays)}.",
                          "Pass one per-user array per seed for both methods, in the same seed order.")
    pairs = []
    for key, c, r in zip(c_keys, c_arrays, r_arrays):
        if c.shape != r.shape:
            raise ConfigError(f"Seed {key!r}: the challenger has {c.size} users and the reference {r.size}.",
                              "Align the users of each seed (same users, same order), e.g. with compare_runs.")
        if np.isinf(c).any() or np.isinf(r).any():
            raise ConfigError(f"Seed {key!r} has infinite per-user values.", "Pass finite metric values.")
        keep = ~(np.isnan(c) | np.isnan(r))  # e.g. AUC of users without a negative candidate
        if not keep.any():
            raise ConfigError(f"Seed {key!r}: no user has a value for both methods.",
                              "Evaluate both methods on the same users.")
        pairs.append((c[keep], r[keep]))
    return pairs


def _stat(c: np.ndarray, r: np.ndarray, relative: bool) -> np.ndarray:
    """``c / r - 1`` (0 where both are 0, +inf where only ``r`` is) or ``c - r``."""
    if not relative:
        return c - r
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > 0, c / np.where(r > 0, r, 1.0) - 1.0, np.where(c > 0, np.inf, 0.0))


def paired_bootstrap(challenger, reference, *, n_boot: int = 2000, seed: int = 0, relative: bool = True,
                     level: float = 0.95) -> BootstrapResult:
    """Paired two-level bootstrap of one metric over users and seeds: challenger versus reference.

    Args:
        challenger, reference: Per-user values of one metric (e.g. NDCG@10) of each method, in the same
            form: a list with one 1-D array per seed (same seed order), a dict seed -> 1-D array (same
            seeds), or one 1-D array (a single seed). Within a seed the two arrays are aligned (same
            users, same order); different seeds may hold different users (e.g. other cold users).
            Users with NaN for either method are left out of that seed.
        n_boot: Bootstrap replicates (at least 100).
        seed: Seed of the resampling; the same inputs and seed always give the same result.
        relative: Compare by ``C / R - 1`` (ratio of means) instead of ``C - R``. Needs non-negative
            values.
        level: Coverage of the percentile interval.

    The estimate compares ``C`` and ``R``, the means over seeds of the means over users. Each replicate
    draws ``n_seeds`` seeds with replacement and, independently for every draw, that seed's users with
    replacement, the *same* user indices for both methods; ``C*`` and ``R*`` are the means over the
    drawn seeds of the means over the drawn users, and the replicate's statistic is ``C* / R* - 1``
    (``0`` if both are 0, ``+inf`` if only ``R*`` is) or ``C* - R*``. With one seed only users are
    resampled. The interval is ``[q_low, q_high]`` with ``q_low`` the lower order statistic at
    ``(1 - level) / 2`` and ``q_high`` the upper one at ``(1 + level) / 2`` (no interpolation, so
    never narrower than the order statistics). The p-value is ``2 * min(P* <= 0, P* >= 0)``, where
    ``P*`` are the fractions of replicates whose statistic is ``<= 0`` and ``>= 0``, clipped to
    ``[1 / n_boot, 1]`` (``1 / n_boot`` reads "at most about that": no replicate crossed 0).

    Returns:
        A :class:`BootstrapResult`; with ``relative`` and ``R == 0`` the estimate, the interval and the
        p-value are NaN (the relative difference is undefined: use ``relative=False``).

    Raises:
        ConfigError: Mismatched seeds or users, empty or non-1-D values, negative values with
            ``relative``, or a bad ``n_boot``, ``level`` or ``seed``.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 100:
        raise ConfigError(f"n_boot must be an integer of at least 100, got {n_boot!r}.", "Pass n_boot=2000.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be an integer, got {seed!r}.", "Pass seed=0.")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ConfigError(f"level must be between 0 and 1, got {level!r}.", "Pass level=0.95.")
    pairs = _aligned(challenger, reference)
    if relative and any((c < 0).any() or (r < 0).any() for c, r in pairs):
        raise ConfigError("A relative difference needs non-negative metric values, and some are negative.",
                          "Pass relative=False to compare differences of means.")
    n_boot, n_seeds = int(n_boot), len(pairs)
    c_mean = float(np.mean([c.mean() for c, _ in pairs]))
    r_mean = float(np.mean([r.mean() for _, r in pairs]))
    n_users = sum(c.size for c, _ in pairs)
    base = dict(n_seeds=n_seeds, n_users=n_users, n_boot=n_boot, level=float(level), relative=bool(relative),
                challenger_mean=c_mean, reference_mean=r_mean)
    if relative and r_mean == 0:
        return BootstrapResult(math.nan, math.nan, math.nan, math.nan, **base)
    estimate = float(_stat(np.array(c_mean), np.array(r_mean), relative))

    rng = np.random.default_rng(int(seed))
    chosen = (rng.integers(0, n_seeds, size=(n_boot, n_seeds)) if n_seeds > 1
              else np.zeros((n_boot, 1), dtype=np.int64))
    c_star = np.empty((n_boot, n_seeds))
    r_star = np.empty((n_boot, n_seeds))
    for s, (c, r) in enumerate(pairs):
        rows, cols = np.nonzero(chosen == s)  # every draw of seed s gets its own resample of its users
        step = max(1, _CHUNK_CELLS // c.size)
        for start in range(0, len(rows), step):
            idx = rng.integers(0, c.size, size=(min(step, len(rows) - start), c.size))
            at = (rows[start:start + step], cols[start:start + step])
            c_star[at] = c[idx].mean(axis=1)
            r_star[at] = r[idx].mean(axis=1)
    stats = _stat(c_star.mean(axis=1), r_star.mean(axis=1), relative)
    alpha = (1 - level) / 2
    low = float(np.quantile(stats, alpha, method="lower"))
    high = float(np.quantile(stats, 1 - alpha, method="higher"))
    p = 2 * min(np.count_nonzero(stats <= 0), np.count_nonzero(stats >= 0)) / n_boot
    return BootstrapResult(estimate, low, high, float(min(max(p, 1 / n_boot), 1.0)), **base)


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0:
        raise ConfigError(f"threshold must be a non-negative number, got {threshold!r}.",
                          "Pass threshold=0.02 (2% for relative differences).")
    return float(threshold)


def _oriented(result: BootstrapResult, lower_is_better: bool) -> tuple[float, float, float]:
    est, low, high = result.estimate, result.ci_low, result.ci_high
    return (-est, -high, -low) if lower_is_better else (est, low, high)


def verdict(result: BootstrapResult, *, threshold: float = 0.02, lower_is_better: bool = False) -> str:
    """The phrase for "challenger ... reference": one of :data:`VERDICTS`.

    This is the single rule behind the book's verdict words. With the estimate ``e`` and the interval
    ``[lo, hi]`` of ``result`` (signs flipped when ``lower_is_better``, e.g. RMSE, so that positive
    always means "the challenger is better") and a practical threshold ``t`` (in the units of the
    estimate: a fraction for relative results, 0.02 = 2%; metric units otherwise):

    - ``"beats"``: ``lo > 0`` and ``e >= t`` (better, by at least ``t``);
    - ``"falls below"``: ``hi < 0`` and ``e <= -t`` (worse, by at least ``t``);
    - ``"is level with"``: the whole interval lies within ``(-t, t)`` (or is the single point 0), or
      the interval excludes 0 but ``|e| < t`` (a real but practically negligible difference;
      :func:`describe` says so);
    - ``"cannot be told apart from"``: otherwise: the interval holds 0 and reaches beyond ``t`` (or
      ``-t``), so the data cannot say which is better; also when the estimate is NaN.
    """
    t = _check_threshold(threshold)
    e, lo, hi = _oriented(result, lower_is_better)
    if any(math.isnan(x) for x in (e, lo, hi)):
        return VERDICTS[3]
    if lo > 0 and e >= t:
        return VERDICTS[0]
    if hi < 0 and e <= -t:
        return VERDICTS[2]
    if (-t < lo and hi < t) or (lo == hi == 0) or ((lo > 0 or hi < 0) and abs(e) < t):
        return VERDICTS[1]
    return VERDICTS[3]


def verdict_zh(word: str, a: str, b: str) -> str:
    """The Chinese sentence for "``a`` <word> ``b``", ``word`` one of :data:`VERDICTS`:
    ``verdict_zh("beats", "迁移模型", "流行度基线") == "迁移模型优于流行度基线"``."""
    if word not in VERDICTS_ZH:
        raise ConfigError(f"Unknown verdict {word!r}.", f"Use one of {list(VERDICTS)} (what verdict() returns).")
    return VERDICTS_ZH[word].format(a=a, b=b)


def _pct(x: float) -> str:
    """Signed percent with one decimal below 10% and none above: ``+18%``, ``-0.8%``."""
    v = 100 * x
    if math.isinf(v):
        return "+inf%" if v > 0 else "-inf%"
    decimals = 0 if abs(v) >= 9.95 else 1
    v = round(v, decimals) or 0.0  # no "-0.0%"
    return f"{v:+.{decimals}f}%"


def _num(x: float) -> str:
    return "+0" if x == 0 else f"{x:+.3g}"


def _p(result: BootstrapResult) -> str:
    p, floor = result.p_value, 1 / result.n_boot
    if p <= floor:
        return "p < 0.001" if floor < 0.001 else f"p ≤ {floor:.2g}"
    return "p < 0.001" if p < 0.001 else f"p = {p:#.2g}"


def describe(result: BootstrapResult, challenger: str, reference: str, *, threshold: float = 0.02,
             metric_name: str = "NDCG@10", lower_is_better: bool = False) -> str:
    """One sentence for a comparison, e.g.
    ``"cmf beats popularity: +18% NDCG@10 (95% interval +9% to +27% over users and seeds, p < 0.001)"``.

    The verb comes from :func:`verdict` (same ``threshold`` and ``lower_is_better``); the numbers are
    the raw estimate and interval (for RMSE a negative percentage is an improvement). Relative results
    are in percent (one decimal below 10%), differences with 3 significant digits, the p-value with 2
    significant digits or ``"< 0.001"``. A real but negligible difference says so.
    """
    word = verdict(result, threshold=threshold, lower_is_better=lower_is_better)
    head = f"{challenger} {word} {reference}: "
    if math.isnan(result.estimate):
        return head + (f"{metric_name} of {reference} is 0, so there is no relative difference "
                       f"({challenger}: {result.challenger_mean:.3g}).")
    fmt = _pct if result.relative else _num
    over = "over users and seeds" if result.n_seeds > 1 else "over users, one seed"
    level = f"{100 * result.level:g}%"
    text = (head + f"{fmt(result.estimate)} {metric_name} ({level} interval {fmt(result.ci_low)} to "
            f"{fmt(result.ci_high)} {over}, {_p(result)})")
    lo, hi = result.ci_low, result.ci_high
    if word == VERDICTS[1] and (lo > 0 or hi < 0):
        size = _pct(threshold)[1:] if result.relative else f"{threshold:.3g}"
        text += f"; the difference is real but smaller than {size}"
    return text + "."


def _column(metric: str, k) -> str:
    return metric if k is None or (isinstance(k, float) and math.isnan(k)) else f"{metric}@{int(k)}"


def per_user_records(per_user_df: pd.DataFrame, metrics: str | Sequence[str] = "ndcg@10", **labels) -> list[dict]:
    """Compact JSON-friendly records of per-user values, one per metric column.

    Args:
        per_user_df: The frame of :func:`~xcatrec.evaluation.evaluate` with ``per_user=True``: a ``user``
            column and one column per metric.
        metrics: The metric column(s) to store, e.g. ``"ndcg@10"``.
        **labels: ``dataset``, ``method``, ``seed``, ... copied into every record (as in
            :func:`~xcatrec.evaluation.stats.records`; missing standard labels are ``None``).

    Returns:
        One dict per metric: the labels, ``metric`` (e.g. ``"ndcg"``), ``k`` (``10``), ``kind``
        (``"per-user"``), ``n_users``, ``users`` and ``nonzero`` (``[[position, value], ...]``):
        ``users`` are all evaluated user indices, sorted, and
        ``nonzero`` the positions in ``users`` whose value is not 0, with the value rounded to 6
        significant digits (``None`` for NaN). :func:`per_user_frame` reads them back.
    """
    if not isinstance(per_user_df, pd.DataFrame) or "user" not in per_user_df.columns:
        raise ConfigError("per_user_records needs a DataFrame with a 'user' column.",
                          "Pass the frame of evaluate(..., per_user=True).")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    missing = [m for m in metrics if m not in per_user_df.columns]
    if missing or not metrics:
        raise ConfigError(f"The per-user frame has no column(s) {missing or metrics}.",
                          f"Use some of {[c for c in per_user_df.columns if c != 'user']}.")
    clash = [k for k in labels if k in _RECORD_KEYS]
    if clash:
        raise ConfigError(f"Label(s) {clash} clash with the record's own fields.", "Rename those labels.")
    users = per_user_df["user"].to_numpy()
    if users.dtype.kind not in "iu" and not (users.dtype.kind == "f" and np.all(users == np.round(users))):
        raise DataError("The per-user frame's 'user' column does not hold integer user indices.",
                        "Pass the frame of evaluate(..., per_user=True).")
    users = users.astype(np.int64)
    order = np.argsort(users, kind="stable")
    users = users[order]
    if users.size and np.any(users[1:] == users[:-1]):
        raise DataError("The per-user frame lists a user twice.", "Store one row per user and run.")
    base = {name: labels.get(name) for name in LABELS} | labels
    out = []
    for name in metrics:
        metric, k = _split_metric(name)
        values = per_user_df[name].to_numpy(np.float64)[order]
        nonzero = [[int(i), None if math.isnan(v) else float(f"{v:.6g}")]
                   for i, v in zip(np.flatnonzero(values != 0), values[values != 0])]
        out.append({**base, "metric": metric, "k": k, "kind": "per-user", "n_users": int(users.size),
                    "users": users.tolist(), "nonzero": nonzero})
    return out


def per_user_frame(records: Sequence[Mapping]) -> pd.DataFrame:
    """The per-user values of :func:`per_user_records` records back as a tidy frame.

    Records of other kinds (e.g. :func:`~xcatrec.evaluation.stats.records`) are skipped, so a benchmark
    may keep both in one list. Records with the same labels (one run) are joined on the user.

    Returns:
        One row per run and user: the label columns, ``user``, and one column per metric (``ndcg@10``),
        zeros restored (NaN where a metric was not stored for that user).
    """
    runs: dict[tuple, list[pd.DataFrame]] = {}
    label_names: dict[str, None] = {}
    for rec in records:
        if not isinstance(rec, Mapping) or rec.get("kind") != "per-user":
            continue
        missing = [k for k in _RECORD_KEYS if k not in rec and k != "value"]
        if missing:
            raise DataError(f"A per-user record lacks {missing}.", "Build records with per_user_records(...).")
        users = np.asarray(rec["users"], dtype=np.int64)
        if users.size != rec["n_users"]:
            raise DataError(f"A per-user record says n_users={rec['n_users']} but lists {users.size} users.",
                            "Rebuild it with per_user_records(...).")
        values = np.zeros(users.size)
        if rec["nonzero"]:
            pos, val = zip(*rec["nonzero"])
            pos = np.asarray(pos, dtype=np.int64)
            if pos.min() < 0 or pos.max() >= users.size:
                raise DataError("A per-user record has a nonzero position outside its users.",
                                "Rebuild it with per_user_records(...).")
            values[pos] = [math.nan if v is None else float(v) for v in val]
        labels = {k: v for k, v in rec.items() if k not in _RECORD_KEYS}
        label_names.update(dict.fromkeys(labels))
        frame = pd.DataFrame({"user": users, _column(rec["metric"], rec["k"]): values})
        runs.setdefault(tuple(sorted(labels.items(), key=lambda kv: kv[0])), []).append(frame)
    if not runs:
        raise DataError("No per-user records to read.", "Pass records built with per_user_records(...).")
    frames = []
    for key, parts in runs.items():
        frame = parts[0]
        for part in parts[1:]:
            overlap = [c for c in part.columns if c != "user" and c in frame.columns]
            if overlap:
                raise DataError(f"Two per-user records of {overlap} for one run ({dict(key)}).",
                                "Store each metric of a run once, or label the runs apart.")
            frame = frame.merge(part, on="user", how="outer")
        labels = dict(key)
        frames.append(frame.assign(**{name: labels.get(name) for name in label_names}))
    out = pd.concat(frames, ignore_index=True)
    return out[list(label_names) + [c for c in out.columns if c not in label_names]]


def compare_runs(per_user: pd.DataFrame, challenger: str, reference: str, *, metric: str = "ndcg@10",
                 where: Mapping | None = None, on_missing: str = "error", n_boot: int = 2000, seed: int = 0,
                 relative: bool = True, level: float = 0.95) -> BootstrapResult:
    """:func:`paired_bootstrap` of two methods from a tidy per-user frame (e.g. :func:`per_user_frame`).

    Args:
        per_user: Columns ``seed``, ``method``, ``user``, the ``metric`` column, and any labels.
        challenger, reference: The two methods.
        metric: The metric column, e.g. ``"ndcg@10"``.
        where: Label filters, e.g. ``{"dataset": "amazon", "protocol": "full"}``; after filtering each
            (seed, method, user) must occur once.
        on_missing: Within a seed the users are matched by an inner join. A user (or a whole seed)
            that only one method has is an error with ``"error"`` (default: both methods should have
            been evaluated on the same users), or left out with a warning with ``"drop"``.
        n_boot, seed, relative, level: As in :func:`paired_bootstrap` (``seed`` seeds the resampling).
    """
    need = ["seed", "method", "user", metric]
    if not isinstance(per_user, pd.DataFrame) or any(c not in per_user.columns for c in need):
        raise ConfigError(f"compare_runs needs a DataFrame with columns {need}.",
                          "Build it with per_user_frame(records).")
    if on_missing not in ("error", "drop"):
        raise ConfigError(f"on_missing must be 'error' or 'drop', got {on_missing!r}.", "Pass on_missing='drop'.")
    df = per_user
    for name, value in (where or {}).items():
        if name not in df.columns:
            raise ConfigError(f"Cannot filter on missing column {name!r}.", f"Use some of {list(df.columns)}.")
        df = df[df[name].isna()] if value is None else df[df[name] == value]
    for method in (challenger, reference):
        if not (df["method"] == method).any():
            raise ConfigError(f"Method {method!r} has no per-user {metric} values"
                              + (f" where {dict(where)}." if where else "."),
                              f"Use one of {sorted(map(str, df['method'].unique()))}.")
    df = df[df["method"].isin([challenger, reference])]
    if df.duplicated(["seed", "method", "user"]).any():
        raise DataError("A (seed, method, user) occurs more than once: the frame mixes several runs.",
                        "Narrow it with where={...} (e.g. dataset, split, protocol).")
    c_all, r_all = (df[df["method"] == m].set_index(["seed", "user"])[metric] for m in (challenger, reference))
    joined = pd.concat({"c": c_all, "r": r_all}, axis=1, join="outer")
    lost = joined.index.difference(c_all.index).union(joined.index.difference(r_all.index))
    if len(lost):
        text = (f"{len(lost)} (seed, user) pair(s) have {metric} for only one of {challenger!r} and "
                f"{reference!r} (e.g. seed {lost[0][0]!r}, user {lost[0][1]!r}).")
        if on_missing == "error":
            raise DataError(text, "Evaluate both methods on the same users and seeds, or pass on_missing='drop'.")
        warnings.warn(text + " They are left out.", stacklevel=2)
        joined = joined.drop(index=lost)
    if joined.empty:
        raise DataError(f"{challenger!r} and {reference!r} share no (seed, user).",
                        "Evaluate both methods on the same users and seeds.")
    seeds = {s: g for s, g in joined.groupby(level="seed", sort=True)}
    return paired_bootstrap({s: g["c"].to_numpy() for s, g in seeds.items()},
                            {s: g["r"].to_numpy() for s, g in seeds.items()},
                            n_boot=n_boot, seed=seed, relative=relative, level=level)


def compare_users(challenger, reference, metric: str | None = None, *, threshold: float = 0.02,
                  lower_is_better: bool = False, n_boot: int = 2000, seed: int = 0) -> tuple[BootstrapResult, str]:
    """Two methods of one run (one seed), user by user: the bootstrap result and its verdict word.

    The book's single-seed comparisons use this, so their words come from :func:`verdict` like the
    benchmark's. ``challenger`` and ``reference`` are per-user tables of
    ``evaluate(..., per_user=True)`` (joined on ``user``; ``metric`` names the column) or aligned
    1-D arrays (e.g. per-user squared errors, with ``lower_is_better=True``).
    """
    if isinstance(challenger, pd.DataFrame) or isinstance(reference, pd.DataFrame):
        if metric is None or any(metric not in getattr(t, "columns", ()) for t in (challenger, reference)):
            raise ConfigError(f"Metric {metric!r} is not a column of both per-user tables.",
                              "Pass metric='ndcg@10', for example.")
        joined = challenger[["user", metric]].merge(reference[["user", metric]], on="user", suffixes=("_c", "_r"))
        if joined.empty:
            raise DataError("The two per-user tables share no user.", "Evaluate both models on the same users.")
        challenger, reference = joined[f"{metric}_c"].to_numpy(), joined[f"{metric}_r"].to_numpy()
    result = paired_bootstrap(np.asarray(challenger, dtype=np.float64), np.asarray(reference, dtype=np.float64),
                              n_boot=n_boot, seed=seed)
    return result, verdict(result, threshold=threshold, lower_is_better=lower_is_better)
