"""Run methods over seeds on one data set and collect tidy, labelled results.

This is the glue the CLI, the benchmark and the book chapters share: load the data set for a seed,
build a model from its sizes and a config, train it (model selection on the validation split only),
evaluate it under one or more protocols, and return one record per metric with every label a
reader needs to know where a number came from.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError

RATING_PROTOCOL = "ratings"
#: Protocol labels of the records a run gets on the target validation split (see ``validate_users``).
VALID_PROTOCOL, VALID_RATING_PROTOCOL = "valid", "valid-ratings"


@dataclass(frozen=True)
class RunSpec:
    """One method with its options, evaluated on one data set setting.

    Args:
        method: Registered method name (see :data:`xcatrec.models.METHODS`).
        options: Config fields of the method (anything left out keeps its default).
        protocols: Evaluation protocols, e.g. ``("full", "sampled-999")`` or ``("ratings",)``.
        ks: Cut-offs for the top-K metrics.
    """

    method: str
    options: dict[str, Any] = field(default_factory=dict)
    protocols: tuple[str, ...] = ("full",)
    ks: tuple[int, ...] = (10,)


def log(message: str, *, verbose: bool = True) -> None:
    """Progress line on stderr (results go to stdout)."""
    if verbose:
        print(message, file=sys.stderr, flush=True)


def run_one(dataset: CrossDomainDataset, spec: RunSpec, seed: int, *, verbose: bool = False,
            labels: dict[str, Any] | None = None, measure_memory: bool = False,
            validate_users: int | None = None):
    """Train ``spec.method`` with ``seed`` on ``dataset`` and evaluate it.

    Args:
        validate_users: When not ``None``, also evaluate the trained model on the target validation
            split, on the fixed subset of at most this many users that model selection scores (0 =
            all; see :func:`xcatrec.training.trainer.validation_users`): full ranking under the
            protocol label ``"valid"`` (``"valid-ratings"``, MAE and RMSE, when the spec evaluates
            ratings). The benchmark compares these with the target-only run of the same seed to flag
            negative transfer without looking at test.

    Returns:
        ``(records, model)``: tidy metric records (see :func:`xcatrec.evaluation.records`) with the
        extra metrics ``fit_seconds``, ``seconds_per_epoch`` (and ``peak_mb`` when measured), and the
        trained model.
    """
    from xcatrec.evaluation import evaluate, evaluate_ratings, records
    from xcatrec.models import make_model

    model = make_model(spec.method, dataset.sizes, seed=seed, **spec.options)
    base = dict(dataset=dataset.name, source=dataset.source.name, target=dataset.target.name,
                split=dataset.split, method=spec.method, seed=seed, **(labels or {}))
    log(f"[{spec.method} seed={seed}] training on {dataset.name} "
        f"({dataset.source.name} -> {dataset.target.name}, split {dataset.split})", verbose=verbose)
    if measure_memory:
        tracemalloc.start()
    start = time.perf_counter()
    report = model.fit(dataset, verbose=verbose)
    fit_seconds = time.perf_counter() - start
    peak_mb = None
    if measure_memory:
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    out: list[dict] = []
    for protocol in spec.protocols:
        start = time.perf_counter()
        if protocol == RATING_PROTOCOL:
            metrics = evaluate_ratings(model, dataset)
        else:
            metrics = evaluate(model, dataset, protocol=protocol, ks=spec.ks, seed=seed)
        _log_metrics(spec, seed, protocol, metrics, start, verbose=verbose)
        out += records(metrics, protocol=protocol, **base)
    if validate_users is not None and len(dataset.target.valid):
        out += _validation_records(model, dataset, spec, seed, validate_users, base, verbose=verbose)
    cost = {"fit_seconds": fit_seconds, "seconds_per_epoch": report.seconds_per_epoch}
    if peak_mb is not None:
        cost["peak_mb"] = peak_mb
    out += records(cost, protocol="cost", **base)
    return out, model


def _validation_records(model, dataset: CrossDomainDataset, spec: RunSpec, seed: int, max_users: int,
                        base: dict[str, Any], *, verbose: bool) -> list[dict]:
    """Records of ``model`` on the target validation split (see ``run_one(validate_users=...)``)."""
    from xcatrec.evaluation import evaluate, evaluate_ratings, records
    from xcatrec.training.trainer import validation_users

    users = validation_users(dataset, max_users=max_users, seed=seed)
    start = time.perf_counter()
    if RATING_PROTOCOL in spec.protocols:
        protocol, metrics = VALID_RATING_PROTOCOL, evaluate_ratings(model, dataset, part="valid", users=users)
    else:
        protocol = VALID_PROTOCOL
        metrics = evaluate(model, dataset, protocol="full", ks=spec.ks, part="valid", users=users, seed=seed)
    _log_metrics(spec, seed, f"{protocol} ({len(users)} users)", metrics, start, verbose=verbose)
    return records(metrics, protocol=protocol, **base)


def _log_metrics(spec: RunSpec, seed: int, label: str, metrics: dict[str, float], start: float, *,
                 verbose: bool) -> None:
    """One progress line: the run, what was evaluated, every metric and the seconds since ``start``."""
    log(f"[{spec.method} seed={seed}] {label}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        + f" ({time.perf_counter() - start:.1f} s)", verbose=verbose)


def run_seeds(load: Callable[[int], CrossDomainDataset], specs: Iterable[RunSpec], seeds: Iterable[int], *,
              verbose: bool = False, labels: dict[str, Any] | None = None, measure_memory: bool = False,
              skip: Callable[[RunSpec, int], bool] | None = None,
              on_records: Callable[[list[dict]], None] | None = None,
              validate_users: int | None = None) -> list[dict]:
    """Every spec on every seed; ``load(seed)`` returns the data set split for that seed.

    Args:
        validate_users: passed to :func:`run_one` (``None``: no validation records).
        skip: ``skip(spec, seed)`` true leaves that run out (used to resume a benchmark).
        on_records: called with the records of each finished run, so a caller can save them at once.
    """
    specs, seeds = list(specs), list(seeds)
    if not seeds:
        raise ConfigError("No seeds to run.", "Pass --seeds 3 (or a list of seeds).")
    out: list[dict] = []
    for seed in seeds:
        todo = [spec for spec in specs if skip is None or not skip(spec, seed)]
        if not todo:
            continue
        dataset = load(seed)
        for spec in todo:
            records = run_one(dataset, spec, seed, verbose=verbose, labels=labels,
                              measure_memory=measure_memory, validate_users=validate_users)[0]
            out += records
            if on_records is not None:
                on_records(records)
    return out
