"""The benchmark: methods x seeds x scenarios from one JSON config, one command.

``python -m xcatrec bench configs/bench-quick.json`` writes, under ``--out-dir``:

* ``records.json`` / ``records.csv``: every metric of every run (tidy, labelled, with the ``run_key``
  of its run and the git ``commit``); ``runs.json``: the settings behind each ``run_key``;
* ``summary.csv``: mean and 95% interval over seeds, paired t-tests against the scenario's target-only
  baseline and against popularity, seconds per epoch and peak memory;
* ``summary.md``: the same as Markdown tables, one per scenario, with the command, commit and date.

Config format (JSON)::

    {"seeds": [0, 1, 2], "ks": [10],
     "methods": {"bpr-mf": {"epochs": 30}, "popularity": {}},
     "scenarios": [{"name": "elec-cloth-warm", "dataset": "amazon-elec-cloth", "source": "elec",
                    "target": "cloth", "split": "published", "protocols": ["full", "sampled-999"],
                    "methods": ["popularity", "bpr-mf"], "target_only": "bpr-mf"}]}

A scenario's ``methods`` picks from the top-level ``methods`` (name -> options); ``options`` inside a
scenario override them for that scenario (``{"method": {"field": value}}``); ``data`` passes extra
options to the loader (e.g. ``{"rho": 0.5}`` for the synthetic marketplace). The top-level
``validate_users`` (default 3000; ``null`` turns it off) sets how many target validation users every
run is also scored on (protocol ``valid``, or ``valid-ratings``): each transfer run is compared with
the scenario's target-only run of the same seed there, and the summary counts the seeds on which it
was worse (``neg_transfer_valid`` of ``valid_seeds``), a negative-transfer flag that never reads test.

The whole config is checked before any data is loaded (types, seeds, cut-offs, protocols, data sets,
splits, scenario names, every method's options), so a typo fails in a second, not after hours.

Results are never lost:

* **One writer per folder.** A run holds an exclusive lock (``fcntl.flock``) on ``OUT_DIR/.lock``, with
  its pid written inside, from before it reads anything there until it ends. A second ``bench`` on the
  same folder stops at once with an error naming that pid. A lock rather than per-run files merged
  later: two processes would otherwise train the same runs twice, and the kernel drops a ``flock``
  when its process dies in any way (even ``kill -9``), so a crash never leaves a stale lock behind.
* **Every run is keyed.** Each record carries ``run_key``: a hash of everything that determines the
  run (the method's options with its defaults filled in, the scenario's settings but its name, method
  list, seeds, ``target_only`` and ``options``, the top-level keys but ``methods``, ``scenarios``,
  ``seeds`` and ``description``, the seed and ``xcatrec.__version__``), and the git commit as a label.
  ``runs.json`` maps each key to those settings. ``--resume`` reuses only the runs whose key belongs
  to the config at hand; it says how many it reused, and why the others were not (with the settings
  that differ). Those are moved to ``records-set-aside.json`` (appended to, never overwritten), so
  ``records.json`` and the summary only ever hold runs of the current config, and nothing is thrown away.
* **No silent overwrite.** A folder that already holds results is refused unless ``--resume``
  (continue them) or ``--overwrite`` (replace them) is given. ``--overwrite`` leaves the old files in
  place until the first new run is saved, so an early failure costs nothing.
* **Always consistent.** After every finished run, ``records.json``, ``runs.json``, ``records.csv``,
  ``summary.csv`` and ``summary.md`` are all rewritten from the same records in memory (``summary.md``
  says how many runs it covers), each through a uniquely named temporary file in the same folder
  (created with ``O_EXCL``, so a planted link is never followed), flushed and renamed over the old
  one. A kill can at worst leave one file a run behind the others, and ``--resume`` rewrites them all.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

import xcatrec
from xcatrec.errors import ConfigError, DataError
from xcatrec.experiment import (RATING_PROTOCOL, VALID_PROTOCOL, VALID_RATING_PROTOCOL, RunSpec, log,
                                run_seeds)
from xcatrec.method_names import TRANSFER

try:
    import fcntl
except ImportError:  # Windows: no flock; the folder is then not locked
    fcntl = None

#: Where the committed results of ``configs/bench-results.json`` live (the book prints them).
RESULTS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
#: Where the committed results of ``configs/bench-sound.json`` (the sound protocol) live.
RESULTS_SOUND_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results-sound"
RESULTS_SOUND_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "bench-sound.json"
RESULTS_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "bench-results.json"

#: Validation users every benchmark run is also scored on unless the config sets ``validate_users``.
VALIDATE_USERS = 3000

SCENARIO_KEYS = {"name", "dataset", "source", "target", "split", "beta", "protocols", "methods",
                 "target_only", "options", "data", "seeds", "leaks"}
#: Top-level keys of the sound protocol and their defaults (see :func:`protocol_settings`).
PROTOCOL_DEFAULTS = {"tune": None, "tune_scope": "first-seed", "refit": True, "leaks": "remove"}

#: What a benchmark writes in its output folder, all rewritten together after every finished run.
OUTPUTS = ("records.json", "runs.json", "records.csv", "summary.csv", "summary.md")
#: Records that ``--resume`` did not reuse (runs of another config); appended to, never overwritten.
SET_ASIDE = "records-set-aside.json"
#: The lock file of an output folder (see the module docstring).
LOCK = ".lock"
#: Top-level config keys that do not change what a run computes: left out of its ``run_key``.
NOT_RUN_SETTINGS = frozenset({"methods", "scenarios", "seeds", "description"})
#: Scenario keys left out of ``run_key``: labels and the choice of runs (a method's ``options`` enter
#: the key resolved, and only that method's, so changing one method's options keeps the others' runs).
SCENARIO_LABELS = frozenset({"name", "methods", "seeds", "target_only", "options"})
#: Scenario settings as ``load_dataset`` defaults them: leaving a key out is the same run as spelling it.
SCENARIO_DEFAULTS = {"source": None, "target": None, "split": None, "beta": 0.2, "protocols": ["full"], "data": {},
                     "leaks": None}


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a whole benchmark config; errors name the key and the fix.

    Everything is checked here, before any data is loaded: the top-level keys, every scenario (name,
    data set, domains, split, beta, protocols, data options, methods, ``target_only``, option
    overrides, seeds) and the options of every method as each scenario resolves them.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Benchmark config {str(path)!r} does not exist.",
                          "Pass a JSON file such as configs/bench-quick.json.")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON ({err}).", "Fix the JSON syntax.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"Cannot read benchmark config {path} ({err}).", "Pass a readable UTF-8 JSON file.") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} holds a JSON {type(config).__name__}, not an object.",
                          'Write {"methods": {...}, "scenarios": [...]} (see `python -m xcatrec bench --help`).')
    for key in ("methods", "scenarios"):
        if key not in config:
            raise ConfigError(f"{path} has no {key!r}.", "See the format in `python -m xcatrec bench --help`.")
    from xcatrec.models import METHODS

    methods = config["methods"]
    if not isinstance(methods, dict) or not all(isinstance(o, dict) for o in methods.values()):
        raise ConfigError(f"'methods' must map method names to option objects in {path}, got {methods!r}.",
                          'Write e.g. "methods": {"popularity": {}, "bpr-mf": {"epochs": 30}}.')
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ConfigError(f"Unknown method(s) {unknown} in {path}.", f"Use names from {sorted(METHODS)}.")
    users = config.get("validate_users", VALIDATE_USERS)
    if users is not None and (isinstance(users, bool) or not isinstance(users, int) or users < 0):
        raise ConfigError(f"validate_users must be a whole number >= 0 or null, got {users!r} in {path}.",
                          "Use 3000 (0 scores every validation user; null skips validation).")
    _check_numbers(config.get("seeds", [0]), "seeds", str(path), minimum=0, fix='Write e.g. "seeds": [0, 1, 2].')
    _check_numbers(config.get("ks", [10]), "ks", str(path), minimum=1, fix='Write e.g. "ks": [10] or [5, 10, 20].')
    protocol_settings(config, {}, str(path))
    for scenario in config["scenarios"] if isinstance(config["scenarios"], list) else []:
        if isinstance(scenario, dict):
            protocol_settings(config, scenario, f"{path}, scenario {scenario.get('name')!r}")
    if not isinstance(config.get("description", ""), str):
        raise ConfigError(f"'description' must be text in {path}.", "Write it as one JSON string.")
    for method, options in methods.items():
        _resolved_options(method, options, f"{path}, method {method!r}")
    scenarios = config["scenarios"]
    if not isinstance(scenarios, list) or not scenarios:
        raise ConfigError(f"'scenarios' must be a non-empty list in {path}, got {scenarios!r}.",
                          'Write e.g. "scenarios": [{"name": "warm", "dataset": "synthetic"}].')
    seen: set[str] = set()
    for number, scenario in enumerate(scenarios, 1):
        _check_scenario(scenario, number, config, str(path))
        if scenario["name"] in seen:
            raise ConfigError(f"Two scenarios are named {scenario['name']!r} in {path}.",
                              "Give every scenario its own name (records are labelled with it).")
        seen.add(scenario["name"])
    return config


def protocol_settings(config: dict[str, Any], scenario: dict[str, Any], where: str = "the config") -> dict[str, Any]:
    """The sound-protocol settings of one scenario, checked: ``tune`` (trials per method, ``null`` for
    none), ``tune_scope`` (``"first-seed"`` or ``"per-seed"``), ``refit`` (true/false) and ``leaks``
    (``"remove"`` or ``"keep"``; a scenario may override it, e.g. to measure the leak)."""
    from xcatrec.experiment import TUNE_SCOPES
    from xcatrec.tuning import check_trials

    out = {key: config.get(key, default) for key, default in PROTOCOL_DEFAULTS.items()}
    if scenario.get("leaks") is not None:
        out["leaks"] = scenario["leaks"]
    if out["tune"] is not None:
        try:
            check_trials(out["tune"])
        except ConfigError as err:
            raise ConfigError(f"{err.problem} (key 'tune' in {where})", 'Write e.g. "tune": 8, or null.') from None
    if out["tune_scope"] not in TUNE_SCOPES:
        raise ConfigError(f"tune_scope must be one of {list(TUNE_SCOPES)}, got {out['tune_scope']!r} in {where}.",
                          'Write "tune_scope": "first-seed".')
    if not isinstance(out["refit"], bool):
        raise ConfigError(f"refit must be true or false, got {out['refit']!r} in {where}.", 'Write "refit": true.')
    if out["leaks"] not in ("remove", "keep"):
        raise ConfigError(f"leaks must be 'remove' or 'keep', got {out['leaks']!r} in {where}.",
                          'Write "leaks": "remove" (the default) or "keep" to measure the leak.')
    return out


def _check_numbers(values: Any, key: str, where: str, *, minimum: int, fix: str) -> None:
    """``values`` must be a non-empty list of distinct whole numbers ``>= minimum``."""
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum  # noqa: E731
    if not isinstance(values, list) or not values or not all(whole(v) for v in values):
        raise ConfigError(f"{key!r} must be a non-empty list of whole numbers >= {minimum}, got {values!r} "
                          f"in {where}.", fix)
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise ConfigError(f"{key!r} lists {twice} more than once in {where}.", "List each value once.")


def _check_scenario(scenario: Any, number: int, config: dict[str, Any], path: str) -> None:
    """One scenario of a config (see :func:`load_config`); ``number`` counts from 1 for the message."""
    from xcatrec.data.registry import get_spec
    from xcatrec.data.splits import SPLITS
    from xcatrec.evaluation.protocols import PROTOCOLS

    if not isinstance(scenario, dict):
        raise ConfigError(f"Scenario {number} in {path} is a {type(scenario).__name__}, not an object.",
                          'Write each scenario as {"name": ..., "dataset": ..., ...}.')
    name = scenario.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"Scenario {number} in {path} has no name.", 'Add "name": "some-label" to it.')
    where = f"scenario {name!r} of {path}"
    extra = sorted(set(scenario) - SCENARIO_KEYS)
    if extra:
        raise ConfigError(f"Unknown key(s) {extra} in {where}.", f"Use keys from {sorted(SCENARIO_KEYS)}.")
    if not isinstance(scenario.get("dataset"), str):
        raise ConfigError(f"{where} names no 'dataset'.", 'Add e.g. "dataset": "synthetic".')
    try:
        spec = get_spec(scenario["dataset"])
    except ConfigError as err:
        raise ConfigError(f"{where}: {err.problem}", err.fix) from None
    for role in ("source", "target"):
        domain = scenario.get(role)
        if domain is not None and domain not in spec.domain_names:
            raise ConfigError(f"Unknown {role} domain {domain!r} in {where}.",
                              f"Use one of {list(spec.domain_names)} (or leave {role!r} out).")
    if scenario.get("source") is not None and scenario.get("source") == scenario.get("target"):
        raise ConfigError(f"Source and target are both {scenario['source']!r} in {where}.",
                          f"Use two different domains of {list(spec.domain_names)}.")
    split = scenario.get("split")
    if split is not None and split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r} in {where}.", f"Use one of {list(SPLITS)}.")
    if split == "published" and not spec.has_published_split:
        raise ConfigError(f"Data set {spec.name!r} has no published split ({where}).",
                          f"Use one of {[s for s in SPLITS if s != 'published']}.")
    beta = scenario.get("beta", 0.2)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 < beta < 1:
        raise ConfigError(f"beta must be a number strictly between 0 and 1, got {beta!r} in {where}.",
                          "Use e.g. 0.2, 0.5 or 0.8.")
    protocols = scenario.get("protocols", ["full"])
    valid = [*PROTOCOLS, RATING_PROTOCOL]
    if (not isinstance(protocols, list) or not protocols or not all(isinstance(p, str) for p in protocols)
            or len(set(protocols)) < len(protocols)):
        raise ConfigError(f"'protocols' must be a non-empty list of distinct names, got {protocols!r} in {where}.",
                          f"Use names from {valid}.")
    unknown = [p for p in protocols if p not in valid]
    if unknown:
        raise ConfigError(f"Unknown protocol(s) {unknown} in {where}.", f"Use names from {valid}.")
    data = scenario.get("data", {})
    if not isinstance(data, dict):
        raise ConfigError(f"'data' must be an object of loader options in {where}, got {data!r}.",
                          'Write e.g. "data": {"rho": 0.5}.')
    if data and spec.name != "synthetic":
        raise ConfigError(f"'data' options {sorted(data)} in {where} apply only to the synthetic data set.",
                          "Drop 'data' from this scenario.")
    if "seed" in data:
        raise ConfigError(f"'data' sets 'seed' in {where}; the benchmark seeds the data with each run's seed.",
                          "Drop it and list the seeds under 'seeds'.")
    if data:
        from xcatrec.data.synthetic import SyntheticConfig

        try:
            SyntheticConfig.from_options(**data)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err.problem}", err.fix) from None
        except (TypeError, ValueError) as err:
            raise ConfigError(f"Invalid 'data' options {data} in {where} ({err}).",
                              "Give numbers where SyntheticConfig expects numbers.") from None
    names = scenario.get("methods", list(config["methods"]))
    if (not isinstance(names, list) or not names or not all(isinstance(m, str) for m in names)
            or len(set(names)) < len(names)):
        raise ConfigError(f"'methods' must be a non-empty list of distinct method names, got {names!r} in {where}.",
                          f"Pick from the top-level methods {sorted(config['methods'])}.")
    missing = sorted(set(names) - set(config["methods"]))
    if missing:
        raise ConfigError(f"Scenario {name!r} uses method(s) {missing} that the config does not define.",
                          "Add them under the top-level 'methods'.")
    target_only = scenario.get("target_only")
    if target_only is not None and target_only not in names:
        raise ConfigError(f"target_only {target_only!r} of {where} is not one of its methods {names}.",
                          "Name the scenario's target-only baseline among its methods.")
    overrides = scenario.get("options", {})
    if not isinstance(overrides, dict) or not all(isinstance(o, dict) for o in overrides.values()):
        raise ConfigError(f"'options' must map method names to option objects in {where}, got {overrides!r}.",
                          'Write e.g. "options": {"cmf": {"loss": "mse"}}.')
    stray = sorted(set(overrides) - set(names))
    if stray:
        raise ConfigError(f"'options' of {where} set method(s) {stray} that the scenario does not run.",
                          f"Override only its methods {names}.")
    if "seeds" in scenario:
        _check_numbers(scenario["seeds"], "seeds", where, minimum=0, fix='Write e.g. "seeds": [0, 1, 2].')
    for method in names:
        _resolved_options(method, {**config["methods"][method], **overrides.get(method, {})},
                          f"{where}, method {method!r}")


def _resolved_options(method: str, options: dict[str, Any], where: str) -> dict[str, Any]:
    """The config fields ``method`` runs with (its defaults filled in, ``seed`` left out): the
    options as its config class builds them, so a bad name or value is a :class:`ConfigError` now."""
    from dataclasses import asdict, fields

    from xcatrec.models import METHODS

    cls = METHODS[method].config_class
    names = sorted(f.name for f in fields(cls) if f.name != "seed")
    if "seed" in options:
        raise ConfigError(f"Options of {where} set 'seed'; the benchmark sets it from 'seeds'.",
                          "Drop it and list the seeds under 'seeds'.")
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ConfigError(f"Unknown option(s) {unknown} in {where}.", f"Use one of {names}.")
    from xcatrec.method_options import parse_options

    try:  # each value against its field's type, as the command line checks --option
        options = parse_options(method, [f"{k}={json.dumps(v)}" for k, v in options.items()])
        resolved = asdict(cls(**options))
    except ConfigError as err:
        raise ConfigError(f"{where}: {err.problem}", err.fix) from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"Invalid options {options} in {where} ({err}).",
                          f"See the fields of {cls.__name__} in the method's documentation.") from None
    resolved.pop("seed", None)
    return resolved


def run_settings(scenario: dict[str, Any], config: dict[str, Any], method: str, seed: int) -> dict[str, Any]:
    """Everything that determines one run of a benchmark (hashed into its :func:`run_key`).

    The method's options as it runs them (defaults filled in), the scenario's settings without its
    labels (:data:`SCENARIO_LABELS`) and with :data:`SCENARIO_DEFAULTS` spelled out, every top-level key
    but :data:`NOT_RUN_SETTINGS` (so a key added to configs later is covered without a change here),
    the seed and the package version. The git commit is not in it: it is a label of each record.
    """
    overrides = scenario.get("options", {}).get(method, {})
    options = _resolved_options(method, {**config["methods"][method], **overrides}, f"method {method!r}")
    settings = {**SCENARIO_DEFAULTS, **{k: v for k, v in scenario.items() if k not in SCENARIO_LABELS}}
    top = {"ks": [10], "validate_users": VALIDATE_USERS, **PROTOCOL_DEFAULTS,
           **{k: v for k, v in config.items() if k not in NOT_RUN_SETTINGS}}
    return {"method": method, "options": options, "scenario": settings, "config": top, "seed": seed,
            "version": xcatrec.__version__}


def run_key(settings: dict[str, Any]) -> str:
    """A short stable hash of :func:`run_settings` (key order and JSON spacing do not matter)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _git_commit() -> str:
    """The commit of the xcatrec code that runs: asked in the package's own folder (not the current
    one), and only when that folder is tracked by git; ``"unknown"`` for an installed package."""
    folder = Path(xcatrec.__file__).resolve().parent
    try:
        # a package installed into a virtual environment inside some checkout is not that checkout's code
        subprocess.run(["git", "ls-files", "--error-unmatch", "__init__.py"], cwd=folder, capture_output=True,
                       check=True)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit or "unknown"


def run_scenario(scenario: dict[str, Any], config: dict[str, Any], *, verbose: bool,
                 done: set[tuple[str, str]] = frozenset(),
                 on_records: Callable[[list[dict]], None] | None = None, commit: str | None = None,
                 choices: dict[str, dict[str, Any]] | None = None) -> list[dict]:
    """All methods x seeds of one scenario; returns tidy records labelled with the scenario name, the
    ``run_key`` of their run (see :func:`run_settings`) and the git ``commit``.

    Runs whose ``(scenario name, run_key)`` is in ``done`` are skipped (resuming a benchmark);
    ``choices`` are the options earlier searches chose per method (reused with ``tune_scope``
    ``"first-seed"``), see :func:`xcatrec.experiment.run_seeds`.
    """
    from xcatrec.data import load_dataset

    names = scenario.get("methods", list(config["methods"]))
    overrides = scenario.get("options", {})
    specs = [RunSpec(m, {**config["methods"][m], **overrides.get(m, {})},
                     tuple(scenario.get("protocols", ["full"])), tuple(config.get("ks", [10])))
             for m in names]
    data_opts = dict(scenario.get("data", {}))

    def load(seed: int):
        return load_dataset(scenario["dataset"], source=scenario.get("source"), target=scenario.get("target"),
                            split=scenario.get("split"), beta=scenario.get("beta", 0.2), seed=seed,
                            leaks=protocol["leaks"], **data_opts)

    protocol = protocol_settings(config, scenario)

    seeds = scenario.get("seeds", config.get("seeds", [0, 1, 2]))
    name = scenario["name"]
    keys = {(m, seed): run_key(run_settings(scenario, config, m, seed)) for m in names for seed in seeds}
    commit = _git_commit() if commit is None else commit

    def keyed(records: list[dict]) -> None:
        for record in records:
            record["run_key"] = keys[(record["method"], record["seed"])]
        if on_records is not None:
            on_records(records)

    skipped = sum((name, key) in done for key in keys.values())
    log(f"== scenario {name}: {len(specs)} methods x {len(seeds)} seeds"
        + (f" ({skipped} runs already done)" if skipped else ""), verbose=verbose)
    return run_seeds(load, specs, seeds, verbose=verbose, labels={"scenario": name, "commit": commit},
                     measure_memory=True, skip=lambda spec, seed: (name, keys[(spec.method, seed)]) in done,
                     on_records=keyed, validate_users=config.get("validate_users", VALIDATE_USERS),
                     tune=protocol["tune"], tune_scope=protocol["tune_scope"], refit=protocol["refit"],
                     choices=choices)


def negative_transfer_flags(rows: pd.DataFrame, target_only: str, ks: list[int]) -> pd.DataFrame:
    """Per transfer method of one scenario: on how many seeds its validation score was worse than the
    target-only method's of the same seed (NDCG at the first cut-off; RMSE for rating scenarios).

    Returns:
        Columns ``method``, ``neg_transfer_valid`` (seeds worse) and ``valid_seeds`` (seeds compared);
        empty when the scenario has no validation records for ``target_only``.
    """
    ranking = rows[(rows["protocol"] == VALID_PROTOCOL) & (rows["metric"] == "ndcg") & (rows["k"] == ks[0])]
    ratings = rows[(rows["protocol"] == VALID_RATING_PROTOCOL) & (rows["metric"] == "rmse")]
    valid, higher_is_better = (ranking, True) if len(ranking) else (ratings, False)
    table = valid.pivot_table(index="seed", columns="method", values="value", aggfunc="first")
    if target_only not in table.columns:
        return pd.DataFrame(columns=["method", "neg_transfer_valid", "valid_seeds"])
    out = []
    for method in [m for m in table.columns if m in TRANSFER]:
        pair = table[[method, target_only]].dropna()
        worse = pair[method] < pair[target_only] if higher_is_better else pair[method] > pair[target_only]
        out.append({"method": method, "neg_transfer_valid": int(worse.sum()), "valid_seeds": len(pair)})
    return pd.DataFrame(out, columns=["method", "neg_transfer_valid", "valid_seeds"])


def summarize_bench(records: list[dict], config: dict[str, Any]) -> pd.DataFrame:
    """Summary rows per scenario: quality with paired tests, joined with cost columns."""
    from xcatrec.evaluation import summarize

    frame = pd.DataFrame([r for r in records if r.get("kind") != "per-user" and r.get("protocol") != "tuning"])
    per_user = [r for r in records if r.get("kind") == "per-user"]
    parts = []
    for scenario in config["scenarios"]:
        rows = frame[frame["scenario"] == scenario["name"]] if len(frame) else frame
        if rows.empty:
            continue
        quality = rows[rows["protocol"] != "cost"]
        cost = rows[rows["protocol"] == "cost"].pivot_table(index="method", columns="metric", values="value",
                                                            aggfunc="median")
        methods = set(quality["method"])
        target_only = scenario.get("target_only", "bpr-mf")
        summary = summarize(quality, baseline=target_only if target_only in methods else None)
        summary = summary.rename(columns={"delta": "delta_vs_target_only", "rel_delta": "rel_vs_target_only",
                                          "p_value": "p_vs_target_only"})
        if "popularity" in methods:
            pop = summarize(quality, baseline="popularity")
            keys = [c for c in summary.columns if c in pop.columns and c not in
                    ("mean", "ci_low", "ci_high", "n_seeds", "delta", "rel_delta", "p_value")]
            summary = summary.merge(pop[keys + ["rel_delta", "p_value"]].rename(
                columns={"rel_delta": "rel_vs_popularity", "p_value": "p_vs_popularity"}), on=keys, how="left")
        summary = summary.merge(cost, left_on="method", right_index=True, how="left")
        flags = negative_transfer_flags(rows, target_only, list(config.get("ks", [10])))
        summary = summary.merge(flags, on="method", how="left")
        boot = bootstrap_table([r for r in per_user if r.get("scenario") == scenario["name"]], target_only)
        if len(boot):
            summary = summary.merge(boot, on=["method", "protocol", "metric", "k"], how="left")
        summary.insert(0, "scenario", scenario["name"])
        parts.append(summary)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


#: Practical threshold of the verdict words in the benchmark summary (relative NDCG@10 difference).
VERDICT_THRESHOLD = 0.02


def bootstrap_table(per_user: list[dict], reference: str, *, n_boot: int = 2000) -> pd.DataFrame:
    """Each method against ``reference`` by the paired bootstrap over test users and seeds.

    Reads the per-user records of one scenario (full-ranking NDCG@10, see
    :func:`xcatrec.experiment.run_one`) and returns per method: ``boot_rel`` (relative difference of
    the means), ``boot_low`` / ``boot_high`` (its 95% interval), ``boot_p`` and ``verdict`` (the words
    of :func:`xcatrec.evaluation.bootstrap.verdict` at :data:`VERDICT_THRESHOLD`). Empty without
    per-user records for ``reference``.
    """
    from xcatrec.evaluation.bootstrap import compare_runs, per_user_frame, verdict

    columns = ["method", "protocol", "metric", "k", "boot_rel", "boot_low", "boot_high", "boot_p", "verdict"]
    if not per_user:
        return pd.DataFrame(columns=columns)
    frame = per_user_frame(per_user)
    out = []
    for (protocol, method), _ in frame.groupby(["protocol", "method"]):
        if method == reference or not ((frame["protocol"] == protocol) & (frame["method"] == reference)).any():
            continue
        with warnings.catch_warnings():  # a benchmark in progress has seeds one method has not run yet
            warnings.simplefilter("ignore", UserWarning)
            result = compare_runs(frame[frame["protocol"] == protocol], method, reference, metric="ndcg@10",
                                  n_boot=n_boot, on_missing="drop")
        out.append({"method": method, "protocol": protocol, "metric": "ndcg", "k": 10, "boot_rel": result.estimate,
                    "boot_low": result.ci_low, "boot_high": result.ci_high, "boot_p": result.p_value,
                    "verdict": verdict(result, threshold=VERDICT_THRESHOLD)})
    table = pd.DataFrame(out, columns=columns)
    table["k"] = table["k"].astype("Int64")
    return table


def render_markdown(summary: pd.DataFrame, *, command: str, runs: str | None = None,
                    commit: str | None = None) -> str:
    """Markdown report: provenance header and one table per scenario and protocol.

    Args:
        runs: what the tables cover, e.g. ``"9 of 12 in this config"`` (a ``- runs:`` line).
        commit: the commit line (default: the commit of the running code).
    """
    lines = [f"# xcatrec benchmark", "", f"- command: `{command}`", f"- commit: {commit or _git_commit()}",
             f"- date: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC}",
             *([f"- runs: {runs}"] if runs else []),
             "- mean and 95% t-interval over seeds; p: paired t-test over seeds",
             "- neg_valid: seeds on which a transfer method scored below the target-only method on the "
             "validation split (of the seeds compared)",
             "- vs target-only (users x seeds): relative NDCG@10 difference with its 95% paired-bootstrap "
             "interval over test users and seeds, and the verdict it supports "
             f"(practical threshold {VERDICT_THRESHOLD:.0%})", ""]
    cols = ["method", "mean", "ci", "rel_vs_target_only", "p_vs_target_only", "rel_vs_popularity",
            "p_vs_popularity", "seconds_per_epoch", "fit_seconds", "peak_mb", "neg_valid"]
    if summary.empty:
        return "\n".join(lines + ["No finished runs yet.", ""])
    for (scenario, protocol, metric, k), rows in summary.groupby(["scenario", "protocol", "metric", "k"],
                                                                 dropna=False, sort=False):
        label = f"{metric}@{int(k)}" if pd.notna(k) else metric
        has_boot = "boot_rel" in rows.columns and rows["boot_rel"].notna().any()
        head = cols + (["vs target-only (users x seeds)", "verdict"] if has_boot else [])
        lines += [f"## {scenario}: {protocol}, {label}", "", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        for _, r in rows.sort_values("mean", ascending=protocol.endswith("ratings")).iterrows():
            half = (r["ci_high"] - r["ci_low"]) / 2 if pd.notna(r.get("ci_high")) else float("nan")
            cells = [r["method"], f"{r['mean']:.4f}", f"±{half:.4f}"]
            for c in cols[3:-1]:
                v = r.get(c, float("nan"))
                cells.append("" if pd.isna(v) else (f"{v:+.1%}" if c.startswith("rel") else
                                                     f"{v:.3g}" if c.startswith("p_") else f"{v:.2f}"))
            seeds = r.get("valid_seeds", float("nan"))
            cells.append(f"{int(r['neg_transfer_valid'])}/{int(seeds)}" if pd.notna(seeds) and seeds else "")
            if has_boot:
                rel = r.get("boot_rel", float("nan"))
                cells += ["" if pd.isna(rel) else f"{rel:+.1%} [{r['boot_low']:+.1%}, {r['boot_high']:+.1%}]",
                          "" if pd.isna(rel) else str(r["verdict"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def run_bench(config_path: str | Path, *, out_dir: str | Path = "results", verbose: bool = True,
              resume: bool = False, overwrite: bool = False, scenarios: list[str] | None = None) -> pd.DataFrame:
    """Run a benchmark config and write its results; returns the summary table.

    Args:
        resume: keep the runs of this very config already in ``out_dir/records.json`` (same
            ``run_key``) and run only the missing ones (a crashed or interrupted benchmark continues
            where it stopped); runs of another config are moved to ``records-set-aside.json``.
        overwrite: replace the results already in ``out_dir``; they stay until the first new run is saved.
        scenarios: run only these scenario names (all by default); with ``resume`` the other
            scenarios' records are kept.

    Raises:
        ConfigError: A bad config; ``out_dir`` holds results and neither ``resume`` nor ``overwrite``
            is set; another benchmark is writing to ``out_dir``.
        DataError: ``resume`` finds a ``records.json`` that is not a list of records.
    """
    config = load_config(config_path)
    names = [s["name"] for s in config["scenarios"]]
    unknown = sorted(set(scenarios or []) - set(names))
    if unknown:
        raise ConfigError(f"Unknown scenario(s) {unknown} in {config_path}.", f"Use names from {names}.")
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other.",
                          "Pass --resume to continue the results in --out-dir, or --overwrite to replace them.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out-dir {str(out)!r} is a file, not a folder.",
                          "Pass a folder (it is created if missing).")
    plan = {(s["name"], m, seed): run_settings(s, config, m, seed) for s in config["scenarios"]
            for m in s.get("methods", list(config["methods"]))
            for seed in s.get("seeds", config.get("seeds", [0, 1, 2]))}  # every run of the config
    keys = {ident: run_key(settings) for ident, settings in plan.items()}
    settings = {keys[ident]: plan[ident] for ident in plan}
    commit = _git_commit()
    command = "python -m xcatrec bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"]
                                                    else [str(config_path)])
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        _remove_orphans(out)
        found = [name for name in (*OUTPUTS, SET_ASIDE) if os.path.lexists(out / name)]
        if found and not (resume or overwrite):
            raise ConfigError(f"{out} already holds benchmark results ({', '.join(found)}); nothing was changed.",
                              "Pass --resume to continue them, --overwrite to replace them (they stay until the "
                              "first new run is saved), or another --out-dir.")
        records, changed = _resume(out, plan, keys) if resume else ([], False)
        done = {(r["scenario"], r["run_key"]) for r in records if r.get("protocol") == "cost"}
        replacing = [overwrite and bool(found)]
        if replacing[0]:
            log(f"--overwrite: the results in {out} are replaced when the first new run is saved")

        def publish() -> pd.DataFrame:
            return _publish(out, records, config, settings, command=command, commit=commit, planned=len(plan))

        def save(new: list[dict]) -> None:
            if replacing[0]:
                replacing[0] = False
                if os.path.lexists(out / SET_ASIDE):
                    os.unlink(out / SET_ASIDE)
                    log(f"--overwrite: removed {out / SET_ASIDE}")
            records.extend(new)
            publish()  # every finished run survives a crash, and every file agrees with records.json

        if changed:
            publish()
        for scenario in config["scenarios"]:
            if scenarios and scenario["name"] not in scenarios:
                continue
            run_scenario(scenario, config, verbose=verbose, done=done, on_records=save, commit=commit,
                         choices=searched_choices(records, scenario["name"]))
        summary = publish()
    log(f"wrote {out / 'summary.md'}", verbose=verbose)
    return summary


def searched_choices(records: list[dict], scenario: str) -> dict[str, dict[str, Any]]:
    """The options each method's search chose in ``scenario`` (from kept records), so a resumed
    benchmark reuses a search instead of running it again."""
    out = {}
    for r in records:
        if (r.get("scenario") == scenario and r.get("protocol") == "cost" and isinstance(r.get("tuned"), int)
                and not isinstance(r.get("tuned"), bool) and r["tuned"] > 0 and r.get("options")):
            out[r["method"]] = json.loads(r["options"])
    return out


def _publish(out: Path, records: list[dict], config: dict[str, Any], settings: dict[str, dict], *,
             command: str, commit: str, planned: int) -> pd.DataFrame:
    """Rewrite every output file from ``records``: first the records, then what is derived from them."""
    keys = {r.get("run_key") for r in records}
    _write(out / "records.json", json.dumps(records, indent=1))
    _write(out / "runs.json", json.dumps({k: v for k, v in settings.items() if k in keys}, indent=1, sort_keys=True))
    _write(out / "records.csv", pd.DataFrame(records).to_csv(index=False))
    summary = summarize_bench(records, config) if records else pd.DataFrame()
    _write(out / "summary.csv", summary.to_csv(index=False))
    runs = len({(r.get("scenario"), r.get("run_key")) for r in records if r.get("protocol") == "cost"})
    earlier = sorted({str(r.get("commit")) for r in records} - {commit})
    _write(out / "summary.md", render_markdown(
        summary, command=command, runs=f"{runs} of the {planned} in this config",
        commit=commit + (f" (earlier runs: {', '.join(earlier)})" if earlier else "")))
    return summary


def _resume(out: Path, plan: dict[tuple, dict], keys: dict[tuple, str]) -> tuple[list[dict], bool]:
    """The records of ``out/records.json`` that belong to finished runs of this config, and whether
    any others were there: those are appended to ``out/records-set-aside.json``. What was reused and
    what not (and why) is reported even when not ``verbose``: it decides what the results hold."""
    old = _read_records(out / "records.json")
    current = {(ident[0], key) for ident, key in keys.items()}
    finished = {(r.get("scenario"), r.get("run_key")) for r in old if r.get("protocol") == "cost"}
    reused = current & finished
    kept = [r for r in old if (r.get("scenario"), r.get("run_key")) in reused]
    left = [r for r in old if (r.get("scenario"), r.get("run_key")) not in reused]
    log(f"resume: {len(reused)} runs of this config reused from {out / 'records.json'}, "
        f"{len(current) - len(reused)} still to run")
    if not left:
        return kept, False
    reasons = _why_not_reused(left, plan, keys, _read_settings(out / "runs.json"))
    aside = _read_records(out / SET_ASIDE)
    _write(out / SET_ASIDE, json.dumps(aside + left, indent=1))  # first, so no record is ever only in memory
    log(f"resume: {sum(reasons.values())} runs in records.json were not reused: "
        + "; ".join(f"{n} {why}" for why, n in reasons.items())
        + f". They are kept in {out / SET_ASIDE}, not in records.json nor the summary.")
    return kept, True


def _why_not_reused(left: list[dict], plan: dict[tuple, dict], keys: dict[tuple, str],
                    recorded: dict[str, Any]) -> Counter:
    """Runs (``scenario, method, seed, run_key``) of ``left`` counted by why they cannot be reused."""
    reasons: Counter = Counter()
    for scenario, method, seed, key in dict.fromkeys((r.get("scenario"), r.get("method"), r.get("seed"),
                                                      r.get("run_key")) for r in left):
        ident = (scenario, method, seed)
        if key is None:
            reasons["have no run_key (an older xcatrec wrote them), so what they ran cannot be checked"] += 1
        elif ident not in plan:
            reasons["are not part of this config (another scenario, method or seed)"] += 1
        elif key == keys[ident]:
            reasons["never finished (no cost record)"] += 1
        else:
            reasons[f"differ from this config in {_differences(recorded.get(key), plan[ident])}"] += 1
    return reasons


def _differences(old: Any, new: dict[str, Any], limit: int = 4) -> str:
    """``"options.epochs 30 -> 15, version ..."``: the settings that differ, as dotted paths."""
    if not isinstance(old, dict):
        return "settings that runs.json does not record"

    def flat(value: Any, prefix: str = "") -> dict[str, str]:
        if isinstance(value, dict) and value:
            return {k: v for key, item in value.items() for k, v in flat(item, f"{prefix}{key}.").items()}
        return {prefix[:-1]: json.dumps(value, sort_keys=True, default=str)}

    a, b = flat(old), flat(new)
    diffs = [f"{k} {a.get(k, 'unset')} -> {b.get(k, 'unset')}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if not diffs:
        return "settings recorded under another key"
    return ", ".join(diffs[:limit]) + (f" and {len(diffs) - limit} more" if len(diffs) > limit else "")


def _read_records(path: Path) -> list[dict]:
    """The records in ``path`` (``[]`` when there is no such file); a :class:`DataError` when it is not
    a JSON list of records, and then nothing has been changed."""
    if not os.path.lexists(path):
        return []
    fix = f"Move {path} away (nothing was changed) and resume again, or pass --overwrite to start over."
    try:
        records = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not valid JSON ({err}); cannot resume from it.", fix) from None
    except OSError as err:
        raise DataError(f"Cannot read {path} ({err}); cannot resume from it.", fix) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{path} is not a list of records (JSON objects); cannot resume from it.", fix)
    for r in records:
        labels = {k: r.get(k) for k in ("scenario", "method", "seed", "run_key", "protocol")}
        if (not all(v is None or isinstance(v, str) for k, v in labels.items() if k != "seed")
                or not isinstance(r.get("seed", 0), int)):
            raise DataError(f"{path} holds a record with malformed labels {labels}; cannot resume from it.", fix)
    return records


def _read_settings(path: Path) -> dict[str, Any]:
    """``runs.json`` (run_key -> settings), only used to explain; ``{}`` when missing or unreadable."""
    try:
        settings = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) else {}


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold the lock of the output folder ``out`` (see the module docstring), or raise a
    :class:`ConfigError` naming the pid of the benchmark that holds it."""
    if fcntl is None:
        yield
        return
    path = out / LOCK
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as err:
            raise ConfigError(f"Cannot open the lock file {path} ({err}).",
                              f"Remove {path} if it is a link, or pick a writable --out-dir.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            raise ConfigError(f"Another xcatrec bench (pid {holder or 'unknown'}) is writing to {out}.",
                              "Wait for it to finish, or pass another --out-dir.") from None
        except OSError as err:
            os.close(fd)
            raise ConfigError(f"Cannot lock {path} ({err}).", "Use an --out-dir on a local disk.") from None
        try:  # the holder before us may have removed the file after we opened it: lock the one there now
            current = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still holding it, so no one can lock the old file meanwhile
        os.close(fd)


def _remove_orphans(out: Path) -> None:
    """Remove temporary files that a killed benchmark left behind (only called under the lock)."""
    for name in (*OUTPUTS, SET_ASIDE):
        for orphan in out.glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                orphan.unlink()


@functools.cache
def _file_mode() -> int:
    """Permissions of a new file under the current umask (``mkstemp`` would make it private)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _write(path: Path, text: str) -> None:
    """Replace ``path`` by a file holding ``text``, atomically.

    The text goes to a new, uniquely named file beside ``path`` (``mkstemp`` creates it with
    ``O_EXCL``, so no planted link is ever followed), is flushed to disk and renamed over ``path``
    (which replaces a link at ``path`` rather than writing through it). If anything fails, the
    temporary file is removed and ``path`` is left as it was.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), _file_mode())
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_results(path: str | Path = RESULTS_DIR) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Read a benchmark's output folder: ``(records, summary, provenance lines of summary.md)``."""
    path = Path(path)
    missing = [name for name in ("records.json", "summary.csv", "summary.md") if not (path / name).is_file()]
    if missing:
        raise ConfigError(f"Benchmark results {missing} are missing in {path}.",
                          "Run `python -m xcatrec bench CONFIG --out-dir DIR` and pass that DIR.")
    records = pd.DataFrame(json.loads((path / "records.json").read_text()))
    records["k"] = records["k"].astype("Int64")
    summary = pd.read_csv(path / "summary.csv")
    summary["k"] = summary["k"].astype("Int64")
    provenance = [line[2:] for line in (path / "summary.md").read_text().splitlines()[:8] if line.startswith("- ")]
    return records, summary, provenance


def scenario_table(summary: pd.DataFrame, scenario: str, *, protocol: str = "full", metric: str = "ndcg",
                   k: int | None = 10) -> pd.DataFrame:
    """One scenario's rows of a benchmark summary, best first, indexed by method."""
    rows = summary[(summary["scenario"] == scenario) & (summary["protocol"] == protocol)
                   & (summary["metric"] == metric)]
    rows = rows[rows["k"] == k] if k is not None else rows[rows["k"].isna()]
    if rows.empty:
        raise ConfigError(f"No {protocol} {metric} results for scenario {scenario!r}.",
                          f"Use a scenario from {sorted(summary['scenario'].unique())}.")
    rows = rows.assign(ci=(rows["ci_high"] - rows["ci_low"]) / 2)
    cols = [c for c in ("mean", "ci", "n_seeds", "rel_vs_target_only", "p_vs_target_only", "rel_vs_popularity",
                        "p_vs_popularity", "boot_rel", "boot_low", "boot_high", "boot_p", "verdict",
                        "seconds_per_epoch", "fit_seconds", "refit_seconds", "tune_seconds", "tune_trials",
                        "peak_mb", "neg_transfer_valid", "valid_seeds") if c in rows.columns]
    return rows.set_index("method")[cols].sort_values("mean", ascending=protocol.endswith("ratings"))


def verdict_table(summary: pd.DataFrame, scenario: str, *, protocol: str = "full") -> pd.DataFrame:
    """One scenario of a sound-protocol summary as a reader's table, best first, indexed by method.

    Columns: ``NDCG@10`` (mean over seeds), ``± seeds`` (half-width of the 95% t-interval over seeds),
    ``vs reference`` (relative difference against the scenario's target-only reference with its 95%
    paired-bootstrap interval over test users and seeds, as text) and ``verdict`` (the words of
    :func:`xcatrec.evaluation.bootstrap.verdict`; ``"(reference)"`` on the reference's own row).
    """
    rows = scenario_table(summary, scenario, protocol=protocol)
    if "boot_rel" not in summary.columns:
        raise ConfigError(f"The summary of {scenario!r} has no paired-bootstrap columns.",
                          "Use the results of a benchmark run with per-user records (configs/bench-sound.json).")
    boot = summary[(summary["scenario"] == scenario) & (summary["protocol"] == protocol)
                   & (summary["metric"] == "ndcg") & (summary["k"] == 10)].set_index("method")
    out = pd.DataFrame({"NDCG@10": rows["mean"], "± seeds": rows["ci"]})
    out["vs reference"] = [
        "" if pd.isna(boot.loc[m, "boot_rel"]) else
        f"{boot.loc[m, 'boot_rel']:+.0%} [{boot.loc[m, 'boot_low']:+.0%}, {boot.loc[m, 'boot_high']:+.0%}]"
        for m in out.index]
    out["verdict"] = ["(reference)" if pd.isna(boot.loc[m, "boot_rel"]) else boot.loc[m, "verdict"] for m in out.index]
    return out


def compare_best(records: pd.DataFrame | list[dict], scenario: str, challengers, references, *,
                 metric_name: str = "NDCG@10") -> dict[str, Any]:
    """The best of ``challengers`` against the best of ``references`` in one scenario, over users and seeds.

    "Best" is the highest mean full-ranking NDCG@10 over seeds. The comparison is the paired
    bootstrap of :func:`xcatrec.evaluation.bootstrap.compare_runs` on the per-user records, and the
    words come from :func:`~xcatrec.evaluation.bootstrap.verdict` at :data:`VERDICT_THRESHOLD`.

    Returns:
        ``challenger``, ``reference`` (the methods picked), ``result`` (the bootstrap result),
        ``verdict`` (the words) and ``sentence`` (:func:`~xcatrec.evaluation.bootstrap.describe`).
    """
    from xcatrec.evaluation.bootstrap import compare_runs, describe, per_user_frame, verdict

    rows = records.to_dict("records") if isinstance(records, pd.DataFrame) else list(records)
    frame = per_user_frame([r for r in rows if r.get("kind") == "per-user" and r.get("scenario") == scenario
                            and r.get("protocol") == "full"])
    from xcatrec.evaluation.stats import pick_best

    means = frame.groupby(["method", "seed"])["ndcg@10"].mean().groupby("method").mean()
    pick = pick_best(means, challengers, references, missing=f"ran in scenario {scenario!r}")
    with warnings.catch_warnings():  # only the seeds both ran are compared (describe() says how many)
        warnings.simplefilter("ignore", UserWarning)
        result = compare_runs(frame, pick["challenger"], pick["reference"], metric="ndcg@10", on_missing="drop")
    return {**pick, "result": result, "verdict": verdict(result, threshold=VERDICT_THRESHOLD),
            "sentence": describe(result, pick["challenger"], pick["reference"], threshold=VERDICT_THRESHOLD,
                                 metric_name=metric_name)}
